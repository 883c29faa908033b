"""Fault injection through the ``kafka_cluster`` fixture (``Installation.fail_next``,
``force_rebalance``, ``pause``/``resume``), seen from both shims."""

from __future__ import annotations

import time
from typing import Any

import pytest


def _drain_kp(c: Any, want: int, timeout: float = 3.0) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=100).values():
            out.extend(recs)
    return out


def _drain_ck(c: Any, want: int, timeout: float = 3.0) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None and not msg.error():
            out.append(msg)
    return out


# ---------------------------------------------------------------- the registry


def test_fail_next_validates(kafka_cluster: Any) -> None:
    with pytest.raises(ValueError, match="operation"):
        kafka_cluster.fail_next("fetch")
    with pytest.raises(ValueError, match="unknown error"):
        kafka_cluster.fail_next("produce", error="NoSuchError")
    with pytest.raises(ValueError):
        kafka_cluster.fail_next("produce", n=-1)
    inst = kafka_cluster.installation
    kafka_cluster.fail_next("produce", 1, "NotLeaderForPartition")
    kafka_cluster.fail_next("produce", 1, "TopicAuthorizationFailedError")
    kafka_cluster.fail_next("commit", 1, "REBALANCE_IN_PROGRESS")
    assert inst.take_fault("produce").name == "NOT_LEADER_FOR_PARTITION"
    assert inst.take_fault("produce").retriable is False
    assert inst.take_fault("produce") is None
    kafka_cluster.clear_faults()
    assert inst.take_fault("commit") is None


# ---------------------------------------------------------------- kafka-python


def test_kafka_python_produce_faults(kafka_cluster: Any) -> None:
    from kafka import KafkaProducer
    from kafka import errors as Errors

    p = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    kafka_cluster.fail_next("produce", 2, "NotLeaderForPartition")
    kafka_cluster.fail_next("produce", 1, "TopicAuthorizationFailed")
    futs = [p.send("t", b"v%d" % i) for i in range(4)]
    with pytest.raises(Errors.NotLeaderForPartitionError):
        futs[0].get(5)
    assert futs[1].failed() and futs[1].retriable()
    with pytest.raises(Errors.TopicAuthorizationFailedError):
        futs[2].get(5)
    assert not futs[2].retriable()
    assert futs[3].get(5).offset == 0  # the faults are used up
    p.close()


def test_kafka_python_commit_faults(kafka_cluster: Any) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import errors as Errors

    p = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    p.send("t", b"x").get(5)
    c = KafkaConsumer("t", group_id="g", auto_offset_reset="earliest",
                      enable_auto_commit=False)
    assert len(_drain_kp(c, 1)) == 1
    kafka_cluster.fail_next("commit", 1, "REQUEST_TIMED_OUT")
    kafka_cluster.fail_next("commit", 1, "GROUP_AUTHORIZATION_FAILED")
    with pytest.raises(Errors.RequestTimedOutError) as info:
        c.commit()
    assert info.value.retriable
    seen: list[Any] = []
    c.commit_async(callback=lambda offsets, res: seen.append(res))
    assert isinstance(seen[0], Errors.GroupAuthorizationFailedError)
    assert c.committed(TopicPartition("t", 0)) is None
    c.commit()
    assert c.committed(TopicPartition("t", 0)) == 1
    c.close()
    p.close()


def test_kafka_python_pause_and_rebalance(kafka_cluster: Any) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    kafka_cluster.log.create_topic("t2", partitions=2)
    p = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    for part in (0, 1):
        p.send("t2", b"a", partition=part).get(5)

    events: list[str] = []

    class Listener:
        def on_partitions_revoked(self, revoked: Any) -> None:
            events.append("revoked")

        def on_partitions_assigned(self, assigned: Any) -> None:
            events.append("assigned")

    c = KafkaConsumer(group_id="g", auto_offset_reset="earliest")
    c.subscribe(["t2"], listener=Listener())
    kafka_cluster.pause("t2", 1)
    got = _drain_kp(c, 2, timeout=1.0)
    assert {r.partition for r in got} == {0}
    kafka_cluster.resume("t2", 1)
    got = _drain_kp(c, 1)
    assert [r.partition for r in got] == [1]
    assert c.paused() == set()

    before = events.count("assigned")
    assert kafka_cluster.force_rebalance("g") == 1
    assert kafka_cluster.force_rebalance("other") == 0
    _drain_kp(c, 1, timeout=0.5)
    assert events.count("assigned") > before
    c.close()
    p.close()


# ---------------------------------------------------------------- confluent-kafka


