"""The Consumer in one process: assignment, polling, positions, offsets, pause,
reset policies, deserializers, wakeup/close from other threads, dynamic
subscriptions, lag, and bounded memory.

Groups and commits are not implemented yet and are not tested here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import streamlog
from streamlog import (
    ClosedError,
    ConsumerRecord,
    IllegalStateError,
    NoOffsetForPartitionError,
    OffsetAndTimestamp,
    OffsetOutOfRangeError,
    TopicPartition,
    UnknownPartitionError,
    UnknownTopicError,
    WakeupError,
)
from streamlog.clients import _consumer
from streamlog.storage._codec import COMPRESSION_ZSTD, RecordBatch, prepare_batch

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)
T2 = TopicPartition("t", 2)


def _append(
    log: streamlog.Log,
    tp: TopicPartition,
    values: list[bytes | None],
    **kw: Any,
) -> int:
    """Append ``values`` as ONE batch to ``tp``; returns its base offset."""
    return log.partition(tp.topic, tp.partition).append(prepare_batch(values, **kw)).base_offset


def _fill(log: streamlog.Log, tp: TopicPartition, n: int, per_batch: int = 10) -> None:
    """Append values b"<partition>-<i>" for i in [end, end + n) in batches of ``per_batch``."""
    plog = log.partition(tp.topic, tp.partition)
    start = plog.end_offset
    for lo in range(start, start + n, per_batch):
        hi = min(lo + per_batch, start + n)
        plog.append(prepare_batch([f"{tp.partition}-{i}".encode() for i in range(lo, hi)]))


def _offsets(polled: dict[TopicPartition, list[ConsumerRecord]], tp: TopicPartition) -> list[int]:
    return [r.offset for r in polled.get(tp, [])]


def _drain(consumer: streamlog.Consumer, timeout_ms: int = 50) -> list[ConsumerRecord]:
    out: list[ConsumerRecord] = []
    while True:
        polled = consumer.poll(timeout_ms=timeout_ms)
        if not polled:
            return out
        for records in polled.values():
            out.extend(records)


# ---------------------------------------------------------------- assignment


def test_assign_sets_and_replaces_the_assignment(log: streamlog.Log) -> None:
    log.create_topic("t", 3)
    c = log.consumer()
    assert c.assignment() == set()
    c.assign([T0, T1])
    assert c.assignment() == {T0, T1}
    c.assign([T2])
    assert c.assignment() == {T2}
    # plain tuples are accepted and normalised
    c.assign([("t", 1)])  # type: ignore[list-item]
    assert c.assignment() == {T1}
    assert all(type(tp) is TopicPartition for tp in c.assignment())
    assert c.subscription() == set()
    c.close()


def test_assign_unknown_topic_or_partition_raises_and_keeps_assignment(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer()
    c.assign([T0])
    with pytest.raises(UnknownTopicError):
        c.assign([TopicPartition("nope", 0)])
    with pytest.raises(UnknownPartitionError):
        c.assign([TopicPartition("t", 1)])
    with pytest.raises(TypeError):
        c.assign(T0)  # type: ignore[arg-type]  # a single TopicPartition, not a list
    assert c.assignment() == {T0}
    c.close()


def test_assign_after_subscribe_raises_illegal_state(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    c = log.consumer("t")
    with pytest.raises(IllegalStateError):
        c.assign([T0])
    assert c.assignment() == {T0, T1}
    c.close()


def test_subscribe_after_assign_raises_illegal_state(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    c = log.consumer()
    c.assign([T0])
    with pytest.raises(IllegalStateError):
        c.subscribe(["t"])
    with pytest.raises(IllegalStateError):
        c.subscribe(pattern="t.*")
    assert c.assignment() == {T0}
    c.close()


def test_subscribe_without_group_assigns_every_partition(log: streamlog.Log) -> None:
    log.create_topic("t", 3)
    log.create_topic("u", 1)
    c = log.consumer("t", "u")
    assert c.subscription() == {"t", "u"}
    assert c.assignment() == {T0, T1, T2, TopicPartition("u", 0)}
    c.subscribe(["u"])  # replaces, not adds
    assert c.subscription() == {"u"}
    assert c.assignment() == {TopicPartition("u", 0)}
    with pytest.raises(ValueError):
        c.subscribe(["t"], pattern="t")
    c.close()


def test_unsubscribe_clears_everything_and_allows_the_other_mode(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    c = log.consumer("t")
    c.unsubscribe()
    assert c.assignment() == set()
    assert c.subscription() == set()
    c.assign([T1])  # allowed now
    assert c.assignment() == {T1}
    c.unsubscribe()
    assert c.assignment() == set()
    c.subscribe(["t"])  # and back
    assert c.assignment() == {T0, T1}
    c.close()


# ---------------------------------------------------------------- records


def test_poll_returns_records_by_partition_with_every_field(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    with log.producer() as p:
        p.send(
            "t",
            b"v0",
            key=b"k0",
            partition=0,
            timestamp_ms=1000,
            headers=[("a", b"1"), ("a", b"2"), ("n", None)],
        )
        p.send("t", None, key=None, partition=0, timestamp_ms=1001)
        p.send("t", b"v1", key=b"k1", partition=1, timestamp_ms=2000, headers=[])
    c = log.consumer("t", auto_offset_reset="earliest")
    polled = c.poll(timeout_ms=1000)
    assert polled == {
        T0: [
            ConsumerRecord("t", 0, 0, 1000, b"k0", b"v0", (("a", b"1"), ("a", b"2"), ("n", None))),
            ConsumerRecord("t", 0, 1, 1001, None, None, ()),
        ],
        T1: [ConsumerRecord("t", 1, 0, 2000, b"k1", b"v1", ())],
    }
    rec = polled[T0][0]
    assert (rec.topic, rec.partition, rec.offset, rec.timestamp) == ("t", 0, 0, 1000)
    assert (rec.key, rec.value) == (b"k0", b"v0")
    assert type(rec.headers) is tuple and all(type(h) is tuple for h in rec.headers)
    assert all(type(tp) is TopicPartition for tp in polled)
    c.close()


def test_consumer_records_are_immutable_hashable_named_tuples(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _append(log, T0, [b"v"], keys=[b"k"], timestamps=7, headers=[[("h", b"x")]])
    c = log.consumer("t", auto_offset_reset="earliest")
    (rec,) = c.poll(timeout_ms=1000)[T0]
    assert isinstance(rec, tuple)
    assert rec._fields == ("topic", "partition", "offset", "timestamp", "key", "value", "headers")
    with pytest.raises(AttributeError):
        rec.value = b"other"  # type: ignore[misc]
    same = ConsumerRecord("t", 0, 0, 7, b"k", b"v", (("h", b"x"),))
    assert rec == same and hash(rec) == hash(same)
    assert {rec: 1}[same] == 1
    assert repr(rec) == (
        "ConsumerRecord(topic='t', partition=0, offset=0, timestamp=7, key=b'k', value=b'v', "
        "headers=(('h', b'x'),))"
    )
    assert hash(T0) == hash(TopicPartition("t", 0))
    with pytest.raises(AttributeError):
        T0.partition = 1  # type: ignore[misc]
    c.close()


def test_poll_zero_timeout_with_no_data_returns_empty_at_once(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    t = time.monotonic()
    assert c.poll() == {}
    assert c.poll(timeout_ms=0) == {}
    assert time.monotonic() - t < 0.2
    c.close()


def test_poll_with_no_data_waits_the_timeout_and_returns_empty(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    t = time.monotonic()
    assert c.poll(timeout_ms=300) == {}
    elapsed = time.monotonic() - t
    assert 0.29 <= elapsed < 1.0, elapsed
    c.close()


@pytest.mark.parametrize("same_handle", [True, False], ids=["same-handle", "other-handle"])
def test_poll_returns_as_soon_as_another_thread_produces(
    log: streamlog.Log, data_dir: str, same_handle: bool
) -> None:
    """Another thread produces after 0.2 s into a poll(timeout_ms=10000); poll
    returns right then. On another handle, the wake-up comes from tail polling
    (the path other processes' appends take)."""
    log.create_topic("t", 1)
    c = log.consumer("t")  # latest: position = 0 on the empty partition
    assert c.position(T0) == 0
    writer = log if same_handle else streamlog.open(data_dir)
    sent_at: list[float] = []

    def produce() -> None:
        time.sleep(0.2)
        with writer.producer() as p:
            sent_at.append(time.monotonic())
            p.send("t", b"hello").result(timeout=10)

    th = threading.Thread(target=produce)
    th.start()
    t = time.monotonic()
    polled = c.poll(timeout_ms=10_000)
    returned = time.monotonic()
    th.join()
    if not same_handle:
        writer.close()
    assert [r.value for r in polled[T0]] == [b"hello"]
    assert returned - t < 2.0, returned - t  # far below the 10 s timeout
    assert returned - sent_at[0] < 0.5, returned - sent_at[0]
    c.close()


def test_poll_rejects_bad_arguments(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    with pytest.raises(ValueError):
        c.poll(timeout_ms=-1)
    with pytest.raises(TypeError):
        c.poll(timeout_ms="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        c.poll(max_records=0)
    c.close()


def test_max_poll_records_bounds_each_poll(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 100, per_batch=100)
    c = log.consumer("t", auto_offset_reset="earliest", max_poll_records=7)
    sizes = []
    seen: list[int] = []
    while polled := c.poll(timeout_ms=50):
        sizes.append(sum(len(v) for v in polled.values()))
        seen += _offsets(polled, T0)
    assert sizes == [7] * 14 + [2]
    assert seen == list(range(100))
    c.close()


def test_max_records_argument_overrides_max_poll_records(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 100, per_batch=100)
    c = log.consumer("t", auto_offset_reset="earliest", max_poll_records=7)
    assert _offsets(c.poll(timeout_ms=50, max_records=3), T0) == [0, 1, 2]
    assert _offsets(c.poll(timeout_ms=50, max_records=60), T0) == list(range(3, 63))
    assert _offsets(c.poll(timeout_ms=50), T0) == list(range(63, 70))
    assert c.position(T0) == 70
    c.close()


def test_poll_is_fair_across_partitions(log: streamlog.Log) -> None:
    """Three partitions with deep backlogs and max_records=10: every window of 3
    polls serves every partition, and totals never differ by more than a poll."""
    log.create_topic("t", 3)
    for tp in (T0, T1, T2):
        _fill(log, tp, 1000, per_batch=500)
    c = log.consumer("t", auto_offset_reset="earliest")
    served: list[set[TopicPartition]] = []
    totals = {T0: 0, T1: 0, T2: 0}
    next_offset = {T0: 0, T1: 0, T2: 0}
    for _ in range(60):
        polled = c.poll(timeout_ms=100, max_records=10)
        assert sum(len(v) for v in polled.values()) == 10
        served.append(set(polled))
        for tp, records in polled.items():
            assert [r.offset for r in records] == list(
                range(next_offset[tp], next_offset[tp] + len(records))
            )
            next_offset[tp] += len(records)
            totals[tp] += len(records)
        assert max(totals.values()) - min(totals.values()) <= 10, totals
    for i in range(len(served) - 2):
        assert served[i] | served[i + 1] | served[i + 2] == {T0, T1, T2}, (i, served[i : i + 3])
    c.close()


def test_partitions_with_data_are_not_starved_by_a_partition_that_keeps_filling(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 2)
    _fill(log, T0, 10_000, per_batch=1000)
    _fill(log, T1, 5, per_batch=5)
    c = log.consumer("t", auto_offset_reset="earliest", max_poll_records=100)
    got_t1: list[int] = []
    for _ in range(3):
        got_t1 += _offsets(c.poll(timeout_ms=100), T1)
        _fill(log, T0, 100, per_batch=100)
    assert got_t1 == [0, 1, 2, 3, 4]
    c.close()


# ---------------------------------------------------------------- iteration


def test_iterator_yields_everything_in_order_then_stops_after_consumer_timeout(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 2)
    _fill(log, T0, 25, per_batch=4)
    _fill(log, T1, 13, per_batch=5)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=300)
    t = time.monotonic()
    records = list(c)
    elapsed = time.monotonic() - t
    assert [r.offset for r in records if r.partition == 0] == list(range(25))
    assert [r.offset for r in records if r.partition == 1] == list(range(13))
    assert len(records) == 38
    assert 0.29 <= elapsed < 2.0, elapsed
    # the iterator is reusable: new data, a new round
    _fill(log, T1, 2)
    assert [(r.partition, r.offset) for r in c] == [(1, 13), (1, 14)]
    c.close()


def test_iterator_with_zero_consumer_timeout_stops_at_once_when_idle(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 3)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=0)
    t = time.monotonic()
    assert [r.offset for r in c] == [0, 1, 2]
    assert time.monotonic() - t < 0.5
    c.close()


def test_iterator_is_fair_across_partitions(log: streamlog.Log) -> None:
    """The iterator takes at most max_poll_records from one partition before moving on."""
    log.create_topic("t", 3)
    for tp in (T0, T1, T2):
        _fill(log, tp, 1000, per_batch=1000)
    c = log.consumer("t", auto_offset_reset="earliest", max_poll_records=50)
    it = iter(c)
    first = [next(it) for _ in range(300)]
    runs: list[tuple[int, int]] = []  # (partition, length) of each run of one partition
    for r in first:
        if runs and runs[-1][0] == r.partition:
            runs[-1] = (r.partition, runs[-1][1] + 1)
        else:
            runs.append((r.partition, 1))
    assert all(length == 50 for _p, length in runs), runs
    assert [p for p, _n in runs[:3]] != [runs[0][0]] * 3
    for p in range(3):
        assert [r.offset for r in first if r.partition == p] == list(range(100))
    c.close()


def test_position_during_iteration_follows_the_last_yielded_record(log: streamlog.Log) -> None:
    """As kafka-python's iterator: position = offset of the last record handed out + 1,
    not the end of whatever was fetched behind it."""
    log.create_topic("t", 1)
    _fill(log, T0, 20, per_batch=20)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=100)
    it = iter(c)
    for expected in range(5):
        assert next(it).offset == expected
        assert c.position(T0) == expected + 1
    assert c.metrics()["records-lag"][T0] == 15
    c.close()


