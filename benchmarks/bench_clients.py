"""Client benchmarks: Producer and Consumer throughput and end-to-end latency, with
confluent-kafka (against librdkafka's mock cluster) measured in the same run.

Run from the repository root (the full run takes about 3 minutes on 2 cores, 5
on a busy machine, and needs about 300 MB of disk under /tmp; everything it
creates is removed at the end, also on error)::

    .venv/bin/python benchmarks/bench_clients.py

A small, fast run (under 30 seconds)::

    .venv/bin/python benchmarks/bench_clients.py --quick

Options: ``--records N`` (records per throughput run and backlog size, default
1,000,000), ``--latency-records N`` (measured records per latency run, default
20,000, after ``--warmup`` records, default 2,000), ``--runs N`` (rounds,
default 3; medians are reported), ``--no-peer`` (skip confluent-kafka),
``--dir DIR`` (parent of the temporary directory, default /tmp), ``--out FILE``
(default ``benchmarks/results/clients-<date>.txt``, ``-quick`` added with
``--quick``), ``--profile WORKLOAD``
(instead of the benchmark, one run of one workload: ``a-unique``, ``a-pool``,
``b`` or ``c`` under pyinstrument, with the producer's sender thread under
cProfile; ``d`` or ``e`` traced by stage: send -> the sender starts writing ->
the write returns -> the consumer's poll returns the record; ``--records`` and
``--latency-records`` set the size).

Records: 16-byte random key, 100-byte random value (values cycle through a pool
of 4,096; no compression, so content does not matter), one topic with one
partition, a fresh topic per run. Each round runs, in an order that alternates
between rounds (ours first, then the peer; then the peer first):

a. ``producer.send(topic, value, key)`` per record (no explicit partition: the
   murmur2 partitioner runs), ``acks=1``, then ``flush()``; records/s from the
   first ``send`` to the return of ``flush``. Two key patterns: a fresh random
   key per record, and keys drawn at random from a pool of 10,000 (the murmur2
   partitioner caches the hash of a key it has seen). Each with ``linger_ms=0``
   (the default) and ``linger_ms=5``. Plus the kafka-python spelling
   ``send(topic, value=v, key=k)``, and ``send(..., partition=0)``, which skips
   the partitioner (what any partitioner costs on top of the rest of ``send``).
   The detail column gives the CPU time per record of the sending thread and
   of the producer's sender thread (``time.thread_time`` and the sender's
   ``pthread_getcpuclockid`` clock), the sender's rounds and records per batch.
b. The same with ``acks="all"``: every sender round ends with one fdatasync of
   the partition, shared by every record of the round (group commit). The
   detail column gives sender rounds, syncs and the mean fdatasync time
   (measured by wrapping ``PartitionLog.flush`` and ``Producer._write``; the
   wrappers add one Python call per round, not per record).
c. Consume a backlog of N records (written beforehand by our producer,
   ``linger_ms=5``: batches of 124 records, what ``batch_size=16384`` holds)
   with a fresh consumer (``assign``, ``auto_offset_reset="earliest"``):
   ``poll(max_records=10_000)`` (one poll returns at most one fetch, 1 MiB,
   about 8,700 records), ``poll()`` (kafka-python's default of 500 records),
   and the blocking iterator ``for record in consumer``. Then random reads:
   ``seek(tp, o)`` + ``poll(max_records=1)`` at 5,000 random offsets of the
   backlog (row ``c-rand``, latency per read; ``--records`` sets the log size).
d. End-to-end latency in one process: a producer thread (``linger_ms=0``,
   ``acks=1``) sends one record every 50 us, a consumer thread is blocked in
   ``poll(timeout_ms=1000)``; the value carries ``time.perf_counter_ns()``
   taken just before ``send``, and the latency is the consumer's clock when
   ``poll`` returns minus that. The first ``--warmup`` records are dropped.
   The producer thread waits for its next slot in a loop that calls
   ``time.sleep(0)``, which releases the GIL: the producer's sender thread and
   the consumer thread need the GIL to run, and a pure busy-wait would keep it
   until the interpreter's switch interval (5 ms) forces it off, so the
   latency would measure ``sys.getswitchinterval()``, not streamlog. A row
   with a pure busy-wait shows this.
e. The same across two processes: the consumer runs in a child process
   started with the ``spawn`` context, opens the same data directory, and
   wakes by re-reading the partition's tail (see docs/consumer.md); the
   producer in this process sends with ``linger_ms=0``. The value carries
   ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for the whole system on
   Linux). A second row flushes after every record.

The peer is ``benchmarks/_peer_confluent.py`` (``run_confluent``, one round of
its workloads per round here), whose docstring describes its workloads; its
producer uses ``linger.ms=5`` and an explicit partition. Ratios are taken per
round (ours / peer in the same round), then the median of those is reported.
All figures are medians over the rounds; MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import inspect
import io
import multiprocessing
import os
import pstats
import random
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import (  # benchmarks/ is on sys.path when run as a script
    Table,
    machine,
    median,
    percentile,
    settle,
    source_state,
    spread,
)

import streamlog
from streamlog import TopicPartition

KEY_SIZE = 16
VALUE_SIZE = 100
VALUE_POOL = 4096
KEY_POOL = 10_000
LATENCY_INTERVAL_NS = 50_000
POLL_MAX = 10_000
RAND_READS = 5_000
STAMP = struct.Struct("<qq")  # sequence number, send time (ns)
TIMEOUT_S = 120.0

TARGETS = {
    "produce_rate": 1_000_000,
    "produce_vs_peer": 0.8,
    "consume_rate": 1_500_000,
    "consume_vs_peer": 10.0,
    "e2e_p50_us": 50.0,
    "e2e_p99_us": 250.0,
    "xproc_p99_us": 1000.0,
    "rand_p50_us": 20.0,
}


# --------------------------------------------------------------------------- helpers




class Data:
    """Keys and values for the throughput workloads."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.values = [self.rng.randbytes(VALUE_SIZE) for _ in range(VALUE_POOL)]
        pool = [self.rng.randbytes(KEY_SIZE) for _ in range(KEY_POOL)]
        self.pool_keys = [pool[self.rng.randrange(KEY_POOL)] for _ in range(n)]

    def unique_keys(self) -> list[bytes]:
        """Fresh key objects each run (a bytes object caches its hash once computed)."""
        rb = self.rng.randbytes
        return [rb(KEY_SIZE) for _ in range(self.n)]


