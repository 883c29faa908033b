"""Regression tests for the bugs the reliability suites found (each failed before its fix).

Most use the power-cut model of ``_powercut`` in its deterministic worst case
(``build(worst=True)``: only what was synced survives, every directory keeps
only its fsynced entries).
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import streamlog
from streamlog.storage import prepare_batch

from ._faults import FaultInjector
from ._powercut import PowerModel, materialize


@contextmanager
def powered(top: str) -> Iterator[PowerModel]:
    """Track durability under ``top`` while the block runs; then cut the power, keep
    only what was durable, and write that back over ``top``."""
    model = PowerModel(top)
    model.install()
    try:
        yield model
        model.cut_now()
    finally:
        model.uninstall()
    materialize(model.build(random.Random(0), worst=True), top)


def test_clean_close_syncs_the_indexes(tmp_path: os.PathLike[str]) -> None:
    """A clean close writes the clean-shutdown marker, so the next open trusts the
    indexes without a scan: they must have been synced too. Before the fix only the
    segments' data and the state were synced, and after a power cut following a clean
    close the active segment's index was empty while its log was not; the next
    append then indexed its batch as entry 0 and ``check`` reported the index."""
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 1, {"index.interval.bytes": 64})
    with powered(top):
        with streamlog.open(root) as log:
            p = log.partition("t", 0)
            for i in range(20):
                p.append(prepare_batch([b"x" * 100, b"%d" % i]))
    with streamlog.open(root) as log:
        assert log.recovery == []  # it was closed cleanly: no recovery ran
        p = log.partition("t", 0)
        assert p.end_offset == 40
        p.append(prepare_batch([b"after"]))
    report = streamlog.check(root)
    assert report.ok, str(report)


def test_partition_directory_entry_is_durable_before_an_ack(tmp_path: os.PathLike[str]) -> None:
    """``create_topic`` makes the topic directory's entry durable but not the entries
    of its partition directories (``topics/t/0`` in ``topics/t``); a sync of the
    partition directory does not make its own entry durable. Before the fix, a
    record appended with ``sync=True`` (``acks="all"``) to a new topic was lost with
    its whole partition after a power cut."""
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with powered(top) as model:
        log = streamlog.open(root)
        log.create_topic("t", 2)
        r = log.partition("t", 1).append(prepare_batch([b"durable"]), sync=True)
        assert r.base_offset == 0
        model.cut_now()
        model.revive()
        log.close()
    with streamlog.open(root) as log:
        got = [rec[3] for b in log.partition("t", 1).read(0) for rec in b.records()]
        assert got == [b"durable"]


def test_delete_records_start_is_durable_in_a_new_partition(tmp_path: os.PathLike[str]) -> None:
    """``delete_records`` promises that the new log start is synced before it returns;
    the ``state`` file's entry in a new partition directory must be durable too."""
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 1)
        log.partition("t", 0).append(prepare_batch([b"a", b"b", b"c"]))
    with powered(top) as model:
        log = streamlog.open(root)
        log.create_topic("u", 1)
        p = log.partition("u", 0)
        p.append(prepare_batch([b"a", b"b", b"c"]))  # acks=1: may be lost
        assert p.delete_records(2) == 2
        model.cut_now()
        model.revive()
        log.close()
    with streamlog.open(root) as log:
        p = log.partition("u", 0)
        assert p.log_start_offset == 2  # offsets 0 and 1 are never handed out again
        assert p.append(prepare_batch([b"d"])).base_offset >= 2


def test_clean_close_makes_everything_durable(tmp_path: os.PathLike[str]) -> None:
    """After ``close()`` of the last handle returned, a power cut loses nothing, even
    records written with ``acks=1`` to a topic created by that handle (before the fix
    the partition directories' entries were never synced, so whole partitions went)."""
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with powered(top):
        with streamlog.open(root) as log:
            log.create_topic("t", 3)
            for q in range(3):
                log.partition("t", q).append(prepare_batch([b"v%d" % q]))
    with streamlog.open(root) as log:
        assert log.recovery == []
        for q in range(3):
            got = [rec[3] for b in log.partition("t", q).read(0) for rec in b.records()]
            assert got == [b"v%d" % q]
    assert streamlog.check(root).ok


