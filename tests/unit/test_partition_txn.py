"""Idempotent and transactional appends through a real PartitionLog.

The rules of ``_producer_state`` as ``append``/``append_many`` apply them (a duplicate
writes nothing and returns the original offsets, a refused batch writes nothing),
markers, the LSO and the aborted transactions a read_committed fetch is given, and
the state rebuilt from the log: after a reopen, after the log start moved, and by a
second ``PartitionLog`` on the same directory (as another process would have).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlog._config import TopicConfig
from streamlog.errors import InvalidTxnStateError, OutOfOrderSequenceError, ProducerFencedError
from streamlog.storage import AppendResult, PartitionLog, prepare_batch
from streamlog.storage._codec import PreparedBatch
from streamlog.storage._partition import PartialAppendError
from streamlog.storage._producer_state import (
    ABORT,
    COMMIT,
    AbortedTxn,
    ProducerStateManager,
    parse_control_key,
)

TS = int(time.time() * 1000)  # (not older than retention.ms or segment.ms)
SMALL = {"segment.bytes": 4096}  # the minimum: a few 900-byte records a segment


def config(**kafka: object) -> TopicConfig:
    return TopicConfig.from_dict(kafka)


def batch(
    n: int = 1,
    pid: int = -1,
    epoch: int = -1,
    seq: int = -1,
    *,
    txn: bool = False,
    size: int = 10,
    tag: str = "v",
) -> PreparedBatch:
    values = [f"{tag}{seq}.{i}".encode().ljust(size, b".") for i in range(n)]
    return prepare_batch(
        values, None, TS, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
        transactional=txn,
    )


def res(base: int, last: int) -> AppendResult:
    return AppendResult(base, last, TS)


def offsets(log: PartitionLog) -> list[tuple[int, int, int, bool]]:
    """``(base, last, producer id, control)`` of every batch from the log start."""
    out: list[tuple[int, int, int, bool]] = []
    off = log.log_start_offset
    while got := log.read(off):
        out.extend((b.base_offset, b.last_offset, b.producer_id, b.is_control) for b in got)
        off = got[-1].last_offset + 1
    return out


def snapshot(state: ProducerStateManager) -> tuple[object, ...]:
    """Everything of a state, to compare two of them."""
    entries = {
        pid: (e.epoch, list(e.batches), e.txn_first_offset, e.last_timestamp)
        for pid, e in state.entries.items()
    }
    return entries, dict(state.ongoing), list(state.aborted), state.next_offset


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "t-0")


@pytest.fixture
def plog(path: str) -> Iterator[PartitionLog]:
    log = PartitionLog(path, config())
    yield log
    log.close()


# ---------------------------------------------------------------------- idempotence
def test_a_duplicate_returns_the_original_offsets_and_writes_nothing(plog: PartitionLog) -> None:
    assert plog.append(batch(1)) == res(0, 0)  # a plain producer before
    assert plog.append(batch(2, 5, 0, 0)) == res(1, 2)
    size = plog.size_bytes()
    assert plog.append(batch(2, 5, 0, 0)) == res(1, 2)
    assert plog.end_offset == 3
    assert plog.size_bytes() == size
    assert offsets(plog) == [(0, 0, -1, False), (1, 2, 5, False)]
    assert plog.append(batch(1, 5, 0, 2)) == res(3, 3)
    assert plog.end_offset == 4
    plog.producer_state()._check()


def test_duplicates_of_the_last_five_batches_but_not_the_sixth(plog: PartitionLog) -> None:
    for seq in range(6):
        assert plog.append(batch(1, 5, 0, seq)) == res(2 * seq, 2 * seq)
        plog.append(batch(1))  # an unrelated batch between
    end = plog.end_offset
    assert end == 12
    for seq in range(1, 6):
        assert plog.append(batch(1, 5, 0, seq)) == res(2 * seq, 2 * seq)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 6, got 0"):
        plog.append(batch(1, 5, 0, 0))
    assert plog.end_offset == end


def test_append_many_detects_a_duplicate_within_the_call(plog: PartitionLog) -> None:
    got = plog.append_many([batch(2, 5, 0, 0), batch(1), batch(2, 5, 0, 0), batch(1, 5, 0, 2)])
    assert got == [res(0, 1), res(2, 2), res(0, 1), res(3, 3)]
    assert plog.end_offset == 4
    assert offsets(plog) == [(0, 1, 5, False), (2, 2, -1, False), (3, 3, 5, False)]


@pytest.mark.parametrize(
    ("refused", "error"),
    [
        (batch(1, 5, 1, 4), OutOfOrderSequenceError),  # a gap
        (batch(1, 5, 1, 1), OutOfOrderSequenceError),  # behind, not a cached batch
        (batch(1, 5, 2, 3), OutOfOrderSequenceError),  # a new epoch not at 0
        (batch(1, 5, 0, 3), ProducerFencedError),  # an older epoch
        (batch(1, 5, 0, 0), ProducerFencedError),  # a "duplicate" of an older epoch
        (batch(1, 5, 1, 3, txn=False), InvalidTxnStateError),  # plain during its txn
    ],
)
def test_a_refused_batch_raises_and_writes_nothing(
    plog: PartitionLog, refused: PreparedBatch, error: type[Exception]
) -> None:
    plog.append(batch(1, 5, 0, 0))
    plog.append(batch(2, 5, 1, 0))
    plog.append(batch(1, 5, 1, 2, txn=True))  # epoch 1, seq 0..2; txn open at 3
    before = offsets(plog)
    size = plog.size_bytes()
    with pytest.raises(error):
        plog.append(refused)
    assert plog.end_offset == 4
    assert plog.size_bytes() == size
    assert offsets(plog) == before
    assert plog.append(batch(1, 5, 1, 3, txn=True)) == res(4, 4)  # the right one goes in


def test_append_many_refused_after_good_ones_names_them(plog: PartitionLog) -> None:
    plog.append(batch(1, 5, 0, 0))
    with pytest.raises(PartialAppendError) as caught:
        plog.append_many(
            [batch(1, 5, 0, 1), batch(1, 5, 0, 0), batch(1, 5, 0, 7), batch(1, 5, 0, 2)]
        )
    e = caught.value
    assert e.appended == [res(1, 1), res(0, 0)]  # the good one and the duplicate
    assert isinstance(e.error, OutOfOrderSequenceError)
    assert "expected sequence 2, got 7" in str(e.error)
    assert e.errno == errno.EIO
    assert plog.end_offset == 2  # neither the refused batch nor the one after it
    assert offsets(plog) == [(0, 0, 5, False), (1, 1, 5, False)]
    assert plog.append(batch(1, 5, 0, 2)) == res(2, 2)


def test_append_many_refused_first_raises_the_error_itself(plog: PartitionLog) -> None:
    plog.append(batch(1, 5, 3, 0))
    with pytest.raises(ProducerFencedError):
        plog.append_many([batch(1, 5, 2, 1), batch(1, 5, 3, 1)])
    assert plog.end_offset == 1


def test_an_unknown_producer_starts_anywhere_and_the_sequence_wraps(plog: PartitionLog) -> None:
    top = 2**31 - 1
    assert plog.append(batch(2, 9, 0, top - 1)) == res(0, 1)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 0, got 1"):
        plog.append(batch(1, 9, 0, 1))
    assert plog.append(batch(1, 9, 0, 0)) == res(2, 2)
    assert plog.append(batch(2, 9, 0, top - 1)) == res(0, 1)  # still a duplicate


# ---------------------------------------------------------------------- markers
def test_write_marker_with_nothing_open_writes_nothing(plog: PartitionLog) -> None:
    assert plog.write_marker(5, 0, COMMIT) is None  # never seen
    plog.append(batch(1, 5, 0, 0))
    assert plog.write_marker(5, 0, ABORT) is None  # no transaction
    assert plog.end_offset == 1
    plog.append(batch(1, 5, 0, 1, txn=True))
    assert plog.write_marker(5, 0, COMMIT) == 2
    assert plog.write_marker(5, 0, COMMIT) is None  # a coordinator repeating itself
    assert plog.write_marker(5, 0, ABORT) is None
    assert plog.end_offset == 3
    assert offsets(plog) == [(0, 0, 5, False), (1, 1, 5, False), (2, 2, 5, True)]
    assert plog.producer_state().aborted == []


def test_the_marker_is_a_control_batch_with_kafkas_key(plog: PartitionLog) -> None:
    plog.append(batch(1, 5, 0, 0, txn=True))
    assert plog.write_marker(5, 0, ABORT) == 1
    [marker] = plog.read(1)
    assert marker.is_control
    assert marker.producer_id == 5
    [record] = list(marker.records())
    assert record[0] == 1
    assert parse_control_key(record[2]) == ABORT


def test_a_fenced_marker_raises_and_writes_nothing(plog: PartitionLog) -> None:
    plog.append(batch(1, 5, 3, 0, txn=True))
    with pytest.raises(ProducerFencedError):
        plog.write_marker(5, 2, ABORT)
    assert plog.end_offset == 1
    assert plog.open_transactions() == [(5, 3, 0)]
    # a bumped epoch may end it, and fences the old one
    assert plog.write_marker(5, 4, ABORT) == 1
    with pytest.raises(ProducerFencedError):
        plog.append(batch(1, 5, 3, 1, txn=True))
    with pytest.raises(OutOfOrderSequenceError):  # the bumped epoch starts at 0
        plog.append(batch(1, 5, 4, 1, txn=True))
    assert plog.append(batch(1, 5, 4, 0, txn=True)) == res(2, 2)


def test_lso_and_transaction_bounds(plog: PartitionLog) -> None:
    assert plog.last_stable_offset() == 0
    assert plog.transaction_bounds(0) == (0, [])
    plog.append(batch(2, 1, 0, 0, txn=True))  # 0-1 A
    plog.append(batch(1))  # 2
    plog.append(batch(1, 2, 0, 0, txn=True))  # 3 B
    plog.append(batch(1, 1, 0, 2, txn=True))  # 4 A
    assert plog.last_stable_offset() == 0
    assert plog.open_transactions() == [(1, 0, 0), (2, 0, 3)]
    assert plog.transaction_bounds(0) == (0, [])
    assert plog.write_marker(1, 0, COMMIT) == 5
    assert plog.last_stable_offset() == 3
    assert plog.open_transactions() == [(2, 0, 3)]
    assert plog.write_marker(2, 0, ABORT) == 6
    b_aborted = AbortedTxn(2, 3, 6, 7)
    assert plog.last_stable_offset() == 7 == plog.end_offset
    assert plog.open_transactions() == []
    assert plog.transaction_bounds(0) == (7, [b_aborted])
    assert plog.transaction_bounds(6) == (7, [b_aborted])
    assert plog.transaction_bounds(7) == (7, [])
    plog.append(batch(1, 3, 0, 0, txn=True))  # 7 C
    assert plog.transaction_bounds(0) == (7, [b_aborted])
    plog.append(batch(1))  # 8
    assert plog.last_stable_offset() == 7
    assert plog.write_marker(3, 0, ABORT) == 9
    assert plog.transaction_bounds(0) == (10, [b_aborted, AbortedTxn(3, 7, 9, 10)])
    assert plog.transaction_bounds(7) == (10, [AbortedTxn(3, 7, 9, 10)])


def fill_spanning_abort(log: PartitionLog) -> int:
    """A transaction of producer 1 over several segments, interleaved with producer 2's
    plain idempotent batches, then aborted; returns the marker's offset."""
    for i in range(10):
        assert log.append(batch(1, 1, 0, i, txn=True, size=900)) == res(2 * i, 2 * i)
        assert log.append(batch(1, 2, 0, i, size=900)) == res(2 * i + 1, 2 * i + 1)
    marker = log.write_marker(1, 0, ABORT)
    assert marker == 20
    return marker


