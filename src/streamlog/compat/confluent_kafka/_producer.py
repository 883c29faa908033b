"""confluent-kafka's ``Producer`` over a streamlog producer.

Delivery callbacks run only inside ``poll()``/``flush()`` (and the transactional calls
that flush), in the calling thread, as librdkafka serves them. As in confluent-kafka, a
delivery report's message has no headers (``headers()`` is None), and ``poll()`` counts
*events*: the reports of one produced batch are one event, as librdkafka's one
delivery-report op per ProduceRequest batch.
"""

from __future__ import annotations

import collections
import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import streamlog
from streamlog.clients._partitioner import murmur2_partition

from .._compression import compression_type
from ._config import Conf, parse
from ._handle import ensure_topic, installation, log_handle, register, unregister
from ._metadata import ClusterMetadata, cluster_metadata
from ._types import (
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
    error_from,
)

__all__ = ["Producer"]

DeliveryCallback = Callable[[KafkaError | None, Message], Any]
# a report ready at once (no write): (callback, error, message)
_Report = tuple[DeliveryCallback | None, KafkaError, Message]
# a message handed to streamlog, awaiting its report: (future, callback, key, value,
# monotonic time of produce (0.0 without a callback), partition asked for)
_Pending = tuple[Any, DeliveryCallback | None, bytes | None, bytes | None, float, int]


class _Purged(Exception):  # noqa: N818 - internal marker, never raised to the application
    """What a record dropped by ``Producer.purge`` fails with (reported as ``_PURGE_QUEUE``)."""


def _seconds(timeout: float | None) -> float | None:
    """confluent's timeouts: float seconds, None or negative = infinite."""
    if timeout is None:
        return None
    t = float(timeout)
    if math.isnan(t):
        raise ValueError("timeout must not be NaN")
    return None if t < 0 or math.isinf(t) else t


def _ms(timeout: float | None) -> int | None:
    t = _seconds(timeout)
    return None if t is None else int(t * 1000)


def _to_bytes(what: str, v: object) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise TypeError(f"expected {what} to be bytes or str, not {type(v).__name__}")


def headers_in(headers: object) -> list[tuple[str, bytes | None]] | None:
    """confluent's headers: a dict or a list of ``(str, bytes|str|None)`` pairs."""
    if headers is None:
        return None
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers  # type: ignore[assignment]
    out: list[tuple[str, bytes | None]] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            raise TypeError("headers must be a dict or a list of (str, value) tuples")
        out.append((item[0], _to_bytes("header value", item[1])))
    return out or None


def _partitioner(name: str) -> str | Callable[..., int]:
    """librdkafka's ``partitioner`` values as streamlog partitioners."""
    if name in ("consistent_random", "crc32"):
        return "crc32"
    if name == "murmur2_random":
        return "murmur2"
    if name == "random":
        return lambda key, all_p, avail: random.choice(avail or all_p)
    if name == "consistent":
        import zlib  # noqa: PLC0415

        return lambda key, all_p, avail: zlib.crc32(key or b"") % len(all_p)
    if name == "murmur2":  # a null key hashes as the empty key
        return lambda key, all_p, avail: murmur2_partition(key or b"", len(all_p))
    raise KafkaException(KafkaError(
        KafkaError._INVALID_ARG,
        f'Invalid value "{name}" for configuration property "partitioner" '
        "(streamlog supports consistent_random, consistent, murmur2, murmur2_random, random)",
    ))


