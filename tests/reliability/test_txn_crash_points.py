"""SIGKILL at every transaction crash point (``txn.*``), n = 1, 2, ... (T2 for transactions).

``_txn_child.py`` runs four transactions (data on two partitions plus consumer
offsets; the third aborted). For each ``txn.*`` point and n = 1, 2, ... until
the child finishes without reaching the n-th pass, the child is killed there;
then a new producer with the same transactional id runs ``init_transactions``
(which completes a decided transaction and aborts an open one) and the parent
checks:

- every transaction is all or nothing for a read_committed reader: both of its
  records, or neither; every one acknowledged as committed is there, the
  aborted one never is;
- the group's committed offset is exactly that of the last visible transaction
  (offsets and records commit together);
- nothing is left open: the LSO is the end of each partition, the coordinator's
  record is idle; ``streamlog.check`` is clean.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import streamlog
from streamlog import TopicPartition

from ._figures import record
from ._points import txn_points

CHILD = os.path.join(os.path.dirname(__file__), "_txn_child.py")


def _template(path: str) -> None:
    with streamlog.open(path) as log:
        log.create_topic("a", 2)
        log.create_topic("in", 1)


def _check(root: str, printed: list[str], what: str) -> None:
    with streamlog.open(root) as log:
        p = log.producer(transactional_id="x")
        p.init_transactions()  # finishes whatever the killed producer left
        p.close()
        c = log.consumer("a", isolation_level="read_committed", auto_offset_reset="earliest",
                         consumer_timeout_ms=200)
        values = sorted((r.value or b"").decode() for r in c)
        c.close()
        visible = {int(v[1]) for v in values}
        for i in visible:
            assert f"t{i}-0" in values and f"t{i}-1" in values, f"{what}: torn txn {i}: {values}"
        assert len(values) == 2 * len(visible), f"{what}: duplicates {values}"
        committed = {int(line.split()[1]) for line in printed if line.startswith("COMMITTED")}
        assert committed <= visible, f"{what}: acknowledged {committed}, visible {visible}"
        assert 2 not in visible, f"{what}: the aborted transaction is visible"
        group = log.consumer(group_id="grp", enable_auto_commit=False,
                             isolation_level="read_committed")
        offset = group.committed(TopicPartition("in", 0))
        group.close()
        expected = max(visible) + 1 if visible else None
        assert offset == expected, f"{what}: offset {offset}, visible {visible}"
        for part in (0, 1):
            plog = log.partition("a", part)
            assert plog.last_stable_offset() == plog.end_offset, f"{what}: txn left open"
        (desc,) = log.list_transactions()
        assert desc.state in ("Empty", "CompleteCommit", "CompleteAbort"), (what, desc)
    report = streamlog.check(root)
    assert report.ok, f"{what}:\n{report}"


def txn_point_loop(tmp: str, points: list[str], max_n: int) -> dict[str, int]:
    template = os.path.join(tmp, "template")
    _template(template)
    figs = {"points": 0, "point_x_n": 0, "kills": 0, "completed": 0}
    for point in points:
        for n in range(1, max_n + 1):
            root = os.path.join(tmp, "run")
            if os.path.exists(root):
                shutil.rmtree(root)
            shutil.copytree(template, root)
            env = dict(os.environ, STREAMLOG_CRASHPOINT=f"{point}:{n}")
            proc = subprocess.run([sys.executable, CHILD, root], env=env, timeout=120,
                                  capture_output=True, text=True)
            what = f"{point}:{n}"
            if proc.returncode == 0:
                figs["completed"] += 1
                _check(root, proc.stdout.splitlines(), what)
                break
            assert proc.returncode == -signal.SIGKILL, (what, proc.returncode, proc.stderr)
            figs["kills"] += 1
            figs["point_x_n"] += 1
            _check(root, proc.stdout.splitlines(), what)
        assert figs["kills"], f"{point} never reached"
        figs["points"] += 1
    return figs


def test_txn_points_are_run() -> None:
    assert set(txn_points()) >= {
        "txn.partitions_added", "txn.prepared", "txn.marker_written",
        "txn.offsets_written", "txn.completed",
    }


def test_txn_crash_points(tmp_path: os.PathLike[str]) -> None:
    # (no point is passed more than 8 times by the workload: every n, to completion)
    figs = txn_point_loop(os.fspath(tmp_path), txn_points(), max_n=9)
    print(f"\ntransaction crash points, every n: {figs}")
    record("T2 transaction crash points", **figs)
    assert figs["completed"] == figs["points"], figs