def test_new_data_directory_entries_are_durable(tmp_path: os.PathLike[str]) -> None:
    """``streamlog.open`` of a new directory creates ``meta/topics``; the topic metadata
    written there is synced, but before the fix the entry ``topics`` in ``meta`` was
    not, so a topic whose creation had returned was gone after a power cut."""
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with powered(top) as model:
        log = streamlog.open(root)
        log.create_topic("t", 1)
        model.cut_now()
        model.revive()
        log.close()
    with streamlog.open(root) as log:
        assert log.topics() == ["t"]


# ---------------------------------------------------------------- fsyncgate


def _filled(root: str, topic: str = "t") -> streamlog.Log:
    log = streamlog.open(root)
    log.create_topic(topic, 1, {"segment.bytes": 4096})
    return log


def test_failed_sync_in_roll_fails_the_partition(tmp_path: os.PathLike[str]) -> None:
    """``roll()`` syncs the sealed segment itself; when that fdatasync failed, the
    partition went on as if nothing happened, and the next ``sync=True`` append
    synced again, "successfully" (Linux may have dropped the pages: fsyncgate), and
    was acknowledged."""
    log = _filled(os.path.join(os.fspath(tmp_path), "data"))
    try:
        p = log.partition("t", 0)
        p.append(prepare_batch([b"a"]))
        with FaultInjector(1, errno.EIO, methods=("sync",)) as faults:
            with pytest.raises(streamlog.StorageIOError):
                p.roll()
        assert faults.fired == ["sync"]
        with pytest.raises(streamlog.StorageIOError, match="reopen"):
            p.append(prepare_batch([b"b"]), sync=True)
        with pytest.raises(streamlog.StorageIOError):
            p.append(prepare_batch([b"c"]))
    finally:
        with pytest.raises(streamlog.StorageIOError):
            log.close()
    with streamlog.open(os.path.join(os.fspath(tmp_path), "data")) as log:
        p = log.partition("t", 0)
        assert [r[3] for b in p.read(0) for r in b.records()] == [b"a"]
        assert p.append(prepare_batch([b"d"]), sync=True).base_offset == 1


