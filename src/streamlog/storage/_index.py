"""Sparse, fixed-width, memory-mapped indexes of one segment: disposable, rebuilt from the log.

``OffsetIndex`` entries are 8 bytes: ``u32 relative_last_offset, u32 position``
(the last offset of an indexed batch, minus the segment's base offset, and the
byte position where that batch starts). ``TimeIndex`` entries are 12 bytes:
``i64 max_timestamp, u32 relative_last_offset`` (the largest timestamp in the
segment up to and including that batch). Little-endian, no header, no checksum.

An entry is added for a batch when the batch starts more than
``index.interval.bytes`` after the previous indexed batch (or after the
segment start). The first batch of a segment is therefore never indexed, so a
valid offset entry always has ``position > 0`` and a valid time entry always
has ``relative_last_offset > 0``: an all-zero entry marks the end. Files grow
with ``posix_fallocate`` in small steps (zeros), are never shrunk while the
segment is live (another process may map them), and are bounded by
``segment.index.bytes``; a full index rolls the segment.

Entries are written only after the batch they point to is published, so a
crash leaves at worst a missing entry. Entries are still validated where they
are used; the owner rebuilds the index when one is wrong.

Process-safety: one writer at a time (the partition's append lock); readers in
any process call ``refresh()`` to see entries appended elsewhere.

Descriptors: an index holds its file's descriptor and its map (Python's mmap
keeps a duplicate of the descriptor). Two states hold fewer:

- *lazy*: the file was empty when opened (the first batch of a segment is never
  indexed, so every small segment's indexes are empty). No descriptor is kept;
  ``refresh`` looks at the file's size by its path and opens it once entries
  appear (written by another process), ``append`` opens it to grow it.
- *frozen*: the segment is sealed, so the index never changes again (a rebuild
  writes new files and new objects); ``freeze()`` closes the descriptor and
  keeps the map.

So an open partition whose active segment has no index entry yet holds 4
descriptors instead of 6, and a sealed segment's indexes one each instead of
two (none when empty). The rare calls that need a descriptor in these states (a
sync, recovery's rewrite in place) open the file again by its path.
"""

from __future__ import annotations

import bisect
import errno
import mmap
import os
import struct
import sys
import threading
from array import array

from .._fs import fs, unmap
from ..errors import StorageIOError

_GROW_MIN = 4096
_GROW_MAX = 64 * 1024


_U32 = struct.Struct("<I")
_BIG_ENDIAN = sys.byteorder == "big"
assert array("I").itemsize == 4


