"""The Producer: Kafka's producer API over a local data directory.

Protocol:

1. ``send`` checks its arguments (misuse raises here), serializes, picks the
   partition, and appends the record to that partition's open batch in the
   accumulator (columns of keys, values, timestamps, headers). It returns a
   future at once; errors of the send itself (unknown topic or partition,
   record too large, buffer exhausted after ``max_block_ms``, the topic's
   metadata unreadable) arrive through the future, as in Kafka.
2. A batch is ready when it holds ``batch_size`` bytes, when it is
   ``linger_ms`` old, when a ``send`` waits for ``buffer_memory`` space, or
   when ``flush``/``close`` asks. With ``linger_ms=0``
   every open batch is ready at once: the sender takes whatever has queued
   while it was busy, so batches grow by themselves under load.
3. One sender thread per producer drains ready batches, encodes them, appends
   each partition's batches under one lock hold, and, with ``acks="all"``,
   syncs every touched partition once for all of them (group commit). It then
   completes the futures and runs their callbacks, in send order per partition.
4. Inline append: with ``linger_ms=0`` and ``acks`` 0 or 1, a ``send`` that finds
   nothing pending (no record queued or being written), at least
   ``_INLINE_GAP`` seconds after the last write ended, appends its record
   itself, in the caller's thread, before it returns (its future is then done).
   Handing a lone record to the sender thread costs a thread wake-up and GIL
   hand-overs, most of a consumer's latency at a low rate; under load, sends
   find records pending, or come within the gap of the last write's end, and
   batch as above.

Acknowledgement levels (see docs/producer.md):

- ``acks=0``: the future is done when ``send`` returns (offset -1). Records
  still in the producer's memory are lost if the process dies.
- ``acks=1`` (default): done once the batch is in the partition's shared
  mapping: visible to every process, survives a crash of this process.
- ``acks="all"`` (or -1): done once the batch is on stable storage
  (fdatasync), surviving power loss.

Thread-safe: one producer may be shared by many threads.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._config import INT64_MAX, ProducerConfig, next_client_id, short_repr, wait_seconds
from .._names import check_name, check_topic_name
from .._structs import OffsetAndMetadata, TopicPartition
from ..coordination._offsets import check_offsets
from ..errors import (
    ClosedError,
    IllegalStateError,
    InvalidRecordError,
    KafkaTimeoutError,
    MetadataCorruptError,
    RecordTooLargeError,
    StreamlogError,
    UnknownPartitionError,
    UnknownTopicError,
)
from ..storage._codec import COMPRESSION_NONE, COMPRESSION_ZSTD, PreparedBatch, prepare_batch
from ..storage._partition import PartialAppendError
from ..storage._producer_state import next_sequence
from ._future import BatchResult, FutureRecordMetadata, failed_future
from ._handle import PathOrLog, resolve
from ._partitioner import Partitioner, make_partitioner
from ._transactions import ConsumerGroupMetadata, TransactionManager

if TYPE_CHECKING:
    from ..storage._partition import PartitionLog

__all__ = ["Producer"]

_log = logging.getLogger("streamlog.producer")

_RECORD_OVERHEAD = 16  # per-record bytes counted against batch_size and buffer_memory
_BATCH_HEADER = 68  # a frame's header, outside what send counts
_time = time.time
_DONE = BatchResult()  # the one result of every acks=0 future
_DONE.complete(-1, None)
_METADATA_TTL = 1.0
# Reading a topic's catalog entry failed: an error of the send, reported through its future.
_METADATA_IO_ERRORS = (OSError, MetadataCorruptError)
# Largest timestamp a batch can store: base and max timestamp are int64 header fields
# (the per-record deltas from the base, msgpack ints, then fit as well).
_MAX_TIMESTAMP = INT64_MAX
# Seconds after the end of the last write from which a send may append inline (step 4
# of the module doc): several times an inline append's own cost, so that a stream of
# sends fast enough to batch never pays one append per record in the caller's thread.
_INLINE_GAP = 200e-6


class _Batch:
    """An open batch of one partition: records as columns, plus its shared result."""

    __slots__ = (
        "created",
        "headers",
        "keys",
        "nbytes",
        "partition",
        "result",
        "stamps",
        "topic",
        "values",
    )

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.stamps: list[int] = []
        self.headers: list[Sequence[tuple[str, bytes | None]] | None] | None = None
        self.nbytes = 0
        self.created = time.monotonic()
        self.result = BatchResult()


class _TopicInfo:
    """What ``send`` needs to know of a topic, re-read from the catalog every second."""

    __slots__ = ("batch_limit", "compacted", "expires", "limit", "partitions")

    def __init__(
        self, partitions: int, limit: int, batch_limit: int, compacted: bool = False
    ) -> None:
        self.partitions = partitions
        self.compacted = compacted  # keyless records are refused (InvalidRecordError)
        self.limit = limit  # largest record (bytes as counted by send) that fits a batch
        self.batch_limit = batch_limit  # bytes after which a batch is closed
        self.expires = _time() + _METADATA_TTL


class _Outcome:
    """What one ``_write`` did to the batches of one partition."""

    __slots__ = ("done", "error", "group", "plog", "topic_id")

    def __init__(self, group: list[_Batch]) -> None:
        self.group = group
        self.topic_id = ""  # the incarnation of the topic written to ("" if none)
        self.plog: PartitionLog | None = None
        # (base offset, append time or -1) of each batch appended, in order; the
        # batches after them failed with ``error``
        self.done: list[tuple[int, int]] = []
        self.error: BaseException | None = None


class Producer:
    """Publishes records to topics of a data directory. Create with ``log.producer(**config)``
    or ``streamlog.Producer(path_or_log, **config)``.

    Configuration (Kafka's names in snake_case; defaults as in kafka-python):
    ``acks`` (0, 1, "all"; default 1), ``linger_ms`` (0), ``batch_size``
    (16384), ``compression_type`` (None or "zstd"), ``key_serializer``,
    ``value_serializer``, ``partitioner`` ("murmur2", "crc32", "round_robin",
    or a callable ``(key_bytes, all_partitions, available_partitions) -> int``),
    ``max_request_size`` (1 MiB), ``buffer_memory`` (32 MiB), ``max_block_ms``
    (60000), ``enable_idempotence``, ``transactional_id``,
    ``transaction_timeout_ms`` (60000), ``client_id``.

    Idempotence (``enable_idempotence=True``, implied by a ``transactional_id``;
    needs ``acks="all"``, the default then): the producer gets an id unique in
    the data directory and numbers its batches per partition, so a batch written
    twice is stored once. Transactions: ``init_transactions()`` once, then
    ``begin_transaction()``, sends, ``send_offsets_to_transaction()``, and
    ``commit_transaction()`` or ``abort_transaction()``; see docs/transactions.md.
    """

    def __init__(self, path_or_log: PathOrLog, **config: Any) -> None:
        cfg = self._config = ProducerConfig.from_kwargs(config)
        # copies of what send() reads on every record
        self._acks = cfg.acks
        self._linger = cfg.linger_ms / 1000
        self._batch_size = max(1, cfg.batch_size)
        self._max_request_size = cfg.max_request_size
        self._buffer_memory = cfg.buffer_memory
        self._max_block = cfg.max_block_ms / 1000
        self._compression = COMPRESSION_ZSTD if cfg.compression_type == "zstd" else COMPRESSION_NONE
        self._key_serializer = cfg.key_serializer
        self._value_serializer = cfg.value_serializer
        self.client_id: str = cfg.client_id or next_client_id("producer")
        self._builtin_partitioner = isinstance(cfg.partitioner, str)
        self._partitioner: Partitioner = make_partitioner(
            cfg.partitioner, batch_size=self._batch_size
        )
        # the data directory's manager: shared with the Log, or our own for a path
        self._log, self._owns_log = resolve(path_or_log)
        # producer id, epoch, sequences and transaction state (None: plain producer)
        self._txn: TransactionManager | None = None
        if cfg.enable_idempotence:
            try:
                self._txn = TransactionManager(
                    self._log.transactions(), cfg.transactional_id, cfg.transaction_timeout_ms
                )
            except BaseException:
                if self._owns_log:
                    self._log.close()
                raise
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # sender waits for work
        self._space = threading.Condition(self._lock)  # send waits for buffer space
        self._idle = threading.Condition(self._lock)  # flush waits for completion
        self._open: dict[tuple[str, int], _Batch] = {}
        self._full: list[_Batch] = []
        self._buffered = 0
        self._pending_records = 0  # sent, not yet completed
        self._flushing = 0
        self._space_waiters = 0  # sends blocked on buffer_memory: every batch is ready
        # a send is appending inline: the sender leaves queued batches alone until it is
        # done, so a later record of the same partition cannot overtake it
        self._inline: _Batch | None = None
        self._may_inline = cfg.linger_ms == 0 and cfg.acks != "all"
        self._last_done = 0.0  # time.time() when the last write completed
        self._closed = False
        self._stopping = False
        # why the sender thread died, if it did: every later send raises it (see _run)
        self._dead: BaseException | None = None
        self._topics: dict[str, _TopicInfo] = {}
        # streamlog.aio: called (outside the lock, in the thread that completed them)
        # each time records are completed and their buffer space freed; see _watch
        self._release_hooks: tuple[Callable[[], None], ...] = ()
        self._sender = threading.Thread(
            target=self._run, name=f"streamlog-sender-{self.client_id}", daemon=True
        )
        self._sender.start()

    # ------------------------------------------------------------------ metadata

    def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of ``topic``.

        :raises UnknownTopicError: no such topic.
        """
        self._check_open()
        return set(range(self._refresh_topic(topic).partitions))

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("cannot send after the producer has been closed")

    # ------------------------------------------------------------------ send
    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> FutureRecordMetadata:
        """Queue one record; returns a future resolving to ``RecordMetadata``.

        Raises at once for misuse: a closed producer (``ClosedError``), a key or
        value that is not bytes without a serializer, a bad partition,
        timestamp or header type (``TypeError``/``ValueError``; a timestamp
        must be in 0..2**63-1, an int64 as stored), an invalid topic name
        (``InvalidTopicError``), a dead sender thread (``IllegalStateError``,
        naming the cause). Everything else arrives through the
        future: ``UnknownTopicError``, ``UnknownPartitionError``,
        ``RecordTooLargeError``, ``InvalidRecordError`` (no key, compacted topic),
        ``KafkaTimeoutError`` (buffer full for ``max_block_ms``), and I/O errors
        reading the topic's metadata (``StorageIOError``, ``MetadataCorruptError``).
        """
        # One function on purpose: it runs once per record, and splitting it into
        # helpers costs a call each (measured ~0.1-0.2 us of a ~1.5 us send).
        # The common case (bytes in, no serializer, no headers, no explicit
        # partition or timestamp) runs straight through; every rarer case
        # takes a branch. This is the per-record budget of the producer.
        if self._closed:
            raise ClosedError("cannot send after the producer has been closed")
        if self._key_serializer is not None and key is not None:
            key = self._key_serializer(key)
        if self._value_serializer is not None and value is not None:
            value = self._value_serializer(value)
        size = _RECORD_OVERHEAD
        if key is not None:
            if type(key) is not bytes:
                key = _as_bytes("key", key)
            size += len(key)
        if value is not None:
            if type(value) is not bytes:
                value = _as_bytes("value", value)
            size += len(value)
        now = _time()
        if timestamp_ms is None:
            timestamp_ms = int(now * 1000)
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms <= _MAX_TIMESTAMP:
            _check_timestamp(timestamp_ms)
        if headers is not None:
            headers = _check_headers(headers)
            for hk, hv in headers:
                # header keys are stored as UTF-8: count bytes, not characters
                size += len(hk.encode()) + (len(hv) if hv is not None else 0) + 4
            if not headers:
                headers = None
        info = self._topics.get(topic)
        if info is None or now > info.expires:
            try:
                info = self._refresh_topic(topic)
            except (UnknownTopicError, *_METADATA_IO_ERRORS) as e:
                # unknown, or its catalog entry unreadable: errors of the send, not misuse
                return self._failed(topic, -1 if partition is None else partition, timestamp_ms, e)
        if partition is None:
            if info.partitions == 1 and self._builtin_partitioner:
                partition = 0  # what every built-in partitioner answers, without hashing
            else:
                partition = self._partitioner.partition(topic, key, info.partitions)
                if key is None:
                    self._partitioner.on_batch_bytes(topic, partition, size)
        elif type(partition) is not int or partition < 0 or partition >= info.partitions:
            error = self._check_partition(topic, partition)
            if error is not None:
                return self._failed(topic, partition, timestamp_ms, error)
            info = self._topics[topic]
        if size > info.limit:
            return self._failed(topic, partition, timestamp_ms, self._too_large(size, info))
        if key is None and info.compacted:
            error = InvalidRecordError(f"topic {topic!r} is compacted: every record needs a key")
            return self._failed(topic, partition, timestamp_ms, error)
        if self._txn is not None:
            self._txn.before_send(topic, partition)  # (outside a transaction: raises)
        lock = self._lock
        lock.acquire()  # not `with`: the context-manager protocol costs more than the lock
        try:
            if self._closed:
                raise ClosedError("cannot send after the producer has been closed")
            if self._buffered + size > self._buffer_memory and not self._wait_for_space(size):
                if self._dead is not None:
                    raise self._dead_error()
                return self._failed(
                    topic,
                    partition,
                    timestamp_ms,
                    KafkaTimeoutError(
                        f"buffer_memory ({self._buffer_memory} bytes) still full after "
                        f"max_block_ms ({int(self._max_block * 1000)} ms)"
                    ),
                )
            if self._dead is not None:
                raise self._dead_error()
            tp = (topic, partition)
            inline: _Batch | None = None
            batch: _Batch | None
            if (
                not self._pending_records
                and self._may_inline
                and self._inline is None
                and now - self._last_done >= _INLINE_GAP
            ):
                # nothing pending, so no open batch: this one stays out of _open (and
                # the sender is not woken for it)
                batch = inline = _Batch(topic, partition)
                self._inline = batch
            else:
                batch = self._open.get(tp)
                if batch is None or batch.nbytes + size > info.batch_limit:
                    batch = self._new_batch(tp, batch)
            values = batch.values
            index = len(values)
            values.append(value)
            batch.keys.append(key)
            batch.stamps.append(timestamp_ms)
            if headers is not None or batch.headers is not None:
                if batch.headers is None:
                    batch.headers = [None] * index
                batch.headers.append(headers)
            batch.nbytes += size
            self._buffered += size
            self._pending_records += 1
            if batch.nbytes >= self._batch_size and inline is None:
                del self._open[tp]
                self._full.append(batch)
                self._ready.notify()
            result = batch.result
        finally:
            lock.release()
        if inline is not None:
            self._write_inline(inline)
        if self._acks == 0:
            # fire and forget: nothing to wait for (Kafka reports offset -1)
            return FutureRecordMetadata(_DONE, 0, topic, partition, timestamp_ms)
        return FutureRecordMetadata(result, index, topic, partition, timestamp_ms)

    def _new_batch(self, tp: tuple[str, int], full: _Batch | None) -> _Batch:
        """Under the lock: close ``full`` (if any) and open a new batch for ``tp``."""
        if full is not None and full.values:
            self._full.append(full)
        batch = self._open[tp] = _Batch(tp[0], tp[1])
        # With linger, wake the sender when this is the only open batch: it may be
        # waiting with no deadline at all (other open batches time out earlier).
        if self._linger == 0 or full is not None or len(self._open) == 1:
            self._ready.notify()
        return batch

    def _refresh_topic(self, topic: str) -> _TopicInfo:
        check_topic_name(topic)
        meta = self._log.topic(topic)
        if meta is None:
            self._topics.pop(topic, None)
            raise UnknownTopicError(f"unknown topic {topic!r}")
        limit = min(self._max_request_size, meta.config.max_message_bytes) - _BATCH_HEADER
        limit = min(limit, self._buffer_memory)  # as Kafka: a record must fit buffer_memory
        info = _TopicInfo(
            meta.partitions, limit, min(self._batch_size, limit), meta.config.compacted
        )
        self._topics[topic] = info
        return info

    def _check_partition(self, topic: str, partition: object) -> BaseException | None:
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        if partition < 0:
            raise ValueError(f"partition must be >= 0, not {short_repr(partition)}")
        try:
            info = self._refresh_topic(topic)  # maybe it grew: look again
        except _METADATA_IO_ERRORS as e:
            return e
        if partition >= info.partitions:
            return UnknownPartitionError(
                f"topic {topic!r} has {info.partitions} partitions; "
                f"no partition {short_repr(partition)}"
            )
        return None

    def _too_large(self, size: int, info: _TopicInfo) -> RecordTooLargeError:
        return RecordTooLargeError(
            f"record of about {size} bytes does not fit in a batch of at most "
            f"{info.limit + _BATCH_HEADER} bytes (the smaller of max_request_size, "
            f"{self._max_request_size}, and the topic's max.message.bytes), or is larger "
            f"than buffer_memory ({self._buffer_memory})"
        )

    def _wait_for_space(self, size: int) -> bool:
        """Under the lock: wait until ``size`` more bytes fit, up to max_block_ms."""
        deadline = time.monotonic() + self._max_block
        self._space_waiters += 1  # as Kafka's accumulator: an exhausted buffer ends lingering
        self._ready.notify()
        try:
            while self._buffered + size > self._buffer_memory and self._buffered > 0:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed or self._dead is not None:
                    return False
                self._space.wait(left)
            return True
        finally:
            self._space_waiters -= 1

    # ------------------------------------------------------------------ sender
    def _take_ready(self) -> list[_Batch]:
        """Under the lock: the batches to write now, in send order per partition."""
        ready = self._full
        self._full = []
        now = time.monotonic()
        everything = self._linger == 0 or self._flushing or self._stopping or self._space_waiters
        if self._open:
            if everything:
                ready.extend(self._open.values())
                self._open.clear()
            else:
                for tp, batch in list(self._open.items()):
                    if now - batch.created >= self._linger:
                        ready.append(batch)
                        del self._open[tp]
        return ready

    def _next_deadline(self) -> float | None:
        if not self._open:
            return None
        return min(b.created for b in self._open.values()) + self._linger - time.monotonic()

    def _write_inline(self, batch: _Batch) -> None:
        """Append ``batch``, one record sent while nothing was pending, in the calling
        thread (step 4 of the module doc), then let the sender have what queued meanwhile."""
        try:
            self._append_and_complete([batch])
        except BaseException as e:
            # as the sender does when it dies: a record whose write was cut short fails
            # (it may be in the log all the same), and the interruption propagates
            if not batch.result.done:
                error = IllegalStateError(
                    f"send interrupted by {type(e).__name__} while appending its record"
                )
                error.__cause__ = e
                batch.result.complete(-1, error)
            raise
        finally:
            self._release([batch], inline=True)

    def _run(self) -> None:
        batches: list[_Batch] = []
        try:
            while True:
                batches = []
                with self._lock:
                    while True:
                        if self._inline is not None:
                            # whatever queued behind an inline append waits for it (its
                            # _release notifies); taking it now could reorder a partition
                            self._ready.wait()
                            continue
                        batches = self._take_ready()
                        if batches or (self._stopping and not self._open):
                            break
                        wait = self._next_deadline()
                        self._ready.wait(None if wait is None else max(wait, 0.0))
                if batches:
                    self._write(batches)
                elif self._stopping:
                    return
        except BaseException as e:  # whatever kills the sender is reported, never lost
            self._die(e, batches)

    def _die(self, cause: BaseException, batches: list[_Batch]) -> None:
        """The sender thread is dying of ``cause``: fail every record not yet completed
        (those it was writing, ``batches``, and every queued one), and make every later
        ``send`` raise. Without this, records would wait forever and ``flush`` hang."""
        _log.critical(
            "the sender thread of producer %s died; its pending records fail and later sends raise",
            self.client_id,
            exc_info=cause,
        )
        with self._lock:
            self._dead = cause
            doomed = [*batches, *self._full, *self._open.values()]
            self._full = []
            self._open.clear()
        error = self._dead_error()
        for batch in doomed:
            if not batch.result.done:
                batch.result.complete(-1, error)
        with self._lock:
            # every record sent is now completed (written, or failed just above), but
            # for an inline append still running, which accounts for itself
            inline = self._inline
            self._buffered = 0 if inline is None else inline.nbytes
            self._pending_records = 0 if inline is None else len(inline.values)
            self._space.notify_all()
            self._idle.notify_all()
            hooks = self._release_hooks
        for hook in hooks:
            hook()

    def _dead_error(self) -> IllegalStateError:
        cause = self._dead
        error = IllegalStateError(
            f"the sender thread of producer {self.client_id} died "
            f"({type(cause).__name__}: {cause}); records not yet written failed, and this "
            "producer accepts no more: close it and create another"
        )
        error.__cause__ = cause
        return error

    def _write(self, batches: list[_Batch]) -> None:
        """Append ``batches`` (several per partition at once) and complete each future
        with exactly what happened to its own batch: appended (and, with
        ``acks="all"``, synced) or not. A batch written before a later one of the same
        call failed keeps its offsets; a partition whose sync failed fails only its own
        batches."""
        self._append_and_complete(batches)
        self._release(batches)

    def _append_and_complete(self, batches: list[_Batch]) -> None:
        by_partition: dict[tuple[str, int], list[_Batch]] = {}
        for batch in batches:
            by_partition.setdefault((batch.topic, batch.partition), []).append(batch)
        outcomes = [self._append_group(topic, p, g) for (topic, p), g in by_partition.items()]
        if self._acks == "all":  # every partition appended first, then each synced once
            for outcome in outcomes:
                if outcome.done and outcome.plog is not None:
                    try:
                        outcome.plog.flush()
                    except StreamlogError as e:
                        outcome.done, outcome.error = [], e  # nothing of it is durable
        for outcome in outcomes:
            error = outcome.error
            if error is not None and outcome.topic_id:
                # a topic deleted under our feet is not a failing disk
                error = self._log.explain(outcome.group[0].topic, outcome.topic_id, error)
            done = outcome.done
            for i, batch in enumerate(outcome.group):
                if i < len(done):
                    batch.result.complete(done[i][0], None, done[i][1])
                else:
                    batch.result.complete(-1, error)

    def _release(self, batches: list[_Batch], *, inline: bool = False) -> None:
        """``batches`` are completed: free their buffer space, wake ``flush``."""
        freed = sum(b.nbytes for b in batches)
        count = sum(len(b.values) for b in batches)
        done = _time()
        with self._lock:
            self._buffered -= freed
            self._pending_records -= count
            self._last_done = done
            if inline:
                self._inline = None
                if self._full or self._open:
                    self._ready.notify()
            self._space.notify_all()
            if self._pending_records == 0:
                self._idle.notify_all()
            hooks = self._release_hooks
        for hook in hooks:
            hook()

    def _watch(self, hook: Callable[[], None], *, on: bool) -> None:
        """streamlog.aio's ``flush`` and buffer waits, which await on an event loop
        instead of blocking a thread: while watching, every open batch is ready at once
        (as during ``flush``), and ``hook()`` is called after records are completed (it
        must be cheap and not raise). ``on=False`` undoes one ``on=True``."""
        with self._lock:
            if on:
                self._flushing += 1
                self._release_hooks = (*self._release_hooks, hook)
                self._ready.notify()
            else:
                self._flushing -= 1
                hooks = list(self._release_hooks)
                hooks.remove(hook)
                self._release_hooks = tuple(hooks)

    def _send_batch(
        self,
        topic: str,
        partition: int,
        keys: list[bytes],
        values: list[bytes | None],
        stamps: list[int],
    ) -> list[BatchResult]:
        """streamlog.streams' record collector: queue many records of one partition at
        once, as whole batches behind that partition's open batch (its order is kept).
        One call costs about what one ``send`` does, instead of one per record.

        The caller guarantees what ``send`` checks per record: keys are bytes (never
        None), values bytes or None, timestamps ints in ``0..2**63-1``, no headers,
        no serializers; ``partition`` is checked here. No futures are made: the
        results returned (one per batch) complete as ``send``'s batches do; an error
        of the send (unknown topic or partition, record too large, buffer still full
        after ``max_block_ms``) completes them failed. Misuse raises as ``send`` does
        (a closed producer, a dead sender, a send outside a transaction).
        """
        self._check_open()
        n = len(values)
        if not n:
            return []
        info = self._topics.get(topic)
        try:
            if info is None or _time() > info.expires:
                info = self._refresh_topic(topic)
            if type(partition) is not int or not 0 <= partition < info.partitions:
                error = self._check_partition(topic, partition)
                if error is not None:
                    raise error
                info = self._topics[topic]
        except (UnknownTopicError, UnknownPartitionError, *_METADATA_IO_ERRORS) as e:
            return [self._failed(topic, partition, stamps[0], e)._batch]
        if self._txn is not None:
            self._txn.before_send(topic, partition)  # (outside a transaction: raises)
        limit, batch_limit = info.limit, info.batch_limit
        # record sizes as send counts them, cumulated (C loops: this runs per record)
        vsizes: Iterable[int] = (
            map(len, values)  # type: ignore[arg-type]  # (no None in it)
            if None not in values
            else [0 if v is None else len(v) for v in values]
        )
        sizes = map(operator.add, map(len, keys), vsizes)
        cum = list(
            itertools.accumulate(map(operator.add, sizes, itertools.repeat(_RECORD_OVERHEAD)))
        )
        results: list[BatchResult] = []
        start = 0
        while start < n:
            # the next batch: records up to batch_limit bytes (at least one)
            base = cum[start - 1] if start else 0
            end = bisect.bisect_right(cum, base + batch_limit, start)
            if end == start:  # a record larger than batch_limit: a batch of its own
                end = start + 1
            size = cum[end - 1] - base
            if size > limit:  # one record too large for any batch: it alone fails
                failed = self._failed(topic, partition, stamps[start], self._too_large(size, info))
                results.append(failed._batch)
                start += 1
                continue
            batch = _Batch(topic, partition)
            batch.keys = keys[start:end]  # type: ignore[assignment]
            batch.values = values[start:end]
            batch.stamps = stamps[start:end]
            batch.nbytes = size
            with self._lock:
                if self._closed:
                    raise ClosedError("cannot send after the producer has been closed")
                if self._buffered + size > self._buffer_memory and not self._wait_for_space(
                    size
                ):
                    if self._dead is not None:
                        raise self._dead_error()
                    batch.result.complete(
                        -1,
                        KafkaTimeoutError(
                            f"buffer_memory ({self._buffer_memory} bytes) still full after "
                            f"max_block_ms ({int(self._max_block * 1000)} ms)"
                        ),
                    )
                    results.append(batch.result)
                    start = end
                    continue
                if self._dead is not None:
                    raise self._dead_error()
                tp = (topic, partition)
                before = self._open.pop(tp, None)
                if before is not None:
                    self._full.append(before)  # (never empty: a batch opens with a record)
                self._full.append(batch)
                self._buffered += size
                self._pending_records += end - start
                self._ready.notify()
            results.append(batch.result)
            start = end
        return results

    def _append_group(self, topic: str, partition: int, group: list[_Batch]) -> _Outcome:
        outcome = _Outcome(group)
        try:
            # through the manager every time (it caches the partition logs): it checks
            # the catalog, so a topic deleted, or deleted and created again, by another
            # process is not written to (a cache here would append to deleted files)
            outcome.topic_id, plog = self._log.partition_entry(topic, partition)
            outcome.plog = plog
            txn = self._txn
            if txn is None:
                prepared = [
                    prepare_batch(
                        b.values, b.keys, b.stamps, b.headers, compression=self._compression
                    )
                    for b in group
                ]
            else:
                prepared = self._prepare_idempotent(txn, topic, partition, group)
            try:
                results = plog.append_many(prepared)
            except PartialAppendError as e:
                # the batches appended before the failing one are in the log: they keep
                # their offsets (a retry of them would duplicate them); the rest failed
                results = list(e.appended)
                outcome.error = e.error or e
            if txn is not None:
                txn.advance(topic, partition, sum(len(b.values) for b in group[: len(results)]))
                if outcome.error is not None:
                    txn.send_failed(outcome.error)
            lat = plog.config.message_timestamp_type == "LogAppendTime"
            outcome.done = [(r.base_offset, r.timestamp if lat else -1) for r in results]
        except StreamlogError as e:
            outcome.error = e
            if self._txn is not None:
                self._txn.send_failed(e)
        except Exception as e:  # report anything else through the futures, never lose it
            _log.exception("unexpected error writing to %s-%d", topic, partition)
            outcome.error = e
            if self._txn is not None:
                self._txn.send_failed(e)
        return outcome

    def _failed(
        self, topic: str, partition: int, timestamp_ms: int, error: BaseException
    ) -> FutureRecordMetadata:
        """A send that fails before it is queued: its future, failed; in a transaction,
        which then can only be aborted (as Kafka's ``doSend``)."""
        if self._txn is not None:
            self._txn.send_failed(error)
        return failed_future(topic, partition, timestamp_ms, error)

    def _prepare_idempotent(
        self, txn: TransactionManager, topic: str, partition: int, group: list[_Batch]
    ) -> list[PreparedBatch]:
        """Encode ``group`` with the producer id, epoch and consecutive sequences."""
        seq = txn.sequence(topic, partition)
        prepared = []
        for b in group:
            prepared.append(
                prepare_batch(
                    b.values,
                    b.keys,
                    b.stamps,
                    b.headers,
                    compression=self._compression,
                    transactional=txn.transactional,
                    producer_id=txn.producer_id,
                    producer_epoch=txn.epoch,
                    base_sequence=seq,
                )
            )
            seq = next_sequence(seq, len(b.values))
        return prepared

    # ------------------------------------------------------------------ transactions
    def _transactions(self) -> TransactionManager:
        self._check_open()
        if self._txn is None or not self._txn.transactional:
            raise IllegalStateError(
                "transactions need a producer created with a transactional_id"
            )
        return self._txn

    def init_transactions(self, timeout_ms: int | None = None) -> None:
        """Register the ``transactional_id``: fence older producers with the same id
        (they get ``ProducerFencedError``) and end their open transaction (aborted, or
        completed if it was already committing). Call once, before anything else.

        ``timeout_ms`` is accepted for Kafka's signature; the call does not wait on
        a broker (it takes the coordinator's file lock, up to 30 s).
        """
        _check_timeout(timeout_ms)
        self._transactions().init_transactions()

    def begin_transaction(self) -> None:
        """Start a transaction: records sent from now on are written atomically with
        the offsets sent to it, visible to read_committed consumers at commit."""
        self._transactions().begin_transaction()

    def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        consumer_group_metadata: ConsumerGroupMetadata | str,
    ) -> None:
        """Commit ``offsets`` (the next offset to read, per partition) for the consumer's
        group when the transaction commits, and never if it aborts.

        ``consumer_group_metadata`` is ``consumer.group_metadata()`` (a group id alone
        is accepted, as Kafka's deprecated overload). Refused with
        ``CommitFailedError`` if that consumer is no longer the owner of the
        partitions in that generation (a zombie after a rebalance).
        """
        txn = self._transactions()
        if isinstance(consumer_group_metadata, str):
            group = ConsumerGroupMetadata(check_name("group_id", consumer_group_metadata))
        elif isinstance(consumer_group_metadata, ConsumerGroupMetadata):
            group = consumer_group_metadata
        else:
            raise TypeError(
                "consumer_group_metadata must be consumer.group_metadata() or a group id, "
                f"not {type(consumer_group_metadata).__name__}"
            )
        checked = check_offsets(offsets)
        if checked:
            txn.send_offsets(checked, group)

    def commit_transaction(self, timeout_ms: int | None = None) -> None:
        """Write every record sent in the transaction, then commit it: its records and
        offsets become visible together. If a send of the transaction failed, raises
        ``TransactionAbortedError`` (abort it then). After any other error the call may
        be retried; it completes the same transaction."""
        _check_timeout(timeout_ms)
        self._transactions().end(True, lambda: self.flush(timeout_ms))

    def abort_transaction(self, timeout_ms: int | None = None) -> None:
        """Abort the transaction: read_committed consumers never see its records, and its
        offsets are not committed. Records still queued are written first (and then
        aborted with the rest)."""
        _check_timeout(timeout_ms)
        self._transactions().end(False, lambda: self.flush(timeout_ms))

    # ------------------------------------------------------------------ flush/close
    def flush(self, timeout_ms: int | None = None) -> None:
        """Write everything sent so far and wait until every future is done.

        ``timeout_ms``: any number >= 0; None, ``inf`` or more than a thread can wait
        mean no limit.

        :raises KafkaTimeoutError: not all completed within ``timeout_ms``.
        :raises IllegalStateError: called inside a send callback (it would deadlock).
        :raises ValueError: ``timeout_ms`` is NaN or negative (``TypeError``: not a number).
        """
        timeout = wait_seconds("timeout_ms", timeout_ms)
        if threading.current_thread() is self._sender:
            raise IllegalStateError(
                "flush() inside a send callback is not permitted: it would deadlock"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flushing += 1
            try:
                self._ready.notify()
                while self._pending_records:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise KafkaTimeoutError(
                            f"flush: {self._pending_records} record(s) not completed "
                            f"within {timeout_ms} ms"
                        )
                    self._idle.wait(left)
            finally:
                self._flushing -= 1

    def _purge_queued(self, error: BaseException) -> int:
        """Fail every record still queued (sent, not yet taken by a write) with ``error``
        and drop it: it is never written. Records being written, or written, are left
        alone. For librdkafka's ``purge(in_queue=True)`` in the compatibility shim.
        Returns the number of records purged. (Sequence numbers are given at write time,
        so an idempotent producer has no gap to mend.)"""
        with self._lock:
            doomed = [*self._full, *self._open.values()]
            self._full = []
            self._open.clear()
        if not doomed:
            return 0
        for batch in doomed:
            batch.result.complete(-1, error)
        self._release(doomed)
        return sum(len(b.values) for b in doomed)

    def close(self, timeout_ms: int | None = None) -> None:
        """Flush, stop the sender, and release the data directory if this producer opened it.

        Idempotent. Records not written within ``timeout_ms`` fail with
        ``KafkaTimeoutError``. Inside a send callback it acts as ``close(0)``, as
        in Kafka (waiting there for the sender would wait for ourselves).
        ``timeout_ms`` is checked as ``flush``'s, before anything changes: a refused
        close leaves the producer open.
        """
        timeout = wait_seconds("timeout_ms", timeout_ms)  # checked before anything changes
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if threading.current_thread() is not self._sender:
            try:
                self.flush(timeout_ms)
            except KafkaTimeoutError:
                pass
            txn = self._txn
            if txn is not None and txn.in_transaction:
                # as Kafka's sender does on a graceful close: readers must not wait for
                # the transaction's timeout
                try:
                    txn.end(False, lambda: None)
                except StreamlogError as e:
                    _log.warning("aborting the open transaction on close failed: %s", e)
        with self._lock:
            self._stopping = True
            self._ready.notify()
        if threading.current_thread() is not self._sender:
            self._sender.join(timeout)
        with self._lock:
            leftovers = self._take_ready()
        for batch in leftovers:
            batch.result.complete(
                -1, KafkaTimeoutError("producer closed before the record was written")
            )
        if self._owns_log:
            self._log.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<streamlog.Producer {self.client_id} acks={self._acks!r}>"


def _as_bytes(what: str, data: object) -> bytes:
    if isinstance(data, bytes):  # a bytes subclass: store plain bytes
        return bytes(data)
    raise TypeError(
        f"{what} must be bytes or None, not {type(data).__name__} (or set {what}_serializer)"
    )


def _check_timestamp(timestamp_ms: object) -> None:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
        raise TypeError(f"timestamp_ms must be an int, not {type(timestamp_ms).__name__}")
    if timestamp_ms < 0:
        raise ValueError(f"timestamp_ms must be >= 0, not {short_repr(timestamp_ms)}")
    if timestamp_ms > _MAX_TIMESTAMP:
        raise ValueError(
            f"timestamp_ms must be <= {_MAX_TIMESTAMP} (an int64, as stored); "
            f"got {short_repr(timestamp_ms)}"
        )


def _check_headers(headers: object) -> list[tuple[str, bytes | None]]:
    if isinstance(headers, (str, bytes)) or not isinstance(headers, (list, tuple)):
        raise TypeError("headers must be a list of (str, bytes) pairs")
    out = []
    for item in headers:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"each header must be a (str, bytes) pair, not {short_repr(item)}")
        k, v = item
        if not isinstance(k, str):
            raise TypeError(f"header keys must be str, not {type(k).__name__}")
        if v is not None and not isinstance(v, bytes):
            raise TypeError(f"header values must be bytes or None, not {type(v).__name__}")
        out.append((k, v if v is None or type(v) is bytes else bytes(v)))
    return out


def _check_timeout(timeout_ms: object) -> None:
    if timeout_ms is not None:
        wait_seconds("timeout_ms", timeout_ms)  # (refuses NaN, negatives, non-numbers)
