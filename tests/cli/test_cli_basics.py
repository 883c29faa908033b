"""The command line as a whole: entry points, --help, --data, errors, and ``topics``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from streamlog._cli import main

from ._run import ENV, cli, cli_many, lines, ok, one_line_error, usage_error

VERBS = [
    ["topics"],
    ["produce"],
    ["consume"],
    ["groups"],
    ["dump"],
    ["check"],
    ["perf"],
    ["perf", "produce"],
    ["perf", "consume"],
]


def test_python_m_streamlog_help() -> None:
    out = ok(cli(None, "--help"))
    assert out.startswith("usage: streamlog")
    for verb in ("topics", "produce", "consume", "groups", "dump", "check", "perf"):
        assert verb in out


def test_verb_help_through_a_subprocess() -> None:
    out = ok(cli(None, "consume", "--help"))
    assert out.startswith("usage: streamlog consume")
    assert "print.key" in out


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # in-process (fast): argparse prints the help and exits 0
    with pytest.raises(SystemExit) as e:
        main([*verb, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: streamlog {' '.join(verb)}")


def test_console_script_is_installed() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "streamlog")
    assert os.path.exists(script), "no console script: reinstall the package (pip install -e .)"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: streamlog")


def test_importing_streamlog_does_not_import_the_cli() -> None:
    code = (
        "import streamlog, sys; "
        "assert not any(m.startswith('streamlog._cli') for m in sys.modules), "
        "[m for m in sys.modules if m.startswith('streamlog._cli')]"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr


def test_no_verb_and_bad_flags_are_usage_errors() -> None:
    for done in cli_many(
        (None,),
        (None, "topics", "--no-such-flag"),
        (None, "topics", "--list", "--create"),  # actions exclude each other
        (None, "topics", "--create", "--topic", "t", "--partitions", "x"),
    ):
        usage_error(done)


def test_data_dir_from_env_default_and_either_side_of_the_verb(tmp_path: str) -> None:
    root = str(tmp_path)
    env = {**ENV, "STREAMLOG_DATA": os.path.join(root, "from-env")}
    ok(cli(None, "topics", "--create", "--topic", "a", env=env))
    assert os.path.exists(os.path.join(root, "from-env", "streamlog.json"))
    ok(cli(None, "topics", "--create", "--topic", "b", cwd=root))  # ./streamlog-data
    assert ok(cli(None, "topics", "--list", cwd=root)) == "b\n"
    here = os.path.join(root, "streamlog-data")
    assert ok(cli(None, "topics", "--list", "--data", here)) == "b\n"  # after the verb
    assert ok(cli(os.path.join(root, "from-env"), "topics", "--list", env=env)) == "a\n"


def test_missing_data_dir_is_an_error_and_is_not_created(tmp_path: str) -> None:
    missing = os.path.join(str(tmp_path), "nope")
    line = one_line_error(cli(missing, "topics", "--list"))
    assert line.startswith("Error while executing topic command : no data directory at")
    assert not os.path.exists(missing)
    plain = os.path.join(str(tmp_path), "plain")
    os.mkdir(plain)
    assert "not a streamlog data directory" in one_line_error(cli(plain, "consume", "--topic", "t"))
    assert os.listdir(plain) == []


def test_debug_shows_the_traceback(tmp_path: str) -> None:
    data = str(tmp_path / "d")
    ok(cli(data, "topics", "--create", "--topic", "t"))
    done = cli(data, "--debug", "topics", "--create", "--topic", "t")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("Topic 't' already exists.")


def test_topics(tmp_path: str) -> None:
    data = str(tmp_path / "d")
    out = ok(
        cli(
            data,
            "topics",
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
            "segment.bytes=1048576",
        )
    )
    assert out == "Created topic orders.\n"
    ok(cli(data, "topics", "--create", "--topic", "logs", "--replication-factor", "1"))
    assert ok(cli(data, "topics", "--list")) == "logs\norders\n"
    assert ok(cli(data, "topics", "--list", "--topic", "ord.*")) == "orders\n"

    described = lines(ok(cli(data, "topics", "--describe", "--topic", "orders")))
    assert len(described) == 4
    head = described[0].split("\t")
    assert head[0] == "Topic: orders"
    assert head[1].startswith("TopicId: ") and len(head[1]) > len("TopicId: ") + 8
    assert head[2:] == [
        "PartitionCount: 3",
        "ReplicationFactor: 1",
        "Configs: retention.ms=3600000,segment.bytes=1048576",
    ]
    for p, line in enumerate(described[1:]):
        assert line.split("\t") == [
            "",
            "Topic: orders",
            f"Partition: {p}",
            "Leader: none",
            "LogStartOffset: 0",
            "LogEndOffset: 0",
            "Size: 0",
            "Segments: 1",
        ]
    everything = lines(ok(cli(data, "topics", "--describe")))
    heads = [x.split("\t") for x in everything if not x.startswith("\t")]
    assert [(h[0], h[-1]) for h in heads] == [
        ("Topic: logs", "Configs: "),  # only settings that differ from the defaults
        ("Topic: orders", "Configs: retention.ms=3600000,segment.bytes=1048576"),
    ]

    ok(
        cli(
            data,
            "topics",
            "--alter",
            "--topic",
            "orders",
            "--partitions",
            "5",
            "--config",
            "retention.ms=60000",
        )
    )
    described = lines(ok(cli(data, "topics", "--describe", "--topic", "orders")))
    assert "PartitionCount: 5" in described[0]
    assert "retention.ms=60000" in described[0]

    # idempotent variants
    assert ok(cli(data, "topics", "--create", "--topic", "orders", "--if-not-exists")) == ""
    assert ok(cli(data, "topics", "--delete", "--topic", "nope", "--if-exists")) == ""
    assert ok(cli(data, "topics", "--delete", "--topic", "logs")) == ""
    assert ok(cli(data, "topics", "--list")) == "orders\n"


TOPIC_ERRORS = [
    (["--create", "--topic", "orders"], "Topic 'orders' already exists."),
    (["--describe", "--topic", "nope"], "Topic 'nope' does not exist as expected"),
    (["--delete", "--topic", "nope"], "Topic 'nope' does not exist as expected"),
    (
        ["--alter", "--topic", "nope", "--partitions", "4"],
        "Topic 'nope' does not exist as expected",
    ),
    (
        ["--alter", "--topic", "orders", "--partitions", "1"],
        "The topic orders currently has 2 partition(s); 1 would not be an increase.",
    ),
    (["--alter", "--topic", "orders", "--partitions", "2"], "Topic already has 2 partition(s)."),
    (["--create", "--topic", "bad/name"], "invalid topic name"),
    (["--create", "--topic", "x", "--config", "retention.ms=soon"], "retention.ms"),
    (["--create", "--topic", "x", "--config", "no.such.key=1"], "unknown topic config"),
    (["--create", "--topic", "x", "--config", "novalue"], "expected key=value"),
    (["--create", "--topic", "x", "--partitions", "0"], "partition"),
    (["--create", "--topic", "x", "--replication-factor", "3"], "replication factor"),
    (["--create"], "--topic is required"),
]


def test_topic_errors(tmp_path: str) -> None:
    data = str(tmp_path / "d")
    ok(cli(data, "topics", "--create", "--topic", "orders", "--partitions", "2"))
    results = cli_many(*[(data, "topics", *args) for args, _message in TOPIC_ERRORS])
    for (args, message), done in zip(TOPIC_ERRORS, results):
        line = one_line_error(done)
        assert line.startswith("Error while executing topic command : "), (args, line)
        assert message in line, (args, line)
    assert ok(cli(data, "topics", "--list")) == "orders\n"  # nothing was created
