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
    assert "confluent_kafka" not in sys.modules
    assert "kafka" not in sys.modules


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
    result = pytester.runpytest("-p", "no:cacheprovider")
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
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)

