"""Peer baseline for the client benchmarks: confluent-kafka against librdkafka's mock cluster.

Importable (``run_confluent(records, latency_records)``) and runnable as a script::

    .venv/bin/python benchmarks/_peer_confluent.py            # 1,000,000 records, 5 runs, ~1 min
    .venv/bin/python benchmarks/_peer_confluent.py --records 200000 --runs 1

Options: ``--records N`` (records for workloads a-c, default 1,000,000),
``--latency-records N`` (measured records for workload d, default 20,000),
``--runs N`` (rounds of a-d, default 5; medians are reported), ``--json``.

The "broker" is librdkafka's built-in mock cluster (``test.mock.num.brokers=1``); it runs in
threads of a host client inside this process, and its address is read from the host's
metadata. The clients under test talk to it over loopback TCP with the Kafka protocol, so
this measures confluent-kafka (Python binding + librdkafka) plus a minimal in-process broker:
the nearest serverless peer of streamlog's clients. Everything shares this process's cores.

Records: 16-byte random key, 100-byte random value (from a pool of 4,096 of each; no
compression, so content does not matter), all produced to partition 0 of a fresh topic. The
mock auto-creates topics with 4 partitions and its CreateTopics does not complete
(AdminClient waits for a controller the mock never reports), so 3 partitions stay empty.

Workloads, in this order in every round (medians over the rounds):

a. ``Producer.produce()`` per record, ``acks=1``, ``linger.ms=5``, ``poll(0)`` every 1,000
   records, ``flush()`` at the end; records/s from the first ``produce`` to ``flush`` return.
   No per-record delivery callback; delivery is checked afterwards with the partition's
   high watermark.
b. The same with ``acks=all``. The mock appends and answers every Produce request the same
   way whatever ``acks`` says (one broker, no replication), so b differs from a by noise only.
c. Consume a backlog of N records with a ``Consumer`` (group id, ``auto.offset.reset=
   earliest``, ``enable.auto.commit=False``) via ``consume(num_messages=1000, timeout=1)``.
   The mock keeps only about 5 MB per partition (older message sets are dropped: a
   1,000,000-record backlog cannot exist), so the backlog is read in chunks of ``CHUNK``
   records: the consumer's partitions are paused, a chunk is produced as in (a) and flushed
   (the watermarks are checked: nothing trimmed), the partitions are resumed and the chunk
   is read. Each chunk is timed from the return of its first ``consume()`` call to its last
   record, and the records of that first call are not counted: records/s = (N - records of
   the first calls) / sum of chunk times. This measures the steady state a single long
   backlog would run at and leaves out what chunking adds per chunk: the group join (about
   3 s, once: the mock's initial rebalance delay), the resume and the first fetch (which can
   wait for a pending empty fetch, see d; ``fetch.wait.max.ms=10`` keeps that wait short,
   and a backlog read never sees an empty fetch otherwise). The mock returns one message
   set (producer batch, here ~4,000 records) per partition per Fetch, so this also depends
   on the batch sizes (a) makes.
d. End-to-end latency in one process: a producer thread sends one record every 50 us
   (busy-wait on ``time.perf_counter_ns`` calling ``time.sleep(0)``, ``poll(0)`` after
   every ``produce``), the value carrying a sequence number and the send timestamp; a
   consumer thread ``poll()``s, drains whatever else is fetched with ``consume(1000,
   timeout=0)`` and records receive time - send time. The run starts once the consumer has
   joined and received a sentinel record; the first ``LATENCY_WARMUP`` records are dropped.
   Settings, chosen for the lowest stable latency the mock allows:
   ``linger.ms=LATENCY_LINGER_MS`` and ``fetch.wait.max.ms=LATENCY_FETCH_WAIT_MS``. Why:
   the mock answers an empty Fetch only after the full ``fetch.wait.max.ms`` (a real broker
   answers as soon as data arrives), so the default 500 ms measures the mock; and it returns
   one message set per Fetch, so ``linger.ms=0`` (one record per message set at 20,000/s)
   outruns the consumer and the latency grows without bound.
   GIL: a busy-wait with ``pass`` holds the GIL; the consumer thread then only gets it by
   winning the race when the producer's ``poll(0)`` briefly releases it (and each release
   wakes the waiting thread, which restarts its 5 ms wait, so CPython's forced switch never
   fires); it falls behind in bursts and p99 swings between milliseconds and hundreds of
   milliseconds from run to run. Spinning on ``time.sleep(0)`` releases the GIL on every
   turn and keeps the pacing (``bench_latency(..., yield_gil=False)``: the plain busy-wait).

When confluent_kafka is not installed the module still imports; ``run_confluent`` then
returns ``{}`` and ``unavailable_reason()`` says why.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import struct
import sys
import threading
import time
from typing import Any

try:
    import confluent_kafka as _ck
except ImportError as _exc:  # pragma: no cover - depends on the environment
    _ck = None
    _IMPORT_ERROR: str | None = f"confluent_kafka is not importable: {_exc}"
else:
    _IMPORT_ERROR = None

KEY_SIZE = 16
VALUE_SIZE = 100
POOL = 4096
POLL_EVERY = 1000  # produce(): poll(0) every this many records
CONSUME_BATCH = 1000  # consume(num_messages=...)
CONSUME_FETCH_WAIT_MS = 10
CHUNK = 30_000  # backlog chunk for workload c; must stay under the mock's ~5 MB per partition
LINGER_MS = 5
LATENCY_INTERVAL_NS = 50_000
LATENCY_WARMUP = 2_000
LATENCY_LINGER_MS = 0.2
LATENCY_FETCH_WAIT_MS = 0
TIMEOUT_S = 120.0

_STAMP = struct.Struct("<qq")  # sequence number, send time (perf_counter_ns)


def unavailable_reason() -> str | None:
    """Why the baseline cannot run here, or None if it can."""
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    try:
        with MockCluster() as mc:
            mc.ensure_topic("probe")
    except Exception as exc:
        return f"librdkafka mock cluster does not work here: {exc!r}"
    return None


def versions() -> dict[str, str]:
    if _ck is None:
        return {}
    ver = getattr(_ck, "__version__", None) or _ck.version()
    if isinstance(ver, tuple):  # older releases return (str, int)
        ver = ver[0]
    return {"confluent_kafka": str(ver), "librdkafka": str(_ck.libversion()[0])}


# --------------------------------------------------------------------------- mock cluster
class MockCluster:
    """A mock cluster hosted by a Producer with ``test.mock.num.brokers=1``.

    The bootstrap address is read from the host's metadata (the mock broker's host:port);
    the clients under test connect to it like to any broker.
    """

    def __init__(self) -> None:
        assert _ck is not None
        self.errors: list[str] = []
        self._host = _ck.Producer(
            {"test.mock.num.brokers": 1, "log_level": 3, "error_cb": self._on_error}
        )
        md = self._host.list_topics(timeout=10)
        if len(md.brokers) != 1:
            raise RuntimeError(f"expected 1 mock broker, metadata lists {md.brokers}")
        broker = next(iter(md.brokers.values()))
        self.bootstrap = f"{broker.host}:{broker.port}"
        self._probe: Any = None
        self._groups = 0

    def _on_error(self, err: Any) -> None:
        self.errors.append(str(err))

    def config(self, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "error_cb": self._on_error,
            "log_level": 3,
        }
        conf.update({k.replace("_", "."): v for k, v in extra.items()})
        return conf

    def group_id(self) -> str:
        self._groups += 1
        return f"bench-{os.getpid()}-{self._groups}"

    def ensure_topic(self, topic: str) -> None:
        """Create ``topic`` (the mock auto-creates it on a producer's metadata request)."""
        md = self._host.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None or 0 not in t.partitions:
            raise RuntimeError(f"mock cluster did not create topic {topic!r}: {t and t.error}")

    def watermarks(self, topic: str) -> tuple[int, int]:
        assert _ck is not None
        if self._probe is None:
            self._probe = _ck.Consumer(self.config(group_id=self.group_id()))
        lo, hi = self._probe.get_watermark_offsets(_ck.TopicPartition(topic, 0), timeout=10)
        return int(lo), int(hi)

    def check(self) -> None:
        if self.errors:
            raise RuntimeError(f"client errors: {self.errors[:5]}")

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        self._host.flush(5)

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_pool(seed: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(seed)
    return (
        [rng.randbytes(KEY_SIZE) for _ in range(POOL)],
        [rng.randbytes(VALUE_SIZE) for _ in range(POOL)],
    )


def _produce_records(producer: Any, topic: str, n: int, keys: list[bytes], values: list[bytes]):
    """produce() n records to partition 0, poll(0) every POLL_EVERY; retries on a full queue."""
    produce, poll = producer.produce, producer.poll
    mask = POOL - 1
    for i in range(n):
        j = i & mask
        try:
            produce(topic, values[j], keys[j], partition=0)
        except BufferError:
            poll(0.001)
            produce(topic, values[j], keys[j], partition=0)
        if i % POLL_EVERY == 0:
            poll(0)


def _producer(mc: MockCluster, acks: Any, n: int, linger_ms: float = LINGER_MS) -> Any:
    assert _ck is not None
    return _ck.Producer(
        mc.config(
            acks=acks,
            linger_ms=linger_ms,
            queue_buffering_max_messages=max(100_000, min(n + 1, 10_000_000)),
            queue_buffering_max_kbytes=4 * 1024 * 1024,
        )
    )


# --------------------------------------------------------------------------- workloads a, b
def bench_produce(
    mc: MockCluster, topic: str, n: int, acks: Any, keys: list[bytes], values: list[bytes]
) -> float:
    """Seconds from the first produce() to flush() return."""
    mc.ensure_topic(topic)
    p = _producer(mc, acks, n)
    p.list_topics(topic, timeout=10)  # connect and cache metadata before the clock starts
    _, hi0 = mc.watermarks(topic)
    t0 = time.perf_counter()
    _produce_records(p, topic, n, keys, values)
    left = p.flush(TIMEOUT_S)
    dt = time.perf_counter() - t0
    if left:
        raise RuntimeError(f"flush left {left} records undelivered")
    _, hi = mc.watermarks(topic)
    if hi - hi0 != n:
        raise RuntimeError(f"high watermark moved by {hi - hi0}, expected {n}")
    mc.check()
    return dt


# --------------------------------------------------------------------------- workload c
def bench_consume(
    mc: MockCluster, topic: str, n: int, keys: list[bytes], values: list[bytes]
) -> tuple[int, float, float]:
    """Read a backlog of n records in chunks.

    Returns (records timed, seconds reading them, seconds from subscribe to the first record).
    """
    assert _ck is not None
    mc.ensure_topic(topic)
    p = _producer(mc, 1, CHUNK)
    p.list_topics(topic, timeout=10)
    c = _ck.Consumer(
        mc.config(
            group_id=mc.group_id(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # Only shortens the mock's wait on the empty fetch pending at the end of each
            # chunk (see d), which is outside the timed part anyway; saves ~0.5 s per chunk.
            fetch_wait_max_ms=CONSUME_FETCH_WAIT_MS,
        )
    )
    consume = c.consume
    total = 0.0
    timed = 0
    join = 0.0
    read = 0
    try:
        while read < n:
            chunk = min(CHUNK, n - read)
            if read:
                c.pause(c.assignment())
            _, start = mc.watermarks(topic)
            _produce_records(p, topic, chunk, keys, values)
            if p.flush(TIMEOUT_S):
                raise RuntimeError("flush timed out")
            lo, hi = mc.watermarks(topic)
            if lo > start or hi - start != chunk:
                raise RuntimeError(
                    f"mock partition trimmed or short: chunk {start}..{start + chunk}, "
                    f"log {lo}..{hi}"
                )
            t_call = time.perf_counter()
            if read:
                c.resume(c.assignment())
                # A request to the broker wakes the consumer's broker thread, which otherwise
                # notices the resumed partitions only on its next periodic wake-up (~1 s).
                c.get_watermark_offsets(_ck.TopicPartition(topic, 0), timeout=10)
            else:
                c.subscribe([topic])
            got = first = 0
            t_first = 0.0
            deadline = t_call + TIMEOUT_S
            while got < chunk:
                msgs = consume(num_messages=CONSUME_BATCH, timeout=1.0)
                if not msgs:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"consume timed out after {got} of {chunk}")
                    continue
                if not got:
                    t_first = time.perf_counter()
                    first = len(msgs)
                for m in msgs:
                    if m.error() is not None:
                        raise RuntimeError(f"consume error: {m.error()}")
                got += len(msgs)
            t_last = time.perf_counter()
            if got != chunk:
                raise RuntimeError(f"read {got} records, expected {chunk}")
            if not read:
                join = t_first - t_call
            total += t_last - t_first
            timed += chunk - first
            read += chunk
    finally:
        c.close()
    mc.check()
    return timed, total, join


# --------------------------------------------------------------------------- workload d
def bench_latency(
    mc: MockCluster,
    topic: str,
    n: int,
    *,
    warmup: int = LATENCY_WARMUP,
    interval_ns: int = LATENCY_INTERVAL_NS,
    linger_ms: float = LATENCY_LINGER_MS,
    fetch_wait_ms: int = LATENCY_FETCH_WAIT_MS,
    yield_gil: bool = True,
) -> dict[str, float]:
    """Producer thread at one record per interval_ns, consumer thread poll()ing.

    ``yield_gil=False`` busy-waits with ``pass`` (holding the GIL); see the module docstring.
    """
    assert _ck is not None
    mc.ensure_topic(topic)
    total = warmup + n
    p = _producer(mc, 1, total, linger_ms=linger_ms)
    p.list_topics(topic, timeout=10)
    c = _ck.Consumer(
        mc.config(
            group_id=mc.group_id(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_wait_max_ms=fetch_wait_ms,
        )
    )
    assigned = threading.Event()
    c.subscribe([topic], on_assign=lambda _c, _parts: assigned.set())
    lat_ns: list[int] = []
    failure: list[BaseException] = []
    pad = bytes(VALUE_SIZE - _STAMP.size)
    key = bytes(KEY_SIZE)
    sent = [0, 0.0]  # records sent, seconds spent sending

    def consumer() -> None:
        try:
            poll, consume = c.poll, c.consume
            now, unpack = time.perf_counter_ns, _STAMP.unpack_from
            seen = 0
            deadline = time.monotonic() + TIMEOUT_S
            while seen < total:
                m = poll(0.1)  # waits without the GIL until a record is there
                if m is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"latency consumer timed out after {seen} records")
                    continue
                t = now()
                # Drain whatever else is already fetched without waiting, so one GIL
                # acquisition serves every queued record (see the module docstring).
                rest = consume(num_messages=CONSUME_BATCH, timeout=0)
                t_rest = now() if rest else t
                for msg, tr in [(m, t), *((x, t_rest) for x in rest)]:
                    if msg.error() is not None:
                        raise RuntimeError(f"consume error: {msg.error()}")
                    seq, ts = unpack(msg.value())
                    if seq >= warmup:
                        lat_ns.append(tr - ts)
                    seen += 1
        except BaseException as exc:
            failure.append(exc)

    def producer() -> None:
        try:
            produce, poll, now, pack = p.produce, p.poll, time.perf_counter_ns, _STAMP.pack
            sleep = time.sleep
            t0 = now()
            nxt = t0
            for i in range(total):
                if yield_gil:
                    while now() < nxt:
                        sleep(0)  # releases the GIL on every turn of the wait
                else:
                    while now() < nxt:
                        pass
                produce(topic, pack(i, now()) + pad, key, partition=0)
                poll(0)
                nxt += interval_ns
            sent[0] = total
            sent[1] = (now() - t0) / 1e9
            p.flush(TIMEOUT_S)
        except BaseException as exc:
            failure.append(exc)

    try:
        # Join the group (the mock delays the first join ~3 s), then send one sentinel record
        # and wait for it, so the consumer is fetching at the log end before the run starts.
        deadline = time.monotonic() + 30
        while not assigned.is_set():
            if c.poll(0.05) is not None:
                raise RuntimeError("unexpected record before the latency run started")
            if time.monotonic() > deadline:
                raise RuntimeError("latency consumer was not assigned in 30 s")
        p.produce(topic, _STAMP.pack(-1, 0) + pad, key, partition=0)
        p.flush(TIMEOUT_S)
        while True:
            m = c.poll(0.1)
            if m is not None:
                if m.error() is not None:
                    raise RuntimeError(f"consume error: {m.error()}")
                break
            if time.monotonic() > deadline:
                raise RuntimeError("latency consumer did not receive the sentinel in 30 s")
        tc = threading.Thread(target=consumer, name="latency-consumer")
        tp = threading.Thread(target=producer, name="latency-producer")
        tc.start()
        tp.start()
        tp.join()
        tc.join()
    finally:
        c.close()
    if failure:
        raise failure[0]
    mc.check()
    lat = sorted(lat_ns)
    return {
        "e2e_p50_us": percentile(lat, 0.50) / 1e3,
        "e2e_p99_us": percentile(lat, 0.99) / 1e3,
        "e2e_p999_us": percentile(lat, 0.999) / 1e3,
        "e2e_max_us": lat[-1] / 1e3,
        "e2e_send_rps": sent[0] / sent[1] if sent[1] else float("nan"),
    }


def percentile(sorted_xs: list[int] | list[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    i = min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))
    return float(sorted_xs[i])


# --------------------------------------------------------------------------- entry points
def run_confluent_runs(
    records: int, latency_records: int, runs: int = 5, seed: int = 1
) -> list[dict[str, float]]:
    """All rounds' raw results ([] if confluent_kafka is unavailable)."""
    if _ck is None:
        return []
    keys, values = make_pool(seed)
    out: list[dict[str, float]] = []
    with MockCluster() as mc:
        for r in range(runs):
            res: dict[str, float] = {}
            dt = bench_produce(mc, f"produce-acks1-{r}", records, 1, keys, values)
            res["produce_acks1_rps"] = records / dt
            dt = bench_produce(mc, f"produce-acksall-{r}", records, "all", keys, values)
            res["produce_acksall_rps"] = records / dt
            timed, dt, join = bench_consume(mc, f"consume-{r}", records, keys, values)
            res["consume_rps"] = timed / dt
            res["consume_join_s"] = join
            if latency_records > 0:
                res.update(bench_latency(mc, f"latency-{r}", latency_records))
            out.append(res)
    return out


def run_confluent(records: int, latency_records: int, runs: int = 5) -> dict[str, float]:
    """Medians over ``runs`` rounds of workloads a-d; ``{}`` if confluent_kafka is missing.

    Keys: produce_acks1_rps, produce_acksall_rps, consume_rps, consume_join_s,
    e2e_p50_us, e2e_p99_us, e2e_p999_us, e2e_max_us, e2e_send_rps.
    """
    rounds = run_confluent_runs(records, latency_records, runs)
    if not rounds:
        return {}
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--latency-records", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = ap.parse_args(argv)

    reason = _IMPORT_ERROR
    if reason is not None:
        print(f"confluent-kafka baseline unavailable: {reason}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rounds = run_confluent_runs(args.records, args.latency_records, args.runs)
    elapsed = time.perf_counter() - t0
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    if args.json:
        print(json.dumps({"medians": med, "runs": rounds, **versions()}, indent=2))
        return 0

    v = versions()
    print(
        f"confluent-kafka {v['confluent_kafka']} / librdkafka {v['librdkafka']}, mock cluster "
        f"(1 broker), Python {platform.python_version()}, nproc={os.cpu_count()}"
    )
    print(
        f"records: {KEY_SIZE} B key + {VALUE_SIZE} B value; a-c {args.records:,} records, "
        f"d {args.latency_records:,} records after {LATENCY_WARMUP:,} warm-up; "
        f"median of {args.runs} run(s); total {elapsed:.0f} s"
    )

    def row(name: str, key: str, fmt: str, unit: str) -> None:
        xs = [r[key] for r in rounds]
        spread = f"runs {min(xs):{fmt}}-{max(xs):{fmt}}" if len(xs) > 1 else ""
        print(f"{name:<50}{med[key]:>12{fmt}} {unit:<3} {spread}")

    print("-" * 100)
    row("a. produce, acks=1 (records/s)", "produce_acks1_rps", ",.0f", "/s")
    row("b. produce, acks=all (records/s)", "produce_acksall_rps", ",.0f", "/s")
    row(f"c. consume backlog, chunks of {CHUNK:,} (records/s)", "consume_rps", ",.0f", "/s")
    row("   group join before first record", "consume_join_s", ".2f", "s")
    if args.latency_records > 0:
        row("d. end-to-end latency p50", "e2e_p50_us", ",.0f", "us")
        row("   p99", "e2e_p99_us", ",.0f", "us")
        row("   p99.9", "e2e_p999_us", ",.0f", "us")
        row("   max", "e2e_max_us", ",.0f", "us")
        row("   achieved send rate (records/s)", "e2e_send_rps", ",.0f", "/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
