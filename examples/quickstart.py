"""streamlog quickstart: a data directory, a topic, records appended and read back.

Run: python examples/quickstart.py [DATA_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time

import streamlog
from streamlog.storage import prepare_batch


def main(path: str) -> None:
    with streamlog.open(path) as log:
        if "orders" not in log.topics():
            log.create_topic("orders", partitions=3, config={"retention.ms": 3_600_000})
        print("topics:", log.topics())

        # Until the Producer lands, append through the storage layer directly.
        part = log.partition("orders", 0)
        now = int(time.time() * 1000)
        batch = prepare_batch(
            [b'{"item": "book", "qty": 1}', b'{"item": "pen", "qty": 3}'],
            keys=[b"alice", b"bob"],
            timestamps=now,
            headers=[[("source", b"web")], None],
        )
        result = part.append(batch, sync=True)
        print(f"appended offsets {result.base_offset}..{result.last_offset}")

        for batch in part.read(result.base_offset):
            for offset, ts, key, value, headers in batch.records():
                print(f"  offset={offset} ts={ts} key={key!r} value={value!r} headers={headers}")

        for p in log.describe_topic("orders").partitions:
            print(
                f"  partition {p.partition}: offsets [{p.log_start_offset}, {p.end_offset}) "
                f"{p.size_bytes} bytes in {p.segments} segment(s)"
            )
    print(streamlog.check(path))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-"))
