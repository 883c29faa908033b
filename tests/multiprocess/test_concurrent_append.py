"""Several processes on one partition (reliability plan T8, T9, T14).

* 4 writer processes x 5,000 records into one partition while a reader
  process tails it: every record exactly once, offsets dense, each writer's
  sequence in order, checksums good, no partial batch ever visible.
* The same with 4 KiB segments (a roll every few batches).
* A reader process chasing a writer that rolls, deletes records and enforces
  retention as fast as it can never crashes (no SIGBUS: unlink, never truncate).
* A writer SIGSTOPped while holding the append lock makes other writers fail
  with ``LockTimeoutError`` after ``lock_timeout_ms``; after SIGCONT everyone
  finishes and nothing is corrupt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import streamlog
from streamlog.storage._codec import prepare_batch
from tests._procs import finish, lock_held, stopped

from ._mp_worker import parse_value

pytestmark = pytest.mark.multiprocess

WORKER = os.path.join(os.path.dirname(__file__), "_mp_worker.py")
TOPIC = "t"


def _spawn(*args: object, stderr: object = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, WORKER, *map(str, args)], stdout=subprocess.PIPE, stderr=stderr
    )


def _verify_log(root: str, writers: int, per_writer: int) -> None:
    total = writers * per_writer
    with streamlog.open(root) as log:
        p = log.partition(TOPIC, 0)
        assert p.end_offset == total
        seqs: dict[int, list[int]] = {w: [] for w in range(writers)}
        off = 0
        while off < total:
            for b in p.read(off, 1 << 20):
                for o, _ts, _k, v, _h in b.records():
                    assert o == off, (o, off)
                    wid, seq, _first, _count = parse_value(v)
                    seqs[wid].append(seq)
                    off += 1
        for w in range(writers):
            assert seqs[w] == list(range(per_writer)), f"writer {w} sequence broken"
        p._check()
    report = streamlog.check(root)
    assert report.ok, str(report)
    assert report.records == total


def _run_writers_and_reader(root: str, config: dict, writers: int, per_writer: int) -> str:
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, config)
    total = writers * per_writer
    reader = _spawn("reader", root, TOPIC, total, 120)
    procs = [_spawn("writer", root, TOPIC, w, per_writer, 1000 + w) for w in range(writers)]
    for w, proc in enumerate(procs):
        assert "DONE" in finish(proc, 120, f"writer {w}")
    out = finish(reader, 120, "reader")
    assert out.startswith(f"READER {total} "), out
    _verify_log(root, writers, per_writer)
    return out


def test_four_writers_one_partition_with_tailing_reader(tmp_path) -> None:
    out = _run_writers_and_reader(str(tmp_path / "data"), {}, 4, 5000)
    print(f"\nconcurrent append: records 20000/20000, order violations 0; {out.strip()}")


def test_four_writers_roll_heavy(tmp_path) -> None:
    root = str(tmp_path / "data")
    out = _run_writers_and_reader(
        root, {"segment.bytes": 4096, "index.interval.bytes": 512}, 4, 5000
    )
    with streamlog.open(root) as log:
        segments = log.partition(TOPIC, 0).segment_count
    assert segments > 100, segments
    print(f"\nroll-heavy append: records 20000/20000 in {segments} segments; {out.strip()}")


def test_reader_survives_rolls_retention_and_delete_records(tmp_path) -> None:
    root = str(tmp_path / "data")
    with streamlog.open(root) as log:
        log.create_topic(
            TOPIC, 1, {"segment.bytes": 4096, "retention.bytes": 16384, "index.interval.bytes": 256}
        )
    churn = _spawn("churn", root, TOPIC, 4.0)
    chasers = [_spawn("chaser", root, TOPIC, 4.0) for _ in range(2)]
    churn_out = finish(churn, 60, "churn")
    results = []
    for i, c in enumerate(chasers):
        # exit code 0: no SIGBUS (-7), no exception
        out = finish(c, 60, f"chaser {i}")
        _, records, jumps, reopens = out.split()
        assert int(reopens) >= 5, out
        results.append((int(records), int(jumps)))
    assert all(r > 0 for r, _ in results), results
    assert sum(j for _, j in results) > 0, "retention never overtook a reader: test too weak"
    ops = dict(kv.split("=") for kv in churn_out.split()[1:])
    assert int(ops["roll"]) > 10 and int(ops["delete_records"]) > 10 and int(ops["retention"]) > 0
    with streamlog.open(root) as log:
        log.partition(TOPIC, 0)._check()
    assert streamlog.check(root).ok
    print(f"\nchasers survived: {results} (records, jumps); {churn_out.strip()}")


# ------------------------------------------------------------------ stopped lock holder


def test_stopped_lock_holder_times_out_other_writers(tmp_path) -> None:
    root = str(tmp_path / "data")
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, {"segment.bytes": 8 * 1024 * 1024})
    lock_path = os.path.join(root, "topics", TOPIC, "0", ".lock")
    n = 120
    errfile = open(tmp_path / "hog.err", "w+b")
    hog = _spawn("hog", root, TOPIC, n, stderr=errfile)
    lines: list[str] = []

    def drain() -> None:
        assert hog.stdout is not None
        for line in hog.stdout:
            lines.append(line.decode())

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    log = streamlog.open(root, lock_timeout_ms=200)
    try:
        p = log.partition(TOPIC, 0)  # takes the lock once: open before the hog is stopped
        deadline = time.monotonic() + 20
        while not lines:
            assert time.monotonic() < deadline and hog.poll() is None, "hog did not start"
            time.sleep(0.005)
        attempts = 0
        while True:
            attempts += 1
            assert attempts < 500 and hog.poll() is None, "never caught the hog holding the lock"
            os.kill(hog.pid, signal.SIGSTOP)
            while not stopped(hog.pid):
                time.sleep(0.0005)
            if lock_held(lock_path):
                break
            os.kill(hog.pid, signal.SIGCONT)
            time.sleep(0.001 * (attempts % 7))
        try:
            # the stopped holder keeps the lock: appends elsewhere give up after 200 ms
            end_before = p.end_offset
            t0 = time.monotonic()
            with pytest.raises(streamlog.LockTimeoutError) as ei:
                p.append(prepare_batch([b"blocked"]), sync=True)
            waited = time.monotonic() - t0
            assert 0.2 <= waited < 2.0, waited
            assert ei.value.path == lock_path
            with pytest.raises(streamlog.LockTimeoutError):
                p.roll()
            with pytest.raises(streamlog.LockTimeoutError):
                p.delete_records(0)
            # ... in another process too
            other = finish(_spawn("try", root, TOPIC, 200), 30, "try")
            kind, where, secs, path = other.split()
            assert kind == "TIMEOUT" and path == lock_path, other
            assert 0.2 <= float(secs) < 2.0, other
            # readers take no lock and see a consistent log meanwhile
            assert p.end_offset == end_before
            assert p.read(0, 1)[0].base_offset == 0
            assert lock_held(lock_path)
        finally:
            os.kill(hog.pid, signal.SIGCONT)
        # everyone completes
        r = p.append(prepare_batch([b"after"]), sync=True)
        rc = hog.wait(60)
    finally:
        log.close()
        if hog.poll() is None:
            hog.kill()
    t.join(10)
    assert hog.stdout is not None
    hog.stdout.close()
    errfile.seek(0)
    assert rc == 0, f"hog exited with {rc}\n{errfile.read().decode()}"
    errfile.close()
    acked = [line.split() for line in lines if line.startswith("A ")]
    assert len(acked) == n and "DONE\n" in lines
    total = 2 * n + 1 + (1 if other.startswith("OK") else 0)
    with streamlog.open(root) as log2:
        p2 = log2.partition(TOPIC, 0)
        assert p2.end_offset == total
        for _a, base, count in acked:
            b = p2.read(int(base), 1)[0]
            assert b.base_offset == int(base) and b.record_count == int(count)
        assert [rec[3] for rec in p2.read(r.base_offset)[0].records()] == [b"after"]
        p2._check()
    report = streamlog.check(root)
    assert report.ok, str(report)
    print(
        f"\nstopped holder: lock caught after {attempts} attempt(s); LockTimeoutError after "
        f"{waited:.3f}s in-process, {float(secs):.3f}s ({where}) in another process"
    )


# ------------------------------------------------------------------ regressions
# Deterministic reproductions of races the tests above found (each failed before
# its fix). Two handles in one process stand for two processes: each has its own
# maps, segment objects and flock file description.


def test_regression_other_writers_index_entry_not_overwritten(tmp_path, monkeypatch) -> None:
    """A writer whose index count was read before another writer indexed a batch that
    its scan then saw overwrote that entry (roll-heavy test: check() 'index' problem)."""
    from streamlog.storage._segment import Segment

    root = str(tmp_path / "data")
    a = streamlog.open(root)
    b = streamlog.open(root)
    try:
        a.create_topic(TOPIC, 1, {"index.interval.bytes": 0})
        pa = a.partition(TOPIC, 0)
        pa.append(prepare_batch([b"first"]))  # position 0: never indexed
        orig = Segment.load
        fired: list[bool] = []

        def load(self: Segment):  # type: ignore[no-untyped-def]
            if not fired:
                fired.append(True)
                pa.append(prepare_batch([b"second"]))  # indexed: entry 0
            return orig(self)

        monkeypatch.setattr(Segment, "load", load)
        pb = b.partition(TOPIC, 0)  # maps the index (0 entries), then scans (2 batches)
        monkeypatch.undo()
        assert fired
        pb.append(prepare_batch([b"third"]))  # indexed: must be entry 1
        seg = pb.segments()[0]
        seg.refresh_indexes()
        oi = seg.offset_index
        assert [oi.entry(i)[0] for i in range(oi.count)] == [1, 2]
        pb._check()
    finally:
        b.close()
        a.close()
    assert streamlog.check(root).ok


_FOLLOWER_SCRIPT = r"""
import faulthandler, sys
faulthandler.enable()
import streamlog
from streamlog.storage._codec import prepare_batch
from streamlog.storage._segment import Segment