def test_flusher_sync_failure_is_not_retried_by_another_thread(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background flusher's fdatasync of a sealed segment fails; before the
    flusher records the failure, an application thread's ``flush()`` syncs the same
    segment again (the error was already reported once, so the kernel says 0) and was
    acknowledged. A segment's syncs are now serialised and a failure is sticky."""
    from streamlog._fs import fs

    log = _filled(os.path.join(os.fspath(tmp_path), "data"))
    p = log.partition("t", 0)
    sealed_path = p.segments()[-1].path
    entered, release = threading.Event(), threading.Event()
    real_sync = fs.sync

    def sync(fd: int, path: str | None = None) -> None:
        if path == sealed_path and threading.current_thread().name == "streamlog-flusher":
            entered.set()
            release.wait(10)
            raise streamlog.StorageIOError(errno.EIO, "injected", path)
        real_sync(fd, path)

    monkeypatch.setattr(fs, "sync", sync)
    result: list[BaseException | None] = []
    try:
        while len(p.segments()) == 1:  # fill the first segment until a batch rolls it
            p.append(prepare_batch([b"x" * 500]))
        assert entered.wait(10), "the flusher never synced the sealed segment"

        def flush() -> None:
            try:
                p.flush()
                result.append(None)
            except streamlog.StorageIOError as e:
                result.append(e)

        t = threading.Thread(target=flush)
        t.start()
        t.join(0.5)  # the flusher is still inside its failed sync
        acknowledged_early = bool(result) and result[0] is None
        release.set()
        t.join(10)
        assert not acknowledged_early, "flush() acknowledged while the flusher's sync failed"
        assert result and isinstance(result[0], streamlog.StorageIOError), result
    finally:
        release.set()
        try:
            log.close()
        except streamlog.StorageIOError:
            pass


def test_orphan_indexes_of_a_failed_retention_are_removed(tmp_path: os.PathLike[str]) -> None:
    """Retention unlinks a segment's ``.log`` first (so a concurrent opener cannot leave
    recreated indexes behind), then its indexes. When unlinking an index failed, the
    handle still closed cleanly and nothing ever removed the orphan index files
    (only recovery does): ``check`` reported them forever. (Since the records are
    deleted once the new log start is durable, the failed unlink is no longer the
    call's failure: ``delete_records`` returns, and leaves the file for later.)"""
    root = os.path.join(os.fspath(tmp_path), "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096})
        p = log.partition("t", 0)
        while len(p.segments()) < 3:
            p.append(prepare_batch([b"x" * 500]))
        only = lambda name, args: str(args[0]).endswith(".index")  # noqa: E731
        with FaultInjector(1, errno.EIO, methods=("unlink",), only=only) as faults:
            start = p.segments()[1].base_offset
            assert p.delete_records(start) == start
        assert faults.fired == ["unlink"]
    with streamlog.open(root) as log:
        assert log.partition("t", 0).log_start_offset > 0
    report = streamlog.check(root)
    assert report.ok, str(report)


def test_no_clean_shutdown_marker_after_a_failed_sync(tmp_path: os.PathLike[str]) -> None:
    """After an fdatasync failed, ``close()`` of the handle still synced the tail
    segments again through a new descriptor (which does not see the old error, so the
    sync "succeeds") and wrote the clean-shutdown marker: the next open skipped
    recovery although the data may never have reached the disk."""
    root = os.path.join(os.fspath(tmp_path), "data")
    log = _filled(root)
    p = log.partition("t", 0)
    p.append(prepare_batch([b"a"]))
    with FaultInjector(1, errno.EIO, methods=("sync",)) as faults:
        with pytest.raises(streamlog.StorageIOError):
            p.append(prepare_batch([b"b"]), sync=True)
        with pytest.raises(streamlog.StorageIOError):
            log.close()
    assert faults.resynced == [], "a segment whose sync failed was synced again"
    assert not os.path.exists(os.path.join(root, "meta", "clean-shutdown"))
    with streamlog.open(root) as log:
        assert [r.path for r in log.recovery] == [log.partition("t", 0).path]
        p = log.partition("t", 0)
        assert [r[3] for b in p.read(0) for r in b.records()] == [b"a", b"b"]
        p.append(prepare_batch([b"c"]), sync=True)
    with streamlog.open(root) as log:
        assert log.recovery == []  # recovered and closed cleanly: clean again


def test_index_entry_missed_by_a_killed_writer_is_added_later(tmp_path: os.PathLike[str]) -> None:
    """A writer killed after publishing a batch and before indexing it (while other
    processes keep the directory open, so no recovery runs) left a hole in the middle
    of the sparse offset index once others appended after it: ``check`` reported the
    index as disagreeing with the log (lookups stayed right). Found by the
    SIGKILL-while-holding-the-lock test."""
    root = os.path.join(os.fspath(tmp_path), "data")
    big = b"x" * 3000  # every batch is more than index.interval.bytes after the previous one
    with streamlog.open(root) as log:
        log.create_topic("t", 1, {"index.interval.bytes": 1024})
        p = log.partition("t", 0)
        for _ in range(3):
            p.append(prepare_batch([big]))
        code = (
            "import sys, streamlog\n"
            "from streamlog.storage import prepare_batch\n"
            "log = streamlog.open(sys.argv[1])\n"
            "log.partition('t', 0).append(prepare_batch([b'y' * 3000]))\n"
        )
        env = dict(os.environ, STREAMLOG_CRASHPOINT="append.after_publish:1")
        done = subprocess.run([sys.executable, "-c", code, root], env=env, timeout=60)
        assert done.returncode == -9
        for _ in range(3):
            p.append(prepare_batch([big]))
        assert p.end_offset == 7
    report = streamlog.check(root)
    assert report.ok, str(report)


# ---------------------------------------------------------------- hostile payloads


def _forged(payload_obj: object) -> bytes:
    """A frame with a valid checksum whose payload is ``payload_obj`` packed by msgpack."""
    import msgpack

    from streamlog.storage._codec import PreparedBatch

    raw = msgpack.packb(payload_obj)
    batch = PreparedBatch(raw, len(raw), 1, 5, 5, 0, -1, -1, -1)
    return batch.frame(0)


@pytest.mark.parametrize(
    "payload",
    [
        [None, None, None, [{"a": 1}], None],  # a map as a value
        [None, None, [{}], [b"v"], None],  # a map as a key
        [None, None, None, [b"v"], [["k", {"x": b"y"}]]],  # a map as a header value
    ],
    ids=["map-value", "map-key", "map-header"],
)
def test_maps_in_a_payload_are_corrupt_not_returned(
    tmp_path: os.PathLike[str], payload: object
) -> None:
    """The payload format has no maps; a checksum-valid batch holding one was decoded and
    its dict handed to the application as a record's value, key or header. The decoder
    now refuses maps and extension types (``max_map_len=0``, ``max_ext_len=0``)."""
    from streamlog.errors import CorruptRecordError
    from streamlog.storage._codec import HEADER, RecordBatch

    frame = _forged(payload)
    batch = RecordBatch(HEADER.unpack_from(frame, 0), frame[68:], 0)
    with pytest.raises(CorruptRecordError):
        list(batch.records("forged"))


def test_ext_types_in_a_payload_are_corrupt_not_returned() -> None:
    import msgpack

    from streamlog.errors import CorruptRecordError
    from streamlog.storage._codec import HEADER, RecordBatch

    frame = _forged([None, None, None, [msgpack.ExtType(5, b"x")], None])
    batch = RecordBatch(HEADER.unpack_from(frame, 0), frame[68:], 0)
    with pytest.raises(CorruptRecordError):
        list(batch.records("forged"))


def _forge_field(path: str, pos: int, offset: int, fmt: str, value: int) -> None:
    """Change a header field of the frame at ``pos`` and recompute its checksum."""
    import struct

    import xxhash

    with open(path, "r+b") as f:
        buf = bytearray(f.read())
        struct.pack_into(fmt, buf, pos + offset, value)
        length = struct.unpack_from("<I", buf, pos)[0]
        digest = xxhash.xxh3_64_intdigest(bytes(buf[pos + 12 : pos + length]), seed=length)
        struct.pack_into("<Q", buf, pos + 4, digest)
        f.seek(0)
        f.write(buf)


def _three_segments(root: str) -> list[tuple[str, list[int]]]:
    """A partition with three segments; returns (path, frame positions) of each."""
    with streamlog.open(root) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096, "index.interval.bytes": 256})
        p = log.partition("t", 0)
        while len(p.segments()) < 3 or len(p.segments()[-1].batches()) < 3:
            p.append(prepare_batch([b"x" * 300, b"y" * 200]))
        return [(s.path, [pos for pos, _b in s.batches()]) for s in p.segments()]


