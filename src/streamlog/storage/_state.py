"""Per-partition shared state and the append lock.

``PartitionState`` is a 4 KiB file, ``state``, that every process using the
partition maps (little-endian)::

    off  field
      0  u32 magic 'SLPS', u32 version 1
      8  i64 next_offset      tail hint: offset the next batch gets
     16  i64 active_base      tail hint: base offset of the active segment
     24  u64 active_position  tail hint: where the next frame goes
     32  i64 log_start_offset  durable: first offset a reader may ask for
     40  i64 recovery_point    durable: everything below is known synced
     48  u64 checksum          xxh3-64 of bytes [32, 48)
     56  u64 clean_generation  bumped by the cleaner around each swap of segments
                               (0 in files written before compaction existed)

The tail hint is written after every append, so other processes learn of new
data by reading one word from shared memory instead of touching the log; it
is only a hint (the frames are the truth) and may lag after a crash. The two
durable fields are written together with their checksum and synced when it
matters; an invalid checksum after a power cut means "unknown", and recovery
falls back to the conservative values (log start = first segment, recovery
point = 0, a full scan). ``clean_generation`` tells processes that cached
sealed segments that the cleaner replaced some (``_cleaner``): they reopen
them. It is a hint too (not synced): a process that opens the partition after
a crash opens the segments afresh anyway.

``AppendLock`` serialises writers of one partition across threads (a
``threading.Lock``) and processes (``flock`` on ``<partition>/.lock``, which
the kernel drops when the holder dies). ``filelock`` is used for metadata
locks; it is not used here because it opens and closes the lock file on every
acquisition and sleeps 50 ms between attempts under contention, while this
lock is taken once per batch on the hot path. A holder that is stopped
(SIGSTOP) keeps the lock, so acquisition gives up with ``LockTimeoutError``
after the configured timeout.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import struct
import threading
import time

import xxhash

from .._fs import fs, unmap
from ..errors import LockTimeoutError, StorageIOError, UnsupportedFormatError

_MAGIC = 0x53504C53  # 'SLPS'
_VERSION = 1
_SIZE = 4096
_HEAD = struct.Struct("<II")
_HINT = struct.Struct("<qqQ")
_DURABLE = struct.Struct("<qq")
_SUM = struct.Struct("<Q")
_DURABLE_AND_SUM = struct.Struct("<qqQ")  # bytes [32, 56): the durable fields and their sum
_GENERATION = struct.Struct("<Q")  # bytes [56, 64): the clean generation


class PartitionState:
    """The mapped ``state`` file of a partition (see the module docstring)."""

    def __init__(self, path: str, *, writable: bool = True) -> None:
        self.path = path
        self.writable = writable
        fd = fs.open(path, create=writable, write=writable)
        mm: mmap.mmap | None = None
        try:
            if writable and fs.size(fd) < _SIZE:
                fs.fallocate(fd, 0, _SIZE, path)
            size = fs.size(fd)
            if size < _SIZE:
                raise StorageIOError(errno.EINVAL, "partition state file is too small", path)
            mm = fs.map(fd, _SIZE, write=writable, path=path)
        finally:
            try:
                fs.close(fd)  # (the map keeps its own descriptor)
            except BaseException:
                unmap(mm)  # a failed open holds nothing (a traceback would keep the map)
                raise
        self._mm: mmap.mmap = mm
        # (durable fields and checksum as last verified, their log start): see log_start
        self._start_seen: tuple[tuple[int, int, int], int] | None = None
        magic, version = _HEAD.unpack_from(self._mm, 0)
        if magic == _MAGIC and version > _VERSION:
            self.close()
            raise UnsupportedFormatError(
                f"partition state version {version} is newer than this streamlog supports "
                f"({_VERSION}); upgrade streamlog",
                path=path,
            )
        if magic == 0 and writable:
            _HEAD.pack_into(self._mm, 0, _MAGIC, _VERSION)
            self.write_durable(0, 0)

    def hint(self) -> tuple[int, int, int]:
        a, b, c = _HINT.unpack_from(self._mm, 8)
        return int(a), int(b), int(c)

    def set_hint(self, next_offset: int, active_base: int, position: int) -> None:
        _HINT.pack_into(self._mm, 8, next_offset, active_base, position)

    def durable(self) -> tuple[int, int] | None:
        """``(log_start_offset, recovery_point)``, or None if the checksum fails."""
        raw = self._mm[32:48]
        if _SUM.unpack_from(self._mm, 48)[0] != xxhash.xxh3_64_intdigest(raw):
            return None
        start, point = _DURABLE.unpack(raw)
        return int(start), int(point)

    def log_start(self) -> int:
        """The durable log start, or -1 if its checksum fails (callers then take the
        first segment's base offset).

        Read on every fetch, so the checksum is computed only when the durable words
        changed: the three words (fields and checksum) are compared with those last
        verified, one unpack instead of a copy and a hash. Equal words verify as they
        did (a torn read that differs goes the long way)."""
        words = _DURABLE_AND_SUM.unpack_from(self._mm, 32)
        seen = self._start_seen
        if seen is not None and seen[0] == words:
            return seen[1]
        start, point, checksum = words
        if xxhash.xxh3_64_intdigest(_DURABLE.pack(start, point)) == checksum:
            self._start_seen = (words, int(start))
            return int(start)
        durable = self.durable()  # maybe a writer in another process between its two stores
        return -1 if durable is None else durable[0]

    def write_durable(self, log_start: int, recovery_point: int, *, sync: bool = False) -> None:
        raw = _DURABLE.pack(log_start, recovery_point)
        self._mm[32:48] = raw
        _SUM.pack_into(self._mm, 48, xxhash.xxh3_64_intdigest(raw))
        if sync:
            self.sync()

    def clean_generation(self) -> int:
        """The cleaner's generation (an aligned 8-byte word: read and written whole)."""
        return int(_GENERATION.unpack_from(self._mm, 56)[0])

    def bump_clean_generation(self) -> int:
        """Increment the clean generation (by the holder of the partition's clean lock
        only, so no two processes race on it); returns the new value."""
        gen = (self.clean_generation() + 1) & (2**64 - 1)
        _GENERATION.pack_into(self._mm, 56, gen)
        return gen

    def sync(self) -> None:
        fs.msync(self._mm, self.path)

    def close(self) -> None:
        unmap(self._mm)  # (idempotent)


class AppendLock:
    """Exclusive per-partition lock across threads and processes (see the module docstring).

    Fork-safe: a child process reopens the lock file, because a file
    description inherited across ``fork`` would share the parent's lock.
    """

    def __init__(self, path: str, timeout: float, *, what: str = "append lock") -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self._thread_lock = threading.Lock()
        self._fd = -1
        self._pid = -1
        self._open()

    def _open(self) -> None:
        if self._fd >= 0:
            try:
                fs.close(self._fd)
            except StorageIOError:
                pass
        self._fd = fs.open(self.path, create=True)
        self._pid = os.getpid()

    def acquire(self, timeout: float | None = None) -> None:
        limit = self.timeout if timeout is None else timeout
        if not self._thread_lock.acquire(timeout=limit if limit >= 0 else -1):
            raise LockTimeoutError(
                f"{self.what} still held by another thread after {limit:.3f}s", path=self.path
            )
        try:
            if self._pid != os.getpid():
                self._open()
            if fs.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, self.path):
                return
            deadline = time.monotonic() + limit
            delay = 20e-6
            while True:
                time.sleep(delay)
                if fs.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, self.path):
                    return
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"{self.what} held by another process for more than {limit:.3f}s "
                        "(a stopped or hung process?)",
                        path=self.path,
                    )
                delay = min(delay * 2, 0.002)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        """Release the lock. Never fails: what the holder did under it is done (an
        append is in the log), so a failing unlock must not be reported as its failure.
        If ``flock(LOCK_UN)`` fails, closing the descriptor drops the lock all the same
        (even a failing ``close(2)`` releases it), and the next ``acquire`` reopens."""
        try:
            fs.flock(self._fd, fcntl.LOCK_UN, self.path)
        except StorageIOError:
            fd, self._fd = self._fd, -1
            self._pid = -1  # (acquire opens the file again)
            try:
                fs.close(fd)
            except StorageIOError:
                pass
        finally:
            self._thread_lock.release()

    def __enter__(self) -> AppendLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            fs.close(fd)
