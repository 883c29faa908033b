"""The Consumer: Kafka's consumer API (manual assignment) over a local data directory.

Per assigned partition the consumer keeps a position (the next offset to
return), an optional pending reset (earliest/latest), a paused flag, and a
buffer of records decoded from at most one fetch (``max_partition_fetch_bytes``),
so memory stays bounded however large the backlog.

``poll`` returns as soon as any assigned partition has records. While
nothing is there it arms a doorbell of the data directory (``coordination/_doorbell``),
looks once more, and sleeps on it: an append by any process rings it. Without
a doorbell (no socket can be made) it waits on the handle's condition, which
appends made through the same handle signal at once, and notices appends by
other processes by re-reading each partition's tail word after a short sleep
that doubles from 50 µs up to 1 ms (5 ms after a second of silence).

Not thread-safe, as in Kafka, except ``wakeup()`` and ``close()``, which may
be called from any thread: a blocked ``poll`` then raises ``WakeupError``
(or returns empty after ``close``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from operator import itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._config import INT32_MAX, INT64_MAX, ConsumerConfig, next_client_id, short_repr, wait_seconds
from .._names import check_topic_name
from .._structs import ConsumerRecord, OffsetAndMetadata, OffsetAndTimestamp, TopicPartition
from ..coordination._assignors import get_assignor
from ..errors import (
    ClosedError,
    CommitFailedError,
    IllegalStateError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    StreamlogError,
    UnknownPartitionError,
    UnknownTopicError,
    WakeupError,
)
from ._handle import PathOrLog, resolve
from ._membership import AutoCommitTimer, CommitCallback, Membership
from ._transactions import ConsumerGroupMetadata

if TYPE_CHECKING:
    from ..coordination._doorbell import Bell
    from ..coordination._manager import AppendSignal
    from ..storage._codec import DecodedColumns, RecordBatch
    from ..storage._partition import PartitionLog
    from ..storage._producer_state import AbortedTxn

__all__ = ["Consumer", "ConsumerRebalanceListener"]

_METADATA_TTL = 1.0
# poll's timeouts below this (ms, about 24 days) skip wait_seconds' checks
_PLAIN_TIMEOUT_MS = 1 << 31
# How long positions wait for a transaction still committing the group's offsets
# (Kafka's default.api.timeout.ms); expired transactions are aborted meanwhile.
_STABLE_OFFSETS_TIMEOUT = 60.0
# Seconds a doorbell stays armed between polls without being slept on (see __init__).
_BELL_KEEP = 1.0
_logger = logging.getLogger("streamlog.consumer")
_new_record = tuple.__new__
_OFFSET = itemgetter(2)  # a ConsumerRecord's offset
# The first read after a seek asks for 1 byte: storage returns the first batch whole,
# and only it. Reads on grow by this factor, from at least _GROWN_READ bytes.
_READ_GROWTH = 4
_GROWN_READ = 16384


class ConsumerRebalanceListener:
    """Callbacks around partition reassignment in a consumer group (override what you need)."""

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called before partitions are taken away (commit their offsets here)."""

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Called after new partitions were given to this consumer."""

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        """Called when partitions were lost without a clean revoke."""
        self.on_partitions_revoked(lost)


class _PartitionState:
    """Per assigned partition: the position, and what is read ahead of it.

    A fetch is read from storage as whole undecoded batches (``batches``) and
    decoded one batch at a time into columns (``cols``, see
    ``RecordBatch.decode``) when the batch before it is used up. Records are
    built from the columns only when they are returned: a
    ``poll(max_records=1)`` after a seek builds one record, not a batch of them.
    The records of ``cols`` still to return are those at or after the position
    (``_first``), so whoever returns records (``poll``, iterators) needs to move
    only the position. ``read_bytes`` is the size of the next read: one batch
    after a seek (or anything else that clears the state), growing while the
    partition is read on, up to ``max_partition_fetch_bytes``.
    """

    __slots__ = (
        "aborted",
        "aborted_pids",
        "batches",
        "cols",
        "next_batch",
        "paused",
        "plog",
        "position",
        "read_bytes",
        "reset",
        "topic_id",
    )

    def __init__(self, topic_id: str, plog: PartitionLog) -> None:
        self.topic_id = topic_id  # the incarnation of the topic ``plog`` belongs to
        self.plog = plog
        self.position: int | None = None
        self.reset: str | None = None
        self.paused = False
        self.cols: DecodedColumns | None = None  # the batch being returned
        self.batches: list[RecordBatch] = []  # the fetch, undecoded from ``next_batch`` on
        self.next_batch = 0
        self.read_bytes = 1
        # read_committed: aborted transactions of the fetch not yet reached (by first
        # offset), and the producers whose batches are being skipped (Kafka's fetcher)
        self.aborted: list[AbortedTxn] = []
        self.aborted_pids: dict[int, int] = {}  # producer id -> its aborted txn's last offset

    def clear(self) -> None:
        self.cols = None
        self.batches = []
        self.next_batch = 0
        self.read_bytes = 1  # a new place: read one batch first
        self.aborted = []
        self.aborted_pids = {}


def _first(offsets: range | list[int], position: int) -> int:
    """Index in a batch's offsets of the first record at or after ``position``."""
    if type(offsets) is range:
        return max(0, position - offsets.start)
    return bisect_left(offsets, position)


