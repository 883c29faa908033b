"""Bad input (reliability plan T17): each case raises its specific exception and changes no file.

"No file changed" is checked with a snapshot of every file's bytes and of the
directory listing, taken of the *parent* of the data directory, so that a
path escaping the data directory (``../x``) would show up too.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamlog
from streamlog import TopicPartition
from streamlog.storage import prepare_batch
from tests._dirsnap import assert_unchanged, snapshot
from tests._helpers import now_ms, numeric_topic_keys

KAFKA_TOPIC_RULE = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def _batch(n: int = 1, size: int = 1) -> Any:
    return prepare_batch([b"x" * size] * n, timestamps=now_ms())


@contextmanager
def unchanged(root: str | os.PathLike[str]) -> Iterator[None]:
    """Assert that the block changes no file under ``root`` (even when it raises)."""
    before = snapshot(root)
    try:
        yield
    finally:
        assert_unchanged(before, root)


def raises_unchanged(
    root: str | os.PathLike[str], exc: type[BaseException], fn: Callable[[], object]
) -> BaseException:
    """``fn()`` raises exactly ``exc`` (or a subclass) and changes no file under ``root``."""
    with unchanged(root), pytest.raises(exc) as info:
        fn()
    return info.value


@pytest.fixture
def root(tmp_path: os.PathLike[str]) -> str:
    """The parent of the data directory: what is snapshotted."""
    return os.fspath(tmp_path)


@pytest.fixture
def log(log: streamlog.Log) -> streamlog.Log:
    """The shared ``log`` (conftest) with topic ``t``: 2 partitions, 3 records in 0."""
    log.create_topic("t", partitions=2)
    log.partition("t", 0).append(_batch(3))
    log.describe_topic("t")  # open every partition, so later calls create nothing
    return log


# ---------------------------------------------------------------- topic names

BAD_NAMES: list[object] = [
    "",
    ".",
    "..",
    "/",
    "a/b",
    "../x",
    "../../x",
    "/abs",
    "/tmp",
    "a\0b",
    "\0",
    "tópico",
    "主题",
    "emoji\U0001f600",
    " ",
    "a b",
    " a",
    "a ",
    "\t",
    "a\n",
    "a\r",
    "x" * 250,
    "y" * 10_000,
    "a\\b",
    "a:b",
    "a*",
    "~",
    "$x",
    "a,b",
    "\u200b",  # zero-width space
    "\uff41",  # fullwidth a
    None,
    1,
    b"bytes",
    ("t",),
]


def _name_id(name: object) -> str:
    return repr(name)[:30]


def _calls_with(log: streamlog.Log, name: Any) -> list[Callable[[], object]]:
    return [
        lambda: log.create_topic(name),
        lambda: log.create_topic(name, partitions=3, config={"retention.ms": 1}),
        lambda: log.delete_topic(name),
        lambda: log.describe_topic(name),
        lambda: log.create_partitions(name, 5),
        lambda: log.alter_topic_config(name, {"retention.ms": 1}),
        lambda: log.partitions_for(name),
        lambda: log.partition(name, 0),
        lambda: log.delete_records({TopicPartition(name, 0): 0}),
    ]


@pytest.mark.parametrize("name", BAD_NAMES, ids=_name_id)
def test_invalid_topic_name(log: streamlog.Log, root: str, name: object) -> None:
    for call in _calls_with(log, name):
        err = raises_unchanged(root, streamlog.InvalidTopicError, call)
        assert isinstance(err, ValueError)
        assert "invalid topic name" in str(err)
    assert log.topics() == ["t"]


def test_name_length_boundary(log: streamlog.Log, root: str) -> None:
    raises_unchanged(root, streamlog.InvalidTopicError, lambda: log.create_topic("z" * 250))
    log.create_topic("z" * 249)
    assert log.topics() == ["t", "z" * 249]


@pytest.mark.parametrize("name", ["...", ".a", "a.", "-", "_", "__consumer_offsets", "A-b_c.9"])
def test_unusual_but_legal_names(log: streamlog.Log, name: str) -> None:
    log.create_topic(name)
    assert name in log.topics()
    assert log.describe_topic(name).partitions[0].end_offset == 0
    log.delete_topic(name)
    assert log.topics() == ["t"]


_FUZZ_DIR = tempfile.mkdtemp(prefix="streamlog-names-")
atexit.register(shutil.rmtree, _FUZZ_DIR, True)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    name=st.one_of(
        st.text(),
        st.text(alphabet="aZ09._-", min_size=1, max_size=260),
        st.text(alphabet="aZ09._-/ \0é\n", max_size=20),
        st.sampled_from([".", "..", "...", "x" * 249, "x" * 250]),
    )
)
def test_fuzzed_topic_names(name: str) -> None:
    parent = _FUZZ_DIR
    data = os.path.join(parent, "data")
    with streamlog.open(data) as log:
        valid = KAFKA_TOPIC_RULE.fullmatch(name) is not None and name not in (".", "..")
        if valid:
            log.create_topic(name, partitions=2)
            assert log.topics() == [name]
            assert [p.end_offset for p in log.describe_topic(name).partitions] == [0, 0]
            assert os.path.isdir(os.path.join(data, "topics", name, "1"))
            log.delete_topic(name)
            assert log.topics() == []
        else:
            with unchanged(parent), pytest.raises(streamlog.InvalidTopicError):
                log.create_topic(name, partitions=2)
            assert log.topics() == []
            assert os.listdir(os.path.join(data, "topics")) == []
            assert os.listdir(os.path.join(data, "meta", "topics")) == []


def test_planted_symlink_for_topic_directory(data_dir: str, root: str) -> None:
    outside = os.path.join(root, "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "precious"), "wb") as f:
        f.write(b"keep me")
    with streamlog.open(data_dir) as log:
        os.symlink(outside, os.path.join(data_dir, "topics", "evil"))
        with unchanged(outside):
            log.create_topic("evil", partitions=2)
            log.partition("evil", 1).append(_batch(2))
            assert log.describe_topic("evil").partitions[1].end_offset == 2
            assert not os.path.islink(os.path.join(data_dir, "topics", "evil"))
            log.delete_topic("evil")


def test_planted_symlink_for_metadata(log: streamlog.Log, root: str) -> None:
    outside = os.path.join(root, "outside")
    os.mkdir(outside)
    target = os.path.join(outside, "precious")
    with open(target, "wb") as f:
        f.write(b"keep me")
    os.symlink(target, os.path.join(log.path, "meta", "topics", "evil.json"))
    os.symlink(target, os.path.join(log.path, "meta", "topics", "evil2.json.tmp"))
    with unchanged(outside):
        for call in (
            lambda: log.describe_topic("evil"),
            lambda: log.create_topic("evil"),
            lambda: log.delete_topic("evil"),
        ):
            with pytest.raises(streamlog.StorageError):
                call()
        # the metadata is written through a temporary file: never through a symlink
        with pytest.raises(streamlog.StorageIOError):
            log.create_topic("evil2")
    with open(target, "rb") as f:
        assert f.read() == b"keep me"
    os.unlink(os.path.join(log.path, "meta", "topics", "evil.json"))
    assert log.topics() == ["t"]


# ---------------------------------------------------------------- partitions


@pytest.mark.parametrize("count", [0, -1, -100, 100_001])
def test_partition_count_out_of_range(log: streamlog.Log, root: str, count: int) -> None:
    err = raises_unchanged(root, streamlog.ConfigError, lambda: log.create_topic("new", count))
    assert str(count) in str(err)
    assert log.topics() == ["t"]


@pytest.mark.parametrize("count", [1.5, 2.0, "2", None, True, False, [2]])
def test_partition_count_type(log: streamlog.Log, root: str, count: object) -> None:
    raises_unchanged(root, streamlog.ConfigError, lambda: log.create_topic("new", count))  # type: ignore[arg-type]
    assert log.topics() == ["t"]


@pytest.mark.parametrize(
    ("partition", "exc"),
    [
        (-1, ValueError),
        (2, streamlog.UnknownPartitionError),
        (1000, streamlog.UnknownPartitionError),
        (1.5, TypeError),
        (1.0, TypeError),
        ("0", TypeError),
        (None, TypeError),
        (True, TypeError),
        (False, TypeError),
    ],
)
def test_bad_partition_number(
    log: streamlog.Log, root: str, partition: object, exc: type[Exception]
) -> None:
    raises_unchanged(root, exc, lambda: log.partition("t", partition))  # type: ignore[arg-type]
    raises_unchanged(
        root, exc, lambda: log.delete_records({TopicPartition("t", partition): 0})  # type: ignore[arg-type]
    )


def test_unknown_partition_names_topic(log: streamlog.Log) -> None:
    with pytest.raises(streamlog.UnknownPartitionError, match="'t' has 2 partitions"):
        log.partition("t", 2)


@pytest.mark.parametrize("offset", [-1, 4, 10**9])
def test_delete_records_out_of_range(log: streamlog.Log, root: str, offset: int) -> None:
    err = raises_unchanged(
        root, streamlog.OffsetOutOfRangeError,
        lambda: log.delete_records({TopicPartition("t", 0): offset}),
    )
    assert isinstance(err, streamlog.OffsetOutOfRangeError)
    assert (err.offset, err.log_start_offset, err.end_offset) == (offset, 0, 3)
    assert log.describe_topic("t").partitions[0].log_start_offset == 0


# ---------------------------------------------------------------- config

BAD_CONFIGS: list[tuple[str, object]] = [
    ("unknown-key", {"retention.msx": 1}),
    ("kafka-key-not-supported", {"compression.type": "zstd"}),
    ("non-str-key", {1: 2}),
    ("bool", {"retention.ms": True}),
    ("bool-false", {"segment.bytes": False}),
    ("float", {"retention.ms": 1000.0}),
    ("float-frac", {"retention.ms": 1.5}),
    ("list", {"retention.ms": [1000]}),
    ("dict", {"retention.ms": {"v": 1}}),
    ("none", {"retention.ms": None}),
    ("bytes", {"retention.ms": b"1000"}),
    ("word", {"retention.ms": "ten"}),
    ("empty-str", {"retention.ms": ""}),
    ("float-str", {"retention.ms": "1.5"}),
    ("exp-str", {"retention.ms": "1e3"}),
    ("hex-str", {"retention.ms": "0x10"}),
    ("underscore-str", {"retention.ms": "1_000"}),
    ("plus-str", {"retention.ms": "+5"}),
    ("double-minus", {"retention.ms": "--5"}),
    ("minus-only", {"retention.ms": "-"}),
    ("non-ascii-digits", {"retention.ms": "١٢٣"}),
    ("superscript", {"retention.ms": "²"}),
    ("below-min", {"segment.bytes": 1}),
    ("below-min-str", {"segment.bytes": "1"}),
    ("above-max", {"segment.bytes": 2**40}),
    ("retention-below-minus-one", {"retention.ms": -2}),
    ("max-message-too-small", {"max.message.bytes": 0}),
    ("policy-unknown", {"cleanup.policy": "compacted"}),
    ("policy-unknown-item", {"cleanup.policy": "compact,archive"}),
    ("dirty-ratio-range", {"min.cleanable.dirty.ratio": 1.5}),
    ("dirty-ratio-type", {"min.cleanable.dirty.ratio": [0.5]}),
    ("compaction-lags-crossed", {"min.compaction.lag.ms": 2, "max.compaction.lag.ms": 1}),
    ("policy-unknown", {"cleanup.policy": "forever"}),
    ("policy-not-str", {"cleanup.policy": 1}),
    ("timestamp-type", {"message.timestamp.type": "createtime"}),
    ("not-a-dict-list", [("retention.ms", 1000)]),
    ("not-a-dict-str", "retention.ms=1000"),
    ("one-good-one-bad", {"retention.ms": 1000, "segment.bytes": "big"}),
]


@pytest.mark.parametrize("config", [c for _, c in BAD_CONFIGS], ids=[i for i, _ in BAD_CONFIGS])
def test_bad_config_on_create(log: streamlog.Log, root: str, config: Any) -> None:
    err = raises_unchanged(root, streamlog.ConfigError, lambda: log.create_topic("new", 1, config))
    assert isinstance(err, ValueError)
    assert log.topics() == ["t"]


@pytest.mark.parametrize("config", [c for _, c in BAD_CONFIGS], ids=[i for i, _ in BAD_CONFIGS])
def test_bad_config_on_alter(log: streamlog.Log, root: str, config: Any) -> None:
    before = log.describe_topic("t").config
    raises_unchanged(root, streamlog.ConfigError, lambda: log.alter_topic_config("t", config))
    assert log.describe_topic("t").config == before


def test_alter_none_is_config_error(log: streamlog.Log, root: str) -> None:
    raises_unchanged(root, streamlog.ConfigError, lambda: log.alter_topic_config("t", None))  # type: ignore[arg-type]


def test_config_error_names_the_key(log: streamlog.Log) -> None:
    with pytest.raises(streamlog.ConfigError, match=r"retention\.msx"):
        log.create_topic("new", config={"retention.msx": 1})
    with pytest.raises(streamlog.ConfigError, match=r"segment\.bytes"):
        log.create_topic("new", config={"segment.bytes": 1.5})
    with pytest.raises(streamlog.ConfigError, match=r"cleanup\.policy"):
        log.create_topic("new", config={"cleanup.policy": "compacted"})


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"retention.ms": "1000"}, 1000),
        ({"retention.ms": " 1000 "}, 1000),
        ({"retention.ms": "-1"}, -1),
        ({"retention.ms": "-0"}, 0),
        ({"retention.ms": "007"}, 7),
        ({"retention.ms": 1000}, 1000),
    ],
)
def test_numeric_strings_accepted(
    log: streamlog.Log, config: dict[str, object], expected: int
) -> None:
    log.create_topic("new", config=config)
    assert log.describe_topic("new").config["retention.ms"] == expected


# ---------------------------------------------------------------- record size


def test_batch_over_max_message_bytes(log: streamlog.Log, root: str) -> None:
    batch = _batch(1, size=300)
    log.alter_topic_config("t", {"max.message.bytes": batch.size})
    plog = log.partition("t", 1)
    plog.append(batch)  # exactly the limit: accepted
    assert log.describe_topic("t").partitions[1].end_offset == 1
    log.alter_topic_config("t", {"max.message.bytes": batch.size - 1})
    err = raises_unchanged(root, streamlog.RecordTooLargeError, lambda: plog.append(batch))
    assert isinstance(err, ValueError)
    assert str(batch.size) in str(err)
    # several batches at once: one too large means none is written
    small = _batch(1, size=1)
    raises_unchanged(
        root, streamlog.RecordTooLargeError, lambda: plog.append_many([small, batch, small])
    )
    assert log.describe_topic("t").partitions[1].end_offset == 1
    plog.append(small)
    assert log.describe_topic("t").partitions[1].end_offset == 2


def test_batch_over_default_max_message_bytes(log: streamlog.Log, root: str) -> None:
    big = prepare_batch([os.urandom(1_100_000)], timestamps=now_ms())
    plog = log.partition("t", 0)
    raises_unchanged(root, streamlog.RecordTooLargeError, lambda: plog.append(big))
    assert log.describe_topic("t").partitions[0].end_offset == 3


# ---------------------------------------------------------------- data directory


def test_data_directory_is_a_file(root: str) -> None:
    path = os.path.join(root, "data")
    with open(path, "wb") as f:
        f.write(b"not a directory")
    err = raises_unchanged(root, streamlog.DataDirectoryError, lambda: streamlog.open(path))
    assert isinstance(err, streamlog.DataDirectoryError)
    assert err.path == path
    assert path in str(err)


def test_data_directory_below_a_file(root: str) -> None:
    parent = os.path.join(root, "file")
    with open(parent, "wb") as f:
        f.write(b"x")
    raises_unchanged(
        root, streamlog.DataDirectoryError, lambda: streamlog.open(os.path.join(parent, "data"))
    )


def test_data_directory_is_a_symlink_to_a_file(root: str) -> None:
    target = os.path.join(root, "file")
    with open(target, "wb") as f:
        f.write(b"x")
    os.symlink(target, os.path.join(root, "data"))
    raises_unchanged(
        root, streamlog.DataDirectoryError, lambda: streamlog.open(os.path.join(root, "data"))
    )


@pytest.mark.parametrize("option", [{"lock_timeout": 5}, {"lock_timeout_ms": "5"},
                                    {"lock_timeout_ms": -1}, {"lock_timeout_ms": True}])
def test_bad_open_option_creates_nothing(root: str, option: dict[str, object]) -> None:
    path = os.path.join(root, "data")
    raises_unchanged(root, streamlog.ConfigError, lambda: streamlog.open(path, **option))
    assert not os.path.exists(path)


def test_data_directory_not_writable_access(
    data_dir: str, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamlog.open(data_dir).close()
    real_access = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        if mode & os.W_OK and os.path.abspath(os.fspath(path)).startswith(data_dir):
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    err = raises_unchanged(root, streamlog.DataDirectoryError, lambda: streamlog.open(data_dir))
    assert "not writable" in str(err)


@contextmanager
def read_only_bind(source: str) -> Iterator[str]:
    """``source`` mounted read-only at a new path; skips the test if mounting is impossible."""
    target = tempfile.mkdtemp(prefix="streamlog-ro-")
    try:
        mounted = subprocess.run(["mount", "--bind", source, target], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot bind-mount: {mounted.stderr.decode().strip()}")
        try:
            remount = subprocess.run(
                ["mount", "-o", "remount,ro,bind", target], capture_output=True
            )
            probe = os.path.join(target, ".probe")
            try:
                open(probe, "wb").close()
            except OSError:
                pass
            else:
                os.unlink(probe)
                pytest.skip(f"read-only remount failed: {remount.stderr.decode().strip()}")
            yield target
        finally:
            subprocess.run(["umount", target], check=True)
    finally:
        os.rmdir(target)


def test_data_directory_read_only_mount(data_dir: str, root: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        log.partition("t", 0).append(_batch(5))
    with read_only_bind(root) as ro:
        path = os.path.join(ro, "data")
        err = raises_unchanged(root, streamlog.DataDirectoryError, lambda: streamlog.open(path))
        assert err.path == path  # type: ignore[attr-defined]
        # a new data directory below a read-only directory
        raises_unchanged(
            root, streamlog.DataDirectoryError, lambda: streamlog.open(os.path.join(ro, "new"))
        )
        # check still works on a read-only directory (it writes nothing)
        report = streamlog.check(path)
        assert report.ok and report.records == 5


# ---------------------------------------------------------------- corrupt metadata

CORRUPT_TOPIC = {
    "empty": b"",
    "truncated": b'{"version": 1, "name": "t", "id": "ab',
    "invalid-utf8": b'{"version": 1, "name": "\xc3\x28"}',
    "binary": bytes(range(256)),
    "nul-bytes": bytes(100),
    "deeply-nested": b"[" * 50_000 + b"]" * 50_000,
    "array": b"[]",
    "string": b'"t"',
    "number": b"1",
    "null": b"null",
    "empty-object": b"{}",
}
CORRUPT_TOPIC_FIELDS: dict[str, dict[str, object]] = {
    "unknown-version": {"version": 2},
    "version-zero": {"version": 0},
    "version-str": {"version": "1"},
    "no-version": {"version": None},
    "other-name": {"name": "u"},
    "partitions-zero": {"partitions": 0},
    "partitions-float": {"partitions": 2.0},
    "partitions-bool": {"partitions": True},
    "config-list": {"config": []},
    "config-bad": {"config": {"retention.ms": "soon"}},
    "config-unknown": {"config": {"nope": 1}},
    "id-missing": {"id": None},
    "state-unknown": {"state": "zombie"},
}


def _corrupt_topic_meta(data_dir: str, case: str) -> str:
    path = os.path.join(data_dir, "meta", "topics", "t.json")
    if case in CORRUPT_TOPIC:
        content = CORRUPT_TOPIC[case]
    else:
        with open(path, "rb") as f:
            data = json.load(f)
        for key, value in CORRUPT_TOPIC_FIELDS[case].items():
            if value is None:
                del data[key]
            else:
                data[key] = value
        content = json.dumps(data).encode()
    with open(path, "wb") as f:
        f.write(content)
    return path


ALL_TOPIC_CASES = sorted([*CORRUPT_TOPIC, *CORRUPT_TOPIC_FIELDS])


@pytest.mark.parametrize("case", ALL_TOPIC_CASES)
def test_corrupt_topic_metadata(log: streamlog.Log, root: str, case: str) -> None:
    log.create_topic("other")
    path = _corrupt_topic_meta(log.path, case)
    for call in (
        log.topics,
        lambda: log.describe_topic("t"),
        lambda: log.partitions_for("t"),
        lambda: log.partition("t", 0),
        lambda: log.create_topic("t"),  # never overwrites it
        lambda: log.create_partitions("t", 4),
        lambda: log.alter_topic_config("t", {"retention.ms": 5}),
        log.enforce_retention,
    ):
        err = raises_unchanged(root, streamlog.MetadataCorruptError, call)
        assert isinstance(err, streamlog.MetadataCorruptError)
        assert err.path == path
        assert path in str(err)
    # other topics stay usable
    assert log.describe_topic("other").partitions[0].end_offset == 0
    log.partition("other", 0).append(_batch())
    # and the damaged one can be deleted on purpose (issue 11: damage must not make a
    # topic impossible to remove; it is never removed by anything else)
    log.delete_topic("t")
    assert log.topics() == ["other"]


@pytest.mark.parametrize("case", ["empty", "truncated", "unknown-version", "other-name"])
def test_corrupt_topic_metadata_in_other_handle(data_dir: str, root: str, case: str) -> None:
    with streamlog.open(data_dir) as a, streamlog.open(data_dir) as b:
        a.create_topic("t")
        assert b.describe_topic("t").partitions[0].end_offset == 0  # b caches the metadata
        path = _corrupt_topic_meta(data_dir, case)
        err = raises_unchanged(root, streamlog.MetadataCorruptError, lambda: b.describe_topic("t"))
        assert err.path == path  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["empty", "truncated", "invalid-utf8", "other-name"])
def test_corrupt_topic_metadata_during_recovery(data_dir: str, root: str, case: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        log.partition("t", 0).append(_batch(2))
    os.unlink(os.path.join(data_dir, "meta", "clean-shutdown"))  # as after a crash
    path = os.path.join(data_dir, "meta", "topics", "t.json")
    with open(path, "rb") as f:
        original = f.read()
    _corrupt_topic_meta(data_dir, case)
    err = raises_unchanged(root, streamlog.MetadataCorruptError, lambda: streamlog.open(data_dir))
    assert err.path == path  # type: ignore[attr-defined]
    # the failed open did not mark the directory clean: once the operator restores
    # the file, the next open still recovers
    with open(path, "wb") as f:
        f.write(original)
    with streamlog.open(data_dir) as log:
        assert [r.path for r in log.recovery] == [os.path.join(data_dir, "topics", "t", "0")]
        assert log.describe_topic("t").partitions[0].end_offset == 2


CORRUPT_FORMAT = {
    "empty": b"",
    "truncated": b'{"format_version": 1, "crea',
    "invalid-utf8": b'{"format_version": 1, "x": "\xff"}',
    "deeply-nested": b'{"a":' * 50_000,
    "array": b"[1]",
    "null": b"null",
    "no-version": b'{"created_ms": 1}',
    "version-str": b'{"format_version": "1"}',
    "version-float": b'{"format_version": 1.0}',
    "version-bool": b'{"format_version": true}',
    "version-null": b'{"format_version": null}',
    "version-zero": b'{"format_version": 0}',
    "version-negative": b'{"format_version": -3}',
    "too-large": b'{"format_version": 1, "pad": "' + b"x" * (2 << 20) + b'"}',
}


@pytest.mark.parametrize("case", sorted(CORRUPT_FORMAT))
def test_corrupt_format_file(data_dir: str, root: str, case: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
    path = os.path.join(data_dir, "streamlog.json")
    with open(path, "wb") as f:
        f.write(CORRUPT_FORMAT[case])
    err = raises_unchanged(root, streamlog.MetadataCorruptError, lambda: streamlog.open(data_dir))
    assert err.path == path  # type: ignore[attr-defined]
    assert path in str(err)


@pytest.mark.parametrize("version", [2, 10, 2**70])
def test_newer_format_version(data_dir: str, root: str, version: int) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        log.partition("t", 0).append(_batch(4))
    path = os.path.join(data_dir, "streamlog.json")
    with open(path, "w") as f:
        json.dump({"format_version": version, "created_ms": 1}, f)
    err = raises_unchanged(root, streamlog.UnsupportedFormatError, lambda: streamlog.open(data_dir))
    assert err.path == path  # type: ignore[attr-defined]
    assert "newer" in str(err) and path in str(err)


def test_newer_format_without_clean_shutdown(data_dir: str, root: str) -> None:
    """Recovery of a directory this version cannot read must not even start."""
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        log.partition("t", 0).append(_batch(4))
    os.unlink(os.path.join(data_dir, "meta", "clean-shutdown"))
    with open(os.path.join(data_dir, "streamlog.json"), "w") as f:
        json.dump({"format_version": 2}, f)
    raises_unchanged(root, streamlog.UnsupportedFormatError, lambda: streamlog.open(data_dir))


# ---------------------------------------------------------------- use after close


def _log_calls(log: streamlog.Log) -> dict[str, tuple[str, Callable[[], object]]]:
    """case id -> (the Log method it calls, the call)."""
    tp = TopicPartition("t", 0)
    return {
        "create_topic": ("create_topic", lambda: log.create_topic("new")),
        "create_topic_invalid": ("create_topic", lambda: log.create_topic("")),
        "delete_topic": ("delete_topic", lambda: log.delete_topic("t")),
        "delete_topic_unknown": ("delete_topic", lambda: log.delete_topic("nope")),
        "topics": ("topics", lambda: log.topics()),
        "describe_topic": ("describe_topic", lambda: log.describe_topic("t")),
        "create_partitions": ("create_partitions", lambda: log.create_partitions("t", 5)),
        "alter_topic_config": (
            "alter_topic_config", lambda: log.alter_topic_config("t", {"retention.ms": 1})
        ),
        "alter_topic_config_bad": (
            "alter_topic_config", lambda: log.alter_topic_config("t", {"nope": 1})
        ),
        "partitions_for": ("partitions_for", lambda: log.partitions_for("t")),
        "partition": ("partition", lambda: log.partition("t", 0)),
        "delete_records": ("delete_records", lambda: log.delete_records({tp: 1})),
        "delete_records_empty": ("delete_records", lambda: log.delete_records({})),
        "enforce_retention": ("enforce_retention", lambda: log.enforce_retention()),
        "compact": ("compact", lambda: log.compact("t")),
        "producer": ("producer", lambda: log.producer()),
        "consumer": ("consumer", lambda: log.consumer("t")),
        "table": ("table", lambda: log.table("t")),
        "event_store": ("event_store", lambda: log.event_store("t")),
        "list_groups": ("list_groups", lambda: log.list_groups()),
        "describe_group": ("describe_group", lambda: log.describe_group("g")),
        "reset_offsets": ("reset_offsets", lambda: log.reset_offsets("g", "t", to="earliest")),
        "delete_group": ("delete_group", lambda: log.delete_group("g")),
        "list_transactions": ("list_transactions", lambda: log.list_transactions()),
        "describe_transaction": (
            "describe_transaction", lambda: log.describe_transaction("x")
        ),
        "abort_transaction": ("abort_transaction", lambda: log.abort_transaction("x")),
        "describe_producers": ("describe_producers", lambda: log.describe_producers("t", 0)),
    }


_CLOSED_CASES = _log_calls(None)  # type: ignore[arg-type]


def test_every_log_method_is_covered_by_the_closed_test() -> None:
    public = {
        n for n in dir(streamlog.Log)
        if not n.startswith("_") and callable(getattr(streamlog.Log, n))
    }
    covered = {method for method, _ in _CLOSED_CASES.values()}
    assert public - {"close"} == covered


@pytest.mark.parametrize("case", sorted(_CLOSED_CASES))
def test_use_after_close(data_dir: str, root: str, case: str) -> None:
    log = streamlog.open(data_dir)
    log.create_topic("t")
    log.partition("t", 0).append(_batch(3))
    log.close()
    err = raises_unchanged(root, streamlog.ClosedError, _log_calls(log)[case][1])
    assert "closed" in str(err)
    log.close()  # still idempotent
    assert log.path == os.path.abspath(data_dir)
    assert "closed" in repr(log)


def test_partition_log_after_close(data_dir: str, root: str) -> None:
    log = streamlog.open(data_dir)
    log.create_topic("t")
    plog = log.partition("t", 0)
    plog.append(_batch(3))
    log.close()
    for call in (lambda: plog.append(_batch()), lambda: plog.end_offset, lambda: plog.read(0)):
        raises_unchanged(root, streamlog.ClosedError, call)


# ---------------------------------------------------------------- argument values
# Found by outside adversarial testing: values of the right type but out of any
# usable range (huge ints, NaN, inf, digit strings past Python's conversion limit),
# which used to pass the checks and fail later, somewhere else, or never return.

HUGE_INTS = [2**31, 2**63, 2**64, 10**20]


def _vid(value: object) -> str:
    """A short test id for a (maybe huge) value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"{'-' if value < 0 else ''}int{value.bit_length()}bits"
    text = repr(value)
    return text if len(text) <= 12 else f"{text[:6]}..x{len(text)}"


