"""Kill -9 of a producer process (reliability plan T1, T2).

A child process appends numbered records with ``sync=True`` and prints each
acknowledged batch; the parent SIGKILLs it, reopens the directory (recovery)
and checks the invariants:

a. every acknowledged record is present exactly once, in order, at its
   acknowledged offset (unless ``delete_records`` was asked to drop it);
b. offsets are dense from the log start to the end;
c. only records that were written are returned (values are checked);
d. open succeeds, ``streamlog.check`` is ok, and appends continue.

``test_kill9_random_moments`` kills at random moments; ``test_kill_at_crash_point``
kills at the n-th pass of every named crash point (``STREAMLOG_CRASHPOINT``).
SIGKILL leaves the page cache intact, so this proves process-crash safety only.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

import streamlog
from streamlog.storage._codec import prepare_batch
from tests._procs import kill_after_first_ack
from tests.reliability._points import KILL9_POINTS, source_crash_points

pytestmark = [pytest.mark.crash, pytest.mark.multiprocess]

CHILD = os.path.join(os.path.dirname(__file__), "_kill9_child.py")
TOPIC = "k"
CONFIG = {"segment.bytes": 4096, "index.interval.bytes": 256}


@dataclass
class History:
    """What was acknowledged so far, across all children and the parent."""

    acked: dict[int, bytes] = field(default_factory=dict)  # offset -> value
    log_start: int = 0  # the highest log start anyone asked for
    kills: int = 0
    runs: int = 0
    records_verified: int = 0
    unacked_present: int = 0

    def ack(self, base: int, values: list[bytes]) -> None:
        for j, v in enumerate(values):
            off = base + j
            assert off not in self.acked, f"offset {off} acknowledged twice"
            self.acked[off] = v


def _setup(root: str) -> None:
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, CONFIG)


def _parse(out: bytes, hist: History) -> tuple[bool, int | None]:
    """Record the acknowledged batches in ``out``; returns (saw DONE, last requested start)."""
    done = False
    requested = None
    last_base = -1
    lines = out.split(b"\n")
    for line in lines[:-1]:  # the last piece has no newline: not acknowledged
        parts = line.split()
        if parts[0] == b"A":
            base = int(parts[1])
            assert base > last_base, "acknowledged offsets must increase"
            last_base = base
            hist.ack(base, parts[2:])
        elif parts[0] == b"D":
            requested = int(parts[1])
        elif parts[0] == b"DONE":
            done = True
        else:
            raise AssertionError(f"unexpected child output {line!r}")
    return done, requested


def _verify(root: str, hist: History, requested: int | None, what: str) -> None:
    """Open (recovering), check invariants a-d, append one batch, close."""
    prev_start = hist.log_start
    if requested is not None:
        hist.log_start = max(hist.log_start, requested)
    with streamlog.open(root) as log:
        p = log.partition(TOPIC, 0)
        start, end = p.log_start_offset, p.end_offset
        # the log start moved only as far as delete_records asked
        assert prev_start <= start <= hist.log_start, (what, prev_start, start, hist.log_start)
        hist.log_start = start
        seen: dict[bytes, int] = {}
        expect = start
        off = start
        while off < end:
            batches = p.read(off, 1 << 20)
            assert batches, (what, off, end)
            for b in batches:
                for o, _ts, _k, v, _h in b.records():
                    if o < off:
                        continue
                    assert o == expect, f"{what}: offset {o}, expected {expect} (not dense)"
                    expect += 1
                    assert v not in seen, f"{what}: {v!r} at {seen[v]} and {o} (duplicate)"
                    seen[v] = o
                    want = hist.acked.get(o)
                    if want is not None:
                        assert v == want, f"{what}: offset {o} holds {v!r}, acked {want!r}"
                    else:
                        hist.unacked_present += 1
                        hist.acked[o] = v  # written; from now on it must stay
                off = b.last_offset + 1
        assert expect == end
        lost = [o for o in hist.acked if start <= o and o not in seen.values()]
        assert not lost, f"{what}: acknowledged offsets lost: {lost[:10]}"
        assert max(hist.acked, default=-1) < end
        hist.records_verified += len(seen)
        # appends continue at the end
        r = p.append(prepare_batch([b"parent-%d" % hist.runs]), sync=True)
        assert r.base_offset == end, (what, r.base_offset, end)
        hist.ack(r.base_offset, [b"parent-%d" % hist.runs])
        p._check()
    report = streamlog.check(root)
    assert report.ok, f"{what}:\n{report}"


def _spawn(root: str, run: str, count: int, delete_every: int, aux_every: int,
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, CHILD, root, TOPIC, run, str(count), str(delete_every), str(aux_every)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_kill9_random_moments(tmp_path) -> None:
    """>= 50 SIGKILLs at random moments after the first acknowledgement."""
    iterations = 80
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    root = str(tmp_path / "data")
    _setup(root)
    hist = History()
    t0 = time.monotonic()
    for it in range(iterations):
        proc = _spawn(root, f"{it}", 10_000, delete_every=rng.choice([0, 0, 7, 20]), aux_every=0)
        out = kill_after_first_ack(proc, rng.uniform(0.005, 0.080))
        hist.kills += 1
        hist.runs += 1
        done, requested = _parse(out, hist)
        assert not done
        _verify(root, hist, requested, f"seed {seed} iteration {it}")
        if it % 3 == 2:
            # let the next child recover by itself
            os.unlink(os.path.join(root, "meta", "clean-shutdown"))
    elapsed = time.monotonic() - t0
    print(
        f"\nkill9 (seed {seed}): kills survived {hist.kills}/{iterations}; acked records "
        f"{len(hist.acked)}, lost 0, duplicates 0; records verified {hist.records_verified}; "
        f"unacked-but-present {hist.unacked_present}; {elapsed:.1f}s"
    )
    assert hist.kills >= 50
    assert len(hist.acked) > iterations * 3


@pytest.mark.parametrize("point", KILL9_POINTS)
def test_kill_at_crash_point(tmp_path, point: str) -> None:
    """SIGKILL at the n-th pass of ``point`` for n = 1..3; every run must die there."""
    root = str(tmp_path / "data")
    _setup(root)
    hist = History()
    for n in (1, 2, 3):
        env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
        proc = _spawn(root, f"{n}", 100, delete_every=25, aux_every=30, env=env)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, (
            f"{point}:{n} was not reached (rc {proc.returncode})\n{err.decode()}"
        )
        hist.kills += 1
        hist.runs += 1
        done, requested = _parse(out, hist)
        assert not done
        _verify(root, hist, requested, f"{point}:{n}")
    print(f"\ncrash point {point} x n=1..3: kills survived {hist.kills}/3; "
          f"records verified {hist.records_verified}")


def test_crash_points_exist_in_source() -> None:
    """The names tested above are the ones the library passes (a rename breaks this test)."""
    in_source = source_crash_points()
    for point in KILL9_POINTS:
        assert point in in_source, point
