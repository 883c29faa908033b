"""The DSL: ``KStream``, ``KTable``, grouped and windowed streams, ``GlobalKTable``.

Each method adds nodes to the application's ``TopologyBuilder`` and returns a
new DSL object; nothing runs until the application starts (or a
``TestDriver`` is made). Function shapes follow Kafka's DSL (see
``docs/streams.md``): predicates, mappers, key selectors and ``foreach`` take
``(key, value)``; ``map``/``flat_map`` return ``(key, value)`` pairs;
``map_values``/``flat_map_values`` take the value; ``reduce(fn)`` calls
``fn(aggregate, value)``; ``aggregate(initializer, aggregator)`` calls
``aggregator(key, value, aggregate)``; joiners take ``(left, right)``.

Key-changing operations (``map``, ``flat_map``, ``select_key``) only mark the
stream; the next ``group_by_key`` or join sends it through an internal
repartition topic so that equal keys meet in one task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..clients._partitioner import murmur2_partition
from ..errors import SerdeError, TopologyError
from . import _joins, _windowed
from ._ops import (
    Filter,
    FlatMap,
    FlatMapValues,
    Foreach,
    KStreamAggregate,
    KStreamReduce,
    KTableAggregate,
    KTableFilter,
    KTableMapValues,
    KTableRepartitionMap,
    KTableSource,
    KTableToStream,
    Map,
    MapValues,
    PassThrough,
    Peek,
    SelectKey,
    UserProcessorAdapter,
)
from ._serdes import INTERNAL, Serde
from ._stores import KeyValueStore
from ._task import SinkProcessor, SourceProcessor, StreamTask, repartition_topic
from ._topology import StoreSpec, TopologyBuilder
from ._windows import JoinWindows, SessionWindows, SlidingWindows, TimeWindows

if TYPE_CHECKING:
    from ._app import StreamsApp

__all__ = [
    "BranchedKStream",
    "GlobalKTable",
    "KGroupedStream",
    "KGroupedTable",
    "KStream",
    "KTable",
    "SessionWindowedKStream",
    "TimeWindowedKStream",
]

Getter = Callable[[Any], "tuple[Any, int] | None"]
GetterFactory = Callable[[StreamTask], Getter]


def _callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise TopologyError(f"{what} must be callable, got {fn!r}")


def _count_init() -> int:
    return 0


def _count_add(key: Any, value: Any, agg: int) -> int:
    return agg + 1


def _count_sub(key: Any, value: Any, agg: int) -> int:
    return agg - 1


class KStream:
    """A record stream: every record is an independent event (an INSERT)."""

    def __init__(self, app: StreamsApp, node: str, *, repartition: bool = False) -> None:
        self._app = app
        self._node = node
        self._needs_repartition = repartition

    @property
    def _builder(self) -> TopologyBuilder:
        return self._app._builder

    def _then(
        self,
        prefix: str,
        processor: Callable[[], Any],
        *,
        repartition: bool | None = None,
        stores: tuple[str, ...] = (),
    ) -> KStream:
        node = self._builder.add_processor(prefix, processor, [self._node], stores)
        flag = self._needs_repartition if repartition is None else repartition
        return KStream(self._app, node, repartition=flag)

    # ------------------------------------------------------------- stateless
    def filter(self, predicate: Callable[[Any, Any], Any]) -> KStream:
        _callable(predicate, "filter's predicate")
        return self._then("KSTREAM-FILTER", lambda: Filter(predicate))

    def filter_not(self, predicate: Callable[[Any, Any], Any]) -> KStream:
        _callable(predicate, "filter_not's predicate")
        return self._then("KSTREAM-FILTER", lambda: Filter(predicate, negate=True))

    def map(self, mapper: Callable[[Any, Any], tuple[Any, Any]]) -> KStream:
        _callable(mapper, "map's mapper")
        return self._then("KSTREAM-MAP", lambda: Map(mapper), repartition=True)

    def map_values(self, mapper: Callable[[Any], Any]) -> KStream:
        _callable(mapper, "map_values's mapper")
        return self._then("KSTREAM-MAPVALUES", lambda: MapValues(mapper))

    def flat_map(self, mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> KStream:
        _callable(mapper, "flat_map's mapper")
        return self._then("KSTREAM-FLATMAP", lambda: FlatMap(mapper), repartition=True)

    def flat_map_values(self, mapper: Callable[[Any], Iterable[Any]]) -> KStream:
        _callable(mapper, "flat_map_values's mapper")
        return self._then("KSTREAM-FLATMAPVALUES", lambda: FlatMapValues(mapper))

    def select_key(self, selector: Callable[[Any, Any], Any]) -> KStream:
        _callable(selector, "select_key's selector")
        return self._then("KSTREAM-KEY-SELECT", lambda: SelectKey(selector), repartition=True)

    def peek(self, action: Callable[[Any, Any], Any]) -> KStream:
        _callable(action, "peek's action")
        return self._then("KSTREAM-PEEK", lambda: Peek(action))

    def foreach(self, action: Callable[[Any, Any], Any]) -> None:
        _callable(action, "foreach's action")
        self._then("KSTREAM-FOREACH", lambda: Foreach(action))

    def branch(self, *predicates: Callable[[Any, Any], Any]) -> list[KStream]:
        """One stream per predicate; a record goes to the first that matches (or none)."""
        if not predicates:
            raise TopologyError("branch needs at least one predicate")
        split = self.split()
        for i, predicate in enumerate(predicates):
            split.branch(predicate, name=str(i))
        branches = split.no_default_branch()
        return [branches[str(i)] for i in range(len(predicates))]

    def split(self, prefix: str = "") -> BranchedKStream:
        """Kafka's ``split()``: ``.branch(pred, name=...)`` ... ``.default_branch()``."""
        return BranchedKStream(self, prefix)

    def merge(self, other: KStream) -> KStream:
        if not isinstance(other, KStream) or other._app is not self._app:
            raise TopologyError("merge needs a KStream of the same application")
        node = self._builder.add_processor("KSTREAM-MERGE", PassThrough, [self._node, other._node])
        return KStream(
            self._app, node, repartition=self._needs_repartition or other._needs_repartition
        )

    def to(
        self,
        topic: str,
        *,
        key_serde: object = None,
        value_serde: object = None,
        partitioner: Callable[[Any, Any, int], int | None] | None = None,
    ) -> None:
        """Write every record to ``topic`` (Windowed keys: inner key + start + end)."""
        ks, vs = self._app._serdes(key_serde, value_serde, f"to({topic!r})")
        self._app._check_topic_name(topic)
        if partitioner is not None:
            _callable(partitioner, "to's partitioner")
        self._builder.add_sink(topic, lambda: SinkProcessor(topic, ks, vs, partitioner), self._node)
        self._app._output_topics.add(topic)

    def repartition(self, *, partitions: int | None = None, name: str | None = None) -> KStream:
        """Send the stream through an internal topic now (Kafka's ``repartition()``)."""
        return self._repartitioned(name, partitions=partitions)

    def _repartitioned(
        self,
        name: str | None,
        partitions: int | None = None,
        partitioner: Callable[[Any, Any, int], int | None] | None = None,
    ) -> KStream:
        """``partitioner``: co-partition with a join partner read from a user topic (the
        partner's key serde decides where a key is); default: murmur2 of the internal key."""
        builder = self._builder
        base = name or builder.new_name("KSTREAM-REPARTITION")
        topic = repartition_topic(self._app.application_id, base)
        if partitioner is None:
            partitioner = _default_repartitioner(self._app, topic)
        if topic in builder.internal:
            raise TopologyError(f"a repartition topic named {base!r} already exists")
        builder.add_internal_topic(topic, self._node, partitions)
        builder.add_sink(
            topic,
            lambda: SinkProcessor(topic, INTERNAL, INTERNAL, partitioner, drop_null_keys=True),
            self._node,
        )
        source = builder.add_source(
            [topic],
            INTERNAL,
            INTERNAL,
            lambda: SourceProcessor(INTERNAL, INTERNAL),
            prefix="KSTREAM-REPARTITION-SOURCE",
        )
        return KStream(self._app, source)

    def process(self, processor_factory: Callable[[], Any], *store_names: str) -> KStream:
        """Run a processor of your own (``init(context)``, ``process(record)``, optional
        ``close()``); it forwards with ``context.forward(record)`` and may use the named
        stores (``app.add_state_store``) and ``context.schedule`` punctuations."""
        _callable(processor_factory, "process's processor factory")
        return self._then(
            "KSTREAM-PROCESSOR",
            lambda: UserProcessorAdapter(processor_factory()),
            stores=tuple(store_names),
        )

    # --------------------------------------------------------------- grouping
    def group_by_key(self) -> KGroupedStream:
        stream = self._repartitioned(None) if self._needs_repartition else self
        return KGroupedStream(stream)

    def group_by(self, selector: Callable[[Any, Any], Any]) -> KGroupedStream:
        _callable(selector, "group_by's selector")
        return self.select_key(selector)._repartitioned(None).group_by_key()

    def to_table(self, *, materialized_as: str | None = None) -> KTable:
        """This stream read as a changelog: each record upserts its key (``None`` deletes)."""
        stream = self._repartitioned(None) if self._needs_repartition else self
        store = self._app._kv_store(materialized_as, "KSTREAM-TOTABLE-STATE-STORE")
        node = self._builder.add_processor(
            "KSTREAM-TOTABLE", lambda: KTableSource(store), [stream._node], (store,)
        )
        return KTable(self._app, node, _store_getter(store), (store,), store)

    # ------------------------------------------------------------------ joins
    def join(self, other: Any, *args: Any, **kwargs: Any) -> KStream:
        return self._join("inner", other, *args, **kwargs)

    def left_join(self, other: Any, *args: Any, **kwargs: Any) -> KStream:
        return self._join("left", other, *args, **kwargs)

    def outer_join(self, other: Any, *args: Any, **kwargs: Any) -> KStream:
        if not isinstance(other, KStream):
            raise TopologyError(
                "outer_join needs another KStream (Kafka has no stream-table outer join)"
            )
        return self._join("outer", other, *args, **kwargs)

    def _join(self, kind: str, other: Any, *args: Any, **kwargs: Any) -> KStream:
        if isinstance(other, KStream):
            joiner, windows = _join_args(args, kwargs, ("joiner", "windows"))
            _callable(joiner, "the joiner")
            if not isinstance(windows, JoinWindows):
                raise TopologyError("a stream-stream join needs JoinWindows.of(ms, grace_ms=...)")
            left, right = self, other
            if self._needs_repartition:  # land where the other side's keys are
                left = self._repartitioned(None, partitioner=(
                    None if other._needs_repartition
                    else _joins.key_partitioner(self._app, other._node)
                ))
            if other._needs_repartition:
                right = other._repartitioned(None, partitioner=(
                    None if self._needs_repartition
                    else _joins.key_partitioner(self._app, self._node)
                ))
            node = _joins.stream_stream_join(
                self._app, left._node, right._node, joiner, windows, kind
            )
            return KStream(self._app, node)
        if isinstance(other, KTable):
            (joiner,) = _join_args(args, kwargs, ("joiner",))
            _callable(joiner, "the joiner")
            stream = self
            if self._needs_repartition:  # land where the table's keys are
                partitioner = _joins.key_partitioner(self._app, other._node)
                stream = self._repartitioned(None, partitioner=partitioner)
            return KStream(
                self._app, _joins.stream_table_join(self._app, stream._node, other, joiner, kind)
            )
        if isinstance(other, GlobalKTable):
            key_selector, joiner = _join_args(args, kwargs, ("key_selector", "joiner"))
            _callable(key_selector, "the key selector")
            _callable(joiner, "the joiner")
            node = _joins.stream_global_table_join(
                self._app, self._node, other, key_selector, joiner, kind
            )
            return KStream(self._app, node, repartition=self._needs_repartition)
        raise TopologyError(f"cannot join a KStream with {type(other).__name__}")


