"""kafka-python's documented usage, run unchanged on ``streamlog.compat``."""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import streamlog
import streamlog.compat
from streamlog.compat import _state


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[types.ModuleType]:
    with streamlog.compat.install(tmp_path / "data"):
        import kafka

        yield kafka


# ---------------------------------------------------------------- install / uninstall


def test_install_maps_modules_and_uninstall_restores() -> None:
    # (set aside a real kafka-python imported in this process, e.g. by test_differential)
    before = {n: m for n, m in sys.modules.items() if n == "kafka" or n.startswith("kafka.")}
    for name in before:
        del sys.modules[name]
    sentinel = types.ModuleType("kafka")
    sys.modules["kafka"] = sentinel
    try:
        inst = streamlog.compat.install()
        try:
            import kafka
            import kafka.admin
            import kafka.errors
            import kafka.structs

            assert kafka is not sentinel
            assert kafka.__name__ == "streamlog.compat.kafka"
            assert kafka.errors is sys.modules["streamlog.compat.kafka.errors"]
            assert kafka.admin.KafkaAdminClient.__module__.startswith("streamlog.compat.kafka")
            assert kafka.structs.TopicPartition is streamlog.TopicPartition
            assert _state.current() is inst
            path = inst.path
            assert Path(path).is_dir()
            with pytest.raises(ModuleNotFoundError, match="no shim"):
                import kafka.vendor
        finally:
            streamlog.compat.uninstall()
        assert sys.modules["kafka"] is sentinel
        assert "kafka.errors" not in sys.modules
        assert not _state.is_installed()
        assert not Path(path).exists()  # the temporary directory is removed
        streamlog.compat.uninstall()  # idempotent
    finally:
        sys.modules.pop("kafka", None)
        sys.modules.update(before)
    with pytest.raises(_state.NoInstallationError):
        _state.current()


def test_install_twice_refused_and_context_manager(tmp_path: Path) -> None:
    with streamlog.compat.install(tmp_path) as inst:
        assert inst.path == str(tmp_path)
        with pytest.raises(RuntimeError, match="already installed"):
            streamlog.compat.install()
    assert not _state.is_installed()
    assert tmp_path.exists()  # a given directory is kept


def test_confluent_import_is_lazy(tmp_path: Path) -> None:
    with streamlog.compat.install(tmp_path):
        import kafka  # noqa: F401

        assert "confluent_kafka" not in sys.modules


def test_clients_closed_on_uninstall(tmp_path: Path) -> None:
    streamlog.compat.install(tmp_path)
    try:
        from kafka import KafkaProducer

        p = KafkaProducer(bootstrap_servers="broker:9092")
        p.send("t", b"v")
    finally:
        streamlog.compat.uninstall()
    with streamlog.open(tmp_path) as log:
        assert log.describe_topic("t").partitions[0].end_offset == 1  # flushed by close


# ---------------------------------------------------------------- errors


def test_error_classes_are_kafka_pythons(kafka: types.ModuleType) -> None:
    E = kafka.errors
    assert issubclass(E.KafkaError, RuntimeError)
    for name in ("KafkaTimeoutError", "NoBrokersAvailable", "CommitFailedError",
                 "IllegalStateError", "KafkaConfigurationError", "BrokerResponseError"):
        assert issubclass(getattr(E, name), E.KafkaError), name
    assert E.UnknownTopicOrPartitionError.errno == 3
    assert E.UnknownTopicOrPartitionError.retriable
    assert E.TopicAlreadyExistsError.errno == 36
    assert E.MessageSizeTooLargeError.errno == 10
    assert E.RecordTooLargeError is E.MessageSizeTooLargeError
    assert E.ProducerFencedError.errno == 90
    assert E.for_code(36) is E.TopicAlreadyExistsError
    assert E.for_code(12345) is E.UnknownError
    assert str(E.TopicAlreadyExistsError("x")) == "[Error 36] TopicAlreadyExistsError: x"
    assert str(E.KafkaTimeoutError()) == "KafkaTimeoutError"