@pytest.mark.parametrize("value", HUGE_INTS, ids=_vid)
@pytest.mark.parametrize("key", ["linger_ms", "max_block_ms", "batch_size", "max_request_size"])
def test_producer_settings_out_of_range_refused_at_construction(
    log: streamlog.Log, root: str, key: str, value: int
) -> None:
    """``linger_ms=10**20`` was accepted, and the sender thread died of OverflowError at
    its first wait: every later record silently never completed."""
    err = raises_unchanged(root, streamlog.ConfigError, lambda: log.producer(**{key: value}))
    assert key in str(err) and str(2**31 - 1) in str(err)


def test_producer_longest_durations_still_work(log: streamlog.Log) -> None:
    with log.producer(linger_ms=2**31 - 1, max_block_ms=2**31 - 1, buffer_memory=2**63 - 1) as p:
        fut = p.send("t", b"v", partition=1)
        p.flush(timeout_ms=10_000)  # a flush ends the linger
        assert fut.result(timeout=10).offset == 0


@pytest.mark.parametrize("value", [*HUGE_INTS, 0, -1, 1.5, float("nan"), True, "5"], ids=_vid)
@pytest.mark.parametrize(
    "key",
    [
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
        "auto_commit_interval_ms",
        "metadata_max_age_ms",
        "max_poll_records",
        "max_partition_fetch_bytes",
        "fetch_max_bytes",
    ],
)
def test_consumer_settings_out_of_range_refused_at_construction(
    log: streamlog.Log, root: str, key: str, value: object
) -> None:
    config: dict[str, object] = {"group_id": "g", key: value}
    if key == "heartbeat_interval_ms" and value in HUGE_INTS:
        config["session_timeout_ms"] = 2**31 - 1  # the range, not the order, is refused
    err = raises_unchanged(root, streamlog.ConfigError, lambda: log.consumer(**config))
    assert key in str(err)


