"""Page-view sessionization with session windows, final results only.

Run: python examples/streams_sessions.py [DATA_DIR]   (a fresh temporary directory by default)

Page views (key: user, value: page) carry their event time. Views of one user
less than 30 minutes apart form one session; a late view that falls between
two sessions merges them. ``suppress_until_window_closes()`` holds each
session back until stream time has passed its end + gap + grace, so the
output topic ``sessions`` gets exactly one record per finished session:
key = (user, start, end), value = number of views. The script runs the same
topology twice: through the TestDriver (deterministic, no threads) and for
real over the data directory, and prints both.
"""

from __future__ import annotations

import struct
import sys
import tempfile
import time

import streamlog
from streamlog.streams import SessionWindows, StreamsApp, TestDriver, Windowed

MIN = 60_000
VIEWS = [  # (user, page, minute)
    ("alice", "/home", 0), ("alice", "/shoes", 5), ("bob", "/home", 7),
    ("alice", "/cart", 20), ("bob", "/about", 70), ("alice", "/home", 95),
    ("alice", "/shoes", 60),  # late: falls 40 min after /cart and 35 before /home -> own session
    ("bob", "/home", 45),     # late: 38 min after /home at 7, 25 before /about -> joins /about
    ("carol", "/home", 200),  # moves stream time past every session above: they close
]


def build(app: StreamsApp) -> None:
    (
        app.stream("page-views")
        .group_by_key()
        .windowed_by(SessionWindows.with_inactivity_gap(30 * MIN, grace_ms=60 * MIN))
        .count()
        .suppress_until_window_closes()
        .to_stream()
        .to("sessions", value_serde="int")
    )


def show(user_windowed: object, views: int) -> str:
    key, start, end = user_windowed  # type: ignore[misc]
    return f"{key}: minute {start // MIN}-{end // MIN}, {views} view(s)"


def main(path: str) -> None:
    app = StreamsApp(path, application_id="sessions", default_key_serde="str",
                     default_value_serde="str")
    build(app)
    with TestDriver(app) as driver:
        views = driver.input_topic("page-views")
        for user, page, minute in VIEWS:
            views.pipe(user, page, minute * MIN)
        driven = driver.output_topic("sessions").read_key_values()
    print("TestDriver:")
    for w, n in driven:
        print("  " + show(w, n))

    with streamlog.open(path) as log:
        log.create_topic("page-views", partitions=1)
        log.create_topic("sessions", partitions=1)
        with log.producer() as producer:
            for user, page, minute in VIEWS:
                producer.send("page-views", page.encode(), key=user.encode(),
                              timestamp_ms=minute * MIN)
        app = StreamsApp(log, application_id="sessions", default_key_serde="str",
                         default_value_serde="str", commit_interval_ms=100)
        build(app)
        app.start()
        consumer = log.consumer("sessions", auto_offset_reset="earliest")
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(driven) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
        consumer.close()
        app.close()
    # a windowed key on the wire: the key's bytes, then start and end (8 bytes each)
    real = [
        (Windowed(r.key[:-16].decode(), *struct.unpack(">qq", r.key[-16:])),
         struct.unpack(">q", r.value)[0])
        for r in got
    ]
    print("real run:")
    for w, n in real:
        print("  " + show(w, n))
    assert real == driven, (real, driven)
    print(f"{len(real)} sessions, identical in both runs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-sessions-"))
