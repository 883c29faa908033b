"""Windowed aggregations and suppression through the TestDriver: the worked examples of
Kafka Streams' documentation and javadocs, lateness, and idle advance."""

from __future__ import annotations

from typing import Any

import pytest

from streamlog.errors import TopologyError
from streamlog.streams import (
    Change,
    Processor,
    Record,
    SessionWindows,
    SlidingWindows,
    StreamsApp,
    TestDriver,
    TimeWindows,
    Windowed,
)
from streamlog.streams._stores import SessionStore, WindowStore
from streamlog.streams._task import DroppedRecord

MIN = 60_000
HOUR = 60 * MIN


def _app(tmp_path: Any, **kw: Any) -> StreamsApp:
    kw.setdefault("default_key_serde", "str")
    kw.setdefault("default_value_serde", "str")
    return StreamsApp(tmp_path, application_id="t", **kw)


class _Changes(Processor):
    """Captures what a table node forwards: ``(key, Change, timestamp)``."""

    def __init__(self, sink: list[tuple[Any, Change, int]]) -> None:
        self.sink = sink

    def process(self, record: Record) -> None:
        self.sink.append((record.key, record.value, record.timestamp))


def _tap(app: StreamsApp, table: Any) -> list[tuple[Any, Change, int]]:
    """Every ``Change`` the table forwards (below ``to_stream``, only new values show)."""
    sink: list[tuple[Any, Change, int]] = []
    app._builder.add_processor("TEST-TAP", lambda: _Changes(sink), [table._node])
    return sink


def _records(driver: TestDriver, topic: str) -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.output_topic(topic).read_records()]


# ------------------------------------------------------------------ time windows
def test_windows_are_epoch_aligned() -> None:
    hopping = TimeWindows.of(5000).advance_by(3000)
    assert hopping.windows_for(0) == [(0, 5000)]
    assert hopping.windows_for(4999) == [(0, 5000), (3000, 8000)]
    assert hopping.windows_for(7000) == [(3000, 8000), (6000, 11000)]
    assert hopping.windows_for(8000) == [(6000, 11000)]
    assert TimeWindows.of(5000).windows_for(12345) == [(10000, 15000)]


def test_hopping_count_epoch_aligned(tmp_path: Any) -> None:
    app = _app(tmp_path)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(5000).advance_by(3000))
        .count()
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 1000)
        tin.pipe("a", "x", 4000)
        tin.pipe("b", "x", 7000)
        assert _records(d, "out") == [
            (Windowed("a", 0, 5000), 1, 1000),
            (Windowed("a", 0, 5000), 2, 4000),
            (Windowed("a", 3000, 8000), 1, 4000),
            (Windowed("b", 3000, 8000), 1, 7000),
            (Windowed("b", 6000, 11000), 1, 7000),
        ]


def test_tumbling_changes_carry_old_value_and_max_timestamp(tmp_path: Any) -> None:
    app = _app(tmp_path)
    table = app.stream("in").group_by_key().windowed_by(TimeWindows.of(10, grace_ms=100)).count()
    changes = _tap(app, table)
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 5)
        tin.pipe("a", "x", 2)  # out of order: the window keeps the max timestamp
        tin.pipe("a", "x", 12)
    assert changes == [
        (Windowed("a", 0, 10), Change(1, None), 5),
        (Windowed("a", 0, 10), Change(2, 1), 5),
        (Windowed("a", 10, 20), Change(1, None), 12),
    ]


def test_grace_and_the_close_rule(tmp_path: Any) -> None:
    dropped: list[DroppedRecord] = []
    app = _app(tmp_path, on_dropped=dropped.append)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(10, grace_ms=5))
        .count(materialized_as="counts")
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 3)
        tin.pipe("a", "x", 14)  # stream time 14: [0, 10) is open until 15
        tin.pipe("a", "x", 9)  # accepted: 10 > 14 - 5
        tin.pipe("a", "x", 15)  # stream time 15 = end + grace: [0, 10) is closed
        tin.pipe("a", "x", 9)  # dropped: 10 <= 15 - 5
        assert _records(d, "out") == [
            (Windowed("a", 0, 10), 1, 3),
            (Windowed("a", 10, 20), 1, 14),
            (Windowed("a", 0, 10), 2, 9),
            (Windowed("a", 10, 20), 2, 15),
        ]
        assert d.dropped_records() == {"late": 1}
        store = d.store("counts")
        assert isinstance(store, WindowStore)
        assert store.fetch("a", 0) == 2
    assert len(dropped) == 1
    late = dropped[0]
    assert (late.reason, late.key, late.value, late.timestamp) == ("late", "a", "x", 9)
    assert late.detail == {"window_start": 0, "window_end": 10}
    assert late.task_id == "0_0"