@pytest.mark.parametrize(
    ("what", "offset", "fmt", "value"),
    [
        ("base offset below the segment", 16, "<q", -5),
        ("base offset going back", 16, "<q", 0),
        ("last offset delta past 32 bits", 24, "<I", 0xFFFFFFFF),
    ],
)
def test_recovery_refuses_batches_whose_offsets_do_not_follow(
    tmp_path: os.PathLike[str], what: str, offset: int, fmt: str, value: int
) -> None:
    """A batch with a valid checksum whose offsets do not continue the segment (KAFKA-3919:
    non-monotonic offsets after a power outage) made recovery crash with
    ``struct.error`` while rebuilding the index (found by the directory fuzz). Such a
    batch is now damage like a bad checksum: at the tail it is cut off."""
    root = os.path.join(os.fspath(tmp_path), "data")
    segs = _three_segments(root)
    path, frames = segs[-1]
    assert len(frames) >= 2
    _forge_field(path, frames[-1], offset, fmt, value)
    os.unlink(os.path.join(root, "meta", "clean-shutdown"))
    with streamlog.open(root) as log:
        p = log.partition("t", 0)
        (report,) = log.recovery
        assert report.truncated_at == [(path, frames[-1])], (what, report)
        end = p.end_offset
        assert p.append(prepare_batch([b"after"])).base_offset == end
    assert streamlog.check(root).ok


