"""ProducerStateManager: the pure state machine of a partition's producers (no I/O).

The rules of ``_producer_state``'s docstring, one test each (Kafka's
``ProducerStateManagerTest``: duplicates, sequence wrap, epoch fencing, markers,
the LSO), then a property test of random interleavings against a small model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlog.errors import InvalidTxnStateError, OutOfOrderSequenceError, ProducerFencedError
from streamlog.storage._producer_state import (
    ABORT,
    COMMIT,
    MAX_SEQUENCE,
    AbortedTxn,
    ProducerStateManager,
)

PID = 7


def send(
    m: ProducerStateManager,
    pid: int,
    epoch: int,
    seq: int,
    n: int = 1,
    *,
    txn: bool = False,
    ts: int = 0,
) -> tuple[int, int]:
    """Check and apply a batch of ``n`` records at the end of the state, as a partition
    does; returns its ``(base, last)`` offsets (the original's for a duplicate)."""
    dup = m.check_append(pid, epoch, seq, n, txn)
    if dup is not None:
        return dup
    base = m.next_offset
    m.apply_batch(pid, epoch, seq, base, base + n - 1, ts, txn)
    m._check()
    return base, base + n - 1


def mark(
    m: ProducerStateManager, pid: int, epoch: int, kind: int, ts: int = 0
) -> AbortedTxn | None:
    """Apply a marker at the end of the state (without ``check_marker``)."""
    txn = m.apply_marker(pid, epoch, kind, m.next_offset, ts)
    m._check()
    return txn


def other(m: ProducerStateManager, n: int = 1) -> None:
    """A batch of a non-idempotent producer: takes offsets, no state."""
    m.apply_batch(-1, -1, -1, m.next_offset, m.next_offset + n - 1, 0, False)


# ---------------------------------------------------------------------- rule 1
def test_older_epoch_is_fenced() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0)
    send(m, PID, 1, 0)
    with pytest.raises(ProducerFencedError):
        m.check_append(PID, 0, 1, 1, False)
    # even what would have been a duplicate of the old epoch is fenced
    with pytest.raises(ProducerFencedError):
        m.check_append(PID, 0, 0, 1, False)
    assert m.entries[PID].epoch == 1
    assert m.next_offset == 2


def test_marker_of_an_older_epoch_is_fenced() -> None:
    m = ProducerStateManager()
    send(m, PID, 3, 0, txn=True)
    with pytest.raises(ProducerFencedError):
        m.check_marker(PID, 2)
    assert m.check_marker(PID, 3) is True
    assert m.check_marker(PID, 4) is True  # a bumped epoch may end it


# ---------------------------------------------------------------------- rule 2
def test_duplicate_of_any_of_the_last_five_returns_the_original_offsets() -> None:
    m = ProducerStateManager()
    originals = []
    for i in range(5):
        other(m, 3)  # offsets of other producers in between
        originals.append(send(m, PID, 0, 2 * i, 2))
    assert originals == [(3, 4), (8, 9), (13, 14), (18, 19), (23, 24)]
    end = m.next_offset
    for i in range(5):
        assert m.check_append(PID, 0, 2 * i, 2, False) == originals[i]
    assert m.next_offset == end
    assert list(m.entries[PID].batches) == [
        (0, 1, 4, 1), (2, 3, 9, 1), (4, 5, 14, 1), (6, 7, 19, 1), (8, 9, 24, 1)
    ]


def test_a_duplicate_must_match_the_whole_sequence_range() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, 3)
    # the same first sequence with another count is not the same batch
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 3, got 0"):
        m.check_append(PID, 0, 0, 2, False)
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 0, 1, 2, False)
    # the same range under a newer epoch is not a duplicate but a new epoch at 0
    assert m.check_append(PID, 1, 0, 3, False) is None


def test_the_sixth_oldest_batch_is_no_longer_a_duplicate() -> None:
    m = ProducerStateManager()
    for seq in range(6):
        assert send(m, PID, 0, seq) == (seq, seq)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 6, got 0"):
        m.check_append(PID, 0, 0, 1, False)
    for seq in range(1, 6):
        assert m.check_append(PID, 0, seq, 1, False) == (seq, seq)
    assert [b[0] for b in m.entries[PID].batches] == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------------- rule 3
def test_a_new_epoch_must_start_at_sequence_zero() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, 4)
    with pytest.raises(OutOfOrderSequenceError, match="must start at sequence 0, not 4"):
        m.check_append(PID, 1, 4, 1, False)
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 1, 1, 1, False)
    assert send(m, PID, 1, 0, 2) == (4, 5)
    entry = m.entries[PID]
    assert entry.epoch == 1
    assert list(entry.batches) == [(0, 1, 5, 1)]  # the old epoch's batches are gone
    with pytest.raises(ProducerFencedError):
        m.check_append(PID, 0, 4, 1, False)