def test_hopping_record_late_for_one_window_only(tmp_path: Any) -> None:
    dropped: list[DroppedRecord] = []
    app = _app(tmp_path, on_dropped=dropped.append)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(10).advance_by(5))
        .count()
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 12)
        _records(d, "out")
        tin.pipe("a", "x", 7)  # in [0, 10) (closed at 12) and [5, 15) (open)
        assert _records(d, "out") == [(Windowed("a", 5, 15), 2, 12)]
        assert d.dropped_records() == {"late": 1}
    assert [r.detail for r in dropped] == [{"window_start": 0, "window_end": 10}]


def test_null_keys_and_values_are_dropped(tmp_path: Any) -> None:
    app = _app(tmp_path)
    g = app.stream("in").group_by_key()
    for windows in (
        TimeWindows.of(10),
        SlidingWindows.of(10),
        SessionWindows.with_inactivity_gap(10),
    ):
        g.windowed_by(windows).count()
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe(None, "x", 1)
        tin.pipe("a", None, 2)
        assert d.dropped_records() == {"null-key": 3, "null-value": 3}


def test_reduce_and_aggregate_on_time_windows(tmp_path: Any) -> None:
    app = _app(tmp_path)
    g = app.stream("in").group_by_key()
    w = g.windowed_by(TimeWindows.of(10))
    w.reduce(lambda agg, v: agg + v).to_stream().to("reduced")
    w.aggregate(list, lambda k, v, agg: [*agg, k + v]).to_stream().to("agg", value_serde="json")
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for v, ts in [("x", 1), ("y", 2), ("z", 11)]:
            tin.pipe("a", v, ts)
        assert d.output_topic("reduced").read_values() == ["x", "xy", "z"]
        assert d.output_topic("agg").read_values() == [["ax"], ["ax", "ay"], ["az"]]


def test_window_store_expires_old_windows(tmp_path: Any) -> None:
    app = _app(tmp_path)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(10, grace_ms=5).advance_by(5))
        .count(materialized_as="w")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for ts in range(0, 5000, 3):
            tin.pipe("k", "x", ts)
        store = d.store("w")
        assert isinstance(store, WindowStore)
        store._check()
        # retention is size + grace: only the last few windows are kept
        assert store.approximate_num_entries() <= 8
        assert [s for s, _ in store.fetch_range("k", 0, 10**9)][-1] == 4995


# ---------------------------------------------------------------- sliding windows
def _append_in_place(key: Any, value: Any, agg: list[Any]) -> list[Any]:
    agg.append(value)
    return agg


@pytest.mark.parametrize("in_place", [False, True])
def test_sliding_windows_kip450_example(tmp_path: Any, in_place: bool) -> None:
    """The javadoc of SlidingWindows: difference 5000, records at 8000, 9200 and 12400
    make five windows, three as records enter and two as they drop out. (An aggregator
    that changes its aggregate in place must not leak into the windows copied from it.)"""
    app = _app(tmp_path)
    table = (
        app.stream("in")
        .group_by_key()
        .windowed_by(SlidingWindows.of(5000, grace_ms=10_000))
        .aggregate(
            list,
            _append_in_place if in_place else (lambda k, v, agg: [*agg, v]),
            materialized_as="s",
        )
    )
    table.to_stream().to("out", value_serde="json")
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("A", "A1", 8000)
        tin.pipe("A", "A2", 9200)
        tin.pipe("A", "A3", 12400)
        final: dict[Any, Any] = {}
        for key, value, _ in _records(d, "out"):
            final[key] = value
        assert final == {
            Windowed("A", 3000, 8000): ["A1"],
            Windowed("A", 4200, 9200): ["A1", "A2"],
            Windowed("A", 7400, 12400): ["A1", "A2", "A3"],
            Windowed("A", 8001, 13001): ["A2", "A3"],
            Windowed("A", 9201, 14201): ["A3"],
        }
        store = d.store("s")
        assert isinstance(store, WindowStore)
        assert sorted(store.fetch_range("A", 0, 10**6)) == sorted(
            (w.start, v) for w, v in final.items()
        )


