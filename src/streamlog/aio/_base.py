"""What every ``streamlog.aio`` client shares: its event loop, its data directory, and
the few operations that run in a worker thread.

**One loop per object.** A client belongs to the event loop it is first used on (or
created on, when created inside a running loop); a call from another loop, or from a
thread without one, raises ``IllegalStateError``. Several loops in several threads of
one process work, each with its own clients, also on one shared ``streamlog.Log``
handle: an append through any of them wakes the waiting consumers of every loop.

**Worker threads.** Only what must block on I/O or on another party runs in a worker
thread (a private pool, ``streamlog-aio-*``), never the waiting for records:
opening a data directory given as a path (it may run crash recovery), group steps
(joins, syncs, revocations with their listener callbacks and auto-commits), commits
with ``fsync_commits``, ``acks="all"``-style synced event-store appends, transaction
commits and aborts, and closing. While one runs, the client's other coroutines wait
for it (``settle``): a cancelled call's thread finishes its work, and the next call
sees its outcome.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from ..clients._handle import PathOrLog, resolve
from ..coordination._manager import LogManager
from ..errors import ClosedError, IllegalStateError

__all__ = ["Client", "ThreadsafeEvent", "executor", "is_path"]

T = TypeVar("T")
C = TypeVar("C", bound="Client")

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
# Worker threads are few at a time (one per client at most, and rare); the cap is high
# so that a thread blocked on a listener coroutine never starves another client.
_MAX_WORKERS = 64


def executor() -> concurrent.futures.ThreadPoolExecutor:
    """The worker threads of ``streamlog.aio`` (made at first use)."""
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=_MAX_WORKERS, thread_name_prefix="streamlog-aio"
                )
            pool = _pool
    return pool


class Client(abc.ABC):
    """Loop binding, the data directory, and serialised worker-thread calls.

    ``path_or_log``: a ``streamlog.Log`` (shared; left open), a ``LogManager``, or a
    path (opened by ``start()`` in a worker thread, closed with the client).
    """

    _what = "client"

    def __init__(self, path_or_log: PathOrLog) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0  # the loop's thread
        self._manager: LogManager | None = None
        self._owns_manager = False
        self._path: PathOrLog | None = None
        if is_path(path_or_log):
            self._path = path_or_log  # opened by start()
        else:
            self._manager, self._owns_manager = resolve(path_or_log)
        self._busy: asyncio.Future[None] | None = None
        self._closed = False
        try:
            self._bind(asyncio.get_running_loop())
        except RuntimeError:  # no running loop: bound at the first coroutine call
            pass

    # ------------------------------------------------------------------ the loop
    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once, on the loop's thread."""
        self._loop = loop
        self._thread = threading.get_ident()

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, which must be ours (binding to it on first use)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise IllegalStateError(
                f"this {self._what} is used from a thread without a running event loop; "
                "call it from a coroutine of its event loop"
            ) from None
        mine = self._loop
        if mine is loop:
            return loop
        if mine is None:
            self._bind(loop)
            return loop
        raise IllegalStateError(
            f"this {self._what} belongs to another event loop: each streamlog.aio object "
            "is used by the loop it was created on (or first used on); make one per loop"
        )

    def _check_sync_call(self) -> None:
        """For a plain (non-async) method: the caller's thread must be the loop's, if
        the client is bound to a loop that is running."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop and loop.is_running():
            raise IllegalStateError(
                f"this {self._what} belongs to an event loop running in another thread"
            )

    async def _open(self) -> LogManager:
        """The manager, opening the directory in a worker thread if given a path."""
        loop = self._check_loop()
        if self._closed:
            raise ClosedError(f"the {self._what} is closed")
        if self._manager is None:
            path = self._path
            assert path is not None
            manager, _owned = await loop.run_in_executor(executor(), resolve, path)
            if self._manager is not None or self._closed:  # (two start()s raced)
                await loop.run_in_executor(executor(), manager.close)
            else:
                self._manager, self._owns_manager = manager, True
        assert self._manager is not None
        return self._manager

    def _not_started(self) -> IllegalStateError:
        return IllegalStateError(
            f"the {self._what} is not started: use `async with` or `await start()` "
            "(a client given a path opens it there)"
        )

    # ------------------------------------------------------------------ worker threads
    @abc.abstractmethod
    async def start(self) -> None:
        """Open what the object needs (its data directory, when given a path)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the object holds; the last step is ``_release_manager``."""

    async def _release_manager(self) -> None:
        """The last step of ``close``: close the data directory if this object opened it."""
        manager = self._manager
        if manager is not None and self._owns_manager:
            await self._in_thread(manager.close)

    async def __aenter__(self: C) -> C:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _settle(self) -> None:
        """Wait for the worker-thread call in progress, if any (not for its result)."""
        while True:
            busy = self._busy
            if busy is None:
                return
            await asyncio.shield(busy)

    async def _in_thread(
        self,
        fn: Callable[..., T],
        *args: Any,
        abandoned: Callable[[T], None] | None = None,
    ) -> T:
        """``fn(*args)`` in a worker thread; other calls of this client wait for it.

        If the caller is cancelled, the thread goes on; ``abandoned(result)`` is then
        called on the loop with what it returned (to put records back, say).
        """
        loop = self._check_loop()
        if self._busy is not None:
            await self._settle()
        inner = loop.run_in_executor(executor(), fn, *args)
        gate: asyncio.Future[None] = loop.create_future()
        self._busy = gate
        state = [False, False]  # [the caller gave up, abandoned() was called]

        def give_back() -> None:
            if state[1] or inner.cancelled():
                return
            state[1] = True
            if inner.exception() is None and abandoned is not None:  # (retrieves it)
                abandoned(inner.result())

        def finished(_f: asyncio.Future[T]) -> None:
            try:
                if state[0]:
                    give_back()
            finally:
                if self._busy is gate:
                    self._busy = None
                gate.set_result(None)

        inner.add_done_callback(finished)
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            state[0] = True
            if inner.done():
                give_back()
            raise


def is_path(path_or_log: object) -> bool:
    """A path (opened by the client), not a handle."""
    return isinstance(path_or_log, (str, os.PathLike))


class ThreadsafeEvent:
    """An ``asyncio.Event`` of one loop that any thread may ``set`` (directly on the
    loop's thread, else through one ``call_soon_threadsafe`` per burst). Made, cleared
    and waited for on the loop's thread."""

    __slots__ = ("_event", "_loop", "_queued", "_thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._event = asyncio.Event()
        self._queued = False

    def set(self) -> None:
        """Any thread."""
        if threading.get_ident() == self._thread:
            self._event.set()
        elif not self._queued:
            self._queued = True
            try:
                self._loop.call_soon_threadsafe(self._set_here)
            except RuntimeError:  # the loop is closed
                self._queued = False

    def _set_here(self) -> None:
        self._queued = False
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float | None) -> None:
        """Until set, or ``timeout`` seconds (None: no limit)."""
        if timeout is None:
            await self._event.wait()
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
