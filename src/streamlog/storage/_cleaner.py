"""Log compaction: Kafka's log cleaner, for one partition at a time.

A compacted topic (``cleanup.policy`` "compact" or "compact,delete") keeps at
least the latest record of every key. ``LogCleaner.clean`` rewrites a
partition's sealed segments without the records a later record of the same
key supersedes, the tombstones whose delete horizon has passed, and the
records of aborted transactions, and merges consecutive small segments into
one. Offsets never change (a removed record leaves a gap, which reads skip)
and the order never changes.

Files of a partition directory the cleaner adds (see ``_partition``)::

    <partition>/
      cleaner-checkpoint      32 bytes: u32 magic 'SLCK', u32 version 2,
                              i64 first dirty offset, i64 tombstones due (ms: the
                              earliest delete horizon of a tombstone the last round
                              kept, -1 if none), u64 xxh3-64 of bytes [0, 24);
                              replaced atomically (``fs.write_atomic``). Version 1
                              (24 bytes, no due time) is still read. Lost or
                              damaged: the whole log counts as dirty (more work,
                              same result)
      .clean.lock             flock: held by the one cleaner of this partition
      <base>.log.cleaned      the rewrite of a group of segments being written
      <base>.index.cleaned    (and its .index/.timeindex), named by the group's
                              first base offset
      <base>.log.swap         ... written and synced: the rewrite is committed
                              once the ``.log.swap`` name exists

What is cleaned (Kafka's rules, per round):

- the *cleanable* segments: sealed segments wholly below the first
  uncleanable offset, which is the smallest of the active segment's base, the
  last stable offset (no open transaction is touched) and the base of the
  first segment holding a record newer than ``min.compaction.lag.ms``;
- the *dirty* part: from the checkpoint (the end of the last round) to the end
  of the cleanable segments. An ``OffsetMap`` (key hash -> latest offset) of
  the dirty part is built first; it is bounded by ``dedupe_buffer_size``: when
  it is full, the round cleans up to where it got and the next round goes on;
- every cleanable segment from the log start up to there is rewritten: a
  record is kept if no later offset of its key is in the map; a tombstone (a
  null value) only until its segment's delete horizon, which the first
  cleaning of a segment sets to now + ``delete.retention.ms`` (KIP-534; kept in
  the rewritten segment's seal, ``ATTR_DELETE_HORIZON``); a record without a
  key is dropped (Kafka does so too); a batch of an aborted transaction is
  dropped; transaction markers are kept; the last batch of every producer id
  the partition remembers is kept whole, so idempotence and transaction state
  rebuilt from the log are what they were; a batch left with no record is
  dropped, one left with some is written with explicit offset deltas and its
  original base offset, last offset delta, producer fields and timestamps;
  the last batch of the round (of the last cleanable segment) is kept whole,
  so that the log never ends in a gap.

Merging (Kafka's ``groupSegmentsBySize``, on the cleaned sizes): the cleaned
segments are grouped, in order, and each group is written as one segment named
by its first base offset and sealed with its last segment's next base offset. A
segment joins the group before it while the group's frames plus a seal stay
within ``segment.bytes``, its offsets stay within 32 bits of the group's base
(``MAX_RELATIVE``), both indexes stay within ``segment.index.bytes``, and the
tombstones it keeps have the same delete horizon as those the group keeps (the
horizon is kept per segment: merging must not bring a tombstone's removal
forward, nor put it off indefinitely). A group of one segment that would not
change is left alone.

Swap protocol, per group of segments ``B1 < B2 < ... < Bn`` (every step a
``crashpoint("clean.*")``):

1. before the first swap, fdatasync the cleaned segments not yet below the
   recovery point (their records may supersede synced ones), then the directory
   (their names: a roll's new segment is synced by its flush, which may not have
   run yet);
2. write ``<B1>.log.cleaned`` (frames, then the seal) and the two index files
   ``.cleaned``; fdatasync them (``clean.cleaned_written``);
3. rename the index files, then the log, from ``.cleaned`` to ``.swap``, sync
   the directory (``clean.swap_renamed``): the rewrite is committed;
4. under the append lock, if ``B1`` still exists (retention deletes a prefix of
   segments, so then the whole group is gone; the swap is dropped): rename
   ``.log.swap`` over ``<B1>.log`` (one atomic rename: the name always names a
   whole segment, the old or the new one) (``clean.log_replaced``). From here
   the log is the merged segment, whose seal skips ``B2..Bn``: they are
   *superseded*. If there are any: sync the directory (``clean.merged_synced``:
   the rename is durable before anything is unlinked), bump the clean
   generation, unlink each superseded segment's files, the log first
   (``clean.superseded_deleted``). Then the index files ``.swap`` over theirs
   (``clean.indexes_replaced``), and bump the clean generation;
5. after every group: sync the directory, bump the generation, write the
   checkpoint (``clean.checkpointed``).

Until the last ``.swap`` name of a group is gone, its superseded segments may
still be listed: ``superseded`` finds them (only for the stems that have a
``.swap`` file, so it costs nothing otherwise) and ``PartitionLog._list_bases``
leaves them out, so every opener sees the chain of seals, never a segment twice.
``finish_swaps`` completes a committed swap (a ``.log.swap`` whose seal ends at
the live segment's end or at a later segment's base), removes the segments it
supersedes, and removes uncommitted leftovers; it runs at the start of every
round (under the locks) and in recovery, where it also looks for superseded
segments with no ``.swap`` left (a power cut may keep the unlinks and lose the
last rename). Old files are renamed over or unlinked, never truncated or
written, so a process that maps one reads on in it safely (same offsets, more
records); the generation makes every process drop its cached sealed segments
and list the directory again (``PartitionLog._notice_cleaning``), and a reader
that finds a segment gone lists it again too.

Thread- and process-safe: the partition's clean lock (``.clean.lock``) admits
one cleaner; files are replaced under the append lock, so a writer, retention
and ``delete_records`` see either the old or the new segments of a group.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack
import xxhash
import zstandard

from .._fs import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIMEINDEX_SUFFIX,
    crashpoint,
    fs,
    name_to_offset,
    offset_to_name,
)
from ..errors import CorruptRecordError, StorageError, StorageIOError
from . import _codec as codec
from ._retention import sealed_facts
from ._segment import MAX_RELATIVE, SEAL_SIZE, Segment, _read_trailing_seal
from ._state import AppendLock

if TYPE_CHECKING:
    from ._partition import PartitionLog

__all__ = [
    "CHECKPOINT_NAME",
    "CLEAN_LOCK_NAME",
    "DEFAULT_DEDUPE_BUFFER_SIZE",
    "CleanResult",
    "LogCleaner",
    "OffsetMap",
    "finish_swaps",
    "read_checkpoint",
    "read_tombstones_due",
    "superseded",
]

_logger = logging.getLogger("streamlog.cleaner")

CHECKPOINT_NAME = "cleaner-checkpoint"
CLEAN_LOCK_NAME = ".clean.lock"
CLEANED = ".cleaned"
SWAP = ".swap"
DEFAULT_DEDUPE_BUFFER_SIZE = 32 * 1024 * 1024
_CHECKPOINT_V1 = struct.Struct("<IIqQ")
_CHECKPOINT = struct.Struct("<IIqqQ")
_CHECKPOINT_MAGIC = 0x4B434C53  # 'SLCK'
_OFFSET_ENTRY = struct.Struct("<II")
_TIME_ENTRY = struct.Struct("<qI")
_SUFFIXES = (INDEX_SUFFIX, TIMEINDEX_SUFFIX, LOG_SUFFIX)  # (the log last: the commit)
_SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX)  # (unlinked in this order)


class OffsetMap:
    """Key hash -> latest offset, with a bounded number of entries (Kafka's
    ``SkimpyOffsetMap``). Keys are hashed to 16 bytes (xxh3-128); two keys with one
    hash would make the older one's latest record look superseded, at odds of 2**-128
    per pair, which Kafka accepts too (MD5).

    ``memory`` is the budget in bytes; an entry is counted as ``BYTES_PER_ENTRY``
    (what a 16-byte ``bytes``, an int and a dict slot take in CPython), and, as in
    Kafka, the map is full at 90% of its slots. Not thread-safe (one cleaner)."""

    BYTES_PER_ENTRY = 128

    def __init__(self, memory: int = DEFAULT_DEDUPE_BUFFER_SIZE) -> None:
        self.slots = max(1, int(memory // self.BYTES_PER_ENTRY * 0.9))
        self._map: dict[bytes, int] = {}

    def put(self, key: bytes, offset: int) -> bool:
        """Record ``offset`` as ``key``'s latest; False (nothing recorded) when full."""
        h = xxhash.xxh3_128_digest(key)
        if len(self._map) >= self.slots and h not in self._map:
            return False
        self._map[h] = offset
        return True

    def get(self, key: bytes) -> int:
        """The latest offset recorded for ``key``, or -1."""
        return self._map.get(xxhash.xxh3_128_digest(key), -1)

    def __len__(self) -> int:
        return len(self._map)


