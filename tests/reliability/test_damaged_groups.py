"""Group and topic metadata damaged, crafted or planted, and a nearly full disk (issue 11).

Found by outside adversarial testing, then swept as a class:

- every file that is grown and then written through a map is allocated first
  (a store into a hole on a full disk is a SIGBUS, not an error);
- every name read from disk (member ids in a group's state, entries of its
  members directory) is checked as a name before it becomes a path, and a
  link planted at a directory that is swept is refused;
- damage in a group's files gives ``MetadataCorruptError`` or is survived
  (the state file is not synced by design: unreadable means an empty group;
  the version word is a change signal: a damaged one is replaced by the next
  change), never a raw ``struct.error``/``ValueError``;
- ``delete_group`` and ``delete_topic`` work on damaged metadata, and
  ``delete_topic`` works on a disk with no byte free.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
from typing import Any

import pytest

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition, _layout
from tests._helpers import mount_tmpfs
from tests._procs import call_in_child, last_json

from ._figures import record

GROUP = "g"


def _group_with_offsets(root: str) -> None:
    with streamlog.open(root) as log:
        log.create_topic("t", 2)
        with log.producer() as p:
            for i in range(10):
                p.send("t", b"v%d" % i, partition=i % 2)
        with log.consumer("t", group_id=GROUP, auto_offset_reset="earliest") as c:
            got = 0
            while got < 10:
                got += sum(len(v) for v in c.poll(1000).values())
            c.commit()


def _join_and_commit(root: str) -> int | None:
    """A consumer joins the group, commits offset 1 of t/0; the committed offset read back."""
    with streamlog.open(root) as log:
        with log.consumer("t", group_id=GROUP, auto_offset_reset="earliest") as c:
            while not c.assignment():
                c.poll(100)
            c.commit({TopicPartition("t", 0): OffsetAndMetadata(1)})
            return c.committed(TopicPartition("t", 0))


# ---------------------------------------------------------------- damaged group files


@pytest.mark.parametrize("word", [b"\xff" * 8, (2**62 + 1).to_bytes(8, "little")])
def test_a_damaged_version_word_is_repaired_by_the_next_change(
    tmp_path: os.PathLike[str], word: bytes
) -> None:
    """Before: ``struct.error`` from every group operation, delete_group included."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _group_with_offsets(root)
    version = _layout.group_version_file(root, GROUP)
    with open(version, "r+b") as f:
        f.write(word)
    with streamlog.open(root) as log:
        assert log.describe_group(GROUP).state == "Empty"
        assert _join_and_commit(root) == 1
        with open(version, "rb") as f:
            repaired = int.from_bytes(f.read(8), "little")
        assert 0 < repaired <= 2**62
        log.delete_group(GROUP)
        assert GROUP not in log.list_groups()
    record("T6 corrupt metadata", cases=1, survived=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("generation", 2**70),
        ("generation", -7),
        ("generation", "3"),
        ("generation", True),
        ("rebalance_deadline", 2**64),
        ("leader", "not-a-member"),
        ("group_id", "another-group"),
    ],
)
def test_a_state_out_of_range_is_an_empty_group(
    tmp_path: os.PathLike[str], field: str, value: Any
) -> None:
    """Before: a raw ``ValueError`` at commit. The state file is not synced by design, so
    an unreadable one is an empty group (docs/groups.md); members rejoin."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _group_with_offsets(root)
    path = _layout.group_state_file(root, GROUP)
    with open(path) as f:
        data = json.load(f)
    data["state"][field] = value
    with open(path, "w") as f:
        json.dump(data, f)
    with streamlog.open(root) as log:
        assert log.describe_group(GROUP).generation == 0  # read as empty
        assert _join_and_commit(root) == 1
        log.delete_group(GROUP)
    record("T6 corrupt metadata", cases=1, survived=1)


@pytest.mark.parametrize("member_id", ["../../escape", "/tmp/abs", "a/b", "..", ""])
def test_a_crafted_member_id_never_becomes_a_path(
    tmp_path: os.PathLike[str], member_id: str
) -> None:
    """Before: a joining consumer wrote the fence of ``../x`` into a file outside the
    data directory (the member id of a state file was used as a path component)."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _group_with_offsets(root)
    victim = os.path.join(os.fspath(tmp_path), "escape")
    with open(victim, "wb") as f:
        f.write(b"keep")
    path = _layout.group_state_file(root, GROUP)
    with open(path) as f:
        data = json.load(f)
    member = {
        "member_id": member_id, "client_id": "x", "instance_id": None, "topics": ["t"],
        "protocols": ["range"], "session_timeout_ms": 1, "rebalance_timeout_ms": 1,
        "joined": -1, "owned": [], "owned_generation": -1, "assignment": [], "synced": -1,
        "alive": True,
    }
    data["state"]["members"] = [member]
    data["state"]["state"] = "Stable"
    data["state"]["leader"] = member_id
    with open(path, "w") as f:
        json.dump(data, f)
    _join_and_commit(root)
    with open(victim, "rb") as f:
        assert f.read() == b"keep"
    with streamlog.open(root) as log:
        log.delete_group(GROUP)


