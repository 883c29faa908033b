"""``streamlog produce`` and ``streamlog consume`` through real subprocesses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import streamlog

from ._run import ENV, cli, cli_bytes, cli_many, lines, ok, one_line_error, usage_error

TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One data directory for the module: ``one`` (1 partition, known records), ``three``
    (3 partitions, 4 records each), ``appendtime`` (LogAppendTime)."""
    path = str(tmp_path_factory.mktemp("cli") / "data")
    with streamlog.open(path) as log:
        log.create_topic("one")
        log.create_topic("three", partitions=3)
        log.create_topic("appendtime", config={"message.timestamp.type": "LogAppendTime"})
        with log.producer() as p:
            p.send("one", b"v0", key=b"k0", timestamp_ms=TS, headers=[("h1", b"a"), ("h2", b"b")])
            p.send("one", b"v1", key=None, timestamp_ms=TS + 1)
            p.send("one", None, key=b"k2", timestamp_ms=TS + 2, headers=[("h", None)])
            p.send("one", b"\xffbin", key=b"k3", timestamp_ms=TS + 3)
            for part in range(3):
                for i in range(4):
                    p.send("three", f"p{part}-{i}".encode(), partition=part, timestamp_ms=TS)
            p.send("appendtime", b"x", timestamp_ms=5)
    yield path


def records(path: str, topic: str) -> list[streamlog.ConsumerRecord]:
    with streamlog.open(path) as log:
        c = log.consumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=200)
        try:
            return sorted(c, key=lambda r: (r.partition, r.offset))
        finally:
            c.close()


# ---------------------------------------------------------------- produce


def test_produce_plain_lines(tmp_path: str) -> None:
    path = str(tmp_path / "d")
    ok(cli(path, "topics", "--create", "--topic", "t"))
    done = cli(path, "produce", "--topic", "t", input="one\ntwo\n\nthree")
    assert ok(done) == ""
    got = records(path, "t")
    assert [(r.key, r.value, r.headers) for r in got] == [
        (None, b"one", ()),
        (None, b"two", ()),
        (None, b"", ()),
        (None, b"three", ()),
    ]


def test_produce_all_reader_properties(tmp_path: str) -> None:
    path = str(tmp_path / "d")
    ok(cli(path, "topics", "--create", "--topic", "t"))
    text = (
        b"h1=a;h2=<N>|key one|value|with|bars\n<N>|<N>|<N>\nx=1|k|v\n"
    ) + b"h=\xfe|\xffk|\xfev\n"
    done = cli_bytes(
        path,
        "produce",
        "--topic",
        "t",
        "--compression-codec",
        "zstd",
        "--acks",
        "1",
        "--linger-ms",
        "0",
        "--batch-size",
        "100",
        "--property",
        "parse.key=true",
        "parse.headers=true",
        "key.separator=|",
        "headers.delimiter=|",
        "headers.separator=;",
        "headers.key.separator==",
        "null.marker=<N>",
        input=text,
    )
    assert done.returncode == 0, done.stderr
    got = records(path, "t")
    assert [(r.key, r.value, r.headers) for r in got] == [
        (b"key one", b"value|with|bars", (("h1", b"a"), ("h2", None))),
        (None, None, ()),
        (b"k", b"v", (("x", b"1"),)),
        (b"\xffk", b"\xfev", (("h", b"\xfe"),)),  # bytes that are not UTF-8 pass through
    ]


def test_produce_missing_separator_stops_with_kafkas_message(tmp_path: str) -> None:
    path = str(tmp_path / "d")
    ok(cli(path, "topics", "--create", "--topic", "t"))
    done = cli(
        path,
        "produce",
        "--topic",
        "t",
        "--property",
        "parse.key=true",
        input="a\t1\nno separator\nc\t3\n",
    )
    line = one_line_error(done)
    assert line == "Error: No key separator found on line number 2: 'no separator'"
    assert [(r.key, r.value) for r in records(path, "t")] == [(b"a", b"1")]  # the line before
    # ignore.error: the whole line is the value, the key is null
    ok(
        cli(
            path,
            "produce",
            "--topic",
            "t",
            "--property",
            "parse.key=true",
            "ignore.error=true",
            input="no separator\n",
        )
    )
    assert [(r.key, r.value) for r in records(path, "t")][-1] == (None, b"no separator")


