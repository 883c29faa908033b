"""The transaction coordinator: producer ids, epochs and one record per transactional id.

There is no broker, so the coordinator is this module run by whichever process
needs it, on files under the metadata directory::

    <data>/meta/transactions/
      txn.lock              flock target guarding every file below (short holds)
      producer_ids.json     {"next": N}: the next producer id, written durably before use
      <transactional_id>.txn  the TxnRecord (JSON) in two slots, written alternately

A ``TxnRecord`` holds the producer id and epoch of the transactional id, the
state (Kafka's ``TransactionState``: Empty, Ongoing, PrepareCommit,
PrepareAbort, CompleteCommit, CompleteAbort), the partitions written in the
open transaction, the consumer offsets sent to it, and when it started.

A record file is two slots of equal size, each ``u32 length, u64 sequence,
u64 xxh3-64(body, seed=sequence), body``; the valid slot with the higher
sequence is the record. A write goes to the other slot with ``pwrite`` (and
``fdatasync`` when durable): a crash tears at most that slot, and the previous
version is read. A record too large for its slots is rewritten whole, with
larger slots, through a temporary file and a rename.

Protocol steps (each write of a record is atomic; the ones marked *durable*
are synced before the step after them):

1. ``init_producer_id``: under the lock, finish what the previous instance
   left (an Ongoing transaction is aborted, a Prepare* one is completed),
   then bump the epoch, which fences the older instance, and write the
   record as Empty (*durable*).
2. ``add_partitions`` before the first write to a partition, and
   ``add_offsets``: check the epoch (else ``ProducerFencedError``), move to
   Ongoing, note the partitions or offsets (not synced: until step 3 nothing
   is decided, and step 3's synced write carries them all; a partition whose
   note a power cut lost is aborted by the producer's next epoch writing
   there, see ``ProducerStateManager._abort_orphan``, or by ``resolve_stuck``).
3. ``end_transaction``: write PrepareCommit/PrepareAbort (*durable*): from
   here the outcome is decided. Then a COMMIT or ABORT marker on every noted
   partition (synced), then, for a commit, the offsets into each group's
   offset store (synced), then CompleteCommit/CompleteAbort.

Whoever finds a record in a Prepare* state (the next ``init_producer_id``
for the id, a sweep by any process, a consumer waiting for stable offsets)
completes it: markers are written only where the producer's transaction is
still open (``PartitionLog.write_marker``), and offsets are the same values,
so a step repeated after a crash changes nothing. An Ongoing transaction
older than its timeout is aborted by a sweep with a bumped epoch, so its
producer, if still alive, is fenced.

Process-safe (the flock) and thread-safe (the lock's thread lock).
"""

from __future__ import annotations

import errno
import json
import logging
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import xxhash

from .. import _layout
from .._fs import crashpoint, fs
from .._names import check_name, is_name
from .._structs import OffsetAndMetadata, TopicPartition
from ..errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidTxnStateError,
    KafkaTimeoutError,
    MetadataCorruptError,
    ProducerFencedError,
    StorageIOError,
    TopicError,
)
from ..storage._producer_state import ABORT, COMMIT
from ..storage._state import AppendLock
from ._group import StaleMemberError
from ._groupstore import GroupStore
from ._offsets import OffsetStore

if TYPE_CHECKING:
    from ._manager import LogManager

__all__ = [
    "MAX_EPOCH",
    "TransactionCoordinator",
    "TxnRecord",
    "TxnState",
]

_logger = logging.getLogger("streamlog.transactions")

MAX_EPOCH = 32767  # int16, as Kafka: at the top a new producer id is handed out
_MAX_RECORD = 64 << 20
_SLOT_HEADER = struct.Struct("<IQQ")  # body length, sequence, xxh3-64 of the body (seed: seq)
_MIN_SLOT = 4096