def test_seek_during_iteration_takes_effect_at_the_next_record(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 20, per_batch=20)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=100)
    it = iter(c)
    assert [next(it).offset for _ in range(3)] == [0, 1, 2]
    c.seek(T0, 15)
    assert next(it).offset == 15
    c.seek(T0, 1)
    assert [r.offset for r in it] == list(range(1, 20))
    c.close()


def test_pause_during_iteration_holds_back_already_fetched_records(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    _fill(log, T0, 10, per_batch=10)
    _fill(log, T1, 10, per_batch=10)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=100)
    it = iter(c)
    first = next(it)
    tp = TopicPartition(first.topic, first.partition)
    other = T1 if tp == T0 else T0
    c.pause(tp)
    rest = list(it)
    assert {r.partition for r in rest} == {other.partition}
    assert [r.offset for r in rest] == list(range(10))
    assert c.position(tp) == 1
    c.resume(tp)
    assert [r.offset for r in c] == list(range(1, 10))
    c.close()


def test_poll_after_partial_iteration_continues_where_iteration_stopped(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 10, per_batch=10)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=100)
    it = iter(c)
    assert [next(it).offset for _ in range(4)] == [0, 1, 2, 3]
    assert _offsets(c.poll(timeout_ms=100, max_records=3), T0) == [4, 5, 6]
    assert [r.offset for r in it] == [7, 8, 9]
    c.close()