def test_a_seal_pointing_backwards_is_not_followed(tmp_path: os.PathLike[str]) -> None:
    """The last segment is sealed (a roll died before creating the next one) and its
    seal, forged with a valid checksum, names the first segment as the next one: the
    open followed the seals round in a circle for ever. A seal whose next base offset
    is not past its own segment is damage."""
    root = os.path.join(os.fspath(tmp_path), "data")
    segs = _three_segments(root)
    last = segs[-1][0]
    for suffix in (".log", ".index", ".timeindex"):
        os.unlink(last[: -len(".log")] + suffix)  # the middle segment is the last now
    path = segs[1][0]
    _forge_field(path, os.path.getsize(path) - 72, 16, "<q", 0)
    os.unlink(os.path.join(root, "meta", "clean-shutdown"))
    code = (
        "import sys, streamlog\n"
        "with streamlog.open(sys.argv[1]) as log:\n"
        "    p = log.partition('t', 0)\n"
        "    p.append(streamlog.storage.prepare_batch([b'after']))\n"
        "    print(p.end_offset)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, root], timeout=20, capture_output=True, text=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the open followed the seals in a circle")
    assert done.returncode == 0, done.stderr[-2000:]


def test_clean_close_makes_unsynced_commits_durable(tmp_path: os.PathLike[str]) -> None:
    """Commits made with ``sync=False`` (the consumer's default, ``fsync_commits=False``)
    were still in the page cache after the last handle closed cleanly: a power cut then
    took the group back to an older offset although the directory was marked clean.
    Found by the stateful model (commit, commit, reopen, power cut)."""
    from streamlog import OffsetAndMetadata, TopicPartition
    from streamlog.coordination._offsets import OffsetStore

    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    tp = TopicPartition("t", 0)
    with streamlog.open(root) as log:
        log.create_topic("t", 1)
    with powered(top):
        with streamlog.open(root):
            with OffsetStore(root, "g") as store:
                store.commit({tp: OffsetAndMetadata(1, "")}, sync=False)  # creates the file
                store.commit({tp: OffsetAndMetadata(2, "")}, sync=False)  # an append
    with OffsetStore(root, "g") as store:
        c = store.committed(tp)
        assert c is not None and c.offset == 2


def test_clean_close_after_a_roll_makes_a_new_partition_durable(
    tmp_path: os.PathLike[str],
) -> None:
    """Found by the stateful model soak (create topic, append, roll, reopen, power cut):
    ``roll()`` synced the sealed segment and the partition directory but not the topic
    directory, and left nothing unsynced, so the close synced no directory entry either:
    the new partition, with its records, was gone after a power cut that followed a
    clean close."""
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with streamlog.open(root) as log:
        log.create_topic("a", 1)
    with powered(top):
        with streamlog.open(root) as log:
            log.create_topic("b", 1)
            p = log.partition("b", 0)
            p.append(prepare_batch([b"kept"]))
            p.roll()
    with streamlog.open(root) as log:
        assert log.recovery == []
        got = [r[3] for b in log.partition("b", 0).read(0) for r in b.records()]
        assert got == [b"kept"]


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