class _GroupHooks:
    """The consumer's side of its group membership (``_membership.Hooks``), kept off the
    public ``Consumer``. Called by the ``Membership`` in the consumer's thread (inside
    ``poll``, ``unsubscribe``, ``close``)."""

    __slots__ = ("_consumer",)

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def group_revoke(self, tps: set[TopicPartition], *, lost: bool) -> None:
        c = self._consumer
        listener = c._listener
        try:
            if listener is not None and (tps or not lost):
                if lost:
                    listener.on_partitions_lost(set(tps))
                else:
                    listener.on_partitions_revoked(set(tps))
        except Exception as e:
            c._listener_error = c._listener_error or e
        finally:
            c._set_assignment(tp for tp in c._order if tp not in tps)

    def group_assign(self, added: set[TopicPartition], all_assigned: set[TopicPartition]) -> None:
        c = self._consumer
        c._set_assignment(sorted(all_assigned))
        listener = c._listener
        try:
            if listener is not None:
                listener.on_partitions_assigned(set(added))
        except Exception as e:
            c._listener_error = c._listener_error or e

    def group_assigned(self) -> set[TopicPartition]:
        return set(self._consumer._assigned)

    def group_consumed(self) -> dict[TopicPartition, OffsetAndMetadata]:
        return self._consumer._consumed()

    def group_topics(self) -> tuple[str, ...]:
        c = self._consumer
        if c._pattern is not None:
            return tuple(sorted(t for t in c._log.topics() if c._pattern.fullmatch(t)))
        return tuple(sorted(c._subscription or ()))