def test_errors_converted_with_cause(kafka: types.ModuleType) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers="localhost:9092", client_id="test")
    admin.create_topics([NewTopic("t", 1, 1)])
    with pytest.raises(TopicAlreadyExistsError) as info:
        admin.create_topics([NewTopic(name="t", num_partitions=1, replication_factor=1)])
    assert isinstance(info.value.__cause__, streamlog.TopicExistsError)
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics(["nope"])


# ---------------------------------------------------------------- producer


def test_producer_readme_examples(kafka: types.ModuleType) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    producer = KafkaProducer(bootstrap_servers=["broker1:1234"])
    future = producer.send("my-topic", b"raw_bytes")
    try:
        record_metadata = future.get(timeout=10)
    except KafkaError:
        raise
    assert (record_metadata.topic, record_metadata.partition, record_metadata.offset) == (
        "my-topic", 0, 0)
    assert record_metadata.serialized_value_size == 9
    assert record_metadata.serialized_key_size == -1
    assert future.succeeded() and not future.failed() and future.is_done

    producer.send("my-topic", key=b"foo", value=b"bar")
    jp = KafkaProducer(value_serializer=lambda m: json.dumps(m).encode("ascii"))
    jp.send("json-topic", {"key": "value"}).get(5)

    got: list[Any] = []
    errs: list[Any] = []
    done = threading.Event()

    def on_send_success(md: Any) -> None:
        got.append(md)
        done.set()

    def on_send_error(excp: Any) -> None:
        errs.append(excp)

    producer.send("my-topic", b"raw_bytes").add_callback(on_send_success).add_errback(
        on_send_error)
    producer.flush()
    assert done.wait(5) and got[0].offset == 2 and not errs
    producer = KafkaProducer(retries=5)
    producer.send("my-topic", b"x", headers=[("h", b"1")]).get(5)
    producer.close()
    with pytest.raises(AssertionError):
        producer.send("my-topic", b"x")


def test_producer_errors(kafka: types.ModuleType) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaConfigurationError, MessageSizeTooLargeError

    with pytest.raises(AssertionError, match="Unrecognized configs"):
        KafkaProducer(no_such_config=1)
    with pytest.raises(KafkaConfigurationError):
        KafkaProducer(acks=2)
    p = KafkaProducer(max_request_size=100)
    with pytest.raises(AssertionError):
        p.send("t")
    fut = p.send("t", b"x" * 1000)
    with pytest.raises(MessageSizeTooLargeError):
        fut.get(5)
    assert fut.failed() and isinstance(fut.exception, MessageSizeTooLargeError)
    seen: list[BaseException] = []
    fut.add_errback(seen.append)
    assert seen == [fut.exception]
    assert p.partitions_for("t") == {0}
    assert "producer-metrics" in p.metrics()
    p.close()


def test_no_auto_create(tmp_path: Path) -> None:
    with streamlog.compat.install(tmp_path, auto_create_topics=False):
        from kafka import KafkaConsumer, KafkaProducer
        from kafka.errors import KafkaTimeoutError

        p = KafkaProducer()
        with pytest.raises(KafkaTimeoutError):
            p.send("missing", b"x")
        c = KafkaConsumer(group_id="g")
        c.subscribe(["missing"])
        assert c.topics() == set()
        assert c.partitions_for_topic("missing") is None


# ---------------------------------------------------------------- partitioner

VECTORS = {b"": 681, b"a": 524, b"ab": 434, b"abc": 107, b"123456789": 566}


def test_murmur2_vectors_match_kafka_python(kafka: types.ModuleType) -> None:
    from kafka.partitioner import DefaultPartitioner, murmur2

    from streamlog.clients._partitioner import murmur2_partition

    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"abc") == 479470107
    all_partitions = list(range(1000))
    for key, expected in VECTORS.items():
        assert DefaultPartitioner()(key, all_partitions, all_partitions) == expected
        assert murmur2_partition(key, 1000) == expected


