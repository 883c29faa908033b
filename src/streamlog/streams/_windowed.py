"""Windowed aggregations (time, sliding, session windows) and suppression.

The processors follow Kafka Streams' ``KStreamWindowAggregate``,
``KStreamSlidingWindowAggregate``, ``KStreamSessionWindowAggregate`` and the
final-results ``KTableSuppressProcessor`` (see ``docs/streams.md``):

* Each processor keeps its own *observed stream time* ``S``: the largest
  timestamp of the records it aggregated (records with a ``None`` key or value
  are dropped first and do not move it), or the task's stream time handed to
  ``on_stream_time`` (idle advance).
* Tumbling/hopping window ``[start, end)``: a record updates each of its
  windows with ``end > S - grace``; it is dropped as late for each of the
  others (``end + grace <= S``).
* Sliding window ``[start, end]`` (KIP-450): a record is dropped when even its
  right window is closed (``ts + difference < S - grace``); otherwise it
  updates or creates the windows it falls in, skipping (late) those with
  ``end < S - grace``. Windows are created as records enter and leave a window,
  as Kafka's algorithm does (including its ``[0, difference]`` window for
  records earlier than ``difference``), with one difference: a closed window is
  still updated in the store (not forwarded), so that the windows later copied
  from it hold exactly the records in their bounds.
* Session ``[first, last]``: ``close = S - grace - gap``. A record merges every
  session of its key within ``gap`` of it; the result is dropped as late when
  it ends before ``close``; otherwise each merged-away session is retracted
  with a tombstone ``Change(None, old)``, then the merged session is forwarded.
  A session that ended before ``close`` cannot change any more, but a record
  within ``gap`` of it may still merge it into a new session, so it is kept
  until it ended before ``close - gap`` (Kafka keeps it for the store's
  retention, or, with RocksDB, longer).
* Outputs are ``Record(Windowed(key, start, end), Change(new, old), ts)`` with
  ``ts`` the largest timestamp of the records in the window (for sessions, its
  end).
* ``suppress_until_window_closes`` buffers the latest value of each window and
  forwards it once, as ``Change(value, None)``, when the window is closed:
  ``S >= end + grace`` (time windows), ``S > end + grace`` (sliding windows),
  ``S > end + gap + grace`` (sessions), ``S`` being the largest timestamp the
  suppression has received (or the task's stream time on idle advance).
  Tombstones of sessions that were not yet emitted are dropped with them.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TopologyError
from ._processor import Change, Processor, ProcessorContext, Record
from ._stores import KeyValueStore, SessionStore, WindowStore
from ._topology import StoreSpec
from ._windows import SessionWindows, SlidingWindows, TimeWindows, Windowed

if TYPE_CHECKING:
    from ._app import StreamsApp

__all__ = [
    "SessionWindowAggregate",
    "SlidingWindowAggregate",
    "SuppressUntilWindowCloses",
    "TimeWindowAggregate",
    "suppress_until_window_closes",
    "windowed_aggregate",
]


class _Empty:
    """No aggregate yet (a window or session that does not exist)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<empty>"


EMPTY: Any = _Empty()


class _Aggregation:
    """``initializer``/``aggregator`` (count, aggregate) or ``reducer`` (reduce), and the
    session ``merger``, behind one interface; ``EMPTY`` stands for no aggregate yet."""

    __slots__ = ("aggregator", "initializer", "merger", "reducer")

    def __init__(
        self,
        initializer: Callable[[], Any] | None,
        aggregator: Callable[[Any, Any, Any], Any] | None,
        reducer: Callable[[Any, Any], Any] | None,
        merger: Callable[[Any, Any, Any], Any] | None,
    ) -> None:
        if reducer is None and (initializer is None or aggregator is None):
            raise TopologyError(
                "a windowed aggregation needs a reducer or an initializer and aggregator"
            )
        self.initializer = initializer
        self.aggregator = aggregator
        self.reducer = reducer
        self.merger = merger

    def add(self, key: Any, value: Any, agg: Any) -> Any:
        """``agg`` with ``value`` added (``agg`` may be ``EMPTY``)."""
        if self.reducer is not None:
            return value if agg is EMPTY else self.reducer(agg, value)
        assert self.initializer is not None and self.aggregator is not None
        if agg is EMPTY:
            agg = self.initializer()
        return self.aggregator(key, value, agg)

    def merge_start(self) -> Any:
        """What a session merge starts from: Kafka's ``initializer()`` (nothing for reduce)."""
        if self.reducer is not None:
            return EMPTY
        assert self.initializer is not None
        return self.initializer()

    def merge(self, key: Any, agg: Any, other: Any) -> Any:
        if self.reducer is not None:
            # Kafka's reduce merges through its aggregator: reducer(agg1, agg2)
            return other if agg is EMPTY else self.reducer(agg, other)
        if self.merger is None:
            raise TopologyError("a session aggregation needs a merger")
        return self.merger(key, agg, other)


