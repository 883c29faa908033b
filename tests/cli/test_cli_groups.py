"""``streamlog groups`` through real subprocesses (skipped until the group API exists)."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator

import pytest

import streamlog
from streamlog import TopicPartition

from ._run import cli, cli_many, lines, ok, one_line_error, usage_error

if not hasattr(streamlog.Log, "describe_group"):
    pytest.skip(
        "the consumer group API (Log.describe_group) is not there yet", allow_module_level=True
    )

TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``orders`` (2 partitions, 5 records each, timestamps TS+i) and group ``g`` with
    offsets 2 and 3 committed, no members."""
    path = str(tmp_path_factory.mktemp("groups") / "data")
    with streamlog.open(path) as log:
        log.create_topic("orders", partitions=2)
        with log.producer() as p:
            for part in range(2):
                for i in range(5):
                    p.send("orders", f"{part}-{i}".encode(), partition=part, timestamp_ms=TS + i)
        c = log.consumer(group_id="g", enable_auto_commit=False)
        c.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
        c.commit(
            {
                TopicPartition("orders", 0): streamlog.OffsetAndMetadata(2),
                TopicPartition("orders", 1): streamlog.OffsetAndMetadata(3),
            }
        )
        c.close()
    yield path


def committed(path: str, group: str) -> dict[int, int | None]:
    with streamlog.open(path) as log:
        return {
            tp.partition: lag.committed for tp, lag in log.describe_group(group).offsets.items()
        }


def table(out: str) -> list[list[str]]:
    rows = lines(out)
    assert rows[0] == ""  # Kafka prints a blank line before each table
    return [r.split() for r in rows[1:]]


def test_list(data: str) -> None:
    assert ok(cli(data, "groups", "--list")) == "g\n"


def test_describe_an_empty_group(data: str) -> None:
    done = cli(data, "groups", "--describe", "--group", "g")
    out = ok(done)
    assert done.stderr == "Consumer group 'g' has no active members.\n"
    assert lines(out)[1] == (
        "GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG"
        "             CONSUMER-ID     CLIENT-ID"
    )
    assert table(out)[1:] == [
        ["g", "orders", "0", "2", "5", "3", "-", "-"],
        ["g", "orders", "1", "3", "5", "2", "-", "-"],
    ]
    state = table(ok(cli(data, "groups", "--describe", "--group", "g", "--state")))
    assert state[0] == ["GROUP", "ASSIGNMENT-STRATEGY", "STATE", "GENERATION", "#MEMBERS"]
    assert state[1][0] == "g" and state[1][2] == "Empty" and state[1][4] == "0"


