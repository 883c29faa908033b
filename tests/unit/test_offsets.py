"""OffsetStore: a consumer group's committed offsets in an append-only, checksummed log."""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import msgpack
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlog import OffsetAndMetadata, TopicPartition
from streamlog._fs import fs
from streamlog.coordination import _offsets
from streamlog.coordination._offsets import OffsetStore
from streamlog.errors import (
    ClosedError,
    ConfigError,
    InvalidTopicError,
    LockTimeoutError,
    MetadataCorruptError,
    StorageIOError,
    UnsupportedFormatError,
)
from streamlog.storage._datadir import DataDir
from tests._dirsnap import assert_unchanged, snapshot
from tests._helpers import flip

CHILD = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_offsets_child.py")
OAM = OffsetAndMetadata
TP = TopicPartition
HEADER = 8


def frames(path: str) -> list[tuple[int, int]]:
    """(position, total size) of every record in the file, parsed independently of the store."""
    data = Path(path).read_bytes()
    assert struct.unpack_from("<II", data, 0) == (0x464F4C53, 1)
    assert data[:4] == b"SLOF"
    out, pos = [], HEADER
    while pos < len(data):
        length, checksum = struct.unpack_from("<IQ", data, pos)
        body = data[pos + 12 : pos + 12 + length]
        assert xxhash.xxh3_64_intdigest(body, seed=length) == checksum
        out.append((pos, 12 + length))
        pos += 12 + length
    return out


def bodies(path: str) -> list[list[object]]:
    data = Path(path).read_bytes()
    return [msgpack.unpackb(data[p + 12 : p + n]) for p, n in frames(path)]


def offsets(n: int, *, topic: str = "t", parts: int = 3, meta: str = "") -> dict[TP, OAM]:
    return {TP(topic, p): OAM(n + p, meta) for p in range(parts)}


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def store(root: str) -> Iterator[OffsetStore]:
    s = OffsetStore(root, "g")
    yield s
    s.close()


# ---------------------------------------------------------------- round trips


def test_unknown_group_reads_nothing_and_creates_nothing(tmp_path: Path, root: str) -> None:
    before = snapshot(tmp_path)
    s = OffsetStore(root, "nobody")
    assert s.all() == {}
    assert s.committed(TP("t", 0)) is None
    s.delete()
    s._check()
    s.close()
    assert_unchanged(before, tmp_path)


def test_round_trip(root: str, store: OffsetStore) -> None:
    want = {
        TP("orders", 0): OAM(0, ""),
        TP("orders", 7): OAM(12345, "ünïcødé ✓"),
        TP("other.topic_x-1", 3): OAM(_offsets.MAX_OFFSET, "m" * 4096),
        TP("z", 1): OAM(42, "é" * 2048),  # 4096 bytes in UTF-8
    }
    store.commit(want)
    assert store.all() == want
    for tp, v in want.items():
        assert store.committed(tp) == v
    assert store.committed(TP("orders", 1)) is None
    with OffsetStore(root, "g") as fresh:
        assert fresh.all() == want
        fresh._check()
    assert isinstance(next(iter(store.all())), TopicPartition)
    assert isinstance(store.committed(TP("orders", 0)), OffsetAndMetadata)


def test_plain_tuple_keys_are_accepted(store: OffsetStore) -> None:
    store.commit({("t", 1): OAM(5)})  # type: ignore[dict-item]
    assert store.committed(TP("t", 1)) == OAM(5, "")
    assert store.committed(("t", 1)) == OAM(5, "")  # type: ignore[arg-type]


def test_last_write_wins_and_groups_are_separate(root: str, store: OffsetStore) -> None:
    store.commit({TP("t", 0): OAM(1), TP("t", 1): OAM(1)})
    store.commit({TP("t", 0): OAM(9, "x")})
    store.commit({TP("t", 0): OAM(3, "back")})  # the store keeps what the caller gives
    assert store.all() == {TP("t", 0): OAM(3, "back"), TP("t", 1): OAM(1)}
    with OffsetStore(root, "other") as other:
        assert other.all() == {}
        other.commit({TP("t", 0): OAM(100)})
    assert store.committed(TP("t", 0)) == OAM(3, "back")


