"""Waiting on an event loop for records appended to a data directory.

A ``Waker`` is what a blocked ``Consumer.poll`` does, turned inside out so that the
waiting happens on the event loop and never blocks its thread:

- **in-process appends** (any thread of this process, through the same data-directory
  handle) call the hooks of the manager's ``AppendSignal`` (``add_hook``). Ours wakes the
  waiting coroutines directly when the append ran on the loop's own thread (an
  ``AIOProducer`` appending inline), else through ``loop.call_soon_threadsafe`` (one
  per burst: a flag skips the rest until the loop has run it);
- **appends by other processes** ring a *bell* of the data directory's doorbell
  (``coordination/_doorbell.py``): a datagram socket that we register with
  ``loop.add_reader``, so the loop's selector wakes on it as ``poll(2)`` does for a
  sync consumer. It is armed before the waiter's last look for records, as the sync
  consumer does, so no wake-up is lost;
- **without a doorbell** (a path too long for ``AF_UNIX``, no socket), the same
  back-off as the sync consumer: a sleep doubling from 50 us to 1 ms (5 ms after a
  second without records). On an event loop a sleep is at least the selector's
  resolution (1 ms for epoll), so this fallback is coarser than the sync one.

Like the sync consumer, sleeps are bounded (100 ms; 5 ms for a group member) so that
the group's version word, metadata and timers are looked at.

Protocol for a waiter::

    waker.enter()                 # waiting (hook live) + bell armed before the last look
    try:
        while True:
            waker.reset()
            if look():            # poll(0) etc.
                return ...
            await waker.sleep(deadline, group=...)
    finally:
        waker.leave()

Not thread-safe: used on its event loop's thread, except ``close()`` (any thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..coordination._doorbell import Bell
    from ..coordination._manager import LogManager

__all__ = ["Waker"]

# Seconds a bell stays armed after the last sleep on it (as the sync consumer's
# _BELL_KEEP): a consumer that keeps finding records stops costing writers a datagram
# per append.
_BELL_KEEP = 1.0
_NAP = 0.1  # longest sleep on a bell
_GROUP_NAP = 0.005  # longest sleep of a group member (its version word is polled)


class Waker:
    """Wakes the coroutines of one event loop that wait for appends (module docstring)."""

    __slots__ = (
        "_bell",
        "_buf",
        "_closed",
        "_delay",
        "_doorbell",
        "_entered",
        "_idle_since",
        "_loop",
        "_manager",
        "_pending",
        "_slept",
        "_thread",
        "_waiters",
        "rung",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, manager: LogManager) -> None:
        self._loop = loop
        self._thread = threading.get_ident()  # made on the loop's thread (by a coroutine)
        self._manager = manager
        self.rung = False  # an append (or a ring) since the last reset()
        self._pending = False  # a call_soon_threadsafe(_wake_soon) is queued
        self._waiters: list[asyncio.Future[None]] = []
        self._entered = 0
        self._bell: Bell | None = None
        self._doorbell = manager.signal.doorbell
        self._slept = 0.0  # loop.time() of the last sleep on the bell
        self._idle_since = time.monotonic()  # when records were last found
        self._delay = 50e-6
        self._closed = False
        self._buf = bytearray(64)
        # The hook stays registered (adding and removing it around every wait cost two
        # lock round trips of each wake-up); it does nothing unless a waiter has entered.
        # No wake-up is lost: enter() sets _entered before the waiter's last look, and an
        # append that the look misses calls the hook after it (the GIL orders the two).
        manager.signal.add_hook(self._on_append)

    # ------------------------------------------------------------------ wake-ups
    def _on_append(self) -> None:
        """The ``AppendSignal`` hook: any thread."""
        if not self._entered:
            return
        if threading.get_ident() == self._thread:
            self.wake()
        elif not self._pending:
            self._pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake_soon)
            except RuntimeError:  # the loop is closed: nobody to wake
                self._pending = False

    def _wake_soon(self) -> None:
        self._pending = False  # (first: an append after this queues another call)
        self.wake()

    def _on_bell(self) -> None:
        """The loop's reader callback: another process rang our bell. One datagram is
        read (more, if queued, call this again: the selector is level-triggered)."""
        bell = self._bell
        if bell is not None:
            try:
                bell.sock.recv_into(self._buf)
            except OSError:  # (nothing there, or closed under us)
                pass
        self.wake()

    def wake(self) -> None:
        """Wake every waiter now (on the loop's thread)."""
        self.rung = True
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    # ------------------------------------------------------------------ waiting
    def enter(self) -> None:
        """Start waiting: the hook wakes us from now on; a bell is armed (before the
        last look)."""
        if self._closed:
            return
        self._entered += 1
        if self._bell is None and self._doorbell is not None:
            self._arm()
        now = time.monotonic()
        idle = now - self._idle_since
        self._delay = 50e-6 if idle < 0.01 else 0.001 if idle < 1.0 else 0.005

    def leave(self) -> None:
        """Done waiting (the bell stays armed for the next wait; see ``found``)."""
        if self._entered > 0:
            self._entered -= 1

    def reset(self) -> None:
        """Before a look for records: forget earlier wake-ups."""
        self.rung = False

    def found(self) -> None:
        """Records were found (call it after ``leave``): the back-off restarts; a bell
        not slept on for a second, that no other waiter uses, is disarmed (as the sync
        consumer's parked bell)."""
        self._idle_since = time.monotonic()
        if (
            self._bell is not None
            and not self._entered
            and self._loop.time() - self._slept >= _BELL_KEEP
        ):
            self._disarm()

    async def sleep(self, deadline: float | None, *, group: bool = False) -> None:
        """Sleep until a wake-up, the nap's end or ``deadline`` (``loop.time()``; None:
        no limit), whichever comes first. Returns at once if woken since ``reset``."""
        if self.rung or self._closed:
            return
        loop = self._loop
        now = loop.time()
        if self._bell is not None:
            nap = _GROUP_NAP if group else _NAP
            self._slept = now
        else:
            nap = self._delay
            cap = 0.001 if time.monotonic() - self._idle_since < 1.0 else 0.005
            self._delay = min(self._delay * 2, cap)
        if deadline is not None:
            nap = min(nap, deadline - now)
            if nap <= 0:
                return
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(nap, _wake_one, fut)
        try:
            await fut
        finally:
            timer.cancel()
            if not fut.done():
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass

    # ------------------------------------------------------------------ the bell
    def _arm(self) -> None:
        doorbell = self._doorbell
        if doorbell is None:
            return
        bell = doorbell.arm()
        if bell is None:
            self._doorbell = None  # no bells here: back off instead, from now on
            return
        try:
            self._loop.add_reader(bell.sock.fileno(), self._on_bell)
        except (OSError, ValueError, RuntimeError, NotImplementedError):
            # a loop without add_reader (Windows' proactor) or a closed socket
            doorbell.disarm(bell)
            self._doorbell = None
            return
        self._bell = bell
        self._slept = self._loop.time()

    def _disarm(self) -> None:
        bell, self._bell = self._bell, None
        if bell is None:
            return
        if not self._loop.is_closed():
            try:
                self._loop.remove_reader(bell.sock.fileno())
            except (OSError, ValueError):  # (the socket is closed: not registered any more)
                pass
        doorbell = self._doorbell
        if doorbell is not None:
            doorbell.disarm(bell)
        else:
            bell.sock.close()

    def close(self) -> None:
        """Stop for good: wake every waiter, drop the hook, disarm the bell. Any thread;
        from another one it is done by the loop (or here, if the loop is closed)."""
        if threading.get_ident() == self._thread or self._loop.is_closed():
            self._close_here()
            return
        try:
            self._loop.call_soon_threadsafe(self._close_here)
        except RuntimeError:  # closed meanwhile
            self._close_here()

    def _close_here(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._entered = 0
        self._manager.signal.remove_hook(self._on_append)
        self._disarm()
        if not self._loop.is_closed():
            self.wake()


def _wake_one(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