def _default_repartitioner(app: StreamsApp, topic: str) -> Callable[[Any, Any, int], int | None]:
    """Where a repartitioned key goes: murmur2 of the key as the app's default key serde
    writes it (as a producer would put it in a user topic), so that an aggregation or a
    re-keyed stream is co-partitioned with user topics keyed the same way; keys that serde
    cannot write (tuples, say) are hashed in the internal format."""
    serde = app.default_key_serde

    def partition(key: Any, value: Any, num_partitions: int) -> int | None:
        if num_partitions <= 1 or key is None:
            return 0 if num_partitions <= 1 else None
        try:
            data = serde.serialize(topic, key)
        except (SerdeError, TypeError, ValueError):
            data = None
        if data is None:
            data = INTERNAL.serialize(topic, key)
            assert data is not None
        return murmur2_partition(data, num_partitions)

    return partition


def _join_args(
    args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]
) -> tuple[Any, ...]:
    values = list(args)
    for name in names[len(values) :]:
        if name not in kwargs:
            raise TopologyError(f"join: missing argument {name!r} (expected {', '.join(names)})")
        values.append(kwargs.pop(name))
    if kwargs or len(values) != len(names):
        raise TopologyError(f"join: expected arguments ({', '.join(names)})")
    return tuple(values)


