"""``AIOEventStore`` and ``AIOSubscription``: the event store for asyncio.

Built on ``EventStore`` (``_eventstore.py``), which is thread-safe: its conditional
append runs on the loop's thread (a check of the per-key index and a copy into the
mapped segment, under the partition's append lock), unless the store syncs
(``sync=True``), whose appends wait for fdatasync in a worker thread. Reads go
through the per-key index (SQLite) on the loop's thread.

A subscription reads with the sync ``Subscription``'s non-blocking ``poll(0)`` and
waits on the loop with a ``Waker`` (``_waker.py``): the doorbell is armed before the
last look for events, so an append by any process after that look wakes it.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Union

from .._config import wait_seconds
from .._eventstore import EventStore, Position, Subscription
from .._structs import ANY, Header, RecordedEvent, Sentinel, Snapshot
from ..clients._handle import PathOrLog
from ..errors import ClosedError
from ._base import Client
from ._waker import Waker

__all__ = ["AIOEventStore", "AIOSubscription"]

ExpectedRevision = Union[int, Sentinel]
Item = Union[RecordedEvent, Sentinel]
_YIELD_EVERY = 0.005  # seconds: at least this often, ``async for`` yields to the loop


class AIOEventStore(Client):
    """Streams of events in one topic, from an event loop.

    ``AIOEventStore(path_or_log, topic, partitions=1, *, sync=False)`` opens the
    ``EventStore`` of ``topic`` (created if missing), or ``AIOEventStore(store)`` wraps
    an open one (left open at ``close()``). Use as ``async with`` (or ``await start()``
    ... ``await close()``); with a ``streamlog.Log`` it is usable at once, with a path
    ``start()`` opens the directory (in a worker thread).

    Guarantees are the ``EventStore``'s (docs/event_sourcing.md): an ``append`` with an
    ``expected_revision`` the stream is not at raises ``WrongExpectedVersionError`` and
    writes nothing, also against other processes.
    """

    _what = "event store"

    def __init__(
        self,
        path_or_log: PathOrLog | EventStore,
        topic: str | None = None,
        partitions: int = 1,
        *,
        sync: bool = False,
    ) -> None:
        self._store: EventStore | None = None
        self._owns_store = True
        self._topic = topic
        self._partitions = partitions
        self._sync = sync
        if isinstance(path_or_log, EventStore):
            if topic is not None:
                raise TypeError("AIOEventStore(store) takes no topic: the store has one")
            self._store = path_or_log
            self._owns_store = False
            super().__init__(path_or_log._manager)
            return
        if not isinstance(topic, str):
            raise TypeError("AIOEventStore(path_or_log, topic): give the topic's name")
        super().__init__(path_or_log)
        if self._manager is not None:
            self._store = EventStore(self._manager, topic, partitions=partitions, sync=sync)

    @property
    def store(self) -> EventStore:
        """The sync ``EventStore`` (thread-safe) this one drives."""
        return self._live()

    @property
    def topic(self) -> str:
        return self._live().topic

    def _live(self) -> EventStore:
        if self._closed:
            raise ClosedError("the event store is closed")
        store = self._store
        if store is None:
            raise self._not_started()
        return store

    async def start(self) -> None:
        """Open the data directory (given as a path) and the store. Idempotent."""
        manager = await self._open()
        if self._store is None:
            assert self._topic is not None
            self._store = EventStore(
                manager, self._topic, partitions=self._partitions, sync=self._sync
            )

    async def close(self) -> None:
        """Write the index and release its files (in a worker thread), and the data
        directory if given as a path. Idempotent. Open subscriptions end."""
        if self._closed:
            return
        self._check_loop()
        self._closed = True
        if self._busy is not None:
            await self._settle()
        store = self._store
        try:
            if store is not None and self._owns_store:
                await self._in_thread(store.close)
        finally:
            await self._release_manager()


    async def _ready(self) -> EventStore:
        self._check_loop()
        store = self._live()
        if self._busy is not None:
            await self._settle()
        return store

    # ------------------------------------------------------------------ the API
    def partition_of(self, stream: str) -> int:
        """The partition holding ``stream``."""
        return self._live().partition_of(stream)

    async def append(
        self,
        stream: str,
        events: bytes | Sequence[bytes],
        *,
        expected_revision: ExpectedRevision = ANY,
        headers: Sequence[Header] | None = None,
    ) -> int:
        """Append ``events`` (one batch: all or nothing) to ``stream`` if it is at
        ``expected_revision``; returns the stream's new last revision.

        On the loop's thread; with ``sync=True`` in a worker thread (fdatasync). A
        cancelled synced append is made or not, whole, in its thread.

        :raises WrongExpectedVersionError: the stream is elsewhere; nothing written.
        """
        store = await self._ready()
        if store._sync:
            return await self._in_thread(_append, store, stream, events, expected_revision, headers)
        return store.append(stream, events, expected_revision=expected_revision, headers=headers)

    async def revision(self, stream: str) -> int | None:
        """The stream's last revision (None: no event), as of now in every process."""
        return (await self._ready()).revision(stream)

    async def read(
        self, stream: str, from_revision: int = 0, to_revision: int | None = None
    ) -> list[RecordedEvent]:
        """Events ``from_revision..to_revision`` (inclusive) of ``stream``, in order."""
        return (await self._ready()).read(stream, from_revision, to_revision)

    def subscribe(
        self, from_position: Position = None, *, stream: str | None = None
    ) -> AIOSubscription:
        """A catch-up subscription: the events after ``from_position`` (None: from the
        beginning), then one ``streamlog.CAUGHT_UP``, then live events of any process;
        one more ``CAUGHT_UP`` each time it is at the end again."""
        self._check_sync_call()
        store = self._live()
        return AIOSubscription(self, store.subscribe(from_position, stream=stream))

    async def save_snapshot(self, stream: str, revision: int, state: bytes) -> None:
        """Save ``state``: ``stream`` folded up to and including ``revision``."""
        store = await self._ready()
        if store._sync:
            await self._in_thread(store.save_snapshot, stream, revision, state)
        else:
            store.save_snapshot(stream, revision, state)

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The latest snapshot saved for ``stream`` by any process, or None."""
        return (await self._ready()).load_snapshot(stream)


def _append(
    store: EventStore,
    stream: str,
    events: bytes | Sequence[bytes],
    expected: ExpectedRevision,
    headers: Sequence[Header] | None,
) -> int:
    return store.append(stream, events, expected_revision=expected, headers=headers)


class AIOSubscription:
    """A catch-up subscription on an event loop (``AIOEventStore.subscribe``): history,
    one ``CAUGHT_UP``, then live events, from ``async for`` or ``await poll()``.

    Used by the coroutines of its store's loop; ``close()`` may be called from any
    thread (a waiting ``poll`` returns ``[]``, ``async for`` ends).
    """

    def __init__(self, owner: AIOEventStore, sub: Subscription) -> None:
        self._owner = owner
        self._sub = sub
        self._waker: Waker | None = None
        self._buffer: collections.deque[Item] = collections.deque()
        self._closed = False
        self._yield_at = 0.0

    async def poll(self, timeout_ms: float | None = 0) -> list[Item]:
        """The next items (events, or ``CAUGHT_UP``); waits up to ``timeout_ms`` for
        live events (None or ``inf``: until there are some, or ``close()``). ``[]``
        after ``close()``."""
        loop = self._owner._check_loop()
        timeout = wait_seconds("timeout_ms", timeout_ms)
        if self._closed or self._owner._closed:
            return []
        if timeout == 0:
            return self._look()
        waker = self._waker
        if waker is None:
            manager = self._owner._manager
            assert manager is not None
            waker = self._waker = Waker(loop, manager)
            weakref.finalize(self, waker.close)
        deadline = None if timeout is None else loop.time() + timeout
        waker.enter()  # (arms the bell before the look below)
        items: list[Item] = []
        try:
            while True:
                if self._closed or self._owner._closed:
                    return []
                waker.reset()
                items = self._look()
                if items:
                    return items
                if deadline is not None and loop.time() >= deadline:
                    return []
                await waker.sleep(deadline)
        finally:
            waker.leave()
            if items:
                waker.found()

    def _look(self) -> list[Item]:
        loop = self._owner._loop
        assert loop is not None
        self._yield_at = loop.time() + _YIELD_EVERY
        return self._sub.poll(0)

    def __aiter__(self) -> AIOSubscription:
        return self

    async def __anext__(self) -> Item:
        """The next item; the iteration ends at ``close()``."""
        buffer = self._buffer
        if buffer:
            loop = self._owner._loop
            if loop is not None and loop.time() >= self._yield_at:
                await asyncio.sleep(0)  # (a long history must not starve the loop)
                self._yield_at = loop.time() + _YIELD_EVERY
            return buffer.popleft()
        while not buffer:
            if self._closed or self._owner._closed:
                raise StopAsyncIteration
            buffer.extend(await self.poll(None))
        return buffer.popleft()

    def close(self) -> None:
        """End the subscription (any thread: a waiting ``poll`` returns ``[]``)."""
        self._closed = True
        self._sub.close()
        waker = self._waker
        if waker is not None:
            waker.close()

    async def __aenter__(self) -> AIOSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
