"""Exactly-once consume-transform-produce: a transformer killed with SIGKILL, restarted, and
its output checked.

Run: python examples/exactly_once.py [DATA_DIR]   (a fresh temporary directory by default)

The transformer reads ``payments`` with a read_committed group consumer, writes one
``receipts`` record per payment, and commits its consumer offsets in the same
transaction as its output. The script starts it as a child process, SIGKILLs it in
the middle of its work, starts it again (the new instance fences the old one and
aborts its open transaction), lets it finish, and then checks with a read_committed
consumer that every payment has exactly one receipt, in order per account.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import time

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition

PAYMENTS = 2000
ACCOUNTS = 10


def transform(path: str) -> None:
    """The transformer: runs until every payment is processed."""
    with streamlog.open(path) as log:
        consumer = log.consumer(
            group_id="receipts-writer",
            enable_auto_commit=False,  # offsets are committed by the transaction
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=50,
        )
        consumer.subscribe(["payments"])
        producer = log.producer(transactional_id="receipts-writer")
        producer.init_transactions()  # fences an older instance, aborts its transaction
        inputs = [TopicPartition("payments", p) for p in sorted(log.partitions_for("payments"))]
        print("ready", flush=True)
        while True:
            batch = consumer.poll(timeout_ms=200)
            if not batch:
                ends = consumer.end_offsets(inputs)
                if all(consumer.committed(tp) == ends[tp] for tp in inputs):
                    break  # everything is processed and committed
                continue
            producer.begin_transaction()
            for records in batch.values():
                for r in records:
                    producer.send("receipts", b"receipt for " + (r.value or b""), key=r.key)
            time.sleep(0.01)  # (the work of a real transformer: the kill lands about here)
            offsets = {tp: OffsetAndMetadata(rs[-1].offset + 1, "") for tp, rs in batch.items()}
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()
        producer.close()
        consumer.close()


def main(path: str) -> None:
    with streamlog.open(path) as log:
        log.create_topic("payments", partitions=3)
        log.create_topic("receipts", partitions=3)
        with log.producer(acks="all", linger_ms=5) as producer:
            for i in range(PAYMENTS):
                account = f"account-{i % ACCOUNTS}"
                producer.send("payments", f"{account} payment {i}".encode(), key=account.encode())
    print(f"{PAYMENTS} payments written")

    child = [sys.executable, os.path.abspath(__file__), path, "--transform"]
    first = subprocess.Popen(child, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None and first.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # in the middle of a transaction, most likely
    first.wait()
    print(f"transformer killed with SIGKILL (exit code {first.returncode})")
    subprocess.run(child, check=True, stdout=subprocess.DEVNULL, timeout=300)
    print("a new transformer finished the work")

    with streamlog.open(path) as log:
        seen: dict[str, int] = {}
        for isolation in ("read_uncommitted", "read_committed"):
            consumer = log.consumer(
                "receipts",
                auto_offset_reset="earliest",
                isolation_level=isolation,
                consumer_timeout_ms=500,
            )
            receipts = [r.value.decode() for r in consumer if r.value is not None]
            consumer.close()
            seen[isolation] = len(receipts)
        numbers = [int(text.rsplit(" ", 1)[1]) for text in receipts]  # read_committed's
        counts = collections.Counter(numbers)
        assert sorted(counts) == list(range(PAYMENTS)), "a payment has no receipt"
        assert max(counts.values()) == 1, "a payment has two receipts"
        per_account = collections.defaultdict(list)
        for n in numbers:
            per_account[n % ACCOUNTS].append(n)
        assert all(ns == sorted(ns) for ns in per_account.values()), "receipts out of order"
    print(
        f"read_uncommitted sees {seen['read_uncommitted']} receipts "
        f"(including the killed transformer's aborted ones)"
    )
    print(f"read_committed sees {seen['read_committed']}: each payment exactly once, in order")


if __name__ == "__main__":
    if "--transform" in sys.argv:
        transform(sys.argv[1])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-eos-"))