def _dropped_invalid(context: ProcessorContext, record: Record) -> bool:
    if record.key is None:
        context.record_dropped("null-key", record)
        return True
    if record.value is None:
        context.record_dropped("null-value", record)
        return True
    return False


class _WindowAggregate(Processor):
    """What the three window aggregations share: their store (of ``store_kind``), the
    aggregation, and the largest timestamp they have observed (their stream time, which
    the store remembers across restarts and an idle task's advance moves)."""

    store_kind: type[WindowStore] | type[SessionStore]
    store: Any

    def __init__(self, store_name: str, windows: Any, aggregation: _Aggregation) -> None:
        self.store_name = store_name
        self.windows = windows
        self.aggregation = aggregation
        self.observed = -1

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        store = context.get_state_store(self.store_name)
        assert isinstance(store, self.store_kind)
        self.store = store
        self.observed = max(self.observed, store.observed_stream_time)

    def on_stream_time(self, stream_time: int) -> None:
        self.observed = max(self.observed, stream_time)


# ------------------------------------------------------------------ tumbling/hopping
class TimeWindowAggregate(_WindowAggregate):
    """Tumbling and hopping windows ``[start, start + size)`` (``KStreamWindowAggregate``)."""

    store_kind = WindowStore
    store: WindowStore
    windows: TimeWindows

    def process(self, record: Record) -> None:
        if _dropped_invalid(self.context, record):
            return
        key, value, ts = record.key, record.value, record.timestamp
        self.observed = max(self.observed, ts)
        close = self.observed - self.windows.grace_ms
        for start, end in self.windows.windows_for(ts):
            if end <= close:
                self.context.record_dropped("late", record, window_start=start, window_end=end)
                continue
            entry = self.store.fetch_with_timestamp(key, start)
            if entry is None:
                old, agg, new_ts = None, EMPTY, ts
            else:
                old, old_ts = entry
                agg, new_ts = old, max(ts, old_ts)
            new = self.aggregation.add(key, value, agg)
            self.store.put(key, start, new, new_ts)
            self.context.forward(
                Record(Windowed(key, start, end), Change(new, old), new_ts, record.headers)
            )


