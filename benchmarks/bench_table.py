"""The comparison table: streamlog against SQLite, a minimal Python log and the floor.

Run from the repository root (the full run takes about 2 minutes on 2 cores, 100 s
with the LMDB and confluent-kafka rows; everything it creates goes under a temporary
directory that is removed at the end, also on error)::

    .venv/bin/python benchmarks/bench_table.py            # full run
    .venv/bin/python benchmarks/bench_table.py --quick    # under a minute

Options: ``--records N`` (records written by the throughput runs, and the size of
the log that is consumed and read at random; default 100,000, 20,000 with
``--quick``), ``--latency-records N`` (measured records per latency run, default
2,000, 500 with ``--quick``; 200 warm-up records are dropped first), ``--rounds N``
(default 3), ``--dir DIR`` (parent of the temporary directory,
default /tmp), ``--out FILE`` (default ``benchmarks/results/table-<date>.txt``,
``-quick`` added with ``--quick``).

Every system is measured through its public API, in one run, on one machine.
Records: 16-byte random key (a fresh one per record), 100-byte random value (from
a pool of 4,096). Each round runs every column for every system before the next
column, the systems in an order that rotates between rounds; figures are medians
over the rounds (latency percentiles: the median of each round's percentile).

Columns:

send
    Records/s writing N records with the system's "append, do not wait for the
    disk" call, up to the point where every record is readable: streamlog
    ``Producer.send`` (``acks=1``, ``linger_ms=0``) then ``flush()``; SQLite one
    ``INSERT`` per record, ``COMMIT`` every 1,000 (WAL, ``synchronous=NORMAL``:
    no fsync); minimal log ``f.write`` of a length-prefixed record to a
    buffered file, ``flush()`` at the end.
durable
    The same, on disk every 1,000 records: streamlog ``acks="all"`` and
    ``flush()`` every 1,000 sends; SQLite ``synchronous=FULL`` (an fsync per
    ``COMMIT``), ``COMMIT`` every 1,000; minimal log ``flush()`` + ``os.fsync``
    every 1,000.
consume
    Records/s reading the N records of the send column from the start:
    streamlog ``Consumer.poll()`` (default ``max_records``, 500); SQLite
    ``SELECT ... WHERE id > ? ORDER BY id LIMIT 1000`` in a loop; minimal log
    1 MiB reads parsed into (key, value) pairs.
latency in one process
    A producer thread writes one record per millisecond, a consumer thread
    waits for it; latency = the consumer's ``time.perf_counter_ns()`` when it
    has the record minus the one written into the record just before the
    write. streamlog: ``send()`` (``linger_ms=0``) and a consumer blocked in
    ``poll()``. SQLite: an autocommit ``INSERT`` per record, the reader polls
    ``SELECT ... WHERE id > ?`` with a 50 us sleep when it finds nothing (a
    fair polling consumer; it has no way to be woken). Minimal log: one
    unbuffered ``write`` per record, the reader polls the file size
    (``os.fstat``) with the same 50 us back-off and ``pread``s what is new.
    Floor: ``queue.SimpleQueue`` put/get between two threads.
    The producer waits for its next slot with ``time.sleep`` and, for the last
    0.3 ms, a loop of ``time.sleep(0)`` (which gives the GIL away).
across processes
    The same with the consumer in a child process (``spawn``), the clock
    ``time.monotonic_ns()`` (one clock for the whole machine on Linux). Floor:
    one byte per record through an ``os.pipe`` (the child stamps each byte as
    it reads it; the parent keeps its send times).
random read
    Latency of reading one record at a random position of the N-record log,
    ``--latency-records`` reads: streamlog ``seek(tp, offset)`` +
    ``poll(max_records=1)``; SQLite ``SELECT ... WHERE id = ?``; minimal log
    ``seek`` + ``read`` at a position kept in an in-memory list.

LMDB (``lmdb``) and confluent-kafka (librdkafka's mock cluster,
``test.mock.num.brokers=1``, through ``benchmarks/_peer_confluent.py``) get a row
only if they import; neither is a dependency. For confluent-kafka the mock answers
every ``acks`` the same way and only the columns its peer module measures are
filled in: its producer uses ``linger.ms=5`` and no flush per 1,000 (durable is
``acks=all`` only), its backlog is read in chunks (the mock keeps about 5 MB per
partition), and the latency run uses its own consumer settings; no across-process
or random-read figure.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import multiprocessing
import os
import queue
import random
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import machine, source_state  # benchmarks/ is on sys.path when run as a script

import streamlog
from streamlog import TopicPartition

KEY_SIZE = 16
VALUE_SIZE = 100
VALUE_POOL = 4096
COMMIT_EVERY = 1_000
INTERVAL_NS = 1_000_000  # latency runs: one record per ms
WARMUP = 200
BACKOFF_S = 50e-6  # polling readers (SQLite, minimal log, LMDB) sleep this long when idle
STAMP = struct.Struct("<qq")  # sequence number, send time (ns)
HEADER = struct.Struct("<II")  # minimal log: key length, value length
TIMEOUT_S = 120.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COLUMNS = ("send", "durable", "consume", "lat1", "latx", "rand")
HEADINGS = (
    "send() rec/s (acks=1)",
    "durable rec/s (acks=all, flush per 1,000)",
    "consume rec/s",
    "latency in one process p50/p99 us (one record per ms)",
    "across processes p50/p99 us",
    "random read (seek + poll one record) p50 us",
)

try:
    import lmdb  # optional baseline, not a dependency
except ImportError:
    lmdb = None


# --------------------------------------------------------------------------- helpers
def percentile(sorted_xs: list[int], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    return float(sorted_xs[min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))])


def p50_p99_us(lat_ns: list[int]) -> tuple[float, float]:
    lat = sorted(lat_ns)
    return percentile(lat, 0.50) / 1e3, percentile(lat, 0.99) / 1e3


def pace(clock: Callable[[], int], nxt: int) -> None:
    """Wait until ``clock() >= nxt``: sleep, then loop on ``sleep(0)`` for the last 0.3 ms."""
    left = nxt - clock()
    if left > 300_000:
        time.sleep((left - 300_000) / 1e9)
    while clock() < nxt:
        time.sleep(0)


def stamped(seq: int, t: int) -> bytes:
    return STAMP.pack(seq, t) + bytes(VALUE_SIZE - STAMP.size)


class Ctx:
    """Sizes, data and the working directory of one round."""

    def __init__(self, args: argparse.Namespace, base: str) -> None:
        self.n: int = args.records
        self.lat_n: int = args.latency_records
        self.warmup: int = WARMUP
        self.base = base
        self.rng = random.Random(args.seed)
        self.values = [self.rng.randbytes(VALUE_SIZE) for _ in range(VALUE_POOL)]
        self.state: dict[str, Any] = {}  # per system: what the send column left to read
        self.round_dir = base

    def keys(self) -> list[bytes]:
        """Fresh random keys for one run (made before the clock starts)."""
        rb = self.rng.randbytes
        return [rb(KEY_SIZE) for _ in range(self.n)]

    def offsets(self) -> list[int]:
        return [self.rng.randrange(self.n) for _ in range(self.lat_n)]

    def path(self, *parts: str) -> str:
        p = os.path.join(self.round_dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p


def run_latency_threads(
    write: Callable[[int, int], None],
    read: Callable[[Callable[[int, int], None]], None],
    total: int,
    warmup: int,
) -> list[int]:
    """Drive a writer thread at one record per ms and a reader thread; latencies in ns.

    ``write(seq, stamp)`` writes one record; ``read(got)`` reads until it has seen
    ``total`` records, calling ``got(seq, stamp)`` for each as soon as it has it.
    """
    lat: list[int] = []
    failure: list[BaseException] = []
    clock = time.perf_counter_ns

    def got(seq: int, ts: int) -> None:
        t = clock()
        if seq >= warmup:
            lat.append(t - ts)

    def reader() -> None:
        try:
            read(got)
        except BaseException as exc:
            failure.append(exc)

    def writer() -> None:
        try:
            nxt = clock()
            for i in range(total):
                pace(clock, nxt)
                write(i, clock())
                nxt += INTERVAL_NS
        except BaseException as exc:
            failure.append(exc)

    tr = threading.Thread(target=reader, name="latency-reader")
    tw = threading.Thread(target=writer, name="latency-writer")
    tr.start()
    time.sleep(0.05)
    tw.start()
    tw.join()
    tr.join(TIMEOUT_S)
    if failure:
        raise failure[0]
    if tr.is_alive() or len(lat) != total - warmup:
        raise RuntimeError(f"latency reader got {len(lat)} of {total - warmup} records")
    return lat


def run_latency_processes(
    child: Callable[..., None], args: tuple[Any, ...], write: Callable[[int, int], None], total: int
) -> list[int]:
    """Writer here at one record per ms, ``child(*args, conn)`` in a spawned process.

    The child sends ("ready", None) once it waits for records, then ("done", latencies)
    or ("error", text).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child_end = ctx.Pipe()
    proc = ctx.Process(target=child, args=(*args, child_end), daemon=True)
    proc.start()
    child_end.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("child did not start within 60 s")
        tag, info = parent.recv()
        if tag != "ready":
            raise RuntimeError(f"child failed: {info}")
        clock = time.monotonic_ns
        nxt = clock()
        for i in range(total):
            pace(clock, nxt)
            write(i, clock())
            nxt += INTERVAL_NS
        if not parent.poll(TIMEOUT_S):
            raise RuntimeError("child did not finish")
        tag, info = parent.recv()
        if tag != "done":
            raise RuntimeError(f"child failed: {info}")
        proc.join(30)
        return info
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()