def test_sliding_windows_out_of_order_record(tmp_path: Any) -> None:
    app = _app(tmp_path)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(SlidingWindows.of(10, grace_ms=100))
        .count()
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 20)
        tin.pipe("a", "x", 25)
        tin.pipe("a", "x", 15)  # before both
        final = {k: v for k, v, _ in _records(d, "out")}
    # windows: left [t-10, t] of each record, right [t+1, t+11] of 15 and 20
    assert final == {
        Windowed("a", 10, 20): 2,
        Windowed("a", 15, 25): 3,
        Windowed("a", 5, 15): 1,
        Windowed("a", 16, 26): 2,
        Windowed("a", 21, 31): 1,
    }


def test_sliding_windows_early_records_share_the_first_window(tmp_path: Any) -> None:
    app = _app(tmp_path)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(SlidingWindows.of(10, grace_ms=100))
        .count()
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 3)
        tin.pipe("a", "x", 6)
        final = {k: v for k, v, _ in _records(d, "out")}
    assert final == {Windowed("a", 0, 10): 2, Windowed("a", 4, 14): 1}


def test_sliding_late_records(tmp_path: Any) -> None:
    dropped: list[DroppedRecord] = []
    app = _app(tmp_path, on_dropped=dropped.append)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(SlidingWindows.of(10, grace_ms=5))
        .count()
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 100)
        _records(d, "out")
        tin.pipe("a", "x", 84)  # even [84, 94] ended before 100 - 5: dropped whole
        assert _records(d, "out") == []
        tin.pipe("a", "x", 92)  # its left window [82, 92] is closed; [90, 100] is open
        assert {k: v for k, v, _ in _records(d, "out")} == {
            Windowed("a", 90, 100): 2,
            Windowed("a", 93, 103): 1,
        }
    assert [(r.reason, r.timestamp, r.detail) for r in dropped] == [
        ("late", 84, {"window_start": 84, "window_end": 94}),
        ("late", 92, {"window_start": 82, "window_end": 92}),
    ]


# ---------------------------------------------------------------- session windows
def test_session_windows_javadoc_example(tmp_path: Any) -> None:
    """Gap 5: A@10, A@12, A@20 make [10,12] and [20,20]; A@16 merges them into [10,20]."""
    app = _app(tmp_path)
    table = (
        app.stream("in")
        .group_by_key()
        .windowed_by(SessionWindows.with_inactivity_gap(5))
        .count(materialized_as="sessions")
    )
    changes = _tap(app, table)
    table.to_stream().to("out", value_serde="int")
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for ts in (10, 12, 20):
            tin.pipe("A", "x", ts)
        store = d.store("sessions")
        assert isinstance(store, SessionStore)
        assert store.fetch("A") == [(10, 12, 2), (20, 20, 1)]
        tin.pipe("A", "x", 16)
        assert store.fetch("A") == [(10, 20, 4)]
        store._check()
        out = _records(d, "out")
    assert changes == [
        (Windowed("A", 10, 10), Change(1, None), 10),
        (Windowed("A", 10, 10), Change(None, 1), 10),  # merged away into [10, 12]
        (Windowed("A", 10, 12), Change(2, None), 12),
        (Windowed("A", 20, 20), Change(1, None), 20),
        (Windowed("A", 10, 12), Change(None, 2), 12),  # both merged away into [10, 20]
        (Windowed("A", 20, 20), Change(None, 1), 20),
        (Windowed("A", 10, 20), Change(4, None), 20),
    ]
    assert out[-3:] == [
        (Windowed("A", 10, 12), None, 12),
        (Windowed("A", 20, 20), None, 20),
        (Windowed("A", 10, 20), 4, 20),
    ]


