"""Topic administration on the ``Log`` handle: create, list, describe, grow, alter, delete."""

from __future__ import annotations

import os
import subprocess

import pytest

import streamlog
from streamlog import PartitionDescription, TopicDescription, TopicPartition
from streamlog.storage import prepare_batch
from tests._helpers import now_ms

DEFAULTS = {
    "cleanup.policy": "delete",
    "delete.retention.ms": 86_400_000,
    "index.interval.bytes": 4096,
    "max.compaction.lag.ms": 2**63 - 1,
    "max.message.bytes": 1_048_588,
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": 0.5,
    "min.compaction.lag.ms": 0,
    "retention.bytes": -1,
    "retention.ms": 604_800_000,
    "segment.bytes": 64 * 1024 * 1024,
    "segment.index.bytes": 1024 * 1024,
    "segment.ms": 604_800_000,
}


def _append(log: streamlog.Log, topic: str, partition: int, n: int = 10) -> None:
    log.partition(topic, partition).append(prepare_batch([b"v"] * n, timestamps=now_ms()))


# ---------------------------------------------------------------- create / list


def test_open_creates_directory(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "a", "b", "data")
    with streamlog.open(path) as log:
        assert log.path == os.path.abspath(path)
        assert log.topics() == []
    assert os.path.isdir(path)
    assert os.path.isfile(os.path.join(path, "streamlog.json"))


def test_create_and_list(log: streamlog.Log) -> None:
    assert log.topics() == []
    log.create_topic("orders", partitions=3)
    assert log.topics() == ["orders"]
    assert log.partitions_for("orders") == {0, 1, 2}


def test_topics_sorted(log: streamlog.Log) -> None:
    names = ["zeta", "Alpha", "alpha", "_x", "-y", "9", "a.b", "a_b", "a-b", "m" * 249]
    for name in names:
        log.create_topic(name)
    assert log.topics() == sorted(names)


def test_create_existing_raises(log: streamlog.Log) -> None:
    log.create_topic("t", partitions=2, config={"retention.ms": 1000})
    with pytest.raises(streamlog.TopicExistsError, match="'t'"):
        log.create_topic("t", partitions=5)
    desc = log.describe_topic("t")
    assert len(desc.partitions) == 2
    assert desc.config["retention.ms"] == 1000


def test_unknown_topic(log: streamlog.Log) -> None:
    for call in (
        lambda: log.describe_topic("nope"),
        lambda: log.delete_topic("nope"),
        lambda: log.create_partitions("nope", 3),
        lambda: log.alter_topic_config("nope", {"retention.ms": 1}),
        lambda: log.partitions_for("nope"),
        lambda: log.partition("nope", 0),
    ):
        with pytest.raises(streamlog.UnknownTopicError, match="'nope'"):
            call()


def test_longest_name(log: streamlog.Log) -> None:
    """249 characters is legal (Kafka's limit); every file name built from it must fit."""
    name = "n" * 249
    log.create_topic(name, partitions=2)
    _append(log, name, 1)
    assert log.describe_topic(name).partitions[1].end_offset == 10
    log.delete_topic(name)
    assert log.topics() == []
    log.create_topic(name)
    assert log.describe_topic(name).partitions[0].end_offset == 0
    assert streamlog.check(log.path).ok


# ---------------------------------------------------------------- describe


def test_describe_fills_defaults(log: streamlog.Log) -> None:
    log.create_topic("t", partitions=2)
    desc = log.describe_topic("t")
    assert isinstance(desc, TopicDescription)
    assert desc.name == "t"
    assert desc.config == DEFAULTS
    assert desc.partitions == [
        PartitionDescription(0, 0, 0, 0, 1),
        PartitionDescription(1, 0, 0, 0, 1),
    ]
    assert streamlog.TopicConfig().to_dict() == DEFAULTS


def test_config_overrides(log: streamlog.Log) -> None:
    log.create_topic(
        "t",
        config={
            "retention.ms": 1000,
            "segment.bytes": "65536",  # numeric strings are accepted, as from kafka-configs
            "retention.bytes": " -1 ",
            "max.message.bytes": "2048",
            "message.timestamp.type": "LogAppendTime",
        },
    )
    config = log.describe_topic("t").config
    assert config == {
        **DEFAULTS,
        "retention.ms": 1000,
        "segment.bytes": 65536,
        "retention.bytes": -1,
        "max.message.bytes": 2048,
        "message.timestamp.type": "LogAppendTime",
    }
    assert all(type(v) is int for k, v in config.items() if k not in ("cleanup.policy",
               "message.timestamp.type", "min.cleanable.dirty.ratio"))


