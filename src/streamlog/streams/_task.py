"""A stream task: one instance of a sub-topology for one input partition.

The task owns its processors and state stores, tracks *stream time* (the
largest record timestamp it has seen), runs punctuations, and hands every
output record to a ``RecordCollector`` (the producer in a running
application, an in-memory capture in the ``TestDriver``).

Processing a record (``process``): set the record context, advance stream
time, deserialize at the source node, push the record depth-first through the
processors, then fire stream-time punctuations that are due. Optional idle
advance: when ``idle_advance_ms`` is set and no record has arrived for that
long of wall-clock time, stream time advances with the wall clock, so windows
on a quiet partition close (``punctuate``).

A task is used by one thread at a time (its runner's); it is not thread-safe.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from ..errors import SerdeError, TopologyError
from ._processor import (
    Processor,
    ProcessorContext,
    Punctuation,
    PunctuationType,
    Record,
    tuple_new,
)
from ._serdes import INTERNAL, Serde, WindowedSerde
from ._stores import StateStore
from ._topology import SubTopology, Topology
from ._windows import Windowed

__all__ = ["DroppedRecord", "RecordCollector", "SinkProcessor", "SourceProcessor", "StreamTask"]


class RecordCollector(Protocol):
    """Where a task's output goes: user topics, repartition topics, changelogs."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]],
        partition: int | None,
    ) -> None: ...

    def partitions_for(self, topic: str) -> int: ...


class DroppedRecord(NamedTuple):
    """What the application's ``on_dropped`` callback receives."""

    reason: str  # "late", "null-key", "null-value", "deserialization"
    processor: str
    task_id: str
    key: Any
    value: Any
    timestamp: int
    detail: dict[str, Any]


class SourceProcessor(Processor):
    """Deserializes a topic's raw records and forwards them."""

    def __init__(self, key_serde: Serde, value_serde: Serde) -> None:
        self.key_serde = key_serde
        self.value_serde = value_serde

    def process_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: tuple[tuple[str, bytes | None], ...],
    ) -> None:
        try:
            k = self.key_serde.deserialize(topic, key)
            v = self.value_serde.deserialize(topic, value)
        except SerdeError:
            task = self.context._task
            if task.on_deserialization_error == "continue":
                self.context.record_dropped(
                    "deserialization", Record(key, value, timestamp, headers)
                )
                return
            raise
        self.context.forward(tuple_new(Record, (k, v, timestamp, headers)))

    def process(self, record: Record) -> None:  # pragma: no cover - sources take raw records
        self.context.forward(record)


class SinkProcessor(Processor):
    """Serializes records and hands them to the collector for ``topic``."""

    def __init__(
        self,
        topic: str,
        key_serde: Serde,
        value_serde: Serde,
        partitioner: Callable[[Any, Any, int], int | None] | None = None,
        *,
        drop_null_keys: bool = False,
    ) -> None:
        self.topic = topic
        self.key_serde = key_serde
        self.windowed_key_serde = WindowedSerde(key_serde)
        self.value_serde = value_serde
        self.partitioner = partitioner
        self.drop_null_keys = drop_null_keys

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.collector = context._task.collector  # (the hot path: one lookup less)

    def process(self, record: Record) -> None:
        key, value, timestamp, headers = record
        if key is None and self.drop_null_keys:
            self.context.record_dropped("null-key", record)
            return
        topic = self.topic
        collector = self.collector
        if isinstance(key, Windowed):
            serde: Serde = self.windowed_key_serde
            noted = getattr(collector, "windowed_topics", None)
            if noted is not None:  # the TestDriver reads such keys back as Windowed
                noted.add(topic)
        else:
            serde = self.key_serde
        kb = serde.serialize(topic, key)
        vb = self.value_serde.serialize(topic, value)
        partitioner = self.partitioner
        if partitioner is None:
            collector.send(topic, kb, vb, timestamp, headers, None)
        else:
            partition = partitioner(key, value, collector.partitions_for(topic))
            collector.send(topic, kb, vb, timestamp, headers, partition)


