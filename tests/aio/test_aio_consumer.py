"""``AIOConsumer``: fetching and waiting, positions, timeouts, cancellation, close."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.aio import AIOConsumer, AIOProducer

from .conftest import wait_until

pytestmark = pytest.mark.asyncio

TP = TopicPartition("t", 0)


def produce(log: streamlog.Log, n: int, topic: str = "t", start: int = 0) -> None:
    with log.producer() as p:
        for i in range(start, start + n):
            p.send(topic, b"%d" % i, key=b"%d" % i)


def offsets(batch: dict[TopicPartition, list[streamlog.ConsumerRecord]]) -> list[int]:
    return [r.offset for rs in batch.values() for r in rs]


async def test_getmany_returns_what_is_there(log: streamlog.Log) -> None:
    produce(log, 10)
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        got = await c.getmany()
        assert offsets(got) == list(range(10))
        assert await c.getmany() == {}
        got = await c.getmany(timeout_ms=0)
        assert got == {}


async def test_max_records_and_getone(log: streamlog.Log) -> None:
    produce(log, 10)
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        assert offsets(await c.getmany(max_records=3)) == [0, 1, 2]
        r = await c.getone()
        assert (r.offset, r.value) == (3, b"3")
        assert await c.position(TP) == 4


async def test_getmany_times_out(log: streamlog.Log) -> None:
    async with AIOConsumer(log, "t") as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await c.getmany(timeout_ms=150) == {}
        assert 0.14 <= loop.time() - t0 < 2.0


@pytest.fixture
def long_naps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sleeps on the bell last up to 5 s: a prompt wake-up is the append's doing."""
    monkeypatch.setattr(streamlog.aio._waker, "_NAP", 5.0)


@pytest.mark.usefixtures("long_naps")
async def test_an_append_on_the_loop_wakes_a_waiting_getmany(log: streamlog.Log) -> None:
    async with AIOProducer(log) as p, AIOConsumer(log, "t") as c:
        await c.getmany()  # (position pinned at the end)
        loop = asyncio.get_running_loop()
        waiting = asyncio.create_task(c.getmany(timeout_ms=10_000))
        await asyncio.sleep(0.05)
        t0 = loop.time()
        await p.send("t", b"hi")
        got = await waiting
        assert loop.time() - t0 < 0.5  # woken by the append, not by the (5 s) nap
        assert [r.value for r in got[TP]] == [b"hi"]


@pytest.mark.usefixtures("long_naps")
async def test_an_append_from_another_thread_wakes_a_waiting_getmany(log: streamlog.Log) -> None:
    async with AIOConsumer(log, "t") as c:
        await c.getmany()
        sent = []

        def later() -> None:
            time.sleep(0.1)
            sent.append(time.monotonic())
            produce(log, 1)

        threading.Thread(target=later).start()
        got = await c.getmany(timeout_ms=10_000)
        assert time.monotonic() - sent[0] < 0.5  # (not the 5 s nap)
        assert offsets(got) == [0]


async def test_async_for_ends_after_consumer_timeout_ms(log: streamlog.Log) -> None:
    produce(log, 5)
    async with AIOConsumer(log, "t", auto_offset_reset="earliest", consumer_timeout_ms=100) as c:
        got = [r.value async for r in c]
    assert got == [b"0", b"1", b"2", b"3", b"4"]


async def test_getmany_of_some_partitions(log: streamlog.Log) -> None:
    with log.producer() as p:
        for part in range(3):
            p.send("t3", b"p%d" % part, partition=part)
    async with AIOConsumer(log, "t3", auto_offset_reset="earliest") as c:
        one = TopicPartition("t3", 1)
        got = await c.getmany(one, timeout_ms=1000)
        assert list(got) == [one]
        r = await c.getone(TopicPartition("t3", 2))
        assert r.value == b"p2"
        rest = await c.getmany(timeout_ms=1000)
        assert list(rest) == [TopicPartition("t3", 0)]
        with pytest.raises(streamlog.IllegalStateError):
            await c.getmany(TopicPartition("t", 0))


