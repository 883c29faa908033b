"""Deleting a partition's old data: retention by time and size, and ``delete_records``.

Owns the log start offset's moves and the deletion of whole segments below
it. Functions of a ``PartitionLog`` (``log``); they use its segments, state,
append lock and durability bookkeeping.

Protocol (``enforce_retention``: a prefix of segments past ``retention.ms`` or
``retention.bytes``, or wholly below the log start; ``delete_records``: the
segments wholly below the new start), all under the append lock:

1. If the active segment itself must go, roll first, so the end offset is
   kept in a new empty segment (its flush goes to the background flusher).
2. Make the state file's directory entry durable (in a new partition), then
   write the new log start into the state file and sync it, *before* any file
   is deleted: a crash after this point leaves segments below the start,
   which the next open deletes. If the sync fails the old start is written
   back: the failed call hid nothing (``_move_start_locked``).
3. Delete each doomed segment's files (``.log`` first, see
   ``delete_segment_files``) and close it if it is loaded. The records are
   deleted from step 2 on: a file whose unlink fails now is left for the next
   pass (``unlink_leftovers``) or the next open, and is not the call's failure.

Sealed segments are not loaded to decide (``sealed_facts`` reads the seal at
the end of the file): a loaded segment keeps its descriptors.

Segments are unlinked, never truncated, so readers in other processes that
still map them read on safely; a process that sees the log start move
forgets the segments below it (``forget_below``). A segment whose ``.log``
was unlinked but an index was not is removed by the next open
(``unlink_below`` and the loader's orphan check).

Only ``cleanup.policy`` "delete" and "compact,delete" delete by time and size;
under "compact" alone the cleaner (``_cleaner``) shrinks the log instead, and
only ``delete_records`` moves the log start. A sealed segment the cleaner
emptied (a seal and nothing else) is deleted like any other.

Thread- and process-safe: the state file and the files are changed under the
append lock (``unlink_below`` during recovery runs with exclusive use of the
directory instead). ``forget_below`` changes only this object's view of the
segments, as reads do, and takes no lock.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import TYPE_CHECKING

from .._fs import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIMEINDEX_SUFFIX,
    crashpoint,
    fs,
    name_to_offset,
    offset_to_name,
)
from ..errors import OffsetOutOfRangeError, StorageIOError
from ._segment import SEAL_SIZE, Segment, delete_segment_files, peek_sealed

if TYPE_CHECKING:
    from ._partition import PartitionLog

_logger = logging.getLogger("streamlog.storage")


def enforce_retention(log: PartitionLog, now_ms: int | None = None) -> int:
    """Delete whole old segments by ``retention.ms`` and ``retention.bytes``.

    Only a prefix of segments goes; if every segment (the active one
    included) is past retention, a new empty segment is rolled first so
    the end offset is kept. Returns the number of segments deleted.
    """
    log._check_open()
    if not log.writable:
        return 0
    log._refuse_failed()  # (fsyncgate: see _move_start_locked)
    now = int(log._clock() * 1000) if now_ms is None else now_ms
    rolled: list[Segment] = []
    try:
        with log._locked():
            if log._leftovers:
                try:
                    unlink_leftovers(log)
                except StorageIOError as e:
                    _logger.warning("could not delete leftovers in %s: %s", log.path, e)
            return _enforce_locked(log, now, rolled)
    finally:
        if rolled:
            log._durability.after_roll(rolled)  # the roll happened, whatever followed


def _enforce_locked(log: PartitionLog, now: int, rolled: list[Segment]) -> int:
    cfg = log.config
    active = log._refresh_locked()
    start = log._current_log_start()
    keys = list(log._segments.keys())
    # (tail, size in bytes, max timestamp, next offset) of each segment; sealed ones are
    # not loaded for this (see ``sealed_facts``)
    facts = [sealed_facts(log, b) for b in keys[:-1]]
    facts.append((active.tail, active.size_bytes, active.max_timestamp, active.next_offset))
    total = sum(f[1] for f in facts)
    # (a pure "compact" policy keeps old segments: the cleaner shrinks them instead)
    excess = total - cfg.retention_bytes if cfg.retention_bytes >= 0 and cfg.deletes else -1
    doomed: list[int] = []
    for i, (tail, size, max_ts, next_offset) in enumerate(facts):
        if tail == 0 and i == len(facts) - 1:
            break  # an empty active segment (a sealed one is empty when cleaned empty)
        nxt = keys[i + 1] if i + 1 < len(keys) else next_offset
        by_start = nxt <= start
        by_size = excess >= 0 and excess - size >= 0
        by_time = cfg.deletes and cfg.retention_ms >= 0 and 0 <= max_ts < now - cfg.retention_ms
        if not (by_start or by_size or by_time):
            break
        doomed.append(keys[i])
        if by_size:
            excess -= size
    if not doomed:
        return 0
    last_next = facts[len(doomed) - 1][3]
    if doomed[-1] == active.base_offset:
        try:
            log._roll_locked(active, active.next_offset)
        finally:
            if active.sealed:  # (sealed, even if the roll failed after that)
                rolled.append(active)
        last_next = active.next_offset
    _delete_segments_locked(log, doomed, max(start, last_next))
    return len(doomed)


def sealed_facts(log: PartitionLog, base: int) -> tuple[int, int, int, int]:
    """``(tail, size in bytes, max timestamp, next offset)`` of the sealed segment at
    ``base``: from its object if it is loaded, else from the seal its file ends with,
    read without loading it (a loaded segment keeps several descriptors for as long as
    the log is open); cached, since a sealed segment never changes. A segment that does
    not end with a seal is loaded."""
    seg = log._segments.get(base)
    if seg is None:
        facts = log._sealed_facts.get(base)
        if facts is None:
            peeked = peek_sealed(log.path, base)
            if peeked is not None:
                tail, max_ts, next_base = peeked
                facts = (tail, tail + SEAL_SIZE, max_ts, next_base)
                log._sealed_facts[base] = facts
        if facts is not None:
            return facts
        seg = log._segment(base)
    return seg.tail, seg.size_bytes, seg.max_timestamp, seg.next_offset


def _move_start_locked(log: PartitionLog, new_start: int) -> None:
    """Write the new log start into the state file and sync it; on failure put the old
    value back, so a failed call has changed nothing this process (or another) sees.

    The state file's directory entry is made durable first (in a new partition),
    so that nothing can fail once the new start is visible. A failed sync fails
    the partition, as any failed sync does (fsyncgate: a later "successful" sync of
    the state could lie, and a log start acknowledged then go back at a power cut).
    """
    durability = log._durability
    try:
        if not durability.parent_synced:
            durability.sync_dirs()  # the state file's entry, in a new partition
    except StorageIOError as e:
        durability.fail(e)
        raise
    durable = log.state.durable()
    point = durable[1] if durable else 0
    try:
        log.state.write_durable(new_start, max(point, 0), sync=True)
    except BaseException as e:
        if durable is not None:
            log.state.write_durable(*durable)  # (not synced: the old value is on disk)
        if isinstance(e, StorageIOError):
            durability.fail(e)
        raise


def _delete_segments_locked(log: PartitionLog, doomed: list[int], new_start: int) -> None:
    """Move the log start to ``new_start`` (durably), then delete the segments whose
    base offsets are ``doomed`` (loaded or not).

    Once the new start is durable the records below it are deleted, whatever
    follows: a file that cannot be unlinked is left for the next open (which
    removes segments below the log start and orphan indexes) and for the next
    retention pass (``unlink_leftovers``), and is not this call's failure. Every
    doomed segment that is loaded is closed, whatever happens to its files.
    """
    _move_start_locked(log, new_start)
    crashpoint("retention.start_moved")
    log._log_start_seen = new_start
    for base in doomed:
        seg = log._segments.pop(base, None)
        log._durability.unsynced.pop(base, None)
        log._sealed_facts.pop(base, None)
        try:
            delete_segment_files(log.path, base)
        except StorageIOError as e:
            log._leftovers = True
            _logger.warning(
                "could not delete segment %d of %s (left for later): %s", base, log.path, e
            )
        finally:
            if seg is not None:
                seg.close_quietly()
        crashpoint("retention.deleted_one")


def unlink_leftovers(log: PartitionLog) -> None:
    """Retry the deletion of files a failed unlink left below the log start (under the
    append lock): segments wholly below it, and index files older than every segment."""
    start = log.state.log_start()
    if start < 0:
        return
    unlink_below(log, start)
    first = log._list_bases()
    for name in log._listed:
        base = name_to_offset(name)
        if (
            base is not None
            and name.endswith((INDEX_SUFFIX, TIMEINDEX_SUFFIX))
            and (not first or base < first[0])
        ):
            _unlink_quietly(os.path.join(log.path, name))
    log._leftovers = False


def _unlink_quietly(path: str) -> None:
    try:
        fs.unlink(path)
    except StorageIOError as e:
        if e.errno != errno.ENOENT:
            raise


def delete_records(log: PartitionLog, before_offset: int) -> int:
    """Move the log start offset up to ``before_offset``; returns the new log start.

    Records below it can no longer be read; whole segments below it are
    deleted at once. The new start is synced before this returns.
    """
    log._check_open()
    log._refuse_failed()  # (fsyncgate: see _move_start_locked)
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
        doomed = [b for i, b in enumerate(keys[:-1]) if keys[i + 1] <= before_offset]
        if doomed:
            _delete_segments_locked(log, doomed, before_offset)
        else:
            _move_start_locked(log, before_offset)
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
            log._sealed_facts.pop(base, None)
            if seg is not None:
                seg.close_quietly()
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