def producer_kwargs(conf: Conf) -> dict[str, Any]:
    """streamlog producer config for a librdkafka producer config."""
    acks = conf.get("acks", "request.required.acks", default=-1)
    acks_map: dict[object, int | str] = {-1: "all", "-1": "all", "all": "all", 0: 0, "0": 0,
                                         1: 1, "1": 1}
    if acks not in acks_map:
        raise KafkaException(KafkaError(
            KafkaError._INVALID_ARG,
            f'Invalid value "{acks}" for configuration property "acks"',
        ))
    kw: dict[str, Any] = {
        "acks": acks_map[acks],
        "partitioner": _partitioner(str(conf.get("partitioner", default="consistent_random"))),
        "linger_ms": conf.get_int("linger.ms", "queue.buffering.max.ms", default=5, high=900000),
        "batch_size": conf.get_int("batch.size", default=1000000, low=1),
        "max_request_size": conf.get_int("message.max.bytes", default=1000000, low=1000,
                                     high=1000000000),
        "buffer_memory": conf.get_int("queue.buffering.max.kbytes", default=1048576, low=1) * 1024,
    }
    codec = str(conf.get_str("compression.type", "compression.codec", default="none"))
    try:  # gzip/snappy/lz4 are stored as zstd (one policy for both shims: _compression)
        kw["compression_type"] = compression_type(
            "none" if codec.lower() == "inherit" else codec.lower()
        )
    except ValueError:
        raise KafkaException(KafkaError(
            KafkaError._INVALID_ARG,
            f'Invalid value "{codec}" for configuration property "compression.type"',
        )) from None
    client_id = conf.get_str("client.id")
    if client_id:
        kw["client_id"] = client_id
    txn_id = conf.get_str("transactional.id")
    if txn_id:
        kw["transactional_id"] = txn_id
        kw["acks"] = "all"
        kw["transaction_timeout_ms"] = conf.get_int("transaction.timeout.ms", default=60000,
                                                low=1000)
    elif conf.get_bool("enable.idempotence", False):
        kw["enable_idempotence"] = True
        kw["acks"] = "all"
    return kw


