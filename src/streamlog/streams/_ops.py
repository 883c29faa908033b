"""Processors of the stateless operations, of non-windowed aggregations, and of
KTables (sources, filters, mappers, table group-by and table aggregations).

Conventions (Kafka Streams'): a KStream forwards plain values; a KTable
forwards ``Change(new, old)``; a ``None`` new value is a delete. Output
timestamps: stateless operations keep the input's; aggregations use the
largest timestamp that contributed to the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._processor import Change, Processor, Record, tuple_new
from ._stores import KeyValueStore

__all__ = [
    "Filter",
    "FlatMap",
    "FlatMapValues",
    "Foreach",
    "KStreamAggregate",
    "KStreamReduce",
    "KTableAggregate",
    "KTableFilter",
    "KTableMapValues",
    "KTableRepartitionMap",
    "KTableSource",
    "KTableToStream",
    "Map",
    "MapValues",
    "PassThrough",
    "Peek",
]


class PassThrough(Processor):
    def process(self, record: Record) -> None:
        self.context.forward(record)


class Filter(Processor):
    def __init__(self, predicate: Callable[[Any, Any], Any], negate: bool = False) -> None:
        self.predicate = predicate
        self.negate = negate

    def process(self, record: Record) -> None:
        if bool(self.predicate(record.key, record.value)) != self.negate:
            self.context.forward(record)


class Map(Processor):
    def __init__(self, mapper: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        key, value = self.mapper(record.key, record.value)
        self.context.forward(record.with_key_value(key, value))


class SelectKey(Processor):
    def __init__(self, selector: Callable[[Any, Any], Any]) -> None:
        self.selector = selector

    def process(self, record: Record) -> None:
        key, value, timestamp, headers = record
        self.context.forward(
            tuple_new(Record, (self.selector(key, value), value, timestamp, headers))
        )


class MapValues(Processor):
    def __init__(self, mapper: Callable[[Any], Any]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        self.context.forward(record.with_value(self.mapper(record.value)))


class FlatMap(Processor):
    def __init__(self, mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        forward = self.context.forward
        for key, value in self.mapper(record.key, record.value):
            forward(record.with_key_value(key, value))


class FlatMapValues(Processor):
    def __init__(self, mapper: Callable[[Any], Iterable[Any]]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        forward = self.context.forward
        key, value, timestamp, headers = record
        for item in self.mapper(value):
            forward(tuple_new(Record, (key, item, timestamp, headers)))


class Peek(Processor):
    def __init__(self, action: Callable[[Any, Any], Any]) -> None:
        self.action = action

    def process(self, record: Record) -> None:
        self.action(record.key, record.value)
        self.context.forward(record)


class Foreach(Processor):
    def __init__(self, action: Callable[[Any, Any], Any]) -> None:
        self.action = action

    def process(self, record: Record) -> None:
        self.action(record.key, record.value)


class UserProcessorAdapter(Processor):
    """Wraps a user's processor (``KStream.process``) so it sees plain records."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def init(self, context: Any) -> None:
        super().init(context)
        init = getattr(self.inner, "init", None)
        if init is not None:
            init(context)

    def process(self, record: Record) -> None:
        self.inner.process(record)

    def on_stream_time(self, stream_time: int) -> None:
        hook = getattr(self.inner, "on_stream_time", None)
        if hook is not None:
            hook(stream_time)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


# ------------------------------------------------------------- aggregations
class _KeyValueProcessor(Processor):
    """A processor that owns one key-value store, named ``store_name``, bound at ``init``."""

    store_name: str
    store: KeyValueStore

    def init(self, context: Any) -> None:
        super().init(context)
        store = context.get_state_store(self.store_name)
        assert isinstance(store, KeyValueStore)
        self.store = store


class KStreamAggregate(_KeyValueProcessor):
    """``aggregate``/``count`` of a grouped stream into a key-value store.

    Records with a ``None`` key or value are dropped and counted, as Kafka does.
    """

    def __init__(
        self,
        store_name: str,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
    ) -> None:
        self.store_name = store_name
        self.initializer = initializer
        self.aggregator = aggregator

    def init(self, context: Any) -> None:
        super().init(context)
        self._get = self.store.get_with_timestamp  # (bound once: the hot path)
        self._put = self.store.put

    def process(self, record: Record) -> None:
        key, value, timestamp, headers = record
        if key is None or value is None:
            self.context.record_dropped("null-key" if key is None else "null-value", record)
            return
        entry = self._get(key)
        if entry is None:
            old, ts = None, timestamp
            agg = self.initializer()
        else:
            old, old_ts = entry
            agg = old
            ts = old_ts if old_ts > timestamp else timestamp
        new = self.aggregator(key, value, agg)
        self._put(key, new, ts)
        self.context.forward(tuple_new(Record, (key, tuple_new(Change, (new, old)), ts, headers)))


