"""SIGKILL at every named crash point, n = 1, 2, ... until the operation completes (T1, T2).

``_workload_child.py`` runs appends (with and without sync, rolling), a roll,
``delete_records``, retention, offset commits, a topic creation and a close;
its first read rebuilds a damaged index. For each crash point the parent runs
it with ``STREAMLOG_CRASHPOINT=<point>:<n>`` for n = 1, 2, ... until a child
finishes without reaching the n-th pass. After every kill it opens the
directory (recovery) and checks:

- every acknowledged record (a line the child printed) is present once, at
  its offset, with its value; offsets are dense from the log start;
- the log start moved only as far as ``delete_records``/retention asked;
- the committed offset is at least the last acknowledged commit;
- every acknowledged topic exists; ``streamlog.check`` is clean;
- appends continue at the end offset.

The recovery points are tested on a damaged directory (torn tail, stale
temporary and orphan files, a segment that lost its seal, no clean-shutdown
marker): a child is killed at the n-th pass, then another open completes the
recovery (a crash during recovery, then recovery again: KAFKA-10471).

Fast tier: the points not covered by ``tests/crash`` at n = 1. Soak: every
point x every n, and the random-moment kill loop of
``tests/multiprocess/test_clients_multiprocess.py`` (``acks=1`` and
``acks="all"``) for 500 kills.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.coordination._offsets import OffsetStore
from streamlog.storage import prepare_batch
from streamlog.storage._state import PartitionState

from ._figures import record
from ._points import (
    COVERED,
    MID_RECOVERY_POINTS,
    operation_points,
    recovery_points,
    source_crash_points,
)
from ._verify import read_partition

CHILD = os.path.join(os.path.dirname(__file__), "_workload_child.py")
TOPIC = "t"
GROUP = "g"
CONFIG = {"segment.bytes": 4096, "index.interval.bytes": 256}


@dataclass
class History:
    acked: dict[int, bytes] = field(default_factory=dict)
    requested_start: int = 0
    start: int = 0
    commit: int = -1
    topics: set[str] = field(default_factory=lambda: {TOPIC})
    deleted: set[str] = field(default_factory=set)
    runs: int = 0
    kills: int = 0
    records_verified: int = 0


def _setup(root: str, hist: History) -> None:
    """The topic, with a few sealed segments already."""
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, CONFIG)
        p = log.partition(TOPIC, 0)
        for i in range(24):
            values = [b"s%d-%d-" % (i, j) + b"s" * 400 for j in range(2)]
            r = p.append(prepare_batch(values))
            for j, v in enumerate(values):
                hist.acked[r.base_offset + j] = v


def _parse(out: bytes, hist: History) -> bool:
    done = False
    for line in out.split(b"\n")[:-1]:  # a last piece without newline was not acknowledged
        parts = line.split()
        tag = parts[0]
        if tag == b"A":
            base = int(parts[1])
            for j, v in enumerate(parts[2:]):
                assert hist.acked.get(base + j, v) == v, f"offset {base + j} acknowledged twice"
                hist.acked[base + j] = v
        elif tag == b"D":
            hist.requested_start = max(hist.requested_start, int(parts[1]))
        elif tag == b"C":
            hist.commit = max(hist.commit, int(parts[1]))
        elif tag == b"T":
            hist.topics.add(parts[1].decode())
        elif tag == b"Y":
            hist.topics.discard(parts[1].decode())
        elif tag == b"X":
            hist.deleted.add(parts[1].decode())
        elif tag == b"DONE":
            done = True
        else:
            raise AssertionError(f"unexpected child output {line!r}")
    return done


def _verify(root: str, hist: History, what: str) -> None:
    with streamlog.open(root) as log:
        missing = hist.topics - set(log.topics())
        assert not missing, f"{what}: acknowledged topics lost: {missing}"
        back = hist.deleted & set(log.topics())
        assert not back, f"{what}: acknowledged deletions undone: {back}"
        p = log.partition(TOPIC, 0)
        view = read_partition(p)
        assert view.holes == 0, f"{what}: corrupt batches after a process crash"
        assert hist.start <= view.start <= max(hist.start, hist.requested_start), (
            f"{what}: log start {view.start}, was {hist.start}, asked {hist.requested_start}"
        )
        hist.start = view.start
        assert sorted(view.records) == list(range(view.start, view.end)), f"{what}: not dense"
        for off, v in hist.acked.items():
            if off >= view.start:
                assert view.records.get(off) == v, f"{what}: acknowledged offset {off} lost"
        # written but not acknowledged (killed before printing): keep it from now on
        for off, v in view.records.items():
            hist.acked.setdefault(off, v)
        hist.records_verified += len(view.records)
        end = p.end_offset
        r = p.append(prepare_batch([b"parent-%d" % hist.runs]), sync=True)
        assert r.base_offset == end, f"{what}: append went to {r.base_offset}, end {end}"
        hist.acked[r.base_offset] = b"parent-%d" % hist.runs
        with OffsetStore(root, GROUP) as store:
            c = store.committed(TopicPartition(TOPIC, 0))
            if hist.commit >= 0:
                assert c is not None and c.offset >= hist.commit, f"{what}: commit lost"
    report = streamlog.check(root)
    assert report.ok, f"{what}:\n{report}"


def _run_child(root: str, run: int, env: dict[str, str]) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(
        [sys.executable, CHILD, root, str(run)], capture_output=True, env=env, timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


def crash_point_loop(tmp: str, points: list[str], max_n: int) -> dict[str, int]:
    """Kill at ``point:n`` for n = 1.. until a run completes (or ``max_n``)."""
    figs = {"points": 0, "point_x_n": 0, "kills": 0, "completed": 0, "records_verified": 0}
    for point in points:
        root = os.path.join(tmp, point)
        hist = History()
        _setup(root, hist)
        for n in range(1, max_n + 1):
            hist.runs += 1
            env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
            rc, out, err = _run_child(root, hist.runs, env)
            done = _parse(out, hist)
            what = f"{point}:{n}"
            if rc == 0:
                assert done, f"{what}: exited 0 without DONE"
                figs["completed"] += 1
                _verify(root, hist, what)
                break
            assert rc == -signal.SIGKILL, f"{what}: child ended with {rc}\n{err.decode()[-3000:]}"
            assert not done
            figs["kills"] += 1
            figs["point_x_n"] += 1
            _verify(root, hist, what)
        else:
            assert n == max_n
        assert figs["kills"] or n > 1, f"{point} was never reached"
        figs["points"] += 1
        figs["records_verified"] += hist.records_verified
        shutil.rmtree(root)
    return figs


# ---------------------------------------------------------------- recovery points


def _damaged_template(path: str) -> list[bytes]:
    """A directory needing every kind of repair; returns the values recovery keeps."""
    values: list[bytes] = []
    with streamlog.open(path) as log:
        log.create_topic(TOPIC, 1, CONFIG)
        p = log.partition(TOPIC, 0)
        for i in range(40):
            v = [b"d%d-%d-" % (i, j) + b"w" * 300 for j in range(2)]
            p.append(prepare_batch(v))
            values.extend(v)
        segs = p.segments()
        assert len(segs) >= 4
        unseal = segs[-3]  # the seal of this one is lost: an offset gap follows it
        last_of_unseal = unseal.batches()[-1][1]
        assert last_of_unseal is not None
        cut_unseal = (unseal.path, unseal.tail)
        assert unseal.next_base is not None
        gap = (last_of_unseal.base_offset, unseal.next_base)
        active = segs[-1]
        pos, last = active.batches()[-1]
        assert last is not None
        torn = (active.path, pos + last.size // 2)
    pdir = os.path.join(path, "topics", TOPIC, "0")
    state = PartitionState(os.path.join(pdir, "state"))
    state.write_durable(0, 0, sync=True)  # recovery point 0: recovery scans every segment
    state.close()
    os.unlink(os.path.join(path, "meta", "clean-shutdown"))
    with open(cut_unseal[0], "r+b") as f:  # drop the seal and the last batch
        f.truncate(last_of_unseal.position)
    with open(torn[0], "r+b") as f:  # tear the active segment's last batch
        f.truncate(torn[1])
    for stale in ("00000000000000000000.index.tmp", "99999999999999999999.index"):
        with open(os.path.join(pdir, stale), "wb") as f:
            f.write(b"stale")
    # recovery keeps everything but the torn batch and the batches of the lost seal
    lost = {last.base_offset, last.base_offset + 1} | set(range(*gap))
    return [v for off, v in enumerate(values) if off not in lost]


def recovery_point_loop(tmp: str, points: list[str], max_n: int) -> dict[str, int]:
    template = os.path.join(tmp, "template")
    kept = _damaged_template(template)
    figs = {"points": 0, "point_x_n": 0, "kills": 0, "completed": 0}
    code = "import sys, streamlog; streamlog.open(sys.argv[1]).close()"
    for point in points:
        for n in range(1, max_n + 1):
            root = os.path.join(tmp, "run")
            if os.path.exists(root):
                shutil.rmtree(root)
            shutil.copytree(template, root)
            env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
            proc = subprocess.run([sys.executable, "-c", code, root], env=env, timeout=60)
            what = f"{point}:{n}"
            if proc.returncode == 0:
                figs["completed"] += 1
                break
            assert proc.returncode == -signal.SIGKILL, f"{what}: rc {proc.returncode}"
            figs["kills"] += 1
            figs["point_x_n"] += 1
            # the next open completes the recovery
            with streamlog.open(root) as log:
                p = log.partition(TOPIC, 0)
                view = read_partition(p)
                got = [view.records[o] for o in sorted(view.records)]
                assert got == kept, f"{what}: recovered log differs"
                assert p.append(prepare_batch([b"after"])).base_offset == view.end
            report = streamlog.check(root)
            assert report.ok, f"{what}:\n{report}"
        assert figs["kills"], f"{point} never reached"
        figs["points"] += 1
    return figs


# ---------------------------------------------------------------- tests


def test_every_crash_point_is_known() -> None:
    """Every point in the source is run here (or by the group suite), and documented."""
    points = source_crash_points()
    assert set(MID_RECOVERY_POINTS) <= set(recovery_points()) <= set(points)
    assert len(points) >= 30, points
    # next to the tests, not the package: CI installs the package into site-packages
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "reliability.md")) as f:
        doc = f.read()
    undocumented = [p for p in points if f"`{p}`" not in doc]
    assert not undocumented, f"crash points missing from docs/reliability.md: {undocumented}"


def test_new_crash_points_once(tmp_path: os.PathLike[str]) -> None:
    """Fast tier: the points tests/crash does not run, at n = 1."""
    t0 = time.monotonic()
    ops = [p for p in operation_points() if p not in COVERED]
    recs = [p for p in recovery_points() if p not in COVERED]
    a = crash_point_loop(os.fspath(tmp_path), ops, max_n=1)
    b = recovery_point_loop(os.fspath(tmp_path), recs, max_n=1)
    figs = {k: a.get(k, 0) + b.get(k, 0) for k in a}
    print(f"\ncrash points (n=1): {figs}; {time.monotonic() - t0:.1f}s")
    record("T2 crash points", **figs)
    assert a["kills"] == len(ops), a
    assert b["kills"] == len(recs), b


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_every_crash_point_every_n(tmp_path: os.PathLike[str]) -> None:
    a = crash_point_loop(os.fspath(tmp_path), operation_points(), max_n=200)
    b = recovery_point_loop(os.fspath(tmp_path), recovery_points(), max_n=200)
    figs = {k: a.get(k, 0) + b.get(k, 0) for k in a}
    print(f"\ncrash points x every n: {figs}")
    record("T2 crash points", **figs)


@pytest.mark.soak
@pytest.mark.timeout(0)
@pytest.mark.parametrize("acks", ["all", "1"])
def test_kill9_producer_soak(tmp_path: os.PathLike[str], acks: str) -> None:
    """T1: 250 SIGKILLs of a producer process per ack level, at random moments."""
    from tests.multiprocess.test_clients_multiprocess import _kill_loop

    iterations = int(os.environ.get("STREAMLOG_SOAK_KILLS", "250"))
    t0 = time.monotonic()
    n_acked, n_log, early = _kill_loop(tmp_path, acks, iterations)
    print(f"\nkill -9 x{iterations} (acks={acks}): {n_acked} acknowledged, {n_log} in the log")
    record(
        f"T1 kill -9 producer acks={acks}",
        kills=iterations,
        acked=n_acked,
        acked_lost=0,
        killed_before_first_ack=early,
        seconds=round(time.monotonic() - t0, 1),
    )