class Producer:
    """confluent-kafka's ``Producer(config)`` writing to the installed data directory."""

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        conf = parse({**(config or {}), **kwargs}, "producer")
        kw = producer_kwargs(conf)
        self._max_messages = conf.get_int("queue.buffering.max.messages", default=100000, low=0,
                                      high=2147483647)
        self._default_cb: DeliveryCallback | None = (
            conf.callback("on_delivery") or conf.callback("dr_msg_cb") or conf.callback("dr_cb")
        )
        self._only_error = conf.get_bool("delivery.report.only.error", False)
        self._auto_create = conf.get_bool("allow.auto.create.topics", True)
        self._log = log_handle()
        try:
            self._p = self._log.producer(**kw)
        except streamlog.ConfigError as e:
            raise KafkaException(error_from(e)) from e
        # Delivery reports are built by poll()/flush() in the application's thread, from
        # each partition's FIFO of pending messages (streamlog completes a partition's
        # records in order): the sender thread only wakes a waiting poll, once per batch
        # (one done-callback per streamlog batch, not per record).
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._serving = threading.RLock()  # one thread serves reports at a time
        self._ready: collections.deque[_Report] = collections.deque()
        self._pending: dict[tuple[str, int], collections.deque[_Pending]] = {}
        self._last_batch: dict[tuple[str, int], object] = {}
        self._outstanding = 0  # produced, report not served yet (librdkafka's outq_len)
        self._known: dict[str, int] = {}
        self._acks0 = kw["acks"] == 0
        self._inst = installation(self._log)
        register(self)  # uninstall() closes it

    # ----------------------------------------------------------------- produce
    def produce(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        """Queue a message; its delivery report is served by a later ``poll``/``flush``.

        :raises BufferError: ``queue.buffering.max.messages`` messages await delivery.
        :raises KafkaException: unknown partition (``_UNKNOWN_PARTITION``), message too
            large (``MSG_SIZE_TOO_LARGE``), or transactional misuse (``_STATE``).
        """
        if not isinstance(topic, str):
            raise TypeError("topic must be a str")
        cb = on_delivery if on_delivery is not None else callback
        if cb is None:
            cb = self._default_cb
        elif not callable(cb):
            raise TypeError("on_delivery must be callable")
        vbytes = value if value is None or type(value) is bytes else _to_bytes("value", value)
        kbytes = key if key is None or type(key) is bytes else _to_bytes("key", key)
        hdrs = None if headers is None else headers_in(headers)
        if self._outstanding >= self._max_messages:
            raise BufferError(KafkaError(KafkaError._QUEUE_FULL).str())
        count = self._known.get(topic)
        if count is None:
            try:
                exists = ensure_topic(self._log, topic, self._auto_create)
            except streamlog.InvalidTopicError as e:
                raise KafkaException(error_from(e)) from e
            if not exists:
                self._report_now(cb, KafkaError(KafkaError._UNKNOWN_TOPIC),
                                 topic, partition, kbytes, vbytes)
                return
            count = self._known[topic] = len(self._p.partitions_for(topic))
        if partition != -1 and (
            isinstance(partition, bool) or not isinstance(partition, int)
            or not 0 <= partition < count
        ):
            count = self._known[topic] = len(self._p.partitions_for(topic))
            if not isinstance(partition, int) or not 0 <= partition < count:
                raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        inst = self._inst
        stamp = timestamp or None  # (0: now)
        if inst is not None:
            fault = inst.take_fault("produce") if inst._faults["produce"] else None
            if fault is not None:  # injected through kafka_cluster.fail_next
                self._report_now(cb, KafkaError(fault.code, retriable=fault.retriable),
                                 topic, partition, kbytes, vbytes)
                return
            if stamp is None:
                stamp = inst.clock._fixed_ms  # a test set the clock (None: it did not)
        try:
            fut = self._p.send(
                topic, vbytes, kbytes,
                partition=None if partition == -1 else partition,
                timestamp_ms=stamp,
                headers=hdrs,
            )
        except (streamlog.IllegalStateError, streamlog.ClosedError,
                streamlog.TransactionError) as e:
            raise KafkaException(error_from(e)) from e
        where = (topic, fut._partition)
        queue = self._pending.get(where)
        if queue is None:
            queue = self._pending.setdefault(where, collections.deque())
        queue.append((fut, cb, kbytes, vbytes, 0.0 if cb is None else time.monotonic(),
                      partition))
        with self._lock:
            self._outstanding += 1
        batch = fut._batch
        if self._last_batch.get(where) is not batch:  # the first record of a new batch
            self._last_batch[where] = batch
            fut.add_done_callback(self._wake)  # (at once if already done: not under _lock)

    def _wake(self, _fut: object) -> None:
        """A batch completed (on the sender thread): wake a waiting poll/flush."""
        with self._lock:
            self._cv.notify_all()

    def _report_now(
        self, cb: DeliveryCallback | None, err: KafkaError, topic: str, partition: int,
        key: bytes | None, value: bytes | None,
    ) -> None:
        with self._lock:
            self._outstanding += 1
            self._ready.append((cb, err, Message(topic, partition, -1001, key, value, None, err)))
            self._cv.notify_all()

    # ----------------------------------------------------------------- poll/flush
    def _has_reports(self) -> bool:
        """A report is ready to serve (a queued failure, or a completed head record)."""
        if self._ready:
            return True
        return any(queue and queue[0][0]._batch.done for queue in list(self._pending.values()))

    def _serve(self) -> int:
        """Run the ready delivery callbacks, each partition's in produce order; returns
        the number of events served (the reports of one batch are one event)."""
        events = 0
        only_error = self._only_error
        with self._serving:
            ready = self._ready
            while ready:
                cb, err, msg = ready.popleft()
                with self._lock:
                    self._outstanding -= 1
                events += 1
                if cb is not None:
                    cb(err, msg)
            for (topic, _), queue in list(self._pending.items()):
                last: object = None
                while queue:
                    fut, cb, key, value, sent, asked = queue[0]
                    batch = fut._batch
                    if not batch.done:
                        break
                    queue.popleft()
                    with self._lock:
                        self._outstanding -= 1
                    if batch is not last:
                        events += 1
                        last = batch
                    if cb is None:
                        continue
                    # (no headers in delivery reports, as confluent-kafka: its issue #574)
                    exc = batch.error
                    if exc is None:
                        if only_error:
                            continue
                        md = fut.result()
                        cb(None, Message(topic, md.partition, md.offset, key, value, None, None,
                                         (TIMESTAMP_CREATE_TIME, md.timestamp),
                                         time.monotonic() - sent))
                    elif isinstance(exc, _Purged):
                        err = KafkaError(KafkaError._PURGE_QUEUE)
                        cb(err, Message(topic, fut._partition, -1001, key, value, None, err))
                    else:
                        err = error_from(exc)
                        cb(err, Message(topic, asked, -1001, key, value, None, err))
        return events

    def poll(self, timeout: float | None = -1) -> int:
        """Serve delivery reports; waits up to ``timeout`` seconds (None/-1: forever)
        for the first one. Returns the number of events served: as librdkafka, the
        reports of one produced batch count once."""
        wait = _seconds(timeout)
        served = self._serve()
        if served or wait == 0:
            return served
        deadline = None if wait is None else time.monotonic() + wait
        with self._lock:
            while not self._has_reports():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cv.wait(left)
        return self._serve()

    def flush(self, timeout: float | None = -1) -> int:
        """Write every queued message and serve all delivery reports; returns the number
        of messages still awaiting delivery (0 unless ``timeout`` ran out)."""
        wait = _seconds(timeout)
        deadline = None if wait is None else time.monotonic() + wait
        try:
            self._p.flush(None if wait is None else int(wait * 1000))
        except streamlog.KafkaTimeoutError:
            pass
        while True:
            self._serve()
            with self._lock:
                if self._outstanding == 0:
                    return 0
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return self._outstanding
                if not self._has_reports():
                    self._cv.wait(0.05 if left is None else min(left, 0.05))

    def __len__(self) -> int:
        return self._outstanding

    def __bool__(self) -> bool:  # ``if producer:`` must not depend on the queue length
        return True

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """Purge messages not yet delivered, as librdkafka's ``rd_kafka_purge``.

        ``in_queue``: messages still queued (lingering in the producer, not yet being
        written) are dropped, never written; their delivery callbacks get
        ``_PURGE_QUEUE`` at the next ``poll``/``flush``. ``in_flight``: accepted; a
        write under way is local and short, so it completes and reports its real outcome
        (librdkafka, which cannot know whether the broker got it, reports
        ``_PURGE_INFLIGHT``). ``blocking``: accepted; the purge is synchronous.
        With ``acks=0`` nothing is purged (streamlog reports those messages delivered
        when they are produced)."""
        for name, flag in (("in_queue", in_queue), ("in_flight", in_flight),
                           ("blocking", blocking)):
            if not isinstance(flag, (bool, int)):
                raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
        if in_queue and not self._acks0:
            self._p._purge_queued(_Purged("purged from the queue"))

    def list_topics(self, topic: str | None = None, timeout: float | None = -1) -> ClusterMetadata:
        """The cluster's metadata; a missing ``topic`` named here is auto-created unless
        ``allow.auto.create.topics=false`` (librdkafka's producer asks the broker to)."""
        return cluster_metadata(self._log, topic, auto_create=self._auto_create)

    # ----------------------------------------------------------------- transactions
    def _txn(self, fn: Callable[[], None], flush: bool = False) -> None:
        try:
            fn()
        except streamlog.StreamlogError as e:
            raise KafkaException(error_from(e)) from e
        finally:
            if flush:
                self._serve()

    def init_transactions(self, timeout: float | None = None) -> None:
        self._txn(lambda: self._p.init_transactions(_ms(timeout)))

    def begin_transaction(self) -> None:
        self._txn(self._p.begin_transaction)

    def send_offsets_to_transaction(
        self, positions: Iterable[TopicPartition], group_metadata: object,
        timeout: float | None = None,
    ) -> None:
        offsets = {
            streamlog.TopicPartition(tp.topic, tp.partition):
                streamlog.OffsetAndMetadata(tp.offset, tp.metadata or "")
            for tp in positions
        }
        if not isinstance(group_metadata, (streamlog.ConsumerGroupMetadata, str)):
            raise TypeError("group_metadata must be consumer.consumer_group_metadata()")
        self._txn(lambda: self._p.send_offsets_to_transaction(offsets, group_metadata))

    def commit_transaction(self, timeout: float | None = None) -> None:
        self._txn(lambda: self._p.commit_transaction(_ms(timeout)), flush=True)

    def abort_transaction(self, timeout: float | None = None) -> None:
        self._txn(lambda: self._p.abort_transaction(_ms(timeout)), flush=True)

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Accepted and ignored (no network)."""

    def close(self, timeout: float | None = -1) -> int:
        """Not in confluent-kafka (its producer is closed when collected): flush, then
        stop. ``uninstall()`` calls it with no timeout. Returns what was left undelivered."""
        left = self.flush(timeout)
        self._p.close(0)
        unregister(self)
        return left

    def __del__(self) -> None:
        p = getattr(self, "_p", None)
        if p is not None:
            with contextlib.suppress(Exception):  # (at interpreter shutdown)
                p.close(0)