def test_an_aborted_transaction_spanning_several_segments(path: str) -> None:
    log = PartitionLog(path, config(**SMALL))
    try:
        assert fill_spanning_abort(log) == 20
        assert log.segment_count >= 3
        assert log.transaction_bounds(0) == (21, [AbortedTxn(1, 0, 20, 21)])
        bases = [s.base_offset for s in log.segments()]
        assert log.transaction_bounds(bases[-1]) == (21, [AbortedTxn(1, 0, 20, 21)])
        log.producer_state()._check()
    finally:
        log.close()
    log = PartitionLog(path, config(**SMALL))
    try:
        assert log.transaction_bounds(0) == (21, [AbortedTxn(1, 0, 20, 21)])
    finally:
        log.close()


# ---------------------------------------------------------------------- rebuilt from the log
def build_mixed(log: PartitionLog) -> None:
    """Open, committed and aborted transactions, idempotent and plain producers."""
    log.append(batch(2, 1, 0, 0, txn=True))  # 0-1
    log.append(batch(1))  # 2
    log.append(batch(3, 2, 4, 0))  # 3-5
    log.append(batch(1, 3, 0, 0, txn=True))  # 6
    assert log.write_marker(1, 0, COMMIT) == 7
    log.append(batch(1, 1, 0, 2, txn=True))  # 8: a second txn of producer 1
    log.append(batch(1, 2, 4, 3))  # 9
    assert log.write_marker(3, 1, ABORT) == 10  # bumped
    log.append(batch(1, 4, 0, 0, txn=True))  # 11: left open