# ---------------------------------------------------------------- positions


def test_seek_sets_the_next_record_returned(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 30, per_batch=10)
    c = log.consumer(auto_offset_reset="earliest")
    c.assign([T0])
    c.seek(T0, 17)
    assert c.position(T0) == 17
    assert _offsets(c.poll(timeout_ms=100), T0) == list(range(17, 30))
    c.seek(T0, 3)
    c.seek(T0, 25)  # last call wins
    assert _offsets(c.poll(timeout_ms=100), T0) == list(range(25, 30))
    c.seek(T0, 30)  # the end is a valid position
    assert c.poll(timeout_ms=50) == {}
    assert c.position(T0) == 30
    c.close()


def test_seek_into_the_middle_of_a_batch_returns_records_from_exactly_that_offset(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    _append(log, T0, [b"a%d" % i for i in range(10)])
    _append(log, T0, [b"z%d" % i for i in range(10)], compression=COMPRESSION_ZSTD)
    assert log.partition("t", 0).end_offset == 20
    c = log.consumer(auto_offset_reset="earliest")
    c.assign([T0])
    for start in (0, 4, 9, 10, 13, 19):
        c.seek(T0, start)
        records = c.poll(timeout_ms=100)[T0]
        assert [r.offset for r in records] == list(range(start, 20)), start
        assert records[0].value == (b"a%d" % start if start < 10 else b"z%d" % (start - 10))
        assert c.position(T0) == 20
    c.close()


def test_seek_checks_its_arguments(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    c = log.consumer()
    c.assign([T0])
    with pytest.raises(ValueError):
        c.seek(T0, -1)
    with pytest.raises(TypeError):
        c.seek(T0, 1.5)  # type: ignore[arg-type]
    with pytest.raises(IllegalStateError):
        c.seek(T1, 0)
    with pytest.raises(IllegalStateError):
        c.seek_to_beginning(T1)
    with pytest.raises(IllegalStateError):
        c.seek_to_end(T1)
    with pytest.raises(IllegalStateError):
        c.position(T1)
    c.close()


def test_seek_to_beginning_and_end_are_resolved_lazily(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 10)
    c = log.consumer(auto_offset_reset="earliest")
    c.assign([T0])
    c.seek_to_end(T0)
    _fill(log, T0, 5)  # appended after the call: the end is taken at position()
    assert c.position(T0) == 15
    _fill(log, T0, 5)
    assert c.position(T0) == 15  # resolved once, then kept
    assert _offsets(c.poll(timeout_ms=100), T0) == list(range(15, 20))

    c.seek_to_beginning()  # no arguments: every assigned partition
    log.delete_records({T0: 4})  # moved after the call: the start is taken at poll()
    assert _offsets(c.poll(timeout_ms=100), T0) == list(range(4, 20))
    c.close()


def test_seek_past_the_end_resets_by_policy_at_the_next_poll(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 10)
    early = log.consumer(auto_offset_reset="earliest")
    early.assign([T0])
    early.seek(T0, 50)
    assert early.position(T0) == 50  # nothing checked until the fetch
    assert _offsets(early.poll(timeout_ms=100), T0) == list(range(10))
    strict = log.consumer(auto_offset_reset="none")
    strict.assign([T0])
    strict.seek(T0, 50)
    with pytest.raises(OffsetOutOfRangeError):
        strict.poll(timeout_ms=100)
    early.close()
    strict.close()


# ---------------------------------------------------------------- offsets


def test_beginning_and_end_offsets(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    c = log.consumer(auto_offset_reset="earliest")
    assert c.beginning_offsets([T0, T1]) == {T0: 0, T1: 0}
    assert c.end_offsets([T0, T1]) == {T0: 0, T1: 0}
    _fill(log, T0, 30)
    log.delete_records({T0: 12})
    # no assignment needed; positions are untouched
    assert c.beginning_offsets([T0, T1]) == {T0: 12, T1: 0}
    assert c.end_offsets([T0, T1]) == {T0: 30, T1: 0}
    c.assign([T0])
    c.seek(T0, 20)
    assert c.end_offsets([T0]) == {T0: 30}
    assert c.position(T0) == 20
    with pytest.raises(UnknownPartitionError):
        c.end_offsets([TopicPartition("t", 5)])
    with pytest.raises(TypeError):
        c.end_offsets(T0)  # type: ignore[arg-type]
    c.close()


def test_offsets_for_times_gives_the_earliest_offset_at_or_after_the_timestamp(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 2)
    # timestamps out of order on purpose: the answer is the first offset, in log order,
    # whose timestamp is >= the target (not the one with the nearest timestamp)
    _append(log, T0, [b"a", b"b", b"c"], timestamps=[1000, 5000, 2000])
    _append(log, T0, [b"d", b"e"], timestamps=[3000, 6000])
    _append(log, T1, [b"x"], timestamps=[100])
    c = log.consumer()
    expect = {
        0: OffsetAndTimestamp(0, 1000),
        1000: OffsetAndTimestamp(0, 1000),
        1001: OffsetAndTimestamp(1, 5000),
        2000: OffsetAndTimestamp(1, 5000),
        5000: OffsetAndTimestamp(1, 5000),
        5001: OffsetAndTimestamp(4, 6000),
        6000: OffsetAndTimestamp(4, 6000),
        6001: None,
    }
    for ts, want in expect.items():
        assert c.offsets_for_times({T0: ts}) == {T0: want}, ts
    assert c.offsets_for_times({T0: 3000, T1: 50}) == {
        T0: OffsetAndTimestamp(1, 5000),
        T1: OffsetAndTimestamp(0, 100),
    }
    assert c.offsets_for_times({T1: 101}) == {T1: None}
    assert c.offsets_for_times({}) == {}
    # below the log start: only what is still there counts
    log.delete_records({T0: 2})
    assert c.offsets_for_times({T0: 0}) == {T0: OffsetAndTimestamp(2, 2000)}
    assert c.offsets_for_times({T0: 2500}) == {T0: OffsetAndTimestamp(3, 3000)}
    # positions are not moved (no assignment needed either)
    assert c.assignment() == set()
    c.close()


def test_offsets_for_times_on_an_empty_partition_is_none(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer()
    assert c.offsets_for_times({T0: 0}) == {T0: None}
    c.close()


@pytest.mark.parametrize(
    ("ts", "error"),
    [(-1, ValueError), (1.5, TypeError), ("100", TypeError), (None, TypeError), (True, TypeError)],
)
def test_offsets_for_times_rejects_bad_timestamps(
    log: streamlog.Log, ts: object, error: type[Exception]
) -> None:
    log.create_topic("t", 1)
    _append(log, T0, [b"a"], timestamps=10)
    c = log.consumer()
    with pytest.raises(error):
        c.offsets_for_times({T0: ts})  # type: ignore[dict-item]
    c.close()


# ---------------------------------------------------------------- pause


def test_pause_returns_nothing_for_paused_partitions_and_keeps_positions(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 2)
    _fill(log, T0, 20, per_batch=20)
    _fill(log, T1, 20, per_batch=20)
    c = log.consumer("t", auto_offset_reset="earliest")
    assert _offsets(c.poll(timeout_ms=100, max_records=5), T0) == [0, 1, 2, 3, 4]
    assert c.paused() == set()
    c.pause(T0)
    assert c.paused() == {T0}
    c.pause(T0)  # twice is fine
    seen_t1: list[int] = []
    for _ in range(5):
        polled = c.poll(timeout_ms=50)
        assert T0 not in polled
        seen_t1 += _offsets(polled, T1)
    assert seen_t1 == list(range(20))
    assert c.poll(timeout_ms=50) == {}  # only paused data left
    assert c.position(T0) == 5
    c.resume(T1)  # resuming an unpaused partition is a no-op
    c.resume(T0)
    assert c.paused() == set()
    assert _offsets(c.poll(timeout_ms=100), T0) == list(range(5, 20))
    with pytest.raises(IllegalStateError):
        c.pause(TopicPartition("t", 9))
    with pytest.raises(IllegalStateError):
        c.resume(TopicPartition("t", 9))
    c.close()


def test_a_paused_partition_does_not_wake_a_blocked_poll(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    assert c.position(T0) == 0
    c.pause(T0)
    _fill(log, T0, 3)
    t = time.monotonic()
    assert c.poll(timeout_ms=200) == {}
    assert time.monotonic() - t >= 0.19
    c.resume(T0)
    assert _offsets(c.poll(timeout_ms=200), T0) == [0, 1, 2]
    c.close()


# ---------------------------------------------------------------- reset policies


def test_auto_offset_reset_earliest_starts_at_the_log_start(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 10)
    log.delete_records({T0: 3})
    c = log.consumer("t", auto_offset_reset="earliest")
    assert c.position(T0) == 3
    assert _offsets(c.poll(timeout_ms=100), T0) == list(range(3, 10))
    c.close()


def test_auto_offset_reset_latest_skips_what_was_there(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 10)
    c = log.consumer("t")  # latest is the default
    assert c.config["auto_offset_reset"] == "latest"
    assert c.poll(timeout_ms=50) == {}
    _fill(log, T0, 2)
    assert _offsets(c.poll(timeout_ms=100), T0) == [10, 11]
    c.close()


def test_auto_offset_reset_none_raises_no_offset_on_first_poll_or_position(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 10)
    c = log.consumer("t", auto_offset_reset="none")
    with pytest.raises(NoOffsetForPartitionError):
        c.poll(timeout_ms=50)
    with pytest.raises(NoOffsetForPartitionError):
        c.position(T0)
    with pytest.raises(NoOffsetForPartitionError):
        c.poll(timeout_ms=50)  # still: nothing was decided
    c.seek(T0, 8)
    assert c.position(T0) == 8
    assert _offsets(c.poll(timeout_ms=100), T0) == [8, 9]
    c.seek_to_beginning(T0)  # an explicit reset is fine under "none"
    assert c.position(T0) == 0
    c.close()


def test_bad_auto_offset_reset_is_a_config_error(log: streamlog.Log) -> None:
    with pytest.raises(streamlog.ConfigError):
        log.consumer(auto_offset_reset="smallest")


@pytest.mark.parametrize("policy", ["earliest", "latest"])
def test_position_below_the_log_start_after_delete_records_resets_by_policy(
    log: streamlog.Log, policy: str
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 100)
    c = log.consumer("t", auto_offset_reset="earliest")
    assert _offsets(c.poll(timeout_ms=100, max_records=20), T0) == list(range(20))
    c.close()
    c = log.consumer(auto_offset_reset=policy)
    c.assign([T0])
    c.seek(T0, 20)
    log.delete_records({T0: 60})
    assert c.position(T0) == 20  # found out of range only by the fetch
    records = _drain(c)
    if policy == "earliest":
        assert [r.offset for r in records] == list(range(60, 100))
    else:
        assert records == []
    assert c.position(T0) == 100
    _fill(log, T0, 1)
    assert _offsets(c.poll(timeout_ms=100), T0) == [100]
    c.close()


def test_position_below_the_log_start_raises_out_of_range_under_none(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 100)
    c = log.consumer("t", auto_offset_reset="none")
    c.seek(T0, 20)
    log.delete_records({T0: 60})
    with pytest.raises(OffsetOutOfRangeError) as info:
        c.poll(timeout_ms=100)
    assert not isinstance(info.value, NoOffsetForPartitionError)
    assert c.position(T0) == 20  # not moved
    c.seek_to_beginning(T0)
    assert _offsets(c.poll(timeout_ms=100), T0)[0] == 60
    c.close()


def test_position_deleted_by_retention_resets_to_the_earliest(log: streamlog.Log) -> None:
    log.create_topic("t", 1, {"segment.bytes": 4096, "retention.ms": 1000})
    plog = log.partition("t", 0)
    now = int(time.time() * 1000)
    for i in range(40):  # old records, several segments
        plog.append(prepare_batch([b"old-%03d" % i + b"." * 500], timestamps=now - 3_600_000))
    for i in range(5):
        plog.append(prepare_batch([b"new-%03d" % i], timestamps=now + 3_600_000))
    c = log.consumer("t", auto_offset_reset="earliest")
    assert c.position(T0) == 0
    assert log.enforce_retention() > 0
    start = plog.log_start_offset
    assert 0 < start <= 40
    records = _drain(c)
    assert [r.offset for r in records] == list(range(start, 45))
    assert [r.value for r in records][-5:] == [b"new-%03d" % i for i in range(5)]
    c.close()


def test_records_fetched_before_another_partition_fails_are_returned_not_lost(
    log: streamlog.Log,
) -> None:
    """A poll that gathered records from one partition and then meets a partition
    without a valid position returns the gathered records; the error comes on the
    next poll (as Kafka's fetcher does). Positions never run ahead of what was
    returned."""
    log.create_topic("t", 2)
    _fill(log, T0, 10)
    _fill(log, T1, 10)
    c = log.consumer(auto_offset_reset="none")
    c.assign([T0, T1])
    c.seek(T0, 0)  # T1 has no position
    returned: list[int] = []
    with pytest.raises(NoOffsetForPartitionError):
        for _ in range(3):
            polled = c.poll(timeout_ms=50)
            assert T1 not in polled
            returned += _offsets(polled, T0)
    assert c.position(T0) == len(returned)
    assert returned == list(range(len(returned)))
    c.seek(T1, 5)
    got = _drain(c)
    assert [r.offset for r in got if r.partition == 0] == list(range(len(returned), 10))
    assert [r.offset for r in got if r.partition == 1] == list(range(5, 10))


# ---------------------------------------------------------------- deserializers


def test_key_and_value_deserializers_apply_and_none_stays_none(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _append(
        log,
        T0,
        [json.dumps({"n": 1}).encode(), None, b"[]"],
        keys=[b"k1", b"k2", None],
    )
    calls: list[bytes] = []

    def value_deserializer(b: bytes) -> object:
        calls.append(b)
        return json.loads(b)

    c = log.consumer(
        "t",
        auto_offset_reset="earliest",
        key_deserializer=bytes.decode,
        value_deserializer=value_deserializer,
    )
    records = c.poll(timeout_ms=100)[T0]
    assert [(r.key, r.value) for r in records] == [("k1", {"n": 1}), ("k2", None), (None, [])]
    assert calls == [b'{"n": 1}', b"[]"]  # never called with None
    with pytest.raises(TypeError):
        hash(records[0])  # hashable only where the fields are: this value is a dict
    assert all(type(r) is ConsumerRecord for r in records)
    c.close()
    with pytest.raises(streamlog.ConfigError):
        log.consumer(value_deserializer="json")


# ---------------------------------------------------------------- wakeup and close


def _poll_in_thread(
    c: streamlog.Consumer, timeout_ms: int
) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = c.poll(timeout_ms=timeout_ms)
        except BaseException as e:
            result["error"] = e
        result["at"] = time.monotonic()

    th = threading.Thread(target=run)
    th.start()
    return th, result


def test_wakeup_from_another_thread_interrupts_a_blocked_poll(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    th, result = _poll_in_thread(c, 10_000)
    time.sleep(0.2)
    woke_at = time.monotonic()
    c.wakeup()
    th.join(5)
    assert isinstance(result.get("error"), WakeupError), result
    assert result["at"] - woke_at < 0.5, result["at"] - woke_at
    # raised once: the next poll is normal
    assert c.poll(timeout_ms=10) == {}
    c.close()


def test_wakeup_with_nobody_blocked_makes_the_next_poll_raise_once(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 3)
    c = log.consumer("t", auto_offset_reset="earliest")
    c.wakeup()
    c.wakeup()  # not counted: one pending wakeup
    with pytest.raises(WakeupError):
        c.poll(timeout_ms=1000)  # raises although data is ready
    assert _offsets(c.poll(timeout_ms=100), T0) == [0, 1, 2]  # nothing was consumed
    c.close()


def test_wakeup_interrupts_a_blocked_iteration(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    timer = threading.Timer(0.2, c.wakeup)
    timer.start()
    t = time.monotonic()
    with pytest.raises(WakeupError):
        next(iter(c))
    assert time.monotonic() - t < 1.0
    timer.join()
    c.close()


def test_close_from_another_thread_ends_a_blocked_poll(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    th, result = _poll_in_thread(c, 10_000)
    time.sleep(0.2)
    closed_at = time.monotonic()
    c.close()
    th.join(5)
    assert result.get("value") == {}, result
    assert result["at"] - closed_at < 0.5, result["at"] - closed_at


def test_close_from_another_thread_ends_a_blocked_subscribed_poll_at_a_metadata_refresh(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscribed consumer re-reads the catalog while it waits. A close() landing
    when that refresh is due must still end the poll with {} (not ClosedError).
    A zero refresh interval makes every wait hit that case."""
    monkeypatch.setattr(_consumer, "_METADATA_TTL", 0.0)
    log.create_topic("t", 1)
    c = log.consumer("t")
    th, result = _poll_in_thread(c, 10_000)
    time.sleep(0.2)
    c.close()
    th.join(5)
    assert "error" not in result, result
    assert result["value"] == {}


def test_close_from_another_thread_stops_a_blocked_iteration(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 2)
    c = log.consumer("t", auto_offset_reset="earliest")
    timer = threading.Timer(0.3, c.close)
    timer.start()
    t = time.monotonic()
    offsets = [r.offset for r in c]  # no consumer_timeout_ms: only close() ends it
    assert offsets == [0, 1]
    assert time.monotonic() - t < 1.5
    timer.join()


def test_close_while_a_poll_is_collecting_does_not_break_that_poll(log: streamlog.Log) -> None:
    """close() from another thread may land in the middle of a poll gathering
    records from several partitions. Simulated deterministically: the value
    deserializer (running inside that poll) closes the consumer."""
    log.create_topic("t", 3)
    for tp in (T0, T1, T2):
        _fill(log, tp, 5)
    holder: list[streamlog.Consumer] = []

    def closing_deserializer(b: bytes) -> bytes:
        holder[0].close()
        return b

    c = log.consumer("t", auto_offset_reset="earliest", value_deserializer=closing_deserializer)
    holder.append(c)
    c.poll(timeout_ms=100)  # must not raise (it raised KeyError)
    with pytest.raises(ClosedError):
        c.poll()


def test_a_closed_consumer_raises_closed_error(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t")
    c.close()
    c.close()  # idempotent
    calls: list[Callable[[], object]] = [
        lambda: c.poll(),
        lambda: c.position(T0),
        lambda: c.seek(T0, 0),
        lambda: c.seek_to_beginning(),
        lambda: c.assign([T0]),
        lambda: c.assignment(),
        lambda: c.subscribe(["t"]),
        lambda: c.subscription(),
        lambda: c.unsubscribe(),
        lambda: c.pause(T0),
        lambda: c.paused(),
        lambda: c.end_offsets([T0]),
        lambda: c.beginning_offsets([T0]),
        lambda: c.offsets_for_times({T0: 0}),
        lambda: c.metrics(),
    ]
    for call in calls:
        with pytest.raises(ClosedError):
            call()
    assert list(c) == []  # iteration just ends, as kafka-python's


def test_the_consumer_is_a_context_manager(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    with log.consumer("t") as c:
        assert c.assignment() == {T0}
    with pytest.raises(ClosedError):
        c.poll()


# ---------------------------------------------------------------- dynamic subscriptions


def test_subscribe_picks_up_partitions_added_later(log: streamlog.Log, data_dir: str) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t", auto_offset_reset="earliest")
    assert c.assignment() == {T0}
    with streamlog.open(data_dir) as other:  # another handle, as another process would
        other.create_partitions("t", 3)
        _fill(other, T2, 4)
    deadline = time.monotonic() + 5
    got: list[int] = []
    while time.monotonic() < deadline and len(got) < 4:
        got += _offsets(c.poll(timeout_ms=200), T2)
    assert got == [0, 1, 2, 3]
    assert c.assignment() == {T0, T1, T2}
    c.close()


def test_pattern_subscription_picks_up_topics_created_later(
    log: streamlog.Log, data_dir: str
) -> None:
    log.create_topic("ev-a", 1)
    log.create_topic("other", 1)
    c = log.consumer(auto_offset_reset="earliest")
    c.subscribe(pattern=r"ev-.*")
    assert c.subscription() == {"ev-a"}
    assert c.assignment() == {TopicPartition("ev-a", 0)}
    t = time.monotonic()
    with streamlog.open(data_dir) as other:
        other.create_topic("ev-b", 2)
        other.create_topic("xev-c", 1)  # the pattern must match the whole name
        _fill(other, TopicPartition("ev-b", 1), 3)
        _fill(other, TopicPartition("xev-c", 0), 3)
        _fill(other, TopicPartition("other", 0), 3)
    got: list[tuple[str, int, int]] = []
    while time.monotonic() - t < 5 and len(got) < 3:
        for tp, records in c.poll(timeout_ms=200).items():
            got += [(tp.topic, tp.partition, r.offset) for r in records]
    assert got == [("ev-b", 1, 0), ("ev-b", 1, 1), ("ev-b", 1, 2)]
    assert c.subscription() == {"ev-a", "ev-b"}
    assert c.assignment() == {
        TopicPartition("ev-a", 0),
        TopicPartition("ev-b", 0),
        TopicPartition("ev-b", 1),
    }
    c.close()


# ---------------------------------------------------------------- metrics


def test_metrics_report_the_lag_of_each_partition(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    _fill(log, T0, 100)
    _fill(log, T1, 10)
    c = log.consumer("t", auto_offset_reset="earliest")
    assert c.position(T0) == 0 and c.position(T1) == 0
    assert c.metrics()["records-lag"] == {T0: 100, T1: 10}
    c.pause(T1)
    assert len(c.poll(timeout_ms=100, max_records=30)[T0]) == 30
    assert c.metrics()["records-lag"] == {T0: 70, T1: 10}
    c.resume(T1)
    _drain(c)
    assert c.metrics()["records-lag"] == {T0: 0, T1: 0}
    _fill(log, T1, 5)
    assert c.metrics()["records-lag"] == {T0: 0, T1: 5}
    c.close()


# ---------------------------------------------------------------- memory


def test_iterating_a_large_backlog_buffers_at_most_one_fetch_per_partition(
    log: streamlog.Log,
) -> None:
    """300,000 records in 3,000 batches of 100 on two partitions. With
    max_partition_fetch_bytes=1 a fetch is exactly one batch, so no partition
    ever buffers more than 100 records, whatever the backlog."""
    log.create_topic("t", 2)
    per_batch, batches = 100, 1500
    for tp in (T0, T1):
        plog = log.partition(tp.topic, tp.partition)
        chunk = [
            prepare_batch(
                [b"%d-%07d" % (tp.partition, b * per_batch + i) for i in range(per_batch)]
            )
            for b in range(batches)
        ]
        for lo in range(0, batches, 100):
            plog.append_many(chunk[lo : lo + 100])
    total = 2 * per_batch * batches
    c = log.consumer(
        "t", auto_offset_reset="earliest", max_partition_fetch_bytes=1, consumer_timeout_ms=200
    )
    states = {tp: c._assigned[tp] for tp in (T0, T1)}
    expected = {0: 0, 1: 0}
    largest = 0
    count = 0
    for r in c:
        assert r.offset == expected[r.partition]
        expected[r.partition] += 1
        count += 1
        largest = max(largest, *(len(s.cols[0]) for s in states.values() if s.cols))
    assert count == total
    assert expected == {0: per_batch * batches, 1: per_batch * batches}
    assert largest == per_batch
    c.close()


# ---------------------------------------------------------------- lazy decoding


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count ``RecordBatch.decode`` calls (one per batch decoded); returns the counter."""
    calls = [0]
    decode = RecordBatch.decode

    def counted(self: RecordBatch, path: str = "?") -> Any:
        calls[0] += 1
        return decode(self, path)

    monkeypatch.setattr(RecordBatch, "decode", counted)
    return calls


def test_seek_and_poll_one_decodes_one_batch(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 1000, per_batch=10)
    calls = _count_decodes(monkeypatch)
    c = log.consumer(auto_offset_reset="earliest")
    c.assign([T0])
    c.seek(T0, 555)
    assert _offsets(c.poll(max_records=1), T0) == [555]
    assert calls[0] == 1
    assert c.position(T0) == 556
    assert _offsets(c.poll(max_records=1), T0) == [556]  # same batch: no decode
    assert calls[0] == 1
    assert _offsets(c.poll(max_records=5), T0) == [557, 558, 559, 560, 561]
    assert calls[0] == 2
    c.seek(T0, 42)  # a seek drops what was read ahead
    assert _offsets(c.poll(max_records=1), T0) == [42]
    assert calls[0] == 3
    # a plain poll still returns up to a whole fetch, batch after batch
    assert _offsets(c.poll(), T0) == list(range(43, 543))
    c.close()


def test_positions_follow_each_record_across_batches_in_poll_and_iterator(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 35, per_batch=7)
    c = log.consumer(auto_offset_reset="earliest", consumer_timeout_ms=50, max_poll_records=30)
    c.assign([T0])
    for want in range(0, 12, 3):
        assert _offsets(c.poll(max_records=3), T0) == [want, want + 1, want + 2]
        assert c.position(T0) == want + 3
    it = iter(c)
    for want in range(12, 20):
        assert next(it).offset == want
        assert c.position(T0) == want + 1
    c.seek(T0, 3)  # between two records: the next one comes from there
    assert next(it).offset == 3
    c.pause(T0)  # takes effect at the next record
    assert c.poll(timeout_ms=10) == {}
    c.resume(T0)
    assert [r.offset for r in it] == list(range(4, 35))
    assert c.position(T0) == 35
    c.close()


def test_control_batches_are_skipped_between_lazily_decoded_batches(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    plog = log.partition("t", 0)
    plog.append(prepare_batch([b"a%d" % i for i in range(5)]))  # 0-4
    plog.append(prepare_batch([b"m"], timestamps=1, transactional=True, control=True))  # 5
    plog.append(prepare_batch([b"m"], timestamps=1, transactional=True, control=True))  # 6
    plog.append(prepare_batch([b"b%d" % i for i in range(5)]))  # 7-11
    plog.append(prepare_batch([b"m"], timestamps=1, transactional=True, control=True))  # 12
    c = log.consumer(auto_offset_reset="earliest", consumer_timeout_ms=50)
    c.assign([T0])
    c.seek(T0, 3)
    assert _offsets(c.poll(max_records=2), T0) == [3, 4]
    assert c.position(T0) == 5
    assert _offsets(c.poll(max_records=1), T0) == [7]  # past both control batches
    assert c.position(T0) == 8
    assert [r.offset for r in c] == [8, 9, 10, 11]
    assert c.poll(timeout_ms=10) == {}
    assert c.position(T0) == 13  # moved past the trailing control batch
    c.seek(T0, 5)  # into control batches: a poll(timeout_ms=0) still finds the records
    assert _offsets(c.poll(max_records=1), T0) == [7]
    c.close()


def test_a_batch_that_fails_to_decode_fails_every_poll_after_the_records_before_it(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 30, per_batch=10)
    decode = RecordBatch.decode

    def failing(self: RecordBatch, path: str = "?") -> Any:
        if self.base_offset == 10:
            raise streamlog.errors.CorruptRecordError("bad", path=path, position=self.position)
        return decode(self, path)

    monkeypatch.setattr(RecordBatch, "decode", failing)
    c = log.consumer(auto_offset_reset="earliest")
    c.assign([T0])
    assert _offsets(c.poll(max_records=100), T0) == list(range(10))
    assert c.position(T0) == 10
    for _ in range(2):
        with pytest.raises(streamlog.errors.CorruptRecordError):
            c.poll(max_records=100)
    assert c.position(T0) == 10
    c.seek(T0, 20)  # a consumer can seek past it
    assert _offsets(c.poll(max_records=100), T0) == list(range(20, 30))
    c.close()


# ---------------------------------------------------------------- records built on demand


def test_poll_builds_only_the_records_it_returns(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t", 1)
    _fill(log, T0, 100, per_batch=50)
    built: list[int] = []
    build = streamlog.Consumer._build

    def counted(self: Any, tp: TopicPartition, cols: Any, first: int, end: int) -> Any:
        built.append(end - first)
        return build(self, tp, cols, first, end)

    monkeypatch.setattr(streamlog.Consumer, "_build", counted)
    c = log.consumer(auto_offset_reset="earliest")
    c.assign([T0])
    c.seek(T0, 20)
    assert _offsets(c.poll(max_records=1), T0) == [20]
    assert built == [1]
    assert _offsets(c.poll(max_records=3), T0) == [21, 22, 23]
    assert _offsets(c.poll(), T0) == list(range(24, 100))
    assert built == [1, 3, 26, 50]
    c.close()


def test_records_built_on_demand_keep_keys_timestamps_headers_and_deserializers(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    plog = log.partition("t", 0)
    plog.append(
        prepare_batch(
            [b"1", None, b"3", b"4"],
            keys=[b"a", None, b"c", b"d"],
            timestamps=[10, 11, 12, 13],
            headers=[[("h", b"x")], None, [("h", None), ("i", b"y")], None],
        )
    )
    plog.append(prepare_batch([b"5", b"6"], timestamps=99))
    c = log.consumer(
        auto_offset_reset="earliest",
        key_deserializer=bytes.decode,
        value_deserializer=int,
    )
    c.assign([T0])
    want = [
        (0, 10, "a", 1, (("h", b"x"),)),
        (1, 11, None, None, ()),
        (2, 12, "c", 3, (("h", None), ("i", b"y"))),
        (3, 13, "d", 4, ()),
        (4, 99, None, 5, ()),
        (5, 99, None, 6, ()),
    ]
    for first in range(6):
        for take in (1, 2, 6):
            c.seek(T0, first)
            got = c.poll(max_records=take)[T0]
            assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in got] == (
                want[first : first + take]
            )
            assert all(type(r) is ConsumerRecord and r.topic == "t" for r in got)
    c.close()


def test_decode_gives_sliceable_columns(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    plog = log.partition("t", 0)
    plog.append(prepare_batch([b"a", b"b"], timestamps=7))
    plog.append(prepare_batch([b"c", b"d"], keys=[b"k", None], timestamps=[1, 2],
                              headers=[None, [("h", b"v")]]))
    first, second = plog.read(0, 1 << 20)
    assert first.decode() == (range(0, 2), 7, None, (b"a", b"b"), None)
    assert second.decode() == (range(2, 4), [1, 2], (b"k", None), (b"c", b"d"),
                               [(), (("h", b"v"),)])
    assert list(second.records()) == [(2, 1, b"k", b"c", ()), (3, 2, None, b"d", (("h", b"v"),))]


def test_two_iterators_and_next_share_one_position(log: streamlog.Log) -> None:
    """Each iterator hands out a record only if nothing else moved the position since
    its last one, so interleaved iterators, next() and poll() never repeat or skip."""
    log.create_topic("t", 1)
    _fill(log, T0, 30, per_batch=10)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=50)
    a, b = iter(c), iter(c)
    got = [next(a).offset, next(b).offset, next(c).offset, next(a).offset]
    got += _offsets(c.poll(max_records=2), T0)
    got += [next(b).offset, next(a).offset, next(c).offset]
    assert got == list(range(9))
    assert c.position(T0) == 9
    del a  # an iterator dropped in the middle of a batch loses nothing
    assert [r.offset for r in b] == list(range(9, 30))
    assert c.position(T0) == 30
    c.close()


def test_next_after_the_iterator_timed_out_or_was_woken_polls_again(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=20)
    with pytest.raises(StopIteration):
        next(c)
    c.wakeup()
    with pytest.raises(WakeupError):
        next(c)
    _fill(log, T0, 3)
    assert [next(c).offset for _ in range(3)] == [0, 1, 2]
    c.close()
