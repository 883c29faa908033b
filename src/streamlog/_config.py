"""Topic configuration: Kafka's dotted names, validated, with embedded-friendly defaults.

Values may be given as ints or as decimal strings (as Kafka's admin tools and
``--config k=v`` pass them); anything else is a ``ConfigError`` raised before
any file is touched. See ``docs/configuration.md`` for why each default differs
from Kafka's where it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError

__all__ = ["TopicConfig"]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# key -> (attribute, kind, default, minimum, maximum)
_INT_KEYS: dict[str, tuple[str, int, int, int]] = {
    # Kafka: 1 GiB. 64 MiB keeps an embedded data directory small, lets
    # retention free space in finer steps, and bounds crash recovery.
    "segment.bytes": ("segment_bytes", 64 * MIB, 4 * KIB, GIB),
    "segment.ms": ("segment_ms", 7 * 24 * 3600 * 1000, 1, 2**62),
    # Kafka: 10 MiB. Index files grow on demand here, so this is a cap, not a
    # preallocation; 1 MiB holds 131072 offset entries (8 GiB of log at the
    # default index interval), more than a 64 MiB segment needs.
    "segment.index.bytes": ("segment_index_bytes", MIB, 4 * KIB, 64 * MIB),
    "index.interval.bytes": ("index_interval_bytes", 4 * KIB, 0, 2**31 - 1),
    "retention.ms": ("retention_ms", 7 * 24 * 3600 * 1000, -1, 2**62),
    "retention.bytes": ("retention_bytes", -1, -1, 2**62),
    "max.message.bytes": ("max_message_bytes", 1048588, 128, 512 * MIB),
    "delete.retention.ms": ("delete_retention_ms", 24 * 3600 * 1000, 0, 2**62),
}
_STR_KEYS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "cleanup.policy": ("cleanup_policy", "delete", ("delete",)),
    "message.timestamp.type": (
        "message_timestamp_type",
        "CreateTime",
        ("CreateTime", "LogAppendTime"),
    ),
}
# Accepted by Kafka, refused here with a reason rather than as "unknown".
_NOT_YET = {
    ("cleanup.policy", "compact"): "compaction is not implemented yet; use 'delete'",
    ("cleanup.policy", "compact,delete"): "compaction is not implemented yet; use 'delete'",
    ("cleanup.policy", "delete,compact"): "compaction is not implemented yet; use 'delete'",
}


@dataclass(frozen=True)
class TopicConfig:
    """A topic's validated configuration. Build it with ``TopicConfig.from_dict``."""

    segment_bytes: int = _INT_KEYS["segment.bytes"][1]
    segment_ms: int = _INT_KEYS["segment.ms"][1]
    segment_index_bytes: int = _INT_KEYS["segment.index.bytes"][1]
    index_interval_bytes: int = _INT_KEYS["index.interval.bytes"][1]
    retention_ms: int = _INT_KEYS["retention.ms"][1]
    retention_bytes: int = _INT_KEYS["retention.bytes"][1]
    max_message_bytes: int = _INT_KEYS["max.message.bytes"][1]
    delete_retention_ms: int = _INT_KEYS["delete.retention.ms"][1]
    cleanup_policy: str = "delete"
    message_timestamp_type: str = "CreateTime"

    @classmethod
    def from_dict(cls, config: Mapping[str, Any] | None) -> TopicConfig:
        """Validate Kafka-named settings; unknown keys and bad values raise ``ConfigError``."""
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ConfigError(f"topic config must be a dict, not {type(config).__name__}")
        values: dict[str, Any] = {}
        for key, raw in config.items():
            if not isinstance(key, str):
                raise ConfigError(f"topic config keys must be str, not {type(key).__name__}")
            if key in _INT_KEYS:
                attr, _default, low, high = _INT_KEYS[key]
                values[attr] = _as_int(key, raw, low, high)
            elif key in _STR_KEYS:
                attr, _sdefault, allowed = _STR_KEYS[key]
                if not isinstance(raw, str):
                    raise ConfigError(f"{key} must be a str, not {type(raw).__name__}")
                if (key, raw) in _NOT_YET:
                    raise ConfigError(f"{key}={raw!r}: {_NOT_YET[key, raw]}")
                if raw not in allowed:
                    raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {raw!r}")
                values[attr] = raw
            else:
                raise ConfigError(
                    f"unknown topic config {key!r}; known: {', '.join(sorted(known_keys()))}"
                )
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        """Kafka-named settings, every default filled in."""
        by_attr = asdict(self)
        out: dict[str, object] = {}
        for key, (attr, *_rest) in _INT_KEYS.items():
            out[key] = by_attr[attr]
        for key, (attr, *_rest2) in _STR_KEYS.items():
            out[key] = by_attr[attr]
        return dict(sorted(out.items()))

    def merged(self, changes: Mapping[str, Any]) -> TopicConfig:
        """A copy with ``changes`` (Kafka names) applied and validated."""
        current = self.to_dict()
        current.update(changes)
        return TopicConfig.from_dict(current)


def known_keys() -> list[str]:
    return sorted([*_INT_KEYS, *_STR_KEYS])


def _as_int(key: str, raw: object, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ConfigError(f"{key} must be an int, not {type(raw).__name__}")
    if isinstance(raw, str):
        text = raw.strip()
        if not text.removeprefix("-").isdigit() or not text.isascii():  # not "--5"
            raise ConfigError(f"{key} must be an integer; got {raw!r}")
        value = int(text)
    else:
        value = raw
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}; got {value}")
    return value


assert {f.name for f in fields(TopicConfig)} == {
    *(v[0] for v in _INT_KEYS.values()),
    *(v[0] for v in _STR_KEYS.values()),
}
