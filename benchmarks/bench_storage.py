"""Storage-layer benchmarks: append, sequential read, random read, open/recovery.

Run from the repository root (the full run takes about a minute on 2 cores and
needs about 1.6 GB of disk under /tmp and 1 GB of RAM; everything it creates is
removed at the end, also on error)::

    .venv/bin/python benchmarks/bench_storage.py

A small, fast run (about 6 seconds, 250 MB of disk)::

    .venv/bin/python benchmarks/bench_storage.py --quick

Options: ``--records N`` (records for workloads 1 and 2, default 2,000,000),
``--sizes 100000,1000000,10000000`` (partition sizes for the random-read
workload; the largest one is also the partition opened in workload 4),
``--runs N`` (repetitions, default 5; medians are reported), ``--samples N``
(random reads per size, default 20,000), ``--crash-runs N`` (kill -9 cycles,
default 3), ``--dir DIR`` (parent of the temporary directory,
default /tmp), ``--out FILE`` (default ``benchmarks/results/storage-<date>.txt``).

Workloads (records have a 16-byte key and a 100-byte random value; batches
of 1,000 records; one timestamp per batch; no compression; ``sync=False``):

1. Append through the storage layer (``prepare_batch`` + ``PartitionLog.append``,
   one call per batch), the append step alone (batches encoded beforehand),
   and side by side in the same runs: raw buffered ``f.write`` of the same
   frame bytes to a plain file, and sqlite3 ``executemany`` (WAL,
   ``synchronous=NORMAL``, one transaction per batch).
2. Sequential read of the whole partition with ``read(offset, 1 MiB)``, with
   and without decoding every record through ``RecordBatch.records()``.
3. Random-offset read latency: ``read(offset, 1)`` (returns the one batch
   holding the offset) plus decoding the batch up to that record, at each
   partition size (one partition per size, all built first; reads in 10
   rounds that alternate between the sizes, so machine noise hits them alike;
   every page read once beforehand, so first-touch page faults of the map are
   not counted).
4. Open time of the largest partition in a fresh process: after a clean
   shutdown, after a SIGKILLed writer (recovery), after removing the
   clean-shutdown marker (recovery), and, as a reference for what a recovery
   proportional to the log would cost, with the partition's recovery point
   invalidated (full scan).

All numbers are wall-clock medians over the runs; MB/s counts the records'
key + value bytes (116 B a record), MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

from _common import (  # benchmarks/ is on sys.path when run as a script
    Table,
    machine,
    median,
    percentile,
    settle,
    source_state,
    spread,
    status,
)

import streamlog
from streamlog.storage import PartitionLog, PreparedBatch, prepare_batch

KEY_SIZE = 16
VALUE_SIZE = 100
BATCH = 1000
RECORD_BYTES = KEY_SIZE + VALUE_SIZE
TOPIC = "bench"
POOL = 64  # distinct batches of random data, cycled (encoding cost does not depend on content)

TARGETS = {
    "append_rate": 3_000_000,
    "append_vs_raw": 0.5,
    "seq_decoded": 2_000_000,
    "random_ratio": 1.5,
    "clean_open_ms": 100.0,
}


# --------------------------------------------------------------------------- helpers
def now_ms() -> int:
    return int(time.time() * 1000)


def make_pool(seed: int) -> list[tuple[list[bytes], list[bytes]]]:
    rng = random.Random(seed)
    return [
        (
            [rng.randbytes(KEY_SIZE) for _ in range(BATCH)],
            [rng.randbytes(VALUE_SIZE) for _ in range(BATCH)],
        )
        for _ in range(POOL)
    ]


def open_partition(path: str) -> tuple[streamlog.Log, PartitionLog]:
    log = streamlog.open(path)
    if TOPIC not in log.topics():
        log.create_topic(TOPIC, 1)
    return log, log.partition(TOPIC, 0)



def sci(n: int) -> str:
    """10000000 -> '1e7' (exact powers of ten), else with thousands separators."""
    m, e = f"{n:e}".split("e")
    return f"{float(m):g}e{int(e)}" if float(m) == int(float(m)) else f"{n:,}"



# --------------------------------------------------------------------------- workload 1
def bench_append_encode(
    d: str, pool: list[tuple[list[bytes], list[bytes]]], n_batches: int, ts: int
) -> float:
    log, plog = open_partition(d)
    try:
        t0 = time.perf_counter()
        for i in range(n_batches):
            keys, values = pool[i % POOL]
            plog.append(prepare_batch(values, keys, ts))
        return time.perf_counter() - t0
    finally:
        log.close()


def bench_append_only(d: str, batches: list[PreparedBatch]) -> float:
    log, plog = open_partition(d)
    try:
        append = plog.append
        t0 = time.perf_counter()
        for b in batches:
            append(b)
        return time.perf_counter() - t0
    finally:
        log.close()


def bench_raw_write(d: str, frames: list[bytes]) -> float:
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "raw.log")
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        write = f.write
        for fr in frames:
            write(fr)
    return time.perf_counter() - t0


def bench_sqlite(
    d: str, pool: list[tuple[list[bytes], list[bytes]]], n_batches: int, ts: int
) -> float:
    os.makedirs(d, exist_ok=True)
    conn = sqlite3.connect(os.path.join(d, "bench.db"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE records (key BLOB, value BLOB, ts INTEGER)")
        sql = "INSERT INTO records (key, value, ts) VALUES (?, ?, ?)"
        execute, executemany = conn.execute, conn.executemany
        t0 = time.perf_counter()
        for i in range(n_batches):
            keys, values = pool[i % POOL]
            execute("BEGIN")
            executemany(sql, zip(keys, values, repeat(ts)))
            execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


# --------------------------------------------------------------------------- workload 2
def seq_read(plog: PartitionLog, decode: bool) -> tuple[float, int]:
    off = plog.log_start_offset
    n = 0
    read = plog.read
    t0 = time.perf_counter()
    while True:
        batches = read(off, 1 << 20)
        if not batches:
            break
        if decode:
            for b in batches:
                for _rec in b.records():
                    n += 1
        else:
            for b in batches:
                n += b.record_count
        off = batches[-1].next_offset
    return time.perf_counter() - t0, n


# --------------------------------------------------------------------------- workload 3
def fill(plog: PartitionLog, batches: list[PreparedBatch], upto: int, chunk: int = 100) -> None:
    """Append pre-encoded batches (in ``append_many`` calls of ``chunk``) until ``upto`` records."""
    i = 0
    while plog.end_offset < upto:
        need = (upto - plog.end_offset + BATCH - 1) // BATCH
        k = min(chunk, need)
        plog.append_many([batches[(i + j) % len(batches)] for j in range(k)])
        i += k


def random_read_us(plog: PartitionLog, off: int) -> float:
    """Latency (µs) of read(off, 1) + decoding the batch up to the record at ``off``."""
    clock = time.perf_counter_ns
    t0 = clock()
    batch = plog.read(off, 1)[0]
    for rec in batch.records():
        if rec[0] == off:
            break
    else:
        raise AssertionError(f"offset {off} not in batch {batch!r}")
    return (clock() - t0) / 1000


def warm_up(plog: PartitionLog) -> None:
    """Touch every page of every segment once (a raw sequential read), as a long-running
    reader would have: the random reads then measure lookups, not first-touch page faults."""
    seq_read(plog, decode=False)


# --------------------------------------------------------------------------- workload 4
_TIMED_OPEN = r"""
import json, sys, time
import streamlog
path, topic = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
log = streamlog.open(path)
p = log.partition(topic, 0)
end = p.end_offset
ms = (time.perf_counter() - t0) * 1000
reports = log.recovery
segs = p.segments()
out = {
    "ms": ms,
    "end": end,
    "segments": len(segs),
    "log_bytes": sum(s.size_bytes for s in segs),
    "active_bytes": segs[-1].size_bytes,
    "recovered": bool(reports),
    "scanned": sum(r.segments_scanned for r in reports),
    "truncated": sum(r.bytes_truncated for r in reports),
}
log.close()
print(json.dumps(out))
"""

_CRASH_CHILD = r"""
import random, sys, time
import streamlog
from streamlog.storage import prepare_batch
path, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)
b = prepare_batch([rng.randbytes(100) for _ in range(1000)],
                  [rng.randbytes(16) for _ in range(1000)], int(time.time() * 1000))