class BranchedKStream:
    """Kafka's ``split()``: each record goes to the first branch whose predicate matches."""

    def __init__(self, stream: KStream, prefix: str) -> None:
        self._stream = stream
        self._prefix = prefix
        self._predicates: list[tuple[str, Callable[[Any, Any], Any]]] = []
        self._done = False

    def branch(
        self, predicate: Callable[[Any, Any], Any], name: str | None = None
    ) -> BranchedKStream:
        if self._done:
            raise TopologyError("this split() is finished; start another")
        _callable(predicate, "branch's predicate")
        self._predicates.append(
            (self._prefix + (name or str(len(self._predicates) + 1)), predicate)
        )
        return self

    def default_branch(self, name: str | None = None) -> dict[str, KStream]:
        return self._finish(self._prefix + (name or "0"))

    def no_default_branch(self) -> dict[str, KStream]:
        return self._finish(None)

    def _finish(self, default: str | None) -> dict[str, KStream]:
        self._done = True
        stream = self._stream
        predicates = list(self._predicates)
        names = [n for n, _ in predicates]
        if default is not None:
            names.append(default)
        if len(set(names)) != len(names):
            raise TopologyError(f"branch names must be distinct: {names}")
        router = stream._builder.add_processor(
            "KSTREAM-BRANCH",
            lambda: _Router([p for _, p in predicates], default is not None),
            [stream._node],
        )
        out: dict[str, KStream] = {}
        for name in names:
            # children are wired in creation order, which is the router's branch order
            node = stream._builder.add_processor("KSTREAM-BRANCHCHILD", PassThrough, [router])
            out[name] = KStream(stream._app, node, repartition=stream._needs_repartition)
        return out


