"""The confluent-kafka shim: confluent-kafka's documented examples run unchanged after
``streamlog.compat.install()``, plus librdkafka's partitioning, queue limit, EOF events,
errors and transactions."""

from __future__ import annotations

import importlib
import os
import time
import zlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import streamlog
import streamlog.compat


@pytest.fixture
def installed(tmp_path: os.PathLike[str]) -> Iterator[streamlog.compat.Installation]:
    inst = streamlog.compat.install(os.path.join(os.fspath(tmp_path), "data"))
    try:
        yield inst
    finally:
        streamlog.compat.uninstall()


@pytest.fixture
def ck(installed: Any) -> ModuleType:
    """``import confluent_kafka``, resolved to the shim."""
    return importlib.import_module("confluent_kafka")


@pytest.fixture
def admin(installed: Any) -> ModuleType:
    return importlib.import_module("confluent_kafka.admin")


def _consume_all(c: Any, n: int, timeout: float = 5.0) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            continue
        out.append(msg)
    return out


# ---------------------------------------------------------------- the documented examples


def test_import_resolves_to_the_shim(ck: ModuleType, admin: ModuleType) -> None:
    assert ck.__name__ == "streamlog.compat.confluent_kafka"
    assert admin.AdminClient.__module__.startswith("streamlog.compat.confluent_kafka")
    assert ck.Producer is importlib.import_module("streamlog.compat.confluent_kafka").Producer


