"""Doorbells: a writer wakes readers of other processes sleeping for new records.

A reader that finds nothing to read sleeps in ``poll(2)`` on a *bell*: an
``AF_UNIX`` datagram socket bound under ``meta/doorbells/`` (``_layout``).
A writer, after an append, sends one byte to the bell of every sleeping reader
of the data directory. ``meta/doorbells/board`` is a small mapped file, allocated
with ``posix_fallocate`` before it is mapped (a write through a map into a hole on
a full disk is a SIGBUS), holding two signed 64-bit words:

- ``sleepers``: how many readers (of any process) are armed, i.e. may be asleep;
- ``generation``: bumped whenever a bell is added or removed, so writers cache
  the listing of bells and list the directory again only when it moved.

Both words change only under ``flock`` on the board (plus a thread lock), and
only readers change ``sleepers``; writers merely read them. When ``sleepers``
is 0 an append costs one memory read and no system call.

**No lost wake-up.** A reader arms (binds its bell, bumps ``generation``,
then increments ``sleepers``), *then* checks the partitions' tails a last
time, then sleeps; it disarms when it returns. A writer publishes its frame
and tail hint, releases the append lock, then reads ``sleepers`` (and then
``generation``). The reader's increment is made under ``flock`` and the
writer's read comes after the ``flock`` release of the append lock: both are
system calls whose kernel paths are full memory barriers, so the two
store-then-load sequences cannot both miss each other (Dekker). Either the
writer's read sees the reader counted, and it rings the bell (a datagram stays
queued until read, so a ring before the reader reaches ``poll`` still wakes
it; the reader drains its bell only right after waking, before it looks at the
tails again), or the read came first, and then the reader's last check sees
the record. Since ``generation`` is bumped before ``sleepers``, a writer that
sees the reader counted also sees its bell in the next listing.

A datagram to a full bell fails with ``EAGAIN``: a wake-up is pending already.
A bell whose reader died refuses datagrams (``ECONNREFUSED``): the writer that
finds it, or the next reader to arm a new bell, unlinks it. A reader killed
while armed leaves ``sleepers`` one too high, which only costs writers a look at
their (cached) listing until the next process to open the directory alone
resets the board. Sleepers bound their sleep, so polling remains the fallback
for anything missed (a writer without a board, a failing board lock); when a
bell cannot be made (a path longer than ``AF_UNIX`` allows, no socket), readers
use the old back-off.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import select
import socket
import threading
import time
import weakref
from collections.abc import Iterator

from .. import _layout
from .._fs import fs, unmap

__all__ = ["Bell", "Doorbell"]

BOARD_SIZE = 4096
_SLEEPERS = 0
_GENERATION = 1
_SUN_PATH_MAX = 107  # sizeof(sun_path) is 108 on Linux, with the terminating NUL
_LOCK_PATIENCE = 0.1  # seconds to wait for the board lock before giving up (polling)
_ZERO = memoryview(bytearray(16)).cast("q")
_DEAD = (errno.ECONNREFUSED, errno.ENOTSOCK)

_live: weakref.WeakSet[Doorbell] = weakref.WeakSet()


class Bell:
    """One sleeper's socket. ``wait`` blocks until a datagram arrives (or the timeout),
    then drains every queued datagram."""

    __slots__ = ("_buf", "_poller", "name", "path", "sock")

    def __init__(self, name: str, path: str, sock: socket.socket) -> None:
        self.name = name
        self.path = path
        self.sock = sock
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._buf = bytearray(64)

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds (None: no limit) for a ring; True if rung."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        try:
            ready = self._poller.poll(ms)
        except (OSError, ValueError):  # closed under us: the handle is closing
            return False
        if not ready:
            return False
        self.drain()
        return True

    def drain(self) -> None:
        try:
            while self.sock.recv_into(self._buf):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass


class Doorbell:
    """The bells of one data directory as seen by this process (see the module doc).

    Thread-safe. ``ring`` is the writer's side; ``arm``/``disarm``/``ring_bell``
    the sleepers'.
    """

    def __init__(self, root: str, *, alone: bool = False) -> None:
        self._root = root
        self._dir = _layout.doorbells_dir(root)
        self._board_path = _layout.doorbell_board(root)
        self._lock = threading.Lock()
        self._pool: list[Bell] = []
        self._bells: set[Bell] = set()  # ours, registered (pooled or armed)
        self._armed = 0
        self._targets: tuple[str, ...] = ()  # other processes' bells, as last listed
        self._generation = -1
        self._closed = False
        self._forked = False
        self._no_bells = False
        self._pid = os.getpid()
        fs.makedirs(self._dir)
        if alone:  # nobody else has the directory open: every bell is a dead one's
            for name in fs.listdir(self._dir):
                if _layout.bell_pid(name) is not None:
                    with contextlib.suppress(OSError):
                        fs.unlink(_layout.bell_path(root, name))
        fd = fs.open(self._board_path, create=True)
        try:
            if fs.size(fd) < BOARD_SIZE:
                fs.fallocate(fd, 0, BOARD_SIZE, self._board_path)
            self._mm = fs.map(fd, BOARD_SIZE, path=self._board_path)
        except BaseException:
            fs.close(fd)
            raise
        self._fd = fd
        self._words = memoryview(self._mm).cast("q")
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        if alone and self._words[_SLEEPERS] != 0:  # left by readers killed while armed
            with self._board_locked() as words:  # (no process has a listing cached)
                words[_SLEEPERS] = 0
        _live.add(self)

    # ------------------------------------------------------------------ writers
    def ring(self) -> None:
        """After an append: wake the sleeping readers of other processes. With none
        asleep this is one memory read."""
        if self._words[_SLEEPERS] <= 0:
            return
        generation = self._words[_GENERATION]
        if generation != self._generation:
            self._relist(generation)
        for path in self._targets:
            self._send(path)

    def sleepers(self) -> int:
        """The shared count of armed readers (for tests and diagnostics)."""
        return int(self._words[_SLEEPERS])

    def _relist(self, generation: int) -> None:
        try:
            names = fs.listdir(self._dir)
        except OSError:
            return
        pid = self._pid
        self._targets = tuple(
            _layout.bell_path(self._root, n)
            for n in names
            if (p := _layout.bell_pid(n)) is not None and p != pid
        )
        self._generation = generation

    def _send(self, path: str) -> bool:
        """Ring one bell; False if it is dead (and then it is unlinked)."""
        try:
            fs.send_datagram(self._sender, path)
        except OSError as e:
            if e.errno in _DEAD:
                self._bury(path)
                return False
            # EAGAIN: a wake-up is queued already; ENOENT: gone (its remover bumped
            # the generation); anything else: the sleeper's bounded sleep covers it
        return True

    def _bury(self, path: str) -> None:
        with contextlib.suppress(OSError):
            fs.unlink(path)
        with contextlib.suppress(OSError), self._board() as words:
            words[_GENERATION] += 1

    # ------------------------------------------------------------------ sleepers
    def arm(self) -> Bell | None:
        """A bell of this process's, counted among the sleepers (the caller then looks
        for records once more before it sleeps on it), or None: poll instead."""
        if self._no_bells or self._closed:
            return None
        with self._lock:
            bell = self._pool.pop() if self._pool and not self._forked else None
        try:
            if bell is None:
                bell = self._register()
                if bell is None:
                    return None
            with self._board() as words:
                words[_SLEEPERS] += 1
                self._armed += 1
        except OSError:
            if bell is not None:
                self._put_back(bell)
            return None
        return bell

    def disarm(self, bell: Bell) -> None:
        """The sleeper of ``bell`` is awake for good (returned from ``poll``)."""
        with contextlib.suppress(OSError), self._board() as words:
            if self._armed > 0:
                self._armed -= 1
                if words[_SLEEPERS] > 0:
                    words[_SLEEPERS] -= 1
        self._put_back(bell)

    def ring_bell(self, bell: Bell) -> None:
        """Wake this process's sleeper on ``bell`` (in-process appends, wakeup, close)."""
        with contextlib.suppress(OSError):
            fs.send_datagram(self._sender, bell.path)

    def _put_back(self, bell: Bell) -> None:
        with self._lock:
            if not self._closed and bell in self._bells:
                self._pool.append(bell)
                return
        bell.sock.close()

    def _register(self) -> Bell | None:
        name = _layout.bell_name(self._pid, secrets.token_hex(6))
        path = _layout.bell_path(self._root, name)
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            self._no_bells = True
            return None
        try:
            sock = fs.bind_socket(path)
        except OSError:
            self._no_bells = True
            return None
        bell = Bell(name, path, sock)
        with self._lock:
            self._bells.add(bell)
        self._sweep()
        try:
            with self._board() as words:
                words[_GENERATION] += 1  # before ``sleepers`` (see the module doc)
        except OSError:
            with self._lock:
                self._bells.discard(bell)
            self._unregister(bell)
            raise
        return bell

    def _unregister(self, bell: Bell) -> None:
        with contextlib.suppress(OSError):
            fs.unlink(bell.path)
        bell.sock.close()

    def _sweep(self) -> None:
        """Unlink the bells of dead readers of other processes (a live one gets a
        spurious ring, which costs it one extra look)."""
        try:
            names = fs.listdir(self._dir)
        except OSError:
            return
        for name in names:
            pid = _layout.bell_pid(name)
            if pid is not None and pid != self._pid:
                path = _layout.bell_path(self._root, name)
                try:
                    fs.send_datagram(self._sender, path)
                except OSError as e:
                    if e.errno in _DEAD:
                        with contextlib.suppress(OSError):
                            fs.unlink(path)

    @contextlib.contextmanager
    def _board(self) -> Iterator[memoryview]:
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, "the doorbell is closed", self._board_path)
            with self._board_locked() as words:
                yield words

    @contextlib.contextmanager
    def _board_locked(self) -> Iterator[memoryview]:
        """The board's words under its ``flock`` (the caller holds ``_lock``)."""
        if self._forked:  # a descriptor inherited over fork() shares the parent's lock
            fd = fs.open(self._board_path)
            fs.close(self._fd)
            self._fd = fd
            self._forked = False
        deadline = time.monotonic() + _LOCK_PATIENCE
        pause = 20e-6
        while not fs.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, self._board_path):
            if time.monotonic() >= deadline:  # a SIGSTOPped holder: give up, poll
                raise OSError(errno.EAGAIN, "doorbell board locked", self._board_path)
            time.sleep(pause)
            pause = min(pause * 2, 0.002)
        try:
            yield self._words
        finally:
            fs.flock(self._fd, fcntl.LOCK_UN, self._board_path)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Unregister this process's bells (an armed sleeper is rung first, and its
        socket is closed when it disarms) and take its armed sleepers off the count.
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            mine = list(self._bells)
            pool, self._pool = self._pool, []
            self._bells.clear()
            for bell in mine:
                if bell not in pool:
                    with contextlib.suppress(OSError):
                        fs.send_datagram(self._sender, bell.path)
            try:
                if mine or self._armed:
                    with self._board_locked() as words:
                        words[_SLEEPERS] = max(0, words[_SLEEPERS] - self._armed)
                        self._armed = 0
                        for bell in mine:
                            with contextlib.suppress(OSError):
                                fs.unlink(bell.path)
                        words[_GENERATION] += 1
            except OSError:
                pass
            finally:
                self._closed = True
                words_view, self._words = self._words, _ZERO
        for bell in pool:
            bell.sock.close()
        words_view.release()
        unmap(self._mm)
        self._sender.close()
        with contextlib.suppress(OSError):
            fs.close(self._fd)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool = []
        self._bells = set()  # the parent's: never unlinked or counted by the child
        self._armed = 0
        self._generation = -1
        self._targets = ()
        self._forked = True


def _after_fork_in_child() -> None:
    for doorbell in list(_live):
        doorbell._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
