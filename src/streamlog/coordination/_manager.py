"""``LogManager``: the service every client of one data directory handle shares.

It owns what used to be reached through the public handle's private attributes:
the open ``DataDir``, the topic catalog, the cache of open partition logs, and
the in-process append signal. ``streamlog.Log`` creates one and fronts it;
producers and consumers receive it (a client given a path creates and owns
its own), so nothing in ``clients/`` imports the handle.

Like Kafka's ``LogManager``, it also runs recovery of every partition when the
directory was not shut down cleanly, and retention over all partitions; and, as
Kafka's ``LogCleaner``, the background cleaner of compacted topics: a thread
started once the directory has a compacted topic, which cleans only while its
process holds ``meta/cleaner.lock`` (one cleaner per data directory).

Thread-safe (one ``RLock`` guards the partition cache); several processes may
each have their own manager on the same directory (the catalog and the
partition logs carry the cross-process protocols).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import _layout
from .._fs import fs
from .._names import check_partition, short_repr
from .._structs import CompactionStats, PartitionDescription, TopicDescription, TopicPartition
from ..errors import (
    ClosedError,
    ConfigError,
    CorruptRecordError,
    OffsetOutOfRangeError,
    StorageIOError,
    StreamlogError,
    UnknownPartitionError,
    UnknownTopicError,
)
from ..storage._cleaner import DEFAULT_DEDUPE_BUFFER_SIZE, CleanerThread, LogCleaner
from ..storage._datadir import DataDir, refuse_links_in
from ..storage._partition import PartitionLog, RecoveryReport
from ._catalog import TopicCatalog, TopicMeta
from ._doorbell import Bell, Doorbell
from ._offsets import sync_all_offsets
from ._txn import TransactionCoordinator

_logger = logging.getLogger("streamlog.transactions")

__all__ = ["AppendSignal", "LogManager"]

_FD_LIMIT_RAISED = False
_RETIRE_AFTER = 10.0  # seconds: longer than a consumer's metadata refresh
CLEANER_BACKOFF_MS = 15_000  # Kafka's log.cleaner.backoff.ms
CLEANER_LOCK = "cleaner.lock"  # in meta/: flocked by the process whose thread cleans


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


class AppendSignal:
    """Wakes consumers waiting for data: every append through the manager's partitions
    (and ``wakeup``/``close`` of a consumer) bumps ``count`` and notifies ``cond``. A
    waiter reads ``count`` before it looks for data and waits only while it is
    unchanged, so no notification is lost in between.

    With a ``doorbell`` (``_doorbell.py``), a waiter may instead arm a bell
    (``sleeper``), look for data once more, and ``sleep`` on it: appends by other
    processes ring it (``appended`` rings the other processes' sleepers), and
    ``notify`` rings the armed bells of this process, which were added to
    ``armed`` before the waiter read ``count``.

    ``hooks`` are called by every ``notify`` (in the notifying thread, after ``count``
    moved): ``streamlog.aio`` waiters register one while they wait, which wakes their
    event loop (``add_hook`` before the last look for data, so no wake-up is lost). A
    hook must be cheap and must not raise."""

    __slots__ = ("armed", "cond", "count", "doorbell", "hooks")

    def __init__(self, doorbell: Doorbell | None = None) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.count = 0
        self.doorbell = doorbell
        self.armed: set[Bell] = set()
        self.hooks: tuple[Callable[[], None], ...] = ()  # replaced, never changed in place

    def notify(self) -> None:
        with self.cond:
            self.count += 1
            self.cond.notify_all()
            armed = tuple(self.armed) if self.armed else ()
        hooks = self.hooks
        if hooks:
            for hook in hooks:
                hook()
        doorbell = self.doorbell
        if armed and doorbell is not None:
            for bell in armed:
                doorbell.ring_bell(bell)

    def appended(self) -> None:
        """The ``on_append`` hook: wake this process's waiters and other processes'
        sleepers (one memory read when none sleeps)."""
        self.notify()
        doorbell = self.doorbell
        if doorbell is not None:
            doorbell.ring()

    def wait(self, seen: int, timeout: float, stop: Callable[[], bool]) -> None:
        """Wait up to ``timeout`` seconds unless ``count`` moved past ``seen`` or ``stop()``."""
        with self.cond:
            if self.count == seen and not stop():
                self.cond.wait(timeout)

    def sleeper(self) -> Bell | None:
        """Arm a bell for a waiter (who must look for data once more before sleeping on
        it, and ``unarm`` it when done), or None: wait with ``wait`` instead."""
        doorbell = self.doorbell
        if doorbell is None:
            return None
        bell = doorbell.arm()
        if bell is not None:
            with self.cond:
                self.armed.add(bell)
        return bell

    def sleep(self, bell: Bell, seen: int, timeout: float, stop: Callable[[], bool]) -> None:
        """Sleep on ``bell`` up to ``timeout`` seconds unless ``count`` moved past ``seen``
        or ``stop()``."""
        with self.cond:
            if self.count != seen or stop():
                return
        bell.wait(timeout)

    def add_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` at every ``notify`` from now on (see the class docstring)."""
        with self.cond:
            self.hooks = (*self.hooks, hook)

    def remove_hook(self, hook: Callable[[], None]) -> None:
        """Undo one ``add_hook(hook)`` (nothing if it is not there)."""
        with self.cond:
            hooks = list(self.hooks)
            if hook in hooks:
                hooks.remove(hook)
                self.hooks = tuple(hooks)

    def unarm(self, bell: Bell) -> None:
        with self.cond:
            self.armed.discard(bell)
        doorbell = self.doorbell
        if doorbell is not None:
            doorbell.disarm(bell)
        else:  # the handle closed meanwhile (its doorbell forgot this bell)
            bell.sock.close()


class LogManager:
    """The open data directory below the public handle (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout_ms: int = 10_000,
        clock: Callable[[], float] | None = None,
        cleaner_backoff_ms: int | None = CLEANER_BACKOFF_MS,
        dedupe_buffer_size: int = DEFAULT_DEDUPE_BUFFER_SIZE,
    ) -> None:
        if isinstance(lock_timeout_ms, bool) or not isinstance(lock_timeout_ms, int):
            raise ConfigError("lock_timeout_ms must be an int")
        if lock_timeout_ms < 0:
            raise ConfigError("lock_timeout_ms must be >= 0")
        self.lock_timeout = lock_timeout_ms / 1000
        self.clock = clock or time.time
        # the log cleaner: None for no background thread (``compact`` works all the same)
        self._cleaner_backoff_ms = cleaner_backoff_ms
        self.cleaner = LogCleaner(dedupe_buffer_size=dedupe_buffer_size, clock=self.clock)
        self._cleaner_thread: CleanerThread | None = None
        self._closed = False
        self._mutex = threading.RLock()
        self._partitions: dict[tuple[str, int], tuple[str, PartitionLog]] = {}
        # logs of deleted topics, closed a while after they left the cache (``_retire``)
        self._retired: list[tuple[float, PartitionLog]] = []
        self.signal = AppendSignal()
        self._transactions: TransactionCoordinator | None = None
        _raise_fd_limit()
        self._datadir = DataDir(path, lock_timeout=max(self.lock_timeout, 30.0))
        self.recovery: list[RecoveryReport] = []
        try:
            # storage checks its own directories for planted links; groups are ours
            refuse_links_in(_layout.groups_dir(self._datadir.root))
            self.catalog = TopicCatalog(self._datadir, lock_timeout=max(self.lock_timeout, 1.0))
            if self._datadir.needs_recovery:
                self._recover_all()
            if self._datadir.exclusive:
                self._clean_leftovers()
            # made ahead, so that a topic can be deleted (its directory renamed into
            # trash/) on a disk with no byte left, where a mkdir would fail
            with contextlib.suppress(StorageIOError):
                fs.makedirs(self._datadir.trash)
            self.signal.doorbell = _open_doorbell(self._datadir.root, self._datadir.exclusive)
            self._datadir.opened()
            self._sweep_transactions()
            self._start_cleaner()
        except BaseException:
            catalog = getattr(self, "catalog", None)
            doorbell, self.signal.doorbell = self.signal.doorbell, None
            try:
                if doorbell is not None:
                    doorbell.close()
                if catalog is not None:
                    catalog.close()
            finally:
                self._datadir.close()
            raise

    def _recover_all(self) -> None:
        for topic, _p, pdir in self._datadir.partition_dirs():
            meta = self.catalog.get(topic)
            if meta is None:
                continue
            plog = PartitionLog(
                pdir, meta.config, lock_timeout=self.lock_timeout, recover=True, clock=self.clock
            )
            if plog.report is not None:
                self.recovery.append(plog.report)
            plog.close()

    def _clean_leftovers(self) -> None:
        """Run while nobody else has the directory open: finish what crashes left."""
        root = self._datadir.root
        # deletions interrupted by a crash; nobody else can be reading them now
        with contextlib.suppress(StorageIOError):
            fs.rmtree(self._datadir.trash)
        # metadata writes interrupted between temporary file and rename
        for d in (_layout.meta_dir(root), _layout.catalog_dir(root)):
            for name in fs.listdir(d):
                if name.endswith(_layout.TMP_SUFFIX):
                    fs.unlink(os.path.join(d, name))

    @property
    def path(self) -> str:
        """The data directory's absolute path."""
        return self._datadir.root

    def transactions(self) -> TransactionCoordinator:
        """The transaction coordinator of this directory (made on first use)."""
        with self._mutex:
            self.check_open()
            if self._transactions is None:
                self._transactions = TransactionCoordinator(
                    self, lock_timeout=max(self.lock_timeout, 30.0), clock=self.clock
                )
            return self._transactions

    def _sweep_transactions(self) -> None:
        """An opener finishes transactions a crash left prepared and aborts expired ones
        (there is no broker to do it; see ``_txn``). Housekeeping: a failure is logged."""
        if not os.path.isdir(_layout.transactions_dir(self._datadir.root)):
            return
        try:
            self.transactions().sweep()
        except StreamlogError as e:
            _logger.warning("could not finish or time out open transactions: %s", e)

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        if self._closed:
            raise ClosedError("the data directory handle is closed")

    # ------------------------------------------------------------------ topics
    def topic(self, name: str) -> TopicMeta | None:
        """The catalog entry of ``name`` as it is now, or None (no lock taken)."""
        return self.catalog.get(name)

    def topics(self) -> list[str]:
        self.check_open()
        return self.catalog.names()

    def create_topic(self, name: str, partitions: int, config: Mapping[str, Any] | None) -> None:
        self.check_open()
        self.catalog.create(name, partitions, config)
        meta = self.catalog.get(name)
        if meta is not None and meta.config.compacted:
            self._start_cleaner(compacted=True)

    def delete_topic(self, name: str) -> None:
        self.check_open()
        self.catalog.delete(name)
        with self._mutex:
            doomed = [self._partitions.pop(k)[1] for k in list(self._partitions) if k[0] == name]
        # closed now (the space of their unlinked files is freed only then); a consumer
        # of this process reading one sees a closed log and moves on (UnknownTopicError)
        for plog in doomed:
            with contextlib.suppress(StreamlogError, OSError):
                plog.close()

    def create_partitions(self, name: str, total: int) -> None:
        self.check_open()
        self.catalog.grow(name, total)

    def alter_topic_config(self, name: str, config: Mapping[str, Any]) -> None:
        self.check_open()
        meta = self.catalog.alter_config(name, config)
        with self._mutex:
            for (topic, _p), (topic_id, plog) in self._partitions.items():
                if topic == name and topic_id == meta.id:
                    plog.config = meta.config
        if meta.config.compacted:
            self._start_cleaner(compacted=True)

    # ------------------------------------------------------------------ compaction
    def _start_cleaner(self, *, compacted: bool = False) -> None:
        """Start the background cleaner once there is a compacted topic (a directory
        without one never runs the thread, nor takes its lock)."""
        if self._cleaner_backoff_ms is None or self._cleaner_thread is not None:
            return
        if not compacted:
            try:
                compacted = any(self._is_compacted(n) for n in self.catalog.names())
            except StreamlogError as e:
                # (a damaged catalog: its own operations report it; the thread starts
                # once a compacted topic is created or altered here)
                _logger.warning("not starting the log cleaner: %s", e)
                return
        with self._mutex:
            if compacted and self._cleaner_thread is None and not self._closed:
                self._cleaner_thread = CleanerThread(
                    os.path.join(_layout.meta_dir(self.path), CLEANER_LOCK),
                    self._compacted_partitions,
                    self.cleaner,
                    self._cleaner_backoff_ms,
                )

    def _is_compacted(self, name: str) -> bool:
        try:
            meta = self.catalog.get(name)
        except StreamlogError:
            return False  # (a damaged topic file: its own operations report it)
        return meta is not None and meta.config.compacted

    def _compacted_partitions(self) -> list[PartitionLog]:
        out: list[PartitionLog] = []
        for name in self.catalog.names():
            try:
                meta = self.catalog.get(name)
                if meta is not None and meta.config.compacted:
                    out.extend(self.partition_for(meta, p) for p in range(meta.partitions))
            except StreamlogError as e:
                _logger.warning("the log cleaner skips topic %r: %s", name, e)
        return out

    def compact(self, name: str) -> CompactionStats:
        """Clean every partition of the compacted topic ``name`` now (whatever its dirty
        ratio; the active segment, the records past the last stable offset and those
        within ``min.compaction.lag.ms`` are still left alone)."""
        self.check_open()
        meta = self.catalog.require(name)
        if not meta.config.compacted:
            raise ConfigError(
                f"topic {name!r} is not compacted (cleanup.policy={meta.config.cleanup_policy})"
            )
        t0 = time.monotonic()
        totals = [0] * 7
        for p in range(meta.partitions):
            result = self.cleaner.clean(self.partition_for(meta, p), force=True, wait=True)
            if result is None:
                continue
            r = result
            done: tuple[int, ...] = (1, r.segments_cleaned, r.records_before)
            done += (r.records_after, r.bytes_before, r.bytes_after, r.tombstones_removed)
            totals = [a + b for a, b in zip(totals, done, strict=True)]
        parts, segs, rec_before, rec_after, b_before, b_after, tombs = totals
        return CompactionStats(
            name, parts, segs, rec_before, rec_after, b_before, b_after, tombs,
            (time.monotonic() - t0) * 1000,
        )

    def describe_topic(self, name: str) -> TopicDescription:
        self.check_open()
        meta = self.catalog.require(name)
        parts = []
        for p in range(meta.partitions):
            with self._mutex:
                cached = self._partitions.get((name, p))
                plog = cached[1] if cached is not None and cached[0] == meta.id else None
            # Partitions nobody here uses are opened only for the look, so that
            # describing a topic of thousands of partitions keeps no descriptors.
            temporary = plog is None
            if plog is None:
                plog = self.open_partition(meta, p)
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
        return TopicDescription(name, parts, meta.config.to_dict(), meta.id)

    # ------------------------------------------------------------------ partitions
    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The cached log of one partition, checked against the catalog on every call:
        a topic deleted (or deleted and created again) by another process is never
        served from the cache."""
        if self._closed:
            raise ClosedError("the data directory handle is closed")
        check_partition(partition)
        return self.partition_for(self.catalog.require(topic), partition)  # checks the name

    def partition_entry(self, topic: str, partition: int) -> tuple[str, PartitionLog]:
        """``(topic id, log)`` of one partition: the log of the topic's incarnation that
        the id names (a topic deleted and created again has a new id)."""
        if self._closed:
            raise ClosedError("the data directory handle is closed")
        check_partition(partition)
        meta = self.catalog.current(topic)  # (the counter, not a stat: see TopicCatalog)
        return meta.id, self.partition_for(meta, partition)

    def explain(self, topic: str, topic_id: str, error: BaseException) -> BaseException:
        """``error``, raised by a partition of incarnation ``topic_id`` of ``topic``, as
        its user should see it. A failing disk is one thing; a topic deleted (or deleted
        and created again) by another process while its files were in use is another:
        ``UnknownTopicError``, as Kafka's clients get. The cached logs of the old
        incarnation are dropped, so the next use opens the new one."""
        if not isinstance(
            error, (StorageIOError, CorruptRecordError, OffsetOutOfRangeError, ClosedError)
        ):
            return error
        try:
            meta = self.catalog.get(topic)
        except StreamlogError:
            return error
        if meta is not None and meta.id == topic_id:
            return error  # the same topic: the error is real
        self.forget(topic, topic_id)
        again = " and created again" if meta is not None else ""
        unknown = UnknownTopicError(f"topic {topic!r} was deleted{again} while in use")
        unknown.__cause__ = error
        return unknown

    def forget(self, topic: str, topic_id: str) -> None:
        """Drop the cached logs of incarnation ``topic_id`` of ``topic`` (retired: see
        ``_retire``)."""
        with self._mutex:
            for k, (tid, _plog) in list(self._partitions.items()):
                if k[0] == topic and tid == topic_id:
                    self._retire(self._partitions.pop(k)[1])

    def _is_current(self, topic: str, topic_id: str) -> bool:
        """Whether ``topic_id`` is still the topic's incarnation (True when unsure)."""
        try:
            meta = self.catalog.get(topic)
        except StreamlogError:
            return True
        return meta is not None and meta.id == topic_id

    def _retire(self, plog: PartitionLog) -> None:
        """Under the mutex: close ``plog`` later, not now. Other clients of this process
        may be in the middle of a read of it (a consumer notices a deleted topic only at
        its next look); closing it under them would fail that read with a closed map
        instead of the ``UnknownTopicError`` their next look gives. Logs retired more than
        ``_RETIRE_AFTER`` seconds ago are closed here, the rest at ``close()``."""
        now = time.monotonic()
        self._retired.append((now, plog))
        while self._retired and now - self._retired[0][0] > _RETIRE_AFTER:
            with contextlib.suppress(StreamlogError, OSError):
                _close_deleted(self._retired.pop(0)[1])

    def partition_for(self, meta: TopicMeta, partition: int) -> PartitionLog:
        _check_in_range(meta, partition)
        key = (meta.name, partition)
        with self._mutex:
            self.check_open()
            cached = self._partitions.get(key)
            if cached is not None:
                if cached[0] == meta.id:
                    return cached[1]
                self._retire(cached[1])  # the topic was deleted and created again
            try:
                plog = self.open_partition(meta, partition)
            except StreamlogError as e:
                # deleted by another process between the catalog read and the open?
                error = self.explain(meta.name, meta.id, e)
                if error is e:
                    raise
                raise error from e
            plog.on_append = self.signal.appended
            self._partitions[key] = (meta.id, plog)
            return plog

    def open_partition(self, meta: TopicMeta, partition: int) -> PartitionLog:
        """A new, uncached log of one partition (the caller closes it)."""
        _check_in_range(meta, partition)
        pdir = _layout.partition_dir(self.path, meta.name, partition)
        return PartitionLog(pdir, meta.config, lock_timeout=self.lock_timeout, clock=self.clock)

    def delete_records(self, offsets: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        self.check_open()
        return {
            tp: self.partition(tp.topic, tp.partition).delete_records(o)
            for tp, o in offsets.items()
        }

    def enforce_retention(self) -> int:
        self.check_open()
        deleted = 0
        for name in self.catalog.names():
            meta = self.catalog.get(name)
            if meta is None:
                continue
            for p in range(meta.partitions):
                deleted += self.partition_for(meta, p).enforce_retention()
        return deleted

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close every partition (all of them, even when one fails), release the
        directory, and raise the first error. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            thread, self._cleaner_thread = self._cleaner_thread, None
            cached = list(self._partitions.items())
            gone = [plog for _t, plog in self._retired]
            self._partitions.clear()
            self._retired.clear()
        if thread is not None:
            thread.stop()  # (waits for a cleaning under way: it uses the partitions)
        partitions = []
        for (topic, _p), (topic_id, plog) in cached:
            if self._is_current(topic, topic_id):
                partitions.append(plog)
            else:
                gone.append(plog)
        # logs of deleted topics (their files may be gone, or be another incarnation's
        # now): what they fail to sync is no one's data any more
        for plog in gone:
            with contextlib.suppress(StreamlogError, OSError):
                plog.close()
        errors: list[BaseException] = []
        doorbell, self.signal.doorbell = self.signal.doorbell, None
        txn, self._transactions = self._transactions, None
        steps: list[Callable[[], None]] = [
            lambda: txn.close() if txn is not None else None,
            lambda: _close_all(partitions),
            lambda: doorbell.close() if doorbell is not None else None,
            self.catalog.close,
            lambda: self._datadir.close(sync_also=lambda: sync_all_offsets(self.path)),
        ]
        for step in steps:
            try:
                step()
            except BaseException as e:
                errors.append(e)
        if errors:
            raise errors[0]


def _open_doorbell(root: str, alone: bool) -> Doorbell | None:
    """The directory's doorbells, or None (consumers then poll) if they cannot be set up."""
    try:
        return Doorbell(root, alone=alone)
    except (OSError, ValueError):
        return None


def _check_in_range(meta: TopicMeta, partition: int) -> None:
    if partition >= meta.partitions:
        raise UnknownPartitionError(
            f"topic {meta.name!r} has {meta.partitions} partitions; "
            f"no partition {short_repr(partition)}"
        )


def _close_all(plogs: list[PartitionLog]) -> None:
    """Close each of ``plogs``; raise the first error after trying them all."""
    first: BaseException | None = None
    for plog in plogs:
        try:
            _close_deleted(plog)
        except BaseException as e:
            if first is None:
                first = e
    if first is not None:
        raise first


def _close_deleted(plog: PartitionLog) -> None:
    """Close ``plog``; if its topic was deleted meanwhile (its directory is gone), its
    files need no sync and the failure to sync them is not an error."""
    try:
        plog.close()
    except StorageIOError:
        if os.path.isdir(plog.path):
            raise
