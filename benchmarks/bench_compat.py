"""Compatibility shims: produce/consume throughput through each shim against the same real
client on librdkafka's mock cluster, and the pytest fixture's set-up time.

    .venv/bin/python benchmarks/bench_compat.py                 # ~2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_compat.py --records 50000 --runs 1   # quick look

Options: ``--records N`` (records per run, default 200,000), ``--kp-records N`` (for the
kafka-python rows, default: a quarter of ``--records``: the real kafka-python is pure
Python and slow), ``--runs N`` (default 3; medians are reported with the range),
``--fixture-tests N`` (tests per fixture for the set-up rows, default 200), ``--out FILE``
(default ``benchmarks/results/compat-<date>.txt``), ``--profile SIDE`` (instead of the
benchmark: one run of a shim workload, ``ck-produce``, ``ck-consume``, ``kp-produce`` or
``kp-consume``, under pyinstrument).

Clients and what is measured (records: 16-byte key, 100-byte value, from pools of 4,096,
all to partition 0 of a fresh topic; ``acks=1``, ``linger.ms``/``linger_ms`` 5):

- **confluent-kafka**, the streamlog shim (``streamlog.compat.install()`` over a temporary
  data directory, ``import confluent_kafka``) and the real confluent-kafka against the mock
  cluster (``benchmarks/_peer_confluent.py``: its workloads a and c). Produce:
  ``produce(topic, value, key, partition=0)`` per record, ``poll(0)`` every 1,000,
  ``flush()``; records/s from the first ``produce`` to ``flush`` return. Consume:
  ``consume(num_messages=1000, timeout=1)`` over a backlog, timed from the return of the
  first ``consume`` call to the last record, the records of that first call not counted
  (the peer's method: it leaves out the group join; the mock keeps ~5 MB per partition, so
  the peer reads its backlog in chunks of 30,000, see its docstring).
- **kafka-python**, the streamlog shim and the real kafka-python (``api_version=(2, 1)``:
  the mock cannot answer kafka-python 3.x's ApiVersions v4 probe, see
  tests/compat/test_differential.py) against the mock. Produce: ``send(topic, value,
  key=key, partition=0)`` per record, ``flush()``. Consume: ``assign`` partition 0,
  ``poll(timeout_ms=1000)`` (500 records at most per call, kafka-python's default), timed
  as above; the real client reads chunks of 30,000 (written by a confluent producer, not
  timed) for the same reason.

The status column compares each shim with the same real client (target: at least as
fast). The fixture rows run ``benchmarks/bench_fixture.py``'s generated suite in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peer_confluent as peer  # (imports the real confluent_kafka, if installed)
import bench_fixture
from _common import Table, settle, source_state, spread, status, write_report

import streamlog.compat

CHUNK = peer.CHUNK
POLL_EVERY = peer.POLL_EVERY
CONSUME_BATCH = peer.CONSUME_BATCH
TIMEOUT_S = 120.0
KAFKA_API_VERSION = (2, 1)

try:  # the real kafka-python, imported before any install() sets the name aside
    import kafka as _real_kafka

    if _real_kafka.__name__ != "kafka":
        _real_kafka = None
except ImportError:
    _real_kafka = None


# --------------------------------------------------------------------------- shims
@contextlib.contextmanager
def shim_modules(base: str) -> Iterator[tuple[Any, Any]]:
    """``confluent_kafka`` and ``kafka`` as users get the shims: ``install()`` then import."""
    path = tempfile.mkdtemp(prefix="compat-", dir=base)
    inst = streamlog.compat.install(path)
    try:
        ck = importlib.import_module("confluent_kafka")
        kafka = importlib.import_module("kafka")
        assert ck.__name__.startswith("streamlog.") and kafka.__name__.startswith("streamlog.")
        yield ck, kafka
    finally:
        inst.__exit__()
        shutil.rmtree(path, ignore_errors=True)


def ck_produce(ck: Any, conf: dict[str, Any], topic: str, n: int, keys: list[bytes],
               values: list[bytes]) -> float:
    p = ck.Producer({"acks": 1, "linger.ms": 5,
                     "queue.buffering.max.messages": max(100_000, n + 1), **conf})
    p.list_topics(topic)
    t0 = time.perf_counter()
    peer._produce_records(p, topic, n, keys, values)
    left = p.flush(TIMEOUT_S)
    dt = time.perf_counter() - t0
    if left:
        raise RuntimeError(f"flush left {left} records")
    return dt


def ck_consume(ck: Any, topic: str, n: int) -> tuple[int, float]:
    """(records timed, seconds) reading a backlog of n records with consume()."""
    c = ck.Consumer({"group.id": f"bench-{topic}", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    c.subscribe([topic])
    got = first = 0
    t_first = 0.0
    deadline = time.perf_counter() + TIMEOUT_S
    consume = c.consume
    try:
        while got < n:
            msgs = consume(num_messages=CONSUME_BATCH, timeout=1.0)
            if not msgs:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"consume timed out after {got} of {n}")
                continue
            if not got:
                t_first = time.perf_counter()
                first = len(msgs)
            for m in msgs:
                if m.error() is not None:
                    raise RuntimeError(f"consume error: {m.error()}")
            got += len(msgs)
        dt = time.perf_counter() - t_first
    finally:
        c.close()
    if got != n:
        raise RuntimeError(f"read {got} records, expected {n}")
    return n - first, dt


def kp_produce(kafka: Any, conf: dict[str, Any], topic: str, n: int, keys: list[bytes],
               values: list[bytes]) -> float:
    p = kafka.KafkaProducer(acks=1, linger_ms=5, **conf)
    try:
        p.partitions_for(topic)
        send, mask = p.send, peer.POOL - 1
        t0 = time.perf_counter()
        for i in range(n):
            j = i & mask
            send(topic, values[j], key=keys[j], partition=0)
        p.flush(TIMEOUT_S)
        return time.perf_counter() - t0
    finally:
        p.close(10)


def kp_read(c: Any, n: int, deadline: float) -> tuple[int, float]:
    """Poll until n records; (records after the first poll that returned some, seconds
    from that poll's return to the last record)."""
    poll = c.poll
    got = first = 0
    t_first = 0.0
    while got < n:
        batch = poll(timeout_ms=1000)
        k = sum(len(v) for v in batch.values())
        if not k:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"poll timed out after {got} of {n}")
            continue
        if not got:
            t_first = time.perf_counter()
            first = k
        got += k
    if got != n:
        raise RuntimeError(f"read {got} records, expected {n}")
    return n - first, time.perf_counter() - t_first


