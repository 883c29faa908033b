"""``AIOProducer``: sends, futures, flush, a full buffer, cancellation, transactions."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.aio import AIOConsumer, AIOProducer

pytestmark = pytest.mark.asyncio

Stall = Callable[[AIOProducer], threading.Event]
TP = TopicPartition("t", 0)


def values(log: streamlog.Log, topic: str = "t", **config: Any) -> list[bytes | None]:
    """Every record of ``topic`` (all partitions), read with a sync consumer."""
    c = log.consumer(auto_offset_reset="earliest", consumer_timeout_ms=0, **config)
    meta = log.describe_topic(topic)
    c.assign([TopicPartition(topic, p.partition) for p in meta.partitions])
    out = [r.value for r in c]
    c.close()
    return out


async def test_send_and_wait_returns_metadata_in_order(log: streamlog.Log) -> None:
    async with AIOProducer(log) as p:
        mds = [await p.send_and_wait("t", b"v%d" % i, key=b"k") for i in range(5)]
    assert [md.offset for md in mds] == [0, 1, 2, 3, 4]
    assert {(md.topic, md.partition) for md in mds} == {("t", 0)}
    assert values(log) == [b"v0", b"v1", b"v2", b"v3", b"v4"]


async def test_send_returns_an_asyncio_future(log: streamlog.Log) -> None:
    async with AIOProducer(log, linger_ms=5) as p:
        futs = [await p.send("t", b"%d" % i) for i in range(100)]
        assert all(isinstance(f, asyncio.Future) for f in futs)
        mds = await asyncio.gather(*futs)
    assert [md.offset for md in mds] == list(range(100))


@pytest.mark.parametrize("acks", [0, 1, "all"])
async def test_every_acks_level(log: streamlog.Log, acks: object) -> None:
    async with AIOProducer(log, acks=acks) as p:
        mds = [await p.send_and_wait("t", b"x") for _ in range(3)]
        await p.flush()
    if acks == 0:
        assert [md.offset for md in mds] == [-1, -1, -1]
    else:
        assert [md.offset for md in mds] == [0, 1, 2]
    assert values(log) == [b"x"] * 3


async def test_flush_completes_lingering_batches(log: streamlog.Log) -> None:
    async with AIOProducer(log, linger_ms=60_000) as p:
        futs = [await p.send("t3", b"%d" % i, key=b"%d" % i) for i in range(30)]
        assert not any(f.done() for f in futs)
        await p.flush()
        assert all(f.done() for f in futs)
    assert sorted(values(log, "t3")) == sorted(b"%d" % i for i in range(30))


async def test_flush_times_out(log: streamlog.Log, stalled_writes: Stall) -> None:
    async with AIOProducer(log, acks="all") as p:
        go = stalled_writes(p)
        fut = await p.send("t", b"x")
        with pytest.raises(streamlog.KafkaTimeoutError):
            await p.flush(timeout_ms=50)
        go.set()
        await p.flush()
        assert (await fut).offset == 0


async def test_serializers_and_headers(log: streamlog.Log) -> None:
    async with AIOProducer(
        log,
        key_serializer=str.encode,
        value_serializer=lambda v: json.dumps(v).encode(),
    ) as p:
        await p.send_and_wait("t", {"a": 1}, key="k", headers=[("h", b"1")])
    c = log.consumer(auto_offset_reset="earliest", consumer_timeout_ms=0)
    c.assign([TP])
    (r,) = list(c)
    c.close()
    assert (r.key, r.value, r.headers) == (b"k", b'{"a": 1}', (("h", b"1"),))


async def test_errors_of_a_send_arrive_through_the_future(log: streamlog.Log) -> None:
    async with AIOProducer(log) as p:
        fut = await p.send("no-such-topic", b"x")
        with pytest.raises(streamlog.UnknownTopicError):
            await fut
        with pytest.raises(streamlog.UnknownPartitionError):
            await p.send_and_wait("t", b"x", partition=7)
        with pytest.raises(TypeError):  # misuse raises at the call
            await p.send("t", "not bytes")
        assert await p.partitions_for("t3") == {0, 1, 2}


async def test_send_waits_for_buffer_space_on_the_loop(log: streamlog.Log) -> None:
    # 60 records of ~116 bytes through a 1,000-byte buffer: sends wait for space
    async with AIOProducer(log, buffer_memory=1000, linger_ms=60_000, batch_size=100_000) as p:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        t = asyncio.create_task(ticker())
        futs = [await p.send("t", bytes([i]) * 100) for i in range(60)]
        await p.flush()
        t.cancel()
        assert [f.result().offset for f in futs] == list(range(60))
    assert values(log) == [bytes([i]) * 100 for i in range(60)]


async def test_a_full_buffer_fails_after_max_block_ms(
    log: streamlog.Log, stalled_writes: Stall
) -> None:
    async with AIOProducer(log, acks="all", buffer_memory=1000, max_block_ms=100) as p:
        go = stalled_writes(p)
        first = [await p.send("t", b"a" * 400) for _ in range(2)]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        late = await p.send("t", b"b" * 400)  # does not fit: waits 100 ms, then fails
        assert 0.08 <= loop.time() - t0 < 5
        with pytest.raises(streamlog.KafkaTimeoutError):
            await late
        go.set()
        assert [(await f).offset for f in first] == [0, 1]
    assert values(log) == [b"a" * 400] * 2


async def test_cancelled_while_waiting_for_the_ack_the_record_is_sent(
    log: streamlog.Log, stalled_writes: Stall
) -> None:
    async with AIOProducer(log, acks="all") as p:
        go = stalled_writes(p)
        task = asyncio.create_task(p.send_and_wait("t", b"sent"))
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go.set()
        await p.flush()
    assert values(log) == [b"sent"]  # written once, whole


async def test_cancelled_while_waiting_for_space_nothing_is_sent(
    log: streamlog.Log, stalled_writes: Stall
) -> None:
    async with AIOProducer(log, acks="all", buffer_memory=1000, max_block_ms=60_000) as p:
        go = stalled_writes(p)
        first = await p.send("t", b"a" * 600)
        task = asyncio.create_task(p.send_and_wait("t", b"never" * 100))
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go.set()
        await p.flush()
        assert (await first).offset == 0
    assert values(log) == [b"a" * 600]


async def test_cancelling_a_returned_future_does_not_withdraw_the_record(
    log: streamlog.Log, stalled_writes: Stall
) -> None:
    async with AIOProducer(log, acks="all") as p:
        go = stalled_writes(p)
        fut = await p.send("t", b"x")
        fut.cancel()
        go.set()
        await p.flush()
    assert values(log) == [b"x"]


async def test_close_is_idempotent_and_later_sends_raise(log: streamlog.Log) -> None:
    p = AIOProducer(log, linger_ms=60_000)
    fut = await p.send("t", b"x")
    await p.close()
    await p.close()
    assert (await fut).offset == 0  # close flushes
    with pytest.raises(streamlog.ClosedError):
        await p.send("t", b"y")


async def test_a_producer_given_a_path_opens_and_closes_it(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
    p = AIOProducer(data_dir)
    with pytest.raises(streamlog.IllegalStateError, match="not started"):
        await p.send("t", b"x")
    async with p:
        await p.send_and_wait("t", b"x")
    assert p._manager is not None and p._manager.closed
    with streamlog.open(data_dir) as log:
        assert values(log) == [b"x"]


async def test_bad_config_raises_at_construction(log: streamlog.Log) -> None:
    with pytest.raises(streamlog.ConfigError):
        AIOProducer(log, acks=2)
    with pytest.raises(streamlog.ConfigError):
        AIOProducer(log, no_such_setting=1)


# ---------------------------------------------------------------- transactions


async def test_transaction_commit_and_abort(log: streamlog.Log) -> None:
    async with AIOProducer(log, transactional_id="tx-1") as p:
        await p.init_transactions()
        async with p.transaction():
            await p.send("t", b"committed-1")
            await p.send("t", b"committed-2")
        await p.begin_transaction()
        await p.send("t", b"aborted")
        await p.abort_transaction()
        with pytest.raises(RuntimeError, match="boom"):
            async with p.transaction():
                await p.send("t", b"aborted-too")
                raise RuntimeError("boom")
    assert values(log, isolation_level="read_committed") == [b"committed-1", b"committed-2"]


async def test_read_committed_consumer_waits_for_the_commit(log: streamlog.Log) -> None:
    async with (
        AIOProducer(log, transactional_id="tx-2") as p,
        AIOConsumer(log, "t", auto_offset_reset="earliest", isolation_level="read_committed") as c,
    ):
        await p.init_transactions()
        await p.begin_transaction()
        await p.send_and_wait("t", b"pending")
        assert await c.getmany(timeout_ms=100) == {}
        waiting = asyncio.create_task(c.getmany(timeout_ms=5000))
        await asyncio.sleep(0.05)
        await p.commit_transaction()
        got = await waiting
        assert [r.value for r in got[TP]] == [b"pending"]


async def test_send_offsets_to_transaction(log: streamlog.Log) -> None:
    async with AIOProducer(log) as plain:
        for i in range(3):
            await plain.send_and_wait("t", b"%d" % i)
    async with (
        AIOProducer(log, transactional_id="tx-3") as p,
        AIOConsumer(log, "t", group_id="g", auto_offset_reset="earliest") as c,
    ):
        await p.init_transactions()
        got = await c.getmany(timeout_ms=5000)
        assert len(got[TP]) == 3
        await p.begin_transaction()
        await p.send("t3", b"out", key=b"k")
        await p.send_offsets_to_transaction(
            {TP: streamlog.OffsetAndMetadata(3)}, c.group_metadata()
        )
        await p.commit_transaction()
        assert await c.committed(TP) == 3


async def test_read_committed_consumer_skips_aborted_transactions(log: streamlog.Log) -> None:
    async with (
        AIOProducer(log, transactional_id="tx-4") as p,
        AIOConsumer(log, "t", auto_offset_reset="earliest", isolation_level="read_committed") as c,
    ):
        await p.init_transactions()
        for i in range(6):
            await p.begin_transaction()
            await p.send("t", b"txn-%d" % i)
            if i % 2:
                await p.abort_transaction()
            else:
                await p.commit_transaction()
        got: list[bytes] = []
        while len(got) < 3:
            batch = await c.getmany(timeout_ms=2000)
            assert batch, "nothing within 2 s"
            got += [r.value for r in batch[TP] if r.value is not None]
        assert got == [b"txn-0", b"txn-2", b"txn-4"]
        assert await c.getmany(timeout_ms=50) == {}
        assert c.last_stable_offset(TP) == c.highwater(TP)
