"""A producer and a consumer in two separate processes sharing one data directory.

Run: python examples/two_processes.py [DATA_DIR]

The parent creates the topic and starts a consumer process that prints every
record it sees; then it produces numbered records, one every few
milliseconds, and waits for the consumer to report the last one.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
import time

import streamlog

COUNT = 20


def consume(path: str, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    with streamlog.open(path) as log:
        consumer = log.consumer("events", auto_offset_reset="earliest")
        ready.set()
        seen = 0
        while seen < COUNT:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for r in records:
                    lag_ms = time.time() * 1000 - r.timestamp
                    print(
                        f"consumer pid: got {r.value!r} at {tp.topic}-{tp.partition}@{r.offset}"
                        f" ({lag_ms:.1f} ms after it was sent)"
                    )
                    seen += 1
        consumer.close()


def main(path: str) -> None:
    with streamlog.open(path) as log:
        if "events" not in log.topics():
            log.create_topic("events", partitions=2)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=consume, args=(path, ready))
    child.start()
    ready.wait(30)
    with streamlog.open(path) as log, log.producer() as producer:
        for i in range(COUNT):
            producer.send("events", f"event {i}".encode(), key=str(i % 4).encode())
            producer.flush()
            time.sleep(0.005)
    child.join(30)
    print("consumer exited with", child.exitcode)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-"))