class _Router(PassThrough):
    def __init__(self, predicates: list[Callable[[Any, Any], Any]], has_default: bool) -> None:
        self.predicates = predicates
        self.has_default = has_default

    def process(self, record: Any) -> None:
        children = self.context._children
        for i, predicate in enumerate(self.predicates):
            if predicate(record.key, record.value):
                children[i].process(record)
                return
        if self.has_default:
            children[len(self.predicates)].process(record)


class KGroupedStream:
    """A stream grouped by key, ready to aggregate."""

    def __init__(self, stream: KStream) -> None:
        self._stream = stream
        self._app = stream._app

    def _aggregate(
        self, prefix: str, make: Callable[[str], Any], materialized_as: str | None
    ) -> KTable:
        store = self._app._kv_store(materialized_as, f"{prefix}-STATE-STORE")
        node = self._app._builder.add_processor(
            prefix, lambda: make(store), [self._stream._node], (store,)
        )
        return KTable(self._app, node, _store_getter(store), (store,), store)

    def count(self, *, materialized_as: str | None = None) -> KTable:
        return self._aggregate(
            "KSTREAM-AGGREGATE",
            lambda store: KStreamAggregate(store, _count_init, _count_add),
            materialized_as,
        )

    def reduce(
        self, reducer: Callable[[Any, Any], Any], *, materialized_as: str | None = None
    ) -> KTable:
        _callable(reducer, "reduce's reducer")
        return self._aggregate(
            "KSTREAM-REDUCE", lambda store: KStreamReduce(store, reducer), materialized_as
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        *,
        materialized_as: str | None = None,
    ) -> KTable:
        _callable(initializer, "aggregate's initializer")
        _callable(aggregator, "aggregate's aggregator")
        return self._aggregate(
            "KSTREAM-AGGREGATE",
            lambda store: KStreamAggregate(store, initializer, aggregator),
            materialized_as,
        )

    def windowed_by(self, windows: Any) -> Any:
        if isinstance(windows, (TimeWindows, SlidingWindows)):
            return TimeWindowedKStream(self, windows)
        if isinstance(windows, SessionWindows):
            return SessionWindowedKStream(self, windows)
        raise TopologyError(
            "windowed_by needs TimeWindows, SlidingWindows or SessionWindows, "
            f"got {type(windows).__name__}"
        )


