"""Child process for test_kill9: a producer that the parent kills with SIGKILL.

Usage: python _kill9_child.py DATA TOPIC RUN COUNT DELETE_EVERY AUX_EVERY

Opens DATA and appends COUNT batches (1-5 records each) to partition 0 of
TOPIC with ``sync=True``. After each append returns, prints one line::

    A <base_offset> <value> <value> ...

and flushes, so every line the parent reads whole is an acknowledged batch.
Every DELETE_EVERY appends (0: never) it prints ``D <offset>`` and then calls
``delete_records(<offset>)`` with the active segment's base offset (deleting
every sealed segment); every AUX_EVERY appends (0: never) it creates a topic
(metadata writes). At the end it closes the log and prints ``DONE``.
Crash points come from ``STREAMLOG_CRASHPOINT`` in the environment.
"""

from __future__ import annotations

import random
import sys

import streamlog
from streamlog.storage._codec import prepare_batch


def main() -> None:
    data, topic, run, count, delete_every, aux_every = sys.argv[1:7]
    n, d_every, a_every = int(count), int(delete_every), int(aux_every)
    rng = random.Random(run)
    out = sys.stdout
    log = streamlog.open(data)
    p = log.partition(topic, 0)
    seq = 0
    for i in range(n):
        k = rng.randint(1, 5)
        values = [
            f"r{run}-s{seq + j}-".encode() + b"x" * rng.randint(0, 80) for j in range(k)
        ]
        seq += k
        r = p.append(prepare_batch(values), sync=True)
        out.write(f"A {r.base_offset} {' '.join(v.decode() for v in values)}\n")
        out.flush()
        if d_every and i % d_every == d_every - 1:
            segs = p.segments()
            if len(segs) >= 2:
                before = segs[-1].base_offset
                out.write(f"D {before}\n")
                out.flush()
                p.delete_records(before)
        if a_every and i % a_every == a_every // 2:
            log.create_topic(f"aux-{run}-{i}", 1)
    log.close()
    out.write("DONE\n")
    out.flush()


if __name__ == "__main__":
    main()
