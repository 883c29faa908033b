"""``TestDriver``: run a topology with no threads, no data directory and manual time
(Kafka's ``TopologyTestDriver``).

Every topic has one partition (0), so every sub-topology runs as one task.
``input_topic(name).pipe(key, value, timestamp_ms)`` serializes the record and
processes it completely before returning: records written to internal
repartition topics, or to any topic the topology also reads, are processed
in the order they were written, and global tables are updated at once.
Records written to other topics wait in memory for ``output_topic(name)`` to
read them. ``advance_wall_clock(ms)`` runs wall-clock punctuations (and the
idle advance of stream time, when the app configures it).

State stores are the same classes as in a running application; their
changelog records are produced to memory and can be read with
``output_topic("<app>-<store>-changelog")`` (in the internal format).

Not thread-safe: use a driver from one thread.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ..errors import ClosedError, ConfigError, TopologyError
from ._app import StreamsApp
from ._serdes import INTERNAL, Serde, WindowedSerde, resolve_serde
from ._stores import StateStore
from ._task import SinkProcessor, StreamTask
from ._topology import Topology

__all__ = ["TestDriver", "TestInputTopic", "TestOutputTopic", "TestRecord"]


class TestRecord(NamedTuple):
    """A record read from an output topic."""

    key: Any
    value: Any
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...] = ()
    topic: str = ""


class _Raw(NamedTuple):
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...]


class _Collector:
    def __init__(self, driver: TestDriver) -> None:
        self.driver = driver
        self.windowed_topics: set[str] = set()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]],
        partition: int | None,
    ) -> None:
        self.driver._written(topic, _Raw(key, value, timestamp, tuple(headers)))

    def partitions_for(self, topic: str) -> int:
        return 1


class TestDriver:
    """Drives a ``StreamsApp``'s topology deterministically (see the module docstring)."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: StreamsApp, *, wall_clock_start_ms: int = 0) -> None:
        if not isinstance(app, StreamsApp):
            raise ConfigError(f"TestDriver needs a StreamsApp, got {type(app).__name__}")
        self.app = app
        self.topology: Topology = app.build()
        self._wall = wall_clock_start_ms
        self._collector = _Collector(self)
        self._outputs: dict[str, collections.deque[_Raw]] = collections.defaultdict(
            collections.deque
        )
        self._offsets: collections.Counter[str] = collections.Counter()
        self._queue: collections.deque[tuple[str, _Raw]] = collections.deque()
        self._draining = False
        self._closed = False
        self.global_stores: dict[str, StateStore] = {}
        self._global_by_topic: dict[str, StateStore] = {}
        for spec in self.topology.global_stores:
            store = spec.make()
            self.global_stores[spec.name] = store
            assert spec.global_topic is not None
            self._global_by_topic[spec.global_topic] = store
        self.tasks: list[StreamTask] = []
        self._task_by_topic: dict[str, StreamTask] = {}
        for sub in self.topology.subtopologies:
            stores = {name: self.topology.stores[name].make() for name in sub.stores}
            task = StreamTask(
                application_id=app.application_id,
                topology=self.topology,
                sub=sub,
                partition=0,
                collector=self._collector,
                stores=stores,
                global_stores=self.global_stores,
                wall_clock=lambda: self._wall,
                on_dropped=app.on_dropped,
                on_deserialization_error=app.deserialization_exception_handler,
                idle_advance_ms=app.idle_advance_ms,
            )
            self.tasks.append(task)
            for topic in sub.source_topics:
                self._task_by_topic[topic] = task
        self._sinks: dict[str, SinkProcessor] = {}
        for task in self.tasks:
            for proc in task.processors.values():
                if isinstance(proc, SinkProcessor):
                    self._sinks.setdefault(proc.topic, proc)

    # -------------------------------------------------------------- topics
    def input_topic(
        self,
        name: str,
        *,
        key_serde: object = None,
        value_serde: object = None,
        start_timestamp_ms: int = 0,
        auto_advance_ms: int = 0,
    ) -> TestInputTopic:
        """A handle to pipe records into ``name`` (a source topic or a global table's)."""
        if name not in self._task_by_topic and name not in self._global_by_topic:
            raise TopologyError(
                f"{name!r} is not an input of this topology (inputs: "
                f"{sorted(set(self._task_by_topic) | set(self._global_by_topic))})"
            )
        ks, vs = self._input_serdes(name, key_serde, value_serde)
        return TestInputTopic(self, name, ks, vs, start_timestamp_ms, auto_advance_ms)

    def output_topic(
        self, name: str, *, key_serde: object = None, value_serde: object = None
    ) -> TestOutputTopic:
        """A handle to read what the topology wrote to ``name``; serdes default to the
        sink's (windowed keys are read back as ``Windowed``)."""
        sink = self._sinks.get(name)
        if key_serde is not None:
            ks = resolve_serde(key_serde, "key_serde")
        elif sink is not None:
            ks = sink.key_serde
        elif name.endswith(("-changelog", "-repartition")):
            ks = INTERNAL
        else:
            ks = self.app.default_key_serde
        if value_serde is not None:
            vs = resolve_serde(value_serde, "value_serde")
        elif sink is not None:
            vs = sink.value_serde
        elif name.endswith(("-changelog", "-repartition")):
            vs = INTERNAL
        else:
            vs = self.app.default_value_serde
        return TestOutputTopic(self, name, ks, vs)

    def _input_serdes(
        self, name: str, key_serde: object, value_serde: object
    ) -> tuple[Serde, Serde]:
        if name in self._global_by_topic:
            spec = next(s for s in self.topology.global_stores if s.global_topic == name)
            dk, dv = spec.key_serde, spec.value_serde
        else:
            node = self.topology.nodes[self.topology.source_nodes[name]]
            dk, dv = node.key_serde, node.value_serde
        ks = dk if key_serde is None else resolve_serde(key_serde, "key_serde")
        vs = dv if value_serde is None else resolve_serde(value_serde, "value_serde")
        assert ks is not None and vs is not None
        return ks, vs

    # ----------------------------------------------------------- processing
    def _pipe_raw(self, topic: str, raw: _Raw) -> None:
        if self._closed:
            raise ClosedError("the TestDriver is closed")
        self._queue.append((topic, raw))
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue:
                t, r = self._queue.popleft()
                self._deliver(t, r)
        finally:
            self._draining = False
            self._queue.clear()

    def _deliver(self, topic: str, raw: _Raw) -> None:
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        store = self._global_by_topic.get(topic)
        if store is not None:
            spec = next(s for s in self.topology.global_stores if s.global_topic == topic)
            assert spec.key_serde is not None and spec.value_serde is not None
            key = spec.key_serde.deserialize(topic, raw.key)
            if key is not None:
                value = spec.value_serde.deserialize(topic, raw.value)
                store.put(key, value, raw.timestamp)  # type: ignore[attr-defined]
        task = self._task_by_topic.get(topic)
        if task is not None:
            task.process(topic, offset, raw.timestamp, raw.key, raw.value, raw.headers)
            self._drain_changelogs(task)

    def _drain_changelogs(self, task: StreamTask) -> None:
        for topic, key, value, ts in task.changelog_records():
            self._outputs[topic].append(_Raw(key, value, ts, ()))

    def _written(self, topic: str, raw: _Raw) -> None:
        if topic in self._task_by_topic or topic in self._global_by_topic:
            self._queue.append((topic, raw))
        if not topic.endswith("-repartition") or topic not in self._task_by_topic:
            self._outputs[topic].append(raw)

    def advance_wall_clock(self, ms: int) -> None:
        """Advance the driver's wall clock: wall-clock punctuations fire, and stream time
        advances on idle tasks if the app sets ``idle_advance_ms``."""
        if not isinstance(ms, int) or ms < 0:
            raise ConfigError(f"advance_wall_clock needs an int >= 0, got {ms!r}")
        if self._closed:
            raise ClosedError("the TestDriver is closed")
        self._wall += ms
        self._draining = True
        try:
            for task in self.tasks:
                task.punctuate(self._wall)
                while self._queue:
                    t, r = self._queue.popleft()
                    self._deliver(t, r)
                self._drain_changelogs(task)
        finally:
            self._draining = False

    @property
    def wall_clock_ms(self) -> int:
        return self._wall

    # -------------------------------------------------------------- state
    def store(self, name: str) -> StateStore:
        """The store ``name`` itself (read and write, as Kafka's driver allows)."""
        for task in self.tasks:
            if name in task.stores:
                return task.stores[name]
        if name in self.global_stores:
            return self.global_stores[name]
        raise TopologyError(
            f"no state store named {name!r} (stores: {sorted(self.topology.stores)})"
        )

    get_key_value_store = store
    get_window_store = store
    get_session_store = store

    def dropped_records(self) -> dict[str, int]:
        """How many records were dropped, by reason (``late``, ``null-key``, ...)."""
        total: collections.Counter[str] = collections.Counter()
        for task in self.tasks:
            total.update(task.dropped)
        return dict(total)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self.tasks:
            task.close()

    def __enter__(self) -> TestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TestInputTopic:
    """Pipes records into one input topic of a ``TestDriver``."""

    __test__ = False

    def __init__(
        self,
        driver: TestDriver,
        name: str,
        key_serde: Serde,
        value_serde: Serde,
        start_ms: int,
        auto_advance_ms: int,
    ) -> None:
        self.driver = driver
        self.name = name
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.current_time_ms = start_ms
        self.auto_advance_ms = auto_advance_ms

    def pipe(
        self,
        key: Any,
        value: Any,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> None:
        """Process one record completely (timestamp: this topic's current time if None)."""
        if timestamp_ms is None:
            timestamp_ms = self.current_time_ms
            self.current_time_ms += self.auto_advance_ms
        elif (
            not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool) or timestamp_ms < 0
        ):
            raise ConfigError(f"timestamp_ms must be an int >= 0, got {timestamp_ms!r}")
        kb = self.key_serde.serialize(self.name, key)
        vb = self.value_serde.serialize(self.name, value)
        self.driver._pipe_raw(self.name, _Raw(kb, vb, timestamp_ms, tuple(headers)))

    def pipe_value(self, value: Any, timestamp_ms: int | None = None) -> None:
        self.pipe(None, value, timestamp_ms)

    def pipe_key_values(
        self,
        pairs: Iterable[tuple[Any, Any]],
        timestamp_ms: int | None = None,
        advance_ms: int = 0,
    ) -> None:
        ts = timestamp_ms
        for key, value in pairs:
            self.pipe(key, value, ts)
            if ts is not None:
                ts += advance_ms

    def pipe_values(self, values: Iterable[Any]) -> None:
        for value in values:
            self.pipe(None, value)

    def advance_time(self, ms: int) -> None:
        self.current_time_ms += ms


