"""Idempotent and transactional producing, read_committed consuming, through the public API.

The coordinator's files and the partition's producer state have their own tests
(test_partition_txn.py, test_producer_state.py); crashes are in
tests/reliability/test_txn_crash_points.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import streamlog
from streamlog import (
    CommitFailedError,
    ConfigError,
    IllegalStateError,
    OffsetAndMetadata,
    ProducerFencedError,
    RecordTooLargeError,
    TopicPartition,
    TransactionAbortedError,
    UnknownTopicError,
)
from streamlog.coordination._txn import TransactionCoordinator, TxnRecord

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
FAST = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 50, "auto_offset_reset": "earliest"}


@pytest.fixture
def log(log: streamlog.Log) -> streamlog.Log:
    """The shared ``log`` (conftest) with topic ``t`` of 2 partitions and ``src`` of 1."""
    log.create_topic("t", 2)
    log.create_topic("src", 1)
    return log


@pytest.fixture
def txp(log: streamlog.Log) -> Iterator[streamlog.Producer]:
    """A transactional producer ("tx"), initialized."""
    p = log.producer(transactional_id="tx")
    p.init_transactions()
    yield p
    p.close()


def consumer(
    log: streamlog.Log, isolation: str, *tps: TopicPartition, **config: Any
) -> streamlog.Consumer:
    """A consumer of ``isolation`` assigned ``tps`` (default: t-0), reading from the start."""
    config.setdefault("auto_offset_reset", "earliest")
    c = log.consumer(isolation_level=isolation, **config)
    c.assign(list(tps or (TP0,)))
    return c


def drain(c: streamlog.Consumer, timeout: float = 0.1) -> list[tuple[int, bytes | None]]:
    """``(offset, value)`` of everything ``c`` returns until a poll of ``timeout`` is empty."""
    out: list[tuple[int, bytes | None]] = []
    while True:
        got = c.poll(timeout_ms=int(timeout * 1000))
        if not got:
            return out
        for records in got.values():
            out.extend((r.offset, r.value) for r in records)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def coordinator(log: streamlog.Log) -> TransactionCoordinator:
    return log._manager.transactions()


# ---------------------------------------------------------------- calls out of order


def test_send_before_begin_raises_illegal_state(txp: streamlog.Producer) -> None:
    with pytest.raises(IllegalStateError):
        txp.send("t", b"v", partition=0)


def test_commit_before_begin_raises_illegal_state(txp: streamlog.Producer) -> None:
    with pytest.raises(IllegalStateError):
        txp.commit_transaction()


def test_abort_before_begin_raises_illegal_state(txp: streamlog.Producer) -> None:
    with pytest.raises(IllegalStateError):
        txp.abort_transaction()


def test_send_offsets_before_begin_raises_illegal_state(txp: streamlog.Producer) -> None:
    with pytest.raises(IllegalStateError):
        txp.send_offsets_to_transaction({TP0: OffsetAndMetadata(1)}, "g")


def test_begin_before_init_raises_illegal_state(log: streamlog.Log) -> None:
    with log.producer(transactional_id="tx") as p, pytest.raises(IllegalStateError):
        p.begin_transaction()


@pytest.mark.parametrize("call", ["send", "commit", "abort"])
def test_calls_before_init_raise_illegal_state(log: streamlog.Log, call: str) -> None:
    with log.producer(transactional_id="tx") as p, pytest.raises(IllegalStateError):
        if call == "send":
            p.send("t", b"v", partition=0)
        elif call == "commit":
            p.commit_transaction()
        else:
            p.abort_transaction()


def test_begin_twice_raises_illegal_state(txp: streamlog.Producer) -> None:
    txp.begin_transaction()
    with pytest.raises(IllegalStateError):
        txp.begin_transaction()
    txp.abort_transaction()  # the first transaction is still open


def test_commit_twice_raises_illegal_state(txp: streamlog.Producer) -> None:
    txp.begin_transaction()
    txp.send("t", b"v", partition=0)
    txp.commit_transaction()
    with pytest.raises(IllegalStateError):
        txp.commit_transaction()


def test_init_inside_a_transaction_raises_illegal_state(txp: streamlog.Producer) -> None:
    txp.begin_transaction()
    with pytest.raises(IllegalStateError):
        txp.init_transactions()


@pytest.mark.parametrize("config", [{}, {"enable_idempotence": True}])
@pytest.mark.parametrize("call", ["init", "begin", "commit", "abort", "send_offsets"])
def test_transactional_calls_need_a_transactional_id(
    log: streamlog.Log, config: dict[str, Any], call: str
) -> None:
    with log.producer(**config) as p:
        with pytest.raises(IllegalStateError):
            if call == "init":
                p.init_transactions()
            elif call == "begin":
                p.begin_transaction()
            elif call == "commit":
                p.commit_transaction()
            elif call == "abort":
                p.abort_transaction()
            else:
                p.send_offsets_to_transaction({TP0: OffsetAndMetadata(1)}, "g")
        # still a working producer
        assert p.send("t", b"v", partition=0).result(5).offset == 0


def test_an_empty_transaction_commits_and_aborts(
    txp: streamlog.Producer, log: streamlog.Log
) -> None:
    txp.begin_transaction()
    txp.commit_transaction()
    txp.begin_transaction()
    txp.abort_transaction()
    assert log.partition("t", 0).end_offset == 0  # no marker without data
    assert log.describe_transaction("tx").state in ("Empty", "CompleteCommit", "CompleteAbort")


# ---------------------------------------------------------------- visibility


def test_records_are_invisible_to_read_committed_until_commit(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    rc = consumer(log, "read_committed")
    txp.begin_transaction()
    txp.send("t", b"a", partition=0)
    txp.send("t", b"b", partition=0)
    txp.flush()
    assert drain(rc) == []
    assert rc.position(TP0) == 0
    txp.commit_transaction()
    assert drain(rc) == [(0, b"a"), (1, b"b")]


def test_read_uncommitted_sees_open_transaction_records(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    ru = consumer(log, "read_uncommitted")
    txp.begin_transaction()
    txp.send("t", b"a", partition=0)
    txp.flush()
    assert drain(ru) == [(0, b"a")]
    txp.abort_transaction()


def test_aborted_records_are_never_visible_to_read_committed(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"doomed1", partition=0)
    txp.send("t", b"doomed2", partition=0)
    txp.abort_transaction()  # marker at 2
    txp.begin_transaction()
    txp.send("t", b"kept", partition=0)
    txp.commit_transaction()  # marker at 4
    rc = consumer(log, "read_committed")
    assert drain(rc) == [(3, b"kept")]
    assert rc.position(TP0) == 5


def test_read_committed_after_abort_alone_returns_nothing(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    rc = consumer(log, "read_committed")
    txp.begin_transaction()
    txp.send("t", b"doomed", partition=0)
    txp.abort_transaction()
    assert drain(rc) == []
    assert rc.position(TP0) == 2


def test_read_uncommitted_sees_aborted_data_but_no_control_records(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"a", partition=0)
    txp.send("t", b"b", partition=0)
    txp.abort_transaction()  # marker at 2
    txp.begin_transaction()
    txp.send("t", b"c", partition=0)
    txp.commit_transaction()  # marker at 4
    ru = consumer(log, "read_uncommitted")
    assert drain(ru) == [(0, b"a"), (1, b"b"), (3, b"c")]
    assert ru.position(TP0) == 5


def test_position_moves_past_the_control_record(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"a", partition=0)
    txp.send("t", b"b", partition=0)
    txp.commit_transaction()  # marker at 2
    for isolation in ("read_committed", "read_uncommitted"):
        c = consumer(log, isolation)
        got = drain(c)
        assert got == [(0, b"a"), (1, b"b")]
        assert c.position(TP0) == 3  # > last returned offset + 1
        c.close()


def test_transaction_over_two_partitions_becomes_visible_on_both(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    rc = consumer(log, "read_committed", TP0, TP1)
    txp.begin_transaction()
    txp.send("t", b"p0", partition=0)
    txp.send("t", b"p1", partition=1)
    txp.flush()
    assert drain(rc) == []
    txp.commit_transaction()
    assert sorted(drain(rc)) == [(0, b"p0"), (0, b"p1")]
    assert rc.position(TP0) == 2
    assert rc.position(TP1) == 2


# ---------------------------------------------------------------- end offsets and the LSO


@pytest.fixture
def open_txn(log: streamlog.Log, txp: streamlog.Producer) -> streamlog.Producer:
    """t-0: plain records at 0 and 1, then an open transaction's records at 2 and 3."""
    with log.producer() as plain:
        plain.send("t", b"p0", partition=0)
        plain.send("t", b"p1", partition=0)
    txp.begin_transaction()
    txp.send("t", b"x2", partition=0)
    txp.send("t", b"x3", partition=0)
    txp.flush()
    return txp


