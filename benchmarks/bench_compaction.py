"""Compaction and table benchmarks: ``Log.compact`` throughput in MB/s cleaned against
the raw read rate of the same data, and ``Log.table`` build time, lookup latency and
memory per key against a plain dict.

Run from the repository root (the full run takes about 1.5 minutes on 2 cores and
needs about 300 MB of disk under /tmp; everything it creates goes under a temporary
directory that is removed at the end, also on error)::

    .venv/bin/python benchmarks/bench_compaction.py            # full run
    .venv/bin/python benchmarks/bench_compaction.py --quick    # about 15 s

Options: ``--rounds N`` (default 5, 3 with ``--quick``; medians are reported),
``--records N`` (records of the compacted topic, default 1,000,000, 300,000 with
``--quick``), ``--keys 10000,100000`` (distinct keys of the compacted topic, one topic
per count; 3,000 and 30,000 with ``--quick``), ``--table-sizes 100000,1000000``
(distinct keys of the tables; 30,000 and 300,000 with ``--quick``), ``--lookups N``
(timed lookups per table per round, default 100,000, 50,000 with ``--quick``),
``--segment-bytes N`` (default 1 MiB), ``--only compaction,table``, ``--dir DIR``
(parent of the temporary directory, default /tmp), ``--out FILE`` (default
``benchmarks/results/compaction-<date>.txt``, ``-quick`` added with ``--quick``),
``--note TEXT`` (a line for the header, e.g. what else was running).

Everything goes through the public API: ``streamlog.open(path, cleaner=False)`` (no
background cleaner, so nothing is cleaned before ``compact`` is called),
``create_topic``, ``Log.producer`` / ``Log.consumer``, ``Log.compact`` and its
``CompactionStats``, ``Log.table``; ``Log.partition(...).size_bytes()`` only to
know the bytes on disk that the raw read went through. MB is 10^6 bytes.

1. Compaction. A one-partition topic with ``cleanup.policy=compact``,
   ``segment.bytes`` 1 MiB (so about 115 sealed segments for 1e6 records) and
   ``delete.retention.ms=0``, written by one producer (defaults): N records, each
   a 100-byte value (from a pool of 4,096 random values) under a key drawn
   uniformly from K distinct 16-byte random keys; every 100th record is a
   tombstone (value None) instead. A fresh topic per K per round (the order of
   the K alternates between rounds); ``os.sync()`` after writing. Then, in this
   order (compaction changes the data, so the read cannot come after it):
   (a) raw read: a fresh consumer (``assign``, ``auto_offset_reset="earliest"``)
   reads the whole topic from offset 0 to its end; MB/s = the topic's bytes on
   disk / time. (b) ``log.compact(topic)`` timed by the wall clock; MB/s cleaned =
   ``bytes_before`` (bytes of the segments cleaned) / that time. The ratio
   (b)/(a) is taken per round, the median reported. (c) a second
   ``log.compact(topic)``: with ``delete.retention.ms=0`` the surviving
   tombstones' delete horizon has passed, so it drops them
   (``tombstones_removed``). The partition's segment count after both is
   reported too (``Log.partition(...).segment_count``).
2. Tables. A one-partition topic of M records with M distinct random 16-byte
   keys and 100-byte values, written once. Per round: ``log.table(topic)`` timed
   (the first refresh reads the whole topic), then ``table[key]`` for random
   existing keys, each call timed alone with ``perf_counter_ns`` (p50/p99; the
   timer's own cost, two back-to-back calls, is in the detail), and the same
   keys looked up in a plain dict of the same keys and values (fresh bytes
   objects, built in the same round from lists in memory: the dict's build time
   is the floor with no reading or decoding at all). Memory, once per size
   after the rounds: tracemalloc (Python allocations only, not RSS) around
   building a second table, retained after the build (and the peak during it),
   divided by M; the same for building the dict from fresh copies of the keys
   and values. Building under tracemalloc is several times slower; that build
   is not timed.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Mapping

from _common import (  # benchmarks/ is on sys.path when run as a script
    Table,
    machine,
    source_state,
)

import streamlog
from streamlog import TopicPartition

KEY_SIZE = 16
VALUE_SIZE = 100
VALUE_POOL = 4096
TOMBSTONE_EVERY = 100
TIMEOUT_S = 120.0
HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- helpers
def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = ",.0f") -> str:
    return f"{min(xs):{fmt}}-{max(xs):{fmt}}"


def percentile(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    return float(sorted_xs[min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))])


def settle() -> None:
    """Flush dirty pages and collect garbage between measurements."""
    gc.collect()
    os.sync()


def ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


class Data:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.values = [self.rng.randbytes(VALUE_SIZE) for _ in range(VALUE_POOL)]

    def keys(self, n: int) -> list[bytes]:
        rb = self.rng.randbytes
        return [rb(KEY_SIZE) for _ in range(n)]


# --------------------------------------------------------------------------- 1. compaction
def write_compacted(
    log: streamlog.Log, topic: str, n: int, k: int, seg: int, data: Data
) -> dict[str, int]:
    log.create_topic(topic, 1, config={
        "cleanup.policy": "compact",
        "segment.bytes": str(seg),
        "delete.retention.ms": "0",
    })
    keys = data.keys(k)
    pick = [data.rng.randrange(k) for _ in range(n)]
    values, mask = data.values, VALUE_POOL - 1
    tombstones = 0
    with log.producer() as producer:
        send = producer.send
        for i in range(n):
            if i % TOMBSTONE_EVERY == TOMBSTONE_EVERY - 1:
                send(topic, None, keys[pick[i]])
                tombstones += 1
            else:
                send(topic, values[i & mask], keys[pick[i]])
    part = log.partition(topic, 0)
    if part.end_offset != n:
        raise RuntimeError(f"{topic}: end offset {part.end_offset}, expected {n}")
    return {
        "tombstones": tombstones,
        "bytes": part.size_bytes(),
        "segments": part.segment_count,
        "distinct": len(set(pick)),
    }


def raw_read(log: streamlog.Log, topic: str, n: int) -> float:
    """Seconds for a fresh consumer to read the topic from offset 0 to its end."""
    tp = TopicPartition(topic, 0)
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([tp])
    got = 0
    try:
        poll = consumer.poll
        deadline = time.monotonic() + TIMEOUT_S
        t0 = time.perf_counter()
        while got < n:
            for records in poll(timeout_ms=1000).values():
                got += len(records)
            if time.monotonic() > deadline:
                break
        dt = time.perf_counter() - t0
    finally:
        consumer.close()
    if got != n:
        raise RuntimeError(f"{topic}: read {got} records, expected {n}")
    return dt


# --------------------------------------------------------------------------- 2. tables
def write_table_topic(log: streamlog.Log, topic: str, keys: list[bytes], data: Data) -> None:
    log.create_topic(topic, 1)
    values, mask = data.values, VALUE_POOL - 1
    with log.producer(linger_ms=5) as producer:
        send = producer.send
        for i, key in enumerate(keys):
            send(topic, values[i & mask], key)


def fresh(b: bytes) -> bytes:
    """A new bytes object equal to ``b`` (``bytes(b)`` would return ``b`` itself)."""
    return bytes(memoryview(b))


def lookups(mapping: Mapping[bytes, bytes], sample: list[bytes]) -> list[int]:
    """Nanoseconds of each ``mapping[key]``, timed alone."""
    pc = time.perf_counter_ns
    lat = []
    append = lat.append
    for key in sample:
        t0 = pc()
        mapping[key]
        append(pc() - t0)
    lat.sort()
    return lat


def timer_floor(sample: list[bytes]) -> list[int]:
    pc = time.perf_counter_ns
    lat = []
    append = lat.append
    for _key in sample:
        t0 = pc()
        append(pc() - t0)
    lat.sort()
    return lat


def traced(build: object) -> tuple[int, int, object]:
    """(retained bytes, peak bytes, result) of ``build()`` under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = build()  # type: ignore[operator]
        gc.collect()
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return cur - before, peak - before, result


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small fast run (about 15 s)")
    ap.add_argument("--rounds", type=int, help="rounds (default 5, 3 with --quick)")
    ap.add_argument("--records", type=int, help="records of the compacted topic")
    ap.add_argument("--keys", help="distinct keys of the compacted topic, comma-separated")
    ap.add_argument("--table-sizes", help="distinct keys of the tables, comma-separated")
    ap.add_argument("--lookups", type=int, help="timed lookups per table per round")
    ap.add_argument("--segment-bytes", type=int, default=1 << 20)
    ap.add_argument("--only", help="comma-separated subset of compaction,table")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file")
    ap.add_argument("--note", help="a line for the header (e.g. what else was running)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    q = args.quick
    rounds = args.rounds or (3 if q else 5)
    n_records = args.records or (300_000 if q else 1_000_000)
    key_counts = ints(args.keys) if args.keys else [10_000, 100_000]
    if q and not args.keys:
        key_counts = [3_000, 30_000]
    sizes = ints(args.table_sizes) if args.table_sizes else (
        [30_000, 300_000] if q else [100_000, 1_000_000])
    n_lookups = args.lookups or (50_000 if q else 100_000)
    seg = args.segment_bytes
    parts_all = ["compaction", "table"]
    only = set(args.only.split(",")) if args.only else set(parts_all)
    if only - set(parts_all):
        ap.error(f"--only takes {','.join(parts_all)}")
    today = datetime.date.today().isoformat()
    out_path = args.out or os.path.join(
        HERE, "results", f"compaction-{today}{'-quick' if q else ''}.txt"
    )

    source_at_start = source_state(os.path.dirname(HERE))
    load_at_start = os.getloadavg()
    t_start = time.perf_counter()

    def note(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    res: dict[str, list[float]] = {}
    facts: dict[str, dict[str, int]] = {}

    def add(key: str, value: float) -> None:
        res.setdefault(key, []).append(value)

    data = Data(args.seed)
    base = tempfile.mkdtemp(prefix="streamlog-bench-compact-", dir=args.dir)
    try:
        # ---- 1. compaction
        if "compaction" in only:
            for r in range(rounds):
                path = os.path.join(base, f"compact{r}")
                with streamlog.open(path, cleaner=False) as log:
                    order = key_counts[::-1] if r % 2 else key_counts
                    for k in order:
                        topic = f"c{k}"
                        f = write_compacted(log, topic, n_records, k, seg, data)
                        settle()
                        dt_read = raw_read(log, topic, n_records)
                        gc.collect()
                        t0 = time.perf_counter()
                        st = log.compact(topic)
                        dt = time.perf_counter() - t0
                        t0 = time.perf_counter()
                        st2 = log.compact(topic)
                        dt2 = time.perf_counter() - t0
                        segs_left = log.partition(topic, 0).segment_count
                        read_mb = f["bytes"] / dt_read / 1e6
                        clean_mb = st.bytes_before / dt / 1e6
                        add(f"read-{k}", read_mb)
                        add(f"segs-disk-{k}", f["segments"])
                        add(f"read-rec-{k}", n_records / dt_read)
                        add(f"clean-{k}", clean_mb)
                        add(f"clean-rec-{k}", st.records_before / dt)
                        add(f"clean-s-{k}", dt)
                        add(f"ratio-{k}", clean_mb / read_mb)
                        add(f"after-{k}", st.records_after)
                        add(f"bytes-after-{k}", st.bytes_after)
                        add(f"before-{k}", st.records_before)
                        add(f"bytes-before-{k}", st.bytes_before)
                        add(f"segs-{k}", st.segments_cleaned)
                        add(f"tomb1-{k}", st.tombstones_removed)
                        add(f"tomb2-{k}", st2.tombstones_removed)
                        add(f"after2-{k}", st2.records_after)
                        add(f"segs2-{k}", st2.segments_cleaned)
                        add(f"clean2-ms-{k}", dt2 * 1e3)
                        add(f"segs-left-{k}", segs_left)
                        facts[f"c{k}"] = f
                        note(
                            f"round {r + 1}, {k:,} keys: read {read_mb:.0f} MB/s, "
                            f"compact {clean_mb:.0f} MB/s ({dt:.2f} s), "
                            f"ratio {clean_mb / read_mb:.2f}; records {st.records_before:,} -> "
                            f"{st.records_after:,}; 2nd compact dropped "
                            f"{st2.tombstones_removed} tombstones"
                        )
                shutil.rmtree(path, ignore_errors=True)

        # ---- 2. tables
        if "table" in only:
            path = os.path.join(base, "tables")
            with streamlog.open(path, cleaner=False) as log:
                all_keys: dict[int, list[bytes]] = {}
                for m in sizes:
                    all_keys[m] = keys = data.keys(m)
                    t0 = time.perf_counter()
                    write_table_topic(log, f"t{m}", keys, data)
                    note(f"table topic of {m:,} keys written in {time.perf_counter() - t0:.1f}s")
                settle()
                values, mask = data.values, VALUE_POOL - 1
                for r in range(rounds):
                    order = sizes[::-1] if r % 2 else sizes
                    for m in order:
                        keys = all_keys[m]
                        sample = [keys[data.rng.randrange(m)] for _ in range(n_lookups)]
                        fresh_values = [fresh(values[i & mask]) for i in range(m)]
                        gc.collect()
                        t0 = time.perf_counter()
                        table = log.table(f"t{m}")
                        dt_table = time.perf_counter() - t0
                        try:
                            if len(table) != m:
                                raise RuntimeError(f"table t{m}: {len(table)} keys, expected {m}")
                            lat_t = lookups(table, sample)
                        finally:
                            table.close()
                        del table
                        gc.collect()
                        t0 = time.perf_counter()
                        d = dict(zip(keys, fresh_values))
                        dt_dict = time.perf_counter() - t0
                        lat_d = lookups(d, sample)
                        lat_0 = timer_floor(sample)
                        del d, fresh_values
                        add(f"build-{m}", dt_table)
                        add(f"build-rate-{m}", m / dt_table)
                        add(f"dict-build-{m}", dt_dict)
                        add(f"build-ratio-{m}", dt_table / dt_dict)
                        for name, lat in (("t", lat_t), ("d", lat_d), ("0", lat_0)):
                            add(f"lat-{name}-p50-{m}", percentile(lat, 0.50))
                            add(f"lat-{name}-p99-{m}", percentile(lat, 0.99))
                        add(f"lat-ratio-{m}", percentile(lat_t, 0.5) / percentile(lat_d, 0.5))
                        note(
                            f"round {r + 1}, table of {m:,}: build {dt_table:.2f} s "
                            f"(dict {dt_dict:.3f} s); lookup p50/p99 "
                            f"{percentile(lat_t, 0.5):.0f}/{percentile(lat_t, 0.99):.0f} ns "
                            f"(dict {percentile(lat_d, 0.5):.0f}/{percentile(lat_d, 0.99):.0f})"
                        )
                for m in sizes:
                    keys = all_keys[m]

                    def build_table(topic: str = f"t{m}") -> object:
                        return log.table(topic)

                    kept, peak, table = traced(build_table)
                    table.close()  # type: ignore[attr-defined]
                    del table
                    add(f"mem-t-{m}", kept / m)
                    add(f"mem-t-peak-{m}", peak / m)

                    def build_dict(keys: list[bytes] = keys) -> object:
                        return {fresh(k): fresh(values[i & mask]) for i, k in enumerate(keys)}

                    kept, peak, d = traced(build_dict)
                    del d
                    add(f"mem-d-{m}", kept / m)
                    add(f"mem-d-peak-{m}", peak / m)
                    note(
                        f"memory, table of {m:,}: {res[f'mem-t-{m}'][-1]:.0f} B/key retained "
                        f"(peak {res[f'mem-t-peak-{m}'][-1]:.0f}); dict "
                        f"{res[f'mem-d-{m}'][-1]:.0f} B/key"
                    )
            shutil.rmtree(path, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # ---- report
    table = Table()
    plural = "s" if rounds != 1 else ""
    if "compaction" in only:
        table.section(
            f"1. Compaction of a topic of {n_records:,} records (16 B keys, 100 B values, "
            f"1 in {TOMBSTONE_EVERY} a tombstone; segment.bytes {seg:,}; 1 partition; "
            f"MB/s, median of {rounds} round{plural}; ratio per round)"
        )
        for k in key_counts:
            f = facts[f"c{k}"]
            table.row(
                f"1  raw read, {k:,} keys",
                f"{median(res[f'read-{k}']):,.0f} MB/s",
                spread(res[f"read-{k}"]),
                f"{f['bytes'] / 1e6:,.1f} MB on disk in "
                f"{median(res[f'segs-disk-{k}']):.0f} segments; "
                f"{median(res[f'read-rec-{k}']):,.0f} records/s",
            )
            table.row(
                f"1  compact, {k:,} keys",
                f"{median(res[f'clean-{k}']):,.0f} MB/s",
                spread(res[f"clean-{k}"]),
                f"{median(res[f'segs-{k}']):.0f} segments, "
                f"{median(res[f'bytes-before-{k}']) / 1e6:,.1f} MB cleaned in "
                f"{median(res[f'clean-s-{k}']):.2f} s; "
                f"{median(res[f'clean-rec-{k}']):,.0f} records/s",
            )
            table.row(
                f"1  ratio compact / raw read, {k:,} keys",
                f"{median(res[f'ratio-{k}']):.2f}x",
                spread(res[f"ratio-{k}"], ".2f"),
                "MB/s cleaned / MB/s read, same round",
                "report",
            )
            table.row(
                f"1  records before -> after, {k:,} keys",
                f"{median(res[f'after-{k}']):,.0f}",
                spread(res[f"after-{k}"]),
                f"from {median(res[f'before-{k}']):,.0f} "
                f"({median(res[f'bytes-before-{k}']) / 1e6:,.1f} -> "
                f"{median(res[f'bytes-after-{k}']) / 1e6:,.2f} MB); {f['distinct']:,} keys "
                f"written, {f['tombstones']:,} tombstones written",
            )
            table.row(
                f"1  segments after compaction, {k:,} keys",
                f"{median(res[f'segs-left-{k}']):,.0f}",
                spread(res[f"segs-left-{k}"]),
                f"segment files after both compacts (the active one included), from "
                f"{median(res[f'segs-disk-{k}']):.0f} before; segment.bytes {seg:,}",
            )
            table.row(
                f"1  2nd compact: tombstones removed, {k:,} keys",
                f"{median(res[f'tomb2-{k}']):,.0f}",
                spread(res[f"tomb2-{k}"]),
                f"1st compact removed {median(res[f'tomb1-{k}']):,.0f} (horizon not yet set); "
                f"2nd: {median(res[f'segs2-{k}']):.0f} segments rewritten in "
                f"{median(res[f'clean2-ms-{k}']):.0f} ms, "
                f"{median(res[f'after2-{k}']):,.0f} records left in them",
            )
    if "table" in only:
        table.section(
            f"2. log.table(topic) of M distinct keys (16 B keys, 100 B values, 1 partition) "
            f"against a dict of the same keys and values; median of {rounds} round{plural}; "
            f"{n_lookups:,} random existing keys per round, each lookup timed alone"
        )
        for m in sizes:
            ms = f"M={m:,}"
            table.row(
                f"2  build (first refresh), {ms}",
                f"{median(res[f'build-{m}']):.3f} s",
                spread(res[f"build-{m}"], ".3f"),
                f"{median(res[f'build-rate-{m}']):,.0f} records/s; dict(zip()) of the "
                f"same objects in memory {median(res[f'dict-build-{m}']):.3f} s "
                f"({median(res[f'build-ratio-{m}']):.0f}x)",
            )

            def pp(name: str, m: int = m) -> str:
                return (f"{median(res[f'lat-{name}-p50-{m}']):,.0f}/"
                        f"{median(res[f'lat-{name}-p99-{m}']):,.0f} ns")

            table.row(
                f"2  table[key] p50/p99, {ms}",
                pp("t"),
                f"p50 {spread(res[f'lat-t-p50-{m}'])}",
                f"timer alone {pp('0')}",
            )
            table.row(
                f"2  dict[key] p50/p99, {ms}",
                pp("d"),
                f"p50 {spread(res[f'lat-d-p50-{m}'])}",
                f"table/dict p50 {median(res[f'lat-ratio-{m}']):.2f}x "
                f"(range {spread(res[f'lat-ratio-{m}'], '.2f')})",
            )
            table.row(
                f"2  memory per live key, table, {ms}",
                f"{median(res[f'mem-t-{m}']):,.0f} B",
                "",
                f"tracemalloc, retained after the build (one build); peak during it "
                f"{median(res[f'mem-t-peak-{m}']):,.0f} B/key",
            )
            table.row(
                f"2  memory per live key, dict, {ms}",
                f"{median(res[f'mem-d-{m}']):,.0f} B",
                "",
                f"tracemalloc, fresh key and value objects; table/dict "
                f"{median(res[f'mem-t-{m}']) / median(res[f'mem-d-{m}']):.2f}x",
            )

    python = sys.executable
    if python.startswith(os.getcwd() + os.sep):
        python = os.path.relpath(python)
    header = [
        "streamlog compaction and table benchmark, "
        + datetime.datetime.now().isoformat(timespec="seconds"),
        f"machine: {machine()}",
        f"streamlog {streamlog.__version__}, {source_at_start}",
        f"command: {' '.join([python, *sys.argv])}",
        f"total time {time.perf_counter() - t_start:.0f}s; load average (1 min) "
        f"{load_at_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end",
    ]
    if args.note:
        header.append(f"note: {args.note}")
    header.append("")
    text = "\n".join(header) + table.render() + "\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as out:
        out.write(text)
    print(f"written to {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