def child_main(
    conn: Any, setup: Callable[[], Callable[[Callable[[int, int], None]], None]], warmup: int
) -> None:
    """Body of every latency child: ``setup()`` returns ``read(got)``, as for threads."""
    try:
        read = setup()
        lat: list[int] = []
        clock = time.monotonic_ns

        def got(seq: int, ts: int) -> None:
            t = clock()
            if seq >= warmup:
                lat.append(t - ts)

        conn.send(("ready", None))
        read(got)
        conn.send(("done", lat))
    except BaseException as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


# --------------------------------------------------------------------------- streamlog
def sl_log(c: Ctx) -> streamlog.Log:
    log = c.state.get("sl-log")
    if log is None:
        log = c.state["sl-log"] = streamlog.open(c.path("streamlog", "data"))
    return log


def sl_produce(c: Ctx, topic: str, acks: int | str, flush_every: int) -> float:
    log = sl_log(c)
    log.create_topic(topic, 1)
    keys, values, mask = c.keys(), c.values, VALUE_POOL - 1
    with log.producer(acks=acks, linger_ms=0) as producer:
        send, flush = producer.send, producer.flush
        t0 = time.perf_counter()
        for i in range(c.n):
            send(topic, values[i & mask], keys[i])
            if flush_every and i % flush_every == flush_every - 1:
                flush()
        flush()
        dt = time.perf_counter() - t0
    end = log.partition(topic, 0).end_offset
    if end != c.n:
        raise RuntimeError(f"streamlog {topic}: end offset {end}, expected {c.n}")
    return c.n / dt