root = sys.argv[1]
a = streamlog.open(root)
a.create_topic("t", 1, {"segment.bytes": 4096})
pa = a.partition("t", 0)
b = streamlog.open(root)
pb = b.partition("t", 0)
n = 0
def put():
    global n
    pa.append(prepare_batch([b"%06d" % n + b"y" * 200]))
    n += 1
put()
orig = Segment.load
armed = []
def load(self):
    if armed:
        armed.pop()
        # another process fills the segment we just mapped, seals and trims it
        while pa.segment_count < 3:
            put()
    return orig(self)
Segment.load = load
while pa.segment_count < 2:
    put()
armed.append(True)
# the follower maps the new segment (16 KiB preallocated), then looks for its seal
seen = []
off = 0
while off < pa.end_offset:
    for batch in pb.read(off, 1 << 20):
        for rec in batch.records():
            seen.append(rec[3])
        off = batch.last_offset + 1
assert not armed
assert seen == [b"%06d" % i + b"y" * 200 for i in range(n)], len(seen)
print("OK", n)
"""


def test_regression_follower_never_reads_past_a_trimmed_file(tmp_path) -> None:
    """A reader that mapped a new segment before another process sealed and trimmed it
    looked for the seal at the end of its (stale) map: SIGBUS (roll-heavy reader)."""
    proc = subprocess.run(
        [sys.executable, "-c", _FOLLOWER_SCRIPT, str(tmp_path / "data")],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stderr.decode()}"
    assert proc.stdout.startswith(b"OK")


def test_regression_remap_of_file_trimmed_after_fstat(tmp_path, monkeypatch) -> None:
    """fstat, then another process trims the sealed file, then mmap of the old size:
    ValueError('mmap length is greater than file size') escaped to the reader."""
    from streamlog import _fs
    from streamlog.storage._segment import Segment

    root = str(tmp_path / "data")
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, {"segment.bytes": 4096})
        p = log.partition(TOPIC, 0)
        p.append(prepare_batch([b"z" * 100]))
        p.roll()  # seal and trim segment 0
        pdir = p.path
    real_size = _fs.fs.size
    stale = [True]

    def size(fd: int) -> int:
        n = real_size(fd)
        if stale:
            stale.pop()
            return n + 16384  # the size before the trim
        return n

    monkeypatch.setattr(_fs.fs, "size", size)
    seg = Segment(pdir, 0, index_interval=4096, max_index_bytes=1 << 20, writable=False)
    try:
        assert not stale
        assert seg.load().sealed
    finally:
        seg.close()


def test_regression_frame_header_read_across_a_remap(tmp_path) -> None:
    """A frame whose header crosses the end of a reader's (older, smaller) map: the
    reader remapped but kept reading the old map (struct.error in the tailing reader)."""
    from streamlog.storage._codec import aligned

    root = str(tmp_path / "data")
    a = streamlog.open(root)
    b = streamlog.open(root)
    try:
        a.create_topic(TOPIC, 1)
        pa = a.partition(TOPIC, 0)
        value = next(
            b"v" * n for n in range(40, 80) if aligned(prepare_batch([b"v" * n]).size) == 136
        )
        pa.append(prepare_batch([value]))
        pb = b.partition(TOPIC, 0)
        assert len(pb.read(0)) == 1  # maps the first 16 KiB
        assert pb.segments()[0].allocated == 16384
        for _ in range(130):  # frame 120 starts at 16320: its header crosses 16384
            pa.append(prepare_batch([value]))
        got = []
        off = 0
        while off < 131:
            for batch in pb.read(off):
                got.extend(r[3] for r in batch.records())
                off = batch.last_offset + 1
        assert got == [value] * 131
    finally:
        b.close()
        a.close()


def test_regression_lagging_process_after_retention_deleted_its_next_segment(tmp_path) -> None:
    """A process that last saw segment 0 while another rolled and deleted segments 0..4:
    the reader stopped at the old seal forever (log start > its end offset), and the
    writer re-created deleted segment 2 and acknowledged a record at offset 2, below the
    log start, where no one can read it (chaser test: OffsetOutOfRangeError [8889, 8817])."""
    root = str(tmp_path / "data")
    a = streamlog.open(root)
    b = streamlog.open(root)
    c = streamlog.open(root)
    try:
        a.create_topic(TOPIC, 1, {"segment.bytes": 4096})
        pa, pb, pc = (x.partition(TOPIC, 0) for x in (a, b, c))
        pb.append(prepare_batch([b"b0"]))
        assert pc.end_offset == 1
        for i in range(5):
            pa.append(prepare_batch([b"a%d" % i]))
            pa.roll()
        assert pa.delete_records(5) == 5
        # the lagging reader follows past the deleted segments
        assert pc.end_offset == 6
        assert [r[3] for batch in pc.read(5) for r in batch.records()] == [b"a4"]
        # the lagging writer appends at the end, not into a re-created old segment
        r = pb.append(prepare_batch([b"b1"]))
        assert r.base_offset == 6
        assert pa.end_offset == 7
        assert [r[3] for batch in pa.read(6) for r in batch.records()] == [b"b1"]
        assert not os.path.exists(os.path.join(pa.path, "00000000000000000002.log"))
        pa._check()
    finally:
        c.close()
        b.close()
        a.close()
    assert streamlog.check(root).ok


def test_regression_opening_a_segment_being_deleted_leaves_no_orphans(
    tmp_path, monkeypatch
) -> None:
    """A reader opened a segment's .log just before retention in another process
    deleted it, then opened (so created again) its index files: orphan index files
    (chaser test: check() 'orphan')."""
    from streamlog.storage import _segment

    root = str(tmp_path / "data")
    a = streamlog.open(root)
    b = streamlog.open(root)
    try:
        a.create_topic(TOPIC, 1, {"segment.bytes": 4096})
        pa = a.partition(TOPIC, 0)
        pa.append(prepare_batch([b"old"]))
        pa.roll()
        pa.append(prepare_batch([b"new"]))
        pb = b.partition(TOPIC, 0)  # knows segment 0 by name only (not opened yet)
        orig = _segment.OffsetIndex
        fired: list[int] = []

        def index(path: str, *args, **kwargs):  # type: ignore[no-untyped-def]
            if path.endswith(f"{0:020d}.index") and not fired:
                fired.append(pa.delete_records(1))  # retention elsewhere, right now
            return orig(path, *args, **kwargs)

        monkeypatch.setattr(_segment, "OffsetIndex", index)
        with pytest.raises(streamlog.OffsetOutOfRangeError):
            pb.read(0)
        monkeypatch.undo()
        assert fired == [1]
        assert sorted(n for n in os.listdir(pa.path) if n.startswith(f"{0:020d}")) == []
        assert [r[3] for batch in pb.read(1) for r in batch.records()] == [b"new"]
    finally:
        b.close()
        a.close()
    assert streamlog.check(root).ok


def test_regression_open_while_retention_deletes_the_listed_active_segment(
    tmp_path, monkeypatch
) -> None:
    """Opening a partition listed the segments, then another process rolled and deleted
    the last one before it was opened: StorageIOError ENOENT from log.partition()
    (chaser test)."""
    from streamlog.storage._partition import PartitionLog

    root = str(tmp_path / "data")
    a = streamlog.open(root)
    b = streamlog.open(root)
    try:
        a.create_topic(TOPIC, 1, {"segment.bytes": 4096})
        pa = a.partition(TOPIC, 0)
        pa.append(prepare_batch([b"x"]))
        pa.roll()
        pa.append(prepare_batch([b"y"]))
        orig = PartitionLog._list_bases
        fired: list[int] = []

        def list_bases(self: PartitionLog) -> list[int]:
            out = orig(self)
            if self is not pa and not fired:
                pa.append(prepare_batch([b"z"]))
                pa.roll()
                fired.append(pa.delete_records(pa.end_offset))  # deletes what we listed
            return out

        monkeypatch.setattr(PartitionLog, "_list_bases", list_bases)
        pb = b.partition(TOPIC, 0)
        monkeypatch.undo()
        assert fired == [3]
        assert pb.end_offset == 3 and pb.log_start_offset == 3
        pb.append(prepare_batch([b"w"]))
        assert [r[3] for batch in pa.read(3) for r in batch.records()] == [b"w"]
    finally:
        b.close()
        a.close()
    assert streamlog.check(root).ok


def test_regression_describe_topic_after_another_process_deleted_segments(tmp_path) -> None:
    """describe_topic (size_bytes) and segments() opened every segment they had listed,
    including ones another process had deleted since: StorageIOError ENOENT."""
    root = str(tmp_path / "data")
    a = streamlog.open(root)
    b = streamlog.open(root)
    try:
        a.create_topic(TOPIC, 1, {"segment.bytes": 4096})
        pa = a.partition(TOPIC, 0)
        for i in range(3):
            pa.append(prepare_batch([b"a%d" % i]))
            pa.roll()
        pb = b.partition(TOPIC, 0)  # lists segments 0..3, opens only the last
        pa.delete_records(pa.end_offset)
        desc = b.describe_topic(TOPIC).partitions[0]
        assert (desc.log_start_offset, desc.end_offset, desc.segments) == (3, 3, 1)
        assert [s.base_offset for s in pb.segments()] == [3]
    finally:
        b.close()
        a.close()
