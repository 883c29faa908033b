"""Consumer-group benchmarks: joining, failover, offset commits and group consumption,
with member processes where the scenario is about processes.

Run from the repository root (the full run takes about 90 seconds on 2 cores and
needs about 300 MB of disk under /tmp; everything it creates is removed at the
end, also on error)::

    .venv/bin/python benchmarks/bench_groups.py

A small, fast run (about 35 seconds; 500,000 records, 3 runs)::

    .venv/bin/python benchmarks/bench_groups.py --quick

Options: ``--runs N`` (repetitions, default 5; medians are reported),
``--records N`` (records in the consume topic, default 2,000,000),
``--commits N`` (durable commits per run, default 3,000; non-durable rows do
10x as many), ``--only join,failover,commit,consume`` (a subset),
``--dir DIR`` (parent of the temporary directory, default /tmp), ``--out FILE``
(default ``benchmarks/results/groups.txt``, ``groups-quick.txt`` with
``--quick``, so a quick run never replaces the full results), ``--profile
WORKLOAD`` (instead of the benchmark, one run of ``commit`` (durable sync
commits), ``commit-nosync`` or ``join`` (a lone member's subscribe + first
poll) in this process under pyinstrument).

Member processes run ``benchmarks/_group_worker.py`` (started with
``sys.executable``; they import streamlog and open the data directory before
the clock starts, then wait for ``go`` on stdin). Every process reads
``time.monotonic_ns()``, one clock for the whole machine, so times taken in a
worker and in this process are compared directly. Group members use
``session_timeout_ms=1000``, ``heartbeat_interval_ms=100``, the default range
assignor (eager), auto-commit on (its default) and poll continuously with
``poll(timeout_ms=20)``. Every run uses a fresh group.

1. Join. (a) A lone member: from just before ``log.consumer(group_id=...)``
   to its ``on_partitions_assigned`` callback inside the first ``poll``, in a
   fresh group and, as a second row, in a group that already exists (Empty,
   after a member left). (b) 8 member processes told ``go`` together, on a
   topic with 8 partitions: from ``go`` until every member has adopted its
   assignment of the final generation (the time of the last member's
   ``on_partitions_assigned`` for the generation the group is Stable with 8
   members in); the group state is read from outside every 2 ms (lock-free:
   the mapped version word, then ``state.json`` when it changed) to find that
   generation, and checked once at the end with ``log.describe_group``.
2. Failover. 3 member processes on a topic with 6 partitions, Stable; then
   one of them (a different one each run) leaves with ``close()``, is
   SIGKILLed, or is SIGSTOPped. From the event (the worker's clock just
   before ``close()``; this process's clock just before ``os.kill``) until
   the two survivors own all 6 partitions in a Stable group: the later of the
   survivors' ``on_partitions_assigned`` of that generation. The state is
   read from outside every 2 ms, without the group lock: ``describe_group``
   takes the lock and acts as a coordinator itself (it would remove a killed
   member on its own), which would measure the observer, not the members.
3. Commits, in this process: a consumer subscribed to a 1-partition topic
   commits ``{tp: OffsetAndMetadata(i)}`` in a loop. ``commit`` with
   ``fsync_commits=True`` (each commit fdatasync'ed: the target row) and with
   the default ``fsync_commits=False``; ``commit_async`` of the same, timed
   until every queued commit completed (``Membership.wait_async``). Same
   runs, same disk, as baselines: ``os.pwrite`` of a 40-byte record at the
   end of a file + ``os.fdatasync`` (what an append-only offsets log needs at
   least), the same record overwritten in place + ``fdatasync`` (no file size
   change, so no metadata to journal), and sqlite3 ``INSERT OR REPLACE`` of
   one row + ``commit`` (WAL, ``synchronous=FULL``). The order of the rows
   rotates from run to run.
4. Consume. A topic with 8 partitions is filled with N records of 100 random
   bytes (no key) in batches of 128 (about what the producer's default
   ``batch_size=16384`` holds), through the storage layer, before any timing.
   Then, alternating in each run: a group of 4 member processes, a group of 1
   (one process), and one process subscribing without a group (reads every
   partition, no group machinery). Each reads with
   ``poll(timeout_ms=20, max_records=10_000)``. Records/s = N / (time from
   ``go`` until the last record of every partition was returned by some
   member). The group rows include joining (and the rebalances while the 4
   members join one after the other).

All figures are wall-clock medians over the runs; "range" is min-max of the
runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from _common import (  # benchmarks/ is on sys.path when run as a script
    Table,
    source_state,
    status,
    write_report,
)

import streamlog
from streamlog import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from streamlog.coordination._group import STABLE, GroupState
from streamlog.coordination._groupstore import GroupStore
from streamlog.storage import prepare_batch

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "_group_worker.py")
SESSION_MS = 1000
HEARTBEAT_MS = 100
SAMPLE_S = 0.002
JOIN_TOPIC, JOIN_PARTITIONS, JOIN_MEMBERS = "join", 8, 8
FAIL_TOPIC, FAIL_PARTITIONS, FAIL_MEMBERS = "six", 6, 3
COMMIT_TOPIC = "commits"
FILL_TOPIC, FILL_PARTITIONS, FILL_BATCH, VALUE_SIZE = "fill", 8, 128, 100
GROUP_CONSUMERS = 4
RAW_RECORD = 40
TIMEOUT_S = 60.0
IDLE_S = 2.0

TARGETS = {
    "lone_ms": 50.0,
    "kill_ms": 500.0,
    "stop_extra_ms": 200.0,
    "commit_rate": 5000.0,
    "consume_ratio": 1.5,
}


# --------------------------------------------------------------------------- helpers
def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = ",.0f") -> str:
    return f"{min(xs):{fmt}}-{max(xs):{fmt}}"


def settle() -> None:
    gc.collect()
    os.sync()


def now_ns() -> int:
    return time.monotonic_ns()


class Worker:
    """One member process (``_group_worker.py``) and the events it printed."""

    def __init__(self, base: str, cfg: dict[str, Any]) -> None:
        self.name = str(cfg["name"])
        self.err_path = os.path.join(base, f"{self.name}-{os.getpid()}-{id(self)}.err")
        self._err: IO[bytes] = open(self.err_path, "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            bufsize=1,
        )
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.stopped = False
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"read-{self.name}")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"e": "eof"})
            self.cond.notify_all()

    def stderr_tail(self) -> str:
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def wait(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT_S
    ) -> dict[str, Any]:
        """The first event (already seen or to come) that matches ``pred``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.events):
                    ev = self.events[i]
                    i += 1
                    if pred(ev):
                        return ev
                    if ev["e"] == "eof":
                        raise RuntimeError(
                            f"worker {self.name} exited (rc {self.proc.poll()}): "
                            f"{self.stderr_tail()}"
                        )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"worker {self.name}: timed out; events {self.events[-5:]}")
                self.cond.wait(left)

    def find(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self.cond:
            return [ev for ev in self.events if pred(ev)]

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False

    def finish(self, timeout: float = 10.0) -> None:
        """Ask it to exit (closing its consumer); kill it if it does not."""
        try:
            if self.proc.poll() is None:
                if self.stopped:
                    self.signal(signal.SIGCONT)
                try:
                    self.send("exit")
                    assert self.proc.stdin is not None
                    self.proc.stdin.close()
                except (OSError, ValueError):
                    pass
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self._reader.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._err.close()


def start_workers(base: str, cfgs: list[dict[str, Any]]) -> list[Worker]:
    workers: list[Worker] = []
    try:
        for cfg in cfgs:
            workers.append(Worker(base, cfg))
        for w in workers:
            w.wait(lambda ev: ev["e"] == "ready")
    except BaseException:
        finish_all(workers)
        raise
    return workers


def finish_all(workers: list[Worker]) -> None:
    for w in workers:  # ask all first, so that they close in parallel
        try:
            if w.proc.poll() is None:
                if w.stopped:
                    w.signal(signal.SIGCONT)
                w.send("exit")
        except (OSError, ValueError):
            pass
    for w in workers:
        w.finish()


def go(workers: list[Worker]) -> int:
    """Tell every worker to start; returns the time just before the first ``go``."""
    t = now_ns()
    for w in workers:
        w.send("go")
    return t


def member_cfg(data: str, group: str | None, topic: str, name: str, mode: str) -> dict[str, Any]:
    return {
        "data": data,
        "group": group,
        "topic": topic,
        "name": name,
        "mode": mode,
        "session_timeout_ms": SESSION_MS,
        "heartbeat_interval_ms": HEARTBEAT_MS,
    }


def observe(
    store: GroupStore, pred: Callable[[GroupState], bool], timeout: float = TIMEOUT_S
) -> tuple[int, GroupState]:
    """Read the state from outside every SAMPLE_S (no lock) until ``pred`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        t = now_ns()
        state = store.load()
        if pred(state):
            return t, state
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"group {store.group_id}: timed out in {state.state} gen {state.generation} "
                f"with {len(state.members)} members"
            )
        time.sleep(SAMPLE_S)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc; 10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def partitions_of(state: GroupState, members: set[str] | None = None) -> set[int]:
    out: set[int] = set()
    for m in state.members.values():
        if members is None or m.member_id in members:
            out.update(tp.partition for tp in m.assignment)
    return out


# --------------------------------------------------------------------------- 1. join
def bench_lone(base: str, data: str, group: str) -> tuple[float, float]:
    """A lone member in its own process: (subscribe -> assigned ms, go -> assigned ms)."""
    (w,) = start_workers(base, [member_cfg(data, group, JOIN_TOPIC, "lone", "member")])
    try:
        t_go = go([w])
        sub = w.wait(lambda ev: ev["e"] == "subscribed")
        got = w.wait(lambda ev: ev["e"] == "assigned")
        if len(got["tps"]) != JOIN_PARTITIONS:
            raise RuntimeError(f"lone member got {got['tps']}")
        return (got["t"] - sub["t"]) / 1e6, (got["t"] - t_go) / 1e6
    finally:
        finish_all([w])


def bench_join8(log: streamlog.Log, base: str, group: str) -> dict[str, float]:
    """8 member processes told to start together; ms until all hold the final assignment."""
    data = log.path
    cfgs = [member_cfg(data, group, JOIN_TOPIC, f"j{i}", "member") for i in range(JOIN_MEMBERS)]
    workers = start_workers(base, cfgs)
    store = GroupStore(data, group)
    try:
        t_go = go(workers)
        t_obs, state = observe(
            store,
            lambda s: (
                s.state == STABLE
                and len(s.members) == JOIN_MEMBERS
                and partitions_of(s) == set(range(JOIN_PARTITIONS))
            ),
        )
        gen = state.generation
        last = [w.wait(lambda ev: ev["e"] == "assigned" and ev["gen"] == gen) for w in workers]
        subs = [w.wait(lambda ev: ev["e"] == "subscribed") for w in workers]
        desc = log.describe_group(group)
        if desc.state != STABLE or len(desc.members) != JOIN_MEMBERS or desc.generation != gen:
            raise RuntimeError(f"describe_group after the join: {desc.state} {desc.generation}")
        ids = {m.member_id for m in desc.members}
        if {ev["member"] for ev in last} != ids:
            raise RuntimeError("members reporting the final generation differ from the group")
        end = max(ev["t"] for ev in last)
        gens = {ev["gen"] for w in workers for ev in w.find(lambda e: e["e"] == "assigned")}
        # idle cost: CPU of the Stable members, polling an empty topic, over IDLE_S
        cpu0, t0 = [cpu_seconds(w.proc.pid) for w in workers], time.monotonic()
        time.sleep(IDLE_S)
        cpu1, t1 = [cpu_seconds(w.proc.pid) for w in workers], time.monotonic()
        idle = median([(b - a) / (t1 - t0) * 100 for a, b in zip(cpu0, cpu1)])
        return {
            "idle_cpu_pct": idle,
            "total_ms": (end - t_go) / 1e6,
            "observed_ms": (t_obs - t_go) / 1e6,
            "last_subscribe_ms": (max(ev["t"] for ev in subs) - t_go) / 1e6,
            "generations": float(len(gens)),
        }
    finally:
        store.close()
        finish_all(workers)


# --------------------------------------------------------------------------- 2. failover
def bench_failover(
    base: str, data: str, group: str, kind: str, victim_index: int
) -> dict[str, float]:
    """3 members, Stable; one leaves / is killed / is stopped: ms until the 2 survivors own
    all partitions in a Stable group."""
    cfgs = [member_cfg(data, group, FAIL_TOPIC, f"f{i}", "member") for i in range(FAIL_MEMBERS)]
    workers = start_workers(base, cfgs)
    store = GroupStore(data, group)
    try:
        go(workers)
        _t, state = observe(
            store,
            lambda s: (
                s.state == STABLE
                and len(s.members) == FAIL_MEMBERS
                and partitions_of(s) == set(range(FAIL_PARTITIONS))
            ),
        )
        gen0 = state.generation
        ids = [
            w.wait(lambda ev: ev["e"] == "assigned" and ev["gen"] == gen0)["member"]
            for w in workers
        ]
        victim = workers[victim_index]
        survivors = [w for i, w in enumerate(workers) if i != victim_index]
        survivor_ids = {ids[i] for i in range(FAIL_MEMBERS) if i != victim_index}
        # steady state: heartbeats at their own pace, at a random phase to the event
        time.sleep(0.3 + random.random() * HEARTBEAT_MS / 1000)
        if kind == "leave":
            victim.send("close")
            t_event = victim.wait(lambda ev: ev["e"] == "closing")["t"]
        elif kind == "kill":
            t_event = now_ns()
            victim.signal(signal.SIGKILL)
        else:
            t_event = now_ns()
            victim.signal(signal.SIGSTOP)
        t_obs, state = observe(
            store,
            lambda s: (
                s.state == STABLE
                and s.generation > gen0
                and set(s.members) == survivor_ids
                and partitions_of(s, survivor_ids) == set(range(FAIL_PARTITIONS))
            ),
        )
        gen = state.generation
        last = [w.wait(lambda ev: ev["e"] == "assigned" and ev["gen"] == gen) for w in survivors]
        end = max(ev["t"] for ev in last)
        return {
            "ms": (end - t_event) / 1e6,
            "observed_ms": (t_obs - t_event) / 1e6,
            "generations": float(gen - gen0),
        }
    finally:
        store.close()
        finish_all(workers)


# --------------------------------------------------------------------------- 3. commits
class _Assigned(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.done = False

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.done = True


def _member(log: streamlog.Log, group: str, fsync: bool) -> streamlog.Consumer:
    listener = _Assigned()
    consumer = log.consumer(
        group_id=group,
        enable_auto_commit=False,
        fsync_commits=fsync,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    consumer.subscribe([COMMIT_TOPIC], listener=listener)
    deadline = time.monotonic() + TIMEOUT_S
    while not listener.done:
        consumer.poll(timeout_ms=10)
        if time.monotonic() > deadline:
            raise RuntimeError("the commit benchmark's member got no assignment")
    return consumer


def bench_commit(
    log: streamlog.Log, group: str, n: int, *, fsync: bool, asynchronous: bool
) -> float:
    """Commits/s of one member committing one partition's offset n times."""
    consumer = _member(log, group, fsync)
    tp = TopicPartition(COMMIT_TOPIC, 0)
    try:
        errors: list[BaseException] = []

        def callback(_offsets: Any, exc: BaseException | None) -> None:
            if exc is not None:
                errors.append(exc)

        t0 = time.perf_counter()
        if asynchronous:
            commit_async = consumer.commit_async
            for i in range(1, n + 1):
                commit_async({tp: OffsetAndMetadata(i, "")}, callback)
            member = consumer._member
            assert member is not None
            member.wait_async(timeout=TIMEOUT_S)
        else:
            commit = consumer.commit
            for i in range(1, n + 1):
                commit({tp: OffsetAndMetadata(i, "")})
        dt = time.perf_counter() - t0
        consumer.poll(timeout_ms=0)  # runs the async callbacks
        if errors:
            raise RuntimeError(f"async commits failed: {errors[0]!r}")
        if consumer.committed(tp) != n:
            raise RuntimeError(f"committed {consumer.committed(tp)}, expected {n}")
    finally:
        consumer.close()
    return n / dt


def bench_raw(d: str, n: int, *, append: bool) -> float:
    """os.pwrite of a 40-byte record + os.fdatasync, n times: at the end of the file
    (append) or over the same bytes (in place)."""
    path = os.path.join(d, f"raw-{'append' if append else 'inplace'}")
    record = os.urandom(RAW_RECORD)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.pwrite(fd, record, 0)
        os.fsync(fd)
        pos = RAW_RECORD
        pwrite, fdatasync = os.pwrite, os.fdatasync
        t0 = time.perf_counter()
        if append:
            for _ in range(n):
                pwrite(fd, record, pos)
                fdatasync(fd)
                pos += RAW_RECORD
        else:
            for _ in range(n):
                pwrite(fd, record, 0)
                fdatasync(fd)
        dt = time.perf_counter() - t0
    finally:
        os.close(fd)
        os.unlink(path)
    return n / dt


def bench_sqlite(d: str, n: int) -> float:
    """sqlite3 INSERT OR REPLACE of one offset row + commit, WAL, synchronous=FULL."""
    path = os.path.join(d, "offsets.sqlite")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE offsets (grp TEXT, topic TEXT, part INTEGER, off INTEGER, "
            "meta TEXT, PRIMARY KEY (grp, topic, part))"
        )
        conn.commit()
        sql = "INSERT OR REPLACE INTO offsets VALUES (?, ?, ?, ?, ?)"
        execute, commit = conn.execute, conn.commit
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            execute(sql, ("g", COMMIT_TOPIC, 0, i, ""))
            commit()
        dt = time.perf_counter() - t0
        (got,) = conn.execute("SELECT off FROM offsets").fetchone()
        if got != n:
            raise RuntimeError(f"sqlite holds {got}, expected {n}")
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
    return n / dt


# --------------------------------------------------------------------------- 4. consume
def fill(log: streamlog.Log, n: int, seed: int) -> int:
    """N records of 100 random bytes over 8 partitions, in batches of 128; returns batches."""
    log.create_topic(FILL_TOPIC, FILL_PARTITIONS)
    rng = random.Random(seed)
    pool = [rng.randbytes(VALUE_SIZE) for _ in range(4096)]
    per = [
        n // FILL_PARTITIONS + (1 if p < n % FILL_PARTITIONS else 0) for p in range(FILL_PARTITIONS)
    ]
    batches = 0
    ts = int(time.time() * 1000)
    k = 0
    for p, count in enumerate(per):
        plog = log.partition(FILL_TOPIC, p)
        left = count
        while left:
            m = min(FILL_BATCH, left)
            values = [pool[(k + j) & 4095] for j in range(m)]
            plog.append(prepare_batch(values, None, ts))
            k += m
            left -= m
            batches += 1
        plog.flush()
    return batches


def bench_consume(
    base: str, data: str, n: int, group: str | None, processes: int
) -> dict[str, float]:
    """records/s from ``go`` until every partition's last record was returned."""
    cfgs = [member_cfg(data, group, FILL_TOPIC, f"c{i}", "consume") for i in range(processes)]
    workers = start_workers(base, cfgs)
    try:
        settle()
        t_go = go(workers)
        first_end: dict[int, int] = {}
        deadline = time.monotonic() + 4 * TIMEOUT_S
        while len(first_end) < FILL_PARTITIONS:
            for w in workers:
                for ev in w.find(lambda e: e["e"] == "end"):
                    p = int(ev["p"])
                    first_end[p] = min(first_end.get(p, ev["t"]), ev["t"])
            if len(first_end) < FILL_PARTITIONS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"consume: only partitions {sorted(first_end)} were read")
                with workers[0].cond:
                    workers[0].cond.wait(0.005)
        end = max(first_end.values())
        for w in workers:
            w.send("exit")
        counts = [w.wait(lambda ev: ev["e"] == "count") for w in workers]
        returned = sum(int(c["n"]) for c in counts)
        assigned = [ev for w in workers for ev in w.find(lambda e: e["e"] == "assigned")]
        assigned = [ev for ev in assigned if ev["t"] <= end]  # not the rebalances of exit
        final = max((ev["gen"] for ev in assigned), default=0)
        stable = max((ev["t"] for ev in assigned if ev["gen"] == final), default=t_go)
        if returned < n:
            raise RuntimeError(f"consume: {returned} records returned, expected {n}")
        return {
            "rate": n / ((end - t_go) / 1e9),
            "seconds": (end - t_go) / 1e9,
            "duplicates": float(returned - n),
            "assigned_ms": (stable - t_go) / 1e6,
            "generations": float(len({ev["gen"] for ev in assigned})),
            "per_process_min": float(min(int(c["n"]) for c in counts)),
            "per_process_max": float(max(int(c["n"]) for c in counts)),
        }
    finally:
        finish_all(workers)


