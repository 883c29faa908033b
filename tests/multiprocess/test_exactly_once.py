"""Exactly-once consume-transform-produce across SIGKILLs (real processes).

A transformer process (``_eos_worker.py``) moves records from ``in`` to ``out``
in transactions that also commit its consumer offsets. The parent SIGKILLs it
at random moments (0-60 ms after it is ready or its first commit), starts it again,
and at the end lets one run to completion. Then a read_committed consumer of
``out`` must find every input record exactly once, each key's records in
input order; what read_uncommitted sees beyond that is aborted data only.
The default run kills it 50 times; ``--soak`` 500.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import streamlog
from tests._procs import finish

pytestmark = pytest.mark.multiprocess

WORKER = os.path.join(os.path.dirname(__file__), "_eos_worker.py")
KEYS = 12


def _spawn(data: str, txn_id: str = "etl") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, data, "in", "out", "etl-group", txn_id, "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_soon(proc: subprocess.Popen[str], rng: random.Random) -> bool:
    """Wait for READY and (usually) a first commit, then SIGKILL after 0-60 ms.
    False if the worker finished the whole input first."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError(f"worker failed to start: {line!r}\n{err}")
    if rng.random() < 0.7:
        line = proc.stdout.readline()  # its first commit (or DONE)
        if line.strip() == "DONE":
            proc.communicate(timeout=30)
            return False
    time.sleep(rng.uniform(0, 0.06))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode == -signal.SIGKILL


def _inputs(data: str, n: int) -> list[bytes]:
    values = []
    with streamlog.open(data) as log:
        log.create_topic("in", partitions=3)
        log.create_topic("out", partitions=3)
        seq = collections.Counter[int]()
        with log.producer(acks="all", linger_ms=5) as p:
            for i in range(n):
                k = i % KEYS
                v = f"k{k}:{seq[k]}".encode()
                seq[k] += 1
                p.send("in", v, key=f"k{k}".encode())
                values.append(v)
    return values


def _read_out(data: str, isolation: str) -> list[tuple[bytes, bytes]]:
    with streamlog.open(data) as log:
        c = log.consumer(
            "out", auto_offset_reset="earliest", isolation_level=isolation,
            consumer_timeout_ms=500,
        )
        got = [(r.key or b"", r.value or b"") for r in c]
        c.close()
    return got


def _run(data: str, kills: int, n: int, seed: int) -> None:
    rng = random.Random(seed)
    inputs = _inputs(data, n)
    killed = 0
    while killed < kills:
        if not _kill_soon(_spawn(data), rng):
            break
        killed += 1
    finish(_spawn(data), 120, "final transformer")
    out = _read_out(data, "read_committed")
    values = [v.rsplit(b":", 1)[0] for _k, v in out]
    assert sorted(values) == sorted(inputs), (
        f"{len(values)} outputs for {len(inputs)} inputs: "
        f"missing {sorted(set(inputs) - set(values))[:5]}, "
        f"duplicated {[v for v, c in collections.Counter(values).items() if c > 1][:5]}"
    )
    per_key: dict[bytes, list[int]] = collections.defaultdict(list)
    for key, v in out:
        per_key[key].append(int(v.split(b":")[1]))
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"key {key!r} out of order: {seqs[:20]}"
    everything = _read_out(data, "read_uncommitted")
    assert len(everything) >= len(out)
    print(f"{killed} kills, {len(inputs)} records, {len(everything) - len(out)} aborted outputs")


def test_exactly_once_across_sigkills(data_dir: str) -> None:
    _run(data_dir, kills=50, n=3000, seed=1)


@pytest.mark.soak
def test_exactly_once_across_sigkills_soak(data_dir: str) -> None:
    _run(data_dir, kills=500, n=30000, seed=2)