def test_state_is_rebuilt_identically_after_reopen(path: str) -> None:
    log = PartitionLog(path, config())
    build_mixed(log)
    before = snapshot(log.producer_state())
    assert log.last_stable_offset() == 8
    bounds = log.transaction_bounds(0)
    assert bounds == (8, [AbortedTxn(3, 6, 10, 8)])
    log.close()

    log = PartitionLog(path, config())
    try:
        state = log.producer_state()
        state._check()
        assert snapshot(state) == before
        assert log.last_stable_offset() == 8
        assert log.transaction_bounds(0) == bounds
        assert log.open_transactions() == [(1, 0, 8), (4, 0, 11)]
        # the duplicate check still works, and the other rules
        assert log.append(batch(3, 2, 4, 0)) == res(3, 5)
        assert log.append(batch(1, 1, 0, 2, txn=True)) == res(8, 8)
        assert log.end_offset == 12
        with pytest.raises(OutOfOrderSequenceError):
            log.append(batch(1, 2, 4, 5))
        with pytest.raises(ProducerFencedError):
            log.append(batch(1, 3, 0, 1, txn=True))
        with pytest.raises(InvalidTxnStateError):
            log.append(batch(1, 4, 0, 1))
        assert log.end_offset == 12
        assert log.write_marker(4, 0, COMMIT) == 12
        assert log.write_marker(1, 0, COMMIT) == 13
        assert log.last_stable_offset() == 14
    finally:
        log.close()


