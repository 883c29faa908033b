"""Event sourcing on a topic: ``EventStore``, catch-up ``Subscription``, ``SqliteProjection``.

A topic is a category; a stream is one record key of it (an aggregate id, a str
stored UTF-8); a stream's revision counts its events from 0; a position is a
record's offset in its partition. All of a stream's events live in the partition
the producer's murmur2 hash of the key picks, so one partition's order is the
stream's order. See docs/event_sourcing.md for the guarantees.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from ._config import ConsumerConfig
from ._keyindex import KeyIndex, scan_keys, verify_index
from ._structs import (
    ANY,
    CAUGHT_UP,
    NO_STREAM,
    STREAM_EXISTS,
    Header,
    RecordedEvent,
    Sentinel,
    Snapshot,
    TopicPartition,
)
from .clients._consumer import Consumer
from .clients._partitioner import murmur2_partition
from .errors import (
    ClosedError,
    ConfigError,
    TopicExistsError,
    UnknownTopicError,
    WrongExpectedVersionError,
)
from .storage._codec import prepare_batch

if TYPE_CHECKING:
    from .coordination._manager import LogManager
    from .storage._partition import PartitionLog

__all__ = ["EventStore", "SqliteProjection", "Subscription"]

ExpectedRevision = Union[int, Sentinel]
Position = Union[int, Mapping[int, int], None]
_REVISION_HEADER = "streamlog.revision"
_CONSUMER_CONFIG = ConsumerConfig.from_kwargs({})  # (validated once: the defaults)


def _stream_key(stream: object) -> bytes:
    if not isinstance(stream, str):
        raise TypeError(f"a stream name is a str, not {type(stream).__name__}")
    if not stream:
        raise ValueError("a stream name must not be empty")
    return stream.encode("utf-8", "surrogateescape")


def _stream_name(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _check_expected(stream: str, expected: ExpectedRevision, actual: int | None) -> None:
    if expected is ANY:
        return
    if expected is NO_STREAM:
        ok = actual is None
    elif expected is STREAM_EXISTS:
        ok = actual is not None
    elif isinstance(expected, int) and not isinstance(expected, bool):
        ok = actual == expected
    else:
        raise TypeError(
            "expected_revision must be an int, streamlog.ANY, streamlog.NO_STREAM "
            f"or streamlog.STREAM_EXISTS; got {expected!r}")
    if not ok:
        raise WrongExpectedVersionError(
            f"stream {stream!r} is at revision {actual}, expected {expected!r}",
            stream=stream, expected=expected, actual=actual)


class EventStore:
    """Streams of events in one topic. Create with ``log.event_store(topic)``.

    ``append`` is a conditional append: the expected revision is checked under the
    partition's append lock, after the per-key index has followed every append of
    every process, and before anything is written; of two writers (threads or
    processes) with the same expectation exactly one wins, the other gets
    ``WrongExpectedVersionError`` and wrote nothing. ``read`` goes through the
    per-key index (``_keyindex``): its cost depends on the stream's length, not the
    log's. Events appended by any process are seen by the next call.

    Thread-safe; any number of processes may open stores on the same topic. Appends
    are visible to every process at once and survive a crash of the process; with
    ``sync=True`` each append is also fsynced before it returns (power loss).
    """

    def __init__(self, manager: LogManager, topic: str, *, partitions: int = 1,
                 sync: bool = False) -> None:
        self._manager = manager
        self.topic = topic
        self._sync = bool(sync)
        self._closed = False
        try:
            # Events are the truth: never delete them by age or size.
            manager.create_topic(topic, partitions, {"retention.ms": -1, "retention.bytes": -1})
        except TopicExistsError:
            pass
        meta = manager.catalog.require(topic)
        self._topic_id = meta.id
        self.partitions = meta.partitions
        self._indexes = [KeyIndex(self._plog(p).path) for p in range(self.partitions)]
        self._snapshots: _LatestByKey | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    def _plog(self, partition: int) -> PartitionLog:
        if self._closed:
            raise ClosedError("the event store is closed")
        topic_id, plog = self._manager.partition_entry(self.topic, partition)
        if topic_id != self._topic_id:
            raise UnknownTopicError(f"topic {self.topic!r} was deleted (and created again)")
        return plog

    def partition_of(self, stream: str) -> int:
        """The partition holding ``stream`` (murmur2 of its key, as the producer)."""
        key = _stream_key(stream)
        return murmur2_partition(key, self.partitions) if self.partitions > 1 else 0

    # ------------------------------------------------------------------ writing
    def append(self, stream: str, events: bytes | Sequence[bytes], *,
               expected_revision: ExpectedRevision = ANY,
               headers: Sequence[Header] | None = None) -> int:
        """Append ``events`` (bytes, or a list of bytes written as one batch: all or
        nothing) to ``stream`` if it is at ``expected_revision``; returns the stream's
        new last revision. ``headers`` are given to every event.

        :raises WrongExpectedVersionError: the stream is elsewhere; nothing written.
        """
        key = _stream_key(stream)
        values = [events] if isinstance(events, (bytes, bytearray)) else list(events)
        if not values:
            raise ValueError("append needs at least one event")
        for v in values:
            if not isinstance(v, (bytes, bytearray)):
                raise TypeError(f"an event is bytes, not {type(v).__name__}")
        n = len(values)
        if expected_revision is NO_STREAM or expected_revision is STREAM_EXISTS:
            pass
        elif expected_revision is not ANY and (
                isinstance(expected_revision, bool) or not isinstance(expected_revision, int)):
            _check_expected(stream, expected_revision, None)  # refuses it (TypeError) now
        hdrs = tuple(headers) if headers else None
        batch = prepare_batch(
            [bytes(v) for v in values], [key] * n, int(self._manager.clock() * 1000),
            [hdrs] * n if hdrs else None)
        partition = self.partition_of(stream)
        plog = self._plog(partition)
        index = self._indexes[partition]
        held = False
        before = 0

        def precondition(log: PartitionLog) -> None:
            nonlocal held, before
            index.lock.acquire()
            held = True
            index.caught_up(log)  # every process's appends, up to the locked tail
            before = index.count(key)
            _check_expected(stream, expected_revision, before - 1 if before else None)

        try:
            result = plog.append_many((batch,), sync=self._sync, precondition=precondition)[0]
            index.applied(key, result.base_offset, n)
        finally:
            if held:
                index.lock.release()
        with index.lock:
            index.maybe_flush()
        return before + n - 1

    # ------------------------------------------------------------------ reading
    def revision(self, stream: str) -> int | None:
        """The stream's last revision (None: no event), as of now in every process."""
        key = _stream_key(stream)
        partition = self.partition_of(stream)
        index = self._indexes[partition]
        with index.lock:
            index.caught_up(self._plog(partition))
            n = index.count(key)
        return n - 1 if n else None

    def read(self, stream: str, from_revision: int = 0,
             to_revision: int | None = None) -> list[RecordedEvent]:
        """Events ``from_revision..to_revision`` (inclusive; None: to the last) of
        ``stream``, in order; ``[]`` for a stream with none there."""
        key = _stream_key(stream)
        if isinstance(from_revision, bool) or not isinstance(from_revision, int) \
                or from_revision < 0:
            raise ValueError(f"from_revision must be an int >= 0; got {from_revision!r}")
        if to_revision is not None and (isinstance(to_revision, bool)
                                        or not isinstance(to_revision, int)):
            raise ValueError(f"to_revision must be an int or None; got {to_revision!r}")
        last = 2**62 if to_revision is None else to_revision
        partition = self.partition_of(stream)
        plog = self._plog(partition)
        index = self._indexes[partition]
        with index.lock:
            offsets = index.offsets(plog, key, from_revision, last)
        return self._fetch(plog, partition, stream, from_revision, offsets)

    def _fetch(self, plog: PartitionLog, partition: int, stream: str, first: int,
               offsets: list[int]) -> list[RecordedEvent]:
        out: list[RecordedEvent] = []
        batch_cols: Any = None
        batch_range = range(0)
        for i, offset in enumerate(offsets):
            if offset not in batch_range:
                # the batch holding it (whole: events appended together share one)
                batch = plog.read(offset, 1)[0]
                batch_cols = batch.decode(plog.path)
                batch_range = range(batch.base_offset, batch.next_offset)
            offs, stamps, _keys, values, heads = batch_cols
            j = offset - batch_range.start if type(offs) is range else offs.index(offset)
            ts = stamps if isinstance(stamps, int) else stamps[j]
            out.append(RecordedEvent(stream, first + i, partition, offset, ts, values[j] or b"",
                                     () if heads is None else heads[j]))
        return out

    def events_after(self, partition: int, position: int, limit: int = 1000,
                     stream: str | None = None) -> list[RecordedEvent]:
        """Up to ``limit`` events of ``partition`` after offset ``position`` (-1: from
        the start), with their revisions, without waiting."""
        plog = self._plog(partition)
        index = self._indexes[partition]
        want = None if stream is None else _stream_key(stream)
        out: list[RecordedEvent] = []
        offset = max(position + 1, plog.log_start_offset)
        revs: dict[bytes, int] = {}
        while len(out) < limit:
            batches = plog.read(offset, 1 << 20)
            if not batches:
                break
            for batch in batches:
                if batch.is_control:
                    continue
                offs, stamps, keys, values, heads = batch.decode(plog.path)
                if keys is None:
                    continue
                for j, o in enumerate(offs):
                    k = keys[j]
                    if o < offset or k is None or (want is not None and k != want):
                        continue
                    if len(out) >= limit:
                        break
                    rev = revs.get(k)
                    if rev is None:
                        with index.lock:
                            rev = index.revision_of(plog, k, o)
                    else:
                        rev += 1
                    revs[k] = rev
                    out.append(RecordedEvent(
                        _stream_name(k), rev, partition, o,
                        stamps if isinstance(stamps, int) else stamps[j], values[j] or b"",
                        () if heads is None else heads[j]))
            offset = batches[-1].next_offset
        return out

    def subscribe(self, from_position: Position = None, *,
                  stream: str | None = None) -> Subscription:
        """A catch-up subscription: the events after ``from_position`` (an offset, or
        ``{partition: offset}``; None: from the beginning), then one ``CAUGHT_UP``,
        then live events of any process. ``stream``: only that stream's events."""
        return Subscription(self, from_position, stream)

    # ------------------------------------------------------------------ snapshots
    @property
    def snapshot_topic(self) -> str:
        return f"{self.topic}.snapshots"

    def _snapshot_follower(self) -> _LatestByKey:
        with self._lock:
            if self._snapshots is None:
                name = self.snapshot_topic
                try:
                    self._manager.create_topic(name, 1, {"cleanup.policy": "compact"})
                except TopicExistsError:
                    pass
                except ConfigError:
                    # no compaction in this build: keep every snapshot (latest wins)
                    try:
                        self._manager.create_topic(name, 1, {"retention.ms": -1})
                    except TopicExistsError:
                        pass
                self._snapshots = _LatestByKey(self._manager, name)
            return self._snapshots

    def save_snapshot(self, stream: str, revision: int, state: bytes) -> None:
        """Save ``state``: ``stream`` folded up to and including ``revision``."""
        key = _stream_key(stream)
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise ValueError(f"revision must be an int >= 0; got {revision!r}")
        if not isinstance(state, (bytes, bytearray)):
            raise TypeError(f"state is bytes, not {type(state).__name__}")
        follower = self._snapshot_follower()
        batch = prepare_batch([bytes(state)], [key], int(self._manager.clock() * 1000),
                              [((_REVISION_HEADER, str(revision).encode()),)])
        follower.plog().append(batch, sync=self._sync)

    def load_snapshot(self, stream: str) -> Snapshot | None:
        """The latest snapshot saved for ``stream`` by any process, or None."""
        key = _stream_key(stream)
        found = self._snapshot_follower().get(key)
        if found is None:
            return None
        value, headers = found
        revision = next(int(v or b"0") for k, v in headers if k == _REVISION_HEADER)
        return Snapshot(stream, revision, value)

    # ------------------------------------------------------------------ lifecycle
    def check_index(self) -> list[str]:
        """Compare every partition's index file with its log; returns the differences
        (empty: they agree). A damaged index is harmless (rebuilt), but worth knowing."""
        problems: list[str] = []
        for p in range(self.partitions):
            plog = self._plog(p)
            problems += [f"partition {p}: {m}" for m in verify_index(plog.path, plog)]
        return problems

    def flush_index(self) -> None:
        """Write every partition's index up to the log end (done on its own as it goes)."""
        for p, index in enumerate(self._indexes):
            with index.lock:
                index.flush(self._plog(p))

    def close(self) -> None:
        """Write the index and release its files. Idempotent."""
        if self._closed:
            return
        try:
            if not self._manager.closed:
                self.flush_index()
        finally:
            self._closed = True
            for index in self._indexes:
                index.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LatestByKey:
    """The offset of the latest record per key of a one-partition topic, followed from
    its start (memory: one offset per key). Thread-safe (one lock)."""

    def __init__(self, manager: LogManager, topic: str) -> None:
        self._manager = manager
        self._topic = topic
        self._next = 0
        self._latest: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def plog(self) -> PartitionLog:
        return self._manager.partition(self._topic, 0)

    def get(self, key: bytes) -> tuple[bytes, tuple[Header, ...]] | None:
        plog = self.plog()
        with self._lock:
            end = plog.end_offset
            for offset, k in scan_keys(plog, self._next, end):
                self._latest[k] = offset
            self._next = end
            latest = self._latest.get(key)
        if latest is None:
            return None
        batch = plog.read(latest, 1)[0]
        for o, _ts, _k, value, headers in batch.records(plog.path):
            if o == latest:
                return value or b"", headers
        return None


