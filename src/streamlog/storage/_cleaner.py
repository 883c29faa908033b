"""Log compaction: Kafka's log cleaner, for one partition at a time.

A compacted topic (``cleanup.policy`` "compact" or "compact,delete") keeps at
least the latest record of every key. ``LogCleaner.clean`` rewrites a
partition's sealed segments without the records a later record of the same
key supersedes, the tombstones whose delete horizon has passed, and the
records of aborted transactions. Offsets never change (a removed record
leaves a gap, which reads skip) and the order never changes.

Files of a partition directory the cleaner adds (see ``_partition``)::

    <partition>/
      cleaner-checkpoint      24 bytes: u32 magic 'SLCK', u32 version 1,
                              i64 first dirty offset, u64 xxh3-64 of bytes [0, 16);
                              replaced atomically (``fs.write_atomic``). Lost or
                              damaged: the whole log counts as dirty (more work,
                              same result)
      .clean.lock             flock: held by the one cleaner of this partition
      <base>.log.cleaned      a rewritten segment being written (and its
      <base>.index.cleaned    .index/.timeindex)
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

One segment is rewritten into one segment of the same base offset and the same
seal (next base offset), so the chain of seals never changes and no two
segments are ever merged (Kafka merges small segments; see docs/compaction.md).

Swap protocol, per segment (every step a ``crashpoint("clean.*")``):

1. write ``<base>.log.cleaned`` (frames, then the seal) and the two index files
   ``.cleaned``; fdatasync them (``clean.cleaned_written``);
2. rename the index files, then the log, from ``.cleaned`` to ``.swap``, sync
   the directory (``clean.swap_renamed``): the rewrite is committed;
3. under the append lock, if the segment still exists (retention may have
   deleted it meanwhile): rename ``.log.swap`` over ``.log`` (one atomic
   rename: the name always names a whole segment, the old or the new one)
   (``clean.log_replaced``), then the index files (``clean.indexes_replaced``);
4. after every segment: sync the directory, bump the partition's clean
   generation (``PartitionState``), write the checkpoint (``clean.checkpointed``).

``finish_swaps`` completes a committed swap (a ``.log.swap``) and removes
uncommitted leftovers; it runs at the start of every round (under the locks)
and in recovery. Old files are renamed over, never truncated or written, so a
process that maps one reads on in it safely (same offsets, more records); the
generation, bumped before the first and after the last replacement, makes
every process drop its cached sealed segments and open the new files
(``PartitionLog._notice_cleaning``).

Thread- and process-safe: the partition's clean lock (``.clean.lock``) admits
one cleaner; files are replaced under the append lock, so a writer, retention
and ``delete_records`` see either the old or the new segment.
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
from ._segment import SEAL_SIZE, Segment, _read_trailing_seal
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
]

_logger = logging.getLogger("streamlog.cleaner")

CHECKPOINT_NAME = "cleaner-checkpoint"
CLEAN_LOCK_NAME = ".clean.lock"
CLEANED = ".cleaned"
SWAP = ".swap"
DEFAULT_DEDUPE_BUFFER_SIZE = 32 * 1024 * 1024
_CHECKPOINT = struct.Struct("<IIqQ")
_CHECKPOINT_MAGIC = 0x4B434C53  # 'SLCK'
_OFFSET_ENTRY = struct.Struct("<II")
_TIME_ENTRY = struct.Struct("<qI")
_SUFFIXES = (INDEX_SUFFIX, TIMEINDEX_SUFFIX, LOG_SUFFIX)  # (the log last: see finish_swaps)


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

    segments_cleaned: int = 0
    records_before: int = 0
    records_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    tombstones_removed: int = 0
    first_dirty: int = 0
    cleaned_up_to: int = 0  # the new checkpoint
    map_full: bool = False


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


def read_checkpoint(directory: str) -> int | None:
    """The first dirty offset recorded in ``directory``, or None (missing or damaged)."""
    path = os.path.join(directory, CHECKPOINT_NAME)
    try:
        raw = fs.read_file(path, _CHECKPOINT.size)
    except StorageIOError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    if len(raw) != _CHECKPOINT.size:
        return None
    magic, version, offset, checksum = _CHECKPOINT.unpack(raw)
    if magic != _CHECKPOINT_MAGIC or version != 1 or checksum != xxhash.xxh3_64_intdigest(raw[:16]):
        return None
    return int(offset)


def _write_checkpoint(directory: str, offset: int) -> None:
    head = struct.pack("<IIq", _CHECKPOINT_MAGIC, 1, offset)
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


def _sealed_end(path: str) -> int | None:
    """The next base offset the seal at the end of the segment file ``path`` names, or
    None (missing, not sealed, or not a segment)."""
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
    return None if found is None else int(found[1][5])


def finish_swaps(directory: str) -> list[str]:
    """Complete committed swaps and remove uncommitted ones; returns the names acted on.

    Runs with the partition's clean lock and append lock held, or during recovery
    (exclusive use). A ``<base>.log.swap`` is a committed rewrite: its index files
    (``.swap``) go live first, then the log, each by one rename over the live name
    (``clean.swap_completed``), if it is a sealed segment ending where the live,
    sealed one does (the active segment is never rewritten; anything else is not
    ours and is dropped). Index ``.swap`` files without their log's are
    either before the commit (the log is still ``.cleaned``: dropped) or after its
    log went live (renamed into place). Every ``.cleaned`` file is dropped. A swap
    whose segment no longer exists (deleted by retention) is dropped: completing it
    would bring back a deleted segment."""
    names = fs.listdir(directory)
    acted: list[str] = []
    stems = {n.split(".", 1)[0] for n in names if n.endswith((CLEANED, SWAP))}
    for stem in sorted(stems):
        live = os.path.join(directory, stem + LOG_SUFFIX)
        log_swap = live + SWAP
        live_end = _sealed_end(live)
        # Only a rewrite of a sealed segment (never the active one) that ends where the
        # live one does is ours to finish: anything else named so is dropped.
        committed = live_end is not None and (
            _sealed_end(log_swap) == live_end
            if _exists(log_swap)
            else not _exists(live + CLEANED)
        )
        for suffix in _SUFFIXES:
            target = os.path.join(directory, stem + suffix)
            swap, cleaned = target + SWAP, target + CLEANED
            if _exists(cleaned):
                _unlink_quietly(cleaned)
                acted.append(stem + suffix + CLEANED)
            if _exists(swap):
                entry = _OFFSET_ENTRY.size if suffix == INDEX_SUFFIX else _TIME_ENTRY.size
                if committed and (suffix == LOG_SUFFIX or os.path.getsize(swap) % entry == 0):
                    fs.replace(swap, target)
                    crashpoint("clean.swap_completed")
                else:
                    _unlink_quietly(swap)
                acted.append(stem + suffix + SWAP)
    if acted:
        fs.sync_dir(directory)
    return acted


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
        plan = self._plan(log, int(self.clock() * 1000))
        if plan is None:
            return 0.0, False
        return plan.dirty_ratio, plan.must

    def needs_cleaning(self, log: PartitionLog) -> float | None:
        """The dirty ratio if ``log`` should be cleaned now (at or above
        ``min.cleanable.dirty.ratio``, or past ``max.compaction.lag.ms``), else None."""
        ratio, must = self.dirty_ratio(log)
        if ratio > 0 and (must or ratio >= log.config.min_cleanable_dirty_ratio):
            return ratio
        return None

    def _plan(self, log: PartitionLog, now: int) -> _Plan | None:
        cfg = log.config
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
        checkpoint = read_checkpoint(log.path)
        if checkpoint is None or checkpoint < start or checkpoint > log._active().next_offset:
            checkpoint = start  # (unknown, or the log was cut below it: all dirty)
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
            plan.must or plan.dirty_ratio >= log.config.min_cleanable_dirty_ratio
        ):
            return None
        result = CleanResult(first_dirty=plan.first_dirty)
        omap = OffsetMap(self.dedupe_buffer_size)
        end = self._build_map(log, plan, omap, result)
        result.cleaned_up_to = end
        horizon = now + log.config.delete_retention_ms
        bumped = False
        for base in plan.segments:
            if base >= end:
                break
            done = self._clean_segment(log, base, plan, omap, end, now, horizon, result)
            if done is None:
                continue
            new_files = done
            if not bumped:
                log.state.bump_clean_generation()
                bumped = True
            self._swap(log, base, new_files)
        if bumped:
            fs.sync_dir(log.path)
            log.state.bump_clean_generation()
        _write_checkpoint(log.path, end)
        crashpoint("clean.checkpointed")
        return result

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

    def _clean_segment(
        self,
        log: PartitionLog,
        base: int,
        plan: _Plan,
        omap: OffsetMap,
        end: int,
        now: int,
        horizon: int,
        result: CleanResult,
    ) -> list[str] | None:
        """Write the rewrite of segment ``base`` as ``.cleaned`` files; returns their
        paths (index files first), or None if the segment would not change."""
        seg = log._segment(base)
        assert seg.sealed and seg.next_base is not None
        old_horizon = _delete_horizon(seg)
        tombstones_expire = old_horizon is not None and now >= old_horizon
        out = bytearray()
        index: list[tuple[int, int, int]] = []
        last_indexed, running_ts = 0, -1
        changed = False
        has_tombstone = False
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
                kept, frame_bytes, tomb, dropped_tomb = batch.record_count, None, False, 0
            else:
                kept, frame_bytes, tomb, dropped_tomb = frame
            has_tombstone = has_tombstone or tomb
            removed_tombstones += dropped_tomb
            if kept == 0:
                changed = True
                continue
            if frame_bytes is None:
                frame_bytes = seg.frame_bytes(pos, batch.size)
            else:
                changed = True
            after += kept
            at = len(out)
            running_ts = max(running_ts, batch.max_timestamp)
            if at - last_indexed > seg.index_interval:
                index.append((batch.last_offset - base, at, running_ts))
                last_indexed = at
            out += frame_bytes
            out += bytes(codec.aligned(len(frame_bytes)) - len(frame_bytes))
        if not changed and (old_horizon is not None or not has_tombstone):
            return None
        new_horizon = old_horizon if old_horizon is not None else horizon
        seal = codec.seal_frame(seg.next_base, seg.max_timestamp, new_horizon)
        out += seal + bytes(SEAL_SIZE - len(seal))  # (as a roll leaves it: padded, then cut)
        result.segments_cleaned += 1
        result.records_before += before
        result.records_after += after
        result.bytes_before += seg.size_bytes
        result.bytes_after += len(out)
        result.tombstones_removed += removed_tombstones
        return self._write_cleaned(log.path, base, bytes(out), index, seg.max_index_bytes)

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
            (dropped_tombstones),
        )

    def _write_cleaned(
        self,
        directory: str,
        base: int,
        log_bytes: bytes,
        index: list[tuple[int, int, int]],
        max_index_bytes: int,
    ) -> list[str]:
        stem = os.path.join(directory, offset_to_name(base))
        oi = bytearray()
        ti = bytearray()
        last_ts: int | None = None
        for rel, pos, max_ts in index[: max(1, max_index_bytes // _OFFSET_ENTRY.size)]:
            oi += _OFFSET_ENTRY.pack(rel, pos)
            if last_ts is None or max_ts > last_ts:
                ti += _TIME_ENTRY.pack(max_ts, rel)
                last_ts = max_ts
        paths = []
        for suffix, data in ((INDEX_SUFFIX, oi), (TIMEINDEX_SUFFIX, ti), (LOG_SUFFIX, log_bytes)):
            path = stem + suffix + CLEANED
            fd = fs.open(path, create=True, truncate=True)
            try:
                if data:
                    fs.pwrite(fd, bytes(data), 0, path)
                fs.sync(fd, path)
            finally:
                fs.close(fd)
            paths.append(path)
        crashpoint("clean.cleaned_written")
        return paths

    def _swap(self, log: PartitionLog, base: int, cleaned: list[str]) -> None:
        """Steps 2 and 3 of the protocol for one segment (see the module docstring)."""
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
                return
            fs.replace(swaps[-1], live)
            crashpoint("clean.log_replaced")
            for swap in swaps[:-1]:
                fs.replace(swap, swap[: -len(SWAP)])
            crashpoint("clean.indexes_replaced")


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
