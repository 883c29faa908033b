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

Reads take no lock: they map what exists, follow the tail, and verify every
frame's checksum before returning it. A reader never touches bytes past a
valid frame or a seal, so rolls, retention (which unlinks, never truncates)
and writers in other processes cannot make it fault.

Thread-safe and process-safe. ``recover()`` is the exception: it rewrites
files in place and may only run while no other process uses the directory
(the data directory's instance lock guarantees that).
"""

from __future__ import annotations

import bisect
import errno
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sortedcontainers import SortedDict

from .._config import TopicConfig
from .._fs import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TEMP_SUFFIXES,
    TIMEINDEX_SUFFIX,
    crashpoint,
    fs,
    name_to_offset,
    offset_to_name,
)
from ..errors import (
    ClosedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageIOError,
)
from ._codec import PreparedBatch, RecordBatch
from ._datadir import forget_failed_sync, note_failed_sync, refuse_link
from ._flusher import flusher
from ._segment import MAX_RELATIVE as _MAX_RELATIVE
from ._segment import Segment
from ._state import AppendLock, PartitionState

RETENTION_CHECK_INTERVAL_MS = 60_000


def _nonzero_after(seg: Segment, start: int) -> bool:
    """True if any byte of ``seg``'s file from ``start`` on is not zero."""
    mm, end = seg._mm, seg.allocated
    if mm is None:
        return False
    step = 1 << 20
    for pos in range(start, end, step):
        chunk = mm[pos : min(end, pos + step)]
        if chunk.count(0) != len(chunk):
            return True
    return False


@dataclass
class RecoveryReport:
    """What recovery (or ``check``) found in one partition."""

    path: str
    segments_scanned: int = 0
    bytes_truncated: int = 0
    truncated_at: list[tuple[str, int]] = field(default_factory=list)
    corrupt: list[tuple[str, int]] = field(default_factory=list)
    offset_gaps: list[tuple[int, int]] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    indexes_rebuilt: int = 0
    segments_created: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.bytes_truncated or self.corrupt or self.offset_gaps or self.removed_files)