def _sender_died(producer: streamlog.Producer, fut: Any) -> BaseException:
    err = fut.exception(timeout=10)
    assert isinstance(err, streamlog.IllegalStateError), err
    assert isinstance(err.__cause__, RuntimeError) and "boom" in str(err)
    return err


def test_sender_death_fails_pending_and_later_sends(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender thread dying of anything (here: its write raising a non-streamlog
    error) fails every pending record and every later send, loudly; flush and close
    return."""
    producer = log.producer(linger_ms=60_000)
    early = producer.send("t", b"kept", partition=1)
    producer.flush(timeout_ms=10_000)
    assert early.result(timeout=10).offset == 0

    def boom(batches: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(producer, "_write", boom)
    pending = [producer.send("t", b"lost", partition=p) for p in (0, 1, 1)]
    producer.flush(timeout_ms=10_000)  # returns: every future is done (failed)
    for fut in pending:
        _sender_died(producer, fut)
    with pytest.raises(streamlog.IllegalStateError, match="boom") as info:
        producer.send("t", b"later", partition=0)
    assert isinstance(info.value.__cause__, RuntimeError)
    producer.flush()  # no limit, and nothing left: returns at once
    producer.close(timeout_ms=10_000)
    with pytest.raises(streamlog.ClosedError):
        producer.send("t", b"after close")
    assert [p.end_offset for p in log.describe_topic("t").partitions] == [3, 1]


def test_sender_death_fails_queued_records_without_a_flush(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Death between writes (records still lingering in open batches): they fail at
    once, not at the next flush."""
    producer = log.producer(linger_ms=60_000)

    def boom() -> float | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(producer, "_next_deadline", boom)
    fut = producer.send("t", b"lingering", partition=1)  # wakes the sender: it dies
    _sender_died(producer, fut)
    with pytest.raises(streamlog.IllegalStateError, match="boom"):
        producer.send("t", b"later", partition=1)
    producer.close()
    assert log.describe_topic("t").partitions[1].end_offset == 0


def test_sender_death_wakes_a_send_blocked_on_buffer_memory(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (linger_ms=1: the record goes through the sender thread, not an inline append)
    producer = log.producer(buffer_memory=1000, max_block_ms=60_000, linger_ms=1)
    writing = threading.Event()
    release = threading.Event()

    def stuck(batches: object) -> None:
        writing.set()
        release.wait(10)
        raise RuntimeError("boom")

    monkeypatch.setattr(producer, "_write", stuck)
    first = producer.send("t", b"x" * 900, partition=1)
    assert writing.wait(10)
    outcome: list[object] = []

    def blocked_send() -> None:
        try:
            outcome.append(producer.send("t", b"y" * 900, partition=1))
        except BaseException as e:
            outcome.append(e)

    sender = threading.Thread(target=blocked_send)
    sender.start()
    time.sleep(0.05)  # the second send waits for buffer space
    assert not outcome
    release.set()
    sender.join(10)
    assert not sender.is_alive()
    assert isinstance(outcome[0], streamlog.IllegalStateError), outcome
    _sender_died(producer, first)
    producer.close(timeout_ms=10_000)


@pytest.mark.parametrize("ts", [2**63, 2**64, 10**20, 10**5000], ids=_vid)
def test_send_timestamp_beyond_int64_refused_at_the_call(
    log: streamlog.Log, root: str, ts: int
) -> None:
    """``timestamp_ms=2**63`` was accepted; its batch then failed to encode (struct.error),
    taking a valid record of the same batch with it."""
    with log.producer(linger_ms=60_000) as producer:
        before = producer.send("t", b"a", partition=1, timestamp_ms=2**63 - 1)
        err = raises_unchanged(
            root,
            ValueError,
            lambda: producer.send("t", b"b", partition=1, timestamp_ms=ts),
        )
        assert "timestamp_ms" in str(err) and str(2**63 - 1) in str(err)
        after = producer.send("t", b"c", partition=1, timestamp_ms=5)
        producer.flush(timeout_ms=10_000)
        assert (before.result(10).offset, after.result(10).offset) == (0, 1)
    consumer = log.consumer(auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition("t", 1)])
        records = consumer.poll(timeout_ms=5000)[TopicPartition("t", 1)]
        assert [(r.value, r.timestamp) for r in records] == [(b"a", 2**63 - 1), (b"c", 5)]
    finally:
        consumer.close()


INFINITE_TIMEOUTS: list[object] = [float("inf"), 2**63, 2**64, 10**20, 10**400]
BAD_TIMEOUTS: list[tuple[object, type[Exception]]] = [
    (float("nan"), ValueError),
    (-1, ValueError),
    (-0.5, ValueError),
    (float("-inf"), ValueError),
    (-(10**400), ValueError),
    (True, TypeError),
    (False, TypeError),
    ("10", TypeError),
    (("t", 0), TypeError),
]


@pytest.mark.parametrize("timeout", INFINITE_TIMEOUTS, ids=_vid)
def test_producer_huge_timeouts_mean_no_limit(log: streamlog.Log, timeout: Any) -> None:
    """``flush(timeout_ms=huge)`` and ``close(timeout_ms=huge or inf)`` raised OverflowError
    (thread waits stop at threading.TIMEOUT_MAX); they wait without a limit now."""
    producer = log.producer(linger_ms=60_000)
    fut = producer.send("t", b"v", partition=1)
    producer.flush(timeout_ms=timeout)
    assert fut.result(timeout=timeout).offset == 0
    assert fut.exception(timeout=timeout) is None
    producer.send("t", b"w", partition=1)
    producer.close(timeout_ms=timeout)
    assert log.describe_topic("t").partitions[1].end_offset == 2


@pytest.mark.parametrize(("timeout", "exc"), BAD_TIMEOUTS, ids=_vid)
def test_producer_bad_timeouts_refused_before_anything_changes(
    log: streamlog.Log, root: str, timeout: Any, exc: type[Exception]
) -> None:
    producer = log.producer(linger_ms=60_000)
    fut = producer.send("t", b"v", partition=1)
    raises_unchanged(root, exc, lambda: producer.flush(timeout_ms=timeout))
    raises_unchanged(root, exc, lambda: producer.close(timeout_ms=timeout))
    raises_unchanged(root, exc, lambda: fut.result(timeout=timeout))
    raises_unchanged(root, exc, lambda: fut.exception(timeout=timeout))
    # the refused close left the producer open and working
    producer.send("t", b"w", partition=1)
    producer.close(timeout_ms=10_000)
    assert fut.result(timeout=0).offset == 0
    assert log.describe_topic("t").partitions[1].end_offset == 2


@pytest.mark.parametrize(("timeout", "exc"), BAD_TIMEOUTS, ids=_vid)
def test_poll_bad_timeouts_refused(
    log: streamlog.Log, root: str, timeout: Any, exc: type[Exception]
) -> None:
    """``poll(timeout_ms=float("nan"))`` never returned."""
    consumer = log.consumer(auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition("t", 0)])
        t0 = time.monotonic()
        raises_unchanged(root, exc, lambda: consumer.poll(timeout_ms=timeout))
        assert time.monotonic() - t0 < 5
        assert consumer.position(TopicPartition("t", 0)) == 0  # nothing was read
    finally:
        consumer.close()


