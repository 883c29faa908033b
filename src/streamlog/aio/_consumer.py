"""``AIOConsumer``: the consumer for asyncio, modelled on aiokafka's ``AIOKafkaConsumer``.

Built on the sync ``Consumer`` (``clients/_consumer.py``), of which it uses only the
non-blocking part: ``poll(0)`` reads what is there and returns at once. The waiting is
done on the event loop by a ``Waker`` (``_waker.py``): appends through the same
handle wake it through the loop (``call_soon_threadsafe``, or directly when the
append ran on the loop's thread), appends by other processes through the data
directory's doorbell registered with ``loop.add_reader``, and without a doorbell the
sync consumer's back-off, as ``asyncio`` sleeps.

Group steps (joining, syncing, giving partitions up, with the listener callbacks and
the auto-commits they make) take file locks and may fsync: the sync consumer defers
them (``_defer_steps``) and they run in a worker thread, in a ``poll(0)`` there, while
the listener's callbacks (plain functions or coroutines) run on the event loop and
the thread waits for them. Everything else runs on the loop's thread.

Cancellation: a ``getmany``/``getone`` cancelled while it waits has consumed nothing.
One cancelled while its worker thread takes a group step lets the step finish (the
group stays consistent); if that thread's poll returned records, the positions are put
back to the first of them (``seek``), so the next call returns them again.

Not thread-safe: an ``AIOConsumer`` is used by the coroutines of its event loop (any
number of them; ``getmany`` calls from several tasks take turns on the records).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

from .._config import ConsumerConfig, wait_seconds
from .._structs import ConsumerRecord, OffsetAndTimestamp, TopicPartition
from ..clients._consumer import Consumer, _check_tp, _check_tps
from ..clients._consumer import ConsumerRebalanceListener as SyncListener
from ..clients._handle import PathOrLog
from ..clients._transactions import ConsumerGroupMetadata
from ..errors import ClosedError, IllegalStateError
from ._base import Client
from ._waker import Waker

__all__ = ["AIOConsumer", "ConsumerRebalanceListener"]

Records = dict[TopicPartition, list[ConsumerRecord]]
# the consumer whose rebalance callback the current task is running (see _Bridge)
_LISTENING: contextvars.ContextVar[AIOConsumer | None] = contextvars.ContextVar(
    "streamlog_aio_listening", default=None
)
# Yield to the loop at least this often (seconds) while records keep coming without
# a wait: a consumer working through a backlog must not starve the loop's other tasks.
_YIELD_EVERY = 0.005


class ConsumerRebalanceListener:
    """Callbacks around partition reassignment in a consumer group, for ``AIOConsumer``
    (aiokafka's ``ConsumerRebalanceListener``). Override what you need, with ``async
    def`` or plain methods; they run on the consumer's event loop, while the rebalance
    waits for them. ``await consumer.commit()`` inside ``on_partitions_revoked`` commits
    before the partitions move (as in Kafka). A ``streamlog.ConsumerRebalanceListener``
    (plain methods) is accepted as well, or any object with these methods.
    """

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called before partitions are taken away (commit their offsets here)."""

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Called after new partitions were given to this consumer."""

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        """Called when partitions were lost without a clean revoke (by default, the
        revoke callback)."""
        result = self.on_partitions_revoked(lost)
        if inspect.isawaitable(result):
            await result


Listener = Union[ConsumerRebalanceListener, SyncListener, Any]


class _Bridge(SyncListener):
    """The sync consumer's listener: runs the user's callbacks on the event loop.

    Called in the worker thread that takes a group step (``AIOConsumer._step``), which
    waits here until the callback (and the coroutine it returned) is done.
    """

    def __init__(self, owner: AIOConsumer, listener: Listener) -> None:
        self._owner = owner
        self._listener = listener

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._owner._run_listener(self._listener.on_partitions_revoked, revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner._run_listener(self._listener.on_partitions_assigned, assigned)

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        fn = getattr(self._listener, "on_partitions_lost", None)
        if fn is None:
            fn = self._listener.on_partitions_revoked
        self._owner._run_listener(fn, lost)


class AIOConsumer(Client):
    """Reads records on an event loop (see the module docstring).

    ``AIOConsumer(path_or_log, *topics, **config)`` takes the sync ``Consumer``'s
    configuration (``docs/consumer.md``). Topics given here are subscribed. Use as
    ``async with AIOConsumer(...) as c`` (or ``await c.start()`` ... ``await c.close()``).
    With a ``streamlog.Log`` it is usable at once; with a path, ``start()`` opens the
    directory (in a worker thread).
    """

    _what = "consumer"

    def __init__(self, path_or_log: PathOrLog, *topics: str, **config: Any) -> None:
        cfg = ConsumerConfig.from_kwargs(dict(config))  # ConfigError now, not at start()
        self._cfg = cfg
        self._topics = topics
        self._kwargs = config
        self._c: Consumer | None = None
        self._waker: Waker | None = None
        self._iter_timeout_ms = cfg.consumer_timeout_ms  # (None: no limit)
        self._yield_at = 0.0
        self._flowing = False  # the last fetch found records without waiting
        super().__init__(path_or_log)
        if self._manager is not None:
            self._make()

    def _make(self) -> None:
        assert self._manager is not None
        # The sync iterator never waits (consumer_timeout_ms=0): __anext__ takes records
        # from it while there are some, and waits on the loop (getmany) when there are not.
        kwargs = {**self._kwargs, "consumer_timeout_ms": 0}
        c = Consumer(self._manager, *self._topics, **kwargs)
        c._defer_steps = True  # group steps run in a worker thread (_step)
        self._c = c

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the data directory (given as a path) and make the consumer. Idempotent."""
        await self._open()
        if self._c is None:
            self._make()

    async def close(self) -> None:
        """Stop: a waiting ``getmany`` returns ``{}`` (``getone`` raises ``ClosedError``,
        ``async for`` ends). In a group: auto-commit (if on), ``on_partitions_revoked``,
        leave the group (in a worker thread). Idempotent."""
        if self._closed:
            return
        self._check_loop()
        self._closed = True
        waker = self._waker
        if waker is not None:
            waker.close()
        if self._busy is not None:
            await self._settle()
        c = self._c
        try:
            if c is not None:
                if c._member is not None:
                    await self._in_thread(c.close)
                else:
                    c.close()
        finally:
            await self._release_manager()

    stop = close  # aiokafka's name


    def _live(self) -> Consumer:
        # (a rebalance callback of close() may still commit, as in Kafka)
        if self._closed and _LISTENING.get() is not self:
            raise ClosedError("the consumer is closed")
        c = self._c
        if c is None:
            raise self._not_started()
        return c

    def _check_mutable(self) -> Consumer:
        """For a plain method that changes the consumer: not while a worker thread uses
        it (a group step), unless from that step's listener callback."""
        self._check_sync_call()
        c = self._live()
        if self._busy is not None and _LISTENING.get() is not self:
            raise IllegalStateError(
                "a rebalance is running in a worker thread: await getmany(), position() "
                "or another coroutine of the consumer first (or call this from a "
                "rebalance listener)"
            )
        return c

    def _get_waker(self) -> Waker:
        waker = self._waker
        if waker is None:
            assert self._loop is not None and self._manager is not None
            waker = self._waker = Waker(self._loop, self._manager)
            # a consumer dropped unclosed still disarms its bell
            weakref.finalize(self, waker.close)
        return waker

    def __repr__(self) -> str:
        c = self._c
        return f"<streamlog.aio.AIOConsumer {c.client_id if c else '(not started)'}>"

    # ------------------------------------------------------------------ subscription
    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | None = None,
        listener: Listener | None = None,
    ) -> None:
        """Read every partition of ``topics`` (or of topics matching ``pattern``); with
        a ``group_id``, join the group at the next fetch. ``listener``: a
        ``streamlog.aio.ConsumerRebalanceListener`` (``async def`` methods), or any
        object with ``on_partitions_revoked``/``on_partitions_assigned`` (plain or async);
        its callbacks run on this loop."""
        c = self._check_mutable()
        bridge = None
        if listener is not None:
            for name in ("on_partitions_revoked", "on_partitions_assigned"):
                if not callable(getattr(listener, name, None)):
                    raise TypeError(f"listener has no {name}() method")
            bridge = _Bridge(self, listener)
        c.subscribe(topics, pattern, bridge)

    async def unsubscribe(self) -> None:
        """Stop reading; leave the group (``on_partitions_revoked`` first)."""
        c = self._live()
        self._check_loop()
        if self._busy is not None:
            await self._settle()
        if c._member is not None:
            await self._in_thread(c.unsubscribe)
        else:
            c.unsubscribe()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group management)."""
        self._check_mutable().assign(partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads."""
        self._check_sync_call()
        return self._live().assignment()

    def subscription(self) -> set[str]:
        """The subscribed topic names."""
        self._check_sync_call()
        return self._live().subscription()

    async def topics(self) -> set[str]:
        """Every topic of the data directory (aiokafka's ``topics()``)."""
        self._check_loop()
        self._live()
        assert self._manager is not None
        return set(self._manager.topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The partition numbers of ``topic``, or None if there is no such topic."""
        self._check_sync_call()
        self._live()
        assert self._manager is not None
        meta = self._manager.topic(topic)
        return None if meta is None else set(range(meta.partitions))

    # ------------------------------------------------------------------ fetching
    async def getmany(
        self,
        *partitions: TopicPartition,
        timeout_ms: float | None = 0,
        max_records: int | None = None,
    ) -> Records:
        """Records of the assigned partitions (only ``partitions``, if given), as soon
        as there are any: ``{TopicPartition: [ConsumerRecord]}``, at most
        ``max_records`` (default ``max_poll_records``) in all.

        Waits up to ``timeout_ms`` when there are none (0, the default as in aiokafka:
        return what is there; None or ``inf``: until records or ``close()``). Returns
        ``{}`` if the consumer is closed while it waits.
        """
        loop = self._check_loop()
        c = self._live()
        if _LISTENING.get() is self:
            raise IllegalStateError("getmany()/getone() inside a rebalance listener")
        timeout = wait_seconds("timeout_ms", timeout_ms)
        only = self._only(c, partitions) if partitions else None
        if self._busy is not None:
            await self._settle()
        elif loop.time() >= self._yield_at:
            await asyncio.sleep(0)  # (before looking: a cancellation here costs nothing)
        if self._closed:
            return {}
        if timeout == 0 or self._flowing:
            # A look without the waker: what getmany(timeout_ms=0) does, and what a fetch
            # does while records keep coming (the last one found some without a wait).
            out = self._poll_now(c, max_records, only)
            if out:
                waker = self._waker
                if waker is not None:
                    waker.found()
                return out
            self._flowing = False
            if timeout == 0 and not c._step_due:
                return out
        # Otherwise the waker is entered before the first look, which is then the last
        # look before a sleep, as the doorbell protocol wants: no look is wasted.
        return await self._wait(c, max_records, only, timeout)

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord:
        """The next record (of ``partitions``, if given); waits until there is one.

        :raises ClosedError: the consumer was closed meanwhile.
        """
        out = await self.getmany(*partitions, timeout_ms=None, max_records=1)
        if not out:
            raise ClosedError("the consumer was closed")
        ((_tp, (record,)),) = out.items()
        return record

    def __aiter__(self) -> AIOConsumer:
        return self

    async def __anext__(self) -> ConsumerRecord:
        """The next record; the iteration ends at ``close()``, or after
        ``consumer_timeout_ms`` without records (if set).

        While records are there, they come from the sync consumer's iterator (one by one
        from its decoded batch; the position follows the last record returned, as in
        the sync ``for record in consumer``), with no wait; else from ``getmany``.
        """
        if self._closed:
            raise StopAsyncIteration
        c = self._c
        if c is not None and self._busy is None and _LISTENING.get() is None:
            loop = self._check_loop()
            if loop.time() >= self._yield_at:
                await asyncio.sleep(0)  # (a backlog must not starve the loop's other tasks)
                self._yield_at = loop.time() + _YIELD_EVERY
            if self._closed:
                raise StopAsyncIteration
            if self._busy is None:
                try:
                    return next(c)  # (never waits: consumer_timeout_ms=0)
                except StopIteration:
                    pass  # nothing there now (or a group step is due): wait below
        out = await self.getmany(timeout_ms=self._iter_timeout_ms, max_records=1)
        if not out:
            raise StopAsyncIteration
        ((_tp, (record,)),) = out.items()
        return record

    def _only(self, c: Consumer, partitions: tuple[TopicPartition, ...]) -> set[TopicPartition]:
        only = set(_check_tps(list(partitions)))
        for tp in only:
            if tp not in c._assigned:
                raise IllegalStateError(f"{tp} is not assigned to this consumer")
        return only

    def _poll_now(
        self, c: Consumer, max_records: int | None, only: set[TopicPartition] | None
    ) -> Records:
        """``poll(0)``: what is there now, without waiting (a fetch of only aborted or
        control batches reads on at once, as the sync poll does)."""
        loop = self._loop
        assert loop is not None
        self._yield_at = loop.time() + _YIELD_EVERY  # (the caller just yielded, or slept)
        others: list[TopicPartition] = []
        if only is not None:
            others = [tp for tp, s in c._assigned.items() if tp not in only and not s.paused]
            c.pause(*others)
        try:
            while True:
                skipped = c._skipped
                out = c.poll(0, max_records)
                if out or c._skipped == skipped or c._step_due:
                    return out
        finally:
            if others:
                c.resume(*(tp for tp in others if tp in c._assigned))

    async def _wait(
        self,
        c: Consumer,
        max_records: int | None,
        only: set[TopicPartition] | None,
        timeout: float | None,
    ) -> Records:
        loop = self._loop
        assert loop is not None
        deadline = None if timeout is None else loop.time() + timeout
        waker = self._get_waker()
        waker.enter()  # (arms the bell before the look below)
        stepped = False
        slept = False
        out: Records = {}
        try:
            while True:
                if self._closed:
                    return {}
                if c._step_due and not stepped:
                    stepped = True
                    out = await self._step(c, max_records, only)
                    if out:
                        return out
                    continue
                waker.reset()
                out = self._poll_now(c, max_records, only)
                if out:
                    return out
                if c._step_due and not stepped:
                    continue
                if deadline is not None and loop.time() >= deadline:
                    return out
                await waker.sleep(deadline, group=c._member is not None)
                slept = True
                stepped = False
                if self._busy is not None:
                    await self._settle()
        finally:
            waker.leave()
            if out:
                waker.found()
                self._flowing = not slept  # (records without a wait: more may be there)

    async def _step(
        self, c: Consumer, max_records: int | None, only: set[TopicPartition] | None
    ) -> Records:
        """Take the group step ``poll(0)`` deferred, in a worker thread (and what that
        poll then returns)."""
        c._step_due = False
        if self._closed:
            return {}
        return await self._in_thread(
            self._stepped_poll, c, max_records, only, abandoned=self._give_back
        )

    def _stepped_poll(
        self, c: Consumer, max_records: int | None, only: set[TopicPartition] | None
    ) -> Records:
        """In a worker thread: a ``poll(0)`` that takes the group's step."""
        c._defer_steps = False
        try:
            return self._poll_now(c, max_records, only)
        finally:
            c._defer_steps = True

    def _give_back(self, out: Records) -> None:
        """Records of a worker-thread poll nobody took (its caller was cancelled): move
        the positions back to them, so the next fetch returns them."""
        c = self._c
        if c is None or c._closed:
            return
        for tp, records in out.items():
            if records and tp in c._assigned:
                c.seek(tp, records[0].offset)

    def _run_listener(
        self, fn: Callable[[set[TopicPartition]], Any], tps: set[TopicPartition]
    ) -> None:
        """A rebalance callback, run on the loop; called by the sync consumer's listener
        (``_Bridge``) in the worker thread of a group step, which waits for it."""
        loop = self._loop
        assert loop is not None
        if loop.is_closed():
            raise IllegalStateError("the consumer's event loop is closed")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            # on the loop's own thread (not for group steps, which run in a worker):
            # a plain callback runs here; a coroutine cannot be waited for
            result = fn(set(tps))
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise IllegalStateError(
                    "a coroutine rebalance callback was called outside a group step"
                )
            return
        fut = asyncio.run_coroutine_threadsafe(self._listen(fn, set(tps)), loop)
        while True:
            try:
                fut.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                if loop.is_closed() or not loop.is_running():
                    fut.cancel()
                    raise IllegalStateError(
                        "the consumer's event loop stopped during a rebalance callback"
                    ) from None

    async def _listen(
        self, fn: Callable[[set[TopicPartition]], Any], tps: set[TopicPartition]
    ) -> None:
        token = _LISTENING.set(self)
        try:
            result = fn(tps)
            if inspect.isawaitable(result):
                await result
        finally:
            _LISTENING.reset(token)

    # ------------------------------------------------------------------ positions
    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Make the next fetch read ``partition`` from ``offset``."""
        self._check_mutable().seek(partition, offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Read from the log start of the given (default: all assigned) partitions."""
        await self._ready()
        self._check_mutable().seek_to_beginning(*partitions)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Read only records appended from now on, for the given (default: all)."""
        await self._ready()
        self._check_mutable().seek_to_end(*partitions)

    async def seek_to_committed(
        self, *partitions: TopicPartition
    ) -> dict[TopicPartition, int | None]:
        """Move the given (default: all assigned) partitions to the group's committed
        offsets; a partition without one keeps its position. Returns the committed
        offsets (None: none)."""
        await self._ready()
        c = self._check_mutable()
        chosen = _check_tps(list(partitions)) if partitions else sorted(c._assigned)
        out: dict[TopicPartition, int | None] = {}
        for tp in chosen:
            out[tp] = committed = c.committed(tp)
            if committed is not None:
                c.seek(tp, committed)
        return out

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record a fetch returns for ``partition``."""
        await self._ready()
        return self._live().position(partition)

    async def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset of ``partition`` (the next offset to read)."""
        await self._ready()
        return self._live().committed(partition)

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The log start offset of each partition."""
        await self._ready()
        return self._live().beginning_offsets(partitions)

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offset (next offset to be written) of each partition."""
        await self._ready()
        return self._live().end_offsets(partitions)

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the earliest offset whose timestamp is >= the given one."""
        await self._ready()
        return self._live().offsets_for_times(timestamps)

    def highwater(self, partition: TopicPartition) -> int:
        """The end offset of ``partition`` (aiokafka's ``highwater``)."""
        self._check_sync_call()
        tp = _check_tp(partition)
        return self._live().end_offsets([tp])[tp]

    def last_stable_offset(self, partition: TopicPartition) -> int:
        """The last stable offset of ``partition`` (below it no transaction is open)."""
        self._check_sync_call()
        self._live()
        assert self._manager is not None
        tp = _check_tp(partition)
        return self._manager.partition(tp.topic, tp.partition).last_stable_offset()

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop returning records of these partitions (positions are kept)."""
        self._check_mutable().pause(*partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        """Return records of these partitions again."""
        self._check_mutable().resume(*partitions)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        self._check_sync_call()
        return self._live().paused()

    async def _ready(self) -> None:
        """Bound to this loop, started, and no worker-thread call in progress (unless
        called from a rebalance callback of that call)."""
        self._check_loop()
        self._live()
        if self._busy is not None and _LISTENING.get() is not self:
            await self._settle()

    # ------------------------------------------------------------------ commits
    async def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """Commit offsets for the group (default: the position of every assigned
        partition, after the records returned so far).

        On the loop's thread (a short write under the group's lock); with
        ``fsync_commits=True`` in a worker thread, as the commit waits for fdatasync.
        Inside a rebalance callback it runs at once (the rebalance waits for it).

        :raises CommitFailedError: this consumer no longer owns a partition committed
            (the group rebalanced), as the sync ``commit``.
        """
        await self._ready()
        c = self._live()
        if self._cfg.fsync_commits and _LISTENING.get() is not self:
            await self._in_thread(c.commit, offsets)
        else:
            c.commit(offsets)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """Group id, generation, member id and instance id, for
        ``AIOProducer.send_offsets_to_transaction``."""
        self._check_sync_call()
        return self._live().group_metadata()

    def metrics(self) -> dict[str, Any]:
        """Lag per assigned partition and the group membership (the sync ``metrics()``)."""
        self._check_sync_call()
        return self._live().metrics()

    @property
    def config(self) -> Mapping[str, object]:
        """The configuration, every setting by its keyword name (read-only)."""
        return self._cfg.to_dict()
