"""Each future of a producer reports exactly what happened to its own record (issue 11).

Found by outside testing: two batches of one partition written together, the
second failing to allocate its new segment (ENOSPC), failed both futures
although the first batch was stored and readable (a retry duplicated it). The
class: a partial append, and a failed sync of one partition failing the
records of other partitions written in the same sender round.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition
from tests.reliability._faults import FaultInjector


def _values(log: streamlog.Log, topic: str, partition: int) -> list[bytes]:
    with log.consumer(auto_offset_reset="earliest") as c:
        c.assign([TopicPartition(topic, partition)])
        out: list[bytes] = []
        while True:
            got = c.poll(200).get(TopicPartition(topic, partition), [])
            if not got:
                return out
            out.extend(r.value for r in got if r.value is not None)


def test_a_partial_append_fails_only_the_batches_not_written(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each record fills a batch, and each batch after the first needs a new segment
    log.create_topic("t", 1, {"segment.bytes": 4096})
    producer = log.producer(batch_size=1, linger_ms=60_000)

    def new_segment(name: str, args: tuple[Any, ...]) -> bool:
        return name == "fallocate" and str(args[-1]).endswith(".log")

    rounds: list[int] = []
    real_write = producer._write

    def write(batches: list[Any]) -> None:
        rounds.append(len(batches))
        real_write(batches)

    monkeypatch.setattr(producer, "_write", write)
    interval = sys.getswitchinterval()
    with FaultInjector(2, errno.ENOSPC, only=new_segment) as faults:
        # the sender thread gets no turn until the three are queued: one round, 3 batches
        sys.setswitchinterval(5.0)
        try:
            futures = [producer.send("t", bytes([65 + i]) * 3000, partition=0) for i in range(3)]
        finally:
            sys.setswitchinterval(interval)
        producer.flush()
    assert rounds[0] == 3, rounds
    assert faults.fired == ["fallocate"]
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result(10).offset)
        except streamlog.StorageIOError as e:
            outcomes.append(e.errno)
    # the first batch is in the log and its future says so; the rest failed, no offset
    assert outcomes[0] == 0, outcomes
    assert outcomes[1:] == [errno.ENOSPC, errno.ENOSPC], outcomes
    assert _values(log, "t", 0) == [b"A" * 3000]
    # and a retry of the failed ones lands once each, after it
    assert producer.send("t", b"B" * 3000, partition=0).result(10).offset == 1
    producer.close()
    assert _values(log, "t", 0) == [b"A" * 3000, b"B" * 3000]


def test_a_failed_sync_fails_only_its_own_partition(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: with ``acks="all"``, a sync failure of one partition failed the records of
    every partition of the same sender round."""
    log.create_topic("t", 2)
    producer = log.producer(acks="all", linger_ms=60_000)
    bad = log.partition("t", 1)
    real_flush = type(bad).flush

    def flush(self: Any) -> None:
        if self is bad:
            raise streamlog.StorageIOError(errno.EIO, "injected", self.path)
        real_flush(self)

    monkeypatch.setattr(type(bad), "flush", flush)
    good_future = producer.send("t", b"good", partition=0)
    bad_future = producer.send("t", b"bad", partition=1)
    producer.flush()
    assert good_future.result(10).offset == 0
    with pytest.raises(streamlog.StorageIOError):
        bad_future.result(10)
    monkeypatch.undo()
    producer.close()
