"""Fixtures of the asyncio tests: a ``log`` with topics, and helpers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

import streamlog


@pytest.fixture
def log(log: streamlog.Log) -> streamlog.Log:
    log.create_topic("t", partitions=1)
    log.create_topic("t3", partitions=3)
    return log


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture
def stalled_writes() -> Iterator[Callable[[streamlog.aio.AIOProducer], threading.Event]]:
    """``stall(p)``: the sender thread of ``p`` waits (before each write) until the
    returned event is set; set at the end of the test in any case."""
    events: list[threading.Event] = []

    def stall(p: streamlog.aio.AIOProducer) -> threading.Event:
        sync = p._p
        assert sync is not None
        go = threading.Event()
        events.append(go)
        write = sync._write

        def slow(batches: list[object]) -> None:
            go.wait(30)
            write(batches)  # type: ignore[arg-type]

        sync._write = slow  # type: ignore[method-assign]
        return go

    yield stall
    for go in events:
        go.set()
