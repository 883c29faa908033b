"""The LogManager below the handle: closing, the catalog lock, links refused by the
coordination stores, and every lock going through the I/O facade."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from typing import Any

import pytest

import streamlog
from streamlog import _layout
from streamlog._fs import fs
from streamlog.coordination._groupstore import GroupStore
from streamlog.coordination._manager import LogManager
from streamlog.coordination._offsets import OffsetStore
from streamlog.errors import DataDirectoryError, StorageIOError
from streamlog.storage._partition import PartitionLog


def test_close_closes_every_partition_and_raises_the_first_error(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = streamlog.open(data_dir)
    log.create_topic("t", 4)
    plogs = [log.partition("t", p) for p in range(4)]
    closed: list[int] = []
    real_close = PartitionLog.close

    def close(self: PartitionLog) -> None:
        index = plogs.index(self)
        real_close(self)
        closed.append(index)
        if index in (1, 2):
            raise StorageIOError(errno.EIO, f"injected for partition {index}", self.path)

    monkeypatch.setattr(PartitionLog, "close", close)
    with pytest.raises(StorageIOError, match="injected for partition 1"):
        log.close()
    assert sorted(closed) == [0, 1, 2, 3]  # before: it stopped at partition 1
    log.close()  # idempotent: nothing raised the second time
    with pytest.raises(streamlog.ClosedError):
        log.topics()
    monkeypatch.undo()
    with streamlog.open(data_dir) as again:  # the directory was released
        assert again.topics() == ["t"]


def test_describe_topic_carries_the_topic_id(log: streamlog.Log) -> None:
    log.create_topic("t", 2)
    first = log.describe_topic("t").topic_id
    assert len(first) == 32 and int(first, 16) >= 0
    log.delete_topic("t")
    log.create_topic("t", 2)
    assert log.describe_topic("t").topic_id not in ("", first)


def test_clients_share_the_handles_manager(log: streamlog.Log) -> None:
    log.create_topic("t")
    with log.producer() as producer, log.consumer("t") as consumer:
        assert producer._log is consumer._log is log._manager
    assert not log._manager.closed  # clients given the handle leave it open


def test_a_consumer_opened_on_a_path_owns_its_manager(data_dir: str) -> None:
    with streamlog.open(data_dir) as admin:
        admin.create_topic("t")
        with admin.producer() as p:
            p.send("t", b"v").result(10)
    consumer = streamlog.Consumer(data_dir, "t", auto_offset_reset="earliest")
    manager = consumer._log
    assert isinstance(manager, LogManager)
    assert [r.value for r in consumer.poll(1000)[streamlog.TopicPartition("t", 0)]] == [b"v"]
    consumer.close()
    assert manager.closed


def test_clients_refuse_a_handle_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"streamlog\.Log or a path"):
        streamlog.Producer(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"streamlog\.Log or a path"):
        streamlog.Consumer(object())  # type: ignore[arg-type]


# ---------------------------------------------------------------- planted links


def _plant(tmp_path: Any, where: str) -> tuple[str, Any]:
    """A data directory path with a link to an empty outside directory planted at
    ``where`` (one of the group directories); returns (root, outside)."""
    root = str(tmp_path / "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    chain = dict(zip(("meta", "groups", "group", "members"), _layout.group_dirs(root, "g")))
    os.makedirs(os.path.dirname(chain[where]), exist_ok=True)
    os.symlink(outside, chain[where])
    return root, outside


def _group_transaction(root: str) -> None:
    store = GroupStore(root, "g")
    try:
        with store.transaction():
            pass
    finally:
        store.close()


def _offset_commit(root: str) -> None:
    store = OffsetStore(root, "g")
    try:
        store.commit({streamlog.TopicPartition("t", 0): streamlog.OffsetAndMetadata(1)})
    finally:
        store.close()


@pytest.mark.parametrize(
    ("use", "where"),
    [
        (_group_transaction, "groups"),
        (_group_transaction, "group"),
        (_group_transaction, "members"),
        (_offset_commit, "groups"),
        (_offset_commit, "group"),
    ],
)
def test_stores_from_a_path_refuse_planted_links(
    tmp_path: Any, use: Callable[[str], None], where: str
) -> None:
    root, outside = _plant(tmp_path, where)
    with pytest.raises(DataDirectoryError, match="symbolic link"):
        use(root)
    assert list(outside.iterdir()) == []  # nothing was created through the link


def test_a_planted_catalog_lock_link_is_refused(data_dir: str, tmp_path: Any) -> None:
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    with streamlog.open(data_dir) as log:
        os.symlink(target, _layout.catalog_lock(data_dir))
        with pytest.raises(DataDirectoryError, match="symbolic link"):
            log.create_topic("t")  # before: a raw OSError(ELOOP) from the lock library
        assert log.topics() == []
    assert target.read_bytes() == b"keep"


# ---------------------------------------------------------------- the I/O facade


def test_every_lock_goes_through_the_facade(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog, partition, group and directory locks are all taken through
    ``fs.flock``, so fault injection reaches them."""
    seen: set[str] = set()
    real = type(fs).flock

    def flock(self: Any, fd: int, operation: int, path: str | None = None) -> bool:
        seen.add(os.path.basename(path or "?"))
        return real(self, fd, operation, path)

    monkeypatch.setattr(type(fs), "flock", flock)
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        with log.producer() as p:
            p.send("t", b"x").result(10)
        with log.consumer("t", group_id="g", auto_offset_reset="earliest") as c:
            c.poll(500)
            c.commit()
    # the directory's instance lock, the catalog's, a partition's append lock, the group's
    assert {"meta", "catalog.lock", ".lock", "group.lock"} <= seen, seen


def test_a_failing_flock_is_a_storage_error(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with streamlog.open(data_dir) as log:
        real = fcntl.flock

        def broken(fd: int, operation: int) -> None:
            if operation & fcntl.LOCK_UN:
                return real(fd, operation)
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(fcntl, "flock", broken)
        with pytest.raises(StorageIOError) as info:
            log.create_topic("t")
        assert info.value.errno == errno.ENOLCK
        monkeypatch.undo()
        log.create_topic("t")  # nothing half-done stands in the way
        assert log.topics() == ["t"]


def test_a_topic_created_again_is_seen_with_its_new_id(data_dir: str) -> None:
    """The catalog cache was keyed by the file's (inode, mtime, size): a topic deleted and
    created again within one clock tick reused all three, and other handles kept
    serving the old topic id (found by the delete/create race test)."""
    a = LogManager(data_dir)
    b = LogManager(data_dir)  # another process, as far as caches go
    try:
        b.create_topic("t", 1, None)
        for _ in range(50):
            old = a.topic("t")
            assert old is not None
            b.delete_topic("t")
            assert a.topic("t") is None
            b.create_topic("t", 1, None)
            new = a.topic("t")
            assert new is not None and new.id != old.id
    finally:
        a.close()
        b.close()
