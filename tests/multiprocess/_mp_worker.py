"""Worker processes for the multiprocess tests (run as ``python _mp_worker.py MODE ...``).

Record values written by ``writer`` are ``w,seq,first,count,pad,crc``: writer id,
sequence number, the first sequence number of its batch and the batch's size,
padding, and a CRC-32 of everything before it. A reader can therefore check
each record on its own, each writer's order, and that a batch is complete.

Modes:

``writer DATA TOPIC WID N SEED``
    append N records as batches of 1-8 (some with sync=True); print ``DONE``.
``reader DATA TOPIC TOTAL TIMEOUT``
    tail partition 0 from offset 0 until TOTAL records are seen; verify
    everything; print ``READER <records> <batches> <polls>``; exit 1 on a
    violation (with a message on stdout).
``churn DATA TOPIC SECONDS``
    append, roll, delete_records and enforce retention as fast as possible.
``chaser DATA TOPIC SECONDS``
    tail the partition while ``churn`` deletes under it; jump to the log start
    when retention passes us; verify every record read.
``hog DATA TOPIC N``
    append N large batches in a tight loop, printing ``A <base> <count>`` per
    append (used to be SIGSTOPped while holding the append lock).
``try DATA TOPIC TIMEOUT_MS``
    open with ``lock_timeout_ms``, try one append; print ``TIMEOUT <where>
    <seconds>`` on LockTimeoutError, ``OK <offset>`` otherwise.
"""

from __future__ import annotations

import faulthandler
import random
import sys
import time
import zlib

import streamlog
from streamlog.storage._codec import prepare_batch

faulthandler.enable()


def make_value(wid: int, seq: int, first: int, count: int, pad: int) -> bytes:
    body = b"%d,%d,%d,%d,%s," % (wid, seq, first, count, b"p" * pad)
    return body + b"%08x" % zlib.crc32(body)


def parse_value(v: bytes) -> tuple[int, int, int, int]:
    body, _, crc = v.rpartition(b",")
    body += b","
    if b"%08x" % zlib.crc32(body) != crc:
        raise ValueError(f"bad checksum in {v!r}")
    wid, seq, first, count, _pad, _ = body.split(b",")
    return int(wid), int(seq), int(first), int(count)