def test_state_after_delete_records_within_a_segment(path: str) -> None:
    log = PartitionLog(path, config())
    try:
        build_mixed(log)
        assert log.delete_records(9) == 9
        # the LSO is never below the log start; the abort [6, 10] still owns 9
        assert log.last_stable_offset() == 9
        assert log.transaction_bounds(9) == (9, [AbortedTxn(3, 6, 10, 8)])
        before = snapshot(log.producer_state())
        assert log.delete_records(11) == 11
        assert log.transaction_bounds(11) == (11, [])  # the abort is wholly gone
        assert log.producer_state().aborted == []
        assert log.append(batch(1, 2, 4, 3)) == res(9, 9)  # still a duplicate
        after = snapshot(log.producer_state())
        assert after[0] == before[0]  # the producers are all still known
    finally:
        log.close()
    log = PartitionLog(path, config())
    try:
        assert snapshot(log.producer_state()) == after
        assert log.append(batch(1, 2, 4, 3)) == res(9, 9)
        assert log.last_stable_offset() == 11
        assert log.write_marker(4, 0, COMMIT) == 12
        assert log.last_stable_offset() == 11  # producer 1's txn from 8, below the start
        assert log.write_marker(1, 0, COMMIT) == 13
        assert log.last_stable_offset() == 14
    finally:
        log.close()


def test_state_after_whole_segments_are_deleted(path: str) -> None:
    log = PartitionLog(path, config(**SMALL))
    try:
        fill_spanning_abort(log)
        bases = [s.base_offset for s in log.segments()]
        start = bases[1]
        assert log.delete_records(start) == start
        assert log.segment_count == len(bases) - 1
        live = log.transaction_bounds(start)
        assert live == (21, [AbortedTxn(1, 0, 20, 21)])
        # producer 2's last five batches are in the segments kept: still duplicates
        assert log.append(batch(1, 2, 0, 9, size=900)) == res(19, 19)
        assert log.end_offset == 21
    finally:
        log.close()
    log = PartitionLog(path, config(**SMALL))
    try:
        lso, aborted = log.transaction_bounds(start)
        assert lso == 21
        # rebuilt from the segments kept: the transaction's batches from there on are
        # still known to be aborted (its first offset is the first one kept)
        first_kept = start if start % 2 == 0 else start + 1
        assert aborted == [AbortedTxn(1, first_kept, 20, 21)]
        assert log.append(batch(1, 2, 0, 9, size=900)) == res(19, 19)
        assert log.end_offset == 21
    finally:
        log.close()


