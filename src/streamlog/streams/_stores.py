"""State stores: key-value, window and session stores, in memory, backed by a
compacted changelog topic and a local checkpoint.

Every change a processor makes is remembered (the latest per store key) until
the task commits; the commit writes those changes to the store's changelog
partition (the task's partition of ``<application id>-<store>-changelog``),
in the same transaction as the outputs and input offsets under exactly-once.
After the commit the task may write a *checkpoint*: the whole store and the
changelog offset it reflects, so that a restart loads the checkpoint and
replays only the changelog's tail (see ``_state.py``).

Changelog record of each store kind (keys and values in the internal msgpack
serde, ``None`` value = deleted)::

    key-value   key: k                    value: (v, timestamp)
    window      key: (k, start)           value: (v, timestamp)
    session     key: (k, start, end)      value: (v, timestamp)

Stores are owned by one task and used by one thread at a time; the read-only
views handed to interactive queries (``app.store(name)``) take the task
runner's lock for each call.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from typing import Any

from sortedcontainers import SortedDict, SortedList

__all__ = ["KeyValueStore", "SessionStore", "StateStore", "WindowStore"]

_DELETED = object()


class StateStore(abc.ABC):
    """What every store shares: a name, its changelog and its pending changes."""

    kind = "abstract"
    #: changelog records replayed by the last restore (after its checkpoint, if any)
    restored_records = 0

    def __init__(self, name: str, *, logged: bool = True) -> None:
        self.name = name
        self.logged = logged
        # changelog key -> (value, timestamp) or None (deleted), until the next commit
        self._pending: dict[Any, Any] = {}

    # ------------------------------------------------------------- changelog
    def _log(self, key: Any, entry: Any) -> None:
        if self.logged:
            self._pending[key] = entry

    def drain_changes(self) -> list[tuple[Any, Any]]:
        """The changes since the last drain, one per changelog key (the latest)."""
        out = list(self._pending.items())
        self._pending.clear()
        return out

    @abc.abstractmethod
    def restore(self, key: Any, entry: Any) -> None:
        """Apply one changelog record (replay); does not log it again."""

    def restore_batch(self, records: Iterable[tuple[Any, Any]], *, deletes: bool = True) -> None:
        """``restore`` each ``(key, entry)`` in order (a restore's hot loop: stores may
        do it faster); ``deletes=False`` promises no entry is None (a checkpoint)."""
        restore = self.restore
        for key, entry in records:
            restore(key, entry)

    @abc.abstractmethod
    def entries(self) -> Iterator[tuple[Any, Any]]:
        """Every live entry as a changelog record would carry it (for checkpoints)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Drop every entry and pending change."""

    @abc.abstractmethod
    def approximate_num_entries(self) -> int:
        """How many entries the store holds."""

    def _check(self) -> None:  # noqa: B027 - stores without invariants of their own
        """Assert the store's internal invariants (tests call this)."""


