"""``AIOProducer``: the producer for asyncio, modelled on aiokafka's ``AIOKafkaProducer``.

Built on the sync ``Producer`` (``clients/_producer.py``), whose ``send`` never waits
once the record fits in ``buffer_memory``: with ``linger_ms=0`` and ``acks`` 0 or 1,
a record sent while nothing is pending is appended inline, in the caller's thread
(here the event loop's: a copy into the mapped segment under the partition's lock,
no system call unless another process's reader sleeps), and its future is done when
``send`` returns; otherwise the producer's sender thread writes it (and, for
``acks="all"``, fdatasyncs it, off the loop) and completes its future there. Each
record's ``concurrent`` future is mirrored by an ``asyncio`` future, resolved on the
loop (``call_soon_threadsafe``, one call per burst of completions).

The only waits are done on the loop: ``send`` with ``buffer_memory`` full waits (up to
``max_block_ms``) for records to complete, and ``flush`` for every record to complete,
both woken by the sync producer's release hook (``Producer._watch``). Transaction
commits and aborts, ``init_transactions`` and ``close`` run in a worker thread.

Cancellation: a record is handed to the sync producer in one step, with no ``await``
after it in ``send``; a ``send``/``send_and_wait`` cancelled before that step sent
nothing, one cancelled after it (while waiting for the acknowledgement) sent the
record, which is written as any other (``flush`` waits for it). Never half a record:
a batch is appended whole or not at all.

Not thread-safe: an ``AIOProducer`` is used by the coroutines of its event loop (any
number of them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from .._config import ProducerConfig, wait_seconds
from .._structs import OffsetAndMetadata, RecordMetadata, TopicPartition
from ..clients._future import FutureRecordMetadata
from ..clients._handle import PathOrLog
from ..clients._producer import Producer
from ..clients._transactions import ConsumerGroupMetadata
from ..errors import ClosedError, KafkaTimeoutError
from ._base import Client, ThreadsafeEvent

__all__ = ["AIOProducer"]

_RECORD_OVERHEAD = 16  # as the sync producer counts a record against buffer_memory


class AIOProducer(Client):
    """Publishes records from an event loop (see the module docstring).

    ``AIOProducer(path_or_log, **config)`` takes the sync ``Producer``'s configuration
    (``docs/producer.md``). Use as ``async with AIOProducer(...) as p`` (or ``await
    p.start()`` ... ``await p.close()``). With a ``streamlog.Log`` it is usable at once;
    with a path, ``start()`` opens the directory (in a worker thread).
    """

    _what = "producer"

    def __init__(self, path_or_log: PathOrLog, **config: Any) -> None:
        cfg = ProducerConfig.from_kwargs(dict(config))  # ConfigError now, not at start()
        # serializers run here, so that the size a record takes in the buffer is known
        # before it is handed over (a full buffer is waited for on the loop)
        self._key_serializer = cfg.key_serializer
        self._value_serializer = cfg.value_serializer
        self._kwargs = {
            k: v for k, v in config.items() if k not in ("key_serializer", "value_serializer")
        }
        self._p: Producer | None = None
        # completions from other threads, moved to their asyncio futures by _drain
        self._done: collections.deque[tuple[asyncio.Future[RecordMetadata], FutureRecordMetadata]]
        self._done = collections.deque()
        self._drain_queued = False
        super().__init__(path_or_log)
        if self._manager is not None:
            self._make()

    def _make(self) -> None:
        assert self._manager is not None
        self._p = Producer(self._manager, **self._kwargs)

    def _live(self) -> Producer:
        if self._closed:
            raise ClosedError("cannot send after the producer has been closed")
        p = self._p
        if p is None:
            raise self._not_started()
        return p

    async def _ready(self) -> Producer:
        self._check_loop()
        p = self._live()
        if self._busy is not None:
            await self._settle()
        return p

    @property
    def client_id(self) -> str:
        """The client id (the sync producer's)."""
        p = self._p
        return "" if p is None else p.client_id

    def __repr__(self) -> str:
        return f"<streamlog.aio.AIOProducer {self.client_id or '(not started)'}>"

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the data directory (given as a path) and make the producer. Idempotent."""
        await self._open()
        if self._p is None:
            self._make()

    async def close(self, timeout_ms: float | None = None) -> None:
        """Flush (up to ``timeout_ms``), abort an open transaction, stop the sender, and
        release the directory if given as a path. Idempotent. Records not written in
        time fail with ``KafkaTimeoutError``."""
        timeout = wait_seconds("timeout_ms", timeout_ms)
        if self._closed:
            return
        self._check_loop()
        self._closed = True
        p = self._p
        try:
            if p is not None:
                if self._busy is not None:
                    await self._settle()
                with contextlib.suppress(KafkaTimeoutError):
                    await self._flush(p, timeout)
                await self._in_thread(p.close, timeout_ms)
                self._drain()
        finally:
            await self._release_manager()

    stop = close  # aiokafka's name


    # ------------------------------------------------------------------ sending
    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue one record; returns an ``asyncio`` future of its ``RecordMetadata``.

        Waits (on the loop) only while ``buffer_memory`` is full, up to
        ``max_block_ms``. Misuse raises here, as the sync ``send``; errors of the send
        itself arrive through the future (``UnknownTopicError``,
        ``RecordTooLargeError``, ``KafkaTimeoutError`` for a buffer still full, ...).
        """
        loop = self._check_loop()
        p = self._live()
        if self._busy is not None:
            await self._settle()  # (a transaction commit or abort in a worker thread)
            p = self._live()
        if key is not None and self._key_serializer is not None:
            key = self._key_serializer(key)
        if value is not None and self._value_serializer is not None:
            value = self._value_serializer(value)
        if p._buffered and p._buffered + _size(key, value, headers) > p._buffer_memory:
            if not await self._wait_space(p, _size(key, value, headers)):
                error = KafkaTimeoutError(
                    f"buffer_memory ({p._buffer_memory} bytes) still full after "
                    f"max_block_ms ({int(p._max_block * 1000)} ms)"
                )
                ts = timestamp_ms if isinstance(timestamp_ms, int) else int(time.time() * 1000)
                failed = p._failed(topic, -1 if partition is None else partition, ts, error)
                return self._mirror(loop, failed)
            p = self._live()
        # the one step that sends: no await after it (see the module docstring)
        fut = p.send(
            topic, value, key, partition=partition, timestamp_ms=timestamp_ms, headers=headers
        )
        return self._mirror(loop, fut)

    async def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its acknowledgement (per ``acks``).

        Cancelled while waiting for the acknowledgement, the record is sent all the
        same (``flush`` waits for it); cancelled before it was handed over (a full
        buffer), nothing is sent.
        """
        fut = await self.send(
            topic, value, key, partition=partition, timestamp_ms=timestamp_ms, headers=headers
        )
        if fut.done():
            return fut.result()
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            fut.add_done_callback(_retrieve)  # (an error nobody will see is not logged)
            raise

    def _mirror(
        self, loop: asyncio.AbstractEventLoop, fut: FutureRecordMetadata
    ) -> asyncio.Future[RecordMetadata]:
        afut: asyncio.Future[RecordMetadata] = loop.create_future()
        if fut.done():
            _transfer(afut, fut)
        else:
            fut.add_done_callback(functools.partial(self._completed, afut))
        return afut

    def _completed(self, afut: asyncio.Future[RecordMetadata], fut: FutureRecordMetadata) -> None:
        """A record's sync future is done: any thread (the sender's, mostly)."""
        if threading.get_ident() == self._thread:
            _transfer(afut, fut)
            return
        self._done.append((afut, fut))
        if not self._drain_queued:
            self._drain_queued = True
            loop = self._loop
            assert loop is not None
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody awaits these any more
                self._drain_queued = False

    def _drain(self) -> None:
        self._drain_queued = False  # (first: a completion after this queues another call)
        done = self._done
        while done:
            afut, fut = done.popleft()
            _transfer(afut, fut)

    async def _wait_space(self, p: Producer, size: int) -> bool:
        """Wait until ``size`` more bytes fit in ``buffer_memory`` (as the sync send does,
        but on the loop), up to ``max_block_ms``; False if they did not."""
        loop = self._check_loop()
        deadline = loop.time() + p._max_block
        event = ThreadsafeEvent(loop)
        p._watch(event.set, on=True)
        try:
            while True:
                event.clear()
                if p._buffered + size <= p._buffer_memory or p._buffered <= 0:
                    return True
                left = deadline - loop.time()
                if left <= 0 or p._dead is not None:
                    return False
                await event.wait(left)
        finally:
            p._watch(event.set, on=False)

    async def flush(self, timeout_ms: float | None = None) -> None:
        """Write everything sent so far and wait until every future is done.

        :raises KafkaTimeoutError: not all completed within ``timeout_ms``.
        """
        timeout = wait_seconds("timeout_ms", timeout_ms)
        p = await self._ready()
        await self._flush(p, timeout)

    async def _flush(self, p: Producer, timeout: float | None) -> None:
        loop = self._check_loop()
        if p._pending_records:
            deadline = None if timeout is None else loop.time() + timeout
            event = ThreadsafeEvent(loop)
            p._watch(event.set, on=True)  # (every open batch is ready from now on)
            try:
                while True:
                    event.clear()
                    pending = p._pending_records
                    if not pending:
                        break
                    left = None if deadline is None else deadline - loop.time()
                    if left is not None and left <= 0:
                        raise KafkaTimeoutError(
                            f"flush: {pending} record(s) not completed within {timeout} s"
                        )
                    await event.wait(left)
            finally:
                p._watch(event.set, on=False)
        self._drain()  # (completions queued by the sender reach their futures now)

    async def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of ``topic``.

        :raises UnknownTopicError: no such topic.
        """
        return (await self._ready()).partitions_for(topic)

    # ------------------------------------------------------------------ transactions
    async def init_transactions(self) -> None:
        """Register the ``transactional_id`` (fencing older producers with the same id);
        once, first. In a worker thread (the coordinator's lock, a synced write)."""
        p = await self._ready()
        await self._in_thread(p.init_transactions)

    async def begin_transaction(self) -> None:
        """Start a transaction."""
        (await self._ready()).begin_transaction()

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        group_metadata: ConsumerGroupMetadata | str,
    ) -> None:
        """Commit ``offsets`` for the consumer's group (``consumer.group_metadata()``)
        when the transaction commits, never if it aborts."""
        (await self._ready()).send_offsets_to_transaction(offsets, group_metadata)

    async def commit_transaction(self) -> None:
        """Write every record of the transaction (awaited on the loop), then commit it
        (in a worker thread: synced writes). Cancelled, the commit goes on in the
        thread and the producer's next call waits for its outcome."""
        p = await self._ready()
        await self._flush(p, None)
        await self._in_thread(p.commit_transaction)

    async def abort_transaction(self) -> None:
        """Abort the transaction (records still queued are written first, then aborted)."""
        p = await self._ready()
        await self._flush(p, None)
        await self._in_thread(p.abort_transaction)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``async with producer.transaction(): ...``: begin; commit at the end, or
        abort if the body raised (or was cancelled)."""
        await self.begin_transaction()
        try:
            yield
        except BaseException:
            await self.abort_transaction()
            raise
        await self.commit_transaction()


def _size(key: object, value: object, headers: object) -> int:
    """What the sync ``send`` counts against ``buffer_memory`` (misuse: whatever; the
    sync ``send`` refuses it)."""
    size = _RECORD_OVERHEAD
    if type(key) is bytes:
        size += len(key)
    if type(value) is bytes:
        size += len(value)
    if headers:
        try:
            for hk, hv in headers:  # type: ignore[attr-defined]
                size += len(hk.encode()) + (len(hv) if hv is not None else 0) + 4
        except (TypeError, ValueError, AttributeError):
            pass
    return size


def _transfer(afut: asyncio.Future[RecordMetadata], fut: FutureRecordMetadata) -> None:
    """Resolve ``afut`` as ``fut`` (done) is; on the loop's thread."""
    if afut.done():  # cancelled by its owner: the record is written all the same
        return
    try:
        md = fut.result()  # (done: no wait)
    except Exception as e:
        afut.set_exception(e)
    else:
        afut.set_result(md)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