def test_session_grows_in_place_without_tombstone(tmp_path: Any) -> None:
    app = _app(tmp_path)
    table = (
        app.stream("in").group_by_key().windowed_by(SessionWindows.with_inactivity_gap(5)).count()
    )
    changes = _tap(app, table)
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for ts in (10, 14, 12):
            tin.pipe("A", "x", ts)
    assert changes[-1] == (Windowed("A", 10, 14), Change(3, 2), 14)
    assert sum(c.new is None for _, c, _ in changes) == 1  # only [10, 10]'s


def test_session_aggregate_and_reduce_merge(tmp_path: Any) -> None:
    app = _app(tmp_path)
    w = app.stream("in").group_by_key().windowed_by(SessionWindows.with_inactivity_gap(5))
    w.reduce(lambda a, v: a + v).to_stream().to("reduced")
    w.aggregate(
        lambda: "<",
        lambda k, v, agg: agg + v,
        lambda k, a, b: a + "|" + b,
    ).to_stream().to("agg")
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for v, ts in [("a", 10), ("b", 20), ("c", 15)]:
            tin.pipe("k", v, ts)
        assert d.output_topic("reduced").read_values()[-1] == "abc"
        # Kafka's merge starts from the initializer: merger(merger(init, s1), s2), then add
        assert d.output_topic("agg").read_values()[-1] == "<|<a|<bc"


def test_session_late_records(tmp_path: Any) -> None:
    dropped: list[DroppedRecord] = []
    app = _app(tmp_path, on_dropped=dropped.append)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(SessionWindows.with_inactivity_gap(5, grace_ms=2))
        .count(materialized_as="s")
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 100)
        tin.pipe("a", "x", 92)  # close = 100 - 2 - 5 = 93: a session [92, 92] is late
        tin.pipe("a", "x", 93)  # [93, 93] is not
        tin.pipe("a", "x", 96)  # merges [93, 93] and [100, 100]
        assert _records(d, "out")[-1] == (Windowed("a", 93, 100), 3, 100)
        assert d.dropped_records() == {"late": 1}
        store = d.store("s")
        assert isinstance(store, SessionStore)
        # a closed session is kept while a record within gap of it may come: end >= S - 2 - 10
        tin.pipe("b", "x", 112)
        assert store.fetch("a") == [(93, 100, 3)]
        tin.pipe("b", "x", 113)
        assert store.fetch("a") == []
        store._check()
    assert dropped[0].detail == {"window_start": 92, "window_end": 92}


def test_closed_session_is_still_merged_by_a_record_within_gap(tmp_path: Any) -> None:
    app = _app(tmp_path)
    table = (
        app.stream("in").group_by_key().windowed_by(SessionWindows.with_inactivity_gap(5)).count()
    )
    changes = _tap(app, table)
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("A", "x", 10)
        tin.pipe("B", "x", 17)  # close = 12: [10, 10] is closed
        tin.pipe("A", "x", 14)  # [14, 14] is not late, and within gap of [10, 10]
    assert changes[-2:] == [
        (Windowed("A", 10, 10), Change(None, 1), 10),
        (Windowed("A", 10, 14), Change(2, None), 14),
    ]


def test_session_needs_a_merger(tmp_path: Any) -> None:
    from streamlog.streams._windowed import windowed_aggregate

    app = _app(tmp_path)
    s = app.stream("in")
    with pytest.raises(TopologyError):
        windowed_aggregate(
            app,
            s._node,
            SessionWindows.with_inactivity_gap(5),
            "x",
            initializer=lambda: 0,
            aggregator=lambda k, v, a: a + 1,
            reducer=None,
        )


