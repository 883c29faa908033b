"""Readers in other processes across the cleaner's swaps: no SIGBUS, no record skipped.

The parent writes a compacted partition (values that name their own offset and
key), then starts two readers in child processes:

- a scanner that reads the whole partition from its start again and again
  through ``PartitionLog.read`` (keeping its segment maps between passes, so it
  holds the old segments when the cleaner replaces them), checking on every pass
  that each record is the one written at its offset, that offsets increase, and
  that the latest value of every key is there;
- a consumer (``auto_offset_reset="earliest"``) positioned in the middle of the
  log, which reads to the end once compaction has begun and checks the same.

While they read, the parent writes more and compacts, several rounds. Each round
is announced through a file the children wait for, never by timing. A child
killed by SIGBUS (or any signal) fails the test, as does any anomaly it reports.
Two shapes: 9 keys (every round merges the cleaned log into one segment) and 150
keys written in a scattered order (rounds merge segments in several groups, and
leave full ones alone), so readers see segments merged away under them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import streamlog
from streamlog.storage import prepare_batch

KEYS = 9
ROUNDS = 6

SCANNER = r"""
import os, sys, streamlog
root, stop = sys.argv[1], sys.argv[2]
passes = anomalies = 0
with streamlog.open(root, cleaner=False) as log:
    p = log.partition("t", 0)
    print("READY", flush=True)
    while True:
        done = os.path.exists(stop)  # (decided before the pass: the last pass is complete)
        off, end = p.log_start_offset, p.end_offset
        prev, latest = -1, {}
        while off < end:
            batches = p.read(off, 4096)
            if not batches:
                anomalies += 1
                print("EMPTY", off, end, flush=True)
                break
            for b in batches:
                for o, _ts, k, v, _h in b.records():
                    if o < off:
                        continue
                    if o <= prev or v is None or not v.startswith(b"%d:%s:" % (o, k)):
                        anomalies += 1
                        print("BAD", o, k, v, flush=True)
                    prev = o
                    latest[k] = int(v.split(b":")[0])
            off = batches[-1].next_offset
        # every key's last write before this pass began is there (or a later one)
        want = {}
        with open(os.path.join(root, "expected")) as f:
            for line in f:
                k, o = line.split()
                want[k.encode()] = int(o)
        for k, o in want.items():
            if o < end and latest.get(k, -1) < o:
                anomalies += 1
                print("MISSING", k, o, latest.get(k), flush=True)
        passes += 1
        if done:
            break
print("SCANNER", passes, anomalies, flush=True)
"""

CONSUMER = r"""
import os, sys, time, streamlog
from streamlog import TopicPartition
root, go, stop = sys.argv[1], sys.argv[2], sys.argv[3]
tp = TopicPartition("t", 0)
records = anomalies = 0
prev = -1
latest = {}
with streamlog.open(root, cleaner=False) as log:
    with log.consumer(auto_offset_reset="earliest", max_poll_records=7) as c:
        c.assign([tp])
        c.seek(tp, int(sys.argv[4]))
        print("READY", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)  # (waits for the parent's signal; nothing is timed)
        while True:
            done = os.path.exists(stop)
            polled = c.poll(timeout_ms=0).get(tp, [])
            for r in polled:
                if r.offset <= prev or not r.value.startswith(b"%d:%s:" % (r.offset, r.key)):
                    anomalies += 1
                    print("BAD", r.offset, r.key, r.value, flush=True)
                prev = r.offset
                latest[r.key] = r.offset
                records += 1
            if done and c.position(tp) >= log.partition("t", 0).end_offset:
                break
print("CONSUMER", records, anomalies, prev, flush=True)
"""


def _value(off: int, key: bytes) -> bytes:
    return b"%d:%s:" % (off, key) + b"x" * (off % 120)


@pytest.mark.parametrize("keys", [KEYS, 150])
def test_readers_in_other_processes_read_across_swaps(
    tmp_path: os.PathLike[str], keys: int
) -> None:
    root = os.fspath(tmp_path)
    merged = 0
    stop = os.path.join(root, "stop")
    go = os.path.join(root, "go")
    expected: dict[bytes, int] = {}

    def write(p: streamlog.storage.PartitionLog, n: int) -> None:
        for _ in range(n):
            off = p.end_offset
            k = off % keys if keys == KEYS or off % 3 == 0 else off * 2654435761 % 2**32 % keys
            key = b"k%d" % k
            r = p.append(prepare_batch([_value(off, key)], [key], 1000 + off))
            assert r.base_offset == off
            expected[key] = off
        tmp = os.path.join(root, "expected.tmp")
        with open(tmp, "w") as f:
            f.writelines(f"{k.decode()} {o}\n" for k, o in expected.items())
        os.replace(tmp, os.path.join(root, "expected"))

    with streamlog.open(root, cleaner=False) as log:
        log.create_topic("t", 1, {"cleanup.policy": "compact", "segment.bytes": 4096})
        p = log.partition("t", 0)
        write(p, 400)
        middle = p.end_offset // 2
        scanner = subprocess.Popen(
            [sys.executable, "-c", SCANNER, root, stop],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        consumer = subprocess.Popen(
            [sys.executable, "-c", CONSUMER, root, go, stop, str(middle)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            for proc in (scanner, consumer):
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == b"READY", proc.stderr
            cleaned = 0
            for round_ in range(ROUNDS):
                before = p.segment_count
                stats = log.compact("t")
                cleaned += stats.segments_cleaned
                merged += before - p.segment_count
                if round_ == 0:
                    open(go, "w").close()
                write(p, 120)
            assert cleaned > 0 and merged > 0
            open(stop, "w").close()
            out_s, err_s = scanner.communicate(timeout=120)
            out_c, err_c = consumer.communicate(timeout=120)
        finally:
            for proc in (scanner, consumer):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
        end = p.end_offset
    assert scanner.returncode == 0, f"scanner died: {scanner.returncode}\n{err_s.decode()[-2000:]}"
    assert consumer.returncode == 0, (
        f"consumer died: {consumer.returncode}\n{err_c.decode()[-2000:]}"
    )
    last_s = out_s.split(b"\n")[-2].split()
    assert last_s[0] == b"SCANNER" and int(last_s[2]) == 0, out_s.decode()[-3000:]
    assert int(last_s[1]) >= 1
    last_c = out_c.split(b"\n")[-2].split()
    assert last_c[0] == b"CONSUMER" and int(last_c[2]) == 0, out_c.decode()[-3000:]
    assert int(last_c[3]) == end - 1, "the consumer did not reach the end"
    print(
        f"\n{keys} keys: scanner {int(last_s[1])} passes; consumer {int(last_c[1])} records; "
        f"{merged} segments merged away"
    )
    assert streamlog.check(root).ok
