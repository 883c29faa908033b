"""The data directory: its format version, who has it open, and whether it was shut down cleanly.

Layout::

    <data>/
      streamlog.json            {"format_version": 1, ...}; a newer major version is refused
      meta/
        instance.lock           flock: shared while open, exclusive for recovery and last close
        clean-shutdown          present only while nobody has the directory open and the
                                last user closed it cleanly (everything synced)
        topics/<topic>.json     the topic catalog (coordination layer)
      topics/<topic>/<partition>/   partition logs
      trash/                    deleted topics on their way out

Open protocol: try the instance lock exclusively without waiting. The first
opener gets it: if ``clean-shutdown`` is missing, every partition needs
recovery, which the opener runs while still exclusive; it then removes the
marker (so a crash from now on is noticed) and downgrades to shared. Later
openers wait for a shared lock, so they never see a directory mid-recovery.
Close: try to upgrade to exclusive without waiting; whoever gets it is the
last user, syncs the tail segments of every partition and writes the marker.

Process-safe by construction; one ``DataDir`` per handle.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import threading
import time
from collections.abc import Callable

from .. import _layout
from .._fs import INDEX_SUFFIX, LOG_SUFFIX, TIMEINDEX_SUFFIX, crashpoint, fs
from ..errors import (
    DataDirectoryError,
    LockTimeoutError,
    MetadataCorruptError,
    StorageIOError,
    UnsupportedFormatError,
)

FORMAT_VERSION = 1
FORMAT_FILE = _layout.FORMAT_FILE
_MAX_META = 1 << 20

# Partition directories of this process whose data failed to sync (fsyncgate): the
# kernel may have dropped their pages, so the directory is not clean until they are
# recovered, and their files must not be synced again as if nothing had happened.
_failed_syncs: set[str] = set()
_failed_lock = threading.Lock()


def note_failed_sync(partition_dir: str) -> None:
    with _failed_lock:
        _failed_syncs.add(os.path.abspath(partition_dir))


def forget_failed_sync(partition_dir: str) -> None:
    """The partition was recovered: it no longer stands in the way of a clean close."""
    with _failed_lock:
        _failed_syncs.discard(os.path.abspath(partition_dir))


def _failed_under(root: str) -> bool:
    prefix = os.path.join(root, "")
    with _failed_lock:
        return any(p.startswith(prefix) for p in _failed_syncs)


def read_json(path: str) -> dict[str, object]:
    """Read a small JSON object, raising ``MetadataCorruptError`` naming the file if it is bad."""
    try:
        raw = fs.read_file(path, _MAX_META)
    except StorageIOError as e:
        if e.errno == errno.EFBIG:
            raise MetadataCorruptError("metadata file is implausibly large", path=path) from e
        raise
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:  # deep nesting
        what = "empty" if not raw else "not valid JSON"
        raise MetadataCorruptError(f"metadata file is {what}", path=path) from e
    if not isinstance(data, dict):
        raise MetadataCorruptError("metadata file does not hold a JSON object", path=path)
    return data


def refuse_link(path: str) -> None:
    """Raise ``DataDirectoryError`` if ``path`` is a symbolic link (see ``DataDir``)."""
    if os.path.islink(path):
        raise DataDirectoryError(
            "a symbolic link inside the data directory (refused: streamlog never follows one)",
            path=path,
        )


def refuse_links_in(directory: str) -> None:
    """``refuse_link`` for ``directory`` and every entry directly in it (missing is fine)."""
    refuse_link(directory)
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_symlink():
                    refuse_link(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        pass


def write_json(path: str, data: dict[str, object]) -> None:
    fs.write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


class DataDir:
    """Opens and closes a data directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 30.0) -> None:
        self.root = os.path.abspath(os.fspath(path))
        self.meta = _layout.meta_dir(self.root)
        self.topics_dir = _layout.topics_dir(self.root)
        self.trash = _layout.trash_dir(self.root)
        self._fd = -1
        self._pid = os.getpid()
        self.needs_recovery = False
        self.exclusive = False
        self._prepare()
        try:
            self._lock(lock_timeout)
        except BaseException:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                fs.close(fd)
            raise

    def _prepare(self) -> None:
        root = self.root
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise DataDirectoryError(f"cannot use data directory ({e.strerror})", path=root) from e
        if st is not None and not stat.S_ISDIR(st.st_mode):
            if stat.S_ISLNK(st.st_mode) and os.path.isdir(root):
                pass  # a symlink the user made to their own directory is fine
            else:
                raise DataDirectoryError(
                    "data directory path exists and is not a directory", path=root
                )
        fmt = _layout.format_file(root)
        if st is not None and os.path.exists(fmt):
            self._check_format(fmt)
        if st is not None:
            self._refuse_links()
        try:
            for d in (root, self.meta, _layout.catalog_dir(root), self.topics_dir):
                # (new entries synced: topic metadata and partitions live below them)
                fs.makedirs(d, sync_parents=True)
        except StorageIOError as e:
            raise DataDirectoryError(
                f"cannot create the data directory ({e.strerror})", path=e.filename or root
            ) from e
        if not os.access(root, os.W_OK | os.X_OK) or not os.access(self.meta, os.W_OK):
            raise DataDirectoryError("data directory is not writable", path=root)
        if not os.path.exists(fmt):
            try:
                write_json(
                    fmt, {"format_version": FORMAT_VERSION, "created_ms": int(time.time() * 1000)}
                )
            except StorageIOError as e:
                raise DataDirectoryError(
                    f"cannot write {FORMAT_FILE} ({e.strerror})", path=root
                ) from e

    def _refuse_links(self) -> None:
        """Refuse symbolic links planted where streamlog's own directories belong.

        The data directory itself may be a link the user made; below it, a link
        would make streamlog read, write, recover or delete files somewhere else.
        Files are opened with ``O_NOFOLLOW``; directories are checked here (and
        partition directories when a partition is opened).
        """
        root = self.root
        for d in (self.meta, _layout.catalog_dir(root), self.topics_dir, self.trash):
            refuse_link(d)
        refuse_links_in(self.topics_dir)

    @staticmethod
    def _check_format(path: str) -> None:
        data = read_json(path)
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise MetadataCorruptError("format_version missing or not an integer", path=path)
        if version < 1:
            raise MetadataCorruptError(f"unknown format_version {version}", path=path)
        if version > FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"data directory format {version} is newer than this streamlog supports "
                f"({FORMAT_VERSION}); upgrade streamlog",
                path=path,
            )

    def _lock(self, timeout: float) -> None:
        self._fd = fs.open(_layout.instance_lock(self.root), create=True)
        marker = _layout.clean_marker(self.root)
        if not fs.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, self.meta):
            self._wait_shared(timeout)
            return
        self.exclusive = True
        self.needs_recovery = not os.path.exists(marker) and self._has_partitions()
        # The caller recovers while we are exclusive, then calls ``opened``.

    def opened(self) -> None:
        """Recovery is done: mark the directory in use and let other processes in."""
        marker = _layout.clean_marker(self.root)
        if os.path.exists(marker):
            fs.unlink(marker)
            fs.sync_dir(self.meta)
            crashpoint("open.marker_removed")
        if self.exclusive:
            fs.flock(self._fd, fcntl.LOCK_SH, self.meta)
        self.needs_recovery = False
        self.exclusive = False

    def _wait_shared(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            if fs.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB, self.meta):
                return
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    "another process holds the data directory exclusively (recovering?) "
                    f"for more than {timeout:.1f}s",
                    path=self.meta,
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _has_partitions(self) -> bool:
        try:
            with os.scandir(self.topics_dir) as it:  # closed: a leaked iterator warns
                return any(True for _ in it)
        except FileNotFoundError:
            return False

    def partition_dirs(self) -> list[tuple[str, int, str]]:
        """``(topic, partition, path)`` of every partition directory on disk."""
        out = []
        for topic in sorted(fs.listdir(self.topics_dir)):
            tdir = os.path.join(self.topics_dir, topic)
            refuse_link(tdir)
            if not os.path.isdir(tdir):
                continue
            for p in fs.listdir(tdir):
                if p.isdigit():
                    out.append((topic, int(p), os.path.join(tdir, p)))
        return out

    def close(self, *, sync_also: Callable[[], None] | None = None) -> None:
        """Release the directory. The last user syncs the tails and marks it clean;
        ``sync_also`` (the layers above: committed offsets) runs first, under the
        exclusive lock, so the marker never covers data of theirs still unsynced."""
        if self._fd < 0:
            return
        if os.getpid() != self._pid:
            # A forked child shares the parent's lock through the inherited file
            # description; converting it would change the parent's lock.
            fd, self._fd = self._fd, -1
            fs.close(fd)
            return
        try:
            if not fs.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, self.meta):
                return  # others still have it open; the last one marks it clean
            if self.needs_recovery:
                return  # the open failed before recovery finished: the directory is not clean
            if _failed_under(self.root):
                return  # a sync failed: not clean (and re-syncing would prove nothing)
            if sync_also is not None:
                sync_also()
            self._sync_tails()
            crashpoint("close.tails_synced")
            fs.write_atomic(_layout.clean_marker(self.root), b"")
        finally:
            fd, self._fd = self._fd, -1
            fs.close(fd)

    def _sync_tails(self) -> None:
        """fdatasync the last two segments (with their indexes: the clean-shutdown marker
        says they need no rebuild) and the state of every partition; cheap when clean."""
        pdirs = [pdir for _topic, _p, pdir in self.partition_dirs()]
        for pdir in pdirs:
            try:
                logs = sorted(n for n in fs.listdir(pdir) if n.endswith(LOG_SUFFIX))
            except StorageIOError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise
            tails = [n[: -len(LOG_SUFFIX)] for n in logs[-2:]]
            suffixes = (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX)
            names = [t + suffix for t in tails for suffix in suffixes]
            for name in [*names, "state"]:
                path = os.path.join(pdir, name)
                try:
                    fd = fs.open(path, write=False)
                except StorageIOError as e:
                    if e.errno == errno.ENOENT:
                        continue
                    raise
                try:
                    fs.sync(fd, path)
                except StorageIOError:
                    # fsyncgate: no later close in this process may take a retried
                    # sync of these files as proof (the marker is not written now)
                    note_failed_sync(pdir)
                    raise
                finally:
                    fs.close(fd)
            fs.sync_dir(pdir)
        # the partitions' entries in their topic directories, the topics' in topics/
        for tdir in sorted({os.path.dirname(pdir) for pdir in pdirs}):
            fs.sync_dir(tdir)
        fs.sync_dir(self.topics_dir)
