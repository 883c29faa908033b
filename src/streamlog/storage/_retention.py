"""Deleting a partition's old data: retention by time and size, and ``delete_records``.

Owns the log start offset's moves and the deletion of whole segments below
it. Functions of a ``PartitionLog`` (``log``); they use its segments, state,
append lock and durability bookkeeping.

Protocol (``enforce_retention``: a prefix of segments past ``retention.ms`` or
``retention.bytes``, or wholly below the log start; ``delete_records``: the
segments wholly below the new start), all under the append lock:

1. If the active segment itself must go, roll first, so the end offset is
   kept in a new empty segment (its flush goes to the background flusher).
2. Write the new log start into the state file and sync it (and, in a new
   partition, the directories that make the state file's entry durable),
   *before* any file is deleted: a crash after this point leaves segments
   below the start, which the next open deletes.
3. Delete each doomed segment's files (``.log`` first, see
   ``Segment.delete_files``) and close it.

Segments are unlinked, never truncated, so readers in other processes that
still map them read on safely; a process that sees the log start move
forgets the segments below it (``forget_below``). A segment whose ``.log``
was unlinked but an index was not is removed by the next open
(``unlink_below`` and the loader's orphan check).

Thread- and process-safe: the state file and the files are changed under the
append lock (``unlink_below`` during recovery runs with exclusive use of the
directory instead). ``forget_below`` changes only this object's view of the
segments, as reads do, and takes no lock.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from .._fs import INDEX_SUFFIX, LOG_SUFFIX, TIMEINDEX_SUFFIX, crashpoint, fs, offset_to_name
from ..errors import OffsetOutOfRangeError, StorageIOError
from ._segment import Segment

if TYPE_CHECKING:
    from ._partition import PartitionLog


def enforce_retention(log: PartitionLog, now_ms: int | None = None) -> int:
    """Delete whole old segments by ``retention.ms`` and ``retention.bytes``.

    Only a prefix of segments goes; if every segment (the active one
    included) is past retention, a new empty segment is rolled first so
    the end offset is kept. Returns the number of segments deleted.
    """
    log._check_open()
    if not log.writable:
        return 0
    now = int(log._clock() * 1000) if now_ms is None else now_ms
    cfg = log.config
    rolled: list[Segment] = []
    with log._locked():
        active = log._refresh_locked()
        start = log._current_log_start()
        keys = list(log._segments.keys())
        segs = [log._segment(b) for b in keys]
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
            active = log._roll_locked(active, active.next_offset)
            rolled.append(doomed[-1])
        new_start = max(start, doomed[-1].next_offset)
        _delete_segments_locked(log, doomed, new_start)
    if rolled:
        log._durability.after_roll(rolled)
    return len(doomed)


def _delete_segments_locked(log: PartitionLog, doomed: list[Segment], new_start: int) -> None:
    durable = log.state.durable()
    point = durable[1] if durable else 0
    log.state.write_durable(new_start, max(point, 0), sync=True)
    if not log._durability.parent_synced:
        log._durability.sync_dirs()  # the state file's entry, in a new partition
    crashpoint("retention.start_moved")
    for seg in doomed:
        log._segments.pop(seg.base_offset, None)
        log._durability.unsynced.pop(seg.base_offset, None)
        seg.delete_files()
        seg.close()
        crashpoint("retention.deleted_one")
    log._log_start_seen = new_start


def delete_records(log: PartitionLog, before_offset: int) -> int:
    """Move the log start offset up to ``before_offset``; returns the new log start.

    Records below it can no longer be read; whole segments below it are
    deleted at once. The new start is synced before this returns.
    """
    log._check_open()
    with log._locked():
        active = log._refresh_locked()
        end = active.next_offset
        start = log._current_log_start()
        if before_offset < 0 or before_offset > end:
            raise OffsetOutOfRangeError(
                f"cannot delete records before {before_offset}: log is [{start}, {end}]",
                offset=before_offset,
                log_start_offset=start,
                end_offset=end,
            )
        if before_offset <= start:
            return start
        keys = list(log._segments.keys())
        doomed = [log._segment(b) for i, b in enumerate(keys[:-1]) if keys[i + 1] <= before_offset]
        if doomed:
            _delete_segments_locked(log, doomed, before_offset)
        else:
            durable = log.state.durable()
            point = durable[1] if durable else 0
            log.state.write_durable(before_offset, point, sync=True)
            if not log._durability.parent_synced:
                log._durability.sync_dirs()  # the state file's entry, in a new partition
            crashpoint("delete_records.start_moved")
            log._log_start_seen = before_offset
        return before_offset


def forget_below(log: PartitionLog, start: int) -> None:
    """Drop from ``log``'s view (and close) the segments wholly below ``start``: another
    process, or this one, deleted them."""
    keys = list(log._segments.keys())
    for i, base in enumerate(keys[:-1]):
        if keys[i + 1] <= start:
            seg = log._segments.pop(base)
            log._durability.unsynced.pop(base, None)  # deleted: nothing left to sync
            if seg is not None:
                seg.close()
        else:
            break


def unlink_below(log: PartitionLog, log_start: int) -> None:
    """Delete the files of segments wholly below ``log_start`` (under the append lock)."""
    bases = log._list_bases()
    for i, base in enumerate(bases[:-1]):
        if bases[i + 1] > log_start:
            break
        stem = os.path.join(log.path, offset_to_name(base))
        for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            try:
                fs.unlink(stem + suffix)
            except StorageIOError as e:
                if e.errno != errno.ENOENT:
                    raise