def test_keys_land_where_kafka_python_puts_them(kafka: types.ModuleType) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.partitioner import DefaultPartitioner

    KafkaAdminClient().create_topics([NewTopic("k", num_partitions=4, replication_factor=1)])
    p = KafkaProducer()
    for key in [b"key1", b"key2", b"alice", b"bob", b"", b"x" * 33]:
        md = p.send("k", b"v", key=key).get(5)
        assert md.partition == DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3])
    assert p.send("k", b"v", key=b"key1").get(5).partition == 0
    assert p.send("k", b"v", key=b"key2").get(5).partition == 3


# ---------------------------------------------------------------- consumer


def test_consumer_readme_examples(kafka: types.ModuleType) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    p = KafkaProducer(key_serializer=str.encode)
    for i in range(3):
        p.send("my_favorite_topic", key=f"k{i}", value=json.dumps({"i": i}).encode())
    p.flush()

    consumer = KafkaConsumer("my_favorite_topic", auto_offset_reset="earliest",
                             consumer_timeout_ms=300,
                             value_deserializer=lambda m: json.loads(m.decode("ascii")))
    msgs = list(consumer)
    assert [m.value for m in msgs] == [{"i": 0}, {"i": 1}, {"i": 2}]
    m = msgs[0]
    assert (m.topic, m.partition, m.offset, m.key, m.timestamp_type) == (
        "my_favorite_topic", 0, 0, b"k0", 0)
    assert m.serialized_key_size == 2 and m.headers == [] and m.checksum is None
    assert m.serialized_header_size == -1 and m.leader_epoch == -1

    # manual assignment, seek, positions
    consumer = KafkaConsumer(bootstrap_servers="localhost:1234")
    tp = TopicPartition("my_favorite_topic", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    assert consumer.position(tp) == 0
    got = consumer.poll(timeout_ms=1000, max_records=2)
    assert [r.offset for r in got[tp]] == [0, 1]
    assert consumer.end_offsets([tp]) == {tp: 3}
    assert consumer.beginning_offsets([tp]) == {tp: 0}
    ts = consumer.offsets_for_times({tp: 0})[tp]
    assert ts is not None and ts.offset == 0
    consumer.pause(tp)
    assert consumer.paused() == {tp}
    consumer.resume(tp)
    assert "my_favorite_topic" in consumer.topics()
    assert consumer.partitions_for_topic("my_favorite_topic") == {0}
    assert consumer.assignment() == {tp}
    consumer.close()

    # pattern subscription, default latest: nothing old
    consumer = KafkaConsumer(consumer_timeout_ms=200)
    consumer.subscribe(pattern="^my_fav.*")
    assert list(consumer) == []
    consumer.close()


def test_group_commit_committed_round_trip(kafka: types.ModuleType) -> None:
    from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
    from kafka.admin import KafkaAdminClient

    p = KafkaProducer()
    for i in range(5):
        p.send("orders", str(i).encode())
    p.flush()
    tp = TopicPartition("orders", 0)
    c = KafkaConsumer("orders", group_id="billing", auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=500)
    assert c.committed(tp) is None
    first = [next(c) for _ in range(2)]
    assert [r.offset for r in first] == [0, 1]
    c.commit()
    assert c.committed(tp) == 2
    c.commit({tp: OffsetAndMetadata(4, "meta")})
    assert c.committed(tp) == 4
    assert c.committed(tp, metadata=True) == OffsetAndMetadata(4, "meta", -1)
    results: list[Any] = []
    c.commit_async({tp: OffsetAndMetadata(5, "")}, callback=lambda o, r: results.append(r))
    c.commit({tp: OffsetAndMetadata(5, "")})  # runs the async callback first
    assert results == [None]
    assert c.committed(tp) == 5
    c.close()

    admin = KafkaAdminClient()
    assert ("billing", "consumer") in admin.list_consumer_groups()
    assert admin.list_consumer_group_offsets("billing") == {tp: OffsetAndMetadata(5, "")}
    (info,) = admin.describe_consumer_groups(["billing"])
    assert info.group == "billing" and info.state == "Empty"
    assert admin.delete_consumer_groups(["billing"]) == [("billing", kafka.errors.NoError)]
    assert admin.delete_consumer_groups(["billing"])[0][1] is kafka.errors.GroupIdNotFoundError

    c2 = KafkaConsumer("orders", group_id="billing2", auto_offset_reset="earliest",
                       consumer_timeout_ms=300)
    assert len(list(c2)) == 5
    c2.close()  # auto-commit on close
    c3 = KafkaConsumer(group_id="billing2")
    assert c3.committed(tp) == 5
    c3.close()


def test_two_consumers_rebalance_with_listener(kafka: types.ModuleType) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    KafkaAdminClient().create_topics([NewTopic("r", num_partitions=4, replication_factor=1)])
    events: list[tuple[str, str, frozenset[Any]]] = []

    class Listener(ConsumerRebalanceListener):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_partitions_revoked(self, revoked: Any) -> None:
            events.append((self.name, "revoked", frozenset(revoked)))

        def on_partitions_assigned(self, assigned: Any) -> None:
            events.append((self.name, "assigned", frozenset(assigned)))

    a = KafkaConsumer(group_id="grp", session_timeout_ms=6000, heartbeat_interval_ms=500)
    a.subscribe(["r"], listener=Listener("a"))
    a.poll(timeout_ms=500)
    assert len(a.assignment()) == 4
    b = KafkaConsumer(group_id="grp", session_timeout_ms=6000, heartbeat_interval_ms=500)
    b.subscribe(["r"], listener=Listener("b"))
    for _ in range(40):
        a.poll(timeout_ms=50)
        b.poll(timeout_ms=50)
        if len(a.assignment()) == 2 and len(b.assignment()) == 2:
            break
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    assert not a.assignment() & b.assignment()
    assert ("a", "revoked", frozenset(a.assignment() | b.assignment())) in events
    assert any(n == "b" and kind == "assigned" and s == b.assignment() for n, kind, s in events)
    b.close()
    a.close()


def test_transactions_hide_aborted_data(kafka: types.ModuleType) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    p = KafkaProducer(transactional_id="tx-1")
    p.init_transactions()
    p.begin_transaction()
    p.send("tx", b"aborted")
    p.abort_transaction()
    p.begin_transaction()
    p.send("tx", b"committed")
    p.commit_transaction()
    rc = KafkaConsumer("tx", auto_offset_reset="earliest", isolation_level="read_committed",
                       consumer_timeout_ms=300)
    assert [m.value for m in rc] == [b"committed"]
    ru = KafkaConsumer("tx", auto_offset_reset="earliest", consumer_timeout_ms=300)
    assert [m.value for m in ru] == [b"aborted", b"committed"]
    p2 = KafkaProducer(transactional_id="tx-1")
    p2.init_transactions()  # fences p
    with pytest.raises(kafka.errors.KafkaError):
        p.begin_transaction()
        p.send("tx", b"zombie").get(5)
        p.commit_transaction()
    with pytest.raises(kafka.errors.IllegalStateError):
        KafkaProducer().begin_transaction()


# ---------------------------------------------------------------- admin


def test_admin_create_delete_list_describe(kafka: types.ModuleType) -> None:
    from kafka.admin import (
        ConfigResource,
        ConfigResourceType,
        KafkaAdminClient,
        NewPartitions,
        NewTopic,
    )
    from kafka.errors import InvalidPartitionsError

    admin = KafkaAdminClient(bootstrap_servers="localhost:9092", client_id="test")
    topic_list = [NewTopic(name="example_topic", num_partitions=1, replication_factor=1)]
    admin.create_topics(new_topics=topic_list, validate_only=False)
    assert admin.list_topics() == ["example_topic"]
    admin.create_partitions({"example_topic": NewPartitions(3)})
    (d,) = admin.describe_topics(["example_topic"])
    assert [p["partition"] for p in d["partitions"]] == [0, 1, 2]
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({"example_topic": NewPartitions(2)})
    res = ConfigResource(ConfigResourceType.TOPIC, "example_topic",
                         configs={"retention.ms": "1000"})
    admin.alter_configs([res])
    (resp,) = admin.describe_configs([ConfigResource("TOPIC", "example_topic")])
    entries = {e[0]: e for e in resp.resources[0][4]}
    assert entries["retention.ms"][1] == "1000" and entries["retention.ms"][3] is False
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "example_topic", {})])
    (resp,) = admin.describe_configs([ConfigResource("TOPIC", "example_topic")])
    assert {e[0]: e for e in resp.resources[0][4]}["retention.ms"][3] is True
    admin.delete_topics(["example_topic"])
    assert admin.list_topics() == []
    admin.close()