# ---------------------------------------------------------------------- rule 4
def test_the_same_epoch_must_continue_at_last_seq_plus_one() -> None:
    m = ProducerStateManager()
    assert send(m, PID, 2, 10, 3) == (0, 2)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 13, got 14"):
        m.check_append(PID, 2, 14, 1, False)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 13, got 12"):
        m.check_append(PID, 2, 12, 1, False)
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 2, 0, 1, False)
    assert send(m, PID, 2, 13, 1) == (3, 3)
    assert m.entries[PID].last_seq == 13


def test_sequence_wraps_from_max_to_zero() -> None:
    m = ProducerStateManager()
    assert send(m, PID, 0, MAX_SEQUENCE - 1, 2) == (0, 1)
    assert m.entries[PID].last_seq == MAX_SEQUENCE
    assert send(m, PID, 0, 0, 1) == (2, 2)
    assert send(m, PID, 0, 1, 1) == (3, 3)
    # a batch that wraps inside itself: MAX-1, MAX, 0, 1
    m2 = ProducerStateManager()
    send(m2, PID, 0, MAX_SEQUENCE - 5, 4)  # up to MAX - 2
    assert send(m2, PID, 0, MAX_SEQUENCE - 1, 4) == (4, 7)
    assert m2.entries[PID].batches[-1] == (MAX_SEQUENCE - 1, 1, 7, 3)
    assert m2.check_append(PID, 0, MAX_SEQUENCE - 1, 4, False) == (4, 7)  # its duplicate
    assert send(m2, PID, 0, 2, 1) == (8, 8)


def test_a_wrong_wrap_is_refused() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, MAX_SEQUENCE, 1)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 0, got 1"):
        m.check_append(PID, 0, 1, 1, False)
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 0, MAX_SEQUENCE + 1, 1, False)
    # and no wrap to 0 from anywhere but MAX
    m2 = ProducerStateManager()
    send(m2, PID, 0, 16, 1)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 17, got 0"):
        m2.check_append(PID, 0, 0, 1, False)


# ---------------------------------------------------------------------- rule 5
def test_an_unknown_producer_may_start_at_any_sequence() -> None:
    m = ProducerStateManager(next_offset=100)
    assert m.check_append(PID, 4, 1234, 3, False) is None
    assert send(m, PID, 4, 1234, 3) == (100, 102)
    assert m.entries[PID].epoch == 4
    assert m.entries[PID].last_seq == 1236
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 4, 0, 1, False)
    assert send(m, PID, 4, 1237) == (103, 103)


# ---------------------------------------------------------------------- rule 6
def test_non_transactional_write_during_an_open_transaction_is_refused() -> None:
    m = ProducerStateManager()
    assert send(m, PID, 0, 0, 2, txn=True) == (0, 1)
    with pytest.raises(InvalidTxnStateError, match="from offset 0"):
        m.check_append(PID, 0, 2, 1, False)
    # a wrong sequence is found first (Kafka's order)
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 0, 5, 1, False)
    assert send(m, PID, 0, 2, 1, txn=True) == (2, 2)
    assert m.entries[PID].txn_first_offset == 0  # the first batch opened it
    assert mark(m, PID, 0, COMMIT) is None
    assert send(m, PID, 0, 3, 1) == (4, 4)  # allowed once it is over


# ---------------------------------------------------------------------- markers
def test_commit_ends_the_transaction_and_records_nothing() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, 2, txn=True)
    assert m.open_transaction(PID) == (0, 0)
    assert m.last_stable_offset() == 0
    assert m.check_marker(PID, 0) is True
    assert mark(m, PID, 0, COMMIT) is None
    assert m.open_transaction(PID) is None
    assert m.entries[PID].txn_first_offset == -1
    assert dict(m.ongoing) == {}
    assert m.aborted == []
    assert m.next_offset == 3
    assert m.last_stable_offset() == 3
    assert m.check_marker(PID, 0) is False


def test_abort_records_the_aborted_transaction_with_the_lso() -> None:
    m = ProducerStateManager()
    send(m, 1, 0, 0, txn=True)  # 0
    send(m, 2, 0, 0, txn=True)  # 1
    send(m, 1, 0, 1, txn=True)  # 2
    assert mark(m, 1, 0, ABORT) == AbortedTxn(1, 0, 3, 1)  # LSO: producer 2's txn
    assert mark(m, 2, 0, ABORT) == AbortedTxn(2, 1, 4, 5)  # LSO: the end
    assert m.aborted == [AbortedTxn(1, 0, 3, 1), AbortedTxn(2, 1, 4, 5)]
    assert m.last_stable_offset() == 5