# ----------------------------------------------------------------------- sliding
class SlidingWindowAggregate(_WindowAggregate):
    """Sliding windows ``[start, start + difference]`` created as records enter and leave
    them (KIP-450; ``KStreamSlidingWindowAggregate``). A window's stored timestamp is the
    largest timestamp of its records."""

    store_kind = WindowStore
    store: WindowStore
    windows: SlidingWindows

    def __init__(self, store_name: str, windows: SlidingWindows, aggregation: _Aggregation) -> None:
        super().__init__(store_name, windows, aggregation)
        self.diff = windows.time_difference_ms

    def process(self, record: Record) -> None:
        if _dropped_invalid(self.context, record):
            return
        ts = record.timestamp
        self.observed = max(self.observed, ts)
        close = self.observed - self.windows.grace_ms
        if ts + self.diff < close:  # even the record's right window is closed
            self.context.record_dropped("late", record, window_start=ts, window_end=ts + self.diff)
            return
        if ts < self.diff:
            self._process_early(record, close)
        else:
            self._process(record, close)

    # Kafka's processInOrder (its processReverse can lose track of the previous record
    # after a late record and copy a record into a window that does not contain it)
    def _process(self, record: Record, close: int) -> None:
        key, ts, diff = record.key, record.timestamp, self.diff
        starts: set[int] = set()
        left_agg: tuple[Any, int] | None = None
        right_agg: tuple[Any, int] | None = None
        left_created = right_created = False
        previous: int | None = None  # the timestamp of the record before this one
        windows = self.store.fetch_range_with_timestamp(key, max(0, ts - 2 * diff), ts + 1)
        updates: list[tuple[int, Any, int]] = []  # the existing windows holding the record
        for start, value, max_ts in windows:
            starts.add(start)
            end = start + diff
            if end < ts:  # the last of these is the newest window before this record's
                left_agg = (value, max_ts)
                previous = max_ts
            elif end == ts:
                left_created = True
                if max_ts < ts:
                    previous = max_ts
                updates.append((start, value, max_ts))
            elif start <= ts:  # end > ts: a window the record falls in
                right_agg = (value, max_ts)
                updates.append((start, value, max_ts))
            else:  # start == ts + 1
                right_created = True
        right = None  # this record's right window, if later records fall in it
        if not right_created and right_agg is not None and right_agg[1] > ts:
            right = (self._copy(right_agg[0]), right_agg[1])  # before the record is added
        for start, value, max_ts in updates:
            self._update(record, start, value, max_ts, True, close)
        # the previous record's right window, if it does not exist and this record is in it
        if previous is not None:
            start = previous + 1
            if start not in starts and start + diff >= ts:
                self._update(record, start, EMPTY, None, False, close)
                # it may be this record's left window too (Kafka makes it twice)
                left_created = left_created or start == ts - diff
        # this record's left window
        if not left_created:
            if previous is not None and ts - diff <= previous:
                assert left_agg is not None
                self._update(record, ts - diff, self._copy(left_agg[0]), None, False, close)
            else:
                self._update(record, ts - diff, EMPTY, None, False, close)
        if right is not None:
            self._create_right(record, right)

    # Kafka's processEarly: records before ``difference`` share the window [0, difference]
    def _process_early(self, record: Record, close: int) -> None:
        key, ts = record.key, record.timestamp
        combined: tuple[Any, int] | None = None
        right_agg: tuple[Any, int] | None = None
        right_created = False
        starts: set[int] = set()
        previous: int | None = None
        updates: list[tuple[int, Any, int]] = []
        for start, value, max_ts in self.store.fetch_range_with_timestamp(key, 0, ts + 1):
            starts.add(start)
            if start == 0:
                combined = (value, max_ts)
                if max_ts < ts:
                    previous = max_ts
            elif start <= ts:
                right_agg = (value, max_ts)
                updates.append((start, value, max_ts))
            else:  # start == ts + 1
                right_created = True
        # without a right window found, the combined window holds only records after this one
        if right_agg is None and combined is not None and combined[1] > ts:
            right_agg = combined
        right = None
        if not right_created and right_agg is not None and right_agg[1] > ts:
            right = (self._copy(right_agg[0]), right_agg[1])  # before the record is added
        for start, value, max_ts in updates:
            self._update(record, start, value, max_ts, True, close)
        if right is not None:
            self._create_right(record, right)
        if previous is not None and previous + 1 not in starts:
            self._update(record, previous + 1, EMPTY, None, False, close)
        if combined is None:
            self._update(record, 0, EMPTY, None, False, close)
        else:
            self._update(record, 0, combined[0], combined[1], True, close)

    @staticmethod
    def _copy(value: Any) -> Any:
        # an aggregate copied into a second window must not share mutable state
        # (Kafka's stores hold serialized copies)
        return copy.deepcopy(value)

    def _update(
        self,
        record: Record,
        start: int,
        base: Any,
        base_ts: int | None,
        existing: bool,
        close: int,
    ) -> None:
        """Add ``record`` to the window at ``start`` holding ``base`` (``EMPTY``: a new,
        empty window), unless the window is closed. ``existing``: the window is in the
        store with ``base`` (else it is created, and forwarded with no old value)."""
        end = start + self.diff
        ts = record.timestamp
        new = self.aggregation.add(record.key, record.value, base)
        new_ts = ts if base_ts is None else max(ts, base_ts)
        self.store.put(record.key, start, new, new_ts)
        if end < close:
            # closed: not forwarded, but kept whole in the store, because the windows
            # created later are copied from their neighbours (Kafka skips the store
            # update too, and may then copy a record into a window it is not in)
            self.context.record_dropped("late", record, window_start=start, window_end=end)
            return
        old = base if existing else None
        self.context.forward(
            Record(Windowed(record.key, start, end), Change(new, old), new_ts, record.headers)
        )

    def _create_right(self, record: Record, agg: tuple[Any, int]) -> None:
        """Create the record's right window ``[ts + 1, ts + 1 + difference]`` holding
        ``agg`` (a copy of the later records' aggregate, without this record)."""
        start = record.timestamp + 1
        value = agg[0]
        self.store.put(record.key, start, value, agg[1])
        self.context.forward(
            Record(
                Windowed(record.key, start, start + self.diff),
                Change(value, None),
                agg[1],
                record.headers,
            )
        )


