"""The Producer: send/futures/callbacks, partitioning, batching, acks, errors, flush/close."""

from __future__ import annotations

import concurrent.futures
import errno
import json
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

import streamlog
from streamlog import (
    ClosedError,
    ConfigError,
    IllegalStateError,
    InvalidTopicError,
    KafkaTimeoutError,
    RecordMetadata,
    RecordTooLargeError,
    TopicPartition,
    UnknownPartitionError,
    UnknownTopicError,
)
from streamlog._fs import fs
from streamlog.clients import _producer
from streamlog.clients._partitioner import murmur2_partition
from streamlog.storage._codec import COMPRESSION_NONE, COMPRESSION_ZSTD, RecordBatch

LONG_LINGER = 60_000  # ms: a batch is never written by the linger timer within a test

Record = tuple[int, int, bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...]]


def batches(log: streamlog.Log, topic: str, partition: int) -> list[RecordBatch]:
    """Every batch of the partition, in order."""
    plog = log.partition(topic, partition)
    out: list[RecordBatch] = []
    offset = plog.log_start_offset
    while True:
        got = plog.read(offset)
        if not got:
            return out
        out.extend(got)
        offset = got[-1].next_offset


def records(log: streamlog.Log, topic: str, partition: int) -> list[Record]:
    """Every record of the partition as ``(offset, timestamp, key, value, headers)``."""
    return [r for b in batches(log, topic, partition) for r in b.records()]


