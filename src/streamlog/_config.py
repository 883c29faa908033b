"""Validated configuration: topics (Kafka's dotted names) and clients (snake_case names).

Topic settings may be given as ints or as decimal strings (as Kafka's admin
tools and ``--config k=v`` pass them); anything else is a ``ConfigError``
raised before any file is touched. See ``docs/configuration.md`` for why each
default differs from Kafka's where it does.

Client settings are the keyword arguments of ``Producer``/``Consumer`` (Kafka's
names in snake_case, defaults as in kafka-python); ``ProducerConfig`` and
``ConsumerConfig`` check them, again before anything touches the disk. Two
checks belong to registries of upper layers, which this base module does not
import: the partitioner's name (``clients._partitioner.make_partitioner``) and
the assignors' names (``coordination._assignors.get_assignor``). The clients
make those right after ``from_kwargs``.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ._names import check_name, short_repr
from .errors import ConfigError

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "ConsumerConfig",
    "ProducerConfig",
    "TopicConfig",
    "next_client_id",
    "short_repr",
    "wait_seconds",
]

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
    # Kafka's defaults and ranges: no minimum lag, no maximum (Long.MAX_VALUE)
    "min.compaction.lag.ms": ("min_compaction_lag_ms", 0, 0, 2**63 - 1),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", 2**63 - 1, 1, 2**63 - 1),
}
# key -> (attribute, default, minimum, maximum)
_FLOAT_KEYS: dict[str, tuple[str, float, float, float]] = {
    "min.cleanable.dirty.ratio": ("min_cleanable_dirty_ratio", 0.5, 0.0, 1.0),
}
# cleanup.policy is a list in Kafka ("compact,delete" = "delete,compact"); it is
# stored in this canonical spelling so that equal policies compare equal.
_POLICIES = {
    frozenset({"delete"}): "delete",
    frozenset({"compact"}): "compact",
    frozenset({"compact", "delete"}): "compact,delete",
}
_STR_KEYS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "cleanup.policy": ("cleanup_policy", "delete", ("delete", "compact", "compact,delete")),
    "message.timestamp.type": (
        "message_timestamp_type",
        "CreateTime",
        ("CreateTime", "LogAppendTime"),
    ),
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
    min_compaction_lag_ms: int = _INT_KEYS["min.compaction.lag.ms"][1]
    max_compaction_lag_ms: int = _INT_KEYS["max.compaction.lag.ms"][1]
    min_cleanable_dirty_ratio: float = _FLOAT_KEYS["min.cleanable.dirty.ratio"][1]
    cleanup_policy: str = "delete"
    message_timestamp_type: str = "CreateTime"

    @property
    def compacted(self) -> bool:
        """``cleanup.policy`` includes "compact": the cleaner keeps the latest per key,
        and keyless records are refused."""
        return "compact" in self.cleanup_policy

    @property
    def deletes(self) -> bool:
        """``cleanup.policy`` includes "delete": retention by time and size applies."""
        return "delete" in self.cleanup_policy

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
            elif key in _FLOAT_KEYS:
                fattr, _fdefault, flow, fhigh = _FLOAT_KEYS[key]
                values[fattr] = _as_float(key, raw, flow, fhigh)
            elif key in _STR_KEYS:
                attr, _sdefault, allowed = _STR_KEYS[key]
                if not isinstance(raw, str):
                    raise ConfigError(f"{key} must be a str, not {type(raw).__name__}")
                value = _policy(raw) if key == "cleanup.policy" else raw
                if value not in allowed:
                    raise ConfigError(
                        f"{key} must be one of {', '.join(allowed)}; got {short_repr(raw)}"
                    )
                values[attr] = value
            else:
                raise ConfigError(
                    f"unknown topic config {key!r}; known: {', '.join(sorted(known_keys()))}"
                )
        lag = values.get("min_compaction_lag_ms", cls.min_compaction_lag_ms)
        if lag > values.get("max_compaction_lag_ms", cls.max_compaction_lag_ms):
            raise ConfigError("min.compaction.lag.ms must not be larger than max.compaction.lag.ms")
        return cls(**values)

    def to_dict(self) -> dict[str, object]:
        """Kafka-named settings, every default filled in."""
        by_attr = asdict(self)
        out: dict[str, object] = {}
        for key, (attr, *_rest) in _INT_KEYS.items():
            out[key] = by_attr[attr]
        for key, (attr, *_rest2) in _STR_KEYS.items():
            out[key] = by_attr[attr]
        for key, (attr, *_rest3) in _FLOAT_KEYS.items():
            out[key] = by_attr[attr]
        return dict(sorted(out.items()))

    def merged(self, changes: Mapping[str, Any]) -> TopicConfig:
        """A copy with ``changes`` (Kafka names) applied and validated."""
        current = self.to_dict()
        current.update(changes)
        return TopicConfig.from_dict(current)


def known_keys() -> list[str]:
    return sorted([*_INT_KEYS, *_STR_KEYS, *_FLOAT_KEYS])


def _policy(raw: str) -> str:
    """``cleanup.policy`` as Kafka parses it (a comma-separated list, blanks around the
    items ignored, in any order), in its canonical spelling; anything else unchanged,
    for the caller to refuse."""
    items = frozenset(item.strip() for item in raw.split(","))
    return _POLICIES.get(items, raw)


def _as_float(key: str, raw: object, low: float, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ConfigError(f"{key} must be a number, not {type(raw).__name__}")
    if isinstance(raw, str):
        if len(raw) > 64:  # (no number of ours needs more; bounds float()'s work)
            raise ConfigError(f"{key} must be a number; got {short_repr(raw)}")
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{key} must be a number; got {short_repr(raw)}") from None
    else:
        value = float(raw)
    if not low <= value <= high:  # (NaN fails this too)
        raise ConfigError(f"{key} must be between {low} and {high}; got {short_repr(raw)}")
    return value


# Longest decimal string parsed as a number (leading zeros aside): every range
# here fits in 19 digits. Anything longer is out of range without converting it
# (int() of a string of more than 4300 digits raises a ValueError of its own,
# and shorter ones still cost quadratic time).
_MAX_DIGITS = 20


def _as_int(key: str, raw: object, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ConfigError(f"{key} must be an int, not {type(raw).__name__}")
    if isinstance(raw, str):
        text = raw.strip()
        digits = text.removeprefix("-")
        if not digits.isdigit() or not text.isascii():  # not "--5"
            raise ConfigError(f"{key} must be an integer; got {short_repr(raw)}")
        significant = digits.lstrip("0") or "0"
        if len(significant) > _MAX_DIGITS:
            raise ConfigError(
                f"{key} must be between {low} and {high}; got a number of {len(significant)} digits"
            )
        value = int(significant) * (-1 if text.startswith("-") else 1)
    else:
        value = raw
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}; got {short_repr(value)}")
    return value


assert {f.name for f in fields(TopicConfig)} == {
    *(v[0] for v in _INT_KEYS.values()),
    *(v[0] for v in _STR_KEYS.values()),
    *(v[0] for v in _FLOAT_KEYS.values()),
}


# ---------------------------------------------------------------------- clients

#: Upper bound of every duration in ms and of every size and count of the clients
#: (Java's int, Kafka's type for most of them; 2**31-1 ms is about 24.8 days, and
#: fits every thread wait). ``buffer_memory`` is a long in Kafka and here.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# the longest timeout a thread wait takes: a longer one means "no limit"
_WAIT_MAX = int(threading.TIMEOUT_MAX)


@dataclass(frozen=True)
class ProducerConfig:
    """A producer's validated configuration. Build it with ``ProducerConfig.from_kwargs``.

    ``acks`` is normalized to 0, 1 or ``"all"``. ``partitioner`` is a name or a
    callable, checked when the producer builds it (``make_partitioner``). The
    last four settings are accepted for compatibility and ignored: a local
    append has no retries or requests.
    """

    acks: int | str = 1
    linger_ms: int = 0
    batch_size: int = 16384
    compression_type: str | None = None
    key_serializer: Callable[[Any], bytes | None] | None = None
    value_serializer: Callable[[Any], bytes | None] | None = None
    partitioner: str | Callable[..., int] = "murmur2"
    max_request_size: int = 1048576
    buffer_memory: int = 33554432
    max_block_ms: int = 60000
    enable_idempotence: bool = False
    transactional_id: str | None = None
    transaction_timeout_ms: int = 60000
    client_id: str | None = None
    retries: object = None
    request_timeout_ms: object = None
    delivery_timeout_ms: object = None
    max_in_flight_requests_per_connection: object = None

    @classmethod
    def from_kwargs(cls, config: Mapping[str, Any]) -> ProducerConfig:
        """Validate the producer's keyword arguments; unknown keys and bad values raise
        ``ConfigError``."""
        _check_known("producer", cls, config)
        cfg: dict[str, Any] = {**_defaults(cls), **config}
        cfg["acks"] = _check_acks(cfg["acks"])
        _check_int(cfg, "linger_ms", 0, INT32_MAX)
        _check_int(cfg, "batch_size", 0, INT32_MAX)
        _check_int(cfg, "max_request_size", 1, INT32_MAX)
        _check_int(cfg, "buffer_memory", 1, INT64_MAX)
        _check_int(cfg, "max_block_ms", 0, INT32_MAX)
        compression = cfg["compression_type"]
        if compression not in (None, "none", "zstd"):
            raise ConfigError(
                f"compression_type {short_repr(compression)} is not supported; use None or 'zstd'"
            )
        _check_callables(cfg, "key_serializer", "value_serializer")
        _check_int(cfg, "transaction_timeout_ms", 1, INT32_MAX)
        if not isinstance(cfg["enable_idempotence"], bool):
            raise ConfigError("enable_idempotence must be a bool")
        if cfg["transactional_id"] is not None:
            check_name("transactional_id", cfg["transactional_id"])
            if "enable_idempotence" in config and not cfg["enable_idempotence"]:
                raise ConfigError("a transactional_id needs enable_idempotence=True")
            cfg["enable_idempotence"] = True
        if cfg["enable_idempotence"]:
            # Kafka's rule: idempotence needs every write acknowledged as durable
            if "acks" in config and cfg["acks"] != "all":
                raise ConfigError(
                    f"enable_idempotence (and transactional_id) need acks='all', "
                    f"not {short_repr(config['acks'])}"
                )
            cfg["acks"] = "all"
        return cls(**cfg)

    def to_dict(self) -> dict[str, object]:
        """Every setting by its keyword name, defaults filled in."""
        return _as_dict(self)


@dataclass(frozen=True)
class ConsumerConfig:
    """A consumer's validated configuration. Build it with ``ConsumerConfig.from_kwargs``.

    ``partition_assignment_strategy`` is normalized to a tuple of names; the
    names themselves are the assignor registry's to check (``get_assignor``,
    called by the consumer). ``fetch_min_bytes``, ``fetch_max_wait_ms`` and
    ``request_timeout_ms`` are accepted for compatibility and ignored: reads
    are local. ``fsync_commits``: ``commit()`` returns after fdatasync (offsets
    survive power loss), not just after the write (offsets survive any process
    crash); see docs/groups.md.
    """

    group_id: str | None = None
    auto_offset_reset: str = "latest"
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = 5000
    max_poll_records: int = 500
    max_poll_interval_ms: int = 300000
    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 3000
    isolation_level: str = "read_uncommitted"
    partition_assignment_strategy: tuple[str, ...] = ("range",)
    group_instance_id: str | None = None
    key_deserializer: Callable[[bytes], Any] | None = None
    value_deserializer: Callable[[bytes], Any] | None = None
    consumer_timeout_ms: float | None = None
    client_id: str | None = None
    max_partition_fetch_bytes: int = 1048576
    fetch_max_bytes: int = 52428800
    fetch_min_bytes: object = None
    fetch_max_wait_ms: object = None
    request_timeout_ms: object = None
    metadata_max_age_ms: int = 1000
    fsync_commits: bool = False

    @classmethod
    def from_kwargs(cls, config: Mapping[str, Any]) -> ConsumerConfig:
        """Validate the consumer's keyword arguments; unknown keys and bad values raise
        ``ConfigError``."""
        _check_known("consumer", cls, config)
        cfg: dict[str, Any] = {**_defaults(cls), **config}
        if cfg["auto_offset_reset"] not in ("earliest", "latest", "none"):
            raise ConfigError(
                "auto_offset_reset must be 'earliest', 'latest' or 'none'; "
                f"got {short_repr(cfg['auto_offset_reset'])}"
            )
        if cfg["isolation_level"] not in ("read_uncommitted", "read_committed"):
            raise ConfigError(
                "isolation_level must be 'read_uncommitted' or 'read_committed'; "
                f"got {short_repr(cfg['isolation_level'])}"
            )
        for name in ("max_poll_records", "max_partition_fetch_bytes", "fetch_max_bytes"):
            v = cfg[name]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive int; got {short_repr(v)}")
            if v > INT32_MAX:
                raise ConfigError(f"{name} must be <= {INT32_MAX}; got {short_repr(v)}")
        ct = cfg["consumer_timeout_ms"]
        # a timeout, as poll's: any number >= 0, float("inf") (kafka-python's default) or
        # anything longer than a thread can wait meaning "no timeout"; not NaN
        if ct is not None and (
            isinstance(ct, bool) or not isinstance(ct, (int, float)) or not ct >= 0
        ):
            raise ConfigError(f"consumer_timeout_ms must be a number >= 0; got {short_repr(ct)}")
        _check_callables(cfg, "key_deserializer", "value_deserializer")
        _check_group(cfg, explicit_auto_commit="enable_auto_commit" in config)
        return cls(**cfg)

    @property
    def auto_commit(self) -> bool:
        """Whether positions are committed automatically (needs a group)."""
        return self.enable_auto_commit and self.group_id is not None

    def to_dict(self) -> dict[str, object]:
        """Every setting by its keyword name, defaults filled in."""
        return _as_dict(self)


_counters: dict[str, itertools.count[int]] = {}
_counters_lock = threading.Lock()


def next_client_id(kind: str) -> str:
    """A client id for a client given none: ``producer-1``, ``consumer-3``... (numbered per
    kind, in this process)."""
    with _counters_lock:
        counter = _counters.setdefault(kind, itertools.count(1))
        return f"{kind}-{next(counter)}"


def _defaults(cls: type[ProducerConfig | ConsumerConfig]) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls)}


def _as_dict(config: ProducerConfig | ConsumerConfig) -> dict[str, object]:
    # not dataclasses.asdict: it deep-copies, and serializers may be any callable
    return {f.name: getattr(config, f.name) for f in fields(config)}


def _check_known(
    kind: str, cls: type[ProducerConfig | ConsumerConfig], config: Mapping[str, Any]
) -> None:
    if not isinstance(config, Mapping):
        raise ConfigError(f"{kind} config must be a dict, not {type(config).__name__}")
    for key in config:
        if not isinstance(key, str):
            raise ConfigError(f"{kind} config keys must be str, not {type(key).__name__}")
    known = sorted(_defaults(cls))
    unknown = set(config) - set(known)
    if unknown:
        raise ConfigError(f"unknown {kind} config {sorted(unknown)}; known: {known}")


def _check_acks(acks: object) -> int | str:
    if acks in ("all", -1, "-1"):
        return "all"
    if acks in (0, 1, "0", "1") and not isinstance(acks, bool):
        return 0 if acks in (0, "0") else 1
    raise ConfigError(f"acks must be 0, 1 or 'all'; got {short_repr(acks)}")


def _check_int(cfg: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = cfg[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int, not {type(value).__name__}")
    if value < low:
        raise ConfigError(f"{name} must be >= {low}; got {short_repr(value)}")
    if value > high:
        raise ConfigError(f"{name} must be <= {high}; got {short_repr(value)}")
    return value


def _check_callables(cfg: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if cfg[name] is not None and not callable(cfg[name]):
            raise ConfigError(f"{name} must be callable")


def _positive_ms(cfg: Mapping[str, Any], name: str) -> int:
    v = cfg[name]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"{name} must be a positive int (milliseconds); got {short_repr(v)}")
    if v > INT32_MAX:
        raise ConfigError(f"{name} must be <= {INT32_MAX} (milliseconds); got {short_repr(v)}")
    return v


def wait_seconds(name: str, value: object, *, unit: float = 1000.0) -> float | None:
    """Check a call's timeout (``value`` in ms, or in seconds with ``unit=1``) and return it
    in seconds for a thread wait; None means "wait without a limit".

    Any int or float >= 0 is accepted (``-0.0`` is 0). ``None``, ``float("inf")`` and any
    value longer than a thread can wait (``threading.TIMEOUT_MAX``, about 292 years)
    mean no limit: such a wait is as good as forever, and threading would raise
    ``OverflowError`` on it. ``NaN`` and negative values raise ``ValueError``; a bool or a
    non-number raises ``TypeError``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, not {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name} must be >= 0; got {short_repr(value)}")
        if value > _WAIT_MAX * unit:  # compared as ints: value / unit may not fit a float
            return None
        return value / unit
    if math.isnan(value):
        raise ValueError(f"{name} must be a number >= 0, not NaN")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {short_repr(value)}")
    seconds = value / unit
    return None if seconds > _WAIT_MAX else seconds + 0.0  # (-0.0 becomes 0.0)


