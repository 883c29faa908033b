"""A stream-processing process for test_eos_kill9 (``python _streams_worker.py``).

``_streams_worker.py DATA GUARANTEE [--fresh]``

Runs a ``StreamsApp`` (application id ``sums``) over the data directory: the
input topic ``in`` has keys ``u<n>`` and values ``<id>:<amount>``. Each record
goes to its group ``g<n % GROUPS>`` (a repartition topic), and a per-group
aggregate ``(count, sum, id of the last record)`` is kept in the store
``sums`` and written to ``out`` as ``<count>:<sum>:<id>`` (so every output
names the input that caused it). Each record is also counted per input id
(another repartition topic) in the store ``ids``: one key per input, so that
checkpoints and restores have some size. The input is read at most 5,000
records/s so that runs last long enough to be killed in the middle. ``--fresh``
deletes the local state directory first (no checkpoints: the whole changelog is
replayed).

Prints ``READY`` once ``start()`` returned, ``COMMIT <n>`` as commits happen,
and, once it holds all 9 tasks (``in`` and the repartition topics have 3
partitions each) and the group's committed offsets reach the end of every source
topic, one JSON line (the stores' contents and the metrics); then it closes and
exits 0. A worker sharing the tasks with another one never finishes.
The parent SIGKILLs it at random moments.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import sys
import time
from typing import Any

import streamlog
from streamlog import TopicPartition
from streamlog.streams import StreamsApp

faulthandler.enable()

GROUPS = 5
APP = "sums"


def _group(key: str, value: str) -> str:
    return f"g{int(key[1:]) % GROUPS}"


def _add(key: str, value: str, agg: Any) -> tuple[int, int, int]:
    ident, amount = value.split(":")
    return (agg[0] + 1, agg[1] + int(amount), int(ident))


class _Throttle:
    """At most RATE records/s (sleeping when ahead of that pace): a run lasts long enough
    to be killed in the middle."""

    RATE = 5_000

    def __init__(self) -> None:
        self.n = 0
        self.start = time.monotonic()

    def __call__(self, key: str, value: str) -> None:
        self.n += 1
        if self.n % 50 == 0:
            ahead = self.n / self.RATE - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)


def build(target: Any, guarantee: str) -> StreamsApp:
    app = StreamsApp(
        target,
        application_id=APP,
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=100 if guarantee == "exactly_once" else 200,
        checkpoint_interval_ms=300,
        max_poll_records=200,
    )
    stream = app.stream("in").peek(_Throttle())
    (
        stream.group_by(_group)
        .aggregate(lambda: (0, 0, -1), _add, materialized_as="sums")
        .to_stream()
        .map_values(lambda agg: f"{agg[0]}:{agg[1]}:{agg[2]}")
        .to("out")
    )
    stream.group_by(lambda k, v: int(v.split(":")[0])).count(materialized_as="ids")
    return app


def caught_up(log: streamlog.Log, app: StreamsApp) -> bool:
    try:
        desc = log.describe_group(APP)
    except streamlog.StreamlogError:
        return False
    for topic in app.build().source_topics:
        for p in log.partitions_for(topic):
            end = log.partition(topic, p).end_offset
            lag = desc.offsets.get(TopicPartition(topic, p))
            if end and (lag is None or lag.committed != end):
                return False
    return True


def main() -> int:
    data, guarantee = sys.argv[1:3]
    if "--fresh" in sys.argv[3:]:
        shutil.rmtree(os.path.join(data, "streams", APP), ignore_errors=True)
    with streamlog.open(data, cleaner=False) as log:
        app = build(log, guarantee)
        app.start()
        print("READY", flush=True)
        commits = 0
        while len(app.metrics()["tasks"]) != 9 or not caught_up(log, app):
            if app.state == "ERROR":
                raise RuntimeError("the app died") from app.exception
            m = app.metrics()
            if m["commits"] != commits:
                commits = m["commits"]
                print(f"COMMIT {commits}", flush=True)
            time.sleep(0.05)
        store = sorted(app.store("sums").items())
        ids = dict(app.store("ids").items())
        metrics = app.metrics()
        app.close()
        if app.exception is not None:
            raise RuntimeError("the app died") from app.exception
    result = {
        "store": store,
        "ids": len(ids),
        "ids_total": sum(ids.values()),
        "ids_not_once": sorted(k for k, v in ids.items() if v != 1)[:20],
        "ids_missing": sorted(set(range(len(ids))) - set(ids))[:20],
        "metrics": metrics,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
