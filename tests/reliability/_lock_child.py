"""Processes for ``test_lock_holder_killed`` (``python _lock_child.py MODE DATA ...``).

Record values are those of ``tests/multiprocess/_mp_worker.py``: writer id,
sequence number, the batch's first sequence number and size, padding and a
CRC-32, so every record and every batch can be checked on its own.

``writer DATA WID N``
    append N records to ``t``/0 in batches of 1-8 (some with ``sync=True``),
    printing ``A <base> <count>`` after each append; ``DONE`` at the end.
``holder DATA WID``
    append large batches (2 x 100 KB) for ever, printing ``A <base> <count>``
    after each: the append lock is held most of the time. The parent kills it.
``reader DATA TIMEOUT``
    tail ``t``/0 from offset 0, verifying every batch (complete, checksums,
    each writer's sequence in order), until a record ``END`` arrives; prints
    ``READER <records> <batches>`` or ``VIOLATION <what>`` (exit 1).
"""

from __future__ import annotations

import faulthandler
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import streamlog  # noqa: E402
from streamlog.storage import prepare_batch  # noqa: E402
from tests.multiprocess._mp_worker import check_batch, make_value  # noqa: E402

faulthandler.enable()
TOPIC = "t"


def writer(data: str, wid: int, n: int) -> None:
    rng = random.Random(wid)
    with streamlog.open(data, lock_timeout_ms=20_000) as log:
        p = log.partition(TOPIC, 0)
        seq = 0
        while seq < n:
            count = min(n - seq, rng.randint(1, 8))
            values = [
                make_value(wid, seq + j, seq, count, rng.randint(0, 300)) for j in range(count)
            ]
            r = p.append(prepare_batch(values), sync=rng.random() < 0.1)
            print(f"A {r.base_offset} {count}", flush=True)
            seq += count
    print("DONE", flush=True)


def holder(data: str, wid: int) -> None:
    with streamlog.open(data, lock_timeout_ms=20_000) as log:
        p = log.partition(TOPIC, 0)
        seq = 0
        while True:
            values = [make_value(wid, seq + j, seq, 2, 100_000) for j in range(2)]
            r = p.append(prepare_batch(values))
            print(f"A {r.base_offset} 2", flush=True)
            seq += 2


def reader(data: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_seq: dict[int, int] = {}
    off = batches = records = 0
    with streamlog.open(data) as log:
        p = log.partition(TOPIC, 0)
        while True:
            if time.monotonic() > deadline:
                print(f"VIOLATION timeout after {off} records", flush=True)
                sys.exit(1)
            got = p.read(off, 256 * 1024)
            if not got:
                time.sleep(0.0005)
                continue
            for b in got:
                recs = list(b.records())
                if recs[0][3] == b"END":
                    print(f"READER {records} {batches}", flush=True)
                    return
                try:
                    off = check_batch(b, off, last_seq)
                except (AssertionError, ValueError) as e:
                    print(f"VIOLATION {e}", flush=True)
                    sys.exit(1)
                batches += 1
                records += len(recs)


def main() -> None:
    mode, data, *rest = sys.argv[1:]
    if mode == "writer":
        writer(data, int(rest[0]), int(rest[1]))
    elif mode == "holder":
        holder(data, int(rest[0]))
    elif mode == "reader":
        reader(data, float(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