def test_a_commit_is_one_record(store: OffsetStore) -> None:
    store.commit(offsets(10, parts=50), generation=7, member_id="member-1")
    recs = bodies(store.path)
    assert len(recs) == 1
    kind, ts, gen, member, entries = recs[0]
    assert (kind, gen, member) == (_offsets.KIND_COMMIT, 7, "member-1")
    assert isinstance(ts, int) and ts > 0
    assert len(entries) == 50  # type: ignore[arg-type]


def test_commit_times_use_the_clock(root: str) -> None:
    now = [1000.0]
    s = OffsetStore(root, "g", clock=lambda: now[0])
    s.commit({TP("t", 0): OAM(1)})
    now[0] = 2000.5
    s.commit({TP("t", 1): OAM(1)})
    assert s.commit_times() == {TP("t", 0): 1_000_000, TP("t", 1): 2_000_500}
    s.close()


def test_empty_commit_does_nothing(tmp_path: Path, root: str, store: OffsetStore) -> None:
    before = snapshot(tmp_path)
    store.commit({})
    store.reset({})
    store.delete_partitions([])
    assert_unchanged(before, tmp_path)


def test_reset_is_marked(root: str, store: OffsetStore) -> None:
    store.commit({TP("t", 0): OAM(50)}, generation=3, member_id="m")
    store.reset({TP("t", 0): OAM(10), TP("t", 1): OAM(0)})
    assert store.all() == {TP("t", 0): OAM(10), TP("t", 1): OAM(0)}
    kinds = [(b[0], b[2], b[3]) for b in bodies(store.path)]
    assert kinds == [(_offsets.KIND_COMMIT, 3, "m"), (_offsets.KIND_RESET, -1, "")]


def test_delete_partitions(root: str, store: OffsetStore) -> None:
    other = OffsetStore(root, "g")
    store.commit(offsets(0, parts=4))
    assert len(other.all()) == 4
    store.delete_partitions([TP("t", 1), TP("t", 3), TP("never", 0)])
    assert store.all() == {TP("t", 0): OAM(0), TP("t", 2): OAM(2)}
    assert other.all() == store.all()
    assert other.committed(TP("t", 1)) is None
    assert bodies(store.path)[-1][0] == _offsets.KIND_DELETE
    other.close()


def test_delete_removes_the_file_and_keeps_the_lock(root: str, store: OffsetStore) -> None:
    other = OffsetStore(root, "g")
    store.commit(offsets(5))
    assert other.all()
    store.delete()
    assert not os.path.exists(store.path)
    assert os.path.exists(store.lock_path)
    assert store.all() == {} and other.all() == {}
    other.commit({TP("t", 0): OAM(1)})
    assert store.all() == {TP("t", 0): OAM(1)}
    store._check()
    other._check()
    other.close()


def test_delete_works_on_a_corrupt_file(root: str, store: OffsetStore) -> None:
    for i in range(3):
        store.commit(offsets(i))
    pos, _ = frames(store.path)[0]
    flip(store.path, pos + 20, 0x01)
    with OffsetStore(root, "g") as fresh:
        with pytest.raises(MetadataCorruptError):
            fresh.all()
        with pytest.raises(MetadataCorruptError):
            fresh.commit({TP("t", 0): OAM(1)})
        fresh.delete()
        assert fresh.all() == {}
        fresh.commit({TP("t", 0): OAM(1)})
        assert fresh.all() == {TP("t", 0): OAM(1)}


def test_accepts_a_datadir(root: str) -> None:
    d = DataDir(root)
    d.opened()
    with OffsetStore(d, "g") as s:
        s.commit({TP("t", 0): OAM(1)})
        assert s.path == os.path.join(root, "meta", "groups", "g", "offsets.log")
    d.close()