class TimeWindowedKStream:
    """A grouped stream cut into time windows (tumbling, hopping or sliding)."""

    def __init__(self, grouped: KGroupedStream, windows: TimeWindows | SlidingWindows) -> None:
        self._grouped = grouped
        self._windows = windows
        self._app = grouped._app

    def _agg(
        self, initializer: Any, aggregator: Any, reducer: Any, materialized_as: str | None
    ) -> KTable:
        store = self._app._store_name(materialized_as, "KSTREAM-WINDOWED-STATE-STORE")
        node = _windowed.windowed_aggregate(
            self._app,
            self._grouped._stream._node,
            self._windows,
            store,
            initializer=initializer,
            aggregator=aggregator,
            reducer=reducer,
        )
        return KTable(self._app, node, None, (store,), store, windows=self._windows)

    def count(self, *, materialized_as: str | None = None) -> KTable:
        return self._agg(_count_init, _count_add, None, materialized_as)

    def reduce(
        self, reducer: Callable[[Any, Any], Any], *, materialized_as: str | None = None
    ) -> KTable:
        _callable(reducer, "reduce's reducer")
        return self._agg(None, None, reducer, materialized_as)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        *,
        materialized_as: str | None = None,
    ) -> KTable:
        _callable(initializer, "aggregate's initializer")
        _callable(aggregator, "aggregate's aggregator")
        return self._agg(initializer, aggregator, None, materialized_as)


class SessionWindowedKStream:
    """A grouped stream cut into per-key sessions."""

    def __init__(self, grouped: KGroupedStream, windows: SessionWindows) -> None:
        self._grouped = grouped
        self._windows = windows
        self._app = grouped._app

    def _agg(
        self,
        initializer: Any,
        aggregator: Any,
        merger: Any,
        reducer: Any,
        materialized_as: str | None,
    ) -> KTable:
        store = self._app._store_name(materialized_as, "KSTREAM-SESSION-STATE-STORE")
        node = _windowed.windowed_aggregate(
            self._app,
            self._grouped._stream._node,
            self._windows,
            store,
            initializer=initializer,
            aggregator=aggregator,
            reducer=reducer,
            merger=merger,
        )
        return KTable(self._app, node, None, (store,), store, windows=self._windows)

    def count(self, *, materialized_as: str | None = None) -> KTable:
        return self._agg(_count_init, _count_add, lambda key, a, b: a + b, None, materialized_as)

    def reduce(
        self, reducer: Callable[[Any, Any], Any], *, materialized_as: str | None = None
    ) -> KTable:
        _callable(reducer, "reduce's reducer")
        return self._agg(None, None, None, reducer, materialized_as)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        merger: Callable[[Any, Any, Any], Any],
        *,
        materialized_as: str | None = None,
    ) -> KTable:
        """``merger(key, aggregate1, aggregate2)`` combines two sessions a record joins."""
        _callable(initializer, "aggregate's initializer")
        _callable(aggregator, "aggregate's aggregator")
        _callable(merger, "aggregate's session merger")
        return self._agg(initializer, aggregator, merger, None, materialized_as)