class Counters:
    """Sender rounds, batches, and partition syncs of one producer run."""

    def __init__(self) -> None:
        self.rounds = 0
        self.batches = 0
        self.syncs = 0
        self.sync_s = 0.0
        self.caller_cpu = 0.0  # CPU seconds of the sending thread (send loop + flush)
        self.sender_cpu = 0.0  # CPU seconds of the producer's sender thread


def instrument(producer: streamlog.Producer, plog: Any, c: Counters) -> None:
    """Count sender rounds (``_write`` calls) and time ``PartitionLog.flush`` calls."""
    write = producer._write
    flush = plog.flush

    def counted_write(batches: list[Any]) -> None:
        c.rounds += 1
        c.batches += len(batches)
        write(batches)

    def timed_flush() -> None:
        t0 = time.perf_counter()
        flush()
        c.sync_s += time.perf_counter() - t0
        c.syncs += 1

    producer._write = counted_write  # type: ignore[method-assign]
    plog.flush = timed_flush


# --------------------------------------------------------------------------- a, b
def bench_produce(
    log: streamlog.Log,
    topic: str,
    keys: list[bytes],
    values: list[bytes],
    *,
    acks: int | str,
    linger_ms: int,
    keywords: bool = False,
    explicit_partition: bool = False,
) -> tuple[float, Counters]:
    """Seconds from the first send to the return of flush(), and the sender's counters."""
    log.create_topic(topic, 1)
    plog = log.partition(topic, 0)
    c = Counters()
    producer = log.producer(acks=acks, linger_ms=linger_ms)
    try:
        instrument(producer, plog, c)
        send = producer.send
        mask = VALUE_POOL - 1
        n = len(keys)
        sender_clock = time.pthread_getcpuclockid(producer._sender.ident or 0)
        s0 = time.clock_gettime(sender_clock)
        c0 = time.thread_time()
        t0 = time.perf_counter()
        if keywords:
            for i in range(n):
                send(topic, value=values[i & mask], key=keys[i])
        elif explicit_partition:
            for i in range(n):
                send(topic, values[i & mask], keys[i], partition=0)
        else:
            for i in range(n):
                send(topic, values[i & mask], keys[i])
        producer.flush()
        dt = time.perf_counter() - t0
        c.caller_cpu = time.thread_time() - c0
        c.sender_cpu = time.clock_gettime(sender_clock) - s0
    finally:
        producer.close()
    if plog.end_offset != n:
        raise RuntimeError(f"{topic}: end offset {plog.end_offset}, expected {n}")
    log.delete_topic(topic)
    return dt, c


# --------------------------------------------------------------------------- c
def build_backlog(log: streamlog.Log, topic: str, data: Data) -> tuple[int, int]:
    """Write the backlog with our producer; returns (records, batches)."""
    log.create_topic(topic, 1)
    plog = log.partition(topic, 0)
    c = Counters()
    with log.producer(linger_ms=5) as producer:
        instrument(producer, plog, c)
        send, values, keys = producer.send, data.values, data.pool_keys
        mask = VALUE_POOL - 1
        for i in range(data.n):
            send(topic, values[i & mask], keys[i])
    return plog.end_offset, c.batches


