"""Running a topology: stream threads, tasks, commits, restore, global tables.

Protocol of one stream thread (Kafka Streams' ``StreamThread``, simplified)::

    consumer  = group member of <application id>, subscribed to every source topic
                (user and repartition), range assignor (co-partitioned topics give
                the same partition numbers to the same member), earliest offsets,
                read_committed under exactly-once
    assigned  -> one task per (sub-topology, partition); under exactly-once a
                 transactional producer per task (transactional id
                 "<application id>-<task id>", so a new owner fences the old one
                 and aborts its open transaction); restore each store from its
                 local checkpoint + the changelog's tail
    loop      poll -> route records to tasks (a task with several input partitions
                 processes its records in timestamp order) -> hand their output to
                 the producer -> punctuate -> commit when commit_interval_ms has
                 passed
    commit    at-least-once: write pending changelog records, flush the producer,
                 commit the consumer's positions;
              exactly-once: per task, changelog records + send_offsets_to_transaction
                 + commit_transaction (outputs, state and input offsets atomically)
              the offsets committed are the consumer's positions (every record
                 returned was processed): past the transaction markers it skipped,
                 so a group reading transactional input reaches a lag of 0
              then, at most every checkpoint_interval_ms, write each store's
                 checkpoint (its entries + the changelog offset they reflect), and
                 at most every 30 s delete the consumed repartition records
    revoked   commit, checkpoint, close the tasks (their producers too)
    lost      close the tasks without committing (under exactly-once their open
                 transactions are aborted by the new owner's fencing)
    died      a user exception (or any error) in one thread: the application is in
                 ERROR and every thread stops (Kafka Streams' default response,
                 SHUTDOWN_CLIENT); the dead thread's tasks close without committing

A checkpoint is only written after a successful commit, so under exactly-once
it never holds uncommitted state: restarting after a crash loads it and
replays the committed tail of the changelog (no full wipe, unlike Kafka
Streams with RocksDB before KIP-892). A damaged checkpoint (digest), or one
whose offset is outside the changelog, is ignored: the whole changelog is
replayed.

Output goes through a ``_Collector``: records are gathered per partition and
handed to the producer once per poll batch as whole batches
(``Producer._send_batch``), not one ``send`` per record (a third of the time of
a word count went to ``send``).

Threads: each stream thread owns its tasks; ``store_view`` reads them under
that thread's lock.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
import xxhash

from .._fs import fs
from .._layout import streams_dir
from .._log import Log
from .._log import open as open_log
from .._structs import OffsetAndMetadata, TopicPartition
from ..clients._consumer import ConsumerRebalanceListener
from ..clients._future import BatchResult
from ..clients._partitioner import murmur2_partition
from ..errors import StreamlogError, StreamsError, TopologyError, WakeupError
from ._serdes import INTERNAL, _decode_ext
from ._stores import KeyValueStore, SessionStore, StateStore, WindowStore
from ._task import StreamTask, changelog_topic
from ._topology import StoreSpec, SubTopology, Topology

if TYPE_CHECKING:
    from ..clients._consumer import Consumer
    from ..clients._producer import Producer
    from ._app import StreamsApp

__all__ = ["StreamsRuntime"]

_logger = logging.getLogger("streamlog.streams")
_CHECKPOINT_VERSION = 1
_DAY_MS = 86_400_000
_MAX_TIMESTAMP = 2**63 - 1
_BYTES = {bytes}
_BYTES_OR_NONE = {bytes, type(None)}
_INT = {int}
_PURGE_INTERVAL = 30.0  # seconds between deletions of consumed repartition records
_CHECKPOINT_SMALL = 10_000  # entries: a store this small is checkpointed whenever it moved


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_unpack = functools.partial(
    msgpack.unpackb, use_list=False, ext_hook=_decode_ext, strict_map_key=False
)


def _changelog_entries(topic: str, records: list[Any]) -> list[tuple[Any, Any]]:
    """``(key, entry)`` of changelog records (a restore's hot loop)."""
    try:
        return [(_unpack(r.key), None if r.value is None else _unpack(r.value)) for r in records]
    except (TypeError, ValueError, msgpack.UnpackException):  # say which record, as a SerdeError
        return [
            (INTERNAL.deserialize(topic, r.key), INTERNAL.deserialize(topic, r.value))
            for r in records
        ]


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_resume = False


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile (threads may nest it): restores and
    checkpoints make millions of tuples, none of them garbage, and the collector's
    passes over them cost twice the work itself (as msgpack's docs warn)."""
    global _gc_pausers, _gc_resume
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_resume = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_resume:
                gc.enable()


class _Collector:
    """A task's (or, at-least-once, a thread's) output: records are gathered per
    partition in columns and handed to the producer a poll batch at a time
    (``drain``), as whole batches (``Producer._send_batch``): one producer call per
    partition and poll instead of one ``send`` per record. Order per partition is
    the order of ``send``. The results are checked at commit (``check_sent``)."""

    def __init__(self, runtime: StreamsRuntime, producer: Producer, transactional: bool) -> None:
        self.runtime = runtime
        self.producer = producer
        self.transactional = transactional
        self.in_transaction = False
        self._begin = transactional  # the next send begins a transaction
        self._columns: dict[tuple[str, int], tuple[list[Any], list[Any], list[Any]]] = {}
        self._results: list[BatchResult] = []
        self._counts: dict[str, int] = {}

    def begin(self) -> None:
        if self.transactional and not self.in_transaction:
            self.producer.begin_transaction()
            self.in_transaction = True
            self._begin = False

    def ended(self) -> None:
        """The transaction was committed or aborted."""
        self.in_transaction = False
        self._begin = self.transactional

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]],
        partition: int | None,
    ) -> None:
        # (the hot path: the types of keys, values and timestamps are checked a batch at a
        # time by _drain_one)
        if self._begin:
            self.begin()
        if headers or key is None:
            self._send_one(topic, key, value, timestamp, headers, partition)
            return
        if partition is None:
            count = self._counts.get(topic)
            if count is None:
                count = self._counts[topic] = self.runtime.partition_count(topic)
            try:
                partition = murmur2_partition(key, count)
            except TypeError:  # not bytes: send() says what is wrong
                self._send_one(topic, key, value, timestamp, headers, partition)
                return
        columns = self._columns.get((topic, partition))
        if columns is None:
            columns = self._columns[(topic, partition)] = ([], [], [])
        keys, values, stamps = columns
        keys.append(key)
        values.append(value)
        stamps.append(timestamp)

    def _send_one(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        headers: Sequence[tuple[str, bytes | None]],
        partition: int | None,
    ) -> None:
        """The rare records (no key, headers, a serde that returned no bytes): through
        ``send``, after everything gathered for the topic (it may pick any partition)."""
        for tp in [tp for tp in self._columns if tp[0] == topic]:
            self._drain_one(tp)
        fut = self.producer.send(
            topic, value, key, partition=partition, timestamp_ms=timestamp, headers=headers or None
        )
        self._results.append(fut._batch)

    def drain(self) -> None:
        """Hand everything gathered to the producer."""
        for tp in list(self._columns):
            self._drain_one(tp)

    def _drain_one(self, tp: tuple[str, int]) -> None:
        keys, values, stamps = self._columns.pop(tp)
        if (
            set(map(type, keys)) == _BYTES
            and set(map(type, values)) <= _BYTES_OR_NONE
            and set(map(type, stamps)) == _INT
            and min(stamps) >= 0
            and max(stamps) <= _MAX_TIMESTAMP
        ):
            self._results.extend(self.producer._send_batch(tp[0], tp[1], keys, values, stamps))
            return
        # a serde made something else than bytes, or a timestamp is out of range: send()
        # each record (it raises for what it refuses)
        for key, value, stamp in zip(keys, values, stamps, strict=True):
            fut = self.producer.send(tp[0], value, key, partition=tp[1], timestamp_ms=stamp)
            self._results.append(fut._batch)

    def partitions_for(self, topic: str) -> int:
        count = self._counts.get(topic)
        if count is None:
            count = self._counts[topic] = self.runtime.partition_count(topic)
        return count

    def check_sent(self) -> None:
        """Raise the first error of anything sent since the last check (after a flush)."""
        results, self._results = self._results, []
        for result in results:
            if result.error is not None:
                raise StreamsError(
                    f"a stream task could not write its output: {result.error}"
                ) from result.error

    def discard(self) -> None:
        """Forget what was gathered and not handed over (the task is closed unclean)."""
        self._columns.clear()