def sl_send(c: Ctx) -> float:
    return sl_produce(c, "send", 1, 0)


def sl_durable(c: Ctx) -> float:
    return sl_produce(c, "durable", "all", COMMIT_EVERY)


def sl_consume(c: Ctx) -> float:
    tp = TopicPartition("send", 0)
    consumer = sl_log(c).consumer(auto_offset_reset="earliest")
    consumer.assign([tp])
    got = 0
    try:
        poll = consumer.poll
        t0 = time.perf_counter()
        while got < c.n:
            for records in poll(timeout_ms=1000).values():
                got += len(records)
        dt = time.perf_counter() - t0
    finally:
        consumer.close()
    return got / dt


def sl_rand(c: Ctx) -> float:
    tp = TopicPartition("send", 0)
    consumer = sl_log(c).consumer(auto_offset_reset="earliest")
    consumer.assign([tp])
    lat: list[int] = []
    clock = time.perf_counter_ns
    try:
        seek, poll = consumer.seek, consumer.poll
        for o in c.offsets():
            t0 = clock()
            seek(tp, o)
            got = poll(max_records=1)
            lat.append(clock() - t0)
            if got[tp][0].offset != o:
                raise RuntimeError(f"seek to {o} returned offset {got[tp][0].offset}")
    finally:
        consumer.close()
    return p50_p99_us(lat)[0]


def sl_reader(
    consumer: streamlog.Consumer, total: int
) -> Callable[[Callable[[int, int], None]], None]:
    def read(got: Callable[[int, int], None]) -> None:
        seen, unpack = 0, STAMP.unpack_from
        deadline = time.monotonic() + TIMEOUT_S
        while seen < total and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    got(*unpack(r.value))
                    seen += 1

    return read


def sl_lat1(c: Ctx) -> tuple[float, float]:
    log, topic, total = sl_log(c), "lat1", c.warmup + c.lat_n
    log.create_topic(topic, 1)
    tp = TopicPartition(topic, 0)
    key = bytes(KEY_SIZE)
    consumer = log.consumer(auto_offset_reset="latest")
    consumer.assign([tp])
    consumer.position(tp)
    try:
        with log.producer(acks=1, linger_ms=0) as producer:
            send = producer.send
            lat = run_latency_threads(
                lambda i, t: send(topic, stamped(i, t), key),
                sl_reader(consumer, total),
                total,
                c.warmup,
            )
    finally:
        consumer.close()
    return p50_p99_us(lat)


def _sl_child_setup(path: str, topic: str, total: int):  # type: ignore[no-untyped-def]
    log = streamlog.open(path)
    tp = TopicPartition(topic, 0)
    consumer = log.consumer(auto_offset_reset="latest")
    consumer.assign([tp])
    consumer.position(tp)
    return sl_reader(consumer, total)


def sl_child(path: str, topic: str, total: int, warmup: int, conn: Any) -> None:
    child_main(conn, lambda: _sl_child_setup(path, topic, total), warmup)


