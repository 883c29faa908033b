"""Transaction administration behind ``Log`` (kafka-transactions.sh's verbs)."""

from __future__ import annotations

from .._names import check_name, check_partition, check_topic_name
from .._structs import ProducerState, TransactionDescription
from ..errors import IllegalStateError
from ._manager import LogManager
from ._txn import TxnRecord

__all__ = [
    "abort_transaction",
    "describe_producers",
    "describe_transaction",
    "list_transactions",
]


def _describe(rec: TxnRecord) -> TransactionDescription:
    return TransactionDescription(
        transactional_id=rec.transactional_id,
        producer_id=rec.producer_id,
        producer_epoch=rec.epoch,
        state=rec.state,
        partitions=frozenset(rec.partitions),
        groups=frozenset(rec.offsets),
        start_ms=rec.start_ms,
        timeout_ms=rec.timeout_ms,
        last_update_ms=rec.updated_ms,
    )


def list_transactions(manager: LogManager) -> list[TransactionDescription]:
    manager.check_open()
    return [_describe(r) for r in manager.transactions().list()]


def describe_transaction(manager: LogManager, transactional_id: str) -> TransactionDescription:
    check_name("transactional_id", transactional_id)
    manager.check_open()
    for rec in manager.transactions().list():
        if rec.transactional_id == transactional_id:
            return _describe(rec)
    raise IllegalStateError(f"no transactional id {transactional_id!r} in this directory")


def abort_transaction(manager: LogManager, transactional_id: str) -> bool:
    check_name("transactional_id", transactional_id)
    manager.check_open()
    return manager.transactions().abort(transactional_id)


def describe_producers(manager: LogManager, topic: str, partition: int) -> list[ProducerState]:
    check_topic_name(topic)
    check_partition(partition)
    manager.check_open()
    pstate = manager.partition(topic, partition).producer_state()
    out = []
    for pid in sorted(pstate.entries):
        e = pstate.entries[pid]
        out.append(
            ProducerState(pid, e.epoch, e.last_seq, e.last_timestamp, e.txn_first_offset)
        )
    return out
