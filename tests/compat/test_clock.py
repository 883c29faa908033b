"""The cluster's clock (``kafka_cluster.clock``, ``Installation.clock``): record timestamps
of both shims' producers, retention, LogAppendTime and transaction timeouts follow it once
a test sets or advances it."""

from __future__ import annotations

import time
from typing import Any

import pytest

DAY_MS = 86_400_000
T0 = 1_600_000_000_000  # a time well before the real one


def _values_kp(kafka_cluster: Any, topic: str) -> list[tuple[bytes, int]]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=kafka_cluster.bootstrap_servers,
                      auto_offset_reset="earliest", consumer_timeout_ms=300)
    out = [(r.value, r.timestamp) for r in c]
    c.close()
    return out


def test_clock_is_real_until_set(kafka_cluster: Any) -> None:
    clock = kafka_cluster.clock
    assert not clock.frozen and clock.fixed_ms is None
    assert abs(clock.now_ms() - time.time() * 1000) < 1000
    assert abs(clock() - time.time()) < 1
    assert clock.set(T0) == T0
    assert clock.frozen and clock.now_ms() == T0 and int(clock() * 1000) == T0
    time.sleep(0.01)
    assert clock.now_ms() == T0  # frozen: moves only when told
    assert clock.advance(1500) == T0 + 1500 == clock.now_ms()
    assert clock.advance(0) == T0 + 1500
    assert clock.set(5) == 5  # may be set back, as a wall clock may
    assert int(clock() * 1000) == 5
    for bad in (-1, 1.5, "1", True, None):
        with pytest.raises((TypeError, ValueError)):
            clock.set(bad)
        with pytest.raises((TypeError, ValueError)):
            clock.advance(bad)
    assert clock.now_ms() == 5
    assert "frozen at 5 ms" in repr(clock)


def test_advance_from_real_time_freezes_there(kafka_cluster: Any) -> None:
    before = int(time.time() * 1000)
    now = kafka_cluster.clock.advance(DAY_MS)
    assert before + DAY_MS <= now <= int(time.time() * 1000) + DAY_MS
    assert kafka_cluster.clock.now_ms() == now


def test_producer_timestamps_follow_the_clock(kafka_cluster: Any) -> None:
    from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer
    from kafka import KafkaProducer

    kafka_cluster.clock.set(T0)
    kp = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    assert kp.send("t", b"kp-1").get(5).timestamp == T0
    kafka_cluster.clock.advance(10)
    assert kp.send("t", b"kp-2", timestamp_ms=42).get(5).timestamp == 42  # given: kept
    reports: list[Any] = []
    cp = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    cp.produce("t", b"ck-1", on_delivery=lambda err, msg: reports.append(msg))
    kafka_cluster.clock.advance(10)
    cp.produce("t", b"ck-2", timestamp=7, on_delivery=lambda err, msg: reports.append(msg))
    assert cp.flush(5) == 0
    assert [m.timestamp() for m in reports] == [(TIMESTAMP_CREATE_TIME, T0 + 10),
                                                (TIMESTAMP_CREATE_TIME, 7)]
    assert _values_kp(kafka_cluster, "t") == [
        (b"kp-1", T0), (b"kp-2", 42), (b"ck-1", T0 + 10), (b"ck-2", 7)]
    c = Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["t"])
    seen = []
    deadline = time.monotonic() + 5
    while len(seen) < 4 and time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None and not msg.error():
            seen.append(msg.timestamp())
    assert seen == [(TIMESTAMP_CREATE_TIME, t) for t in (T0, 42, T0 + 10, 7)]
    c.close()
    kafka_cluster.clock.set(0)  # the epoch itself is a time like any other
    assert kp.send("t", b"kp-3").get(5).timestamp == 0
    kp.close()


