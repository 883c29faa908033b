"""kafka-python's ``kafka.serializer``: optional base classes for (de)serializers."""

from __future__ import annotations

from typing import Any

__all__ = ["Deserializer", "Serializer"]


class Serializer:
    def __init__(self, **config: Any) -> None:
        pass

    def serialize(self, topic: str, value: Any) -> bytes | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Deserializer:
    def __init__(self, **config: Any) -> None:
        pass

    def deserialize(self, topic: str, bytes_: bytes | None) -> Any:
        raise NotImplementedError

    def close(self) -> None:
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