def _store_getter(store: str) -> GetterFactory:
    def factory(task: StreamTask) -> Getter:
        kv = task.store(store)
        assert isinstance(kv, KeyValueStore)
        return kv.get_with_timestamp

    return factory


class KTable:
    """A changelog stream: each record upserts its key; ``None`` deletes it.

    ``getter`` (when known) reads the table's current row for a key inside a task:
    joins use it. ``store`` names the store to query (``app.store``) when the table
    is materialized.
    """

    def __init__(
        self,
        app: StreamsApp,
        node: str,
        getter: GetterFactory | None,
        stores: tuple[str, ...],
        store: str | None,
        *,
        windows: Any = None,
    ) -> None:
        self._app = app
        self._node = node
        self._getter = getter
        self._stores = stores
        self._store = store
        self._windows = windows

    @property
    def _builder(self) -> TopologyBuilder:
        return self._app._builder

    @property
    def queryable_store_name(self) -> str | None:
        return self._store

    def value_getter(self) -> GetterFactory:
        if self._getter is None:
            raise TopologyError(
                "this table cannot be looked up by key (a windowed table); join a "
                "non-windowed KTable"
            )
        return self._getter

    def filter(self, predicate: Callable[[Any, Any], Any]) -> KTable:
        return self._filter(predicate, False)

    def filter_not(self, predicate: Callable[[Any, Any], Any]) -> KTable:
        return self._filter(predicate, True)

    def _filter(self, predicate: Callable[[Any, Any], Any], negate: bool) -> KTable:
        _callable(predicate, "filter's predicate")
        node = self._builder.add_processor(
            "KTABLE-FILTER", lambda: KTableFilter(predicate, negate), [self._node]
        )
        parent = self._getter
        getter: GetterFactory | None = None
        if parent is not None:

            def getter(task: StreamTask) -> Getter:
                get = parent(task)

                def lookup(key: Any) -> tuple[Any, int] | None:
                    entry = get(key)
                    if entry is None or (bool(predicate(key, entry[0])) == negate):
                        return None
                    return entry

                return lookup

        return KTable(self._app, node, getter, self._stores, None, windows=self._windows)

    def map_values(self, mapper: Callable[[Any], Any]) -> KTable:
        _callable(mapper, "map_values's mapper")
        node = self._builder.add_processor(
            "KTABLE-MAPVALUES", lambda: KTableMapValues(mapper), [self._node]
        )
        parent = self._getter
        getter: GetterFactory | None = None
        if parent is not None:

            def getter(task: StreamTask) -> Getter:
                get = parent(task)

                def lookup(key: Any) -> tuple[Any, int] | None:
                    entry = get(key)
                    return None if entry is None else (mapper(entry[0]), entry[1])

                return lookup

        return KTable(self._app, node, getter, self._stores, None, windows=self._windows)

    def to_stream(self, mapper: Callable[[Any, Any], Any] | None = None) -> KStream:
        """The table's changes as a stream (deletes as ``None`` values); ``mapper(key, value)``
        may give each record a new key."""
        if mapper is not None:
            _callable(mapper, "to_stream's key mapper")
        node = self._builder.add_processor(
            "KTABLE-TOSTREAM", lambda: KTableToStream(mapper), [self._node]
        )
        return KStream(self._app, node, repartition=mapper is not None)

    def suppress_until_window_closes(self) -> KTable:
        """Emit each window's final result once, when stream time passes end + grace."""
        if self._windows is None:
            raise TopologyError(
                "suppress_until_window_closes needs a windowed table (windowed_by(...).count() ...)"
            )
        node = _windowed.suppress_until_window_closes(self._app, self._node, self._windows)
        return KTable(self._app, node, None, self._stores, None, windows=self._windows)

    def group_by(self, selector: Callable[[Any, Any], tuple[Any, Any]]) -> KGroupedTable:
        """Re-key each row: ``selector(key, value) -> (new_key, new_value)``."""
        _callable(selector, "group_by's selector")
        node = self._builder.add_processor(
            "KTABLE-SELECT", lambda: KTableRepartitionMap(selector), [self._node]
        )
        stream = KStream(self._app, node)._repartitioned(None)
        return KGroupedTable(self._app, stream._node)

    # ------------------------------------------------------------------ joins
    def join(self, other: KTable, *args: Any) -> KTable:
        return self._join("inner", other, args)

    def left_join(self, other: KTable, *args: Any) -> KTable:
        return self._join("left", other, args)

    def outer_join(self, other: KTable, *args: Any) -> KTable:
        if len(args) != 1:
            raise TopologyError("a foreign-key join has no outer variant (as in Kafka)")
        return self._join("outer", other, args)

    def _join(self, kind: str, other: KTable, args: tuple[Any, ...]) -> KTable:
        if not isinstance(other, KTable):
            raise TopologyError(f"a KTable joins another KTable, not {type(other).__name__}")
        if len(args) == 1:
            (joiner,) = args
            _callable(joiner, "the joiner")
            node, getter, stores = _joins.table_table_join(self._app, self, other, joiner, kind)
        elif len(args) == 2:
            extractor, joiner = args
            _callable(extractor, "the foreign-key extractor")
            _callable(joiner, "the joiner")
            node, getter, stores = _joins.foreign_key_join(
                self._app, self, other, extractor, joiner, kind
            )
        else:
            raise TopologyError("join(other, joiner) or join(other, foreign_key_extractor, joiner)")
        return KTable(self._app, node, getter, stores, None)


