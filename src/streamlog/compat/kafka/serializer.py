"""kafka-python's ``kafka.serializer``: optional base classes for (de)serializers."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["Deserializer", "Serializer"]


class Serializer(abc.ABC):
    """Subclass and define ``serialize`` (kafka-python's abstract base)."""

    def __init__(self, **config: Any) -> None:  # noqa: B027 (an optional hook, as in kafka-python)
        pass

    @abc.abstractmethod
    def serialize(self, topic: str, value: Any) -> bytes | None:
        """The bytes of ``value`` for ``topic`` (None stays a null value)."""

    def close(self) -> None:  # noqa: B027 (an optional hook, as in kafka-python)
        pass


class Deserializer(abc.ABC):
    """Subclass and define ``deserialize`` (kafka-python's abstract base)."""

    def __init__(self, **config: Any) -> None:  # noqa: B027 (an optional hook, as in kafka-python)
        pass

    @abc.abstractmethod
    def deserialize(self, topic: str, bytes_: bytes | None) -> Any:
        """The value for the bytes read from ``topic``."""

    def close(self) -> None:  # noqa: B027 (an optional hook, as in kafka-python)
        pass


def serialize(f: Any, topic: str, data: Any) -> Any:
    """kafka-python's rule: the serializer is called for None too."""
    if not f:
        return data
    if isinstance(f, Serializer):
        return f.serialize(topic, data)
    return f(data)


def deserialize(f: Any, topic: str, data: bytes | None) -> Any:
    if not f:
        return data
    if isinstance(f, Deserializer):
        return f.deserialize(topic, data)
    return f(data)