class KeyValueStore(StateStore):
    """A map from key to ``(value, timestamp)`` (Kafka's timestamped key-value store)."""

    kind = "kv"

    def __init__(self, name: str, *, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self._data: dict[Any, tuple[Any, int]] = {}

    def get(self, key: Any) -> Any:
        entry = self._data.get(key)
        return None if entry is None else entry[0]

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        return self._data.get(key)

    def put(self, key: Any, value: Any, timestamp: int = -1) -> None:
        """Store ``value`` (``None`` deletes, as a tombstone does)."""
        if value is None:
            self.delete(key)
            return
        entry = (value, timestamp)
        self._data[key] = entry
        self._log(key, entry)

    def delete(self, key: Any) -> Any:
        entry = self._data.pop(key, None)
        if entry is not None:
            self._log(key, None)
            return entry[0]
        return None

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> Iterator[Any]:
        return iter(self._data)

    def items(self) -> Iterator[tuple[Any, Any]]:
        for k, (v, _) in self._data.items():
            yield k, v

    def restore(self, key: Any, entry: Any) -> None:
        if entry is None:
            self._data.pop(key, None)
        else:
            value, ts = entry
            self._data[key] = (value, ts)

    def restore_batch(self, records: Iterable[tuple[Any, Any]], *, deletes: bool = True) -> None:
        data = self._data
        if not deletes:  # (a checkpoint: pairs of key and (value, timestamp) tuples)
            data.update(records)
            return
        for key, entry in records:
            if entry is None:
                data.pop(key, None)
            else:
                value, ts = entry
                data[key] = (value, ts)

    def entries(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._data.items())

    def clear(self) -> None:
        self._data.clear()
        self._pending.clear()

    def approximate_num_entries(self) -> int:
        return len(self._data)


class WindowStore(StateStore):
    """Per key, the windows by start time: ``(key, start) -> (value, timestamp)``.

    Windows whose start is older than ``observed stream time - retention`` are
    dropped as the store is written (Kafka's segment expiry, done per window).
    """

    kind = "window"

    def __init__(self, name: str, *, window_size_ms: int, retention_ms: int, logged: bool = True):
        super().__init__(name, logged=logged)
        self.window_size_ms = window_size_ms
        self.retention_ms = retention_ms
        self._by_key: dict[Any, SortedDict] = {}
        self._starts: SortedList = SortedList()  # (start, id(key)) cannot sort keys of mixed types
        self._keys_at: dict[int, list[Any]] = {}
        self._observed = -1

    def fetch(self, key: Any, start: int) -> Any:
        windows = self._by_key.get(key)
        if windows is None:
            return None
        entry = windows.get(start)
        return None if entry is None else entry[0]

    def fetch_with_timestamp(self, key: Any, start: int) -> tuple[Any, int] | None:
        windows = self._by_key.get(key)
        return None if windows is None else windows.get(start)

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        """``(start, value)`` of ``key``'s windows with ``time_from <= start <= time_to``."""
        windows = self._by_key.get(key)
        if windows is None:
            return []
        return [(s, windows[s][0]) for s in windows.irange(time_from, time_to)]

    def fetch_range_with_timestamp(
        self, key: Any, time_from: int, time_to: int
    ) -> list[tuple[int, Any, int]]:
        """``(start, value, timestamp)`` of ``key``'s windows with
        ``time_from <= start <= time_to``, oldest first."""
        windows = self._by_key.get(key)
        if windows is None:
            return []
        out = []
        for s in windows.irange(time_from, time_to):
            value, ts = windows[s]
            out.append((s, value, ts))
        return out

    @property
    def observed_stream_time(self) -> int:
        """The largest timestamp written to (or restored into) the store, -1 if none."""
        return self._observed

    def fetch_all(self, time_from: int, time_to: int) -> list[tuple[Any, int, Any]]:
        """``(key, start, value)`` of every window with ``time_from <= start <= time_to``."""
        out = []
        for start in self._starts.irange(time_from, time_to):
            for key in self._keys_at.get(start, ()):
                entry = self._by_key[key].get(start)
                if entry is not None:
                    out.append((key, start, entry[0]))
        return out

    def put(self, key: Any, start: int, value: Any, timestamp: int = -1) -> None:
        """Store the aggregate of ``key``'s window at ``start`` (``None`` deletes)."""
        self._put(key, start, None if value is None else (value, timestamp))
        self._log((key, start), None if value is None else (value, timestamp))
        if timestamp > self._observed:
            self._observed = timestamp
            self._expire()

    def _put(self, key: Any, start: int, entry: Any) -> None:
        windows = self._by_key.get(key)
        if entry is None:
            if windows is not None and windows.pop(start, None) is not None:
                self._forget(key, start)
                if not windows:
                    del self._by_key[key]
            return
        if windows is None:
            windows = self._by_key[key] = SortedDict()
        if start not in windows:
            keys = self._keys_at.get(start)
            if keys is None:
                self._keys_at[start] = [key]
                self._starts.add(start)
            else:
                keys.append(key)
        windows[start] = entry

    def _forget(self, key: Any, start: int) -> None:
        keys = self._keys_at[start]
        keys.remove(key)
        if not keys:
            del self._keys_at[start]
            self._starts.remove(start)

    def _expire(self) -> None:
        horizon = self._observed - self.retention_ms
        while self._starts and self._starts[0] + self.window_size_ms <= horizon:
            start = self._starts[0]
            for key in list(self._keys_at[start]):
                self._put(key, start, None)  # expiry is not logged: the changelog expires too

    def restore(self, key: Any, entry: Any) -> None:
        k, start = key
        self._put(k, start, entry)
        if entry is not None and entry[1] > self._observed:
            self._observed = entry[1]

    def entries(self) -> Iterator[tuple[Any, Any]]:
        for key, windows in self._by_key.items():
            for start, entry in windows.items():
                yield (key, start), entry

    def clear(self) -> None:
        self._by_key.clear()
        self._starts.clear()
        self._keys_at.clear()
        self._pending.clear()
        self._observed = -1

    def approximate_num_entries(self) -> int:
        return sum(len(w) for w in self._by_key.values())

    def _check(self) -> None:
        count = sum(len(keys) for keys in self._keys_at.values())
        assert count == self.approximate_num_entries()
        assert list(self._starts) == sorted(self._keys_at)
        for key, windows in self._by_key.items():
            assert windows, f"empty window map kept for {key!r}"
            for start in windows:
                assert key in self._keys_at[start]


class SessionStore(StateStore):
    """Per key, its sessions ``[start, end]`` (never overlapping) and their aggregates.

    An index by end time makes ``expire`` cost only what it removes.
    """

    kind = "session"

    def __init__(self, name: str, *, retention_ms: int, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self.retention_ms = retention_ms
        self._by_key: dict[Any, SortedDict] = {}  # key -> {(start, end): (value, ts)}
        self._ends: SortedList = SortedList()  # the distinct session ends
        self._at_end: dict[int, list[tuple[Any, int]]] = {}  # end -> [(key, start)]
        self._observed = -1

    def find_sessions(
        self, key: Any, earliest_end: int, latest_start: int
    ) -> list[tuple[int, int, Any]]:
        """``(start, end, value)`` of ``key``'s sessions with ``end >= earliest_end`` and
        ``start <= latest_start``, oldest first."""
        sessions = self._by_key.get(key)
        if not sessions:
            return []
        bounds = sessions.keys()
        # sessions do not overlap, so their ends grow with their starts: bisect on the end
        lo, hi = 0, len(bounds)
        while lo < hi:
            mid = (lo + hi) // 2
            if bounds[mid][1] < earliest_end:
                lo = mid + 1
            else:
                hi = mid
        out = []
        for i in range(lo, len(bounds)):
            start, end = bounds[i]
            if start > latest_start:
                break
            out.append((start, end, sessions[(start, end)][0]))
        return out

    def fetch_session(self, key: Any, start: int, end: int) -> Any:
        sessions = self._by_key.get(key)
        entry = None if sessions is None else sessions.get((start, end))
        return None if entry is None else entry[0]

    def fetch(self, key: Any) -> list[tuple[int, int, Any]]:
        sessions = self._by_key.get(key)
        if not sessions:
            return []
        return [(s, e, v[0]) for (s, e), v in sessions.items()]

    def put(self, key: Any, start: int, end: int, value: Any, timestamp: int = -1) -> None:
        entry = None if value is None else (value, timestamp)
        self.restore((key, start, end), entry)
        self._log((key, start, end), entry)

    def remove(self, key: Any, start: int, end: int) -> None:
        self.put(key, start, end, None)

    def restore(self, key: Any, entry: Any) -> None:
        k, start, end = key
        sessions = self._by_key.get(k)
        if entry is None:
            if sessions is not None and sessions.pop((start, end), None) is not None:
                self._unindex(k, start, end)
                if not sessions:
                    del self._by_key[k]
            return
        if sessions is None:
            sessions = self._by_key[k] = SortedDict()
        if (start, end) not in sessions:
            at = self._at_end.get(end)
            if at is None:
                self._at_end[end] = [(k, start)]
                self._ends.add(end)
            else:
                at.append((k, start))
        sessions[(start, end)] = entry
        self._observed = max(self._observed, end)

    def _unindex(self, key: Any, start: int, end: int) -> None:
        at = self._at_end[end]
        at.remove((key, start))
        if not at:
            del self._at_end[end]
            self._ends.remove(end)

    @property
    def observed_stream_time(self) -> int:
        """The largest session end written to (or restored into) the store, -1 if none."""
        return self._observed

    def expire(self, horizon: int) -> None:
        """Forget sessions that ended before ``horizon`` (not logged)."""
        while self._ends and self._ends[0] < horizon:
            end = self._ends[0]
            for key, start in list(self._at_end[end]):
                self.restore((key, start, end), None)

    def entries(self) -> Iterator[tuple[Any, Any]]:
        for key, sessions in self._by_key.items():
            for (start, end), entry in sessions.items():
                yield (key, start, end), entry

    def clear(self) -> None:
        self._by_key.clear()
        self._ends.clear()
        self._at_end.clear()
        self._pending.clear()
        self._observed = -1

    def approximate_num_entries(self) -> int:
        return sum(len(s) for s in self._by_key.values())

    def _check(self) -> None:
        assert sum(len(at) for at in self._at_end.values()) == self.approximate_num_entries()
        assert list(self._ends) == sorted(self._at_end)
        for key, sessions in self._by_key.items():
            assert sessions, f"empty session map kept for {key!r}"
            prev_end = None
            for start, end in sessions:
                assert start <= end
                assert prev_end is None or start > prev_end, f"sessions of {key!r} overlap"
                assert (key, start) in self._at_end[end]
                prev_end = end
