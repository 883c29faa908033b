"""One segment: a ``.log`` file of frames written through a memory map, with its two indexes.

On disk (``<base>`` is the 20-digit base offset, ``offset_to_name``)::

    <base>.log        frames (see ``_codec``) at 8-byte aligned positions, then
                      zeros up to the allocated size; a sealed segment ends with
                      a seal frame and is trimmed just after it
    <base>.index      OffsetIndex, rebuilt from the .log when missing or wrong
    <base>.timeindex  TimeIndex, likewise

The file grows with ``posix_fallocate`` (a write through a map into a hole on
a full disk is a SIGBUS; fallocate turns it into ENOSPC), starting small and
doubling up to 16 MiB steps, so thousands of idle partitions cost little. The
end of the data is never inferred from the file size: it is the first
position whose length word is zero, or the seal.

A segment is *sealed* when a seal frame follows its last batch; the seal
names the next segment's base offset and carries the segment's largest
timestamp. Sealing happens before the next segment is created, so the seal is
the authority on where the log continues. After sealing, the file is trimmed
right after the seal; that never hurts a reader in another process, because
readers only move forward over valid frames and stop at the seal.

Two classes, as Kafka's ``FileRecords`` and ``LogSegment``:

- ``FileRecords`` owns the ``.log`` file: its descriptor and map, growth,
  frame validation, walking frames (scan, resync after damage, the trailing
  seal), zeroing, cutting and fdatasync. No other class reaches into its map.
- ``Segment`` adds the indexes and the known tail: load, follow, append,
  index, seal, trim, truncate, read, and ``sync_all`` (log, then indexes).

Not thread-safe: the partition serialises writers with its append lock and
gives readers their own view of the tail (``sync`` alone is serialised, see
``FileRecords``). Process-safe as described above.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import threading
from dataclasses import dataclass, field

import xxhash

from .._fs import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIMEINDEX_SUFFIX,
    crashpoint,
    fs,
    offset_to_name,
    unmap,
)
from ..errors import CorruptRecordError, StorageIOError
from . import _codec as codec
from ._index import OffsetIndex, TimeIndex

_HEADER = codec.HEADER
_HEADER_SIZE = codec.HEADER_SIZE
_LENGTH = codec.LENGTH
_xxh3_int = xxhash.xxh3_64_intdigest
# length, base_offset and last_offset_delta of a frame header (see ``_codec``)
_INDEXED = struct.Struct("<I12xqI")
SEAL_SIZE = codec.aligned(codec.HEADER_SIZE)
MAX_RELATIVE = 2**32 - 2  # the largest last offset - base offset of a segment (u32 indexes)
_INITIAL_SIZE = 16 * 1024
_GROW_MAX = 16 * 1024 * 1024


@dataclass
class ScanResult:
    """What a scan of a segment's frames found."""

    end: int  # position just after the last good frame (where the next one goes)
    next_offset: int  # offset after the last good batch
    max_timestamp: int
    sealed: bool = False
    next_base: int | None = None  # from the seal
    damage: int | None = None  # position of the first bad frame, if it ends the data
    corrupt: list[int] = field(default_factory=list)  # bad frames with good frames after them
    last_frame: int = -1  # position of the last good batch found, if any


def _write_entries(oi: OffsetIndex, ti: TimeIndex, entries: list[tuple[int, int, int]]) -> None:
    """Append ``(relative offset, position, max timestamp)`` entries to fresh indexes."""
    last_ts: int | None = None
    for rel, pos, max_ts in entries[: oi.max_entries]:
        oi.append(rel, pos)
        if last_ts is None or max_ts > last_ts:
            ti.append(max_ts, rel)
            last_ts = max_ts


def _read_trailing_seal(fd: int, base_offset: int, path: str) -> tuple[int, tuple[int, ...]] | None:
    """``(position, fields)`` of the valid seal the file open at ``fd`` ends with, or
    None (see ``FileRecords._trailing_seal``)."""
    size = fs.size(fd)
    if size < SEAL_SIZE:
        return None
    raw = fs.pread(fd, SEAL_SIZE, size - SEAL_SIZE, path)
    if len(raw) < _HEADER_SIZE or _LENGTH.unpack_from(raw, 0)[0] != _HEADER_SIZE:
        return None
    fields = _HEADER.unpack_from(raw, 0)
    if _xxh3_int(raw[12:_HEADER_SIZE], seed=_HEADER_SIZE) != fields[1]:
        return None
    if not fields[3] & codec.ATTR_SEAL or fields[5] <= base_offset:
        return None
    codec.check_magic(fields[2], path)
    return size - SEAL_SIZE, fields


def peek_sealed(directory: str, base_offset: int) -> tuple[int, int, int] | None:
    """``(seal position, max timestamp, next base)`` of a sealed segment, read through a
    descriptor that is closed at once (retention and sizes need no more, and a loaded
    segment holds several descriptors for as long as the log is open). None if the
    file does not end with a valid seal (not sealed, or not cut after it): load it."""
    path = os.path.join(directory, offset_to_name(base_offset)) + LOG_SUFFIX
    fd = fs.open(path, write=False)
    try:
        found = _read_trailing_seal(fd, base_offset, path)
    finally:
        fs.close(fd)
    if found is None:
        return None
    return found[0], found[1][9], found[1][5]