def end_offset(log: streamlog.Log, topic: str, partition: int = 0) -> int:
    return log.partition(topic, partition).end_offset


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class SyncCounter:
    """Counts fdatasync calls on segments (``fs.sync``), optionally making each one slow."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        real = fs.sync

        def sync(fd: int, path: str | None = None) -> None:
            with self._lock:
                self.calls += 1
            if delay:
                time.sleep(delay)
            real(fd, path)

        monkeypatch.setattr(fs, "sync", sync)


def block_appends(
    monkeypatch: pytest.MonkeyPatch, log: streamlog.Log, topic: str
) -> threading.Event:
    """Make appends to ``topic``-0 wait until the returned event is set, with every send
    handed to the sender thread (an inline append would block the test's own thread)."""
    monkeypatch.setattr(_producer, "_INLINE_GAP", float("inf"))
    plog = log.partition(topic, 0)
    real = plog.append_many
    release = threading.Event()

    def append_many(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(plog, "append_many", append_many)
    return release


# ---------------------------------------------------------------------- send and metadata


def test_send_returns_a_concurrent_future_resolving_to_record_metadata(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    with log.producer() as producer:
        fut = producer.send("t", b"v", partition=1, timestamp_ms=1234)
        assert isinstance(fut, concurrent.futures.Future)
        md = fut.result(timeout=10)
    assert type(md) is RecordMetadata
    assert md == RecordMetadata("t", 1, 0, 1234)
    assert (md.topic, md.partition, md.offset, md.timestamp) == ("t", 1, 0, 1234)
    assert fut.done() and not fut.cancelled() and not fut.running()
    assert fut.cancel() is False
    assert fut.exception() is None


def test_offsets_are_dense_per_partition_in_send_order(log: streamlog.Log) -> None:
    log.create_topic("t", 3)
    with log.producer(linger_ms=5, batch_size=300) as producer:
        futures = [producer.send("t", b"%d" % i, partition=i % 3) for i in range(300)]
        producer.flush()
    by_partition: dict[int, list[int]] = defaultdict(list)
    for i, fut in enumerate(futures):
        md = fut.result()
        assert md.partition == i % 3
        by_partition[md.partition].append(md.offset)
    assert by_partition == {p: list(range(100)) for p in range(3)}
    for p in range(3):
        assert [(r[0], r[3]) for r in records(log, "t", p)] == [
            (n, b"%d" % (3 * n + p)) for n in range(100)
        ]


def test_keyed_records_land_on_the_murmur2_partition(log: streamlog.Log) -> None:
    log.create_topic("t", 7)
    log.create_topic("four", 4)
    keys = [b"key%d" % i for i in range(200)] + [b"", b"a", b"\xff" * 40]
    with log.producer() as producer:
        futures = [producer.send("t", b"v", key) for key in keys]
        vectors = [producer.send("four", b"v", k).result(10).partition for k in (b"key1", b"key2")]
    partitions = [f.result(10).partition for f in futures]
    assert partitions == [murmur2_partition(k, 7) for k in keys]
    assert len(set(partitions)) == 7
    assert vectors == [0, 3]  # Java's UtilsTest / DefaultPartitionerTest vectors
    stored = {p: [r[2] for r in records(log, "t", p)] for p in range(7)}
    for p in range(7):
        assert stored[p] == [k for k in keys if murmur2_partition(k, 7) == p]


def test_an_explicit_partition_overrides_the_key(log: streamlog.Log) -> None:
    log.create_topic("t", 5)
    with log.producer() as producer:
        target = (murmur2_partition(b"k", 5) + 1) % 5
        md = producer.send("t", b"v", b"k", partition=target).result(10)
    assert md.partition == target
    assert records(log, "t", target)[0][2:4] == (b"k", b"v")


def test_round_robin_partitioner_cycles_through_partitions_ignoring_keys(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 3)
    with log.producer(partitioner="round_robin") as producer:
        futures = [producer.send("t", b"v", b"same-key" if i % 2 else None) for i in range(9)]
        assert [f.result(10).partition for f in futures] == [0, 1, 2] * 3


def test_crc32_partitioner_uses_zlib_crc32_of_the_key(log: streamlog.Log) -> None:
    log.create_topic("t", 6)
    keys = [b"key%d" % i for i in range(60)]
    with log.producer(partitioner="crc32") as producer:
        futures = [producer.send("t", b"v", k) for k in keys]
        assert [f.result(10).partition for f in futures] == [zlib.crc32(k) % 6 for k in keys]


def test_callable_partitioner_gets_key_bytes_and_partition_lists(log: streamlog.Log) -> None:
    log.create_topic("t", 4)
    calls: list[tuple[bytes | None, list[int], list[int]]] = []

    def last(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        calls.append((key, all_partitions, available))
        return all_partitions[-1]

    with log.producer(partitioner=last, key_serializer=str.encode) as producer:
        assert producer.send("t", b"v", "k").result(10).partition == 3
        assert producer.send("t", b"v").result(10).partition == 3
        assert producer.send("t", b"v", "k", partition=1).result(10).partition == 1
    assert calls == [(b"k", [0, 1, 2, 3], [0, 1, 2, 3]), (None, [0, 1, 2, 3], [0, 1, 2, 3])]


def test_callable_partitioner_returning_a_missing_partition_raises_at_the_call(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 2)
    with log.producer(partitioner=lambda key, all_, avail: 2) as producer:
        with pytest.raises(UnknownPartitionError):
            producer.send("t", b"v", b"k")
    assert end_offset(log, "t", 0) == end_offset(log, "t", 1) == 0


def test_null_keys_stick_to_a_partition_for_batch_size_bytes_then_move(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 8)
    # each record counts 16 + 84 = 100 bytes: the sticky partition changes after 10 records
    with log.producer(batch_size=1000) as producer:
        futures = []
        for i in range(200):
            futures.append(producer.send("t", b"x" * 84))
            if i == 4:  # a keyed record in between does not disturb the sticky partition
                keyed = producer.send("t", b"x" * 84, b"key")
        partitions = [f.result(10).partition for f in futures]
    assert keyed.result().partition == murmur2_partition(b"key", 8)
    runs = [partitions[i : i + 10] for i in range(0, 200, 10)]
    assert all(len(set(run)) == 1 for run in runs)
    assert len({run[0] for run in runs}) > 1  # (1/8)**19 odds of never moving


# ---------------------------------------------------------------------- batching


def test_linger_zero_writes_promptly_without_flush(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=0) as producer:
        fut = producer.send("t", b"v")
        assert wait_until(fut.done, 2.0)
        assert end_offset(log, "t") == 1
        assert fut.result().offset == 0


def test_linger_holds_a_record_until_it_elapses(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=200) as producer:
        start = time.monotonic()
        fut = producer.send("t", b"v")
        time.sleep(0.05)
        assert not fut.done()
        assert end_offset(log, "t") == 0
        assert fut.result(timeout=5).offset == 0
        assert time.monotonic() - start >= 0.19
    assert end_offset(log, "t") == 1


def test_linger_timer_runs_for_every_new_batch(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    with log.producer(linger_ms=50) as producer:
        for round_ in range(3):
            futures = [producer.send("t", b"v", partition=p) for p in (0, 1)]
            assert [f.result(timeout=5).offset for f in futures] == [round_, round_]


def test_a_full_batch_is_written_before_linger_elapses(log: streamlog.Log) -> None:
    log.create_topic("t")
    # 16 + 184 = 200 bytes a record: five fill a batch of 1000 bytes
    with log.producer(linger_ms=LONG_LINGER, batch_size=1000) as producer:
        futures = [producer.send("t", b"x" * 184) for _ in range(5)]
        assert wait_until(lambda: all(f.done() for f in futures), 5.0)
        assert end_offset(log, "t") == 5
        sixth = producer.send("t", b"x" * 184)
        time.sleep(0.1)
        assert not sixth.done()
        assert end_offset(log, "t") == 5
        producer.flush()
        assert sixth.result(0).offset == 5
        assert end_offset(log, "t") == 6


def test_flush_writes_lingering_records_at_once(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=LONG_LINGER) as producer:
        futures = [producer.send("t", b"%d" % i) for i in range(3)]
        time.sleep(0.05)
        assert end_offset(log, "t") == 0
        assert not any(f.done() for f in futures)
        start = time.monotonic()
        producer.flush()
        assert time.monotonic() - start < 2
        assert all(f.done() for f in futures)
        assert end_offset(log, "t") == 3
        assert [f.result().offset for f in futures] == [0, 1, 2]


def test_batch_size_splits_records_into_several_batches(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    with log.producer(linger_ms=LONG_LINGER, batch_size=1000) as producer:
        # 200 bytes a record: a batch is full at exactly 1000 bytes (5 records)
        for i in range(10):
            producer.send("t", b"%03d" % i + b"x" * 181, partition=0)
        # 300 bytes a record: a fourth would overflow 1000 bytes, so 3 per batch
        for i in range(11):
            producer.send("t", b"%03d" % i + b"y" * 281, partition=1)
        producer.flush()
    assert [(b.base_offset, b.record_count) for b in batches(log, "t", 0)] == [(0, 5), (5, 5)]
    assert [(b.base_offset, b.record_count) for b in batches(log, "t", 1)] == [
        (0, 3),
        (3, 3),
        (6, 3),
        (9, 2),
    ]
    assert [r[3][:3] for r in records(log, "t", 1)] == [b"%03d" % i for i in range(11)]


def test_a_record_larger_than_batch_size_gets_its_own_batch(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=LONG_LINGER, batch_size=500) as producer:
        producer.send("t", b"a" * 50)
        big = producer.send("t", b"B" * 2000)
        producer.send("t", b"c" * 50)
        producer.send("t", b"d" * 50)
        producer.flush()
    assert big.result().offset == 1
    got = batches(log, "t", 0)
    assert [(b.base_offset, b.record_count) for b in got] == [(0, 1), (1, 1), (2, 2)]
    assert [r[3] for r in got[1].records()] == [b"B" * 2000]


# ---------------------------------------------------------------------- futures and callbacks


def test_callbacks_run_once_per_future_in_send_order_per_partition(log: streamlog.Log) -> None:
    log.create_topic("t", 3)
    seen: list[tuple[int, int, int]] = []  # (partition, send index, offset)
    calls: dict[int, int] = defaultdict(int)

    def make_callback(i: int) -> Callable[[Any], None]:
        def callback(fut: Any) -> None:
            calls[i] += 1
            md = fut.result()
            seen.append((md.partition, i, md.offset))

        return callback

    with log.producer(linger_ms=2, batch_size=400) as producer:
        for i in range(900):
            producer.send("t", b"x" * 40, partition=i % 3).add_done_callback(make_callback(i))
        producer.flush()
    assert calls == dict.fromkeys(range(900), 1)
    for p in range(3):
        mine = [(i, offset) for partition, i, offset in seen if partition == p]
        assert mine == [(p + 3 * n, n) for n in range(300)]
        assert len(batches(log, "t", p)) >= 30  # 7 records of 56 bytes a batch at most


def test_pending_callbacks_run_on_the_sender_thread(log: streamlog.Log) -> None:
    log.create_topic("t")
    threads: list[threading.Thread] = []
    with log.producer(linger_ms=LONG_LINGER) as producer:
        fut = producer.send("t", b"v")
        fut.add_done_callback(lambda f: threads.append(threading.current_thread()))
        assert threads == []
        producer.flush()
    assert len(threads) == 1
    assert threads[0] is not threading.current_thread()
    assert threads[0].name.startswith("streamlog-sender-")


def test_callback_on_a_done_future_runs_at_once_in_the_calling_thread(
    log: streamlog.Log,
) -> None:
    log.create_topic("t")
    got: list[tuple[threading.Thread, Any]] = []
    with log.producer() as producer:
        fut = producer.send("t", b"v")
        fut.result(10)
        fut.add_done_callback(lambda f: got.append((threading.current_thread(), f)))
        assert got == [(threading.current_thread(), fut)]
        failed = producer.send("nope", b"v")
        failed.add_done_callback(lambda f: got.append((threading.current_thread(), f)))
        assert got[1] == (threading.current_thread(), failed)


def test_a_failing_callback_does_not_stop_the_others(
    log: streamlog.Log, caplog: pytest.LogCaptureFixture
) -> None:
    log.create_topic("t")
    ran: list[str] = []

    def bad(fut: Any) -> None:
        ran.append("bad")
        raise RuntimeError("boom")

    with log.producer(linger_ms=LONG_LINGER) as producer:
        first = producer.send("t", b"1")
        second = producer.send("t", b"2")
        first.add_done_callback(bad)
        first.add_done_callback(lambda f: ran.append("first"))
        second.add_done_callback(bad)
        second.add_done_callback(lambda f: ran.append("second"))
        producer.flush()
        assert ran == ["bad", "first", "bad", "second"]
        assert [first.result().offset, second.result().offset] == [0, 1]
        # and the producer goes on working
        third = producer.send("t", b"3")
        third.add_done_callback(bad)
        producer.flush()
        assert third.result(0).offset == 2
    assert "exception in a send callback" in caplog.text


def test_result_and_exception_time_out_with_kafka_timeout_error(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=LONG_LINGER) as producer:
        fut = producer.send("t", b"v")
        start = time.monotonic()
        with pytest.raises(KafkaTimeoutError) as info:
            fut.result(timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        with pytest.raises(TimeoutError):
            fut.exception(timeout=0.05)
        assert 0.09 <= time.monotonic() - start < 2
        assert not fut.done()
        producer.flush()
        assert fut.exception(timeout=0) is None
        assert fut.result(timeout=0) == RecordMetadata("t", 0, 0, fut.result().timestamp)


def test_futures_cannot_be_resolved_by_the_user(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer() as producer:
        fut = producer.send("t", b"v")
        with pytest.raises(RuntimeError):
            fut.set_result(None)
        with pytest.raises(RuntimeError):
            fut.set_exception(ValueError())
        assert fut.result(10).offset == 0


# ---------------------------------------------------------------------- errors through the future


def assert_failed(fut: Any, error: type[BaseException]) -> None:
    assert fut.done()
    assert isinstance(fut.exception(timeout=0), error)
    with pytest.raises(error):
        fut.result(timeout=0)


def test_unknown_topic_fails_the_future(log: streamlog.Log) -> None:
    with log.producer() as producer:
        fut = producer.send("missing", b"v")
        assert_failed(fut, UnknownTopicError)
        assert_failed(producer.send("missing", b"v", partition=0), UnknownTopicError)
        called: list[Any] = []
        fut.add_done_callback(called.append)
        assert called == [fut]
    assert log.topics() == []


@pytest.mark.parametrize(
    "error",
    [
        streamlog.StorageIOError(errno.EIO, "injected read error", "meta/t"),
        streamlog.MetadataCorruptError("injected: topic metadata is not JSON", path="meta/t"),
    ],
    ids=["eio", "corrupt"],
)
def test_an_unreadable_topic_entry_fails_the_future_not_the_call(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Reading the topic's metadata is part of the send: its I/O errors arrive through
    the future, as in Kafka (docs/producer.md), both on the first look at a topic and on
    the look again for a partition beyond the known count."""
    log.create_topic("t", 1)

    def unreadable(name: str) -> None:
        raise error

    with log.producer() as producer:
        monkeypatch.setattr(producer._log, "topic", unreadable)
        fut = producer.send("t", b"lost")
        assert_failed(fut, type(error))
        assert fut.exception(timeout=0) is error
        monkeypatch.undo()
        assert producer.send("t", b"kept").result(10).offset == 0
        monkeypatch.setattr(producer._log, "topic", unreadable)
        fut = producer.send("t", b"lost", partition=1)  # beyond the known count: look again
        assert_failed(fut, type(error))
        monkeypatch.undo()
        producer.flush()
    assert [r[3] for r in records(log, "t", 0)] == [b"kept"]


def test_unknown_partition_fails_the_future_and_uses_no_offset(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    with log.producer() as producer:
        assert producer.send("t", b"a", partition=1).result(10).offset == 0
        assert_failed(producer.send("t", b"v", partition=2), UnknownPartitionError)
        assert_failed(producer.send("t", b"v", partition=1000), UnknownPartitionError)
        assert producer.send("t", b"b", partition=1).result(10).offset == 1
    assert [r[3] for r in records(log, "t", 1)] == [b"a", b"b"]
    assert end_offset(log, "t", 0) == 0


def test_a_partition_added_later_is_found(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    with log.producer() as producer:
        assert producer.partitions_for("t") == {0}
        producer.send("t", b"v").result(10)
        log.create_partitions("t", 3)
        assert producer.partitions_for("t") == {0, 1, 2}
        assert producer.send("t", b"v", partition=2).result(10)[:3] == ("t", 2, 0)


def test_record_over_max_request_size_fails_the_future(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(max_request_size=1000, linger_ms=LONG_LINGER) as producer:
        ok1 = producer.send("t", b"a" * 500)
        too_big = producer.send("t", b"x" * 1000)
        assert_failed(too_big, RecordTooLargeError)
        assert_failed(producer.send("t", b"v", b"k" * 2000), RecordTooLargeError)
        assert_failed(producer.send("t", b"v", headers=[("h", b"x" * 2000)]), RecordTooLargeError)
        ok2 = producer.send("t", b"b" * 400)
        producer.flush()
    assert [ok1.result().offset, ok2.result().offset] == [0, 1]
    assert [r[3] for r in records(log, "t", 0)] == [b"a" * 500, b"b" * 400]


def test_record_over_the_topics_max_message_bytes_fails_the_future(log: streamlog.Log) -> None:
    log.create_topic("t", 1, {"max.message.bytes": 1000})
    with log.producer() as producer:
        assert_failed(producer.send("t", b"x" * 1000), RecordTooLargeError)
        assert producer.send("t", b"x" * 500).result(10).offset == 0
    assert end_offset(log, "t") == 1


def test_record_over_buffer_memory_fails_the_future(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(buffer_memory=1000, max_block_ms=0) as producer:
        assert_failed(producer.send("t", b"x" * 2000), RecordTooLargeError)
        assert producer.send("t", b"x" * 500).result(10).offset == 0
    assert end_offset(log, "t") == 1


def test_a_failed_send_uses_no_offset_and_leaves_no_partial_batch(log: streamlog.Log) -> None:
    log.create_topic("t", 1, {"max.message.bytes": 2000})
    with log.producer(linger_ms=LONG_LINGER) as producer:
        futures = [producer.send("t", b"a")]
        futures.append(producer.send("t", b"x" * 5000))
        futures.append(producer.send("nope", b"x"))
        futures.append(producer.send("t", b"x", partition=7))
        futures.append(producer.send("t", b"b"))
        producer.flush()
    assert [f.exception() is None for f in futures] == [True, False, False, False, True]
    assert [futures[0].result().offset, futures[4].result().offset] == [0, 1]
    plog = log.partition("t", 0)
    plog._check()
    assert plog.end_offset == 2
    assert [(b.base_offset, b.record_count) for b in batches(log, "t", 0)] == [(0, 2)]
    assert [r[3] for r in records(log, "t", 0)] == [b"a", b"b"]


def test_records_with_wide_header_keys_do_not_overflow_a_batch(log: streamlog.Log) -> None:
    # header keys are counted in UTF-8 bytes: a batch of records that fit one by one
    # must not be rejected as a whole by the partition's max.message.bytes check
    log.create_topic("t", 1, {"max.message.bytes": 2000})
    with log.producer(linger_ms=LONG_LINGER, batch_size=100_000) as producer:
        small = [producer.send("t", b"x" * 100) for _ in range(6)]
        wide = producer.send("t", b"v", headers=[("\u00e9" * 800, b"")])
        producer.flush()
    for fut in [*small, wide]:
        assert fut.exception() is None
    assert [r[4] for r in records(log, "t", 0)][-1] == (("\u00e9" * 800, b""),)
    log.partition("t", 0)._check()


def test_full_buffer_for_max_block_ms_fails_the_future(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(buffer_memory=1000, linger_ms=LONG_LINGER, max_block_ms=0) as producer:
        first = producer.send("t", b"a" * 600)
        start = time.monotonic()
        second = producer.send("t", b"b" * 600)
        assert time.monotonic() - start < 1
        assert_failed(second, KafkaTimeoutError)
        assert not first.done()
        producer.flush()
        assert first.result().offset == 0
        third = producer.send("t", b"c" * 600)
        producer.flush()
        assert third.result(0).offset == 1
    plog = log.partition("t", 0)
    plog._check()
    assert [r[3][:1] for r in records(log, "t", 0)] == [b"a", b"c"]


def test_full_buffer_with_a_blocked_sender_fails_after_max_block_ms(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t")
    release = block_appends(monkeypatch, log, "t")
    with log.producer(buffer_memory=1000, max_block_ms=100) as producer:
        first = producer.send("t", b"a" * 600)
        start = time.monotonic()
        second = producer.send("t", b"b" * 600)
        assert 0.09 <= time.monotonic() - start < 2
        assert_failed(second, KafkaTimeoutError)
        release.set()
        assert first.result(10).offset == 0
    assert [r[3][:1] for r in records(log, "t", 0)] == [b"a"]


def test_full_buffer_makes_lingering_batches_ready(log: streamlog.Log) -> None:
    # as Kafka's accumulator: a send waiting for buffer space makes batches sendable,
    # so it does not wait for linger (nor fail after max_block_ms)
    log.create_topic("t")
    with log.producer(buffer_memory=1000, linger_ms=LONG_LINGER, max_block_ms=5000) as producer:
        first = producer.send("t", b"a" * 600)
        start = time.monotonic()
        second = producer.send("t", b"b" * 600)
        assert time.monotonic() - start < 2
        assert first.result(timeout=2).offset == 0
        producer.flush()
        assert second.result(timeout=0).offset == 1


# ---------------------------------------------------------------------- misuse raises at the call


def test_send_after_close_raises_closed_error(log: streamlog.Log) -> None:
    log.create_topic("t")
    producer = log.producer()
    producer.close()
    with pytest.raises(ClosedError):
        producer.send("t", b"v")
    with pytest.raises(ClosedError):
        producer.partitions_for("t")
    assert end_offset(log, "t") == 0


@pytest.mark.parametrize("bad", ["text", 7, {"a": 1}, bytearray(b"x"), 1.5])
def test_key_or_value_not_bytes_without_a_serializer_is_a_type_error(
    log: streamlog.Log, bad: object
) -> None:
    log.create_topic("t")
    with log.producer() as producer:
        with pytest.raises(TypeError):
            producer.send("t", bad)
        with pytest.raises(TypeError):
            producer.send("t", b"v", bad)
    assert end_offset(log, "t") == 0


def test_serializer_returning_not_bytes_is_a_type_error(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(value_serializer=lambda v: v) as producer:
        with pytest.raises(TypeError):
            producer.send("t", "text")


@pytest.mark.parametrize(
    ("partition", "error"),
    [(True, TypeError), (False, TypeError), (1.0, TypeError), ("1", TypeError), (-1, ValueError)],
)
def test_bad_partition_raises_at_the_call(
    log: streamlog.Log, partition: object, error: type[Exception]
) -> None:
    log.create_topic("t", 2)
    with log.producer() as producer:
        with pytest.raises(error):
            producer.send("t", b"v", partition=partition)  # type: ignore[arg-type]
    assert end_offset(log, "t", 0) == end_offset(log, "t", 1) == 0


@pytest.mark.parametrize(
    ("timestamp", "error"),
    [(-1, ValueError), (1.5, TypeError), (1000.0, TypeError), (True, TypeError), ("5", TypeError)],
)
def test_bad_timestamp_raises_at_the_call(
    log: streamlog.Log, timestamp: object, error: type[Exception]
) -> None:
    log.create_topic("t")
    with log.producer() as producer:
        with pytest.raises(error):
            producer.send("t", b"v", timestamp_ms=timestamp)  # type: ignore[arg-type]
    assert end_offset(log, "t") == 0


@pytest.mark.parametrize(
    "headers",
    [
        [(1, b"v")],
        [(b"k", b"v")],
        [("k", "v")],
        [("k", 1)],
        [("k",)],
        [("k", b"v", b"w")],
        ["kv"],
        {"k": b"v"},
        "k",
        b"k",
        7,
    ],
)
def test_bad_headers_raise_type_error_at_the_call(log: streamlog.Log, headers: object) -> None:
    log.create_topic("t")
    with log.producer() as producer:
        with pytest.raises(TypeError):
            producer.send("t", b"v", headers=headers)  # type: ignore[arg-type]
    assert end_offset(log, "t") == 0


@pytest.mark.parametrize("topic", ["", "a/b", "a" * 250, ".", "..", "sp ace", None, 5])
def test_invalid_topic_name_raises_at_the_call(log: streamlog.Log, topic: object) -> None:
    with log.producer() as producer:
        with pytest.raises(InvalidTopicError):
            producer.send(topic, b"v")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        {"no_such_setting": 1},
        {"acks": 2},
        {"acks": "none"},
        {"acks": True},
        {"acks": None},
        {"compression_type": "gzip"},
        {"compression_type": "lz4"},
        {"transactional_id": "tx", "acks": 1},
        {"transactional_id": "bad/name"},
        {"enable_idempotence": True, "acks": 0},
        {"transactional_id": "tx", "enable_idempotence": False},
        {"transaction_timeout_ms": 0},
        {"linger_ms": -1},
        {"linger_ms": 1.5},
        {"batch_size": "16k"},
        {"max_request_size": 0},
        {"buffer_memory": 0},
        {"max_block_ms": -1},
        {"partitioner": "nope"},
        {"partitioner": 5},
        {"key_serializer": 5},
        {"value_serializer": "json"},
        {"enable_idempotence": 1},
    ],
)
def test_bad_config_raises_config_error(log: streamlog.Log, config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        log.producer(**config)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------- acks


def test_acks_0_completes_at_once_with_offset_minus_one(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t", 2)
    syncs = SyncCounter(monkeypatch)
    with log.producer(acks=0, linger_ms=LONG_LINGER) as producer:
        fut = producer.send("t", b"v", partition=1, timestamp_ms=77)
        assert fut.done()
        assert fut.result(timeout=0) == RecordMetadata("t", 1, -1, 77)
        others = [producer.send("t", b"%d" % i, partition=1) for i in range(3)]
        assert all(f.done() and f.result().offset == -1 for f in others)
        assert end_offset(log, "t", 1) == 0
        producer.flush()
        assert end_offset(log, "t", 1) == 4
        assert syncs.calls == 0
    assert [r[3] for r in records(log, "t", 1)] == [b"v", b"0", b"1", b"2"]


def test_acks_1_acknowledges_without_syncing(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t")
    syncs = SyncCounter(monkeypatch)
    producer = log.producer(acks=1)
    assert [producer.send("t", b"v").result(10).offset for _ in range(5)] == [0, 1, 2, 3, 4]
    producer.flush()
    assert syncs.calls == 0
    producer.close()


@pytest.mark.parametrize("acks", ["all", -1, "-1"])
def test_acks_all_syncs_before_acknowledging(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch, acks: object
) -> None:
    log.create_topic("t")
    syncs = SyncCounter(monkeypatch)
    with log.producer(acks=acks) as producer:
        for i in range(3):
            assert producer.send("t", b"v").result(10).offset == i
            assert syncs.calls >= i + 1


def test_acks_all_shares_syncs_between_batches_group_commit(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t")
    syncs = SyncCounter(monkeypatch, delay=0.005)
    producer = log.producer(acks="all", batch_size=200)
    futures: list[list[Any]] = [[] for _ in range(4)]

    def work(n: int) -> None:
        for i in range(100):
            futures[n].append(producer.send("t", b"%d-%d" % (n, i) + b"x" * 100))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.flush()
    offsets = sorted(f.result().offset for fs_ in futures for f in fs_)
    assert offsets == list(range(400))
    n_batches = len(batches(log, "t", 0))
    assert n_batches == 400  # a second record of ~120 bytes does not fit a 200-byte batch
    assert 1 <= syncs.calls < n_batches / 2
    producer.close()


# ---------------------------------------------------------------------- payloads


def test_zstd_compression_round_trips(log: streamlog.Log) -> None:
    log.create_topic("t")
    values = [b"%d" % i * 300 for i in range(50)] + [None, b""]
    with log.producer(
        compression_type="zstd", linger_ms=LONG_LINGER, batch_size=100_000
    ) as producer:
        futures = [producer.send("t", v, b"k%d" % i) for i, v in enumerate(values)]
        producer.flush()
    assert [f.result().offset for f in futures] == list(range(52))
    (batch,) = batches(log, "t", 0)
    assert batch.compression == COMPRESSION_ZSTD
    assert batch.size < sum(len(v or b"") for v in values) / 4
    assert [(r[2], r[3]) for r in batch.records()] == [
        (b"k%d" % i, v) for i, v in enumerate(values)
    ]


def test_compression_none_stores_plain_batches(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(compression_type="none") as producer:
        producer.send("t", b"v").result(10)
    assert batches(log, "t", 0)[0].compression == COMPRESSION_NONE


def test_serializers_turn_keys_and_values_into_bytes(log: streamlog.Log) -> None:
    log.create_topic("t", 5)
    with log.producer(
        key_serializer=str.encode, value_serializer=lambda v: json.dumps(v).encode()
    ) as producer:
        md = producer.send("t", {"n": 1, "s": "x"}, "user-7").result(10)
        tombstone = producer.send("t", None, "user-7").result(10)
    assert md.partition == tombstone.partition == murmur2_partition(b"user-7", 5)
    assert [(r[2], r[3]) for r in records(log, "t", md.partition)] == [
        (b"user-7", b'{"n": 1, "s": "x"}'),
        (b"user-7", None),
    ]


def test_none_and_empty_keys_and_values_are_kept_apart(log: streamlog.Log) -> None:
    log.create_topic("t")
    pairs = [(None, None), (b"", b""), (None, b""), (b"", None), (b"k", b"v")]
    with log.producer(linger_ms=LONG_LINGER) as producer:
        for key, value in pairs:
            producer.send("t", value, key, partition=0)
        producer.flush()
    assert [(r[2], r[3]) for r in records(log, "t", 0)] == pairs


def test_headers_keep_order_duplicates_and_none_values(log: streamlog.Log) -> None:
    log.create_topic("t")
    headers = [("a", b"1"), ("b", None), ("a", b"2"), ("", b""), ("\u00e9", b"\x00")]
    with log.producer(linger_ms=LONG_LINGER) as producer:
        producer.send("t", b"1", headers=headers)
        producer.send("t", b"2")
        producer.send("t", b"3", headers=[])
        producer.send("t", b"4", headers=tuple(headers[:1]))
        producer.flush()
    assert [r[4] for r in records(log, "t", 0)] == [tuple(headers), (), (), (("a", b"1"),)]
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    got = consumer.poll(timeout_ms=1000)[TopicPartition("t", 0)]
    consumer.close()
    assert [list(r.headers) for r in got] == [headers, [], [], [("a", b"1")]]


def test_timestamps_default_to_now_and_explicit_ones_are_kept(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=LONG_LINGER) as producer:
        before = int(time.time() * 1000)
        default = producer.send("t", b"now")
        after = int(time.time() * 1000)
        explicit = [producer.send("t", b"x", timestamp_ms=ts) for ts in (0, 5, 2**41, 3)]
        producer.flush()
    md = default.result()
    assert before <= md.timestamp <= after
    assert [f.result().timestamp for f in explicit] == [0, 5, 2**41, 3]
    assert [r[1] for r in records(log, "t", 0)] == [md.timestamp, 0, 5, 2**41, 3]


def test_log_append_time_replaces_given_timestamps(log: streamlog.Log) -> None:
    log.create_topic("t", 1, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    with log.producer(linger_ms=LONG_LINGER) as producer:
        futures = [producer.send("t", b"%d" % i, timestamp_ms=5 + i) for i in range(3)]
        producer.flush()
        later_future = producer.send("t", b"later", timestamp_ms=1)
        producer.flush()
        later = later_future.result(0)
    after = int(time.time() * 1000)
    first, second = batches(log, "t", 0)
    assert first.log_append_time and second.log_append_time
    assert before <= first.max_timestamp <= second.max_timestamp <= after
    assert [f.result().timestamp for f in futures] == [first.max_timestamp] * 3
    assert later.timestamp == second.max_timestamp
    assert [r[1] for r in records(log, "t", 0)] == [first.max_timestamp] * 3 + [later.timestamp]
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 0)])
    got = consumer.poll(timeout_ms=1000)[TopicPartition("t", 0)]
    consumer.close()
    assert [r.timestamp for r in got] == [first.max_timestamp] * 3 + [later.timestamp]


# ---------------------------------------------------------------------- flush and close


def test_flush_with_nothing_pending_returns_at_once(log: streamlog.Log) -> None:
    with log.producer() as producer:
        start = time.monotonic()
        producer.flush()
        producer.flush(timeout_ms=0)
        assert time.monotonic() - start < 0.5


def test_flush_timeout_raises_kafka_timeout_error(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t")
    release = block_appends(monkeypatch, log, "t")
    with log.producer() as producer:
        fut = producer.send("t", b"v")
        start = time.monotonic()
        with pytest.raises(KafkaTimeoutError):
            producer.flush(timeout_ms=100)
        assert 0.09 <= time.monotonic() - start < 2
        assert not fut.done()
        release.set()
        producer.flush(timeout_ms=5000)
        assert fut.result(timeout=0).offset == 0


def test_flush_waits_for_records_sent_by_other_threads(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=LONG_LINGER) as producer:
        futures = []
        thread = threading.Thread(target=lambda: futures.append(producer.send("t", b"v")))
        thread.start()
        thread.join()
        producer.flush()
        assert futures[0].result(timeout=0).offset == 0


def test_close_flushes_and_is_idempotent(log: streamlog.Log) -> None:
    log.create_topic("t")
    producer = log.producer(linger_ms=LONG_LINGER)
    futures = [producer.send("t", b"%d" % i) for i in range(3)]
    producer.close()
    assert [f.result(timeout=0).offset for f in futures] == [0, 1, 2]
    producer.close()
    producer.close(timeout_ms=0)
    assert end_offset(log, "t") == 3


def test_close_with_timeout_is_bounded_and_fails_what_is_left(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.create_topic("t")
    release = block_appends(monkeypatch, log, "t")
    producer = log.producer()
    stuck = producer.send("t", b"stuck")
    assert wait_until(lambda: not producer._full and not producer._open, 2.0)
    left = producer.send("t", b"left")
    start = time.monotonic()
    producer.close(timeout_ms=200)
    assert time.monotonic() - start < 1.5
    assert_failed(left, KafkaTimeoutError)
    with pytest.raises(ClosedError):
        producer.send("t", b"v")
    release.set()
    assert stuck.result(timeout=10).offset == 0
    assert [r[3] for r in records(log, "t", 0)] == [b"stuck"]


def test_close_inside_a_callback_does_not_deadlock(log: streamlog.Log) -> None:
    # Kafka: close() called from a callback acts as close(0)
    log.create_topic("t")
    producer = log.producer(linger_ms=LONG_LINGER)
    first = producer.send("t", b"1")
    closed = threading.Event()

    def close_it(fut: Any) -> None:
        producer.close()
        closed.set()

    first.add_done_callback(close_it)
    done = threading.Event()
    threading.Thread(target=lambda: (producer.flush(), done.set()), daemon=True).start()
    assert closed.wait(5), "close() inside a callback deadlocked"
    assert done.wait(5)
    assert first.result(timeout=0).offset == 0
    with pytest.raises(ClosedError):
        producer.send("t", b"2")


def test_context_manager_closes_the_producer(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer(linger_ms=LONG_LINGER) as producer:
        assert isinstance(producer, streamlog.Producer)
        fut = producer.send("t", b"v")
    assert fut.result(timeout=0).offset == 0
    with pytest.raises(ClosedError):
        producer.send("t", b"v")


def test_producer_opened_on_a_path_owns_and_closes_its_log(data_dir: str) -> None:
    with streamlog.open(data_dir) as admin:
        admin.create_topic("t", 2)
    producer = streamlog.Producer(data_dir, client_id="mine")
    assert producer.client_id == "mine"
    assert producer.partitions_for("t") == {0, 1}
    md = producer.send("t", b"v", partition=1).result(10)
    own_log = producer._log
    producer.close()
    with pytest.raises(ClosedError):
        own_log.topics()
    with streamlog.open(data_dir) as reader:
        assert records(reader, "t", 1)[0][3] == b"v"
        assert md == RecordMetadata("t", 1, 0, md.timestamp)


def test_producer_given_a_log_leaves_it_open(log: streamlog.Log) -> None:
    log.create_topic("t")
    producer = streamlog.Producer(log)
    producer.send("t", b"v").result(10)
    producer.close()
    assert log.topics() == ["t"]
    assert end_offset(log, "t") == 1


def test_client_ids_default_to_distinct_names(log: streamlog.Log) -> None:
    with log.producer() as a, log.producer() as b:
        assert a.client_id.startswith("producer-")
        assert a.client_id != b.client_id
        assert a.client_id in repr(a)


def test_partitions_for_lists_partitions_or_raises_for_unknown_topics(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 3)
    with log.producer() as producer:
        assert producer.partitions_for("t") == {0, 1, 2}
        with pytest.raises(UnknownTopicError):
            producer.partitions_for("missing")
        with pytest.raises(InvalidTopicError):
            producer.partitions_for("bad/name")


# ---------------------------------------------------------------------- threads


def test_many_threads_sending_at_once_lose_and_reorder_nothing(log: streamlog.Log) -> None:
    log.create_topic("t", 3)
    n_threads, per_thread = 8, 2000
    results: list[list[tuple[int, Any]]] = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    with log.producer(linger_ms=1, batch_size=4096) as producer:

        def work(n: int) -> None:
            barrier.wait()
            out = results[n]
            for i in range(per_thread):
                key = b"k%d" % ((i * 7 + n) % 13)
                out.append((i, producer.send("t", b"%d:%d" % (n, i), key)))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        producer.flush()

    stored = {p: {r[0]: r for r in records(log, "t", p)} for p in range(3)}
    assert sum(len(s) for s in stored.values()) == n_threads * per_thread
    seen_values: set[bytes] = set()
    for n in range(n_threads):
        last: dict[int, int] = {}
        for i, fut in results[n]:
            md = fut.result(timeout=0)
            key = b"k%d" % ((i * 7 + n) % 13)
            assert md.partition == murmur2_partition(key, 3)
            assert md.offset > last.get(md.partition, -1)
            last[md.partition] = md.offset
            _offset, _ts, stored_key, value, _h = stored[md.partition][md.offset]
            assert (stored_key, value) == (key, b"%d:%d" % (n, i))
            seen_values.add(value)
    assert len(seen_values) == n_threads * per_thread
    for p in range(3):
        assert sorted(stored[p]) == list(range(len(stored[p])))
        log.partition("t", p)._check()


def test_flush_inside_a_callback_raises_instead_of_deadlocking(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a callback on the sender thread (an inline append completes the future before
    # send returns, and the callback then runs at once in the caller's thread)
    monkeypatch.setattr(_producer, "_INLINE_GAP", float("inf"))
    log.create_topic("t")
    errors: list[BaseException] = []

    def flush_it(fut: Any) -> None:
        try:
            producer.flush()
        except IllegalStateError as e:
            errors.append(e)

    with log.producer() as producer:
        producer.send("t", b"v").add_done_callback(flush_it)
        done = threading.Event()
        threading.Thread(target=lambda: (producer.flush(), done.set()), daemon=True).start()
        assert done.wait(5), "flush() inside a callback deadlocked"
    assert len(errors) == 1


def test_a_topic_deleted_by_another_handle_is_not_written_to(data_dir: str) -> None:
    # another handle stands for another process: its delete closes nothing of ours
    with streamlog.open(data_dir) as log, streamlog.open(data_dir) as other:
        log.create_topic("t")
        with log.producer() as producer:
            assert producer.send("t", b"a").result(10).offset == 0
            other.delete_topic("t")
            assert isinstance(producer.send("t", b"lost").exception(10), UnknownTopicError)
            other.create_topic("t")
            assert producer.send("t", b"b").result(10).offset == 0
        assert [r[3] for r in records(other, "t", 0)] == [b"b"]


def test_purge_queued_drops_unwritten_records(log: streamlog.Log) -> None:
    """``_purge_queued`` (the confluent shim's ``purge``): queued records fail with the
    given error and are never written; buffer space and ``flush`` are released; records
    sent after it, and an idempotent producer's sequences, carry on."""
    log.create_topic("t", 2)
    with log.producer(linger_ms=LONG_LINGER, enable_idempotence=True) as producer:
        first = producer.send("t", b"written", partition=0)
        producer.flush()
        assert first.result(5).offset == 0
        doomed = [producer.send("t", b"%d" % i, partition=i % 2) for i in range(5)]
        error = RuntimeError("purged")
        assert producer._purge_queued(error) == 5
        for fut in doomed:
            assert fut.done() and fut.exception() is error
        assert producer._buffered == 0 and producer._pending_records == 0
        producer.flush(1000)  # nothing left to wait for
        assert producer._purge_queued(error) == 0
        after = producer.send("t", b"after", partition=0)
        producer.flush()
        assert after.result(5).offset == 1  # no gap in the log, nor in the sequences
    assert [r[3] for b in batches(log, "t", 0) for r in b.records()] == [b"written", b"after"]
    assert batches(log, "t", 1) == []
