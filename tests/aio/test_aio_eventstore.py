"""``AIOEventStore``, ``AIOSubscription`` and ``AIOTable``: conditional appends (one
writer wins), reads, catch-up subscriptions with ``CAUGHT_UP``, snapshots, tables."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import streamlog
from streamlog import ANY, CAUGHT_UP, NO_STREAM, STREAM_EXISTS
from streamlog.aio import AIOEventStore, AIOProducer, AIOTable, refresh

pytestmark = pytest.mark.asyncio


async def test_append_with_expected_revisions(log: streamlog.Log) -> None:
    async with AIOEventStore(log, "bank") as store:
        assert await store.append("acc-1", b"opened", expected_revision=NO_STREAM) == 0
        assert await store.append("acc-1", [b"in", b"out"], expected_revision=0) == 2
        assert await store.append("acc-1", b"x", expected_revision=STREAM_EXISTS) == 3
        assert await store.append("acc-1", b"y", expected_revision=ANY) == 4
        with pytest.raises(streamlog.WrongExpectedVersionError) as info:
            await store.append("acc-1", b"late", expected_revision=2)
        assert (info.value.expected, info.value.actual) == (2, 4)
        with pytest.raises(streamlog.WrongExpectedVersionError):
            await store.append("acc-2", b"z", expected_revision=STREAM_EXISTS)
        assert await store.revision("acc-1") == 4
        assert await store.revision("acc-2") is None
        events = await store.read("acc-1")
        assert [e.data for e in events] == [b"opened", b"in", b"out", b"x", b"y"]
        assert [e.revision for e in await store.read("acc-1", 1, 2)] == [1, 2]


async def test_racing_appends_one_wins(log: streamlog.Log) -> None:
    """Tasks racing on one revision (and a thread of the sync store): exactly one
    append per revision wins, the others get WrongExpectedVersionError."""
    async with AIOEventStore(log, "bank") as store:
        await store.append("acc", b"0")
        wins = 0
        conflicts = 0

        async def writer(name: bytes) -> None:
            nonlocal wins, conflicts
            for _ in range(20):
                rev = await store.revision("acc")
                await asyncio.sleep(0)  # let the others read the same revision
                try:
                    await store.append("acc", name, expected_revision=rev)
                    wins += 1
                except streamlog.WrongExpectedVersionError:
                    conflicts += 1

        sync_store = store.store
        thread_wins = []

        def thread_writer() -> None:
            for _ in range(20):
                rev = sync_store.revision("acc")
                try:
                    sync_store.append("acc", b"t", expected_revision=rev)
                    thread_wins.append(1)
                except streamlog.WrongExpectedVersionError:
                    pass

        t = threading.Thread(target=thread_writer)
        t.start()
        await asyncio.gather(writer(b"a"), writer(b"b"), writer(b"c"))
        t.join()
        assert conflicts > 0
        events = await store.read("acc")
        assert len(events) == 1 + wins + len(thread_wins)
        assert [e.revision for e in events] == list(range(len(events)))


async def test_a_synced_store_appends_in_a_worker_thread(log: streamlog.Log) -> None:
    async with AIOEventStore(log, "bank", sync=True) as store:
        assert await store.append("s", b"a", expected_revision=NO_STREAM) == 0
        with pytest.raises(streamlog.WrongExpectedVersionError):
            await store.append("s", b"b", expected_revision=NO_STREAM)
        await store.save_snapshot("s", 0, b"state")
        snap = await store.load_snapshot("s")
        assert snap is not None and (snap.revision, snap.state) == (0, b"state")


async def test_wrapping_an_open_store(log: streamlog.Log) -> None:
    sync_store = log.event_store("bank")
    async with AIOEventStore(sync_store) as store:
        await store.append("s", b"a")
        assert store.topic == "bank"
    assert sync_store.revision("s") == 0  # (left open)
    sync_store.close()
    with pytest.raises(TypeError):
        AIOEventStore(log)


async def test_subscription_catches_up_then_goes_live(log: streamlog.Log) -> None:
    async with AIOEventStore(log, "bank") as store:
        for i in range(5):
            await store.append(f"acc-{i % 2}", b"h%d" % i)
        items: list[object] = []
        sub = store.subscribe()

        async def follow() -> None:
            async for item in sub:
                items.append(item)
                if len(items) == 9:
                    return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        assert items[-1] is CAUGHT_UP
        assert [e.data for e in items[:5]] == [b"h%d" % i for i in range(5)]  # type: ignore[attr-defined]
        await store.append("acc-0", b"live-1")

        def from_thread() -> None:  # an append by another thread of the process
            time.sleep(0.02)
            store.store.append("acc-1", b"live-2")

        threading.Thread(target=from_thread).start()
        await asyncio.wait_for(task, 5)
        sub.close()
        datas = [getattr(i, "data", i) for i in items]
        assert datas[6] == b"live-1"
        assert set(datas[6:]) == {b"live-1", b"live-2", CAUGHT_UP}
        revs = {(e.stream, e.revision) for e in items if e is not CAUGHT_UP}  # type: ignore[attr-defined]
        assert ("acc-0", 3) in revs


async def test_subscription_of_one_stream_from_a_position(log: streamlog.Log) -> None:
    async with AIOEventStore(log, "bank") as store:
        for i in range(6):
            await store.append(f"acc-{i % 2}", b"%d" % i)
        sub = store.subscribe(1, stream="acc-0")  # after offset 1: events 2 and 4
        got: list[object] = []
        while CAUGHT_UP not in got:
            got += await sub.poll(timeout_ms=1000)
        assert [getattr(e, "data", e) for e in got] == [b"2", b"4", CAUGHT_UP]
        assert await sub.poll(timeout_ms=50) == []  # nothing live: timed out
        sub.close()
        assert await sub.poll(timeout_ms=1000) == []


async def test_closing_a_subscription_ends_a_waiting_poll(log: streamlog.Log) -> None:
    async with AIOEventStore(log, "bank") as store:
        async with store.subscribe() as sub:
            assert await sub.poll() == [CAUGHT_UP]
            waiting = asyncio.create_task(sub.poll(timeout_ms=None))
            await asyncio.sleep(0.05)
            threading.Thread(target=sub.close).start()  # from another thread
            assert await asyncio.wait_for(waiting, 5) == []


async def test_table_refresh_waits_on_the_loop(log: streamlog.Log) -> None:
    log.create_topic("users")
    async with AIOProducer(log) as p:
        await p.send_and_wait("users", b"alice-1", key=b"alice")
        async with AIOTable(log, "users") as table:
            assert dict(table) == {b"alice": b"alice-1"}
            assert await table.refresh() == 0
            t0 = asyncio.get_running_loop().time()
            assert await table.refresh(timeout_ms=100) == 0
            assert asyncio.get_running_loop().time() - t0 >= 0.09
            waiting = asyncio.create_task(table.refresh(timeout_ms=5000))
            await asyncio.sleep(0.05)
            await p.send_and_wait("users", b"bob-1", key=b"bob")
            await p.send_and_wait("users", None, key=b"alice")  # a tombstone
            assert await waiting >= 1
            await table.refresh()
            assert dict(table) == {b"bob": b"bob-1"}
            assert len(table) == 1 and b"bob" in table and table.get(b"x") is None


async def test_refresh_helper_on_a_sync_table(log: streamlog.Log) -> None:
    log.create_topic("users")
    table = log.table("users", key_deserializer=bytes.decode)
    waiting = asyncio.create_task(refresh(table, timeout_ms=5000))
    await asyncio.sleep(0.05)

    def write() -> None:
        with log.producer() as p:
            p.send("users", b"v", key=b"k")

    threading.Thread(target=write).start()
    assert await waiting == 1
    assert table["k"] == b"v"
    table.close()
