"""Joins: stream-stream (windowed), stream-table, stream-global-table,
table-table and foreign-key table-table.

Each function adds the join's nodes (and stores) to the application's
topology and returns the result node (tables: also its value getter and the
stores it reads). Semantics are Kafka Streams' (docs/streams.md, "Joins");
the processors follow Kafka's ``KStreamKStreamJoin``, ``KStreamKTableJoin``,
``KTableKTable{Inner,Left,Right,Outer}Join`` and the foreign-key join's
subscription/response processors.

Stream-stream join (``stream_stream_join``), per task:

- each side keeps its records in a ``JoinWindowStore`` (duplicates retained);
  a record is kept while its timestamp is greater than that store's largest
  timestamp minus the retention ``before + after + grace`` (Kafka's window
  store, which also hides older records from fetches);
- both sides share the join's stream time (the largest timestamp either side
  has seen, null keys and values included);
- a record older than ``stream time - (before + after + grace)`` is late:
  dropped and counted;
- a new left record joins every right record of its key with
  ``left.ts - before <= right.ts <= left.ts + after`` (symmetrically for a right
  record), result timestamp ``max(left.ts, right.ts)``;
- left/outer joins: a record that found no partner waits in the
  ``OuterJoinStore`` until stream time passes ``ts + after + grace`` (left
  records; right records: ``ts + before + grace``), then comes out as
  ``joiner(v, None)`` / ``joiner(None, v)`` with its own timestamp, unless a
  partner arrived first. Waiting records come out when an in-order record
  (``ts == stream time``) arrives on either side, or when the task's stream time
  advances without records (idle advance). An out-of-order record without
  partner whose wait is already over comes out at once;
- KIP-962: a record with a ``None`` key on an outer side comes out at once as
  ``joiner(v, None)`` (key ``None``); elsewhere ``None`` keys and values are
  dropped and counted.

Where this differs from Kafka 3.9's code: the late-record drop (Kafka still
joins such a record with what the other store holds, and emits it unmatched at
once); an out-of-order record waits until ``ts + after + grace`` rather than
``ts + after`` (KAFKA-19536); every due record comes out at every scan (Kafka
skips scans by a minimum-timestamp heuristic and throttles them to one per
``emit.interval`` of wall-clock time, 1 s by default); equal timestamps and
sides come out in arrival order, not in serialized-key order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedDict

from ..clients._partitioner import murmur2_partition
from ..errors import SerdeError, TopologyError
from ._ops import KTableSource, PassThrough
from ._processor import Change, Processor, ProcessorContext, Record
from ._serdes import INTERNAL, Serde
from ._stores import KeyValueStore, StateStore
from ._task import SinkProcessor, SourceProcessor, StreamTask, repartition_topic
from ._topology import StoreSpec
from ._windows import JoinWindows

if TYPE_CHECKING:
    from ._app import StreamsApp
    from ._dsl import Getter, GetterFactory, GlobalKTable, KTable

__all__ = [
    "JoinWindowStore",
    "OuterJoinStore",
    "SubscriptionStore",
    "foreign_key_join",
    "key_partitioner",
    "stream_global_table_join",
    "stream_stream_join",
    "stream_table_join",
    "table_table_join",
]

Joiner = Callable[[Any, Any], Any]

RIGHT = 0  # join sides, in the order Kafka's outer-join store sorts them at equal timestamps
LEFT = 1


# ------------------------------------------------------------- stream-table
class StreamTableJoin(Processor):
    """Each stream record looks up the table's row at processing time; table updates
    only change that row (they trigger nothing).

    As Kafka's ``KStreamKTableJoinProcessor``: a record with a ``None`` value is
    dropped; a record whose join key is ``None`` is dropped, except in a left join
    when the record's own key is ``None`` (KIP-962), which joins with ``None``.
    """

    def __init__(
        self,
        getter: GetterFactory,
        joiner: Joiner,
        left: bool,
        key_selector: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.getter_factory = getter
        self.joiner = joiner
        self.left = left
        self.key_selector = key_selector

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.get = self.getter_factory(context._task)

    def process(self, record: Record) -> None:
        if record.value is None:
            self.context.record_dropped("null-value", record)
            return
        key = record.key if self.key_selector is None else self.key_selector(
            record.key, record.value
        )
        if key is None:
            if not (self.left and record.key is None):
                self.context.record_dropped("null-key", record)
                return
            entry = None
        else:
            entry = self.get(key)
        if entry is None:
            if not self.left:
                return
            self.context.forward(record.with_value(self.joiner(record.value, None)))
            return
        self.context.forward(record.with_value(self.joiner(record.value, entry[0])))


def stream_table_join(
    app: StreamsApp, stream: str, table: KTable, joiner: Joiner, kind: str
) -> str:
    getter = table.value_getter()
    return app._builder.add_processor(
        "KSTREAM-JOIN" if kind == "inner" else "KSTREAM-LEFTJOIN",
        lambda: StreamTableJoin(getter, joiner, kind == "left"),
        [stream],
        table._stores,
    )


def stream_global_table_join(
    app: StreamsApp,
    stream: str,
    table: GlobalKTable,
    key_selector: Callable[[Any, Any], Any],
    joiner: Joiner,
    kind: str,
) -> str:
    getter = table.value_getter()
    return app._builder.add_processor(
        "KSTREAM-JOIN" if kind == "inner" else "KSTREAM-LEFTJOIN",
        lambda: StreamTableJoin(getter, joiner, kind == "left", key_selector),
        [stream],
        (table.queryable_store_name,),
    )


# ------------------------------------------------------------ stream-stream
class JoinWindowStore(StateStore):
    """One side of a stream-stream join: its records by key and timestamp, duplicates
    retained (Kafka's window store with ``retainDuplicates``).

    ``observed`` is the largest timestamp written; a record is kept (and returned by
    ``fetch``) while ``ts > observed - retention_ms``; a write older than that is
    skipped. Changelog record: key ``(k, ts, seq)``, value ``(v, ts)``; expiry is not
    logged (a restore expires what it replays, as the changelog's retention would).
    """

    kind = "join-window"

    def __init__(self, name: str, *, retention_ms: int, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self.retention_ms = retention_ms
        self.observed = -1
        self._by_key: dict[Any, SortedDict] = {}  # key -> {(ts, seq): value}
        self._index: SortedDict = SortedDict()  # (ts, seq) -> key, for expiry
        self._seq = 0

    def observe(self, timestamp: int) -> None:
        """Advance the store's time (Kafka's window store does so for every write)."""
        if timestamp > self.observed:
            self.observed = timestamp
            self._expire()

    def put(self, key: Any, timestamp: int, value: Any) -> bool:
        """Add a record; False when it is already older than the retention."""
        self.observe(timestamp)
        if timestamp <= self.observed - self.retention_ms:
            return False
        seq = self._seq
        self._seq += 1
        self._insert(key, timestamp, seq, value)
        self._log((key, timestamp, seq), (value, timestamp))
        return True

    def fetch(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        """``(ts, value)`` of ``key``'s live records with ``time_from <= ts <= time_to``,
        by timestamp, then in arrival order."""
        windows = self._by_key.get(key)
        if windows is None:
            return []
        low = max(time_from, self.observed - self.retention_ms + 1)
        if time_to < low:
            return []
        return [
            (ts, windows[(ts, seq)])
            for ts, seq in windows.irange((low, -1), (time_to, float("inf")))
        ]

    def _insert(self, key: Any, timestamp: int, seq: int, value: Any) -> None:
        windows = self._by_key.get(key)
        if windows is None:
            windows = self._by_key[key] = SortedDict()
        windows[(timestamp, seq)] = value
        self._index[(timestamp, seq)] = key

    def _remove(self, key: Any, timestamp: int, seq: int) -> None:
        windows = self._by_key.get(key)
        if windows is None or windows.pop((timestamp, seq), _MISSING) is _MISSING:
            return
        del self._index[(timestamp, seq)]
        if not windows:
            del self._by_key[key]

    def _expire(self) -> None:
        horizon = self.observed - self.retention_ms
        index = self._index
        while index:
            (ts, seq), key = index.peekitem(0)
            if ts > horizon:
                break
            self._remove(key, ts, seq)

    def restore(self, key: Any, entry: Any) -> None:
        k, ts, seq = key
        if seq >= self._seq:
            self._seq = seq + 1
        if entry is None:
            self._remove(k, ts, seq)
            return
        self._insert(k, ts, seq, entry[0])
        self.observed = max(self.observed, ts)
        self._expire()

    def entries(self) -> Iterator[tuple[Any, Any]]:
        for key, windows in self._by_key.items():
            for (ts, seq), value in windows.items():
                yield (key, ts, seq), (value, ts)

    def clear(self) -> None:
        self._by_key.clear()
        self._index.clear()
        self._pending.clear()
        self.observed = -1

    def approximate_num_entries(self) -> int:
        return len(self._index)

    def _check(self) -> None:
        count = 0
        for key, windows in self._by_key.items():
            assert windows, f"empty window map kept for {key!r}"
            for ts_seq in windows:
                assert self._index[ts_seq] == key
                assert ts_seq[0] > self.observed - self.retention_ms, "expired record kept"
                assert ts_seq[1] < self._seq
            count += len(windows)
        assert count == len(self._index)


_MISSING = object()


class OuterJoinStore(StateStore):
    """The records of a left/outer stream-stream join that found no partner yet
    (Kafka's shared outer-join store), in Kafka's order: timestamp, then right side
    before left side, then arrival.

    Changelog record: key ``(ts, side, seq)``, value ``((k, v), ts)``.
    """

    kind = "join-outer"

    def __init__(self, name: str, *, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self._entries: SortedDict = SortedDict()  # (ts, side, seq) -> (key, value)
        self._by_record: dict[tuple[Any, int, int], list[int]] = {}  # (k, ts, side) -> seqs
        self._seq = 0

    def add(self, key: Any, timestamp: int, side: int, value: Any) -> None:
        seq = self._seq
        self._seq += 1
        self._insert(key, timestamp, side, seq, value)
        self._log((timestamp, side, seq), ((key, value), timestamp))

    def remove_matched(self, key: Any, timestamp: int, side: int) -> None:
        """A partner arrived: forget every waiting record of ``side`` with this key and
        timestamp (they join the same partners)."""
        seqs = self._by_record.pop((key, timestamp, side), None)
        if seqs is None:
            return
        for seq in seqs:
            del self._entries[(timestamp, side, seq)]
            self._log((timestamp, side, seq), None)

    def pop_due(
        self, stream_time: int, left_wait: int, right_wait: int
    ) -> list[tuple[Any, int, int, Any]]:
        """Remove and return ``(key, ts, side, value)`` of every record whose wait is over:
        ``ts + wait < stream_time`` (``wait``: ``after + grace`` for left records,
        ``before + grace`` for right ones), in the store's order."""
        out: list[tuple[Any, int, int, Any]] = []
        least = min(left_wait, right_wait)
        for ts_side_seq in self._entries.irange(maximum=(stream_time - least, -1, -1),
                                                inclusive=(True, False)):
            ts, side, _ = ts_side_seq
            if ts + (left_wait if side == LEFT else right_wait) < stream_time:
                key, value = self._entries[ts_side_seq]
                out.append((key, ts, side, value))
        for key, ts, side, _ in out:
            for seq in self._by_record.pop((key, ts, side), ()):
                del self._entries[(ts, side, seq)]
                self._log((ts, side, seq), None)
        return out

    def _insert(self, key: Any, timestamp: int, side: int, seq: int, value: Any) -> None:
        self._entries[(timestamp, side, seq)] = (key, value)
        self._by_record.setdefault((key, timestamp, side), []).append(seq)

    def restore(self, key: Any, entry: Any) -> None:
        ts, side, seq = key
        if seq >= self._seq:
            self._seq = seq + 1
        if entry is None:
            found = self._entries.pop((ts, side, seq), None)
            if found is not None:
                group = (found[0], ts, side)
                seqs = self._by_record[group]
                seqs.remove(seq)
                if not seqs:
                    del self._by_record[group]
            return
        (k, v), _ = entry
        if (ts, side, seq) not in self._entries:
            self._insert(k, ts, side, seq, v)

    def entries(self) -> Iterator[tuple[Any, Any]]:
        for (ts, side, seq), kv in self._entries.items():
            yield (ts, side, seq), (kv, ts)

    def clear(self) -> None:
        self._entries.clear()
        self._by_record.clear()
        self._pending.clear()

    def approximate_num_entries(self) -> int:
        return len(self._entries)

    def _check(self) -> None:
        count = 0
        for (key, ts, side), seqs in self._by_record.items():
            assert seqs, "empty group kept"
            for seq in seqs:
                assert self._entries[(ts, side, seq)][0] == key
            count += len(seqs)
        assert count == len(self._entries)


class _JoinClock:
    """The stream time both sides of one stream-stream join share within a task."""

    __slots__ = ("stream_time",)

    def __init__(self) -> None:
        self.stream_time = -1


class StreamStreamJoinSide(Processor):
    """One side of a stream-stream join (Kafka's ``KStreamKStreamJoin`` processor plus
    the ``KStreamJoinWindow`` that stores the side's records)."""

    def __init__(
        self,
        *,
        side: int,
        joiner: Joiner,
        windows: JoinWindows,
        own_store: str,
        other_store: str,
        outer_store: str | None,
        outer: bool,
        clock_key: str,
    ) -> None:
        self.side = side
        self.other_side = RIGHT if side == LEFT else LEFT
        self.joiner = joiner
        before, after, grace = windows.before_ms, windows.after_ms, windows.grace_ms
        # the other side's records this side's record joins: [ts - join_before, ts + join_after]
        self.join_before, self.join_after = (before, after) if side == LEFT else (after, before)
        self.grace = grace
        self.retention = before + after + grace
        # a waiting left record can still meet right records up to ts + after; a right one
        # left records up to ts + before
        self.left_wait = after + grace
        self.right_wait = before + grace
        self.own_store_name = own_store
        self.other_store_name = other_store
        self.outer_store_name = outer_store
        self.outer = outer
        self.clock_key = clock_key

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        own = context.get_state_store(self.own_store_name)
        other = context.get_state_store(self.other_store_name)
        assert isinstance(own, JoinWindowStore) and isinstance(other, JoinWindowStore)
        self.own = own
        self.other = other
        self.pending: OuterJoinStore | None = None
        if self.outer_store_name is not None:
            pending = context.get_state_store(self.outer_store_name)
            assert isinstance(pending, OuterJoinStore)
            self.pending = pending
        self.clock: _JoinClock = context._task.shared(self.clock_key, _JoinClock)

    def _join(self, this: Any, other: Any) -> Any:
        return self.joiner(this, other) if self.side == LEFT else self.joiner(other, this)

    def process(self, record: Record) -> None:
        ts = record.timestamp
        clock = self.clock
        clock.stream_time = max(clock.stream_time, ts)
        key, value = record.key, record.value
        if key is None and value is not None and self.outer:
            # KIP-962: a left (outer: either) record without a key cannot join; emit it now
            self.context.forward(record.with_value(self._join(value, None)))
            return
        if key is None or value is None:
            if key is not None:
                self.own.observe(ts)
            self.context.record_dropped("null-key" if key is None else "null-value", record)
            return
        stream_time = clock.stream_time
        if ts < stream_time - self.retention:
            self.context.record_dropped(
                "late", record, stream_time=stream_time, retention_ms=self.retention
            )
            return
        pending = self.pending
        if pending is not None and ts == stream_time:
            self._emit_due(stream_time, record.headers)
        forward = self.context.forward
        matched = False
        for other_ts, other_value in self.other.fetch(
            key, max(0, ts - self.join_before), ts + self.join_after
        ):
            matched = True
            if pending is not None:
                pending.remove_matched(key, other_ts, self.other_side)
            forward(Record(key, self._join(value, other_value), max(ts, other_ts),
                           record.headers))
        if not matched and self.outer:
            assert pending is not None
            if ts + self.join_after + self.grace < stream_time:
                forward(record.with_value(self._join(value, None)))  # its window closed already
            else:
                pending.add(key, ts, self.side, value)
        self.own.put(key, ts, value)

    def on_stream_time(self, stream_time: int) -> None:
        clock = self.clock
        clock.stream_time = max(clock.stream_time, stream_time)
        if self.pending is not None:
            self._emit_due(clock.stream_time, ())

    def _emit_due(self, stream_time: int, headers: tuple[tuple[str, bytes | None], ...]) -> None:
        assert self.pending is not None
        joiner = self.joiner
        for key, ts, side, value in self.pending.pop_due(
            stream_time, self.left_wait, self.right_wait
        ):
            result = joiner(value, None) if side == LEFT else joiner(None, value)
            self.context.forward(Record(key, result, ts, headers))


def stream_stream_join(
    app: StreamsApp,
    left: str,
    right: str,
    joiner: Joiner,
    windows: JoinWindows,
    kind: str,
) -> str:
    if kind not in ("inner", "left", "outer"):
        raise TopologyError(f"unknown stream-stream join kind {kind!r}")
    builder = app._builder
    left_outer = kind in ("left", "outer")
    right_outer = kind == "outer"
    retention = windows.before_ms + windows.after_ms + windows.grace_ms
    this_prefix = "KSTREAM-OUTERTHIS" if right_outer else "KSTREAM-JOINTHIS"
    other_prefix = "KSTREAM-OUTEROTHER" if left_outer else "KSTREAM-JOINOTHER"
    this_store = builder.new_name(this_prefix) + "-store"
    other_store = builder.new_name(other_prefix) + "-store"
    for name in (this_store, other_store):
        builder.add_store(StoreSpec(name, _window_store_factory(name, retention)))
    outer_store: str | None = None
    if left_outer:
        outer_store = builder.new_name("KSTREAM-OUTERSHARED") + "-store"
        shared_name = outer_store

        def make_outer() -> StateStore:
            return OuterJoinStore(shared_name)

        builder.add_store(StoreSpec(outer_store, make_outer))
    stores = (this_store, other_store) + ((outer_store,) if outer_store else ())

    def side_factory(side: int, own: str, other: str, outer: bool) -> Callable[[], Processor]:
        def make() -> Processor:
            return StreamStreamJoinSide(
                side=side, joiner=joiner, windows=windows, own_store=own, other_store=other,
                outer_store=outer_store, outer=outer, clock_key=this_store,
            )
        return make

    this_node = builder.add_processor(
        this_prefix, side_factory(LEFT, this_store, other_store, left_outer), [left], stores
    )
    other_node = builder.add_processor(
        other_prefix, side_factory(RIGHT, other_store, this_store, right_outer), [right], stores
    )
    return builder.add_processor("KSTREAM-MERGE", PassThrough, [this_node, other_node])


def _window_store_factory(name: str, retention: int) -> Callable[[], StateStore]:
    def make() -> StateStore:
        return JoinWindowStore(name, retention_ms=retention)
    return make


# -------------------------------------------------------------- table-table
class TableTableJoinSide(Processor):
    """One side of a table-table equi-join (Kafka's ``KTableKTable{Inner,Left,Right,
    Outer}Join`` processors): a change of this side's row is joined with the other
    side's current row and forwarded as ``Change(new result, old result)``.

    ``kind`` is the join's; ``side`` says which table this processor listens to.
    Nothing is forwarded when there was and is no result (a tombstone goes out only
    for a key that had a result).
    """

    def __init__(self, other_getter: GetterFactory, joiner: Joiner, kind: str, side: int) -> None:
        self.other_getter = other_getter
        self.joiner = joiner
        self.kind = kind
        self.side = side

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.get = self.other_getter(context._task)

    def _join(self, this: Any, other: Any) -> Any:
        return self.joiner(this, other) if self.side == LEFT else self.joiner(other, this)

    def process(self, record: Record) -> None:
        key = record.key
        if key is None:
            self.context.record_dropped("null-key", record)
            return
        change: Change = record.value
        entry = self.get(key)
        other = None if entry is None else entry[0]
        kind = self.kind
        this_optional = kind == "outer" or (kind == "left" and self.side == RIGHT)
        other_optional = kind == "outer" or (kind == "left" and self.side == LEFT)
        if other is None:
            if not other_optional or (change.new is None and change.old is None):
                return
            ts = record.timestamp
        else:
            ts = max(record.timestamp, entry[1])  # type: ignore[index]
        new = old = None
        if change.new is not None or (this_optional and other is not None):
            new = self._join(change.new, other)
        if change.old is not None or (this_optional and other is not None):
            old = self._join(change.old, other)
        if new is None and old is None:
            return
        self.context.forward(Record(key, Change(new, old), ts, record.headers))


def _table_join_getter(
    left: GetterFactory, right: GetterFactory, joiner: Joiner, kind: str
) -> GetterFactory:
    def factory(task: StreamTask) -> Getter:
        get_left = left(task)
        get_right = right(task)

        def lookup(key: Any) -> tuple[Any, int] | None:
            lv = get_left(key)
            rv = get_right(key)
            if lv is None and (kind != "outer" or rv is None):
                return None
            if rv is None and kind == "inner":
                return None
            ts = max(-1 if lv is None else lv[1], -1 if rv is None else rv[1])
            return joiner(None if lv is None else lv[0], None if rv is None else rv[0]), ts
        return lookup
    return factory


def table_table_join(
    app: StreamsApp, left: KTable, right: KTable, joiner: Joiner, kind: str
) -> tuple[str, GetterFactory | None, tuple[str, ...]]:
    if kind not in ("inner", "left", "outer"):
        raise TopologyError(f"unknown table-table join kind {kind!r}")
    if left._app is not right._app:
        raise TopologyError("a table joins a table of the same application")
    builder = app._builder
    left_getter = left.value_getter()
    right_getter = right.value_getter()
    # each side reads the other table's stores: both tables land in one sub-topology
    this_node = builder.add_processor(
        "KTABLE-JOINTHIS",
        lambda: TableTableJoinSide(right_getter, joiner, kind, LEFT),
        [left._node],
        right._stores,
    )
    other_node = builder.add_processor(
        "KTABLE-JOINOTHER",
        lambda: TableTableJoinSide(left_getter, joiner, kind, RIGHT),
        [right._node],
        left._stores,
    )
    merge = builder.add_processor("KTABLE-MERGE", PassThrough, [this_node, other_node])
    stores = tuple(dict.fromkeys((*left._stores, *right._stores)))
    return merge, _table_join_getter(left_getter, right_getter, joiner, kind), stores


# -------------------------------------------------------- foreign-key join
# What a subscription asks of the right side (Kafka's SubscriptionWrapper.Instruction)
DELETE_KEY_NO_PROPAGATE = 0  # forget the subscription; answer nothing
DELETE_KEY_AND_PROPAGATE = 1  # forget it; answer "no right value" (the result is deleted)
PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE = 2  # subscribe; answer the right value or None
PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE = 3  # subscribe; answer only if there is a right value


def value_hash(value: Any) -> bytes | None:
    """What a subscription carries to recognise the left value it was sent for."""
    if value is None:
        return None
    try:
        data = INTERNAL.serialize("fk-join-value-hash", value) or b""
    except SerdeError:
        data = repr(value).encode()
    return hashlib.blake2b(data, digest_size=16).digest()


class SubscriptionStore(KeyValueStore):
    """The right side's record of who subscribed to which foreign key: key
    ``(foreign key, left key)`` -> ``(hash, instruction, left key, left partition)``,
    with an index by foreign key (Kafka's prefix scan)."""

    kind = "kv"

    def __init__(self, name: str, *, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self._by_fk: dict[Any, dict[Any, None]] = {}

    def put(self, key: Any, value: Any, timestamp: int = -1) -> None:
        if value is not None:
            self._index(key)
        super().put(key, value, timestamp)

    def delete(self, key: Any) -> Any:
        self._unindex(key)
        return super().delete(key)

    def restore(self, key: Any, entry: Any) -> None:
        if entry is None:
            self._unindex(key)
        else:
            self._index(key)
        super().restore(key, entry)

    def clear(self) -> None:
        super().clear()
        self._by_fk.clear()

    def subscribers(self, foreign_key: Any) -> list[tuple[Any, Any]]:
        """``(left key, subscription)`` of every subscription to ``foreign_key``."""
        pks = self._by_fk.get(foreign_key)
        if not pks:
            return []
        return [(pk, self.get((foreign_key, pk))) for pk in pks]

    def _index(self, key: Any) -> None:
        fk, pk = key
        self._by_fk.setdefault(fk, {})[pk] = None

    def _unindex(self, key: Any) -> None:
        fk, pk = key
        pks = self._by_fk.get(fk)
        if pks is not None and pks.pop(pk, _MISSING) is not _MISSING and not pks:
            del self._by_fk[fk]

    def _check(self) -> None:
        indexed = {(fk, pk) for fk, pks in self._by_fk.items() for pk in pks}
        assert indexed == set(self.keys())
        assert all(self._by_fk.values()), "empty foreign-key index entry kept"


class SubscriptionSend(Processor):
    """Left side: each change of a left row subscribes to its (new) foreign key and
    unsubscribes from the old one (Kafka's ``SubscriptionSendProcessorSupplier``).
    Forwards ``(fk, (hash of the new left value, instruction, left key, partition))``.

    Inner and left joins send the same messages, Kafka's left-join ones: every change
    asks for an answer (``PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE``; for a deleted row or
    a ``None`` foreign key one with a ``None`` key, which no right row matches), so
    the answer to the row's latest value always sets its result, even when the answer
    that should have deleted an older result was dropped as stale (Kafka's inner join
    subscribes an insert "only if the foreign row exists", which leaves an old result
    behind when a delete and an insert of the row race). The extra answers cost no
    output: the result table ignores deleting a key it does not hold.
    """

    def __init__(self, extractor: Callable[[Any], Any], left_join: bool) -> None:
        self.extractor = extractor
        self.left_join = left_join

    def process(self, record: Record) -> None:
        change: Change = record.value
        old, new = change.old, change.new
        if old is None and new is None:
            return
        old_fk = None if old is None else self.extractor(old)
        new_fk = None if new is None else self.extractor(new)
        if new is not None and new_fk is None and not self.left_join:
            self.context.record_dropped("null-foreign-key", record)  # joins nothing
        digest = value_hash(new)
        partition = self.context.partition
        forward = self.context.forward
        if old_fk is not None and new_fk != old_fk:
            forward(Record(old_fk, (digest, DELETE_KEY_NO_PROPAGATE, record.key, partition),
                           record.timestamp, record.headers))
        forward(Record(new_fk, (digest, PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE, record.key,
                                partition), record.timestamp, record.headers))


class SubscriptionReceive(Processor):
    """Right side, a subscription arrives: record (or forget) it, then answer with the
    foreign row's current value (Kafka's ``SubscriptionReceiveProcessorSupplier`` and
    ``SubscriptionJoinProcessorSupplier``). Forwards ``(left key, (hash, right value,
    left partition))``."""

    def __init__(self, store_name: str, right_getter: GetterFactory) -> None:
        self.store_name = store_name
        self.right_getter = right_getter

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        store = context.get_state_store(self.store_name)
        assert isinstance(store, SubscriptionStore)
        self.store = store
        self.get = self.right_getter(context._task)

    def process(self, record: Record) -> None:
        fk = record.key
        digest, instruction, pk, partition = record.value
        if fk is None:
            if instruction != PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE:
                self.context.record_dropped("null-key", record)
                return
            entry = None
        else:
            if instruction in (DELETE_KEY_NO_PROPAGATE, DELETE_KEY_AND_PROPAGATE):
                self.store.delete((fk, pk))
            else:
                self.store.put((fk, pk), record.value, record.timestamp)
            entry = self.get(fk)
        ts = record.timestamp if entry is None else max(record.timestamp, entry[1])
        if instruction == DELETE_KEY_NO_PROPAGATE:
            return
        if instruction == DELETE_KEY_AND_PROPAGATE:
            foreign = None
        elif entry is None and instruction == PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE:
            return
        else:
            foreign = None if entry is None else entry[0]
        self.context.forward(Record(pk, (digest, foreign, partition), ts, record.headers))


class ForeignTableChange(Processor):
    """Right side, a right row changed: answer every subscriber of its key with the new
    value (Kafka's ``ForeignTableJoinProcessorSupplier``)."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        store = context.get_state_store(self.store_name)
        assert isinstance(store, SubscriptionStore)
        self.store = store

    def process(self, record: Record) -> None:
        if record.key is None:
            self.context.record_dropped("null-key", record)
            return
        new = record.value.new
        for pk, (digest, _, _, partition) in self.store.subscribers(record.key):
            self.context.forward(
                Record(pk, (digest, new, partition), record.timestamp, record.headers)
            )


class ResponseJoin(Processor):
    """Left side, an answer arrives: join it with the left row's CURRENT value; an
    answer computed for another left value (its hash differs) is stale and dropped
    (Kafka's ``ResponseJoinProcessorSupplier``). Forwards ``(left key, result or None)``."""

    def __init__(self, left_getter: GetterFactory, joiner: Joiner, left_join: bool) -> None:
        self.left_getter = left_getter
        self.joiner = joiner
        self.left_join = left_join
        self.stale = 0

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.get = self.left_getter(context._task)

    def process(self, record: Record) -> None:
        digest, foreign, _ = record.value
        entry = self.get(record.key)
        current = None if entry is None else entry[0]
        if value_hash(current) != digest:
            self.stale += 1
            return
        if foreign is None and (not self.left_join or current is None):
            result = None
        else:
            result = self.joiner(current, foreign)
        self.context.forward(record.with_value(result))


def key_partitioner(app: StreamsApp, node: str) -> Callable[[Any, Any, int], int | None]:
    """A sink partitioner that sends a key where the records of ``node``'s source topic
    with that key are: murmur2 of the key written with that topic's key serde (the
    producer's default), so an internal topic is co-partitioned with that source."""
    topic, serde = _source_key_serde(app, node)
    if serde is INTERNAL:  # a repartition topic: keys were placed by the app's default rule
        from ._dsl import _default_repartitioner  # noqa: PLC0415 - _dsl imports this module

        return _default_repartitioner(app, topic)

    def partition(key: Any, value: Any, num_partitions: int) -> int | None:
        if key is None:
            return None
        if num_partitions <= 1:
            return 0
        data = serde.serialize(topic, key)
        return None if data is None else murmur2_partition(data, num_partitions)
    return partition


def _source_key_serde(app: StreamsApp, node: str) -> tuple[str, Serde]:
    nodes = app._builder.nodes
    spec = nodes[node]
    while not spec.is_source:
        if not spec.parents:
            raise TopologyError(f"node {node!r} has no source")
        spec = nodes[spec.parents[0]]
    return spec.source_topics[0], spec.key_serde or app.default_key_serde


def _response_partition(key: Any, value: Any, num_partitions: int) -> int | None:
    partition: int = value[2]
    return partition if 0 <= partition < num_partitions else None


def foreign_key_join(
    app: StreamsApp,
    left: KTable,
    right: KTable,
    extractor: Callable[[Any], Any],
    joiner: Joiner,
    kind: str,
) -> tuple[str, GetterFactory | None, tuple[str, ...]]:
    if kind not in ("inner", "left"):
        raise TopologyError("a foreign-key join is inner or left (as in Kafka)")
    if left._app is not right._app:
        raise TopologyError("a table joins a table of the same application")
    builder = app._builder
    left_join = kind == "left"
    left_getter = left.value_getter()
    right_getter = right.value_getter()

    # left task -> subscription topic (keyed by foreign key, co-partitioned with the right)
    send = builder.add_processor(
        "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION",
        lambda: SubscriptionSend(extractor, left_join),
        [left._node],
    )
    sub_topic = repartition_topic(
        app.application_id, builder.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION")
    )
    fk_partitioner = key_partitioner(app, right._node)
    builder.add_internal_topic(sub_topic, send)
    builder.add_sink(
        sub_topic, lambda: SinkProcessor(sub_topic, INTERNAL, INTERNAL, fk_partitioner), send
    )
    sub_source = builder.add_source(
        [sub_topic], INTERNAL, INTERNAL, lambda: SourceProcessor(INTERNAL, INTERNAL),
        prefix="KTABLE-FK-JOIN-SUBSCRIPTION-SOURCE",
    )

    # right task: subscriptions and right-row changes answer through the response topic
    sub_store = builder.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE")

    def make_sub_store() -> StateStore:
        return SubscriptionStore(sub_store)

    builder.add_store(StoreSpec(sub_store, make_sub_store))
    receive = builder.add_processor(
        "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR",
        lambda: SubscriptionReceive(sub_store, right_getter),
        [sub_source],
        (sub_store, *right._stores),
    )
    foreign = builder.add_processor(
        "KTABLE-FK-JOIN-FOREIGN-JOIN-SUBSCRIPTION",
        lambda: ForeignTableChange(sub_store),
        [right._node],
        (sub_store,),
    )
    responses = builder.add_processor("KTABLE-FK-JOIN-RESPONSE", PassThrough, [receive, foreign])
    resp_topic = repartition_topic(
        app.application_id, builder.new_name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE")
    )
    builder.add_internal_topic(resp_topic, responses)
    builder.add_sink(
        resp_topic,
        lambda: SinkProcessor(resp_topic, INTERNAL, INTERNAL, _response_partition),
        responses,
    )
    resp_source = builder.add_source(
        [resp_topic], INTERNAL, INTERNAL, lambda: SourceProcessor(INTERNAL, INTERNAL),
        prefix="KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-SOURCE",
    )

    # left task: join answers with the current left row; the result is a materialized table
    resolver = builder.add_processor(
        "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER",
        lambda: ResponseJoin(left_getter, joiner, left_join),
        [resp_source],
        left._stores,
    )
    result_store = app._kv_store(None, "KTABLE-FK-JOIN-OUTPUT-STATE-STORE")
    result = builder.add_processor(
        "KTABLE-FK-JOIN-OUTPUT", lambda: KTableSource(result_store), [resolver], (result_store,)
    )
    return result, _kv_getter(result_store), (result_store,)


def _kv_getter(store: str) -> GetterFactory:
    def factory(task: StreamTask) -> Getter:
        kv = task.store(store)
        assert isinstance(kv, KeyValueStore)
        return kv.get_with_timestamp
    return factory
