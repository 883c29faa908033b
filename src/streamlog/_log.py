"""``streamlog.open(path)``: the handle on a data directory, and topic administration."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._config import INT32_MAX, INT64_MAX, short_repr
from ._eventstore import EventStore
from ._names import check_partition, check_topic_name
from ._structs import (
    CompactionStats,
    GroupDescription,
    ProducerState,
    TopicDescription,
    TopicPartition,
    TransactionDescription,
)
from ._table import Table
from .clients._consumer import Consumer
from .clients._producer import Producer
from .coordination import _groupadmin, _txnadmin
from .coordination._manager import CLEANER_BACKOFF_MS, LogManager
from .errors import ConfigError, OffsetOutOfRangeError
from .storage._cleaner import DEFAULT_DEDUPE_BUFFER_SIZE
from .storage._partition import PartitionLog, RecoveryReport

__all__ = ["Log", "open"]


class Log:
    """An open data directory. Create it with ``streamlog.open(path)``.

    Thread-safe; several processes may open the same directory at once. Use
    as a context manager or call ``close()`` (idempotent); any use after
    ``close()`` raises ``ClosedError``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout_ms: int = 10_000,
        clock: Callable[[], float] | None = None,
        cleaner: bool | Mapping[str, Any] = True,
    ) -> None:
        backoff, dedupe = _check_cleaner(cleaner)
        if isinstance(lock_timeout_ms, bool) or not isinstance(lock_timeout_ms, int):
            raise ConfigError(
                f"lock_timeout_ms must be an int, not {type(lock_timeout_ms).__name__}"
            )
        if not 0 <= lock_timeout_ms <= INT32_MAX:
            raise ConfigError(
                f"lock_timeout_ms must be between 0 and {INT32_MAX}; "
                f"got {short_repr(lock_timeout_ms)}"
            )
        self._manager = LogManager(
            path,
            lock_timeout_ms=lock_timeout_ms,
            clock=clock,
            cleaner_backoff_ms=backoff,
            dedupe_buffer_size=dedupe,
        )

    @property
    def recovery(self) -> list[RecoveryReport]:
        """What recovery found, partition by partition, if this open ran it."""
        return self._manager.recovery

    @property
    def path(self) -> str:
        """The data directory's absolute path."""
        return self._manager.path

    # ------------------------------------------------------------------ topics
    def create_topic(
        self, name: str, partitions: int = 1, config: Mapping[str, Any] | None = None
    ) -> None:
        """Create a topic with ``partitions`` partitions and Kafka-named ``config`` overrides.

        :raises InvalidTopicError: the name breaks Kafka's naming rule.
        :raises TopicExistsError: a topic of that name exists.
        :raises ConfigError: bad partition count, unknown key or bad value.
        """
        self._manager.create_topic(name, partitions, config)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data. Readers in other processes see it vanish.

        :raises UnknownTopicError: no such topic.
        """
        self._manager.delete_topic(name)

    def topics(self) -> list[str]:
        """Names of all topics, sorted."""
        return self._manager.topics()

    def describe_topic(self, name: str) -> TopicDescription:
        """Partitions (offsets, size, segment count) and full configuration of a topic."""
        return self._manager.describe_topic(name)

    def create_partitions(self, name: str, total: int) -> None:
        """Grow a topic to ``total`` partitions (never shrink).

        :raises ConfigError: ``total`` is not larger than the current count.
        """
        self._manager.create_partitions(name, total)

    def alter_topic_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Change topic config overrides (Kafka names); they apply to new appends and retention."""
        self._manager.alter_topic_config(name, config)

    def partitions_for(self, name: str) -> set[int]:
        """The partition numbers of a topic."""
        self._manager.check_open()
        return set(range(self._manager.catalog.require(name).partitions))

    # ------------------------------------------------------------------ records
    def delete_records(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Move each partition's log start offset up (Kafka's ``deleteRecords``).

        Returns the new log start offset of each partition. Keys are ``TopicPartition``
        or plain ``(topic, partition)`` tuples. Every entry is checked before any
        partition is changed: a bad topic name raises ``InvalidTopicError``, a bad
        partition or offset ``TypeError``/``ValueError``; an offset outside a partition's
        ``[log start, end]`` raises ``OffsetOutOfRangeError``.
        """
        return self._manager.delete_records(_check_delete_records(offsets))

    def enforce_retention(self) -> int:
        """Apply ``retention.ms`` / ``retention.bytes`` to every partition now.

        Appends also do this at most once a minute per partition. Returns the
        number of segments deleted.
        """
        return self._manager.enforce_retention()

    def compact(self, topic: str) -> CompactionStats:
        """Compact every partition of ``topic`` now, whatever its dirty ratio (see
        docs/compaction.md). The active segment, records at or past the last stable
        offset and records newer than ``min.compaction.lag.ms`` are left alone.

        :raises UnknownTopicError: no such topic.
        :raises ConfigError: the topic's ``cleanup.policy`` does not include "compact".
        """
        return self._manager.compact(topic)

    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The storage-level log of one partition (internal API; see docs/design.md)."""
        return self._manager.partition(topic, partition)

    # ------------------------------------------------------------------ groups
    def list_groups(self) -> list[str]:
        """Every consumer group with members or committed offsets, sorted."""
        return _groupadmin.list_groups(self._manager)

    def describe_group(self, group_id: str) -> GroupDescription:
        """State, generation, protocol, members and per-partition committed offset and lag."""
        return _groupadmin.describe_group(self._manager, group_id)

    def reset_offsets(
        self,
        group_id: str,
        topic: str,
        *,
        to: str | int | None = None,
        shift_by: int | None = None,
        to_datetime: datetime.datetime | None = None,
        partitions: Iterable[int] | None = None,
        dry_run: bool = False,
    ) -> dict[TopicPartition, int]:
        """Set the group's committed offsets for ``topic`` (kafka-consumer-groups
        --reset-offsets). Exactly one of ``to`` ("earliest", "latest" or an offset),
        ``shift_by`` (from the committed offset; partitions with none are skipped) or
        ``to_datetime`` (the first record at or after it; the end offset if none; a
        naive datetime is UTC). Offsets are clamped to each partition's
        ``[log start, end]``. Returns the new offsets; with ``dry_run`` nothing is
        written. Refused (``GroupNotEmptyError``) while the group has active members.
        """
        return _groupadmin.reset_offsets(
            self._manager,
            group_id,
            topic,
            to=to,
            shift_by=shift_by,
            to_datetime=to_datetime,
            partitions=partitions,
            dry_run=dry_run,
        )

    def delete_group(self, group_id: str) -> None:
        """Delete a consumer group and its committed offsets.

        :raises GroupNotEmptyError: the group has active members.
        :raises UnknownGroupError: there is no such group.
        """
        _groupadmin.delete_group(self._manager, group_id)

    # ------------------------------------------------------------------ transactions
    def list_transactions(self) -> list[TransactionDescription]:
        """Every transactional id used in this directory, sorted (kafka-transactions.sh
        list)."""
        return _txnadmin.list_transactions(self._manager)

    def describe_transaction(self, transactional_id: str) -> TransactionDescription:
        """One transactional id's producer id, epoch, state and open transaction.

        :raises IllegalStateError: no such transactional id.
        """
        return _txnadmin.describe_transaction(self._manager, transactional_id)

    def abort_transaction(self, transactional_id: str) -> bool:
        """Abort the open transaction of ``transactional_id`` now and fence its producer
        (kafka-transactions.sh abort). Returns False if it had none open."""
        return _txnadmin.abort_transaction(self._manager, transactional_id)

    def describe_producers(self, topic: str, partition: int) -> list[ProducerState]:
        """The producer ids one partition remembers (kafka-transactions.sh
        describe-producers), sorted by id."""
        return _txnadmin.describe_producers(self._manager, topic, partition)

    # ------------------------------------------------------------------ clients
    def producer(self, **config: Any) -> Producer:
        """A ``Producer`` writing to this data directory (see ``streamlog.Producer``)."""
        self._manager.check_open()
        return Producer(self._manager, **config)

    def consumer(self, *topics: str, **config: Any) -> Consumer:
        """A ``Consumer`` of this data directory; ``topics`` given here are subscribed."""
        self._manager.check_open()
        return Consumer(self._manager, *topics, **config)

    def table(
        self,
        topic: str,
        *,
        key_deserializer: Callable[[bytes], Any] | None = None,
        value_deserializer: Callable[[bytes], Any] | None = None,
        refresh_interval_ms: float | None = None,
    ) -> Table:
        """A read-only Mapping of the latest value per key of ``topic`` (see ``Table``)."""
        self._manager.check_open()
        return Table(self._manager, topic, key_deserializer=key_deserializer,
                     value_deserializer=value_deserializer,
                     refresh_interval_ms=refresh_interval_ms)

    def event_store(self, topic: str, partitions: int = 1, *, sync: bool = False) -> EventStore:
        """The ``EventStore`` of ``topic``, created (with ``partitions``) if missing."""
        self._manager.check_open()
        return EventStore(self._manager, topic, partitions=partitions, sync=sync)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Sync what this handle wrote and release the directory. Idempotent.

        Every partition is closed even when closing one fails; the first error
        is raised after all were tried.
        """
        self._manager.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._manager.closed else "open"
        return f"<streamlog.Log {self.path!r} {state}>"


def open(path: str | os.PathLike[str], **options: Any) -> Log:
    """Open (creating if missing) the data directory at ``path``.

    Options: ``lock_timeout_ms`` (default 10000): how long an append waits
    for a partition lock held by another process before ``LockTimeoutError``.
    ``cleaner`` (default True): the background log cleaner of compacted topics;
    False turns it off (``Log.compact`` still works), a dict sets ``backoff_ms``
    (default 15000, Kafka's ``log.cleaner.backoff.ms``) and
    ``dedupe_buffer_size`` (bytes, default 32 MiB, Kafka's
    ``log.cleaner.dedupe.buffer.size``). See docs/compaction.md.
    """
    known = {"lock_timeout_ms", "clock", "cleaner"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
    return Log(path, **options)


def _check_cleaner(cleaner: object) -> tuple[int | None, int]:
    """``(backoff ms or None for no thread, dedupe buffer bytes)`` of the ``cleaner``
    option; raises ``ConfigError``."""
    if isinstance(cleaner, bool):
        return (CLEANER_BACKOFF_MS if cleaner else None), DEFAULT_DEDUPE_BUFFER_SIZE
    if not isinstance(cleaner, Mapping):
        raise ConfigError(f"cleaner must be a bool or a dict, not {type(cleaner).__name__}")
    unknown = set(cleaner) - {"backoff_ms", "dedupe_buffer_size", "enabled"}
    if unknown:
        raise ConfigError(f"unknown cleaner option(s) {sorted(unknown, key=str)}")
    values = []
    for name, default, low in (
        ("backoff_ms", CLEANER_BACKOFF_MS, 1),
        ("dedupe_buffer_size", DEFAULT_DEDUPE_BUFFER_SIZE, 1024),
    ):
        v = cleaner.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= INT64_MAX:
            raise ConfigError(f"cleaner {name} must be an int >= {low}; got {short_repr(v)}")
        values.append(v)
    enabled = cleaner.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"cleaner enabled must be a bool; got {short_repr(enabled)}")
    return (values[0] if enabled else None), values[1]


def _check_delete_records(offsets: object) -> dict[TopicPartition, int]:
    if not isinstance(offsets, Mapping):
        raise TypeError(
            f"offsets must be a mapping of TopicPartition to an offset, "
            f"not {type(offsets).__name__}"
        )
    checked: dict[TopicPartition, int] = {}
    for key, offset in offsets.items():
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError(
                f"expected a TopicPartition or a (topic, partition) tuple, not {short_repr(key)}"
            )
        topic, partition = key
        check_topic_name(topic)
        check_partition(partition)
        if partition > INT32_MAX:
            raise ValueError(
                f"partition must be <= {INT32_MAX} (an int32, as in Kafka); "
                f"got {short_repr(partition)}"
            )
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if not -INT64_MAX - 1 <= offset <= INT64_MAX:  # not an offset at all: no need to look
            raise OffsetOutOfRangeError(
                f"cannot delete records before {short_repr(offset)}: offsets are int64",
                offset=offset,
            )
        checked[TopicPartition(topic, partition)] = offset
    return checked