def test_config_survives_reopen(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", partitions=4, config={"retention.ms": "5000"})
    with streamlog.open(data_dir) as log:
        desc = log.describe_topic("t")
        assert desc.config["retention.ms"] == 5000
        assert len(desc.partitions) == 4


def test_describe_offsets_after_appends(log: streamlog.Log) -> None:
    log.create_topic("t", partitions=3)
    _append(log, "t", 0)
    _append(log, "t", 0)
    _append(log, "t", 2, n=3)
    desc = log.describe_topic("t")
    p0, p1, p2 = desc.partitions
    assert (p0.partition, p0.log_start_offset, p0.end_offset, p0.segments) == (0, 0, 20, 1)
    assert (p1.log_start_offset, p1.end_offset, p1.size_bytes) == (0, 0, 0)
    assert (p2.partition, p2.end_offset) == (2, 3)
    assert p0.size_bytes > p2.size_bytes > 0
    # size_bytes counts frames, not preallocated space
    seg = os.path.join(log.path, "topics", "t", "0", "00000000000000000000.log")
    assert p0.size_bytes < os.path.getsize(seg) or p0.size_bytes == os.path.getsize(seg)
    assert p0.size_bytes < 20 * 100

    new_start = log.delete_records({TopicPartition("t", 0): 15})
    assert new_start == {TopicPartition("t", 0): 15}
    p0 = log.describe_topic("t").partitions[0]
    assert (p0.log_start_offset, p0.end_offset) == (15, 20)


def test_describe_sees_other_handles_appends(data_dir: str) -> None:
    with streamlog.open(data_dir) as a, streamlog.open(data_dir) as b:
        a.create_topic("t")
        assert b.describe_topic("t").partitions[0].end_offset == 0
        _append(a, "t", 0, n=7)
        assert b.describe_topic("t").partitions[0].end_offset == 7


def test_segments_count(log: streamlog.Log) -> None:
    log.create_topic("t", config={"segment.bytes": 4096})
    for _ in range(40):
        log.partition("t", 0).append(prepare_batch([b"x" * 200], timestamps=now_ms()))
    p0 = log.describe_topic("t").partitions[0]
    assert p0.end_offset == 40
    assert p0.segments > 1
    names = os.listdir(os.path.join(log.path, "topics", "t", "0"))
    assert p0.segments == sum(n.endswith(".log") for n in names)


# ---------------------------------------------------------------- grow / alter


def test_create_partitions_grows(log: streamlog.Log) -> None:
    log.create_topic("t", partitions=2)
    _append(log, "t", 1)
    log.create_partitions("t", 5)
    desc = log.describe_topic("t")
    assert [p.partition for p in desc.partitions] == [0, 1, 2, 3, 4]
    assert [p.end_offset for p in desc.partitions] == [0, 10, 0, 0, 0]
    _append(log, "t", 4, n=2)
    assert log.describe_topic("t").partitions[4].end_offset == 2


@pytest.mark.parametrize("total", [2, 3, 0, -1])
def test_create_partitions_never_shrinks(log: streamlog.Log, total: int) -> None:
    log.create_topic("t", partitions=3)
    with pytest.raises(streamlog.ConfigError, match="only grow"):
        log.create_partitions("t", total)
    assert len(log.describe_topic("t").partitions) == 3


@pytest.mark.parametrize("total", [4.0, "4", None, True])
def test_create_partitions_type(log: streamlog.Log, total: object) -> None:
    log.create_topic("t", partitions=3)
    with pytest.raises(streamlog.ConfigError):
        log.create_partitions("t", total)  # type: ignore[arg-type]
    assert len(log.describe_topic("t").partitions) == 3


def test_grow_seen_by_other_handle(data_dir: str) -> None:
    with streamlog.open(data_dir) as a, streamlog.open(data_dir) as b:
        a.create_topic("t", partitions=1)
        assert b.partitions_for("t") == {0}
        a.create_partitions("t", 3)
        assert b.partitions_for("t") == {0, 1, 2}
        _append(b, "t", 2)
        assert a.describe_topic("t").partitions[2].end_offset == 10


def test_alter_topic_config(log: streamlog.Log) -> None:
    log.create_topic("t", config={"retention.ms": 1000, "segment.bytes": 8192})
    log.alter_topic_config("t", {"retention.ms": "2000", "max.message.bytes": 4096})
    config = log.describe_topic("t").config
    assert config["retention.ms"] == 2000
    assert config["segment.bytes"] == 8192  # earlier overrides are kept
    assert config["max.message.bytes"] == 4096
    assert config["retention.bytes"] == -1


def test_alter_applies_to_open_partitions(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        plog = log.partition("t", 0)
        big = prepare_batch([b"x" * 1000], timestamps=now_ms())
        plog.append(big)
        log.alter_topic_config("t", {"max.message.bytes": 500})
        with pytest.raises(streamlog.RecordTooLargeError):
            log.partition("t", 0).append(big)
        assert log.describe_topic("t").partitions[0].end_offset == 1
    with streamlog.open(data_dir) as log:
        assert log.describe_topic("t").config["max.message.bytes"] == 500
        with pytest.raises(streamlog.RecordTooLargeError):
            log.partition("t", 0).append(big)


def test_alter_seen_by_other_handle(data_dir: str) -> None:
    with streamlog.open(data_dir) as a, streamlog.open(data_dir) as b:
        a.create_topic("t")
        assert b.describe_topic("t").config["retention.ms"] == DEFAULTS["retention.ms"]
        a.alter_topic_config("t", {"retention.ms": 10})
        assert b.describe_topic("t").config["retention.ms"] == 10


# ---------------------------------------------------------------- delete


def test_delete_topic(log: streamlog.Log) -> None:
    log.create_topic("a", partitions=2)
    log.create_topic("b")
    _append(log, "a", 0)
    log.delete_topic("a")
    assert log.topics() == ["b"]
    assert not os.path.exists(os.path.join(log.path, "topics", "a"))
    assert not os.path.exists(os.path.join(log.path, "meta", "topics", "a.json"))
    assert os.listdir(os.path.join(log.path, "trash")) == []
    with pytest.raises(streamlog.UnknownTopicError):
        log.describe_topic("a")
    with pytest.raises(streamlog.UnknownTopicError):
        log.delete_topic("a")


def test_delete_then_recreate_is_empty(log: streamlog.Log) -> None:
    log.create_topic("t", partitions=3, config={"retention.ms": 1000})
    for p in range(3):
        _append(log, "t", p)
    log.delete_topic("t")
    log.create_topic("t", partitions=2)
    desc = log.describe_topic("t")
    assert [(p.log_start_offset, p.end_offset, p.size_bytes) for p in desc.partitions] == [
        (0, 0, 0),
        (0, 0, 0),
    ]
    assert desc.config == DEFAULTS
    _append(log, "t", 0, n=1)
    assert log.describe_topic("t").partitions[0].end_offset == 1


def test_delete_after_unsynced_appends(data_dir: str) -> None:
    """The handle's own partitions of the topic hold unsynced data when it is deleted."""
    with streamlog.open(data_dir) as log:
        log.create_topic("t", partitions=2)
        log.create_topic("keep")
        _append(log, "t", 0)
        _append(log, "t", 1)
        _append(log, "keep", 0)
        log.delete_topic("t")
        assert log.topics() == ["keep"]
    with streamlog.open(data_dir) as log:
        assert log.topics() == ["keep"]
        assert log.describe_topic("keep").partitions[0].end_offset == 10


def test_delete_while_other_handle_has_partitions_open(data_dir: str) -> None:
    with streamlog.open(data_dir) as a:
        b = streamlog.open(data_dir)
        try:
            a.create_topic("t", partitions=2)
            a.create_topic("keep")
            _append(b, "t", 0)
            _append(b, "t", 1, n=4)
            _append(b, "keep", 0, n=3)
            assert [p.end_offset for p in b.describe_topic("t").partitions] == [10, 4]
            a.delete_topic("t")
            assert b.topics() == ["keep"]
            with pytest.raises(streamlog.UnknownTopicError):
                b.describe_topic("t")
            a.create_topic("t", partitions=2)
            # b had the old topic's partitions open: it must see the new, empty ones
            assert [p.end_offset for p in b.describe_topic("t").partitions] == [0, 0]
            _append(b, "t", 1, n=2)
            assert [p.end_offset for p in a.describe_topic("t").partitions] == [0, 2]
        finally:
            b.close()
        assert a.describe_topic("keep").partitions[0].end_offset == 3


def test_close_after_other_handle_deleted_topic(data_dir: str) -> None:
    """Closing a handle whose partitions' topic was deleted by another handle succeeds."""
    a = streamlog.open(data_dir)
    b = streamlog.open(data_dir)
    try:
        a.create_topic("t")
        a.create_topic("keep")
        _append(b, "t", 0)
        _append(b, "keep", 0, n=5)
        a.delete_topic("t")
    finally:
        b.close()  # must not raise for the vanished partition, and must close "keep"
        a.close()
    with streamlog.open(data_dir) as log:
        assert log.topics() == ["keep"]
        assert log.describe_topic("keep").partitions[0].end_offset == 5
    assert streamlog.check(data_dir).ok


# ---------------------------------------------------------------- handles


def test_two_handles_see_each_others_topics(data_dir: str) -> None:
    with streamlog.open(data_dir) as a, streamlog.open(data_dir) as b:
        a.create_topic("from-a")
        b.create_topic("from-b", partitions=2)
        assert a.topics() == b.topics() == ["from-a", "from-b"]
        assert len(a.describe_topic("from-b").partitions) == 2
        with pytest.raises(streamlog.TopicExistsError):
            b.create_topic("from-a")
        b.delete_topic("from-a")
        assert a.topics() == ["from-b"]


def test_context_manager(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        assert isinstance(log, streamlog.Log)
        log.create_topic("t")
        assert "open" in repr(log)
    assert "closed" in repr(log)
    with pytest.raises(streamlog.ClosedError):
        log.topics()


def test_context_manager_closes_on_error(data_dir: str) -> None:
    with pytest.raises(RuntimeError), streamlog.open(data_dir) as log:
        raise RuntimeError("boom")
    with pytest.raises(streamlog.ClosedError):
        log.topics()
    assert os.path.exists(os.path.join(data_dir, "meta", "clean-shutdown"))


def test_close_idempotent(data_dir: str) -> None:
    log = streamlog.open(data_dir)
    log.create_topic("t")
    _append(log, "t", 0)
    log.close()
    log.close()
    with log:
        pass  # __exit__ closes again
    log.close()
    assert log.path == os.path.abspath(data_dir)


def test_clean_shutdown_marker(data_dir: str) -> None:
    marker = os.path.join(data_dir, "meta", "clean-shutdown")
    log = streamlog.open(data_dir)
    assert not os.path.exists(marker)
    log.create_topic("t")
    _append(log, "t", 0)
    log.close()
    assert os.path.exists(marker)
    a = streamlog.open(data_dir)
    assert not os.path.exists(marker)
    b = streamlog.open(data_dir)
    a.close()
    assert not os.path.exists(marker)  # b still has it open
    b.close()
    assert os.path.exists(marker)
    with streamlog.open(data_dir) as c:
        assert not os.path.exists(marker)
        assert c.describe_topic("t").partitions[0].end_offset == 10
    assert os.path.exists(marker)


def test_many_partitions_do_not_preallocate_much(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("big", partitions=1000)
        desc = log.describe_topic("big")
        assert len(desc.partitions) == 1000
        assert all(p.end_offset == 0 and p.segments == 1 for p in desc.partitions)
        blocks = 0
        apparent = 0
        for dirpath, _dirs, files in os.walk(data_dir):
            for f in files:
                st = os.lstat(os.path.join(dirpath, f))
                blocks += st.st_blocks * 512
                apparent += st.st_size
    # 1000 empty partitions: a few small files each, nothing like segment.bytes or
    # segment.index.bytes (which would be 64 GiB and 2 GiB)
    assert blocks < 100 * 1024 * 1024, blocks
    assert apparent < 100 * 1024 * 1024, apparent
    du = subprocess.run(["du", "-sk", data_dir], capture_output=True, text=True, check=True)
    assert int(du.stdout.split()[0]) < 100 * 1024


def test_many_partitions_within_default_file_limit(data_dir: str) -> None:
    """describe_topic opens unused partitions only for the look (it used to keep ~5
    descriptors per partition open, so 1000 partitions hit a limit of 1024)."""
    script = f"""
import resource, streamlog
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
with streamlog.open({data_dir!r}) as log:
    log.create_topic("big", partitions=1000)
    assert len(log.describe_topic("big").partitions) == 1000
"""
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_open_raises_the_soft_file_limit_to_the_hard_limit(data_dir: str) -> None:
    script = f"""
import resource, streamlog
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))
streamlog.open({data_dir!r}).close()
print(resource.getrlimit(resource.RLIMIT_NOFILE))
"""
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(4096, 4096)"