def test_modes(store: OffsetStore) -> None:
    store.commit(offsets(1))
    for _ in range(3000):  # at least one rewrite
        store.commit(offsets(2, meta="x" * 100), sync=False)
    for d in (store.dir, os.path.dirname(store.dir)):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    for f in (store.path, store.lock_path):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f


def test_closed(store: OffsetStore) -> None:
    store.commit(offsets(1))
    store.close()
    store.close()
    with pytest.raises(ClosedError):
        store.all()
    with pytest.raises(ClosedError):
        store.commit(offsets(2))
    with pytest.raises(ClosedError):
        store.delete()


# ---------------------------------------------------------------- several instances


def test_two_instances_see_each_other(root: str) -> None:
    a, b = OffsetStore(root, "g"), OffsetStore(root, "g")
    assert a.all() == b.all() == {}
    for i in range(200):
        w, r = (a, b) if i % 3 else (b, a)
        w.commit({TP("t", i % 5): OAM(i, f"by-{i}")}, sync=i % 10 == 0)
        assert r.committed(TP("t", i % 5)) == OAM(i, f"by-{i}")
        assert a.all() == b.all()
    a._check()
    b._check()
    a.close()
    b.close()


def test_readers_read_only_new_bytes(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = OffsetStore(root, "g"), OffsetStore(root, "g")
    for i in range(100):
        a.commit(offsets(i, parts=20), sync=False)
    assert len(b.all()) == 20
    read: list[int] = []
    real = fs.pread

    def counting(fd: int, length: int, offset: int, path: str | None = None) -> bytes:
        data = real(fd, length, offset, path)
        read.append(len(data))
        return data

    monkeypatch.setattr(fs, "pread", counting)
    assert b.all()  # nothing new: no read at all
    assert read == []
    a.commit({TP("t", 0): OAM(999)})
    record = frames(a.path)[-1][1]
    assert b.committed(TP("t", 0)) == OAM(999)
    assert sum(read) == record
    b.close()
    a.close()


def test_readers_notice_a_rewrite(root: str) -> None:
    a, b = OffsetStore(root, "g"), OffsetStore(root, "g")
    a.commit({TP("t", 0): OAM(0)})
    assert b.committed(TP("t", 0)) == OAM(0)
    ino = os.stat(a.path).st_ino
    i = 0
    while os.stat(a.path).st_ino == ino:
        i += 1
        a.commit({TP("t", 1): OAM(i, "p" * 200)}, sync=False)
    assert len(frames(a.path)) == 1  # one snapshot record
    assert bodies(a.path)[0][0] == _offsets.KIND_SNAPSHOT
    assert b.all() == {TP("t", 0): OAM(0), TP("t", 1): OAM(i, "p" * 200)}
    a.commit({TP("t", 2): OAM(5)})
    b.commit({TP("t", 3): OAM(6)})  # b appends to the new file, not the old one
    assert a.all() == b.all() and len(a.all()) == 4
    a._check()
    b._check()
    a.close()
    b.close()


def test_commit_times_survive_a_rewrite(root: str) -> None:
    now = [100.0]
    s = OffsetStore(root, "g", clock=lambda: now[0])
    s.commit({TP("t", 0): OAM(1)})
    now[0] = 200.0
    ino = os.stat(s.path).st_ino
    while os.stat(s.path).st_ino == ino:
        s.commit({TP("t", 1): OAM(1, "x" * 500)}, sync=False)
    assert s.commit_times() == {TP("t", 0): 100_000, TP("t", 1): 200_000}
    s.close()


def test_file_stays_bounded(root: str) -> None:
    """25,000 commits of 10 partitions (~60 rewrites): the file never passes 64 KiB + a record."""
    a, b = OffsetStore(root, "g"), OffsetStore(root, "g")
    biggest = 0
    rewrites = 0
    ino = None
    n = 25_000
    for i in range(n):
        a.commit({TP("topic", p): OAM(i * 10 + p, "") for p in range(10)}, sync=False)
        st = os.stat(a.path)
        biggest = max(biggest, st.st_size)
        if st.st_ino != ino:
            rewrites += 1
            ino = st.st_ino
        if i % 1000 == 0:
            assert b.committed(TP("topic", 9)) == OAM(i * 10 + 9, "")
    assert rewrites > 50
    record = frames(a.path)[-1][1]
    assert biggest <= _offsets.MIN_REWRITE_BYTES + record < 70_000
    assert b.all() == {TP("topic", p): OAM((n - 1) * 10 + p, "") for p in range(10)}
    a._check()
    b._check()
    a.close()
    b.close()


def test_bound_scales_with_the_live_set(root: str) -> None:
    """With 3,000 live partitions the file stays within 8 snapshots."""
    s = OffsetStore(root, "g")
    s.commit({TP("big-topic-name", p): OAM(p, "meta") for p in range(3000)}, sync=False)
    snap = os.path.getsize(s.path)
    biggest = 0
    for i in range(3000):
        s.commit({TP("big-topic-name", i % 3000): OAM(10_000 + i, "meta" * 20)}, sync=False)
        biggest = max(biggest, os.path.getsize(s.path))
    assert biggest > _offsets.MIN_REWRITE_BYTES  # the 64 KiB floor is not what bounds it here
    assert biggest <= _offsets.REWRITE_FACTOR * snap * 1.3
    assert len(s.all()) == 3000
    s._check()
    s.close()


def test_threads(root: str) -> None:
    s = OffsetStore(root, "g")
    reader = OffsetStore(root, "g")
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(300):
                s.commit({TP(f"w{t}", p): OAM(i) for p in range(3)}, sync=i % 50 == 0)
                got = s.committed(TP(f"w{t}", 1))
                assert got is not None and got.offset >= i
        except BaseException as e:
            errors.append(e)

    def read() -> None:
        try:
            last: dict[TP, int] = {}
            for _ in range(300):
                for tp, v in reader.all().items():
                    assert v.offset >= last.get(tp, 0)
                    last[tp] = v.offset
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert s.all() == {TP(f"w{t}", p): OAM(299) for t in range(4) for p in range(3)}
    assert reader.all() == s.all()
    s._check()
    reader._check()
    s.close()
    reader.close()


@pytest.mark.multiprocess
def test_three_processes_commit_concurrently(root: str) -> None:
    count, meta = 400, 150  # ~1 KB records: every process rewrites the file now and then
    procs = [
        subprocess.Popen(
            [sys.executable, CHILD, "mp", root, "g", str(w), str(count), str(meta)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(3)
    ]
    reports = []
    for w, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"worker {w}: {err.decode()[-3000:]}"
        line = out.decode().strip().splitlines()[-1]
        assert line.startswith("LAST ")
        reports.append(json.loads(line[5:]))
    with OffsetStore(root, "g") as s:
        s._check()
        state = s.all()
        pad = "m" * meta
        want = {}
        for r in reports:
            for key, off in r["last"].items():
                topic, _, part = key.partition("/")
                want[TP(topic, int(part))] = OAM(off, pad)
        shared = state.pop(TP("shared", 0))
        assert state == want
        writer, _, seq = shared.metadata.partition(":")
        assert reports[int(writer)]["shared"] == int(seq) == shared.offset
    assert os.path.getsize(s.path) < 2 * _offsets.MIN_REWRITE_BYTES


def test_lock_timeout(tmp_path: Path, root: str) -> None:
    s = OffsetStore(root, "g", lock_timeout=0.2)
    s.commit({TP("t", 0): OAM(1)})
    holder = filelock.FileLock(s.lock_path)
    holder.acquire()
    try:
        before = snapshot(tmp_path)
        with pytest.raises(LockTimeoutError) as info:
            s.commit({TP("t", 0): OAM(2)})
        assert info.value.path == s.lock_path
        assert info.value.retriable
        assert_unchanged(before, tmp_path)
        assert s.committed(TP("t", 0)) == OAM(1)  # reads take no lock
    finally:
        holder.release()
    s.commit({TP("t", 0): OAM(2)})
    assert s.committed(TP("t", 0)) == OAM(2)
    s.close()


def test_failed_sync_forces_a_rewrite(
    root: str, store: OffsetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.commit({TP("t", 0): OAM(1)})
    ino = os.stat(store.path).st_ino

    def broken(fd: int, path: str | None = None) -> None:
        raise StorageIOError(5, "Input/output error", path)

    monkeypatch.setattr(fs, "sync", broken)
    with pytest.raises(StorageIOError):
        store.commit({TP("t", 0): OAM(2)})
    monkeypatch.undo()
    store.commit({TP("t", 1): OAM(3)})
    assert os.stat(store.path).st_ino != ino
    assert len(frames(store.path)) == 1
    assert store.all() == {TP("t", 0): OAM(2), TP("t", 1): OAM(3)}


# ---------------------------------------------------------------- damage


def _history(root: str, n: int = 4) -> list[dict[TP, OAM]]:
    """n commits; returns the state after each."""
    states = []
    with OffsetStore(root, "g") as s:
        for i in range(n):
            s.commit({TP("t", i % 2): OAM(i * 10, f"m{i}"), TP("u", i): OAM(i)})
            states.append(s.all())
    return states


def test_torn_tail_at_every_byte(root: str) -> None:
    states = _history(root)
    path = OffsetStore(root, "g").path
    full = Path(path).read_bytes()
    pos, size = frames(path)[-1]
    for cut in range(size):
        for filler in (b"", b"\0" * (size - cut)):  # cut short, or zeros after a power loss
            Path(path).write_bytes(full[: pos + cut] + filler)
            with OffsetStore(root, "g") as s:
                assert s.all() == states[-2], cut
                s._check()
                # the next writer cuts the tail and appends after the last valid record
                s.commit({TP("v", 0): OAM(cut)})
                assert frames(path)[-1][0] == pos
                assert s.all() == {**states[-2], TP("v", 0): OAM(cut)}
            with OffsetStore(root, "g") as again:
                assert again.all() == {**states[-2], TP("v", 0): OAM(cut)}


def test_reader_waits_for_a_record_being_written(root: str) -> None:
    states = _history(root)
    path = OffsetStore(root, "g").path
    full = Path(path).read_bytes()
    pos, size = frames(path)[-1]
    Path(path).write_bytes(full[: pos + size // 2])
    with OffsetStore(root, "g") as reader:
        assert reader.all() == states[-2]
        with open(path, "r+b") as f:  # the writer finishes (same inode, grows)
            f.seek(pos + size // 2)
            f.write(full[pos + size // 2 :])
        assert reader.all() == states[-1]


def test_truncated_and_rewritten_to_the_same_size_is_seen(root: str) -> None:
    """A torn tail replaced by a new record of exactly its size: the reader still sees it."""
    with OffsetStore(root, "g") as s:
        s.commit({TP("t", 0): OAM(1, "aaaa")})
        s.commit({TP("t", 0): OAM(2, "bbbb")})
    path = OffsetStore(root, "g").path
    full = Path(path).read_bytes()
    pos, size = frames(path)[-1]
    Path(path).write_bytes(full[:pos] + b"\x07" * size)  # garbage of the full record size
    with OffsetStore(root, "g") as reader, OffsetStore(root, "g") as writer:
        assert reader.all() == {TP("t", 0): OAM(1, "aaaa")}
        writer.commit({TP("t", 0): OAM(3, "cccc")})
        assert os.path.getsize(path) == len(full)
        assert reader.all() == {TP("t", 0): OAM(3, "cccc")}


def test_a_torn_tail_is_scanned_once(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with OffsetStore(root, "g") as s:
        s.commit({TP("t", 0): OAM(1)})
        s.commit({TP("t", p): OAM(2, "x" * 100) for p in range(200)})
    path = OffsetStore(root, "g").path
    pos, size = frames(path)[-1]
    full = Path(path).read_bytes()
    Path(path).write_bytes(full[: pos + size - 1])
    scans: list[int] = []
    real = OffsetStore._scan

    def counting(self: OffsetStore, data: bytes, base: int) -> object:
        scans.append(len(data))
        return real(self, data, base)

    monkeypatch.setattr(OffsetStore, "_scan", counting)
    with OffsetStore(root, "g") as reader:
        for _ in range(50):
            assert reader.all() == {TP("t", 0): OAM(1)}
        assert len(scans) == 1  # the load; the unchanged torn tail is not scanned again
        with OffsetStore(root, "g") as writer:
            writer.commit({TP("t", 0): OAM(3)})
        assert reader.all() == {TP("t", 0): OAM(3)}


def test_corrupt_last_record_is_ignored(root: str) -> None:
    states = _history(root)
    path = OffsetStore(root, "g").path
    pos, size = frames(path)[-1]
    full = Path(path).read_bytes()
    for at in range(pos, pos + size):
        Path(path).write_bytes(full)
        flip(path, at, 1 << (at % 8))
        with OffsetStore(root, "g") as s:
            assert s.all() == states[-2], at


def test_bit_flip_in_an_earlier_record_raises(root: str) -> None:
    _history(root)
    path = OffsetStore(root, "g").path
    full = Path(path).read_bytes()
    recs = frames(path)
    for pos, size in recs[:-1]:
        for at in range(pos, pos + size):
            Path(path).write_bytes(full)
            flip(path, at, 1 << ((at * 3) % 8))
            with OffsetStore(root, "g") as s:
                with pytest.raises(MetadataCorruptError) as info:
                    s.all()
                assert info.value.path == path
                assert path in str(info.value)
                with pytest.raises(MetadataCorruptError):
                    s.commit({TP("t", 0): OAM(1)})
    # an already loaded reader notices damage in bytes it has not read yet
    Path(path).write_bytes(full[: recs[1][0]])
    with OffsetStore(root, "g") as s:
        assert s.all()
        Path(path).write_bytes(full)
        flip(path, recs[1][0] + 13, 0x01)
        with pytest.raises(MetadataCorruptError):
            s.all()


def _write_frame(path: str, body: bytes, *, header: bytes = b"SLOF\x01\0\0\0") -> None:
    frame = struct.pack("<IQ", len(body), xxhash.xxh3_64_intdigest(body, seed=len(body)))
    Path(path).write_bytes(header + frame + body)


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # not msgpack
        msgpack.packb({"a": 1}),
        msgpack.packb([1, 0, -1, ""]),
        msgpack.packb([9, 0, -1, "", []]),
        msgpack.packb([True, 0, -1, "", []]),
        msgpack.packb([1, "x", -1, "", []]),
        msgpack.packb([1, 0, -1, "", {}]),
        msgpack.packb([1, 0, -1, "", [["t", 0, -5, ""]]]),
        msgpack.packb([1, 0, -1, "", [["t", 0, 5]]]),
        msgpack.packb([1, 0, -1, "", [["t", 0, 5, b"bytes"]]]),
        msgpack.packb([3, 0, -1, "", [["t", "0"]]]),
        msgpack.packb([4, 0, -1, "", [["t", 0, 5, ""]]]),
        msgpack.packb([1, 0, -1, "", [["t", 0, 5, ""]], "extra"]),
    ],
    ids=lambda b: b.hex()[:24],
)
def test_checksummed_but_malformed_record_raises(root: str, body: bytes) -> None:
    s = OffsetStore(root, "g")
    s.commit({TP("t", 0): OAM(1)})
    _write_frame(s.path, body)
    s.close()
    with OffsetStore(root, "g") as s, pytest.raises(MetadataCorruptError, match=r"offsets\.log"):
        s.all()


@pytest.mark.parametrize(
    ("header", "exc"),
    [
        (b"SLOF\x02\0\0\0", UnsupportedFormatError),
        (b"SLOF\x00\0\0\0", MetadataCorruptError),
        (b"XLOF\x01\0\0\0", MetadataCorruptError),
        (b"SLO", MetadataCorruptError),
        (b"", MetadataCorruptError),
    ],
)
def test_bad_header(root: str, header: bytes, exc: type[Exception]) -> None:
    s = OffsetStore(root, "g")
    s.commit({TP("t", 0): OAM(1)})
    if len(header) < 8:
        Path(s.path).write_bytes(header)
    else:
        _write_frame(s.path, msgpack.packb([1, 0, -1, "", []]), header=header)
    s.close()
    with OffsetStore(root, "g") as s, pytest.raises(exc) as info:
        s.all()
    assert info.value.path == s.path  # type: ignore[attr-defined]


# ---------------------------------------------------------------- bad input

BAD_COMMITS: list[tuple[str, object, dict[str, object], type[Exception]]] = [
    ("negative offset", {TP("t", 0): OAM(-1)}, {}, ValueError),
    ("bool offset", {TP("t", 0): OAM(True)}, {}, TypeError),
    ("float offset", {TP("t", 0): OAM(1.0)}, {}, TypeError),  # type: ignore[arg-type]
    ("str offset", {TP("t", 0): OAM("1")}, {}, TypeError),  # type: ignore[arg-type]
    ("offset over 63 bits", {TP("t", 0): OAM(1 << 63)}, {}, ValueError),
    ("plain int value", {TP("t", 0): 5}, {}, TypeError),
    ("tuple value", {TP("t", 0): (5, "")}, {}, TypeError),
    ("None value", {TP("t", 0): None}, {}, TypeError),
    ("metadata too long", {TP("t", 0): OAM(1, "x" * 4097)}, {}, ValueError),
    ("metadata too long in UTF-8", {TP("t", 0): OAM(1, "€" * 1366)}, {}, ValueError),
    ("metadata None", {TP("t", 0): OAM(1, None)}, {}, TypeError),  # type: ignore[arg-type]
    ("metadata bytes", {TP("t", 0): OAM(1, b"x")}, {}, TypeError),  # type: ignore[arg-type]
    ("metadata lone surrogate", {TP("t", 0): OAM(1, "\ud800")}, {}, ValueError),
    ("bad topic", {TP("a/b", 0): OAM(1)}, {}, InvalidTopicError),
    ("empty topic", {TP("", 0): OAM(1)}, {}, InvalidTopicError),
    ("topic not str", {TP(5, 0): OAM(1)}, {}, InvalidTopicError),  # type: ignore[arg-type]
    ("negative partition", {TP("t", -1): OAM(1)}, {}, ValueError),
    ("bool partition", {TP("t", True): OAM(1)}, {}, TypeError),
    ("key not a tuple", {"t": OAM(1)}, {}, TypeError),
    ("key of 3", {("t", 0, 1): OAM(1)}, {}, TypeError),
    ("not a mapping", [(TP("t", 0), OAM(1))], {}, TypeError),
    ("one bad among good", {**offsets(0, parts=5), TP("t", 9): OAM(-3)}, {}, ValueError),
    ("generation bool", offsets(1), {"generation": True}, TypeError),
    ("generation below -1", offsets(1), {"generation": -2}, ValueError),
    ("generation str", offsets(1), {"generation": "1"}, TypeError),
    ("member_id not str", offsets(1), {"member_id": None}, TypeError),
    ("member_id too long", offsets(1), {"member_id": "m" * 4097}, ValueError),
    ("sync not bool", offsets(1), {"sync": 1}, TypeError),
]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize(
    ("offsets_arg", "kwargs", "exc"),
    [c[1:] for c in BAD_COMMITS],
    ids=[c[0] for c in BAD_COMMITS],
)
def test_bad_commit_changes_nothing(
    tmp_path: Path,
    root: str,
    offsets_arg: object,
    kwargs: dict[str, object],
    exc: type[Exception],
    existing: bool,
) -> None:
    s = OffsetStore(root, "g")
    if existing:
        s.commit({TP("t", 0): OAM(7)})
    before = snapshot(tmp_path)
    with pytest.raises(exc):
        s.commit(offsets_arg, **kwargs)  # type: ignore[arg-type]
    if not kwargs:  # the same checks guard reset
        with pytest.raises(exc):
            s.reset(offsets_arg)  # type: ignore[arg-type]
    assert_unchanged(before, tmp_path)
    assert s.all() == ({TP("t", 0): OAM(7)} if existing else {})
    s.close()


@pytest.mark.parametrize(
    ("tps", "exc"),
    [
        ([TP("t", -1)], ValueError),
        ([TP("bad name", 0)], InvalidTopicError),
        ([TP("t", 0), "t"], TypeError),
        ("t0", TypeError),
        (5, TypeError),
    ],
)
def test_bad_delete_partitions_changes_nothing(
    tmp_path: Path, root: str, tps: object, exc: type[Exception]
) -> None:
    s = OffsetStore(root, "g")
    s.commit({TP("t", 0): OAM(7)})
    before = snapshot(tmp_path)
    with pytest.raises(exc):
        s.delete_partitions(tps)  # type: ignore[arg-type]
    assert_unchanged(before, tmp_path)
    s.close()


@pytest.mark.parametrize("group", ["", ".", "..", "a/b", "../g", "x" * 250, "sp ace", "é", None, 5])
def test_bad_group_name(tmp_path: Path, root: str, group: object) -> None:
    os.makedirs(root)
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match="group_id"):
        OffsetStore(root, group)  # type: ignore[arg-type]
    assert_unchanged(before, tmp_path)


@pytest.mark.parametrize("timeout", [0, -1, True, "1", float("nan"), float("inf")])
def test_bad_lock_timeout(root: str, timeout: object) -> None:
    with pytest.raises(ConfigError):
        OffsetStore(root, "g", lock_timeout=timeout)  # type: ignore[arg-type]


def test_bad_committed_argument(root: str) -> None:
    s = OffsetStore(root, "g")
    with pytest.raises(TypeError):
        s.committed("t")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        s.committed(TP("t", -1))
    assert not os.path.exists(root)


def test_metadata_limit_is_inclusive(store: OffsetStore) -> None:
    store.commit({TP("t", 0): OAM(1, "x" * 4096), TP("t", 1): OAM(1, "€" * 1365)})
    assert store.committed(TP("t", 0)) == OAM(1, "x" * 4096)


# ---------------------------------------------------------------- model


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["commit", "reset"]),
            st.integers(0, 1),
            st.dictionaries(
                st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)),
                st.tuples(st.integers(0, 1 << 40), st.text(max_size=5)),
                max_size=4,
            ),
        ),
        st.tuples(
            st.just("delete_partitions"),
            st.integers(0, 1),
            st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)), max_size=3),
        ),
        st.tuples(st.just("delete"), st.integers(0, 1), st.none()),
        st.tuples(st.just("rewrite"), st.integers(0, 1), st.none()),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_matches_a_dict(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, Any]]
) -> None:
    root = str(tmp_path_factory.mktemp("model") / "data")
    stores = [OffsetStore(root, "g"), OffsetStore(root, "g")]
    model: dict[TP, OAM] = {}
    for op, who, arg in ops:
        s = stores[who]
        if op in ("commit", "reset"):
            offs = {TP(*k): OAM(*v) for k, v in arg.items()}
            getattr(s, op)(offs, sync=False)
            model.update(offs)
        elif op == "delete_partitions":
            s.delete_partitions([TP(*k) for k in arg], sync=False)
            for k in arg:
                model.pop(TP(*k), None)
        elif op == "delete":
            s.delete()
            model.clear()
        else:
            if os.path.exists(s.path):
                with s._write_lock, s._file_lock():
                    s._must_rewrite = True
                    with s._cache_lock:
                        s._refresh()
                    s._maybe_rewrite(0)
        for t in stores:
            assert t.all() == model
    for t in stores:
        t._check()
        t.close()
