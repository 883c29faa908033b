"""Child process for the OffsetStore tests (multi-process commits and kill -9).

Usage::

    python _offsets_child.py kill DATA GROUP START COUNT META_SIZE
    python _offsets_child.py mp DATA GROUP WORKER COUNT META_SIZE

``kill``: commits n = START, START+1, ... (COUNT commits) with ``sync=True``,
each one setting partitions 0-2 of topic ``k`` to offset n with metadata
``"<n>:"`` padded with ``x`` to META_SIZE characters, and prints ``A <n>``
after each commit returns (flushed: every whole line the parent reads is an
acknowledged commit). Prints ``DONE`` at the end. Crash points come from
``STREAMLOG_CRASHPOINT``.

``mp``: worker W commits COUNT times to its own topic ``w<W>`` (partitions
0-3, a random non-empty subset each time, offset = the commit's sequence
number) and to ``shared``/0 now and then (metadata ``"<W>:<seq>"``), some
commits with ``sync=True``. After every few commits it reads the whole group
and checks: its own partitions hold exactly its last commits (read your
writes) and no other worker's partition went backwards since it last looked.
At the end it prints ``LAST <json>`` (its last offset per partition and its
last shared commit) and exits 0; any violation exits 1 with a message.
"""

from __future__ import annotations

import json
import random
import sys

from streamlog import OffsetAndMetadata, TopicPartition
from streamlog.coordination._offsets import OffsetStore


def kill_mode(data: str, group: str, start: int, count: int, meta_size: int) -> None:
    store = OffsetStore(data, group)
    out = sys.stdout
    for n in range(start, start + count):
        meta = f"{n}:".ljust(meta_size, "x")
        store.commit(
            {TopicPartition("k", p): OffsetAndMetadata(n, meta) for p in range(3)}, sync=True
        )
        out.write(f"A {n}\n")
        out.flush()
    out.write("DONE\n")
    out.flush()


def mp_mode(data: str, group: str, worker: int, count: int, meta_size: int) -> None:
    rng = random.Random(worker)
    store = OffsetStore(data, group, lock_timeout=60)
    mine = [TopicPartition(f"w{worker}", p) for p in range(4)]
    last: dict[TopicPartition, int] = {}
    seen: dict[TopicPartition, int] = {}
    last_shared = None
    pad = "m" * meta_size
    for seq in range(count):
        tps = rng.sample(mine, rng.randint(1, 4))
        offsets = {tp: OffsetAndMetadata(seq, pad) for tp in tps}
        if rng.random() < 0.2:
            offsets[TopicPartition("shared", 0)] = OffsetAndMetadata(seq, f"{worker}:{seq}")
            last_shared = seq
        store.commit(offsets, generation=worker, member_id=f"m{worker}", sync=rng.random() < 0.1)
        for tp in tps:
            last[tp] = seq
        if seq % 5 == 0 or seq == count - 1:
            state = store.all()
            for tp, off in last.items():
                if state.get(tp) != OffsetAndMetadata(off, pad):
                    sys.exit(f"worker {worker}: {tp} reads {state.get(tp)}, committed {off}")
            for tp, oam in state.items():
                if tp.topic.startswith("w") and tp not in last:
                    if oam.offset < seen.get(tp, -1):
                        sys.exit(f"worker {worker}: {tp} went back from {seen[tp]} to {oam}")
                    seen[tp] = oam.offset
    store._check()
    report = {f"{tp.topic}/{tp.partition}": off for tp, off in last.items()}
    print("LAST " + json.dumps({"last": report, "shared": last_shared}), flush=True)


def main() -> None:
    mode, data, group, a, count, meta_size = sys.argv[1:7]
    if mode == "kill":
        kill_mode(data, group, int(a), int(count), int(meta_size))
    elif mode == "mp":
        mp_mode(data, group, int(a), int(count), int(meta_size))
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
