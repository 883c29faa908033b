"""The one door between streamlog's storage and the operating system.

Every system call that touches the data directory goes through ``fs`` (an
instance of ``FileSystem``), so tests can replace a method to inject faults
(ENOSPC at the k-th fallocate, EIO on sync) or record what was synced to
simulate a power cut. ``OSError`` is converted here, once, into
``StorageIOError`` (which is still an ``OSError``, with the same ``errno``).

Crash points: ``crashpoint(name)`` kills the process with SIGKILL at the n-th
pass of a named point when ``STREAMLOG_CRASHPOINT=name:n`` is set in the
environment (several as ``a:1,b:3``). With the variable unset the call costs
one global lookup. ``docs/reliability.md`` lists the points.

File name rules live here too: 20-digit zero-padded base offsets (so ``ls``
sorts numerically) and the suffixes, as Kafka's ``LogFileUtils``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import shutil
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .errors import StorageIOError

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"
TEMP_SUFFIXES = (".tmp", ".cleaned", ".swap", ".deleted")
DIR_MODE = 0o700
FILE_MODE = 0o600

T = TypeVar("T")


def offset_to_name(offset: int) -> str:
    return f"{offset:020d}"


def name_to_offset(name: str) -> int | None:
    """Base offset of a segment file name, or None if ``name`` is not one."""
    stem, dot, _suffix = name.partition(".")
    if not dot or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


@contextmanager
def converted(filename: str | None = None) -> Iterator[None]:
    """Convert an ``OSError`` raised inside the block into ``StorageIOError``."""
    try:
        yield
    except StorageIOError:
        raise
    except OSError as e:
        raise StorageIOError(
            e.errno or errno.EIO, e.strerror or str(e), e.filename or filename
        ) from e


def _wrap(filename: str | None, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StorageIOError:
        raise
    except OSError as e:
        raise StorageIOError(
            e.errno or errno.EIO, e.strerror or str(e), e.filename or filename
        ) from e


class FileSystem:
    """The I/O facade. Methods raise ``StorageIOError`` for any OS failure.

    Thread-safe: it holds no state (subclasses used by tests may).
    """

    def open(
        self, path: str, *, create: bool = False, write: bool = True, truncate: bool = False
    ) -> int:
        """Open a file (never through a symlink: ``O_NOFOLLOW``); created with mode 0600."""
        flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC | os.O_NOFOLLOW
        if create:
            flags |= os.O_CREAT
        if truncate:
            flags |= os.O_TRUNC
        return _wrap(path, lambda: os.open(path, flags, FILE_MODE))

    def close(self, fd: int) -> None:
        _wrap(None, lambda: os.close(fd))

    def size(self, fd: int) -> int:
        return _wrap(None, lambda: os.fstat(fd).st_size)

    def fallocate(self, fd: int, offset: int, length: int, path: str | None = None) -> None:
        """Reserve blocks so that writes through a map can never hit ENOSPC (a SIGBUS)."""
        _wrap(path, lambda: os.posix_fallocate(fd, offset, length))

    def pwrite(self, fd: int, data: bytes, offset: int, path: str | None = None) -> None:
        def go() -> None:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + done)

        _wrap(path, go)

    def pread(self, fd: int, length: int, offset: int, path: str | None = None) -> bytes:
        return _wrap(path, lambda: os.pread(fd, length, offset))

    def truncate(self, fd: int, length: int, path: str | None = None) -> None:
        _wrap(path, lambda: os.ftruncate(fd, length))

    def sync(self, fd: int, path: str | None = None) -> None:
        """fdatasync: the file's data (written by pwrite or through a map) reaches the disk."""
        _wrap(path, lambda: os.fdatasync(fd))

    def fsync(self, fd: int, path: str | None = None) -> None:
        """fsync: the file's data and metadata reach the disk (temporary metadata files)."""
        _wrap(path, lambda: os.fsync(fd))

    def msync(self, mm: mmap.mmap, path: str | None = None) -> None:
        """msync(MS_SYNC) of a whole map: what was stored through it reaches the disk."""
        _wrap(path, mm.flush)

    def map(
        self, fd: int, length: int, *, write: bool = True, path: str | None = None
    ) -> mmap.mmap:
        access = mmap.ACCESS_WRITE if write else mmap.ACCESS_READ
        return _wrap(path, lambda: mmap.mmap(fd, length, access=access))

    def replace(self, src: str, dst: str) -> None:
        _wrap(dst, lambda: os.replace(src, dst))

    def unlink(self, path: str) -> None:
        _wrap(path, lambda: os.unlink(path))

    def sync_dir(self, path: str) -> None:
        """fsync a directory, so that entries created or renamed in it survive power loss."""

        def go() -> None:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        _wrap(path, go)

    def makedirs(self, path: str, *, sync_parents: bool = False) -> None:
        """Create ``path`` and missing parents with mode 0700 (explicitly, past the umask).

        With ``sync_parents``, the parent of every directory created is fsynced
        afterwards, so the new entries survive power loss (a directory's own
        fsync does not make its entry in its parent durable).
        """

        def go() -> None:
            missing = []
            p = path
            while not os.path.isdir(p):
                missing.append(p)
                parent = os.path.dirname(p)
                if parent == p:
                    break
                p = parent
            for d in reversed(missing):
                try:
                    os.mkdir(d, DIR_MODE)
                except FileExistsError:
                    if not os.path.isdir(d):
                        raise
                    continue
                os.chmod(d, DIR_MODE)
                created.append(d)

        created: list[str] = []
        _wrap(path, go)
        if sync_parents:
            for parent in dict.fromkeys(os.path.dirname(d) for d in created):
                self.sync_dir(parent)

    def listdir(self, path: str) -> list[str]:
        return _wrap(path, lambda: os.listdir(path))

    def rmtree(self, path: str) -> None:
        """Remove a directory tree (links inside are removed, never followed); a tree
        already gone is not an error."""

        def go() -> None:
            try:
                shutil.rmtree(path)
            except FileNotFoundError:
                pass

        _wrap(path, go)

    def flock(self, fd: int, operation: int, path: str | None = None) -> bool:
        """``flock(2)``. With ``LOCK_NB``, returns False where the lock is held elsewhere
        (instead of raising ``BlockingIOError``); any other failure is ``StorageIOError``."""
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            if operation & fcntl.LOCK_NB:
                return False
            raise
        except OSError as e:
            raise StorageIOError(e.errno or errno.EIO, e.strerror or str(e), path) from e
        return True

    def write_atomic(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Replace ``path`` with ``data``: write a temporary file, sync, rename, sync the dir."""
        tmp = f"{path}.tmp"
        head, tail = os.path.split(path)
        if len(os.fsencode(tail)) > 250:  # NAME_MAX is 255: meta of a 249-character topic
            digest = hashlib.blake2b(os.fsencode(tail), digest_size=8).hexdigest()
            tmp = os.path.join(head, f"{tail[:200]}.{digest}.tmp")

        # Every step goes through the facade (so fault injection and the power-cut
        # model see them). ``open`` uses O_NOFOLLOW: a symlink planted at the
        # temporary name must not make us truncate and write a file outside.
        fd = self.open(tmp, create=True, truncate=True)
        try:
            self.pwrite(fd, data, 0, tmp)
            crashpoint("meta.tmp_written")
            if durable:
                self.fsync(fd, tmp)
                crashpoint("meta.tmp_synced")
        finally:
            self.close(fd)
        self.replace(tmp, path)
        crashpoint("meta.renamed")
        if durable:
            self.sync_dir(os.path.dirname(path) or ".")

    def bind_socket(self, path: str) -> socket.socket:
        """A non-blocking ``AF_UNIX`` datagram socket bound at ``path`` (mode 0600): a
        doorbell (``coordination._doorbell``)."""

        def go() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind(path)
                os.chmod(path, FILE_MODE)
            except BaseException:
                sock.close()
                raise
            return sock

        return _wrap(path, go)

    def send_datagram(self, sock: socket.socket, path: str) -> None:
        """``sendto`` one byte to the datagram socket bound at ``path`` (a doorbell's ring);
        ``sock`` is non-blocking: a full receive queue is ``EAGAIN``."""
        _wrap(path, lambda: sock.sendto(b"\x01", path))

    def read_file(self, path: str, limit: int) -> bytes:
        """Read a whole small file, refusing anything larger than ``limit`` bytes."""

        def go() -> bytes:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(errno.EINVAL, "not a regular file", path)
                if st.st_size > limit:
                    raise OSError(errno.EFBIG, f"file larger than {limit} bytes", path)
                return os.read(fd, limit + 1)
            finally:
                os.close(fd)

        return _wrap(path, go)


fs = FileSystem()


def unmap(mm: mmap.mmap | None) -> None:
    """Unmap ``mm`` now, which also closes the duplicate descriptor Python's mmap keeps,
    instead of whenever the last reference goes (a traceback kept with an error can
    hold one for long). While a view of it is alive (``BufferError``), the map goes
    with the last view."""
    if mm is None:
        return
    try:
        mm.close()
    except BufferError:
        pass


# ---------------------------------------------------------------- crash points

_crash_plan: dict[str, int] | None = None
_crash_counts: dict[str, int] = {}


def _load_crash_plan() -> dict[str, int] | None:
    spec = os.environ.get("STREAMLOG_CRASHPOINT")
    if not spec:
        return None
    plan = {}
    for item in spec.split(","):
        name, _, n = item.strip().partition(":")
        plan[name] = int(n or "1")
    return plan


_crash_plan = _load_crash_plan()


def crashpoint(name: str) -> None:
    """SIGKILL this process at the planned pass of ``name`` (tests only; see module doc)."""
    if _crash_plan is None:
        return
    target = _crash_plan.get(name)
    if target is None:
        return
    count = _crash_counts.get(name, 0) + 1
    _crash_counts[name] = count
    if count == target:
        os.kill(os.getpid(), signal.SIGKILL)


def reload_crash_plan() -> None:
    """Re-read ``STREAMLOG_CRASHPOINT`` (for tests that set it after import)."""
    global _crash_plan
    _crash_plan = _load_crash_plan()
    _crash_counts.clear()