# --------------------------------------------------------------------------- report
# --------------------------------------------------------------------------- profile
def profile(workload: str, base: str, commits: int) -> None:
    """--profile: one run of a workload in this process under pyinstrument."""
    from pyinstrument import Profiler  # only for --profile

    with streamlog.open(os.path.join(base, "profile")) as log:
        log.create_topic(COMMIT_TOPIC, 1)
        log.create_topic(JOIN_TOPIC, JOIN_PARTITIONS)
        prof = Profiler(interval=0.0002)
        if workload == "join":
            listener = _Assigned()
            prof.start()
            t0 = time.perf_counter()
            consumer = log.consumer(
                group_id="profile-join",
                session_timeout_ms=SESSION_MS,
                heartbeat_interval_ms=HEARTBEAT_MS,
            )
            consumer.subscribe([JOIN_TOPIC], listener=listener)
            while not listener.done:
                consumer.poll(timeout_ms=20)
            dt = time.perf_counter() - t0
            prof.stop()
            consumer.close()
            print(f"join: lone member assigned after {dt * 1e3:.1f} ms under the profiler")
        else:
            fsync = workload == "commit"
            n = commits if fsync else 10 * commits
            consumer = _member(log, f"profile-{workload}", fsync)
            tp = TopicPartition(COMMIT_TOPIC, 0)
            prof.start()
            t0 = time.perf_counter()
            for i in range(1, n + 1):
                consumer.commit({tp: OffsetAndMetadata(i, "")})
            dt = time.perf_counter() - t0
            prof.stop()
            consumer.close()
            print(f"{workload}: {n:,} commits in {dt:.2f} s ({n / dt:,.0f}/s) under the profiler")
    print(prof.output_text(unicode=False, color=False, show_all=False))


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small fast run (about 35 s)")
    ap.add_argument("--runs", type=int, help="repetitions (default 5, 3 with --quick)")
    ap.add_argument("--records", type=int, help="records in the consume topic (default 2,000,000)")
    ap.add_argument("--commits", type=int, help="durable commits per run (default 3,000)")
    ap.add_argument("--only", help="comma-separated subset of join,failover,commit,consume")
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file (default benchmarks/results/groups.txt)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", choices=["commit", "commit-nosync", "join"], help="profile one")
    args = ap.parse_args(argv)

    q = args.quick
    runs = args.runs or (3 if q else 5)
    records = args.records or (500_000 if q else 2_000_000)
    commits = args.commits or (1_000 if q else 3_000)
    parts = ["join", "failover", "commit", "consume"]
    only = set(args.only.split(",")) if args.only else set(parts)
    if only - set(parts):
        ap.error(f"--only takes {','.join(parts)}")
    suffix = "-quick" if q else ""  # a quick run must not overwrite the full one
    out_path = args.out or os.path.join(HERE, "results", f"groups{suffix}.txt")
    random.seed(args.seed)

    base = tempfile.mkdtemp(prefix="streamlog-bench-groups-", dir=args.dir)
    if args.profile:
        try:
            profile(args.profile, base, commits)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return 0

    source_at_start = source_state(os.path.dirname(HERE))
    load_at_start = os.getloadavg()
    t_start = time.perf_counter()

    def note(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    res: dict[str, list[float]] = {}
    extra: dict[str, list[dict[str, float]]] = {}

    def add(key: str, value: float, more: dict[str, float] | None = None) -> None:
        res.setdefault(key, []).append(value)
        if more is not None:
            extra.setdefault(key, []).append(more)

    fill_batches = 0
    try:
        data = os.path.join(base, "data")
        log = streamlog.open(data)
        try:
            log.create_topic(JOIN_TOPIC, JOIN_PARTITIONS)
            log.create_topic(FAIL_TOPIC, FAIL_PARTITIONS)
            log.create_topic(COMMIT_TOPIC, 1)
            note(f"temp dir {base}; {runs} runs")

            if "join" in only:
                for r in range(runs):
                    sub_ms, go_ms = bench_lone(base, data, f"lone-{r}")
                    add("lone", sub_ms, {"go_ms": go_ms})
                    sub_ms2, go_ms2 = bench_lone(base, data, f"lone-{r}")  # the group exists now
                    add("lone-again", sub_ms2, {"go_ms": go_ms2})
                    j = bench_join8(log, base, f"join8-{r}")
                    add("join8", j["total_ms"], j)
                    note(
                        f"  join run {r + 1}: lone {sub_ms:.1f} ms (again {sub_ms2:.1f} ms), "
                        f"8 members {j['total_ms']:.0f} ms ({j['generations']:.0f} generations)"
                    )

            if "failover" in only:
                for r in range(runs):
                    for kind in ("leave", "kill", "stop"):
                        f = bench_failover(base, data, f"fo-{kind}-{r}", kind, r % FAIL_MEMBERS)
                        add(kind, f["ms"], f)
                        note(f"  failover run {r + 1} {kind}: {f['ms']:.0f} ms")

            if "commit" in only:

                def ours(
                    prefix: str, n: int, fsync: bool, asynchronous: bool
                ) -> Callable[[int], float]:
                    return lambda r: bench_commit(
                        log, f"{prefix}-{r}", n, fsync=fsync, asynchronous=asynchronous
                    )

                cfgs: list[tuple[str, Callable[[int], float]]] = [
                    ("commit-sync", ours("cs", commits, True, False)),
                    ("commit-async", ours("ca", commits, True, True)),
                    ("raw-append", lambda r: bench_raw(base, commits, append=True)),
                    ("raw-inplace", lambda r: bench_raw(base, commits, append=False)),
                    ("sqlite", lambda r: bench_sqlite(base, commits)),
                    ("commit-sync-nofsync", ours("cn", 10 * commits, False, False)),
                    ("commit-async-nofsync", ours("cna", 10 * commits, False, True)),
                ]
                for r in range(runs):
                    k = r % len(cfgs)
                    for key, fn in cfgs[k:] + cfgs[:k]:
                        settle()
                        rate = fn(r)
                        add(key, rate)
                        note(f"  commit run {r + 1} {key}: {rate:,.0f}/s")

            if "consume" in only:
                t0 = time.perf_counter()
                fill_batches = fill(log, records, args.seed)
                note(
                    f"  filled {records:,} records in {fill_batches:,} batches "
                    f"in {time.perf_counter() - t0:.1f} s"
                )
                kinds: list[tuple[str, str | None, int]] = [
                    ("group4", "cons4", GROUP_CONSUMERS),
                    ("group1", "cons1", 1),
                    ("nogroup", None, 1),
                ]
                for r in range(runs):
                    k = r % len(kinds)
                    for key, prefix, procs in kinds[k:] + kinds[:k]:
                        group = None if prefix is None else f"{prefix}-{r}"
                        c = bench_consume(base, data, records, group, procs)
                        add(key, c["rate"], c)
                        note(
                            f"  consume run {r + 1} {key}: {c['rate']:,.0f}/s "
                            f"({c['duplicates']:.0f} duplicates)"
                        )
                    ratio = res["group4"][-1] / res["group1"][-1]
                    add("ratio", ratio)
                    add("ratio-nogroup", res["group4"][-1] / res["nogroup"][-1])
        finally:
            log.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # ---- report
    table = Table("scenario")
    plural = "s" if runs != 1 else ""

    def ex(key: str, field: str) -> float:
        return median([x[field] for x in extra[key]])

    if "lone" in res:
        table.section(
            f"1. Join (median of {runs} run{plural}; members in their own processes, "
            f"topic of {JOIN_PARTITIONS} partitions)"
        )
        med = median(res["lone"])
        table.row(
            "1a lone member, new group: consumer() .. assigned",
            f"{med:.1f} ms",
            spread(res["lone"], ".1f"),
            f"go .. assigned {ex('lone', 'go_ms'):.1f} ms",
            f"<= {TARGETS['lone_ms']:.0f} ms",
            status(med <= TARGETS["lone_ms"]),
        )
        med = median(res["lone-again"])
        table.row(
            "1a lone member, existing (Empty) group",
            f"{med:.1f} ms",
            spread(res["lone-again"], ".1f"),
            f"go .. assigned {ex('lone-again', 'go_ms'):.1f} ms",
            f"<= {TARGETS['lone_ms']:.0f} ms",
            status(med <= TARGETS["lone_ms"]),
        )
        med = median(res["join8"])
        table.row(
            f"1b {JOIN_MEMBERS} processes join together: go .. all assigned, Stable",
            f"{med:.0f} ms",
            spread(res["join8"]),
            f"last subscribe at {ex('join8', 'last_subscribe_ms'):.0f} ms; Stable seen from "
            f"outside at {ex('join8', 'observed_ms'):.0f} ms; "
            f"{ex('join8', 'generations'):.0f} generation(s)",
            "report",
            "",
        )
        med = median([x["idle_cpu_pct"] for x in extra["join8"]])
        table.row(
            "1c CPU of an idle Stable member (of 8), poll(timeout_ms=20) loop",
            f"{med:.1f} %",
            spread([x["idle_cpu_pct"] for x in extra["join8"]], ".1f"),
            f"one core = 100 %; over {IDLE_S:.0f} s after the join, empty topic",
            "report",
            "",
        )
    if "kill" in res:
        table.section(
            f"2. Failover: {FAIL_MEMBERS} members, {FAIL_PARTITIONS} partitions, one goes; "
            f"event .. the 2 survivors own all {FAIL_PARTITIONS} in a Stable group "
            f"(session_timeout_ms={SESSION_MS}, heartbeat_interval_ms={HEARTBEAT_MS})"
        )
        labels = {
            "leave": ("2a clean leave (close())", "report", None),
            "kill": ("2b kill -9", f"<= {TARGETS['kill_ms']:.0f} ms", TARGETS["kill_ms"]),
            "stop": (
                "2c SIGSTOP",
                f"<= {SESSION_MS + TARGETS['stop_extra_ms']:.0f} ms (session + 200)",
                SESSION_MS + TARGETS["stop_extra_ms"],
            ),
        }
        for key, (label, target, limit) in labels.items():
            med = median(res[key])
            table.row(
                label,
                f"{med:.0f} ms",
                spread(res[key]),
                f"seen from outside at {ex(key, 'observed_ms'):.0f} ms; "
                f"{ex(key, 'generations'):.0f} generation(s)",
                target,
                "" if limit is None else status(max(res[key]) <= limit and med <= limit),
            )
    if "commit-sync" in res:
        table.section(
            f"3. Commits of one partition's offset by one member, in a loop ({commits:,} per "
            f"durable run, {10 * commits:,} otherwise; median of {runs} run{plural})"
        )
        raw = median(res["raw-append"])
        rows = [
            (
                "3a commit(), fsync_commits=True (durable)",
                "commit-sync",
                f">= {TARGETS['commit_rate']:,.0f}/s",
            ),
            ("3b commit_async(), fsync_commits=True", "commit-async", "report"),
            ("3c commit(), fsync_commits=False (default)", "commit-sync-nofsync", "report"),
            ("3d commit_async(), fsync_commits=False", "commit-async-nofsync", "report"),
            ("3e baseline: os.pwrite 40 B at the end + fdatasync", "raw-append", ""),
            ("3f baseline: os.pwrite 40 B in place + fdatasync", "raw-inplace", ""),
            ("3g baseline: sqlite INSERT OR REPLACE + commit, WAL, FULL", "sqlite", ""),
        ]
        for label, key, target in rows:
            med = median(res[key])
            detail = f"{1e6 / med:,.0f} us each"
            if key != "raw-append":
                detail += f", {med / raw:.2f}x raw append"
            st = status(med >= TARGETS["commit_rate"]) if key == "commit-sync" else ""
            table.row(label, f"{med:,.0f}/s", spread(res[key]), detail, target, st)
    if "ratio" in res:
        table.section(
            f"4. Consume {records:,} records of {VALUE_SIZE} B from {FILL_PARTITIONS} partitions "
            f"({fill_batches:,} batches): go .. every partition's last record returned "
            f"(median of {runs} run{plural})"
        )
        for key, label in (
            ("group4", f"4a group of {GROUP_CONSUMERS}, {GROUP_CONSUMERS} processes"),
            ("group1", "4b group of 1, one process"),
            ("nogroup", "4c no group (subscribe, all partitions), one process"),
        ):
            med = median(res[key])
            table.row(
                label,
                f"{med:,.0f}/s",
                spread(res[key]),
                f"{ex(key, 'seconds'):.2f} s; "
                + (
                    f"final assignment at {ex(key, 'assigned_ms'):.0f} ms "
                    f"({ex(key, 'generations'):.0f} generation(s)); "
                    if key != "nogroup"
                    else ""
                )
                + f"duplicates {ex(key, 'duplicates'):.0f}; "
                f"per process {ex(key, 'per_process_min'):,.0f}-{ex(key, 'per_process_max'):,.0f}",
            )
        med = median(res["ratio"])
        table.row(
            f"4  ratio group of {GROUP_CONSUMERS} / group of 1 (per run)",
            f"{med:.2f}x",
            spread(res["ratio"], ".2f"),
            f"vs no group: {median(res['ratio-nogroup']):.2f}x; {os.cpu_count()} CPUs",
            f">= {TARGETS['consume_ratio']}x",
            status(med >= TARGETS["consume_ratio"]),
        )

    title = "streamlog consumer-group benchmark"
    write_report(title, table, source_at_start, t_start, load_at_start, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
