"""Opening a partition's log, and recovering it after an unclean shutdown (Kafka's LogLoader).

``LogLoader`` fills a new ``PartitionLog``'s view of its segments from the
directory, in one of two ways:

``load`` (every open; other processes may be using the directory):

1. List the segments (not those a merged rewrite supersedes while the
   cleaner's swap is under way or was interrupted: ``_list_bases``); read the
   durable log start. Segments wholly below it,
   and index files older than every segment, are leftovers of an interrupted
   deletion: unlink them (under the append lock).
2. With no segment at all, create the first one at the log start (under the
   append lock, after listing again: another process may have just done so).
3. Load the active segment (its tail), listing again if retention in another
   process deleted it meanwhile; then follow seals to the true end and, under
   the append lock, repair what a crashed writer left (``_refresh_locked``).

``recover`` (only with exclusive use of the directory: the data directory's
instance lock guarantees that no other process has it open):

1. Complete the cleaner's committed swaps, remove the segments a merged
   rewrite supersedes, and drop its uncommitted files (``_cleaner.finish_swaps``
   with ``sweep``: Kafka's first step of log recovery), then remove stale
   temporary files and index files without their ``.log``.
2. List the segments (creating the first if there is none) and unlink those
   wholly below the log start.
3. Below the recovery point the log is trusted: only check the indexes
   cheaply, and rebuild them if the check fails.
4. From the segment holding the recovery point to the end: verify every
   frame and rebuild the indexes; truncate a torn tail or bytes of a frame
   never published; seal a segment whose seal was lost (an offset gap up to
   the next segment); create a missing next segment.
5. Sync every segment touched (``Segment.sync_all``), then the directory.
6. If the log now ends below its start (a power cut lost batches that
   ``delete_records`` had moved the start past), start over with an empty
   segment at the log start.
7. Write the log start and the new recovery point (the end) durably; the
   partition is recovered; then set the tail hint.

Every step is idempotent, so a crash during recovery is repaired by the next
one (the ``recover.*`` crash points). Not thread-safe: it runs while the
``PartitionLog`` is being constructed (or by ``recover()`` before the log is
shared).
"""

from __future__ import annotations

import bisect
import errno
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
from ..errors import StorageIOError
from ._cleaner import finish_swaps
from ._datadir import forget_failed_sync
from ._retention import unlink_below
from ._segment import Segment

if TYPE_CHECKING:
    from ._partition import PartitionLog


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
    # the cleaner's files finished or dropped (not damage: an interrupted compaction)
    swaps_finished: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.bytes_truncated or self.corrupt or self.offset_gaps or self.removed_files)