class KStreamReduce(_KeyValueProcessor):
    """``reduce(fn)``: the first value of a key is its aggregate; then ``fn(agg, value)``."""

    def __init__(self, store_name: str, reducer: Callable[[Any, Any], Any]) -> None:
        self.store_name = store_name
        self.reducer = reducer


    def process(self, record: Record) -> None:
        key, value = record.key, record.value
        if key is None or value is None:
            self.context.record_dropped("null-key" if key is None else "null-value", record)
            return
        entry = self.store.get_with_timestamp(key)
        if entry is None:
            old, new, ts = None, value, record.timestamp
        else:
            old, old_ts = entry
            new = self.reducer(old, value)
            ts = max(old_ts, record.timestamp)
        self.store.put(key, new, ts)
        self.context.forward(tuple_new(Record, (key, tuple_new(Change, (new, old)), ts, record[3])))


# ------------------------------------------------------------------ KTables
class KTableSource(_KeyValueProcessor):
    """Materializes a topic as a table: upserts, ``None`` deletes; forwards changes."""

    def __init__(self, store_name: str) -> None:
        self.store_name = store_name


    def process(self, record: Record) -> None:
        key, value = record.key, record.value
        if key is None:
            self.context.record_dropped("null-key", record)
            return
        old = self.store.get(key)
        if value is None and old is None:
            return  # deleting what is not there changes nothing
        self.store.put(key, value, record.timestamp)
        self.context.forward(Record(key, Change(value, old), record.timestamp, record.headers))


class KTableFilter(Processor):
    """A filtered table: a row that stops matching is forwarded as a delete."""

    def __init__(self, predicate: Callable[[Any, Any], Any], negate: bool = False) -> None:
        self.predicate = predicate
        self.negate = negate

    def _keep(self, key: Any, value: Any) -> Any:
        if value is None:
            return None
        return value if bool(self.predicate(key, value)) != self.negate else None

    def process(self, record: Record) -> None:
        change: Change = record.value
        new = self._keep(record.key, change.new)
        old = self._keep(record.key, change.old)
        if new is None and old is None:
            return
        self.context.forward(record.with_value(Change(new, old)))


class KTableMapValues(Processor):
    def __init__(self, mapper: Callable[[Any], Any]) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        change: Change = record.value
        new = None if change.new is None else self.mapper(change.new)
        old = None if change.old is None else self.mapper(change.old)
        self.context.forward(record.with_value(Change(new, old)))


class KTableToStream(Processor):
    """A table's changes as a stream of new values (``None`` for deletes)."""

    def __init__(self, mapper: Callable[[Any, Any], Any] | None = None) -> None:
        self.mapper = mapper

    def process(self, record: Record) -> None:
        key = record.key
        if self.mapper is not None:
            key = self.mapper(key, record.value.new)
        self.context.forward(tuple_new(Record, (key, record[1][0], record[2], record[3])))


SUBTRACT = 0
ADD = 1


class KTableRepartitionMap(Processor):
    """``KTable.group_by``: each change becomes a subtract of the old row's mapping and an
    add of the new one, sent (possibly to another key) as ``(kind, value)`` pairs."""

    def __init__(self, selector: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        self.selector = selector

    def process(self, record: Record) -> None:
        change: Change = record.value
        forward = self.context.forward
        if change.old is not None:
            key, value = self.selector(record.key, change.old)
            if key is not None:
                forward(Record(key, (SUBTRACT, value), record.timestamp, record.headers))
        if change.new is not None:
            key, value = self.selector(record.key, change.new)
            if key is not None:
                forward(Record(key, (ADD, value), record.timestamp, record.headers))


class KTableAggregate(_KeyValueProcessor):
    """Aggregation of a grouped table with an adder and a subtractor (Kafka's semantics:
    a changed row subtracts its old value then adds the new; a subtractor result of
    ``None`` removes the key, and the next add starts from the initializer)."""

    def __init__(
        self,
        store_name: str,
        initializer: Callable[[], Any] | None,
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
    ) -> None:
        self.store_name = store_name
        self.initializer = initializer  # None: reduce (the first value is the aggregate)
        self.adder = adder
        self.subtractor = subtractor


    def process(self, record: Record) -> None:
        key = record.key
        kind, value = record.value
        entry = self.store.get_with_timestamp(key)
        old = None if entry is None else entry[0]
        ts = record.timestamp if entry is None else max(entry[1], record.timestamp)
        if kind == SUBTRACT:
            if old is None:
                return  # nothing to subtract from (a restart lost nothing: it never added)
            new = self.subtractor(key, value, old)
        elif old is None:
            new = value if self.initializer is None else self.adder(key, value, self.initializer())
        else:
            new = self.adder(key, value, old)
        self.store.put(key, new, ts)
        self.context.forward(Record(key, Change(new, old), ts, record.headers))