# ---------------------------------------------------------------- found by the differential
# tests (tests/compat/test_differential.py: the real kafka-python on librdkafka's mock)


def test_send_argument_errors_are_both_versions_exceptions(kafka: types.ModuleType) -> None:
    """kafka-python 2.0.2 asserts, 3.x raises TypeError/ValueError/IllegalStateError: the
    shim's exceptions are both. Header values must be bytes and headers a list (the shim
    took None values and tuples)."""
    p = kafka.KafkaProducer()
    bad: list[tuple[dict[str, Any], type[BaseException]]] = [
        ({"value": b"v", "headers": [("h", None)]}, TypeError),
        ({"value": b"v", "headers": [("h", "str")]}, TypeError),
        ({"value": b"v", "headers": (("h", b"v"),)}, TypeError),
        ({"value": None, "key": None}, ValueError),
    ]
    for kwargs, kind in bad:
        with pytest.raises(kind) as info:
            p.send("t", **kwargs)
        assert isinstance(info.value, AssertionError)
    assert p.send("t", b"v", headers=[("h", b"")]).get(5).offset == 0
    p.close()
    with pytest.raises(kafka.errors.IllegalStateError) as info:
        p.send("t", b"v")
    assert isinstance(info.value, AssertionError)


def test_group_calls_without_group_id(kafka: types.ModuleType) -> None:
    """commit()/committed() without group_id: AssertionError (2.0.2) and
    IllegalStateError (3.x), both."""
    c = kafka.KafkaConsumer()
    tp = kafka.TopicPartition("t", 0)
    for call in (lambda: c.commit(), lambda: c.committed(tp), lambda: c.commit_async()):
        with pytest.raises(kafka.errors.IllegalStateError) as info:
            call()
        assert isinstance(info.value, AssertionError)
    c.close()


def test_listener_revoked_with_empty_set_before_first_assignment(
    kafka: types.ModuleType,
) -> None:
    """kafka-python (eager protocol) calls on_partitions_revoked before every join, with
    the empty set before the first one; the shim started with on_partitions_assigned."""
    calls: list[tuple[str, set[int]]] = []

    class Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc,name-defined]
        def on_partitions_revoked(self, revoked: Any) -> None:
            calls.append(("revoked", {tp.partition for tp in revoked}))

        def on_partitions_assigned(self, assigned: Any) -> None:
            calls.append(("assigned", {tp.partition for tp in assigned}))

    kafka.KafkaProducer().partitions_for("t")
    c = kafka.KafkaConsumer(group_id="g")
    c.subscribe(["t"], listener=Listener())
    for _ in range(50):
        c.poll(timeout_ms=50)
        if c.assignment():
            break
    assert calls == [("revoked", set()), ("assigned", {0})]
    c.close()
