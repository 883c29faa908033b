"""Per-partition producer state: idempotence, open transactions, aborted transactions.

The state of one partition is a pure function of its log: it is rebuilt by
replaying frame headers (and the one record of each control batch), never
stored as the truth. ``ProducerStateManager`` is that replay as a state
machine with no I/O, tested on its own; ``PartitionLog.producer_state`` feeds
it the frames of the log (see there for when and under which lock).

Per producer id (Kafka's ``ProducerStateEntry``): the epoch, the last five
batches ``(first_seq, last_seq, last_offset, offset_delta)`` for the duplicate
check, and the first offset of the producer's open transaction, if any.

The rules for an idempotent batch, in Kafka's order (``check_append``):

1. an epoch older than the producer's -> ``ProducerFencedError``;
2. the same epoch and sequence range as one of the five cached batches ->
   a duplicate: the original offsets are returned and nothing is written;
3. a newer epoch must start at sequence 0, else ``OutOfOrderSequenceError``;
4. the same epoch must continue at ``last_seq + 1`` (wrapping from
   2**31 - 1 to 0), else ``OutOfOrderSequenceError``;
5. a producer id with no state (never seen, or expired) may start anywhere;
6. a non-transactional batch while the producer's transaction is open ->
   ``InvalidTxnStateError``.

A control batch (a COMMIT or ABORT marker) ends the producer's open
transaction; an ABORT records an ``AbortedTxn`` so that read_committed
readers can skip the transaction's batches without rescanning the log. The
last stable offset (LSO) is the first offset of the earliest open
transaction, or the end of the log.

Not thread-safe: the owner serialises access.
"""

from __future__ import annotations

import errno
import struct
import threading
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from sortedcontainers import SortedDict

from ..errors import (
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    ProducerFencedError,
    StorageIOError,
)
from ._codec import ATTR_CONTROL as _ATTR_CONTROL
from ._codec import ATTR_SEAL as _ATTR_SEAL
from ._codec import ATTR_TRANSACTIONAL as _ATTR_TRANSACTIONAL
from ._codec import RecordBatch
from ._codec import aligned as _aligned

if TYPE_CHECKING:
    from ._partition import PartitionLog

__all__ = [
    "ABORT",
    "COMMIT",
    "MAX_SEQUENCE",
    "AbortedTxn",
    "ProducerEntry",
    "ProducerStateManager",
    "ProducerStateTracker",
    "control_key",
    "control_value",
    "parse_control_key",
]

NUM_BATCHES_TO_RETAIN = 5
# Kafka's producer.id.expiration.ms and producer.id.expiration.check.interval.ms
PRODUCER_ID_EXPIRATION_MS = 86_400_000
PRODUCER_ID_EXPIRATION_CHECK_MS = 600_000
MAX_SEQUENCE = 2**31 - 1

ABORT = 0
COMMIT = 1
_CONTROL_KEY = struct.Struct(">hh")  # version 0, type (Kafka's ControlRecordType)
_CONTROL_VALUE = struct.Struct(">hi")  # version 0, coordinator epoch


def control_key(kind: int) -> bytes:
    """The key of a transaction marker's one record, as Kafka writes it."""
    return _CONTROL_KEY.pack(0, kind)


def control_value(coordinator_epoch: int = 0) -> bytes:
    return _CONTROL_VALUE.pack(0, coordinator_epoch)


def parse_control_key(key: bytes | None) -> int | None:
    """COMMIT or ABORT from a control record's key; None if it is neither."""
    if key is None or len(key) < _CONTROL_KEY.size:
        return None
    _version, kind = _CONTROL_KEY.unpack_from(key)
    return kind if kind in (ABORT, COMMIT) else None


def next_sequence(seq: int, n: int = 1) -> int:
    """``seq + n`` with Kafka's wrap from 2**31 - 1 to 0."""
    return (seq + n) % (MAX_SEQUENCE + 1)


