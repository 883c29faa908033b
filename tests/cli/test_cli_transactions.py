"""``streamlog transactions``, ``consume --isolation-level`` and ``dump``'s transaction
markers, through real subprocesses.

The data is made through the storage API and the coordinator (the producer's
transactional API is not what is tested here): transactional batches appended to a
``PartitionLog``, markers written with ``write_marker``, coordinator records made with
``init_producer_id`` and ``add_partitions``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.storage._codec import prepare_batch
from streamlog.storage._partition import PartitionLog

from ._run import cli, cli_many, lines, ok, one_line_error, usage_error

TIMEOUT_MS = 3_600_000  # long enough that no sweep aborts the open transaction
ORPHAN = 9999  # a producer id no transactional id has
TS = 1_700_000_000_000


def append(plog: PartitionLog, pid: int, seq: int, value: bytes = b"v", epoch: int = 0) -> int:
    """One transactional record of ``pid``; returns its offset."""
    batch = prepare_batch(
        [value],
        None,
        TS + seq,
        transactional=True,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )
    return plog.append(batch, sync=True).base_offset


def build(path: str) -> None:
    """Topic ``t`` (2 partitions) and transactional ids:

    - ``tx-open``: an Ongoing transaction on t-0 (offsets 0 and 1, not ended);
    - ``tx-done``: a transaction on t-1 (offset 0) committed by a marker (offset 1),
      its record back to Empty;
    - ``tx-stale``: its record is Empty, yet its producer id has an open transaction
      on t-1 (offset 3): hanging;
    - producer id ``ORPHAN``: open on t-1 from offset 2, no transactional id has it:
      hanging.
    """
    with streamlog.open(path) as log:
        log.create_topic("t", partitions=2)
        coord = log._manager.transactions()
        t0, t1 = log.partition("t", 0), log.partition("t", 1)

        pid, epoch = coord.init_producer_id("tx-open", TIMEOUT_MS)
        coord.add_partitions("tx-open", pid, epoch, {TopicPartition("t", 0)}, TIMEOUT_MS)
        append(t0, pid, 0, b"open-0")
        append(t0, pid, 1, b"open-1")

        pid, epoch = coord.init_producer_id("tx-done", TIMEOUT_MS)
        coord.add_partitions("tx-done", pid, epoch, {TopicPartition("t", 1)}, TIMEOUT_MS)
        append(t1, pid, 0, b"done-0")
        coord.end_transaction("tx-done", pid, epoch, commit=True)  # the COMMIT marker

        append(t1, ORPHAN, 0, b"orphan")
        pid, _epoch = coord.init_producer_id("tx-stale", TIMEOUT_MS)
        append(t1, pid, 0, b"stale")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Read-only: no test here changes it (``abort`` and ``consume`` get their own)."""
    path = str(tmp_path_factory.mktemp("txn") / "data")
    build(path)
    yield path


@pytest.fixture
def fresh(tmp_path: Any) -> str:
    path = str(tmp_path / "data")
    build(path)
    return path


def table(out: str) -> list[list[str]]:
    """Kafka's table: padded columns joined by tabs."""
    return [[cell.strip() for cell in row.split("\t")] for row in lines(out)]


def pids(path: str) -> dict[str, int]:
    with streamlog.open(path) as log:
        return {d.transactional_id: d.producer_id for d in log.list_transactions()}


# ---------------------------------------------------------------------------- list, describe


def test_list(data: str) -> None:
    ids = pids(data)
    rows = table(ok(cli(data, "transactions", "list")))
    assert rows[0] == [
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]
    by_id = {r[0]: r for r in rows[1:]}
    assert sorted(by_id) == ["tx-done", "tx-open", "tx-stale"]
    assert by_id["tx-done"] == [
        "tx-done",
        str(ids["tx-done"]),
        "0",
        "CompleteCommit",
        "None",
        "None",
        "",
    ]
    assert by_id["tx-stale"][3:] == ["Empty", "None", "None", ""]
    _tid, pid, epoch, state, start, duration, parts = by_id["tx-open"]
    assert (pid, epoch, state, parts) == (str(ids["tx-open"]), "0", "Ongoing", "t-0")
    now = int(time.time() * 1000)
    assert now - 600_000 < int(start) <= now
    assert 0 <= int(duration) < 600_000


def test_list_is_aligned(data: str) -> None:
    out = lines(ok(cli(data, "transactions", "list")))
    # every column but the last is padded to its widest cell: the tabs line up
    positions = {tuple(i for i, ch in enumerate(row) if ch == "\t") for row in out}
    assert len(positions) == 1


def test_list_of_a_directory_without_transactions(tmp_path: Any) -> None:
    path = str(tmp_path / "data")
    streamlog.open(path).close()
    assert table(ok(cli(path, "transactions", "list")))[1:] == []