def sl_latx(c: Ctx) -> tuple[float, float]:
    log, topic, total = sl_log(c), "latx", c.warmup + c.lat_n
    log.create_topic(topic, 1)
    key = bytes(KEY_SIZE)
    with log.producer(acks=1, linger_ms=0) as producer:
        send = producer.send
        lat = run_latency_processes(
            sl_child,
            (log.path, topic, total, c.warmup),
            lambda i, t: send(topic, stamped(i, t), key),
            total,
        )
    return p50_p99_us(lat)


def sl_close(c: Ctx) -> None:
    log = c.state.pop("sl-log", None)
    if log is not None:
        log.close()


# --------------------------------------------------------------------------- SQLite
def sq_connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k BLOB, v BLOB)")
    return conn


def sq_produce(c: Ctx, name: str, synchronous: str) -> float:
    path = c.path("sqlite", f"{name}.db")
    conn = sq_connect(path, synchronous)
    keys, values, mask = c.keys(), c.values, VALUE_POOL - 1
    try:
        ex = conn.execute
        t0 = time.perf_counter()
        ex("BEGIN")
        for i in range(c.n):
            ex("INSERT INTO log (k, v) VALUES (?, ?)", (keys[i], values[i & mask]))
            if i % COMMIT_EVERY == COMMIT_EVERY - 1:
                ex("COMMIT")
                ex("BEGIN")
        ex("COMMIT")
        dt = time.perf_counter() - t0
    finally:
        conn.close()
    c.state[f"sq-{name}"] = path
    return c.n / dt


def sq_send(c: Ctx) -> float:
    return sq_produce(c, "send", "NORMAL")


def sq_durable(c: Ctx) -> float:
    return sq_produce(c, "durable", "FULL")


def sq_consume(c: Ctx) -> float:
    conn = sq_connect(c.state["sq-send"], "NORMAL")
    got, last = 0, 0
    try:
        ex = conn.execute
        t0 = time.perf_counter()
        while True:
            rows = ex(
                "SELECT id, k, v FROM log WHERE id > ? ORDER BY id LIMIT 1000", (last,)
            ).fetchall()
            if not rows:
                break
            got += len(rows)
            last = rows[-1][0]
        dt = time.perf_counter() - t0
    finally:
        conn.close()
    if got != c.n:
        raise RuntimeError(f"SQLite: read {got} rows, expected {c.n}")
    return got / dt


def sq_rand(c: Ctx) -> float:
    conn = sq_connect(c.state["sq-send"], "NORMAL")
    lat: list[int] = []
    clock = time.perf_counter_ns
    try:
        ex = conn.execute
        for o in c.offsets():
            t0 = clock()
            row = ex("SELECT k, v FROM log WHERE id = ?", (o + 1,)).fetchone()
            lat.append(clock() - t0)
            if row is None:
                raise RuntimeError(f"SQLite: no row {o + 1}")
    finally:
        conn.close()
    return p50_p99_us(lat)[0]


def sq_reader(path: str, total: int) -> Callable[[Callable[[int, int], None]], None]:
    conn = sq_connect(path, "NORMAL")

    def read(got: Callable[[int, int], None]) -> None:
        seen, last, unpack = 0, 0, STAMP.unpack_from
        ex = conn.execute
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while seen < total and time.monotonic() < deadline:
                rows = ex("SELECT id, v FROM log WHERE id > ? ORDER BY id", (last,)).fetchall()
                if not rows:
                    time.sleep(BACKOFF_S)
                    continue
                for rid, v in rows:
                    got(*unpack(v))
                last = rows[-1][0]
                seen += len(rows)
        finally:
            conn.close()

    return read


def sq_writer(path: str) -> tuple[sqlite3.Connection, Callable[[int, int], None]]:
    conn = sq_connect(path, "NORMAL")
    ex, key = conn.execute, bytes(KEY_SIZE)

    def write(i: int, t: int) -> None:
        ex("INSERT INTO log (k, v) VALUES (?, ?)", (key, stamped(i, t)))  # autocommit

    return conn, write


def sq_lat1(c: Ctx) -> tuple[float, float]:
    path, total = c.path("sqlite", "lat1.db"), c.warmup + c.lat_n
    conn, write = sq_writer(path)
    try:
        lat = run_latency_threads(write, sq_reader(path, total), total, c.warmup)
    finally:
        conn.close()
    return p50_p99_us(lat)


def sq_child(path: str, total: int, warmup: int, conn: Any) -> None:
    child_main(conn, lambda: sq_reader(path, total), warmup)


def sq_latx(c: Ctx) -> tuple[float, float]:
    path, total = c.path("sqlite", "latx.db"), c.warmup + c.lat_n
    conn, write = sq_writer(path)
    try:
        lat = run_latency_processes(sq_child, (path, total, c.warmup), write, total)
    finally:
        conn.close()
    return p50_p99_us(lat)


