"""Producers and consumers in separate processes on one data directory.

* A consumer process tails what a producer process sends: every record once,
  in order; the latency of noticing new data is measured and printed.
* Four producer processes x 2,500 records into one partition, with a consumer
  process tailing it: per-producer order kept, counts exact, offsets dense.
* A producer child is SIGKILLed at random moments, over and over (acks="all"
  and acks=1): after each kill every acknowledged record is found exactly
  once, at its acknowledged offset, and the log is an in-order prefix of what
  each child sent.

Worker processes: ``_client_worker.py``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise

import pytest

import streamlog
from streamlog import TopicPartition
from tests._procs import finish

pytestmark = pytest.mark.multiprocess

WORKER = os.path.join(os.path.dirname(__file__), "_client_worker.py")
TOPIC = "t"
TP = TopicPartition(TOPIC, 0)


def _spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        _out, err = proc.communicate()
        raise AssertionError(f"worker did not start: {line!r}\n{err}")


def _start_together(producers: list[subprocess.Popen[str]]) -> None:
    """Once every producer is READY, tell them all to start 20 ms from now."""
    for proc in producers:
        _wait_ready(proc)
    start = time.monotonic_ns() + 20_000_000
    for proc in producers:
        assert proc.stdin is not None
        proc.stdin.write(f"{start}\n")
        proc.stdin.flush()


def _read_consumed(path: str) -> list[tuple[int, int, str, int]]:
    """(partition, offset, value, receive ns) per line of a consumer's output."""
    out = []
    with open(path) as f:
        for line in f:
            p, o, v, ns = line.split()
            out.append((int(p), int(o), v, int(ns)))
    return out


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _read_all(log: streamlog.Log) -> list[str]:
    """Every value of partition 0, read with a consumer; asserts offsets are dense."""
    c = log.consumer(auto_offset_reset="earliest", max_poll_records=100_000)
    c.assign([TP])
    end = c.end_offsets([TP])[TP]
    values: list[str] = []
    while c.position(TP) < end:
        records = c.poll(timeout_ms=1000).get(TP, [])
        assert records, f"no progress at {c.position(TP)} < {end}"
        for r in records:
            assert r.offset == len(values), (r.offset, len(values))
            values.append((r.value or b"").decode())
    c.close()
    return values


# ---------------------------------------------------------------- tailing + latency


def test_consumer_process_sees_every_record_of_a_producer_process_once_in_order(
    tmp_path: os.PathLike[str],
) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    paced, burst = 600, 20_000
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1)
    out_path = os.path.join(os.fspath(tmp_path), "consumed.txt")
    consumer = _spawn("consume", root, TOPIC, paced + burst, out_path, 60)
    _wait_ready(consumer)
    # first paced records (latency), then a burst (throughput, batching)
    slow = _spawn("produce", root, TOPIC, "p", paced, "paced")
    _start_together([slow])
    acked_ns: dict[int, int] = {}
    for line in finish(slow, 60, "paced producer").splitlines():
        if line.startswith("ACK "):
            _tag, seq, ns = line.split()
            acked_ns[int(seq)] = int(ns)
    assert sorted(acked_ns) == list(range(paced))
    fast = _spawn("produce", root, TOPIC, "b", burst, "burst")
    _start_together([fast])
    finish(fast, 60, "burst producer")
    out = finish(consumer, 60, "consumer")
    assert out.split() == ["DONE", str(paced + burst)], out

    consumed = _read_consumed(out_path)
    assert [o for _p, o, _v, _ns in consumed] == list(range(paced + burst))
    writers_seqs = [(v.split(":")[0], int(v.split(":")[1])) for _p, _o, v, _ns in consumed]
    assert writers_seqs == [("p", i) for i in range(paced)] + [("b", i) for i in range(burst)]

    end_to_end, producer_side, consumer_side = [], [], []
    for _p, _o, v, received in consumed[:paced]:
        _w, seq, sent = v.split(":")
        end_to_end.append((received - int(sent)) / 1e6)
        producer_side.append((acked_ns[int(seq)] - int(sent)) / 1e6)
        consumer_side.append((received - acked_ns[int(seq)]) / 1e6)
    for name, values in (
        ("send -> receive", end_to_end),
        ("send -> ack", producer_side),
        ("ack -> receive", consumer_side),
    ):
        values.sort()
        print(
            f"\ncross-process latency, {name} ({paced} paced records): "
            + ", ".join(
                f"{q} {_percentile(values, f):.3f} ms"
                for q, f in (("min", 0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1))
            )
        )
    # Noticing new data = from the append (the producer's ack follows it within
    # microseconds) to poll() returning it in the other process. The producer's own
    # send -> ack time is printed but not bounded tightly: under concurrent fsync
    # load an append into the mapped segment can stall on the file system's journal.
    assert end_to_end[0] > 0
    notice_p99 = _percentile(consumer_side, 0.99)
    assert notice_p99 < 50, f"p99 notice latency {notice_p99:.1f} ms"
    assert _percentile(end_to_end, 0.5) < 50


# ---------------------------------------------------------------- four producers


