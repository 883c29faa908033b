"""Serdes: how keys and values of topics become Python objects and back.

A serde is any object with ``serialize(topic, obj) -> bytes | None`` and
``deserialize(topic, data) -> object``. The names ``"bytes"``, ``"str"``,
``"json"`` and ``"int"`` give the built-in ones; ``None`` passes through both
ways untouched (a tombstone stays a tombstone, a keyless record stays keyless).

Internal topics (repartition topics, changelogs) and local checkpoints use
:data:`INTERNAL`, msgpack with tuples for arrays, so intermediate keys and
aggregates may be any msgpack-able value (numbers, strings, bytes, lists,
tuples, dicts, ``Windowed``) without a serde of their own.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Protocol, runtime_checkable

import msgpack

from ..errors import ConfigError, SerdeError
from ._windows import Windowed

__all__ = ["INTERNAL", "Serde", "resolve_serde"]


@runtime_checkable
class Serde(Protocol):
    """What a serde object must offer; both methods see ``None`` only if they choose to."""

    def serialize(self, topic: str, obj: Any) -> bytes | None: ...

    def deserialize(self, topic: str, data: bytes | None) -> Any: ...


class BytesSerde:
    name = "bytes"

    def serialize(self, topic: str, obj: Any) -> bytes | None:
        if obj is None or isinstance(obj, bytes):
            return obj
        if isinstance(obj, (bytearray, memoryview)):
            return bytes(obj)
        raise SerdeError(
            f"the bytes serde needs bytes, got {type(obj).__name__} (writing to {topic!r}); "
            'configure a serde ("str", "json", "int" or an object)',
            topic=topic,
        )

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        return data


class StrSerde:
    name = "str"

    def serialize(self, topic: str, obj: Any) -> bytes | None:
        if type(obj) is str:
            return obj.encode()
        if obj is None:
            return None
        if not isinstance(obj, str):
            raise SerdeError(
                f"the str serde needs str, got {type(obj).__name__} (writing to {topic!r})",
                topic=topic,
            )
        return obj.encode()

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return bytes(data).decode()
        except UnicodeDecodeError as e:
            raise SerdeError(f"a record of {topic!r} is not UTF-8: {e}", topic=topic) from e


class JsonSerde:
    name = "json"

    def serialize(self, topic: str, obj: Any) -> bytes | None:
        if obj is None:
            return None
        try:
            return json.dumps(obj, separators=(",", ":")).encode()
        except (TypeError, ValueError) as e:
            raise SerdeError(f"cannot write JSON to {topic!r}: {e}", topic=topic) from e

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as e:
            raise SerdeError(f"a record of {topic!r} is not JSON: {e}", topic=topic) from e


_LONG = struct.Struct(">q")
_LONG_LIMIT = 2**63


class IntSerde:
    """Kafka's ``LongSerde``: 8 bytes, big-endian, signed (what Kafka Streams' counts use)."""

    name = "int"

    def serialize(self, topic: str, obj: Any) -> bytes | None:
        if type(obj) is int and -_LONG_LIMIT <= obj < _LONG_LIMIT:
            return _LONG.pack(obj)
        if obj is None:
            return None
        if not isinstance(obj, int) or isinstance(obj, bool):
            raise SerdeError(
                f"the int serde needs int, got {type(obj).__name__} (writing to {topic!r})",
                topic=topic,
            )
        try:
            return _LONG.pack(obj)
        except struct.error as e:
            raise SerdeError(f"{obj} does not fit in 64 bits (topic {topic!r})", topic=topic) from e

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) != 8:
            raise SerdeError(
                f"a record of {topic!r} has {len(data)} bytes; the int serde reads 8", topic=topic
            )
        return _LONG.unpack(data)[0]


_WINDOWED = 1


def _encode_ext(obj: Any) -> Any:
    if isinstance(obj, Windowed):
        return msgpack.ExtType(
            _WINDOWED, msgpack.packb((obj.key, obj.start, obj.end), default=_encode_ext)
        )
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _decode_ext(code: int, data: bytes) -> Any:
    if code == _WINDOWED:
        key, start, end = msgpack.unpackb(data, use_list=False, ext_hook=_decode_ext)
        return Windowed(key, start, end)
    return msgpack.ExtType(code, data)


class InternalSerde:
    """msgpack for internal topics and checkpoints; arrays come back as tuples (hashable)."""

    name = "internal"

    def serialize(self, topic: str, obj: Any) -> bytes | None:
        try:
            # A packer made once and shared: ``packb`` makes one per call (most of its
            # cost). Without a ``default`` hook it runs no Python code, so it finishes
            # under the GIL and threads can share it; what needs the hook (a Windowed)
            # fails there and takes ``packb`` with it.
            return _PACK(obj)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError):
            pass
        try:
            packed: bytes = msgpack.packb(obj, default=_encode_ext, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise SerdeError(
                f"cannot store {type(obj).__name__} in internal topic {topic!r}: {e}; "
                "state, repartitioned keys and values must be msgpack-able "
                "(numbers, str, bytes, lists, tuples, dicts, Windowed)",
                topic=topic,
            ) from e
        return packed

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return msgpack.unpackb(data, use_list=False, ext_hook=_decode_ext, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as e:
            raise SerdeError(f"a record of internal topic {topic!r} is damaged: {e}") from e


_PACK = msgpack.Packer(use_bin_type=True, autoreset=True).pack
INTERNAL = InternalSerde()

_WINDOW_BOUNDS = struct.Struct(">qq")


class WindowedSerde:
    """Writes a ``Windowed`` key as the inner key's bytes, then start and end (8 bytes each,
    big-endian); reads it back. Used for windowed results written to user topics."""

    def __init__(self, inner: Serde) -> None:
        self.inner = inner
        self.name = f"windowed({getattr(inner, 'name', type(inner).__name__)})"

    def serialize(self, topic: str, obj: Any) -> bytes | None:
        if obj is None:
            return None
        if not isinstance(obj, Windowed):
            return self.inner.serialize(topic, obj)
        key = self.inner.serialize(topic, obj.key) or b""
        return key + _WINDOW_BOUNDS.pack(obj.start, obj.end)

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) < 16:
            raise SerdeError(f"a windowed key of {topic!r} is shorter than 16 bytes", topic=topic)
        start, end = _WINDOW_BOUNDS.unpack_from(data, len(data) - 16)
        return Windowed(self.inner.deserialize(topic, bytes(data[:-16])), start, end)


_BY_NAME: dict[str, Serde] = {
    "bytes": BytesSerde(),
    "str": StrSerde(),
    "json": JsonSerde(),
    "int": IntSerde(),
}


def resolve_serde(spec: object, what: str) -> Serde:
    """A serde from a name or an object; ``ConfigError`` for anything else."""
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec]
        except KeyError:
            raise ConfigError(
                f"{what}: unknown serde {spec!r}; use one of {sorted(_BY_NAME)} or an object "
                "with serialize(topic, obj) and deserialize(topic, data)"
            ) from None
    if callable(getattr(spec, "serialize", None)) and callable(getattr(spec, "deserialize", None)):
        return spec  # type: ignore[return-value]
    raise ConfigError(
        f"{what}: {spec!r} is not a serde; use one of {sorted(_BY_NAME)} or an object "
        "with serialize(topic, obj) and deserialize(topic, data)"
    )