def test_confluent_produce_faults(kafka_cluster: Any) -> None:
    from confluent_kafka import KafkaError, Producer

    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    kafka_cluster.fail_next("produce", 1, "REQUEST_TIMED_OUT")
    kafka_cluster.fail_next("produce", 1, "TopicAuthorizationFailed")
    reports: list[Any] = []
    for i in range(3):
        p.produce("t", b"v%d" % i, on_delivery=lambda err, msg: reports.append((err, msg)))
    assert p.flush(5) == 0
    errs = [err for err, _ in reports]
    assert errs[0].code() == KafkaError.REQUEST_TIMED_OUT and errs[0].retriable()
    assert errs[1].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and not errs[1].retriable()
    assert errs[2] is None and reports[2][1].offset() == 0


def test_confluent_commit_faults(kafka_cluster: Any) -> None:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    p.produce("t", b"x")
    p.flush(5)
    commits: list[Any] = []
    c = Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False,
                  "on_commit": lambda err, parts: commits.append(err)})
    c.subscribe(["t"])
    (msg,) = _drain_ck(c, 1)
    kafka_cluster.fail_next("commit", 2, "NOT_COORDINATOR")
    with pytest.raises(KafkaException) as info:
        c.commit(message=msg, asynchronous=False)
    assert info.value.args[0].code() == KafkaError.NOT_COORDINATOR
    assert info.value.args[0].retriable()
    c.commit(message=msg)  # asynchronous: the error goes to on_commit
    assert commits[-1].code() == KafkaError.NOT_COORDINATOR
    c.commit(message=msg, asynchronous=False)
    (tp,) = c.committed([msg_tp(msg)])
    assert tp.offset == 1
    c.close()


def msg_tp(msg: Any) -> Any:
    from confluent_kafka import TopicPartition

    return TopicPartition(msg.topic(), msg.partition())


def test_confluent_pause_and_rebalance(kafka_cluster: Any) -> None:
    from confluent_kafka import Consumer, Producer

    kafka_cluster.log.create_topic("t2", partitions=2)
    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    for part in (0, 1):
        for _ in range(3):
            p.produce("t2", b"a", partition=part)
    p.flush(5)
    assigns: list[Any] = []
    c = Consumer({"group.id": "g", "auto.offset.reset": "earliest"})
    c.subscribe(["t2"], on_assign=lambda cons, parts: assigns.append(parts))
    first = _drain_ck(c, 1)  # joined; records of both partitions may be buffered now
    kafka_cluster.pause("t2", 1)
    rest = _drain_ck(c, 6, timeout=1.0)
    got = first + rest
    assert all(m.partition() == 0 for m in rest)
    assert len([m for m in got if m.partition() == 0]) == 3
    kafka_cluster.resume("t2", 1)
    more = _drain_ck(c, 6 - len(got))
    assert sorted(m.offset() for m in got + more if m.partition() == 1) == [0, 1, 2]

    before = len(assigns)
    assert kafka_cluster.force_rebalance("g") == 1
    _drain_ck(c, 1, timeout=0.5)
    assert len(assigns) > before
    c.close()


# ---------------------------------------------------------------- member expiry


