"""``streamlog.check(path)``: a read-only report of what recovery would find."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

import streamlog
from streamlog.storage import prepare_batch
from tests._dirsnap import assert_unchanged, snapshot
from tests._helpers import flip, now_ms

SEG0 = "00000000000000000000"


def _kinds(report: streamlog.CheckReport) -> list[tuple[str, str]]:
    return [(p.kind, p.path) for p in report.problems]


def checked(path: str) -> streamlog.CheckReport:
    """Run check and assert it changed nothing, not even a modification time."""
    before = snapshot(path, times=True)
    report = streamlog.check(path)
    assert_unchanged(before, path, times=True)
    return report


@pytest.fixture
def populated(data_dir: str) -> Iterator[str]:
    """A closed data directory: topic a (3 partitions, 2+1+0 batches), topic b (1 partition)."""
    with streamlog.open(data_dir) as log:
        log.create_topic("a", partitions=3)
        log.create_topic("b")
        now = now_ms()
        log.partition("a", 0).append(prepare_batch([b"x"] * 4, timestamps=now))
        log.partition("a", 0).append(prepare_batch([b"y"] * 6, timestamps=now))
        log.partition("a", 1).append(prepare_batch([b"z"], timestamps=now))
        log.partition("b", 0).append(prepare_batch([b"w"] * 2, timestamps=now))
        log.describe_topic("a")  # opens every partition: one segment each
    yield data_dir


def test_fresh_directory_is_ok(data_dir: str) -> None:
    streamlog.open(data_dir).close()
    report = checked(data_dir)
    assert report.ok
    assert report.problems == []
    assert report.path == os.path.abspath(data_dir)
    assert (report.topics, report.partitions, report.segments, report.batches, report.records) == (
        0, 0, 0, 0, 0,
    )
    assert str(report).endswith(": ok")


def test_counts(populated: str) -> None:
    report = checked(populated)
    assert report.ok, str(report)
    assert report.topics == 2
    assert report.partitions == 4
    assert report.segments == 4
    assert report.batches == 4
    assert report.records == 13


def test_check_while_open(populated: str) -> None:
    with streamlog.open(populated) as log:
        log.partition("b", 0).append(prepare_batch([b"more"] * 3, timestamps=now_ms()))
        report = checked(populated)
        assert report.ok, str(report)
        assert report.records == 16


def test_deleted_topic_is_not_counted(populated: str) -> None:
    with streamlog.open(populated) as log:
        log.delete_topic("a")
    report = checked(populated)
    assert report.ok
    assert (report.topics, report.partitions, report.records) == (1, 1, 2)


def test_file_is_not_a_data_directory(tmp_path: os.PathLike[str]) -> None:
    f = os.path.join(os.fspath(tmp_path), "file")
    with open(f, "wb") as fh:
        fh.write(b"hello")
    with pytest.raises(streamlog.DataDirectoryError) as info:
        checked(f)
    assert info.value.path == f
    assert f in str(info.value)


def test_missing_path_is_not_a_data_directory(tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(os.fspath(tmp_path), "nope")
    with pytest.raises(streamlog.DataDirectoryError):
        streamlog.check(missing)
    assert not os.path.exists(missing)


def test_plain_directory_is_not_a_data_directory(tmp_path: os.PathLike[str]) -> None:
    d = os.path.join(os.fspath(tmp_path), "plain")
    os.mkdir(d)
    with pytest.raises(streamlog.DataDirectoryError):
        checked(d)
    assert os.listdir(d) == []


CORRUPT_TOPIC_META = {
    "empty": b"",
    "truncated": b'{"version": 1, "name": "a", "partit',
    "invalid-utf8": b'{"version": 1, "name": "\xff\xfe"}',
    "not-an-object": b"[1, 2, 3]",
    "deeply-nested": b"[" * 100_000,
    "no-fields": b"{}",
    "unknown-version": None,  # built from the real file below
    "other-name": None,
    "partitions-zero": None,
    "partitions-str": None,
    "config-null": None,
    "config-bad-value": None,
    "unknown-state": None,
}


def _mutated(original: bytes, case: str) -> bytes:
    data = json.loads(original)
    if case == "unknown-version":
        data["version"] = 99
    elif case == "other-name":
        data["name"] = "b"
    elif case == "partitions-zero":
        data["partitions"] = 0
    elif case == "partitions-str":
        data["partitions"] = "3"
    elif case == "config-null":
        data["config"] = None
    elif case == "config-bad-value":
        data["config"] = {"retention.ms": "soon"}
    elif case == "unknown-state":
        data["state"] = "zombie"
    else:
        raise AssertionError(case)
    return json.dumps(data).encode()


@pytest.mark.parametrize("case", sorted(CORRUPT_TOPIC_META))
def test_reports_corrupt_topic_metadata(populated: str, case: str) -> None:
    meta = os.path.join(populated, "meta", "topics", "a.json")
    with open(meta, "rb") as f:
        original = f.read()
    content = CORRUPT_TOPIC_META[case]
    if content is None:
        content = _mutated(original, case)
    with open(meta, "wb") as f:
        f.write(content)
    report = checked(populated)
    assert not report.ok
    assert _kinds(report) == [("metadata", meta)], str(report)
    # the healthy topic is still checked
    assert report.topics == 1
    assert report.records == 2
    # check agrees with the handle: the same file is refused there too
    with streamlog.open(populated) as log:
        with pytest.raises(streamlog.MetadataCorruptError) as info:
            log.describe_topic("a")
        assert info.value.path == meta


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\xff\xff", b"[]", b'{"format_version": "1"}', b"{}"],
    ids=["empty", "truncated", "invalid-utf8", "wrong-shape", "version-str", "no-version"],
)
def test_reports_corrupt_format_file(populated: str, content: bytes) -> None:
    fmt = os.path.join(populated, "streamlog.json")
    with open(fmt, "wb") as f:
        f.write(content)
    report = checked(populated)
    assert _kinds(report) == [("format", fmt)]
    assert fmt in report.problems[0].detail


def test_reports_newer_format(populated: str) -> None:
    fmt = os.path.join(populated, "streamlog.json")
    with open(fmt, "w") as f:
        json.dump({"format_version": 2}, f)
    report = checked(populated)
    assert _kinds(report) == [("format", fmt)]
    assert "newer" in report.problems[0].detail


@pytest.mark.parametrize(
    "where",
    [
        "meta/topics/a.json.tmp",
        f"topics/a/0/{SEG0}.log.tmp",
        f"topics/a/0/{SEG0}.index.tmp",
        f"topics/a/0/{SEG0}.log.cleaned",
        f"topics/a/0/{SEG0}.log.swap",
        f"topics/a/0/{SEG0}.log.deleted",
    ],
)
def test_reports_temporary_files(populated: str, where: str) -> None:
    leftover = os.path.join(populated, *where.split("/"))
    with open(leftover, "wb") as f:
        f.write(b"half written")
    report = checked(populated)
    assert _kinds(report) == [("temporary", leftover)]
    assert report.records == 13


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_reports_orphan_index(populated: str, suffix: str) -> None:
    orphan = os.path.join(populated, "topics", "a", "2", "00000000000000000100" + suffix)
    with open(orphan, "wb") as f:
        f.write(bytes(24))
    report = checked(populated)
    assert _kinds(report) == [("orphan", orphan)]


def test_reports_missing_index(populated: str) -> None:
    index = os.path.join(populated, "topics", "a", "1", SEG0 + ".index")
    os.unlink(index)
    report = checked(populated)
    assert _kinds(report) == [("missing-index", index)]


def _three_batches(data_dir: str) -> tuple[str, list[int]]:
    """A partition with three batches; returns its segment and the batches' positions."""
    positions = []
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        p = log.partition("t", 0)
        for i in range(3):
            positions.append(p.size_bytes())
            p.append(prepare_batch([b"value-%d" % i] * 5, timestamps=now_ms()))
    return os.path.join(data_dir, "topics", "t", "0", SEG0 + ".log"), positions


def test_reports_corrupt_batch_and_never_repairs(data_dir: str) -> None:
    seg, positions = _three_batches(data_dir)
    flip(seg, positions[1] + 40)
    report = checked(data_dir)
    assert [(p.kind, p.path, p.position) for p in report.problems] == [
        ("corrupt", seg, positions[1])
    ]
    assert report.batches == 2 and report.records == 10
    assert str(report.problems[0]).startswith(f"corrupt: {seg} at byte {positions[1]}")


def test_reports_torn_tail(data_dir: str) -> None:
    seg, positions = _three_batches(data_dir)
    flip(seg, positions[2] + 40)
    report = checked(data_dir)
    assert [(p.kind, p.path, p.position) for p in report.problems] == [
        ("torn-tail", seg, positions[2])
    ]
    assert report.records == 10


def test_problem_str_and_report_str(populated: str) -> None:
    leftover = os.path.join(populated, "meta", "topics", "x.json.tmp")
    with open(leftover, "wb"):
        pass
    report = checked(populated)
    text = str(report)
    assert "1 problem(s)" in text
    assert f"temporary: {leftover}" in text