def writer(data: str, topic: str, wid: int, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with streamlog.open(data) as log:
        p = log.partition(topic, 0)
        seq = 0
        while seq < n:
            count = min(n - seq, rng.randint(1, 8))
            values = [
                make_value(wid, seq + j, seq, count, rng.randint(0, 40)) for j in range(count)
            ]
            p.append(prepare_batch(values), sync=rng.random() < 0.1)
            seq += count
    print("DONE", flush=True)


def check_batch(
    batch: streamlog.storage._codec.RecordBatch, expect_offset: int, last_seq: dict[int, int]
) -> int:
    """Verify one batch (complete, checksums, per-writer order); return the next offset."""
    recs = list(batch.records())
    if len(recs) != batch.record_count:
        raise AssertionError(
            f"batch at {batch.base_offset}: {len(recs)} records of {batch.record_count}"
        )
    if batch.base_offset != expect_offset:
        raise AssertionError(f"batch at {batch.base_offset}, expected {expect_offset}")
    parsed = [parse_value(r[3]) for r in recs]
    wid, _seq, first, count = parsed[0]
    if count != len(recs) or [p[1] for p in parsed] != list(range(first, first + count)):
        raise AssertionError(f"partial or mixed batch at {batch.base_offset}: {parsed}")
    if any(p[0] != wid or p[2] != first or p[3] != count for p in parsed):
        raise AssertionError(f"mixed batch at {batch.base_offset}: {parsed}")
    if first != last_seq.get(wid, -1) + 1:
        raise AssertionError(f"writer {wid}: seq {first} after {last_seq.get(wid, -1)}")
    last_seq[wid] = first + count - 1
    for j, r in enumerate(recs):
        if r[0] != expect_offset + j:
            raise AssertionError(f"record offset {r[0]}, expected {expect_offset + j}")
    return expect_offset + count


def reader(data: str, topic: str, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_seq: dict[int, int] = {}
    off = batches = polls = 0
    with streamlog.open(data) as log:
        p = log.partition(topic, 0)
        while off < total:
            if time.monotonic() > deadline:
                print(f"TIMEOUT after {off} records", flush=True)
                sys.exit(1)
            polls += 1
            got = p.read(off, 64 * 1024)
            if not got:
                time.sleep(0.0005)
                continue
            for b in got:
                try:
                    off = check_batch(b, off, last_seq)
                except (AssertionError, ValueError) as e:
                    print(f"VIOLATION {e}", flush=True)
                    sys.exit(1)
                batches += 1
    print(f"READER {off} {batches} {polls}", flush=True)


def churn(data: str, topic: str, seconds: float) -> None:
    rng = random.Random(1)
    end = time.monotonic() + seconds
    seq = 0
    ops = {"append": 0, "roll": 0, "delete_records": 0, "retention": 0}
    with streamlog.open(data) as log:
        p = log.partition(topic, 0)
        while time.monotonic() < end:
            count = rng.randint(1, 6)
            values = [make_value(0, seq + j, seq, count, rng.randint(0, 200)) for j in range(count)]
            p.append(prepare_batch(values))
            seq += count
            ops["append"] += 1
            r = rng.random()
            if r < 0.05:
                p.roll()
                ops["roll"] += 1
            elif r < 0.10:
                p.delete_records(max(p.log_start_offset, p.end_offset - rng.randint(0, 50)))
                ops["delete_records"] += 1
            elif r < 0.13:
                ops["retention"] += p.enforce_retention()
    print("CHURN " + " ".join(f"{k}={v}" for k, v in ops.items()), flush=True)


def chaser(data: str, topic: str, seconds: float) -> None:
    """Tail while others delete; reopen the directory now and then (opening races too)."""
    end = time.monotonic() + seconds
    records = jumps = reopens = 0
    last = -1
    off = 0
    while time.monotonic() < end:
        reopen_at = time.monotonic() + 0.3
        with streamlog.open(data) as log:
            p = log.partition(topic, 0)
            while time.monotonic() < min(end, reopen_at):
                try:
                    got = p.read(off, 32 * 1024)
                except streamlog.OffsetOutOfRangeError as e:
                    if off >= e.log_start_offset:
                        raise
                    off = e.log_start_offset
                    jumps += 1
                    continue
                if not got:
                    time.sleep(0.0002)
                    continue
                for b in got:
                    for o, _ts, _k, v, _h in b.records():
                        if o < off:
                            continue
                        _wid, seq, _first, _count = parse_value(v)
                        if seq <= last or seq != o:  # one writer from offset 0: seq == offset
                            raise AssertionError(f"seq {seq} at offset {o} after {last}")
                        last = seq
                        records += 1
                    off = b.last_offset + 1
                if records % 16 == 0:
                    p.size_bytes()  # opens every listed segment
        reopens += 1
    print(f"CHASER {records} {jumps} {reopens}", flush=True)


def hog(data: str, topic: str, n: int) -> None:
    big = b"h" * 200_000
    with streamlog.open(data, lock_timeout_ms=30_000) as log:
        p = log.partition(topic, 0)
        for i in range(n):
            values = [b"%d:" % i + big, b"%d:" % i + big]
            r = p.append(prepare_batch(values))
            print(f"A {r.base_offset} {len(values)}", flush=True)
    print("DONE", flush=True)


def try_append(data: str, topic: str, timeout_ms: int) -> None:
    t0 = time.monotonic()
    where = "open"
    try:
        with streamlog.open(data, lock_timeout_ms=timeout_ms) as log:
            where = "partition"
            p = log.partition(topic, 0)
            where = "append"
            t0 = time.monotonic()
            r = p.append(prepare_batch([b"try"]))
            print(f"OK {r.base_offset}", flush=True)
    except streamlog.LockTimeoutError as e:
        print(f"TIMEOUT {where} {time.monotonic() - t0:.3f} {e.path}", flush=True)


def main() -> None:
    mode, data, topic, *rest = sys.argv[1:]
    if mode == "writer":
        writer(data, topic, int(rest[0]), int(rest[1]), int(rest[2]))
    elif mode == "reader":
        reader(data, topic, int(rest[0]), float(rest[1]))
    elif mode == "churn":
        churn(data, topic, float(rest[0]))
    elif mode == "chaser":
        chaser(data, topic, float(rest[0]))
    elif mode == "hog":
        hog(data, topic, int(rest[0]))
    elif mode == "try":
        try_append(data, topic, int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
