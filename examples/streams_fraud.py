"""A fraud alert on a windowed aggregate, exactly-once.

Run: python examples/streams_fraud.py [DATA_DIR]   (a fresh temporary directory by default)

Card payments (key: card, value: amount in cents, with their event time) are
aggregated per card in one-minute tumbling windows with 10 seconds of grace.
A window whose final total is above 1,000.00 or that holds more than 5
payments raises one alert (``suppress_until_window_closes``: the final
result, once). A payment arriving after its window closed is dropped and
reported to the ``on_dropped`` callback. The application runs exactly-once:
inputs, window state and alerts commit together.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from typing import Any

import streamlog
from streamlog.streams import DroppedRecord, StreamsApp, TimeWindows

SEC = 1000
PAYMENTS = [  # (card, cents, second)
    ("card-1", 2_500, 1), ("card-2", 90_000, 3), ("card-2", 15_000, 20),
    ("card-3", 100, 30), ("card-3", 100, 31), ("card-3", 100, 32), ("card-3", 100, 33),
    ("card-3", 100, 34), ("card-3", 100, 35),  # six small payments in a minute
    ("card-1", 5_000, 65), ("card-2", 1_000, 75),
    ("card-1", 99_999, 50),  # 50 s: late once stream time reached 75 > 60 + 10 grace: dropped
    ("card-4", 100, 200),  # moves stream time on: every earlier window closes
]


def add(card: str, cents: int, agg: dict[str, int]) -> dict[str, int]:
    return {"count": agg["count"] + 1, "total": agg["total"] + cents}


def main(path: str) -> None:
    dropped: list[DroppedRecord] = []
    with streamlog.open(path) as log:
        log.create_topic("payments", partitions=1)
        log.create_topic("alerts", partitions=1)
        with log.producer(acks="all") as producer:
            for card, cents, second in PAYMENTS:
                producer.send("payments", str(cents).encode(), key=card.encode(),
                              timestamp_ms=second * SEC)
        app = StreamsApp(log, application_id="fraud", default_key_serde="str",
                         default_value_serde="int", processing_guarantee="exactly_once",
                         on_dropped=dropped.append)
        (
            app.stream("payments", value_serde="str")
            .map_values(int)
            .group_by_key()
            .windowed_by(TimeWindows.of(60 * SEC, grace_ms=10 * SEC))
            .aggregate(lambda: {"count": 0, "total": 0}, add)
            .suppress_until_window_closes()
            .to_stream()
            .filter(lambda w, agg: agg["total"] > 100_000 or agg["count"] > 5)
            .map(lambda w, agg: (w.key, {"window_start_s": w.start // SEC, **agg}))
            .to("alerts", value_serde="json")
        )
        app.start()
        consumer = log.consumer("alerts", auto_offset_reset="earliest",
                                isolation_level="read_committed")
        alerts: list[tuple[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(alerts) < 2 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                alerts.extend((r.key.decode(), json.loads(r.value)) for r in records)
        consumer.close()
        app.close()
    for card, a in alerts:
        print(f"ALERT {card}: {a['count']} payment(s), {a['total'] / 100:.2f} "
              f"in the minute from {a['window_start_s']} s")
    for d in dropped:
        print(f"dropped ({d.reason}): {d.key} {d.value} at {d.timestamp // SEC} s")
    assert [c for c, _ in alerts] == ["card-2", "card-3"], alerts
    assert [(d.reason, d.key) for d in dropped] == [("late", "card-1")], dropped


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-fraud-"))