@pytest.mark.usefixtures("open_txn")
@pytest.mark.parametrize(("isolation", "end"), [("read_committed", 2), ("read_uncommitted", 4)])
def test_end_offsets_is_the_lso_for_read_committed(
    log: streamlog.Log, isolation: str, end: int
) -> None:
    c = consumer(log, isolation)
    assert c.end_offsets([TP0, TP1]) == {TP0: end, TP1: 0}


@pytest.mark.usefixtures("open_txn")
@pytest.mark.parametrize(("isolation", "end"), [("read_committed", 2), ("read_uncommitted", 4)])
def test_seek_to_end_is_the_lso_for_read_committed(
    log: streamlog.Log, isolation: str, end: int
) -> None:
    c = consumer(log, isolation)
    c.seek_to_end(TP0)
    assert c.position(TP0) == end


@pytest.mark.usefixtures("open_txn")
@pytest.mark.parametrize(("isolation", "end"), [("read_committed", 2), ("read_uncommitted", 4)])
def test_auto_offset_reset_latest_is_the_lso_for_read_committed(
    log: streamlog.Log, isolation: str, end: int
) -> None:
    c = consumer(log, isolation, auto_offset_reset="latest")
    assert c.position(TP0) == end


@pytest.mark.usefixtures("open_txn")
@pytest.mark.parametrize(("isolation", "lag"), [("read_committed", 0), ("read_uncommitted", 2)])
def test_current_lag_is_measured_to_the_lso_for_read_committed(
    log: streamlog.Log, isolation: str, lag: int
) -> None:
    c = consumer(log, isolation)
    c.seek(TP0, 2)
    assert c.current_lag(TP0) == lag