@dataclass
class AppendResult:
    base_offset: int
    last_offset: int
    timestamp: int  # max timestamp of the batch (the append time under LogAppendTime)


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
        self._failed: BaseException | None = None
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
        self._unsynced: dict[int, Segment] = {}
        self._dir_synced: set[int] = set()
        self._parent_synced = False  # this partition's entry in its topic directory
        self._sync_lock = threading.Lock()
        # called after every append through this object (the handle wakes its consumers)
        self.on_append: Callable[[], None] | None = None
        self._flushes_done = threading.Condition(threading.Lock())
        self._pending_flushes = 0
        self._written_seq = 0
        self._synced_seq = 0
        self._last_retention_check = int(clock() * 1000)
        self._log_start_seen = -1
        self.report: RecoveryReport | None = None
        try:
            if recover:
                self.report = self.recover()
            else:
                self._load()
        except BaseException:
            self._release()  # no descriptor left behind by a failed open
            raise

    def _release(self) -> StorageIOError | None:
        """Close every file this object holds (without syncing); returns the first error."""
        self._closed = True
        error: StorageIOError | None = None
        for seg in self._segments.values():
            if seg is not None:
                try:
                    seg.close()
                except StorageIOError as e:
                    error = error or e
        self.state.close()
        if self.lock is not None:
            try:
                self.lock.close()
            except StorageIOError as e:
                error = error or e
        return error

    # ------------------------------------------------------------------ opening
    def _list_bases(self) -> list[int]:
        bases = []
        self._listed = names = fs.listdir(self.path)  # (_load looks at the rest too)
        for name in names:
            if name.endswith(LOG_SUFFIX):
                base = name_to_offset(name)
                if base is not None:
                    bases.append(base)
        bases.sort()
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

    def _load(self) -> None:
        bases = self._list_bases()
        names = self._listed
        durable = self.state.durable()
        log_start = durable[0] if durable else (bases[0] if bases else 0)
        if bases:
            log_start = max(log_start, bases[0])
        # Segments wholly below the log start are leftovers of an interrupted
        # deletion, or were the active segment when delete_records moved the
        # start past them: invisible, and unlinked now (no retention pass would
        # see them again).
        keep = [b for i, b in enumerate(bases) if i + 1 >= len(bases) or bases[i + 1] > log_start]
        # Index files older than every segment: left by a deletion whose unlink of
        # the .log succeeded and of an index failed (recovery would remove them, but
        # a handle that closes cleanly after the error never runs it).
        orphans = [
            n
            for n in names
            if n.endswith((INDEX_SUFFIX, TIMEINDEX_SUFFIX))
            and (b := name_to_offset(n)) is not None
            and (not keep or b < keep[0])
        ]
        if self.writable and (orphans or len(keep) < len(bases)):
            with self._locked():
                self._unlink_below(log_start)
                for name in orphans:
                    try:
                        fs.unlink(os.path.join(self.path, name))
                    except StorageIOError as e:
                        if e.errno != errno.ENOENT:
                            raise
        for b in keep:
            self._segments[b] = None
        if not keep:
            if not self.writable:
                raise StorageIOError(errno.ENOENT, "partition has no segments", self.path)
            with self._locked():
                if not self._list_bases():
                    self._segments[log_start] = self._new_segment(log_start, create=True)
                    self.state.write_durable(log_start, log_start)
                else:
                    self._segments.clear()
                    for b in self._list_bases():
                        self._segments[b] = None
        while True:
            try:
                self._active().load()
                break
            except StorageIOError as e:
                # Rolled and deleted by retention in another process since we
                # listed the directory: list it again (it always has a segment).
                bases = self._list_bases()
                if e.errno != errno.ENOENT or not bases:
                    raise
                self._segments.clear()
                for b in bases:
                    self._segments[b] = None
        if self.writable:
            with self._locked():
                self._refresh_locked()
                if self.state.durable() is None:
                    # A damaged state (its checksum fails): write the conservative values
                    # (the first segment's base, recovery point 0) so every process
                    # reads the same log start.
                    self.state.write_durable(self._segments.keys()[0], 0)
        else:
            self._refresh()

    def _unlink_below(self, log_start: int) -> None:
        """Delete the files of segments wholly below ``log_start`` (under the append lock)."""
        bases = self._list_bases()
        for i, base in enumerate(bases[:-1]):
            if bases[i + 1] > log_start:
                break
            stem = os.path.join(self.path, offset_to_name(base))
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
                try:
                    fs.unlink(stem + suffix)
                except StorageIOError as e:
                    if e.errno != errno.ENOENT:
                        raise

    def _segment(self, base: int) -> Segment:
        seg = self._segments[base]
        if seg is None:
            seg = self._new_segment(base)
            try:
                seg.load()
            except BaseException:
                seg.close()
                raise
            self._segments[base] = seg
        return seg  # type: ignore[no-any-return]

    def _active(self) -> Segment:
        return self._segment(self._segments.keys()[-1])

    # ------------------------------------------------------------------ tail
    def _refresh(self) -> Segment:
        """Learn of frames and segments appended by other processes (no lock needed)."""
        active = self._active()
        active.refresh()
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
            active.refresh()
        return active

    def _next_existing(self, nxt: int) -> int | None:
        """``nxt`` if its segment file exists; if retention (in another process) deleted
        it while we were behind, the oldest segment after it; None if there is none yet."""
        if os.path.exists(os.path.join(self.path, f"{nxt:020d}{LOG_SUFFIX}")):
            return nxt
        later = [b for b in self._list_bases() if b > nxt]
        return later[0] if later else None

    def _refresh_locked(self) -> Segment:
        """As ``_refresh``, under the append lock: also repair what a crashed writer left."""
        active = self._active()
        result = active.refresh()
        while True:
            if result is not None and result.damage is not None:
                # A bad frame at the tail with nothing valid after it: torn by a
                # power cut or damaged from outside. Writing over it is what
                # recovery would do; zero it first so no reader mistakes the rest.
                self._zero_tail(active)
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
                    self._unsynced[nxt] = created
                else:
                    # (if found != nxt: deleted by retention while we were behind;
                    # never recreate it, the log goes on in the later segments)
                    nxt = found
                    self._segments[nxt] = None
            active = self._segment(nxt)
            result = active.refresh()
        return active

    def _zero_tail(self, seg: Segment) -> None:
        if seg._mm is None:
            return
        start, end = seg.tail, seg.allocated
        step = 1 << 20
        for pos in range(start, end, step):
            seg._mm[pos : min(end, pos + step)] = bytes(min(end, pos + step) - pos)

    @property
    def log_start_offset(self) -> int:
        start = self.state.log_start()
        first: int = self._segments.keys()[0]
        return max(start, first)

    @property
    def end_offset(self) -> int:
        """The log end offset: the offset the next appended record will get."""
        self._check_open()
        return self._refresh().next_offset

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"partition log {self.path} is closed")

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
        """Raise ``RecordTooLargeError`` if the batch is over ``max.message.bytes``."""
        if batch.size > self.config.max_message_bytes:
            raise RecordTooLargeError(
                f"record batch of {batch.size} bytes is larger than max.message.bytes "
                f"({self.config.max_message_bytes}) of {self.path}"
            )

    def append(self, batch: PreparedBatch, *, sync: bool = False) -> AppendResult:
        """Append one batch; its offsets are assigned here. See the module docstring."""
        return self.append_many((batch,), sync=sync)[0]

    def append_many(
        self, batches: Sequence[PreparedBatch], *, sync: bool = False
    ) -> list[AppendResult]:
        """Append several batches under one lock hold, in order."""
        self._check_open()
        if self._failed is not None:
            raise StorageIOError(
                errno.EIO,
                f"partition failed earlier ({self._failed}); reopen to recover",
                self.path,
            )
        for batch in batches:
            self.check_batch(batch)
        results: list[AppendResult] = []
        sealed: list[Segment] = []
        config = self.config
        log_append_time = config.message_timestamp_type == "LogAppendTime"
        with self._locked():
            active = self._refresh_locked()
            for batch in batches:
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
                    sealed.append(active)
                    active = self._roll_locked(active, base)
                active.append(head, last, max_ts, batch.payload)
                self._unsynced[active.base_offset] = active
                results.append(AppendResult(base, last, max_ts))
            self.state.set_hint(active.next_offset, active.base_offset, active.tail)
            self._written_seq += 1
            seq = self._written_seq
        hook = self.on_append
        if hook is not None:
            hook()
        if sealed:
            self._after_roll(sealed)
        if sync:
            self._sync_upto(seq)
        now = int(self._clock() * 1000)
        if now - self._last_retention_check >= RETENTION_CHECK_INTERVAL_MS:
            self._last_retention_check = now
            self.enforce_retention(now)
        return results

    def _time_to_roll(self, seg: Segment, max_ts: int) -> bool:
        first = seg.first_max_timestamp
        if first is None or first < 0 or max_ts < 0:
            return False
        return max_ts - first > self.config.segment_ms

    def _roll_locked(self, active: Segment, next_offset: int) -> Segment:
        active.seal(next_offset)
        crashpoint("roll.before_create")
        new = self._new_segment(next_offset, create=True)
        self._segments[next_offset] = new
        crashpoint("roll.created")
        active.trim()
        crashpoint("roll.trimmed")
        self.state.set_hint(next_offset, next_offset, 0)
        return new

    def roll(self) -> None:
        """Seal the active segment now (if it holds data) and start a new one."""
        self._check_open()
        with self._locked():
            active = self._refresh_locked()
            if active.tail == 0:
                return
            self._roll_locked(active, active.next_offset)
        try:
            self._flush_sealed([active])
        except StorageIOError as e:
            self._fail(e)  # fsyncgate, as in _sync_upto: never acknowledge anything again
            raise

    def _after_roll(self, sealed: Iterable[Segment]) -> None:
        """Have the background flusher make sealed segments durable (see ``_flusher``)."""
        segments = list(sealed)
        with self._flushes_done:
            self._pending_flushes += 1

        def job() -> None:
            try:
                self._flush_sealed(segments)
            except BaseException as e:  # recorded: appends refuse to go on after it
                if not self._closed:
                    self._fail(e)
            finally:
                with self._flushes_done:
                    self._pending_flushes -= 1
                    self._flushes_done.notify_all()

        try:
            flusher.submit(job)
        except BaseException:
            with self._flushes_done:
                self._pending_flushes -= 1
            raise

    def _flush_sealed(self, sealed: list[Segment]) -> None:
        """Sync sealed segments and their directory, then advance the recovery point."""
        upto = -1
        for seg in sealed:
            try:
                crashpoint("roll.flush")
                seg.sync()
                seg.sync_indexes()
            except (StorageIOError, ValueError):
                if seg.closed:  # deleted by retention meanwhile: nothing to keep
                    continue
                raise
            self._unsynced.pop(seg.base_offset, None)
            upto = max(upto, seg.next_offset)
        if upto >= 0:
            # The recovery point says everything below it is on disk: before it passes
            # a segment, that segment must be synced too, not only the ones sealed here
            # (a roll in another thread or process may still wait for its flusher).
            for seg in self._not_yet_recovered(upto, sealed):
                try:
                    seg.sync()
                    seg.sync_indexes()
                except (StorageIOError, ValueError):
                    if seg.closed:
                        continue
                    raise
                self._unsynced.pop(seg.base_offset, None)
        self._sync_dirs()
        crashpoint("roll.flushed")
        if upto < 0:
            return
        with self._locked():
            durable = self.state.durable()
            start, point = durable if durable else (self.log_start_offset, 0)
            if upto > point:
                self.state.write_durable(start, upto)
                crashpoint("roll.recovery_point")

    def _not_yet_recovered(self, upto: int, skip: list[Segment]) -> list[Segment]:
        """Segments below ``upto`` not wholly below the durable recovery point, but those
        in ``skip`` (cheap to sync again if another flush already synced them)."""
        with self._locked():
            durable = self.state.durable()
            point = durable[1] if durable else 0
            keys = list(self._segments.keys())
            out = []
            for i, base in enumerate(keys):
                if base >= upto:
                    break
                if i + 1 < len(keys) and keys[i + 1] <= point:
                    continue
                seg = self._segment(base)
                if all(seg is not s for s in skip):
                    out.append(seg)
            return out

    def _wait_for_flushes(self) -> None:
        with self._flushes_done:
            while self._pending_flushes:
                self._flushes_done.wait()

    # ------------------------------------------------------------------ durability
    def _sync_upto(self, seq: int) -> None:
        if self._synced_seq >= seq:
            return
        with self._sync_lock:
            if self._synced_seq >= seq:
                return
            if self._failed is not None:
                raise StorageIOError(errno.EIO, f"partition failed: {self._failed}", self.path)
            target = self._written_seq
            pending = list(self._unsynced.values())
            try:
                crashpoint("sync.before")
                new_dirs = False
                for seg in pending:
                    try:
                        seg.sync()
                    except (StorageIOError, ValueError):
                        if seg.closed:  # deleted by retention since: nothing to keep
                            continue
                        raise
                    if seg.base_offset not in self._dir_synced:
                        new_dirs = True
                crashpoint("sync.data_synced")
                if new_dirs:
                    self._sync_dirs()
                    self._dir_synced.update(s.base_offset for s in pending)
                crashpoint("sync.after")
            except StorageIOError as e:
                # fsyncgate: a failed fsync may have dropped the dirty pages, so a
                # retry could "succeed" without the data. Never acknowledge again.
                self._fail(e)
                raise
            for seg in pending:
                if seg.sealed:
                    self._unsynced.pop(seg.base_offset, None)
            self._synced_seq = target

    def _fail(self, e: BaseException) -> None:
        """A sync failed: refuse appends until reopened, and keep the directory unclean
        (unless the partition is gone: its topic was deleted meanwhile)."""
        if self._failed is None:
            self._failed = e
        if os.path.isdir(self.path):
            note_failed_sync(self.path)

    def _sync_dirs(self) -> None:
        """fsync the partition directory (new segments' entries) and, the first time,
        its parent: a directory's own fsync does not make its entry durable, and the
        partition directory may be new (``create_topic`` syncs only the topic's)."""
        fs.sync_dir(self.path)
        if not self._parent_synced:
            fs.sync_dir(os.path.dirname(self.path))
            self._parent_synced = True

    def flush(self) -> None:
        """Make everything appended so far (by this process) durable."""
        self._check_open()
        self._sync_upto(self._written_seq)

    # ------------------------------------------------------------------ reading
    def read(self, offset: int, max_bytes: int = 1 << 20) -> list[RecordBatch]:
        """Batches holding offsets from ``offset`` on, up to ``max_bytes`` (at least one batch).

        Whole batches are returned, so the first may start before ``offset``
        (the caller skips those records), as Kafka does. ``offset`` equal to
        the end offset gives ``[]``; below the log start or past the end
        raises ``OffsetOutOfRangeError``. Offsets in a gap read as the next
        batch.
        """
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
        keys = self._segments.keys()
        i = max(0, bisect.bisect_right(keys, offset) - 1)
        used = 0
        while i < len(keys):
            try:
                seg = self._segment(keys[i])
            except StorageIOError as e:
                if e.errno != errno.ENOENT:
                    raise
                # deleted by retention in another process since we listed it
                start = self._current_log_start()
                raise OffsetOutOfRangeError(
                    f"offset {offset} was deleted by retention; log starts at {start}",
                    offset=offset,
                    log_start_offset=start,
                    end_offset=end,
                ) from e
            u, done = seg.read(offset, max_bytes - used, seg.tail, out)
            used += u
            if not done or used >= max_bytes:
                break
            i += 1
        return out

    def _current_log_start(self) -> int:
        start = self.state.log_start()
        if start != self._log_start_seen:
            self._log_start_seen = start
            self._forget_below(start)
        first: int = self._segments.keys()[0]
        return max(start, first)

    def _forget_below(self, start: int) -> None:
        keys = list(self._segments.keys())
        for i, base in enumerate(keys[:-1]):
            if keys[i + 1] <= start:
                seg = self._segments.pop(base)
                self._unsynced.pop(base, None)  # deleted: nothing left to sync
                if seg is not None:
                    seg.close()
            else:
                break

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """The earliest ``(offset, timestamp)`` whose timestamp is >= ``timestamp``, or None."""
        self._check_open()
        self._refresh()
        start = self._current_log_start()
        for base in list(self._segments.keys()):
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
        """
        self._check_open()
        if not self.writable:
            return 0
        now = int(self._clock() * 1000) if now_ms is None else now_ms
        cfg = self.config
        rolled: list[Segment] = []
        with self._locked():
            active = self._refresh_locked()
            start = self._current_log_start()
            keys = list(self._segments.keys())
            segs = [self._segment(b) for b in keys]
            total = sum(s.size_bytes for s in segs)
            excess = total - cfg.retention_bytes if cfg.retention_bytes >= 0 else -1
            doomed: list[Segment] = []
            for i, seg in enumerate(segs):
                if seg.tail == 0:
                    break
                nxt = keys[i + 1] if i + 1 < len(keys) else seg.next_offset
                by_start = nxt <= start
                by_size = excess >= 0 and excess - seg.size_bytes >= 0
                by_time = cfg.retention_ms >= 0 and 0 <= seg.max_timestamp < now - cfg.retention_ms
                if not (by_start or by_size or by_time):
                    break
                doomed.append(seg)
                if by_size:
                    excess -= seg.size_bytes
            if not doomed:
                return 0
            if doomed[-1] is active:
                active = self._roll_locked(active, active.next_offset)
                rolled.append(doomed[-1])
            new_start = max(start, doomed[-1].next_offset)
            self._delete_segments_locked(doomed, new_start)
        if rolled:
            self._after_roll(rolled)
        return len(doomed)

    def _delete_segments_locked(self, doomed: list[Segment], new_start: int) -> None:
        durable = self.state.durable()
        point = durable[1] if durable else 0
        self.state.write_durable(new_start, max(point, 0), sync=True)
        if not self._parent_synced:
            self._sync_dirs()  # the state file's entry, in a new partition
        crashpoint("retention.start_moved")
        for seg in doomed:
            self._segments.pop(seg.base_offset, None)
            self._unsynced.pop(seg.base_offset, None)
            seg.delete_files()
            seg.close()
            crashpoint("retention.deleted_one")
        self._log_start_seen = new_start

    def delete_records(self, before_offset: int) -> int:
        """Move the log start offset up to ``before_offset``; returns the new log start.

        Records below it can no longer be read; whole segments below it are
        deleted at once. The new start is synced before this returns.
        """
        self._check_open()
        with self._locked():
            active = self._refresh_locked()
            end = active.next_offset
            start = self._current_log_start()
            if before_offset < 0 or before_offset > end:
                raise OffsetOutOfRangeError(
                    f"cannot delete records before {before_offset}: log is [{start}, {end}]",
                    offset=before_offset,
                    log_start_offset=start,
                    end_offset=end,
                )
            if before_offset <= start:
                return start
            keys = list(self._segments.keys())
            doomed = [
                self._segment(b) for i, b in enumerate(keys[:-1]) if keys[i + 1] <= before_offset
            ]
            if doomed:
                self._delete_segments_locked(doomed, before_offset)
            else:
                durable = self.state.durable()
                point = durable[1] if durable else 0
                self.state.write_durable(before_offset, point, sync=True)
                if not self._parent_synced:
                    self._sync_dirs()  # the state file's entry, in a new partition
                crashpoint("delete_records.start_moved")
                self._log_start_seen = before_offset
            return before_offset

    # ------------------------------------------------------------------ recovery
    def recover(self) -> RecoveryReport:
        """Check and repair after an unclean shutdown. Exclusive use of the directory only.

        From the segment holding the recovery point to the end: verify every
        frame, rebuild the indexes, truncate a torn tail, seal a segment whose
        seal was lost (leaving an offset gap up to the next segment), create a
        missing next segment. Corruption with valid data after it is kept and
        reported; reading it raises ``CorruptRecordError``.
        """
        report = RecoveryReport(self.path)
        for name in fs.listdir(self.path):
            full = os.path.join(self.path, name)
            stale = name.endswith(TEMP_SUFFIXES)
            if name.endswith((INDEX_SUFFIX, TIMEINDEX_SUFFIX)):
                stem = name.rsplit(".", 1)[0]
                stale = not os.path.exists(os.path.join(self.path, stem + LOG_SUFFIX))
            if stale:
                fs.unlink(full)
                report.removed_files.append(name)
                crashpoint("recover.removed_stale")
        bases = self._list_bases()
        durable = self.state.durable()
        log_start, point = durable if durable else (bases[0] if bases else 0, 0)
        if not bases:
            bases = [log_start]
            self._new_segment(log_start, create=True).close()
            report.segments_created.append(log_start)
        log_start = max(log_start, bases[0])
        if len(bases) > 1 and bases[1] <= log_start:
            # wholly below the log start: what retention would delete (see _load)
            self._unlink_below(log_start)
            bases = self._list_bases()
        for b in bases:
            self._segments[b] = None
        first = max(0, bisect.bisect_right(bases, point) - 1)
        touched: list[Segment] = []
        for b in bases[:first]:
            # Below the recovery point the log is trusted, but not its disposable
            # indexes: a cheap sanity check (Kafka's), and a rebuild if it fails.
            stem = os.path.join(self.path, f"{b:020d}")
            missing = not all(os.path.exists(stem + s) for s in (INDEX_SUFFIX, TIMEINDEX_SUFFIX))
            seg = self._segment(b)
            if missing or not seg.indexes_sane():
                seg.rebuild_indexes(exclusive=True)
                report.indexes_rebuilt += 1
                touched.append(seg)
        for i in range(first, len(bases)):
            seg = self._segment(bases[i])
            res = seg.rebuild_indexes(exclusive=True)
            crashpoint("recover.indexed")
            report.segments_scanned += 1
            report.indexes_rebuilt += 1
            touched.append(seg)
            for pos in res.corrupt:
                report.corrupt.append((seg.path, pos))
            is_last = i == len(bases) - 1
            if res.sealed:
                if not is_last and res.next_base != bases[i + 1]:
                    report.offset_gaps.append((res.next_base or 0, bases[i + 1]))
                continue
            if res.damage is not None:
                report.bytes_truncated += seg.truncate_to(res.end)
                report.truncated_at.append((seg.path, res.end))
                crashpoint("recover.truncated")
            elif _nonzero_after(seg, res.end):
                # A frame written but never published (a crash before its length
                # word was stored): the bytes after the end are not zeros. Drop
                # them, or a later, shorter frame would leave them after the tail.
                report.bytes_truncated += seg.truncate_to(res.end)
                report.truncated_at.append((seg.path, res.end))
                crashpoint("recover.truncated")
            if not is_last:
                # The seal was lost (power cut after a roll): end this segment here
                # and continue at the next one; the offsets between are gone.
                if res.next_offset != bases[i + 1]:
                    report.offset_gaps.append((res.next_offset, bases[i + 1]))
                seg.seal(bases[i + 1])
                seg.trim()
                crashpoint("recover.resealed")
        self._refresh_locked_exclusive(report)
        for seg in touched:
            seg.sync()
            seg.sync_indexes()
        fs.sync_dir(self.path)
        crashpoint("recover.synced")
        if self._active().next_offset < log_start:
            self._start_over_at(log_start, report)
        active = self._active()
        self.state.write_durable(log_start, active.next_offset, sync=True)
        forget_failed_sync(self.path)
        crashpoint("recover.done")
        self.state.set_hint(active.next_offset, active.base_offset, active.tail)
        return report

    def _start_over_at(self, log_start: int, report: RecoveryReport) -> None:
        """The log ends below its start (a power cut lost batches that ``delete_records``
        had already moved the start past): every segment is unreadable. As Kafka does,
        delete them all and start an empty segment at the log start, so new records
        get offsets a reader can ask for."""
        for base in list(self._segments.keys()):
            seg = self._segments.pop(base)
            if seg is not None:
                seg.close()
            stem = offset_to_name(base)
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
                full = os.path.join(self.path, stem + suffix)
                if os.path.exists(full):
                    fs.unlink(full)
                    report.removed_files.append(stem + suffix)
        self._segments[log_start] = self._new_segment(log_start, create=True)
        report.segments_created.append(log_start)
        fs.sync_dir(self.path)

    def _refresh_locked_exclusive(self, report: RecoveryReport) -> None:
        active = self._active()
        while active.sealed:
            nxt = active.next_base
            assert nxt is not None
            if nxt not in self._segments:
                self._segments[nxt] = self._new_segment(nxt, create=True)
                report.segments_created.append(nxt)
            active = self._segment(nxt)
            active.load()

    # ------------------------------------------------------------------ info
    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def size_bytes(self) -> int:
        """Bytes of frames on disk (excluding preallocated space)."""
        return sum(seg.size_bytes for seg in self.segments())

    def segments(self) -> list[Segment]:
        self._check_open()
        for attempt in range(10):
            self._refresh()
            self._current_log_start()  # forget segments other processes deleted
            try:
                return [self._segment(b) for b in self._segments]
            except StorageIOError as e:
                # deleted by retention elsewhere since: its log start has moved
                if e.errno != errno.ENOENT or attempt == 9:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._wait_for_flushes()
            if self.writable and self._unsynced:
                self._sync_upto(self._written_seq)
        finally:
            error = self._release()
        if error is not None:
            raise error

    def _check(self) -> None:
        """Assert every invariant of the log (tests call this after random operations)."""
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