def bench_consume(log: streamlog.Log, topic: str, n: int, mode: str) -> float:
    """Seconds to read the n-record backlog from the start; mode 'poll', 'poll500', 'iter'."""
    tp = TopicPartition(topic, 0)
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([tp])
    got = 0
    try:
        t0 = time.perf_counter()
        if mode == "iter":
            for _record in consumer:
                got += 1
                if got >= n:
                    break
        else:
            poll = consumer.poll
            limit = POLL_MAX if mode == "poll" else None
            while got < n:
                for records in poll(timeout_ms=1000, max_records=limit).values():
                    got += len(records)
        dt = time.perf_counter() - t0
    finally:
        consumer.close()
    if got != n:
        raise RuntimeError(f"consumed {got} records, expected {n}")
    return dt


def bench_random_read(log: streamlog.Log, topic: str, n: int, k: int, seed: int) -> list[int]:
    """Latencies (ns) of ``seek(tp, o)`` + ``poll(max_records=1)`` at k random offsets o."""
    tp = TopicPartition(topic, 0)
    rng = random.Random(seed)
    offsets = [rng.randrange(n) for _ in range(k)]
    lat: list[int] = []
    clock = time.perf_counter_ns
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([tp])
    try:
        seek, poll = consumer.seek, consumer.poll
        for o in offsets:
            t0 = clock()
            seek(tp, o)
            got = poll(max_records=1)
            lat.append(clock() - t0)
            if got[tp][0].offset != o:
                raise RuntimeError(f"seek to {o} returned {got[tp][0].offset}")
    finally:
        consumer.close()
    return lat


# --------------------------------------------------------------------------- d
def latency_stats(lat_ns: list[int]) -> dict[str, float]:
    lat = sorted(lat_ns)
    return {
        "p50": percentile(lat, 0.50) / 1e3,
        "p99": percentile(lat, 0.99) / 1e3,
        "p999": percentile(lat, 0.999) / 1e3,
        "max": lat[-1] / 1e3 if lat else float("nan"),
    }


def _pace(now: Callable[[], int], nxt: int, busy: bool) -> None:
    """Wait until ``now() >= nxt``; with busy=False, give the GIL away while waiting."""
    if busy:
        while now() < nxt:
            pass
    else:
        sleep = time.sleep
        while now() < nxt:
            sleep(0)


def bench_latency_threads(
    log: streamlog.Log,
    topic: str,
    n: int,
    warmup: int,
    *,
    busy: bool = False,
    trace: dict[int, int] | None = None,
) -> dict[str, float]:
    """Producer thread and consumer thread of one process; latency in us.

    With ``trace``, fills it with sequence number -> time ``poll`` returned it.
    """
    log.create_topic(topic, 1)
    tp = TopicPartition(topic, 0)
    total = warmup + n
    producer = log.producer(acks=1, linger_ms=0)
    consumer = log.consumer(auto_offset_reset="latest")
    consumer.assign([tp])
    consumer.position(tp)  # pin the position at the (empty) log end
    lat: list[int] = []
    failure: list[BaseException] = []
    sent = [0.0]
    pad = bytes(VALUE_SIZE - STAMP.size)
    key = bytes(KEY_SIZE)

    def consume() -> None:
        try:
            poll, clock, unpack = consumer.poll, time.perf_counter_ns, STAMP.unpack_from
            seen = 0
            deadline = time.monotonic() + TIMEOUT_S
            while seen < total:
                got = poll(timeout_ms=1000)
                t = clock()
                for records in got.values():
                    for r in records:
                        seq, ts = unpack(r.value)
                        if seq >= warmup:
                            lat.append(t - ts)
                        if trace is not None:
                            trace[seq] = t
                        seen += 1
                if time.monotonic() > deadline:
                    raise RuntimeError(f"latency consumer timed out after {seen} records")
        except BaseException as exc:
            failure.append(exc)

    def produce() -> None:
        try:
            send, clock, pack = producer.send, time.perf_counter_ns, STAMP.pack
            t0 = nxt = clock()
            for i in range(total):
                _pace(clock, nxt, busy)
                send(topic, pack(i, clock()) + pad, key)
                nxt += LATENCY_INTERVAL_NS
            sent[0] = total / ((clock() - t0) / 1e9)
            producer.flush()
        except BaseException as exc:
            failure.append(exc)

    tc = threading.Thread(target=consume, name="latency-consumer")
    tpr = threading.Thread(target=produce, name="latency-producer")
    try:
        tc.start()
        tpr.start()
        tpr.join()
        tc.join()
    finally:
        consumer.close()
        producer.close()
    if failure:
        raise failure[0]
    log.delete_topic(topic)
    return {**latency_stats(lat), "send_rps": sent[0]}