async def test_seek_and_offsets(log: streamlog.Log) -> None:
    produce(log, 10)
    async with AIOConsumer(log, auto_offset_reset="latest") as c:
        c.assign([TP])
        assert c.assignment() == {TP}
        assert await c.position(TP) == 10
        assert await c.beginning_offsets([TP]) == {TP: 0}
        assert await c.end_offsets([TP]) == {TP: 10}
        assert c.highwater(TP) == 10
        assert c.last_stable_offset(TP) == 10
        c.seek(TP, 7)
        assert offsets(await c.getmany()) == [7, 8, 9]
        await c.seek_to_beginning()
        assert offsets(await c.getmany(max_records=2)) == [0, 1]
        await c.seek_to_end(TP)
        assert await c.getmany() == {}
        found = await c.offsets_for_times({TP: 0})
        assert found[TP] is not None and found[TP].offset == 0
        c.seek(TP, 2)
        c.pause(TP)
        assert c.paused() == {TP}
        assert await c.getmany(timeout_ms=20) == {}
        c.resume(TP)
        assert offsets(await c.getmany(max_records=1)) == [2]
        assert await c.topics() >= {"t", "t3"}
        assert c.partitions_for_topic("t3") == {0, 1, 2}
        assert c.partitions_for_topic("nope") is None


async def test_commit_and_seek_to_committed(log: streamlog.Log) -> None:
    produce(log, 10)
    async with AIOConsumer(log, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TP])
        assert offsets(await c.getmany(max_records=4)) == [0, 1, 2, 3]
        await c.commit()
        assert await c.committed(TP) == 4
        await c.getmany()
        assert await c.seek_to_committed() == {TP: 4}
        assert offsets(await c.getmany(max_records=1)) == [4]
        await c.commit({TP: streamlog.OffsetAndMetadata(9)})
        assert await c.committed(TP) == 9


async def test_fsync_commits_run_in_a_worker_thread(log: streamlog.Log) -> None:
    produce(log, 3)
    async with AIOConsumer(
        log, group_id="g", auto_offset_reset="earliest", fsync_commits=True
    ) as c:
        c.assign([TP])
        await c.getmany()
        await c.commit()
        assert await c.committed(TP) == 3


# ---------------------------------------------------------------- cancellation, close


async def test_a_cancelled_getmany_loses_nothing(log: streamlog.Log) -> None:
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        for _ in range(20):
            task = asyncio.create_task(c.getmany(timeout_ms=10_000))
            await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        produce(log, 5)
        for _ in range(5):  # cancelled the moment the records land
            task = asyncio.create_task(c.getmany(timeout_ms=10_000))
            await asyncio.sleep(0)
            task.cancel()
            try:
                got = await task
            except asyncio.CancelledError:
                continue
            assert offsets(got) == [0, 1, 2, 3, 4]  # (returned before the cancel arrived)
            return
        assert await c.position(TP) == 0
        assert offsets(await c.getmany(timeout_ms=1000)) == [0, 1, 2, 3, 4]


async def test_timeouts_around_getone(log: streamlog.Log) -> None:
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.getone(), 0.05)
        produce(log, 2)
        assert (await asyncio.wait_for(c.getone(), 5)).offset == 0
        assert (await asyncio.wait_for(c.getone(), 5)).offset == 1


async def test_close_ends_waiting_calls(log: streamlog.Log) -> None:
    c = AIOConsumer(log, "t")
    many = asyncio.create_task(c.getmany(timeout_ms=None))
    one = asyncio.create_task(c.getone())

    async def iterate() -> list[streamlog.ConsumerRecord]:
        return [r async for r in c]

    it = asyncio.create_task(iterate())
    await asyncio.sleep(0.05)
    await c.close()
    assert await many == {}
    with pytest.raises(streamlog.ClosedError):
        await one
    assert await it == []
    with pytest.raises(streamlog.ClosedError):
        await c.getmany()
    await c.close()


