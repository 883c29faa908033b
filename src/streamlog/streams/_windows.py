"""Window specifications (Kafka Streams' ``TimeWindows``, ``SlidingWindows``,
``SessionWindows``, ``JoinWindows``) and the ``Windowed`` key of windowed results.

All times are milliseconds. Time windows are aligned to the epoch: the first
window starts at 0. Each spec is immutable; builder methods return a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError

__all__ = ["JoinWindows", "SessionWindows", "SlidingWindows", "TimeWindows", "Windowed"]


def _ms(value: object, what: str, *, positive: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{what} must be an int of milliseconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{what} must be {'> 0' if positive else '>= 0'}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Windowed:
    """The key of a windowed result: the record key and its window, in ms.

    Tumbling and hopping windows are ``[start, end)``; sliding and session windows
    include both ends, as Kafka Streams reports them.
    """

    key: Any
    start: int
    end: int

    def __iter__(self) -> Any:  # lets ``key, start, end = windowed`` work
        return iter((self.key, self.start, self.end))


@dataclass(frozen=True, slots=True)
class TimeWindows:
    """Tumbling (``advance == size``) or hopping windows ``[start, start + size)``."""

    size_ms: int
    advance_ms: int
    grace_ms: int = 0

    @classmethod
    def of(cls, size_ms: int, grace_ms: int = 0) -> TimeWindows:
        size = _ms(size_ms, "TimeWindows size_ms", positive=True)
        return cls(size, size, _ms(grace_ms, "grace_ms"))

    @classmethod
    def of_size_and_grace(cls, size_ms: int, grace_ms: int) -> TimeWindows:
        return cls.of(size_ms, grace_ms)

    @classmethod
    def of_size_with_no_grace(cls, size_ms: int) -> TimeWindows:
        return cls.of(size_ms, 0)

    def advance_by(self, advance_ms: int) -> TimeWindows:
        advance = _ms(advance_ms, "advance_by", positive=True)
        if advance > self.size_ms:
            raise ConfigError(
                f"advance_by ({advance} ms) must not exceed the window size ({self.size_ms} ms)"
            )
        return replace(self, advance_ms=advance)

    def grace(self, grace_ms: int) -> TimeWindows:
        return replace(self, grace_ms=_ms(grace_ms, "grace_ms"))

    def windows_for(self, timestamp: int) -> list[tuple[int, int]]:
        """Every window ``(start, end)`` containing ``timestamp``, oldest first."""
        size, advance = self.size_ms, self.advance_ms
        start = (max(0, timestamp - size + advance) // advance) * advance
        out = []
        while start <= timestamp:
            out.append((start, start + size))
            start += advance
        return out

    @property
    def retention_ms(self) -> int:
        return self.size_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    """Record-driven windows ``[t - difference, t]`` (KIP-450), both ends inclusive."""

    time_difference_ms: int
    grace_ms: int = 0

    @classmethod
    def of(cls, time_difference_ms: int, grace_ms: int = 0) -> SlidingWindows:
        return cls(
            _ms(time_difference_ms, "SlidingWindows time_difference_ms", positive=True),
            _ms(grace_ms, "grace_ms"),
        )

    @classmethod
    def of_time_difference_and_grace(cls, time_difference_ms: int, grace_ms: int) -> SlidingWindows:
        return cls.of(time_difference_ms, grace_ms)

    @classmethod
    def of_time_difference_with_no_grace(cls, time_difference_ms: int) -> SlidingWindows:
        return cls.of(time_difference_ms, 0)

    @property
    def retention_ms(self) -> int:
        return 2 * self.time_difference_ms + self.grace_ms + 1


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Per-key sessions ``[first, last]``: records closer than the gap share a session."""

    inactivity_gap_ms: int
    grace_ms: int = 0

    @classmethod
    def with_inactivity_gap(cls, gap_ms: int, grace_ms: int = 0) -> SessionWindows:
        return cls(_ms(gap_ms, "SessionWindows gap_ms", positive=True), _ms(grace_ms, "grace_ms"))

    @classmethod
    def of_inactivity_gap_and_grace(cls, gap_ms: int, grace_ms: int) -> SessionWindows:
        return cls.with_inactivity_gap(gap_ms, grace_ms)

    @classmethod
    def of_inactivity_gap_with_no_grace(cls, gap_ms: int) -> SessionWindows:
        return cls.with_inactivity_gap(gap_ms, 0)

    @property
    def retention_ms(self) -> int:
        return self.inactivity_gap_ms + self.grace_ms


@dataclass(frozen=True, slots=True)
class JoinWindows:
    """The stream-stream join predicate ``left.ts - before <= right.ts <= left.ts + after``."""

    before_ms: int
    after_ms: int
    grace_ms: int = 0

    @classmethod
    def of(cls, time_difference_ms: int, grace_ms: int = 0) -> JoinWindows:
        diff = _ms(time_difference_ms, "JoinWindows time_difference_ms")
        return cls(diff, diff, _ms(grace_ms, "grace_ms"))

    @classmethod
    def of_time_difference_and_grace(cls, time_difference_ms: int, grace_ms: int) -> JoinWindows:
        return cls.of(time_difference_ms, grace_ms)

    @classmethod
    def of_time_difference_with_no_grace(cls, time_difference_ms: int) -> JoinWindows:
        return cls.of(time_difference_ms, 0)

    def before(self, ms: int) -> JoinWindows:
        return replace(self, before_ms=_ms(ms, "JoinWindows before"))

    def after(self, ms: int) -> JoinWindows:
        return replace(self, after_ms=_ms(ms, "JoinWindows after"))

    def grace(self, grace_ms: int) -> JoinWindows:
        return replace(self, grace_ms=_ms(grace_ms, "grace_ms"))

    @property
    def size_ms(self) -> int:
        return self.before_ms + self.after_ms

    @property
    def retention_ms(self) -> int:
        return self.before_ms + self.after_ms + self.grace_ms
