"""``confluent_kafka.SerializingProducer``: a ``Producer`` whose ``key.serializer`` and
``value.serializer`` config entries turn keys and values into bytes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._producer import DeliveryCallback, Producer
from .error import KeySerializationError, ValueSerializationError
from .serialization import MessageField, SerializationContext

__all__ = ["SerializingProducer"]

SerializerFn = Callable[[Any, SerializationContext], Any]


def _serializer(conf: dict[str, Any], name: str) -> SerializerFn | None:
    fn: Any = conf.pop(name, None)
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be callable, not {type(fn).__name__}")
    checked: SerializerFn | None = fn
    return checked


class SerializingProducer(Producer):
    """confluent-kafka's ``SerializingProducer(conf)``: ``key.serializer`` and
    ``value.serializer`` are callables ``(obj, ctx) -> bytes`` (``ctx`` a
    ``SerializationContext``); the rest of ``conf`` is a ``Producer``'s."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        conf_copy = dict(conf)
        self._key_serializer = _serializer(conf_copy, "key.serializer")
        self._value_serializer = _serializer(conf_copy, "value.serializer")
        super().__init__(conf_copy)

    def produce(  # type: ignore[override]  # (key before value, as confluent-kafka's)
        self,
        topic: str,
        key: Any = None,
        value: Any = None,
        partition: int = -1,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        """Serialize ``key`` and ``value``, then ``Producer.produce`` them.

        :raises KeySerializationError: the key serializer raised (``.exception``).
        :raises ValueSerializationError: the value serializer raised.
        """
        ctx = SerializationContext(topic, MessageField.KEY, headers)
        if self._key_serializer is not None:
            try:
                key = self._key_serializer(key, ctx)
            except Exception as se:
                raise KeySerializationError(se) from se
        ctx.field = MessageField.VALUE
        if self._value_serializer is not None:
            try:
                value = self._value_serializer(value, ctx)
            except Exception as se:
                raise ValueSerializationError(se) from se
        super().produce(topic, value, key, partition=partition, on_delivery=on_delivery,
                        timestamp=timestamp, headers=headers)
