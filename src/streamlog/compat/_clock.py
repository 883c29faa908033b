"""The installation's clock: real time until a test sets or advances it (internal).

``streamlog.compat.install()`` opens its data directory with this clock (``streamlog.open(path,
clock=...)``), so everything the log judges by the wall clock follows it: retention
(``retention.ms``), the timeout of open transactions (``transaction.timeout.ms``),
``LogAppendTime`` timestamps, transaction markers, and the cleaner's compaction lags. The
shims' producers stamp records with it (CreateTime, when the application gives no
timestamp) once it is set. Through the ``kafka_cluster`` fixture::

    kafka_cluster.clock.set(1_700_000_000_000)   # frozen at that time (ms since the epoch)
    kafka_cluster.clock.advance(60_000)          # a minute later, still frozen
    kafka_cluster.clock.now_ms()

Until the first ``set``/``advance`` the clock is the real one (``time.time``); from then on
it moves only when told (Kafka's ``MockTime``). Each move then runs, in the calling thread,
what a broker runs on its timers (Kafka's ``MockScheduler`` does the same on
``MockTime.sleep``): a retention pass over every partition and the sweep that aborts
transactions open longer than their timeout (see ``Installation._clock_moved``).

Group sessions are not on this clock: liveness is shared by every process on the machine
through ``time.monotonic_ns()`` (``coordination/_groupstore.py``), and heartbeats run on
their own threads in real time. ``expire_member`` simulates a session timeout instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock"]


def _check_ms(name: str, ms: object, *, low: int = 0) -> int:
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise TypeError(f"{name} must be an int (milliseconds), not {type(ms).__name__}")
    if ms < low:
        raise ValueError(f"{name} must be >= {low}, not {ms}")
    if ms > 2**63 - 1:
        raise ValueError(f"{name} must fit an int64 (a record timestamp), not {ms}")
    return ms


class Clock:
    """A wall clock a test can set: ``clock()`` returns seconds since the epoch, as
    ``time.time`` does (the ``clock`` option of ``streamlog.open``)."""

    __slots__ = ("_fixed_ms", "_lock", "_moved")

    def __init__(self, moved: Callable[[], None] | None = None) -> None:
        self._fixed_ms: int | None = None  # None: real time
        self._lock = threading.Lock()
        self._moved = moved  # run after each set/advance, outside the lock

    def __call__(self) -> float:
        fixed = self._fixed_ms
        if fixed is None:
            return time.time()
        # half a millisecond in: int(clock() * 1000), as the log computes ms, is exactly
        # ``fixed`` (a float of ms / 1000 may land just below it)
        return (fixed + 0.5) / 1000

    @property
    def fixed_ms(self) -> int | None:
        """The frozen time in ms, or None while the clock follows real time. The shims'
        producers stamp records with it (None: streamlog's producer stamps them)."""
        return self._fixed_ms

    @property
    def frozen(self) -> bool:
        """Whether a test took the clock over (``set``/``advance`` were called)."""
        return self._fixed_ms is not None

    def now_ms(self) -> int:
        """The clock's time in ms since the epoch."""
        fixed = self._fixed_ms
        return int(time.time() * 1000) if fixed is None else fixed

    def set(self, ms: int) -> int:
        """Freeze the clock at ``ms`` (ms since the epoch, >= 0; earlier than now is allowed,
        as a wall clock may be set back). Runs the broker's timers; returns ``ms``."""
        ms = _check_ms("ms", ms)
        with self._lock:
            self._fixed_ms = ms
        self._after_move()
        return ms

    def advance(self, ms: int) -> int:
        """Move the clock ``ms`` milliseconds (>= 0) forward, from real time on the first
        call; it stays frozen there. Runs the broker's timers; returns the new time in ms."""
        step = _check_ms("ms", ms)
        with self._lock:
            base = self._fixed_ms
            new = (int(time.time() * 1000) if base is None else base) + step
            self._fixed_ms = _check_ms("the clock", new)
        self._after_move()
        return new

    def _after_move(self) -> None:
        if self._moved is not None:
            self._moved()

    def __repr__(self) -> str:
        fixed = self._fixed_ms
        return "<streamlog.compat clock: real time>" if fixed is None else (
            f"<streamlog.compat clock: frozen at {fixed} ms>"
        )