class LogLoader:
    """Loads or recovers one ``PartitionLog``'s segments (see the module docstring)."""

    def __init__(self, log: PartitionLog) -> None:
        self.log = log

    # ------------------------------------------------------------------ opening
    def load(self) -> None:
        log = self.log
        bases = log._list_bases()
        names = log._listed
        durable = log.state.durable()
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
        if log.writable and (orphans or len(keep) < len(bases)):
            with log._locked():
                unlink_below(log, log_start)
                for name in orphans:
                    try:
                        fs.unlink(os.path.join(log.path, name))
                    except StorageIOError as e:
                        if e.errno != errno.ENOENT:
                            raise
        for b in keep:
            log._segments[b] = None
        if not keep:
            if not log.writable:
                raise StorageIOError(errno.ENOENT, "partition has no segments", log.path)
            with log._locked():
                if not log._list_bases():
                    log._segments[log_start] = log._new_segment(log_start, create=True)
                    log.state.write_durable(log_start, log_start)
                else:
                    log._segments.clear()
                    for b in log._list_bases():
                        log._segments[b] = None
        while True:
            try:
                log._active().load()
                break
            except StorageIOError as e:
                # Rolled and deleted by retention in another process since we
                # listed the directory: list it again (it always has a segment).
                bases = log._list_bases()
                if e.errno != errno.ENOENT or not bases:
                    raise
                for seg in log._segments.values():
                    if seg is not None:
                        seg.close_quietly()  # (no descriptor left behind)
                log._segments.clear()
                for b in bases:
                    log._segments[b] = None
        if log.writable:
            with log._locked():
                log._refresh_locked()
                if log.state.durable() is None:
                    # A damaged state (its checksum fails): write the conservative values
                    # (the first segment's base, recovery point 0) so every process
                    # reads the same log start.
                    log.state.write_durable(log._segments.keys()[0], 0)
        else:
            log._refresh()

    # ------------------------------------------------------------------ recovery
    def recover(self) -> RecoveryReport:
        """Check and repair after an unclean shutdown. Exclusive use of the directory only.

        From the segment holding the recovery point to the end: verify every
        frame, rebuild the indexes, truncate a torn tail, seal a segment whose
        seal was lost (leaving an offset gap up to the next segment), create a
        missing next segment. Corruption with valid data after it is kept and
        reported; reading it raises ``CorruptRecordError``.
        """
        log = self.log
        report = RecoveryReport(log.path)
        report.swaps_finished = finish_swaps(log.path, sweep=True)
        self._remove_stale(report)
        bases = log._list_bases()
        durable = log.state.durable()
        log_start, point = durable if durable else (bases[0] if bases else 0, 0)
        if not bases:
            bases = [log_start]
            log._new_segment(log_start, create=True).close()
            report.segments_created.append(log_start)
        log_start = max(log_start, bases[0])
        if len(bases) > 1 and bases[1] <= log_start:
            # wholly below the log start: what retention would delete (see load)
            unlink_below(log, log_start)
            bases = log._list_bases()
        for b in bases:
            log._segments[b] = None
        first = max(0, bisect.bisect_right(bases, point) - 1)
        touched = self._check_trusted(bases[:first], report)
        for i in range(first, len(bases)):
            touched.append(self._recover_segment(bases, i, report))
        self._refresh_locked_exclusive(report)
        for seg in touched:
            seg.sync_all()
        fs.sync_dir(log.path)
        crashpoint("recover.synced")
        if log._active().next_offset < log_start:
            self._start_over_at(log_start, report)
        active = log._active()
        log.state.write_durable(log_start, active.next_offset, sync=True)
        forget_failed_sync(log.path)
        crashpoint("recover.done")
        log.state.set_hint(active.next_offset, active.base_offset, active.tail)
        return report

    def _remove_stale(self, report: RecoveryReport) -> None:
        """Remove temporary files and index files whose ``.log`` is gone."""
        path = self.log.path
        for name in fs.listdir(path):
            full = os.path.join(path, name)
            stale = name.endswith(TEMP_SUFFIXES)
            if name.endswith((INDEX_SUFFIX, TIMEINDEX_SUFFIX)):
                stem = name.rsplit(".", 1)[0]
                stale = not os.path.exists(os.path.join(path, stem + LOG_SUFFIX))
            if stale:
                fs.unlink(full)
                report.removed_files.append(name)
                crashpoint("recover.removed_stale")

    def _check_trusted(self, bases: list[int], report: RecoveryReport) -> list[Segment]:
        """Check the indexes of segments below the recovery point; returns those rebuilt."""
        log = self.log
        touched: list[Segment] = []
        for b in bases:
            # Below the recovery point the log is trusted, but not its disposable
            # indexes: a cheap sanity check (Kafka's), and a rebuild if it fails.
            stem = os.path.join(log.path, offset_to_name(b))
            missing = not all(os.path.exists(stem + s) for s in (INDEX_SUFFIX, TIMEINDEX_SUFFIX))
            seg = log._segment(b)
            if missing or not seg.indexes_sane():
                seg.rebuild_indexes(exclusive=True)
                report.indexes_rebuilt += 1
                touched.append(seg)
        return touched

    def _recover_segment(self, bases: list[int], i: int, report: RecoveryReport) -> Segment:
        """Verify and repair segment ``bases[i]`` (at or after the recovery point)."""
        seg = self.log._segment(bases[i])
        res = seg.rebuild_indexes(exclusive=True)
        crashpoint("recover.indexed")
        report.segments_scanned += 1
        report.indexes_rebuilt += 1
        for pos in res.corrupt:
            report.corrupt.append((seg.path, pos))
        is_last = i == len(bases) - 1
        if res.sealed:
            if not is_last and res.next_base != bases[i + 1]:
                report.offset_gaps.append((res.next_base or 0, bases[i + 1]))
            return seg
        if res.damage is not None:
            report.bytes_truncated += seg.truncate_to(res.end)
            report.truncated_at.append((seg.path, res.end))
            crashpoint("recover.truncated")
        elif seg.nonzero_after(res.end):
            # A frame written but never published (a crash before its length
            # word was stored): the bytes after the end are not zeros. Drop
            # them, or a later, shorter frame would leave them after the tail.
            report.bytes_truncated += seg.truncate_to(res.end)
            report.truncated_at.append((seg.path, res.end))
            crashpoint("recover.truncated")
            if is_last and res.corrupt:
                # The holes were stepped over by resynchronising on a trailing seal that
                # was just cut off (a power cut after a roll lost the next segment). In
                # an active segment nothing after a hole was synced (a sync covers all
                # that comes before it), and without the seal the hole would read as a
                # torn tail at the next recovery, after newer records: end here instead.
                again = seg.rebuild_indexes(exclusive=True)
                if again.damage is not None:
                    report.bytes_truncated += seg.truncate_to(again.end)
                    report.truncated_at.append((seg.path, again.end))
                    crashpoint("recover.truncated")
        if not is_last:
            # The seal was lost (power cut after a roll): end this segment here
            # and continue at the next one; the offsets between are gone.
            if res.next_offset != bases[i + 1]:
                report.offset_gaps.append((res.next_offset, bases[i + 1]))
            seg.seal(bases[i + 1])
            seg.trim()
            crashpoint("recover.resealed")
        return seg

    def _start_over_at(self, log_start: int, report: RecoveryReport) -> None:
        """The log ends below its start (a power cut lost batches that ``delete_records``
        had already moved the start past): every segment is unreadable. As Kafka does,
        delete them all and start an empty segment at the log start, so new records
        get offsets a reader can ask for."""
        log = self.log
        for base in list(log._segments.keys()):
            seg = log._segments.pop(base)
            if seg is not None:
                seg.close_quietly()  # (its files are deleted next)
            stem = offset_to_name(base)
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
                full = os.path.join(log.path, stem + suffix)
                if os.path.exists(full):
                    fs.unlink(full)
                    report.removed_files.append(stem + suffix)
        log._segments[log_start] = log._new_segment(log_start, create=True)
        report.segments_created.append(log_start)
        fs.sync_dir(log.path)

    def _refresh_locked_exclusive(self, report: RecoveryReport) -> None:
        log = self.log
        active = log._active()
        while active.sealed:
            nxt = active.next_base
            assert nxt is not None
            if nxt not in log._segments:
                log._segments[nxt] = log._new_segment(nxt, create=True)
                report.segments_created.append(nxt)
            active = log._segment(nxt)
            active.load()
