"""A topic-partition's log: a directory of segments with append, read, roll, retention, recovery.

Directory layout::

    <partition>/
      state                        PartitionState: tail hint, log start, recovery point
      .lock                        flock target of the AppendLock (never deleted)
      00000000000000000000.log     segments, named by base offset (see ``_segment``)
      00000000000000000000.index
      00000000000000000000.timeindex
      (one such triple per segment)

Append protocol (one batch, or several, per lock hold):

1. Encode outside the lock (``prepare_batch``); refuse a batch over
   ``max.message.bytes`` before any I/O.
2. Take the append lock; learn the true tail by following frames that other
   processes appended after our cached tail (and their seals, into newer
   segments).
3. Assign offsets from the tail; roll first if the batch would not fit, the
   segment is older than ``segment.ms`` by record timestamps, an index is full,
   or relative offsets would overflow 32 bits.
4. Write the frame into the map (length word last), add index entries, update
   the shared tail hint, release the lock, wake in-process readers.
5. With ``sync=True``, fdatasync the segments written since the last sync (and
   the directory once for a new segment). Threads waiting for a sync share one
   (group commit). A failed sync marks the log failed: no later append is
   acknowledged until it is reopened and recovered.

What is reported is what is in the log. A batch is in once its length word is
stored (step 4); nothing after that may fail it (a missing index entry is
added later, a failed unlock closes the lock's descriptor, a failed retention
pass is logged). When a batch fails after earlier ones of the same call were
appended, ``PartialAppendError`` names those; any other exception means that
no batch of the call is in the log.

Closing syncs the data through the descriptors held, releases every map and
descriptor, then syncs the directory (``Durability.close_sync``); a failure is
raised once and everything is released all the same.

Reads take no lock: they map what exists, follow the tail, and verify every
frame's checksum before returning it. A reader never touches bytes past a
valid frame or a seal, so rolls, retention (which unlinks, never truncates)
and writers in other processes cannot make it fault.

Thread-safe and process-safe. ``recover()`` is the exception: it rewrites
files in place and may only run while no other process uses the directory
(the data directory's instance lock guarantees that).

The work is split along Kafka's lines; ``PartitionLog`` is the only public
face and keeps the view of the segments, the tail, append, roll and read:

- ``_loader.LogLoader``: opening (``load``) and ``recover()``;
- ``_retention``: retention by time and size, and ``delete_records``;
- ``_durability.Durability``: syncs, group commit, the recovery point, fsyncgate;
- ``_segment.Segment``: one segment's files.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sortedcontainers import SortedDict

from .._config import TopicConfig
from .._fs import LOG_SUFFIX, crashpoint, fs, name_to_offset, offset_to_name
from ..errors import (
    ClosedError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageIOError,
)
from . import _retention
from ._cleaner import SWAP, superseded
from ._codec import ATTR_CONTROL, ATTR_TRANSACTIONAL, PreparedBatch, RecordBatch, prepare_batch
from ._datadir import refuse_link
from ._durability import Durability
from ._loader import LogLoader, RecoveryReport
from ._producer_state import (
    AbortedTxn,
    ProducerStateManager,
    ProducerStateTracker,
    control_key,
    control_value,
    parse_control_key,
)
from ._segment import MAX_RELATIVE as _MAX_RELATIVE
from ._segment import Segment
from ._state import AppendLock, PartitionState

__all__ = [
    "RETENTION_CHECK_INTERVAL_MS",
    "AppendResult",
    "PartialAppendError",
    "PartitionLog",
    "RecoveryReport",
]

RETENTION_CHECK_INTERVAL_MS = 60_000
# A sealed segment the cleaner made us drop from view is closed once the generation
# has moved on twice and at least this long after (a thread of ours may be reading it)
RETIRED_CLOSE_AFTER_S = 1.0

_logger = logging.getLogger("streamlog.storage")


@dataclass
class AppendResult:
    base_offset: int
    last_offset: int
    timestamp: int  # max timestamp of the batch (the append time under LogAppendTime)


class PartialAppendError(StorageIOError):
    """``append_many`` failed after some of its batches were appended (storage-internal).

    ``appended`` holds the ``AppendResult`` of ``batches[:len(appended)]``: those
    batches are in the log at these offsets, published (readers see them), exactly as
    if ``append_many`` had been called with them alone and returned, except that this
    call made none of them durable (with ``sync=True`` the sync was not done, or it is
    what failed: ``flush()`` tells, and refuses after a failed sync). The batches from
    ``len(appended)`` on are not in the log and took no offset; ``error`` is why, with
    the type and errno the failing batch would have raised alone (``StorageIOError``
    with ENOSPC, ...). This exception is itself a ``StorageIOError`` with ``error``'s
    errno (EIO if it has none), so code that only knows ``StorageIOError`` still sees
    a failure. Raised only when at least one batch was appended: any other exception
    from ``append_many`` means that no batch was.
    """

    def __init__(
        self,
        err: int,
        message: str,
        filename: str | None = None,
        *,
        appended: Sequence[AppendResult] = (),
        error: BaseException | None = None,
    ) -> None:
        super().__init__(err, message, filename)
        self.appended: list[AppendResult] = list(appended)
        self.error: BaseException = error if error is not None else StorageIOError(err, message)

    @classmethod
    def of(
        cls, appended: list[AppendResult], error: BaseException, path: str
    ) -> PartialAppendError:
        if isinstance(error, OSError) and error.errno:
            err, text, where = error.errno, error.strerror or str(error), error.filename or path
        else:
            err, text, where = errno.EIO, str(error) or type(error).__name__, path
        message = f"{text} (after {len(appended)} batch(es) were appended)"
        return cls(err, message, where, appended=appended, error=error)


class PartitionLog:
    """One partition's segments (see the module docstring for the protocols)."""

    def __init__(
        self,
        path: str,
        config: TopicConfig,
        *,
        lock_timeout: float = 10.0,
        recover: bool = False,
        writable: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.config = config
        self.writable = writable
        self._clock = clock
        self._closed = False
        for d in (path, os.path.dirname(path)):  # the partition and topic directories
            refuse_link(d)
        if writable:
            fs.makedirs(path)
        self.state = PartitionState(os.path.join(path, "state"), writable=writable)
        try:
            self.lock = AppendLock(os.path.join(path, ".lock"), lock_timeout) if writable else None
        except BaseException:
            self.state.close()
            raise
        self._segments: SortedDict[int, Segment | None] = SortedDict()
        self._listed: list[str] = []  # the directory's names, as _list_bases last saw them
        # what is synced (and the flushes of sealed segments); tests reach its
        # state through _unsynced and _wait_for_flushes
        self._durability = Durability(self)
        # called after every append through this object (the handle wakes its consumers)
        self.on_append: Callable[[], None] | None = None
        self._last_retention_check = int(clock() * 1000)
        self._log_start_seen = -1
        self._leftovers = False  # files a failed unlink left below the log start
        # (tail, size, max timestamp, next offset) of sealed segments not loaded
        self._sealed_facts: dict[int, tuple[int, int, int, int]] = {}
        self.report: RecoveryReport | None = None
        # producer ids, open and aborted transactions: built on first use
        self._producers = ProducerStateTracker(self)
        # the cleaner's generation last seen (``_notice_cleaning``), and the segments it
        # made us drop: (generation, monotonic time, segment), closed two generations
        # and RETIRED_CLOSE_AFTER_S later, or at close (a thread of ours may still be
        # reading one)
        self._clean_gen_seen = self.state.clean_generation()
        self._retired: list[tuple[int, float, Segment]] = []
        try:
            if recover:
                self.report = self.recover()
            else:
                LogLoader(self).load()
        except BaseException:
            self._release()  # no descriptor left behind by a failed open
            raise

    def _release(self) -> BaseException | None:
        """Close every map and descriptor this object holds (without syncing), going
        on past failures; returns the first error. Idempotent: what is released is
        forgotten, so a second call releases only what a failed first one left."""
        self._closed = True
        error: BaseException | None = None
        segments = [seg for seg in self._segments.values() if seg is not None]
        segments += [seg for _gen, _at, seg in self._retired]
        self._retired = []
        # (a segment is in both, or in unsynced alone if it was dropped from view)
        segments += [s for s in self._durability.unsynced.values() if s not in segments]
        for seg in segments:
            try:
                seg.close()
            except Exception as e:
                error = error or e
        try:
            self.state.close()
        except Exception as e:
            error = error or e
        if self.lock is not None:
            try:
                self.lock.close()
            except Exception as e:
                error = error or e
        return error

    # ------------------------------------------------------------------ opening
    def _list_bases(self) -> list[int]:
        """Base offsets of the segments in the directory, in order; not those a merged
        rewrite supersedes while its group swap is under way or was interrupted (the
        cleaner's ``.swap`` files say so; see ``_cleaner``)."""
        bases = []
        self._listed = names = fs.listdir(self.path)  # (LogLoader.load looks at the rest too)
        heads: set[int] = set()
        for name in names:
            if name.endswith(LOG_SUFFIX):
                base = name_to_offset(name)
                if base is not None:
                    bases.append(base)
            elif name.endswith(SWAP):
                base = name_to_offset(name)
                if base is not None:
                    heads.add(base)
        bases.sort()
        if heads:
            gone = superseded(self.path, bases, heads & set(bases))
            if gone:
                bases = [b for b in bases if b not in gone]
        return bases

    def _new_segment(self, base: int, *, create: bool = False) -> Segment:
        return Segment(
            self.path,
            base,
            index_interval=self.config.index_interval_bytes,
            max_index_bytes=self.config.segment_index_bytes,
            writable=self.writable,
            create=create,
        )

    def _segment(self, base: int) -> Segment:
        seg = self._segments[base]
        if seg is None:
            for attempt in range(10):
                try:
                    seg = self._new_segment(base)
                    break
                except StorageIOError as e:
                    # replaced by the cleaner while we opened it: open the new one
                    if e.errno != errno.ESTALE or attempt == 9:
                        raise
            assert seg is not None
            try:
                seg.load()
            except BaseException:
                seg.close_quietly()  # (the load's error is the one to report)
                raise
            self._segments[base] = seg
            nxt = seg.next_base
            if seg.sealed and nxt is not None:
                # A segment the cleaner merged others into: its seal skips them (they
                # are being unlinked, or were). The seal is the authority: forget them.
                for b in list(self._segments.irange(base, nxt, inclusive=(False, False))):
                    self._forget_segment(b)
        return seg  # type: ignore[no-any-return]

    def _forget_segment(self, base: int) -> None:
        """Drop segment ``base`` from view (a cleaner merged it into another). If it is
        loaded it is retired, not closed: a thread of ours may be reading it."""
        if base == self._segments.peekitem(-1)[0]:
            return  # (never the active segment)
        seg = self._segments.pop(base)
        self._sealed_facts.pop(base, None)
        if seg is not None:
            self._retired.append((self._clean_gen_seen, time.monotonic(), seg))

    def _notice_cleaning(self, *, force: bool = False) -> None:
        """If the cleaner (of any process) replaced sealed segments since we last looked
        (or with ``force``: a segment was found gone), drop our view of every sealed
        segment, so the next use opens the new files, and list the directory again (a
        merge removes segments).

        Dropped segments are not closed at once: a thread of this process may be in the
        middle of reading one (their files stay valid: the cleaner renames over them or
        unlinks them, never truncates). The producer state is rebuilt from the cleaned
        log."""
        gen = self.state.clean_generation()
        if gen == self._clean_gen_seen and not force:
            return
        self._clean_gen_seen = gen
        now = time.monotonic()
        keep: list[tuple[int, float, Segment]] = []
        flushing = self._durability.unsynced.values()
        for old_gen, at, seg in self._retired:
            if (
                gen - old_gen >= 2
                and now - at >= RETIRED_CLOSE_AFTER_S
                and all(seg is not s for s in flushing)  # (the flusher closes it, or close)
            ):
                seg.close_quietly()
            else:
                keep.append((old_gen, at, seg))
        keys = list(self._segments.keys())[:-1]  # (never the active segment)
        for base in keys:
            seg = self._segments[base]
            if seg is not None:
                # (one still to be flushed stays in ``unsynced``: it syncs its own file)
                self._segments[base] = None
                keep.append((gen, now, seg))
        self._retired = keep
        self._sealed_facts.clear()
        self._producers.state = None  # (rebuilt on next use, from the first segment)
        self._relist_sealed()

    def _relist_sealed(self) -> None:
        """Make our view of the sealed segments the directory's: segments merged away
        are forgotten, and any listed one we do not know is added (not those wholly
        below the log start, which retention deletes)."""
        active_base = self._segments.peekitem(-1)[0]
        bases = [b for b in self._list_bases() if b < active_base]
        after = [*bases[1:], active_base][: len(bases)]  # (no sealed segment listed: none)
        start = self.state.log_start()
        listed = {b for b, nxt in zip(bases, after, strict=True) if nxt > start}
        for base in list(self._segments.irange(maximum=active_base, inclusive=(True, False))):
            if base not in listed:
                self._forget_segment(base)
        for base in listed:
            if base not in self._segments:
                self._segments[base] = None

    def _active(self) -> Segment:
        base, seg = self._segments.peekitem(-1)  # (cheaper than keys()[-1], per read)
        return seg if seg is not None else self._segment(base)

    # ------------------------------------------------------------------ tail
    def _refresh(self) -> Segment:
        """Learn of frames and segments appended by other processes (no lock needed).

        On every read: nothing new (the length word at the known tail is 0) costs one
        look at the map. The indexes are left to the lookups that need them and to the
        next writer (``Segment.refresh``)."""
        if self.state.clean_generation() != self._clean_gen_seen:
            self._notice_cleaning()
        base, last = self._segments.peekitem(-1)  # (as _active, without the call)
        active: Segment = last if last is not None else self._segment(base)
        active.refresh(indexes=False)
        while active.sealed:
            nxt = active.next_base
            assert nxt is not None
            if nxt not in self._segments:
                found = self._next_existing(nxt)
                if found is None:
                    break  # the roller has not created it yet: the log ends at the seal
                nxt = found
                self._segments[nxt] = None
            try:
                active = self._segment(nxt)
            except StorageIOError as e:
                if e.errno != errno.ENOENT:
                    raise
                self._segments.pop(nxt, None)  # deleted by retention just now: look again
                continue
            active.refresh(indexes=False)
        return active

    def _next_existing(self, nxt: int) -> int | None:
        """``nxt`` if its segment file exists; if retention (in another process) deleted
        it while we were behind, the oldest segment after it; None if there is none yet."""
        if os.path.exists(os.path.join(self.path, offset_to_name(nxt) + LOG_SUFFIX)):
            return nxt
        later = [b for b in self._list_bases() if b > nxt]
        return later[0] if later else None

    def _refresh_locked(self) -> Segment:
        """As ``_refresh``, under the append lock: also repair what a crashed writer left."""
        self._notice_cleaning()
        active = self._active()
        result = active.refresh()
        while True:
            if result is not None and result.damage is not None:
                # A bad frame at the tail with nothing valid after it: torn by a
                # power cut or damaged from outside. Writing over it is what
                # recovery would do; zero it first so no reader mistakes the rest.
                active.zero_from(active.tail)
            if not active.sealed:
                break
            nxt = active.next_base
            assert nxt is not None
            if nxt not in self._segments:
                found = self._next_existing(nxt)
                if found is None:
                    # A roll crashed between sealing and creating the next segment.
                    created = self._new_segment(nxt, create=True)
                    self._segments[nxt] = created
                    self._durability.unsynced[nxt] = created
                else:
                    # (if found != nxt: deleted by retention while we were behind;
                    # never recreate it, the log goes on in the later segments)
                    nxt = found
                    self._segments[nxt] = None
            active = self._segment(nxt)
            result = active.refresh()
        return active

    @property
    def log_start_offset(self) -> int:
        self._check_open()
        start = self.state.log_start()
        first: int = self._segments.keys()[0]
        return max(start, first)

    @property
    def end_offset(self) -> int:
        """The log end offset: the offset the next appended record will get."""
        self._check_open()
        return self._refresh().next_offset

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"partition log {self.path} is closed")

    def _refuse_failed(self) -> None:
        """Raise if a sync of this partition failed (fsyncgate: nothing that syncs may
        follow: a retried sync could "succeed" without the data); else nothing."""
        failed = self._durability.failed
        if failed is not None:
            raise StorageIOError(
                errno.EIO, f"partition failed earlier ({failed}); reopen to recover", self.path
            )

    # ------------------------------------------------------------------ appending
    class _Locked:
        __slots__ = ("log",)

        def __init__(self, log: PartitionLog) -> None:
            self.log = log

        def __enter__(self) -> None:
            lock = self.log.lock
            if lock is None:
                raise StorageIOError(errno.EROFS, "partition is open read-only", self.log.path)
            lock.acquire()

        def __exit__(self, *exc: object) -> None:
            assert self.log.lock is not None
            self.log.lock.release()

    def _locked(self) -> PartitionLog._Locked:
        return PartitionLog._Locked(self)

    def check_batch(self, batch: PreparedBatch) -> None:
        """Raise ``RecordTooLargeError`` if the batch is over ``max.message.bytes``, and
        ``InvalidRecordError`` if the topic is compacted and a record has no key."""
        if batch.null_key and self.config.compacted and not batch.attributes & ATTR_CONTROL:
            raise InvalidRecordError(
                f"a compacted topic needs a key on every record "
                f"(cleanup.policy={self.config.cleanup_policy}) in {self.path}"
            )
        if batch.size > self.config.max_message_bytes:
            raise RecordTooLargeError(
                f"record batch of {batch.size} bytes is larger than max.message.bytes "
                f"({self.config.max_message_bytes}) of {self.path}"
            )

    def append(self, batch: PreparedBatch, *, sync: bool = False) -> AppendResult:
        """Append one batch; its offsets are assigned here. See the module docstring."""
        return self.append_many((batch,), sync=sync)[0]

    def append_many(
        self,
        batches: Sequence[PreparedBatch],
        *,
        sync: bool = False,
        precondition: Callable[[PartitionLog], None] | None = None,
    ) -> list[AppendResult]:
        """Append several batches under one lock hold, in order.

        ``precondition``, if given, is called with this log under the append lock, after
        the tail is caught up with every process's appends and before anything is
        written; an exception from it refuses the call (nothing is written, the
        exception propagates). Conditional appends (``EventStore``) check here.

        Each batch is all or nothing, and the report is exact: returns the results of
        all; if one fails after earlier ones were appended, raises
        ``PartialAppendError`` naming those (see it); any other exception means no
        batch was appended. The same holds for a failure after the last batch (a
        ``sync=True`` that fails): what is in the log is never reported failed.

        One function on purpose: this is the append hot path (per batch under the
        lock: header, roll check, write, index), so it is not split into calls.
        """
        self._check_open()
        durability = self._durability
        if durability.failed is not None:
            self._refuse_failed()
        for batch in batches:
            self.check_batch(batch)
        results: list[AppendResult] = []
        sealed: list[Segment] = []
        error: Exception | None = None
        config = self.config
        log_append_time = config.message_timestamp_type == "LogAppendTime"
        tracked = any(b.producer_id >= 0 for b in batches)
        with self._locked():
            active = self._refresh_locked()
            if precondition is not None:
                precondition(self)
            if tracked:
                self._producers.lock.acquire()
            try:
                pstate = self._producers.caught_up() if tracked else None
                for batch in batches:
                    if pstate is not None and batch.producer_id >= 0:
                        skip = self._check_producer(pstate, batch)
                        if skip is not None:
                            results.append(skip)
                            continue
                    base = active.next_offset
                    last = base + batch.record_count - 1
                    if log_append_time:
                        max_ts: int = int(self._clock() * 1000)
                        head = batch.head(base, max_ts)
                    else:
                        max_ts = batch.max_timestamp
                        head = batch.head(base)
                    if active.tail > 0 and (
                        active.would_overflow(batch.size, config.segment_bytes)
                        or active.index_full
                        or last - active.base_offset > _MAX_RELATIVE
                        or self._time_to_roll(active, max_ts)
                    ):
                        rolled = active
                        active = self._roll_locked(active, base)
                        sealed.append(rolled)
                    # (all or nothing: a failure inside leaves no trace of the batch)
                    active.append(head, last, max_ts, batch.payload)
                    durability.unsynced[active.base_offset] = active
                    results.append(AppendResult(base, last, max_ts))
                    if pstate is not None:
                        self._apply_producer(pstate, batch, base, last, max_ts, active)
            except Exception as e:
                # What was appended before stays appended (readers may have seen it):
                # finish the bookkeeping for it below and report it.
                error = e
                if active.sealed and active not in sealed:
                    sealed.append(active)  # a roll sealed it, then failed to go on
            finally:
                if tracked:
                    self._producers.lock.release()
            if results or sealed:
                self.state.set_hint(active.next_offset, active.base_offset, active.tail)
            durability.written_seq += 1
            seq = durability.written_seq
        if sealed:
            durability.after_roll(sealed)  # (the seals are written, whatever came after)
        if results:
            try:
                hook = self.on_append
                if hook is not None:
                    hook()
            except Exception as e:
                error = error or e
        if error is not None:
            if not results:
                raise error
            raise PartialAppendError.of(results, error, self.path) from error
        if sync:
            try:
                durability.sync_upto(seq)
            except Exception as e:
                if not results:
                    raise
                raise PartialAppendError.of(results, e, self.path) from e
        now = int(self._clock() * 1000)
        if now - self._last_retention_check >= RETENTION_CHECK_INTERVAL_MS:
            self._last_retention_check = now
            try:
                self.enforce_retention(now)
            except Exception as e:
                # The batches are appended: retention is housekeeping, and its failure
                # must not turn them into a failed append (it runs again next time).
                _logger.warning("retention of %s failed after an append: %s", self.path, e)
        return results

    # ------------------------------------------------------------------ producer state
    @staticmethod
    def _check_producer(
        pstate: ProducerStateManager, batch: PreparedBatch
    ) -> AppendResult | None:
        """The idempotence and transaction checks of a batch (``_producer_state``): the
        result to report without writing (a duplicate, or a marker with nothing to end),
        None to append it; raises if it is refused."""
        if batch.attributes & ATTR_CONTROL:
            if pstate.check_marker(batch.producer_id, batch.producer_epoch):
                return None
            return AppendResult(-1, -1, -1)
        dup = pstate.check_append(
            batch.producer_id,
            batch.producer_epoch,
            batch.base_sequence,
            batch.record_count,
            bool(batch.attributes & ATTR_TRANSACTIONAL),
        )
        if dup is None:
            return None
        return AppendResult(dup[0], dup[1], batch.max_timestamp)

    def _apply_producer(
        self,
        pstate: ProducerStateManager,
        batch: PreparedBatch,
        base: int,
        last: int,
        max_ts: int,
        active: Segment,
    ) -> None:
        pid = batch.producer_id
        if pid >= 0:
            if batch.attributes & ATTR_CONTROL:
                kind = parse_control_key(batch.control_key)
                if kind is not None:
                    pstate.apply_marker(pid, batch.producer_epoch, kind, base, max_ts)
            else:
                pstate.apply_batch(pid, batch.producer_epoch, batch.base_sequence, base, last,
                                   max_ts, bool(batch.attributes & ATTR_TRANSACTIONAL))
        elif last >= pstate.next_offset:
            pstate.next_offset = last + 1
        self._producers.applied(active.base_offset, active.tail)

    def write_marker(self, producer_id: int, epoch: int, kind: int) -> int | None:
        """End ``producer_id``'s open transaction here with a COMMIT or ABORT marker.

        Synced before it returns. Returns the marker's offset, or None if the
        producer has no open transaction in this partition (nothing is written, so a
        coordinator repeating a step after a crash changes nothing). Raises
        ``ProducerFencedError`` if a newer epoch of the producer wrote here.
        """
        batch = prepare_batch(
            [control_value()],
            [control_key(kind)],
            int(self._clock() * 1000),
            transactional=True,
            control=True,
            producer_id=producer_id,
            producer_epoch=epoch,
        )
        batch.control_key = control_key(kind)
        result = self.append_many((batch,), sync=True)[0]
        return None if result.base_offset < 0 else result.base_offset

    def producer_state(self) -> ProducerStateManager:
        """A copy-free view of the producer state, caught up with the log (tests, CLI)."""
        self._check_open()
        with self._producers.lock:
            return self._producers.caught_up()

    def last_stable_offset(self) -> int:
        """The first offset of the earliest open transaction, or the end of the log:
        read_committed readers stop there (Kafka's LSO; at least the log start)."""
        self._check_open()
        with self._producers.lock:
            lso = self._producers.caught_up().last_stable_offset()
        return max(lso, self._current_log_start())

    def transaction_bounds(self, start: int) -> tuple[int, list[AbortedTxn]]:
        """For a read_committed fetch from ``start``: the LSO and the aborted transactions
        that may own batches in ``[start, LSO)``, in marker order."""
        self._check_open()
        with self._producers.lock:
            pstate = self._producers.caught_up()
            lso = pstate.last_stable_offset()
            aborted = pstate.aborted_between(start, lso)
        return max(lso, self._current_log_start()), aborted

    def open_transactions(self) -> list[tuple[int, int, int]]:
        """``(producer_id, epoch, first_offset)`` of every transaction open here."""
        self._check_open()
        with self._producers.lock:
            pstate = self._producers.caught_up()
            out = []
            for first, pid in pstate.ongoing.items():
                out.append((pid, pstate.entries[pid].epoch, first))
            return out

    def _time_to_roll(self, seg: Segment, max_ts: int) -> bool:
        first = seg.first_max_timestamp
        if first is None or first < 0 or max_ts < 0:
            return False
        return max_ts - first > self.config.segment_ms

    def _roll_locked(self, active: Segment, next_offset: int) -> Segment:
        """Seal ``active`` and create the next segment (under the append lock).

        A failure after the seal leaves a sealed log with no next segment yet: a
        valid state, which the next writer (``_refresh_locked``) or recovery
        completes. Once the next segment exists the roll has happened: cutting the
        zeros after the seal is only tidying, and its failure is not the roll's.
        """
        active.seal(next_offset)
        crashpoint("roll.before_create")
        new = self._new_segment(next_offset, create=True)
        self._segments[next_offset] = new
        crashpoint("roll.created")
        try:
            active.trim()
        except StorageIOError as e:
            _logger.debug("could not cut the sealed segment %s: %s", active.path, e)
        crashpoint("roll.trimmed")
        self.state.set_hint(next_offset, next_offset, 0)
        return new

    def roll(self) -> None:
        """Seal the active segment now (if it holds data) and start a new one."""
        self._check_open()
        self._refuse_failed()  # (its flush would sync again what failed to sync)
        with self._locked():
            active = self._refresh_locked()
            if active.tail == 0:
                return
            self._roll_locked(active, active.next_offset)
        try:
            self._durability.flush_sealed([active])
        except StorageIOError as e:
            # fsyncgate, as in Durability.sync_upto: never acknowledge anything again
            self._durability.fail(e)
            raise

    # ------------------------------------------------------------------ durability
    @property
    def _unsynced(self) -> dict[int, Segment]:
        """Segments written since their last sync (``Durability.unsynced``)."""
        return self._durability.unsynced

    def _wait_for_flushes(self) -> None:
        """Wait until the flushes of sealed segments handed to the flusher are done."""
        self._durability.wait_for_flushes()

    def flush(self) -> None:
        """Make everything appended so far (by this process) durable."""
        self._check_open()
        self._durability.sync_upto(self._durability.written_seq)

    # ------------------------------------------------------------------ reading
    def read(self, offset: int, max_bytes: int = 1 << 20) -> list[RecordBatch]:
        """Batches holding offsets from ``offset`` on, up to ``max_bytes`` (at least one batch).

        Whole batches are returned, so the first may start before ``offset``
        (the caller skips those records), as Kafka does. ``offset`` equal to
        the end offset gives ``[]``; below the log start or past the end
        raises ``OffsetOutOfRangeError``. Offsets in a gap read as the next
        batch.
        """
        if self._closed:
            self._check_open()
        active = self._refresh()
        end = active.next_offset
        start = self._current_log_start()
        if offset < start or offset > end:
            raise OffsetOutOfRangeError(
                f"offset {offset} is out of range [{start}, {end}] for {self.path}",
                offset=offset,
                log_start_offset=start,
                end_offset=end,
            )
        out: list[RecordBatch] = []
        if offset == end or max_bytes <= 0:
            return out
        if offset >= active.base_offset:
            # (the common case, a consumer at the tail: ``active`` is the last segment)
            active.read(offset, max_bytes, active.tail, out)
            return out
        for attempt in range(10):
            try:
                self._read_sealed(offset, max_bytes, out)
                return out
            except StorageIOError as e:
                if e.errno != errno.ENOENT:
                    raise
                # A segment we listed is gone: merged into another by the cleaner, or
                # deleted by retention, in another process. Look at the directory again.
                try:
                    self._notice_cleaning(force=True)
                    relisted = True
                except StorageIOError:
                    relisted = False  # (the partition itself is gone: its topic deleted)
                if out:
                    return out  # (the batches read are whole: the caller reads on)
                start = self._current_log_start()
                if relisted and offset >= start and attempt < 9:
                    continue
                raise OffsetOutOfRangeError(
                    f"offset {offset} was deleted by retention; log starts at {start}",
                    offset=offset,
                    log_start_offset=start,
                    end_offset=end,
                ) from e
        raise AssertionError("unreachable")

    def _read_sealed(self, offset: int, max_bytes: int, out: list[RecordBatch]) -> None:
        """``read`` from a sealed segment on (ENOENT: a segment in view is gone)."""
        segments = self._segments
        # (SortedDict's own bisect: bisect over its keys view costs a Python call a probe)
        i = max(0, segments.bisect_right(offset) - 1)
        used = 0
        while i < len(segments):
            base, seg = segments.peekitem(i)
            if seg is None:
                seg = self._segment(base)
            u, done = seg.read(offset, max_bytes - used, seg.tail, out)
            used += u
            if not done or used >= max_bytes:
                break
            i += 1

    def _current_log_start(self) -> int:
        start = self.state.log_start()
        if start != self._log_start_seen:
            self._log_start_seen = start
            _retention.forget_below(self, start)
        first: int = self._segments.peekitem(0)[0]
        return max(start, first)

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """The earliest ``(offset, timestamp)`` whose timestamp is >= ``timestamp``, or None."""
        self._check_open()
        for attempt in range(10):
            try:
                return self._offset_for_timestamp(timestamp)
            except StorageIOError as e:
                # a segment merged by the cleaner (or deleted by retention) elsewhere
                if e.errno != errno.ENOENT or attempt == 9:
                    raise
                self._notice_cleaning(force=True)
        raise AssertionError("unreachable")

    def _offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        self._refresh()
        start = self._current_log_start()
        for base in list(self._segments.keys()):
            if base not in self._segments:
                continue  # (forgotten: merged into the one before)
            seg = self._segment(base)
            if seg.max_timestamp < timestamp or seg.tail == 0:
                continue
            seg.time_index.refresh()
            i = seg.time_index.lower(timestamp)
            from_offset = base if i < 0 else base + seg.time_index.entry(i)[1] + 1
            from_offset = max(from_offset, start)
            out: list[RecordBatch] = []
            seg.read(from_offset, 1 << 62, seg.tail, out)
            for batch in out:
                if batch.max_timestamp < timestamp:
                    continue
                for off, ts, *_ in batch.records(seg.path):
                    if ts >= timestamp and off >= from_offset:
                        return off, ts
        return None

    # ------------------------------------------------------------------ retention
    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete whole old segments by ``retention.ms`` and ``retention.bytes``.

        Only a prefix of segments goes; if every segment (the active one
        included) is past retention, a new empty segment is rolled first so
        the end offset is kept. Returns the number of segments deleted.
        See ``_retention``.
        """
        return _retention.enforce_retention(self, now_ms)

    def delete_records(self, before_offset: int) -> int:
        """Move the log start offset up to ``before_offset``; returns the new log start.

        Records below it can no longer be read; whole segments below it are
        deleted at once. The new start is synced before this returns.
        See ``_retention``.
        """
        return _retention.delete_records(self, before_offset)

    # ------------------------------------------------------------------ recovery
    def recover(self) -> RecoveryReport:
        """Check and repair after an unclean shutdown. Exclusive use of the directory only.

        From the segment holding the recovery point to the end: verify every
        frame, rebuild the indexes, truncate a torn tail, seal a segment whose
        seal was lost (leaving an offset gap up to the next segment), create a
        missing next segment. Corruption with valid data after it is kept and
        reported; reading it raises ``CorruptRecordError``. See ``_loader``.
        """
        return LogLoader(self).recover()

    # ------------------------------------------------------------------ info
    @property
    def segment_count(self) -> int:
        if not self._closed:
            self._refresh()  # (other processes' rolls, and the cleaner's merges)
        return len(self._segments)

    def size_bytes(self) -> int:
        """Bytes of frames on disk (excluding preallocated space). Sealed segments are
        not loaded for it (``_retention.sealed_facts``)."""
        self._check_open()
        for attempt in range(10):
            active = self._refresh()
            self._current_log_start()  # forget segments other processes deleted
            keys = list(self._segments.keys())[:-1]
            try:
                return active.size_bytes + sum(_retention.sealed_facts(self, b)[1] for b in keys)
            except StorageIOError as e:
                # deleted by retention or merged by the cleaner elsewhere since
                if e.errno != errno.ENOENT or attempt == 9:
                    raise
                self._notice_cleaning(force=True)
        raise AssertionError("unreachable")

    def segments(self) -> list[Segment]:
        self._check_open()
        for attempt in range(10):
            self._refresh()
            self._current_log_start()  # forget segments other processes deleted
            try:
                out = []
                for b in list(self._segments.keys()):
                    if b in self._segments:  # (loading one may forget those it merged)
                        out.append(self._segment(b))
                return out
            except StorageIOError as e:
                # deleted by retention or merged by the cleaner elsewhere since
                if e.errno != errno.ENOENT or attempt == 9:
                    raise
                self._notice_cleaning(force=True)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Make what this object appended durable, then release every map and
        descriptor; raise the first error.

        Everything is released even when a sync fails; the failure is recorded as
        any failed sync is (fsyncgate: the partition is failed, and its directory
        is not marked clean, so the next open recovers it). The partition
        directory is synced after our own descriptors are released (it needs a
        new one), so a process that has none to spare can still close. A second
        call is a no-op, but for releasing anything a failed first one left.
        """
        if self._closed:
            error = self._release()
            if error is not None:
                raise error
            return
        errors: list[BaseException] = []

        def release() -> None:
            error = self._release()
            if error is not None:
                errors.append(error)

        durability = self._durability
        try:
            durability.wait_for_flushes()
            if self.writable and durability.unsynced:
                durability.close_sync(release)  # (releases, whatever happens)
        except BaseException as e:
            errors.insert(0, e)
        finally:
            release()  # (a no-op after close_sync's)
        if errors:
            raise errors[0]

    def _check(self) -> None:
        """Assert every invariant of the log (tests call this after random operations)."""
        self.segments()  # (catch up with other processes, and load every segment)
        keys = list(self._segments.keys())
        prev_end = None
        for i, base in enumerate(keys):
            seg = self._segment(base)
            seg._check()
            if prev_end is not None:
                assert base == prev_end, f"segment {base} does not continue at {prev_end}"
            if i < len(keys) - 1:
                assert seg.sealed and seg.next_base == keys[i + 1]
                prev_end = seg.next_base
        active = self._active()
        assert not active.sealed
        assert self.log_start_offset <= active.next_offset
        hint_next, _hint_base, _hint_pos = self.state.hint()
        assert hint_next <= active.next_offset
