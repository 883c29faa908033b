"""The running application's record collector and the producer hook it uses
(``Producer._send_batch``): many records of one partition queued as whole batches,
in order with what ``send`` queued around them, failing as ``send`` would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.errors import (
    IllegalStateError,
    RecordTooLargeError,
    StreamsError,
    UnknownPartitionError,
)
from streamlog.streams._runtime import _Collector


@pytest.fixture
def log(log: streamlog.Log) -> Iterator[streamlog.Log]:
    log.create_topic("t", 2)
    yield log


def _read(log: streamlog.Log, partition: int) -> list[tuple[bytes | None, bytes | None, int]]:
    c = log.consumer(auto_offset_reset="earliest")
    tp = TopicPartition("t", partition)
    c.assign([tp])
    out: list[tuple[bytes | None, bytes | None, int]] = []
    end = c.end_offsets([tp])[tp]
    while c.position(tp) < end:
        for records in c.poll(timeout_ms=200).values():
            out.extend((r.key, r.value, r.timestamp) for r in records)
    c.close()
    return out


def test_send_batch_keeps_the_order_with_send(log: streamlog.Log) -> None:
    with log.producer(linger_ms=10_000, batch_size=200) as p:
        p.send("t", b"a", b"k", partition=0, timestamp_ms=1)  # an open batch, lingering
        keys = [b"k%d" % i for i in range(50)]
        values: list[bytes | None] = [b"v%d" % i for i in range(50)]
        values[7] = None
        results = p._send_batch("t", 0, keys, values, list(range(100, 150)))
        assert len(results) > 1  # 200-byte batches
        p.send("t", b"z", b"k", partition=0, timestamp_ms=2)
        p.flush()
        assert all(r.done and r.error is None for r in results)
    got = _read(log, 0)
    assert got[0] == (b"k", b"a", 1)
    assert got[1:51] == list(zip(keys, values, range(100, 150), strict=True))
    assert got[51] == (b"k", b"z", 2)


def test_send_batch_failures(log: streamlog.Log) -> None:
    with log.producer(max_request_size=300) as p:
        results = p._send_batch(
            "t", 1, [b"a", b"b" * 400, b"c"], [b"1", b"2", b"3"], [1, 2, 3]
        )
        p.flush()
        errors = [type(r.error) if r.error is not None else None for r in results]
        assert errors == [None, RecordTooLargeError, None]
        (failed,) = p._send_batch("t", 5, [b"a"], [b"1"], [1])
        assert isinstance(failed.error, UnknownPartitionError)
        assert p._send_batch("t", 0, [], [], []) == []
    assert [v for _k, v, _t in _read(log, 1)] == [b"1", b"3"]


def test_send_batch_outside_a_transaction_raises(log: streamlog.Log) -> None:
    with log.producer(transactional_id="x") as p:
        p.init_transactions()
        with pytest.raises(IllegalStateError):
            p._send_batch("t", 0, [b"a"], [b"1"], [1])
        p.begin_transaction()
        p._send_batch("t", 0, [b"a"], [b"1"], [1])
        p.commit_transaction()
    assert _read(log, 0) == [(b"a", b"1", 1)]


class _Runtime:
    def partition_count(self, topic: str) -> int:
        return 2


def test_collector_rare_records_and_errors(log: streamlog.Log) -> None:
    with log.producer() as p:
        collector = _Collector(_Runtime(), p, False)  # type: ignore[arg-type]
        collector.send("t", b"k1", b"1", 10, (), 0)
        collector.send("t", None, b"keyless", 11, (), 0)  # through send(), in order
        collector.send("t", b"k2", b"2", 12, (("h", b"x"),), 0)  # headers: send() too
        collector.send("t", b"k3", None, 13, (), 0)
        collector.drain()
        p.flush()
        collector.check_sent()
        assert collector.partitions_for("t") == 2
        # what a serde should never produce: refused as send() refuses it
        collector.send("t", "not bytes", b"v", 14, (), 0)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            collector.drain()
        with pytest.raises(TypeError):
            collector.send("t", "not bytes", b"v", 14, (), None)  # type: ignore[arg-type]
        collector.send("t", b"k", b"v", -5, (), 0)
        with pytest.raises(ValueError):
            collector.drain()
    assert _read(log, 0) == [
        (b"k1", b"1", 10),
        (None, b"keyless", 11),
        (b"k2", b"2", 12),
        (b"k3", None, 13),
    ]


def test_collector_reports_failed_writes(log: streamlog.Log) -> None:
    with log.producer(max_request_size=200) as p:
        collector = _Collector(_Runtime(), p, False)  # type: ignore[arg-type]
        collector.send("t", b"k", b"x" * 500, 1, (), None)
        collector.drain()
        p.flush()
        with pytest.raises(StreamsError, match="could not write its output") as info:
            collector.check_sent()
        assert isinstance(info.value.__cause__, RecordTooLargeError)
        collector.check_sent()  # reported once


def test_keyed_records_go_where_the_producer_puts_them(log: streamlog.Log) -> None:
    keys = [b"key-%d" % i for i in range(40)]
    with log.producer() as p:
        collector = _Collector(_Runtime(), p, False)  # type: ignore[arg-type]
        for k in keys:
            collector.send("t", k, b"c", 1, (), None)
        collector.drain()
        for k in keys:
            p.send("t", b"p", k, timestamp_ms=1)
        p.flush()
        collector.check_sent()
    for partition in (0, 1):
        got: dict[Any, list[bytes | None]] = {}
        for k, v, _t in _read(log, partition):
            got.setdefault(k, []).append(v)
        assert all(vs == [b"c", b"p"] for vs in got.values())