async def test_several_tasks_share_the_records(log: streamlog.Log) -> None:
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        seen: list[int] = []

        async def reader() -> None:
            while len(seen) < 100:
                got = await c.getmany(timeout_ms=200, max_records=7)
                seen.extend(offsets(got))

        tasks = [asyncio.create_task(reader()) for _ in range(3)]
        await asyncio.sleep(0.02)
        async with AIOProducer(log) as p:
            for i in range(100):
                await p.send("t", b"%d" % i)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert sorted(seen) == list(range(100))


async def test_a_consumer_given_a_path(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        produce(log, 3)
    async with AIOConsumer(data_dir, "t", auto_offset_reset="earliest") as c:
        assert offsets(await c.getmany(timeout_ms=1000)) == [0, 1, 2]


async def test_a_dropped_consumer_disarms_its_bell(log: streamlog.Log) -> None:
    doorbell = log._manager.signal.doorbell
    if doorbell is None:
        pytest.skip("no doorbell here")
    c = AIOConsumer(log, "t")
    await c.getmany(timeout_ms=20)
    assert doorbell.sleepers() == 1
    await c.close()
    assert doorbell.sleepers() == 0
    c2 = AIOConsumer(log, "t")
    await c2.getmany(timeout_ms=20)
    assert doorbell.sleepers() == 1
    del c2
    import gc

    gc.collect()
    await wait_until(lambda: doorbell.sleepers() == 0)


async def test_without_a_doorbell_appends_elsewhere_are_noticed_by_back_off(
    log: streamlog.Log, data_dir: str
) -> None:
    """No doorbell (a path too long for a socket, say): appends this process's handle does
    not see (here through a second handle, as another process would) are found by the
    back-off, within a few ms, not at the 100 ms bound of a sleep."""
    signal = log._manager.signal
    doorbell, signal.doorbell = signal.doorbell, None
    try:
        c = AIOConsumer(log, "t", auto_offset_reset="earliest")
        await c.getmany(timeout_ms=1)  # (the waker is made without a doorbell)
    finally:
        signal.doorbell = doorbell
    assert c._waker is not None and c._waker._bell is None
    with streamlog.open(data_dir) as other:
        for i in range(5):
            waiting = asyncio.create_task(c.getmany(timeout_ms=5000))
            await asyncio.sleep(0.03)
            t0 = time.monotonic()
            with other.producer() as p:
                p.send("t", b"%d" % i).result()
            got = await waiting
            assert offsets(got) == [i]
            assert time.monotonic() - t0 < 0.09
    await c.close()


async def test_a_busy_consumer_disarms_its_bell_after_a_second(log: streamlog.Log) -> None:
    doorbell = log._manager.signal.doorbell
    if doorbell is None:
        pytest.skip("no doorbell here")
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        await c.getmany(timeout_ms=20)
        assert doorbell.sleepers() == 1  # armed, and kept between fetches
        produce(log, 1)
        assert offsets(await c.getmany(timeout_ms=1000)) == [0]
        assert doorbell.sleepers() == 1
        assert c._waker is not None
        c._waker._slept -= 2.0  # (as if it had not slept on it for two seconds)
        produce(log, 1, start=1)
        assert offsets(await c.getmany(timeout_ms=1000)) == [1]
        assert doorbell.sleepers() == 0  # writers stop ringing a consumer that never waits
        assert await c.getmany(timeout_ms=20) == {}
        assert doorbell.sleepers() == 1  # armed again when it waits


async def test_async_for_moves_the_position_record_by_record(log: streamlog.Log) -> None:
    produce(log, 10)
    async with AIOConsumer(log, group_id="g", auto_offset_reset="earliest") as c:
        c.assign([TP])
        async for r in c:
            if r.offset == 3:
                break
        assert await c.position(TP) == 4  # after the last record returned, not the batch
        await c.commit()
        assert await c.committed(TP) == 4
        assert offsets(await c.getmany(max_records=2)) == [4, 5]
        async for r in c:  # picks up where getmany left off
            assert r.offset == 6
            break
        c.seek(TP, 1)
        assert (await c.__anext__()).offset == 1