class _TaskState:
    """A running task with what its thread needs around it."""

    def __init__(self, task: StreamTask, collector: _Collector, tps: set[TopicPartition]) -> None:
        self.task = task
        self.collector = collector
        self.tps = tps
        self.consumed: dict[TopicPartition, int] = {}  # next offset per input partition
        # the group's committed offset per input partition, as far as this task knows
        self.committed: dict[TopicPartition, int | None] = {}
        # per store: the changelog offset of its newest checkpoint on disk (None: none)
        self.checkpointed: dict[str, int | None] = {}


class StreamsRuntime:
    """All stream threads of one application instance, and its global tables."""

    def __init__(
        self,
        app: StreamsApp,
        topology: Topology,
        log_or_path: Any,
        state_dir: str | None,
    ) -> None:
        self.app = app
        self.topology = topology
        if isinstance(log_or_path, Log):
            self.log = log_or_path
            self._own_log = False
        else:
            self.log = open_log(log_or_path)
            self._own_log = True
        self.state_dir = state_dir or streams_dir(self.log.path, app.application_id)
        self.exception: BaseException | None = None
        self._state = "CREATED"
        self._partition_counts: dict[str, int] = {}
        self.threads: list[StreamThread] = []
        self.global_stores: dict[str, StateStore] = {}
        self._global_lock = threading.Lock()
        self._global_consumer: Consumer | None = None
        self._global_by_topic: dict[str, tuple[StoreSpec, StateStore]] = {}

    @property
    def state(self) -> str:
        return self._state

    def partition_count(self, topic: str) -> int:
        count = self._partition_counts.get(topic)
        if count is None:
            count = self._partition_counts[topic] = len(self.log.partitions_for(topic))
        return count

    # ------------------------------------------------------------- start-up
    def _prepare_topics(self) -> None:
        """Check sources, outputs and co-partitioning; create internal topics."""
        topology = self.topology
        existing = set(self.log.topics())
        internal = topology.internal_topics
        user_sources = [t for t in topology.source_topics if t not in internal]
        globals_ = [s.global_topic for s in topology.global_stores if s.global_topic]
        missing = sorted({t for t in (*user_sources, *globals_) if t not in existing})
        if missing:
            raise TopologyError(f"source topics do not exist: {missing}; create them first")
        outputs = sorted(
            t for t in self.app._output_topics if t not in existing and t not in internal
        )
        if outputs:
            raise TopologyError(f"output topics do not exist: {outputs}; create them first")
        for sub in topology.subtopologies:
            counts = {t: self.partition_count(t) for t in sub.source_topics if t not in internal}
            if len(set(counts.values())) > 1:
                raise TopologyError(
                    f"topics {sorted(counts)} are read by one sub-topology and must be "
                    f"co-partitioned (equal partition counts), got {counts}"
                )
        # repartition topics: as many partitions as the sub-topology reading them needs
        # (its co-partitioned user topics), else as the writing sub-topology's sources
        sizes: dict[str, int] = {}
        for _ in range(len(internal) + 1):
            for name, spec in internal.items():
                if spec.partitions is not None:
                    sizes[name] = spec.partitions
                    continue
                reader = topology.source_topic_to_sub.get(name)
                if reader is not None:
                    fixed = [
                        self.partition_count(t) for t in reader.source_topics if t not in internal
                    ]
                    if fixed:
                        sizes[name] = max(fixed)
                        continue
                writer = next(s for s in topology.subtopologies if spec.upstream in s.nodes)
                known = [
                    sizes.get(t) if t in internal else self.partition_count(t)
                    for t in writer.source_topics
                ]
                if all(k is not None for k in known):
                    sizes[name] = max(k for k in known if k is not None)
            # internal topics read by one sub-topology are co-partitioned too (a foreign-key
            # join's subscriptions and the right table's repartition topic, say)
            for sub in topology.subtopologies:
                group = [t for t in sub.source_topics if t in internal and t in sizes]
                if len(group) > 1:
                    top = max(sizes[t] for t in group)
                    for t in group:
                        if internal[t].partitions is None:
                            sizes[t] = top
        for sub in topology.subtopologies:
            counts = {t: sizes.get(t, 1) for t in sub.source_topics if t in internal}
            counts.update({t: self.partition_count(t) for t in sub.source_topics
                           if t not in internal})
            if len(set(counts.values())) > 1:
                raise TopologyError(
                    f"topics {sorted(counts)} are read by one sub-topology and must be "
                    f"co-partitioned (equal partition counts), got {counts}"
                )
        for name in internal:
            count = sizes.get(name, 1)
            if name in existing:
                have = self.partition_count(name)
                if have < count:
                    self.log.create_partitions(name, count)
                    self._partition_counts.pop(name, None)
            else:
                with contextlib.suppress(StreamlogError):
                    self.log.create_topic(name, count)
        for sub in topology.subtopologies:
            count = max(self.partition_count(t) for t in sub.source_topics)
            for store in sub.stores:
                store_spec = topology.stores[store]
                if not store_spec.logged:
                    continue
                topic = changelog_topic(self.app.application_id, store)
                if topic in existing:
                    continue
                sample = store_spec.make()
                config: dict[str, Any] = {"cleanup.policy": "compact"}
                retention = getattr(sample, "retention_ms", None)  # window, session, join stores
                if isinstance(retention, int):
                    config = {
                        "cleanup.policy": "compact,delete",
                        "retention.ms": retention + _DAY_MS,
                    }
                with contextlib.suppress(StreamlogError):
                    self.log.create_topic(topic, count, config)

    def _start_globals(self) -> None:
        specs = self.topology.global_stores
        if not specs:
            return
        tps: list[TopicPartition] = []
        for spec in specs:
            store = spec.make()
            self.global_stores[spec.name] = store
            assert spec.global_topic is not None
            self._global_by_topic[spec.global_topic] = (spec, store)
            tps.extend(
                TopicPartition(spec.global_topic, p)
                for p in sorted(self.log.partitions_for(spec.global_topic))
            )
        consumer = self.log.consumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if self.app.exactly_once else "read_uncommitted",
        )
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        self._global_consumer = consumer
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            self._apply_global(consumer.poll(timeout_ms=100))

    def poll_globals(self) -> None:
        consumer = self._global_consumer
        if consumer is None:
            return
        with self._global_lock:
            self._apply_global(consumer.poll(timeout_ms=0))

    def _apply_global(self, batch: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in batch.items():
            spec, store = self._global_by_topic[tp.topic]
            assert spec.key_serde is not None and spec.value_serde is not None
            assert isinstance(store, KeyValueStore)
            for r in records:
                key = spec.key_serde.deserialize(tp.topic, r.key)
                if key is None:
                    continue
                store.put(key, spec.value_serde.deserialize(tp.topic, r.value), r.timestamp)

    def start(self) -> None:
        try:
            self._prepare_topics()
            self._start_globals()
        except BaseException:
            self._state = "ERROR"
            self._close_log()
            raise
        self._state = "RUNNING"
        for i in range(self.app.num_stream_threads):
            thread = StreamThread(self, i)
            self.threads.append(thread)
            thread.start()

    def thread_failed(self, thread: StreamThread, error: BaseException) -> None:
        """A thread died: the application is in ERROR and its other threads stop
        (Kafka Streams' default uncaught-exception response, SHUTDOWN_CLIENT: the dead
        thread's tasks would otherwise move to the others and fail there too)."""
        _logger.error("stream thread %s died", thread.name, exc_info=error)
        if self.exception is None:
            self.exception = error
        self._state = "ERROR"
        for other in self.threads:
            if other is not thread:
                other.request_stop()

    def close(self, timeout_ms: int | None) -> None:
        for thread in self.threads:
            thread.request_stop()
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        for thread in self.threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._global_consumer is not None:
            self._global_consumer.close()
        if self._state != "ERROR":
            self._state = "NOT_RUNNING"
        self._close_log()

    def _close_log(self) -> None:
        if self._own_log:
            self._own_log = False
            self.log.close()

    # -------------------------------------------------------------- queries
    def store_view(self, name: str) -> StoreView:
        if name not in self.topology.stores:
            raise TopologyError(
                f"no state store named {name!r} (stores: {sorted(self.topology.stores)})"
            )
        return StoreView(self, name)

    def metrics(self) -> dict[str, Any]:
        """``state``; ``threads``; ``tasks`` (ids of the tasks this instance runs now);
        ``processed`` (records processed by its tasks, closed ones included);
        ``dropped`` (per reason); ``commits``; and of the restores of its stores since
        start: ``restored`` (changelog records replayed), ``restored_from_checkpoint``
        (entries loaded from local checkpoints) and ``restore_seconds``."""
        processed = 0
        dropped: dict[str, int] = {}
        commits = 0
        restored = 0
        from_checkpoint = 0
        restore_seconds = 0.0
        tasks = []
        for thread in self.threads:
            with thread.lock:
                commits += thread.commits
                restored += thread.restored
                from_checkpoint += thread.restored_from_checkpoint
                restore_seconds += thread.restore_seconds
                for ts in thread.tasks.values():
                    processed += ts.task.processed
                    tasks.append(ts.task.task_id)
                    for reason, n in ts.task.dropped.items():
                        dropped[reason] = dropped.get(reason, 0) + n
                processed += thread.processed_closed
        return {
            "state": self._state,
            "threads": len(self.threads),
            "tasks": sorted(tasks),
            "processed": processed,
            "dropped": dropped,
            "commits": commits,
            "restored": restored,
            "restored_from_checkpoint": from_checkpoint,
            "restore_seconds": restore_seconds,
        }

    # ----------------------------------------------------------- checkpoints
    def _checkpoint_path(self, task_id: str, store: str) -> str:
        return os.path.join(self.state_dir, task_id, f"{store}.checkpoint")

    def write_checkpoint(self, task: StreamTask, store: StateStore, offset: int) -> None:
        path = self._checkpoint_path(task.task_id, store.name)
        fs.makedirs(os.path.dirname(path))
        with _gc_paused():
            entries = INTERNAL.serialize(store.name, list(store.entries()))
        assert entries is not None
        body = msgpack.packb([_CHECKPOINT_VERSION, offset, entries], use_bin_type=True)
        # not durable: a checkpoint lost or torn by a power cut fails its checksum, and the
        # store is restored from the whole changelog instead
        fs.write_atomic(path, xxhash.xxh64_digest(body) + body, durable=False)

    def read_checkpoint(self, task_id: str, store: str) -> tuple[int, Sequence[Any]] | None:
        path = self._checkpoint_path(task_id, store)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        digest, body = data[:8], data[8:]
        if len(data) < 8 or xxhash.xxh64_digest(body) != digest:
            _logger.warning("checkpoint %s is damaged; restoring from the whole changelog", path)
            return None
        try:
            version, offset, entries = msgpack.unpackb(body, raw=False)
            if version != _CHECKPOINT_VERSION:
                return None
            items = INTERNAL.deserialize(store, entries)
        except (ValueError, StreamlogError, msgpack.UnpackException):
            return None
        return offset, items


class StoreView:
    """A read-only view of one store across this instance's tasks (interactive queries).

    Key-value stores: ``get(key)``, ``[key]``, ``in``, ``len``, ``items()``, ``all()``.
    Window stores: ``fetch(key, start)``, ``fetch_range(key, time_from, time_to)``,
    ``fetch_all(time_from, time_to)``. Session stores: ``fetch(key)``.
    Global stores are read directly.
    """

    def __init__(self, runtime: StreamsRuntime, name: str) -> None:
        self._runtime = runtime
        self.name = name

    def _stores(self) -> Iterator[StateStore]:
        runtime = self._runtime
        store = runtime.global_stores.get(self.name)
        if store is not None:
            yield store
            return
        for thread in runtime.threads:
            with thread.lock:
                stores = [
                    ts.task.stores[self.name]
                    for ts in thread.tasks.values()
                    if self.name in ts.task.stores
                ]
            yield from stores

    def _locked(self) -> Any:
        return _AllLocks(self._runtime.threads)

    def get(self, key: Any, default: Any = None) -> Any:
        with self._locked():
            for store in self._stores_unlocked():
                if isinstance(store, KeyValueStore):
                    value = store.get(key)
                    if value is not None:
                        return value
        return default

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def items(self) -> list[tuple[Any, Any]]:
        with self._locked():
            out: list[tuple[Any, Any]] = []
            for store in self._stores_unlocked():
                if isinstance(store, KeyValueStore):
                    out.extend(store.items())
            return out

    all = items

    def __len__(self) -> int:
        with self._locked():
            return sum(s.approximate_num_entries() for s in self._stores_unlocked())

    def approximate_num_entries(self) -> int:
        return len(self)

    def fetch(self, key: Any, *args: int) -> Any:
        with self._locked():
            for store in self._stores_unlocked():
                if isinstance(store, WindowStore):
                    if len(args) == 1:
                        value = store.fetch(key, args[0])
                        if value is not None:
                            return value
                    else:
                        raise TopologyError("fetch(key, start) on a window store")
                elif isinstance(store, SessionStore):
                    found = store.fetch(key)
                    if found:
                        return found
                else:
                    raise TopologyError(f"store {self.name!r} is not a window or session store")
        return None if args else []

    def fetch_range(self, key: Any, time_from: int, time_to: int) -> list[tuple[int, Any]]:
        with self._locked():
            out = []
            for store in self._stores_unlocked():
                if isinstance(store, WindowStore):
                    out.extend(store.fetch_range(key, time_from, time_to))
            return sorted(out, key=lambda e: e[0])

    def fetch_all(self, time_from: int, time_to: int) -> list[tuple[Any, int, Any]]:
        with self._locked():
            out = []
            for store in self._stores_unlocked():
                if isinstance(store, WindowStore):
                    out.extend(store.fetch_all(time_from, time_to))
            return out

    def _stores_unlocked(self) -> list[StateStore]:
        runtime = self._runtime
        store = runtime.global_stores.get(self.name)
        if store is not None:
            return [store]
        return [
            ts.task.stores[self.name]
            for thread in runtime.threads
            for ts in thread.tasks.values()
            if self.name in ts.task.stores
        ]


class _AllLocks:
    def __init__(self, threads: list[StreamThread]) -> None:
        self.locks = [t.lock for t in threads]

    def __enter__(self) -> None:
        for lock in self.locks:
            lock.acquire()

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self.locks):
            lock.release()


