"""``streamlog.open(path)``: the handle on a data directory, and topic administration."""

from __future__ import annotations

import datetime
import os
import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._names import check_name, check_partition, check_topic_name
from ._structs import (
    GroupDescription,
    MemberDescription,
    OffsetAndMetadata,
    PartitionDescription,
    PartitionLag,
    TopicDescription,
    TopicPartition,
)
from .clients._consumer import Consumer
from .clients._producer import Producer
from .coordination._catalog import TopicCatalog, TopicMeta
from .coordination._groupstore import GroupStore
from .coordination._offsets import OffsetStore
from .errors import (
    ClosedError,
    ConfigError,
    GroupNotEmptyError,
    StorageIOError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from .storage._datadir import DataDir
from .storage._partition import PartitionLog, RecoveryReport

__all__ = ["Log", "open"]

_FD_LIMIT_RAISED = False


def _raise_fd_limit() -> None:
    """Raise this process's soft open-file limit to its hard limit, once.

    Every open partition holds a few descriptors (its lock file and one per
    mapped file; Python's mmap keeps its own duplicate), so a process using
    hundreds of partitions outgrows the common soft limit of 1024 long before
    the hard limit. Kafka's brokers ask operators to raise it; a library can
    do it itself, since the hard limit is the administrator's bound.
    """
    global _FD_LIMIT_RAISED
    if _FD_LIMIT_RAISED:
        return
    _FD_LIMIT_RAISED = True
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # not permitted, or not POSIX: keep the limit
        pass


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
    ) -> None:
        if isinstance(lock_timeout_ms, bool) or not isinstance(lock_timeout_ms, int):
            raise ConfigError("lock_timeout_ms must be an int")
        if lock_timeout_ms < 0:
            raise ConfigError("lock_timeout_ms must be >= 0")
        self._lock_timeout = lock_timeout_ms / 1000
        self._clock = clock or time.time
        self._closed = False
        self._mutex = threading.RLock()
        self._partitions: dict[tuple[str, int], tuple[str, PartitionLog]] = {}
        # Consumers of this handle wait here; appends through the handle wake them.
        self._appended = threading.Condition(threading.Lock())
        self._append_count = 0
        _raise_fd_limit()
        self._datadir = DataDir(path, lock_timeout=max(self._lock_timeout, 30.0))
        self.recovery: list[RecoveryReport] = []
        try:
            self._catalog = TopicCatalog(self._datadir, lock_timeout=max(self._lock_timeout, 1.0))
            if self._datadir.needs_recovery:
                self._recover_all()
            if self._datadir.exclusive:
                # deletions interrupted by a crash; nobody else can be reading them now
                shutil.rmtree(self._datadir.trash, ignore_errors=True)
                # metadata writes interrupted between temporary file and rename
                for d in (self._datadir.meta, os.path.join(self._datadir.meta, "topics")):
                    for name in os.listdir(d):
                        if name.endswith(".tmp"):
                            os.unlink(os.path.join(d, name))
            self._datadir.opened()
        except BaseException:
            self._datadir.close()
            raise

    def _recover_all(self) -> None:
        for topic, _p, pdir in self._datadir.partition_dirs():
            meta = self._catalog.get(topic)
            if meta is None:
                continue
            plog = PartitionLog(
                pdir, meta.config, lock_timeout=self._lock_timeout, recover=True, clock=self._clock
            )
            if plog.report is not None:
                self.recovery.append(plog.report)
            plog.close()

    @property
    def path(self) -> str:
        """The data directory's absolute path."""
        return self._datadir.root

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the data directory handle is closed")

    # ------------------------------------------------------------------ topics
    def create_topic(
        self, name: str, partitions: int = 1, config: Mapping[str, Any] | None = None
    ) -> None:
        """Create a topic with ``partitions`` partitions and Kafka-named ``config`` overrides.

        :raises InvalidTopicError: the name breaks Kafka's naming rule.
        :raises TopicExistsError: a topic of that name exists.
        :raises ConfigError: bad partition count, unknown key or bad value.
        """
        self._check_open()
        self._catalog.create(name, partitions, config)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data. Readers in other processes see it vanish.

        :raises UnknownTopicError: no such topic.
        """
        self._check_open()
        self._catalog.delete(name)
        with self._mutex:
            for key in [k for k in self._partitions if k[0] == name]:
                _close_deleted(self._partitions.pop(key)[1])

    def topics(self) -> list[str]:
        """Names of all topics, sorted."""
        self._check_open()
        return self._catalog.names()

    def describe_topic(self, name: str) -> TopicDescription:
        """Partitions (offsets, size, segment count) and full configuration of a topic."""
        self._check_open()
        meta = self._catalog.require(name)
        parts = []
        for p in range(meta.partitions):
            with self._mutex:
                cached = self._partitions.get((name, p))
                plog = cached[1] if cached is not None and cached[0] == meta.id else None
            # Partitions nobody here uses are opened only for the look, so that
            # describing a topic of thousands of partitions keeps no descriptors.
            temporary = plog is None
            if plog is None:
                plog = self._open_partition(meta, p)
            try:
                end = plog.end_offset
                parts.append(
                    PartitionDescription(
                        p, plog.log_start_offset, end, plog.size_bytes(), plog.segment_count
                    )
                )
            finally:
                if temporary:
                    plog.close()
        return TopicDescription(name, parts, meta.config.to_dict())

    def create_partitions(self, name: str, total: int) -> None:
        """Grow a topic to ``total`` partitions (never shrink).

        :raises ConfigError: ``total`` is not larger than the current count.
        """
        self._check_open()
        self._catalog.grow(name, total)

    def alter_topic_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Change topic config overrides (Kafka names); they apply to new appends and retention."""
        self._check_open()
        meta = self._catalog.alter_config(name, config)
        with self._mutex:
            for (topic, _p), (topic_id, plog) in self._partitions.items():
                if topic == name and topic_id == meta.id:
                    plog.config = meta.config

    def partitions_for(self, name: str) -> set[int]:
        """The partition numbers of a topic."""
        self._check_open()
        return set(range(self._catalog.require(name).partitions))

    # ------------------------------------------------------------------ records
    def delete_records(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Move each partition's log start offset up (Kafka's ``deleteRecords``).

        Returns the new log start offset of each partition.
        """
        self._check_open()
        return {
            tp: self.partition(tp.topic, tp.partition).delete_records(o)
            for tp, o in offsets.items()
        }

    def enforce_retention(self) -> int:
        """Apply ``retention.ms`` / ``retention.bytes`` to every partition now.

        Appends also do this at most once a minute per partition. Returns the
        number of segments deleted.
        """
        self._check_open()
        deleted = 0
        for name in self._catalog.names():
            meta = self._catalog.get(name)
            if meta is None:
                continue
            for p in range(meta.partitions):
                deleted += self._partition_for(meta, p).enforce_retention()
        return deleted

    # ------------------------------------------------------------------ partitions
    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The storage-level log of one partition (internal API; see docs/design.md)."""
        self._check_open()
        check_topic_name(topic)
        check_partition(partition)
        return self._partition_for(self._catalog.require(topic), partition)

    def _partition_for(self, meta: TopicMeta, partition: int) -> PartitionLog:
        if partition >= meta.partitions:
            raise UnknownPartitionError(
                f"topic {meta.name!r} has {meta.partitions} partitions; no partition {partition}"
            )
        key = (meta.name, partition)
        with self._mutex:
            self._check_open()
            cached = self._partitions.get(key)
            if cached is not None:
                if cached[0] == meta.id:
                    return cached[1]
                _close_deleted(cached[1])  # the topic was deleted and created again
            plog = self._open_partition(meta, partition)
            plog.on_append = self._notify_appended
            self._partitions[key] = (meta.id, plog)
            return plog

    def _notify_appended(self) -> None:
        with self._appended:
            self._append_count += 1
            self._appended.notify_all()

    # ------------------------------------------------------------------ groups
    def _groups_dir(self) -> str:
        return os.path.join(self._datadir.meta, "groups")

    def list_groups(self) -> list[str]:
        """Every consumer group with members or committed offsets, sorted."""
        self._check_open()
        try:
            names = os.listdir(self._groups_dir())
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            d = os.path.join(self._groups_dir(), name)
            if os.path.exists(os.path.join(d, "state.json")) or os.path.exists(
                os.path.join(d, "offsets.log")
            ):
                out.append(name)
        return sorted(out)

    def _group_state(self, group_id: str, *, allow_missing: bool = False) -> Any:
        """The group's state with dead and expired members removed (as a coordinator would)."""
        store = GroupStore(self.path, group_id)
        offsets = OffsetStore(self.path, group_id)
        try:
            if not store.exists() and not offsets.all():
                if allow_missing:
                    return store, offsets, None
                raise UnknownGroupError(f"no consumer group {group_id!r}")
            if store.exists():
                with store.transaction() as state:
                    pass
            else:
                state = store.load()
            return store, offsets, state
        except BaseException:
            store.close()
            offsets.close()
            raise

    def describe_group(self, group_id: str) -> GroupDescription:
        """State, generation, protocol, members and per-partition committed offset and lag."""
        self._check_open()
        store, offsets, state = self._group_state(group_id)
        try:
            committed = offsets.all()
        finally:
            store.close()
            offsets.close()
        members = tuple(
            MemberDescription(m.member_id, m.client_id, m.instance_id, frozenset(m.assignment))
            for m in state.members.values()
        )
        tps = set(committed)
        for m in state.members.values():
            tps.update(m.assignment)
        lags: dict[TopicPartition, PartitionLag] = {}
        for tp in sorted(tps):
            try:
                end = self.partition(tp.topic, tp.partition).end_offset
            except (UnknownTopicError, UnknownPartitionError):
                continue  # the topic was deleted; its offsets linger until deleted
            c = committed.get(tp)
            offset = None if c is None else c.offset
            lags[tp] = PartitionLag(offset, end, None if offset is None else max(0, end - offset))
        return GroupDescription(
            group_id=group_id,
            state=state.state,
            generation=state.generation,
            protocol=state.protocol,
            members=members,
            offsets=lags,
        )

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
        self._check_open()
        check_name("group_id", group_id)
        check_topic_name(topic)
        given = [x is not None for x in (to, shift_by, to_datetime)]
        if sum(given) != 1:
            raise ValueError("give exactly one of to=, shift_by= or to_datetime=")
        if to is not None and to not in ("earliest", "latest"):
            if isinstance(to, bool) or not isinstance(to, int):
                raise ValueError(f"to must be 'earliest', 'latest' or an offset, not {to!r}")
            if to < 0:
                raise ValueError(f"offset must be >= 0, not {to}")
        if shift_by is not None and (isinstance(shift_by, bool) or not isinstance(shift_by, int)):
            raise TypeError("shift_by must be an int")
        if to_datetime is not None and not isinstance(to_datetime, datetime.datetime):
            raise TypeError("to_datetime must be a datetime.datetime")
        if not isinstance(dry_run, bool):
            raise TypeError("dry_run must be a bool")
        meta = self._catalog.require(topic)
        chosen = range(meta.partitions) if partitions is None else sorted(set(partitions))
        for p in chosen:
            check_partition(p)
            if p >= meta.partitions:
                raise UnknownPartitionError(f"topic {topic!r} has no partition {p}")
        store = GroupStore(self.path, group_id)
        offsets = OffsetStore(self.path, group_id)
        try:
            with store.transaction() as state:
                if state.members:
                    raise GroupNotEmptyError(
                        f"offsets can only be reset while group {group_id!r} is inactive; "
                        f"it is {state.state} with {len(state.members)} member(s)"
                    )
                current = offsets.all()
                new: dict[TopicPartition, int] = {}
                for p in chosen:
                    tp = TopicPartition(topic, p)
                    plog = self.partition(topic, p)
                    start, end = plog.log_start_offset, plog.end_offset
                    if to == "earliest":
                        target = start
                    elif to == "latest":
                        target = end
                    elif to is not None:
                        target = int(to)
                    elif shift_by is not None:
                        c = current.get(tp)
                        if c is None:
                            continue
                        target = c.offset + shift_by
                    else:
                        assert to_datetime is not None
                        when = to_datetime
                        if when.tzinfo is None:
                            when = when.replace(tzinfo=datetime.timezone.utc)
                        found = plog.offset_for_timestamp(int(when.timestamp() * 1000))
                        target = end if found is None else found[0]
                    new[tp] = min(max(target, start), end)
                if not dry_run and new:
                    offsets.reset({tp: OffsetAndMetadata(o) for tp, o in new.items()})
            return new
        finally:
            store.close()
            offsets.close()

    def delete_group(self, group_id: str) -> None:
        """Delete a consumer group and its committed offsets.

        :raises GroupNotEmptyError: the group has active members.
        :raises UnknownGroupError: there is no such group.
        """
        self._check_open()
        check_name("group_id", group_id)
        store = GroupStore(self.path, group_id)
        offsets = OffsetStore(self.path, group_id)
        try:
            if not store.exists() and not offsets.all():
                raise UnknownGroupError(f"no consumer group {group_id!r}")
            with store.locked():
                with store.transaction() as state:
                    if state.members:
                        raise GroupNotEmptyError(
                            f"group {group_id!r} has {len(state.members)} active member(s); "
                            "stop its consumers first"
                        )
                offsets.delete()
                store.delete()
        finally:
            store.close()
            offsets.close()

    # ------------------------------------------------------------------ clients
    def producer(self, **config: Any) -> Producer:
        """A ``Producer`` writing to this data directory (see ``streamlog.Producer``)."""
        self._check_open()
        return Producer(self, **config)

    def consumer(self, *topics: str, **config: Any) -> Consumer:
        """A ``Consumer`` of this data directory; ``topics`` given here are subscribed."""
        self._check_open()
        return Consumer(self, *topics, **config)

    def _open_partition(self, meta: TopicMeta, partition: int) -> PartitionLog:
        if partition >= meta.partitions:
            raise UnknownPartitionError(
                f"topic {meta.name!r} has {meta.partitions} partitions; no partition {partition}"
            )
        pdir = os.path.join(self._catalog.topic_dir(meta.name), str(partition))
        return PartitionLog(pdir, meta.config, lock_timeout=self._lock_timeout, clock=self._clock)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Sync what this handle wrote and release the directory. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            partitions = list(self._partitions.values())
            self._partitions.clear()
        try:
            for _id, plog in partitions:
                _close_deleted(plog)
        finally:
            self._datadir.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<streamlog.Log {self.path!r} {state}>"


def _close_deleted(plog: PartitionLog) -> None:
    """Close ``plog``; if its topic was deleted meanwhile (its directory is gone), its
    files need no sync and the failure to sync them is not an error."""
    try:
        plog.close()
    except StorageIOError:
        if os.path.isdir(plog.path):
            raise


def open(path: str | os.PathLike[str], **options: Any) -> Log:
    """Open (creating if missing) the data directory at ``path``.

    Options: ``lock_timeout_ms`` (default 10000): how long an append waits
    for a partition lock held by another process before ``LockTimeoutError``.
    """
    known = {"lock_timeout_ms", "clock"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
    return Log(path, **options)
