"""Commands copied from Kafka's docs carry the cluster's address: accepted, not used."""

from __future__ import annotations

import os

from ._run import cli


def test_bootstrap_server_is_accepted_and_ignored_with_one_note(tmp_path: os.PathLike[str]) -> None:
    data = os.path.join(os.fspath(tmp_path), "d")
    done = cli(data, "topics", "--create", "--topic", "t", "--bootstrap-server", "localhost:9092")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Created topic t."
    assert done.stderr.count("localhost:9092 ignored") == 1


def test_older_flags_are_accepted_too(tmp_path: os.PathLike[str]) -> None:
    data = os.path.join(os.fspath(tmp_path), "d")
    assert cli(data, "topics", "--create", "--topic", "t").returncode == 0
    for flag, value in (("--zookeeper", "zk:2181"), ("--broker-list", "localhost:9092")):
        done = cli(data, flag, value, "topics", "--list")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["t"]
        assert f"{value} ignored" in done.stderr


def test_a_streamlog_url_names_the_data_directory(tmp_path: os.PathLike[str]) -> None:
    data = os.path.join(os.fspath(tmp_path), "d")
    assert cli(data, "topics", "--create", "--topic", "t").returncode == 0
    done = cli(None, "topics", "--list", "--bootstrap-server", f"streamlog://{data}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["t"]
    assert done.stderr == ""