@pytest.mark.parametrize("value", [float("nan"), -1, float("-inf"), True, "5"], ids=repr)
def test_consumer_timeout_ms_nan_refused(log: streamlog.Log, root: str, value: object) -> None:
    err = raises_unchanged(
        root, streamlog.ConfigError, lambda: log.consumer(consumer_timeout_ms=value)
    )
    assert "consumer_timeout_ms" in str(err)


@pytest.mark.parametrize("timeout", INFINITE_TIMEOUTS, ids=_vid)
def test_poll_without_limit_returns_records_and_stops_at_close(
    log: streamlog.Log, timeout: Any
) -> None:
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([TopicPartition("t", 1)])
    got: list[object] = []

    def poll() -> None:
        try:
            got.append(consumer.poll(timeout_ms=timeout))
            got.append(consumer.poll(timeout_ms=timeout))  # returns {} at close
        except BaseException as e:
            got.append(e)

    reader = threading.Thread(target=poll)
    reader.start()
    time.sleep(0.05)
    with log.producer() as producer:
        producer.send("t", b"v", partition=1)
    deadline = time.monotonic() + 10
    while len(got) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    consumer.close()
    reader.join(10)
    assert not reader.is_alive()
    assert [r.value for r in got[0][TopicPartition("t", 1)]] == [b"v"]  # type: ignore[index]
    assert got[1] == {}


