"""``confluent_kafka.error``: ``KafkaError``, ``KafkaException`` and the errors of the
serializing clients, with confluent-kafka 2.x's classes and codes (``_KEY_SERIALIZATION``
-162, ``_VALUE_SERIALIZATION`` -161, ``_KEY_DESERIALIZATION`` -160,
``_VALUE_DESERIALIZATION`` -159). Each keeps the original exception in ``.exception``; a
consume error keeps the message in ``.kafka_message``."""

from __future__ import annotations

from ._types import KafkaError, KafkaException, Message
from .serialization import SerializationError

__all__ = [
    "ConsumeError",
    "KafkaError",
    "KafkaException",
    "KeyDeserializationError",
    "KeySerializationError",
    "ProduceError",
    "SerializationError",
    "ValueDeserializationError",
    "ValueSerializationError",
]


class _KafkaClientError(KafkaException):
    """A ``KafkaException`` (``args[0]`` the ``KafkaError``) with the original exception
    and, for consume errors, the message."""

    def __init__(self, kafka_error: KafkaError, exception: BaseException | None = None,
                 kafka_message: Message | None = None) -> None:
        super().__init__(kafka_error)
        self.exception = exception
        self.kafka_message = kafka_message

    @property
    def code(self) -> int:
        error: KafkaError = self.args[0]
        return error.code()

    @property
    def name(self) -> str:
        error: KafkaError = self.args[0]
        return error.name()


class ConsumeError(_KafkaClientError):
    """An error ``DeserializingConsumer.poll`` raises (an error event, or a deserializer's
    failure; the message is in ``.kafka_message``)."""


class KeyDeserializationError(ConsumeError, SerializationError):
    """The key deserializer failed (``_KEY_DESERIALIZATION``)."""

    def __init__(self, exception: BaseException | None = None,
                 kafka_message: Message | None = None) -> None:
        super().__init__(KafkaError(KafkaError._KEY_DESERIALIZATION, str(exception)),
                         exception=exception, kafka_message=kafka_message)


class ValueDeserializationError(ConsumeError, SerializationError):
    """The value deserializer failed (``_VALUE_DESERIALIZATION``)."""

    def __init__(self, exception: BaseException | None = None,
                 kafka_message: Message | None = None) -> None:
        super().__init__(KafkaError(KafkaError._VALUE_DESERIALIZATION, str(exception)),
                         exception=exception, kafka_message=kafka_message)


class ProduceError(_KafkaClientError):
    """An error ``SerializingProducer.produce`` raises."""

    def __init__(self, kafka_error: KafkaError, exception: BaseException | None = None) -> None:
        super().__init__(kafka_error, exception, None)


class KeySerializationError(ProduceError, SerializationError):
    """The key serializer failed (``_KEY_SERIALIZATION``)."""

    def __init__(self, exception: BaseException | None = None) -> None:
        super().__init__(KafkaError(KafkaError._KEY_SERIALIZATION, str(exception)),
                         exception=exception)


class ValueSerializationError(ProduceError, SerializationError):
    """The value serializer failed (``_VALUE_SERIALIZATION``)."""

    def __init__(self, exception: BaseException | None = None) -> None:
        super().__init__(KafkaError(KafkaError._VALUE_SERIALIZATION, str(exception)),
                         exception=exception)
