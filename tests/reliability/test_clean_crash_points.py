"""Crash safety of log compaction: every ``clean.*`` crash point x every n, and kill -9.

The crash-point loop (plan T2 for the cleaner): a child opens the data directory
and runs ``Log.compact``; ``STREAMLOG_CRASHPOINT=clean.<point>:n`` kills it at the
n-th pass, for n = 1, 2, ... until a run completes. After every kill the directory
is reopened (recovery completes or drops the interrupted swap) and must read as a
mix of pre-clean and post-clean segments: every record read is the record written
at that offset, offsets increase, the latest write of every key is there, ``check``
is clean (no ``.cleaned``/``.swap`` left), and appends continue at the end.
``clean.swap_completed`` is only passed while finishing a swap a crash left, so its
loop starts from a directory killed at ``clean.swap_renamed``.

The kill -9 loop: a child appends keyed records (one per acknowledgement, printed)
and compacts, over and over; the parent kills it after a random number of
acknowledgements (every other run: at a random ``clean.*`` point and pass instead,
so that half the kills land inside a compaction) and checks that the last
acknowledged value of every key (or the one write in flight) survives, that
nothing read was never written, and that ``check`` is clean. 30 kills in the fast
tier, more with ``--soak``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

import streamlog
from streamlog.storage import PartitionLog, prepare_batch

from ._figures import record
from ._points import clean_points

TOPIC = "t"
CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": 4096,
    "index.interval.bytes": 256,
    "delete.retention.ms": 0,
}
KEYS = 6
MANY_KEYS = 80  # (300 records: 9 sealed segments, cleaned into 4 groups of merged ones)

COMPACT = """
import sys, streamlog
with streamlog.open(sys.argv[1], cleaner=False) as log:
    log.compact("t")
    print("DONE", flush=True)
"""

WRITER = """
import sys, streamlog
from streamlog.storage import prepare_batch
root, start = sys.argv[1], int(sys.argv[2])
with streamlog.open(root, cleaner=False) as log:
    p = log.partition("t", 0)
    i = start
    while True:
        key = b"k%d" % (i % 6)
        value = None if i % 11 == 10 else b"w%d-" % i + b"x" * (i % 90)
        off = p.append(prepare_batch([value], [key], 1000 + i)).base_offset
        print("A", off, i, flush=True)
        i += 1
        if i % 13 == 0:
            log.compact("t")
            print("C", flush=True)