@dataclass
class CleanResult:
    """What one round did to one partition."""

    segments_cleaned: int = 0  # segments rewritten (those merged into others included)
    records_before: int = 0
    records_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    tombstones_removed: int = 0
    first_dirty: int = 0
    cleaned_up_to: int = 0  # the new checkpoint
    map_full: bool = False
    segments_removed: int = 0  # segments merged into the one before them (gone)
    tombstones_due: int | None = None  # the earliest horizon of a tombstone kept (ms)


@dataclass
class _Plan:
    start: int  # the log start
    first_dirty: int
    end: int  # the end of the cleanable segments (exclusive)
    segments: list[int]  # bases of the cleanable segments, in order
    sizes: dict[int, int]
    dirty_ratio: float
    must: bool  # past max.compaction.lag.ms
    aborted: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, first, last)
    keep_last: set[int] = field(default_factory=set)  # last offsets of producers' last batches
    tombstones_due: bool = False  # a kept tombstone's delete horizon has passed


@dataclass
class _Cleaned:
    """One segment's cleaned frames, not written yet (``LogCleaner._clean_one``)."""

    base: int
    next_base: int
    max_timestamp: int  # the segment's (from its seal)
    old_size: int
    frames: list[tuple[bytes, int, int]]  # (frame, last offset, max timestamp)
    changed: bool  # records removed (or, with no horizon yet, tombstones to give one)
    old_horizon: int | None  # the delete horizon of its seal, if it was cleaned before
    horizon: int  # the horizon its kept tombstones have (the old one, or now + retention)
    tombstones: bool  # keeps a tombstone (whose removal its horizon governs)
    tombstones_due: bool  # keeps a tombstone the horizon rule will remove later
    records_before: int = 0
    records_after: int = 0
    tombstones_removed: int = 0

    @property
    def needs_rewrite(self) -> bool:
        """Would this segment be rewritten alone?"""
        return self.changed or (self.old_horizon is None and self.tombstones)


def read_checkpoint(directory: str) -> int | None:
    """The first dirty offset recorded in ``directory``, or None (missing or damaged)."""
    found = _read_checkpoint(directory)
    return None if found is None else found[0]


def read_tombstones_due(directory: str) -> int | None:
    """When (ms) a tombstone the last round kept may be removed: the earliest delete
    horizon of the tombstones it kept; None if it kept none (or nothing is known)."""
    found = _read_checkpoint(directory)
    return None if found is None else found[1]