def kp_consume_shim(kafka: Any, topic: str, n: int) -> tuple[int, float]:
    c = kafka.KafkaConsumer(auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        tp = kafka.TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        return kp_read(c, n, time.perf_counter() + TIMEOUT_S)
    finally:
        c.close()


# --------------------------------------------------------------------------- real clients
def kp_consume_real(mc: peer.MockCluster, topic: str, n: int, keys: list[bytes],
                    values: list[bytes]) -> tuple[int, float]:
    """The real kafka-python reading n records from the mock, in chunks of CHUNK written
    (untimed) by a confluent producer between reads."""
    assert _real_kafka is not None
    mc.ensure_topic(topic)
    p = peer._producer(mc, 1, CHUNK)
    c = _real_kafka.KafkaConsumer(bootstrap_servers=mc.bootstrap,
                                  api_version=KAFKA_API_VERSION, fetch_max_wait_ms=10,
                                  auto_offset_reset="earliest", enable_auto_commit=False)
    tp = _real_kafka.TopicPartition(topic, 0)
    c.assign([tp])
    timed, total, read = 0, 0.0, 0
    try:
        while read < n:
            chunk = min(CHUNK, n - read)
            peer._produce_records(p, topic, chunk, keys, values)
            if p.flush(TIMEOUT_S):
                raise RuntimeError("flush timed out")
            k, dt = kp_read(c, chunk, time.perf_counter() + TIMEOUT_S)
            timed += k
            total += dt
            read += chunk
    finally:
        c.close()
    return timed, total


# --------------------------------------------------------------------------- driver
def run(records: int, kp_records: int, runs: int, base: str,
        note: Callable[[str], None]) -> dict[str, list[float]]:
    """records/s per workload, one entry per run."""
    keys, values = peer.make_pool(1)
    res: dict[str, list[float]] = {}

    def add(key: str, v: float) -> None:
        res.setdefault(key, []).append(v)

    for r in range(runs):
        with shim_modules(base) as (ck, kafka):
            settle()
            add("ck_shim_produce", records / ck_produce(ck, {}, f"ck-{r}", records, keys, values))
            settle()
            timed, dt = ck_consume(ck, f"ck-{r}", records)
            add("ck_shim_consume", timed / dt)
            settle()
            dt = kp_produce(kafka, {}, f"kp-{r}", kp_records, keys, values)
            add("kp_shim_produce", kp_records / dt)
            settle()
            timed, dt = kp_consume_shim(kafka, f"kp-{r}", kp_records)
            add("kp_shim_consume", timed / dt)
        note(f"run {r + 1}: shims done")
        if peer._ck is None:
            continue
        with peer.MockCluster() as mc:
            dt = peer.bench_produce(mc, f"peer-produce-{r}", records, 1, keys, values)
            add("ck_real_produce", records / dt)
            timed, dt, _join = peer.bench_consume(mc, f"peer-consume-{r}", records, keys, values)
            add("ck_real_consume", timed / dt)
            if _real_kafka is not None:
                topic = f"kp-produce-{r}"
                mc.ensure_topic(topic)
                conf = {"bootstrap_servers": mc.bootstrap, "api_version": KAFKA_API_VERSION}
                dt = kp_produce(_real_kafka, conf, topic, kp_records, keys, values)
                add("kp_real_produce", kp_records / dt)
                timed, dt = kp_consume_real(mc, f"kp-consume-{r}", kp_records, keys, values)
                add("kp_real_consume", timed / dt)
        note(f"run {r + 1}: real clients done")
    return res


def profile(what: str, records: int, base: str) -> None:
    from pyinstrument import Profiler

    keys, values = peer.make_pool(1)
    with shim_modules(base) as (ck, kafka):
        if what.endswith("consume"):  # the backlog first, not profiled
            if what.startswith("ck"):
                ck_produce(ck, {}, "t", records, keys, values)
            else:
                kp_produce(kafka, {}, "t", records, keys, values)
        prof = Profiler(interval=0.0005)
        prof.start()
        if what == "ck-produce":
            ck_produce(ck, {}, "t", records, keys, values)
        elif what == "ck-consume":
            ck_consume(ck, "t", records)
        elif what == "kp-produce":
            kp_produce(kafka, {}, "t", records, keys, values)
        elif what == "kp-consume":
            kp_consume_shim(kafka, "t", records)
        else:
            raise SystemExit(f"unknown --profile {what!r}")
        prof.stop()
    print(prof.output_text(unicode=False, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--kp-records", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fixture-tests", type=int, default=200)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--out")
    ap.add_argument("--profile", metavar="WORKLOAD")
    args = ap.parse_args(argv)
    kp_records = args.kp_records or max(1, args.records // 4)
    here = os.path.dirname(os.path.abspath(__file__))
    base = tempfile.mkdtemp(prefix="streamlog-bench-compat-", dir=args.dir)
    try:
        if args.profile:
            profile(args.profile, args.records, base)
            return 0
        out_path = args.out or os.path.join(
            here, "results", f"compat-{datetime.date.today().isoformat()}.txt")
        source = source_state(os.path.dirname(here))
        load = os.getloadavg()
        t_start = time.perf_counter()

        def note(msg: str) -> None:
            print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

        res = run(args.records, kp_records, args.runs, base, note)
        rc, times = bench_fixture.measure(args.fixture_tests)
        if rc:
            raise RuntimeError(f"the fixture suite failed (pytest exit code {rc})")
        note("fixture set-up measured")
    finally:
        shutil.rmtree(base, ignore_errors=True)

    table = Table("workload")
    med = {k: statistics.median(v) for k, v in res.items()}

    def rate_row(name: str, key: str, real_key: str | None = None, detail: str = "") -> None:
        xs = res.get(key)
        if not xs:
            table.row(name, "n/a", "", detail or "client not installed")
            return
        target = ok = ""
        if real_key is not None and real_key in med:
            ratio = med[key] / med[real_key]
            detail = f"{ratio:.2f}x the real client{'; ' + detail if detail else ''}"
            target = ">= 1.00x"
            ok = status(ratio >= 1.0)
        table.row(name, f"{med[key]:,.0f}/s", spread(xs) if len(xs) > 1 else "", detail,
                  target, ok)

    v = peer.versions()
    real_ck = (f"confluent-kafka {v['confluent_kafka']} / librdkafka {v['librdkafka']}"
               if v else "confluent-kafka not installed")
    real_kp = (f"kafka-python {_real_kafka.__version__}" if _real_kafka is not None
               else "kafka-python not installed")
    table.section(f"confluent-kafka API, {args.records:,} records (real: {real_ck}, mock "
                  "cluster)")
    rate_row("produce: streamlog shim", "ck_shim_produce", "ck_real_produce")
    rate_row("produce: real client on the mock", "ck_real_produce")
    rate_row("consume: streamlog shim", "ck_shim_consume", "ck_real_consume")
    rate_row("consume: real client on the mock", "ck_real_consume",
             detail=f"backlog read in chunks of {CHUNK:,}")
    table.section(f"kafka-python API, {kp_records:,} records (real: {real_kp}, mock cluster)")
    rate_row("produce: streamlog shim", "kp_shim_produce", "kp_real_produce")
    rate_row("produce: real client on the mock", "kp_real_produce")
    rate_row("consume: streamlog shim", "kp_shim_consume", "kp_real_consume")
    rate_row("consume: real client on the mock", "kp_real_consume",
             detail=f"backlog read in chunks of {CHUNK:,}")
    table.section(f"pytest fixture set-up per test ({args.fixture_tests} tests each, "
                  "bench_fixture.py)")
    for group in bench_fixture.GROUPS:
        s = bench_fixture.summary(times, group)
        table.row(group.removeprefix("test_"), f"{s['setup_median']:.2f} ms", "",
                  f"p95 {s['setup_p95']:.2f} ms, mean {s['setup_mean']:.2f} ms, teardown "
                  f"{s['teardown_median']:.2f} ms")
    write_report(
        f"Compatibility shims vs the real clients ({args.runs} run(s); median, range)",
        table, source, t_start, load, out_path,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