# --------------------------------------------------------------------------- minimal log
def ml_produce(c: Ctx, name: str, fsync_every: int) -> float:
    path = c.path("minimal", f"{name}.log")
    keys, values, mask = c.keys(), c.values, VALUE_POOL - 1
    positions: list[int] = []
    pack, pos = HEADER.pack, 0
    with open(path, "wb") as f:
        write, append, fd = f.write, positions.append, f.fileno()
        t0 = time.perf_counter()
        for i in range(c.n):
            k, v = keys[i], values[i & mask]
            append(pos)
            pos += write(pack(len(k), len(v)) + k + v)
            if fsync_every and i % fsync_every == fsync_every - 1:
                f.flush()
                os.fsync(fd)
        f.flush()
        dt = time.perf_counter() - t0
    c.state[f"ml-{name}"] = (path, positions)
    return c.n / dt


def ml_send(c: Ctx) -> float:
    return ml_produce(c, "send", 0)


def ml_durable(c: Ctx) -> float:
    return ml_produce(c, "durable", COMMIT_EVERY)


def ml_parse(buf: bytes, start: int, out: Callable[[bytes, bytes], None]) -> int:
    """Call ``out(key, value)`` per whole record of buf[start:]; return where the rest starts."""
    unpack, hs, n = HEADER.unpack_from, HEADER.size, len(buf)
    i = start
    while i + hs <= n:
        kl, vl = unpack(buf, i)
        end = i + hs + kl + vl
        if end > n:
            break
        out(buf[i + hs : i + hs + kl], buf[i + hs + kl : end])
        i = end
    return i


def ml_consume(c: Ctx) -> float:
    path, _positions = c.state["ml-send"]
    records: list[tuple[bytes, bytes]] = []
    add, got = records.append, 0
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        rest = b""
        while chunk := f.read(1 << 20):
            buf = rest + chunk
            rest = buf[ml_parse(buf, 0, lambda k, v: add((k, v))) :]
            got += len(records)
            records.clear()
    dt = time.perf_counter() - t0
    if got != c.n:
        raise RuntimeError(f"minimal log: read {got} records, expected {c.n}")
    return got / dt


def ml_rand(c: Ctx) -> float:
    path, positions = c.state["ml-send"]
    lat: list[int] = []
    clock, unpack, hs = time.perf_counter_ns, HEADER.unpack, HEADER.size
    with open(path, "rb") as f:
        seek, read = f.seek, f.read
        for o in c.offsets():
            t0 = clock()
            seek(positions[o])
            kl, vl = unpack(read(hs))
            kv = read(kl + vl)
            lat.append(clock() - t0)
            if len(kv) != KEY_SIZE + VALUE_SIZE:
                raise RuntimeError(f"minimal log: short record at {o}")
    return p50_p99_us(lat)[0]


def ml_reader(path: str, total: int) -> Callable[[Callable[[int, int], None]], None]:
    fd = os.open(path, os.O_RDONLY)

    def read(got: Callable[[int, int], None]) -> None:
        seen, pos, buf = [0], 0, b""
        unpack = STAMP.unpack_from

        def out(_k: bytes, v: bytes) -> None:
            got(*unpack(v))
            seen[0] += 1

        deadline = time.monotonic() + TIMEOUT_S
        try:
            while seen[0] < total and time.monotonic() < deadline:
                size = os.fstat(fd).st_size
                if size <= pos:
                    time.sleep(BACKOFF_S)
                    continue
                buf += os.pread(fd, size - pos, pos)
                pos = size
                buf = buf[ml_parse(buf, 0, out) :]
        finally:
            os.close(fd)

    return read


def ml_writer(path: str) -> tuple[Any, Callable[[int, int], None]]:
    f = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the caller
    write, pack, key = f.write, HEADER.pack, bytes(KEY_SIZE)

    def w(i: int, t: int) -> None:
        write(pack(KEY_SIZE, VALUE_SIZE) + key + stamped(i, t))

    return f, w


def ml_lat1(c: Ctx) -> tuple[float, float]:
    path, total = c.path("minimal", "lat1.log"), c.warmup + c.lat_n
    f, write = ml_writer(path)
    try:
        lat = run_latency_threads(write, ml_reader(path, total), total, c.warmup)
    finally:
        f.close()
    return p50_p99_us(lat)


def ml_child(path: str, total: int, warmup: int, conn: Any) -> None:
    child_main(conn, lambda: ml_reader(path, total), warmup)


def ml_latx(c: Ctx) -> tuple[float, float]:
    path, total = c.path("minimal", "latx.log"), c.warmup + c.lat_n
    f, write = ml_writer(path)
    try:
        lat = run_latency_processes(ml_child, (path, total, c.warmup), write, total)
    finally:
        f.close()
    return p50_p99_us(lat)


