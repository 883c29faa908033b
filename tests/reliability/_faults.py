"""I/O errors injected at the k-th call of the facade ``streamlog._fs.fs`` (SQLite style).

``FaultInjector(k, errno, persistent=False)`` wraps every method of ``fs``:
the k-th call (counted over all methods, or only ``methods``) raises
``OSError(errno)`` converted as the facade converts it (``StorageIOError``);
with ``persistent`` every later call fails too. A sync (``sync``, ``fsync``,
``msync``, ``sync_dir``) that fails is remembered in ``failed_syncs``: after it,
Linux may have dropped the dirty pages (fsyncgate), so nothing synced through
that file may be acknowledged any more: a later successful sync of the same
file is recorded in ``resynced`` (it proves nothing).

A failing ``close`` still closes the descriptor, as ``close(2)`` does on Linux.
``hold`` makes a failing call wait on an event before raising, to open the
window between a failed ``fdatasync`` returning and the caller reacting.

``wrap_facade``/``restore_facade`` swap the facade's ``METHODS`` for wrappers (used here,
by the power-cut model ``_powercut.py`` and by ``test_io_seam.py``).
"""

from __future__ import annotations

import errno as errno_mod
import os
import threading
from collections.abc import Callable
from typing import Any

from streamlog._fs import fs
from streamlog.errors import StorageIOError

# the facade methods that make a system call (``write_atomic`` is made of them): fault
# injection here, the power-cut model (_powercut.py) and test_io_seam.py wrap these
METHODS = (
    "open",
    "close",
    "size",
    "fallocate",
    "pwrite",
    "pread",
    "truncate",
    "sync",
    "fsync",
    "msync",
    "map",
    "replace",
    "unlink",
    "sync_dir",
    "makedirs",
    "listdir",
    "read_file",
    "rmtree",
    "flock",
    "bind_socket",
    "send_datagram",
)
SYNCS = ("sync", "fsync", "msync", "sync_dir")
ERRNOS = {
    "ENOSPC": errno_mod.ENOSPC,
    "EIO": errno_mod.EIO,
    "EROFS": errno_mod.EROFS,
    "EACCES": errno_mod.EACCES,
}


Wrap = Callable[[str, Callable[..., Any]], Callable[..., Any]]


def wrap_facade(wrap: Wrap) -> dict[str, Any]:
    """Replace each of ``METHODS`` on ``fs`` by ``wrap(name, original)``; returns what
    ``restore_facade`` puts back."""
    saved: dict[str, Any] = {}
    for name in METHODS:
        saved[name] = fs.__dict__.get(name)
        setattr(fs, name, wrap(name, getattr(fs, name)))
    return saved


def restore_facade(saved: dict[str, Any]) -> None:
    """Undo ``wrap_facade``."""
    for name, value in saved.items():
        if value is None:
            fs.__dict__.pop(name, None)
        else:
            setattr(fs, name, value)


class FaultInjector:
    """Fail the k-th facade call (module docstring). Use as a context manager."""

    def __init__(
        self,
        k: int,
        err: int = errno_mod.EIO,
        *,
        persistent: bool = False,
        methods: tuple[str, ...] = METHODS,
        only: Callable[[str, tuple[Any, ...]], bool] | None = None,
    ) -> None:
        self.k = k
        self.err = err
        self.persistent = persistent
        self.methods = methods
        self.only = only  # an extra filter on (method, args) of the calls that count
        self.calls = 0
        self.fired: list[str] = []  # the method of every injected failure
        self.failed_syncs: list[str] = []  # paths whose sync failed
        self.resynced: list[str] = []  # files synced again, successfully, after that
        self._failed_inodes: set[tuple[int, int]] = set()
        self.hold: threading.Event | None = None
        self.enabled = True
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> FaultInjector:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def install(self) -> None:
        self._saved = wrap_facade(self._wrap)

    def uninstall(self) -> None:
        restore_facade(self._saved)
        self._saved = {}

    def _wrap(self, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            fail = False
            with self._lock:
                if (
                    self.enabled
                    and name in self.methods
                    and (self.only is None or self.only(name, args))
                ):
                    self.calls += 1
                    fail = self.calls == self.k or (self.persistent and self.calls > self.k)
                    if fail:
                        self.fired.append(name)
                        if name in SYNCS:
                            self.failed_syncs.append(_path_of(name, args, kwargs))
                        if name in ("sync", "fsync"):
                            self._failed_inodes.add(_inode(args[0]))
            if not fail:
                result = orig(*args, **kwargs)
                if name in ("sync", "fsync") and self._failed_inodes:
                    if _inode(args[0]) in self._failed_inodes:
                        # fsyncgate: this "success" may be a lie
                        self.resynced.append(_path_of(name, args, kwargs))
                return result
            if name == "close":
                orig(*args, **kwargs)  # close(2) releases the descriptor even when it fails
            if self.hold is not None:
                self.hold.wait(5)
            raise StorageIOError(self.err, os.strerror(self.err), _path_of(name, args, kwargs))

        return wrapper


def _inode(fd: object) -> tuple[int, int]:
    try:
        st = os.fstat(fd)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return (-1, -1)
    return (st.st_dev, st.st_ino)


def _path_of(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    path = kwargs.get("path")
    if isinstance(path, str):
        return path
    for a in args:
        if isinstance(a, str):
            return a
    return f"<{name}>"
