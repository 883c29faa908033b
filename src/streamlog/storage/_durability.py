"""What of a partition's log is durable: syncs, group commit, the recovery point, fsyncgate.

``Durability`` is one ``PartitionLog``'s bookkeeping of what it wrote and what
is on disk. It owns:

- ``unsynced``: segments written through this object since their last sync
  (the active one, and sealed ones whose flush has not finished);
- ``written_seq`` / ``synced_seq``: a counter of append lock holds and the
  last one known durable, so threads waiting for a sync share one (group
  commit);
- ``dir_synced`` / ``parent_synced``: segments whose directory entry is
  durable, and whether the partition's entry in its topic directory is;
- the flushes of sealed segments handed to the background flusher;
- ``failed``: the first failed sync. After it nothing is acknowledged again
  until the partition is reopened and recovered (fsyncgate: a failed fsync
  may have dropped the dirty pages, so a retry could "succeed" without the
  data), and the partition directory is noted so it is not marked clean.

Protocols:

1. ``sync_upto(seq)`` (``append(sync=True)``, ``flush``, ``close``): under
   ``_sync_lock``, fdatasync every unsynced segment's log, then the directory
   if a segment is new; a thread whose sequence a concurrent sync covered
   returns without syncing.
2. After a roll, ``after_roll`` hands the sealed segments to the flusher;
   ``flush_sealed`` syncs each one with ``Segment.sync_all`` (log, then
   indexes), then every segment below it not yet under the recovery point,
   then the directories, and only then moves the recovery point (under the
   append lock) past them. The recovery point never passes a segment that is
   not synced: recovery trusts everything below it.
3. A segment closed while we sync it was deleted by retention meanwhile:
   nothing to keep, so its failure is ignored.
4. ``close_sync`` (``PartitionLog.close``): the segments' data first, then the
   release of every descriptor, then the directories, so that a process with
   no descriptor to spare can close. Failures are recorded as in 1.

Thread-safe: syncs are serialised by ``_sync_lock`` (and per file by
``Segment.sync``), the flush count by its condition, and the recovery point
is written under the append lock. Process-safe: each process syncs what it
wrote; the recovery point in the shared state file only moves forward.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .._fs import crashpoint, fs
from ..errors import StorageIOError
from ._datadir import note_failed_sync
from ._flusher import flusher
from ._segment import Segment

if TYPE_CHECKING:
    from ._partition import PartitionLog


def _synced(seg: Segment, *, indexes: bool) -> bool:
    """Sync ``seg``'s log (and, with ``indexes``, its indexes after it: ``sync_all``).

    False if the segment was closed meanwhile: deleted by retention, so there
    is nothing to keep and its failure does not count.
    """
    try:
        if indexes:
            seg.sync_all()
        else:
            seg.sync()
    except (StorageIOError, ValueError):
        if seg.closed:
            return False
        raise
    return True


class Durability:
    """One partition log's sync bookkeeping (see the module docstring)."""

    def __init__(self, log: PartitionLog) -> None:
        self.log = log
        self.failed: BaseException | None = None
        self.unsynced: dict[int, Segment] = {}
        self.dir_synced: set[int] = set()
        self.parent_synced = False  # this partition's entry in its topic directory
        self._sync_lock = threading.Lock()
        self._flushes_done = threading.Condition(threading.Lock())
        self._pending_flushes = 0
        self.written_seq = 0
        self.synced_seq = 0

    # ------------------------------------------------------------------ sealed segments
    def after_roll(self, sealed: Iterable[Segment]) -> None:
        """Have the background flusher make sealed segments durable (see ``_flusher``)."""
        segments = list(sealed)
        with self._flushes_done:
            self._pending_flushes += 1

        def job() -> None:
            try:
                self.flush_sealed(segments)
            except BaseException as e:  # recorded: appends refuse to go on after it
                if not self.log._closed:
                    self.fail(e)
            finally:
                with self._flushes_done:
                    self._pending_flushes -= 1
                    self._flushes_done.notify_all()

        try:
            flusher.submit(job)
        except Exception:
            # No flusher thread (say, none can be started): the segments are sealed
            # all the same, so flush them here rather than fail what sealed them.
            job()

    def flush_sealed(self, sealed: list[Segment]) -> None:
        """Sync sealed segments and their directory, then advance the recovery point."""
        log = self.log
        upto = -1
        for seg in sealed:
            crashpoint("roll.flush")
            if not _synced(seg, indexes=True):
                continue  # deleted by retention meanwhile: nothing to keep
            self.unsynced.pop(seg.base_offset, None)
            upto = max(upto, seg.next_offset)
            if seg.sealed:
                seg.freeze_indexes()  # (synced: its indexes never change again)
        if upto >= 0:
            # The recovery point says everything below it is on disk: before it passes
            # a segment, that segment must be synced too, not only the ones sealed here
            # (a roll in another thread or process may still wait for its flusher).
            for seg in self._not_yet_recovered(upto, sealed):
                if _synced(seg, indexes=True):
                    self.unsynced.pop(seg.base_offset, None)
        self.sync_dirs()
        crashpoint("roll.flushed")
        if upto < 0:
            return
        with log._locked():
            durable = log.state.durable()
            start, point = durable if durable else (log.log_start_offset, 0)
            if upto > point:
                log.state.write_durable(start, upto)
                crashpoint("roll.recovery_point")

    def _not_yet_recovered(self, upto: int, skip: list[Segment]) -> list[Segment]:
        """Segments below ``upto`` not wholly below the durable recovery point, but those
        in ``skip`` (cheap to sync again if another flush already synced them)."""
        log = self.log
        with log._locked():
            log._notice_cleaning()  # (the cleaner may have merged segments we list)
            durable = log.state.durable()
            point = durable[1] if durable else 0
            keys = list(log._segments.keys())
            out = []
            for i, base in enumerate(keys):
                if base >= upto:
                    break
                if i + 1 < len(keys) and keys[i + 1] <= point:
                    continue
                if base not in log._segments:
                    continue  # (forgotten: merged into the segment before it)
                seg = log._segment(base)
                if all(seg is not s for s in skip):
                    out.append(seg)
            return out

    def wait_for_flushes(self) -> None:
        with self._flushes_done:
            while self._pending_flushes:
                self._flushes_done.wait()

    # ------------------------------------------------------------------ acknowledgements
    def sync_upto(self, seq: int) -> None:
        """Make every append up to lock hold ``seq`` durable (group commit)."""
        if self.failed is not None:
            # (first: a sync that failed since, say the flusher's, is final even when
            # nothing was appended after the last sync; "every later sync refuses")
            raise StorageIOError(errno.EIO, f"partition failed: {self.failed}", self.log.path)
        if self.synced_seq >= seq:
            return
        with self._sync_lock:
            if self.synced_seq >= seq:
                return
            if self.failed is not None:
                raise StorageIOError(errno.EIO, f"partition failed: {self.failed}", self.log.path)
            target = self.written_seq
            pending = list(self.unsynced.values())
            try:
                crashpoint("sync.before")
                new_dirs = False
                for seg in pending:
                    if not _synced(seg, indexes=False):
                        continue  # deleted by retention since: nothing to keep
                    if seg.base_offset not in self.dir_synced:
                        new_dirs = True
                crashpoint("sync.data_synced")
                if new_dirs:
                    self.sync_dirs()
                    self.dir_synced.update(s.base_offset for s in pending)
                crashpoint("sync.after")
            except StorageIOError as e:
                # fsyncgate: a failed fsync may have dropped the dirty pages, so a
                # retry could "succeed" without the data. Never acknowledge again.
                self.fail(e)
                raise
            for seg in pending:
                if seg.sealed:
                    self.unsynced.pop(seg.base_offset, None)
            self.synced_seq = target

    def close_sync(self, release: Callable[[], None]) -> None:
        """``sync_upto(written_seq)`` for ``PartitionLog.close``, in an order that needs
        no descriptor to spare: the segments' data (through the descriptors we hold),
        then ``release()`` (every map and descriptor of the log, called whatever
        happens), then the directories (each needs a new descriptor). A failure is
        recorded as in ``sync_upto`` (fsyncgate) and raised."""
        new_dirs = False
        try:
            with self._sync_lock:
                if self.failed is not None:
                    raise StorageIOError(
                        errno.EIO, f"partition failed: {self.failed}", self.log.path
                    )
                try:
                    crashpoint("sync.before")
                    for seg in list(self.unsynced.values()):
                        if not _synced(seg, indexes=False):
                            continue  # deleted by retention since: nothing to keep
                        if seg.base_offset not in self.dir_synced:
                            new_dirs = True
                    crashpoint("sync.data_synced")
                except StorageIOError as e:
                    self.fail(e)
                    raise
        finally:
            release()
        if new_dirs:
            try:
                self.sync_dirs()
            except StorageIOError as e:
                self.fail(e)
                raise
        crashpoint("sync.after")

    def fail(self, e: BaseException) -> None:
        """A sync failed: refuse appends until reopened, and keep the directory unclean
        (unless the partition is gone: its topic was deleted meanwhile)."""
        if self.failed is None:
            self.failed = e
        path = self.log.path
        if os.path.isdir(path):
            note_failed_sync(path)

    def sync_dirs(self) -> None:
        """fsync the partition directory (new segments' entries) and, the first time,
        its parent: a directory's own fsync does not make its entry durable, and the
        partition directory may be new (``create_topic`` syncs only the topic's)."""
        path = self.log.path
        fs.sync_dir(path)
        if not self.parent_synced:
            fs.sync_dir(os.path.dirname(path))
            self.parent_synced = True