def test_describe_with_an_active_member(tmp_path: str) -> None:
    path = str(tmp_path / "d")
    with streamlog.open(path) as log:
        log.create_topic("t", partitions=2)
        log.create_topic("u")
        with log.producer() as p:
            p.send("t", b"x", partition=1)
        c = log.consumer(
            "t", "u", group_id="live", client_id="my-client", auto_offset_reset="earliest"
        )
        try:
            deadline = time.monotonic() + 20
            while len(c.assignment()) < 3 and time.monotonic() < deadline:
                c.poll(timeout_ms=50)
            c.commit()
            done = cli(path, "groups", "--describe", "--group", "live")
            out = ok(done)
            assert done.stderr == ""
            member = c.group_metadata()["member_id"]
            rows = table(out)
            assert rows[1:] == [
                ["live", "t", "0", "0", "0", "0", member, "my-client"],
                ["live", "t", "1", "1", "1", "0", member, "my-client"],
                ["live", "u", "0", "0", "0", "0", member, "my-client"],
            ]
            members = table(
                ok(cli(path, "groups", "--describe", "--group", "live", "--members", "--verbose"))
            )
            assert members == [
                ["GROUP", "CONSUMER-ID", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"],
                ["live", member, "my-client", "3", "t(0,1),u(0)"],
            ]
            state = table(ok(cli(path, "groups", "--describe", "--group", "live", "--state")))
            assert state[1][:3] == ["live", "range", "Stable"]
            # an active group refuses resets and deletion
            line = one_line_error(
                cli(
                    path,
                    "groups",
                    "--reset-offsets",
                    "--group",
                    "live",
                    "--topic",
                    "t",
                    "--to-earliest",
                    "--execute",
                )
            )
            assert line.startswith("Error: ") and "inactive" in line
            line = one_line_error(cli(path, "groups", "--delete", "--group", "live"))
            assert "not empty" in line
        finally:
            c.close()


def test_reset_dry_run_execute_and_the_warning(data: str) -> None:
    base = ["groups", "--reset-offsets", "--group", "g", "--topic", "orders"]
    done = cli(data, *base, "--to-earliest")
    out = ok(done)
    assert done.stderr.startswith(
        "WARN: No action will be performed as the --execute option is missing."
    )
    assert lines(out)[1] == (
        "GROUP                          TOPIC                          PARTITION  NEW-OFFSET"
    )
    assert table(out)[1:] == [["g", "orders", "0", "0"], ["g", "orders", "1", "0"]]
    done = cli(data, *base, "--to-latest", "--dry-run")
    assert table(ok(done))[1:] == [["g", "orders", "0", "5"], ["g", "orders", "1", "5"]]
    assert done.stderr == ""
    assert committed(data, "g") == {0: 2, 1: 3}  # dry runs changed nothing

    assert table(ok(cli(data, *base, "--shift-by", "-1", "--execute")))[1:] == [
        ["g", "orders", "0", "1"],
        ["g", "orders", "1", "2"],
    ]
    assert committed(data, "g") == {0: 1, 1: 2}
    ok(
        cli(
            data,
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "orders:1",
            "--to-offset",
            "99",
            "--execute",
        )
    )
    assert committed(data, "g") == {0: 1, 1: 5}  # clamped to the end, only partition 1
    when = datetime.datetime.fromtimestamp((TS + 3) / 1000, datetime.timezone.utc)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]  # naive: UTC
    ok(cli(data, *base, "--to-datetime", iso, "--execute"))
    assert committed(data, "g") == {0: 3, 1: 3}
    ok(cli(data, *base, "--to-datetime", iso + "+01:00", "--execute"))  # an hour earlier
    assert committed(data, "g") == {0: 0, 1: 0}
    ok(
        cli(
            data,
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--all-topics",
            "--to-offset",
            "2",
            "--execute",
        )
    )
    assert committed(data, "g") == {0: 2, 1: 2}


def test_delete(data: str) -> None:
    with streamlog.open(data) as log:
        c = log.consumer(group_id="doomed", enable_auto_commit=False)
        c.assign([TopicPartition("orders", 0)])
        c.commit({TopicPartition("orders", 0): streamlog.OffsetAndMetadata(1)})
        c.close()
    assert "doomed" in lines(ok(cli(data, "groups", "--list")))
    out = ok(cli(data, "groups", "--delete", "--group", "doomed"))
    assert out == "Deletion of requested consumer groups ('doomed') was successful.\n"
    assert "doomed" not in lines(ok(cli(data, "groups", "--list")))


def test_errors(data: str) -> None:
    describe, delete, topic, when, mode, group, modes = cli_many(
        (data, "groups", "--describe", "--group", "nope"),
        (data, "groups", "--delete", "--group", "nope"),
        (
            data,
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "nope",
            "--to-earliest",
            "--execute",
        ),
        (
            data,
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "orders",
            "--to-datetime",
            "yesterday",
        ),
        (data, "groups", "--reset-offsets", "--group", "g", "--topic", "orders"),
        (data, "groups", "--describe"),  # no --group
        (
            data,
            "groups",
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "orders",
            "--to-earliest",
            "--to-latest",
        ),
    )
    assert one_line_error(describe) == "Error: Consumer group 'nope' does not exist."
    assert one_line_error(delete) == "Error: Consumer group 'nope' does not exist."
    assert "unknown topic 'nope'" in one_line_error(topic)
    assert "--to-datetime" in one_line_error(when)
    assert re.search("needs one of", usage_error(mode))
    usage_error(group)
    usage_error(modes)