class KGroupedTable:
    """A re-keyed table, ready for an aggregation with adder and subtractor."""

    def __init__(self, app: StreamsApp, node: str) -> None:
        self._app = app
        self._node = node

    def _aggregate(
        self, initializer: Any, adder: Any, subtractor: Any, materialized_as: str | None
    ) -> KTable:
        store = self._app._kv_store(materialized_as, "KTABLE-AGGREGATE-STATE-STORE")
        node = self._app._builder.add_processor(
            "KTABLE-AGGREGATE",
            lambda: KTableAggregate(store, initializer, adder, subtractor),
            [self._node],
            (store,),
        )
        return KTable(self._app, node, _store_getter(store), (store,), store)

    def count(self, *, materialized_as: str | None = None) -> KTable:
        return self._aggregate(_count_init, _count_add, _count_sub, materialized_as)

    def reduce(
        self,
        adder: Callable[[Any, Any], Any],
        subtractor: Callable[[Any, Any], Any],
        *,
        materialized_as: str | None = None,
    ) -> KTable:
        _callable(adder, "reduce's adder")
        _callable(subtractor, "reduce's subtractor")
        return self._aggregate(
            None,
            lambda key, value, agg: adder(agg, value),
            lambda key, value, agg: subtractor(agg, value),
            materialized_as,
        )

    def aggregate(
        self,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
        *,
        materialized_as: str | None = None,
    ) -> KTable:
        """``adder(key, value, agg)`` and ``subtractor(key, value, agg)``, as Kafka's."""
        _callable(initializer, "aggregate's initializer")
        _callable(adder, "aggregate's adder")
        _callable(subtractor, "aggregate's subtractor")
        return self._aggregate(initializer, adder, subtractor, materialized_as)


class GlobalKTable:
    """A table filled from every partition of its topic in every instance (no
    co-partitioning needed; joined by a key selector)."""

    def __init__(
        self, app: StreamsApp, topic: str, store: str, key_serde: Serde, value_serde: Serde
    ) -> None:
        self._app = app
        self.topic = topic
        self._store = store
        self.key_serde = key_serde
        self.value_serde = value_serde

    @property
    def queryable_store_name(self) -> str:
        return self._store

    def value_getter(self) -> GetterFactory:
        store = self._store

        def factory(task: StreamTask) -> Getter:
            kv = task.store(store)
            assert isinstance(kv, KeyValueStore)
            return kv.get_with_timestamp

        return factory


def global_store_spec(name: str, topic: str, key_serde: Serde, value_serde: Serde) -> StoreSpec:
    return StoreSpec(
        name,
        lambda: KeyValueStore(name, logged=False),
        logged=False,
        is_global=True,
        global_topic=topic,
        key_serde=key_serde,
        value_serde=value_serde,
    )