def test_seek_to_end_at_the_lso_then_commit_returns_the_transaction(
    log: streamlog.Log, open_txn: streamlog.Producer
) -> None:
    c = consumer(log, "read_committed")
    c.seek_to_end(TP0)
    assert c.position(TP0) == 2
    open_txn.commit_transaction()  # marker at 4
    assert drain(c) == [(2, b"x2"), (3, b"x3")]
    assert c.position(TP0) == 5


def test_offsets_for_times_stops_at_the_lso_for_read_committed(log: streamlog.Log) -> None:
    with log.producer() as plain:
        plain.send("t", b"p0", partition=0, timestamp_ms=1000).result(5)
    with log.producer(transactional_id="tx") as p:
        p.init_transactions()
        p.begin_transaction()
        p.send("t", b"x1", partition=0, timestamp_ms=2000).result(5)
        ru = consumer(log, "read_uncommitted")
        assert ru.offsets_for_times({TP0: 2000})[TP0].offset == 1  # type: ignore[union-attr]
        rc = consumer(log, "read_committed")
        assert rc.offsets_for_times({TP0: 1000})[TP0].offset == 0  # type: ignore[union-attr]
        assert rc.offsets_for_times({TP0: 2000}) == {TP0: None}
        p.abort_transaction()


def test_seeking_into_an_aborted_transaction_skips_the_rest_of_it(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    for i in range(3):
        txp.send("t", b"a%d" % i, partition=0).result(5)  # one batch each: 0, 1, 2
    txp.abort_transaction()  # marker at 3
    with log.producer() as plain:
        plain.send("t", b"p4", partition=0).result(5)
    rc = consumer(log, "read_committed", max_poll_records=1, max_partition_fetch_bytes=1)
    rc.seek(TP0, 1)
    assert drain(rc) == [(4, b"p4")]
    assert rc.position(TP0) == 5


def test_small_fetches_skip_an_aborted_transaction_split_across_them(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    other = log.producer(transactional_id="other")
    other.init_transactions()
    txp.begin_transaction()
    other.begin_transaction()
    for i in range(3):
        txp.send("t", b"a%d" % i, partition=0).result(5)  # 0, 2, 4
        other.send("t", b"b%d" % i, partition=0).result(5)  # 1, 3, 5
    txp.abort_transaction()  # marker at 6
    other.commit_transaction()  # marker at 7
    for config in ({}, {"max_poll_records": 1, "max_partition_fetch_bytes": 1}):
        rc = consumer(log, "read_committed", **config)
        assert drain(rc) == [(1, b"b0"), (3, b"b1"), (5, b"b2")]
        assert rc.position(TP0) == 8
        rc.close()
    other.close()


def test_poll_through_aborted_data_returns_the_next_record_at_once(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    for i in range(40):
        txp.send("t", b"a%d" % i, partition=0).result(5)  # one batch each
    txp.abort_transaction()  # marker at 40
    with log.producer() as plain:
        plain.send("t", b"p", partition=0).result(5)  # 41
    rc = consumer(log, "read_committed", max_partition_fetch_bytes=1)
    start = time.monotonic()
    got = rc.poll(timeout_ms=10_000)
    elapsed = time.monotonic() - start
    assert [(r.offset, r.value) for rs in got.values() for r in rs] == [(41, b"p")]
    assert elapsed < 1.0


def test_lso_moves_to_the_end_when_the_transaction_commits(
    log: streamlog.Log, open_txn: streamlog.Producer
) -> None:
    c = consumer(log, "read_committed")
    open_txn.commit_transaction()  # marker at 4
    assert c.end_offsets([TP0]) == {TP0: 5}
    assert drain(c) == [(0, b"p0"), (1, b"p1"), (2, b"x2"), (3, b"x3")]
    assert c.position(TP0) == 5


def test_lso_held_by_open_txn_while_a_plain_producer_writes_after_it(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    rc = consumer(log, "read_committed")
    with log.producer() as plain:
        plain.send("t", b"before", partition=0).result(5)  # 0
        txp.begin_transaction()
        txp.send("t", b"txn", partition=0)  # 1
        txp.flush()
        plain.send("t", b"after1", partition=0).result(5)  # 2
        plain.send("t", b"after2", partition=0).result(5)  # 3
    assert drain(rc) == [(0, b"before")]
    assert rc.position(TP0) == 1
    assert rc.end_offsets([TP0]) == {TP0: 1}
    txp.commit_transaction()  # marker at 4
    assert drain(rc) == [(1, b"txn"), (2, b"after1"), (3, b"after2")]
    assert rc.position(TP0) == 5


def test_plain_records_after_an_aborted_txn_are_released_by_the_abort(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    rc = consumer(log, "read_committed")
    with log.producer() as plain:
        txp.begin_transaction()
        txp.send("t", b"txn", partition=0)  # 0
        txp.flush()
        plain.send("t", b"after", partition=0).result(5)  # 1
    assert drain(rc) == []
    txp.abort_transaction()  # marker at 2
    assert drain(rc) == [(1, b"after")]
    assert rc.position(TP0) == 3


def test_two_interleaved_transactions_hold_the_lso_at_the_earliest(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    other = log.producer(transactional_id="other")
    other.init_transactions()
    rc = consumer(log, "read_committed")
    txp.begin_transaction()
    other.begin_transaction()
    txp.send("t", b"a0", partition=0).result(5)  # 0
    other.send("t", b"b1", partition=0).result(5)  # 1
    txp.send("t", b"a2", partition=0).result(5)  # 2
    other.commit_transaction()  # marker at 3
    assert rc.end_offsets([TP0]) == {TP0: 0}
    assert drain(rc) == []
    txp.abort_transaction()  # marker at 4
    assert rc.end_offsets([TP0]) == {TP0: 5}
    assert drain(rc) == [(1, b"b1")]
    assert rc.position(TP0) == 5
    other.close()


# ---------------------------------------------------------------- offsets in transactions


def test_send_offsets_visible_exactly_when_the_transaction_commits(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    src = TopicPartition("src", 0)
    c = log.consumer(group_id="g", enable_auto_commit=False, isolation_level="read_committed")
    c.assign([src])
    txp.begin_transaction()
    txp.send("t", b"out", partition=0)
    txp.send_offsets_to_transaction({src: OffsetAndMetadata(7, "meta")}, c.group_metadata())
    txp.flush()
    assert c.committed(src) is None
    assert log.describe_transaction("tx").groups == frozenset({"g"})
    txp.commit_transaction()
    assert c.committed(src) == 7


def test_send_offsets_never_visible_after_abort(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    src = TopicPartition("src", 0)
    c = log.consumer(group_id="g", enable_auto_commit=False)
    c.assign([src])
    c.commit({src: OffsetAndMetadata(3)})
    txp.begin_transaction()
    txp.send_offsets_to_transaction({src: OffsetAndMetadata(7)}, c.group_metadata())
    txp.abort_transaction()
    assert c.committed(src) == 3
    txp.begin_transaction()
    txp.commit_transaction()  # a later transaction does not commit them either
    assert c.committed(src) == 3


def test_send_offsets_with_a_group_id_string(log: streamlog.Log, txp: streamlog.Producer) -> None:
    src = TopicPartition("src", 0)
    txp.begin_transaction()
    txp.send_offsets_to_transaction({src: OffsetAndMetadata(4)}, "g2")
    txp.commit_transaction()
    c = log.consumer(group_id="g2")
    assert c.committed(src) == 4
    c.close()


def test_send_offsets_of_a_stale_generation_raises_commit_failed(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    log.create_topic("in", 2)
    c1 = log.consumer("in", group_id="g", enable_auto_commit=False, **FAST)
    assert wait_until(lambda: bool(c1.poll(timeout_ms=10) is not None and c1.assignment()))
    assert len(c1.assignment()) == 2
    old = c1.group_metadata()
    assert old.generation_id >= 0 and old.member_id
    c2 = log.consumer("in", group_id="g", enable_auto_commit=False, **FAST)

    def balanced() -> bool:
        c1.poll(timeout_ms=5)
        c2.poll(timeout_ms=5)
        return len(c1.assignment()) == 1 and len(c2.assignment()) == 1

    assert wait_until(balanced)
    assert c1.group_metadata().generation_id > old.generation_id
    mine = next(iter(c1.assignment()))
    txp.begin_transaction()
    with pytest.raises(CommitFailedError):
        txp.send_offsets_to_transaction({mine: OffsetAndMetadata(1)}, old)
    # the current generation's metadata is accepted, and the transaction still commits
    txp.send_offsets_to_transaction({mine: OffsetAndMetadata(1)}, c1.group_metadata())
    txp.commit_transaction()
    assert c1.committed(mine) == 1
    c1.close()
    c2.close()


def test_group_metadata_of_a_consumer_without_group_raises(log: streamlog.Log) -> None:
    c = log.consumer()
    with pytest.raises(IllegalStateError):
        c.group_metadata()
    c.close()


def _prepared_commit_of_offsets(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    """Leave transactional id "crashed" PrepareCommit with offsets of group g for src-0,
    as a producer dying between the decision and its completion would."""
    coord = coordinator(log)
    pid, epoch = coord.init_producer_id("crashed", 60_000)
    coord.add_offsets(
        "crashed", pid, epoch, "g", -1, "", {TopicPartition("src", 0): OffsetAndMetadata(offset)},
        60_000,
    )
    with monkeypatch.context() as m:
        m.setattr(coord, "_complete", lambda rec: None)
        coord.end_transaction("crashed", pid, epoch, True)
    assert log.describe_transaction("crashed").state == "PrepareCommit"


def test_read_committed_position_completes_a_prepared_offset_commit_first(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    with log.producer() as p:
        for i in range(8):
            p.send("src", b"%d" % i)
    _prepared_commit_of_offsets(log, monkeypatch, 5)
    src = TopicPartition("src", 0)
    c = log.consumer(group_id="g", isolation_level="read_committed", enable_auto_commit=False,
                     auto_offset_reset="earliest")
    c.assign([src])
    assert c.position(src) == 5
    assert log.describe_transaction("crashed").state == "CompleteCommit"
    assert [r.offset for rs in c.poll(timeout_ms=500).values() for r in rs] == [5, 6, 7]
    c.close()


def test_read_committed_committed_completes_a_prepared_offset_commit_first(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    _prepared_commit_of_offsets(log, monkeypatch, 5)
    c = log.consumer(group_id="g", isolation_level="read_committed")
    assert c.committed(TopicPartition("src", 0)) == 5
    c.close()


# ---------------------------------------------------------------- fencing


def test_a_second_init_fences_the_first_producer(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"zombie", partition=0)
    txp.flush()
    new = log.producer(transactional_id="tx")
    new.init_transactions()
    with pytest.raises(ProducerFencedError):
        txp.commit_transaction()
    new.close()


@pytest.mark.parametrize("call", ["begin", "abort", "commit", "send", "send_offsets", "init"])
def test_a_fenced_producer_only_closes(log: streamlog.Log, call: str) -> None:
    old = log.producer(transactional_id="tx")
    old.init_transactions()
    old.begin_transaction()
    old.send("t", b"zombie", partition=0).result(5)
    new = log.producer(transactional_id="tx")
    new.init_transactions()
    with pytest.raises(ProducerFencedError):
        old.commit_transaction()
    with pytest.raises(ProducerFencedError):
        if call == "begin":
            old.begin_transaction()
        elif call == "abort":
            old.abort_transaction()
        elif call == "commit":
            old.commit_transaction()
        elif call == "send":
            old.send("t", b"again", partition=1)
        elif call == "send_offsets":
            old.send_offsets_to_transaction({TP0: OffsetAndMetadata(1)}, "g")
        else:
            old.init_transactions()
    old.close()
    new.close()


def test_fencing_aborts_the_old_producers_open_transaction(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    rc = consumer(log, "read_committed")
    txp.begin_transaction()
    txp.send("t", b"zombie", partition=0)  # 0
    txp.flush()
    assert rc.end_offsets([TP0]) == {TP0: 0}
    new = log.producer(transactional_id="tx")
    new.init_transactions()  # abort marker at 1
    assert rc.end_offsets([TP0]) == {TP0: 2}
    assert log.describe_transaction("tx").state == "Empty"  # for the new instance
    new.begin_transaction()
    new.send("t", b"new", partition=0)  # 2
    new.commit_transaction()  # marker at 3
    assert drain(rc) == [(2, b"new")]
    new.close()


def test_a_fenced_producers_send_to_a_registered_partition_fails(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"zombie", partition=0).result(5)
    new = log.producer(transactional_id="tx")
    new.init_transactions()
    fut = txp.send("t", b"late", partition=0)  # partition already in the transaction
    with pytest.raises(ProducerFencedError):
        fut.result(5)
    with pytest.raises(ProducerFencedError):
        txp.commit_transaction()
    ru = consumer(log, "read_uncommitted")
    assert drain(ru) == [(0, b"zombie")]  # "late" was never written
    new.close()


def test_fencing_bumps_the_epoch(log: streamlog.Log, txp: streamlog.Producer) -> None:
    before = log.describe_transaction("tx")
    new = log.producer(transactional_id="tx")
    new.init_transactions()
    after = log.describe_transaction("tx")
    assert after.producer_id == before.producer_id
    assert after.producer_epoch == before.producer_epoch + 1
    new.close()


# ---------------------------------------------------------------- close, timeouts


def test_closing_mid_transaction_aborts_it(log: streamlog.Log) -> None:
    p = log.producer(transactional_id="tx")
    p.init_transactions()
    p.begin_transaction()
    p.send("t", b"a", partition=0)
    p.send("t", b"b", partition=0)
    p.close()  # flushes (0, 1), then an abort marker at 2
    assert log.describe_transaction("tx").state == "CompleteAbort"
    rc = consumer(log, "read_committed")
    assert rc.end_offsets([TP0]) == {TP0: 3}
    assert drain(rc) == []
    assert rc.position(TP0) == 3


def test_context_manager_exit_mid_transaction_aborts_it(log: streamlog.Log) -> None:
    with log.producer(transactional_id="tx") as p:
        p.init_transactions()
        p.begin_transaction()
        p.send("t", b"a", partition=0)
    rc = consumer(log, "read_committed")
    assert drain(rc) == []
    assert rc.end_offsets([TP0]) == {TP0: 2}


def _expired_transaction(log: streamlog.Log) -> streamlog.Producer:
    """An open transaction of "slow" (timeout 100 ms) with a record at t-0 offset 0,
    already past its timeout, and a plain record after it at 1."""
    p = log.producer(transactional_id="slow", transaction_timeout_ms=100)
    p.init_transactions()
    p.begin_transaction()
    p.send("t", b"slow", partition=0).result(5)
    with log.producer() as plain:
        plain.send("t", b"plain", partition=0).result(5)
    time.sleep(0.25)
    return p


def test_sweep_aborts_a_transaction_past_its_timeout_and_fences_it(log: streamlog.Log) -> None:
    p = _expired_transaction(log)
    assert coordinator(log).sweep() == 1
    assert log.describe_transaction("slow").state == "CompleteAbort"
    rc = consumer(log, "read_committed")
    assert drain(rc) == [(1, b"plain")]
    assert rc.position(TP0) == 3  # past the abort marker at 2
    with pytest.raises(ProducerFencedError):
        p.commit_transaction()
    p.close()


def test_sweep_leaves_a_transaction_within_its_timeout(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"a", partition=0).result(5)
    assert coordinator(log).sweep() == 0
    assert log.describe_transaction("tx").state == "Ongoing"
    txp.commit_transaction()


def test_opening_the_directory_aborts_an_expired_transaction(log: streamlog.Log) -> None:
    p = _expired_transaction(log)
    with streamlog.open(log.path):
        pass
    assert log.describe_transaction("slow").state == "CompleteAbort"
    with pytest.raises(ProducerFencedError):
        p.commit_transaction()
    p.close()


def test_a_held_back_read_committed_consumer_aborts_an_expired_transaction(
    log: streamlog.Log,
) -> None:
    p = _expired_transaction(log)
    rc = consumer(log, "read_committed")
    got: list[tuple[int, bytes | None]] = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        got = drain(rc, timeout=0.2)
    assert got == [(1, b"plain")]
    assert log.describe_transaction("slow").state == "CompleteAbort"
    with pytest.raises(ProducerFencedError):
        p.commit_transaction()
    p.close()


def test_a_held_back_consumer_leaves_a_live_transaction_alone(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"a", partition=0).result(5)
    rc = consumer(log, "read_committed")
    deadline = time.monotonic() + 1.3  # past _unstick's once-a-second check
    while time.monotonic() < deadline:
        assert rc.poll(timeout_ms=100) == {}
    assert log.describe_transaction("tx").state == "Ongoing"
    txp.commit_transaction()
    assert drain(rc) == [(0, b"a")]


# ---------------------------------------------------------------- failed sends


def test_a_record_too_large_makes_commit_raise_transaction_aborted(log: streamlog.Log) -> None:
    p = log.producer(transactional_id="tx", max_request_size=1000)
    p.init_transactions()
    p.begin_transaction()
    p.send("t", b"ok", partition=0).result(5)
    fut = p.send("t", b"x" * 5000, partition=0)
    with pytest.raises(RecordTooLargeError):
        fut.result(5)
    with pytest.raises(TransactionAbortedError):
        p.commit_transaction()
    p.close()


def test_a_send_to_an_unknown_topic_makes_commit_raise_transaction_aborted(
    log: streamlog.Log,
) -> None:
    p = log.producer(transactional_id="tx")
    p.init_transactions()
    p.begin_transaction()
    p.send("t", b"ok", partition=0).result(5)
    with pytest.raises(UnknownTopicError):
        p.send("nope", b"x").result(5)
    with pytest.raises(TransactionAbortedError):
        p.commit_transaction()
    p.close()


def test_a_failed_write_makes_commit_raise_and_abort_work(log: streamlog.Log) -> None:
    log.create_topic("gone", 1)
    p = log.producer(transactional_id="tx", linger_ms=60_000)
    p.init_transactions()
    p.begin_transaction()
    p.send("t", b"ok", partition=0)
    fut = p.send("gone", b"x")
    log.delete_topic("gone")  # the queued batch fails when the commit flushes it
    with pytest.raises(TransactionAbortedError):
        p.commit_transaction()
    with pytest.raises(UnknownTopicError):
        fut.result(5)
    with pytest.raises(TransactionAbortedError):
        p.send("t", b"more", partition=0)
    p.abort_transaction()
    assert log.describe_transaction("tx").state == "CompleteAbort"
    p.begin_transaction()
    p.send("t", b"next", partition=0)
    p.commit_transaction()
    rc = consumer(log, "read_committed")
    assert drain(rc) == [(2, b"next")]  # ok at 0 aborted (marker 1), commit marker at 3
    p.close()


# ---------------------------------------------------------------- idempotence


def test_idempotence_needs_acks_all(log: streamlog.Log) -> None:
    for acks in (0, 1):
        with pytest.raises(ConfigError):
            log.producer(enable_idempotence=True, acks=acks)
        with pytest.raises(ConfigError):
            log.producer(transactional_id="tx", acks=acks)
    with log.producer(enable_idempotence=True, acks="all") as p:
        p.send("t", b"v", partition=0).result(5)
    with log.producer(enable_idempotence=True) as p:  # acks defaults to 'all' then
        p.send("t", b"v", partition=0).result(5)


def test_idempotent_producers_get_unique_ids_across_handles_and_processes(
    log: streamlog.Log,
) -> None:
    with log.producer(enable_idempotence=True) as a, log.producer(enable_idempotence=True) as b:
        a.send("t", b"a", partition=0)
        b.send("t", b"b1", partition=0)
        b.send("t", b"b2", partition=0)
    with streamlog.open(log.path) as other, other.producer(enable_idempotence=True) as c:
        c.send("t", b"c", partition=0)
    with streamlog.Producer(log.path, enable_idempotence=True) as d:
        d.send("t", b"d", partition=0)
    code = (
        "import streamlog, sys\n"
        "with streamlog.Producer(sys.argv[1], enable_idempotence=True) as p:\n"
        "    p.send('t', b'e', partition=0).result(10)\n"
    )
    subprocess.run([sys.executable, "-c", code, log.path], check=True, timeout=60)
    producers = log.describe_producers("t", 0)
    assert len(producers) == 5
    assert len({s.producer_id for s in producers}) == 5
    assert all(s.producer_epoch == 0 for s in producers)
    assert sorted(s.last_sequence for s in producers) == [0, 0, 0, 0, 1]
    assert all(s.current_transaction_start_offset == -1 for s in producers)


def test_an_idempotent_producers_records_are_read_by_both_isolations(log: streamlog.Log) -> None:
    with log.producer(enable_idempotence=True) as p:
        for i in range(3):
            p.send("t", b"%d" % i, partition=0)
    for isolation in ("read_committed", "read_uncommitted"):
        c = consumer(log, isolation)
        assert drain(c) == [(0, b"0"), (1, b"1"), (2, b"2")]
        c.close()


def test_a_transactional_producer_keeps_its_id_across_inits(log: streamlog.Log) -> None:
    with log.producer(transactional_id="tx") as p:
        p.init_transactions()
        first = log.describe_transaction("tx").producer_id
    with log.producer(transactional_id="tx") as p, log.producer(enable_idempotence=True) as q:
        p.init_transactions()
        q.send("t", b"q", partition=0).result(5)
        assert log.describe_transaction("tx").producer_id == first
        assert [s.producer_id for s in log.describe_producers("t", 0)] != [first]


# ---------------------------------------------------------------- administration


def test_list_transactions_is_empty_at_first(log: streamlog.Log) -> None:
    assert log.list_transactions() == []


def test_list_and_describe_follow_a_transaction(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    (desc,) = log.list_transactions()
    assert desc.transactional_id == "tx"
    assert desc.state == "Empty"
    assert desc.producer_epoch == 0
    assert desc.partitions == frozenset()
    assert desc.start_ms == -1
    assert desc.timeout_ms == 60_000
    txp.begin_transaction()
    txp.send("t", b"a", partition=1).result(5)
    desc = log.describe_transaction("tx")
    assert desc.state == "Ongoing"
    assert desc.partitions == frozenset({TP1})
    assert desc.start_ms > 0
    txp.commit_transaction()
    desc = log.describe_transaction("tx")
    assert desc.state == "CompleteCommit"
    assert desc.partitions == frozenset()
    assert desc.start_ms == -1


def test_list_transactions_is_sorted(log: streamlog.Log) -> None:
    for tid in ("b", "a", "c"):
        with log.producer(transactional_id=tid) as p:
            p.init_transactions()
    assert [d.transactional_id for d in log.list_transactions()] == ["a", "b", "c"]


def test_describe_unknown_transactional_id_raises(log: streamlog.Log) -> None:
    with pytest.raises(IllegalStateError):
        log.describe_transaction("nobody")


def test_admin_abort_ends_the_transaction_and_fences_the_producer(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    txp.begin_transaction()
    txp.send("t", b"a", partition=0).result(5)
    assert log.abort_transaction("tx") is True
    desc = log.describe_transaction("tx")
    assert desc.state == "CompleteAbort"
    assert desc.producer_epoch == 1
    rc = consumer(log, "read_committed")
    assert drain(rc) == []
    assert rc.position(TP0) == 2
    with pytest.raises(ProducerFencedError):
        txp.commit_transaction()


def test_admin_abort_without_an_open_transaction_returns_false(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    assert log.abort_transaction("tx") is False
    assert log.describe_transaction("tx").state == "Empty"
    txp.begin_transaction()  # not fenced
    txp.send("t", b"a", partition=0)
    txp.commit_transaction()


def test_admin_abort_of_an_unknown_id_raises(log: streamlog.Log) -> None:
    with pytest.raises(IllegalStateError):
        log.abort_transaction("nobody")


def test_describe_producers_shows_the_open_transactions_first_offset(
    log: streamlog.Log, txp: streamlog.Producer
) -> None:
    with log.producer() as plain:
        plain.send("t", b"p", partition=0).result(5)
    txp.begin_transaction()
    txp.send("t", b"a", partition=0)
    txp.send("t", b"b", partition=0)
    txp.flush()
    (state,) = log.describe_producers("t", 0)
    assert state.producer_id == log.describe_transaction("tx").producer_id
    assert state.last_sequence == 1
    assert state.current_transaction_start_offset == 1
    txp.commit_transaction()
    (state,) = log.describe_producers("t", 0)
    assert state.current_transaction_start_offset == -1


def test_txn_record_round_trips_through_its_wire_form() -> None:
    rec = TxnRecord("x", 3, 2, "Ongoing", {TP0}, {}, 10, 100, 11)
    assert TxnRecord.from_wire(rec.to_wire(), "p") == rec
