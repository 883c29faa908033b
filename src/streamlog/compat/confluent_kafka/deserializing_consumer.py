"""``confluent_kafka.DeserializingConsumer``: a ``Consumer`` whose ``key.deserializer`` and
``value.deserializer`` config entries turn message bytes into objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._consumer import Consumer
from ._types import Message
from .error import ConsumeError, KeyDeserializationError, ValueDeserializationError
from .serialization import MessageField, SerializationContext

__all__ = ["DeserializingConsumer"]

DeserializerFn = Callable[[Any, SerializationContext], Any]


def _deserializer(conf: dict[str, Any], name: str) -> DeserializerFn | None:
    fn: Any = conf.pop(name, None)
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be callable, not {type(fn).__name__}")
    checked: DeserializerFn | None = fn
    return checked


class DeserializingConsumer(Consumer):
    """confluent-kafka's ``DeserializingConsumer(conf)``: ``key.deserializer`` and
    ``value.deserializer`` are callables ``(bytes, ctx) -> obj``; the rest of ``conf`` is
    a ``Consumer``'s. ``poll`` raises ``ConsumeError`` for error events (where
    ``Consumer.poll`` returns them); ``consume`` is not provided (``NotImplementedError``),
    as in confluent-kafka."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        conf_copy = dict(conf)
        self._key_deserializer = _deserializer(conf_copy, "key.deserializer")
        self._value_deserializer = _deserializer(conf_copy, "value.deserializer")
        super().__init__(conf_copy)

    def poll(self, timeout: float | None = -1) -> Message | None:
        """One message with its key and value deserialized, or None after ``timeout``
        seconds (-1 or None: wait forever).

        :raises ConsumeError: an error event (``.args[0]`` its ``KafkaError``,
            ``.kafka_message`` the event).
        :raises KeyDeserializationError: the key deserializer raised.
        :raises ValueDeserializationError: the value deserializer raised.
        """
        msg = super().poll(timeout)
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            raise ConsumeError(error, kafka_message=msg)
        ctx = SerializationContext(str(msg.topic()), MessageField.VALUE, msg.headers())
        value = msg.value()
        if self._value_deserializer is not None:
            try:
                value = self._value_deserializer(value, ctx)
            except Exception as se:
                raise ValueDeserializationError(exception=se, kafka_message=msg) from se
        key = msg.key()
        ctx.field = MessageField.KEY
        if self._key_deserializer is not None:
            try:
                key = self._key_deserializer(key, ctx)
            except Exception as se:
                raise KeyDeserializationError(exception=se, kafka_message=msg) from se
        msg.set_key(key)
        msg.set_value(value)
        return msg

    def consume(self, num_messages: int = 1, timeout: float | None = -1) -> list[Message]:
        """Not provided, as in confluent-kafka: use ``poll``."""
        raise NotImplementedError