def test_describe(data: str) -> None:
    ids = pids(data)
    done_open, done_done = cli_many(
        (data, "transactions", "describe", "--transactional-id", "tx-open"),
        (data, "transactions", "describe", "--transactional-id", "tx-done"),
    )
    rows = table(ok(done_open))
    assert rows[0] == [
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]
    assert len(rows) == 2
    row = rows[1]
    assert row[:5] == ["tx-open", str(ids["tx-open"]), "0", "Ongoing", str(TIMEOUT_MS)]
    assert int(row[5]) > 0 and int(row[6]) >= 0 and row[7] == "t-0"
    assert table(ok(done_done))[1] == [
        "tx-done",
        str(ids["tx-done"]),
        "0",
        "CompleteCommit",
        str(TIMEOUT_MS),
        "None",
        "None",
        "",
    ]


def test_describe_errors(data: str) -> None:
    unknown, missing, no_action = cli_many(
        (data, "transactions", "describe", "--transactional-id", "nope"),
        (data, "transactions", "describe"),
        (data, "transactions"),
    )
    assert one_line_error(unknown) == "Error: no transactional id 'nope' in this directory"
    assert "--transactional-id" in usage_error(missing)
    usage_error(no_action)


def test_no_data_directory(tmp_path: Any) -> None:
    line = one_line_error(cli(str(tmp_path / "none"), "transactions", "list"))
    assert line.startswith("Error: no data directory at ")


# ---------------------------------------------------------------------------- describe-producers


def test_describe_producers(data: str) -> None:
    ids = pids(data)
    t0, t1 = cli_many(
        (data, "transactions", "describe-producers", "--topic", "t", "--partition", "0"),
        (data, "transactions", "describe-producers", "--topic", "t", "--partition", "1"),
    )
    header = [
        "ProducerId",
        "ProducerEpoch",
        "LastSequence",
        "LastTimestamp",
        "CurrentTransactionStartOffset",
    ]
    rows = table(ok(t0))
    assert rows == [header, [str(ids["tx-open"]), "0", "1", str(TS + 1), "0"]]
    rows = table(ok(t1))
    assert rows[0] == header
    by_pid = {int(r[0]): r for r in rows[1:]}
    assert sorted(by_pid) == sorted([ids["tx-done"], ids["tx-stale"], ORPHAN])
    # committed: no open transaction (Kafka prints None)
    assert by_pid[ids["tx-done"]][1:3] == ["0", "0"]
    assert by_pid[ids["tx-done"]][4] == "None"
    assert by_pid[ORPHAN] == [str(ORPHAN), "0", "0", str(TS), "2"]
    assert by_pid[ids["tx-stale"]][4] == "3"


def test_describe_producers_errors(data: str) -> None:
    topic, part, missing = cli_many(
        (data, "transactions", "describe-producers", "--topic", "nope", "--partition", "0"),
        (data, "transactions", "describe-producers", "--topic", "t", "--partition", "7"),
        (data, "transactions", "describe-producers", "--topic", "t"),
    )
    assert one_line_error(topic) == "Error: unknown topic 'nope'"
    assert one_line_error(part) == "Error: topic 't' has 2 partition(s); no partition 7"
    assert "--partition" in usage_error(missing)


# ---------------------------------------------------------------------------- find-hanging