def _settle(consumers: list[Any], poll: Any, done: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        for c in consumers:
            poll(c)
    assert done(), "the group did not settle"


def test_expire_member_validates(kafka_cluster: Any) -> None:
    from kafka import KafkaConsumer

    c = KafkaConsumer(group_id="g")
    with pytest.raises(ValueError, match="not a member"):
        kafka_cluster.expire_member(c)  # never subscribed
    c.subscribe(["t"])
    with pytest.raises(ValueError, match="not a member"):
        kafka_cluster.expire_member(c)  # not joined yet: joins at its first poll
    c.poll(100)
    with pytest.raises(ValueError, match="not a member of group 'g'"):
        kafka_cluster.expire_member("g", "nobody")
    with pytest.raises(TypeError):
        kafka_cluster.expire_member("g")
    with pytest.raises(TypeError):
        kafka_cluster.expire_member(object())
    c.close()


def test_kafka_python_expired_member(kafka_cluster: Any) -> None:
    """kafka-python: the expired consumer's commit raises CommitFailedError; its next poll
    revokes its partitions (a kafka-python listener has no on_partitions_lost) and joins
    again under a new member id; the other member is rebalanced meanwhile."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import errors as Errors

    kafka_cluster.log.create_topic("t2", partitions=2)
    p = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    for part in (0, 1):
        p.send("t2", b"a", partition=part).get(5)
    events: list[tuple[str, str, list[int]]] = []

    def listener(name: str) -> Any:
        class Listener:
            def on_partitions_revoked(self, revoked: Any) -> None:
                events.append((name, "revoked", sorted(tp.partition for tp in revoked)))

            def on_partitions_assigned(self, assigned: Any) -> None:
                events.append((name, "assigned", sorted(tp.partition for tp in assigned)))

        return Listener()

    consumers = []
    for name in ("c1", "c2"):
        c = KafkaConsumer(group_id="g", auto_offset_reset="earliest", enable_auto_commit=False)
        c.subscribe(["t2"], listener=listener(name))
        consumers.append(c)
    c1, c2 = consumers
    _settle(consumers, lambda c: c.poll(50),
            lambda: len(c1.assignment()) == 1 and len(c2.assignment()) == 1)
    (mine,) = c1.assignment()
    old_id = c1._consumer.group_metadata().member_id
    events.clear()

    assert kafka_cluster.expire_member(c1) == old_id
    with pytest.raises(Errors.CommitFailedError):
        c1.commit({mine: 1})
    c1.poll(0)  # finds out: its partitions are revoked, it joins again
    assert events[0] == ("c1", "revoked", [mine.partition])
    assert c1.assignment() == set()
    _settle(consumers, lambda c: c.poll(50),
            lambda: len(c1.assignment()) == 1 and len(c2.assignment()) == 1
            and ("c1", "assigned", [c1.assignment().pop().partition]) in events)
    assert c1._consumer.group_metadata().member_id not in ("", old_id)
    assert any(e[0] == "c2" for e in events)  # the other member was rebalanced
    (now_mine,) = c1.assignment()
    c1.commit({now_mine: 1})  # a member again
    assert c1.committed(TopicPartition("t2", now_mine.partition)) == 1
    for c in consumers:
        c.close()
    p.close()


def test_confluent_expired_member(kafka_cluster: Any) -> None:
    """confluent-kafka: the expired consumer's commit fails with UNKNOWN_MEMBER_ID (sync:
    raised; async: on_commit); its next poll calls on_lost (not on_revoke) and it joins
    again; a consumer with no on_lost gets on_revoke."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

    kafka_cluster.log.create_topic("t2", partitions=2)
    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    for part in (0, 1):
        for i in range(3):
            p.produce("t2", b"v%d" % i, partition=part)
    assert p.flush(5) == 0
    events: list[tuple[str, str, list[int]]] = []
    commits: list[Any] = []

    def make(name: str, with_lost: bool) -> Any:
        def cb(what: str) -> Any:
            return lambda cons, parts: events.append((name, what, [tp.partition for tp in parts]))

        c = Consumer({"group.id": "g", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False,
                      "on_commit": lambda err, parts: commits.append(err)})
        c.subscribe(["t2"], on_assign=cb("assign"), on_revoke=cb("revoke"),
                    on_lost=cb("lost") if with_lost else None)
        return c

    c1, c2 = make("c1", True), make("c2", False)
    got: list[Any] = []

    def poll(c: Any) -> None:
        msg = c.poll(0.05)
        if c is c1 and msg is not None and not msg.error():
            got.append(msg)

    _settle([c1, c2], poll,
            lambda: len(c1.assignment()) == 1 and len(c2.assignment()) == 1 and bool(got))
    old_id = c1.memberid()
    (mine,) = c1.assignment()
    events.clear()

    assert kafka_cluster.expire_member(c1) == old_id
    with pytest.raises(KafkaException) as info:
        c1.commit(message=got[-1], asynchronous=False)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID
    c1.commit(message=got[-1])  # asynchronous: to on_commit, from a later poll

    c1.poll(0)  # finds out before handing out anything it had buffered
    assert events[0] == ("c1", "lost", [mine.partition])
    assert c1.assignment() == []
    _settle([c1, c2], poll,
            lambda: len(c1.assignment()) == 1 and len(c2.assignment()) == 1
            and any(e[:2] == ("c1", "assign") for e in events) and bool(commits))
    assert commits[0].code() == KafkaError.UNKNOWN_MEMBER_ID
    assert c1.memberid() not in (None, old_id)
    assert ("c2", "revoke", [1 - mine.partition]) in events or (
        "c2", "revoke", [mine.partition]) in events

    # without on_lost, the lost partitions go to on_revoke
    events.clear()
    (theirs,) = c2.assignment()
    kafka_cluster.expire_member("g", c2.memberid())
    c2.poll(0)
    assert events[0] == ("c2", "revoke", [theirs.partition])
    c1.close()
    c2.close()
