"""``AIOTable`` and ``refresh``: a ``Table`` kept current from an event loop.

``Table.refresh(0)`` applies what is there without waiting; ``refresh`` here waits for
the first append on the loop with a ``Waker`` (``_waker.py``, doorbell armed before
the last look), instead of blocking a thread as ``Table.refresh(timeout_ms)`` does.
"""

from __future__ import annotations

import asyncio
import collections.abc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .._config import wait_seconds
from .._table import Table
from ..clients._handle import PathOrLog
from ..errors import ClosedError
from ._base import Client
from ._waker import Waker

__all__ = ["AIOTable", "refresh"]


async def refresh(table: Table, timeout_ms: float | None = 0) -> int:
    """``table.refresh()`` on an event loop: apply every record appended so far (by any
    process) and return how many were applied; if there were none, wait (on the loop)
    up to ``timeout_ms`` (None or ``inf``: no limit) for the first append.

    Works on any ``streamlog.Table``; ``AIOTable.refresh`` does the same with a waker
    kept between calls.
    """
    loop = asyncio.get_running_loop()
    timeout = wait_seconds("timeout_ms", timeout_ms)
    applied = table.refresh(0)
    if applied or timeout == 0:
        return applied
    waker = Waker(loop, table._manager)
    try:
        return await _wait(loop, table, waker, timeout)
    finally:
        waker.close()


async def _wait(
    loop: asyncio.AbstractEventLoop, table: Table, waker: Waker, timeout: float | None
) -> int:
    deadline = None if timeout is None else loop.time() + timeout
    waker.enter()  # (arms the bell before the look below)
    applied = 0
    try:
        while True:
            waker.reset()
            applied = table.refresh(0)
            if applied:
                return applied
            if deadline is not None and loop.time() >= deadline:
                return 0
            await waker.sleep(deadline)
    finally:
        waker.leave()
        if applied:
            waker.found()


class AIOTable(Client):
    """The latest value of every key of a topic, as a read-only mapping, refreshed from
    an event loop (``streamlog.Table``; docs/event_sourcing.md).

    ``AIOTable(path_or_log, topic, *, key_deserializer=None, value_deserializer=None,
    refresh_interval_ms=None)``, or ``AIOTable(table)`` to wrap an open ``Table`` (left
    open at ``close()``). ``start()`` (or ``async with``) builds the table, reading the
    topic from its start in a worker thread; a wrapped table is ready at once.
    ``await refresh(timeout_ms)`` catches up and waits for appends on the loop.

    Reads (``[]``, ``in``, ``len``, iteration) are the ``Table``'s: thread-safe, and
    with ``refresh_interval_ms`` they refresh first (without waiting) when stale.
    """

    _what = "table"

    def __init__(
        self,
        path_or_log: PathOrLog | Table,
        topic: str | None = None,
        *,
        key_deserializer: Callable[[bytes], Any] | None = None,
        value_deserializer: Callable[[bytes], Any] | None = None,
        refresh_interval_ms: float | None = None,
    ) -> None:
        self._table: Table | None = None
        self._owns_table = True
        self._topic = topic
        self._options: dict[str, Any] = {
            "key_deserializer": key_deserializer,
            "value_deserializer": value_deserializer,
            "refresh_interval_ms": refresh_interval_ms,
        }
        self._waker: Waker | None = None
        if isinstance(path_or_log, Table):
            if topic is not None:
                raise TypeError("AIOTable(table) takes no topic: the table has one")
            self._table = path_or_log
            self._owns_table = False
            super().__init__(path_or_log._manager)
            return
        if not isinstance(topic, str):
            raise TypeError("AIOTable(path_or_log, topic): give the topic's name")
        super().__init__(path_or_log)

    @property
    def table(self) -> Table:
        """The sync ``Table`` (thread-safe) this one drives."""
        return self._live()

    def _live(self) -> Table:
        if self._closed:
            raise ClosedError("the table is closed")
        table = self._table
        if table is None:
            raise self._not_started()
        return table

    async def start(self) -> None:
        """Build the table (a first full read of the topic, in a worker thread).
        Idempotent."""
        manager = await self._open()
        if self._table is None:
            assert self._topic is not None
            table = await self._in_thread(_make_table, manager, self._topic, self._options)
            if self._table is not None or self._closed:
                table.close()
            else:
                self._table = table

    async def refresh(self, timeout_ms: float | None = 0) -> int:
        """Apply every record appended so far (by any process); returns how many. If
        none, wait on the loop up to ``timeout_ms`` (None or ``inf``: no limit) for the
        first append."""
        loop = self._check_loop()
        table = self._live()
        timeout = wait_seconds("timeout_ms", timeout_ms)
        applied = table.refresh(0)
        if applied or timeout == 0:
            return applied
        waker = self._waker
        if waker is None:
            waker = self._waker = Waker(loop, table._manager)
            weakref.finalize(self, waker.close)
        return await _wait(loop, table, waker, timeout)

    async def close(self) -> None:
        """Release the table's consumer (and the data directory, if given as a path).
        Idempotent."""
        if self._closed:
            return
        self._check_loop()
        self._closed = True
        if self._busy is not None:
            await self._settle()
        waker = self._waker
        if waker is not None:
            waker.close()
        table = self._table
        try:
            if table is not None and self._owns_table:
                table.close()
        finally:
            await self._release_manager()


    # ------------------------------------------------------------------ the mapping
    def __getitem__(self, key: Any) -> Any:
        return self._live()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._live()

    def __len__(self) -> int:
        return len(self._live())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._live())

    def get(self, key: Any, default: Any = None) -> Any:
        return self._live().get(key, default)

    def keys(self) -> Any:
        return self._live().keys()

    def values(self) -> Any:
        return self._live().values()

    def items(self) -> Any:
        return self._live().items()

    def __repr__(self) -> str:
        table = self._table
        return f"<streamlog.aio.AIOTable {table!r}>"


def _make_table(manager: Any, topic: str, options: dict[str, Any]) -> Table:
    return Table(manager, topic, **options)


collections.abc.Mapping.register(AIOTable)