class AbortedTxn(NamedTuple):
    """An aborted transaction of one partition (Kafka's ``AbortedTxn``).

    ``last_offset`` is the offset of its ABORT marker; ``last_stable_offset``
    the LSO just after the abort.
    """

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class ProducerEntry:
    """What a partition remembers of one producer id."""

    __slots__ = ("batches", "epoch", "last_timestamp", "seq_reset", "txn_first_offset")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        # (first_seq, last_seq, last_offset, offset_delta), oldest first
        self.batches: deque[tuple[int, int, int, int]] = deque(maxlen=NUM_BATCHES_TO_RETAIN)
        self.txn_first_offset = -1
        self.last_timestamp = -1
        # A marker bumped the epoch (and cleared ``batches``): the next batch must start
        # at sequence 0, as in Kafka (``inSequence(NO_SEQUENCE, seq)``). Without this
        # flag an empty ``batches`` read as "no state" and any sequence was accepted,
        # so a lost first batch of the bumped epoch went undetected.
        self.seq_reset = False

    @property
    def last_seq(self) -> int:
        return self.batches[-1][1] if self.batches else -1


class ProducerStateManager:
    """The producer state of one partition; see the module docstring.

    ``next_offset`` is how far the log has been applied: every batch below it
    has been seen, none at or above it.
    """

    def __init__(self, next_offset: int = 0) -> None:
        self.entries: dict[int, ProducerEntry] = {}
        self.ongoing: SortedDict = SortedDict()  # txn first offset -> producer id
        self.aborted: list[AbortedTxn] = []  # in marker order
        self.next_offset = next_offset

    # ------------------------------------------------------------------ checks
    def check_append(
        self,
        producer_id: int,
        epoch: int,
        base_sequence: int,
        record_count: int,
        transactional: bool,
    ) -> tuple[int, int] | None:
        """Apply the rules of the module docstring to a batch about to be appended.

        Returns the ``(base_offset, last_offset)`` of the original if the batch is
        a duplicate, None if it may be appended; raises if it must be refused.
        """
        entry = self.entries.get(producer_id)
        if entry is None:
            return None
        if epoch < entry.epoch:
            raise ProducerFencedError(
                f"producer id {producer_id} epoch {epoch} is older than the partition's "
                f"epoch {entry.epoch}: a newer instance of this producer took over"
            )
        last_seq = next_sequence(base_sequence, record_count - 1)
        if epoch == entry.epoch:
            for first, last, last_offset, delta in entry.batches:
                if first == base_sequence and last == last_seq:
                    return last_offset - delta, last_offset
        known = bool(entry.batches) or entry.seq_reset  # (seq_reset: see ProducerEntry)
        if epoch > entry.epoch:
            if base_sequence != 0 and known:
                raise OutOfOrderSequenceError(
                    f"producer id {producer_id}: a new epoch {epoch} must start at sequence 0, "
                    f"not {base_sequence}"
                )
        elif known and base_sequence != next_sequence(entry.last_seq):
            raise OutOfOrderSequenceError(
                f"producer id {producer_id} epoch {epoch}: expected sequence "
                f"{next_sequence(entry.last_seq)}, got {base_sequence}"
            )
        if not transactional and entry.txn_first_offset >= 0 and epoch == entry.epoch:
            raise InvalidTxnStateError(
                f"producer id {producer_id} wrote a non-transactional batch while its "
                f"transaction (from offset {entry.txn_first_offset}) is open"
            )
        return None

    def check_marker(self, producer_id: int, epoch: int) -> bool:
        """May a marker of ``epoch`` be written for ``producer_id``? True if its
        transaction is open here (else there is nothing to end); raises if fenced."""
        entry = self.entries.get(producer_id)
        if entry is None or entry.txn_first_offset < 0:
            return False
        if epoch < entry.epoch:
            raise ProducerFencedError(
                f"marker of producer id {producer_id} epoch {epoch} is older than the "
                f"partition's epoch {entry.epoch}"
            )
        return True

    def open_transaction(self, producer_id: int) -> tuple[int, int] | None:
        """``(epoch, first_offset)`` of the producer's open transaction here, or None."""
        entry = self.entries.get(producer_id)
        if entry is None or entry.txn_first_offset < 0:
            return None
        return entry.epoch, entry.txn_first_offset

    # ------------------------------------------------------------------ replay
    def apply_batch(
        self,
        producer_id: int,
        epoch: int,
        base_sequence: int,
        base_offset: int,
        last_offset: int,
        timestamp: int,
        transactional: bool,
    ) -> None:
        """Record an appended data batch (a producer id < 0 is not tracked)."""
        if last_offset >= self.next_offset:
            self.next_offset = last_offset + 1
        if producer_id < 0:
            return
        entry = self.entries.get(producer_id)
        if entry is None:
            entry = self.entries[producer_id] = ProducerEntry(epoch)
        elif epoch > entry.epoch:
            if entry.txn_first_offset >= 0:
                self._abort_orphan(producer_id, entry, base_offset - 1)
            entry.epoch = epoch
            entry.batches.clear()
        if base_sequence >= 0:
            delta = last_offset - base_offset
            last_seq = next_sequence(base_sequence, delta)
            entry.batches.append((base_sequence, last_seq, last_offset, delta))
            entry.seq_reset = False
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        if transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = base_offset
            self.ongoing[base_offset] = producer_id

    def apply_marker(
        self, producer_id: int, epoch: int, kind: int, offset: int, timestamp: int
    ) -> AbortedTxn | None:
        """Record a COMMIT or ABORT marker at ``offset``; returns the aborted transaction."""
        if offset >= self.next_offset:
            self.next_offset = offset + 1
        entry = self.entries.get(producer_id)
        if entry is None:
            entry = self.entries[producer_id] = ProducerEntry(epoch)
        if epoch > entry.epoch:
            entry.epoch = epoch
            entry.batches.clear()
            entry.seq_reset = True  # the bumped epoch starts at sequence 0
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        first = entry.txn_first_offset
        if first < 0:
            return None  # nothing open here (a marker with no data is allowed)
        entry.txn_first_offset = -1
        self.ongoing.pop(first, None)
        if kind != ABORT:
            return None
        txn = AbortedTxn(producer_id, first, offset, self.last_stable_offset())
        self.aborted.append(txn)
        return txn

    def _abort_orphan(self, producer_id: int, entry: ProducerEntry, last_offset: int) -> None:
        """A newer epoch of the producer writes while a transaction of an older one is open
        here: that transaction is over, and it was not committed (a coordinator completes
        a commit on every partition before it hands out a newer epoch), so it is aborted
        just before this batch, as if an ABORT marker stood at ``last_offset``. Its marker
        was lost (the partition was not noted in the record, say, after a power cut), and
        every process replaying the log decides the same."""
        first = entry.txn_first_offset
        entry.txn_first_offset = -1
        self.ongoing.pop(first, None)
        unstable = self.first_unstable_offset()
        lso = last_offset + 1 if unstable is None else unstable
        self.aborted.append(AbortedTxn(producer_id, first, last_offset, lso))

    # ------------------------------------------------------------------ queries
    def first_unstable_offset(self) -> int | None:
        return self.ongoing.keys()[0] if self.ongoing else None

    def last_stable_offset(self) -> int:
        first = self.first_unstable_offset()
        return self.next_offset if first is None else first

    def aborted_between(self, start: int, upper: int) -> list[AbortedTxn]:
        """Aborted transactions that may own batches in ``[start, upper)``."""
        return [t for t in self.aborted if t.last_offset >= start and t.first_offset < upper]

    def forget_below(self, log_start: int) -> None:
        """Drop aborted transactions wholly below the log start (retention removed them)."""
        if self.aborted and self.aborted[0].last_offset < log_start:
            self.aborted = [t for t in self.aborted if t.last_offset >= log_start]

    def expire(self, now_ms: int, expiration_ms: int) -> list[int]:
        """Forget producers idle for ``expiration_ms`` with no open transaction (Kafka's
        ``producer.id.expiration.ms``); returns their ids."""
        gone = [
            pid
            for pid, e in self.entries.items()
            if e.txn_first_offset < 0 and e.last_timestamp >= 0
            and now_ms - e.last_timestamp > expiration_ms
        ]
        for pid in gone:
            del self.entries[pid]
        return gone

    def _check(self) -> None:
        """Assert the invariants (tests call this after random operations)."""
        open_txns = {e.txn_first_offset: pid for pid, e in self.entries.items()
                     if e.txn_first_offset >= 0}
        assert dict(self.ongoing) == open_txns, (dict(self.ongoing), open_txns)
        for pid, e in self.entries.items():
            assert pid >= 0
            assert len(e.batches) <= NUM_BATCHES_TO_RETAIN
            offsets = [b[2] for b in e.batches]
            assert offsets == sorted(offsets), offsets
            for first, last, last_offset, delta in e.batches:
                assert 0 <= first <= MAX_SEQUENCE and 0 <= last <= MAX_SEQUENCE
                assert last == next_sequence(first, delta)
                assert last_offset < self.next_offset
            assert e.txn_first_offset < self.next_offset
        lso = self.last_stable_offset()
        assert lso <= self.next_offset
        marks = [t.last_offset for t in self.aborted]
        assert marks == sorted(marks)
        for t in self.aborted:
            assert t.first_offset <= t.last_offset < self.next_offset  # (<=: an orphan)


