"""Transaction benchmarks: transactional throughput against a plain durable producer,
commit latency, and read_committed against read_uncommitted consumption.

Run from the repository root (the full run takes about 70 seconds on 2 cores and
needs about 150 MB of disk under /tmp; everything it creates goes under a
temporary directory that is removed at the end, also on error)::

    .venv/bin/python benchmarks/bench_transactions.py            # full run
    .venv/bin/python benchmarks/bench_transactions.py --quick    # about 20 s

Options: ``--rounds N`` (default 5, 3 with ``--quick``; medians are reported),
``--scale F`` (multiplies the records written by the throughput runs, default
1.0, 0.5 with ``--quick``), ``--commits N`` (measured commits per latency run,
default 500, 150 with ``--quick``, after 20 warm-up transactions),
``--scan-records N`` (size of the log consumed in part 3, default 200,000,
60,000 with ``--quick``), ``--only throughput,latency,scan`` (a subset),
``--dir DIR`` (parent of the temporary directory, default /tmp), ``--out FILE``
(default ``benchmarks/results/transactions-<date>.txt``, ``-quick`` added with
``--quick``), ``--profile WORKLOAD`` (instead of the benchmark: 300 transactions
of ``commit1`` (10 records, one partition), ``commit3`` (10 records over 3
partitions plus ``send_offsets_to_transaction``) or ``txn1000`` (1,000 records,
one partition) under pyinstrument, then the same again with ``os.fsync`` and
``os.fdatasync`` wrapped to count and time the syncs of each step).

Everything goes through the public API: ``streamlog.open``, ``Log.producer`` /
``Log.consumer``, ``Producer.send`` / ``flush`` and the transactional calls,
``Consumer.poll`` / ``position``; ``Log.partition(...).end_offset`` only to check
what was written. Records: 16-byte random key (a fresh one per record, so with 3
partitions the default murmur2 partitioner spreads every transaction over all of
them), 100-byte random value (from a pool of 4,096). Producers use the defaults
(``linger_ms=0``) unless said otherwise. Each round runs every workload, the two
sides of a comparison back to back in an order that alternates between rounds;
a round has its own data directory. Ratios are taken per round, then the median
of those is reported; percentiles are the median of each round's percentile.

1. Throughput. N records per transaction (N = 10, 100, 1,000), topic of 1 and of
   3 partitions, a fresh topic and a fresh ``transactional_id`` per run:
   ``begin_transaction()``, N ``send``\\ s, ``commit_transaction()``, repeated;
   records/s from the first ``begin_transaction`` to the return of the last
   commit (``init_transactions`` is outside the clock). Plain: a producer with
   ``acks="all"`` that calls ``flush()`` after every N sends, the same records.
   Records per run: 4,000 for N = 10, 20,000 for N = 100, 100,000 for N = 1,000
   (times ``--scale``).
2. Commit latency: transactions of 10 records; the time of
   ``commit_transaction()`` alone (p50/p99), and of the whole transaction
   (``begin_transaction`` .. commit returns). (a) one partition; (b) a topic of 3
   partitions, with ``send_offsets_to_transaction`` of 3 input partitions for a
   group whose member (``enable_auto_commit=False``) is subscribed and assigned
   (the time of ``send_offsets_to_transaction`` in the detail). Baseline: a plain
   ``acks="all"`` producer, 10 ``send``\\ s then ``flush()`` (time of ``flush``).
3. Consume a log of M records on one partition, written once before the rounds
   by a transactional producer and a plain ``acks=1`` producer (both
   ``linger_ms=5``) sending from one thread: every 10th record plain, the rest
   in transactions of 1,000 records, one transaction in 9 aborted. So 10 % of
   the records are in aborted transactions, 80 % committed, 10 % plain, and the
   plain batches sit between the batches of the transactions (aborted ones too).
   A fresh consumer (``assign``, ``auto_offset_reset="earliest"``,
   ``poll(timeout_ms=1000)``, default ``max_poll_records``) reads from the start
   to the end of the log; records/s = records returned / time. read_uncommitted
   returns all M, read_committed the 90 % not aborted. The ratio row is
   read_committed / read_uncommitted of records returned per second (the target);
   the detail also gives the ratio of the times to reach the end of the log.
   A read takes well under a second, so each round reads the log in 3 pairs
   (both levels, in alternating order); the figures are medians over all pairs.
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
from collections.abc import Callable

from _common import (  # benchmarks/ is on sys.path when run as a script
    Table,
    source_state,
    status,
    write_report,
)

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition

KEY_SIZE = 16
VALUE_SIZE = 100
VALUE_POOL = 4096
SIZES = (10, 100, 1_000)
RECORDS_FOR = {10: 4_000, 100: 20_000, 1_000: 100_000}
LAT_RECORDS = 10
WARMUP = 20
SCAN_TXN = 1_000
SCAN_REPEATS = 3  # read pairs per round (a read takes well under a second)
TIMEOUT_S = 120.0
HERE = os.path.dirname(os.path.abspath(__file__))

TARGETS = {
    "ratio_1000": 0.7,  # txn / plain acks="all" at 1,000 records per transaction
    "commit_p99_ms": 2.0,
    "scan_ratio": 0.8,  # read_committed / read_uncommitted records/s
}


# --------------------------------------------------------------------------- helpers
def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = ",.0f") -> str:
    return f"{min(xs):{fmt}}-{max(xs):{fmt}}"


def percentile(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    return float(sorted_xs[min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))])


def p50_p99_ms(lat_s: list[float]) -> tuple[float, float]:
    lat = sorted(lat_s)
    return percentile(lat, 0.50) * 1e3, percentile(lat, 0.99) * 1e3


def settle() -> None:
    """Flush dirty pages and collect garbage between measurements."""
    gc.collect()
    os.sync()


class Data:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.values = [self.rng.randbytes(VALUE_SIZE) for _ in range(VALUE_POOL)]

    def keys(self, n: int) -> list[bytes]:
        """Fresh random keys for one run (made before the clock starts)."""
        rb = self.rng.randbytes
        return [rb(KEY_SIZE) for _ in range(n)]


def total_end(log: streamlog.Log, topic: str, parts: int) -> int:
    return sum(log.partition(topic, p).end_offset for p in range(parts))


# --------------------------------------------------------------------------- 1. throughput
def run_txn(
    log: streamlog.Log, topic: str, parts: int, per: int, keys: list[bytes], values: list[bytes]
) -> float:
    """Records/s of transactions of ``per`` records."""
    log.create_topic(topic, parts)
    n, mask = len(keys), VALUE_POOL - 1
    with log.producer(transactional_id=f"tid-{topic}") as producer:
        producer.init_transactions()
        send, begin, commit = producer.send, producer.begin_transaction, producer.commit_transaction
        t0 = time.perf_counter()
        for start in range(0, n, per):
            begin()
            for i in range(start, start + per):
                send(topic, values[i & mask], keys[i])
            commit()
        dt = time.perf_counter() - t0
    end = total_end(log, topic, parts)
    if end < n or end > n + parts * (n // per):
        raise RuntimeError(f"{topic}: end offsets sum to {end}, expected {n} + markers")
    return n / dt


def run_plain(
    log: streamlog.Log, topic: str, parts: int, per: int, keys: list[bytes], values: list[bytes]
) -> float:
    """Records/s of a plain acks="all" producer that flushes every ``per`` records."""
    log.create_topic(topic, parts)
    n, mask = len(keys), VALUE_POOL - 1
    with log.producer(acks="all") as producer:
        send, flush = producer.send, producer.flush
        t0 = time.perf_counter()
        for start in range(0, n, per):
            for i in range(start, start + per):
                send(topic, values[i & mask], keys[i])
            flush()
        dt = time.perf_counter() - t0
    end = total_end(log, topic, parts)
    if end != n:
        raise RuntimeError(f"{topic}: end offsets sum to {end}, expected {n}")
    return n / dt


# --------------------------------------------------------------------------- 2. latency
def lat_txn(
    log: streamlog.Log,
    topic: str,
    parts: int,
    commits: int,
    data: Data,
    group: str | None = None,
) -> dict[str, list[float]]:
    """Transactions of LAT_RECORDS records; seconds of commit, whole txn, send_offsets."""
    log.create_topic(topic, parts)
    total = WARMUP + commits
    keys = data.keys(total * LAT_RECORDS)
    values = data.values
    out: dict[str, list[float]] = {"commit": [], "txn": [], "offsets": []}
    consumer = None
    inputs: list[TopicPartition] = []
    if group is not None:
        src = f"{topic}-in"
        log.create_topic(src, 3)
        inputs = [TopicPartition(src, p) for p in range(3)]
        consumer = log.consumer(
            group_id=group, enable_auto_commit=False, isolation_level="read_committed"
        )
        consumer.subscribe([src])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) < 3:
            consumer.poll(timeout_ms=50)
            if time.monotonic() > deadline:
                raise RuntimeError("the group member was not assigned its 3 partitions")
    clock = time.perf_counter
    try:
        with log.producer(transactional_id=f"tid-{topic}") as producer:
            producer.init_transactions()
            send = producer.send
            k = 0
            for t in range(total):
                t0 = clock()
                producer.begin_transaction()
                for _ in range(LAT_RECORDS):
                    send(topic, values[k & (VALUE_POOL - 1)], keys[k])
                    k += 1
                t1 = clock()
                if consumer is not None:
                    offsets = {tp: OffsetAndMetadata(t + 1, "") for tp in inputs}
                    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                t2 = clock()
                producer.commit_transaction()
                t3 = clock()
                if t >= WARMUP:
                    out["commit"].append(t3 - t2)
                    out["txn"].append(t3 - t0)
                    out["offsets"].append(t2 - t1)
        if consumer is not None:
            got = consumer.committed(inputs[0])
            if got != total:
                raise RuntimeError(f"committed offset {got}, expected {total}")
    finally:
        if consumer is not None:
            consumer.close()
    return out


def lat_plain(log: streamlog.Log, topic: str, commits: int, data: Data) -> list[float]:
    """Seconds of flush() after LAT_RECORDS sends, acks="all", one partition."""
    log.create_topic(topic, 1)
    total = WARMUP + commits
    keys = data.keys(total * LAT_RECORDS)
    values = data.values
    lat: list[float] = []
    clock = time.perf_counter
    with log.producer(acks="all") as producer:
        send, flush = producer.send, producer.flush
        k = 0
        for t in range(total):
            for _ in range(LAT_RECORDS):
                send(topic, values[k & (VALUE_POOL - 1)], keys[k])
                k += 1
            t0 = clock()
            flush()
            if t >= WARMUP:
                lat.append(clock() - t0)
    return lat


# --------------------------------------------------------------------------- 3. scan
def build_scan_log(log: streamlog.Log, topic: str, m: int, data: Data) -> dict[str, int]:
    """The mixed log of part 3; returns what each isolation level must return."""
    log.create_topic(topic, 1)
    keys = data.keys(m)
    values, mask = data.values, VALUE_POOL - 1
    counts = {"plain": 0, "committed": 0, "aborted": 0, "txns": 0, "aborted_txns": 0}
    with (
        log.producer(acks=1, linger_ms=5) as plain,
        log.producer(transactional_id="scan-writer", linger_ms=5) as txn,
    ):
        txn.init_transactions()
        in_txn = 0

        def end_txn() -> None:
            nonlocal in_txn
            if counts["txns"] % 9 == 4:
                txn.abort_transaction()
                counts["aborted"] += in_txn
                counts["aborted_txns"] += 1
            else:
                txn.commit_transaction()
                counts["committed"] += in_txn
            counts["txns"] += 1
            in_txn = 0

        for i in range(m):
            if i % 10 == 9:
                plain.send(topic, values[i & mask], keys[i])
                counts["plain"] += 1
                continue
            if in_txn == 0:
                txn.begin_transaction()
            txn.send(topic, values[i & mask], keys[i])
            in_txn += 1
            if in_txn == SCAN_TXN:
                end_txn()
        if in_txn:
            end_txn()
        plain.flush()
    counts["end"] = log.partition(topic, 0).end_offset
    return counts


def scan(log: streamlog.Log, topic: str, isolation: str, expected: int, end: int) -> float:
    """Seconds to read the log from the start to its end."""
    tp = TopicPartition(topic, 0)
    consumer = log.consumer(auto_offset_reset="earliest", isolation_level=isolation)
    consumer.assign([tp])
    got = 0
    try:
        poll = consumer.poll
        deadline = time.monotonic() + TIMEOUT_S
        t0 = time.perf_counter()
        while got < expected:
            for records in poll(timeout_ms=1000).values():
                got += len(records)
            if time.monotonic() > deadline:
                break
        dt = time.perf_counter() - t0
        pos = consumer.position(tp)
    finally:
        consumer.close()
    if got != expected:
        raise RuntimeError(f"{isolation}: got {got} records, expected {expected}")
    if isolation == "read_uncommitted" and pos < end - 1:
        raise RuntimeError(f"{isolation}: position {pos}, log end {end}")
    return dt


# --------------------------------------------------------------------------- report
# --------------------------------------------------------------------------- profile
def profile(workload: str, base: str, txns: int) -> None:
    """--profile: ``txns`` transactions of one workload under pyinstrument, then the
    same with the syncs counted and timed per step of the transaction."""
    from pyinstrument import Profiler  # only for --profile

    data = Data(1)
    per = 1_000 if workload == "txn1000" else LAT_RECORDS
    parts = 3 if workload == "commit3" else 1

    def one_run(log: streamlog.Log, name: str, hook: Callable[[str], None]) -> None:
        log.create_topic(name, parts)
        keys = data.keys(txns * per)
        consumer = None
        inputs: list[TopicPartition] = []
        if workload == "commit3":
            log.create_topic(f"{name}-in", 3)
            inputs = [TopicPartition(f"{name}-in", p) for p in range(3)]
            consumer = log.consumer(group_id=f"g-{name}", enable_auto_commit=False)
            consumer.subscribe([f"{name}-in"])
            while len(consumer.assignment()) < 3:
                consumer.poll(timeout_ms=50)
        with log.producer(transactional_id=f"tid-{name}") as producer:
            producer.init_transactions()
            k = 0
            for t in range(txns):
                hook("begin")
                producer.begin_transaction()
                hook("send")
                for _ in range(per):
                    producer.send(name, data.values[k & (VALUE_POOL - 1)], keys[k])
                    k += 1
                if consumer is not None:
                    hook("send_offsets")
                    offsets = {tp: OffsetAndMetadata(t + 1, "") for tp in inputs}
                    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                hook("commit")
                producer.commit_transaction()
                hook("")
        if consumer is not None:
            consumer.close()

    with streamlog.open(os.path.join(base, "profile")) as log:
        one_run(log, "warm", lambda _s: None)
        prof = Profiler(interval=0.0001)
        prof.start()
        one_run(log, "prof", lambda _s: None)
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=False))

        # syncs per step: wrap os.fsync / os.fdatasync (the fs facade looks them up per call)
        step = [""]
        stats: dict[tuple[str, str], list[float]] = {}
        step_time: dict[str, float] = {}
        mark = [time.perf_counter()]

        def hook(s: str) -> None:
            now = time.perf_counter()
            step_time[step[0]] = step_time.get(step[0], 0.0) + now - mark[0]
            mark[0] = now
            step[0] = s

        real_fsync, real_fdatasync = os.fsync, os.fdatasync

        def wrap(name: str, fn: Callable[[int], None]) -> Callable[[int], None]:
            def wrapped(fd: int) -> None:
                t0 = time.perf_counter()
                fn(fd)
                stats.setdefault((step[0], name), []).append(time.perf_counter() - t0)

            return wrapped

        os.fsync = wrap("fsync", real_fsync)  # type: ignore[assignment]
        os.fdatasync = wrap("fdatasync", real_fdatasync)  # type: ignore[assignment]
        try:
            one_run(log, "sync", hook)
        finally:
            os.fsync, os.fdatasync = real_fsync, real_fdatasync
    print(f"\nper transaction ({txns} transactions of {per} records, {parts} partition(s)):")
    for s in ("begin", "send", "send_offsets", "commit"):
        if s not in step_time:
            continue
        line = f"  {s:13s} {step_time[s] / txns * 1e6:8.0f} us"
        for (st, name), xs in sorted(stats.items()):
            if st == s:
                line += (
                    f"; {len(xs) / txns:.1f} {name} ({sum(xs) / txns * 1e6:.0f} us, "
                    f"median {median(xs) * 1e6:.0f} us each)"
                )
        print(line)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small fast run (about 20 s)")
    ap.add_argument("--rounds", type=int, help="rounds (default 5, 3 with --quick)")
    ap.add_argument("--scale", type=float, help="records of the throughput runs x F")
    ap.add_argument("--commits", type=int, help="measured commits per latency run")
    ap.add_argument("--scan-records", type=int, help="records of the consumed log")
    ap.add_argument("--only", help="comma-separated subset of throughput,latency,scan")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", choices=["commit1", "commit3", "txn1000"], help="profile one")
    args = ap.parse_args(argv)

    q = args.quick
    rounds = args.rounds or (3 if q else 5)
    scale = args.scale or (0.5 if q else 1.0)
    commits = args.commits or (150 if q else 500)
    scan_m = args.scan_records or (60_000 if q else 200_000)
    parts_all = ["throughput", "latency", "scan"]
    only = set(args.only.split(",")) if args.only else set(parts_all)
    if only - set(parts_all):
        ap.error(f"--only takes {','.join(parts_all)}")
    today = datetime.date.today().isoformat()
    out_path = args.out or os.path.join(
        HERE, "results", f"transactions-{today}{'-quick' if q else ''}.txt"
    )

    base = tempfile.mkdtemp(prefix="streamlog-bench-txn-", dir=args.dir)
    if args.profile:
        try:
            profile(args.profile, base, 300)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return 0

    source_at_start = source_state(os.path.dirname(HERE))
    load_at_start = os.getloadavg()
    t_start = time.perf_counter()

    def note(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    res: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        res.setdefault(key, []).append(value)

    data = Data(args.seed)
    counts: dict[str, int] = {}
    try:
        scan_log = None
        if "scan" in only:
            scan_log = streamlog.open(os.path.join(base, "scan"))
            t0 = time.perf_counter()
            counts = build_scan_log(scan_log, "mixed", scan_m, data)
            note(f"scan log built in {time.perf_counter() - t0:.1f}s: {counts}")
        try:
            for r in range(rounds):
                flip = r % 2 == 1
                log = streamlog.open(os.path.join(base, f"round{r}"))
                try:
                    if "throughput" in only:
                        for parts in (1, 3):
                            for per in SIZES:
                                n = max(per, int(RECORDS_FOR[per] * scale) // per * per)
                                keys = data.keys(n)
                                key = f"{per}x{parts}"
                                sides: list[tuple[str, Callable[..., float]]] = [
                                    ("txn", run_txn), ("plain", run_plain)
                                ]
                                for side, fn in reversed(sides) if flip else sides:
                                    settle()
                                    add(f"{side}-{key}", fn(
                                        log, f"{side}-{key}", parts, per, keys, data.values
                                    ))
                                add(f"ratio-{key}", res[f"txn-{key}"][-1] / res[f"plain-{key}"][-1])
                        note(f"round {r + 1}: throughput done; ratios " + ", ".join(
                            f"{per}x{p} {res[f'ratio-{per}x{p}'][-1]:.2f}"
                            for p in (1, 3) for per in SIZES
                        ))
                    if "latency" in only:
                        order = ["plain", "c1", "c3"]
                        for w in reversed(order) if flip else order:
                            settle()
                            if w == "plain":
                                p50, p99 = p50_p99_ms(lat_plain(log, "lat-plain", commits, data))
                                add("lat-plain-p50", p50)
                                add("lat-plain-p99", p99)
                                continue
                            got = lat_txn(
                                log, f"lat-{w}", 1 if w == "c1" else 3, commits, data,
                                group=None if w == "c1" else f"g{r}",
                            )
                            for part in ("commit", "txn", "offsets"):
                                p50, p99 = p50_p99_ms(got[part])
                                add(f"lat-{w}-{part}-p50", p50)
                                add(f"lat-{w}-{part}-p99", p99)
                        note(
                            f"round {r + 1}: commit p50/p99 ms: 1 partition "
                            f"{res['lat-c1-commit-p50'][-1]:.2f}/"
                            f"{res['lat-c1-commit-p99'][-1]:.2f}, "
                            f"3 + offsets {res['lat-c3-commit-p50'][-1]:.2f}/"
                            f"{res['lat-c3-commit-p99'][-1]:.2f}"
                        )
                finally:
                    log.close()
                    shutil.rmtree(os.path.join(base, f"round{r}"), ignore_errors=True)
                if scan_log is not None:
                    end = counts["end"]
                    all_records = counts["plain"] + counts["committed"] + counts["aborted"]
                    visible = counts["plain"] + counts["committed"]
                    order = ["read_uncommitted", "read_committed"]
                    for rep in range(SCAN_REPEATS):
                        for iso in reversed(order) if (r + rep) % 2 else order:
                            gc.collect()
                            n_exp = all_records if iso == "read_uncommitted" else visible
                            dt = scan(scan_log, "mixed", iso, n_exp, end)
                            add(f"scan-{iso}", n_exp / dt)
                            add(f"scan-{iso}-s", dt)
                        add("scan-ratio", res["scan-read_committed"][-1]
                            / res["scan-read_uncommitted"][-1])
                        add("scan-time-ratio", res["scan-read_uncommitted-s"][-1]
                            / res["scan-read_committed-s"][-1])
                    note(f"round {r + 1}: scan ratio {res['scan-ratio'][-1]:.2f}")
        finally:
            if scan_log is not None:
                scan_log.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # ---- report
    table = Table()
    plural = "s" if rounds != 1 else ""
    if "txn-10x1" in res:
        table.section(
            f"1. Throughput: transactions of N records against acks=\"all\" + flush() every N "
            f"(records/s; median of {rounds} round{plural}; ratio per round)"
        )
        for parts in (1, 3):
            for per in SIZES:
                key = f"{per}x{parts}"
                n = max(per, int(RECORDS_FOR[per] * scale) // per * per)
                txn, plain, ratio = res[f"txn-{key}"], res[f"plain-{key}"], res[f"ratio-{key}"]
                lbl = f"N={per:,}, {parts} partition{'s' if parts > 1 else ''}"
                table.row(
                    f"1  txn     {lbl}",
                    f"{median(txn):,.0f}/s",
                    spread(txn),
                    f"{n:,} records; {median(txn) / per:,.0f} txn/s, "
                    f"{per / median(txn) * 1e3:.2f} ms each",
                )
                table.row(
                    f"1  plain   {lbl}",
                    f"{median(plain):,.0f}/s",
                    spread(plain),
                    f"{per / median(plain) * 1e3:.2f} ms per N records",
                )
                big = per == 1_000
                table.row(
                    f"1  ratio   {lbl}",
                    f"{median(ratio):.2f}x",
                    spread(ratio, ".2f"),
                    f"txn costs {(per / median(txn) - per / median(plain)) * 1e3:+.2f} ms "
                    "per N records",
                    f">= {TARGETS['ratio_1000']}x" if big else "report",
                    status(median(ratio) >= TARGETS["ratio_1000"]) if big else "",
                )
    if "lat-c1-commit-p50" in res:
        table.section(
            f"2. Commit latency, transactions of {LAT_RECORDS} records ({commits:,} per run "
            f"after {WARMUP} warm-up; p50/p99 ms, median of {rounds} round{plural})"
        )
        lim = TARGETS["commit_p99_ms"]

        def ms(key: str) -> str:
            return f"{median(res[key + '-p50']):.2f}/{median(res[key + '-p99']):.2f}"

        for w, lbl in (
            ("c1", "2a commit_transaction(), 1 partition"),
            ("c3", "2b commit_transaction(), 3 partitions + send_offsets"),
        ):
            p99s = res[f"lat-{w}-commit-p99"]
            detail = f"whole transaction {ms(f'lat-{w}-txn')} ms"
            if w == "c3":
                detail += f"; send_offsets_to_transaction {ms('lat-c3-offsets')} ms"
            table.row(
                lbl,
                f"{ms(f'lat-{w}-commit')} ms",
                f"p99 {spread(p99s, '.2f')}",
                detail,
                f"p99 <= {lim:.0f} ms",
                status(median(p99s) <= lim),
            )
        table.row(
            "2c baseline: plain acks=\"all\", flush() of 10 sends, 1 partition",
            f"{ms('lat-plain')} ms",
            f"p99 {spread(res['lat-plain-p99'], '.2f')}",
        )
    if "scan-ratio" in res:
        m_all = counts["plain"] + counts["committed"] + counts["aborted"]
        table.section(
            f"3. Consume {m_all:,} records from the start (1 partition; {counts['aborted']:,} "
            f"in {counts['aborted_txns']} aborted transactions (of {counts['txns']}), "
            f"{counts['committed']:,} committed, {counts['plain']:,} plain; log end "
            f"{counts['end']:,}; records returned/s, median of {SCAN_REPEATS} "
            f"pairs x {rounds} round{plural})"
        )
        for iso in ("read_uncommitted", "read_committed"):
            xs = res[f"scan-{iso}"]
            table.row(
                f"3  {iso}",
                f"{median(xs):,.0f}/s",
                spread(xs),
                f"{median(res[f'scan-{iso}-s']):.3f} s to the end of the log",
            )
        ratio = res["scan-ratio"]
        table.row(
            "3  ratio read_committed / read_uncommitted",
            f"{median(ratio):.2f}x",
            spread(ratio, ".2f"),
            f"time to the end of the log: {median(res['scan-time-ratio']):.2f}x",
            f">= {TARGETS['scan_ratio']}x",
            status(median(ratio) >= TARGETS["scan_ratio"]),
        )

    write_report(
        "streamlog transactions benchmark", table, source_at_start, t_start, load_at_start, out_path
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