def test_retention_keeps_the_state_of_what_is_kept(path: str) -> None:
    conf = config(**SMALL, **{"retention.bytes": 4096})
    log = PartitionLog(path, conf)
    try:
        for seq in range(12):
            log.append(batch(1, 6, 0, seq, size=900))
        assert log.enforce_retention() > 0
        start = log.log_start_offset
        assert start > 0
        assert log.last_stable_offset() == 12
        assert log.append(batch(1, 6, 0, 11, size=900)) == res(11, 11)
        assert log.append(batch(1, 6, 0, 12, size=900)) == res(12, 12)
        before = snapshot(log.producer_state())
    finally:
        log.close()
    log = PartitionLog(path, conf)
    try:
        state = snapshot(log.producer_state())
        # the replay starts at the first segment kept: the same cached batches
        assert state[0] == before[0]
        assert log.append(batch(1, 6, 0, 12, size=900)) == res(12, 12)
        with pytest.raises(OutOfOrderSequenceError):
            log.append(batch(1, 6, 0, 14, size=900))
    finally:
        log.close()


@pytest.mark.xfail(
    strict=True,
    reason="an open transaction whose first batch retention deleted is rebuilt from its "
    "first batch kept: a reopened log's LSO is above the live one's",
)
def test_lso_of_an_open_transaction_partly_deleted_survives_reopen(path: str) -> None:
    log = PartitionLog(path, config(**SMALL))
    try:
        log.append(batch(1, 1, 0, 0, txn=True, size=900))  # 0: opens
        for i in range(6):
            log.append(batch(1, 2, 0, i, size=900))  # 1-6, plain
        log.append(batch(1, 1, 0, 1, txn=True, size=900))  # 7
        bases = [s.base_offset for s in log.segments()]
        assert 0 < bases[1] < 7
        log.delete_records(bases[1])
        live = log.last_stable_offset()
        assert live == bases[1]  # max(first offset 0, log start)
    finally:
        log.close()
    log = PartitionLog(path, config(**SMALL))
    try:
        assert log.last_stable_offset() == live
    finally:
        log.close()


# ---------------------------------------------------------------------- two processes
def test_two_logs_on_one_directory_share_the_state(path: str) -> None:
    a = PartitionLog(path, config())
    b = PartitionLog(path, config())
    try:
        assert a.append(batch(2, 5, 0, 0, txn=True)) == res(0, 1)
        assert b.last_stable_offset() == 0
        assert b.open_transactions() == [(5, 0, 0)]
        assert b.producer_state().entries[5].last_seq == 1
        # a retry through the other one is a duplicate
        assert b.append(batch(2, 5, 0, 0, txn=True)) == res(0, 1)
        assert b.end_offset == 2
        assert b.append(batch(1, 5, 0, 2, txn=True)) == res(2, 2)
        # ... and a sees what b appended
        assert a.append(batch(1, 5, 0, 2, txn=True)) == res(2, 2)  # a duplicate for a too
        with pytest.raises(OutOfOrderSequenceError, match="expected sequence 3, got 4"):
            a.append(batch(1, 5, 0, 4, txn=True))
        assert a.end_offset == 3
        with pytest.raises(InvalidTxnStateError):
            a.append(batch(1, 5, 0, 3))
        assert a.write_marker(5, 0, ABORT) == 3
        assert b.write_marker(5, 0, ABORT) is None  # already ended, through a
        assert b.end_offset == 4
        assert b.transaction_bounds(0) == (4, [AbortedTxn(5, 0, 3, 4)])
        assert b.last_stable_offset() == 4
        # a new epoch through b fences the old one in a
        assert b.append(batch(1, 5, 1, 0)) == res(4, 4)
        with pytest.raises(ProducerFencedError):
            a.append(batch(1, 5, 0, 3))
        assert a.end_offset == 5
        assert snapshot(a.producer_state()) == snapshot(b.producer_state())
    finally:
        a.close()
        b.close()