class ProducerStateTracker:
    """Keeps a ``ProducerStateManager`` caught up with one partition's log.

    Built on first use (only idempotent producers, transactions and read_committed
    readers need it) by replaying frame headers from the first segment; after that
    only the frames appended since the last call are read, by following the
    segments as ``PartitionLog`` readers do. Appends through the owning
    ``PartitionLog`` apply their batches directly (``applied``), so a producer's own
    writes cost no re-read.

    Thread-safe: ``lock`` serialises the state; ``PartitionLog`` takes it after its
    append lock, never the other way round.
    """

    def __init__(self, plog: PartitionLog) -> None:
        self._plog = plog
        self.lock = threading.Lock()
        self.state: ProducerStateManager | None = None
        self._cursor: tuple[int, int] = (-1, 0)  # (segment base, position) read up to
        self._expired_at = 0

    def caught_up(self) -> ProducerStateManager:
        """The state with every frame of the log applied (call with ``lock`` held)."""
        for attempt in range(10):
            try:
                return self._caught_up()
            except StorageIOError as e:
                # a segment merged by the cleaner (or deleted by retention) in another
                # process since we listed it: list again, and replay
                if e.errno != errno.ENOENT or attempt == 9:
                    raise
                self._plog._notice_cleaning(force=True)
        raise AssertionError("unreachable")

    def _caught_up(self) -> ProducerStateManager:
        plog = self._plog
        plog._refresh()
        bases = plog._segments.keys()
        state = self.state
        base, pos = self._cursor
        if state is None or base not in plog._segments:
            # first use, or retention deleted segments we had not read: replay from
            # the first segment (what was deleted can no longer be read anyway)
            base, pos = bases[0], 0
            state = self.state = ProducerStateManager(base)
        while True:
            seg = plog._segment(base)
            while True:
                length, fields = seg.frame_at(pos)
                if length == 0 or fields is None:
                    break  # the end, or a frame being written (or bad: reads report it)
                attrs = fields[3]
                if attrs & _ATTR_SEAL:
                    break
                base_offset = fields[5]
                last_offset = base_offset + fields[6]
                pid = fields[10]
                if pid < 0:
                    if last_offset >= state.next_offset:
                        state.next_offset = last_offset + 1
                elif attrs & _ATTR_CONTROL:
                    kind = _control_kind(seg.batch_at(pos, fields))
                    if kind is not None:
                        state.apply_marker(pid, fields[11], kind, base_offset, fields[9])
                else:
                    state.apply_batch(pid, fields[11], fields[13], base_offset, last_offset,
                                      fields[9], bool(attrs & _ATTR_TRANSACTIONAL))
                pos += _aligned(length)
            i = bases.index(base)
            if seg.sealed and i + 1 < len(bases):
                base, pos = bases[i + 1], 0
                continue
            break
        self._cursor = (base, pos)
        state.forget_below(plog._current_log_start())
        now = int(plog._clock() * 1000)
        if now - self._expired_at >= PRODUCER_ID_EXPIRATION_CHECK_MS:
            self._expired_at = now
            state.expire(now, PRODUCER_ID_EXPIRATION_MS)
        return state

    def applied(self, base: int, position: int) -> None:
        """The owner appended a frame ending at ``position`` of segment ``base`` and applied
        it to the state itself (with ``lock`` held, and the state caught up before)."""
        self._cursor = (base, position)


def _control_kind(batch: RecordBatch) -> int | None:
    for record in batch.records():
        return parse_control_key(record[2])
    return None