log = streamlog.open(path)
p = log.partition(topic, 0)
p.append(b)
print("ready", flush=True)
for _ in range(n):
    p.append(b)
print("done", flush=True)
time.sleep(3600)
"""


def timed_open(path: str) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-c", _TIMED_OPEN, path, TOPIC],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def crash_writer(path: str, batches: int, after_s: float) -> None:
    """Start a writer appending ``batches`` batches; SIGKILL it ``after_s`` after it began."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_CHILD, path, TOPIC, str(batches)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"crash child did not start: {line!r}")
        time.sleep(after_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.returncode != -signal.SIGKILL:
            raise RuntimeError(f"crash child exited with {proc.returncode}, not SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def marker_path(path: str) -> str:
    return os.path.join(path, "meta", "clean-shutdown")


def invalidate_recovery_point(path: str) -> None:
    """Break the checksum of the partition's durable fields: recovery then scans every segment."""
    state = os.path.join(path, "topics", TOPIC, "0", "state")
    with open(state, "r+b") as f:
        f.seek(48)
        f.write(b"\xff" * 8)


# --------------------------------------------------------------------------- report

def both(rate_ok: bool, ratio_ok: bool) -> str:
    if rate_ok and ratio_ok:
        return "met"
    if not rate_ok and not ratio_ok:
        return "MISSED (both)"
    return "MISSED (ratio)" if rate_ok else "MISSED (rate)"


def fs_type(path: str) -> str:
    best, typ = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt, t = parts[1], parts[2]
                if path.startswith(mnt) and len(mnt) > len(best):
                    best, typ = mnt, t
    except OSError:
        pass
    return f"{typ} on {best or '?'}"


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small fast run")
    ap.add_argument("--records", type=int, help="records for workloads 1-2 (default 2,000,000)")
    ap.add_argument("--sizes", help="comma-separated partition sizes for workload 3")
    ap.add_argument("--runs", type=int, help="repetitions of workloads 1-2 (default 5)")
    ap.add_argument("--samples", type=int, help="random reads per size (default 20,000)")
    ap.add_argument("--crash-runs", type=int, help="kill -9 cycles (default 3)")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file (default benchmarks/results/storage-<date>.txt)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    q = args.quick
    records = args.records or (200_000 if q else 2_000_000)
    runs = args.runs or (3 if q else 5)
    samples = args.samples or (2_000 if q else 20_000)
    crash_runs = args.crash_runs or (2 if q else 3)
    sizes = (
        [int(float(s)) for s in args.sizes.split(",")]
        if args.sizes
        else ([100_000, 1_000_000] if q else [100_000, 1_000_000, 10_000_000])
    )
    n_batches = max(1, records // BATCH)
    records = n_batches * BATCH
    here = os.path.dirname(os.path.abspath(__file__))
    suffix = "-quick" if args.quick else ""  # a quick run must not overwrite the full one
    out_path = args.out or os.path.join(
        here, "results", f"storage-{datetime.date.today().isoformat()}{suffix}.txt"
    )

    source_at_start = source_state(os.path.dirname(here))
    load_at_start = os.getloadavg()
    base = tempfile.mkdtemp(prefix="streamlog-bench-", dir=args.dir)
    t_start = time.perf_counter()
    table = Table(columns=("workload", "median", "detail", "target", "status"), right={1})
    rng = random.Random(args.seed)
    ts = now_ms()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        log(f"temp dir {base}; {records:,} records x {runs} runs")
        pool = make_pool(args.seed)
        prepared = [prepare_batch(v, k, ts) for k, v in pool]
        batches = [
            prepared[i % POOL] for i in range(n_batches)
        ]  # objects may repeat: offsets are assigned at append
        frames = [b.frame(i * BATCH) for i, b in enumerate(batches)]
        frame_bytes = sum(len(f) for f in frames)

        # ---- workload 1
        res: dict[str, list[float]] = {"enc": [], "app": [], "raw": [], "sql": []}
        benches: list[tuple[str, Callable[[str], float]]] = [
            ("enc", lambda d: bench_append_encode(d, pool, n_batches, ts)),
            ("app", lambda d: bench_append_only(d, batches)),
            ("raw", lambda d: bench_raw_write(d, frames)),
            ("sql", lambda d: bench_sqlite(d, pool, n_batches, ts)),
        ]
        for r in range(runs):
            order = benches[r % len(benches) :] + benches[: r % len(benches)]  # rotate the order
            for key, fn in order:
                d = os.path.join(base, f"w1-{key}-{r}")
                settle()
                res[key].append(fn(d))
                shutil.rmtree(d)
            log(
                f"append run {r + 1}/{runs}: "
                + ", ".join(f"{k} {records / v[-1]:,.0f}/s" for k, v in res.items())
            )
        rate = {k: [records / t for t in v] for k, v in res.items()}
        med = {k: median(v) for k, v in rate.items()}
        raw = med["raw"]
        # ratios per run (same run, side by side), then the median of those
        ratio = {k: median([a / b for a, b in zip(rate[k], rate["raw"])]) for k in rate}

        def mbs(rec_s: float) -> float:
            return rec_s * RECORD_BYTES / 1e6

        table.section(
            f"1. Append, {records:,} records in batches of {BATCH:,} "
            f"(median of {runs} runs; records/s, key+value MB/s, "
            "ratio to raw write in the same run)"
        )
        table.row(
            "1a storage append: prepare_batch + append",
            f"{med['enc']:,.0f}/s",
            f"{mbs(med['enc']):.0f} MB/s, {ratio['enc']:.2f}x raw, runs {spread(rate['enc'])}",
            f">= {TARGETS['append_rate']:,}/s and >= {TARGETS['append_vs_raw']}x raw",
            both(med["enc"] >= TARGETS["append_rate"], ratio["enc"] >= TARGETS["append_vs_raw"]),
        )
        table.row(
            "1b append only (batches pre-encoded)",
            f"{med['app']:,.0f}/s",
            f"{mbs(med['app']):.0f} MB/s, {ratio['app']:.2f}x raw, runs {spread(rate['app'])}",
        )
        table.row(
            "1c raw f.write of the same frames",
            f"{raw:,.0f}/s",
            f"{mbs(raw):.0f} MB/s ({frame_bytes / records:.1f} B/record on disk), "
            f"runs {spread(rate['raw'])}",
        )
        table.row(
            "1d sqlite3 executemany, WAL, sync=NORMAL",
            f"{med['sql']:,.0f}/s",
            f"{mbs(med['sql']):.0f} MB/s, {ratio['sql']:.2f}x raw, runs {spread(rate['sql'])}",
        )
        enc_ns = (median(res["enc"]) - median(res["app"])) / records * 1e9
        app_ns = median(res["app"]) / records * 1e9
        raw_ns = median(res["raw"]) / records * 1e9
        table.row(
            "   per record: encode / append / raw write",
            f"{enc_ns:.0f} ns",
            f"encode {enc_ns:.0f} ns + append {app_ns:.0f} ns; raw write {raw_ns:.0f} ns",
        )

        # ---- workload 2
        d = os.path.join(base, "w2")
        lg, plog = open_partition(d)
        fill(plog, batches, records)
        settle()
        dec: list[float] = []
        nodec: list[float] = []
        for r in range(runs):
            for decode in (True, False) if r % 2 == 0 else (False, True):
                t, n = seq_read(plog, decode)
                assert n == records, (n, records)
                (dec if decode else nodec).append(n / t)
        lg.close()
        shutil.rmtree(d)
        log(f"sequential read: decoded {median(dec):,.0f}/s, raw {median(nodec):,.0f}/s")
        table.section(
            f"2. Sequential read of {records:,} records with read(offset, 1 MiB) "
            f"(median of {runs} runs)"
        )
        table.row(
            "2a read + decode every record (records())",
            f"{median(dec):,.0f}/s",
            f"{mbs(median(dec)):.0f} MB/s, runs {spread(dec)}",
            f">= {TARGETS['seq_decoded']:,}/s",
            status(median(dec) >= TARGETS["seq_decoded"]),
        )
        table.row(
            "2b read batches, no decoding",
            f"{median(nodec):,.0f}/s",
            f"{mbs(median(nodec)):.0f} MB/s, runs {spread(nodec)}",
        )

        # ---- workload 3
        rounds = 10
        per_round = max(1, samples // rounds)
        samples = per_round * rounds
        table.section(
            f"3. Random-offset read: read(offset, 1) + decode to the record "
            f"({samples:,} reads per size, in {rounds} interleaved rounds; pages warmed)"
        )
        parts: dict[int, tuple[str, streamlog.Log, PartitionLog]] = {}
        for size in sorted(sizes):
            d = os.path.join(base, f"w3-{size}")
            lg, plog = open_partition(d)
            t0 = time.perf_counter()
            fill(plog, prepared, size)
            log(
                f"built {size:,} records in {time.perf_counter() - t0:.1f}s "
                f"({plog.segment_count} segments)"
            )
            parts[size] = (d, lg, plog)
        settle()
        lat: dict[int, list[float]] = {size: [] for size in parts}
        round_p50: dict[int, list[float]] = {size: [] for size in parts}
        for _d, _lg, plog in parts.values():
            warm_up(plog)
        size_order = list(parts)
        for r in range(rounds):
            k = r % len(size_order)
            for size in size_order[k:] + size_order[:k]:
                plog = parts[size][2]
                offs = [rng.randrange(size) for _ in range(per_round)]
                got = sorted(random_read_us(plog, off) for off in offs)
                round_p50[size].append(percentile(got, 0.5))
                lat[size].extend(got)
        p50s: dict[int, float] = {}
        for size, (_d, _lg, plog) in parts.items():
            xs = sorted(lat[size])
            p50, p99 = percentile(xs, 0.5), percentile(xs, 0.99)
            p50s[size] = p50
            table.row(
                f"3  random read at {sci(size)} records",
                f"p50 {p50:,.0f} us",
                f"p99 {p99:,.0f} us; {plog.segment_count} segment(s), "
                f"{plog.size_bytes() / 1e9:.2f} GB",
            )
            log(f"random read at {size:,}: p50 {p50:.0f} us, p99 {p99:.0f} us")
        lo, hi = min(p50s), max(p50s)
        rr_rounds = [a / b for a, b in zip(round_p50[hi], round_p50[lo])]
        rr = median(rr_rounds)
        table.row(
            f"3  ratio p50({sci(hi)}) / p50({sci(lo)})",
            f"{rr:.2f}x",
            f"median of per-round ratios (range {min(rr_rounds):.2f}-{max(rr_rounds):.2f}); "
            f"pooled {p50s[hi] / p50s[lo]:.2f}x",
            f"<= {TARGETS['random_ratio']}x",
            status(rr <= TARGETS["random_ratio"]),
        )
        d = parts[hi][0]
        big_end = parts[hi][2].end_offset
        for size, (d_, lg, _plog) in parts.items():
            lg.close()
            if size != hi:
                shutil.rmtree(d_)

        # ---- workload 4
        settle()
        clean = [timed_open(d) for _ in range(max(3, runs))]
        info = clean[-1]
        gb = info["log_bytes"] / 1e9
        cms = median([c["ms"] for c in clean])
        log(f"clean open: {cms:.1f} ms")
        table.section(
            f"4. Open in a fresh process: streamlog.open + partition() + end_offset "
            f"({big_end:,} records, {gb:.2f} GB, {info['segments']} segments; segment.bytes 64 MiB)"
        )
        table.row(
            "4a clean open",
            f"{cms:,.1f} ms",
            f"{len(clean)} opens, {spread([c['ms'] for c in clean])} ms",
            f"<= {TARGETS['clean_open_ms']:.0f} ms",
            status(cms <= TARGETS["clean_open_ms"]),
        )
        crash: list[dict[str, Any]] = []
        for _ in range(crash_runs):
            crash_writer(d, batches=400, after_s=0.1)
            crash.append(timed_open(d))
        assert all(c["recovered"] for c in crash)
        kms = median([c["ms"] for c in crash])
        scanned = max(c["scanned"] for c in crash)
        act = median([c["active_bytes"] / 1e6 for c in crash])
        log(f"crash open: {kms:.1f} ms, scanned {scanned} segment(s)")
        table.row(
            "4b open after kill -9 of a writer (recovery)",
            f"{kms:,.1f} ms",
            f"{len(crash)} crashes; scanned {scanned} of {crash[-1]['segments']} segments "
            f"(active {act:.0f} MB); runs {spread([c['ms'] for c in crash])} ms",
            "bounded by one segment",
            status(scanned <= 1),
        )
        unmarked: list[dict[str, Any]] = []
        for _ in range(crash_runs):
            os.unlink(marker_path(d))
            unmarked.append(timed_open(d))
        assert all(c["recovered"] for c in unmarked)
        ums = median([c["ms"] for c in unmarked])
        table.row(
            "4c open after removing the clean marker",
            f"{ums:,.1f} ms",
            f"scanned {max(c['scanned'] for c in unmarked)} segment(s) "
            f"(active {median([c['active_bytes'] / 1e6 for c in unmarked]):.0f} MB)",
            "bounded by one segment",
            status(max(c["scanned"] for c in unmarked) <= 1),
        )
        os.unlink(marker_path(d))
        invalidate_recovery_point(d)
        full = timed_open(d)
        table.row(
            "4d reference: recovery of the whole log",
            f"{full['ms']:,.1f} ms",
            f"recovery point invalidated: scanned {full['scanned']} segments, "
            f"{full['log_bytes'] / 1e9:.2f} GB",
        )
        log(f"unmarked open: {ums:.1f} ms; full recovery {full['ms']:.0f} ms")
    finally:
        shutil.rmtree(base, ignore_errors=True)

    python = sys.executable
    if python.startswith(os.getcwd() + os.sep):
        python = os.path.relpath(python)
    header = [
        f"streamlog storage benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"machine: {machine()}",
        f"disk: {fs_type(os.path.realpath(args.dir))}; streamlog {streamlog.__version__}, "
        f"{source_at_start}",
        f"records: {KEY_SIZE} B key + {VALUE_SIZE} B random value, batches of {BATCH:,}, "
        "no compression, sync=False, page cache warm",
        f"command: {' '.join([python, *sys.argv])}",
        f"total time {time.perf_counter() - t_start:.0f}s; load average (1 min) "
        f"{load_at_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "",
    ]
    text = "\n".join(header) + table.render() + "\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
    print(f"written to {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
