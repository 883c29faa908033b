"""A stateful stream-processing application across SIGKILLs (real processes).

A worker process (``_streams_worker.py``) runs a ``StreamsApp``: input records
``<id>:<amount>`` keyed by user go through a repartition topic to their group,
where an aggregate ``(count, sum, id of the last record)`` is kept in a store
(with a changelog and checkpoints) and written to ``out``; each record is also
counted per input id in a second store (one key per input). The parent produces
every input first, then SIGKILLs the worker at random moments (during start-up,
restore, processing, commits and checkpoint writes), starts it again, and at
the end lets one run until the group's committed offsets reach the end of every
source topic. Then:

exactly-once
    a read_committed consumer of ``out`` finds, per group, the counts 1..n in
    order, each input id exactly once, each sum equal to the previous one plus
    that input's amount, and each user's inputs in their input order; the last
    output per group is the truth, and every input id was counted exactly once.
    The final run's restored stores are the truth, and so are stores rebuilt
    from the whole changelogs (state directory deleted).
at-least-once
    nothing is lost: every input id is in some output and in the id store, and
    no group's count is below the truth (duplicates are allowed).

The default runs kill the worker 8 times (exactly-once) and 5 times
(at-least-once); ``--soak`` runs 80 kills over more records, and a variant with
two workers at once (kills of one member while the other takes its tasks).
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import streamlog
from tests._procs import ROOT, finish

pytestmark = [pytest.mark.multiprocess, pytest.mark.crash]

WORKER = os.path.join(os.path.dirname(__file__), "_streams_worker.py")
USERS = 23
GROUPS = 5  # as in the worker


def _spawn(data: str, guarantee: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, data, guarantee, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError(f"worker failed to start: {line!r}\n{err}")


def _kill_soon(proc: subprocess.Popen[str], rng: random.Random) -> bool:
    """After READY, wait for 0-5 of its commits, then SIGKILL it after 0-150 ms (during
    start-up, restore, processing, a commit or a checkpoint). False if the worker
    finished the whole input first."""
    assert proc.stdout is not None
    _ready(proc)
    for _ in range(rng.choice([0, 1, 2, 3, 5])):
        line = proc.stdout.readline()
        if not line.startswith("COMMIT"):  # its result: done before the kill
            proc.communicate(timeout=60)
            return False
    time.sleep(rng.uniform(0, 0.15))
    proc.send_signal(signal.SIGKILL)
    _out, err = proc.communicate()
    if proc.returncode == 0:  # it finished just before the kill
        return False
    if proc.returncode != -signal.SIGKILL:
        raise AssertionError(f"worker exited with {proc.returncode} before the kill\n{err}")
    return True


def _inputs(data: str, n: int, seed: int) -> dict[int, tuple[str, int]]:
    """Produce ``n`` records; ``{id: (user, amount)}``."""
    rng = random.Random(seed)
    truth = {}
    with streamlog.open(data, cleaner=False) as log:
        log.create_topic("in", partitions=3)
        log.create_topic("out", partitions=2)
        with log.producer(acks="all", linger_ms=5) as p:
            for i in range(n):
                user = f"u{rng.randrange(USERS)}"
                amount = rng.randint(1, 1000)
                truth[i] = (user, amount)
                p.send("in", f"{i}:{amount}".encode(), key=user.encode())
    return truth


def _outputs(data: str, isolation: str) -> dict[str, list[tuple[int, int, int]]]:
    per_group: dict[str, list[tuple[int, int, int]]] = collections.defaultdict(list)
    with streamlog.open(data, cleaner=False) as log:
        c = log.consumer(
            "out", auto_offset_reset="earliest", isolation_level=isolation,
            consumer_timeout_ms=500,
        )
        for r in c:
            assert r.key is not None and r.value is not None
            count, total, ident = (int(x) for x in r.value.decode().split(":"))
            per_group[r.key.decode()].append((count, total, ident))
        c.close()
    return dict(per_group)


def _truth(inputs: dict[int, tuple[str, int]]) -> dict[str, list[int]]:
    """Per group, ``[count, sum]``."""
    out: dict[str, list[int]] = {}
    for user, amount in inputs.values():
        agg = out.setdefault(f"g{int(user[1:]) % GROUPS}", [0, 0])
        agg[0] += 1
        agg[1] += amount
    return out


def _check_exact(inputs: dict[int, tuple[str, int]], out: dict[str, list[Any]]) -> None:
    truth = _truth(inputs)
    assert sorted(out) == sorted(truth)
    seen: set[int] = set()
    for group, updates in out.items():
        counts = [u[0] for u in updates]
        assert counts == list(range(1, len(updates) + 1)), (
            f"{group}: counts not 1..n: {_first_gap(counts)}"
        )
        total = 0
        last_per_user: dict[str, int] = {}
        for count, s, ident in updates:
            assert ident not in seen, f"input {ident} counted twice"
            seen.add(ident)
            user, amount = inputs[ident]
            assert f"g{int(user[1:]) % GROUPS}" == group
            total += amount
            assert s == total, f"{group} at count {count}: sum {s}, expected {total}"
            assert last_per_user.get(user, -1) < ident, f"{user}'s inputs out of order"
            last_per_user[user] = ident
        assert [len(updates), total] == truth[group]
    assert seen == set(inputs), f"{len(set(inputs) - seen)} inputs lost"


def _first_gap(counts: list[int]) -> str:
    for i, c in enumerate(counts):
        if c != i + 1:
            return f"position {i}: {counts[max(0, i - 3) : i + 3]}"
    return "?"


def _result(stdout: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _store(result: dict[str, Any]) -> dict[str, list[int]]:
    return {k: [v[0], v[1]] for k, v in result["store"]}


def _run(data: str, guarantee: str, kills: int, n: int, seed: int, members: int = 1) -> None:
    rng = random.Random(seed)
    inputs = _inputs(data, n, seed)
    killed = 0
    started = time.monotonic()
    if members == 1:
        while killed < kills:
            if not _kill_soon(_spawn(data, guarantee), rng):
                break
            killed += 1
    else:
        killed = _kill_members(data, guarantee, kills, rng, members)
    final = _result(finish(_spawn(data, guarantee), 120, "final worker"))
    exact = guarantee == "exactly_once"
    out = _outputs(data, "read_committed" if exact else "read_uncommitted")
    truth = _truth(inputs)
    assert final["ids"] == n and not final["ids_missing"], "an input is missing from ids"
    if exact:
        _check_exact(inputs, out)
        assert _store(final) == truth
        assert final["ids_total"] == n, f"counted more than once: {final['ids_not_once']}"
    else:
        idents = {u[2] for updates in out.values() for u in updates}
        assert idents >= set(inputs), f"{len(set(inputs) - idents)} inputs lost"
        for group, (count, _total) in truth.items():
            assert _store(final)[group][0] >= count
    # a store rebuilt from the whole changelog (no checkpoint) is the same
    rebuilt = _result(finish(_spawn(data, guarantee, "--fresh"), 120, "rebuilding worker"))
    assert _store(rebuilt) == _store(final)
    for what in ("ids", "ids_total", "ids_not_once"):
        assert rebuilt[what] == final[what]
    assert rebuilt["metrics"]["processed"] == 0
    assert rebuilt["metrics"]["restored_from_checkpoint"] == 0
    assert rebuilt["metrics"]["restored"] > 0
    print(
        f"{guarantee}: {killed} kills, {n} records, {time.monotonic() - started:.1f}s; "
        f"final run restored {final['metrics']['restored']} changelog records after "
        f"{final['metrics']['restored_from_checkpoint']} from checkpoints"
    )
    assert killed >= min(kills, 3), "the worker finished before it could be killed enough"


def _kill_members(
    data: str, guarantee: str, kills: int, rng: random.Random, members: int
) -> int:
    """Keep ``members`` workers running; SIGKILL a random one every 0.2-1 s and start
    a replacement."""
    procs = [_spawn(data, guarantee) for _ in range(members)]
    try:
        for p in procs:
            _ready(p)
        killed = 0
        while killed < kills:
            time.sleep(rng.uniform(0.2, 1.0))
            victim = rng.randrange(members)
            proc = procs[victim]
            if proc.poll() is not None:  # finished: everything is processed
                break
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            killed += 1
            procs[victim] = _spawn(data, guarantee)
            _ready(procs[victim])
        return killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


@pytest.mark.parametrize(
    ("guarantee", "kills", "n"), [("exactly_once", 8, 40_000), ("at_least_once", 5, 25_000)]
)
def test_streams_across_sigkills(data_dir: str, guarantee: str, kills: int, n: int) -> None:
    _run(data_dir, guarantee, kills=kills, n=n, seed=1)


@pytest.mark.soak
@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_streams_across_sigkills_soak(data_dir: str, guarantee: str) -> None:
    _run(data_dir, guarantee, kills=80, n=400_000, seed=2)


@pytest.mark.soak
def test_exactly_once_two_members_across_sigkills_soak(data_dir: str) -> None:
    _run(data_dir, "exactly_once", kills=30, n=500_000, seed=3, members=2)
