"""Kill -9 of a process committing offsets (OffsetStore).

A child commits n, n+1, ... to three partitions at once with ``sync=True`` and
prints each acknowledged commit; the parent SIGKILLs it, loads the group and
checks:

a. the file loads clean (no ``MetadataCorruptError``) and ``_check`` passes;
b. the three partitions hold the same offset (a commit is all or nothing);
c. that offset is the last acknowledged one or a later one the child was
   writing (never an older value), and never less than what the parent saw
   after the previous kill;
d. the metadata is the one that commit wrote.

Children use large metadata so the file is rewritten every few dozen commits
and kills land in rewrites too. ``test_kill_at_crash_point`` kills at the
n-th pass of each crash point on the commit and rewrite paths (the
``meta.*`` points are inside ``fs.write_atomic``, which creates and rewrites
the file). SIGKILL leaves the page cache intact: this proves process-crash
safety only.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.coordination._offsets import OffsetStore
from tests._procs import kill_after_first_ack
from tests.reliability._points import OFFSETS_POINTS, source_crash_points

pytestmark = [pytest.mark.crash, pytest.mark.multiprocess]

CHILD = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_offsets_child.py")
GROUP = "g"
TPS = [TopicPartition("k", p) for p in range(3)]


def _spawn(
    root: str, start: int, count: int, meta_size: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, CHILD, "kill", root, GROUP, str(start), str(count), str(meta_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _acked(out: bytes) -> tuple[list[int], bool]:
    acks, done = [], False
    for line in out.split(b"\n")[:-1]:  # the last piece has no newline: not acknowledged
        if line == b"DONE":
            done = True
        else:
            tag, n = line.split()
            assert tag == b"A"
            acks.append(int(n))
    assert acks == sorted(acks)
    return acks, done


def _verify(root: str, floor: int, last_acked: int | None, attempted: int, what: str) -> int:
    """Checks a-d; returns the offset now committed (-1 if none)."""
    with OffsetStore(root, GROUP) as s:
        s._check()
        state = s.all()
    if not state:
        assert last_acked is None and floor < 0, f"{what}: acknowledged commits lost"
        return -1
    assert set(state) == set(TPS), f"{what}: {state}"
    values = {state[tp] for tp in TPS}
    assert len(values) == 1, f"{what}: a commit was applied in part: {state}"
    (v,) = values
    if last_acked is not None:
        assert v.offset >= last_acked, f"{what}: {v.offset} older than acknowledged {last_acked}"
    assert v.offset >= floor, f"{what}: went back from {floor} to {v.offset}"
    assert v.offset <= attempted, f"{what}: {v.offset} was never written"
    assert v.metadata.startswith(f"{v.offset}:"), f"{what}: metadata {v.metadata[:20]!r}"
    return v.offset


def test_kill9_loop(tmp_path: Path) -> None:
    """>= 30 SIGKILLs at random moments of a child committing with sync=True."""
    iterations = 32
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    root = str(tmp_path / "data")
    current = -1
    acked_total = 0
    inodes = set()
    t0 = time.monotonic()
    for it in range(iterations):
        start = current + 1
        proc = _spawn(root, start, 100_000, meta_size=rng.choice([0, 300, 1500]))
        out = kill_after_first_ack(proc, rng.uniform(0.0, 0.04))
        acks, done = _acked(out)
        assert not done and acks and acks[0] == start
        acked_total += len(acks)
        # the child may have written one commit past its last acknowledgement
        current = _verify(root, current, acks[-1], acks[-1] + 1, f"seed {seed} iteration {it}")
        inodes.add(os.stat(os.path.join(root, "meta", "groups", GROUP, "offsets.log")).st_ino)
    elapsed = time.monotonic() - t0
    print(
        f"\noffsets kill9 (seed {seed}): {iterations} kills survived; {acked_total} acknowledged "
        f"commits, none lost; {len(inodes)} distinct files seen (rewrites); {elapsed:.1f}s"
    )
    assert acked_total >= iterations
    assert len(inodes) > 1, "no rewrite happened: the loop did not exercise compaction"


@pytest.mark.parametrize("point", OFFSETS_POINTS)
def test_kill_at_crash_point(tmp_path: Path, point: str) -> None:
    """SIGKILL at the n-th pass of ``point`` for n = 1..3; every run must die there."""
    root = str(tmp_path / "data")
    current = -1
    last_acked: int | None = None
    for n in (1, 2, 3):
        env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
        start = current + 1
        proc = _spawn(root, start, 400, meta_size=1500, env=env)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (
            f"{point}:{n} was not reached (rc {proc.returncode})\n{err.decode()[-2000:]}"
        )
        acks, done = _acked(out)
        assert not done
        if acks:
            last_acked = acks[-1]
        attempted = (acks[-1] if acks else start - 1) + 1
        current = _verify(root, current, last_acked, attempted, f"{point}:{n}")
    # and the group still takes commits
    with OffsetStore(root, GROUP) as s:
        s.commit({tp: streamlog.OffsetAndMetadata(current + 1, f"{current + 1}:") for tp in TPS})
        s._check()


def test_crash_points_exist_in_source() -> None:
    """The names tested above are the ones the library passes (a rename breaks this test)."""
    in_source = source_crash_points()
    for point in OFFSETS_POINTS:
        assert point in in_source, point