@pytest.mark.parametrize("err", [errno.EIO, errno.ENOSPC])
def test_failed_opens_leak_no_descriptor(tmp_path: os.PathLike[str], err: int) -> None:
    """Found by the power-cut soak (EMFILE after ~2,500 runs): a partition whose opening
    or recovery failed half-way kept the descriptors of its state file, lock file and
    segments (nothing closed them: a retrying application ran out of descriptors).
    Every k-th call fails here, once, until the open completes; no descriptor may stay."""
    root = os.path.join(os.fspath(tmp_path), "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 2, {"segment.bytes": 4096})
        for i in range(30):
            log.partition("t", i % 2).append(prepare_batch([b"x" * 300]))
    marker = os.path.join(root, "meta", "clean-shutdown")
    leaks = []
    for recovering in (False, True):
        k = 1
        while True:
            if recovering and os.path.exists(marker):
                os.unlink(marker)
            before = _open_fds()
            with FaultInjector(k, err) as faults:
                try:
                    # (one partition: Log.close stops at the first partition whose
                    # close fails, leaking the others; see the reliability report)
                    with streamlog.open(root) as log:
                        log.partition("t", 1).read(0)
                except streamlog.StreamlogError:
                    pass
            after = _open_fds()
            if after - before:
                leaks.append((recovering, k, faults.fired, sorted(after - before)))
            if not faults.fired:
                break
            k += 1
    assert not leaks, leaks[:5]


def test_recovery_point_never_passes_an_unsynced_segment(tmp_path: os.PathLike[str]) -> None:
    """Found by the power-cut soak: a batch rolled segment 0 (its sync left to the
    background flusher), then ``roll()`` in another thread synced segment 1 and moved
    the recovery point past both, before the flusher had synced segment 0. After a
    power cut, segment 0 had lost its seal (and could have lost a torn tail) but lay
    below the recovery point, so recovery trusted it without a scan."""
    from streamlog.storage._flusher import flusher

    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096})
    gate = threading.Event()
    with powered(top) as model:
        log = streamlog.open(root)
        p = log.partition("t", 0)

        def busy() -> None:  # the flusher is busy for now
            gate.wait(10)

        flusher.submit(busy)
        while len(p.segments()) < 2:  # segment 0 rolled by an append: its sync is queued
            p.append(prepare_batch([b"x" * 500]))
        p.append(prepare_batch([b"y"]))
        p.roll()  # segment 1 sealed and synced here, in this thread
        p.delete_records(1)  # syncs the state file, recovery point included
        model.cut_now()
        gate.set()
        model.revive()
        try:
            log.close()
        except streamlog.StorageIOError:
            pass
    with streamlog.open(root) as log:
        log.partition("t", 0).append(prepare_batch([b"after"]))
    report = streamlog.check(root)
    assert report.ok, str(report)


# ---------------------------------------------------------------- closing with no descriptor

_PARTITIONS = 60


def _fill_unsynced(root: str) -> streamlog.Log:
    """A handle on ``_PARTITIONS`` partitions, each with records in a segment this handle
    created and has not synced (so close must sync it, and its directory)."""
    log = streamlog.open(root)
    log.create_topic("t", _PARTITIONS, {"segment.bytes": 4096})
    for p in range(_PARTITIONS):
        part = log.partition("t", p)
        for i in range(6):  # (rolls once: two segments, new ones among them)
            part.append(prepare_batch([b"%d-%d" % (p, i) + b"." * 900]))
        part._wait_for_flushes()  # (the rolled segment's flush is done)
    return log


