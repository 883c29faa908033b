"""Latency of the asyncio API (``streamlog.aio``) against the sync one, side by side, and
against aiokafka on librdkafka's mock cluster where it runs.

Run from the repository root (about a minute and a half on 2 cores)::

    .venv/bin/python benchmarks/bench_aio.py            # full run
    .venv/bin/python benchmarks/bench_aio.py --quick    # about 30 s

Options: ``--latency-records N`` (measured records per run, default 2,000, 500 with
``--quick``; 200 warm-up records are dropped first), ``--rounds N`` (default 3),
``--dir DIR`` (parent of the temporary directory, default /tmp), ``--out FILE``
(default ``benchmarks/results/aio-<date>.txt``, ``-quick`` added with ``--quick``).

Every run sends one record per millisecond to a one-partition topic and measures,
per record, the receiver's clock when it has the record minus the clock read just
before the send (carried in the record's value): ``time.perf_counter_ns`` within a
process, ``time.monotonic_ns`` (one clock for the machine) across processes. Figures
are medians over the rounds of each round's p50 and p99 (range: the p50s of the
rounds). Workloads, each round in this order:

sync, one process
    A producer thread (``send``, ``acks=1``, ``linger_ms=0``: appended inline) paced
    with ``time.sleep`` and, for the last 0.3 ms, ``time.sleep(0)`` (as
    ``bench_table.py``), and a consumer thread blocked in ``poll(timeout_ms=1000)``.
aio, one process
    One event loop: a task sending with ``AIOProducer.send`` (paced with
    ``asyncio.sleep``), a task waiting in ``AIOConsumer.getmany(timeout_ms=1000)``;
    the append wakes the consumer through the loop, with no system call.
aio consumer, sync producer thread
    The consumer on a loop, the producer a plain thread paced as above: the append
    wakes the loop with ``call_soon_threadsafe``.
sync, across processes
    The producer here, the consumer in a spawned child blocked in ``poll``; the
    doorbell wakes it.
aio, across processes
    ``AIOProducer`` on a loop here, ``AIOConsumer`` on a loop in the child; the
    doorbell's socket is registered with the child's loop (``add_reader``). The parent's
    loop runs nothing but the producer, which paces as the sync one (a blocking wait:
    ``asyncio.sleep`` lasts whole milliseconds, and a producer woken late sends from a
    cold thread), so the two rows differ by the aio ``send`` and the consumer.
aiokafka (mock cluster), one process
    aiokafka's ``AIOKafkaProducer.send`` and ``AIOKafkaConsumer.getmany`` on one loop,
    talking over loopback TCP to librdkafka's mock broker (``test.mock.num.brokers=1``,
    hosted by confluent-kafka in this process, ``benchmarks/_peer_confluent.py``):
    ``linger_ms=0``, ``fetch_max_wait_ms=0`` (the mock answers an empty fetch only after
    the whole wait). Only if ``aiokafka`` and ``confluent_kafka`` import (neither is a
    dependency; e.g. ``pip install --target /tmp/aio-optional aiokafka confluent-kafka``
    and ``PYTHONPATH=/tmp/aio-optional``).

Target (issue 17): each aio workload within 1.5x of the sync workload of the same
kind (p50 and p99).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import multiprocessing
import os
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import Table, source_state, status, write_report  # benchmarks/ on sys.path

import streamlog
from streamlog import TopicPartition
from streamlog.aio import AIOConsumer, AIOProducer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERVAL_NS = 1_000_000  # one record per ms
WARMUP = 200
VALUE_SIZE = 100
STAMP = struct.Struct("<qq")  # sequence number, send time (ns)
PAD = bytes(VALUE_SIZE - STAMP.size)
TIMEOUT_S = 120.0
TARGET = 1.5

try:  # optional peer, not a dependency
    import aiokafka
except ImportError:
    aiokafka = None


# --------------------------------------------------------------------------- helpers
def percentile(sorted_xs: list[int], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    return float(sorted_xs[min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))])


def stats_us(lat_ns: list[int]) -> tuple[float, float, float]:
    lat = sorted(lat_ns)
    return (
        percentile(lat, 0.50) / 1e3,
        percentile(lat, 0.99) / 1e3,
        percentile(lat, 0.999) / 1e3,
    )


def pace(clock: Callable[[], int], nxt: int) -> None:
    """Wait until ``clock() >= nxt``: sleep, then ``sleep(0)`` for the last 0.3 ms."""
    left = nxt - clock()
    if left > 300_000:
        time.sleep((left - 300_000) / 1e9)
    while clock() < nxt:
        time.sleep(0)


async def apace(clock: Callable[[], int], nxt: int) -> None:
    """The same on a loop: ``asyncio.sleep`` (1 ms resolution), then ``asyncio.sleep(0)``
    (which yields to the loop's other tasks) for the last 0.3 ms."""
    left = nxt - clock()
    if left > 300_000:
        await asyncio.sleep((left - 300_000) / 1e9)
    while clock() < nxt:
        await asyncio.sleep(0)


def collect(
    lat: list[int], records: Any, t: int, warmup: int
) -> int:  # records: iterable of values
    n = 0
    for value in records:
        seq, ts = STAMP.unpack_from(value)
        if seq >= warmup:
            lat.append(t - ts)
        n += 1
    return n


class Run:
    """One round's data directory and sizes."""

    def __init__(self, base: str, total: int, warmup: int) -> None:
        self.base = base
        self.total = total
        self.warmup = warmup
        self.topics = 0

    def topic(self, log: streamlog.Log) -> str:
        self.topics += 1
        name = f"lat-{self.topics}"
        log.create_topic(name, 1)
        return name


# --------------------------------------------------------------------------- one process
def sync_one_process(run: Run, log: streamlog.Log) -> list[int]:
    topic = run.topic(log)
    tp = TopicPartition(topic, 0)
    producer = log.producer(acks=1, linger_ms=0)
    consumer = log.consumer(auto_offset_reset="latest")
    consumer.assign([tp])
    consumer.position(tp)
    lat: list[int] = []
    failure: list[BaseException] = []
    clock = time.perf_counter_ns

    def consume() -> None:
        try:
            seen = 0
            deadline = time.monotonic() + TIMEOUT_S
            while seen < run.total and time.monotonic() < deadline:
                got = consumer.poll(timeout_ms=1000)
                t = clock()
                for records in got.values():
                    seen += collect(lat, (r.value for r in records), t, run.warmup)
        except BaseException as exc:
            failure.append(exc)

    tc = threading.Thread(target=consume)
    tc.start()
    time.sleep(0.05)
    try:
        nxt = clock()
        for i in range(run.total):
            pace(clock, nxt)
            producer.send(topic, STAMP.pack(i, clock()) + PAD)
            nxt += INTERVAL_NS
        tc.join(TIMEOUT_S)
    finally:
        producer.close()
        consumer.close()
    if failure:
        raise failure[0]
    return lat


async def _aio_consume(c: AIOConsumer, run: Run, clock: Callable[[], int], lat: list[int]) -> None:
    seen = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while seen < run.total and loop.time() < deadline:
        got = await c.getmany(timeout_ms=1000)
        t = clock()
        for records in got.values():
            seen += collect(lat, (r.value for r in records), t, run.warmup)


def aio_one_process(run: Run, log: streamlog.Log) -> list[int]:
    topic = run.topic(log)
    lat: list[int] = []
    clock = time.perf_counter_ns

    async def main() -> None:
        async with AIOProducer(log, acks=1, linger_ms=0) as p, AIOConsumer(log) as c:
            c.assign([TopicPartition(topic, 0)])
            await c.getmany()  # (the position pinned at the end)
            consumer = asyncio.create_task(_aio_consume(c, run, clock, lat))
            await asyncio.sleep(0.05)
            nxt = clock()
            for i in range(run.total):
                await apace(clock, nxt)
                await p.send(topic, STAMP.pack(i, clock()) + PAD)
                nxt += INTERVAL_NS
            await asyncio.wait_for(consumer, TIMEOUT_S)

    asyncio.run(main())
    return lat


def aio_consumer_thread_producer(run: Run, log: streamlog.Log) -> list[int]:
    topic = run.topic(log)
    lat: list[int] = []
    clock = time.perf_counter_ns
    producer = log.producer(acks=1, linger_ms=0)

    def produce() -> None:
        nxt = clock()
        for i in range(run.total):
            pace(clock, nxt)
            producer.send(topic, STAMP.pack(i, clock()) + PAD)
            nxt += INTERVAL_NS

    async def main() -> None:
        async with AIOConsumer(log) as c:
            c.assign([TopicPartition(topic, 0)])
            await c.getmany()
            consumer = asyncio.create_task(_aio_consume(c, run, clock, lat))
            await asyncio.sleep(0.05)
            t = threading.Thread(target=produce)
            t.start()
            await asyncio.wait_for(consumer, TIMEOUT_S)
            t.join()

    try:
        asyncio.run(main())
    finally:
        producer.close()
    return lat


# --------------------------------------------------------------------------- processes
def child(path: str, topic: str, total: int, warmup: int, use_aio: bool, conn: Any) -> None:
    """The consumer process (spawn): sends ("ready", None), then ("done", latencies)."""
    try:
        clock = time.monotonic_ns
        lat: list[int] = []
        tp = TopicPartition(topic, 0)
        with streamlog.open(path) as log:
            if use_aio:

                async def main() -> None:
                    async with AIOConsumer(log) as c:
                        c.assign([tp])
                        await c.getmany(timeout_ms=10)  # (pinned; the bell armed)
                        conn.send(("ready", None))
                        seen = 0
                        deadline = time.monotonic() + TIMEOUT_S
                        while seen < total and time.monotonic() < deadline:
                            got = await c.getmany(timeout_ms=1000)
                            t = clock()
                            for records in got.values():
                                seen += collect(lat, (r.value for r in records), t, warmup)

                asyncio.run(main())
            else:
                c = log.consumer(auto_offset_reset="latest")
                c.assign([tp])
                c.poll(timeout_ms=10)
                conn.send(("ready", None))
                seen = 0
                deadline = time.monotonic() + TIMEOUT_S
                while seen < total and time.monotonic() < deadline:
                    got = c.poll(timeout_ms=1000)
                    t = clock()
                    for records in got.values():
                        seen += collect(lat, (r.value for r in records), t, warmup)
                c.close()
        conn.send(("done", lat))
    except BaseException as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def _across(run: Run, log: streamlog.Log, use_aio: bool, write: Callable[[str], None]) -> list[int]:
    topic = run.topic(log)
    ctx = multiprocessing.get_context("spawn")
    parent, child_end = ctx.Pipe()
    proc = ctx.Process(
        target=child,
        args=(log.path, topic, run.total, run.warmup, use_aio, child_end),
        daemon=True,
    )
    proc.start()
    child_end.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("child did not start within 60 s")
        tag, info = parent.recv()
        if tag != "ready":
            raise RuntimeError(f"child failed: {info}")
        write(topic)
        if not parent.poll(TIMEOUT_S):
            raise RuntimeError("child did not finish")
        tag, info = parent.recv()
        if tag != "done":
            raise RuntimeError(f"child failed: {info}")
        proc.join(30)
        return info  # type: ignore[no-any-return]
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()


def sync_across(run: Run, log: streamlog.Log) -> list[int]:
    def write(topic: str) -> None:
        clock = time.monotonic_ns
        with log.producer(acks=1, linger_ms=0) as p:
            nxt = clock()
            for i in range(run.total):
                pace(clock, nxt)
                p.send(topic, STAMP.pack(i, clock()) + PAD)
                nxt += INTERVAL_NS

    return _across(run, log, False, write)


def aio_across(run: Run, log: streamlog.Log) -> list[int]:
    def write(topic: str) -> None:
        clock = time.monotonic_ns

        async def main() -> None:
            async with AIOProducer(log, acks=1, linger_ms=0) as p:
                nxt = clock()
                for i in range(run.total):
                    # this loop runs nothing else: pace as the sync producer does (a
                    # blocking wait), so that both sides of the comparison send from an
                    # equally warm thread; only the consumer process differs (and send)
                    pace(clock, nxt)
                    await p.send(topic, STAMP.pack(i, clock()) + PAD)
                    nxt += INTERVAL_NS

        asyncio.run(main())

    return _across(run, log, True, write)


# --------------------------------------------------------------------------- aiokafka
def load_aiokafka() -> tuple[Any, str]:
    """(the _peer_confluent module, or None, and why not / the versions)."""
    if aiokafka is None:
        return None, "aiokafka not installed"
    try:
        import _peer_confluent as peer
    except Exception as exc:
        return None, f"benchmarks/_peer_confluent.py does not import: {exc!r}"
    why = peer.unavailable_reason()
    if why is not None:
        return None, f"{why} (confluent_kafka hosts the mock cluster)"
    v = peer.versions()
    return peer, (
        f"aiokafka {aiokafka.__version__}, mock cluster of librdkafka {v.get('librdkafka')} "
        f"(confluent-kafka {v.get('confluent_kafka')})"
    )


def aiokafka_one_process(run: Run, mc: Any) -> list[int]:
    run.topics += 1
    topic = f"aiokafka-lat-{run.topics}"
    mc.ensure_topic(topic)
    lat: list[int] = []
    clock = time.perf_counter_ns
    tp = aiokafka.TopicPartition(topic, 0)

    async def main() -> None:
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=mc.bootstrap, acks=1, linger_ms=0)
        c = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=mc.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=0,
        )
        await p.start()
        await c.start()
        try:
            c.assign([tp])
            await c.seek_to_end(tp)
            await c.position(tp)
            # a sentinel: the consumer is fetching before the clock starts
            await p.send_and_wait(topic, STAMP.pack(-1, 0) + PAD, partition=0)
            await asyncio.wait_for(c.getone(), 30)
            seen = 0

            async def consume() -> None:
                nonlocal seen
                loop = asyncio.get_running_loop()
                deadline = loop.time() + TIMEOUT_S
                while seen < run.total and loop.time() < deadline:
                    got = await c.getmany(timeout_ms=1000)
                    t = clock()
                    for records in got.values():
                        seen += collect(lat, (r.value for r in records), t, run.warmup)

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.05)
            nxt = clock()
            for i in range(run.total):
                await apace(clock, nxt)
                await p.send(topic, STAMP.pack(i, clock()) + PAD, partition=0)
                nxt += INTERVAL_NS
            await asyncio.wait_for(task, TIMEOUT_S)
        finally:
            await c.stop()
            await p.stop()

    asyncio.run(main())
    return lat