def _read_checkpoint(directory: str) -> tuple[int, int | None] | None:
    path = os.path.join(directory, CHECKPOINT_NAME)
    try:
        raw = fs.read_file(path, _CHECKPOINT.size)
    except StorageIOError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    if len(raw) == _CHECKPOINT_V1.size:
        magic, version, offset, checksum = _CHECKPOINT_V1.unpack(raw)
        due = -1
        body = raw[:16]
        want = 1
    elif len(raw) == _CHECKPOINT.size:
        magic, version, offset, due, checksum = _CHECKPOINT.unpack(raw)
        body = raw[:24]
        want = 2
    else:
        return None
    if magic != _CHECKPOINT_MAGIC or version != want:
        return None
    if checksum != xxhash.xxh3_64_intdigest(body):
        return None
    return int(offset), (None if due < 0 else int(due))


def _write_checkpoint(directory: str, offset: int, due: int | None = None) -> None:
    head = struct.pack("<IIqq", _CHECKPOINT_MAGIC, 2, offset, -1 if due is None else due)
    data = head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head))
    fs.write_atomic(os.path.join(directory, CHECKPOINT_NAME), data)


def _exists(path: str) -> bool:
    return os.path.lexists(path)


def _unlink_quietly(path: str) -> None:
    try:
        fs.unlink(path)
    except StorageIOError as e:
        if e.errno != errno.ENOENT:
            raise


def _trailing_seal(path: str) -> tuple[int, ...] | None:
    """The header fields of the valid seal the segment file ``path`` ends with, or None
    (missing, not sealed, or not a segment)."""
    base = name_to_offset(os.path.basename(path))
    if base is None:
        return None
    try:
        fd = fs.open(path, write=False)
    except StorageIOError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    try:
        found = _read_trailing_seal(fd, base, path)
    except StorageError:
        found = None  # (a newer magic: not a rewrite of ours)
    finally:
        fs.close(fd)
    return None if found is None else found[1]


def _sealed_end(path: str) -> int | None:
    """The next base offset the seal at the end of the segment file ``path`` names, or
    None (missing, not sealed, or not a segment)."""
    fields = _trailing_seal(path)
    return None if fields is None else int(fields[5])


def _rewrite_end(path: str) -> int | None:
    """As ``_sealed_end``, for a segment the cleaner wrote (its seal carries a delete
    horizon) only: the end of a rewrite, which may skip the segments it superseded."""
    fields = _trailing_seal(path)
    if fields is None or not fields[3] & codec.ATTR_DELETE_HORIZON:
        return None
    return int(fields[5])


def _stem(directory: str, base: int) -> str:
    return os.path.join(directory, offset_to_name(base))


def _segment_stems(names: Iterable[str]) -> list[int]:
    """Base offsets of every segment file (log or index) among ``names``, sorted."""
    out = set()
    for n in names:
        if n.endswith(_SEGMENT_SUFFIXES):
            b = name_to_offset(n)
            if b is not None:
                out.add(b)
    return sorted(out)


def superseded(directory: str, stems: list[int], heads: Iterable[int]) -> set[int]:
    """Which of ``stems`` (segment base offsets) a merged rewrite supersedes: those
    strictly inside the range of a live segment the cleaner wrote, among ``heads``
    (its base offsets to look at), whose seal skips them (see the module docstring).

    ``PartitionLog._list_bases`` passes the stems that have a ``.swap`` file (a group
    swap under way or interrupted); recovery passes every segment."""
    out: set[int] = set()
    for head in sorted(set(heads)):
        if head in out:
            continue
        end = _rewrite_end(_stem(directory, head) + LOG_SUFFIX)
        if end is not None:
            out.update(b for b in stems if head < b < end)
    return out


def _remove_superseded(
    directory: str, names: list[str], heads: Iterable[int], acted: list[str]
) -> None:
    """Unlink the segments a rewrite among ``heads`` supersedes (a group swap's step 4,
    redone), the directory synced first: the rename that made them superseded must be
    durable before they go."""
    stems = _segment_stems(names)
    doomed = sorted(superseded(directory, stems, heads))
    if not doomed:
        return
    fs.sync_dir(directory)
    for base in doomed:
        _unlink_segment(directory, base, acted)


def _unlink_segment(directory: str, base: int, acted: list[str]) -> None:
    stem = _stem(directory, base)
    for suffix in _SEGMENT_SUFFIXES:
        if _exists(stem + suffix):
            _unlink_quietly(stem + suffix)
            acted.append(offset_to_name(base) + suffix)
    crashpoint("clean.superseded_deleted")


