"""A crash in the middle of recovery leaves a directory that the next open recovers (KAFKA-10471).

Recovery runs while the opener holds the directory exclusively; killing it at
each named point of recovery, then opening again, must keep every batch
before the damage and let appends continue at the next offset.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import streamlog
from streamlog.storage import prepare_batch
from tests.reliability._points import MID_RECOVERY_POINTS

pytestmark = pytest.mark.crash


def _build_damaged(data_dir: str) -> list[bytes]:
    values = [b"value-%03d" % i for i in range(120)]
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096})
        part = log.partition("t", 0)
        for i in range(0, len(values), 4):
            part.append(prepare_batch(values[i : i + 4], timestamps=int(time.time() * 1000)))
        active = part.segments()[-1]
        tail, path = active.tail, active.path
        last = active.batches()[-1][0]
    os.unlink(os.path.join(data_dir, "meta", "clean-shutdown"))
    with open(path, "r+b") as f:  # tear the last batch: cut it in the middle
        f.truncate(last + (tail - last) // 2)
    return values[:-4]  # the torn batch held the last four values


def _open_in_child(data_dir: str, point: str, n: int) -> int:
    env = {**os.environ, "STREAMLOG_CRASHPOINT": f"{point}:{n}"}
    code = f"import streamlog; streamlog.open({data_dir!r}).close()"
    return subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode


@pytest.mark.parametrize("point", MID_RECOVERY_POINTS)
@pytest.mark.parametrize("n", [1, 2])
def test_recovery_killed_at_each_point_is_completed_by_the_next_open(
    data_dir: str, point: str, n: int
) -> None:
    kept = _build_damaged(data_dir)
    rc = _open_in_child(data_dir, point, n)
    assert rc in (-9, 0)  # killed there, or the point is passed fewer than n times
    if rc == 0 and n == 1:
        pytest.fail(f"recovery never reached {point}")
    with streamlog.open(data_dir) as log:
        part = log.partition("t", 0)
        got = [r[3] for b in part.read(0, 1 << 30) for r in b.records()]
        assert got == kept
        result = part.append(prepare_batch([b"after"], timestamps=1))
        assert result.base_offset == len(kept)
        part._check()
    assert streamlog.check(data_dir).ok