# --------------------------------------------------------------------------- the table
WORKLOADS: list[tuple[str, str, str]] = [
    # key, section, label
    ("sync1", "one process", "sync: producer thread, consumer thread in poll()"),
    ("aio1", "one process", "aio: AIOProducer task, AIOConsumer task, one loop"),
    ("aio1t", "one process", "aio: AIOConsumer on a loop, sync producer thread"),
    ("aiokafka1", "one process", "aiokafka on librdkafka's mock cluster, one loop"),
    ("syncx", "across processes", "sync: producer here, consumer process in poll()"),
    ("aiox", "across processes", "aio: AIOProducer here, AIOConsumer process"),
]
BASELINE = {"aio1": "sync1", "aio1t": "sync1", "aiokafka1": "sync1", "aiox": "syncx"}
TARGETED = {"aio1", "aiox"}  # the target: all-aio against all-sync, each kind


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="short run (about 30 s)")
    ap.add_argument("--latency-records", type=int, help="measured records per run")
    ap.add_argument("--rounds", type=int, help="rounds (default 3)")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file (default benchmarks/results/aio-<date>.txt)")
    args = ap.parse_args(argv)
    n = args.latency_records or (500 if args.quick else 2_000)
    rounds = args.rounds or 3
    today = datetime.date.today().isoformat()
    out = args.out or os.path.join(
        REPO, "benchmarks", "results", f"aio-{today}{'-quick' if args.quick else ''}.txt"
    )
    t_start = time.perf_counter()
    load = os.getloadavg()
    peer, peer_info = load_aiokafka()
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k, _s, _l in WORKLOADS}
    errors: list[str] = []
    base = tempfile.mkdtemp(prefix="streamlog-bench-aio-", dir=args.dir)
    mc = None
    try:
        if peer is not None:
            try:
                mc = peer.MockCluster()
            except Exception as exc:
                peer, peer_info = None, f"mock cluster failed: {exc!r}"
        for rnd in range(rounds):
            path = os.path.join(base, f"round-{rnd}")
            run = Run(base, WARMUP + n, WARMUP)
            with streamlog.open(path) as log:
                measures: dict[str, Callable[[], list[int]]] = {
                    "sync1": lambda: sync_one_process(run, log),
                    "aio1": lambda: aio_one_process(run, log),
                    "aio1t": lambda: aio_consumer_thread_producer(run, log),
                    "syncx": lambda: sync_across(run, log),
                    "aiox": lambda: aio_across(run, log),
                }
                if mc is not None:
                    measures["aiokafka1"] = lambda: aiokafka_one_process(run, mc)
                for key, _section, label in WORKLOADS:
                    fn = measures.get(key)
                    if fn is None:
                        continue
                    gc.collect()
                    t0 = time.monotonic()
                    try:
                        lat = fn()
                        if len(lat) != n:
                            raise RuntimeError(f"got {len(lat)} of {n} measured records")
                        results[key].append(stats_us(lat))
                    except Exception as exc:
                        errors.append(f"round {rnd + 1} {key}: {exc!r}")
                    print(
                        f"  round {rnd + 1} {key:<10} {time.monotonic() - t0:5.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            shutil.rmtree(path, ignore_errors=True)
    finally:
        if mc is not None:
            mc.close()
        shutil.rmtree(base, ignore_errors=True)

    table = Table("latency send -> receive, one record per ms (us)")
    table.HEAD = ("workload", "p50 / p99 us", "p50 range", "detail", "target", "status")
    medians: dict[str, tuple[float, float]] = {}
    section = ""
    for key, sec, label in WORKLOADS:
        if sec != section:
            section = sec
            table.section(sec)
        xs = results[key]
        if key == "aiokafka1" and peer is None:
            table.row(f"  {label}", "skipped", "", peer_info)
            continue
        if not xs:
            table.row(f"  {label}", "error")
            continue
        p50 = statistics.median(x[0] for x in xs)
        p99 = statistics.median(x[1] for x in xs)
        p999 = statistics.median(x[2] for x in xs)
        medians[key] = (p50, p99)
        lo, hi = min(x[0] for x in xs), max(x[0] for x in xs)
        detail = f"p99.9 {p999:,.0f}"
        target = st = ""
        base_key = BASELINE.get(key)
        if base_key in medians:
            b50, b99 = medians[base_key]
            r50, r99 = p50 / b50, p99 / b99
            detail += f"; vs sync {r50:.2f}x / {r99:.2f}x"
            if key in TARGETED:
                target = f"<= {TARGET}x sync"
                st = status(r50 <= TARGET and r99 <= TARGET)
        table.row(
            f"  {label}", f"{p50:,.0f} / {p99:,.0f}", f"{lo:,.0f}-{hi:,.0f}", detail, target, st
        )
    title = (
        f"streamlog.aio latency vs the sync API ({n:,} records after {WARMUP} warm-up "
        f"per run, medians of {rounds} round(s)); aiokafka: {peer_info}"
        + (f"; PYTHONPATH={os.environ['PYTHONPATH']}" if os.environ.get("PYTHONPATH") else "")
    )
    write_report(title, table, source_state(REPO), t_start, load, out)
    if errors:
        print("errors:\n  " + "\n  ".join(errors), file=sys.stderr)
        with open(out, "a") as f:
            f.write("errors:\n  " + "\n  ".join(errors) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
