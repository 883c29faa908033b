"""The pytest plugin (``streamlog.testing.pytest_plugin``, entry point ``pytest11``): a
test suite that only has streamlog installed gets ``kafka_cluster`` and
``streamlog_log``."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = '''
import importlib
import os
import sys

import streamlog


def test_kafka_cluster_confluent(kafka_cluster):
    assert isinstance(kafka_cluster.bootstrap_servers, str)
    assert isinstance(kafka_cluster.log, streamlog.Log)
    assert os.path.isdir(kafka_cluster.path)
    from confluent_kafka import Consumer, Producer

    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    p.produce("events", b"hello", key=b"k")
    assert p.flush(5) == 0
    assert kafka_cluster.log.topics() == ["events"]
    c = Consumer({"bootstrap.servers": kafka_cluster.bootstrap_servers, "group.id": "g",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["events"])
    msg = None
    for _ in range(50):
        msg = c.poll(0.1)
        if msg is not None and not msg.error():
            break
    assert msg.value() == b"hello"
    c.close()


def test_kafka_cluster_kafka_python(kafka_cluster):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers)
    producer.send("k-events", b"v").get(timeout=5)
    producer.close()
    assert "k-events" in kafka_cluster.log.topics()


def test_each_test_gets_a_fresh_cluster(kafka_cluster):
    assert kafka_cluster.log.topics() == []


def test_shims_are_gone_after_the_test():
    # (the real packages may be imported in this process: only the shims must be gone)
    for name in ("confluent_kafka", "kafka"):
        mod = sys.modules.get(name)
        assert mod is None or not mod.__name__.startswith("streamlog"), name


def test_streamlog_log(streamlog_log):
    assert isinstance(streamlog_log, streamlog.Log)
    assert streamlog_log.topics() == []
    streamlog_log.create_topic("t", partitions=2)
    with streamlog_log.producer() as p:
        p.send("t", b"x", partition=1).result(5)
    assert streamlog_log.describe_topic("t").partitions[1].end_offset == 1


def test_streamlog_log_is_fresh(streamlog_log):
    assert streamlog_log.topics() == []
'''


def test_plugin_fixtures_in_a_user_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=6)


def test_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    """Listed by ``pytest --fixtures`` with no conftest and no ``-p``: the entry point."""
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*kafka_cluster*", "*streamlog_log*"])
    assert result.ret == 0


def test_streamlog_log_closed_after_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_closed='''
import pytest
import streamlog

seen = []

def test_a(streamlog_log):
    seen.append(streamlog_log)

def test_b():
    with pytest.raises(streamlog.ClosedError):
        seen[0].topics()
''')
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(passed=2)



def test_plugin_clock_and_member_expiry(pytester: pytest.Pytester) -> None:
    """``kafka_cluster.clock`` and ``kafka_cluster.expire_member`` from a user's suite, with
    both clients; each test gets a fresh (real) clock."""
    pytester.makepyfile(test_faults='''
import time


def test_clock_drives_timestamps_and_retention(kafka_cluster):
    from confluent_kafka import Producer
    from kafka import KafkaProducer

    kafka_cluster.log.create_topic("r", config={"retention.ms": 1000})
    kafka_cluster.clock.set(1_000_000)
    assert KafkaProducer().send("r", b"a").get(5).timestamp == 1_000_000
    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    stamps = []
    p.produce("r", b"b", on_delivery=lambda err, msg: stamps.append(msg.timestamp()[1]))
    assert p.flush(5) == 0 and stamps == [1_000_000]
    kafka_cluster.clock.advance(1001)
    assert kafka_cluster.log.describe_topic("r").partitions[0].log_start_offset == 2


def test_each_test_gets_a_real_clock(kafka_cluster):
    assert not kafka_cluster.clock.frozen
    assert abs(kafka_cluster.clock.now_ms() - time.time() * 1000) < 1000


def _poll_until(consumers, cond, poll):
    deadline = time.monotonic() + 5
    while not cond() and time.monotonic() < deadline:
        for c in consumers:
            poll(c)
    assert cond()


def test_expire_member_kafka_python(kafka_cluster):
    from kafka import KafkaConsumer
    from kafka.errors import CommitFailedError

    c = KafkaConsumer("t", group_id="g", enable_auto_commit=False)
    _poll_until([c], lambda: bool(c.assignment()), lambda c: c.poll(50))
    tp = next(iter(c.assignment()))
    kafka_cluster.expire_member(c)
    try:
        c.commit({tp: 0})
    except CommitFailedError:
        pass
    else:
        raise AssertionError("the expired member's commit went through")
    c.poll(0)
    _poll_until([c], lambda: bool(c.assignment()), lambda c: c.poll(50))
    c.commit({tp: 0})


def test_expire_member_confluent(kafka_cluster):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    lost = []
    kafka_cluster.log.create_topic("t", 1)  # librdkafka's consumer does not auto-create
    c = Consumer({"group.id": "g", "enable.auto.commit": False})
    c.subscribe(["t"], on_lost=lambda cons, parts: lost.append(parts))
    _poll_until([c], lambda: bool(c.assignment()), lambda c: c.poll(0.05))
    kafka_cluster.expire_member(c)
    try:
        c.commit(offsets=[TopicPartition("t", 0, 0)], asynchronous=False)
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID
    else:
        raise AssertionError("the expired member's commit went through")
    c.poll(0)
    assert len(lost) == 1
    c.close()
''')
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(passed=4)