def test_marker_with_nothing_open_returns_none() -> None:
    m = ProducerStateManager()
    assert m.check_marker(PID, 0) is False  # unknown producer
    send(m, PID, 0, 0)  # not transactional
    assert m.check_marker(PID, 0) is False
    assert mark(m, PID, 0, ABORT) is None
    assert mark(m, 99, 0, ABORT) is None
    assert m.aborted == []
    assert dict(m.ongoing) == {}
    assert m.next_offset == 3  # the markers took their offsets
    send(m, PID, 0, 1, txn=True)
    mark(m, PID, 0, COMMIT)
    assert mark(m, PID, 0, COMMIT) is None  # a second marker finds nothing open
    assert m.aborted == []


def test_marker_bumps_the_epoch_and_clears_the_cached_batches() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, 2, txn=True)
    send(m, PID, 0, 2, 1, txn=True)
    assert mark(m, PID, 1, ABORT) == AbortedTxn(PID, 0, 3, 4)
    entry = m.entries[PID]
    assert entry.epoch == 1
    assert list(entry.batches) == []
    # the old epoch is fenced, even for what was a duplicate
    with pytest.raises(ProducerFencedError):
        m.check_append(PID, 0, 0, 2, True)
    with pytest.raises(ProducerFencedError):
        m.check_append(PID, 0, 3, 1, True)
    # the bumped epoch starts at sequence 0 (Kafka: inSequence(NO_SEQUENCE, seq))
    with pytest.raises(OutOfOrderSequenceError):
        m.check_append(PID, 1, 3, 1, True)
    assert send(m, PID, 1, 0, 1, txn=True) == (4, 4)
    assert m.open_transaction(PID) == (1, 4)


def test_a_later_marker_of_the_same_epoch_keeps_the_cached_batches() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, 2, txn=True)
    mark(m, PID, 0, COMMIT)
    assert list(m.entries[PID].batches) == [(0, 1, 1, 1)]
    assert m.check_append(PID, 0, 0, 2, True) == (0, 1)  # still a duplicate
    assert send(m, PID, 0, 2, txn=True) == (3, 3)  # sequences go on across txns


# ---------------------------------------------------------------------- LSO
def test_lso_with_several_interleaved_open_transactions() -> None:
    m = ProducerStateManager()
    assert m.last_stable_offset() == 0
    assert m.first_unstable_offset() is None
    send(m, 1, 0, 0, txn=True)  # 0: A opens
    send(m, 2, 0, 0)  # 1: B, not transactional
    send(m, 2, 0, 1, txn=True)  # 2: B opens
    send(m, 3, 0, 0, 2, txn=True)  # 3-4: C opens
    send(m, 1, 0, 1, txn=True)  # 5: A goes on
    assert m.last_stable_offset() == 0
    assert dict(m.ongoing) == {0: 1, 2: 2, 3: 3}
    assert mark(m, 2, 0, COMMIT) is None  # 6: B commits: the earliest is still A
    assert m.last_stable_offset() == 0
    assert mark(m, 1, 0, COMMIT) is None  # 7: A commits
    assert m.last_stable_offset() == 3
    assert m.first_unstable_offset() == 3
    send(m, 2, 0, 2, txn=True)  # 8: B opens again, after C
    assert mark(m, 3, 0, ABORT) == AbortedTxn(3, 3, 9, 8)  # 9
    assert m.last_stable_offset() == 8
    assert mark(m, 2, 0, ABORT) == AbortedTxn(2, 8, 10, 11)  # 10
    assert m.last_stable_offset() == 11
    assert m.first_unstable_offset() is None


def build_aborted() -> ProducerStateManager:
    """Aborted txns A [0, 4], B [10, 12], C [5, 20], in marker order A, B, C."""
    m = ProducerStateManager()
    send(m, 1, 0, 0, 4, txn=True)  # 0-3 A
    assert mark(m, 1, 0, ABORT) == AbortedTxn(1, 0, 4, 5)
    send(m, 3, 0, 0, 5, txn=True)  # 5-9 C
    send(m, 2, 0, 0, 2, txn=True)  # 10-11 B
    assert mark(m, 2, 0, ABORT) == AbortedTxn(2, 10, 12, 5)
    send(m, 3, 0, 5, 7, txn=True)  # 13-19 C
    assert mark(m, 3, 0, ABORT) == AbortedTxn(3, 5, 20, 21)
    return m