def _newest_slot(raw: bytes, path: str) -> tuple[int, bytes] | None:
    """The (sequence, body) of the valid slot with the highest sequence; None for an
    empty file. A file of the wrong shape, or with no valid slot, is corrupt."""
    if not raw:
        return None
    half = len(raw) // 2
    if len(raw) % 2 or half < _SLOT_HEADER.size:
        raise MetadataCorruptError("transaction record file has an impossible size", path=path)
    best: tuple[int, bytes] | None = None
    for start in (0, half):
        n, seq, digest = _SLOT_HEADER.unpack_from(raw, start)
        end = start + _SLOT_HEADER.size + n
        if n == 0 or end > start + half:
            continue
        body = raw[start + _SLOT_HEADER.size : end]
        if xxhash.xxh3_64_intdigest(body, seed=seq) != digest:
            continue  # torn by a crash while it was written: the other slot is the record
        if best is None or seq > best[0]:
            best = (seq, body)
    if best is None:
        # (a file is created whole, by a rename: both slots bad is damage, not a crash)
        raise MetadataCorruptError("neither slot of the transaction record is valid", path=path)
    return best


class TxnState:
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    ALL = (EMPTY, ONGOING, PREPARE_COMMIT, PREPARE_ABORT, COMPLETE_COMMIT, COMPLETE_ABORT)
    PREPARED = (PREPARE_COMMIT, PREPARE_ABORT)
    IDLE = (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT)


@dataclass
class GroupOffsets:
    """Offsets a transaction will commit for one group (Kafka's TxnOffsetCommit)."""

    generation: int
    member_id: str
    offsets: dict[TopicPartition, OffsetAndMetadata]