# --------------------------------------------------------------------------- e
def _xproc_consumer(
    path: str, topic: str, total: int, warmup: int, conn: Any, trace: bool = False
) -> None:
    """Child process (spawn): consume ``total`` records, send back the latencies (ns)
    and, with ``trace``, the receive time of each sequence number."""
    try:
        with streamlog.open(path) as log:
            tp = TopicPartition(topic, 0)
            consumer = log.consumer(auto_offset_reset="latest")
            consumer.assign([tp])
            consumer.position(tp)
            conn.send(("ready", None))
            poll, clock, unpack = consumer.poll, time.monotonic_ns, STAMP.unpack_from
            lat: list[int] = []
            recv: dict[int, int] | None = {} if trace else None
            seen = 0
            deadline = time.monotonic() + TIMEOUT_S
            while seen < total:
                got = poll(timeout_ms=1000)
                t = clock()
                for records in got.values():
                    for r in records:
                        seq, ts = unpack(r.value)
                        if seq >= warmup:
                            lat.append(t - ts)
                        if recv is not None:
                            recv[seq] = t
                        seen += 1
                if time.monotonic() > deadline:
                    raise RuntimeError(f"child consumer timed out after {seen} records")
            consumer.close()
        conn.send(("done", (lat, recv)))
    except BaseException as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def bench_latency_processes(
    log: streamlog.Log,
    topic: str,
    n: int,
    warmup: int,
    *,
    flush_each: bool,
    trace: dict[int, int] | None = None,
) -> dict[str, float]:
    """Producer here, consumer in a spawned child process; latency in us.

    With ``trace``, fills it with sequence number -> time the child's ``poll`` returned it.
    """
    log.create_topic(topic, 1)
    total = warmup + n
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_xproc_consumer,
        args=(log.path, topic, total, warmup, child, trace is not None),
        daemon=True,
    )
    proc.start()
    child.close()
    producer = log.producer(acks=1, linger_ms=0)
    try:
        if not parent.poll(60):
            raise RuntimeError("child consumer did not start within 60 s")
        tag, info = parent.recv()
        if tag != "ready":
            raise RuntimeError(f"child consumer failed: {info}")
        send, flush, clock, pack = producer.send, producer.flush, time.monotonic_ns, STAMP.pack
        pad = bytes(VALUE_SIZE - STAMP.size)
        key = bytes(KEY_SIZE)
        t0 = nxt = clock()
        for i in range(total):
            _pace(clock, nxt, busy=False)
            send(topic, pack(i, clock()) + pad, key)
            if flush_each:
                flush()
            nxt += LATENCY_INTERVAL_NS
        send_rps = total / ((clock() - t0) / 1e9)
        producer.flush()
        if not parent.poll(TIMEOUT_S):
            raise RuntimeError("child consumer did not finish")
        tag, got = parent.recv()
        if tag != "done":
            raise RuntimeError(f"child consumer failed: {got}")
        lat, recv = got
        if trace is not None:
            trace.update(recv)
        proc.join(30)
    finally:
        producer.close()
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
    log.delete_topic(topic)
    return {**latency_stats(lat), "send_rps": send_rps}


