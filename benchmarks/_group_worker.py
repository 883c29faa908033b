"""A consumer-group member process for bench_groups.py.

``python benchmarks/_group_worker.py CONFIG_JSON``

The config names the data directory (``data``), the ``topic``, the ``group``
(``null``: no group, the consumer subscribes and reads every partition), the
worker's ``name`` (its client id), the ``mode`` and the consumer settings
(``session_timeout_ms``, ``heartbeat_interval_ms``).

The worker imports streamlog, opens the data directory and prints
``{"e": "ready"}``. Nothing it does before the parent writes ``go`` on its
stdin is timed. Then, per mode:

``member``
    Creates the consumer (``group_id``, ``subscribe([topic])`` with a
    listener) and polls with ``timeout_ms=POLL_MS`` in a loop, as a live
    member does. Prints ``{"e": "subscribed", "t": ns}`` (taken just before
    the consumer is created) and, from the listener, ``{"e": "assigned",
    "t": ns, "gen": generation, "member": member_id, "tps": [p, ...]}`` at
    every completed rebalance. On ``close`` it prints ``{"e": "closing", "t":
    ns}`` and calls ``consumer.close()`` (a clean leave), then ``{"e":
    "closed", "t": ns}`` and exits.
``consume``
    Reads the pre-filled topic with ``poll(timeout_ms=POLL_MS,
    max_records=10_000)``. The end offsets are read before ``go``. When a
    poll returns the last record of a partition the worker prints ``{"e":
    "end", "p": partition, "t": ns}`` (``t`` taken right after the poll
    returned); in a group, it prints ``assigned`` events as ``member`` does.
    On ``exit`` it prints ``{"e": "count", "n": records returned,
    "by": {p: records}}``, closes and exits.

Times are ``time.monotonic_ns()``: CLOCK_MONOTONIC, one clock for every
process on the machine, so the parent compares them with its own.
``exit`` (or the end of stdin) makes any mode close and exit.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import streamlog
from streamlog import ConsumerRebalanceListener, TopicPartition

POLL_MS = 20
MAX_RECORDS = 10_000


def emit(kind: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"e": kind, **fields}) + "\n")
    sys.stdout.flush()


class Commands(threading.Thread):
    """Reads command lines from stdin; ``latest`` is the last one (``exit`` at EOF)."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="commands")
        self.latest = ""
        self.changed = threading.Event()

    def run(self) -> None:
        for line in sys.stdin:
            self.latest = line.strip()
            self.changed.set()
        self.latest = "exit"
        self.changed.set()


class Reporter(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.consumer: streamlog.Consumer | None = None

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        t = time.monotonic_ns()
        assert self.consumer is not None
        meta = self.consumer.group_metadata()
        emit(
            "assigned",
            t=t,
            gen=meta["generation_id"],
            member=meta["member_id"],
            tps=sorted(tp.partition for tp in self.consumer.assignment()),
        )


def consumer_config(cfg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"client_id": cfg["name"], "auto_offset_reset": "earliest"}
    if cfg.get("group") is not None:
        out.update(
            group_id=cfg["group"],
            session_timeout_ms=cfg.get("session_timeout_ms", 1000),
            heartbeat_interval_ms=cfg.get("heartbeat_interval_ms", 100),
        )
    return out


def run_member(log: streamlog.Log, cfg: dict[str, Any], commands: Commands) -> None:
    reporter = Reporter()
    t = time.monotonic_ns()
    consumer = log.consumer(**consumer_config(cfg))
    reporter.consumer = consumer
    consumer.subscribe([cfg["topic"]], listener=reporter)
    emit("subscribed", t=t)
    while True:
        command = commands.latest
        if command in ("close", "exit"):
            emit("closing", t=time.monotonic_ns())
            consumer.close()
            emit("closed", t=time.monotonic_ns())
            return
        consumer.poll(timeout_ms=POLL_MS)


def run_consume(
    log: streamlog.Log, cfg: dict[str, Any], commands: Commands, ends: dict[int, int]
) -> None:
    topic = cfg["topic"]
    reporter = Reporter()
    consumer = log.consumer(**consumer_config(cfg))
    reporter.consumer = consumer
    consumer.subscribe([topic], listener=reporter if cfg.get("group") is not None else None)
    emit("subscribed", t=time.monotonic_ns())
    count = 0
    by: dict[int, int] = {}
    reported: set[int] = set()
    poll, clock = consumer.poll, time.monotonic_ns
    while commands.latest != "exit":
        got = poll(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
        if not got:
            continue
        t = clock()
        for tp, records in got.items():
            n = len(records)
            count += n
            p = tp.partition
            by[p] = by.get(p, 0) + n
            if p not in reported and records[-1].offset + 1 >= ends[p]:
                reported.add(p)
                emit("end", p=p, t=t)
    emit("count", n=count, by={str(p): n for p, n in sorted(by.items())})
    consumer.close()


def main() -> None:
    cfg: dict[str, Any] = json.loads(sys.argv[1])
    commands = Commands()
    with streamlog.open(cfg["data"]) as log:
        ends: dict[int, int] = {}
        if cfg["mode"] == "consume":
            topic = cfg["topic"]
            ends = {p: log.partition(topic, p).end_offset for p in log.partitions_for(topic)}
        emit("ready", pid=os.getpid())
        commands.start()
        commands.changed.wait()
        commands.changed.clear()
        if commands.latest != "go":
            return
        if cfg["mode"] == "consume":
            run_consume(log, cfg, commands, ends)
        else:
            run_member(log, cfg, commands)


if __name__ == "__main__":
    main()
