"""Windowed state across a restart of a running application: the window store and the
suppression buffer are restored from their changelogs, so a window buffered before the
restart is emitted once after it, when it closes."""

from __future__ import annotations

import struct

import pytest

import streamlog
from streamlog.streams import SessionWindows, StreamsApp, TimeWindows
from tests.streams.test_runtime import _wait_caught_up


def _app(log: streamlog.Log, guarantee: str, windows: object) -> StreamsApp:
    app = StreamsApp(
        log,
        application_id="win",
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=50,
    )
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(windows)
        .count(materialized_as="counts")
        .suppress_until_window_closes()
        .to_stream()
        .to("final", value_serde="int")
    )
    return app


def _produce(log: streamlog.Log, items: list[tuple[str, int]]) -> None:
    with log.producer(acks="all") as p:
        for key, ts in items:
            p.send("in", b"x", key=key.encode(), timestamp_ms=ts)


def _final(log: streamlog.Log, guarantee: str) -> list[tuple[str, int, int, int]]:
    """``(key, start, end, count)`` of every record of ``final``."""
    isolation = "read_committed" if guarantee == "exactly_once" else "read_uncommitted"
    c = log.consumer(
        "final", auto_offset_reset="earliest", isolation_level=isolation, group_id="reader"
    )
    out = []
    try:
        while True:
            batch = c.poll(timeout_ms=200)
            if not batch:
                break
            for records in batch.values():
                for r in records:
                    assert r.key is not None and r.value is not None
                    start, end = struct.unpack(">qq", r.key[-16:])
                    out.append((r.key[:-16].decode(), start, end, int.from_bytes(r.value, "big")))
    finally:
        c.close()
    return out


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
@pytest.mark.parametrize(
    "windows",
    [TimeWindows.of(100, grace_ms=10), SessionWindows.with_inactivity_gap(30)],
    ids=["time", "session"],
)
def test_suppressed_window_survives_restart(
    log: streamlog.Log, guarantee: str, windows: object
) -> None:
    log.create_topic("in", 1)
    log.create_topic("final", 1)
    _produce(log, [("k", 10), ("k", 20), ("k", 50), ("j", 60)])
    with _app(log, guarantee, windows) as app:
        app.start()
        _wait_caught_up(log, app)
    assert _final(log, guarantee) == []
    _produce(log, [("k", 70), ("k", 200)])
    with _app(log, guarantee, windows) as again:
        again.start()
        _wait_caught_up(log, again)
        assert again.metrics()["restored_from_checkpoint"] > 0
    got = _final(log, guarantee)
    if isinstance(windows, TimeWindows):
        assert sorted(got) == [("j", 0, 100, 1), ("k", 0, 100, 4)]
    else:  # [10, 50] was buffered, then merged into [10, 70] after the restart
        assert sorted(got) == [("j", 60, 60, 1), ("k", 10, 70, 4)]