class StreamThread(threading.Thread):
    """One consumer, its tasks, and the loop of the module docstring."""

    def __init__(self, runtime: StreamsRuntime, index: int) -> None:
        super().__init__(name=f"{runtime.app.application_id}-StreamThread-{index}", daemon=True)
        self.runtime = runtime
        self.app = runtime.app
        self.index = index
        self.lock = threading.RLock()
        self.tasks: dict[tuple[int, int], _TaskState] = {}
        self._stop_requested = threading.Event()
        self.commits = 0
        self.processed_closed = 0
        self.restored = 0  # changelog records replayed by this thread's restores
        self.restored_from_checkpoint = 0  # store entries loaded from checkpoints
        self.restore_seconds = 0.0  # time spent restoring stores
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None  # at-least-once: one for the thread
        self._shared_collector: _Collector | None = None
        self._last_checkpoint = 0.0
        self._next_commit = 0.0
        self._purgeable: dict[TopicPartition, int] = {}  # repartition offsets committed
        self._last_purge = time.monotonic()

    def request_stop(self) -> None:
        self._stop_requested.set()
        consumer = self._consumer
        if consumer is not None:
            with contextlib.suppress(StreamlogError):
                consumer.wakeup()

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        try:
            self._setup()
            while not self._stop_requested.is_set():
                self._run_once()
            self._shutdown(clean=True)
        except BaseException as e:
            if self._stop_requested.is_set() and isinstance(e, WakeupError):
                try:
                    self._shutdown(clean=True)
                except BaseException as e2:
                    self._failed(e2)
                return
            self._failed(e)

    def _failed(self, error: BaseException) -> None:
        try:
            self.runtime.thread_failed(self, error)
        finally:
            with contextlib.suppress(BaseException):
                self._shutdown(clean=False)

    def _setup(self) -> None:
        log = self.runtime.log
        app = self.app
        eos = app.exactly_once
        listener = _Listener(self)
        consumer = log.consumer(
            group_id=app.application_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if eos else "read_uncommitted",
            partition_assignment_strategy="range",
            max_poll_records=app.max_poll_records,
        )
        self._consumer = consumer
        if not eos:
            self._producer = log.producer(linger_ms=5)
            self._shared_collector = _Collector(self.runtime, self._producer, False)
        consumer.subscribe(self.runtime.topology.source_topics, listener=listener)
        self._next_commit = time.monotonic() + app.commit_interval_ms / 1000
        self._last_checkpoint = time.monotonic()

    def _run_once(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        wait = max(0.0, min(0.1, self._next_commit - time.monotonic()))
        if self.app.idle_advance_ms is not None:
            wait = min(wait, max(self.app.idle_advance_ms, 1) / 1000)
        batch = consumer.poll(timeout_ms=int(wait * 1000))
        self.runtime.poll_globals()
        with self.lock:
            if batch:
                self._process(batch)
            now = _now_ms()
            for ts in self.tasks.values():
                if ts.task.punctuate(now):
                    ts.collector.drain()
            if time.monotonic() >= self._next_commit:
                self._commit(list(self.tasks.values()))
                self._next_commit = time.monotonic() + self.app.commit_interval_ms / 1000

    def _process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        topology = self.runtime.topology
        per_task: dict[tuple[int, int], list[tuple[TopicPartition, list[Any]]]] = {}
        for tp, records in batch.items():
            sub = topology.source_topic_to_sub[tp.topic]
            per_task.setdefault((sub.id, tp.partition), []).append((tp, records))
        for key, parts in per_task.items():
            ts = self.tasks.get(key)
            if ts is None:  # not ours any more (revoked during this poll)
                continue
            task = ts.task
            ts.collector.begin()
            consumed = ts.consumed
            if len(parts) == 1:
                tp, records = parts[0]
                topic = tp.topic
                process = task.process
                for r in records:
                    process(topic, r.offset, r.timestamp, r.key, r.value, r.headers)
                consumed[tp] = records[-1].offset + 1
            else:
                merged = heapq.merge(
                    *[[(r.timestamp, i, r, tp) for i, r in enumerate(rs)] for tp, rs in parts],
                    key=lambda e: (e[0], e[1]),
                )
                for _, _, r, tp in merged:
                    task.process(tp.topic, r.offset, r.timestamp, r.key, r.value, r.headers)
                    consumed[tp] = r.offset + 1
            ts.collector.drain()

    # --------------------------------------------------------------- commits
    def _commit(self, states: list[_TaskState]) -> None:
        if not states:
            return
        consumer = self._consumer
        assert consumer is not None
        if self.app.exactly_once:
            for ts in states:
                collector = ts.collector
                records = ts.task.changelog_records()
                offsets = self._offsets(consumer, ts)
                if not collector.in_transaction and not offsets and not records:
                    continue
                collector.begin()
                for topic, k, v, t in records:
                    collector.send(topic, k, v, t, (), ts.task.partition)
                collector.drain()
                if offsets:
                    collector.producer.send_offsets_to_transaction(
                        {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()},
                        consumer.group_metadata(),
                    )
                collector.producer.commit_transaction()
                collector.ended()
                collector.check_sent()
                self._after_commit(ts, offsets)
        else:
            shared = self._shared_collector
            assert shared is not None and self._producer is not None
            for ts in states:
                for topic, k, v, t in ts.task.changelog_records():
                    shared.send(topic, k, v, t, (), ts.task.partition)
            shared.drain()
            self._producer.flush()
            shared.check_sent()
            per_task = [(ts, self._offsets(consumer, ts)) for ts in states]
            offsets = {tp: o for _, task_offsets in per_task for tp, o in task_offsets.items()}
            if offsets:
                consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
            for ts, task_offsets in per_task:
                self._after_commit(ts, task_offsets)
        self.commits += 1
        self._purge(now=False)
        if time.monotonic() - self._last_checkpoint >= self.app.checkpoint_interval_ms / 1000:
            self._checkpoint(states, final=False)

    @staticmethod
    def _offsets(consumer: Consumer, ts: _TaskState) -> dict[TopicPartition, int]:
        """The offsets to commit for ``ts``: the consumer's position of each of its input
        partitions that moved since the last commit. Every record ``poll`` returned has
        been processed when this runs, so the position is the next record to process; it
        is past the transaction markers the consumer skipped, where "last processed
        offset + 1" would point at a marker and leave a lag of 1 behind every
        transaction (KAFKA-6607)."""
        out: dict[TopicPartition, int] = {}
        consumed = ts.consumed
        committed = ts.committed
        for tp in ts.tps:
            try:
                offset = consumer.position(tp)
            except StreamlogError:  # (not assigned any more)
                offset = consumed.get(tp, -1)
            offset = max(offset, consumed.get(tp, -1))
            known = committed.get(tp)
            if offset >= 0 and (known is None or offset > known):
                out[tp] = offset
        return out

    def _after_commit(self, ts: _TaskState, offsets: dict[TopicPartition, int]) -> None:
        ts.consumed.clear()
        ts.committed.update(offsets)
        internal = self.runtime.topology.internal_topics
        for tp, offset in offsets.items():
            if tp.topic in internal:
                self._purgeable[tp] = offset

    def _purge(self, *, now: bool) -> None:
        """Delete the repartition records consumed and committed: at most every
        ``_PURGE_INTERVAL`` seconds (Kafka Streams' ``repartition.purge.interval.ms``),
        and when tasks go (``now``)."""
        if not self._purgeable or (
            not now and time.monotonic() - self._last_purge < _PURGE_INTERVAL
        ):
            return
        self._last_purge = time.monotonic()
        purge, self._purgeable = self._purgeable, {}
        with contextlib.suppress(StreamlogError):
            self.runtime.log.delete_records(purge)

    def _checkpoint(self, states: list[_TaskState], *, final: bool = True) -> None:
        """Write each store's checkpoint (right after a commit: the store holds exactly
        what its changelog holds up to its end). A store whose changelog did not move
        since its last checkpoint keeps it. A checkpoint is the whole store, so the
        periodic ones (not ``final``: the task stays) of a large store wait until its
        changelog grew by a tenth of its size: until then replaying that tail costs a
        restart less than rewriting the store costs now."""
        self._last_checkpoint = time.monotonic()
        for ts in states:
            task = ts.task
            for store in task.stores.values():
                if not store.logged:
                    continue
                topic = changelog_topic(self.app.application_id, store.name)
                end = self.runtime.log.partition(topic, task.partition).end_offset
                last = ts.checkpointed.get(store.name)
                if last == end:
                    continue
                if not final and last is not None:
                    size = store.approximate_num_entries()
                    if size > _CHECKPOINT_SMALL and end - last < size // 10:
                        continue
                self.runtime.write_checkpoint(task, store, end)
                ts.checkpointed[store.name] = end

    # ------------------------------------------------------------ assignment
    def tasks_assigned(self, assigned: set[TopicPartition]) -> None:
        topology = self.runtime.topology
        wanted: dict[tuple[int, int], set[TopicPartition]] = {}
        for tp in assigned:
            sub = topology.source_topic_to_sub.get(tp.topic)
            if sub is not None:
                wanted.setdefault((sub.id, tp.partition), set()).add(tp)
        with self.lock:
            for key, tps in sorted(wanted.items()):
                if key in self.tasks:
                    self.tasks[key].tps |= tps
                    continue
                sub = topology.subtopologies[key[0]]
                self.tasks[key] = self._create_task(sub, key[1], tps)

    def tasks_revoked(self, revoked: set[TopicPartition], *, lost: bool) -> None:
        with self.lock:
            gone = [k for k, ts in self.tasks.items() if ts.tps & revoked]
            states = [self.tasks[k] for k in gone]
            if not lost:
                self._commit(states)
                self._checkpoint(states)
                self._purge(now=True)
            for key in gone:
                self._close_task(self.tasks.pop(key), abort=lost)

    def _create_task(
        self, sub: SubTopology, partition: int, tps: set[TopicPartition]
    ) -> _TaskState:
        runtime = self.runtime
        app = self.app
        task_id = f"{sub.id}_{partition}"
        if app.exactly_once:
            producer = runtime.log.producer(
                transactional_id=f"{app.application_id}-{task_id}", linger_ms=5
            )
            producer.init_transactions()  # fences an old owner, aborts its transaction
            collector = _Collector(runtime, producer, True)
        else:
            assert self._shared_collector is not None
            collector = self._shared_collector
        stores = {name: runtime.topology.stores[name].make() for name in sub.stores}
        checkpointed: dict[str, int | None] = {}
        started = time.perf_counter()
        for store in stores.values():
            if store.logged:
                checkpointed[store.name] = self._restore(task_id, partition, store)
        self.restore_seconds += time.perf_counter() - started
        task = StreamTask(
            application_id=app.application_id,
            topology=runtime.topology,
            sub=sub,
            partition=partition,
            collector=collector,
            stores=stores,
            global_stores=runtime.global_stores,
            wall_clock=_now_ms,
            on_dropped=app.on_dropped,
            on_deserialization_error=app.deserialization_exception_handler,
            idle_advance_ms=app.idle_advance_ms,
        )
        ts = _TaskState(task, collector, tps)
        ts.checkpointed = checkpointed
        consumer = self._consumer
        if consumer is not None:
            for tp in tps:
                with contextlib.suppress(StreamlogError):
                    ts.committed[tp] = consumer.committed(tp)
        return ts

    def _restore(self, task_id: str, partition: int, store: StateStore) -> int | None:
        """Fill ``store`` from its checkpoint and the changelog after it (or the whole
        changelog). The offset of the checkpoint used, if any."""
        runtime = self.runtime
        topic = changelog_topic(self.app.application_id, store.name)
        tp = TopicPartition(topic, partition)
        plog = runtime.log.partition(topic, partition)
        end = plog.end_offset
        start = plog.log_start_offset
        with _gc_paused():
            checkpoint = runtime.read_checkpoint(task_id, store.name)
        offset = start
        used: int | None = None
        if checkpoint is not None:
            ck_offset, entries = checkpoint
            if start <= ck_offset <= end:
                with _gc_paused():
                    store.restore_batch(entries, deletes=False)
                offset = used = ck_offset
                self.restored_from_checkpoint += len(entries)
                del checkpoint, entries
            else:
                _logger.warning(
                    "checkpoint of %s/%s at offset %d is outside the changelog [%d, %d]; "
                    "restoring from the whole changelog",
                    task_id,
                    store.name,
                    ck_offset,
                    start,
                    end,
                )
        store.restored_records = 0
        if offset >= end:
            return used
        consumer = runtime.log.consumer(
            enable_auto_commit=False,
            isolation_level="read_committed" if self.app.exactly_once else "read_uncommitted",
            max_poll_records=10_000,
        )
        try:
            consumer.assign([tp])
            consumer.seek(tp, offset)
            stop = consumer.end_offsets([tp])[tp]
            restored = 0
            while consumer.position(tp) < stop:
                for records in consumer.poll(timeout_ms=100).values():
                    with _gc_paused():
                        store.restore_batch(_changelog_entries(topic, records))
                    restored += len(records)
            store.restored_records = restored
            self.restored += restored
        finally:
            consumer.close()
        return used

    def _close_task(self, ts: _TaskState, *, abort: bool) -> None:
        self.processed_closed += ts.task.processed
        ts.task.close()
        if abort and self.app.exactly_once:  # (its own collector: the thread's is shared)
            ts.collector.discard()
        if self.app.exactly_once:
            producer = ts.collector.producer
            if abort and ts.collector.in_transaction:
                with contextlib.suppress(StreamlogError):
                    producer.abort_transaction()
            with contextlib.suppress(StreamlogError):
                producer.close()

    def _shutdown(self, *, clean: bool) -> None:
        with self.lock:
            states = list(self.tasks.values())
            if clean and states:
                self._commit(states)
                self._checkpoint(states)
                self._purge(now=True)
            for key in list(self.tasks):
                self._close_task(self.tasks.pop(key), abort=not clean)
        if self._producer is not None:
            with contextlib.suppress(StreamlogError):
                self._producer.close()
        if self._consumer is not None:
            with contextlib.suppress(StreamlogError):
                self._consumer.close()


class _Listener(ConsumerRebalanceListener):
    """The consumer's rebalance listener: tasks follow the assignment."""

    def __init__(self, thread: StreamThread) -> None:
        self.thread = thread

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.thread.tasks_revoked(revoked, lost=False)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.thread.tasks_assigned(assigned)

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.thread.tasks_revoked(lost, lost=True)
