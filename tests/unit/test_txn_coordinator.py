"""The transaction coordinator's record files and steps, without producers."""

from __future__ import annotations

import os

import pytest

import streamlog
from streamlog import MetadataCorruptError, ProducerFencedError, TopicPartition
from streamlog._layout import transaction_file
from streamlog.coordination._txn import MAX_EPOCH, TransactionCoordinator, TxnState

TP = TopicPartition("t", 0)


@pytest.fixture
def coord(log: streamlog.Log) -> TransactionCoordinator:
    log.create_topic("t", 1)
    return log._manager.transactions()


def test_init_allocates_distinct_ids_and_bumps_the_epoch(coord: TransactionCoordinator) -> None:
    assert coord.init_producer_id("a", 1000) == (0, 0)
    assert coord.init_producer_id("b", 1000) == (1, 0)
    assert coord.init_producer_id("a", 1000) == (0, 1)
    assert coord.allocate_producer_id() == 2


def test_an_older_epoch_is_fenced(coord: TransactionCoordinator) -> None:
    pid, epoch = coord.init_producer_id("a", 1000)
    coord.init_producer_id("a", 1000)
    with pytest.raises(ProducerFencedError):
        coord.add_partitions("a", pid, epoch, {TP}, 1000)


def test_slots_alternate_and_a_torn_slot_reads_as_the_previous_version(
    log: streamlog.Log, coord: TransactionCoordinator
) -> None:
    pid, epoch = coord.init_producer_id("a", 1000)
    coord.add_partitions("a", pid, epoch, {TP}, 1000)  # Ongoing, in the other slot
    path = transaction_file(log.path, "a")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[: size // 2] != raw[size // 2 :]
    # tear the newest slot: its checksum fails, the previous version (Empty) is read
    newest = (coord._seqs["a"][0] % 2) * (size // 2)
    with open(path, "r+b") as f:
        f.seek(newest + 30)
        f.write(b"\xff\xff")
    (desc,) = log.list_transactions()
    assert desc.state == TxnState.EMPTY and desc.partitions == frozenset()


def test_both_slots_bad_is_corruption(log: streamlog.Log, coord: TransactionCoordinator) -> None:
    coord.init_producer_id("a", 1000)
    path = transaction_file(log.path, "a")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(b"\x01" * size)
    with pytest.raises(MetadataCorruptError):
        log.list_transactions()


def test_a_record_outgrowing_its_slots_is_rewritten_larger(
    log: streamlog.Log, coord: TransactionCoordinator
) -> None:
    pid, epoch = coord.init_producer_id("a", 1000)
    small = os.path.getsize(transaction_file(log.path, "a"))
    many = {TopicPartition(f"topic-{i:04d}", 0) for i in range(400)}
    coord.add_partitions("a", pid, epoch, many, 1000)
    assert os.path.getsize(transaction_file(log.path, "a")) > small
    (desc,) = log.list_transactions()
    assert desc.partitions == frozenset(many)
    coord.add_partitions("a", pid, epoch, {TP}, 1000)
    assert log.describe_transaction("a").partitions == frozenset(many | {TP})


def test_expired_transactions_are_aborted_by_a_sweep(coord: TransactionCoordinator) -> None:
    pid, epoch = coord.init_producer_id("a", 50)
    coord.add_partitions("a", pid, epoch, {TP}, 50)
    assert coord.sweep(now_ms=coord._now_ms()) == 0
    assert coord.sweep(now_ms=coord._now_ms() + 10_000) == 1
    (rec,) = coord.list()
    assert rec.state == TxnState.COMPLETE_ABORT and rec.epoch == epoch + 1
    with pytest.raises(ProducerFencedError):
        coord.end_transaction("a", pid, epoch, commit=True)


def test_the_epoch_wraps_to_a_new_producer_id(coord: TransactionCoordinator) -> None:
    pid, _ = coord.init_producer_id("a", 1000)
    with coord._locked():
        rec = coord._read("a")
        assert rec is not None
        rec.epoch = MAX_EPOCH
        coord._write(rec)
    new_pid, epoch = coord.init_producer_id("a", 1000)
    assert (new_pid != pid, epoch) == (True, 0)
