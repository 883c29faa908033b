"""A producer process SIGKILLed while it holds the append lock (reliability plan T8, T9).

Two writer processes and a holder process (large batches: it holds the lock
most of the time) append to one partition while a reader process tails it,
verifying every batch. The parent catches the holder holding the lock (stops
it, checks the flock is taken), then SIGKILLs it, several times, each time
starting a new holder; in a second variant the holder kills itself at the
crash point ``append.before_publish`` (its frame written, not published, the
lock held). Checked:

- the other writers finish without ``LockTimeoutError`` (the kernel releases
  the flock of a dead process) and without errors;
- the reader never sees a partial, corrupt or out-of-order batch;
- afterwards every writer's records are all there, in order, offsets are
  dense, every acknowledged holder batch is there, ``check`` is clean.

``tests/multiprocess/test_concurrent_append.py`` covers the SIGSTOPped holder
(others time out with ``LockTimeoutError``, nothing is corrupted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import streamlog
from streamlog.storage import prepare_batch
from tests._procs import lock_held, stopped
from tests.multiprocess._mp_worker import parse_value

from ._figures import record

CHILD = os.path.join(os.path.dirname(__file__), "_lock_child.py")
TOPIC = "t"


def _spawn(*args: object, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, CHILD, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


class _Lines:
    """Collects a child's stdout lines on a thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[bytes] = []
        self.proc = proc
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def acked(self) -> list[tuple[int, int]]:
        self.thread.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        out = []
        for line in self.lines:
            if line.startswith(b"A ") and line.endswith(b"\n"):
                _a, base, count = line.split()
                out.append((int(base), int(count)))
        return out


def _kill_holder_while_locked(root: str, lock_path: str, wid: int) -> list[tuple[int, int]]:
    """Start a holder, catch it holding the lock, SIGKILL it; its acknowledged batches."""
    holder = _spawn("holder", root, wid)
    lines = _Lines(holder)
    deadline = time.monotonic() + 30
    while not lines.lines:
        assert time.monotonic() < deadline and holder.poll() is None, "holder did not start"
        time.sleep(0.002)
    for attempt in range(1000):
        assert holder.poll() is None, "holder died by itself"
        os.kill(holder.pid, signal.SIGSTOP)
        while not stopped(holder.pid):
            time.sleep(0.0002)
        if lock_held(lock_path):
            break
        os.kill(holder.pid, signal.SIGCONT)
        time.sleep(0.0005 * (attempt % 5))
    else:
        raise AssertionError("never caught the holder holding the lock")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert holder.returncode == -signal.SIGKILL
    return lines.acked()


def _run(root: str, kills: int, *, crashpoint: bool) -> dict[str, int]:
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, {"segment.bytes": 1 << 20})
    lock_path = os.path.join(root, "topics", TOPIC, "0", ".lock")
    per_writer = 3000
    reader = _spawn("reader", root, 120)
    writers = [_spawn("writer", root, w, per_writer) for w in (1, 2)]
    holder_acks: dict[int, list[tuple[int, int]]] = {}
    for k in range(kills):
        wid = 10 + k
        if crashpoint:
            env = dict(os.environ, STREAMLOG_CRASHPOINT=f"append.before_publish:{2 + k % 5}")
            proc = _spawn("holder", root, wid, env=env)
            lines = _Lines(proc)
            proc.wait(60)
            err = proc.stderr.read() if proc.stderr is not None else b""
            assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
            holder_acks[wid] = lines.acked()
        else:
            holder_acks[wid] = _kill_holder_while_locked(root, lock_path, wid)
        time.sleep(0.02)
    for proc in writers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"writer failed ({proc.returncode}):\n{err.decode()[-3000:]}"
        assert out.endswith(b"DONE\n")
    with streamlog.open(root) as log:
        log.partition(TOPIC, 0).append(prepare_batch([b"END"]), sync=True)
    rout, rerr = reader.communicate(timeout=120)
    assert reader.returncode == 0, f"reader: {rout.decode()}\n{rerr.decode()[-3000:]}"
    tag, n_records, n_batches = rout.split()
    assert tag == b"READER"
    # the final log: every writer complete and in order, every acknowledged holder batch
    seqs: dict[int, list[int]] = {}
    by_offset: dict[int, int] = {}
    with streamlog.open(root) as log:
        p = log.partition(TOPIC, 0)
        end = p.end_offset
        off = 0
        while off < end - 1:
            for b in p.read(off, 1 << 20):
                for o, _ts, _k, v, _h in b.records():
                    if o < off or v == b"END":
                        continue
                    assert o == off, (o, off)
                    assert v is not None
                    writer, seq, _first, _count = parse_value(v)
                    seqs.setdefault(writer, []).append(seq)
                    by_offset[o] = writer
                    off += 1
    for w in (1, 2):
        assert seqs[w] == list(range(per_writer)), f"writer {w} incomplete or out of order"
    for wid, acked in holder_acks.items():
        for base, count in acked:
            assert all(by_offset.get(base + j) == wid for j in range(count)), (wid, base)
        got = seqs.get(wid, [])
        assert got == list(range(len(got))), f"holder {wid} out of order"
    report = streamlog.check(root)
    assert report.ok, str(report)
    return {
        "holder_kills": kills,
        "records_read": int(n_records),
        "batches_verified": int(n_batches),
        "writer_records": 2 * per_writer,
        "lock_timeouts": 0,
        "corrupt_seen": 0,
    }


def test_holder_killed_while_holding_the_lock(tmp_path: os.PathLike[str]) -> None:
    t0 = time.monotonic()
    figs = _run(os.path.join(os.fspath(tmp_path), "a"), 4, crashpoint=False)
    figs2 = _run(os.path.join(os.fspath(tmp_path), "b"), 3, crashpoint=True)
    total = {k: figs[k] + figs2[k] for k in figs}
    print(f"\nlock holder SIGKILLed: {total}; {time.monotonic() - t0:.1f}s")
    record("T8/T9 lock holder killed", **total)