# ---------------------------------------------------------------------- suppress
def test_suppress_emits_final_count_once_after_grace(tmp_path: Any) -> None:
    """The DSL guide's example: a 1 h window with 10 min grace; the window 09:00-10:00
    emits nothing until stream time reaches 10:10, then exactly its final count."""
    app = _app(tmp_path)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(HOUR, grace_ms=10 * MIN))
        .count()
        .suppress_until_window_closes()
        .to_stream()
        .to("final", value_serde="int")
    )
    nine = 9 * HOUR
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        out = d.output_topic("final")
        for minute in (5, 30, 59):
            tin.pipe("k", "x", nine + minute * MIN)
        tin.pipe("k", "x", nine + 65 * MIN)  # 10:05, the next window
        tin.pipe("k", "x", nine + 50 * MIN)  # 09:50 arrives late, within grace
        tin.pipe("k", "x", nine + 70 * MIN - 1)  # 10:09:59.999
        assert out.read_records() == []
        tin.pipe("k", "x", nine + 70 * MIN)  # 10:10: the 09:00 window closes
        records = out.read_records()
        assert [(r.key, r.value, r.timestamp) for r in records] == [
            (Windowed("k", nine, nine + HOUR), 4, nine + 59 * MIN)
        ]
        tin.pipe("k", "x", nine + 55 * MIN)  # too late now: dropped
        tin.pipe("k", "x", nine + 3 * HOUR)
        assert out.read_key_values() == [(Windowed("k", nine + HOUR, nine + 2 * HOUR), 3)]
        assert d.dropped_records() == {"late": 1}


def test_suppress_closes_on_idle_advance(tmp_path: Any) -> None:
    app = _app(tmp_path, idle_advance_ms=1000)
    (
        app.stream("in")
        .group_by_key()
        .windowed_by(TimeWindows.of(HOUR, grace_ms=10 * MIN))
        .count()
        .suppress_until_window_closes()
        .to_stream()
        .to("final", value_serde="int")
    )
    nine = 9 * HOUR
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        out = d.output_topic("final")
        tin.pipe("k", "x", nine + 5 * MIN)
        tin.pipe("k", "x", nine + 30 * MIN)
        d.advance_wall_clock(40 * MIN - 1)  # stream time 10:09:59.999
        assert out.read_records() == []
        d.advance_wall_clock(1)  # 10:10
        assert out.read_key_values() == [(Windowed("k", nine, nine + HOUR), 2)]
        d.advance_wall_clock(HOUR)
        assert out.read_records() == []
        # the aggregation's stream time moved too: a record for the closed window is late
        tin.pipe("k", "x", nine + 50 * MIN)
        assert d.dropped_records() == {"late": 1}
        assert out.read_records() == []


def test_suppress_sessions_drops_tombstones_of_unemitted_sessions(tmp_path: Any) -> None:
    app = _app(tmp_path)
    table = (
        app.stream("in")
        .group_by_key()
        .windowed_by(SessionWindows.with_inactivity_gap(5, grace_ms=3))
        .count()
        .suppress_until_window_closes()
    )
    changes = _tap(app, table)
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for ts in (10, 12, 20, 16):
            tin.pipe("A", "x", ts)
        assert changes == []
        tin.pipe("B", "x", 28)  # 28 = 20 + 5 + 3: not yet (a record at 25 could still come)
        assert changes == []
        tin.pipe("A", "x", 25)  # and here it is
        tin.pipe("B", "x", 34)  # > 25 + 5 + 3
        assert changes == [(Windowed("A", 10, 25), Change(5, None), 25)]
        tin.pipe("B", "x", 100)
        assert changes[1:] == [
            (Windowed("B", 28, 28), Change(1, None), 28),
            (Windowed("B", 34, 34), Change(1, None), 34),
        ]


def test_suppress_sliding_windows(tmp_path: Any) -> None:
    app = _app(tmp_path)
    table = (
        app.stream("in")
        .group_by_key()
        .windowed_by(SlidingWindows.of(10, grace_ms=0))
        .count()
        .suppress_until_window_closes()
    )
    changes = _tap(app, table)
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", "x", 20)
        tin.pipe("a", "x", 20)  # the window [10, 20] is still open at stream time 20
        assert changes == []
        tin.pipe("a", "x", 21)
    assert changes == [(Windowed("a", 10, 20), Change(2, None), 20)]


def test_suppress_needs_windowed_table(tmp_path: Any) -> None:
    app = _app(tmp_path)
    with pytest.raises(TopologyError):
        app.stream("in").group_by_key().count().suppress_until_window_closes()