class Consumer:
    """Reads records from topics of a data directory. Create with ``log.consumer(*topics,
    **config)``.

    Without ``group_id``, topics given here (or to ``subscribe``) are read in
    full: every partition is assigned to this consumer, as kafka-python does
    with ``group_id=None``. ``assign`` picks partitions by hand.
    """

    def __init__(self, path_or_log: PathOrLog, *topics: str, **config: Any) -> None:
        cfg = ConsumerConfig.from_kwargs(config)
        for name in cfg.partition_assignment_strategy:
            get_assignor(name)  # the assignors' registry (coordination) checks their names
        # the data directory's manager: shared with the Log, or our own for a path
        self._log, self._owns_log = resolve(path_or_log)
        self._config = cfg
        self._config_view = MappingProxyType(cfg.to_dict())
        self.client_id: str = cfg.client_id or next_client_id("consumer")
        self._group_id = cfg.group_id
        self._reset_default = cfg.auto_offset_reset
        self._read_committed = cfg.isolation_level == "read_committed"
        self._skipped = 0  # bumped when a fetch's batches were all skipped (poll reads on)
        self._stuck_checked: dict[TopicPartition, float] = {}
        self._max_poll_records = cfg.max_poll_records
        self._fetch_bytes = cfg.max_partition_fetch_bytes
        self._key_deserializer = cfg.key_deserializer
        self._value_deserializer = cfg.value_deserializer
        # seconds; None: no timeout (also for inf, or more than a thread can wait)
        self._consumer_timeout = wait_seconds("consumer_timeout_ms", cfg.consumer_timeout_ms)
        self._assigned: dict[TopicPartition, _PartitionState] = {}
        self._order: list[TopicPartition] = []
        self._next = 0
        self._subscription: set[str] | None = None
        self._pattern: re.Pattern[str] | None = None
        self._manual = False
        self._metadata_checked = 0.0
        self._incarnations_checked = time.monotonic()
        self._closed = False
        self._wakeup = False
        # the iterator hands out records one by one from this partition's buffer
        self._iter_tp = TopicPartition("", -1)
        self._iter_state: _PartitionState | None = None
        self._iter_left = 0
        self._iter_gen: Iterator[ConsumerRecord] | None = None  # what next(consumer) resumes
        self._pid = os.getpid()
        self._unresolved = False
        self._idle_since = time.monotonic()
        # A doorbell armed by an earlier poll stays armed (parked) between polls:
        # disarming takes two flocks on the way out of every poll, ~10 us of each
        # record's latency. It is disarmed by close() (or when the consumer is collected
        # unclosed), or by a poll ending a second after its last sleep on it. The lock
        # orders a poll parking it against a close() in another thread, so exactly one of
        # them disarms it.
        self._parked: list[Bell] = []
        self._bell_slept = 0.0
        self._bell_lock = threading.Lock()
        self._unpark = weakref.finalize(
            self, _unpark, self._log.signal, self._parked, self._bell_lock
        )
        self._listener: ConsumerRebalanceListener | None = None
        self._listener_error: BaseException | None = None
        # streamlog.aio: with _defer_steps set, a poll that finds a group step due (a
        # join, a sync, a revocation: listener callbacks, file locks, maybe an fsync)
        # returns {} at once with _step_due set instead of taking it, and the caller
        # takes it with a poll in a worker thread, off its event loop.
        self._defer_steps = False
        self._step_due = False
        self._member: Membership | None = None
        self._hooks = _GroupHooks(self)
        self._auto_commit = cfg.auto_commit
        # the one auto-commit timer: manual assignment (poll) and group membership share it
        self._auto_commit_timer = AutoCommitTimer(cfg.auto_commit_interval_ms)
        if topics:
            try:
                self.subscribe(topics)
            except BaseException:
                if self._owns_log:
                    self._log.close()
                raise

    @property
    def config(self) -> Mapping[str, object]:
        """The configuration, every setting by its keyword name (read-only)."""
        return self._config_view

    # ------------------------------------------------------------------ assignment
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the consumer is closed")

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (replacing any previous assignment).

        No group management: with a ``group_id``, positions start from the
        group's committed offsets and commits are accepted while the group has
        no active members (Kafka's standalone consumer). With auto-commit on,
        the positions of the previous assignment are committed first.
        """
        self._check_open()
        if self._subscription is not None or self._pattern is not None:
            raise IllegalStateError("assign() after subscribe(): call unsubscribe() first")
        tps = _check_tps(partitions)
        for tp in tps:
            self._log.partition(tp.topic, tp.partition)  # raises for unknown ones
        if self._auto_commit and self._assigned:
            self._auto_commit_now(wait=False)
        self._manual = bool(tps)
        self._set_assignment(tps)

    def _set_assignment(self, tps: Iterable[TopicPartition]) -> None:
        new: dict[TopicPartition, _PartitionState] = {}
        for tp in tps:
            state = self._assigned.get(tp)
            if state is None:
                state = _PartitionState(*self._log.partition_entry(tp.topic, tp.partition))
            new[tp] = state
        self._assigned = new
        self._order = sorted(new)
        self._next = 0
        self._unresolved = True

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads."""
        self._check_open()
        if self._member is None:
            self._refresh_subscription(force=False)
        return set(self._assigned)

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        """Read every partition of ``topics`` (or of topics matching ``pattern``).

        With a ``group_id`` the consumer joins the group at the next ``poll``
        and reads the partitions the group assigns it; ``listener`` callbacks
        run inside ``poll``. Without one, it reads every partition.
        Replaces the previous subscription (not incremental).
        """
        self._check_open()
        if self._manual:
            raise IllegalStateError("subscribe() after assign(): call unsubscribe() first")
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics)
        if bool(topics) == (pattern is not None):
            raise ValueError("give either topics or a pattern, not both or neither")
        if listener is not None and not isinstance(listener, ConsumerRebalanceListener):
            for name in ("on_partitions_revoked", "on_partitions_assigned"):
                if not callable(getattr(listener, name, None)):
                    raise TypeError(f"listener has no {name}() method")
        from .._names import check_topic_name  # noqa: PLC0415

        for t in topics:
            check_topic_name(t)
        compiled = None
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"bad topic pattern {pattern!r}: {e}") from None
        self._subscription = set(topics) if topics else None
        self._pattern = compiled
        self._listener = listener
        if self._group_id is None:
            self._refresh_subscription(force=True)
            return
        if self._member is None:
            self._member = self._new_membership()
        self._member.need_join = True  # a new subscription: rejoin at the next poll

    def subscription(self) -> set[str]:
        """The subscribed topic names (for a pattern: the topics it matches now)."""
        self._check_open()
        if self._pattern is not None:
            return {t for t in self._log.topics() if self._pattern.fullmatch(t)}
        return set(self._subscription or ())

    def unsubscribe(self) -> None:
        """Stop reading every partition (subscribed or assigned); leave the group.

        Calls ``on_partitions_revoked`` first (no auto-commit, as in Kafka).
        """
        self._check_open()
        member = self._member
        self._member = None
        try:
            if member is not None:
                member.leave(revoke=True)
                member.close()
        finally:
            self._subscription = None
            self._pattern = None
            self._manual = False
            self._set_assignment([])
        self._raise_listener_error()

    def _check_incarnations(self) -> None:
        """Notice topics deleted or created again by other processes (every
        ``_METADATA_TTL``, with the subscription's refresh): a new incarnation is read
        from the start of the reset policy, never at the old topic's positions."""
        for tp, state in list(self._assigned.items()):
            meta = self._log.topic(tp.topic)
            if meta is None or meta.id != state.topic_id:
                self._follow_incarnation(tp, state)

    def _follow_incarnation(self, tp: TopicPartition, state: _PartitionState) -> None:
        """Point ``state`` at the topic's current incarnation (if it exists again, and has
        the partition); its position is reset by ``auto_offset_reset``, as for a new
        topic (the old positions and committed offsets belong to the deleted one)."""
        self._log.forget(tp.topic, state.topic_id)
        try:
            topic_id, plog = self._log.partition_entry(tp.topic, tp.partition)
        except (UnknownTopicError, UnknownPartitionError):
            # gone: nothing to read until it exists again (looked at after the TTL)
            state.topic_id = ""
            state.position = None
            state.clear()
            return
        state.topic_id, state.plog = topic_id, plog
        state.position = None
        state.reset = self._reset_default
        state.clear()

    def _refresh_subscription(self, *, force: bool) -> None:
        if self._subscription is None and self._pattern is None:
            return
        now = time.monotonic()
        if not force and now - self._metadata_checked < _METADATA_TTL:
            return
        self._metadata_checked = now
        names = self.subscription()
        tps: list[TopicPartition] = []
        for name in sorted(names):
            meta = self._log.topic(name)
            if meta is not None:
                tps.extend(TopicPartition(name, p) for p in range(meta.partitions))
        if set(tps) != set(self._assigned):
            self._set_assignment(tps)

    def _consumed(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The position of every assigned partition that has one: what a commit covers."""
        return {
            tp: OffsetAndMetadata(s.position)
            for tp, s in self._assigned.items()
            if s.position is not None and s.reset is None
        }

    def _raise_listener_error(self) -> None:
        error = self._listener_error
        if error is not None:
            self._listener_error = None
            raise error

    # ------------------------------------------------------------------ positions
    def _state(self, tp: TopicPartition) -> _PartitionState:
        state = self._assigned.get(tp)
        if state is None:
            raise IllegalStateError(f"{short_repr(tp)} is not assigned to this consumer")
        return state

    def _resolve(self, tp: TopicPartition, state: _PartitionState) -> int:
        """The position, applying a pending reset or the reset policy if there is none."""
        if state.reset is None and state.position is not None:
            return state.position
        if not state.topic_id:
            raise UnknownTopicError(f"topic {tp.topic!r} was deleted")
        if state.reset is None and self._group_id is not None:
            if self._read_committed:
                # Kafka's require_stable: offsets a transaction has not finished
                # committing are waited for, never read stale
                self._log.transactions().settle_group(self._group_id, _STABLE_OFFSETS_TIMEOUT)
            committed = self._offsets().committed(tp)
            if committed is not None:
                state.position = committed.offset
                state.clear()
                return state.position
        strategy = state.reset or self._reset_default
        if strategy == "none":
            raise NoOffsetForPartitionError(f"no position for {tp} and auto_offset_reset is 'none'")
        plog = state.plog
        state.position = plog.log_start_offset if strategy == "earliest" else self._end_of(plog)
        state.reset = None
        state.clear()
        return state.position

    def _resolve_all(self) -> None:
        """Give every assigned partition a position now, as Kafka's poll does, so that
        commits cover partitions nothing was read from yet (and a reset to "latest" is
        the end at this poll, not at some later commit)."""
        self._unresolved = False
        for tp, state in list(self._assigned.items()):
            if (state.position is None or state.reset is not None) and state.topic_id:
                try:
                    self._resolve(tp, state)
                except NoOffsetForPartitionError:
                    pass  # raised by the fetch of that partition, in order

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return for ``tp``."""
        self._check_open()
        tp = _check_tp(tp)
        return self._resolve(tp, self._state(tp))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next ``poll`` read ``tp`` from ``offset``."""
        self._check_open()
        # An exact TopicPartition of exact types that is assigned passed _check_tp when
        # it was assigned: skip the name check (a third of a seek; random reads seek
        # before every poll).
        state = (
            self._assigned.get(tp)
            if type(tp) is TopicPartition and type(tp[0]) is str and type(tp[1]) is int
            else None
        )
        if state is None:
            tp = _check_tp(tp)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < 0:
            raise ValueError(f"seek offset must not be negative ({short_repr(offset)})")
        if offset > INT64_MAX:
            raise ValueError(
                f"seek offset must be <= {INT64_MAX} (an int64); got {short_repr(offset)}"
            )
        if state is None:
            state = self._state(tp)
        state.position = offset
        state.reset = None
        state.clear()

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read from the log start of the given (default: all assigned) partitions."""
        self._seek_to("earliest", partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Read only records appended from now on, for the given (default: all) partitions."""
        self._seek_to("latest", partitions)

    def _seek_to(self, where: str, partitions: tuple[TopicPartition, ...]) -> None:
        self._check_open()
        chosen = [_check_tp(tp) for tp in partitions] or list(self._assigned)
        for tp in chosen:
            self._state(tp)  # all assigned, or nothing changes
        for tp in chosen:
            state = self._state(tp)
            state.reset = where
            state.clear()
        self._unresolved = True

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log start offset of each partition."""
        self._check_open()
        return {
            tp: self._log.partition(tp.topic, tp.partition).log_start_offset
            for tp in _check_tps(partitions)
        }

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offset (offset of the next record to be written) of each partition."""
        self._check_open()
        return {
            tp: self._end_of(self._log.partition(tp.topic, tp.partition))
            for tp in _check_tps(partitions)
        }

    def _end_of(self, plog: PartitionLog) -> int:
        """Where reading ends: the end offset, or for read_committed the last stable one."""
        return plog.last_stable_offset() if self._read_committed else plog.end_offset

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the earliest offset whose timestamp is >= the given one."""
        self._check_open()
        if not isinstance(timestamps, Mapping):
            raise TypeError("timestamps must be a mapping of TopicPartition to a timestamp (ms)")
        checked: dict[TopicPartition, int] = {}
        for key, ts in timestamps.items():
            tp = _check_tp(key)
            if isinstance(ts, bool) or not isinstance(ts, int):
                raise TypeError(f"timestamp must be an int, not {type(ts).__name__}")
            if ts < 0:
                raise ValueError(f"timestamp must be >= 0, not {short_repr(ts)}")
            if ts > INT64_MAX:
                raise ValueError(
                    f"timestamp must be <= {INT64_MAX} (an int64); got {short_repr(ts)}"
                )
            checked[tp] = ts
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, ts in checked.items():
            plog = self._log.partition(tp.topic, tp.partition)
            found = plog.offset_for_timestamp(ts)
            if found is not None and self._read_committed and found[0] >= self._end_of(plog):
                found = None  # (Kafka's ListOffsets: read_committed answers below the LSO)
            out[tp] = None if found is None else OffsetAndTimestamp(*found)
        return out

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records of these partitions from ``poll`` (positions are kept)."""
        self._check_open()
        states = [self._state(_check_tp(tp)) for tp in partitions]  # all or nothing
        for state in states:
            state.paused = True

    def resume(self, *partitions: TopicPartition) -> None:
        self._check_open()
        states = [self._state(_check_tp(tp)) for tp in partitions]
        for state in states:
            state.paused = False

    def paused(self) -> set[TopicPartition]:
        self._check_open()
        return {tp for tp, s in self._assigned.items() if s.paused}

    # ------------------------------------------------------------------ commits
    def _membership(self) -> Membership:
        if self._group_id is None:
            raise IllegalStateError("offset commits need a group_id")
        if self._member is None:
            # assign() with a group_id: commits as a standalone consumer (no joining)
            self._member = self._new_membership()
        return self._member

    def _new_membership(self) -> Membership:
        return Membership(
            self._log, self._hooks, self._config, self.client_id, self._auto_commit_timer
        )

    def _offsets(self) -> Any:
        return self._membership().offsets

    def _check_offsets(
        self, offsets: Mapping[TopicPartition, Any] | None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        if offsets is None:
            return self._consumed()
        if not isinstance(offsets, Mapping):
            raise TypeError("offsets must be a mapping of TopicPartition to OffsetAndMetadata")
        out: dict[TopicPartition, OffsetAndMetadata] = {}
        for key, given in offsets.items():
            (tp,) = _check_tps([key])
            value = (
                OffsetAndMetadata(given)
                if isinstance(given, int) and not isinstance(given, bool)
                else given
            )
            if not isinstance(value, tuple) or len(value) != 2:
                raise TypeError(
                    f"offset for {short_repr(tp)} must be an OffsetAndMetadata, "
                    f"not {short_repr(value)}"
                )
            offset, metadata = value
            if isinstance(offset, bool) or not isinstance(offset, int):
                raise TypeError(
                    f"offset for {short_repr(tp)} must be an int, not {short_repr(offset)}"
                )
            if offset < 0:
                raise ValueError(
                    f"offset for {short_repr(tp)} must be >= 0, not {short_repr(offset)}"
                )
            if offset > INT64_MAX:
                raise ValueError(
                    f"offset for {short_repr(tp)} must be <= {INT64_MAX}; got {short_repr(offset)}"
                )
            if not isinstance(metadata, str):
                raise TypeError(f"metadata for {short_repr(tp)} must be a str")
            out[tp] = OffsetAndMetadata(offset, metadata)
        return out

    def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """Commit offsets for the group and wait until they are on disk.

        ``offsets`` defaults to the position of every assigned partition (the
        next offset after the records returned so far). Committed offset =
        the next offset to read. Earlier ``commit_async`` calls complete (and
        their callbacks run) first.

        :raises CommitFailedError: this consumer is no longer a member of the
            group, or no longer owns a partition being committed (the group
            rebalanced, its session expired, or it did not poll within
            ``max_poll_interval_ms``); or, for a consumer using ``assign()``,
            the group has active members.
        """
        self._check_open()
        checked = self._check_offsets(offsets)
        member = self._membership()
        if self._manual or (self._subscription is None and self._pattern is None):
            member.wait_async()
            member.run_async_callbacks()
            member.commit_standalone(checked)
            return
        member.commit(checked)

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, Any] | None = None,
        callback: CommitCallback | None = None,
    ) -> None:
        """Commit in the background; ``callback(offsets, exception)`` runs inside a later
        ``poll``/``commit``/``close`` of this consumer, in call order (errors only reach
        the callback, as in Kafka)."""
        self._check_open()
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        checked = self._check_offsets(offsets)
        member = self._membership()
        member.commit_async(
            checked,
            callback,
            standalone=self._manual or (self._subscription is None and self._pattern is None),
        )

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (the next offset to read), or None.

        Needs no assignment. Without a ``group_id`` there is nothing committed: None.
        """
        self._check_open()
        (tp,) = _check_tps([tp])
        if self._group_id is None:
            return None
        if self._read_committed:
            # Offsets a decided transaction has not finished writing are written first;
            # unlike a position (_resolve), this query does not wait for a live one
            coordinator = self._log.transactions()
            if coordinator.pending_offsets(self._group_id):
                coordinator.sweep()
        found = self._offsets().committed(tp)
        return None if found is None else found.offset

    def _auto_commit_now(self, *, wait: bool) -> None:
        offsets = self._consumed()
        if not offsets:
            return
        member = self._membership()
        standalone = self._manual or (self._subscription is None and self._pattern is None)
        if wait:
            try:
                member.wait_async()
                if standalone:
                    member.commit_standalone(member.changed(offsets))
                else:
                    member.commit(member.changed(offsets))
            except (CommitFailedError, OSError, IllegalStateError) as e:
                _logger.warning("auto-commit on close of %s failed: %s", self.client_id, e)
        else:
            changed = member.changed(offsets)
            if changed:
                member.commit_async(changed, None, standalone=standalone)

    # ------------------------------------------------------------------ polling
    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records from assigned partitions, returned as soon as there are any.

        Waits up to ``timeout_ms`` when there are none (any number >= 0; ``inf``, or
        more than a thread can wait, means until records, ``wakeup()`` or ``close()``).
        Returns at most ``max_records`` (default ``max_poll_records``) records.

        :raises WakeupError: ``wakeup()`` was called.
        :raises ValueError: ``timeout_ms`` is NaN or negative (``TypeError``: not a
            number), or ``max_records`` is not a positive int.
        :raises OffsetOutOfRangeError: a position is outside the log and
            ``auto_offset_reset`` is ``"none"``.
        """
        if self._closed:
            raise ClosedError("the consumer is closed")
        timeout: float | None
        if type(timeout_ms) is int and 0 <= timeout_ms < _PLAIN_TIMEOUT_MS:
            timeout = timeout_ms / 1000  # (what wait_seconds makes of it, without its checks)
        else:
            if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)):
                raise TypeError("timeout_ms must be a number")
            # NaN and negatives refused; inf (or longer than a thread can wait): no limit
            timeout = wait_seconds("timeout_ms", timeout_ms)
        limit = self._max_poll_records if max_records is None else max_records
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_records must be a positive int; got {short_repr(limit)}")
        now = time.monotonic()
        deadline = now + (float("inf") if timeout is None else timeout)
        signal = self._log.signal
        # Idleness carries over between calls: a loop of short polls on a quiet topic
        # must not restart the fast 50 us back-off every time (it cost 5% of a core).
        idle_since = self._idle_since
        idle = now - idle_since
        delay = 50e-6 if idle < 0.01 else 0.001 if idle < 1.0 else 0.005
        bell = None
        if self._parked:  # (empty: nothing to take; only close() takes one meanwhile)
            with self._bell_lock:  # armed, by an earlier poll or this one; see __init__
                bell = self._parked.pop() if self._parked else None
        tried = False
        try:
            while True:
                if self._wakeup:
                    self._wakeup = False
                    raise WakeupError("poll interrupted by wakeup()")
                if self._closed:  # by another thread while we waited
                    return {}
                member = self._member
                if member is not None:
                    if self._subscription is not None or self._pattern is not None:
                        if member.attention():
                            if self._defer_steps:
                                self._step_due = True
                                return {}
                            member.step()
                            self._raise_listener_error()
                    else:
                        member.run_async_callbacks()  # a standalone consumer's commit_async
                elif self._subscription is not None or self._pattern is not None:
                    self._refresh_subscription(force=False)
                if time.monotonic() - self._incarnations_checked >= _METADATA_TTL:
                    self._incarnations_checked = time.monotonic()
                    self._check_incarnations()
                if (
                    self._auto_commit
                    and self._manual
                    and (member is None or not member.active)
                    and self._auto_commit_timer.due()
                ):
                    self._auto_commit_timer.restart()
                    self._auto_commit_now(wait=False)
                if self._unresolved and self._group_id is not None:
                    self._resolve_all()
                seen = signal.count
                skipped = self._skipped
                out = self._collect(limit)
                if out:
                    self._idle_since = time.monotonic()
                if out or self._closed:
                    return out
                if self._skipped != skipped and time.monotonic() < deadline:
                    continue  # a fetch of only skipped batches (aborted data): read on now
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    return out
                if bell is None and not tried and now - self._idle_since >= 0.0005:
                    # Records flowed within 0.5 ms: the back-off below polls (a sleep and
                    # a wake-up cost more than a look at 20,000 records/s). Quiet longer:
                    # arm a doorbell, then look once more before sleeping on it; an append
                    # by another process after that look rings it (coordination/_doorbell).
                    tried = True
                    bell = signal.sleeper()
                    if bell is not None:
                        self._bell_slept = now
                        continue
                if bell is not None:
                    # Rung by appends (any process), wakeup() and close(); the sleep is
                    # bounded for the group's version word, metadata and timers.
                    nap = min(left, 0.005 if member is not None else 0.1)
                    self._bell_slept = now
                    signal.sleep(bell, seen, nap, self._stopping)
                    continue
                signal.wait(seen, min(left, delay), self._stopping)
                cap = 0.001 if now - idle_since < 1.0 else 0.005
                delay = min(delay * 2, cap)
        finally:
            if bell is not None:
                # a consumer busy for a second stops costing writers a datagram per append
                if time.monotonic() - self._bell_slept < _BELL_KEEP:
                    with self._bell_lock:
                        if not self._closed:
                            self._parked.append(bell)
                            bell = None
                if bell is not None:
                    signal.unarm(bell)

    def _collect(self, limit: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        order, assigned = self._order, self._assigned  # close() may replace them meanwhile
        n = len(order)
        if not n:
            return out
        start = self._next % n
        taken = 0
        for i in range(n):
            tp = order[(start + i) % n]
            state = assigned[tp]
            if state.paused:
                continue
            got: list[ConsumerRecord] | None = None
            budget = self._fetch_bytes  # read at most one fetch per partition and poll
            while True:
                try:
                    cols = state.cols
                    if cols is None:
                        left = self._fill(tp, state, budget)
                        if left is None:
                            break
                        budget = left
                        cols = state.cols
                        assert cols is not None
                    offsets = cols[0]
                    size = len(offsets)
                    if type(offsets) is range:  # (_first, inline: once per poll and batch)
                        first = max(0, state.position - offsets.start)  # type: ignore[operator]
                    else:
                        first = bisect_left(offsets, state.position)  # type: ignore[type-var]
                    end = min(size, first + limit - taken)
                    if first >= end:
                        state.cols = None  # used up
                        continue
                    records = self._build(tp, cols, first, end)
                except Exception:
                    if got:
                        out[tp] = got
                    if not out:
                        raise
                    # Return what was gathered (positions have moved past it); this
                    # partition's error comes again at the next poll, which starts here.
                    self._next = (start + i) % n
                    return out
                state.position = records[-1][2] + 1
                if end >= size:
                    state.cols = None
                if got is None:
                    got = records
                else:
                    got += records
                taken += end - first
                if taken >= limit:
                    break
            if got:
                out[tp] = got
            if taken >= limit:
                self._next = (start + i + 1) % n
                break
        else:
            self._next = (start + 1) % n
        return out

    def _fill(self, tp: TopicPartition, state: _PartitionState, budget: int) -> int | None:
        """Decode the next batch of ``tp``'s fetch that has records at or after the
        position into ``state.cols``; when the fetch is used up, read on from storage, up
        to ``budget`` bytes. The budget left, or None if there is nothing new.

        Control batches, and batches with nothing at or after the position (a gap), are
        skipped, and the position moves past them. A batch that fails to decode stays
        next, so the next call raises again.
        """
        while True:
            batches = state.batches
            j = state.next_batch
            while j < len(batches):
                batch = batches[j]
                position: int = state.position  # type: ignore[assignment]  # set by the read
                if self._read_committed and batch.producer_id >= 0 and _aborted(state, batch):
                    cols = None
                else:
                    cols = None if batch.is_control else batch.decode(state.plog.path)
                j += 1
                state.next_batch = j
                if cols is not None and _first(cols[0], position) < len(cols[0]):
                    state.cols = cols
                    return budget
                # only control records, aborted ones or records below the position:
                # move past them
                if batch.last_offset >= position:
                    state.position = batch.last_offset + 1
                    self._skipped += 1
            state.batches = []
            state.next_batch = 0
            if budget <= 0:
                return None
            size = min(state.read_bytes, budget)
            if not self._read(tp, state, size):
                return None
            budget -= size
            state.read_bytes = min(self._fetch_bytes, max(size * _READ_GROWTH, _GROWN_READ))

    def _read(self, tp: TopicPartition, state: _PartitionState, max_bytes: int) -> bool:
        """Read the next fetch of ``tp`` (whole batches from the position, up to about
        ``max_bytes``) into ``state.batches``, undecoded; False if there is nothing new."""
        if not state.topic_id:
            return False  # the topic was deleted (see _follow_incarnation)
        try:
            position = self._resolve(tp, state)
            plog = state.plog
            try:
                batches = plog.read(position, max_bytes)
            except OffsetOutOfRangeError:
                if self._reset_default == "none":
                    raise
                # Deleted by retention (or past the end after a truncation): reset, as
                # Kafka does.
                state.reset = self._reset_default
                position = self._resolve(tp, state)
                batches = plog.read(position, max_bytes)
        except (StreamlogError, ValueError) as e:
            # the topic deleted (and maybe created again) while we read it is not a
            # failing disk: follow the new incarnation, or wait for one. (A log closed
            # by this process's delete_topic in the middle of our read can raise
            # ValueError from its unmapped file: a closed log, as far as we care.)
            if isinstance(e, ValueError):
                if not state.plog.closed:
                    raise
                e = ClosedError(f"partition log {state.plog.path} was closed")
            error = self._log.explain(tp.topic, state.topic_id, e)
            if error is e:
                raise e from None
            self._follow_incarnation(tp, state)
            return False
        if self._read_committed:
            lso, aborted = plog.transaction_bounds(position)
            if batches and batches[-1].base_offset >= lso:
                batches = [b for b in batches if b.base_offset < lso]
            if not batches:
                if lso < plog.end_offset:
                    self._unstick(tp, plog, lso)
                return False
            state.aborted = sorted(aborted, key=lambda t: t.first_offset)
            state.aborted_pids = {}
        if not batches:
            return False
        state.batches = batches
        state.next_batch = 0
        return True

    def _unstick(self, tp: TopicPartition, plog: PartitionLog, lso: int) -> None:
        """Held back at the LSO by an open transaction: have it ended if its producer is
        gone past its timeout, or nobody knows of it (no broker would do it for us).
        At most once a second per partition."""
        now = time.monotonic()
        if now - self._stuck_checked.get(tp, 0.0) < 1.0:
            return
        self._stuck_checked[tp] = now
        for pid, epoch, first in plog.open_transactions():
            if first == lso:
                self._log.transactions().resolve_stuck(tp, pid, epoch)

    def _build(
        self, tp: TopicPartition, cols: DecodedColumns, first: int, end: int
    ) -> list[ConsumerRecord]:
        """The records ``first`` to ``end`` of a decoded batch, deserialized."""
        offsets, stamps, keys, values, heads = cols
        kd, vd = self._key_deserializer, self._value_deserializer
        if end - first == 1 and kd is None and vd is None:
            # one record (a poll(max_records=1), a record at the tail): built directly
            return [
                _new_record(
                    ConsumerRecord,
                    (
                        tp.topic,
                        tp.partition,
                        offsets[first],
                        stamps if type(stamps) is int else stamps[first],  # type: ignore[index]
                        None if keys is None else keys[first],
                        values[first],
                        () if heads is None else heads[first],
                    ),
                )
            ]
        rows: Iterator[tuple[Any, ...]] = zip(
            repeat(tp.topic),
            repeat(tp.partition),
            offsets[first:end],
            repeat(stamps) if type(stamps) is int else stamps[first:end],  # type: ignore[index]
            repeat(None) if keys is None else keys[first:end],
            values[first:end],
            repeat(()) if heads is None else heads[first:end],
        )
        if kd is not None or vd is not None:
            rows = (
                (
                    t,
                    p,
                    o,
                    ts,
                    k if kd is None or k is None else kd(k),
                    v if vd is None or v is None else vd(v),
                    h,
                )
                for t, p, o, ts, k, v, h in rows
            )
        return list(map(_new_record, repeat(ConsumerRecord), rows))

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[ConsumerRecord]:
        # A generator, not ``self``: resuming one costs a fraction of a call to a
        # Python ``__next__`` with its checks, which made iterating twice as costly
        # per record as ``poll``. ``next(consumer)`` still works (``__next__``).
        return self._iterate()

    def __next__(self) -> ConsumerRecord:
        gen = self._iter_gen
        if gen is None:
            gen = self._iter_gen = self._iterate()
        try:
            return next(gen)
        except BaseException:
            self._iter_gen = None  # (finished: the next call starts a new one)
            raise

    def _iterate(self) -> Iterator[ConsumerRecord]:
        # Records are handed out one at a time from the partition's decoded batch (up
        # to max_poll_records before moving on, as poll does; the rest of the fetch is
        # decoded batch by batch here, storage is read only through poll), so the
        # position always follows the last record returned, as in kafka-python, and
        # seek/pause/assign (or a poll, or another iterator) between two records take
        # effect at the next one: each record is handed out only if nothing of the
        # sort happened since the last (the checks in the inner loop).
        while True:
            state = self._iter_state
            tp = self._iter_tp
            if (
                state is not None
                and self._iter_left > 0
                and not state.paused
                and self._assigned.get(tp) is state
            ):
                cols = state.cols
                if (
                    cols is None
                    and state.next_batch < len(state.batches)
                    and self._fill(tp, state, 0) is not None
                ):
                    cols = state.cols
                if cols is not None:
                    offsets = cols[0]
                    first = _first(offsets, state.position)  # type: ignore[arg-type]
                    if first >= len(offsets):
                        state.cols = None  # used up
                        continue
                    chunk = self._build(tp, cols, first, min(len(offsets), first + self._iter_left))
                    assigned = self._assigned
                    pos: int = state.position  # type: ignore[assignment]
                    if type(offsets) is range:
                        # Dense offsets: a record's is one more than the last's. The position
                        # is compared by identity: the int stored here, or anything else
                        # stored since (a seek, a poll, a new incarnation) ends the chunk,
                        # so these checks need not look at ``state.cols`` as the general
                        # ones below do (the chunk goes on only where nobody moved the
                        # position, and its records are those a read from there gives).
                        off = start = chunk[0][2]
                        try:
                            for record in chunk:
                                if (
                                    state.position is not pos
                                    or state.paused
                                    or self._assigned is not assigned
                                ):
                                    break
                                off += 1
                                state.position = pos = off
                                yield record
                        finally:
                            self._iter_left -= off - start
                        continue
                    try:
                        for record in chunk:
                            if (
                                state.cols is not cols
                                or state.paused
                                or self._assigned is not assigned
                                or state.position != pos
                            ):
                                break
                            pos = record[2] + 1
                            state.position = pos
                            yield record
                    finally:
                        self._iter_left -= bisect_left(chunk, pos, key=_OFFSET)
                    continue
            timeout = self._consumer_timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if self._closed:
                    return
                left = 3600.0 if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    batch = self.poll(timeout_ms=int(min(left, 3600.0) * 1000), max_records=1)
                except ClosedError:
                    return  # closed by another thread meanwhile
                if batch:
                    ((tp, (record,)),) = batch.items()
                    self._iter_tp = tp
                    self._iter_state = self._assigned.get(tp)
                    self._iter_left = self._max_poll_records - 1
                    yield record
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    return

    # ------------------------------------------------------------------ lifecycle
    def wakeup(self) -> None:
        """Make a blocked ``poll`` (or the next one) raise ``WakeupError``. Any thread."""
        self._wakeup = True
        self._log.signal.notify()

    def _stopping(self) -> bool:
        return self._wakeup or self._closed

    def close(self) -> None:
        """Stop the consumer. Idempotent. A blocked ``poll`` returns empty.

        In a group: commits the positions if auto-commit is on (and waits for
        ``commit_async`` calls), calls ``on_partitions_revoked``, and leaves
        the group (a static member keeps its place until its session times
        out). Callbacks run in the calling thread.
        """
        if self._closed:
            return
        member = self._member
        try:
            if member is not None and self._pid == os.getpid():
                try:
                    if self._auto_commit:
                        self._auto_commit_now(wait=True)
                    try:
                        member.wait_async()
                    except OSError as e:
                        _logger.warning("commits of %s still pending at close: %s", self, e)
                    member.run_async_callbacks()
                    if member.active or member.member_id is not None:
                        member.leave(revoke=True)
                finally:
                    member.close()
        finally:
            self._closed = True
            self._member = None
            self._assigned = {}
            self._order = []
            self._log.signal.notify()
            self._unpark()
            if self._owns_log:
                self._log.close()
        self._raise_listener_error()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<streamlog.Consumer {self.client_id} group={self._group_id!r}>"

    def metrics(self) -> dict[str, Any]:
        """Lag per assigned partition (end offset minus position), and the group membership."""
        self._check_open()
        lag = {}
        for tp, state in self._assigned.items():
            if state.position is not None:
                lag[tp] = max(0, self._end_of(state.plog) - state.position)
        out: dict[str, Any] = {"records-lag": lag, "records-lag-max": max(lag.values(), default=0)}
        member = self._member
        if member is not None:
            out["group"] = {
                "group_id": self._group_id,
                "member_id": member.member_id,
                "generation": member.generation,
                "assignment": sorted(self._assigned),
            }
        return out

    def current_lag(self, tp: TopicPartition) -> int | None:
        """End offset minus position for an assigned partition (None if no position yet)."""
        self._check_open()
        state = self._state(_check_tp(tp))
        if state.position is None or state.reset is not None:
            return None
        return max(0, self._end_of(state.plog) - state.position)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """Kafka's ``groupMetadata()``: group id, generation, member id and instance id,
        for ``Producer.send_offsets_to_transaction``."""
        self._check_open()
        if self._group_id is None:
            raise IllegalStateError("this consumer has no group_id")
        member = self._member
        return ConsumerGroupMetadata(
            self._group_id,
            -1 if member is None else member.generation,
            "" if member is None or member.member_id is None else member.member_id,
            self._config.group_instance_id,
        )

    def enforce_rebalance(self) -> None:
        """Ask for a rebalance; it happens at the next ``poll``."""
        self._check_open()
        if self._member is None or (self._subscription is None and self._pattern is None):
            raise IllegalStateError("enforce_rebalance() needs subscribe() with a group_id")
        self._member.need_join = True


def _check_tps(partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
    """A collection of partitions, each a ``TopicPartition`` or a plain ``(topic,
    partition)`` tuple (a TopicPartition is a NamedTuple: the two are equal)."""
    if isinstance(partitions, (str, bytes, TopicPartition)) or (
        type(partitions) is tuple and len(partitions) == 2 and isinstance(partitions[0], str)
    ):
        raise TypeError("pass a list of TopicPartition, not a single one")
    try:
        items = list(partitions)
    except TypeError:
        raise TypeError(f"pass a list of TopicPartition, not {type(partitions).__name__}") from None
    return [_check_tp(tp) for tp in items]


def _check_tp(tp: object) -> TopicPartition:
    """``tp`` as a ``TopicPartition``: one, or a plain ``(topic, partition)`` tuple."""
    if (
        type(tp) is TopicPartition
        and type(tp.topic) is str
        and type(tp.partition) is int
        and 0 <= tp.partition <= INT32_MAX
    ):
        check_topic_name(tp.topic)  # before it reaches a file name (a group's offsets)
        return tp
    if not isinstance(tp, tuple) or len(tp) != 2:
        raise TypeError(
            f"expected a TopicPartition or a (topic, partition) tuple, not {short_repr(tp)}"
        )
    topic, partition = tp
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, not {type(topic).__name__}")
    check_topic_name(topic)  # before it reaches a file name (a group's offsets)
    if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
        raise TypeError(f"partition must be an int >= 0, not {short_repr(partition)}")
    if partition > INT32_MAX:
        raise ValueError(
            f"partition must be <= {INT32_MAX} (an int32, as in Kafka); got {short_repr(partition)}"
        )
    return TopicPartition(topic, partition)


def _unpark(signal: AppendSignal, parked: list[Bell], lock: threading.Lock) -> None:
    """Disarm a consumer's parked doorbell (at its close, or when it is collected)."""
    with lock:
        bells = parked[:]
        parked.clear()
    for bell in bells:
        signal.unarm(bell)


def _aborted(state: _PartitionState, batch: RecordBatch) -> bool:
    """read_committed: is ``batch`` (of a producer id) part of an aborted transaction?

    Kafka's fetcher rule: before a transactional batch, every aborted transaction
    starting at or before its last offset marks its producer as aborted, up to the
    transaction's last offset (its ABORT marker, or where a newer epoch of the producer
    took over: see ``ProducerStateManager._abort_orphan``). Control batches are skipped
    anyway.
    """
    pid = batch.producer_id
    if batch.is_control:
        return True
    if not batch.is_transactional:
        return False
    queue = state.aborted
    while queue and queue[0].first_offset <= batch.last_offset:
        txn = queue.pop(0)
        state.aborted_pids[txn.producer_id] = txn.last_offset
        # (a later aborted transaction of the same producer replaces the earlier one,
        # which ended before it began)
    last = state.aborted_pids.get(pid)
    if last is None:
        return False
    if batch.base_offset > last:
        del state.aborted_pids[pid]
        return False
    return True
