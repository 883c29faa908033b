"""Child process of ``test_crash_points``: one run of a workload that passes every crash point.

Usage: ``python _workload_child.py DATA RUN``

``STREAMLOG_CRASHPOINT=name:n`` in the environment makes it SIGKILL itself at
the n-th pass of that point. It opens the directory, damages the offset index
of a sealed segment of partition 0 and reads through it (indexes are
disposable: the read rebuilds it by rename, passing the ``index.rebuild_*``
points), then:

- appends 10 batches of 1-3 records (``r<RUN>-<i>-<j>``) to ``t``/0, every
  other one with ``sync=True``, printing ``A <base> <value> ...`` after each
  (segments of 4 KiB: appends roll and the flusher thread syncs);
- rolls by hand after batch 2, runs ``delete_records`` to the active
  segment's base after batch 4 (retention of whole segments) and one offset
  further after batch 5, printing ``D <offset>`` before each, and
  ``enforce_retention`` after batch 6 (printing ``D <end>``: an upper bound);
- commits offset ``<RUN>*100 + i`` for ``t``/0 with ``sync=True`` after
  batches 3 and 7, printing ``C <offset>`` after each;
- creates topic ``x<RUN>`` after batch 8, printing ``T <name>``, and after
  batch 9 creates and deletes ``y<RUN>``, printing ``Y <name>`` before the
  deletion and ``X <name>`` after;
- closes, printing ``DONE``.

Every line is printed and flushed after the call returned, so a line the
parent reads whole was acknowledged.
"""

from __future__ import annotations

import faulthandler
import struct
import sys

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition
from streamlog.coordination._offsets import OffsetStore
from streamlog.storage import PartitionLog, prepare_batch

faulthandler.enable()

TOPIC = "t"
GROUP = "g"


def _damage_an_index(p: PartitionLog) -> None:
    """Make the first entry of a sealed segment's offset index point at no batch and
    read through it: the read rebuilds the index (by rename: ``index.rebuild_*``)."""
    start = p.log_start_offset
    for seg in p.segments()[:-1]:
        batches = [b for _pos, b in seg.batches() if b is not None]
        if seg.base_offset < start or sum(b.record_count for b in batches) < 3:
            continue
        with open(seg.index_path, "r+b") as f:  # (this process maps it: it sees the change)
            f.write(struct.pack("<II", 1, 8))
        p.read(seg.base_offset + 2, 1)
        return


def main() -> None:
    data, run = sys.argv[1], int(sys.argv[2])
    out = sys.stdout

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    log = streamlog.open(data)
    p = log.partition(TOPIC, 0)
    _damage_an_index(p)
    store = OffsetStore(data, GROUP)
    for i in range(10):
        values = [b"r%d-%d-%d-" % (run, i, j) + b"v" * 400 for j in range(1 + i % 3)]
        r = p.append(prepare_batch(values), sync=i % 2 == 1)
        say(f"A {r.base_offset} {' '.join(v.decode() for v in values)}")
        if i == 2:
            p.roll()
        elif i == 3 or i == 7:
            c = run * 100 + i
            store.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(c, "")}, sync=True)
            say(f"C {c}")
        elif i == 4:
            target = p.segments()[-1].base_offset
            say(f"D {target}")
            p.delete_records(target)
        elif i == 5:
            target = min(p.log_start_offset + 1, p.end_offset)
            say(f"D {target}")
            p.delete_records(target)
        elif i == 6:
            say(f"D {p.end_offset}")
            p.enforce_retention(now_ms=10**13)
        elif i == 8:
            log.create_topic(f"x{run}", 1)
            say(f"T x{run}")
        elif i == 9:
            log.create_topic(f"y{run}", 1)
            say(f"Y y{run}")  # asked: from now on it may be gone
            log.delete_topic(f"y{run}")
            say(f"X y{run}")
    store.close()
    log.close()
    say("DONE")


if __name__ == "__main__":
    main()