def test_log_append_time_follows_the_clock(kafka_cluster: Any) -> None:
    """A LogAppendTime topic stamps records with the cluster's clock; confluent's
    Message.timestamp() then says TIMESTAMP_LOG_APPEND_TIME (it said CREATE_TIME)."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer
    from kafka import KafkaConsumer, KafkaProducer

    kafka_cluster.log.create_topic("lat", config={"message.timestamp.type": "LogAppendTime"})
    kafka_cluster.clock.set(T0)
    kp = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    assert kp.send("lat", b"a", timestamp_ms=1).get(5).timestamp == T0
    kp.close()
    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    p.produce("lat", b"b", timestamp=1)
    assert p.flush(5) == 0
    c = Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["lat"])
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None and not msg.error():
            got.append(msg.timestamp())
    assert got == [(TIMESTAMP_LOG_APPEND_TIME, T0)] * 2
    c.close()
    kc = KafkaConsumer("lat", auto_offset_reset="earliest", consumer_timeout_ms=300)
    assert [(r.timestamp, r.timestamp_type) for r in kc] == [(T0, 1), (T0, 1)]
    kc.close()


@pytest.mark.parametrize("shim", ["kafka", "confluent_kafka"])
def test_retention_runs_when_the_clock_moves(kafka_cluster: Any, shim: str) -> None:
    """Each set/advance runs a retention pass: a segment whose newest record is older
    than retention.ms by the clock goes (whole segments, never the log end)."""
    kafka_cluster.log.create_topic(
        "r", config={"retention.ms": DAY_MS, "segment.bytes": 1024 * 1024})
    kafka_cluster.clock.set(T0)
    if shim == "kafka":
        from kafka import KafkaProducer

        p: Any = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
        for i in range(3):
            p.send("r", b"old-%d" % i).get(5)
    else:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
        for i in range(3):
            p.produce("r", b"old-%d" % i)
        assert p.flush(5) == 0
    part = kafka_cluster.log.describe_topic("r").partitions[0]
    assert (part.log_start_offset, part.end_offset) == (0, 3)
    kafka_cluster.clock.advance(DAY_MS)  # exactly retention.ms old: kept (Kafka: older than)
    assert kafka_cluster.log.describe_topic("r").partitions[0].log_start_offset == 0
    kafka_cluster.clock.advance(1)
    part = kafka_cluster.log.describe_topic("r").partitions[0]
    assert (part.log_start_offset, part.end_offset) == (3, 3)
    assert _values_kp(kafka_cluster, "r") == []
    if shim == "kafka":
        assert p.send("r", b"new").get(5).offset == 3
    else:
        p.produce("r", b"new")
        assert p.flush(5) == 0
    assert _values_kp(kafka_cluster, "r") == [(b"new", T0 + DAY_MS + 1)]


def test_kafka_python_transaction_times_out_by_the_clock(kafka_cluster: Any) -> None:
    from kafka import KafkaProducer
    from kafka import errors as Errors

    kafka_cluster.clock.set(T0)
    p = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers,
                      transactional_id="tx-kp", transaction_timeout_ms=10_000)
    p.init_transactions()
    p.begin_transaction()
    p.send("tx", b"never").get(5)
    kafka_cluster.clock.advance(10_000)
    assert kafka_cluster.log.describe_transaction("tx-kp").state == "Ongoing"
    kafka_cluster.clock.advance(1)  # past transaction.timeout.ms: aborted, producer fenced
    assert kafka_cluster.log.describe_transaction("tx-kp").state == "CompleteAbort"
    with pytest.raises(Errors.ProducerFencedError):
        p.commit_transaction()
    p.close()


def test_confluent_transaction_times_out_by_the_clock(kafka_cluster: Any) -> None:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

    kafka_cluster.clock.set(T0)
    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers,
                  "transactional.id": "tx-ck", "transaction.timeout.ms": 10_000})
    p.init_transactions()
    p.begin_transaction()
    p.produce("tx", b"never")
    assert p.flush(5) == 0
    c = Consumer({"group.id": "g", "auto.offset.reset": "earliest"})  # read_committed
    c.subscribe(["tx"])
    assert c.poll(0.3) is None  # held back by the open transaction
    kafka_cluster.clock.advance(10_001)
    with pytest.raises(KafkaException) as info:
        p.commit_transaction()
    assert info.value.args[0].code() == KafkaError._FENCED and info.value.args[0].fatal()
    assert c.poll(0.3) is None  # aborted: never visible
    assert kafka_cluster.log.describe_transaction("tx-ck").state == "CompleteAbort"
    c.close()


def test_the_clock_after_uninstall_is_harmless(kafka_cluster: Any) -> None:
    import streamlog.compat

    clock = kafka_cluster.clock
    streamlog.compat.uninstall()
    assert clock.advance(5) > 0  # the housekeeping finds the directory closed: skipped