def test_produce_errors(tmp_path: str) -> None:
    path = str(tmp_path / "d")
    ok(cli(path, "topics", "--create", "--topic", "t"))
    unknown, header, collision, prop, codec = cli_many(
        (path, "produce", "--topic", "nope"),
        (
            path,
            "produce",
            "--topic",
            "t",
            "--property",
            "parse.key=true",
            "parse.headers=true",
            {"input": "no-header-separator\tk\tv\n"},
        ),
        (path, "produce", "--topic", "t", "--property", "headers.separator=:"),
        (path, "produce", "--topic", "t", "--property", "parse.keys=true"),
        (path, "produce", "--topic", "t", "--compression-codec", "gzip"),
    )
    assert "unknown topic 'nope'" in one_line_error(unknown)
    assert one_line_error(header) == (
        "Error: No header key separator found in pair 'no-header-separator' on line number 1"
    )
    assert one_line_error(collision) == (
        "Error: headers.separator and headers.key.separator may not be equal"
    )
    assert "unknown producer property parse.keys" in one_line_error(prop)
    usage_error(codec)
    assert records(path, "t") == []


# ---------------------------------------------------------------- consume


def consume(data: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(data, "consume", *args)


def test_consume_from_beginning_prints_values(data: str) -> None:
    done = consume(data, "--topic", "one", "--from-beginning", "--timeout-ms", "300")
    assert ok(done).encode("utf-8", "surrogateescape") == b"v0\nv1\nnull\n\xffbin\n"
    assert done.stderr == "Processed a total of 4 messages\n"


def test_consume_without_from_beginning_starts_at_the_end(data: str) -> None:
    done = consume(data, "--topic", "one", "--timeout-ms", "200")
    assert ok(done) == ""
    assert done.stderr == "Processed a total of 0 messages\n"


def test_consume_every_print_property(data: str) -> None:
    done = consume(
        data,
        "--topic",
        "one",
        "--from-beginning",
        "--max-messages",
        "3",
        "--property",
        "print.timestamp=true",
        "print.partition=true",
        "print.offset=true",
        "print.headers=true",
        "print.key=true",
        "key.separator= | ",
        "headers.separator=;",
        "line.separator=<EOL>\n",
        "null.literal=NULL",
    )
    assert ok(done) == (
        f"CreateTime:{TS} | Partition:0 | Offset:0 | h1:a;h2:b | k0 | v0<EOL>\n"
        f"CreateTime:{TS + 1} | Partition:0 | Offset:1 | NO_HEADERS | NULL | v1<EOL>\n"
        f"CreateTime:{TS + 2} | Partition:0 | Offset:2 | h:NULL | k2 | NULL<EOL>\n"
    )
    assert done.stderr == "Processed a total of 3 messages\n"


def test_consume_without_value_and_log_append_time(data: str) -> None:
    out = ok(
        consume(
            data,
            "--topic",
            "one",
            "--from-beginning",
            "--max-messages",
            "2",
            "--property",
            "print.key=true",
            "print.value=false",
        )
    )
    assert out == "k0\nnull\n"
    out = ok(
        consume(
            data,
            "--topic",
            "appendtime",
            "--from-beginning",
            "--max-messages",
            "1",
            "--property",
            "print.timestamp=true",
        )
    )
    assert out.startswith("LogAppendTime:") and out.endswith("\tx\n")
    assert int(out.split("\t")[0].split(":")[1]) > TS


def test_consume_partition_and_offset(data: str) -> None:
    at_two, earliest, latest, beginning = cli_many(
        (
            data,
            "consume",
            "--topic",
            "three",
            "--partition",
            "1",
            "--offset",
            "2",
            "--max-messages",
            "2",
        ),
        (
            data,
            "consume",
            "--topic",
            "three",
            "--partition",
            "2",
            "--offset",
            "earliest",
            "--max-messages",
            "4",
            "--property",
            "print.offset=true",
        ),
        (data, "consume", "--topic", "three", "--partition", "0", "--timeout-ms", "200"),
        (
            data,
            "consume",
            "--topic",
            "three",
            "--partition",
            "0",
            "--from-beginning",
            "--max-messages",
            "1",
        ),
    )
    assert ok(at_two) == "p1-2\np1-3\n"
    assert ok(earliest) == "Offset:0\tp2-0\nOffset:1\tp2-1\nOffset:2\tp2-2\nOffset:3\tp2-3\n"
    assert ok(latest) == ""
    assert ok(beginning) == "p0-0\n"


def test_consume_json(data: str) -> None:
    out = ok(
        consume(
            data, "--topic", "one", "--from-beginning", "--max-messages", "4", "--format", "json"
        )
    )
    objs = [json.loads(x) for x in lines(out)]
    assert objs[0] == {
        "topic": "one",
        "partition": 0,
        "offset": 0,
        "timestamp": TS,
        "key": "k0",
        "value": "v0",
        "headers": [["h1", "a"], ["h2", "b"]],
    }
    assert objs[1]["key"] is None
    assert objs[2]["value"] is None and objs[2]["headers"] == [["h", None]]
    assert objs[3]["value"] == "\ufffdbin"


def test_consume_include_pattern_reads_every_partition(data: str) -> None:
    out = ok(consume(data, "--include", "thr.*", "--from-beginning", "--max-messages", "12"))
    assert sorted(lines(out)) == sorted(f"p{p}-{i}" for p in range(3) for i in range(4))


def test_consume_with_a_group_commits_what_it_printed(data: str) -> None:
    out = ok(
        consume(data, "--topic", "three", "--group", "g", "--from-beginning", "--max-messages", "5")
    )
    assert len(lines(out)) == 5
    with streamlog.open(data) as log:
        if hasattr(log, "describe_group"):
            offsets = log.describe_group("g").offsets
            assert sum(lag.committed or 0 for lag in offsets.values()) == 5
    done = consume(data, "--topic", "three", "--group", "g", "--timeout-ms", "300")
    assert sorted(lines(out) + lines(ok(done))) == sorted(
        f"p{p}-{i}" for p in range(3) for i in range(4)
    )
    assert done.stderr == "Processed a total of 7 messages\n"
    # nothing left for the group; without a group nothing was committed anywhere
    assert ok(consume(data, "--topic", "three", "--group", "g", "--timeout-ms", "200")) == ""


def test_consume_errors(data: str) -> None:
    unknown, partition, prop, group_and_partition, offset_alone, bad_offset, neither = cli_many(
        (data, "consume", "--topic", "nope"),
        (data, "consume", "--topic", "one", "--partition", "7"),
        (data, "consume", "--topic", "one", "--property", "print.keys=true"),
        (data, "consume", "--topic", "one", "--group", "g", "--partition", "0"),
        (data, "consume", "--topic", "one", "--offset", "3"),
        (data, "consume", "--topic", "one", "--partition", "0", "--offset", "soon"),
        (data, "consume"),  # neither --topic nor --include
    )
    assert "unknown topic 'nope'" in one_line_error(unknown)
    assert "no partition 7" in one_line_error(partition)
    assert "unknown formatter property print.keys" in one_line_error(prop)
    line = usage_error(group_and_partition)
    assert "Options group and partition cannot be specified together." in line
    assert "The partition is required when offset is specified." in usage_error(offset_alone)
    assert "The provided offset value 'soon' is incorrect." in usage_error(bad_offset)
    usage_error(neither)


def test_consume_sigint_prints_the_total_and_exits_like_kafka(data: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlog",
            "--data",
            data,
            "consume",
            "--topic",
            "three",
            "--partition",
            "0",
            "--from-beginning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        got = [proc.stdout.readline() for _ in range(4)]  # it is consuming, then waits
        assert got == [b"p0-0\n", b"p0-1\n", b"p0-2\n", b"p0-3\n"]
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err == b"Processed a total of 4 messages\n"
    assert out == b""
