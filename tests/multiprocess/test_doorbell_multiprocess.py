"""The doorbell across processes: a consumer process sleeping in ``poll`` is woken by
another process's append, no wake-up is lost over 1,000 appends with random gaps, a
killed reader's bell is cleaned up, and an idle consumer costs almost no CPU."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import streamlog
from streamlog import _layout
from streamlog.storage import prepare_batch

from .._procs import ROOT, finish

pytestmark = pytest.mark.multiprocess

# a consumer process: reports "ready" once it sleeps, then the latency of each record
# (its value is the writer's time.monotonic_ns()), then its CPU time while idle
READER = """
import json, sys, time
sys.path.insert(0, {root!r})
import streamlog
from streamlog import TopicPartition
n, idle = {n}, {idle}
with streamlog.open({path!r}) as log:
    c = log.consumer()
    c.assign([TopicPartition("t", 0)])
    c.poll(timeout_ms=10)
    print("ready", flush=True)
    lat = []
    while len(lat) < n:
        got = c.poll(timeout_ms=10_000)
        now = time.monotonic_ns()
        if not got:
            break
        lat += [(now - int(r.value)) / 1000 for rs in got.values() for r in rs]
    cpu0 = time.process_time()
    t0 = time.monotonic()
    c.poll(timeout_ms=idle * 1000)
    cpu = time.process_time() - cpu0
    c.close()
print(json.dumps({{"lat": lat, "idle_cpu": cpu, "idle_wall": time.monotonic() - t0}}))
"""


def _reader(path: str, n: int, idle: float = 0) -> subprocess.Popen[str]:
    code = READER.format(root=ROOT, path=path, n=n, idle=idle)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _sleepers(log: streamlog.Log) -> int:
    doorbell = log._manager.signal.doorbell
    assert doorbell is not None
    return doorbell.sleepers()


def _wait_for(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _stamp() -> bytes:
    return str(time.monotonic_ns()).encode()


def test_a_sleeping_reader_is_woken_by_another_process(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    proc = _reader(log.path, 20)
    part = log.partition("t", 0)
    for _ in range(20):
        _wait_for(lambda: _sleepers(log) == 1)  # it sleeps on its bell
        time.sleep(0.02)
        part.append(prepare_batch([_stamp()]))
    out = json.loads(finish(proc, 60, "reader").splitlines()[-1])
    lat = sorted(out["lat"])
    assert len(lat) == 20
    print(f"\nwoken across processes: p50 {lat[10]:.0f} us, max {lat[-1]:.0f} us")
    # polling would take up to 100 ms (the bounded sleep); a ring takes microseconds
    assert lat[10] < 20_000


def test_no_wakeup_is_lost_over_1000_appends(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    proc = _reader(log.path, 1000)
    part = log.partition("t", 0)
    rng = random.Random(int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or None)
    for _ in range(1000):
        part.append(prepare_batch([_stamp()]))
        gap = rng.choice((0.0, 0.0001, 0.0005, 0.001, 0.003))
        if gap:
            time.sleep(gap * rng.random())
    out = json.loads(finish(proc, 120, "reader").splitlines()[-1])
    lat = sorted(out["lat"])
    assert len(lat) == 1000
    print(f"\n1,000 appends: p50 {lat[500]:.0f} us, p99 {lat[990]:.0f} us, max {lat[-1]:.0f} us")
    # a lost wake-up shows as a record waiting out the bounded sleep (100 ms)
    assert lat[990] < 50_000


def test_a_killed_readers_bell_is_cleaned_up(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    proc = _reader(log.path, 1)
    _wait_for(lambda: _sleepers(log) == 1)
    bells = [n for n in os.listdir(_layout.doorbells_dir(log.path)) if n.endswith(".sock")]
    assert [_layout.bell_pid(n) for n in bells] == [proc.pid]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the count stays high (it was armed), so the writer rings, finds the bell dead
    log.partition("t", 0).append(prepare_batch([_stamp()]))
    assert [n for n in os.listdir(_layout.doorbells_dir(log.path)) if n.endswith(".sock")] == []
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()


def test_an_idle_consumer_costs_almost_no_cpu(log: streamlog.Log) -> None:
    log.create_topic("t", 1)
    proc = _reader(log.path, 0, idle=2)
    out = json.loads(finish(proc, 60, "reader").splitlines()[-1])
    print(f"\nidle consumer: {out['idle_cpu'] * 1000:.1f} ms CPU in {out['idle_wall']:.2f} s")
    assert out["idle_wall"] >= 1.9
    assert out["idle_cpu"] < 0.2
