"""``confluent_kafka.serialization``: the serializer interface of ``SerializingProducer`` and
``DeserializingConsumer``, and the simple serializers (confluent-kafka 2.x's names and
behaviour: big-endian int32 and IEEE 754 binary64, ``str`` in a codec; None stays None,
Kafka's null).

A serializer is any callable ``(obj, ctx) -> bytes | None`` and a deserializer any callable
``(bytes | None, ctx) -> obj``; ``ctx`` is a :class:`SerializationContext` naming the topic,
the field (:class:`MessageField`) and the headers. The schema-registry serializers
(Avro, JSON Schema, Protobuf) are not provided.
"""

from __future__ import annotations

import struct
from enum import Enum
from typing import Any

from ._types import KafkaException

__all__ = [
    "Deserializer",
    "DoubleDeserializer",
    "DoubleSerializer",
    "IntegerDeserializer",
    "IntegerSerializer",
    "MessageField",
    "SerializationContext",
    "SerializationError",
    "Serializer",
    "StringDeserializer",
    "StringSerializer",
]


class MessageField(str, Enum):
    """Which part of a message a (de)serializer works on."""

    NONE = "none"
    KEY = "key"
    VALUE = "value"

    def __str__(self) -> str:
        return str(self.value)


class SerializationContext:
    """What a (de)serializer is told about the data: ``topic``, ``field``
    (:class:`MessageField`) and ``headers`` (a list of ``(str, bytes)`` or None)."""

    def __init__(self, topic: str, field: MessageField | str, headers: Any = None) -> None:
        self.topic = topic
        self.field = field
        self.headers = headers

    def __repr__(self) -> str:
        return f"SerializationContext(topic={self.topic!r}, field={str(self.field)!r})"


class SerializationError(KafkaException):
    """An error of a serializer or deserializer (a ``KafkaException``)."""


class Serializer:
    """Base of the serializers: ``serializer(obj, ctx=None) -> bytes | None``."""

    __slots__: list[str] = []

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        # not abstract: confluent-kafka's base can be made, and raises when called
        raise NotImplementedError


class Deserializer:
    """Base of the deserializers: ``deserializer(value, ctx=None) -> object``."""

    __slots__: list[str] = []

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Any:
        # not abstract: confluent-kafka's base can be made, and raises when called
        raise NotImplementedError


def _pack(fmt: str, obj: Any) -> bytes:
    try:
        return struct.pack(fmt, obj)
    except struct.error as e:
        raise SerializationError(str(e)) from None


def _unpack(fmt: str, value: bytes) -> Any:
    try:
        return struct.unpack(fmt, value)[0]
    except struct.error as e:
        raise SerializationError(str(e)) from None


class DoubleSerializer(Serializer):
    """A float as IEEE 754 binary64, big-endian (Java's ``DoubleSerializer``)."""

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        return None if obj is None else _pack(">d", obj)


class DoubleDeserializer(Deserializer):
    """IEEE 754 binary64, big-endian, to a float."""

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Any:
        return None if value is None else _unpack(">d", value)


class IntegerSerializer(Serializer):
    """An int as a signed big-endian int32 (Java's ``IntegerSerializer``)."""

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        return None if obj is None else _pack(">i", obj)


class IntegerDeserializer(Deserializer):
    """A signed big-endian int32 to an int."""

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Any:
        return None if value is None else _unpack(">i", value)


class StringSerializer(Serializer):
    """A ``str`` encoded with ``codec`` (default ``utf_8``)."""

    def __init__(self, codec: str = "utf_8") -> None:
        self.codec = codec

    def __call__(self, obj: Any, ctx: SerializationContext | None = None) -> bytes | None:
        if obj is None:
            return None
        out: bytes = obj.encode(self.codec)  # (as confluent-kafka: a UnicodeError propagates)
        return out


class StringDeserializer(Deserializer):
    """Bytes decoded with ``codec`` (default ``utf_8``)."""

    def __init__(self, codec: str = "utf_8") -> None:
        self.codec = codec

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Any:
        return None if value is None else value.decode(self.codec)