# --------------------------------------------------------------------------- floor
def fl_lat1(c: Ctx) -> tuple[float, float]:
    q: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    total = c.warmup + c.lat_n

    def read(got: Callable[[int, int], None]) -> None:
        get = q.get
        for _ in range(total):
            got(*get(timeout=TIMEOUT_S))

    lat = run_latency_threads(lambda i, t: q.put((i, t)), read, total, c.warmup)
    return p50_p99_us(lat)


def fl_child(rconn: Any, total: int, conn: Any) -> None:
    """Pipe floor child: stamp each byte as it arrives, send the stamps back."""
    try:
        fd, clock, read = rconn.fileno(), time.monotonic_ns, os.read
        recv: list[int] = []
        conn.send(("ready", None))
        for _ in range(total):
            if not read(fd, 1):
                raise RuntimeError("pipe closed early")
            recv.append(clock())
        conn.send(("done", recv))
    except BaseException as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def fl_latx(c: Ctx) -> tuple[float, float]:
    total = c.warmup + c.lat_n
    rconn, wconn = multiprocessing.get_context("spawn").Pipe(duplex=False)  # an os.pipe
    sent: list[int] = []
    fd, write = wconn.fileno(), os.write

    def w(_i: int, t: int) -> None:
        sent.append(t)
        write(fd, b"x")

    try:
        recv = run_latency_processes(fl_child, (rconn, total), w, total)
    finally:
        rconn.close()
        wconn.close()
    return p50_p99_us([r - s for r, s in zip(recv[c.warmup :], sent[c.warmup :], strict=True)])


# --------------------------------------------------------------------------- LMDB
def lm_open(path: str, sync: bool) -> Any:
    return lmdb.open(path, map_size=1 << 32, sync=sync, metasync=sync, subdir=True)


def lm_produce(c: Ctx, name: str, sync: bool) -> float:
    path = c.path("lmdb", name, "x")
    path = os.path.dirname(path)
    env = lm_open(path, sync)
    keys, values, mask = c.keys(), c.values, VALUE_POOL - 1
    try:
        t0 = time.perf_counter()
        txn = env.begin(write=True)
        for i in range(c.n):
            txn.put(i.to_bytes(8, "big"), keys[i] + values[i & mask], append=True)
            if i % COMMIT_EVERY == COMMIT_EVERY - 1:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        dt = time.perf_counter() - t0
    finally:
        env.close()
    c.state[f"lm-{name}"] = path
    return c.n / dt


def lm_send(c: Ctx) -> float:
    return lm_produce(c, "send", False)


def lm_durable(c: Ctx) -> float:
    return lm_produce(c, "durable", True)


def lm_consume(c: Ctx) -> float:
    env = lm_open(c.state["lm-send"], False)
    got = 0
    try:
        t0 = time.perf_counter()
        with env.begin() as txn:
            for _k, _v in txn.cursor():
                got += 1
        dt = time.perf_counter() - t0
    finally:
        env.close()
    return got / dt


def lm_rand(c: Ctx) -> float:
    env = lm_open(c.state["lm-send"], False)
    lat: list[int] = []
    clock = time.perf_counter_ns
    try:
        for o in c.offsets():
            t0 = clock()
            with env.begin() as txn:
                v = txn.get(o.to_bytes(8, "big"))
            lat.append(clock() - t0)
            if v is None:
                raise RuntimeError(f"LMDB: no key {o}")
    finally:
        env.close()
    return p50_p99_us(lat)[0]


def lm_reader(env: Any, total: int) -> Callable[[Callable[[int, int], None]], None]:
    """A reader on ``env`` (LMDB allows one environment per path in a process)."""

    def read(got: Callable[[int, int], None]) -> None:
        seen, unpack = 0, STAMP.unpack_from
        deadline = time.monotonic() + TIMEOUT_S
        while seen < total and time.monotonic() < deadline:
            before = seen
            with env.begin() as txn:
                cur = txn.cursor()
                more = cur.set_range(seen.to_bytes(8, "big"))
                while more:
                    got(*unpack(cur.value(), KEY_SIZE))
                    seen += 1
                    more = cur.next()
            if seen == before:
                time.sleep(BACKOFF_S)

    return read


def lm_writer(path: str) -> tuple[Any, Callable[[int, int], None]]:
    env = lm_open(path, False)
    key = bytes(KEY_SIZE)

    def write(i: int, t: int) -> None:
        with env.begin(write=True) as txn:  # one commit per record
            txn.put(i.to_bytes(8, "big"), key + stamped(i, t))

    return env, write


def lm_lat1(c: Ctx) -> tuple[float, float]:
    path, total = os.path.dirname(c.path("lmdb", "lat1", "x")), c.warmup + c.lat_n
    env, write = lm_writer(path)
    try:
        lat = run_latency_threads(write, lm_reader(env, total), total, c.warmup)
    finally:
        env.close()
    return p50_p99_us(lat)