A, B, C = AbortedTxn(1, 0, 4, 5), AbortedTxn(2, 10, 12, 5), AbortedTxn(3, 5, 20, 21)


@pytest.mark.parametrize(
    ("start", "upper", "expected"),
    [
        (0, 100, [A, B, C]),
        (0, 1, [A]),
        (0, 0, []),
        (4, 5, [A]),  # A's marker is at 4
        (5, 10, [C]),  # B starts at 10: not below the upper bound
        (5, 11, [B, C]),
        (13, 20, [C]),
        (12, 13, [B, C]),
        (21, 30, []),
        (20, 21, [C]),
    ],
)
def test_aborted_between(start: int, upper: int, expected: list[AbortedTxn]) -> None:
    assert build_aborted().aborted_between(start, upper) == expected


def test_forget_below_drops_only_transactions_wholly_below_the_start() -> None:
    m = build_aborted()
    m.forget_below(0)
    assert m.aborted == [A, B, C]
    m.forget_below(4)
    assert m.aborted == [A, B, C]  # A's marker is at 4
    m.forget_below(5)
    assert m.aborted == [B, C]
    m.forget_below(13)
    assert m.aborted == [C]
    m.forget_below(21)
    assert m.aborted == []
    m._check()


def test_expire_forgets_idle_producers_but_not_open_transactions() -> None:
    m = ProducerStateManager()
    send(m, 1, 0, 0, ts=1000)
    send(m, 2, 0, 0, txn=True, ts=1000)
    send(m, 3, 0, 0, ts=5000)
    send(m, 4, 0, 0, ts=-1)  # no timestamp: never idle
    assert m.expire(now_ms=2000, expiration_ms=1000) == []  # not past it yet
    assert m.expire(now_ms=2001, expiration_ms=1000) == [1]
    assert sorted(m.entries) == [2, 3, 4]
    # forgotten: any sequence and epoch are accepted again
    assert m.check_append(1, 0, 50, 1, False) is None
    assert m.expire(now_ms=10_000, expiration_ms=1000) == [3]
    assert sorted(m.entries) == [2, 4]
    assert m.open_transaction(2) == (0, 1)
    mark(m, 2, 0, COMMIT, ts=1000)
    assert m.expire(now_ms=10_000, expiration_ms=1000) == [2]
    assert sorted(m.entries) == [4]
    m._check()


def test_the_last_timestamp_is_the_latest_seen() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, ts=5000)
    send(m, PID, 0, 1, ts=3000)  # an older record timestamp does not go back
    assert m.entries[PID].last_timestamp == 5000
    assert m.expire(now_ms=5500, expiration_ms=1000) == []


# ---------------------------------------------------------------------- property
@dataclass
class Producer:
    """The model of one producer id, as its client and the partition see it."""

    transactional: bool
    epoch: int = 0
    next_seq: int = 0
    known: bool = False  # has the partition state for it (not yet seen, or expired)
    sent: list[tuple[int, int, int, int]] = field(default_factory=list)  # seq, n, base, last
    txn_first: int = -1
    last_ts: int = -1
    reset: bool = False  # a marker bumped the epoch: the next batch starts at 0

    def has_sequence(self) -> bool:
        """Does the partition know where this producer's sequence must go on?"""
        return self.known and (bool(self.sent) or self.reset)


PIDS = (0, 1, 2, 3)  # 0 and 1 transactional, 2 and 3 idempotent only

ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["send", "send", "send", "resend", "gap", "newgap", "old", "plain", "commit",
             "abort", "bump", "epoch", "expire"]
        ),
        st.sampled_from(PIDS),
        st.integers(0, 10),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ops)