# --------------------------------------------------------------------------- peer
def load_peer() -> tuple[Callable[..., dict[str, float]] | None, str, str]:
    """(run_confluent or None, why not, versions) from benchmarks/_peer_confluent.py."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import _peer_confluent as peer  # optional; not imported by the child
    except Exception as exc:
        return None, f"benchmarks/_peer_confluent.py does not import: {exc!r}", ""
    finally:
        sys.path.pop(0)
    why = peer.unavailable_reason()
    if why is not None:
        return None, why, ""
    v = peer.versions()
    return (
        peer.run_confluent,
        "",
        f"confluent-kafka {v.get('confluent_kafka', '?')} / librdkafka {v.get('librdkafka', '?')}",
    )


def run_peer_round(
    run: Callable[..., dict[str, float]], records: int, latency_records: int
) -> dict[str, float]:
    """One round of the peer's workloads (run_confluent's rounds, if it has the argument)."""
    if "runs" in inspect.signature(run).parameters:
        return run(records, latency_records, runs=1)
    return run(records, latency_records)


# --------------------------------------------------------------------------- report

def verdict(checks: list[tuple[str, bool | None]]) -> str:
    """'met', or 'MISSED (names)'; a check of None (no peer) is left out."""
    missed = [name for name, ok in checks if ok is False]
    if not missed:
        return "met" if any(ok is not None for _n, ok in checks) else ""
    return f"MISSED ({', '.join(missed)})"


# --------------------------------------------------------------------------- profile
def profile(workload: str, base: str, records: int, lat_n: int, warmup: int, seed: int) -> None:
    """--profile: one run of a workload under profilers (a, b, c) or traced by stage (d, e)."""
    if workload in ("d", "e"):
        stages(workload, base, lat_n, warmup)
        return
    from pyinstrument import Profiler  # only for --profile

    data = Data(records, seed)
    sender_prof = cProfile.Profile()
    orig_run = streamlog.Producer._run

    def profiled_run(self: streamlog.Producer) -> None:
        sender_prof.runcall(orig_run, self)

    streamlog.Producer._run = profiled_run  # type: ignore[method-assign]
    try:
        with streamlog.open(os.path.join(base, "profile")) as log:
            n = records
            if workload == "c":
                n, _batches = build_backlog(log, "backlog", data)
            keys = data.unique_keys() if workload == "a-unique" else data.pool_keys
            prof = Profiler(interval=0.0005)
            prof.start()
            t0 = time.perf_counter()
            if workload == "c":
                bench_consume(log, "backlog", n, "poll")
            else:
                acks: int | str = "all" if workload == "b" else 1
                bench_produce(log, "p", keys, data.values, acks=acks, linger_ms=0)
            dt = time.perf_counter() - t0
            prof.stop()
    finally:
        streamlog.Producer._run = orig_run  # type: ignore[method-assign]
    print(f"{workload}: {n:,} records in {dt:.2f} s ({n / dt:,.0f}/s) under the profilers")
    print(prof.output_text(unicode=False, color=False, show_all=False))
    if workload != "c":
        out = io.StringIO()
        pstats.Stats(sender_prof, stream=out).sort_stats("tottime").print_stats(20)
        print("producer's sender thread (cProfile, by own time):")
        print(out.getvalue())


def stages(workload: str, base: str, n: int, warmup: int) -> None:
    """Latency of workload d or e split by stage: send -> the sender thread starts writing
    the record's batch -> the write returns -> the consumer's poll returns the record."""
    clock = time.perf_counter_ns if workload == "d" else time.monotonic_ns
    written: dict[int, tuple[int, int, int]] = {}  # seq -> (send time, write start, write end)
    orig_write = streamlog.Producer._write

    def traced_write(self: streamlog.Producer, batches: list[Any]) -> None:
        t0 = clock()
        orig_write(self, batches)
        t1 = clock()
        for b in batches:
            for v in b.values:
                seq, ts = STAMP.unpack_from(v)
                written[seq] = (ts, t0, t1)

    recv: dict[int, int] = {}
    streamlog.Producer._write = traced_write  # type: ignore[method-assign]
    try:
        with streamlog.open(os.path.join(base, "profile")) as log:
            if workload == "d":
                res = bench_latency_threads(log, "lat", n, warmup, trace=recv)
            else:
                res = bench_latency_processes(log, "lat", n, warmup, flush_each=False, trace=recv)
    finally:
        streamlog.Producer._write = orig_write  # type: ignore[method-assign]
    rows = [(written[s], t) for s, t in recv.items() if s >= warmup and s in written]
    print(
        f"{workload}: {len(rows):,} records traced; end to end p50 {res['p50']:,.0f} us, "
        f"p99 {res['p99']:,.0f} us (the tracing adds a little to the write stage)"
    )
    print(f"{'stage':<42}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}  (us)")
    parts: list[tuple[str, Callable[[tuple[tuple[int, int, int], int]], int]]] = [
        ("send -> sender thread starts the write", lambda r: r[0][1] - r[0][0]),
        ("sender write (encode, append, complete)", lambda r: r[0][2] - r[0][1]),
        ("write returned -> consumer poll returns", lambda r: r[1] - r[0][2]),
        ("total", lambda r: r[1] - r[0][0]),
    ]
    for name, f in parts:
        xs = sorted(f(r) for r in rows)
        qs = [percentile(xs, q) / 1e3 for q in (0.5, 0.9, 0.99, 0.999)]
        print(f"{name:<42}" + "".join(f"{x:>9,.0f}" for x in qs))


def fdatasync_us(d: str, rounds: int = 50) -> float:
    """Median time of appending 16 KiB to a file and fdatasync-ing it, with no other thread."""
    path = os.path.join(d, "fdatasync-probe")
    block = os.urandom(16384)
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for _ in range(rounds):
            os.write(fd, block)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return median(times) * 1e6


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small fast run (under 30 s)")
    ap.add_argument("--records", type=int, help="records per throughput run (default 1,000,000)")
    ap.add_argument("--latency-records", type=int, help="measured records per latency run")
    ap.add_argument("--warmup", type=int, help="latency records dropped first (default 2,000)")
    ap.add_argument("--runs", type=int, help="rounds (default 3)")
    ap.add_argument("--no-peer", action="store_true", help="skip confluent-kafka")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file (default benchmarks/results/clients-<date>.txt)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--profile", choices=["a-unique", "a-pool", "b", "c", "d", "e"], help="profile one"
    )
    args = ap.parse_args(argv)

    q = args.quick
    records = args.records or (100_000 if q else 1_000_000)
    lat_n = args.latency_records or (2_000 if q else 20_000)
    warmup = args.warmup if args.warmup is not None else (500 if q else 2_000)
    runs = args.runs or (1 if q else 3)
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = args.out or os.path.join(
        here,
        "results",
        f"clients-{datetime.date.today().isoformat()}{'-quick' if q else ''}.txt",
    )

    base = tempfile.mkdtemp(prefix="streamlog-bench-clients-", dir=args.dir)
    if args.profile:
        try:
            profile(args.profile, base, records, lat_n, warmup, args.seed)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return 0

    source_at_start = source_state(os.path.dirname(here))
    load_at_start = os.getloadavg()
    t_start = time.perf_counter()

    def note(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    run_peer, peer_why, peer_versions = (None, "--no-peer", "") if args.no_peer else load_peer()
    if run_peer is None:
        note(f"confluent-kafka baseline skipped: {peer_why}")

    produce_cfgs = [  # (key, label, keys, acks, linger, call style)
        ("a-u0", "unique keys, linger_ms=0", "unique", 1, 0, ""),
        ("a-p0", "pool keys, linger_ms=0", "pool", 1, 0, ""),
        ("a-u5", "unique keys, linger_ms=5", "unique", 1, 5, ""),
        ("a-p5", "pool keys, linger_ms=5", "pool", 1, 5, ""),
        ("a-kw", "send(t, value=v, key=k), pool, linger 0", "pool", 1, 0, "kw"),
        ("a-x0", "partition=0 given: no partitioner, linger 0", "pool", 1, 0, "part"),
        ("b-u0", "unique keys, linger_ms=0", "unique", "all", 0, ""),
        ("b-u5", "unique keys, linger_ms=5", "unique", "all", 5, ""),
    ]
    rates: dict[str, list[float]] = {k: [] for k, *_ in produce_cfgs}
    counters: dict[str, list[Counters]] = {k: [] for k, *_ in produce_cfgs}
    consume_modes = [("poll", "c-poll"), ("poll500", "c-poll500"), ("iter", "c-iter")]
    for _m, k in consume_modes:
        rates[k] = []
    lat_cfgs = [
        ("d", "threads, sleep(0) pacing"),
        ("d-busy", "threads, busy-wait pacing (reference)"),
        ("e", "processes, linger_ms=0"),
        ("e-flush", "processes, flush() per record"),
    ]
    lats: dict[str, list[dict[str, float]]] = {k: [] for k, _ in lat_cfgs}
    peer_rounds: list[dict[str, float]] = []
    rand_reads: list[dict[str, float]] = []
    sync_alone: list[float] = []
    backlog_batches = 0
    try:
        note(f"temp dir {base}; {records:,} records x {runs} rounds; peer: {peer_versions or '-'}")
        data = Data(records, args.seed)
        log = streamlog.open(os.path.join(base, "data"))
        try:
            n_backlog, backlog_batches = build_backlog(log, "backlog", data)
            note(f"backlog: {n_backlog:,} records in {backlog_batches:,} batches")

            def ours(r: int) -> None:
                cfgs = produce_cfgs[r % len(produce_cfgs) :] + produce_cfgs[: r % len(produce_cfgs)]
                for key, _label, kind, acks, linger, kw in cfgs:
                    keys = data.unique_keys() if kind == "unique" else data.pool_keys
                    settle()
                    dt, c = bench_produce(
                        log,
                        f"{key}-{r}",
                        keys,
                        data.values,
                        acks=acks,
                        linger_ms=linger,
                        keywords=kw == "kw",
                        explicit_partition=kw == "part",
                    )
                    del keys
                    rates[key].append(records / dt)
                    counters[key].append(c)
                    note(f"  {key}: {records / dt:,.0f}/s, {c.rounds} rounds, {c.batches} batches")
                settle()
                sync_alone.append(fdatasync_us(base))
                for mode, key in consume_modes:
                    dt = bench_consume(log, "backlog", n_backlog, mode)
                    rates[key].append(n_backlog / dt)
                    note(f"  {key}: {n_backlog / dt:,.0f}/s")
                res = latency_stats(
                    bench_random_read(log, "backlog", n_backlog, RAND_READS, args.seed + r)
                )
                rand_reads.append(res)
                note(f"  c-rand: p50 {res['p50']:.1f} us, p99 {res['p99']:.1f} us")
                for key, _label in lat_cfgs:
                    if key == "d-busy" and q:
                        continue
                    settle()
                    if key.startswith("d"):
                        res = bench_latency_threads(
                            log, f"{key}-{r}", lat_n, warmup, busy=key == "d-busy"
                        )
                    else:
                        res = bench_latency_processes(
                            log, f"{key}-{r}", lat_n, warmup, flush_each=key == "e-flush"
                        )
                    lats[key].append(res)
                    note(
                        f"  {key}: p50 {res['p50']:.0f} us, p99 {res['p99']:.0f} us, "
                        f"p99.9 {res['p999']:.0f} us, sent {res['send_rps']:,.0f}/s"
                    )

            def peer() -> None:
                if run_peer is None:
                    return
                settle()
                res = run_peer_round(run_peer, records, lat_n)
                peer_rounds.append(res)
                note(
                    "  peer: "
                    + ", ".join(f"{k} {v:,.0f}" for k, v in res.items() if not k.endswith("join_s"))
                )

            for r in range(runs):
                note(f"round {r + 1}/{runs}")
                for step in (ours, peer) if r % 2 == 0 else (peer, ours):
                    if step is ours:
                        ours(r)
                    else:
                        peer()
        finally:
            log.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # ---- report
    table = Table(
        columns=("workload", "median", "detail", "confluent-kafka", "ratio", "target", "status"),
        right={1, 3, 4},
    )
    has_peer = len(peer_rounds) == runs and bool(peer_rounds and peer_rounds[0])

    def peer_med(k: str) -> float | None:
        if not has_peer or k not in peer_rounds[0]:
            return None
        return median([p[k] for p in peer_rounds])

    def ratio_med(ours_: list[float], k: str, invert: bool = False) -> float | None:
        if not has_peer or k not in peer_rounds[0]:
            return None
        rs = [(p[k] / o if invert else o / p[k]) for o, p in zip(ours_, peer_rounds) if p[k] and o]
        return median(rs) if rs else None

    def fmt_rate(x: float | None) -> str:
        return "n/a" if x is None else f"{x:,.0f}/s"

    def fmt_ratio(x: float | None) -> str:
        return "" if x is None else f"{x:.2f}x"

    table.section(
        f"a. Producer: send(topic, value, key) per record + flush, acks=1, "
        f"{records:,} records (median of {runs} round{'s' if runs != 1 else ''}; "
        "ratio = ours / confluent-kafka produce() in the same round)"
    )
    for key, label, _kind, acks, _linger, _kw in produce_cfgs:
        if key == "b-u0":
            table.section(
                'b. Producer, acks="all": one fdatasync per sender round, shared by the '
                "round's records (group commit)"
            )
        med = median(rates[key])
        cs = counters[key]
        rounds = median([c.rounds for c in cs])
        per_batch = median([records / c.batches for c in cs if c.batches])
        caller_ns = median([c.caller_cpu / records * 1e9 for c in cs])
        sender_ns = median([c.sender_cpu / records * 1e9 for c in cs])
        detail = (
            f"runs {spread(rates[key])}; CPU/record: caller {caller_ns:,.0f} ns + sender "
            f"{sender_ns:,.0f} ns; {rounds:,.0f} sender rounds, {per_batch:.0f} rec/batch"
        )
        peer_key = "produce_acks1_rps" if acks == 1 else "produce_acksall_rps"
        pr = peer_med(peer_key)
        ratio = ratio_med(rates[key], peer_key)
        if acks == 1:
            target = f">= {TARGETS['produce_rate']:,}/s, >= {TARGETS['produce_vs_peer']}x peer"
            status = verdict(
                [
                    ("rate", med >= TARGETS["produce_rate"]),
                    ("ratio", None if ratio is None else ratio >= TARGETS["produce_vs_peer"]),
                ]
            )
        else:
            syncs = median([c.syncs for c in cs])
            sync_us = median([c.sync_s / c.syncs * 1e6 for c in cs if c.syncs])
            detail += (
                f"; {syncs:,.0f} syncs, {records / max(syncs, 1):,.0f} rec/sync; "
                f"sync call {sync_us:,.0f} us incl. taking the GIL back "
                f"(fdatasync alone {median(sync_alone):,.0f} us)"
            )
            target, status = "report", ""
        table.row(
            f"{key} {label}", fmt_rate(med), detail, fmt_rate(pr), fmt_ratio(ratio), target, status
        )

    table.section(
        f"c. Consumer: read a {records:,}-record backlog ({backlog_batches:,} batches) from "
        "the start (ratio = ours / confluent-kafka consume() in the same round)"
    )
    c_labels = {
        "c-poll": f"poll(max_records={POLL_MAX:,})",
        "c-poll500": "poll() (max_poll_records=500)",
        "c-iter": "for record in consumer (kafka-python style)",
    }
    for _mode, key in consume_modes:
        med = median(rates[key])
        ratio = ratio_med(rates[key], "consume_rps")
        target, status = "", ""
        if key == "c-poll":
            target = f">= {TARGETS['consume_rate']:,}/s, >= {TARGETS['consume_vs_peer']:.0f}x peer"
            status = verdict(
                [
                    ("rate", med >= TARGETS["consume_rate"]),
                    ("ratio", None if ratio is None else ratio >= TARGETS["consume_vs_peer"]),
                ]
            )
        table.row(
            f"{key} {c_labels[key]}",
            fmt_rate(med),
            f"{med * (KEY_SIZE + VALUE_SIZE) / 1e6:.0f} MB/s, runs {spread(rates[key])}",
            fmt_rate(peer_med("consume_rps")),
            fmt_ratio(ratio),
            target,
            status,
        )

    if rand_reads:
        p50 = median([x["p50"] for x in rand_reads])
        p99 = median([x["p99"] for x in rand_reads])
        table.row(
            "c-rand seek + poll(max_records=1)",
            f"p50 {p50:,.1f} / p99 {p99:,.1f} us",
            f"{RAND_READS:,} random offsets of the {records:,}-record backlog; "
            f"p99.9 {median([x['p999'] for x in rand_reads]):,.1f} us; "
            f"p50 runs {spread([x['p50'] for x in rand_reads], ',.1f')}",
            "",
            "",
            f"p50 <= {TARGETS['rand_p50_us']:.0f} us",
            verdict([("p50", p50 <= TARGETS["rand_p50_us"])]),
        )

    table.section(
        f"d/e. End-to-end latency, one record every {LATENCY_INTERVAL_NS // 1000} us, "
        f"{lat_n:,} records after {warmup:,} warm-up (median of per-round percentiles; "
        "ratio = confluent-kafka / ours)"
    )
    for key, label in lat_cfgs:
        rs = lats[key]
        if not rs:
            continue
        p50 = median([x["p50"] for x in rs])
        p99 = median([x["p99"] for x in rs])
        p999 = median([x["p999"] for x in rs])
        mx = median([x["max"] for x in rs])
        rate = median([x["send_rps"] for x in rs])
        detail = f"p99.9 {p999:,.0f} us, max {mx:,.0f} us; sent {rate:,.0f}/s"
        if len(rs) > 1:
            detail += f"; p99 runs {spread([x['p99'] for x in rs])}"
        peer_s, ratio_s, target, status = "", "", "", ""
        if key == "d":
            pp50, pp99 = peer_med("e2e_p50_us"), peer_med("e2e_p99_us")
            if pp50 is not None and pp99 is not None:
                peer_s = f"p50 {pp50:,.0f} / p99 {pp99:,.0f} us"
                r50 = ratio_med([x["p50"] for x in rs], "e2e_p50_us", invert=True)
                r99 = ratio_med([x["p99"] for x in rs], "e2e_p99_us", invert=True)
                ratio_s = f"{fmt_ratio(r50)} / {fmt_ratio(r99)}"
            target = f"p50 <= {TARGETS['e2e_p50_us']:.0f} us, p99 <= {TARGETS['e2e_p99_us']:.0f} us"
            status = verdict(
                [("p50", p50 <= TARGETS["e2e_p50_us"]), ("p99", p99 <= TARGETS["e2e_p99_us"])]
            )
        elif key == "e":
            target = f"p99 <= {TARGETS['xproc_p99_us']:,.0f} us"
            status = verdict([("p99", p99 <= TARGETS["xproc_p99_us"])])
        table.row(
            f"{key} {label}",
            f"p50 {p50:,.0f} / p99 {p99:,.0f} us",
            detail,
            peer_s,
            ratio_s,
            target,
            status,
        )

    python = sys.executable
    if python.startswith(os.getcwd() + os.sep):
        python = os.path.relpath(python)
    header = [
        f"streamlog client benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"machine: {machine()}",
        f"streamlog {streamlog.__version__}, {source_at_start}; "
        f"peer: {peer_versions + ' (mock cluster, 1 broker)' if has_peer else peer_why}",
        f"records: {KEY_SIZE} B random key + {VALUE_SIZE} B value, 1 topic x 1 partition, "
        "no compression, page cache warm",
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