def test_four_producer_processes_one_partition_with_a_consumer_process(
    tmp_path: os.PathLike[str],
) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    writers, per_writer = 4, 2500
    total = writers * per_writer
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1)
    out_path = os.path.join(os.fspath(tmp_path), "consumed.txt")
    consumer = _spawn("consume", root, TOPIC, total, out_path, 60)
    _wait_ready(consumer)
    producers = [_spawn("produce", root, TOPIC, f"w{w}", per_writer, "trickle") for w in range(4)]
    _start_together(producers)
    for w, proc in enumerate(producers):
        assert finish(proc, 60, f"producer {w}").split() == ["DONE"]
    assert finish(consumer, 60, "consumer").split() == ["DONE", str(total)]

    consumed = _read_consumed(out_path)
    assert [o for _p, o, _v, _ns in consumed] == list(range(total))  # dense, once, in order
    seqs: dict[str, list[int]] = {f"w{w}": [] for w in range(writers)}
    for _p, _o, v, _ns in consumed:
        writer, seq, _sent = v.split(":")
        seqs[writer].append(int(seq))
    for writer, got in seqs.items():
        assert got == list(range(per_writer)), f"{writer}: order or count broken"
    # the writers really interleaved (else this test proves little)
    switches = sum(1 for a, b in pairwise(consumed) if a[2].split(":")[0] != b[2].split(":")[0])
    assert switches >= 100, switches
    with streamlog.open(root) as log:
        assert [v.rsplit(":", 1)[0] for v in _read_all(log)] == [
            v.rsplit(":", 1)[0] for _p, _o, v, _ns in consumed
        ]
    assert streamlog.check(root).ok
    print(f"\nfour producer processes: {total} records, {switches} writer switches in the log")


# ---------------------------------------------------------------- kill -9 loop


class _Acked:
    """Everything acknowledged so far, across all children."""

    def __init__(self) -> None:
        self.by_offset: dict[int, str] = {}
        self.per_run: list[int] = []  # number of records acknowledged by each run

    def add_run(self, lines: Iterator[str]) -> int:
        count = 0
        for line in lines:
            if not line.endswith("\n"):
                break  # cut by the kill
            tag, offset, value = line.split()
            assert tag == "A", line
            assert int(offset) not in self.by_offset, f"offset {offset} acknowledged twice"
            self.by_offset[int(offset)] = value
            count += 1
        self.per_run.append(count)
        return count


def _check_after_kill(root: str, acked: _Acked) -> list[str]:
    with streamlog.open(root) as log:
        values = _read_all(log)  # offsets dense from 0
    # every acknowledged record is there, at its offset
    for offset, value in acked.by_offset.items():
        assert offset < len(values), f"acknowledged offset {offset} lost (end {len(values)})"
        assert values[offset] == value, (offset, values[offset], value)
    # exactly once: no value twice
    assert len(set(values)) == len(values), "a record is duplicated"
    # the log is, run after run, an in-order prefix of what each child sent
    i = 0
    for run, count in enumerate(acked.per_run):
        seq = 0
        while i < len(values) and values[i].startswith(f"r{run}-"):
            assert values[i] == f"r{run}-{seq}", (i, values[i], run, seq)
            i += 1
            seq += 1
        assert seq >= count, f"run {run}: {count} acknowledged, only {seq} in the log"
    assert i == len(values), f"unexpected record {values[i]!r} at {i}"
    return values


def _kill_loop(tmp_path: os.PathLike[str], acks: str, iterations: int) -> tuple[int, int, int]:
    root = os.path.join(os.fspath(tmp_path), "data")
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, {"segment.bytes": 4096, "index.interval.bytes": 256})
    rng = random.Random(f"kill9-{acks}")
    acked = _Acked()
    before_any_ack = 0
    for run in range(iterations):
        with _spawn("acked", root, TOPIC, run, acks) as child:
            assert child.stdout is not None and child.stderr is not None
            wait_for = rng.choice([0, 1, 5, 30, 100, 300])
            lines: list[str] = []
            if wait_for == 0:
                time.sleep(rng.uniform(0.05, 0.2))  # maybe still starting, opening, recovering
            else:
                while len(lines) < wait_for:
                    line = child.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
                time.sleep(rng.uniform(0.0, 0.01))
            child.send_signal(signal.SIGKILL)
            # read through the same buffered file as readline() (communicate() would
            # skip what that buffer already holds)
            rest = child.stdout.read()
            err = child.stderr.read()
            assert child.wait(timeout=30) == -signal.SIGKILL, f"child ended by itself: {err}"
        got = acked.add_run(iter(lines + rest.splitlines(keepends=True)))
        before_any_ack += got == 0
        _check_after_kill(root, acked)
    values = _check_after_kill(root, acked)
    report = streamlog.check(root)
    assert report.ok, str(report)
    with streamlog.open(root) as log:  # and appends continue after all that
        with log.producer(acks="all") as p:
            md = p.send(TOPIC, b"after").result(timeout=10)
        assert md.offset == len(values)
    return len(acked.by_offset), len(values), before_any_ack


@pytest.mark.parametrize("acks", ["all", "1"])
def test_acknowledged_records_survive_kill9_of_the_producer(
    tmp_path: os.PathLike[str], acks: str
) -> None:
    iterations = 24
    t = time.monotonic()
    n_acked, n_log, early = _kill_loop(tmp_path, acks, iterations)
    assert n_acked > 500, "too few acknowledgements to mean anything"
    print(
        f"\nkill -9 x{iterations} (acks={acks}): {n_acked} acknowledged, {n_log} in the log, "
        f"{early} kills before any ack, {time.monotonic() - t:.1f} s"
    )