def delete_segment_files(directory: str, base_offset: int) -> None:
    """Unlink a segment's files, the ``.log`` first (see ``Segment.__init__``)."""
    stem = os.path.join(directory, offset_to_name(base_offset))
    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
        crashpoint("retention.unlink")
        _unlink_if_exists(stem + suffix)


def _unlink_if_exists(path: str) -> None:
    try:
        fs.unlink(path)
    except StorageIOError as e:
        if e.errno != errno.ENOENT:
            raise


class FileRecords:
    """The ``.log`` file of one segment, read and written through a memory map.

    Owns the file descriptor, the map (``_mm``: used by this class and its
    subclass ``Segment`` only) and the rules for frames in it: a frame is
    valid when its length word is non-zero, it fits the map, its checksum
    matches and its magic is known; the data ends at the first zero length
    word or at a seal. Walking frames (``scan``, ``batches``,
    ``expected_index_entries``) verifies every checksum; after a bad frame,
    ``_resync`` finds the next valid one (at the position its length word
    claims, or up to a trailing seal). Recovery cuts the file (``_cut``) and
    looks for bytes after the data (``nonzero_after``); a writer zeroes a
    torn tail (``zero_from``).

    Knows nothing of the indexes or of the tail (``Segment`` does). Not
    thread-safe but for ``sync``, which is serialised per file and final once
    it failed (fsyncgate). Process-safe: readers in other processes only move
    forward over valid frames, and the trailing seal is read with ``pread``,
    never through a map that a trim may have cut short.
    """

    def __init__(
        self,
        directory: str,
        base_offset: int,
        *,
        index_interval: int,
        writable: bool = True,
        create: bool = False,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval = index_interval
        self.writable = writable
        self.path = os.path.join(directory, offset_to_name(base_offset)) + LOG_SUFFIX
        self.closed = False
        # Syncs of this file are serialised, and a failed one is final: the kernel
        # reports a write-back error once, so a second fdatasync racing the failed
        # one (the flusher and an acks="all" writer) would succeed without the data.
        self._sync_lock = threading.Lock()
        self._sync_error: StorageIOError | None = None
        self._fd = fs.open(self.path, create=create, write=writable)
        self._mm: mmap.mmap | None = None
        self._mapped = 0
        try:
            if create and fs.size(self._fd) == 0:
                fs.fallocate(self._fd, 0, _INITIAL_SIZE, self.path)
            self._remap()
        except BaseException:
            self._drop_file()  # no descriptor left behind by a failed open
            raise

    def _drop_file(self) -> None:
        """Release the map and close the descriptor (a failed open)."""
        mm, self._mm = self._mm, None
        unmap(mm)
        fd, self._fd = self._fd, -1
        fs.close(fd)

    # ------------------------------------------------------------------ mapping
    def _remap(self) -> None:
        for _attempt in range(100):
            size = fs.size(self._fd)
            if size == self._mapped:
                return
            try:
                mm = fs.map(self._fd, size, write=self.writable, path=self.path) if size else None
            except ValueError:
                # "mmap length is greater than file size": another process trimmed
                # the sealed file between our fstat and mmap. Look again.
                continue
            self._mm = mm
            self._mapped = size
            return
        raise StorageIOError(errno.EAGAIN, "segment file keeps changing size", self.path)

    def _covers(self, end: int) -> bool:
        """True if bytes up to ``end`` are mapped (remapping if the file grew)."""
        if end <= self._mapped:
            return True
        self._remap()
        return end <= self._mapped

    @property
    def allocated(self) -> int:
        return self._mapped

    def _grow(self, end: int) -> None:
        self._remap()
        if end <= self._mapped:
            return
        step = min(max(self._mapped, _INITIAL_SIZE), _GROW_MAX)
        size = max(end, self._mapped + step)
        fs.fallocate(self._fd, 0, size, self.path)
        self._remap()

    # ------------------------------------------------------------------ frames
    def frame_at(self, pos: int) -> tuple[int, tuple[int, ...] | None]:
        """Look at the frame at ``pos``: ``(length, header_fields or None if invalid)``.

        Length 0 means the end of the data. A non-zero length with ``None``
        means the bytes there are not a valid frame (torn, corrupt, or, on a
        weakly ordered CPU, not yet fully visible).
        """
        if not self._covers(pos + 4):
            return 0, None
        mm = self._mm
        assert mm is not None
        length = _LENGTH.unpack_from(mm, pos)[0]
        if length == 0:
            return 0, None
        if length < _HEADER_SIZE or length > codec.MAX_FRAME or not self._covers(pos + length):
            return length, None
        mm = self._mm  # _covers may have remapped a grown file: use the new map
        assert mm is not None
        fields = _HEADER.unpack_from(mm, pos)
        with memoryview(mm) as view, view[pos + 12 : pos + length] as body:
            ok = _xxh3_int(body, seed=length) == fields[1]
        if not ok:
            return length, None
        if fields[2] != codec.MAGIC:
            codec.check_magic(fields[2], self.path)
        return length, fields

    def batch_at(self, pos: int, fields: tuple[int, ...]) -> codec.RecordBatch:
        """The batch of the valid frame at ``pos`` whose header ``frame_at`` returned."""
        return self._batch(pos, fields)

    def frame_bytes(self, pos: int, length: int) -> bytes:
        """A copy of the valid frame at ``pos`` (the cleaner copies kept batches as they are)."""
        mm = self._mm
        assert mm is not None
        return mm[pos : pos + length]

    def _batch(self, pos: int, fields: tuple[int, ...]) -> codec.RecordBatch:
        mm = self._mm
        assert mm is not None
        return codec.RecordBatch(fields, mm[pos + _HEADER_SIZE : pos + fields[0]], pos)

    def scan(
        self,
        start: int,
        start_offset: int,
        max_timestamp: int = -1,
        entries: list[tuple[int, int, int]] | None = None,
    ) -> ScanResult:
        """Walk valid frames from ``start`` to the end of the data, verifying checksums.

        With ``entries`` (and ``start`` 0), also collect the index entries the
        frames call for, as ``expected_index_entries`` does, in the same pass.

        A bad frame followed by a good one (at the position its length word
        claims, or a valid seal at the end of a trimmed file) is corruption
        inside the data: it is recorded in ``corrupt`` and skipped. A bad frame
        with nothing valid after it is a torn tail: ``damage`` is set and the
        scan stops there.
        """
        pos = start
        next_offset = start_offset
        result = ScanResult(pos, next_offset, max_timestamp)
        last_indexed = 0
        interval = self.index_interval
        base = self.base_offset
        while True:
            length, fields = self.frame_at(pos)
            if length == 0:
                break
            if fields is not None and not self._follows(fields, next_offset):
                fields = None  # a valid checksum, but offsets that do not continue the log
            if fields is None:
                after = self._resync(pos, length)
                if after is None:
                    result.damage = pos
                    break
                result.corrupt.append(pos)
                pos = after
                continue
            attrs = fields[3]
            if attrs & codec.ATTR_SEAL:
                result.sealed = True
                result.next_base = fields[5]
                break
            next_offset = fields[5] + fields[6] + 1
            result.max_timestamp = max(result.max_timestamp, fields[9])
            result.last_frame = pos
            if entries is not None and pos - last_indexed > interval:
                entries.append((next_offset - 1 - base, pos, result.max_timestamp))
                last_indexed = pos
            pos += codec.aligned(length)
        result.end = pos
        result.next_offset = next_offset
        return result

    def _follows(self, fields: tuple[int, ...], next_offset: int) -> bool:
        """Do a frame's offsets continue the segment, whose next offset is ``next_offset``?

        A checksum does not make offsets sane (a forged or misdirected write, or
        KAFKA-3919's non-monotonic offsets after a power cut): a batch must start at
        or after the next offset and end within 32 bits of the segment's base, and a
        seal must name a next segment past this one, or readers would follow seals
        round in a circle.
        """
        if fields[3] & codec.ATTR_SEAL:
            return fields[5] >= next_offset and fields[5] > self.base_offset
        return (
            fields[5] >= next_offset
            and fields[5] + fields[6] - self.base_offset <= MAX_RELATIVE
            and fields[7] >= 1
        )

    def _trailing_seal(self) -> tuple[int, tuple[int, ...]] | None:
        """``(position, fields)`` of the seal the file ends with, if it ends with one.

        Read with ``pread``, not through the map: another process may have
        trimmed the file since we mapped it, and touching a mapped page past the
        end of the file is a SIGBUS. A file that ends with a seal is sealed and
        trimmed for good, so the map is then brought to its size.
        """
        found = _read_trailing_seal(self._fd, self.base_offset, self.path)
        if found is None:
            return None
        self._remap()
        return found

    def _resync(self, pos: int, length: int) -> int | None:
        """Position of a valid frame after the bad one at ``pos``, or None."""
        self._remap()  # a map older than a trim reaches past the end of the file
        if _HEADER_SIZE <= length <= codec.MAX_FRAME:
            after = pos + codec.aligned(length)
            if self._covers(after + 4):
                _nlen, nfields = self.frame_at(after)
                if nfields is not None:
                    return after
        # A trimmed sealed segment ends with its seal: damage before it is inside.
        seal = self._trailing_seal()
        if seal is not None and seal[0] >= pos + 8:
            seal_pos = seal[0]
            # skip forward to the first valid frame after ``pos``
            p = pos + 8
            while p < seal_pos:
                _plen, pfields = self.frame_at(p)
                if pfields is not None:
                    return p
                p += 8
            return seal_pos
        return None

    # ------------------------------------------------------------------ walking
    def expected_index_entries(self, end: int) -> list[tuple[int, int, int]]:
        """Index entries a full scan up to ``end`` gives: (relative offset, position, max ts)."""
        entries: list[tuple[int, int, int]] = []
        pos, last_indexed, max_ts = 0, 0, -1
        while pos < end:
            length, fields = self.frame_at(pos)
            if fields is None:
                pos = self._resync(pos, length) or end
                continue
            max_ts = max(max_ts, fields[9])
            if pos - last_indexed > self.index_interval:
                entries.append((fields[5] + fields[6] - self.base_offset, pos, max_ts))
                last_indexed = pos
            pos += codec.aligned(length)
        return entries

    def batches(self, start: int = 0) -> list[tuple[int, codec.RecordBatch | None]]:
        """Every frame from ``start`` (for check and dump): ``(position, batch or None if bad)``."""
        out: list[tuple[int, codec.RecordBatch | None]] = []
        pos = start
        while True:
            length, fields = self.frame_at(pos)
            if length == 0:
                break
            if fields is None:
                out.append((pos, None))
                after = self._resync(pos, length)
                if after is None:
                    break
                pos = after
                continue
            if fields[3] & codec.ATTR_SEAL:
                break
            out.append((pos, self._batch(pos, fields)))
            pos += codec.aligned(length)
        return out

    # ------------------------------------------------------------------ bytes after the data
    def nonzero_after(self, start: int) -> bool:
        """True if any byte of the file from ``start`` on is not zero."""
        mm, end = self._mm, self._mapped
        if mm is None:
            return False
        step = 1 << 20
        for pos in range(start, end, step):
            chunk = mm[pos : min(end, pos + step)]
            if chunk.count(0) != len(chunk):
                return True
        return False

    def zero_from(self, start: int) -> None:
        """Zero the mapped bytes from ``start`` to the end of the file, 1 MiB at a time."""
        if self._mm is None:
            return
        end = self._mapped
        step = 1 << 20
        for pos in range(start, end, step):
            self._mm[pos : min(end, pos + step)] = bytes(min(end, pos + step) - pos)

    def _cut(self, pos: int) -> int:
        """Cut the file at ``pos`` and allocate it again (zeros from ``pos`` on); returns the
        bytes dropped, 0 if ``pos`` is past the end. Only with no other process mapping it."""
        size = self._mapped
        if pos >= size:
            return 0
        assert self._mm is not None
        dropped = size - pos
        keep = self._mapped
        self._mm = None
        self._mapped = 0
        fs.truncate(self._fd, pos, self.path)
        fs.fallocate(self._fd, 0, max(keep, _INITIAL_SIZE), self.path)
        self._remap()
        return dropped

    # ------------------------------------------------------------------ durability, lifecycle
    def sync(self) -> None:
        """fdatasync the log file (serialised; after a failure every later call fails)."""
        with self._sync_lock:
            if self._sync_error is not None:
                raise StorageIOError(
                    errno.EIO, f"an earlier sync failed ({self._sync_error.strerror})", self.path
                )
            try:
                fs.sync(self._fd, self.path)
            except StorageIOError as e:
                self._sync_error = e
                raise

    def close(self) -> None:
        """Release the map and the descriptor. Idempotent; a failing ``close(2)`` has
        released the descriptor all the same (Linux), its error is raised."""
        self.closed = True  # first: a concurrent sync that fails can tell why
        mm, self._mm = self._mm, None
        self._mapped = 0
        unmap(mm)
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            fs.close(fd)


class Segment(FileRecords):
    """One ``.log`` file and its indexes: append, read, scan, recover, seal, truncate, flush.

    Keeps the known tail (``tail``, ``next_offset``, ``sealed``...): where the
    next frame goes, learnt by ``load`` (the trailing seal, else a scan from
    the last index entry) and followed by ``refresh``. Appending writes the
    frame with its length word last, then the index entries (see ``append``);
    sealing writes the seal frame, then ``trim`` cuts the zeros after it.
    ``sync_all`` makes the log and then its indexes durable.

    Not thread-safe (the partition's append lock serialises writers); process
    safety as in the module docstring.
    """

    def __init__(
        self,
        directory: str,
        base_offset: int,
        *,
        index_interval: int,
        max_index_bytes: int,
        writable: bool = True,
        create: bool = False,
    ) -> None:
        stem = os.path.join(directory, offset_to_name(base_offset))
        self.index_path = stem + INDEX_SUFFIX
        self.timeindex_path = stem + TIMEINDEX_SUFFIX
        self.max_index_bytes = max_index_bytes
        # (next offset, position of the frame after the last batch a read returned)
        self._cursor: tuple[int, int] | None = None
        super().__init__(
            directory, base_offset, index_interval=index_interval, writable=writable, create=create
        )
        try:
            self.offset_index = OffsetIndex(self.index_path, max_index_bytes, writable=writable)
            try:
                self.time_index = TimeIndex(self.timeindex_path, max_index_bytes, writable=writable)
            except BaseException:
                self.offset_index.close()
                raise
        except BaseException:
            self._drop_file()  # no descriptor left behind by a failed open
            raise
        if writable and not create and os.fstat(self._fd).st_nlink == 0:
            self.close_quietly()
            if os.path.exists(self.path):
                # The cleaner renamed a rewritten segment over this one while we
                # opened it: its indexes are the new ones, so leave them; the
                # caller opens the segment again (``PartitionLog._segment``).
                raise StorageIOError(errno.ESTALE, "segment was replaced by the cleaner", self.path)
            # Retention in another process deleted the segment while we opened
            # it, and opening its indexes created them again: remove them (the
            # deleter unlinks the .log first, so this catches every interleaving).
            for path in (self.index_path, self.timeindex_path):
                _unlink_if_exists(path)
            raise StorageIOError(errno.ENOENT, "segment was deleted", self.path)
        # The known tail. ``tail`` is where the next frame goes (or the seal's position).
        self.tail = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.first_max_timestamp: int | None = None
        self.sealed = False
        self.next_base: int | None = None
        self._last_frame = -1  # position of the last batch known (-1: unknown or indexed)
        self._indexes_owed = False  # frames learnt by a reader's refresh: see refresh

    # ------------------------------------------------------------------ opening
    def load(self) -> ScanResult:
        """Find the tail quickly: the trailing seal, else a scan from the last index entry.

        The last index entry is checked against the frame it names; if it is
        wrong, the indexes are rebuilt from a full scan.
        """
        seal = self._trailing_seal()
        if seal is not None:
            seal_pos, sf = seal
            self._set_tail(seal_pos, sf[5], sf[9], sealed=True, next_base=sf[5])
            return ScanResult(seal_pos, sf[5], sf[9], True, sf[5])
        start, start_offset, max_ts = 0, self.base_offset, -1
        if self.offset_index.count:
            rel, pos = self.offset_index.entry(self.offset_index.count - 1)
            length, fields = self.frame_at(pos)
            if fields is None or fields[5] + fields[6] != self.base_offset + rel:
                return self.rebuild_indexes()
            start, start_offset = pos, self.base_offset + rel + 1
            ts = self.time_index.last_timestamp()
            max_ts = fields[9] if ts is None else max(ts, fields[9])
            start = pos + codec.aligned(length)
        result = self.scan(start, start_offset, max_ts)
        self._apply(result)
        return result

    def _apply(self, result: ScanResult) -> None:
        if result.last_frame >= 0:
            self._last_frame = result.last_frame
        self._set_tail(
            result.end,
            result.next_offset,
            result.max_timestamp,
            sealed=result.sealed,
            next_base=result.next_base,
        )
        if self.first_max_timestamp is None and result.end > 0:
            _length, fields = self.frame_at(0)
            if fields is not None and not fields[3] & codec.ATTR_SEAL:
                self.first_max_timestamp = fields[9]

    def _set_tail(
        self, tail: int, next_offset: int, max_ts: int, *, sealed: bool, next_base: int | None
    ) -> None:
        self.tail = tail
        self.next_offset = next_offset
        self.max_timestamp = max(self.max_timestamp, max_ts)
        self.sealed = sealed
        self.next_base = next_base
        if sealed and next_base is not None:
            self.next_offset = next_base
        if sealed:
            self.freeze_indexes()
        else:
            self.offset_index.unfreeze()  # (no-ops unless recovery cut a seal)
            self.time_index.unfreeze()

    def freeze_indexes(self) -> None:
        """Sealed: the indexes keep their maps, not their descriptors (``_index``). For a
        segment this process seals, once it is synced (``Durability.flush_sealed``): the
        sync needs no new descriptor then."""
        self.offset_index.freeze()
        self.time_index.freeze()

    def refresh(self, *, indexes: bool = True) -> ScanResult | None:
        """Follow frames other processes appended after our known tail. None if nothing new.

        The other writer indexed its frames too: with ``indexes`` (a writer, under the
        append lock) learn of those entries, so our next index append goes after them
        instead of over them, and the roll check counts them. A reader passes False:
        its lookups refresh the offset index when they pass its last entry
        (``position_for``), a time lookup refreshes the time index, and a seal freezes
        both after a refresh of its own; the refresh is owed (``_indexes_owed``) to the
        next writer's call, also when that call finds no new frame."""
        if self.sealed:
            return None
        mm = self._mm
        tail = self.tail
        if mm is not None and tail + 4 <= self._mapped:
            length = _LENGTH.unpack_from(mm, tail)[0]
        elif self._covers(tail + 4):
            assert self._mm is not None
            length = _LENGTH.unpack_from(self._mm, tail)[0]
        else:
            length = 0
        if length == 0:
            if indexes and self._indexes_owed:
                self._indexes_owed = False
                self.refresh_indexes()
            return None
        result = self.scan(tail, self.next_offset, self.max_timestamp)
        self._apply(result)
        if indexes:
            self._indexes_owed = False
            self.refresh_indexes()
        else:
            self._indexes_owed = True
        return result

    def indexes_sane(self) -> bool:
        """Cheaply check both indexes against the log (for segments recovery does not scan).

        Whole offset entries only; offsets, positions and timestamps strictly
        increasing; positions inside the data; every time entry at an indexed
        offset; the last offset entry naming its batch; and no batch after it
        that should have been indexed. Costs a sort of the entries and a walk of
        about ``index.interval.bytes``, not a scan of the segment.
        """
        oi, ti = self.offset_index, self.time_index
        # (a time index grows in 4 KiB steps, not whole 12-byte entries)
        if not oi.has_file or not ti.has_file or oi.has_partial_entry():
            return False
        rels: list[int] = []
        last_pos = 0
        if oi.count:
            entries = oi.entries()
            rels = [e[0] for e in entries]
            poss = [e[1] for e in entries]
            if rels != sorted(set(rels)) or poss != sorted(set(poss)) or poss[-1] >= self.tail:
                return False
            last_pos = poss[-1]
            length, fields = self.frame_at(last_pos)
            if fields is None or fields[5] + fields[6] != self.base_offset + rels[-1]:
                return False
        if ti.count:
            tentries = ti.entries()
            stamps = [e[0] for e in tentries]
            trels = [e[1] for e in tentries]
            if stamps != sorted(set(stamps)) or not set(trels) <= set(rels):
                return False
        if oi.is_full:
            return True
        # entries missing at the end: a later batch far enough on would have one
        pos = last_pos
        while pos < self.tail:
            length, fields = self.frame_at(pos)
            if fields is None or fields[3] & codec.ATTR_SEAL:
                break
            if pos - last_pos > self.index_interval:
                return False
            pos += codec.aligned(length)
        return True

    def rebuild_indexes(self, *, exclusive: bool = False) -> ScanResult:
        """Scan the whole segment and write fresh indexes.

        With ``exclusive`` (no other process has the data directory open) the
        index files are rewritten in place; otherwise new files replace them by
        rename, so other processes keep reading their old, still valid, maps.
        """
        entries: list[tuple[int, int, int]] = []
        result = self.scan(0, self.base_offset, entries=entries)  # one checksum pass, not two
        if exclusive and self.writable:
            self.offset_index.truncate_entries(0)
            self.time_index.truncate_entries(0)
            _write_entries(self.offset_index, self.time_index, entries)
        elif self.writable:
            for path in (self.index_path + ".tmp", self.timeindex_path + ".tmp"):
                if os.path.exists(path):
                    fs.unlink(path)
            oi = OffsetIndex(self.index_path + ".tmp", self.max_index_bytes)
            try:
                ti = TimeIndex(self.timeindex_path + ".tmp", self.max_index_bytes)
                try:
                    _write_entries(oi, ti, entries)
                finally:
                    ti.close()
            finally:
                oi.close()
            crashpoint("index.rebuild_written")
            fs.replace(self.index_path + ".tmp", self.index_path)
            crashpoint("index.rebuild_renamed")
            fs.replace(self.timeindex_path + ".tmp", self.timeindex_path)
            new_oi = OffsetIndex(self.index_path, self.max_index_bytes)
            try:
                new_ti = TimeIndex(self.timeindex_path, self.max_index_bytes)
            except BaseException:
                new_oi.close()
                raise
            old = (self.offset_index, self.time_index)
            self.offset_index, self.time_index = new_oi, new_ti
            for index in old:
                try:
                    index.close()
                except StorageIOError:
                    pass  # (released all the same; the new indexes are in place)
        self.first_max_timestamp = None
        self._apply(result)
        return result

    # ------------------------------------------------------------------ writing
    def would_overflow(self, frame_size: int, segment_bytes: int) -> bool:
        return self.tail > 0 and self.tail + codec.aligned(frame_size) > segment_bytes

    def append(
        self, frame: bytes, last_offset: int, max_timestamp: int, payload: bytes = b""
    ) -> int:
        """Write one frame at the tail and index it. Returns its position.

        ``frame`` is the whole frame, or only its 68-byte header when the
        ``payload`` is passed apart (saving a copy of the batch). The length
        word is stored last: until then readers see the old end.
        """
        pos = self.tail
        head = len(frame)
        n = head + len(payload)
        end = pos + codec.aligned(n)
        if end + SEAL_SIZE > self._mapped:
            self._grow(end + SEAL_SIZE)
        mm = self._mm
        assert mm is not None
        mm[pos + 4 : pos + head] = memoryview(frame)[4:]
        if payload:
            mm[pos + head : pos + n] = payload
        crashpoint("append.before_publish")
        mm[pos : pos + 4] = frame[:4]
        crashpoint("append.after_publish")
        prev, self._last_frame = self._last_frame, pos
        self.tail = end
        self.next_offset = last_offset + 1
        self.max_timestamp = max(self.max_timestamp, max_timestamp)
        if self.first_max_timestamp is None:
            self.first_max_timestamp = max_timestamp
        # The batch is in the log from here on: nothing below may fail the append
        # (the caller would report a batch failed that readers already see).
        try:
            # Under the append lock the files are the truth: entries other writers
            # added since we counted (say, between mapping this segment and scanning
            # it) must be seen, or ours would overwrite theirs. O(1) when up to date.
            self.refresh_indexes()
            oi = self.offset_index
            last = oi.last_position()
            if prev - last > self.index_interval and pos - last > self.index_interval:
                # The batch before ours should have an entry and has none: its writer
                # died between publishing and indexing it. Add what it missed.
                self._index_missed(last, pos)
                last = oi.last_position()
            if pos - last > self.index_interval and not oi.is_full:
                rel = last_offset - self.base_offset
                oi.append(rel, pos)
                crashpoint("append.offset_indexed")
                ti = self.time_index
                last_ts = ti.last_timestamp()
                if (last_ts is None or self.max_timestamp > last_ts) and not ti.is_full:
                    ti.append(self.max_timestamp, rel)
                crashpoint("append.indexed")
        except StorageIOError:
            # The index could not grow (ENOSPC...): an entry is missing, as after a
            # writer killed here. Indexes are sparse and disposable: the next append
            # adds the missed entry (``_index_missed``), recovery rebuilds them.
            pass
        return pos

    def _index_missed(self, last: int, pos: int) -> None:
        """Index the batches between the last indexed one (at ``last``) and ``pos`` that
        call for an entry (under the append lock; those frames are known to be valid)."""
        mm = self._mm
        assert mm is not None
        oi, ti = self.offset_index, self.time_index
        p = last + codec.aligned(_LENGTH.unpack_from(mm, last)[0]) if oi.count else 0
        ts = ti.last_timestamp()
        running = -1 if ts is None else ts
        while p < pos:
            length = _LENGTH.unpack_from(mm, p)[0]
            if length < _HEADER_SIZE:
                break
            fields = _HEADER.unpack_from(mm, p)
            if fields[3] & codec.ATTR_SEAL:
                break
            running = max(running, fields[9])
            if p - last > self.index_interval and not oi.is_full:
                rel = fields[5] + fields[6] - self.base_offset
                oi.append(rel, p)
                if (ts is None or running > ts) and not ti.is_full:
                    ti.append(running, rel)
                    ts = running
                last = p
            p += codec.aligned(length)

    @property
    def index_full(self) -> bool:
        return self.offset_index.is_full or self.time_index.is_full

    def refresh_indexes(self) -> None:
        self.offset_index.refresh()
        self.time_index.refresh()

    def seal(self, next_offset: int) -> None:
        """Write the seal frame at the tail: this segment takes no more batches."""
        frame = codec.seal_frame(next_offset, self.max_timestamp)
        pos = self.tail
        if pos + SEAL_SIZE > self._mapped:
            self._grow(pos + SEAL_SIZE)
        mm = self._mm
        assert mm is not None
        mm[pos + 4 : pos + len(frame)] = frame[4:]
        mm[pos : pos + 4] = frame[:4]
        crashpoint("roll.sealed")
        self.sealed = True
        self.next_base = next_offset

    def trim(self) -> None:
        """Cut the preallocated zeros after the seal (safe for other mappers; see module doc)."""
        if self.sealed and self.writable and self._mapped > self.tail + SEAL_SIZE:
            fs.truncate(self._fd, self.tail + SEAL_SIZE, self.path)
            try:
                self._remap()
            except BaseException:
                # never keep a map longer than the file (a touch past its end is a SIGBUS)
                self._mm = None
                self._mapped = 0
                raise

    def truncate_to(self, pos: int) -> int:
        """Drop everything from ``pos`` on (recovery only: no other process may map the file).

        Returns the number of bytes dropped (non-zero bytes after ``pos``).
        """
        self._cursor = None
        self._last_frame = -1
        dropped = self._cut(pos)
        if not dropped:
            return 0
        # drop index entries pointing at or past pos
        last_rel = self.offset_index.truncate_at_position(pos)
        self.time_index.truncate_after(last_rel)
        self.sealed = False
        self.next_base = None
        self.offset_index.unfreeze()  # (appends may follow: see _index)
        self.time_index.unfreeze()
        return dropped

    def sync_all(self) -> None:
        """Make the segment durable: fdatasync the log, then the offset index, then the
        time index. The log goes first, so a durable index entry never names frames
        that are not (indexes are disposable anyway: recovery checks them against the
        log and rebuilds them). Every sync of a whole segment goes through here."""
        self.sync()
        self.offset_index.sync()
        self.time_index.sync()

    # ------------------------------------------------------------------ reading
    def position_for(self, offset: int, *, verify: bool = False) -> int:
        """A frame position at or before the first batch holding ``offset``.

        The indexed frame is checked by its header only (its length, and the last
        offset the entry names), not by its checksum: the frame read next is
        verified anyway, and checking the indexed one too doubled the cost of a
        random read. A reader that finds no valid frame at the position returned
        asks again with ``verify``, which checks the checksum and rebuilds the
        indexes if the entry is wrong, as a full check would.
        """
        cursor = self._cursor
        if cursor is not None and cursor[0] == offset:
            # A consumer reading on from where its last read ended (the common
            # case at the tail): start right there instead of at the last index
            # entry, which would re-check up to index.interval.bytes of frames.
            return cursor[1]
        oi = self.offset_index
        rel_target = offset - self.base_offset
        i = oi.lower(rel_target)
        if i == oi.count - 1 and (oi.count or self._indexes_owed):
            # beyond our last entry: maybe other processes indexed more (with no entry
            # known, only if a reader's refresh learnt frames without their entries)
            oi.refresh()
            i = oi.lower(rel_target)
        if i < 0:
            return 0
        rel, pos = oi.entry(i)
        if not verify:
            length = self._indexed_length(pos, rel)
            if length:
                return pos + codec.aligned(length)
        length, fields = self.frame_at(pos)
        if fields is None or fields[5] + fields[6] != self.base_offset + rel:
            self.rebuild_indexes()
            i = self.offset_index.lower(rel_target)
            if i < 0:
                return 0
            rel, pos = self.offset_index.entry(i)
            length, fields = self.frame_at(pos)
            if fields is None:
                return 0
        return pos + codec.aligned(length)

    def _indexed_length(self, pos: int, rel: int) -> int:
        """The length of the frame an index entry ``(rel, pos)`` names, if its header
        agrees with the entry (a batch ending at ``rel``, inside the data); else 0."""
        if pos + _HEADER_SIZE > self._mapped or pos >= self.tail:
            return 0
        mm = self._mm
        assert mm is not None
        length, base, delta = _INDEXED.unpack_from(mm, pos)
        if (
            length < _HEADER_SIZE
            or pos + length > self.tail
            or base + delta != self.base_offset + rel
            or mm[pos + 13] & codec.ATTR_SEAL
        ):
            return 0
        return int(length)

    def read(
        self, offset: int, max_bytes: int, end: int, out: list[codec.RecordBatch]
    ) -> tuple[int, bool]:
        """Append to ``out`` the batches holding offsets >= ``offset``, before position ``end``.

        Stops once ``max_bytes`` is used (the first batch is returned even if
        larger). Returns ``(bytes used, reached the end of the segment's data)``.
        A bad frame before ``end`` raises ``CorruptRecordError``, unless batches
        were already collected (they are returned, and the next read raises) or
        the next good frame shows it lies wholly below ``offset`` (it is skipped).
        """
        pos = self.position_for(offset)
        verified = pos == 0 or (self._cursor is not None and self._cursor[1] == pos)
        if not verified and pos >= end:
            verified = True  # (nothing after the indexed frame: check it all the same)
            pos = self.position_for(offset, verify=True)
        used = 0
        prev_last = self.base_offset - 1
        while pos < end:
            length, fields = self.frame_at(pos)
            if (
                fields is not None
                and not fields[3] & codec.ATTR_SEAL
                and not prev_last < fields[5] <= fields[5] + fields[6] < self.next_offset
            ):
                fields = None  # a valid checksum but offsets out of place: damage
            if fields is None:
                if not verified:
                    # The index entry's frame was taken on its header alone: check it
                    # (and repair the index) before calling what follows it damage.
                    verified = True
                    pos = self.position_for(offset, verify=True)
                    continue
                if length == 0:
                    return used, True
                if out:
                    # Return the intact batches before it; a read from here raises.
                    return used, False
                after = self._resync(pos, length)
                if after is not None and after < end:
                    _nlen, nfields = self.frame_at(after)
                    if (
                        nfields is not None
                        and not nfields[3] & codec.ATTR_SEAL
                        and (nfields[5] <= offset)
                    ):
                        # The bad batch ends below the next good one, which starts at
                        # or before ``offset``: it holds nothing asked for. Skip it, so
                        # a consumer can seek past damage.
                        pos = after
                        continue
                raise CorruptRecordError(
                    "record batch fails its checksum or its offsets are out of place",
                    path=self.path,
                    position=pos,
                )
            verified = True  # a valid frame where the index led: the entry was right
            if fields[3] & codec.ATTR_SEAL:
                return used, True
            prev_last = fields[5] + fields[6]
            if prev_last >= offset:
                if out and used + length > max_bytes:
                    return used, False
                out.append(self._batch(pos, fields))
                used += length
                # frames before the tail never move, so this stays true
                self._cursor = (fields[5] + fields[6] + 1, pos + codec.aligned(length))
                if used >= max_bytes:
                    return used, pos + codec.aligned(length) >= end
            pos += codec.aligned(length)
        return used, True

    # ------------------------------------------------------------------ lifecycle
    @property
    def size_bytes(self) -> int:
        return self.tail + (SEAL_SIZE if self.sealed else 0)

    def close(self) -> None:
        """Close the log file and both indexes, each even if another's close failed;
        raise the first error. Idempotent."""
        error: BaseException | None = None
        for close in (super().close, self.offset_index.close, self.time_index.close):
            try:
                close()
            except Exception as e:
                error = error or e
        if error is not None:
            raise error

    def close_quietly(self) -> None:
        """``close``, for a segment whose files are gone or going (deleted by
        retention): the descriptors are released whatever ``close(2)`` says."""
        try:
            self.close()
        except StorageIOError:
            pass

    def delete_files(self) -> None:
        delete_segment_files(self.directory, self.base_offset)

    def _check(self) -> None:
        """Assert the segment's invariants (tests call this after random operations)."""
        result = self.scan(0, self.base_offset)
        assert not result.corrupt, f"corrupt frames at {result.corrupt}"
        assert result.damage is None, f"damaged frame at {result.damage}"
        assert result.end == self.tail, (result.end, self.tail)
        assert result.next_offset == self.next_offset or self.sealed, (
            result.next_offset,
            self.next_offset,
        )
        assert result.sealed == self.sealed
        prev = self.base_offset - 1
        for _pos, batch in self.batches():
            assert batch is not None
            assert batch.base_offset > prev, "offsets must increase"
            prev = batch.last_offset
        oi = self.offset_index
        last_rel, last_pos = -1, 0
        for i in range(oi.count):
            rel, pos = oi.entry(i)
            assert rel > last_rel and pos > last_pos, "offset index must increase"
            _length, fields = self.frame_at(pos)
            assert fields is not None and fields[5] + fields[6] == self.base_offset + rel
            last_rel, last_pos = rel, pos
        ti = self.time_index
        last_ts = None
        for i in range(ti.count):
            ts, rel = ti.entry(i)
            assert last_ts is None or ts > last_ts, "time index must increase"
            last_ts = ts
        if not self.sealed and self._covers(self.tail + 8):
            assert self._mm is not None
            assert self._mm[self.tail : self.tail + 8] == bytes(8), "bytes after the tail"