# ----------------------------------------------------------------------- sessions
class SessionWindowAggregate(_WindowAggregate):
    """Per-key sessions ``[first, last]`` (``KStreamSessionWindowAggregate``)."""

    store_kind = SessionStore
    store: SessionStore
    windows: SessionWindows

    def __init__(self, store_name: str, windows: SessionWindows, aggregation: _Aggregation) -> None:
        super().__init__(store_name, windows, aggregation)
        self.gap = windows.inactivity_gap_ms

    def process(self, record: Record) -> None:
        if _dropped_invalid(self.context, record):
            return
        key, value, ts = record.key, record.value, record.timestamp
        self.observed = max(self.observed, ts)
        close = self.observed - self.windows.grace_ms - self.gap
        # a session that ended before close is closed (it cannot grow in place), but a
        # record at close or later may still merge it if it ended within gap of the record:
        # keep it until then, then forget it
        self.store.expire(close - self.gap)
        found = self.store.find_sessions(key, ts - self.gap, ts + self.gap)
        agg = self.aggregation.merge_start()
        start = end = ts
        old = None
        for s, e, v in found:
            agg = self.aggregation.merge(key, agg, v)
            start, end = min(start, s), max(end, e)
        if end < close:
            self.context.record_dropped("late", record, window_start=start, window_end=end)
            return
        for s, e, v in found:
            if (s, e) == (start, end):
                old = v  # the session itself grows in place: an update, not a tombstone
                continue
            self.store.remove(key, s, e)
            self.context.forward(Record(Windowed(key, s, e), Change(None, v), e, record.headers))
        agg = self.aggregation.add(key, value, agg)
        self.store.put(key, start, end, agg, end)
        self.context.forward(
            Record(Windowed(key, start, end), Change(agg, old), end, record.headers)
        )


# ---------------------------------------------------------------------- suppress
class SuppressUntilWindowCloses(Processor):
    """Holds each window's latest value until the window closes, then forwards it once
    (``Suppressed.untilWindowCloses`` with an unbounded buffer).

    ``delay`` is added to a window's end to get the stream time that closes it. The
    buffer is a logged key-value store (``Windowed -> (value, headers)``), so buffered
    windows survive a restart; a heap orders them by close time.
    """

    store: KeyValueStore

    def __init__(self, store_name: str, delay: int) -> None:
        self.store_name = store_name
        self.delay = delay
        self.observed = -1
        self._heap: list[tuple[int, int, Windowed]] = []
        self._seq = 0

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        store = context.get_state_store(self.store_name)
        assert isinstance(store, KeyValueStore)
        self.store = store
        for key, _ in store.items():  # restored from the changelog
            self._push(key)

    def _push(self, key: Windowed) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (key.end + self.delay, self._seq, key))

    def on_stream_time(self, stream_time: int) -> None:
        if stream_time > self.observed:
            self.observed = stream_time
            self._emit_closed()

    def process(self, record: Record) -> None:
        key = record.key
        if not isinstance(key, Windowed):
            raise TopologyError(
                f"suppress_until_window_closes needs Windowed keys, got {type(key).__name__}"
            )
        change: Change = record.value
        self.observed = max(self.observed, record.timestamp)
        if change.new is None:
            self.store.delete(key)  # a session merged away before it closed: never emitted
        else:
            if key not in self.store:
                self._push(key)
            headers = tuple(tuple(h) for h in record.headers)
            self.store.put(key, (change.new, headers), record.timestamp)
        self._emit_closed()

    def _emit_closed(self) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self.observed:
            _, _, key = heapq.heappop(heap)
            entry = self.store.get_with_timestamp(key)
            if entry is None:
                continue  # deleted, or emitted through an older heap entry
            self.store.delete(key)
            (value, headers), ts = entry
            self.context.forward(
                Record(key, Change(value, None), ts, tuple((h[0], h[1]) for h in headers))
            )