def _verify_all(root: str) -> dict[str, int]:
    with streamlog.open(root) as log:
        recovered = len(log.recovery)
        for p in range(_PARTITIONS):
            got = [r[3] for b in log.partition("t", p).read(0, 1 << 30) for r in b.records()]
            assert got == [b"%d-%d" % (p, i) + b"." * 900 for i in range(6)], p
    return {"recovered": recovered}


def _close_with_no_descriptor_to_spare(root: str) -> dict[str, object]:
    """(Child process.) Close a handle while the process cannot open one more file."""
    import resource

    before = _open_fds()
    log = _fill_unsynced(root)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = len(_open_fds())
    lowest_free = os.dup(0)
    os.close(lowest_free)
    # a new descriptor takes the lowest free number, which must be below the limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # none to spare
    try:
        os.dup(0)
        raise AssertionError("the limit did not bite")
    except OSError as e:
        assert e.errno == errno.EMFILE
    errors = []
    for _ in range(2):
        try:
            log.close()
        except OSError as e:
            errors.append(f"{type(e).__name__}: {e}")
    left = sorted(_open_fds() - before)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    clean = os.path.exists(os.path.join(root, "meta", "clean-shutdown"))
    return {"held": held, "errors": errors, "left": left, "clean": clean, **_verify_all(root)}


def test_close_with_no_descriptor_to_spare(tmp_path: os.PathLike[str]) -> None:
    """Found by outside testing: closing a handle when the process had no descriptor to
    spare failed with EMFILE (syncing a partition directory needs a new descriptor),
    left the directory unclean (every partition recovered at the next open), and
    (reported) kept the descriptors. A partition now syncs its data through the
    descriptors it holds, releases them, then syncs its directory: the close succeeds,
    marks the directory clean and holds nothing."""
    root = os.path.join(os.fspath(tmp_path), "data")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; sys.path.insert(0, '.');"
            "from tests.reliability.test_regressions import _close_with_no_descriptor_to_spare"
            f" as f; print(json.dumps(f({root!r})))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert got["held"] > 6 * _PARTITIONS, got  # (the handle held them all)
    assert got["left"] == [], f"descriptors left after close: {got}"
    assert got["errors"] == [], f"close failed: {got}"
    assert got["clean"] and got["recovered"] == 0, got


def test_flush_refuses_after_any_failed_sync(tmp_path: os.PathLike[str]) -> None:
    """Found by the fault loop's third workload: after a sync failed in a roll (or in the
    background flusher), ``flush()`` still returned when nothing had been appended
    since the last sync, although docs/reliability.md says the partition refuses
    every later sync until reopened (fsyncgate). A failed sync of a new log start's
    directory entry did not fail the partition at all."""
    root = os.path.join(os.fspath(tmp_path), "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 2, {"segment.bytes": 4096})
        p = log.partition("t", 0)
        p.append(prepare_batch([b"x" * 500]))
        p.flush()  # everything appended is synced
        with FaultInjector(1, errno.EIO, methods=("sync_dir",)):
            with pytest.raises(streamlog.StorageIOError):
                p.roll()
        with pytest.raises(streamlog.StorageIOError, match="partition failed"):
            p.flush()
        q = log.partition("t", 1)  # a new partition: its start's entry is synced first
        q.append(prepare_batch([b"y"]))
        with FaultInjector(1, errno.EIO, methods=("sync_dir",)):
            with pytest.raises(streamlog.StorageIOError):
                q.delete_records(1)
        with pytest.raises(streamlog.StorageIOError, match="reopen"):
            q.append(prepare_batch([b"z"]))
        with pytest.raises(streamlog.StorageIOError):
            log.close()
    with streamlog.open(root) as log:
        assert log.partition("t", 1).log_start_offset == 0  # the failed delete hid nothing
        got = [r[3] for b in log.partition("t", 0).read(0) for r in b.records()]
        assert got == [b"x" * 500]
