"""``StreamsApp``: a stream-processing application over a streamlog data directory.

Define the topology with the DSL (``app.stream``, ``app.table``,
``app.global_table``), then either ``start()`` it (background threads that
consume the inputs as the consumer group ``application_id``, keep state in
stores with changelogs, write outputs, and commit) or hand it to a
``TestDriver`` (no threads, no data directory writes, manual time).

Thread-safety: define the topology from one thread. ``start``, ``close``,
``store`` and ``state`` may be called from any thread.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TopologyError
from ._dsl import GlobalKTable, KStream, KTable, _store_getter, global_store_spec
from ._ops import KTableSource
from ._serdes import Serde, resolve_serde
from ._stores import KeyValueStore, SessionStore, StateStore, WindowStore
from ._task import DroppedRecord, SourceProcessor
from ._topology import StoreSpec, Topology, TopologyBuilder

if TYPE_CHECKING:
    from .._log import Log
    from ._runtime import StreamsRuntime

__all__ = ["StreamsApp"]

_APP_ID = re.compile(r"^[a-zA-Z0-9._-]{1,200}$")
_GUARANTEES = {
    "at_least_once": "at_least_once",
    "exactly_once": "exactly_once",
    "exactly_once_v2": "exactly_once",
    "exactly_once_beta": "exactly_once",
}


class StreamsApp:
    """Kafka Streams' ``KafkaStreams`` + ``StreamsBuilder`` in one object.

    Configuration (Kafka's names in snake_case):

    - ``application_id``: the consumer group, the prefix of internal topics
      (``<id>-<name>-repartition``, ``<id>-<store>-changelog``) and of the
      transactional ids.
    - ``processing_guarantee``: ``"at_least_once"`` (default) or ``"exactly_once"``
      (input offsets, changelogs and outputs commit in one transaction per task;
      inputs and internal topics are read ``read_committed``).
    - ``default_key_serde`` / ``default_value_serde``: ``"bytes"`` (default),
      ``"str"``, ``"json"``, ``"int"`` or an object with ``serialize``/``deserialize``.
    - ``commit_interval_ms``: 30000 at-least-once, 100 exactly-once (Kafka's defaults).
    - ``num_stream_threads``: threads sharing the tasks (default 1).
    - ``state_dir``: local checkpoints (default ``<data dir>/streams/<application_id>``).
    - ``checkpoint_interval_ms``: how often a task's stores are checkpointed after a
      commit (default 10000; also on close and on revocation).
    - ``idle_advance_ms``: when set, a task that has received nothing for this long
      advances its stream time with the wall clock, so windows on quiet partitions
      close (off by default, as in Kafka Streams).
    - ``on_dropped``: ``callback(DroppedRecord)`` for each late/invalid record dropped.
    - ``deserialization_exception_handler``: ``"fail"`` (default) or ``"continue"``
      (drop and count the record).
    - ``max_poll_records``: records fetched per poll (default 1000).
    """

    def __init__(
        self,
        log_or_path: Log | str | os.PathLike[str],
        application_id: str,
        *,
        processing_guarantee: str = "at_least_once",
        default_key_serde: object = "bytes",
        default_value_serde: object = "bytes",
        commit_interval_ms: int | None = None,
        num_stream_threads: int = 1,
        state_dir: str | os.PathLike[str] | None = None,
        checkpoint_interval_ms: int = 10_000,
        idle_advance_ms: int | None = None,
        on_dropped: Callable[[DroppedRecord], None] | None = None,
        deserialization_exception_handler: str = "fail",
        max_poll_records: int = 1000,
    ) -> None:
        if not isinstance(application_id, str) or not _APP_ID.match(application_id):
            raise ConfigError(
                f"application_id must be 1-200 characters of [a-zA-Z0-9._-], got {application_id!r}"
            )
        if processing_guarantee not in _GUARANTEES:
            raise ConfigError(
                f"processing_guarantee must be 'at_least_once' or 'exactly_once', "
                f"got {processing_guarantee!r}"
            )
        self.application_id = application_id
        self.processing_guarantee = _GUARANTEES[processing_guarantee]
        self.exactly_once = self.processing_guarantee == "exactly_once"
        self.default_key_serde = resolve_serde(default_key_serde, "default_key_serde")
        self.default_value_serde = resolve_serde(default_value_serde, "default_value_serde")
        if commit_interval_ms is None:
            commit_interval_ms = 100 if self.exactly_once else 30_000
        for name, value, low in (
            ("commit_interval_ms", commit_interval_ms, 0),
            ("num_stream_threads", num_stream_threads, 1),
            ("checkpoint_interval_ms", checkpoint_interval_ms, 0),
            ("max_poll_records", max_poll_records, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
        if idle_advance_ms is not None and (
            not isinstance(idle_advance_ms, int)
            or isinstance(idle_advance_ms, bool)
            or idle_advance_ms < 0
        ):
            raise ConfigError(
                f"idle_advance_ms must be None or an int >= 0, got {idle_advance_ms!r}"
            )
        if deserialization_exception_handler not in ("fail", "continue"):
            raise ConfigError(
                "deserialization_exception_handler must be 'fail' or 'continue', "
                f"got {deserialization_exception_handler!r}"
            )
        if on_dropped is not None and not callable(on_dropped):
            raise ConfigError(f"on_dropped must be callable, got {on_dropped!r}")
        self.commit_interval_ms = commit_interval_ms
        self.num_stream_threads = num_stream_threads
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self.idle_advance_ms = idle_advance_ms
        self.on_dropped = on_dropped
        self.deserialization_exception_handler = deserialization_exception_handler
        self.max_poll_records = max_poll_records
        self._log_or_path = log_or_path
        self._state_dir = None if state_dir is None else os.fspath(state_dir)
        self._builder = TopologyBuilder()
        self._topology: Topology | None = None
        self._output_topics: set[str] = set()
        self._globals: dict[str, GlobalKTable] = {}
        self._lock = threading.Lock()
        self._runtime: StreamsRuntime | None = None
        self._closed = False

    # ------------------------------------------------------------ helpers
    def _serdes(self, key_serde: object, value_serde: object, what: str) -> tuple[Serde, Serde]:
        ks = (
            self.default_key_serde
            if key_serde is None
            else resolve_serde(key_serde, f"{what} key_serde")
        )
        vs = (
            self.default_value_serde
            if value_serde is None
            else resolve_serde(value_serde, f"{what} value_serde")
        )
        return ks, vs

    def _check_topic_name(self, topic: object) -> None:
        if (
            not isinstance(topic, str)
            or not re.match(r"^[a-zA-Z0-9._-]{1,249}$", topic)
            or topic in (".", "..")
        ):
            raise TopologyError(f"invalid topic name {topic!r}")

    def _store_name(self, materialized_as: str | None, prefix: str) -> str:
        if materialized_as is None:
            return self._builder.new_name(prefix)
        if not isinstance(materialized_as, str) or not re.match(
            r"^[a-zA-Z0-9._-]{1,200}$", materialized_as
        ):
            raise TopologyError(
                "materialized_as must be 1-200 characters of [a-zA-Z0-9._-], "
                f"got {materialized_as!r}"
            )
        if materialized_as in self._builder.stores:
            raise TopologyError(f"a state store named {materialized_as!r} already exists")
        return materialized_as

    def _kv_store(self, materialized_as: str | None, prefix: str) -> str:
        name = self._store_name(materialized_as, prefix)
        return self._builder.add_store(StoreSpec(name, lambda: KeyValueStore(name)))

    # ---------------------------------------------------------------- DSL
    def stream(
        self,
        topics: str | Sequence[str],
        *,
        key_serde: object = None,
        value_serde: object = None,
    ) -> KStream:
        """A KStream of one topic or several (their records interleaved by timestamp)."""
        names = [topics] if isinstance(topics, str) else list(topics)
        if not names:
            raise TopologyError("stream() needs at least one topic")
        for name in names:
            self._check_topic_name(name)
        ks, vs = self._serdes(key_serde, value_serde, f"stream({topics!r})")
        node = self._builder.add_source(names, ks, vs, lambda: SourceProcessor(ks, vs))
        return KStream(self, node)

    def table(
        self,
        topic: str,
        *,
        key_serde: object = None,
        value_serde: object = None,
        materialized_as: str | None = None,
    ) -> KTable:
        """A KTable of ``topic``: each record upserts its key, ``None`` deletes."""
        self._check_topic_name(topic)
        ks, vs = self._serdes(key_serde, value_serde, f"table({topic!r})")
        source = self._builder.add_source(
            [topic], ks, vs, lambda: SourceProcessor(ks, vs), prefix="KTABLE-SOURCE"
        )
        store = self._kv_store(materialized_as, f"{topic}-STATE-STORE")
        node = self._builder.add_processor(
            "KTABLE-SOURCE", lambda: KTableSource(store), [source], (store,)
        )
        return KTable(self, node, _store_getter(store), (store,), store)

    def global_table(
        self,
        topic: str,
        *,
        key_serde: object = None,
        value_serde: object = None,
        materialized_as: str | None = None,
    ) -> GlobalKTable:
        """A table of every partition of ``topic``, complete in every instance."""
        self._check_topic_name(topic)
        if topic in self._globals:
            return self._globals[topic]
        ks, vs = self._serdes(key_serde, value_serde, f"global_table({topic!r})")
        name = self._store_name(materialized_as, f"{topic}-GLOBAL-STORE")
        self._builder.add_store(global_store_spec(name, topic, ks, vs))
        table = self._globals[topic] = GlobalKTable(self, topic, name, ks, vs)
        return table

    def add_state_store(
        self,
        name: str,
        kind: str = "kv",
        *,
        logged: bool = True,
        window_size_ms: int | None = None,
        retention_ms: int | None = None,
    ) -> str:
        """A store for ``KStream.process`` processors: ``"kv"``, ``"window"`` (needs
        ``window_size_ms`` and ``retention_ms``) or ``"session"`` (needs ``retention_ms``)."""
        name = self._store_name(name, "")
        make: Callable[[], StateStore]
        if kind == "kv":

            def make() -> StateStore:
                return KeyValueStore(name, logged=logged)
        elif kind == "window":
            if window_size_ms is None or retention_ms is None:
                raise TopologyError("a window store needs window_size_ms and retention_ms")
            size, keep = window_size_ms, retention_ms

            def make() -> StateStore:
                return WindowStore(name, window_size_ms=size, retention_ms=keep, logged=logged)
        elif kind == "session":
            if retention_ms is None:
                raise TopologyError("a session store needs retention_ms")
            keep = retention_ms

            def make() -> StateStore:
                return SessionStore(name, retention_ms=keep, logged=logged)
        else:
            raise TopologyError(f"kind must be 'kv', 'window' or 'session', got {kind!r}")
        return self._builder.add_store(StoreSpec(name, make, logged=logged))

    # ------------------------------------------------------------ running
    def build(self) -> Topology:
        """Freeze and return the topology (``start`` and ``TestDriver`` call this)."""
        with self._lock:
            if self._topology is None:
                self._topology = self._builder.build()
            return self._topology

    def describe(self) -> str:
        return self.build().describe()

    @property
    def state(self) -> str:
        """``CREATED``, ``RUNNING``, ``ERROR`` (a thread died; see ``exception``) or
        ``NOT_RUNNING`` (closed)."""
        if self._closed:
            return "NOT_RUNNING"
        if self._runtime is None:
            return "CREATED"
        return self._runtime.state

    @property
    def exception(self) -> BaseException | None:
        """What stopped a stream thread, if one died."""
        return None if self._runtime is None else self._runtime.exception

    def start(self) -> None:
        """Create internal topics, restore state, and start processing in background
        threads; returns at once. Raises ``TopologyError`` before any I/O on inputs when a
        source or output topic is missing or co-partitioning is violated."""
        with self._lock:
            if self._closed:
                raise TopologyError("this application was closed; make a new StreamsApp")
            if self._runtime is not None:
                raise TopologyError("start() was already called")
        topology = self.build()
        from ._runtime import StreamsRuntime  # noqa: PLC0415 - the runtime imports this module

        runtime = StreamsRuntime(self, topology, self._log_or_path, self._state_dir)
        with self._lock:
            self._runtime = runtime
        runtime.start()

    def close(self, timeout_ms: int | None = None) -> None:
        """Stop processing: commit what was processed, checkpoint stores, leave the group."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            runtime = self._runtime
        if runtime is not None:
            runtime.close(timeout_ms)

    def __enter__(self) -> StreamsApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def store(self, name: str) -> Any:
        """A read-only view of the store ``name`` across this instance's tasks
        (interactive queries)."""
        runtime = self._runtime
        if runtime is None:
            raise TopologyError("the application is not running; start() it first")
        return runtime.store_view(name)

    def metrics(self) -> dict[str, Any]:
        """``state``, ``threads``, ``tasks``, ``processed``, ``dropped`` (by reason),
        ``commits``, and of the restores: ``restored`` (changelog records replayed),
        ``restored_from_checkpoint`` (entries loaded from checkpoints), ``restore_seconds``;
        ``{}`` before ``start()``."""
        runtime = self._runtime
        return {} if runtime is None else runtime.metrics()