def finish_swaps(directory: str, *, sweep: bool = False) -> list[str]:
    """Complete committed swaps and remove uncommitted ones; returns the names acted on.

    Runs with the partition's clean lock and append lock held, or during recovery
    (exclusive use). A ``<base>.log.swap`` is a committed rewrite if it is a sealed
    rewrite of ours (a delete horizon in its seal) of a live sealed segment (the
    active one is never rewritten) that ends where the live one does, or, for a
    group, at a later segment's base. It goes live by one rename over the live name
    (``clean.swap_completed``); then the segments it supersedes are unlinked
    (``clean.superseded_deleted``), then its index files go live. Anything else named
    so is dropped. Index ``.swap`` files without their log's are either before the
    commit (the log is still ``.cleaned``: dropped) or after its log went live
    (renamed into place). Every ``.cleaned`` file is dropped. A swap whose segment no
    longer exists (deleted by retention) is dropped: completing it would bring back a
    deleted segment.

    With ``sweep`` (recovery), every live rewrite is looked at for superseded segments,
    not only those with a ``.swap`` file: after a power cut the unlinks of a group
    swap may have survived and the last rename not, or the other way round."""
    names = fs.listdir(directory)
    acted: list[str] = []
    bases = sorted(
        b for n in names if n.endswith(LOG_SUFFIX) and (b := name_to_offset(n)) is not None
    )
    listed = set(bases)
    stems = sorted({n.split(".", 1)[0] for n in names if n.endswith((CLEANED, SWAP))})
    committed: dict[str, bool] = {}
    heads: set[int] = set()
    for stem in stems:
        live = os.path.join(directory, stem + LOG_SUFFIX)
        log_swap = live + SWAP
        live_end = _sealed_end(live)
        if _exists(log_swap):
            swap_end = _rewrite_end(log_swap)
            ok = (
                live_end is not None
                and swap_end is not None
                and (swap_end == live_end or (swap_end > live_end and swap_end in listed))
            )
        else:
            ok = live_end is not None and not _exists(live + CLEANED)
        committed[stem] = ok
        for suffix in _SUFFIXES:
            cleaned = os.path.join(directory, stem + suffix + CLEANED)
            if _exists(cleaned):
                _unlink_quietly(cleaned)
                acted.append(stem + suffix + CLEANED)
        if _exists(log_swap):
            if ok:
                fs.replace(log_swap, live)
                crashpoint("clean.swap_completed")
            else:
                _unlink_quietly(log_swap)
            acted.append(stem + LOG_SUFFIX + SWAP)
        base = name_to_offset(stem + LOG_SUFFIX)
        if ok and base is not None:
            heads.add(base)
    _remove_superseded(directory, names, bases if sweep else heads, acted)
    for stem in stems:
        for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            target = os.path.join(directory, stem + suffix)
            swap = target + SWAP
            if not _exists(swap):
                continue
            entry = _OFFSET_ENTRY.size if suffix == INDEX_SUFFIX else _TIME_ENTRY.size
            if committed[stem] and os.path.getsize(swap) % entry == 0:
                fs.replace(swap, target)
                crashpoint("clean.swap_completed")
            else:
                _unlink_quietly(swap)
            acted.append(stem + suffix + SWAP)
    if acted:
        fs.sync_dir(directory)
    return acted