class Subscription:
    """A catch-up subscription (``EventStore.subscribe``): history, one ``CAUGHT_UP``,
    then live events, as ``RecordedEvent`` items of the iterator or of ``poll``; after
    live events, one more ``CAUGHT_UP`` each time it is at the end again (API.md:
    "one CAUGHT_UP marker each time it reaches the end"), never two in a row.

    It reads through a ``Consumer``, which arms a doorbell before its last look for
    records and then sleeps on it: an append by any process after that look rings
    it, so no wake-up is lost. ``CAUGHT_UP`` comes once every event appended before
    the subscription reached the end offsets it measured has been delivered.

    Not thread-safe, except ``close()``, which ends a blocked iteration.
    """

    def __init__(self, store: EventStore, from_position: Position, stream: str | None) -> None:
        self._store = store
        self._stream = None if stream is None else _stream_key(stream)
        parts = (list(range(store.partitions)) if stream is None
                 else [store.partition_of(stream)])
        starts: dict[int, int] = {}
        if from_position is None:
            starts = {p: -1 for p in parts}
        elif isinstance(from_position, Mapping):
            starts = {p: int(from_position.get(p, -1)) for p in parts}
        elif isinstance(from_position, int) and not isinstance(from_position, bool):
            if store.partitions != 1 and stream is None:
                raise ValueError("a store of several partitions takes {partition: offset}")
            starts = {p: from_position for p in parts}
        else:
            raise TypeError(f"from_position must be an int, a mapping or None; "
                            f"got {from_position!r}")
        self._consumer = Consumer(store._manager, enable_auto_commit=False)
        tps = [TopicPartition(store.topic, p) for p in parts]
        self._consumer.assign(tps)
        for tp in tps:
            start = max(starts[tp.partition] + 1, store._plog(tp.partition).log_start_offset)
            self._consumer.seek(tp, start)
        self._ends: dict[TopicPartition, int] | None = self._consumer.end_offsets(tps)
        self._revs: dict[bytes, int] = {}
        self._tps = tps
        self._behind = False  # live events delivered since the last CAUGHT_UP
        self._closed = False

    def _convert(self, records: Mapping[TopicPartition, list[Any]]) -> list[Any]:
        out: list[Any] = []
        store = self._store
        for tp, recs in records.items():
            index = store._indexes[tp.partition]
            for r in recs:
                k = r.key
                if k is None or (self._stream is not None and k != self._stream):
                    continue
                rev = self._revs.get(k)
                if rev is None:
                    with index.lock:
                        rev = index.revision_of(store._plog(tp.partition), k, r.offset)
                else:
                    rev += 1
                self._revs[k] = rev
                out.append(RecordedEvent(_stream_name(k), rev, tp.partition, r.offset,
                                         r.timestamp, r.value or b"", r.headers))
        return out

    def poll(self, timeout_ms: float = 0) -> list[RecordedEvent | Sentinel]:
        """The next items (events, or ``CAUGHT_UP`` when the end is reached); waits up
        to ``timeout_ms`` for live events. ``[]`` after ``close()``."""
        if self._closed:
            return []
        ends = self._ends
        if ends is not None:
            # catching up: never wait, and say so once every end is reached
            out: list[Any] = self._convert(self._consumer.poll(0))
            if not out and all(self._consumer.position(tp) >= e for tp, e in ends.items()):
                self._ends = None
                out.append(CAUGHT_UP)
            return out
        if self._behind:
            # live events went out: say when the end is reached again, without first
            # waiting out a timeout
            out = self._convert(self._consumer.poll(0))
            if out:
                return out
            ends = self._consumer.end_offsets(self._tps)
            if all(self._consumer.position(tp) >= e for tp, e in ends.items()):
                self._behind = False
                return [CAUGHT_UP]
        out = self._convert(self._consumer.poll(int(timeout_ms)))
        if out:
            self._behind = True
        return out

    def __iter__(self) -> Iterator[RecordedEvent | Sentinel]:
        while not self._closed:
            yield from self.poll(1000)

    def close(self) -> None:
        """End the subscription (from any thread; a blocked iteration returns)."""
        self._closed = True
        self._consumer.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Apply = Callable[[sqlite3.Connection, RecordedEvent], None]