@pytest.mark.parametrize("timeout", [float("inf"), 10**20, None], ids=repr)
def test_iterator_without_timeout_stops_at_close(log: streamlog.Log, timeout: Any) -> None:
    consumer = log.consumer(auto_offset_reset="earliest", consumer_timeout_ms=timeout)
    consumer.assign([TopicPartition("t", 0)])
    seen: list[bytes] = []

    def read() -> None:
        for record in consumer:
            assert record.value is not None
            seen.append(record.value)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    consumer.close()
    reader.join(10)
    assert not reader.is_alive()
    assert seen == [b"x"] * 3


def test_plain_tuples_are_topic_partitions_everywhere(log: streamlog.Log) -> None:
    """``offsets_for_times({("t", 0): 5})`` raised AttributeError while
    ``beginning_offsets`` accepted the tuple: every call takes either now."""
    TP = TopicPartition("t", 0)
    tp = ("t", 0)
    log.partition("t", 0).append(prepare_batch([b"late"], timestamps=now_ms() + 60_000))
    consumer = log.consumer(group_id="g", enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        consumer.assign([tp])
        assert consumer.assignment() == {TP}
        for result in (
            consumer.beginning_offsets([tp]),
            consumer.end_offsets([tp]),
            consumer.offsets_for_times({tp: now_ms() + 30_000}),
        ):
            assert [type(k) for k in result] == [TopicPartition]
        assert consumer.beginning_offsets([tp]) == {TP: 0}
        assert consumer.end_offsets([tp]) == {TP: 4}
        found = consumer.offsets_for_times({tp: now_ms() + 30_000})[TP]
        assert found is not None and found.offset == 3
        consumer.seek(tp, 1)
        assert consumer.position(tp) == 1
        assert consumer.current_lag(tp) == 3
        consumer.pause(tp)
        assert consumer.paused() == {TP}
        assert consumer.poll(timeout_ms=0) == {}
        consumer.resume(tp)
        assert consumer.paused() == set()
        consumer.seek_to_end(tp)
        assert consumer.position(tp) == 4
        consumer.seek_to_beginning(tp)
        assert consumer.position(tp) == 0
        consumer.commit({tp: 2})
        assert consumer.committed(tp) == 2
        consumer.commit_async({tp: streamlog.OffsetAndMetadata(3, "m")})
        consumer.commit()  # waits for the async one
    finally:
        consumer.close()
    assert log.delete_records({tp: 1}) == {TP: 1}
    assert [type(k) for k in log.delete_records({tp: 1})] == [TopicPartition]


BAD_TPS: list[object] = [
    ("t",),
    ("t", 0, 1),
    ["t", 0],
    (0, "t"),
    (b"t", 0),
    ("t", 1.0),
    ("t", True),
    ("t", None),
    "t0",
    5,
    None,
]


@pytest.mark.parametrize("bad", BAD_TPS, ids=repr)
def test_bad_topic_partitions_are_type_errors(log: streamlog.Log, root: str, bad: Any) -> None:
    consumer = log.consumer(group_id="g", enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        consumer.seek(TopicPartition("t", 0), 1)
        calls: list[Callable[[], object]] = [
            lambda: consumer.assign([bad]),
            lambda: consumer.beginning_offsets([bad]),
            lambda: consumer.end_offsets([bad]),
            lambda: consumer.seek(bad, 0),
            lambda: consumer.position(bad),
            lambda: consumer.current_lag(bad),
            lambda: consumer.pause(TopicPartition("t", 0), bad),
            lambda: consumer.resume(TopicPartition("t", 0), bad),
            lambda: consumer.seek_to_beginning(TopicPartition("t", 0), bad),
            lambda: consumer.committed(bad),
            lambda: consumer.commit({bad: 0}),
        ]
        if isinstance(bad, (tuple, str, int)) or bad is None:  # hashable: a mapping key
            calls.append(lambda: consumer.offsets_for_times({bad: 0}))
        for call in calls:
            raises_unchanged(root, TypeError, call)
        # nothing changed: the good partition of the refused calls neither
        assert consumer.paused() == set() and consumer.position(TopicPartition("t", 0)) == 1
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda c: c.seek(TopicPartition("t", 0), 2**63), ValueError),
        (lambda c: c.seek(TopicPartition("t", 0), 10**5000), ValueError),
        (lambda c: c.offsets_for_times({TopicPartition("t", 0): 2**63}), ValueError),
        (lambda c: c.offsets_for_times({TopicPartition("t", 0): float("nan")}), TypeError),
        (lambda c: c.offsets_for_times([(TopicPartition("t", 0), 5)]), TypeError),
        (lambda c: c.commit({TopicPartition("t", 0): 2**64}), ValueError),
        (lambda c: c.commit({TopicPartition("t", 0): -0.0}), TypeError),
        (lambda c: c.poll(timeout_ms=0, max_records=10**5000), None),
        (lambda c: c.seek(("t", 2**31), 0), ValueError),
        (lambda c: c.beginning_offsets([("t", 10**5000)]), ValueError),
        (lambda c: c.pause(("t", 10**5000)), ValueError),
    ],
    ids=[
        "seek-2**63",
        "seek-huge",
        "oft-2**63",
        "oft-nan",
        "oft-list",
        "commit-2**64",
        "commit-neg-zero",
        "poll-max-records-huge",
        "seek-partition-2**31",
        "offsets-partition-huge",
        "pause-partition-huge",
    ],
)
def test_consumer_offsets_and_timestamps_are_int64(
    log: streamlog.Log, root: str, call: Any, exc: type[Exception] | None
) -> None:
    consumer = log.consumer(group_id="g", enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition("t", 0)])
        consumer.seek(TopicPartition("t", 0), 1)
        if exc is None:
            call(consumer)  # works
        else:
            raises_unchanged(root, exc, lambda: call(consumer))
            assert consumer.position(TopicPartition("t", 0)) == 1
            assert consumer.committed(TopicPartition("t", 0)) is None
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("offsets", "exc"),
    [
        ({("t", 0): float("nan")}, TypeError),
        ({("t", 0): 1.5}, TypeError),
        ({("t", 0): True}, TypeError),
        ({("t", 0): "1"}, TypeError),
        ({("t", 0): 2**64}, streamlog.OffsetOutOfRangeError),
        ({("t", 0): 10**5000}, streamlog.OffsetOutOfRangeError),
        ({("t",): 1}, TypeError),
        ([(("t", 0), 1)], TypeError),
        ({TopicPartition("t", 1): 0, TopicPartition("t", 0): 1.5}, TypeError),
        ({("t", 2**31): 0}, ValueError),
        ({("t", 10**5000): 0}, ValueError),
    ],
    ids=[
        "nan",
        "float",
        "bool",
        "str",
        "2**64",
        "huge",
        "short-key",
        "list",
        "second-bad",
        "partition-2**31",
        "partition-huge",
    ],
)
def test_delete_records_bad_values(
    log: streamlog.Log, root: str, offsets: Any, exc: type[Exception]
) -> None:
    """A float offset used to reach the state file's struct.pack (struct.error), a plain
    tuple key raised AttributeError; every entry is checked before any is applied."""
    raises_unchanged(root, exc, lambda: log.delete_records(offsets))
    assert log.describe_topic("t").partitions[0].log_start_offset == 0