def test_a_client_id_with_slashes_makes_a_safe_member_file(tmp_path: os.PathLike[str]) -> None:
    """A member id is ``<client.id>-<uuid>`` and names the member's file: a free-text
    client id (``a/../../b``) must not reach the path."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _group_with_offsets(root)
    with streamlog.open(root) as log:
        with log.consumer("t", group_id=GROUP, client_id="a/../../b c") as c:
            c.poll(500)
            (member,) = log.describe_group(GROUP).members
            assert "/" not in member.member_id and member.member_id.startswith("a_.._.._b_c-")
            assert member.client_id == "a/../../b c"
            members = _layout.group_members_dir(root, GROUP)
            assert os.listdir(members) == [member.member_id]


def test_a_link_planted_at_the_members_directory_is_refused(
    tmp_path: os.PathLike[str],
) -> None:
    """Before: the sweep of dead members deleted every file of the directory the link
    pointed to."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _group_with_offsets(root)
    outside = os.path.join(os.fspath(tmp_path), "outside")
    os.makedirs(outside)
    for name in ("precious", "m-1"):
        with open(os.path.join(outside, name), "wb") as f:
            f.write(b"keep")
    members = _layout.group_members_dir(root, GROUP)
    shutil.rmtree(members)
    os.symlink(outside, members)
    with streamlog.open(root) as log:
        with pytest.raises(streamlog.DataDirectoryError, match="symbolic link"):
            log.describe_group(GROUP)
        with pytest.raises(streamlog.DataDirectoryError):
            log.delete_group(GROUP)
    assert sorted(os.listdir(outside)) == ["m-1", "precious"]
    record("security: planted symlinks refused", cases=1)


def test_delete_group_works_on_a_damaged_offsets_log(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    _group_with_offsets(root)
    with open(_layout.offsets_file(root, GROUP), "wb") as f:
        f.write(b"\xff" * 64)
    with streamlog.open(root) as log:
        with pytest.raises(streamlog.MetadataCorruptError):
            log.describe_group(GROUP)
        log.delete_group(GROUP)
        assert GROUP not in log.list_groups()
        with pytest.raises(streamlog.UnknownGroupError):
            log.delete_group(GROUP)


def test_delete_topic_works_on_a_damaged_catalog_file(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 2)
        log.create_topic("u", 1)
    meta = _layout.topic_meta_file(root, "t")
    with open(meta, "wb") as f:
        f.write(b"\x00garbage")
    with streamlog.open(root) as log:
        with pytest.raises(streamlog.MetadataCorruptError):
            log.describe_topic("t")
        log.delete_topic("t")  # before: MetadataCorruptError, and no way to remove it
        assert log.topics() == ["u"]
        assert not os.path.exists(_layout.topic_dir(root, "t"))
        log.create_topic("t", 1)
        assert log.describe_topic("t").partitions[0].end_offset == 0


# ---------------------------------------------------------------- a nearly full disk


def _fill(mnt: str, leave_pages: int) -> None:
    """Fill the filesystem, then free ``leave_pages`` pages."""
    ballast = os.path.join(mnt, "ballast")
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    size = os.path.getsize(ballast)
    os.truncate(ballast, max(0, size - leave_pages * 4096))


def join_on_a_full_disk(root: str) -> str:
    """Child body: join a group; report how it ended (never by a signal)."""
    try:
        with streamlog.open(root) as log:
            with log.consumer("t", group_id=GROUP, auto_offset_reset="earliest") as c:
                c.poll(300)
                c.commit()
        return "ok"
    except streamlog.StreamlogError as e:
        return f"{type(e).__name__}: {getattr(e, 'errno', '')}"


def test_joining_a_group_on_a_nearly_full_disk_never_sigbus(tmp_path: os.PathLike[str]) -> None:
    """Before: with two free pages, a joining consumer died of SIGBUS (the group's version
    file was extended by ftruncate and written through a map). Every number of free pages
    from 0 to 8 now ends in success or an error."""
    mnt = os.path.join(os.fspath(tmp_path), "mnt")
    if not mount_tmpfs(mnt, "2m"):
        pytest.skip("needs root and mount -t tmpfs")
    try:
        outcomes = {}
        for pages in range(9):
            root = os.path.join(mnt, f"data{pages}")
            with streamlog.open(root) as log:
                log.create_topic("t")
                with log.producer() as p:
                    p.send("t", b"x").result(10)
            _fill(mnt, pages)
            proc = call_in_child(
                "tests.reliability.test_damaged_groups", "join_on_a_full_disk", {"root": root}, 60
            )
            assert proc.returncode != -signal.SIGBUS, f"SIGBUS with {pages} free pages"
            assert proc.returncode == 0, proc.stderr[-2000:]
            outcomes[pages] = last_json(proc.stdout)
            os.unlink(os.path.join(mnt, "ballast"))
            shutil.rmtree(root)
        print(f"\njoin on a nearly full disk, by free pages: {outcomes}")
        assert "ok" in outcomes.values()
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_delete_topic_on_a_disk_with_no_byte_free(tmp_path: os.PathLike[str]) -> None:
    """Before: ``delete_topic`` failed with ENOSPC (it rewrote the catalog file to mark the
    deletion) while ``delete_records`` freed space. Now a rename marks it."""
    mnt = os.path.join(os.fspath(tmp_path), "mnt")
    if not mount_tmpfs(mnt, "2m"):
        pytest.skip("needs root and mount -t tmpfs")
    try:
        root = os.path.join(mnt, "data")
        with streamlog.open(root) as log:
            log.create_topic("big", 1, {"segment.bytes": 65536})
            log.create_topic("keep", 1)
            with log.producer() as p:
                p.send("keep", b"kept").result(10)
            with log.producer(acks="all") as p:
                try:
                    while True:
                        p.send("big", b"x" * 1000).result(10)
                except streamlog.StorageIOError as e:
                    assert e.errno == errno.ENOSPC
            _fill(mnt, 0)
            free_before = shutil.disk_usage(mnt).free
            log.delete_topic("big")
            assert log.topics() == ["keep"]
            assert shutil.disk_usage(mnt).free > free_before + 500_000
        with streamlog.open(root) as log:
            assert log.topics() == ["keep"]
            with log.consumer("keep", auto_offset_reset="earliest") as c:
                assert [r.value for r in c.poll(1000)[TopicPartition("keep", 0)]] == [b"kept"]
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