# ---------------------------------------------------------------------- the DSL's
def windowed_aggregate(
    app: StreamsApp,
    parent: str,
    windows: Any,
    store: str,
    *,
    initializer: Any,
    aggregator: Any,
    reducer: Any,
    merger: Any = None,
) -> str:
    """Add the window store ``store`` and the aggregating node under ``parent``; returns
    the node's name. ``reducer`` (reduce) replaces ``initializer``/``aggregator``."""
    aggregation = _Aggregation(initializer, aggregator, reducer, merger)
    prefix = "KSTREAM-REDUCE" if reducer is not None else "KSTREAM-AGGREGATE"
    make_store: Callable[[], Any]
    make: Callable[[], Processor]
    if isinstance(windows, TimeWindows):
        tw = windows

        def make_store() -> Any:
            return WindowStore(store, window_size_ms=tw.size_ms, retention_ms=tw.retention_ms)

        def make() -> Processor:
            return TimeWindowAggregate(store, tw, aggregation)

    elif isinstance(windows, SlidingWindows):
        sw = windows

        def make_store() -> Any:
            return WindowStore(
                store, window_size_ms=sw.time_difference_ms, retention_ms=sw.retention_ms
            )

        def make() -> Processor:
            return SlidingWindowAggregate(store, sw, aggregation)

    elif isinstance(windows, SessionWindows):
        if reducer is None and merger is None:
            raise TopologyError("a session aggregation needs a merger")
        ssw = windows

        def make_store() -> Any:
            # sessions are kept for gap + grace after they close (see SessionWindowAggregate)
            return SessionStore(store, retention_ms=ssw.retention_ms + ssw.inactivity_gap_ms)

        def make() -> Processor:
            return SessionWindowAggregate(store, ssw, aggregation)

    else:
        raise TopologyError(
            "windowed aggregations need TimeWindows, SlidingWindows or SessionWindows, "
            f"got {type(windows).__name__}"
        )
    app._builder.add_store(StoreSpec(store, make_store))
    return app._builder.add_processor(prefix, make, [parent], (store,))


def close_delay(windows: Any) -> int:
    """How long after a window's ``end`` (as ``Windowed.end`` reports it) the window is
    closed: it closes when stream time reaches ``end + close_delay(windows)``."""
    if isinstance(windows, TimeWindows):
        return windows.grace_ms  # end is exclusive
    if isinstance(windows, SlidingWindows):
        return windows.grace_ms + 1  # end is inclusive
    if isinstance(windows, SessionWindows):
        return windows.inactivity_gap_ms + windows.grace_ms + 1
    raise TopologyError(
        "suppress_until_window_closes needs TimeWindows, SlidingWindows or SessionWindows, "
        f"got {type(windows).__name__}"
    )


def suppress_until_window_closes(app: StreamsApp, parent: str, windows: Any) -> str:
    """Add the suppression buffer's store and node under ``parent``; returns the node."""
    delay = close_delay(windows)
    builder = app._builder
    store = builder.new_name("KTABLE-SUPPRESS-STATE-STORE")
    builder.add_store(StoreSpec(store, lambda: KeyValueStore(store)))
    return builder.add_processor(
        "KTABLE-SUPPRESS", lambda: SuppressUntilWindowCloses(store, delay), [parent], (store,)
    )
