"""The producer's side of idempotence and transactions (Kafka's ``TransactionManager``).

A pure state machine plus calls to the coordinator; the ``Producer`` asks it
for the producer id, epoch and sequence of every batch, and delegates the
transactional API to it.

States and the calls that move between them::

    UNINITIALIZED --init_transactions--> READY --begin_transaction--> IN_TRANSACTION
    IN_TRANSACTION --commit_transaction--> COMMITTING --> READY
    IN_TRANSACTION --abort_transaction--> ABORTING --> READY
    IN_TRANSACTION --a send fails--> ABORTABLE_ERROR --abort_transaction--> READY
    any --ProducerFencedError / OutOfOrderSequenceError--> FATAL_ERROR (only close())

Calls out of order raise ``IllegalStateError``, as Kafka's
``IllegalStateException``. Thread-safe (one lock).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .._structs import OffsetAndMetadata, TopicPartition
from ..coordination._txn import TransactionCoordinator
from ..errors import (
    IllegalStateError,
    OutOfOrderSequenceError,
    ProducerFencedError,
    TransactionAbortedError,
)
from ..storage._producer_state import next_sequence

__all__ = ["ConsumerGroupMetadata", "TransactionManager"]

UNINITIALIZED = "UNINITIALIZED"
READY = "READY"
IN_TRANSACTION = "IN_TRANSACTION"
COMMITTING = "COMMITTING"
ABORTING = "ABORTING"
ABORTABLE_ERROR = "ABORTABLE_ERROR"
FATAL_ERROR = "FATAL_ERROR"

FATAL = (ProducerFencedError, OutOfOrderSequenceError)


class ConsumerGroupMetadata:
    """A consumer's group, generation and member id, for ``send_offsets_to_transaction``
    (Kafka's ``ConsumerGroupMetadata``): the offsets are refused if the consumer has
    since left the group or the group moved on to another generation."""

    __slots__ = ("generation_id", "group_id", "group_instance_id", "member_id")

    def __init__(
        self,
        group_id: str,
        generation_id: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.generation_id = generation_id
        self.member_id = member_id
        self.group_instance_id = group_instance_id

    def __repr__(self) -> str:
        return (
            f"ConsumerGroupMetadata(group_id={self.group_id!r}, "
            f"generation_id={self.generation_id}, member_id={self.member_id!r}, "
            f"group_instance_id={self.group_instance_id!r})"
        )

    def __getitem__(self, name: str) -> object:
        # (``group_metadata()`` returned a dict before this class existed)
        if name not in self.__slots__:
            raise KeyError(name)
        return getattr(self, name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsumerGroupMetadata):
            return NotImplemented
        return (self.group_id, self.generation_id, self.member_id, self.group_instance_id) == (
            other.group_id, other.generation_id, other.member_id, other.group_instance_id
        )

    def __hash__(self) -> int:
        return hash((self.group_id, self.generation_id, self.member_id))


class TransactionManager:
    """Producer id, epoch, sequences and the transaction state of one producer."""

    def __init__(
        self,
        coordinator: TransactionCoordinator,
        transactional_id: str | None,
        transaction_timeout_ms: int,
    ) -> None:
        self._coordinator = coordinator
        self.transactional_id = transactional_id
        self._timeout_ms = transaction_timeout_ms
        self._lock = threading.Lock()
        self.producer_id = -1
        self.epoch = -1
        self.state = UNINITIALIZED
        self._sequences: dict[tuple[str, int], int] = {}
        self._partitions: set[TopicPartition] = set()
        self._noted: set[tuple[str, int]] = set()  # the same, as plain tuples (send's check)
        self._error: BaseException | None = None
        if transactional_id is None:
            # idempotent only: an id of our own, epoch 0, no transactions
            self.producer_id = coordinator.allocate_producer_id()
            self.epoch = 0
            self.state = READY

    @property
    def transactional(self) -> bool:
        return self.transactional_id is not None

    @property
    def in_transaction(self) -> bool:
        return self.state in (IN_TRANSACTION, ABORTABLE_ERROR, COMMITTING, ABORTING)

    # ------------------------------------------------------------------ batches
    def sequence(self, topic: str, partition: int) -> int:
        return self._sequences.get((topic, partition), 0)

    def advance(self, topic: str, partition: int, records: int) -> None:
        """``records`` more were appended to the partition (never on failure: the next
        batch then reuses the sequence, as Kafka's retry does)."""
        key = (topic, partition)
        self._sequences[key] = next_sequence(self._sequences.get(key, 0), records)

    def before_send(self, topic: str, partition: int) -> None:
        """Check a send is allowed now; note the partition in the transaction."""
        if not self.transactional:
            if self._error is not None:
                raise self._error
            return
        if self.state is IN_TRANSACTION and (topic, partition) in self._noted:
            return  # the common case, without the lock: noted, and nothing failed
        with self._lock:
            if self.state == FATAL_ERROR:
                assert self._error is not None
                raise self._error
            self._require_in_transaction("send()")
            tp = TopicPartition(topic, partition)
            if tp in self._partitions:
                return
            assert self.transactional_id is not None
            try:
                self._coordinator.add_partitions(
                    self.transactional_id, self.producer_id, self.epoch, {tp}, self._timeout_ms
                )
            except FATAL as e:
                self._fail(e)
                raise
            self._partitions.add(tp)
            self._noted.add((topic, partition))

    def send_failed(self, error: BaseException) -> None:
        """A batch failed: the transaction may only be aborted (or the producer is done)."""
        with self._lock:
            if isinstance(error, FATAL):
                self._fail(error)
            elif self.transactional and self.state in (IN_TRANSACTION, COMMITTING):
                self.state = ABORTABLE_ERROR
                self._error = error

    def _require_in_transaction(self, what: str) -> None:
        """Raise unless a transaction is in progress and nothing of it failed (lock held)."""
        if self.state == ABORTABLE_ERROR:
            raise TransactionAbortedError(
                "an earlier send of this transaction failed; abort the transaction"
            ) from self._error
        if self.state != IN_TRANSACTION:
            raise IllegalStateError(
                f"{what} in state {self.state}: no transaction in progress; "
                "call begin_transaction() first"
            )

    def _fail(self, error: BaseException) -> None:
        self.state = FATAL_ERROR
        self._error = error

    # ------------------------------------------------------------------ the API
    def _require_transactional(self, what: str) -> str:
        if self.transactional_id is None:
            raise IllegalStateError(f"{what} needs a producer with a transactional_id")
        if self.state == FATAL_ERROR:
            assert self._error is not None
            raise self._error
        return self.transactional_id

    def init_transactions(self) -> None:
        tid = self._require_transactional("init_transactions()")
        with self._lock:
            if self.state not in (UNINITIALIZED, READY):
                raise IllegalStateError(
                    f"init_transactions() in state {self.state}: call it once, first"
                )
            if self.state == READY:
                return  # a retry after success changes nothing (Kafka allows the retry)
            self.producer_id, self.epoch = self._coordinator.init_producer_id(
                tid, self._timeout_ms
            )
            self._sequences.clear()
            self.state = READY

    def begin_transaction(self) -> None:
        self._require_transactional("begin_transaction()")
        with self._lock:
            if self.state != READY:
                raise IllegalStateError(
                    f"begin_transaction() in state {self.state}"
                    + (": call init_transactions() first" if self.state == UNINITIALIZED else "")
                )
            self._partitions = set()
            self._noted = set()
            self.state = IN_TRANSACTION

    def send_offsets(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], group: ConsumerGroupMetadata
    ) -> None:
        tid = self._require_transactional("send_offsets_to_transaction()")
        with self._lock:
            self._require_in_transaction("send_offsets_to_transaction()")
            try:
                self._coordinator.add_offsets(
                    tid, self.producer_id, self.epoch, group.group_id, group.generation_id,
                    group.member_id, offsets, self._timeout_ms,
                )
            except FATAL as e:
                self._fail(e)
                raise

    def end(self, commit: bool, flush: Any) -> None:
        """Commit or abort: ``flush()`` first writes every record sent in the transaction."""
        tid = self._require_transactional(
            "commit_transaction()" if commit else "abort_transaction()"
        )
        with self._lock:
            if self.state == ABORTABLE_ERROR and commit:
                raise TransactionAbortedError(
                    "cannot commit: an earlier send of this transaction failed; "
                    "abort the transaction"
                ) from self._error
            allowed = (IN_TRANSACTION, COMMITTING) if commit else (
                IN_TRANSACTION, ABORTING, ABORTABLE_ERROR
            )
            if self.state not in allowed:
                raise IllegalStateError(
                    f"{'commit' if commit else 'abort'}_transaction() in state {self.state}: "
                    "no transaction in progress"
                )
            self.state = COMMITTING if commit else ABORTING
        flush()
        with self._lock:
            if commit and self.state == ABORTABLE_ERROR:
                raise TransactionAbortedError(
                    "cannot commit: a send of this transaction failed; abort the transaction"
                ) from self._error
            if self.state == FATAL_ERROR:
                assert self._error is not None
                raise self._error
            try:
                self._coordinator.end_transaction(tid, self.producer_id, self.epoch, commit)
            except FATAL as e:
                self._fail(e)
                raise
            # (any other error leaves the state as it is: the call may be retried, and a
            # commit retried after a timeout completes the same transaction)
            self.state = READY
            self._partitions = set()
            self._noted = set()
            self._error = None
