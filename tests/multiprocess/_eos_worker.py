"""A consume-transform-produce process for test_exactly_once (``python _eos_worker.py``).

``_eos_worker.py DATA IN OUT GROUP TXN_ID MAX_RECORDS``

Reads IN with a read_committed group consumer (auto-commit off), and for every
poll runs one transaction: each input value ``<key>:<seq>`` goes to OUT as
``<key>:<seq>:<pid>`` with the same key, then the consumer's next offsets are
sent to the transaction, then it commits. Prints ``READY`` once
``init_transactions`` returned, ``TXN <n>`` after each commit, and exits 0 once
the group's committed offsets reach the end of every IN partition. The parent
SIGKILLs it at random moments.
"""

from __future__ import annotations

import faulthandler
import os
import random
import sys
import time

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition

faulthandler.enable()


def main() -> int:
    data, in_topic, out_topic, group, txn_id, max_records = sys.argv[1:7]
    pid = os.getpid()
    with streamlog.open(data) as log:
        consumer = log.consumer(
            group_id=group,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=int(max_records),
            session_timeout_ms=6000,
            heartbeat_interval_ms=200,
        )
        consumer.subscribe([in_topic])
        producer = log.producer(transactional_id=txn_id, transaction_timeout_ms=10_000)
        producer.init_transactions()
        print("READY", flush=True)
        tps = [TopicPartition(in_topic, p) for p in sorted(log.partitions_for(in_topic))]
        done = 0
        idle = 0
        while True:
            batch = consumer.poll(timeout_ms=100, max_records=random.randint(1, int(max_records)))
            if not batch:
                idle += 1
                ends = consumer.end_offsets(tps)
                if idle >= 3 and all(consumer.committed(tp) == ends[tp] for tp in tps):
                    break
                continue
            idle = 0
            producer.begin_transaction()
            offsets = {}
            for tp, records in batch.items():
                for r in records:
                    assert r.value is not None
                    producer.send(out_topic, r.value + f":{pid}".encode(), key=r.key)
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
            time.sleep(random.uniform(0, 0.004))  # the work: kills land inside transactions
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()
            done += 1
            print(f"TXN {done}", flush=True)
        producer.close()
        consumer.close()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
