"""streamlog quickstart: a topic, keyed records with headers produced, consumed, and their offsets.

Run: python examples/quickstart.py [DATA_DIR]   (a fresh temporary directory by default)
"""

from __future__ import annotations

import sys
import tempfile

import streamlog
from streamlog import TopicPartition


def main(path: str) -> None:
    with streamlog.open(path) as log:
        if "orders" not in log.topics():
            log.create_topic("orders", partitions=3, config={"retention.ms": 3_600_000})
        print("topics:", log.topics())

        # Produce: keyed records land on the partition Kafka would choose (murmur2).
        with log.producer(acks="all") as producer:
            futures = [
                producer.send(
                    "orders",
                    value=f'{{"item": "{item}", "qty": {qty}}}'.encode(),
                    key=customer.encode(),
                    headers=[("source", b"web")],
                )
                for customer, item, qty in [
                    ("alice", "book", 1),
                    ("carol", "pen", 3),
                    ("dave", "ink", 5),
                    ("alice", "lamp", 2),
                ]
            ]
            for md in (f.result(timeout=10) for f in futures):
                print(f"  sent to {md.topic}-{md.partition} at offset {md.offset}")

        # Consume every partition from the beginning.
        consumer = log.consumer("orders", auto_offset_reset="earliest", consumer_timeout_ms=500)
        for record in consumer:
            print(
                f"  {record.topic}-{record.partition}@{record.offset} "
                f"key={record.key!r} value={record.value!r} headers={record.headers}"
            )
        for p in sorted(log.partitions_for("orders")):
            tp = TopicPartition("orders", p)
            print(f"  {tp}: position {consumer.position(tp)}")
        consumer.close()

        for p in log.describe_topic("orders").partitions:
            print(
                f"  partition {p.partition}: offsets [{p.log_start_offset}, {p.end_offset}) "
                f"{p.size_bytes} bytes in {p.segments} segment(s)"
            )
    print(streamlog.check(path))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-"))
