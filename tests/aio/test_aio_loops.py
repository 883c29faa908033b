"""Event loops and threads: every ``streamlog.aio`` object belongs to one loop; several
loops in several threads work, each with its own objects, on one shared handle."""

from __future__ import annotations

import asyncio
import threading

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.aio import AIOConsumer, AIOEventStore, AIOProducer

TP = TopicPartition("t", 0)


def test_several_loops_in_threads_share_one_handle(log: streamlog.Log) -> None:
    """A producer's loop in one thread wakes a consumer's loop in another (and a
    second consumer in a third): appends through one handle reach every loop."""
    n = 200
    results: dict[str, list[bytes]] = {}
    errors: list[BaseException] = []
    ready = threading.Barrier(3)

    def consumer(name: str) -> None:
        async def run() -> None:
            async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
                ready.wait()
                got: list[bytes] = []
                while len(got) < n:
                    batch = await c.getmany(timeout_ms=10_000)
                    assert batch, "no records within 10 s"
                    got += [r.value for r in batch[TP] if r.value is not None]
                results[name] = got

        try:
            asyncio.run(run())
        except BaseException as e:
            errors.append(e)

    def producer() -> None:
        async def run() -> None:
            async with AIOProducer(log) as p:
                ready.wait()
                for i in range(n):
                    await p.send("t", b"%d" % i)
                    if i % 10 == 0:
                        await asyncio.sleep(0.001)

        try:
            asyncio.run(run())
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=consumer, args=("a",)),
        threading.Thread(target=consumer, args=("b",)),
        threading.Thread(target=producer),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    expected = [b"%d" % i for i in range(n)]
    assert results == {"a": expected, "b": expected}


def test_an_object_refuses_another_loop(log: streamlog.Log) -> None:
    async def make() -> AIOConsumer:
        c = AIOConsumer(log, "t")
        await c.getmany(timeout_ms=1)
        return c

    loop1 = asyncio.new_event_loop()
    try:
        c = loop1.run_until_complete(make())

        async def use() -> None:
            with pytest.raises(streamlog.IllegalStateError, match="another event loop"):
                await c.getmany()

        asyncio.run(use())

        def other_thread() -> None:  # a plain call from a thread of no running loop
            c.seek(TP, 0)

        other_thread()  # (loop1 is not running: allowed, it is not in use)
        loop1.run_until_complete(c.close())
    finally:
        loop1.close()


def test_a_coroutine_call_without_a_running_loop_is_refused(log: streamlog.Log) -> None:
    p = AIOProducer(log)
    coro = p.send("t", b"x")
    with pytest.raises(streamlog.IllegalStateError, match="without a running event loop"):
        coro.send(None)
    assert p._p is not None
    p._p.close()  # (never used on a loop)


def test_objects_made_outside_a_loop_bind_to_their_first_loop(log: streamlog.Log) -> None:
    store = AIOEventStore(log, "bank")

    async def use() -> int:
        rev = await store.append("s", b"x")
        await store.close()
        return rev

    assert asyncio.run(use()) == 0


def test_a_plain_call_from_another_thread_is_refused_while_the_loop_runs(
    log: streamlog.Log,
) -> None:
    caught: list[BaseException] = []

    async def main() -> None:
        async with AIOConsumer(log) as c:
            c.assign([TP])

            def other() -> None:
                try:
                    c.seek(TP, 0)
                except streamlog.IllegalStateError as e:
                    caught.append(e)

            t = threading.Thread(target=other)
            t.start()
            while t.is_alive():
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(caught) == 1
