"""The transactional workload of test_txn_crash_points (``python _txn_child.py DATA``).

Four transactions of producer ``x``, each writing ``t<i>-<p>`` to partitions 0 and 1
of topic ``a`` and the offset ``i + 1`` of ``in``-0 for group ``grp``; the third is
aborted, the others committed. Prints ``COMMITTED <i>`` / ``ABORTED <i>`` after each
call returned, then ``DONE``. The parent kills it at a crash point.
"""

from __future__ import annotations

import sys

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition


def main() -> None:
    with streamlog.open(sys.argv[1]) as log:
        p = log.producer(transactional_id="x")
        p.init_transactions()
        for i in range(4):
            p.begin_transaction()
            for part in (0, 1):
                p.send("a", f"t{i}-{part}".encode(), partition=part)
            p.send_offsets_to_transaction({TopicPartition("in", 0): OffsetAndMetadata(i + 1, "")},
                                          "grp")
            if i == 2:
                p.abort_transaction()
                print(f"ABORTED {i}", flush=True)
            else:
                p.commit_transaction()
                print(f"COMMITTED {i}", flush=True)
        p.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