@dataclass
class TxnRecord:
    """The coordinator's record of one transactional id (see the module docstring)."""

    transactional_id: str
    producer_id: int
    epoch: int
    state: str = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    offsets: dict[str, GroupOffsets] = field(default_factory=dict)
    start_ms: int = -1
    timeout_ms: int = 60_000
    updated_ms: int = 0

    def expired(self, now_ms: int) -> bool:
        return (
            self.state == TxnState.ONGOING
            and self.start_ms >= 0
            and now_ms - self.start_ms > self.timeout_ms
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "transactional_id": self.transactional_id,
            "producer_id": self.producer_id,
            "epoch": self.epoch,
            "state": self.state,
            "partitions": sorted([tp.topic, tp.partition] for tp in self.partitions),
            "offsets": {
                g: {
                    "generation": o.generation,
                    "member_id": o.member_id,
                    "offsets": sorted(
                        [tp.topic, tp.partition, om.offset, om.metadata]
                        for tp, om in o.offsets.items()
                    ),
                }
                for g, o in sorted(self.offsets.items())
            },
            "start_ms": self.start_ms,
            "timeout_ms": self.timeout_ms,
            "updated_ms": self.updated_ms,
        }

    @classmethod
    def from_wire(cls, data: Any, path: str) -> TxnRecord:
        try:
            rec = cls(
                transactional_id=str(data["transactional_id"]),
                producer_id=_int(data["producer_id"]),
                epoch=_int(data["epoch"]),
                state=str(data["state"]),
                partitions={TopicPartition(str(t), _int(p)) for t, p in data["partitions"]},
                offsets={
                    str(g): GroupOffsets(
                        _int(o["generation"]),
                        str(o["member_id"]),
                        {
                            TopicPartition(str(t), _int(p)): OffsetAndMetadata(_int(off), str(m))
                            for t, p, off, m in o["offsets"]
                        },
                    )
                    for g, o in data["offsets"].items()
                },
                start_ms=_int(data["start_ms"]),
                timeout_ms=_int(data["timeout_ms"]),
                updated_ms=_int(data["updated_ms"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MetadataCorruptError(f"transaction record is malformed: {e}", path=path) from e
        if rec.state not in TxnState.ALL or rec.producer_id < 0 or not 0 <= rec.epoch <= MAX_EPOCH:
            raise MetadataCorruptError("transaction record holds impossible values", path=path)
        return rec

    def _check(self) -> None:
        assert self.state in TxnState.ALL
        assert 0 <= self.epoch <= MAX_EPOCH and self.producer_id >= 0
        if self.state in TxnState.IDLE:
            assert not self.partitions and not self.offsets, self
        if self.state == TxnState.ONGOING:
            assert self.start_ms >= 0


def _int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an int, got {type(v).__name__}")
    return v


class TransactionCoordinator:
    """The coordinator's steps on one data directory (see the module docstring).

    ``manager`` gives the partitions the markers go to. ``clock`` returns seconds.
    """

    def __init__(
        self,
        manager: LogManager,
        *,
        lock_timeout: float = 30.0,
        clock: Any = time.time,
    ) -> None:
        self._manager = manager
        self._root = manager.path
        self._dir = _layout.transactions_dir(self._root)
        self._lock_timeout = lock_timeout
        self._clock = clock
        self._lock: AppendLock | None = None
        self._lock_made = threading.Lock()  # one AppendLock, however many threads race
        # per transactional id: (sequence of the newest version, slot size), as last read
        self._seqs: dict[str, tuple[int, int]] = {}
        # kept open: a store reads only what other processes appended since its last read
        self._offset_stores: dict[str, OffsetStore] = {}
        self._group_stores: dict[str, GroupStore] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------------ files
    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._lock
        if lock is None:
            # made once: two threads making one each would hold "the" lock at once (two
            # descriptors of one file: the second flock waits for the first for ever,
            # and the first holder would release the other's)
            with self._lock_made:
                lock = self._lock
                if lock is None:
                    fs.makedirs(self._dir, sync_parents=True)
                    lock = self._lock = AppendLock(
                        _layout.transactions_lock(self._root), self._lock_timeout,
                        what="transaction coordinator lock",
                    )
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _read(self, transactional_id: str) -> TxnRecord | None:
        path = _layout.transaction_file(self._root, transactional_id)
        try:
            raw = fs.read_file(path, _MAX_RECORD)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        found = _newest_slot(raw, path)
        if found is None:
            return None  # created, never completely written (a crash): as if absent
        seq, body = found
        try:
            data = json.loads(body)
        except ValueError as e:
            raise MetadataCorruptError(f"transaction record is not JSON: {e}", path=path) from e
        rec = TxnRecord.from_wire(data, path)
        if rec.transactional_id != transactional_id:
            raise MetadataCorruptError("transaction record names another id", path=path)
        self._seqs[transactional_id] = (seq, len(raw) // 2 if len(raw) > _SLOT_HEADER.size else 0)
        return rec

    def _write(self, rec: TxnRecord, *, durable: bool = True) -> None:
        """Write ``rec`` into the slot not holding the newest version (lock held, after a
        ``_read`` of the same id): a torn write leaves the other slot, the previous
        version, to be read. A record outgrowing its slots is rewritten whole through
        a temporary file and a rename."""
        rec.updated_ms = self._now_ms()
        body = json.dumps(rec.to_wire(), sort_keys=True).encode()
        path = _layout.transaction_file(self._root, rec.transactional_id)
        seq, slot_size = self._seqs.get(rec.transactional_id, (0, 0))
        seq += 1
        frame = _SLOT_HEADER.pack(len(body), seq, xxhash.xxh3_64_intdigest(body, seed=seq)) + body
        if len(frame) > slot_size:
            size = max(_MIN_SLOT, 1 << (len(frame) - 1).bit_length())
            slot = frame.ljust(size, b"\0")
            data = slot + bytes(size) if seq % 2 == 0 else bytes(size) + slot
            fs.write_atomic(path, data, durable=True)  # (new file: always synced)
            self._seqs[rec.transactional_id] = (seq, size)
            return
        fd = fs.open(path)
        try:
            fs.pwrite(fd, frame, (seq % 2) * slot_size, path)
            if durable:
                fs.sync(fd, path)
        finally:
            fs.close(fd)
        self._seqs[rec.transactional_id] = (seq, slot_size)

    def _allocate_producer_id(self) -> int:
        """A producer id never handed out before in this data directory (lock held)."""
        path = _layout.producer_ids_file(self._root)
        nxt = 0
        try:
            raw = fs.read_file(path, 4096)
        except StorageIOError as e:
            if e.errno != errno.ENOENT:
                raise
        else:
            try:
                nxt = _int(json.loads(raw)["next"])
            except (ValueError, KeyError, TypeError) as e:
                raise MetadataCorruptError(f"producer id counter is malformed: {e}",
                                           path=path) from e
        # Above every id a record names, whatever the counter says (a counter lost to a
        # power cut must not hand out an id that is still in use).
        for rec in self._records():
            nxt = max(nxt, rec.producer_id + 1)
        fs.write_atomic(path, json.dumps({"next": nxt + 1}).encode(), durable=True)
        return nxt

    def _records(self) -> list[TxnRecord]:
        try:
            names = fs.listdir(self._dir)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return []
            raise
        out = []
        for name in sorted(names):
            if not name.endswith(_layout.TXN_SUFFIX):
                continue
            tid = name[: -len(_layout.TXN_SUFFIX)]
            if not is_name(tid):
                continue
            rec = self._read(tid)
            if rec is not None:
                out.append(rec)
        return out

    # ------------------------------------------------------------------ producer calls
    def allocate_producer_id(self) -> int:
        """A fresh producer id for an idempotent producer without a transactional id."""
        with self._locked():
            return self._allocate_producer_id()

    def init_producer_id(self, transactional_id: str, timeout_ms: int) -> tuple[int, int]:
        """Step 1: fence older instances, finish their transaction, return (id, epoch)."""
        check_name("transactional_id", transactional_id)
        while True:
            with self._locked():
                rec = self._read(transactional_id)
                if rec is None:
                    rec = TxnRecord(transactional_id, self._allocate_producer_id(), 0,
                                    timeout_ms=timeout_ms)
                    self._write(rec)
                    return rec.producer_id, rec.epoch
                if rec.state == TxnState.ONGOING:
                    self._prepare(rec, commit=False, bump=True)
                elif rec.state not in TxnState.PREPARED:
                    self._bump(rec)
                    rec.timeout_ms = timeout_ms
                    rec.state = TxnState.EMPTY
                    self._write(rec)
                    return rec.producer_id, rec.epoch
            # Finish the previous instance's transaction outside the lock (markers take
            # partition locks), then go round again to bump the epoch.
            self._complete(rec)

    def _bump(self, rec: TxnRecord) -> None:
        if rec.epoch >= MAX_EPOCH:
            rec.producer_id = self._allocate_producer_id()
            rec.epoch = 0
        else:
            rec.epoch += 1

    def _check_owner(self, rec: TxnRecord | None, producer_id: int, epoch: int,
                     transactional_id: str) -> TxnRecord:
        if rec is None or rec.producer_id != producer_id or rec.epoch != epoch:
            raise ProducerFencedError(
                f"transactional id {transactional_id!r}: producer id {producer_id} epoch "
                f"{epoch} was fenced by a newer instance (or its transaction timed out and "
                "was aborted)"
            )
        return rec

    def add_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                       tps: set[TopicPartition], timeout_ms: int) -> None:
        """Step 2 for partitions: note them before the first write to them."""
        with self._locked():
            rec = self._check_owner(self._read(transactional_id), producer_id, epoch,
                                    transactional_id)
            self._begin(rec, timeout_ms)
            if tps <= rec.partitions:
                return
            rec.partitions |= tps
            # Not synced: lost to a power cut, the transaction was not decided yet (the
            # PrepareCommit/Abort write, synced, carries every partition), and a
            # partition's data left without a marker is aborted when a newer epoch of
            # the producer writes there, or by a reader held back by it.
            self._write(rec, durable=False)
            crashpoint("txn.partitions_added")

    def add_offsets(self, transactional_id: str, producer_id: int, epoch: int, group_id: str,
                    generation: int, member_id: str,
                    offsets: Mapping[TopicPartition, OffsetAndMetadata], timeout_ms: int) -> None:
        """Step 2 for consumer offsets: they become visible when the transaction commits.

        Refused with ``CommitFailedError`` if ``member_id`` of ``generation`` no longer
        owns the partitions (KIP-447: a zombie consumer's offsets must not land).
        """
        if generation >= 0:
            self._validate_member(group_id, generation, member_id, offsets)
        with self._locked():
            rec = self._check_owner(self._read(transactional_id), producer_id, epoch,
                                    transactional_id)
            self._begin(rec, timeout_ms)
            prev = rec.offsets.get(group_id)
            merged = dict(prev.offsets) if prev is not None else {}
            merged.update(offsets)
            rec.offsets[group_id] = GroupOffsets(generation, member_id, merged)
            self._write(rec, durable=False)  # (as add_partitions: decided only by Prepare*)

    def _validate_member(self, group_id: str, generation: int, member_id: str,
                         offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        store = self._group_stores.get(group_id)
        if store is None:
            store = GroupStore(self._root, group_id, lock_timeout=self._lock_timeout)
            self._group_stores[group_id] = store
        with store.locked(exclusive=False):
            state = store.load()
        try:
            state.validate_commit(member_id, generation, offsets)
        except StaleMemberError as e:
            raise CommitFailedError(
                f"offsets refused: {e}; the group has rebalanced since (abort the "
                "transaction; poll() rejoins)"
            ) from None

    def _begin(self, rec: TxnRecord, timeout_ms: int) -> None:
        if rec.state in TxnState.PREPARED:
            raise InvalidTxnStateError(
                f"transaction of {rec.transactional_id!r} is completing ({rec.state})"
            )
        if rec.state != TxnState.ONGOING:
            rec.state = TxnState.ONGOING
            rec.start_ms = self._now_ms()
            rec.timeout_ms = timeout_ms
            rec.partitions = set()
            rec.offsets = {}

    def end_transaction(self, transactional_id: str, producer_id: int, epoch: int,
                        commit: bool) -> None:
        """Step 3: decide the outcome, then write markers and offsets, then complete."""
        with self._locked():
            rec = self._check_owner(self._read(transactional_id), producer_id, epoch,
                                    transactional_id)
            if rec.state in TxnState.IDLE:
                return  # nothing was written in this transaction
            if rec.state in TxnState.PREPARED:
                wanted = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
                if rec.state != wanted:
                    raise InvalidTxnStateError(
                        f"transaction of {transactional_id!r} is already {rec.state}"
                    )
            else:
                self._prepare(rec, commit=commit, bump=False)
        self._complete(rec)

    def _prepare(self, rec: TxnRecord, *, commit: bool, bump: bool) -> None:
        if bump:
            self._bump(rec)
        rec.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        if not commit:
            rec.offsets = {}
        self._write(rec)
        crashpoint("txn.prepared")

    def _complete(self, rec: TxnRecord) -> None:
        """Write the markers and offsets of a prepared transaction, then mark it complete.

        Safe to run more than once and in several processes at the same time.
        """
        commit = rec.state == TxnState.PREPARE_COMMIT
        kind = COMMIT if commit else ABORT
        for tp in sorted(rec.partitions):
            try:
                plog = self._manager.partition(tp.topic, tp.partition)
                plog.write_marker(rec.producer_id, rec.epoch, kind)
            except TopicError:
                continue  # the topic was deleted: nothing is left to mark
            crashpoint("txn.marker_written")
        if commit:
            for group_id, go in sorted(rec.offsets.items()):
                store = self._offset_stores.get(group_id)
                if store is None:
                    store = self._offset_stores[group_id] = OffsetStore(self._root, group_id)
                store.commit(go.offsets, generation=go.generation, member_id=go.member_id,
                             sync=True)
                crashpoint("txn.offsets_written")
        with self._locked():
            cur = self._read(rec.transactional_id)
            if (
                cur is not None
                and cur.producer_id == rec.producer_id
                and cur.epoch == rec.epoch
                and cur.state == rec.state
            ):
                cur.state = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
                cur.partitions = set()
                cur.offsets = {}
                cur.start_ms = -1
                # Not synced: lost, the record says Prepare* again and the steps above,
                # repeated, change nothing.
                self._write(cur, durable=False)
                crashpoint("txn.completed")

    # ------------------------------------------------------------------ anyone's calls
    def sweep(self, now_ms: int | None = None) -> int:
        """Complete prepared transactions and abort expired ones; returns how many."""
        now = self._now_ms() if now_ms is None else now_ms
        todo: list[TxnRecord] = []
        with self._locked():
            for rec in self._records():
                if rec.state in TxnState.PREPARED:
                    todo.append(rec)
                elif rec.expired(now):
                    _logger.warning(
                        "aborting transaction of %r: open for %d ms, over its timeout of %d ms",
                        rec.transactional_id, now - rec.start_ms, rec.timeout_ms,
                    )
                    self._prepare(rec, commit=False, bump=True)
                    todo.append(rec)
        for rec in todo:
            self._complete(rec)
        return len(todo)

    def pending_offsets(self, group_id: str) -> list[TxnRecord]:
        """Transactions not yet complete that hold offsets for ``group_id``."""
        return [
            r for r in self._records()
            if group_id in r.offsets and r.state not in TxnState.IDLE
        ]

    def settle_group(self, group_id: str, timeout_s: float) -> None:
        """Wait until no open transaction holds offsets for the group (Kafka's
        UNSTABLE_OFFSET_COMMIT retry): prepared ones are completed, expired ones
        aborted; raises ``KafkaTimeoutError`` if one stays open past ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            pending = self.pending_offsets(group_id)
            if not pending:
                return
            self.sweep()
            if not self.pending_offsets(group_id):
                return
            if time.monotonic() >= deadline:
                raise KafkaTimeoutError(
                    f"offsets of group {group_id!r} are held by open transactions of "
                    f"{sorted(r.transactional_id for r in pending)}"
                )
            time.sleep(0.01)

    def resolve_stuck(self, tp: TopicPartition, producer_id: int, epoch: int) -> bool:
        """A partition's transaction of ``producer_id`` is open: end it if nobody will.

        Called by readers held back by it. Returns True if something was done.
        """
        now = self._now_ms()
        with self._locked():
            owner = next((r for r in self._records() if r.producer_id == producer_id), None)
            if owner is not None and owner.state == TxnState.ONGOING and tp in owner.partitions:
                if not owner.expired(now):
                    return False  # a live transaction: it will end
                self._prepare(owner, commit=False, bump=True)
                pending: TxnRecord | None = owner
            elif owner is not None and owner.state in TxnState.PREPARED and tp in owner.partitions:
                pending = owner
            else:
                pending = None
        if pending is not None:
            self._complete(pending)
            return True
        # Nobody knows of this partition's transaction (its record was lost or has
        # moved on): abort it here, as a timeout would.
        fence = max(epoch, owner.epoch if owner is not None else epoch)
        try:
            self._manager.partition(tp.topic, tp.partition).write_marker(producer_id, fence, ABORT)
        except TopicError:
            return False
        return True

    def list(self) -> list[TxnRecord]:
        """Every transaction record (for the CLI's ``transactions`` verb)."""
        return self._records()

    def abort(self, transactional_id: str) -> bool:
        """Abort the open transaction of ``transactional_id`` now (kafka-transactions.sh
        abort): its producer is fenced. False if it had none."""
        check_name("transactional_id", transactional_id)
        with self._locked():
            rec = self._read(transactional_id)
            if rec is None:
                raise IllegalStateError(f"no transactional id {transactional_id!r}")
            if rec.state == TxnState.ONGOING:
                self._prepare(rec, commit=False, bump=True)
            elif rec.state not in TxnState.PREPARED:
                return False
        self._complete(rec)
        return True

    def close(self) -> None:
        stores: list[OffsetStore | GroupStore] = [
            *self._offset_stores.values(), *self._group_stores.values()
        ]
        self._offset_stores.clear()
        self._group_stores.clear()
        for store in stores:
            store.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

