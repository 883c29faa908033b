"""confluent-kafka's ``SerializingProducer``, ``DeserializingConsumer`` and
``confluent_kafka.serialization`` / ``confluent_kafka.error`` in the shim."""

from __future__ import annotations

import json
import struct
import time
from typing import Any

import pytest


def _poll_one(c: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None:
            return msg
    raise AssertionError("no message")


def test_simple_serializers(kafka_cluster: Any) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.serialization import (
        Deserializer,
        DoubleDeserializer,
        DoubleSerializer,
        IntegerDeserializer,
        IntegerSerializer,
        MessageField,
        SerializationContext,
        SerializationError,
        Serializer,
        StringDeserializer,
        StringSerializer,
    )

    ctx = SerializationContext("t", MessageField.VALUE)
    assert (ctx.topic, ctx.field, ctx.headers) == ("t", "value", None)
    assert MessageField.KEY == "key" and str(MessageField.VALUE) == "value"
    assert IntegerSerializer()(-2, ctx) == struct.pack(">i", -2) == b"\xff\xff\xff\xfe"
    assert IntegerDeserializer()(b"\x00\x00\x01\x00", ctx) == 256
    assert DoubleSerializer()(1.5) == struct.pack(">d", 1.5)
    assert DoubleDeserializer()(struct.pack(">d", -0.25), ctx) == -0.25
    assert StringSerializer()("välue", ctx) == "välue".encode()
    assert StringSerializer("latin-1")("ä") == b"\xe4"
    assert StringDeserializer("utf_8")(b"\xc3\xa4", ctx) == "ä"
    for s in (IntegerSerializer(), DoubleSerializer(), StringSerializer()):
        assert s(None, ctx) is None  # Kafka's null
    for d in (IntegerDeserializer(), DoubleDeserializer(), StringDeserializer()):
        assert d(None, ctx) is None
    with pytest.raises(SerializationError):
        IntegerSerializer()(2**31, ctx)  # out of int32
    with pytest.raises(SerializationError) as info:
        IntegerDeserializer()(b"\x01", ctx)
    assert isinstance(info.value, KafkaException)
    with pytest.raises(NotImplementedError):
        Serializer()(1)
    with pytest.raises(NotImplementedError):
        Deserializer()(b"1")


def test_serializing_producer_and_deserializing_consumer(kafka_cluster: Any) -> None:
    from confluent_kafka import DeserializingConsumer, SerializingProducer
    from confluent_kafka.serialization import (
        IntegerDeserializer,
        IntegerSerializer,
        MessageField,
        StringDeserializer,
        StringSerializer,
    )

    seen_ctx: list[tuple[str, str, Any]] = []

    def to_json(obj: Any, ctx: Any) -> bytes:
        seen_ctx.append((ctx.topic, str(ctx.field), ctx.headers))
        return json.dumps(obj).encode()

    def from_json(data: bytes | None, ctx: Any) -> Any:
        assert ctx.field == MessageField.VALUE and ctx.topic == "orders"
        return None if data is None else json.loads(data)

    p = SerializingProducer({"bootstrap.servers": kafka_cluster.bootstrap_servers,
                             "key.serializer": StringSerializer("utf_8"),
                             "value.serializer": to_json})
    reports: list[Any] = []
    # key before value, as confluent-kafka's SerializingProducer.produce
    p.produce("orders", "alice", {"qty": 1}, headers=[("h", b"1")],
              on_delivery=lambda err, msg: reports.append((err, msg)))
    p.produce(topic="orders", key=None, value={"qty": 2})
    assert p.flush(5) == 0
    assert reports[0][0] is None and reports[0][1].key() == b"alice"
    assert seen_ctx[0] == ("orders", "value", [("h", b"1")])
    data = kafka_cluster.log.partition("orders", 0).read(0)
    assert data  # stored as bytes

    c = DeserializingConsumer({"bootstrap.servers": kafka_cluster.bootstrap_servers,
                               "group.id": "g", "auto.offset.reset": "earliest",
                               "key.deserializer": StringDeserializer(),
                               "value.deserializer": from_json})
    c.subscribe(["orders"])
    m1, m2 = _poll_one(c), _poll_one(c)
    assert (m1.key(), m1.value(), m1.headers()) == ("alice", {"qty": 1}, [("h", b"1")])
    assert (m2.key(), m2.value()) == (None, {"qty": 2})
    with pytest.raises(NotImplementedError):
        c.consume(1, 0.1)
    c.close()

    ip = SerializingProducer({"key.serializer": IntegerSerializer(),
                              "value.serializer": IntegerSerializer()})
    ip.produce("ints", 7, -1)
    assert ip.flush(5) == 0
    ic = DeserializingConsumer({"group.id": "g", "auto.offset.reset": "earliest",
                                "key.deserializer": IntegerDeserializer(),
                                "value.deserializer": IntegerDeserializer()})
    ic.subscribe(["ints"])
    m = _poll_one(ic)
    assert (m.key(), m.value()) == (7, -1)
    ic.close()


def test_serialization_errors(kafka_cluster: Any) -> None:
    from confluent_kafka import (
        DeserializingConsumer,
        KafkaError,
        KafkaException,
        Producer,
        SerializingProducer,
    )
    from confluent_kafka.error import (
        ConsumeError,
        KeyDeserializationError,
        KeySerializationError,
        ProduceError,
        ValueDeserializationError,
        ValueSerializationError,
    )
    from confluent_kafka.serialization import (
        IntegerDeserializer,
        IntegerSerializer,
        SerializationError,
    )

    p = SerializingProducer({"key.serializer": IntegerSerializer(),
                             "value.serializer": IntegerSerializer()})
    with pytest.raises(KeySerializationError) as kinfo:
        p.produce("t", key="not an int", value=1)
    e = kinfo.value
    assert isinstance(e, ProduceError) and isinstance(e, SerializationError)
    assert isinstance(e, KafkaException)
    assert e.code == KafkaError._KEY_SERIALIZATION == -162
    assert e.args[0].code() == -162 and e.name == "_KEY_SERIALIZATION"
    assert isinstance(e.exception, Exception)
    with pytest.raises(ValueSerializationError) as vinfo:
        p.produce("t", key=1, value=2**40)
    assert vinfo.value.code == KafkaError._VALUE_SERIALIZATION == -161
    assert len(p) == 0  # nothing was produced
    with pytest.raises(TypeError):
        SerializingProducer({"value.serializer": "not callable"})

    raw = Producer({})
    raw.produce("t", b"xyz", key=b"\x00\x00\x00\x01")  # a value IntegerDeserializer refuses
    raw.produce("t", b"\x00\x00\x00\x02", key=b"k")  # a key it refuses
    assert raw.flush(5) == 0
    c = DeserializingConsumer({"group.id": "g", "auto.offset.reset": "earliest",
                               "enable.partition.eof": True,
                               "key.deserializer": IntegerDeserializer(),
                               "value.deserializer": IntegerDeserializer()})
    c.subscribe(["t"])
    deadline = time.monotonic() + 5
    errors: list[Any] = []
    while len(errors) < 3 and time.monotonic() < deadline:
        try:
            c.poll(0.1)
        except ConsumeError as ce:
            errors.append(ce)
    value_err, key_err, eof = errors
    assert isinstance(value_err, ValueDeserializationError)
    assert value_err.code == KafkaError._VALUE_DESERIALIZATION == -159
    assert value_err.kafka_message.value() == b"xyz"  # the raw message
    assert isinstance(key_err, KeyDeserializationError) and key_err.code == -160
    assert key_err.kafka_message.key() == b"k"
    assert type(eof) is ConsumeError and eof.code == KafkaError._PARTITION_EOF
    assert eof.kafka_message.error().code() == KafkaError._PARTITION_EOF
    c.close()


def test_module_layout(kafka_cluster: Any) -> None:
    import confluent_kafka
    import confluent_kafka.deserializing_consumer
    import confluent_kafka.error
    import confluent_kafka.serializing_producer

    assert confluent_kafka.error.KafkaError is confluent_kafka.KafkaError
    assert confluent_kafka.error.KafkaException is confluent_kafka.KafkaException
    assert issubclass(confluent_kafka.SerializingProducer, confluent_kafka.Producer)
    assert issubclass(confluent_kafka.DeserializingConsumer, confluent_kafka.Consumer)
    assert (confluent_kafka.serializing_producer.SerializingProducer
            is confluent_kafka.SerializingProducer)
    assert {"SerializingProducer", "DeserializingConsumer"} <= set(confluent_kafka.__all__)
    with pytest.raises(ModuleNotFoundError):
        import confluent_kafka.schema_registry
