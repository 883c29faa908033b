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
import time

from .._fs import LOG_SUFFIX, fs
from ..errors import (
    DataDirectoryError,
    LockTimeoutError,
    MetadataCorruptError,
    StorageIOError,
    UnsupportedFormatError,
)

FORMAT_VERSION = 1
FORMAT_FILE = "streamlog.json"
_MAX_META = 1 << 20


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


def write_json(path: str, data: dict[str, object]) -> None:
    fs.write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


class DataDir:
    """Opens and closes a data directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 30.0) -> None:
        self.root = os.path.abspath(os.fspath(path))
        self.meta = os.path.join(self.root, "meta")
        self.topics_dir = os.path.join(self.root, "topics")
        self.trash = os.path.join(self.root, "trash")
        self._fd = -1
        self._pid = os.getpid()
        self.needs_recovery = False
        self.exclusive = False
        self._prepare()
        self._lock(lock_timeout)

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
        fmt = os.path.join(root, FORMAT_FILE)
        if st is not None and os.path.exists(fmt):
            self._check_format(fmt)
        try:
            for d in (root, self.meta, os.path.join(self.meta, "topics"), self.topics_dir):
                fs.makedirs(d)
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
        self._fd = fs.open(os.path.join(self.meta, "instance.lock"), create=True)
        marker = os.path.join(self.meta, "clean-shutdown")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._wait_shared(timeout)
            return
        self.exclusive = True
        self.needs_recovery = not os.path.exists(marker) and self._has_partitions()
        # The caller recovers while we are exclusive, then calls ``opened``.

    def opened(self) -> None:
        """Recovery is done: mark the directory in use and let other processes in."""
        marker = os.path.join(self.meta, "clean-shutdown")
        if os.path.exists(marker):
            fs.unlink(marker)
            fs.sync_dir(self.meta)
        if self.exclusive:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        self.needs_recovery = False
        self.exclusive = False

    def _wait_shared(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        "another process holds the data directory exclusively (recovering?) "
                        f"for more than {timeout:.1f}s",
                        path=self.meta,
                    ) from None
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
            if not os.path.isdir(tdir):
                continue
            for p in fs.listdir(tdir):
                if p.isdigit():
                    out.append((topic, int(p), os.path.join(tdir, p)))
        return out

    def close(self) -> None:
        if self._fd < 0:
            return
        if os.getpid() != self._pid:
            # A forked child shares the parent's lock through the inherited file
            # description; converting it would change the parent's lock.
            os.close(self._fd)
            self._fd = -1
            return
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # others still have it open; the last one marks it clean
            if self.needs_recovery:
                return  # the open failed before recovery finished: the directory is not clean
            self._sync_tails()
            fs.write_atomic(os.path.join(self.meta, "clean-shutdown"), b"")
        finally:
            os.close(self._fd)
            self._fd = -1

    def _sync_tails(self) -> None:
        """fdatasync the last two segments and the state of every partition (cheap when clean)."""
        for _topic, _p, pdir in self.partition_dirs():
            try:
                logs = sorted(n for n in os.listdir(pdir) if n.endswith(LOG_SUFFIX))
            except FileNotFoundError:
                continue
            for name in [*logs[-2:], "state"]:
                try:
                    fd = os.open(os.path.join(pdir, name), os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
            fs.sync_dir(pdir)