class _FixedIndex:
    ENTRY: struct.Struct
    VALID_AT: int  # byte offset, inside an entry, of a u32 that is non-zero in every valid entry

    __slots__ = (
        "_fd",
        "_fd_lock",
        "_frozen",
        "_lazy",
        "_mapped",
        "_mm",
        "count",
        "max_entries",
        "path",
        "writable",
    )

    def __init__(self, path: str, max_bytes: int, *, writable: bool = True) -> None:
        self.path = path
        self.writable = writable
        self.max_entries = max(1, max_bytes // self.ENTRY.size)
        self._mm: mmap.mmap | None = None
        self._mapped = 0
        self._frozen = False  # sealed: the map is kept, the descriptor closed
        self._lazy = False  # empty when opened: no descriptor until entries appear
        # guards the descriptor's uses against its closing (freeze) and opening (thaw)
        # in another thread: a reader's remap, the flusher's sync and freeze
        self._fd_lock = threading.Lock()
        self.count = 0
        if not writable and not os.path.exists(path):
            self._fd = -1  # a read-only view of a segment whose index is missing
            return
        self._fd = fs.open(path, create=writable, write=writable)
        try:
            self._remap()
            self.count = self._find_count(0)
        except BaseException:
            self.close()  # no descriptor left behind by a failed open
            raise
        if not self._mapped:
            fd, self._fd = self._fd, -1
            self._lazy = True
            try:
                fs.close(fd)
            except StorageIOError:
                pass  # (released all the same)

    # -- mapping -------------------------------------------------------------
    def _remap(self) -> None:
        with self._fd_lock:
            self._remap_locked()

    def _remap_locked(self) -> None:
        if self._fd < 0:
            if not self._lazy:
                return
            try:
                if os.lstat(self.path).st_size < self.ENTRY.size:
                    return  # still empty
                self._thaw_locked()
            except (OSError, StorageIOError):
                return  # (gone: the segment was deleted; nothing to see)
        size = fs.size(self._fd)
        size -= size % self.ENTRY.size
        if size == self._mapped:
            return
        self._mm = fs.map(self._fd, size, write=self.writable, path=self.path) if size else None
        self._mapped = size

    def _capacity(self) -> int:
        return self._mapped // self.ENTRY.size

    def _valid(self, i: int) -> bool:
        assert self._mm is not None
        return bool(_U32.unpack_from(self._mm, i * self.ENTRY.size + self.VALID_AT)[0])

    def _find_count(self, known: int) -> int:
        """Number of valid entries: the prefix before the first all-zero entry."""
        hi = self._capacity()
        if known >= hi or not self._valid(known):
            return min(known, hi)
        # gallop then bisect: entries appended by others since ``known``
        step = 1
        lo = known + 1
        while lo + step <= hi and self._valid(lo + step - 1):
            lo += step
            step *= 2
        hi = min(hi, lo + step)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._valid(mid):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def refresh(self) -> None:
        """See entries appended by other processes."""
        if self.count >= self._capacity():
            self._remap()
        self.count = self._find_count(self.count)
        if self.count >= self._capacity():
            # every mapped entry is valid: the file may have grown past our map
            self._remap()
            self.count = self._find_count(self.count)

    # -- access --------------------------------------------------------------
    def entry(self, i: int) -> tuple[int, int]:
        assert self._mm is not None
        a, b = self.ENTRY.unpack_from(self._mm, i * self.ENTRY.size)
        return int(a), int(b)

    def entries(self) -> list[tuple[int, int]]:
        """Every valid entry, in order (unpacked from one copy of the mapped prefix)."""
        if not self.count:
            return []
        assert self._mm is not None
        return list(self.ENTRY.iter_unpack(self._mm[: self.count * self.ENTRY.size]))

    @property
    def has_file(self) -> bool:
        """False for a read-only view of a segment whose index file is missing."""
        return self._fd >= 0 or self._frozen or self._lazy

    def has_partial_entry(self) -> bool:
        """True if the file's size (asked of the file, not the map) is not a whole
        number of entries."""
        with self._fd_lock:
            self._thaw_locked()
            return fs.size(self._fd) % self.ENTRY.size != 0

    # -- descriptors -------------------------------------------------------------
    def freeze(self) -> None:
        """The segment is sealed: close the descriptor, keep the map (module docstring).
        The entries are all there: a sealed segment's index only changes by a
        rebuild (new files, new objects) or by recovery, which ``_thaw`` serves."""
        try:
            self.refresh()  # (every entry, in case another process wrote the last ones)
        except StorageIOError:
            return  # keep the descriptor: nothing is lost but one descriptor
        with self._fd_lock:
            if self._fd < 0:
                if self._lazy:  # (empty, and it will stay so)
                    self._lazy, self._frozen = False, True
                return
            fd, self._fd = self._fd, -1
            self._frozen = True
            try:
                fs.close(fd)
            except StorageIOError:
                pass  # (released all the same)

    def unfreeze(self) -> None:
        """The segment is no longer sealed (recovery cut its seal): take the descriptor
        again, so that entries appended later (by any process) are seen and synced."""
        if self._frozen:
            with self._fd_lock:
                if self._frozen:
                    self._thaw_locked()

    def _thaw_locked(self) -> None:
        """Open the file for a call that needs the descriptor: a lazy index that grows,
        or recovery (with exclusive use of the directory) rewriting a sealed one."""
        if self._frozen or self._lazy:
            self._fd = fs.open(self.path, write=self.writable)
            self._frozen = self._lazy = False

    @property
    def is_full(self) -> bool:
        return self.count >= self.max_entries

    def _append(self, a: int, b: int) -> None:
        if self.count >= self._capacity():
            need = (self.count + 1) * self.ENTRY.size
            grow = min(max(self._mapped, _GROW_MIN), _GROW_MAX)
            size = min(max(need, self._mapped + grow), self.max_entries * self.ENTRY.size)
            size = max(size, need)
            with self._fd_lock:
                self._thaw_locked()
                fs.fallocate(self._fd, 0, size, self.path)
                self._remap_locked()
        assert self._mm is not None
        self.ENTRY.pack_into(self._mm, self.count * self.ENTRY.size, a, b)
        self.count += 1

    def truncate_entries(self, count: int) -> None:
        """Forget entries from ``count`` on (zero them). Only with no other process using it."""
        if count >= self.count:
            return
        assert self._mm is not None
        start = count * self.ENTRY.size
        end = self.count * self.ENTRY.size
        self._mm[start:end] = bytes(end - start)
        self.count = count

    def sync(self) -> None:
        with self._fd_lock:
            if self._lazy:
                return  # empty when opened, and nothing written through this object since
            if not self._frozen:
                fs.sync(self._fd, self.path)
                return
        # through a new descriptor (the data to sync is the file's, not the descriptor's)
        try:
            fd = fs.open(self.path, write=False)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return  # deleted (retention in another process): nothing to keep
            raise
        try:
            fs.sync(fd, self.path)
        finally:
            fs.close(fd)

    def close(self) -> None:
        """Release the map and the descriptor (idempotent; see ``FileRecords.close``)."""
        with self._fd_lock:
            self._frozen = self._lazy = False
            mm, self._mm = self._mm, None
            self._mapped = 0
            fd, self._fd = self._fd, -1
        unmap(mm)
        if fd >= 0:
            fs.close(fd)

    def size_bytes(self) -> int:
        return self._mapped


class OffsetIndex(_FixedIndex):
    """``(relative_last_offset u32, position u32)`` entries; see the module docstring."""

    ENTRY = struct.Struct("<II")
    VALID_AT = 4
    __slots__ = ("_rels",)

    def __init__(self, path: str, max_bytes: int, *, writable: bool = True) -> None:
        # The entries' relative offsets, copied from the map as they are first
        # searched: a random read bisects them with no Python loop. Entries only
        # change in place through ``truncate_entries`` (recovery, this object), which
        # drops the copy; another process's rebuild writes new files.
        self._rels: array[int] = array("I")
        super().__init__(path, max_bytes, writable=writable)

    def truncate_entries(self, count: int) -> None:
        self._rels = array("I")
        super().truncate_entries(count)

    def append(self, relative_last_offset: int, position: int) -> None:
        self._append(relative_last_offset, position)

    def truncate_at_position(self, position: int) -> int:
        """Forget entries pointing at or past ``position`` (only with no other process
        using the index); returns the relative offset of the last entry kept, or 0."""
        n = self.count
        while n and self.entry(n - 1)[1] >= position:
            n -= 1
        self.truncate_entries(n)
        return self.entry(n - 1)[0] if n else 0

    def last_position(self) -> int:
        """Start position of the last indexed batch, or 0."""
        return self.entry(self.count - 1)[1] if self.count else 0

    def floor(self, relative_offset: int) -> int:
        """Index of the last entry whose relative last offset is <= the target, or -1."""
        rels = self._rels
        if len(rels) != self.count:
            rels = self._cache_rels()
        return bisect.bisect_right(rels, relative_offset) - 1

    def _cache_rels(self) -> array[int]:
        """``_rels`` for the first ``count`` entries, read from the map. A new array,
        never the old one changed: readers in other threads may be bisecting it."""
        rels, n = self._rels, self.count
        if len(rels) > n:
            rels = rels[:n]
        else:
            mm = self._mm
            assert mm is not None
            words = array("I", mm[len(rels) * 8 : n * 8])
            if _BIG_ENDIAN:
                words.byteswap()
            rels = rels + words[::2]
        self._rels = rels
        return rels

    def lower(self, relative_offset: int) -> int:
        """Index of the last entry whose relative last offset is < the target, or -1."""
        return self.floor(relative_offset - 1) if relative_offset > 0 else -1


class TimeIndex(_FixedIndex):
    """``(max_timestamp i64, relative_last_offset u32)`` entries; see the module docstring."""

    ENTRY = struct.Struct("<qI")
    VALID_AT = 8
    __slots__ = ()

    def append(self, max_timestamp: int, relative_last_offset: int) -> None:
        self._append(max_timestamp, relative_last_offset)

    def truncate_after(self, relative_offset: int) -> None:
        """Forget entries past ``relative_offset`` (only with no other process using it)."""
        m = self.count
        while m and self.entry(m - 1)[1] > relative_offset:
            m -= 1
        self.truncate_entries(m)

    def last_timestamp(self) -> int | None:
        return self.entry(self.count - 1)[0] if self.count else None

    def lower(self, timestamp: int) -> int:
        """Index of the last entry whose timestamp is < the target, or -1."""
        lo, hi = 0, self.count
        unpack = self.ENTRY.unpack_from
        mm = self._mm
        while lo < hi:
            mid = (lo + hi) // 2
            if unpack(mm, mid * 12)[0] < timestamp:  # type: ignore[arg-type]
                lo = mid + 1
            else:
                hi = mid
        return lo - 1
