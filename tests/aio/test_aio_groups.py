"""Consumer groups with ``AIOConsumer``: two members with listeners (coroutines and
plain callbacks), commits in ``on_partitions_revoked``, cancellation during a
rebalance, and every record consumed exactly once across a rebalance."""

from __future__ import annotations

import asyncio

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.aio import AIOConsumer, AIOProducer, ConsumerRebalanceListener

from .conftest import wait_until

pytestmark = pytest.mark.asyncio

FAST = {"heartbeat_interval_ms": 50, "session_timeout_ms": 3000}
T3 = {TopicPartition("t3", p) for p in range(3)}


class Recorder(ConsumerRebalanceListener):
    """Records the callbacks; commits on revoke (as Kafka's docs advise)."""

    def __init__(self, name: str, log: list[tuple[str, str, set[TopicPartition]]]) -> None:
        self.name = name
        self.log = log
        self.consumer: AIOConsumer | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.log.append((self.name, "revoked", revoked))
        if self.consumer is not None and revoked:
            await self.consumer.commit()
            await asyncio.sleep(0.01)  # a real await inside the callback

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.log.append((self.name, "assigned", assigned))


async def produce(log: streamlog.Log, n: int, start: int = 0) -> None:
    async with AIOProducer(log) as p:
        for i in range(start, start + n):
            await p.send("t3", b"%d" % i, key=b"%d" % i)


async def test_two_members_share_partitions_with_listeners(log: streamlog.Log) -> None:
    events: list[tuple[str, str, set[TopicPartition]]] = []
    await produce(log, 300)
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    a = AIOConsumer(log, group_id="g", auto_offset_reset="earliest", **FAST)
    b = AIOConsumer(log, group_id="g", auto_offset_reset="earliest", **FAST)
    la, lb = Recorder("a", events), Recorder("b", events)
    la.consumer, lb.consumer = a, b
    a.subscribe(["t3"], listener=la)
    stop = asyncio.Event()

    async def run(name: str, c: AIOConsumer) -> None:
        while not stop.is_set():
            got = await c.getmany(timeout_ms=50, max_records=20)
            seen[name] += [r.value for rs in got.values() for r in rs if r.value is not None]
            await asyncio.sleep(0.002)  # slow enough for b to join halfway

    ta = asyncio.create_task(run("a", a))
    await wait_until(lambda: len(seen["a"]) > 40)
    b.subscribe(["t3"], listener=lb)
    tb = asyncio.create_task(run("b", b))
    await wait_until(lambda: bool(b.assignment()) and len(a.assignment()) < 3, timeout=10)
    assert a.assignment() | b.assignment() == T3
    assert not a.assignment() & b.assignment()
    await produce(log, 300, start=300)
    await wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= 600, timeout=20)
    stop.set()
    await asyncio.gather(ta, tb)
    await a.close()
    await b.close()
    everything = seen["a"] + seen["b"]
    assert sorted(everything) == sorted(b"%d" % i for i in range(600))  # exactly once
    # the callbacks: a got everything, gave some up (committing first), b got the rest
    assert ("a", "assigned", T3) in events
    revoked_by_a = [e for e in events if e[:2] == ("a", "revoked") and e[2]]
    assert revoked_by_a
    assigned_b = [e for e in events if e[:2] == ("b", "assigned") and e[2]]
    assert assigned_b
    assert events[-1][1] == "revoked"  # close revokes


async def test_closing_a_member_hands_its_partitions_over(log: streamlog.Log) -> None:
    await produce(log, 30)
    async with (
        AIOConsumer(log, "t3", group_id="g", auto_offset_reset="earliest", **FAST) as a,
        AIOConsumer(log, "t3", group_id="g", auto_offset_reset="earliest", **FAST) as b,
    ):

        async def spin(c: AIOConsumer) -> None:
            await c.getmany(timeout_ms=10)

        await wait_until_split(a, b, spin)
        await a.close()
        await wait_until_owned(b, spin)
        assert b.assignment() == T3


async def wait_until_split(a: AIOConsumer, b: AIOConsumer, spin: object) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (a.assignment() and b.assignment()):
        assert loop.time() < deadline
        await asyncio.gather(a.getmany(timeout_ms=10), b.getmany(timeout_ms=10))


async def wait_until_owned(b: AIOConsumer, spin: object) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while b.assignment() != T3:
        assert loop.time() < deadline
        await b.getmany(timeout_ms=10)


async def test_plain_listener_callbacks_work(log: streamlog.Log) -> None:
    calls: list[str] = []

    class Plain(streamlog.ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            calls.append(f"assigned {len(assigned)}")

        def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
            calls.append(f"revoked {len(revoked)}")

    c = AIOConsumer(log, group_id="g", **FAST)
    c.subscribe(["t3"], listener=Plain())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while c.assignment() != T3:
        assert loop.time() < deadline
        await c.getmany(timeout_ms=20)
    await c.close()
    assert calls[-2:] == ["assigned 3", "revoked 3"]


async def test_a_listener_error_reaches_the_fetch(log: streamlog.Log) -> None:
    class Broken(ConsumerRebalanceListener):
        async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            raise RuntimeError("listener failed")

    c = AIOConsumer(log, group_id="g", **FAST)
    c.subscribe(["t3"], listener=Broken())
    with pytest.raises(RuntimeError, match="listener failed"):
        for _ in range(200):
            await c.getmany(timeout_ms=20)
    await c.close()


async def test_cancelled_during_a_rebalance_the_group_stays_consistent(
    log: streamlog.Log,
) -> None:
    """A fetch cancelled while its worker thread takes a group step (here: waits for a
    slow on_partitions_assigned): the step completes, and the records that thread's
    poll read are returned by the next fetch, none lost."""
    await produce(log, 30)
    release = asyncio.Event()
    entered = asyncio.Event()

    class Slow(ConsumerRebalanceListener):
        async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            entered.set()
            await release.wait()

    c = AIOConsumer(log, group_id="g", auto_offset_reset="earliest", **FAST)
    c.subscribe(["t3"], listener=Slow())
    given_back: list[int] = []
    give_back = c._give_back

    def spy(out: dict[TopicPartition, list[streamlog.ConsumerRecord]]) -> None:
        given_back.append(sum(map(len, out.values())))
        give_back(out)

    c._give_back = spy  # type: ignore[method-assign]
    task = asyncio.create_task(c.getmany(timeout_ms=10_000))
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(streamlog.IllegalStateError, match="rebalance is running"):
        c.seek(TopicPartition("t3", 0), 0)
    release.set()
    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(got) < 30:
        assert loop.time() < deadline
        batch = await c.getmany(timeout_ms=100)
        got += [r.value for rs in batch.values() for r in rs if r.value is not None]
    assert sorted(got) == sorted(b"%d" % i for i in range(30))
    assert given_back and given_back[0] > 0  # the thread's poll read records; put back
    assert c.assignment() == T3
    desc = log.describe_group("g")
    assert len(desc.members) == 1
    await c.close()
    assert not log.describe_group("g").members