def lm_child(path: str, total: int, warmup: int, conn: Any) -> None:
    child_main(conn, lambda: lm_reader(lm_open(path, False), total), warmup)


def lm_latx(c: Ctx) -> tuple[float, float]:
    path, total = os.path.dirname(c.path("lmdb", "latx", "x")), c.warmup + c.lat_n
    env, write = lm_writer(path)
    try:
        lat = run_latency_processes(lm_child, (path, total, c.warmup), write, total)
    finally:
        env.close()
    return p50_p99_us(lat)


# --------------------------------------------------------------------------- confluent-kafka
def load_confluent() -> tuple[Any, str]:
    """(the _peer_confluent module, or None, and why not / its versions)."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return None, "not installed"
    try:
        import _peer_confluent as peer
    except Exception as exc:
        return None, f"benchmarks/_peer_confluent.py does not import: {exc!r}"
    why = peer.unavailable_reason()
    if why is not None:
        return None, why
    v = peer.versions()
    return peer, f"confluent-kafka {v.get('confluent_kafka')} / librdkafka {v.get('librdkafka')}"


def ck_cluster(c: Ctx) -> Any:
    mc = c.state.get("ck-mc")
    if mc is None:
        mc = c.state["ck-mc"] = c.state["ck-peer"].MockCluster()
    return mc


def ck_produce(c: Ctx, topic: str, acks: Any) -> float:
    peer = c.state["ck-peer"]
    keys, values = peer.make_pool(1)
    return c.n / peer.bench_produce(ck_cluster(c), topic, c.n, acks, keys, values)


def ck_send(c: Ctx) -> float:
    return ck_produce(c, f"send-{c.state['round']}", 1)


def ck_durable(c: Ctx) -> float:
    return ck_produce(c, f"durable-{c.state['round']}", "all")


def ck_consume(c: Ctx) -> float:
    peer = c.state["ck-peer"]
    keys, values = peer.make_pool(1)
    got, dt, _first = peer.bench_consume(
        ck_cluster(c), f"consume-{c.state['round']}", c.n, keys, values
    )
    return got / dt


def ck_lat1(c: Ctx) -> tuple[float, float]:
    peer = c.state["ck-peer"]
    r = peer.bench_latency(
        ck_cluster(c), f"lat1-{c.state['round']}", c.lat_n, warmup=c.warmup, interval_ns=INTERVAL_NS
    )
    return r["e2e_p50_us"], r["e2e_p99_us"]


def ck_close(c: Ctx) -> None:
    mc = c.state.pop("ck-mc", None)
    if mc is not None:
        mc.close()


# --------------------------------------------------------------------------- the table
Measure = Callable[[Ctx], Any]

SYSTEMS: dict[str, dict[str, Measure]] = {
    "streamlog": {
        "send": sl_send,
        "durable": sl_durable,
        "consume": sl_consume,
        "lat1": sl_lat1,
        "latx": sl_latx,
        "rand": sl_rand,
    },
    "SQLite": {
        "send": sq_send,
        "durable": sq_durable,
        "consume": sq_consume,
        "lat1": sq_lat1,
        "latx": sq_latx,
        "rand": sq_rand,
    },
    "LMDB": {
        "send": lm_send,
        "durable": lm_durable,
        "consume": lm_consume,
        "lat1": lm_lat1,
        "latx": lm_latx,
        "rand": lm_rand,
    },
    "confluent-kafka (mock)": {
        "send": ck_send,
        "durable": ck_durable,
        "consume": ck_consume,
        "lat1": ck_lat1,
    },
    "minimal Python log": {
        "send": ml_send,
        "durable": ml_durable,
        "consume": ml_consume,
        "lat1": ml_lat1,
        "latx": ml_latx,
        "rand": ml_rand,
    },
    "floor (SimpleQueue / os.pipe)": {"lat1": fl_lat1, "latx": fl_latx},
}


def fmt_cell(xs: list[Any], col: str) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "error"
    if col in ("lat1", "latx"):
        p50, p99 = statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs)
        return f"{p50:,.0f} / {p99:,.0f}"
    if col == "rand":
        return f"{statistics.median(xs):,.1f}"
    return f"{statistics.median(xs):,.0f}"


def render(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table, its columns padded to line up in a terminal."""
    w = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join((c.ljust(w[i]) if i == 0 else c.rjust(w[i])) for i, c in enumerate(cells))
            + " |"
        )

    sep = "|" + "|".join("-" * (w[i] + 1) + (":" if i else "-") for i in range(len(head))) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def ratio(a: list[Any], b: list[Any], col: str) -> str:
    """Median over rounds of streamlog / baseline in the same round (latency: p50 / p99)."""
    pairs = [(x, y) for x, y in zip(a, b, strict=False) if x is not None and y is not None]
    if not pairs:
        return ""
    if col in ("lat1", "latx"):
        p50 = statistics.median(x[0] / y[0] for x, y in pairs)
        p99 = statistics.median(x[1] / y[1] for x, y in pairs)
        return f"{p50:.2f} / {p99:.2f}"
    return f"{statistics.median(x / y for x, y in pairs):.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="short run (under a minute)")
    ap.add_argument("--records", type=int, help="records per throughput run and log size")
    ap.add_argument("--latency-records", type=int, help="measured records per latency run")
    ap.add_argument("--rounds", type=int, help="rounds (default 3)")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file (default benchmarks/results/table-<date>.txt)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.records = args.records or (20_000 if args.quick else 100_000)
    args.latency_records = args.latency_records or (500 if args.quick else 2_000)
    args.rounds = args.rounds or 3
    today = datetime.date.today().isoformat()
    out = args.out or os.path.join(
        REPO, "benchmarks", "results", f"table-{today}{'-quick' if args.quick else ''}.txt"
    )

    skipped: dict[str, str] = {}
    systems = dict(SYSTEMS)
    if lmdb is None:
        skipped["LMDB"] = "not installed (lmdb does not import)"
    peer, ck_info = load_confluent()
    if peer is None:
        skipped["confluent-kafka (mock)"] = f"{ck_info} (confluent_kafka)"
    for name in skipped:
        del systems[name]

    header = [
        "command: "
        + (f"PYTHONPATH={os.environ['PYTHONPATH']} " if os.environ.get("PYTHONPATH") else "")
        + " ".join([os.path.basename(sys.executable), *sys.argv]),
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"machine: {machine()}",
        f"source: {source_state(REPO)}, streamlog {getattr(streamlog, '__version__', '?')}",
        f"SQLite {sqlite3.sqlite_version}"
        + (f", LMDB {lmdb.version()}" if lmdb is not None else "")
        + (f", {ck_info}" if peer is not None else ""),
        f"records: {args.records:,} per throughput run (16-byte random key, 100-byte value); "
        f"latency: {args.latency_records:,} records after {WARMUP} warm-up at one per ms; "
        f"random reads: {args.latency_records:,} on the {args.records:,}-record log; "
        f"medians of {args.rounds} round(s)",
    ]
    print("\n".join(header), flush=True)

    results: dict[str, dict[str, list[Any]]] = {s: {c: [] for c in COLUMNS} for s in systems}
    errors: list[str] = []
    base = tempfile.mkdtemp(prefix="streamlog-bench-table-", dir=args.dir)
    t_start = time.monotonic()
    try:
        ctx = Ctx(args, base)
        ctx.state["ck-peer"] = peer
        names = list(systems)
        for rnd in range(args.rounds):
            ctx.round_dir = os.path.join(base, f"round-{rnd}")
            ctx.state["round"] = rnd
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            try:
                for col in COLUMNS:
                    for name in order:
                        fn = systems[name].get(col)
                        if fn is None:
                            continue
                        gc.collect()
                        t0 = time.monotonic()
                        try:
                            results[name][col].append(fn(ctx))
                        except Exception as exc:
                            results[name][col].append(None)
                            errors.append(f"round {rnd} {name} {col}: {exc!r}")
                        print(
                            f"  round {rnd + 1} {col:<8} {name:<30} {time.monotonic() - t0:6.1f} s",
                            file=sys.stderr,
                            flush=True,
                        )
            finally:
                sl_close(ctx)
                ck_close(ctx)
                ctx.state = {"ck-peer": peer}
                shutil.rmtree(ctx.round_dir, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    rows = [
        (name, skipped[name], *([""] * (len(COLUMNS) - 1)))
        if name in skipped
        else (
            name,
            *(
                fmt_cell(results[name][col], col) if col in systems[name] else "n/a"
                for col in COLUMNS
            ),
        )
        for name in SYSTEMS
    ]
    table = render(("", *HEADINGS), rows)
    sl = results["streamlog"]
    ratios = render(
        ("ratio", *HEADINGS),
        [
            (f"streamlog / {other}", *(ratio(sl[col], results[other][col], col) for col in COLUMNS))
            for other in ("SQLite", "minimal Python log")
        ],
    )
    notes = [
        "ratios: median over rounds of streamlog / baseline measured in the same round; "
        "rec/s: above 1 = streamlog faster; latency (p50 / p99) and random read: "
        "below 1 = streamlog faster.",
        f"total time: {time.monotonic() - t_start:.0f} s",
    ]
    if errors:
        notes += ["errors:", *(f"  {e}" for e in errors)]
    text = "\n".join([*header, "", table, "", ratios, "", *notes]) + "\n"
    print("\n" + table + "\n\n" + ratios + "\n\n" + "\n".join(notes))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(f"written to {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
