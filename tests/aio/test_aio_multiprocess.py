"""Across processes: a child process appends (sync producer, event store) while an
``AIOConsumer`` / ``AIOSubscription`` waits on the event loop; every record arrives,
woken by the doorbell (well before the 100 ms nap), none missed."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

import pytest

import streamlog
from streamlog import CAUGHT_UP, TopicPartition
from streamlog.aio import AIOConsumer, AIOEventStore

from .._procs import ROOT, finish

pytestmark = [pytest.mark.multiprocess, pytest.mark.asyncio]

# the child: waits for "go" on stdin, then appends n records with random gaps (the
# value is time.monotonic_ns() just before the send) or n events to the event store
WRITER = """
import random, sys, time
sys.path.insert(0, {root!r})
import streamlog
n, mode = {n}, {mode!r}
rng = random.Random(7)
with streamlog.open({path!r}) as log:
    producer = log.producer()
    store = log.event_store("bank")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        time.sleep(rng.choice((0, 0.0002, 0.002, 0.02)))
        if mode == "records":
            producer.send("t", str(time.monotonic_ns()).encode())
        else:
            store.append("acc-%d" % (i % 3), str(time.monotonic_ns()).encode())
    producer.close()
    store.close()
print("done", flush=True)
"""


def _writer(path: str, n: int, mode: str) -> subprocess.Popen[str]:
    code = WRITER.format(root=ROOT, path=path, n=n, mode=mode)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


async def test_records_from_another_process_wake_the_consumer(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streamlog.aio._waker, "_NAP", 5.0)  # (so only a ring wakes it soon)
    n = 300
    proc = _writer(log.path, n, "records")
    lat: list[float] = []
    async with AIOConsumer(log, "t", auto_offset_reset="earliest") as c:
        assert await c.getmany(timeout_ms=20) == {}  # waiting: the bell is armed
        _go(proc)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(lat) < n:
            assert loop.time() < deadline, f"got {len(lat)} of {n}"
            got = await c.getmany(timeout_ms=1000)
            now = time.monotonic_ns()
            lat += [(now - int(r.value or b"0")) / 1e6 for r in got.get(TopicPartition("t", 0), [])]
    assert "done" in finish(proc, 60, "writer")
    assert len(lat) == n
    # woken by the doorbell, not by the bound of a sleep
    assert statistics.median(lat) < 20, statistics.median(lat)
    assert max(lat) < 2000, max(lat)


async def test_events_from_another_process_reach_a_live_subscription(log: streamlog.Log) -> None:
    n = 120
    proc = _writer(log.path, n, "events")
    async with AIOEventStore(log, "bank") as store:
        sub = store.subscribe()
        assert await sub.poll(timeout_ms=1000) == [CAUGHT_UP]
        _go(proc)
        events = []
        async for item in sub:
            if item is not CAUGHT_UP:
                events.append(item)
                if len(events) == n:
                    break
        sub.close()
    assert "done" in finish(proc, 60, "writer")
    per_stream: dict[str, list[int]] = {}
    for e in events:
        per_stream.setdefault(e.stream, []).append(e.revision)  # type: ignore[union-attr]
    assert all(revs == list(range(len(revs))) for revs in per_stream.values())
    assert sum(map(len, per_stream.values())) == n
