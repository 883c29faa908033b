"""EventStore benchmarks: conditional vs plain append rate; read(stream) p50 vs log size.

    .venv/bin/python benchmarks/bench_event_store.py [--sizes 10000,1000000] [--huge]
        [--appends N] [--out FILE]

``--huge`` adds a log of 1e7 events (minutes to build). Everything is created under a
temporary directory, removed at the end.

conditional append
    ``store.append(stream, event, expected_revision=<last>)``, one event per call,
    1,000 streams round-robin (the revision check runs under the partition's append
    lock after the per-key index followed the log).
plain append
    ``PartitionLog.append`` of the same one-record batch (what ``Producer.send`` with
    ``linger_ms=0`` ends in, without the producer's thread hand-off): the floor.
read p50
    ``store.read(stream)`` of a random 100-event stream out of a log of N events
    (N/100 streams, each appended in 10 batches of 10, interleaved), 200 reads after
    the index was built (``flush_index``), median latency.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import streamlog
from streamlog.storage._codec import prepare_batch


def conditional_rate(log: streamlog.Log, n: int, *, sync: bool = False) -> float:
    store = log.event_store("cond-sync" if sync else "cond", sync=sync)
    revs: dict[str, int | None] = {}
    t0 = time.perf_counter()
    for i in range(n):
        s = f"s{i % 1000}"
        expected = revs.get(s)
        revs[s] = store.append(s, b"x" * 100,
                               expected_revision=streamlog.NO_STREAM if expected is None
                               else expected)
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def eventsourcing_rates(tmp: str, n: int) -> tuple[float, float] | None:
    """pyeventsourcing's SQLite recorder, the same workload: conditional appends (its
    unique (originator_id, version) constraint) to 1,000 streams, then the p50 of
    reading a 100-event stream. Each insert is a committed SQLite transaction
    (durable), so it compares with streamlog's ``sync=True`` row. None if the
    package is not installed (it is not a dependency)."""
    try:
        from eventsourcing.persistence import StoredEvent
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
    except ImportError:
        return None
    import uuid

    recorder = SQLiteApplicationRecorder(SQLiteDatastore(db_name=os.path.join(tmp, "es.db")))
    recorder.create_table()
    ids = [uuid.uuid4() for _ in range(1000)]
    versions = [0] * 1000
    t0 = time.perf_counter()
    for i in range(n):
        s = i % 1000
        recorder.insert_events([StoredEvent(originator_id=ids[s], originator_version=versions[s],
                                            topic="bench:Event", state=b"x" * 100)])
        versions[s] += 1
    rate = n / (time.perf_counter() - t0)
    reader = uuid.uuid4()
    recorder.insert_events([StoredEvent(originator_id=reader, originator_version=v,
                                        topic="bench:Event", state=b"e" * 100)
                            for v in range(100)])
    samples = []
    for _ in range(200):
        t = time.perf_counter_ns()
        assert len(recorder.select_events(reader)) == 100
        samples.append(time.perf_counter_ns() - t)
    return rate, statistics.median(samples) / 1e6


def plain_rate(log: streamlog.Log, n: int) -> float:
    log.create_topic("plain")
    plog = log.partition("plain", 0)
    t0 = time.perf_counter()
    for i in range(n):
        plog.append(prepare_batch([b"x" * 100], [f"s{i % 1000}".encode()], int(time.time() * 1000)))
    return n / (time.perf_counter() - t0)


def read_p50(log: streamlog.Log, total: int) -> tuple[float, float]:
    topic = f"read{total}"
    store = log.event_store(topic)
    plog = log.partition(topic, 0)
    streams = total // 100
    t0 = time.perf_counter()
    for rnd in range(10):  # 10 rounds of 10 events per stream: streams interleave
        for s in range(streams):
            key = f"stream-{s}".encode()
            plog.append(prepare_batch([b"e" * 100] * 10, [key] * 10, rnd))
    store.flush_index()  # the index follows the log once, then lookups only
    build = time.perf_counter() - t0
    rng = random.Random(1)
    samples = []
    for _ in range(200):
        s = f"stream-{rng.randrange(streams)}"
        t = time.perf_counter_ns()
        events = store.read(s)
        samples.append(time.perf_counter_ns() - t)
        assert len(events) == 100
    store.close()
    return statistics.median(samples) / 1e6, build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--appends", type=int, default=20_000)
    ap.add_argument("--out")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")] + ([10_000_000] if args.huge else [])
    tmp = tempfile.mkdtemp(prefix="bench-es-")
    lines = [f"bench_event_store {datetime.date.today()} python {sys.version.split()[0]} "
             f"cpus {os.cpu_count()}"]
    try:
        with streamlog.open(os.path.join(tmp, "data")) as log:
            plain = plain_rate(log, args.appends)
            cond = conditional_rate(log, args.appends)
            lines.append(f"plain append        {plain:>10,.0f} events/s")
            lines.append(
                f"conditional append  {cond:>10,.0f} events/s  ({cond / plain:.2f}x plain)")
            p50s = []
            for n in sizes:
                p50, build = read_p50(log, n)
                p50s.append(p50)
                lines.append(f"read(100-event stream) p50 at {n:>10,} events: {p50:.3f} ms "
                             f"(log + index built in {build:.1f} s)")
            lines.append(f"read p50 max/min across sizes: {max(p50s) / min(p50s):.2f}x")
            durable = conditional_rate(log, min(args.appends, 3000), sync=True)
            lines.append(f"conditional append, sync=True {durable:>10,.0f} events/s")
        es = eventsourcing_rates(tmp, min(args.appends, 3000))
        if es is None:
            lines.append("eventsourcing (pyeventsourcing) not installed: its SQLite recorder "
                         "was not measured")
        else:
            lines.append(f"pyeventsourcing SQLite recorder: conditional append {es[0]:,.0f} "
                         f"events/s (durable; streamlog sync=True {durable / es[0]:.2f}x), "
                         f"read(100-event stream) p50 {es[1]:.3f} ms "
                         f"(streamlog at the smallest size {p50s[0] / es[1]:.2f}x its time)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(lines)
    print(text)
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   f"event_store-{datetime.date.today()}.txt")
    with open(out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