def test_readme_producer_example(ck: ModuleType) -> None:
    """confluent-kafka's README producer, unchanged but for the data source and prints."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": "mybroker1,mybroker2"})
    delivered: list[tuple[Any, Any]] = []

    def delivery_report(err: Any, msg: Any) -> None:
        """Called once for each message produced to indicate delivery result.
        Triggered by poll() or flush()."""
        delivered.append((err, msg))

    some_data_source = ["a", "b", "c"]
    for data in some_data_source:
        p.poll(0)
        p.produce("mytopic", data.encode("utf-8"), callback=delivery_report)
    time.sleep(0.05)  # written by now (linger.ms=5), but reports wait for poll/flush
    assert len(delivered) < 3
    assert p.flush() == 0
    assert len(p) == 0
    assert [e for e, _ in delivered] == [None, None, None]
    assert [(m.topic(), m.partition(), m.offset(), m.value()) for _, m in delivered] == [
        ("mytopic", 0, 0, b"a"), ("mytopic", 0, 1, b"b"), ("mytopic", 0, 2, b"c"),
    ]


def test_delivery_callbacks_only_from_poll_or_flush(ck: ModuleType) -> None:
    p = ck.Producer({"bootstrap.servers": "x", "linger.ms": 0})
    seen: list[int] = []
    p.produce("t", b"v", on_delivery=lambda err, msg: seen.append(msg.offset()))
    time.sleep(0.1)
    assert seen == [] and len(p) == 1
    assert p.poll(1.0) == 1
    assert seen == [0] and len(p) == 0
    assert p.poll(0) == 0


def test_readme_consumer_example(ck: ModuleType) -> None:
    from confluent_kafka import Consumer, Producer

    p = Producer({"bootstrap.servers": "mybroker"})
    for i in range(5):
        p.produce("mytopic", f"message {i}")
    p.flush()

    c = Consumer({
        "bootstrap.servers": "mybroker",
        "group.id": "mygroup",
        "auto.offset.reset": "earliest",
    })
    c.subscribe(["mytopic"])
    received = []
    deadline = time.monotonic() + 5
    while len(received) < 5 and time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            print(f"Consumer error: {msg.error()}")
            continue
        received.append(msg.value().decode("utf-8"))
    c.close()
    assert received == [f"message {i}" for i in range(5)]
    with pytest.raises(RuntimeError, match="Consumer closed"):
        c.poll(0)


def test_sync_commit_and_resume(ck: ModuleType) -> None:
    p = ck.Producer({})
    for i in range(6):
        p.produce("orders", str(i), key="k")
    p.flush()
    conf = {"group.id": "g", "auto.offset.reset": "smallest", "enable.auto.commit": False}
    c = ck.Consumer(conf)
    c.subscribe(["orders"])
    msgs = _consume_all(c, 3)
    committed = c.commit(message=msgs[-1], asynchronous=False)
    assert [(tp.topic, tp.partition, tp.offset) for tp in committed] == [("orders", 0, 3)]
    tp = ck.TopicPartition("orders", 0)
    assert c.committed([tp])[0].offset == 3
    assert c.position([tp])[0].offset == 3
    c.close()  # no auto-commit: what was read past the commit is read again
    c2 = ck.Consumer(conf)
    c2.subscribe(["orders"])
    assert [m.value() for m in _consume_all(c2, 3)] == [b"3", b"4", b"5"]
    c2.commit(asynchronous=False)  # the stored offsets
    assert c2.committed([tp])[0].offset == 6
    c2.close()


def test_auto_commit_on_close_commits_only_returned_messages(ck: ModuleType) -> None:
    p = ck.Producer({})
    for i in range(10):
        p.produce("t", str(i))
    p.flush()
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["t"])
    assert len(_consume_all(c, 4)) == 4  # the shim has fetched ahead, the app saw 4
    c.close()
    c2 = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    assert c2.committed([ck.TopicPartition("t", 0)])[0].offset == 4
    c2.close()


def test_readme_admin_example(ck: ModuleType, admin: ModuleType) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": "mybroker"})
    new_topics = [NewTopic(topic, num_partitions=3, replication_factor=1)
                  for topic in ["topic1", "topic2"]]
    fs = a.create_topics(new_topics)
    created = []
    for topic, f in fs.items():
        try:
            f.result()  # The result itself is None
            created.append(topic)
        except Exception as e:
            pytest.fail(f"Failed to create topic {topic}: {e}")
    assert created == ["topic1", "topic2"]
    md = a.list_topics(timeout=10)
    assert {"topic1", "topic2"} <= set(md.topics)
    assert sorted(md.topics["topic1"].partitions) == [0, 1, 2]
    assert md.topics["topic1"].error is None
    again = a.create_topics([NewTopic("topic1", 1)])["topic1"]
    with pytest.raises(KafkaException) as info:
        again.result()
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    fs = a.delete_topics(["topic1", "nope"], operation_timeout=30)
    assert fs["topic1"].result() is None
    with pytest.raises(KafkaException) as info:
        fs["nope"].result()
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert "topic1" not in a.list_topics().topics


def test_admin_partitions_configs_and_groups(ck: ModuleType, admin: ModuleType) -> None:
    a = admin.AdminClient({})
    a.create_topics([admin.NewTopic("t", 2, config={"retention.ms": "1000"})])["t"].result()
    a.create_partitions([admin.NewPartitions("t", 4)])["t"].result()
    assert len(a.list_topics().topics["t"].partitions) == 4
    with pytest.raises(ck.KafkaException) as info:
        a.create_partitions([admin.NewPartitions("t", 2)])["t"].result()
    assert info.value.args[0].code() == ck.KafkaError.INVALID_PARTITIONS
    res = admin.ConfigResource(admin.ResourceType.TOPIC, "t")
    entries = a.describe_configs([res])[res].result()
    assert entries["retention.ms"].value == "1000"
    assert not entries["retention.ms"].is_default

    p = ck.Producer({})
    for i in range(4):
        p.produce("t", b"x", partition=i)
    p.flush()
    c = ck.Consumer({"group.id": "g1", "auto.offset.reset": "earliest"})
    c.subscribe(["t"])
    _consume_all(c, 4)
    c.commit(asynchronous=False)
    groups = a.list_consumer_groups().result()
    assert [g.group_id for g in groups.valid] == ["g1"]
    desc = a.describe_consumer_groups(["g1"])["g1"].result()
    assert desc.state == admin.ConsumerGroupState.STABLE
    assert len(desc.members) == 1 and len(desc.members[0].assignment.topic_partitions) == 4
    req = admin.ConsumerGroupTopicPartitions("g1")
    offs = a.list_consumer_group_offsets([req])["g1"].result()
    assert sorted((tp.partition, tp.offset) for tp in offs.topic_partitions) == [
        (0, 1), (1, 1), (2, 1), (3, 1)]
    alter = admin.ConsumerGroupTopicPartitions("g1", [ck.TopicPartition("t", 0, 0)])
    with pytest.raises(ck.KafkaException):  # the group has a member
        a.alter_consumer_group_offsets([alter])["g1"].result()
    c.close()
    assert a.alter_consumer_group_offsets([alter])["g1"].result().topic_partitions[0].offset == 0
    offs = a.list_consumer_group_offsets([req])["g1"].result()
    assert sorted((tp.partition, tp.offset) for tp in offs.topic_partitions)[0] == (0, 0)


# ---------------------------------------------------------------- librdkafka behaviour


# CRC-32 (ISO-HDLC, zlib's and librdkafka's rd_crc32) check vectors
CRC32_VECTORS = [(b"123456789", 0xCBF43926), (b"foo", 0x8C736521), (b"", 0)]


def test_consistent_random_is_crc32(ck: ModuleType, admin: ModuleType) -> None:
    for key, crc in CRC32_VECTORS:
        assert zlib.crc32(key) == crc
    a = admin.AdminClient({})
    a.create_topics([admin.NewTopic("keyed", 6)])["keyed"].result()
    p = ck.Producer({})
    got: dict[bytes, int] = {}
    keys = [b"123456789", b"foo", b"bar", b"user-1", b"hello", bytes(range(40))]
    for k in keys:
        p.produce("keyed", b"v", key=k,
                  on_delivery=lambda err, msg: got.__setitem__(msg.key(), msg.partition()))
    p.flush()
    assert got[b"123456789"] == 0xCBF43926 % 6 == 2
    assert got[b"foo"] == 0x8C736521 % 6 == 5
    assert got == {k: zlib.crc32(k) % 6 for k in keys}
    # the null key: a random partition per message (consistent_random)
    nulls: set[int] = set()
    for _ in range(60):
        p.produce("keyed", b"v", on_delivery=lambda err, msg: nulls.add(msg.partition()))
    p.flush()
    assert len(nulls) > 1 and nulls <= set(range(6))


def test_buffer_error_when_queue_full(ck: ModuleType) -> None:
    p = ck.Producer({"queue.buffering.max.messages": 3})
    for _ in range(3):
        p.produce("t", b"v")
    with pytest.raises(BufferError):
        p.produce("t", b"v")
    assert len(p) == 3
    p.poll(1.0)  # serving the reports makes room
    p.flush()
    p.produce("t", b"v")
    assert p.flush() == 0


def test_partition_eof_only_when_enabled(ck: ModuleType) -> None:
    p = ck.Producer({})
    p.produce("t", b"a")
    p.produce("t", b"b")
    p.flush()
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                     "enable.partition.eof": True})
    c.assign([ck.TopicPartition("t", 0, ck.OFFSET_BEGINNING)])
    values, events = [], []
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            events.append(msg)
        else:
            values.append(msg.value())
    assert values == [b"a", b"b"]
    (ev,) = events
    assert ev.error().code() == ck.KafkaError._PARTITION_EOF
    assert ev.error().name() == "_PARTITION_EOF"
    assert (ev.topic(), ev.partition(), ev.offset()) == ("t", 0, 2)
    assert c.poll(0.1) is None  # once per reaching the end
    p.produce("t", b"c")
    p.flush()
    assert c.poll(2).value() == b"c"
    assert c.poll(2).error().code() == ck.KafkaError._PARTITION_EOF
    c.close()

    c2 = ck.Consumer({"group.id": "g2", "auto.offset.reset": "earliest"})
    c2.assign([ck.TopicPartition("t", 0)])
    assert len(_consume_all(c2, 3)) == 3
    assert c2.poll(0.2) is None  # no EOF event by default
    c2.close()


def test_transactions_hide_aborted_data(ck: ModuleType) -> None:
    p = ck.Producer({"transactional.id": "tx-1"})
    p.init_transactions()
    p.begin_transaction()
    p.produce("tx", b"aborted-1")
    p.produce("tx", b"aborted-2")
    p.abort_transaction()
    p.begin_transaction()
    p.produce("tx", b"committed")
    p.commit_transaction()
    assert len(p) == 0

    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})  # read_committed
    c.subscribe(["tx"])
    assert [m.value() for m in _consume_all(c, 1)] == [b"committed"]
    assert c.poll(0.2) is None
    c.close()
    c2 = ck.Consumer({"group.id": "g2", "auto.offset.reset": "earliest",
                      "isolation.level": "read_uncommitted"})
    c2.subscribe(["tx"])
    assert [m.value() for m in _consume_all(c2, 3)] == [b"aborted-1", b"aborted-2", b"committed"]
    c2.close()


def test_consume_transform_produce(ck: ModuleType) -> None:
    src = ck.Producer({})
    for i in range(3):
        src.produce("in", str(i))
    src.flush()
    c = ck.Consumer({"group.id": "etl", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    c.subscribe(["in"])
    p = ck.Producer({"transactional.id": "etl-1"})
    p.init_transactions()
    msgs = _consume_all(c, 3)
    p.begin_transaction()
    for m in msgs:
        p.produce("out", m.value() * 2)
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata())
    p.commit_transaction()
    assert c.committed([ck.TopicPartition("in", 0)])[0].offset == 3
    c.close()
    out = ck.Consumer({"group.id": "check", "auto.offset.reset": "earliest"})
    out.subscribe(["out"])
    assert [m.value() for m in _consume_all(out, 3)] == [b"00", b"11", b"22"]
    out.close()


def test_transactional_misuse_is_a_kafka_exception(ck: ModuleType) -> None:
    p = ck.Producer({"transactional.id": "tx-2"})
    with pytest.raises(ck.KafkaException) as info:
        p.begin_transaction()  # before init_transactions
    assert info.value.args[0].code() == ck.KafkaError._STATE
    p.init_transactions()
    p2 = ck.Producer({"transactional.id": "tx-2"})
    p2.init_transactions()  # fences p
    with pytest.raises(ck.KafkaException) as info:
        p.begin_transaction()
        p.produce("t", b"x")
        p.commit_transaction()
    assert info.value.args[0].fatal()
    assert info.value.args[0].code() == ck.KafkaError._FENCED


# ---------------------------------------------------------------- config, errors, types


def test_config_checked_as_librdkafka(ck: ModuleType) -> None:
    with pytest.raises(ck.KafkaException) as info:
        ck.Producer({"bootstrap.servers": "x", "no.such.thing": 1})
    err = info.value.args[0]
    assert err.code() == ck.KafkaError._INVALID_ARG
    assert 'No such configuration property: "no.such.thing"' in err.str()
    with pytest.raises(ValueError, match=r"group\.id must be set"):
        ck.Consumer({"bootstrap.servers": "x"})
    with pytest.raises(ck.KafkaException):
        ck.Consumer({"group.id": "g", "auto.offset.reset": "sometimes"})
    # dotted names, librdkafka aliases, and security settings that have no effect
    ck.Producer({"bootstrap.servers": "a:1,b:2", "linger.ms": 0, "acks": "all",
                 "compression.type": "lz4", "security.protocol": "SASL_SSL",
                 "sasl.mechanisms": "PLAIN", "error_cb": print}).flush()
    ck.Consumer({"group.id": "g", "auto.offset.reset": "largest",
                 "partition.assignment.strategy": "cooperative-sticky"}).close()


def test_kafka_error_api(ck: ModuleType) -> None:
    KafkaError = ck.KafkaError
    e = KafkaError(KafkaError._PARTITION_EOF)
    assert (e.code(), e.name(), e.str()) == (-191, "_PARTITION_EOF", "Broker: No more messages")
    assert not e.fatal() and not e.retriable()
    assert e == KafkaError._PARTITION_EOF
    assert KafkaError(KafkaError._TIMED_OUT).retriable()
    assert KafkaError.UNKNOWN_TOPIC_OR_PART == 3 and KafkaError._TRANSPORT == -195
    exc = ck.KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS, "exists"))
    assert exc.args[0].code() == 36
    assert "TOPIC_ALREADY_EXISTS" in str(exc)
    assert (ck.OFFSET_BEGINNING, ck.OFFSET_END, ck.OFFSET_STORED, ck.OFFSET_INVALID) == (
        -2, -1, -1000, -1001)


def test_message_fields_round_trip(ck: ModuleType) -> None:
    p = ck.Producer({})
    p.produce("t", value="välue", key=b"k", timestamp=1_700_000_000_000,
              headers={"h1": "a", "h2": None})
    p.produce("t", value=None, key="tomb", headers=[("x", b"1"), ("x", b"2")])
    p.flush()
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["t"])
    m1, m2 = _consume_all(c, 2)
    assert m1.value() == "välue".encode() and m1.key() == b"k" and len(m1) == m1.len() == 6
    assert m1.timestamp() == (ck.TIMESTAMP_CREATE_TIME, 1_700_000_000_000)
    assert m1.headers() == [("h1", b"a"), ("h2", None)]
    assert m1.error() is None and (m1.topic(), m1.partition(), m1.offset()) == ("t", 0, 0)
    assert m2.value() is None and m2.headers() == [("x", b"1"), ("x", b"2")]
    c.close()


def test_offsets_seek_pause_watermarks(ck: ModuleType) -> None:
    p = ck.Producer({})
    for i in range(5):
        p.produce("t", str(i), timestamp=1000 + i)
    p.flush()
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                     "enable.auto.offset.store": False})
    tp = ck.TopicPartition("t", 0)
    c.assign([tp])
    assert c.get_watermark_offsets(tp) == (0, 5)
    (found,) = c.offsets_for_times([ck.TopicPartition("t", 0, 1003)])
    assert found.offset == 3
    (none,) = c.offsets_for_times([ck.TopicPartition("t", 0, 9999)])
    assert none.offset == -1
    assert c.poll(2).value() == b"0"
    c.pause([tp])
    assert c.poll(0.1) is None
    c.resume([tp])
    assert c.poll(2).value() == b"1"
    c.seek(ck.TopicPartition("t", 0, 4))
    m = c.poll(2)
    assert m.value() == b"4"
    with pytest.raises(ck.KafkaException):
        c.commit(asynchronous=False)  # nothing stored: enable.auto.offset.store=false
    c.store_offsets(message=m)
    assert c.commit(asynchronous=False)[0].offset == 5
    with pytest.raises(ck.KafkaException):
        c.get_watermark_offsets(ck.TopicPartition("missing", 0))
    c.close()


def test_on_assign_sets_start_offsets(ck: ModuleType) -> None:
    p = ck.Producer({})
    for i in range(4):
        p.produce("t", str(i))
    p.flush()
    assigned: list[list[Any]] = []

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        assigned.append(list(partitions))
        for tp in partitions:
            tp.offset = 2
        consumer.assign(partitions)

    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["t"], on_assign=on_assign)
    assert [m.value() for m in _consume_all(c, 2)] == [b"2", b"3"]
    assert [[(tp.topic, tp.partition) for tp in ps] for ps in assigned] == [[("t", 0)]]
    assert [(tp.topic, tp.partition) for tp in c.assignment()] == [("t", 0)]
    c.close()


def test_no_auto_create_reports_unknown_topic(tmp_path: os.PathLike[str]) -> None:
    with streamlog.compat.install(os.path.join(os.fspath(tmp_path), "d"),
                                  auto_create_topics=False):
        ck = importlib.import_module("confluent_kafka")
        c = ck.Consumer({"group.id": "g"})
        c.subscribe(["ghost"])
        msg = c.poll(1.0)
        assert msg is not None and msg.error().code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
        c.close()
        p = ck.Producer({})
        errors: list[Any] = []
        p.produce("ghost", b"v", on_delivery=lambda err, msg: errors.append(err))
        p.flush()
        assert [e.code() for e in errors] == [ck.KafkaError._UNKNOWN_TOPIC]
        md = p.list_topics("ghost")
        assert md.topics["ghost"].error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART


def test_unknown_partition_raises(ck: ModuleType) -> None:
    p = ck.Producer({})
    with pytest.raises(ck.KafkaException) as info:
        p.produce("t", b"v", partition=7)
    assert info.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION


def test_uninstall_closes_clients(tmp_path: os.PathLike[str]) -> None:
    inst = streamlog.compat.install(os.path.join(os.fspath(tmp_path), "d"))
    ck = importlib.import_module("confluent_kafka")
    c = ck.Consumer({"group.id": "g"})
    streamlog.compat.uninstall()
    with pytest.raises(RuntimeError):
        c.poll(0)
    assert inst.log is not None


def test_rebalance_between_two_consumers(ck: ModuleType, admin: ModuleType) -> None:
    admin.AdminClient({}).create_topics([admin.NewTopic("rb", 2)])["rb"].result()
    p = ck.Producer({})
    for i in range(4):
        p.produce("rb", str(i), partition=i % 2)
    p.flush()
    revoked: list[list[int]] = []
    conf = {"group.id": "rg", "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
    c1 = ck.Consumer(conf)
    c1.subscribe(["rb"], on_revoke=lambda c, ps: revoked.append([tp.partition for tp in ps]))
    assert len(_consume_all(c1, 4)) == 4
    c2 = ck.Consumer(conf)
    c2.subscribe(["rb"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (c1.assignment() and c2.assignment()
                                               and len(c1.assignment()) == 1):
        c1.poll(0.05)
        c2.poll(0.05)
    assert len(c1.assignment()) == 1 and len(c2.assignment()) == 1
    assert revoked  # on_revoke ran; auto-commit committed what c1 had returned
    tps = [ck.TopicPartition("rb", 0), ck.TopicPartition("rb", 1)]
    assert [tp.offset for tp in c2.committed(tps)] == [2, 2]
    assert c2.poll(0.2) is None  # nothing to read again
    c1.close()
    c2.close()


# ---------------------------------------------------------------- purge


def test_purge_drops_queued_messages(ck: ModuleType, installed: Any) -> None:
    """librdkafka's purge(): messages still queued are never written; their delivery
    callbacks get _PURGE_QUEUE at the next poll/flush (before: nothing was purged)."""
    reports: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        reports.append((err, msg.partition(), msg.offset(), msg.value()))

    p = ck.Producer({"linger.ms": 60000, "on_delivery": report})
    installed.log.create_topic("t", partitions=2)
    for i in range(3):
        p.produce("t", b"q%d" % i, partition=i % 2)
    assert len(p) == 3
    p.purge()
    assert reports == []  # served by poll/flush only
    assert len(p) == 3  # awaiting their (purge) reports
    # poll() counts events: one per partition's purged queue (librdkafka's
    # rd_kafka_toppar_purge_queues → one rd_kafka_dr_msgq per partition)
    assert p.poll(0) == 2
    assert sorted((r[0].code(), r[1], r[2], r[3]) for r in reports) == [
        (ck.KafkaError._PURGE_QUEUE, 0, -1001, b"q0"),
        (ck.KafkaError._PURGE_QUEUE, 0, -1001, b"q2"),
        (ck.KafkaError._PURGE_QUEUE, 1, -1001, b"q1"),
    ]
    assert reports[0][0].name() == "_PURGE_QUEUE" and not reports[0][0].fatal()
    assert len(p) == 0
    assert [part.end_offset for part in installed.log.describe_topic("t").partitions] == [0, 0]

    # nothing queued: nothing to purge; what was delivered stays delivered
    reports.clear()
    p.produce("t", b"kept", partition=0)
    assert p.flush(5) == 0
    p.purge(in_queue=True, in_flight=True, blocking=False)
    assert p.flush(5) == 0
    assert [(r[0], r[2]) for r in reports] == [(None, 0)]

    # in_queue=False leaves the queue alone
    reports.clear()
    p.produce("t", b"later", partition=0)
    p.purge(in_queue=False)
    assert p.flush(5) == 0
    assert [(r[0], r[3]) for r in reports] == [(None, b"later")]
    with pytest.raises(TypeError):
        p.purge(in_queue="yes")


def test_purge_keeps_an_idempotent_producer_in_sequence(ck: ModuleType, installed: Any) -> None:
    reports: list[Any] = []
    p = ck.Producer({"linger.ms": 60000, "enable.idempotence": True,
                     "on_delivery": lambda err, msg: reports.append(err)})
    p.produce("t", b"1")
    assert p.flush(5) == 0
    p.produce("t", b"dropped")
    p.purge()
    p.produce("t", b"2")
    assert p.flush(5) == 0
    assert [None if e is None else e.code() for e in reports] == [
        None, ck.KafkaError._PURGE_QUEUE, None]
    assert installed.log.describe_topic("t").partitions[0].end_offset == 2


def test_standalone_commit_into_an_active_group_is_unknown_member(ck: ModuleType) -> None:
    """A consumer using assign() commits as a non-member: while the group has members the
    broker answers UNKNOWN_MEMBER_ID (ClassicGroup.validateOffsetCommit), not
    ILLEGAL_GENERATION (what the shim reported before)."""
    p = ck.Producer({})
    p.produce("t", b"x")
    assert p.flush(5) == 0
    member = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    member.subscribe(["t"])
    assert len(_consume_all(member, 1)) == 1
    standalone = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    standalone.assign([ck.TopicPartition("t", 0)])
    with pytest.raises(ck.KafkaException) as info:
        standalone.commit(offsets=[ck.TopicPartition("t", 0, 1)], asynchronous=False)
    assert info.value.args[0].code() == ck.KafkaError.UNKNOWN_MEMBER_ID
    member.close()
    standalone.commit(offsets=[ck.TopicPartition("t", 0, 1)], asynchronous=False)  # empty now
    standalone.close()


# ---------------------------------------------------------------- found by the differential
# tests (tests/compat/test_differential.py: the real client on librdkafka's mock cluster)


def test_delivery_reports_carry_no_headers(ck: ModuleType, installed: Any) -> None:
    """confluent-kafka's delivery report messages have headers() None (its issue #574:
    not copied, by design); the shim passed the produced headers back."""
    got: list[Any] = []
    p = ck.Producer({"on_delivery": lambda err, msg: got.append((err, msg.headers()))})
    p.produce("t", b"v", headers=[("h", b"1")])
    installed.fail_next("produce")
    p.produce("t", b"v", headers={"h": "2"})  # a failed delivery
    assert p.flush(5) == 0
    assert [h for _, h in got] == [None, None]
    assert sorted(err is None for err, _ in got) == [False, True]
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["t"])
    assert _consume_all(c, 1)[0].headers() == [("h", b"1")]  # consumed messages keep them
    c.close()


def test_poll_counts_events_not_messages(ck: ModuleType, installed: Any) -> None:
    """Producer.poll() returns the number of events served; librdkafka delivers the
    reports of one produced batch as one event (the shim counted messages)."""
    installed.log.create_topic("t", partitions=2)
    reports: list[int] = []
    p = ck.Producer({"linger.ms": 200, "on_delivery": lambda e, m: reports.append(m.offset())})
    for i in range(3):
        p.produce("t", b"%d" % i, partition=0)
    p.produce("t", b"other", partition=1)
    served = 0
    deadline = time.monotonic() + 5
    while len(reports) < 4 and time.monotonic() < deadline:
        served += p.poll(0.05)
    assert sorted(reports) == [0, 0, 1, 2]
    assert served == 2  # one batch per partition
    assert p.poll(0) == 0


def test_consumer_does_not_auto_create_topics(ck: ModuleType, installed: Any) -> None:
    """librdkafka's consumer defaults to allow.auto.create.topics=false: subscribing to a
    missing topic reports UNKNOWN_TOPIC_OR_PART and creates nothing (the shim created
    it); it is read once a producer creates it; true asks for auto-creation."""
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["late"])
    err = c.poll(1.0)
    assert err is not None and err.error().code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
    assert "late" not in installed.log.topics()
    md = c.list_topics("late").topics["late"]
    assert md.error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
    assert "late" not in installed.log.topics()
    p = ck.Producer({})
    p.produce("late", b"x")
    assert p.flush(5) == 0
    assert [m.value() for m in _consume_all(c, 1)] == [b"x"]
    c.close()
    c2 = ck.Consumer({"group.id": "g2", "allow.auto.create.topics": True})
    c2.subscribe(["wanted"])
    assert "wanted" in installed.log.topics()
    c2.close()


def test_producer_and_admin_list_topics_auto_create(ck: ModuleType, admin: ModuleType,
                                                     installed: Any) -> None:
    """A metadata request naming a missing topic auto-creates it for a producer or an
    AdminClient (allow.auto.create.topics defaults to true there), not otherwise."""
    assert ck.Producer({}).list_topics("p-topic").topics["p-topic"].error is None
    assert admin.AdminClient({}).list_topics("a-topic").topics["a-topic"].error is None
    off = admin.AdminClient({"allow.auto.create.topics": False})
    assert off.list_topics("x").topics["x"].error.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
    assert sorted(installed.log.topics()) == ["a-topic", "p-topic"]


def test_commit_of_stored_offsets_only_past_committed(ck: ModuleType) -> None:
    """commit() with no arguments commits the stored offsets that are past the committed
    ones (rd_kafka_topic_partition_list_set_offsets): none → _NO_OFFSET; it returns every
    assigned partition, those left out with OFFSET_INVALID. The shim committed the same
    or an older offset again."""
    p = ck.Producer({})
    for i in range(5):
        p.produce("t", b"%d" % i, partition=0)
    assert p.flush(5) == 0
    ck.Producer({}).list_topics("u")  # a second, empty topic
    c = ck.Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
    c.assign([ck.TopicPartition("t", 0, ck.OFFSET_BEGINNING), ck.TopicPartition("u", 0)])
    msgs = _consume_all(c, 2)
    got = c.commit(asynchronous=False)
    assert [(x.topic, x.partition, x.offset) for x in got] == [("t", 0, 2), ("u", 0, -1001)]
    with pytest.raises(ck.KafkaException) as info:
        c.commit(asynchronous=False)  # nothing new
    assert info.value.args[0].code() == ck.KafkaError._NO_OFFSET
    c.seek(ck.TopicPartition("t", 0, 0))
    assert [m.offset() for m in _consume_all(c, 1)] == [0]
    with pytest.raises(ck.KafkaException) as info:
        c.commit(asynchronous=False)  # stored 1 is behind the committed 2
    assert info.value.args[0].code() == ck.KafkaError._NO_OFFSET
    assert c.committed([ck.TopicPartition("t", 0)])[0].offset == 2
    c.commit(message=msgs[0], asynchronous=False)  # an explicit commit goes through
    assert c.committed([ck.TopicPartition("t", 0)])[0].offset == 1
    c.close()


def test_committed_returns_the_metadata(ck: ModuleType) -> None:
    """committed() gives each partition's commit metadata (None when empty), as
    librdkafka; the shim dropped it."""
    ck.Producer({}).list_topics("t")
    c = ck.Consumer({"group.id": "g"})
    c.commit(offsets=[ck.TopicPartition("t", 0, 5, "where I was")], asynchronous=False)
    [tp] = c.committed([ck.TopicPartition("t", 0)])
    assert (tp.offset, tp.metadata) == (5, "where I was")
    c.commit(offsets=[ck.TopicPartition("t", 0, 6)], asynchronous=False)
    [tp] = c.committed([ck.TopicPartition("t", 0)])
    assert (tp.offset, tp.metadata) == (6, None)
    c.close()


def test_watermarks_and_seek_errors_as_librdkafka(ck: ModuleType, installed: Any) -> None:
    """get_watermark_offsets of an unknown topic or partition: _UNKNOWN_PARTITION (a local
    error: no leader in the metadata; the shim said UNKNOWN_TOPIC_OR_PART). seek() on a
    partition not assigned: _STATE for a topic the consumer has assigned partitions of,
    _UNKNOWN_PARTITION for any other (the shim always said _UNKNOWN_PARTITION)."""
    installed.log.create_topic("t", partitions=2)
    installed.log.create_topic("other", partitions=1)
    c = ck.Consumer({"group.id": "g"})
    for tp in (ck.TopicPartition("nope", 0), ck.TopicPartition("t", 5)):
        with pytest.raises(ck.KafkaException) as info:
            c.get_watermark_offsets(tp)
        assert info.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION
    c.assign([ck.TopicPartition("t", 0)])
    expected = {("t", 1): ck.KafkaError._STATE, ("t", 9): ck.KafkaError._STATE,
                ("other", 0): ck.KafkaError._UNKNOWN_PARTITION}
    for (topic, part), code in expected.items():
        with pytest.raises(ck.KafkaException) as info:
            c.seek(ck.TopicPartition(topic, part, 0))
        assert info.value.args[0].code() == code
    c.close()


def test_metadata_str_and_repr(ck: ModuleType, admin: ModuleType, installed: Any) -> None:
    """str()/repr() of the metadata classes as confluent_kafka.admin._metadata's."""
    installed.log.create_topic("t", partitions=2)
    md = admin.AdminClient({}).list_topics()
    assert str(md) == md.cluster_id and repr(md) == f"ClusterMetadata({md.cluster_id})"
    pm = md.topics["t"].partitions[1]
    assert (str(pm), repr(pm)) == ("1", "PartitionMetadata(1)")
    pm.error = ck.KafkaError(ck.KafkaError.LEADER_NOT_AVAILABLE)
    assert repr(pm) == f"PartitionMetadata(1, {pm.error})"
