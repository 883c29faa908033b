"""Consumer groups across real processes, with a producer running throughout.

Three member processes share six partitions; then one is SIGKILLed, another
SIGSTOPs itself and stays stopped past its session timeout (its commit after
SIGCONT must fail, and it must rejoin cleanly), and a new member joins. From
outside, a sampler reads the group state and the committed offsets every few
milliseconds. The recorded history is then checked (``check_history``):

* no partition is ever owned by two live members at once: in every sampled
  state, and in what members actually returned from ``poll`` (the time spans
  in which each member returned records of a partition never overlap);
* every acknowledged record was returned to some member at least once;
* committed offsets never move backwards (sampled, and in the order members'
  successful commits completed);
* the stopped member's first commit after SIGCONT failed, it returned no
  record of its old partitions after that, and it got an assignment again.

Also: a static member restarted within its session timeout gets the same
partitions back with no rebalance. Worker: ``_group_worker.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.coordination._group import STABLE, GroupState
from streamlog.coordination._groupstore import GroupStore
from streamlog.coordination._offsets import OffsetStore
from tests._group_helpers import double_owned

pytestmark = pytest.mark.multiprocess

WORKER = os.path.join(os.path.dirname(__file__), "_group_worker.py")
TOPIC = "t"
PARTITIONS = 6
SESSION_MS = 1000


@dataclass
class History:
    """What the sampler saw from outside."""

    states: list[tuple[int, GroupState]] = field(default_factory=list)
    committed: list[tuple[int, dict[TopicPartition, int]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Sampler(threading.Thread):
    def __init__(self, data: str) -> None:
        super().__init__(daemon=True)
        self.store = GroupStore(data, "g")
        self.offsets = OffsetStore(data, "g")
        self.history = History()
        self.stop = threading.Event()
        self.latest: GroupState | None = None

    def run(self) -> None:
        last: dict[TopicPartition, int] = {}
        while not self.stop.wait(0.005):
            now = time.monotonic_ns()
            state = self.store._read()[0]
            self.latest = state
            self.history.states.append((now, state))
            try:
                state._check()  # every invariant of the state machine, on every sample
            except AssertionError as e:
                self.history.problems.append(f"sampled state breaks an invariant: {e}")
            self.history.problems.extend(f"sampled: {p}" for p in double_owned(state))
            committed = {tp: o.offset for tp, o in self.offsets.all().items()}
            for tp, o in committed.items():
                if o < last.get(tp, 0):
                    self.history.problems.append(f"committed {tp} went back {last[tp]} -> {o}")
            last = committed
            self.history.committed.append((now, committed))


class Producer(threading.Thread):
    def __init__(self, log: streamlog.Log) -> None:
        super().__init__(daemon=True)
        self.producer = log.producer(acks=1, linger_ms=0)
        self.stop = threading.Event()
        self.acked: dict[int, int] = {}  # partition -> highest acknowledged offset + 1

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            futures = [
                self.producer.send(TOPIC, b"v%d" % (i + k), key=b"k%d" % (i + k)) for k in range(20)
            ]
            i += 20
            for f in futures:
                md = f.result()
                self.acked[md.partition] = max(self.acked.get(md.partition, 0), md.offset + 1)
            time.sleep(0.005)
        self.producer.close()


class Members:
    def __init__(self, data: str, outdir: str) -> None:
        self.data = data
        self.outdir = outdir
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, strategy: str = "range", instance: str = "-") -> None:
        proc = subprocess.Popen(
            [sys.executable, WORKER, self.data, TOPIC, name, self.outdir, strategy, instance],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read() if proc.stderr else "")
        self.procs[name] = proc

    def control(self, name: str, word: str) -> None:
        with open(os.path.join(self.outdir, f"{name}.ctl"), "w") as f:
            f.write(word)

    def events(self, name: str) -> list[dict[str, Any]]:
        path = os.path.join(self.outdir, f"{name}.jsonl")
        out = []
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):  # a SIGKILL may leave a partial last line
                    out.append(json.loads(line))
        return out

    def stop_all(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is None:
                self.control(name, "exit")
        for proc in self.procs.values():
            try:
                _out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            assert proc.returncode in (0, -signal.SIGKILL), err


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 20.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


def stable_with(sampler: Sampler, n: int) -> Callable[[], bool]:
    def check() -> bool:
        s = sampler.latest
        if s is None or s.state != STABLE or len(s.members) != n:
            return False
        given = [tp for m in s.members.values() for tp in m.assignment]
        return len(given) == PARTITIONS == len(set(given))

    return check


def drain(
    log: streamlog.Log, producer: Producer, sampler: Sampler, members: Members
) -> dict[int, int]:
    """Once the producer stopped: wait until the group committed everything, stop the members
    and the sampler; returns what was acknowledged (partition -> end)."""
    acked = dict(producer.acked)
    ends = {p: log.partition(TOPIC, p).end_offset for p in range(PARTITIONS)}
    assert all(ends[p] >= acked.get(p, 0) for p in range(PARTITIONS))

    def drained() -> bool:
        c = sampler.history.committed[-1][1] if sampler.history.committed else {}
        return all(c.get(TopicPartition(TOPIC, p), 0) == ends[p] for p in range(PARTITIONS))

    wait_for("everything consumed and committed", drained, timeout=60)
    members.stop_all()
    sampler.stop.set()
    sampler.join()
    return acked


def check_history(
    members: Members, names: list[str], history: History, acked: dict[int, int]
) -> dict[str, int]:
    """The invariants of the module docstring; returns counts for the report."""
    problems = list(history.problems)
    spans: dict[int, list[tuple[int, int, str]]] = {p: [] for p in range(PARTITIONS)}
    returned: dict[int, set[int]] = {p: set() for p in range(PARTITIONS)}
    total = 0
    commits: list[tuple[int, int, int, str]] = []
    for name in names:
        # one span per partition per stretch of ownership: ended by revoke/lost
        open_span: dict[int, list[int]] = {}
        for ev in members.events(name):
            if ev["e"] == "poll":
                for p, first, last in ev["r"]:
                    returned[p].update(range(first, last + 1))
                    total += last - first + 1
                    span = open_span.setdefault(p, [ev["t"], ev["t"]])
                    span[1] = ev["t"]
            elif ev["e"] in ("revoked", "lost"):
                for p in ev["tps"]:
                    if p in open_span:
                        first_t, last_t = open_span.pop(p)
                        spans[p].append((first_t, last_t, name))
            elif ev["e"] == "commit" and ev["ok"]:
                for p, o in ev["o"].items():
                    commits.append((ev["t"], int(p), o, name))
        for p, (first_t, last_t) in open_span.items():
            spans[p].append((first_t, last_t, name))
    for p, items in spans.items():
        items.sort()
        # every earlier span of another member must have ended before this one starts
        ends: dict[str, int] = {}
        for start, end, name in items:
            for other, other_end in ends.items():
                if other != name and start <= other_end:
                    problems.append(
                        f"p{p}: {other} returned records until {other_end}, {name} from {start}"
                    )
            ends[name] = max(ends.get(name, 0), end)
    for p, end in acked.items():
        missing = set(range(end)) - returned[p]
        if missing:
            problems.append(f"p{p}: {len(missing)} acknowledged records never delivered")
    high: dict[int, int] = {}
    for _t, p, o, name in sorted(commits):
        if o < high.get(p, 0):
            problems.append(f"p{p}: {name} committed {o} after {high[p]}")
        high[p] = max(high.get(p, 0), o)
    assert not problems, "\n".join(problems[:20])
    delivered = sum(len(v) for v in returned.values())
    return {
        "acked": sum(acked.values()),
        "delivered": delivered,
        "redelivered": total - delivered,
        "commits": len(commits),
    }


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_group_chaos(tmp_path: Any, strategy: str) -> None:
    data = os.path.join(str(tmp_path), "data")
    outdir = str(tmp_path)
    with streamlog.open(data) as log:
        log.create_topic(TOPIC, PARTITIONS)
        sampler = Sampler(data)
        sampler.start()
        producer = Producer(log)
        producer.start()
        members = Members(data, outdir)
        try:
            for name in ("a", "b", "c"):
                members.start(name, strategy)
            wait_for("3 members", stable_with(sampler, 3))

            members.procs["a"].kill()
            failover = wait_for("failover after kill -9", stable_with(sampler, 2))

            members.control("b", "stop")
            wait_for("b stopped", lambda: any(e["e"] == "self-stop" for e in members.events("b")))
            stopped_at = time.monotonic()
            wait_for("b expired", stable_with(sampler, 1), timeout=SESSION_MS / 1000 + 10)
            expiry = time.monotonic() - stopped_at
            members.procs["b"].send_signal(signal.SIGCONT)
            wait_for("b back", stable_with(sampler, 2))

            members.start("d", strategy)
            wait_for("d joined", stable_with(sampler, 3))
            time.sleep(0.3)
        finally:
            producer.stop.set()
            producer.join(timeout=30)
        acked = drain(log, producer, sampler, members)

    b_events = members.events("b")
    stop_i = next(i for i, e in enumerate(b_events) if e["e"] == "self-stop")
    after = b_events[stop_i + 1 :]
    first_commit = next(e for e in after if e["e"] == "commit")
    assert first_commit["ok"] is False, "a stale member's commit must fail"
    lost_i = next(i for i, e in enumerate(after) if e["e"] == "lost")
    assert not any(e["e"] == "poll" for e in after[:lost_i]), "returned records while stale"
    assert any(e["e"] == "assigned" and e["tps"] for e in after[lost_i:]), "b did not rejoin"
    figures = check_history(members, ["a", "b", "c", "d"], sampler.history, acked)
    print(
        f"\ngroup chaos: failover after kill -9 {failover * 1000:.0f} ms; stopped member "
        f"expired after {expiry * 1000:.0f} ms (session {SESSION_MS} ms); "
        f"{len(sampler.history.states)} states sampled; {figures}"
    )
    assert failover < 5.0
    assert expiry >= SESSION_MS / 1000 * 0.9


def test_static_member_restart_keeps_its_partitions(tmp_path: Any) -> None:
    data = os.path.join(str(tmp_path), "data")
    outdir = str(tmp_path)
    with streamlog.open(data) as log:
        log.create_topic(TOPIC, PARTITIONS)
    sampler = Sampler(data)
    sampler.start()
    members = Members(data, outdir)
    try:
        members.start("s1", instance="inst-1")
        members.start("s2", instance="inst-2")
        wait_for("2 static members", stable_with(sampler, 2))
        before = sampler.latest
        assert before is not None
        gen = before.generation
        mine = next(m.assignment for m in before.members.values() if m.instance_id == "inst-1")
        members.procs["s1"].kill()
        members.procs["s1"].wait()
        members.start("s1-again", instance="inst-1")
        wait_for(
            "restarted static member",
            lambda: any(ev["e"] == "assigned" for ev in members.events("s1-again")),
        )
        after = sampler.latest
        assert after is not None and after.generation == gen, "a rebalance happened"
        back = next(m.assignment for m in after.members.values() if m.instance_id == "inst-1")
        assert back == mine
        # the other member was not disturbed
        assert not any(ev["e"] in ("revoked", "lost") for ev in members.events("s2")[1:])
        # the restarted member was handed the same partitions in its first assignment
        first = next(ev for ev in members.events("s1-again") if ev["e"] == "assigned")
        assert first["tps"] == sorted(tp.partition for tp in mine)
    finally:
        members.stop_all()
        sampler.stop.set()
        sampler.join()
    assert not sampler.history.problems, sampler.history.problems


@pytest.mark.soak
def test_group_chaos_soak(tmp_path: Any) -> None:
    """Many rounds of random kills, stops past the session timeout, clean exits and joins,
    with a producer running; the same history checks. ``STREAMLOG_SOAK_REBALANCES``
    (default 200) sets how many rebalances to reach."""
    import random

    target = int(os.environ.get("STREAMLOG_SOAK_REBALANCES", "200"))
    rng = random.Random(int(os.environ.get("STREAMLOG_SOAK_SEED", "1")))
    data = os.path.join(str(tmp_path), "data")
    outdir = str(tmp_path)
    counts = {"kill": 0, "stop": 0, "exit": 0, "join": 0}
    with streamlog.open(data) as log:
        log.create_topic(TOPIC, PARTITIONS)
        sampler = Sampler(data)
        sampler.start()
        producer = Producer(log)
        producer.start()
        members = Members(data, outdir)
        live: list[str] = []
        serial = 0

        def start() -> None:
            nonlocal serial
            serial += 1
            name = f"m{serial}"
            members.start(name, ",".join(rng.sample(["range", "roundrobin", "sticky"], 3)))
            live.append(name)

        try:
            for _ in range(3):
                start()
            wait_for("3 members", stable_with(sampler, 3))
            start_gen = sampler.latest.generation if sampler.latest else 0
            while (sampler.latest.generation if sampler.latest else 0) - start_gen < target:
                action = rng.choice(["kill", "stop", "exit", "join"] if len(live) > 1 else ["join"])
                if action == "join" and len(live) >= 5:
                    action = "kill"
                counts[action] += 1
                if action == "join":
                    start()
                else:
                    name = rng.choice(live)
                    if action == "kill":
                        members.procs[name].kill()
                        live.remove(name)
                    elif action == "exit":
                        members.control(name, "exit")
                        live.remove(name)
                    else:
                        members.control(name, "stop")
                        wait_for(
                            "self-stop",
                            lambda n=name: any(  # type: ignore[misc]
                                e["e"] == "self-stop" for e in members.events(n)
                            ),
                        )
                        wait_for("expiry", stable_with(sampler, len(live) - 1))
                        members.procs[name].send_signal(signal.SIGCONT)
                wait_for(f"stable after {action}", stable_with(sampler, len(live)), timeout=30)
            end_gen = sampler.latest.generation if sampler.latest else 0
        finally:
            producer.stop.set()
            producer.join(timeout=30)
        acked = drain(log, producer, sampler, members)
    figures = check_history(members, sorted(members.procs), sampler.history, acked)
    print(
        f"\ngroup chaos soak: {end_gen - start_gen} rebalances, actions {counts}, "
        f"{len(sampler.history.states)} states sampled, double-owned 0, {figures}"
    )