@pytest.mark.parametrize(
    "value", [2**31, 2**63, 10**20, -1, 1.5, float("inf"), True, "5"], ids=repr
)
def test_lock_timeout_out_of_range(root: str, value: object) -> None:
    path = os.path.join(root, "data")
    raises_unchanged(
        root, streamlog.ConfigError, lambda: streamlog.open(path, lock_timeout_ms=value)
    )
    assert not os.path.exists(path)


NUMERIC_TOPIC_KEYS = numeric_topic_keys()
HUGE_CONFIG_VALUES: list[object] = [
    "9" * 5000,
    "-" + "9" * 5000,
    " " + "9" * 5000 + " ",
    "9" * 21,
    10**5000,
    -(10**5000),
    2**63,
    2**64,
]


@pytest.mark.parametrize("value", HUGE_CONFIG_VALUES, ids=_vid)
@pytest.mark.parametrize("key", NUMERIC_TOPIC_KEYS)
def test_huge_numbers_in_topic_config_are_config_errors(
    log: streamlog.Log, root: str, key: str, value: object
) -> None:
    """``{"retention.ms": "9" * 5000}`` raised Python's digit-limit ValueError instead of
    a ConfigError naming the key."""
    before = log.describe_topic("t").config
    for call in (
        lambda: log.create_topic("new", 1, {key: value}),
        lambda: log.alter_topic_config("t", {key: value}),
        lambda: streamlog.TopicConfig.from_dict({key: value}),
    ):
        err = raises_unchanged(root, streamlog.ConfigError, call)
        assert key in str(err) and "between" in str(err)
        assert len(str(err)) < 200
    assert log.topics() == ["t"]
    assert log.describe_topic("t").config == before


def test_leading_zeros_do_not_count_as_digits(log: streamlog.Log) -> None:
    config = {"retention.ms": "0" * 5000 + "7", "retention.bytes": "-0" + "0" * 5000}
    log.create_topic("new", 1, config)
    described = log.describe_topic("new").config
    assert (described["retention.ms"], described["retention.bytes"]) == (7, 0)


def test_huge_digit_config_on_the_command_line(log: streamlog.Log, root: str) -> None:
    from tests.cli._run import cli

    with unchanged(root):
        for args in (
            ("topics", "--create", "--topic", "new", "--config", "retention.ms=" + "9" * 5000),
            ("topics", "--alter", "--topic", "t", "--config", "segment.ms=" + "9" * 5000),
        ):
            proc = cli(log.path, *args)
            assert proc.returncode != 0
            assert "must be between" in proc.stderr and "5000 digits" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