def test_find_hanging(data: str) -> None:
    ids = pids(data)
    rows = table(ok(cli(data, "transactions", "find-hanging")))
    assert rows[0] == [
        "Topic",
        "Partition",
        "ProducerId",
        "ProducerEpoch",
        "StartOffset",
        "LastTimestamp",
        "Duration(min)",
        "Reason",
    ]
    # tx-open on t-0 is a live transaction of its coordinator record: not hanging
    assert [r[:6] for r in rows[1:]] == [
        ["t", "1", str(ORPHAN), "0", "2", str(TS)],
        ["t", "1", str(ids["tx-stale"]), "0", "3", str(TS)],
    ]
    assert rows[1][7] == "no transactional id has this producer id"
    assert rows[2][7] == "'tx-stale' has no open transaction here"
    # Duration(min) is Kafka's: minutes since the producer's last timestamp
    assert abs(int(rows[1][6]) - (int(time.time() * 1000) - TS) // 60_000) <= 1


def test_find_hanging_scoped(data: str) -> None:
    t0, t1, no_topic, bad_topic = cli_many(
        (data, "transactions", "find-hanging", "--topic", "t", "--partition", "0"),
        (data, "transactions", "find-hanging", "--topic", "t", "--partition", "1"),
        (data, "transactions", "find-hanging", "--partition", "0"),
        (data, "transactions", "find-hanging", "--topic", "nope"),
    )
    assert ok(t0) == "No hanging transactions found\n"
    assert len(table(ok(t1))) == 3
    assert usage_error(no_topic).endswith("--partition needs --topic")
    assert one_line_error(bad_topic) == "Error: unknown topic 'nope'"


# ---------------------------------------------------------------------------- abort


def test_abort_ends_the_open_transaction(fresh: str) -> None:
    with streamlog.open(fresh) as log:
        plog = log.partition("t", 0)
        assert plog.open_transactions() != []
        assert plog.last_stable_offset() == 0  # held at the open transaction's start
        end_before = plog.end_offset
        pid = log.describe_transaction("tx-open").producer_id
    out = ok(cli(fresh, "transactions", "abort", "--transactional-id", "tx-open"))
    assert out == (
        f"Aborted the transaction of 'tx-open' (producer id {pid}, epoch 0) on t-0; "
        f"the producer is fenced: id {pid}, epoch 1.\n"
    )
    with streamlog.open(fresh) as log:
        plog = log.partition("t", 0)
        assert plog.open_transactions() == []
        assert plog.end_offset == end_before + 1  # the ABORT marker
        assert plog.last_stable_offset() == plog.end_offset
        d = log.describe_transaction("tx-open")
        assert (d.state, d.producer_epoch, d.partitions) == ("CompleteAbort", 1, frozenset())
    again, described, dumped = cli_many(
        (fresh, "transactions", "abort", "--transactional-id", "tx-open"),
        (fresh, "transactions", "describe", "--transactional-id", "tx-open"),
        (None, "dump", "--deep-iteration", os.path.join(fresh, "topics", "t", "0")),
    )
    assert ok(again) == (
        "Transactional id 'tx-open' has no open transaction (state CompleteAbort); "
        "nothing to abort.\n"
    )
    assert table(ok(described))[1][3:5] == ["CompleteAbort", str(TIMEOUT_MS)]
    assert any(
        line.startswith(f"| offset: {end_before} ")
        and line.endswith("endTxnMarker: ABORT coordinatorEpoch: 0")
        for line in lines(ok(dumped))
    )


def test_abort_errors(data: str) -> None:
    unknown, missing = cli_many(
        (data, "transactions", "abort", "--transactional-id", "nope"),
        (data, "transactions", "abort"),
    )
    assert one_line_error(unknown) == "Error: no transactional id 'nope' in this directory"
    assert "--transactional-id" in usage_error(missing)


# ---------------------------------------------------------------------------- dump


def test_dump_prints_transaction_markers(data: str) -> None:
    part = os.path.join(data, "topics", "t", "1")
    deep, contents = cli_many(
        (None, "dump", "--deep-iteration", part),
        (None, "dump", "--print-data", part),
    )
    out = lines(ok(deep))
    batch = next(i for i, line in enumerate(out) if line.startswith("baseOffset: 1 "))
    assert "isTransactional: true isControl: true" in out[batch]
    assert out[batch + 1].startswith("| offset: 1 CreateTime: ") and out[batch + 1].endswith(
        " keySize: 4 valueSize: 6 sequence: -1 headerKeys: [] "
        "endTxnMarker: COMMIT coordinatorEpoch: 0"
    )
    # a marker prints what it says, not its key and value bytes
    marker = [line for line in lines(ok(contents)) if "endTxnMarker" in line]
    assert len(marker) == 1 and "payload:" not in marker[0] and "key:" not in marker[0]
    assert any(line.endswith("payload: orphan") for line in lines(ok(contents)))


# ---------------------------------------------------------------------------- consume


def test_consume_isolation_level_reaches_the_consumer(
    fresh: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process: the option is handed to the consumer's config unchanged."""
    from streamlog._cli import main

    seen: list[dict[str, Any]] = []
    original = streamlog.Log.consumer

    def consumer(self: streamlog.Log, *topics: str, **config: Any) -> streamlog.Consumer:
        seen.append(config)
        return original(self, *topics, **config)

    monkeypatch.setattr(streamlog.Log, "consumer", consumer)
    base = ["--data", fresh, "consume", "--topic", "t", "--timeout-ms", "0"]
    assert main([*base, "--isolation-level", "read_committed"]) == 0
    assert main([*base, "--isolation-level", "read_uncommitted", "--group", "g"]) == 0
    assert main(base) == 0
    assert [c["isolation_level"] for c in seen] == [
        "read_committed",
        "read_uncommitted",
        "read_uncommitted",  # Kafka's default
    ]
    capsys.readouterr()


def test_consume_isolation_level_option(fresh: str) -> None:
    base = ("consume", "--topic", "t", "--partition", "0", "--from-beginning", "--timeout-ms")
    uncommitted, committed, bad = cli_many(
        (fresh, *base, "500", "--isolation-level", "read_uncommitted"),
        (fresh, *base, "500", "--isolation-level", "read_committed"),
        (fresh, *base, "0", "--isolation-level", "serializable"),
    )
    # read_uncommitted sees the records of the open transaction
    assert ok(uncommitted) == "open-0\nopen-1\n"
    # read_committed: which records it shows is the consumer's business (tested there)
    ok(committed)
    assert "invalid choice: 'serializable'" in usage_error(bad)