def test_random_interleavings_match_a_model(steps: list[tuple[str, int, int]]) -> None:
    m = ProducerStateManager()
    model = {pid: Producer(transactional=pid < 2) for pid in PIDS}
    aborted: list[AbortedTxn] = []
    clock = 0

    def open_txns() -> dict[int, int]:
        return {p.txn_first: pid for pid, p in model.items() if p.txn_first >= 0}

    def lso() -> int:
        firsts = open_txns()
        return min(firsts) if firsts else m.next_offset

    def append(pid: int, p: Producer, n: int, txn: bool) -> None:
        base = m.next_offset
        assert m.check_append(pid, p.epoch, p.next_seq, n, txn) is None
        m.apply_batch(pid, p.epoch, p.next_seq, base, base + n - 1, clock, txn)
        p.sent = [*p.sent, (p.next_seq, n, base, base + n - 1)][-5:]
        p.next_seq += n
        p.known = True
        p.reset = False
        p.last_ts = clock
        if txn and p.txn_first < 0:
            p.txn_first = base

    def marker(pid: int, p: Producer, epoch: int, kind: int) -> None:
        offset = m.next_offset
        is_open = p.txn_first >= 0
        assert m.check_marker(pid, epoch) is is_open
        if not is_open:
            return  # (a partition writes no marker then)
        first, p.txn_first = p.txn_first, -1
        got = m.apply_marker(pid, epoch, kind, offset, clock)
        if kind == ABORT:
            still_open = open_txns()
            expected = AbortedTxn(pid, first, offset, min(still_open) if still_open else offset + 1)
            assert got == expected
            aborted.append(expected)
        else:
            assert got is None
        p.last_ts = clock
        if epoch > p.epoch:
            p.epoch, p.next_seq, p.sent, p.reset = epoch, 0, [], True

    for op, pid, k in steps:
        clock += 1
        p = model[pid]
        n = 1 + k % 3
        if op == "send":
            append(pid, p, n, p.transactional)
        elif op == "plain":  # a non-transactional batch
            if p.txn_first >= 0:
                with pytest.raises(InvalidTxnStateError):
                    m.check_append(pid, p.epoch, p.next_seq, n, False)
            else:
                append(pid, p, n, False)
        elif op == "resend" and p.sent and p.known:
            seq, cnt, base, last = p.sent[k % len(p.sent)]
            end = m.next_offset
            assert m.check_append(pid, p.epoch, seq, cnt, p.transactional) == (base, last)
            assert m.next_offset == end
        elif op == "gap" and p.has_sequence():
            with pytest.raises(OutOfOrderSequenceError):
                m.check_append(pid, p.epoch, p.next_seq + 1 + k, 1, p.transactional)
        elif op == "newgap" and p.has_sequence():  # a new epoch not starting at 0
            with pytest.raises(OutOfOrderSequenceError):
                m.check_append(pid, p.epoch + 1, 1 + k, 1, p.transactional)
        elif op == "old" and p.epoch > 0 and p.known:
            with pytest.raises(ProducerFencedError):
                m.check_append(pid, p.epoch - 1, 0, 1, p.transactional)
        elif op in ("commit", "abort"):
            marker(pid, p, p.epoch, COMMIT if op == "commit" else ABORT)
        elif op == "bump":  # the coordinator aborts with a bumped epoch
            marker(pid, p, p.epoch + 1, ABORT)
        elif op == "epoch" and p.txn_first < 0:  # a new instance: next epoch, from 0
            p.epoch, p.next_seq, p.sent = p.epoch + 1, 0, []
            append(pid, p, n, p.transactional)
        elif op == "expire":
            gone = m.expire(clock, k)
            expected = sorted(
                q for q, e in model.items()
                if e.known and e.txn_first < 0 and e.last_ts >= 0 and clock - e.last_ts > k
            )
            assert sorted(gone) == expected
            for q in gone:
                model[q].known = False
                model[q].sent = []
                model[q].reset = False
        m._check()
        assert dict(m.ongoing) == open_txns()
        assert m.last_stable_offset() == lso()
        assert m.aborted == aborted
        for q, e in model.items():
            if e.known:
                assert m.entries[q].epoch == e.epoch
                assert m.open_transaction(q) == ((e.epoch, e.txn_first) if e.txn_first >= 0
                                                 else None)
            else:
                assert q not in m.entries


# ---------------------------------------------------------------------- orphans


def test_a_newer_epoch_writing_aborts_the_older_epochs_open_transaction() -> None:
    """A transaction whose marker never came (the partition's note lost to a power
    cut) ends when a newer epoch of the producer writes: aborted just before it."""
    m = ProducerStateManager()
    send(m, PID, 0, 0, 2, txn=True)  # offsets 0-1, never marked
    other(m)  # offset 2
    assert m.last_stable_offset() == 0
    assert send(m, PID, 1, 0, 1, txn=True) == (3, 3)  # the new epoch's transaction
    assert m.aborted == [AbortedTxn(PID, 0, 2, 3)]
    assert m.open_transaction(PID) == (1, 3)
    assert m.last_stable_offset() == 3


def test_a_newer_epoch_may_write_plainly_after_an_orphaned_transaction() -> None:
    m = ProducerStateManager()
    send(m, PID, 0, 0, 1, txn=True)
    with pytest.raises(InvalidTxnStateError):
        send(m, PID, 0, 1, 1)
    assert send(m, PID, 1, 0, 1) == (1, 1)
    assert m.aborted == [AbortedTxn(PID, 0, 0, 1)]
    assert m.last_stable_offset() == 2
