"""``streamlog transactions``: kafka-transactions.sh (list, describe, describe-producers,
abort, find-hanging).

A thin layer over ``Log``'s transaction API; ``find-hanging`` also asks each partition
for its open transactions (``PartitionLog.open_transactions``, the storage API, as
``dump`` reads storage too).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from typing import Any

import streamlog
from streamlog import TopicPartition
from streamlog._structs import TransactionDescription

from ._common import EXIT_OK, CliError, open_log, write_line

PREFIX = "Error: "
NONE = "None"  # Kafka's cell for a missing value
# The coordinator's states in which it will still write this transaction's markers.
_OPEN = ("Ongoing", "PrepareCommit", "PrepareAbort")


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "transactions",
        parents=[common],
        help="list, describe and abort transactions (kafka-transactions)",
        description="List, describe and abort transactions and find hanging ones, as "
        "kafka-transactions.sh does.",
    )
    which = p.add_subparsers(
        dest="action", metavar="{list,describe,describe-producers,abort,find-hanging}"
    )
    which.required = True
    lst = which.add_parser(
        "list",
        parents=[common],
        help="every transactional id with its producer id, state and open transaction",
        description="List every transactional id of the data directory.",
    )
    lst.set_defaults(run=_list)
    desc = which.add_parser(
        "describe",
        parents=[common],
        help="one transactional id",
        description="Describe one transactional id: producer id and epoch, state, timeout, "
        "and the start, duration and partitions of its open transaction.",
    )
    desc.add_argument("--transactional-id", required=True, metavar="ID")
    desc.set_defaults(run=_describe)
    prod = which.add_parser(
        "describe-producers",
        parents=[common],
        help="the producer ids one partition remembers",
        description="The producer ids one partition remembers: epoch, last sequence and "
        "timestamp, and the first offset of the producer's open transaction.",
    )
    prod.add_argument("--topic", required=True)
    prod.add_argument("--partition", required=True, type=int, metavar="P")
    prod.set_defaults(run=_describe_producers)
    abort = which.add_parser(
        "abort",
        parents=[common],
        help="abort the open transaction of a transactional id",
        description="Abort the open transaction of a transactional id now: ABORT markers "
        "are written to its partitions and its producer is fenced (its epoch is bumped).",
    )
    abort.add_argument("--transactional-id", required=True, metavar="ID")
    abort.set_defaults(run=_abort)
    hanging = which.add_parser(
        "find-hanging",
        parents=[common],
        help="open transactions nobody will end",
        description="Print the transactions open in a partition that no coordinator record "
        "will end: their producer id belongs to no transactional id, the transactional id "
        "has no open transaction with that partition, or it is open for longer than its "
        "timeout.",
    )
    hanging.add_argument("--topic", help="only this topic (default: every topic)")
    hanging.add_argument(
        "--partition", type=int, metavar="P", help="with --topic: only this partition"
    )
    hanging.set_defaults(run=_find_hanging, parser=hanging)
    for sub in (lst, desc, prod, abort, hanging):
        sub.set_defaults(error_prefix=PREFIX)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _print_table(header: list[str], rows: Iterable[list[str]]) -> None:
    """Kafka's ``prettyPrintTable``: each column as wide as its widest cell, columns
    joined by a tab (the last one unpadded)."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [f"{cell:<{w}}" for cell, w in zip(row[:-1], widths, strict=True)]
        write_line("\t".join([*cells, row[-1]]))