class _Group:
    """Consecutive cleaned segments being written as one (see "Merging" in the module
    docstring). Frames of a group that may yet be left alone (one segment, unchanged)
    stay in memory; once the group must be written they go to ``<base>.log.cleaned``
    segment by segment."""

    def __init__(self, directory: str, base: int, log: PartitionLog) -> None:
        cfg = log.config
        self.directory = directory
        self.base = base
        self.members: list[_Cleaned] = []
        self.interval = cfg.index_interval_bytes
        self.segment_bytes = cfg.segment_bytes
        self.max_index_bytes = cfg.segment_index_bytes
        self.max_offset_entries = max(1, self.max_index_bytes // _OFFSET_ENTRY.size)
        self.max_time_entries = max(1, self.max_index_bytes // _TIME_ENTRY.size)
        self.pos = 0  # bytes of frames (aligned) so far
        self.index: list[tuple[int, int, int]] = []  # (relative offset, position, max ts)
        self.time_entries = 0
        self.last_indexed = 0
        self.running_ts = -1
        self.last_time_ts: int | None = None
        self.horizon: int | None = None  # that of the tombstones the group keeps
        self.path = _stem(directory, base) + LOG_SUFFIX + CLEANED
        self.fd = -1
        self.written = 0  # bytes written to ``path``

    def _entries(self, c: _Cleaned) -> tuple[list[tuple[int, int, int]], int, int, int]:
        """The offset index entries ``c``'s frames would get here, as a scan of the
        written segment expects them (``FileRecords.expected_index_entries``), and the
        state after them: (entries, position, last indexed position, max timestamp)."""
        entries: list[tuple[int, int, int]] = []
        pos, last, running = self.pos, self.last_indexed, self.running_ts
        for frame, last_offset, max_ts in c.frames:
            running = max(running, max_ts)
            if pos - last > self.interval:
                entries.append((last_offset - self.base, pos, running))
                last = pos
            pos += codec.aligned(len(frame))
        return entries, pos, last, running

    def add(self, c: _Cleaned) -> bool:
        """Add ``c`` if it fits (a first segment always does); False if it does not."""
        entries, pos, last, running = self._entries(c)
        times = list(_time_entries(self.last_time_ts, entries))
        if self.members:
            if c.tombstones and self.horizon is not None and c.horizon != self.horizon:
                return False
            if pos + SEAL_SIZE > self.segment_bytes:
                return False
            if c.next_base - 1 - self.base > MAX_RELATIVE:
                return False
            if len(self.index) + len(entries) > self.max_offset_entries:
                return False
            if self.time_entries + len(times) > self.max_time_entries:
                return False
        self.members.append(c)
        self.index += entries
        self.time_entries += len(times)
        if times:
            self.last_time_ts = times[-1][0]
        self.pos, self.last_indexed, self.running_ts = pos, last, running
        if c.tombstones and self.horizon is None:
            self.horizon = c.horizon
        if self.fd >= 0 or len(self.members) > 1 or c.needs_rewrite:
            self._write_pending()
        return True

    @property
    def needs_rewrite(self) -> bool:
        return len(self.members) > 1 or any(c.needs_rewrite for c in self.members)

    def _write_pending(self) -> None:
        if self.fd < 0:
            self.fd = fs.open(self.path, create=True, truncate=True)
        for c in self.members:
            if not c.frames:
                continue
            chunk = bytearray()
            for frame, _last, _ts in c.frames:
                chunk += frame
                chunk += bytes(codec.aligned(len(frame)) - len(frame))
            fs.pwrite(self.fd, bytes(chunk), self.written, self.path)
            self.written += len(chunk)
            c.frames = []  # (written: free the memory)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            fs.close(fd)

    def seal_horizon(self) -> int:
        """The delete horizon of the written segment's seal: that of the tombstones it
        keeps; with none, any of its segments' (the earliest: it governs nothing)."""
        if self.horizon is not None:
            return self.horizon
        olds = [c.old_horizon for c in self.members if c.old_horizon is not None]
        return min(olds) if olds else self.members[0].horizon

    def finish(self) -> list[str]:
        """Write the seal and the index files, fdatasync all three; returns their paths,
        the index files first, the log last."""
        assert self.fd >= 0 and self.pos == self.written
        last = self.members[-1]
        max_ts = max(c.max_timestamp for c in self.members)
        seal = codec.seal_frame(last.next_base, max_ts, self.seal_horizon())
        seal += bytes(SEAL_SIZE - len(seal))  # (as a roll leaves it: padded, then cut)
        try:
            fs.pwrite(self.fd, seal, self.written, self.path)
            fs.sync(self.fd, self.path)
        finally:
            self.close()
        oi = bytearray()
        ti = bytearray()
        index = self.index[: self.max_offset_entries]
        for rel, pos in ((e[0], e[1]) for e in index):
            oi += _OFFSET_ENTRY.pack(rel, pos)
        for max_ts_i, rel in list(_time_entries(None, index))[: self.max_time_entries]:
            ti += _TIME_ENTRY.pack(max_ts_i, rel)
        stem = _stem(self.directory, self.base)
        paths = []
        for suffix, data in ((INDEX_SUFFIX, oi), (TIMEINDEX_SUFFIX, ti)):
            path = stem + suffix + CLEANED
            fd = fs.open(path, create=True, truncate=True)
            try:
                if data:
                    fs.pwrite(fd, bytes(data), 0, path)
                fs.sync(fd, path)
            finally:
                fs.close(fd)
            paths.append(path)
        paths.append(self.path)
        crashpoint("clean.cleaned_written")
        return paths

    @property
    def size(self) -> int:
        return self.pos + SEAL_SIZE


def _time_entries(
    last_ts: int | None, index: list[tuple[int, int, int]]
) -> Iterable[tuple[int, int]]:
    """The time index entries (max timestamp, relative offset) of offset index entries
    ``index``, after a last time entry of ``last_ts``: one where the timestamp grows."""
    for rel, _pos, max_ts in index:
        if last_ts is None or max_ts > last_ts:
            yield max_ts, rel
            last_ts = max_ts


class LogCleaner:
    """Cleans one partition per call (see the module docstring for rules and protocol).

    ``dedupe_buffer_size``: the offset map's budget in bytes (Kafka's
    ``log.cleaner.dedupe.buffer.size``). ``clock``: seconds, as ``time.time``.
    Holds nothing between calls; thread-safe as long as each partition's calls
    take its clean lock (``clean`` does)."""

    def __init__(
        self,
        *,
        dedupe_buffer_size: int = DEFAULT_DEDUPE_BUFFER_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dedupe_buffer_size = dedupe_buffer_size
        self.clock = clock

    # ------------------------------------------------------------------ choosing
    def dirty_ratio(self, log: PartitionLog) -> tuple[float, bool]:
        """``(dirty bytes / cleanable bytes, past max.compaction.lag.ms)``, as the
        background cleaner ranks partitions; (0.0, False) if nothing is cleanable."""
        plan = self._plan_retrying(log, int(self.clock() * 1000))
        if plan is None:
            return 0.0, False
        return plan.dirty_ratio, plan.must

    def needs_cleaning(self, log: PartitionLog) -> float | None:
        """The dirty ratio if ``log`` should be cleaned now, else None: at or above
        ``min.cleanable.dirty.ratio``, past ``max.compaction.lag.ms``, or holding a
        tombstone whose delete horizon has passed (a round would remove it; the time is
        the checkpoint's, so this costs no read of the log)."""
        plan = self._plan_retrying(log, int(self.clock() * 1000))
        if plan is None:
            return None
        ratio = plan.dirty_ratio
        if plan.tombstones_due or (
            ratio > 0 and (plan.must or ratio >= log.config.min_cleanable_dirty_ratio)
        ):
            return ratio
        return None

    def _plan_retrying(self, log: PartitionLog, now: int) -> _Plan | None:
        """``_plan`` without the clean lock: a segment found gone was merged (or deleted)
        by a cleaner at work in another process; look at the directory again."""
        for attempt in range(10):
            try:
                return self._plan(log, now)
            except StorageIOError as e:
                if e.errno != errno.ENOENT or attempt == 9:
                    raise
                log._notice_cleaning(force=True)
        raise AssertionError("unreachable")

    def _plan(self, log: PartitionLog, now: int) -> _Plan | None:
        cfg = log.config
        log._refresh()  # (a round of ours, or another process's, may have merged segments)
        with log._producers.lock:
            pstate = log._producers.caught_up()
            lso = pstate.last_stable_offset()
            aborted = [(t.producer_id, t.first_offset, t.last_offset) for t in pstate.aborted]
            keep_last = {e.batches[-1][2] for e in pstate.entries.values() if e.batches}
        start = log._current_log_start()
        keys = list(log._segments.keys())
        uncleanable = min(keys[-1], lso)
        facts: list[tuple[int, int, int, int]] = []  # (base, next base, size, max ts)
        for i, base in enumerate(keys[:-1]):
            _tail, size, max_ts, _next = _sealed_facts(log, base)
            if cfg.min_compaction_lag_ms > 0 and max_ts > now - cfg.min_compaction_lag_ms:
                uncleanable = min(uncleanable, base)
            facts.append((base, keys[i + 1], size, max_ts))
        segments = [f for f in facts if f[1] <= uncleanable and f[1] > start]
        if not segments:
            return None
        end = segments[-1][1]
        found = _read_checkpoint(log.path)
        checkpoint, due = (None, None) if found is None else found
        if checkpoint is None or checkpoint < start or checkpoint > log._active().next_offset:
            checkpoint, due = start, None  # (unknown, or the log was cut below it: all dirty)
        # (nothing dirty: a forced round still drops tombstones past their horizon)
        first_dirty = min(checkpoint, end)
        clean = sum(f[2] for f in segments if f[1] <= first_dirty)
        dirty = sum(f[2] for f in segments if f[1] > first_dirty)
        ratio = dirty / (clean + dirty) if clean + dirty else 0.0
        must = False
        if cfg.max_compaction_lag_ms < 2**63 - 1 and dirty:
            first = next(f for f in segments if f[1] > first_dirty)
            earliest = _first_timestamp(log, first[0])
            must = earliest >= 0 and now - earliest > cfg.max_compaction_lag_ms
        return _Plan(
            start,
            first_dirty,
            end,
            [f[0] for f in segments],
            {f[0]: f[2] for f in segments},
            ratio,
            must,
            aborted,
            keep_last,
            due is not None and now >= due,
        )

    # ------------------------------------------------------------------ cleaning
    def clean(
        self, log: PartitionLog, *, force: bool = True, wait: bool = True
    ) -> CleanResult | None:
        """Clean ``log`` now: with ``force`` whatever is dirty, else only if it needs it
        (``needs_cleaning``). Returns None if there was nothing to do, the log is
        read-only, or (``wait`` False) another cleaner holds the partition's clean lock."""
        if not log.writable or log.lock is None:
            return None
        lock = AppendLock(
            os.path.join(log.path, CLEAN_LOCK_NAME),
            log.lock.timeout,
            what="clean lock",
        )
        try:
            try:
                lock.acquire(None if wait else 0.0)
            except StorageIOError:
                raise
            except Exception:
                if wait:
                    raise
                return None
            try:
                return self._clean_locked(log, force)
            finally:
                lock.release()
        finally:
            lock.close()

    def _clean_locked(self, log: PartitionLog, force: bool) -> CleanResult | None:
        with log._locked():
            if finish_swaps(log.path):
                log.state.bump_clean_generation()
            log._refresh_locked()
        now = int(self.clock() * 1000)
        plan = self._plan(log, now)
        if plan is None:
            return None
        if not force and not (
            plan.must
            or plan.tombstones_due
            or plan.dirty_ratio >= log.config.min_cleanable_dirty_ratio
        ):
            return None
        result = CleanResult(first_dirty=plan.first_dirty)
        omap = OffsetMap(self.dedupe_buffer_size)
        end = self._build_map(log, plan, omap, result)
        result.cleaned_up_to = end
        self._sync_sources(log, plan, end)
        horizon = now + log.config.delete_retention_ms
        swapped = False
        group: _Group | None = None
        due: int | None = None
        try:
            for base in plan.segments:
                if base >= end:
                    break
                c = self._clean_one(log, base, plan, omap, end, now, horizon)
                if c.tombstones_due:
                    due = c.horizon if due is None else min(due, c.horizon)
                if group is not None and group.add(c):
                    continue
                if group is not None:
                    swapped = self._write_group(log, group, result, swapped) or swapped
                group = _Group(log.path, base, log)
                group.add(c)
            if group is not None:
                swapped = self._write_group(log, group, result, swapped) or swapped
        finally:
            if group is not None:
                group.close()
        if swapped:
            fs.sync_dir(log.path)
            log.state.bump_clean_generation()
        result.tombstones_due = due
        _write_checkpoint(log.path, end, due)
        crashpoint("clean.checkpointed")
        return result

    def _sync_sources(self, log: PartitionLog, plan: _Plan, end: int) -> None:
        """fdatasync the segments this round reads that are not below the recovery point
        yet (a roll hands them to the flusher, which may not have got to them), then the
        directory: a rewrite that drops a synced record for a later one must not reach
        the disk before the later one does, or a power cut could lose both."""
        durable = log.state.durable()
        point = durable[1] if durable else 0
        keys = plan.segments
        synced = False
        for i, base in enumerate(keys):
            if base >= end:
                break
            nxt = keys[i + 1] if i + 1 < len(keys) else plan.end
            if nxt > point:
                log._segment(base).sync()
                synced = True
        if synced:
            fs.sync_dir(log.path)  # (their names too: a roll's are synced by its flush)

    def _write_group(
        self, log: PartitionLog, group: _Group, result: CleanResult, swapped: bool
    ) -> bool:
        """Write ``group`` (if it must be) and swap it in; True if it was swapped in."""
        if not group.needs_rewrite:
            group.close()
            return False
        paths = group.finish()
        members = group.members
        result.segments_cleaned += len(members)
        result.segments_removed += len(members) - 1
        result.records_before += sum(c.records_before for c in members)
        result.records_after += sum(c.records_after for c in members)
        result.bytes_before += sum(c.old_size for c in members)
        result.bytes_after += group.size
        result.tombstones_removed += sum(c.tombstones_removed for c in members)
        if not swapped:
            log.state.bump_clean_generation()  # (before the first swap of the round)
        return self._swap(log, [c.base for c in members], paths)

    def _build_map(
        self, log: PartitionLog, plan: _Plan, omap: OffsetMap, result: CleanResult
    ) -> int:
        """Fill ``omap`` from the dirty part; returns where it got (exclusive)."""
        for base in plan.segments:
            seg = log._segment(base)
            if seg.next_base is not None and seg.next_base <= plan.first_dirty:
                continue
            for _pos, batch in _batches(seg):
                if batch.last_offset < plan.first_dirty or batch.is_control:
                    continue
                if batch.is_transactional and _aborted(plan, batch):
                    continue
                offsets, _ts, keys, _values, _heads = batch.decode(seg.path)
                if keys is None:
                    continue
                for off, key in zip(offsets, keys, strict=True):
                    if off < plan.first_dirty or key is None:
                        continue
                    if not omap.put(key, off):
                        # Full: clean up to here. The map holds offsets up to ``off``
                        # (at least one: it has a slot), so ``off`` > first dirty and
                        # the round makes progress; records from ``off`` on are kept.
                        result.map_full = True
                        return off
        return plan.end

    def _clean_one(
        self,
        log: PartitionLog,
        base: int,
        plan: _Plan,
        omap: OffsetMap,
        end: int,
        now: int,
        horizon: int,
    ) -> _Cleaned:
        """The cleaned frames of segment ``base`` (kept batches as they are, shrunk ones
        re-encoded), and what the grouping needs to know of them."""
        seg = log._segment(base)
        assert seg.sealed and seg.next_base is not None
        old_horizon = _delete_horizon(seg)
        tombstones_expire = old_horizon is not None and now >= old_horizon
        frames: list[tuple[bytes, int, int]] = []
        changed = False
        tombstones = due = False
        before = after = removed_tombstones = 0
        batches = list(_batches(seg))
        # The last batch of the round stays whole (Kafka keeps it too): were it removed,
        # the offsets after the last kept record would be a gap up to the end of the
        # log when the active segment is empty, and a read there would return nothing
        # short of the end, leaving a consumer stuck below it.
        last_of_round = batches[-1][0] if batches and seg.next_base == plan.end else -1
        for pos, batch in batches:
            before += batch.record_count
            if pos == last_of_round:
                frame = None
            else:
                frame = self._filter(seg, pos, batch, plan, omap, end, tombstones_expire)
            if frame is None:
                # kept whole: its tombstones keep the segment's horizon all the same
                kept, frame_bytes, dropped_tomb = batch.record_count, None, 0
                tombstones = tombstones or _has_tombstone(seg, batch)
            else:
                kept, frame_bytes, tomb, dropped_tomb = frame
                tombstones = tombstones or tomb
                due = due or tomb
            removed_tombstones += dropped_tomb
            if kept == 0:
                changed = True
                continue
            if frame_bytes is None:
                frame_bytes = seg.frame_bytes(pos, batch.size)
            else:
                changed = True
            after += kept
            frames.append((frame_bytes, batch.last_offset, batch.max_timestamp))
        return _Cleaned(
            base,
            seg.next_base,
            seg.max_timestamp,
            seg.size_bytes,
            frames,
            changed,
            old_horizon,
            old_horizon if old_horizon is not None else horizon,
            tombstones,
            due,
            before,
            after,
            removed_tombstones,
        )

    def _filter(
        self,
        seg: Segment,
        pos: int,
        batch: codec.RecordBatch,
        plan: _Plan,
        omap: OffsetMap,
        end: int,
        tombstones_expire: bool,
    ) -> tuple[int, bytes | None, bool, int] | None:
        """``(records kept, new frame or None to copy it, has a kept tombstone, tombstones
        removed)``, or None to keep the batch as it is without looking inside."""
        if batch.is_control or batch.last_offset in plan.keep_last:
            return None  # markers, and each producer's last batch, stay whole
        if batch.is_transactional and _aborted(plan, batch):
            return 0, None, False, 0
        offsets, stamps, keys, values, heads = batch.decode(seg.path)
        n = batch.record_count
        keep: list[int] = []
        tomb = False
        dropped_tombstones = 0
        for i in range(n):
            off = offsets[i]
            if off >= end:
                keep.append(i)
                tomb = tomb or values[i] is None
                continue
            key = None if keys is None else keys[i]
            if key is None:
                continue  # no key on a compacted topic: dropped, as Kafka's cleaner does
            if omap.get(key) > off:
                continue  # superseded
            if values[i] is None:
                if tombstones_expire:
                    dropped_tombstones += 1
                    continue
                tomb = True
            keep.append(i)
        if len(keep) == n:
            return n, None, tomb, dropped_tombstones
        if not keep:
            return 0, None, False, dropped_tombstones
        return (
            len(keep),
            _encode(batch, keep, offsets, stamps, keys, values, heads),
            tomb,
            dropped_tombstones,
        )

    def _swap(self, log: PartitionLog, bases: list[int], cleaned: list[str]) -> bool:
        """Steps 3 and 4 of the protocol for one group (see the module docstring);
        False if the group's first segment is gone (deleted by retention meanwhile)."""
        swaps = []
        for path in cleaned:  # (index files first, the log last: the commit)
            swap = path[: -len(CLEANED)] + SWAP
            fs.replace(path, swap)
            swaps.append(swap)
        fs.sync_dir(log.path)
        crashpoint("clean.swap_renamed")
        with log._locked():
            live = swaps[-1][: -len(SWAP)]
            if not _exists(live):  # deleted by retention meanwhile: it stays deleted
                for swap in swaps:
                    _unlink_quietly(swap)
                return False
            fs.replace(swaps[-1], live)
            crashpoint("clean.log_replaced")
            if len(bases) > 1:
                # The merged segment is live and its seal skips the others: make that
                # durable before they go (a power cut must not keep an unlink and lose
                # the rename), and tell readers before any of them can miss a file.
                fs.sync_dir(log.path)
                crashpoint("clean.merged_synced")
                log.state.bump_clean_generation()
                acted: list[str] = []
                for base in bases[1:]:
                    _unlink_segment(log.path, base, acted)
            for swap in swaps[:-1]:
                fs.replace(swap, swap[: -len(SWAP)])
            crashpoint("clean.indexes_replaced")
            # (under the append lock: whoever takes it next sees the new generation)
            log.state.bump_clean_generation()
        return True


def _has_tombstone(seg: Segment, batch: codec.RecordBatch) -> bool:
    """Does ``batch`` (kept whole) hold a tombstone? Control batches never do."""
    if batch.is_control:
        return False
    values = batch.decode(seg.path)[3]
    return any(v is None for v in values)


def _encode(
    batch: codec.RecordBatch,
    keep: list[int],
    offsets: Any,
    stamps: Any,
    keys: Any,
    values: Any,
    heads: Any,
) -> bytes:
    """The frame of ``batch`` with only the records at indexes ``keep``: the same header
    (base offset, last offset delta, timestamps, producer fields, attributes) but the
    record count, explicit offset deltas, and the payload (compressed as before)."""
    base = batch.base_offset
    od = [offsets[i] - base for i in keep]
    if isinstance(stamps, int) or batch.log_append_time:
        td = None
    else:
        bt = batch.base_timestamp
        td = [stamps[i] - bt for i in keep]
        if not any(td):
            td = None
    k = None if keys is None else [keys[i] for i in keep]
    v = [values[i] for i in keep]
    h = None
    if heads is not None:
        h = [[x for pair in heads[i] for x in pair] if heads[i] else None for i in keep]
        if not any(h):
            h = None
    raw: bytes = msgpack.packb([od, td, k, v, h])
    payload = raw
    if batch.compression == codec.COMPRESSION_ZSTD:
        payload = zstandard.ZstdCompressor(level=3).compress(raw)
    size = codec.HEADER_SIZE + len(payload)
    rest = codec.REST.pack(
        codec.MAGIC,
        batch.attributes,
        0,
        base,
        batch.last_offset - base,
        len(keep),
        batch.base_timestamp,
        batch.max_timestamp,
        batch.producer_id,
        batch.producer_epoch,
        0,
        batch.base_sequence,
        len(raw),
    )
    h3 = xxhash.xxh3_64(rest, seed=size)
    h3.update(payload)
    return codec.PREFIX.pack(size, h3.intdigest()) + rest + payload


def _aborted(plan: _Plan, batch: codec.RecordBatch) -> bool:
    pid = batch.producer_id
    return any(t[0] == pid and t[1] <= batch.base_offset <= t[2] for t in plan.aborted)


def _batches(seg: Segment) -> Iterable[tuple[int, codec.RecordBatch]]:
    for pos, batch in seg.batches():
        if batch is None:
            raise CorruptRecordError(
                "the cleaner found a damaged batch; run streamlog check",
                path=seg.path,
                position=pos,
            )
        yield pos, batch


def _delete_horizon(seg: Segment) -> int | None:
    """The delete horizon the seal of ``seg`` carries, if the cleaner wrote it."""
    fd = fs.open(seg.path, write=False)
    try:
        found = _read_trailing_seal(fd, seg.base_offset, seg.path)
    finally:
        fs.close(fd)
    if found is None or not found[1][3] & codec.ATTR_DELETE_HORIZON:
        return None
    return int(found[1][8])


def _first_timestamp(log: PartitionLog, base: int) -> int:
    seg = log._segment(base)
    for _pos, batch in seg.batches():
        if batch is not None:
            return int(batch.base_timestamp)
    return -1


def _sealed_facts(log: PartitionLog, base: int) -> tuple[int, int, int, int]:
    return sealed_facts(log, base)


class CleanerThread:
    """The background cleaner of one process (Kafka's ``LogCleaner`` thread).

    Every ``backoff_ms`` it tries to take ``lock_path`` (flock, non-blocking: one
    cleaner per data directory; if its holder dies the kernel drops it and another
    process takes over), asks ``partitions()`` for the compacted partitions, and
    cleans the dirtiest one whose dirty ratio is at or above its
    ``min.cleanable.dirty.ratio`` (or that is past ``max.compaction.lag.ms``), until
    none is. A failure is logged and retried next time. ``stop()`` ends it."""

    def __init__(
        self,
        lock_path: str,
        partitions: Callable[[], list[PartitionLog]],
        cleaner: LogCleaner,
        backoff_ms: int,
    ) -> None:
        self._lock_path = lock_path
        self._partitions = partitions
        self._cleaner = cleaner
        self._backoff = backoff_ms / 1000
        self._stop = threading.Event()
        self._lock: AppendLock | None = None
        self.rounds = 0
        self._thread = threading.Thread(target=self._run, name="streamlog-cleaner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._backoff):
            try:
                self.run_once()
            except Exception as e:  # housekeeping: logged, tried again next time
                _logger.warning("log cleaner round failed: %s", e)

    def run_once(self) -> int:
        """One round (if this process holds the cleaner lock); returns partitions cleaned."""
        if self._lock is None:
            lock = AppendLock(self._lock_path, 0.0, what="cleaner lock")
            try:
                lock.acquire(0.0)
            except Exception:
                lock.close()
                return 0
            self._lock = lock
        cleaned = 0
        tried: set[int] = set()
        while not self._stop.is_set():
            best: tuple[float, PartitionLog] | None = None
            for plog in self._partitions():
                if id(plog) in tried or plog.closed:
                    continue
                ratio = self._cleaner.needs_cleaning(plog)
                if ratio is not None and (best is None or ratio > best[0]):
                    best = (ratio, plog)
            if best is None:
                break
            tried.add(id(best[1]))
            if self._cleaner.clean(best[1], force=False, wait=False) is not None:
                cleaned += 1
        self.rounds += 1
        return cleaned

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
            lock.close()