class SqliteProjection:
    """A read model in a SQLite file, kept up with an ``EventStore``.

    ``apply(conn, event)`` updates the read model with one event; the events of a
    ``run_once`` and the projection's position (the last offset applied, per
    partition, in table ``streamlog_projection``) are committed in one SQLite
    transaction, so after a crash the read model and its position agree: it resumes
    exactly after the last event it applied. ``rebuild`` starts over from any position
    (``reset(conn)`` clears the read model in the same transaction).

    One projection object per thread; several processes may share the file (SQLite
    locks it), but only one should run a projection of a given ``name``.
    """

    def __init__(self, path: str | os.PathLike[str], store: EventStore, apply: Apply, *,
                 name: str = "projection") -> None:
        self.store = store
        self.name = name
        self._apply = apply
        self.conn = sqlite3.connect(os.fspath(path), timeout=60, isolation_level=None)
        self.conn.execute("CREATE TABLE IF NOT EXISTS streamlog_projection "
                          "(name TEXT PRIMARY KEY, positions TEXT NOT NULL)")

    @property
    def position(self) -> dict[int, int]:
        """The last offset applied per partition (-1: none)."""
        row = self.conn.execute("SELECT positions FROM streamlog_projection WHERE name=?",
                                (self.name,)).fetchone()
        stored = {} if row is None else {int(k): int(v) for k, v in json.loads(row[0]).items()}
        return {p: stored.get(p, -1) for p in range(self.store.partitions)}

    def _save(self, positions: Mapping[int, int]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO streamlog_projection VALUES (?, ?)",
                          (self.name, json.dumps({str(k): v for k, v in positions.items()})))

    def run_once(self, max_events: int = 1000) -> int:
        """Apply up to ``max_events`` new events (one transaction); returns how many."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            positions = self.position
            applied = 0
            for p in range(self.store.partitions):
                for event in self.store.events_after(p, positions[p], max_events - applied):
                    self._apply(conn, event)
                    positions[p] = event.offset
                    applied += 1
            if applied:
                self._save(positions)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return applied

    def run(self, *, until_caught_up: bool = True, timeout_ms: float = 1000) -> int:
        """Apply events until none is left (``until_caught_up``), else also wait up to
        ``timeout_ms`` for more after catching up. Returns how many were applied."""
        total = 0
        while True:
            n = self.run_once()
            total += n
            if n:
                continue
            if until_caught_up:
                return total
            with self.store.subscribe(self.position) as sub:
                deadline = time.monotonic() + timeout_ms / 1000
                while time.monotonic() < deadline:
                    if any(item is not CAUGHT_UP for item in sub.poll(
                            max(0.0, (deadline - time.monotonic()) * 1000))):
                        break
                else:
                    return total

    def rebuild(self, from_position: Position = None,
                reset: Callable[[sqlite3.Connection], None] | None = None) -> int:
        """Start over after ``from_position`` (None: the beginning): ``reset(conn)`` and
        the new position commit together; then ``run()``. Returns events applied."""
        if from_position is None:
            positions = {p: -1 for p in range(self.store.partitions)}
        elif isinstance(from_position, Mapping):
            positions = {p: int(from_position.get(p, -1)) for p in range(self.store.partitions)}
        else:
            positions = {p: int(from_position) for p in range(self.store.partitions)}
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if reset is not None:
                reset(self.conn)
            self._save(positions)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return self.run()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SqliteProjection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