def _partitions(tps: Iterable[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}-{tp.partition}" for tp in sorted(tps))


def _start_and_duration(d: TransactionDescription, now: int) -> list[str]:
    if d.start_ms < 0:
        return [NONE, NONE]
    return [str(d.start_ms), str(max(0, now - d.start_ms))]


def _list(args: argparse.Namespace) -> int:
    with open_log(args) as log:
        txns = log.list_transactions()
    now = _now_ms()
    header = [
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]
    rows = [
        [
            d.transactional_id,
            str(d.producer_id),
            str(d.producer_epoch),
            d.state,
            *_start_and_duration(d, now),
            _partitions(d.partitions),
        ]
        for d in txns
    ]
    _print_table(header, rows)
    return EXIT_OK


def _describe(args: argparse.Namespace) -> int:
    with open_log(args) as log:
        d = log.describe_transaction(args.transactional_id)
    header = [
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]
    row = [
        d.transactional_id,
        str(d.producer_id),
        str(d.producer_epoch),
        d.state,
        str(d.timeout_ms),
        *_start_and_duration(d, _now_ms()),
        _partitions(d.partitions),
    ]
    _print_table(header, [row])
    return EXIT_OK


def _check_partition(log: streamlog.Log, topic: str, partition: int) -> None:
    partitions = log.partitions_for(topic)  # an unknown topic fails here
    if partition not in partitions:
        raise CliError(
            f"topic '{topic}' has {len(partitions)} partition(s); no partition {partition}"
        )


def _describe_producers(args: argparse.Namespace) -> int:
    with open_log(args) as log:
        _check_partition(log, args.topic, args.partition)
        producers = log.describe_producers(args.topic, args.partition)
    header = [
        "ProducerId",
        "ProducerEpoch",
        "LastSequence",
        "LastTimestamp",
        "CurrentTransactionStartOffset",
    ]
    rows = [
        [
            str(s.producer_id),
            str(s.producer_epoch),
            str(s.last_sequence),
            str(s.last_timestamp),
            NONE
            if s.current_transaction_start_offset < 0
            else str(s.current_transaction_start_offset),
        ]
        for s in producers
    ]
    _print_table(header, rows)
    return EXIT_OK


def _abort(args: argparse.Namespace) -> int:
    tid: str = args.transactional_id
    with open_log(args) as log:
        before = log.describe_transaction(tid)  # an unknown id fails here
        aborted = log.abort_transaction(tid)
        after = log.describe_transaction(tid)
    if not aborted:
        write_line(
            f"Transactional id '{tid}' has no open transaction (state {after.state}); "
            "nothing to abort."
        )
        return EXIT_OK
    where = _partitions(before.partitions) or "no partitions"
    write_line(
        f"Aborted the transaction of '{tid}' (producer id {before.producer_id}, epoch "
        f"{before.producer_epoch}) on {where}; the producer is fenced: id "
        f"{after.producer_id}, epoch {after.producer_epoch}."
    )
    return EXIT_OK


def _hanging_reason(
    owner: TransactionDescription | None, tp: TopicPartition, now: int
) -> str | None:
    """Why no coordinator record will end this open transaction, or None if one will."""
    if owner is None:
        return "no transactional id has this producer id"
    if owner.state not in _OPEN or tp not in owner.partitions:
        return f"'{owner.transactional_id}' has no open transaction here"
    if owner.state == "Ongoing" and owner.start_ms >= 0 and now - owner.start_ms > owner.timeout_ms:
        return f"'{owner.transactional_id}' is open past its timeout"
    return None


def _find_hanging(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.partition is not None and args.topic is None:
        parser.error("--partition needs --topic")
    rows: list[list[str]] = []
    with open_log(args) as log:
        owners = {d.producer_id: d for d in log.list_transactions()}
        topics = [args.topic] if args.topic is not None else log.topics()
        now = _now_ms()
        for topic in topics:
            if args.partition is not None:
                _check_partition(log, topic, args.partition)
                partitions = [args.partition]
            else:
                partitions = sorted(log.partitions_for(topic))
            for p in partitions:
                tp = TopicPartition(topic, p)
                opened = log.partition(topic, p).open_transactions()
                if not opened:
                    continue
                states = {s.producer_id: s for s in log.describe_producers(topic, p)}
                for pid, epoch, first in sorted(opened, key=lambda o: o[2]):
                    reason = _hanging_reason(owners.get(pid), tp, now)
                    if reason is None:
                        continue
                    state = states.get(pid)
                    last_ts = state.last_timestamp if state is not None else -1
                    minutes = max(0, now - last_ts) // 60_000 if last_ts >= 0 else -1
                    rows.append(
                        [
                            topic,
                            str(p),
                            str(pid),
                            str(epoch),
                            str(first),
                            str(last_ts),
                            str(minutes),
                            reason,
                        ]
                    )
    if not rows:
        write_line("No hanging transactions found")
        return EXIT_OK
    header = [
        "Topic",
        "Partition",
        "ProducerId",
        "ProducerEpoch",
        "StartOffset",
        "LastTimestamp",
        "Duration(min)",
        "Reason",
    ]
    _print_table(header, rows)
    return EXIT_OK