"""


def _value(i: int) -> bytes | None:
    return None if i % 11 == 10 else b"w%d-" % i + b"x" * (i % 90)


def _read(p: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    out = []
    off, end = p.log_start_offset, p.end_offset
    while off < end:
        batches = p.read(off)
        assert batches, f"a read at {off} below the end {end} returned nothing"
        for b in batches:
            for o, _ts, k, v, _h in b.records():
                if o >= off:
                    out.append((o, k, v))
        off = batches[-1].next_offset
    return out


def _key(i: int, keys: int) -> bytes:
    if keys == KEYS:
        return b"k%d" % (i % keys)
    # (scattered: the latest records of the keys are spread over the whole log, so the
    # cleaned segments are of all sizes and merge in several groups)
    return b"k%d" % ((i * 2654435761 % 2**32) % keys if i % 3 else i % keys)


def _setup(root: str, keys: int = KEYS) -> dict[int, tuple[bytes, bytes | None]]:
    written: dict[int, tuple[bytes, bytes | None]] = {}
    with streamlog.open(root, cleaner=False) as log:
        log.create_topic(TOPIC, 1, CONFIG)
        p = log.partition(TOPIC, 0)
        for i in range(160 if keys == KEYS else 300):
            key, value = _key(i, keys), _value(i)
            off = p.append(prepare_batch([value], [key], 1000 + i)).base_offset
            written[off] = (key, value)
        assert p.segment_count >= 4
    return written


def _verify(root: str, written: dict[int, tuple[bytes, bytes | None]], what: str) -> None:
    last: dict[bytes, int] = {}
    for off, (key, _v) in sorted(written.items()):
        last[key] = off
    with streamlog.open(root, cleaner=False) as log:
        p = log.partition(TOPIC, 0)
        records = _read(p)
        offsets = [o for o, _k, _v in records]
        assert offsets == sorted(set(offsets)), f"{what}: order broken"
        for o, k, v in records:
            assert written.get(o) == (k, v), f"{what}: offset {o} reads {(k, v)}"
        seen = set(offsets)
        for key, off in last.items():
            # (a tombstone may go: delete.retention.ms is 0)
            assert off in seen or written[off][1] is None, f"{what}: latest {key!r} lost"
        end = p.end_offset
        r = p.append(prepare_batch([b"after"], [b"k0"], 5000), sync=True)
        assert r.base_offset == end, f"{what}: append went to {r.base_offset}, end {end}"
        written[r.base_offset] = (b"k0", b"after")
    report = streamlog.check(root)
    assert report.ok, f"{what}:\n{report}"


def _child(code: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, env=env, timeout=120
    )


def clean_point_loop(
    tmp: str, points: list[str], max_n: int, keys: int = KEYS
) -> dict[str, int]:
    figs = {"points": 0, "point_x_n": 0, "kills": 0, "completed": 0}
    for point in points:
        root = os.path.join(tmp, point)
        written = _setup(root, keys)
        if point == "clean.swap_completed":
            # leave a committed swap behind: the next open's recovery finishes it
            env = dict(os.environ, STREAMLOG_CRASHPOINT="clean.swap_renamed:1")
            assert _child(COMPACT, [root], env).returncode == -signal.SIGKILL
        for n in range(1, max_n + 1):
            env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
            proc = _child(COMPACT, [root], env)
            what = f"{point}:{n}"
            if proc.returncode == 0:
                assert b"DONE" in proc.stdout, what
                figs["completed"] += 1
                _verify(root, written, what)
                break
            assert proc.returncode == -signal.SIGKILL, (
                f"{what}: rc {proc.returncode}\n{proc.stderr.decode()[-3000:]}"
            )
            figs["kills"] += 1
            figs["point_x_n"] += 1
            _verify(root, written, what)
            if point == "clean.swap_completed":
                break  # (the verification's open finished the swap: nothing left to pass)
        assert figs["kills"], f"{point} never reached"
        figs["points"] += 1
        shutil.rmtree(root)
    return figs


def test_clean_points_exist() -> None:
    assert set(clean_points()) == {
        "clean.cleaned_written",
        "clean.swap_renamed",
        "clean.log_replaced",
        "clean.merged_synced",
        "clean.superseded_deleted",
        "clean.indexes_replaced",
        "clean.checkpointed",
        "clean.swap_completed",
    }


def test_every_clean_point_every_n(tmp_path: os.PathLike[str]) -> None:
    """Two shapes: few keys (the log is merged into one segment: every point is passed
    once) and many keys (four groups of merged segments: every point several times)."""
    t0 = time.monotonic()
    for keys in (KEYS, MANY_KEYS):
        figs = clean_point_loop(os.path.join(tmp_path, f"k{keys}"), clean_points(), 50, keys)
        print(f"\nclean crash points x n, {keys} keys: {figs}; {time.monotonic() - t0:.1f}s")
        record("T2 clean crash points", **figs)
        assert figs["points"] == len(clean_points())
    assert figs["kills"] > figs["points"]  # (several groups: some points at n > 1 too)


def _check_view(
    p: PartitionLog, written: dict[int, tuple[bytes, bytes | None]], what: str
) -> None:
    """What a reader sees: every record the one written at its offset, in order, once;
    the latest write of every key there (or, for a tombstone, maybe gone)."""
    last: dict[bytes, int] = {}
    for off, (key, _v) in sorted(written.items()):
        last[key] = off
    records = _read(p)
    offsets = [o for o, _k, _v in records]
    assert offsets == sorted(set(offsets)), f"{what}: order broken or a record twice"
    for o, k, v in records:
        assert written.get(o) == (k, v), f"{what}: offset {o} reads {(k, v)}"
    seen = set(offsets)
    for key, off in last.items():
        assert off in seen or written[off][1] is None, f"{what}: latest {key!r} lost"


def open_elsewhere_loop(tmp: str, points: list[str], max_n: int) -> dict[str, int]:
    """The crash-point loop while this process keeps the directory open (so no open
    recovers it): after each kill, the handle that was open throughout (its maps of the
    old segments), a partition opened afresh (it lists the directory as the kill left
    it) and ``check`` (leftovers of the swap are ``temporary``, nothing else) see a
    whole log; a later round in another process finishes what the kill left, and one
    here at the end leaves a clean directory."""
    figs = {"points": 0, "point_x_n": 0, "kills": 0, "completed": 0}
    for point in points:
        root = os.path.join(tmp, point)
        written = _setup(root, MANY_KEYS)
        with streamlog.open(root, cleaner=False) as log:
            p = log.partition(TOPIC, 0)
            _check_view(p, written, point)  # (maps every segment)
            if point == "clean.swap_completed":
                env = dict(os.environ, STREAMLOG_CRASHPOINT="clean.swap_renamed:1")
                assert _child(COMPACT, [root], env).returncode == -signal.SIGKILL
            for n in range(1, max_n + 1):
                env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
                proc = _child(COMPACT, [root], env)
                what = f"{point}:{n} (open elsewhere)"
                if proc.returncode == 0:
                    figs["completed"] += 1
                    _check_view(p, written, what)
                    break
                assert proc.returncode == -signal.SIGKILL, (
                    f"{what}: rc {proc.returncode}\n{proc.stderr.decode()[-3000:]}"
                )
                figs["kills"] += 1
                figs["point_x_n"] += 1
                _check_view(p, written, what)
                fresh = PartitionLog(p.path, p.config)
                try:
                    _check_view(fresh, written, what + ", opened afresh")
                    if not [n for n in os.listdir(p.path) if n.endswith(".swap")]:
                        fresh._check()  # (a live index may be the old one's till then)
                finally:
                    fresh.close()
                report = streamlog.check(root)
                kinds = {pr.kind for pr in report.problems}
                assert kinds <= {"temporary"}, f"{what}:\n{report}"
            log.compact(TOPIC)
            _check_view(p, written, f"{point}: the last round here")
            p._check()
            r = p.append(prepare_batch([b"after"], [b"k0"], 5000), sync=True)
            written[r.base_offset] = (b"k0", b"after")
        report = streamlog.check(root)
        assert report.ok, f"{point}:\n{report}"
        assert figs["kills"], f"{point} never reached"
        figs["points"] += 1
        shutil.rmtree(root)
    return figs


def test_every_clean_point_while_open_elsewhere(tmp_path: os.PathLike[str]) -> None:
    t0 = time.monotonic()
    figs = open_elsewhere_loop(os.fspath(tmp_path), clean_points(), max_n=50)
    print(f"\nclean crash points x n, open elsewhere: {figs}; {time.monotonic() - t0:.1f}s")
    record("T2 clean crash points, open elsewhere", **figs)
    assert figs["points"] == len(clean_points())


def kill9_loop(tmp: str, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    root = os.path.join(tmp, "kill9")
    written = _setup(root)
    figs = {"kills": 0, "acks": 0, "compactions": 0}
    i = 1000
    for k in range(kills):
        target = rng.randint(1, 120)
        env = dict(os.environ)
        if k % 2:
            # every other kill inside a compaction: at a random step of its protocol
            points = [p for p in clean_points() if p != "clean.swap_completed"]
            env["STREAMLOG_CRASHPOINT"] = f"{rng.choice(points)}:{rng.randint(1, 4)}"
            target = 1 << 30  # (until the point kills it)
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, root, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # (unbuffered: what we do not read here, communicate() returns)
        )
        assert proc.stdout is not None
        acks = 0
        in_flight = -1

        def parse(line: bytes) -> None:
            nonlocal acks, in_flight, i
            parts = line.split()
            if not line.endswith(b"\n") or not parts:
                return  # (a line cut by the kill: not acknowledged)
            if parts[0] == b"A":
                off, idx = int(parts[1]), int(parts[2])
                written[off] = (b"k%d" % (idx % KEYS), _value(idx))
                acks += 1
                in_flight = off + 1
                i = idx + 1
            elif parts[0] == b"C":
                figs["compactions"] += 1

        try:
            while acks < target:
                line = proc.stdout.readline()
                if not line:
                    break
                parse(line)
        finally:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
        for line in out.splitlines(keepends=True):  # (printed before the kill, unread)
            parse(line)
        assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
        figs["kills"] += 1
        figs["acks"] += acks
        # the write in flight at the kill may or may not be there: learn it from the log
        with streamlog.open(root, cleaner=False) as log:
            p = log.partition(TOPIC, 0)
            if in_flight >= 0 and p.end_offset > in_flight:
                batch = p.read(in_flight)[0]
                for o, _ts, key, value, _h in batch.records():
                    if o == in_flight:
                        written[o] = (key, value)
                i += 1
        _verify(root, written, f"kill {k} (seed {seed})")
    return figs


def test_kill9_during_compaction(tmp_path: os.PathLike[str]) -> None:
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", random.randrange(1 << 30)))
    figs = kill9_loop(os.fspath(tmp_path), 30, seed)
    print(f"\nkill -9 during compaction (seed {seed}): {figs}")
    record("T1 kill -9 during compaction", **figs)
    assert figs["kills"] == 30


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_kill9_during_compaction_soak(tmp_path: os.PathLike[str]) -> None:
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", random.randrange(1 << 30)))
    figs = kill9_loop(os.fspath(tmp_path), 300, seed)
    print(f"\nkill -9 during compaction, soak (seed {seed}): {figs}")
    record("T1 kill -9 during compaction", **figs)


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_every_clean_point_every_n_soak(tmp_path: os.PathLike[str]) -> None:
    for keys in (KEYS, MANY_KEYS):
        figs = clean_point_loop(os.path.join(tmp_path, f"k{keys}"), clean_points(), 200, keys)
        record("T2 clean crash points", **figs)