def _check_group(cfg: dict[str, Any], *, explicit_auto_commit: bool) -> None:
    """Validate the group settings; normalizes ``partition_assignment_strategy`` in ``cfg``."""
    group = cfg["group_id"]
    if group is not None:
        check_name("group_id", group)
    elif explicit_auto_commit and cfg["enable_auto_commit"]:
        raise ConfigError("enable_auto_commit=True needs a group_id (Kafka refuses it too)")
    instance = cfg["group_instance_id"]
    if instance is not None:
        if group is None:
            raise ConfigError("group_instance_id needs a group_id")
        check_name("group_instance_id", instance)
    for flag in ("enable_auto_commit", "fsync_commits"):
        if not isinstance(cfg[flag], bool):
            raise ConfigError(f"{flag} must be a bool")
    for name in (
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
        "auto_commit_interval_ms",
        "metadata_max_age_ms",
    ):
        _positive_ms(cfg, name)
    if cfg["heartbeat_interval_ms"] >= cfg["session_timeout_ms"]:
        raise ConfigError(
            "heartbeat_interval_ms must be lower than session_timeout_ms "
            f"({cfg['heartbeat_interval_ms']} >= {cfg['session_timeout_ms']})"
        )
    strategies = cfg["partition_assignment_strategy"]
    if isinstance(strategies, str):
        strategies = [strategies]
    if not isinstance(strategies, (list, tuple)) or not strategies:
        raise ConfigError("partition_assignment_strategy must be a name or a list of names")
    cfg["partition_assignment_strategy"] = tuple(strategies)
