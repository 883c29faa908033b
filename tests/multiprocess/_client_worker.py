"""Client processes for test_clients_multiprocess (``python _client_worker.py MODE ...``).

They use only the public client API (``log.producer()``, ``log.consumer()``).
Record values are ASCII ``<writer>:<seq>:<send ns>``, where ``<send ns>`` is
``time.monotonic_ns()`` just before ``send`` (CLOCK_MONOTONIC is system-wide,
so another process can subtract it from its own clock).

Modes:

``consume DATA TOPIC EXPECTED OUT TIMEOUT_S``
    subscribe to TOPIC (no group: every partition) from the earliest offset,
    print ``READY`` once positions are resolved, then poll until EXPECTED
    records arrived (or TIMEOUT_S passed). Writes one line per record to OUT:
    ``<partition> <offset> <value> <receive ns>``; prints ``DONE <count>``.
``produce DATA TOPIC WRITER COUNT PACE``
    open a producer (acks=1), print ``READY``, read a start time (monotonic
    ns) from stdin and wait for it, then send COUNT records to partition 0.
    PACE ``burst``: as fast as possible; ``trickle``: a 1 ms sleep after every
    10 records (so that concurrent writers interleave); ``paced``: 0.5-3 ms
    apart with a 120 ms pause every 100 records (so the consumer goes idle and
    must notice the next record from its sleep). Prints ``ACK <seq> <ns>``
    (when each future completed) for paced records, then ``DONE``.
``acked DATA TOPIC RUN ACKS``
    forever: send a window of 1-20 records (``r<RUN>-<seq>``) to partition 0,
    then for each future in order, ``future.result()`` and print
    ``A <offset> <value>`` (flushed). The parent SIGKILLs it at random moments.
"""

from __future__ import annotations

import faulthandler
import random
import sys
import time
from collections.abc import Callable

import streamlog

faulthandler.enable()


def consume(data: str, topic: str, expected: int, out_path: str, timeout_s: float) -> None:
    lines: list[str] = []
    with streamlog.open(data) as log:
        consumer = log.consumer(topic, auto_offset_reset="earliest")
        for tp in consumer.assignment():
            consumer.position(tp)
        print("READY", flush=True)
        deadline = time.monotonic() + timeout_s
        count = 0
        while count < expected and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=500)
            now = time.monotonic_ns()
            for tp, records in polled.items():
                for r in records:
                    lines.append(f"{tp.partition} {r.offset} {(r.value or b'').decode()} {now}\n")
                count += len(records)
        # anything beyond what was expected (duplicates would show here)
        for records in consumer.poll(timeout_ms=200).values():
            for r in records:
                lines.append(f"{r.partition} {r.offset} {(r.value or b'').decode()} 0\n")
        consumer.close()
    with open(out_path, "w") as f:
        f.writelines(lines)
    print(f"DONE {len(lines)}", flush=True)


def _stamp(into: dict[int, int], seq: int) -> Callable[[object], None]:
    def done(_future: object) -> None:
        into[seq] = time.monotonic_ns()

    return done


def produce(data: str, topic: str, writer: str, count: int, pace: str) -> None:
    rng = random.Random(writer)
    with streamlog.open(data) as log:
        producer = log.producer(acks=1)
        producer.partitions_for(topic)  # metadata ready before the clock starts
        print("READY", flush=True)
        start_ns = int(sys.stdin.readline())
        while time.monotonic_ns() < start_ns:
            time.sleep(0.0005)
        send = producer.send
        acked_ns: dict[int, int] = {}
        for seq in range(count):
            if pace == "paced":
                time.sleep(0.12 if seq % 100 == 99 else rng.uniform(0.0005, 0.003))
            elif pace == "trickle" and seq % 10 == 9:
                time.sleep(0.001)
            future = send(topic, f"{writer}:{seq}:{time.monotonic_ns()}".encode(), partition=0)
            if pace == "paced":
                future.add_done_callback(_stamp(acked_ns, seq))
        producer.close()
    for seq, ns in sorted(acked_ns.items()):
        print(f"ACK {seq} {ns}")
    print("DONE", flush=True)


def acked(data: str, topic: str, run: str, acks: str) -> None:
    rng = random.Random(run)
    out = sys.stdout
    log = streamlog.open(data)
    producer = log.producer(acks="all" if acks == "all" else int(acks))
    seq = 0
    while True:
        window = []
        for _ in range(rng.randint(1, 20)):
            value = f"r{run}-{seq}"
            seq += 1
            window.append((value, producer.send(topic, value.encode(), partition=0)))
        for value, future in window:
            md = future.result(timeout=30)
            out.write(f"A {md.offset} {value}\n")
            out.flush()


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "consume":
        consume(args[0], args[1], int(args[2]), args[3], float(args[4]))
    elif mode == "produce":
        produce(args[0], args[1], args[2], int(args[3]), args[4])
    elif mode == "acked":
        acked(args[0], args[1], args[2], args[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
