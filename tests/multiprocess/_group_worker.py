"""A consumer-group member process for test_groups_multiprocess (and the chaos soak).

``python _group_worker.py DATA TOPIC NAME OUTDIR [STRATEGY[,STRATEGY...]] [INSTANCE_ID]``

Subscribes to TOPIC in group ``g`` (explicit commits: after every poll, and
for revoked partitions inside ``on_partitions_revoked``) and appends one JSON
line per event to ``OUTDIR/NAME.jsonl`` (flushed at once, so a SIGKILL loses
nothing already written). Times are ``time.monotonic_ns()`` (one clock for
every process on the machine):

* ``{"e": "assigned"|"revoked"|"lost", "tps": [p, ...], "t": ns}``
* ``{"e": "poll", "t": ns, "r": [[p, first offset, last offset], ...]}``
  (only polls that returned records; ``t`` is taken right after poll returned)
* ``{"e": "commit", "ok": bool, "o": {p: offset}, "t": ns}``
* ``{"e": "self-stop", "t": ns}`` just before the process SIGSTOPs itself
* ``{"e": "closed", "t": ns}``

Control: the parent writes a word into ``OUTDIR/NAME.ctl``: ``stop`` makes the
worker SIGSTOP itself right after a poll that returned records (so that its
next action, once continued, is a commit of records it got before it
stopped); ``exit`` makes it close cleanly and exit.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time
from typing import IO, Any

import streamlog
from streamlog import CommitFailedError, ConsumerRebalanceListener, TopicPartition

faulthandler.enable()


class Recorder(ConsumerRebalanceListener):
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.consumer: streamlog.Consumer | None = None

    def event(self, kind: str, **fields: Any) -> None:
        self.out.write(json.dumps({"e": kind, "t": time.monotonic_ns(), **fields}) + "\n")
        self.out.flush()

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        if not offsets:
            return
        try:
            self.consumer.commit({tp: streamlog.OffsetAndMetadata(o) for tp, o in offsets.items()})
            ok = True
        except CommitFailedError:
            ok = False
        self.event("commit", ok=ok, o={str(tp.partition): o for tp, o in offsets.items()})

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        assert self.consumer is not None
        if revoked:
            self.commit({tp: self.consumer.position(tp) for tp in revoked})
        self.event("revoked", tps=sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.event("assigned", tps=sorted(tp.partition for tp in assigned))

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.event("lost", tps=sorted(tp.partition for tp in lost))


def _control(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def main() -> None:
    data, topic, name, outdir = sys.argv[1:5]
    strategies = (sys.argv[5] if len(sys.argv) > 5 else "range").split(",")
    instance = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None
    ctl = os.path.join(outdir, f"{name}.ctl")
    with streamlog.open(data) as log, open(os.path.join(outdir, f"{name}.jsonl"), "a") as out:
        rec = Recorder(out)
        consumer = log.consumer(
            group_id="g",
            client_id=name,
            group_instance_id=instance,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=1000,
            heartbeat_interval_ms=100,
            max_poll_interval_ms=20000,
            partition_assignment_strategy=strategies,
        )
        rec.consumer = consumer
        consumer.subscribe([topic], listener=rec)
        print("READY", flush=True)
        parent = os.getppid()
        while True:
            if os.getppid() != parent:
                break  # the test run died: do not linger as an orphan
            command = _control(ctl)
            if command == "exit":
                break
            polled = consumer.poll(timeout_ms=50)
            if not polled:
                continue
            now = time.monotonic_ns()
            ranges = [[tp.partition, rs[0].offset, rs[-1].offset] for tp, rs in polled.items()]
            out.write(json.dumps({"e": "poll", "t": now, "r": ranges}) + "\n")
            out.flush()
            if command == "stop":
                os.unlink(ctl)
                rec.event("self-stop")
                os.kill(os.getpid(), signal.SIGSTOP)
            rec.commit({tp: rs[-1].offset + 1 for tp, rs in polled.items()})
        consumer.close()
        rec.event("closed")


if __name__ == "__main__":
    main()
