"""Whatever is sent is read back identically, in send order per partition."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamlog
from streamlog import TopicPartition
from streamlog.clients._partitioner import murmur2_partition

PARTITIONS = 3

keys = st.none() | st.binary(max_size=12)
values = st.none() | st.binary(max_size=300)
headers = st.none() | st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "", "\u00e9t\u00e9"]) | st.text(max_size=6),
        st.none() | st.binary(max_size=8),
    ),
    max_size=4,
)
timestamps = st.none() | st.integers(min_value=0, max_value=2**42)
partitions = st.none() | st.integers(min_value=0, max_value=PARTITIONS - 1)
records = st.lists(st.tuples(keys, values, headers, timestamps, partitions), max_size=40)
configs = st.fixed_dictionaries(
    {
        "linger_ms": st.sampled_from([0, 2]),
        "batch_size": st.sampled_from([1, 200, 16384]),
        "compression_type": st.sampled_from([None, "zstd"]),
        "acks": st.sampled_from([0, 1, "all"]),
    }
)


@pytest.fixture(scope="module")
def shared_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[streamlog.Log]:
    with streamlog.open(os.fspath(tmp_path_factory.mktemp("roundtrip"))) as log:
        yield log


_topic_numbers = itertools.count()


def read_partition(log: streamlog.Log, topic: str, partition: int) -> list[tuple[Any, ...]]:
    plog = log.partition(topic, partition)
    out: list[tuple[Any, ...]] = []
    offset = 0
    while got := plog.read(offset):
        out.extend(r for b in got for r in b.records())
        offset = got[-1].next_offset
    return out


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=records, config=configs)
def test_sent_records_read_back_identically_per_partition(
    shared_log: streamlog.Log, sent: list[tuple[Any, ...]], config: dict[str, Any]
) -> None:
    log = shared_log
    topic = f"t{next(_topic_numbers)}"
    log.create_topic(topic, PARTITIONS)
    with log.producer(**config) as producer:
        futures = [
            producer.send(topic, value, key, partition=p, timestamp_ms=ts, headers=h)
            for key, value, h, ts, p in sent
        ]
        producer.flush()
        metadata = [f.result(timeout=0) for f in futures]

    expected: dict[int, list[tuple[Any, ...]]] = {p: [] for p in range(PARTITIONS)}
    if config["acks"] == 0:  # no offsets reported, but the partition and timestamp are
        assert all(md.offset == -1 for md in metadata)
    for (key, value, h, ts, p), md in zip(sent, metadata, strict=True):
        assert md.topic == topic
        if p is not None:
            assert md.partition == p
        elif key is not None:
            assert md.partition == murmur2_partition(key, PARTITIONS)
        if ts is not None:
            assert md.timestamp == ts
        expected[md.partition].append((key, value, tuple(h or ()), md.timestamp, md.offset))

    for p in range(PARTITIONS):
        got = read_partition(log, topic, p)
        want = expected[p]
        assert [(k, v, hs, t) for _o, t, k, v, hs in got] == [w[:4] for w in want]
        assert [r[0] for r in got] == list(range(len(want)))
        if config["acks"] != 0:
            assert [w[4] for w in want] == list(range(len(want)))
        log.partition(topic, p)._check()

    consumer = log.consumer(auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    polled: dict[int, list[Any]] = {p: [] for p in range(PARTITIONS)}
    while sum(len(x) for x in polled.values()) < len(sent):
        batch = consumer.poll(timeout_ms=1000)
        assert batch, "the consumer stopped short"
        for tp, recs in batch.items():
            polled[tp.partition].extend(recs)
    consumer.close()
    for p in range(PARTITIONS):
        assert [(r.key, r.value, tuple(r.headers), r.timestamp) for r in polled[p]] == [
            w[:4] for w in expected[p]
        ]