class TestOutputTopic:
    """Reads (and consumes) what the topology wrote to one topic of a ``TestDriver``."""

    __test__ = False

    def __init__(self, driver: TestDriver, name: str, key_serde: Serde, value_serde: Serde) -> None:
        self.driver = driver
        self.name = name
        self.key_serde = key_serde
        self.windowed_key_serde = WindowedSerde(key_serde)
        self.value_serde = value_serde

    def _key(self, data: bytes | None) -> Any:
        if self.name in self.driver._collector.windowed_topics:
            return self.windowed_key_serde.deserialize(self.name, data)
        return self.key_serde.deserialize(self.name, data)

    def read_records(self) -> list[TestRecord]:
        """Every record written since the last read, oldest first (they are consumed)."""
        queue = self.driver._outputs[self.name]
        out = []
        while queue:
            raw = queue.popleft()
            out.append(
                TestRecord(
                    self._key(raw.key),
                    self.value_serde.deserialize(self.name, raw.value),
                    raw.timestamp,
                    raw.headers,
                    self.name,
                )
            )
        return out

    def read_record(self) -> TestRecord:
        queue = self.driver._outputs[self.name]
        if not queue:
            raise IndexError(f"no record waiting in {self.name!r}")
        raw = queue.popleft()
        return TestRecord(
            self._key(raw.key),
            self.value_serde.deserialize(self.name, raw.value),
            raw.timestamp,
            raw.headers,
            self.name,
        )

    def read_key_values(self) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read_records()]

    def read_key_value(self) -> tuple[Any, Any]:
        r = self.read_record()
        return r.key, r.value

    def read_values(self) -> list[Any]:
        return [r.value for r in self.read_records()]

    def read_value(self) -> Any:
        return self.read_record().value

    def read_key_values_to_map(self) -> dict[Any, Any]:
        """The latest value per key (``None`` deletes), as Kafka's ``readKeyValuesToMap``."""
        out: dict[Any, Any] = {}
        for key, value in self.read_key_values():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def queue_size(self) -> int:
        return len(self.driver._outputs[self.name])

    def is_empty(self) -> bool:
        return not self.driver._outputs[self.name]