class StreamTask:
    """One sub-topology instance for one partition (see the module docstring)."""

    def __init__(
        self,
        *,
        application_id: str,
        topology: Topology,
        sub: SubTopology,
        partition: int,
        collector: RecordCollector,
        stores: dict[str, StateStore],
        global_stores: dict[str, StateStore],
        wall_clock: Callable[[], int],
        on_dropped: Callable[[DroppedRecord], None] | None = None,
        on_deserialization_error: str = "fail",
        idle_advance_ms: int | None = None,
    ) -> None:
        self.application_id = application_id
        self.topology = topology
        self.sub = sub
        self.partition = partition
        self.task_id = f"{sub.id}_{partition}"
        self.collector = collector
        self.stores = stores
        self.global_stores = global_stores
        self.wall_clock_ms = wall_clock
        self.on_dropped = on_dropped
        self.on_deserialization_error = on_deserialization_error
        self.idle_advance_ms = idle_advance_ms
        self.stream_time = -1
        self.current_topic: str | None = None
        self.current_offset: int | None = None
        self.current_timestamp = -1
        self.dropped: Counter[str] = Counter()
        self.processed = 0
        self._shared: dict[str, Any] = {}
        self._stream_punctuations: list[tuple[int, int, Punctuation]] = []
        self._wall_punctuations: list[tuple[int, int, Punctuation]] = []
        self._seq = 0
        self._last_record_wall = wall_clock()
        self._last_record_stream_time = -1

        self.processors: dict[str, Processor] = {}
        for name in sub.nodes:
            self.processors[name] = topology.nodes[name].make()
        self.sources: dict[str, SourceProcessor] = {}
        for name in sub.nodes:
            spec = topology.nodes[name]
            children = [self.processors[c] for c in spec.children]
            proc = self.processors[name]
            proc.init(ProcessorContext(self, name, children))
            for topic in spec.source_topics:
                if not isinstance(proc, SourceProcessor):
                    raise TopologyError(f"source node {name} has no source processor")
                self.sources[topic] = proc
        self._order = [self.processors[n] for n in sub.nodes]

    # ------------------------------------------------------------ processing
    def process(
        self,
        topic: str,
        offset: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes | None], ...] = (),
    ) -> None:
        self.current_topic = topic
        self.current_offset = offset
        self.current_timestamp = timestamp
        self.stream_time = max(self.stream_time, timestamp)
        if self.idle_advance_ms is not None:  # (only the idle advance needs the wall clock)
            self._last_record_wall = self.wall_clock_ms()
            self._last_record_stream_time = self.stream_time
        self.sources[topic].process_raw(topic, key, value, timestamp, headers)
        self.processed += 1
        if self._stream_punctuations and self._stream_punctuations[0][0] <= self.stream_time:
            self._punctuate(self._stream_punctuations, self.stream_time)
        self.current_topic = None
        self.current_offset = None

    def punctuate(self, now: int | None = None) -> bool:
        """Run due wall-clock punctuations and the idle advance; True if anything ran."""
        now = self.wall_clock_ms() if now is None else now
        ran = False
        if self.idle_advance_ms is not None and self._last_record_stream_time >= 0:
            idle = now - self._last_record_wall
            if idle >= self.idle_advance_ms:
                advanced = self._last_record_stream_time + idle
                if advanced > self.stream_time:
                    self.advance_stream_time(advanced)
                    ran = True
        if self._wall_punctuations and self._wall_punctuations[0][0] <= now:
            self._punctuate(self._wall_punctuations, now)
            ran = True
        return ran

    def advance_stream_time(self, stream_time: int) -> None:
        """Move stream time forward without a record (idle advance, ``TestDriver``)."""
        if stream_time <= self.stream_time:
            return
        self.stream_time = stream_time
        self.current_timestamp = stream_time
        for proc in self._order:
            proc.on_stream_time(stream_time)
        if self._stream_punctuations and self._stream_punctuations[0][0] <= stream_time:
            self._punctuate(self._stream_punctuations, stream_time)

    def _punctuate(self, queue: list[tuple[int, int, Punctuation]], now: int) -> None:
        saved = self.current_timestamp
        while queue and queue[0][0] <= now:
            _, _, p = heapq.heappop(queue)
            if p.cancelled:
                continue
            self.current_timestamp = now
            p.callback(now)
            # the next multiple of the interval after now; missed ones are not replayed
            p.next_ms = now - (now - p.next_ms) % p.interval_ms + p.interval_ms
            self._seq += 1
            heapq.heappush(queue, (p.next_ms, self._seq, p))
        self.current_timestamp = saved

    def schedule(
        self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]
    ) -> Punctuation:
        if not isinstance(interval_ms, int) or interval_ms < 1:
            raise TopologyError(
                f"a punctuation interval must be an int >= 1 ms, got {interval_ms!r}"
            )
        if kind is PunctuationType.STREAM_TIME:
            # aligned to 0: the first punctuation comes with the first record, as in Kafka
            p = Punctuation(interval_ms, kind, callback, 0)
            queue = self._stream_punctuations
        else:
            p = Punctuation(interval_ms, kind, callback, self.wall_clock_ms() + interval_ms)
            queue = self._wall_punctuations
        self._seq += 1
        heapq.heappush(queue, (p.next_ms, self._seq, p))
        return p

    # ----------------------------------------------------------------- state
    def store(self, name: str) -> StateStore:
        store = self.stores.get(name)
        if store is None:
            store = self.global_stores.get(name)
        if store is None:
            raise TopologyError(
                f"task {self.task_id} has no state store {name!r}; connect it to the processor "
                "(process(factory, 'store-name'))"
            )
        return store

    def shared(self, key: str, factory: Callable[[], Any]) -> Any:
        """Task-local state shared by several processors (a join's two sides)."""
        value = self._shared.get(key)
        if value is None:
            value = self._shared[key] = factory()
        return value

    def record_dropped(
        self, processor: str, reason: str, record: Record, detail: dict[str, Any]
    ) -> None:
        self.dropped[reason] += 1
        if self.on_dropped is not None:
            self.on_dropped(
                DroppedRecord(
                    reason,
                    processor,
                    self.task_id,
                    record.key,
                    record.value,
                    record.timestamp,
                    detail,
                )
            )

    def changelog_records(self) -> list[tuple[str, bytes | None, bytes | None, int]]:
        """Drain every store's pending changes as ``(changelog topic, key, value, ts)``."""
        out = []
        for name, store in self.stores.items():
            if not store.logged:
                continue
            topic = changelog_topic(self.application_id, name)
            for key, entry in store.drain_changes():
                ts = entry[1] if entry is not None and entry[1] >= 0 else max(self.stream_time, 0)
                out.append(
                    (
                        topic,
                        INTERNAL.serialize(topic, key),
                        None if entry is None else INTERNAL.serialize(topic, entry),
                        ts,
                    )
                )
        return out

    def close(self) -> None:
        for proc in self._order:
            proc.close()

    def _check(self) -> None:
        for store in self.stores.values():
            store._check()


def changelog_topic(application_id: str, store: str) -> str:
    return f"{application_id}-{store}-changelog"


def repartition_topic(application_id: str, name: str) -> str:
    return f"{application_id}-{name}-repartition"
