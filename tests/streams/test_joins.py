"""Joins through the TestDriver: Kafka's join tables (the developer guide's
"Joining" section and Kafka's own join integration tests), stream-stream
emission timing, table-table tombstones and foreign-key joins.

Kafka's integration tests (``AbstractJoinIntegrationTest`` and its subclasses)
pipe the same key with values and timestamps in the order below and assert,
after every record, exactly which records the join wrote; the expectations here
are theirs (values ``"A-a"``, Java's ``null`` written ``null``).
"""

from __future__ import annotations

from typing import Any

import pytest

from streamlog.clients._partitioner import murmur2_partition
from streamlog.errors import TopologyError
from streamlog.streams import DroppedRecord, JoinWindows, StreamsApp, TestDriver
from streamlog.streams._joins import key_partitioner

L, R = "left", "right"
K = 0  # Kafka's ANY_UNIQUE_KEY


def _app(tmp_path: Any, **kw: Any) -> StreamsApp:
    kw.setdefault("default_key_serde", "int")
    kw.setdefault("default_value_serde", "str")
    return StreamsApp(tmp_path, application_id="t", **kw)


def dash(left: Any, right: Any) -> str:
    """Kafka's test joiner ``value1 + "-" + value2`` (Java prints null as "null")."""
    return f"{'null' if left is None else left}-{'null' if right is None else right}"


def bracket(left: Any, right: Any) -> str:
    """What the developer guide's tables show: the joiner's arguments."""
    return f"[{'null' if left is None else left}, {'null' if right is None else right}]"


# AbstractJoinIntegrationTest.input: one key, out-of-order data included
INPUT = [
    (L, None, 1), (R, None, 2), (L, "A", 3), (R, "a", 4), (L, "B", 5), (R, "b", 6),
    (L, None, 7), (R, None, 8), (L, "C", 9), (R, "c", 10), (R, None, 11), (L, None, 12),
    (R, None, 13), (R, "d", 7), (L, "D", 6), (L, None, 2), (R, None, 3), (R, "e", 14),
    (L, "E", 15), (L, None, 10), (R, None, 9), (L, "F", 4), (R, "f", 3),
]

# AbstractJoinIntegrationTest.inputWithoutOutOfOrderData: (side, key, value, ts)
IN_ORDER = [
    (L, K, None, 1), (R, K, None, 2), (L, K, "A", 3), (R, K, "a", 4), (L, K, "B", 5),
    (R, K, "b", 6), (L, K, None, 7), (R, K, None, 8), (L, K, "C", 9), (R, K, "c", 10),
    (R, K, None, 11), (L, K, None, 12), (R, K, None, 13), (R, K, "d", 14), (L, K, "D", 15),
    (L, None, "E", 16), (R, None, "e", 17),
]

Expected = list[list[tuple[Any, Any, int]]]


def _run(driver: TestDriver, steps: list[tuple[str, Any, Any, int]], expected: Expected,
         out: str = "out") -> None:
    assert len(steps) == len(expected)
    output = driver.output_topic(out)
    for i, ((side, key, value, ts), want) in enumerate(zip(steps, expected)):
        driver.input_topic(side).pipe(key, value, ts)
        got = [(r.key, r.value, r.timestamp) for r in output.read_records()]
        assert got == want, f"after input #{i} {side} {key}:{value}@{ts}"


def _keyed(steps: list[tuple[str, Any, int]]) -> list[tuple[str, Any, Any, int]]:
    return [(side, K, value, ts) for side, value, ts in steps]


# ====================================================== stream-stream joins
def _stream_stream(tmp_path: Any, kind: str, windows: JoinWindows, joiner: Any = dash,
                   **kw: Any) -> StreamsApp:
    app = _app(tmp_path, **kw)
    left, right = app.stream("left"), app.stream("right")
    getattr(left, {"inner": "join", "left": "left_join", "outer": "outer_join"}[kind])(
        right, joiner, windows
    ).to("out")
    return app


# StreamStreamJoinIntegrationTest: JoinWindows.ofTimeDifferenceAndGrace(10 s, 24 h)
SS_INNER: Expected = [
    [], [], [], [(K, "A-a", 4)], [(K, "B-a", 5)], [(K, "A-b", 6), (K, "B-b", 6)], [], [],
    [(K, "C-a", 9), (K, "C-b", 9)], [(K, "A-c", 10), (K, "B-c", 10), (K, "C-c", 10)],
    [], [], [], [(K, "A-d", 14), (K, "B-d", 14), (K, "C-d", 14)],
    [(K, "D-a", 15), (K, "D-b", 15), (K, "D-c", 15), (K, "D-d", 15)], [], [],
]
SS_LEFT: Expected = [*SS_INNER[:15], [(None, "E-null", 16)], []]
SS_OUTER: Expected = [*SS_INNER[:15], [(None, "E-null", 16)], [(None, "null-e", 17)]]


@pytest.mark.parametrize(("kind", "expected"), [
    ("inner", SS_INNER), ("left", SS_LEFT), ("outer", SS_OUTER),
])
def test_stream_stream_kafka_integration(tmp_path: Any, kind: str, expected: Expected) -> None:
    windows = JoinWindows.of(10_000, grace_ms=24 * 3600 * 1000)
    with TestDriver(_stream_stream(tmp_path, kind, windows)) as d:
        _run(d, IN_ORDER, expected)
        # null values everywhere, and the null-keyed record on a non-outer side, are dropped
        dropped = d.dropped_records()
        assert dropped.get("null-value") == 7
        assert dropped.get("null-key", 0) == {"inner": 2, "left": 1, "outer": 0}[kind]


def test_stream_stream_repartitioned_sides(tmp_path: Any) -> None:
    """StreamStreamJoinIntegrationTest.testInnerRepartitioned: key-changing operations
    before the join send both sides through repartition topics first."""
    app = _app(tmp_path)
    left = app.stream("left").map(lambda k, v: (k, v))
    right = app.stream("right").flat_map(lambda k, v: [(k, v)]).select_key(lambda k, v: k)
    left.join(right, dash, JoinWindows.of(10_000, grace_ms=86_400_000)).to("out")
    with TestDriver(app) as d:
        _run(d, IN_ORDER, SS_INNER)


def test_stream_stream_self_join(tmp_path: Any) -> None:
    """StreamStreamJoinIntegrationTest.testSelfJoin (without the optimizer)."""
    app = _app(tmp_path)
    s = app.stream("left")
    s.join(s, dash, JoinWindows.of(10_000, grace_ms=86_400_000)).to("out")
    expected: Expected = [
        [], [(K, "A-A", 2)], [(K, "B-A", 3), (K, "A-B", 3), (K, "B-B", 3)], [],
        [(K, "C-A", 5), (K, "C-B", 5), (K, "A-C", 5), (K, "B-C", 5), (K, "C-C", 5)], [],
        [(K, "D-A", 7), (K, "D-B", 7), (K, "D-C", 7), (K, "A-D", 7), (K, "B-D", 7),
         (K, "C-D", 7), (K, "D-D", 7)],
    ]
    steps = [(L, K, v, ts) for ts, v in enumerate([None, "A", "B", None, "C", None, "D"], 1)]
    with TestDriver(app) as d:
        _run(d, steps, expected)


# The developer guide's stream-stream table: window 15 s, grace 5 s, timestamps in s.
# Rows 1-15 are as printed. The guide puts each left/outer result at exactly
# "window end + grace" (E@40 at F@60, F@60 at f@80, f@80 at G@100); Kafka closes a
# join window only once stream time is *past* end + grace (KStreamKStreamJoin's
# isOuterJoinWindowOpen: ts + after + grace >= stream time is still open, which
# KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted asserts),
# so F, f and G come 1, 2 and 3 ms later than printed (test_doc_boundary shows it).
S = 1000
DOC_SS = [
    (L, None, 1 * S), (R, None, 2 * S), (L, "A", 3 * S), (R, "a", 4 * S), (L, "B", 5 * S),
    (R, "b", 6 * S), (L, None, 7 * S), (R, None, 8 * S), (L, "C", 9 * S), (R, "c", 10 * S),
    (R, None, 11 * S), (L, None, 12 * S), (R, None, 13 * S), (R, "d", 14 * S),
    (L, "D", 15 * S), (L, "E", 40 * S), (L, "F", 60 * S + 1), (R, "f", 80 * S + 2),
    (L, "G", 100 * S + 3),
]
_DOC_INNER_ROWS = [
    [], [], [], ["[A, a]"], ["[B, a]"], ["[A, b]", "[B, b]"], [], [], ["[C, a]", "[C, b]"],
    ["[A, c]", "[B, c]", "[C, c]"], [], [], [], ["[A, d]", "[B, d]", "[C, d]"],
    ["[D, a]", "[D, b]", "[D, c]", "[D, d]"], [],
]
DOC_SS_ROWS = {
    "inner": [*_DOC_INNER_ROWS, [], [], []],
    "left": [*_DOC_INNER_ROWS, ["[E, null]"], ["[F, null]"], []],
    "outer": [*_DOC_INNER_ROWS, ["[E, null]"], ["[F, null]"], ["[null, f]"]],
}


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_stream_stream_developer_guide_table(tmp_path: Any, kind: str) -> None:
    app = _stream_stream(tmp_path, kind, JoinWindows.of(15 * S, grace_ms=5 * S), bracket)
    with TestDriver(app) as d:
        left, right = d.input_topic("left"), d.input_topic("right")
        out = d.output_topic("out")
        for (side, value, ts), want in zip(DOC_SS, DOC_SS_ROWS[kind]):
            (left if side == L else right).pipe(K, value, ts)
            assert out.read_values() == want, (side, value, ts)


@pytest.mark.parametrize("kind", ["left", "outer"])
def test_doc_boundary(tmp_path: Any, kind: str) -> None:
    """At stream time == ts + after + grace the window is still open; 1 ms later it closes."""
    app = _stream_stream(tmp_path, kind, JoinWindows.of(15 * S, grace_ms=5 * S), bracket)
    with TestDriver(app) as d:
        d.input_topic("left").pipe(K, "E", 40 * S)
        d.input_topic("left").pipe(K, "F", 60 * S)  # 40 + 15 + 5 = 60: not yet
        assert d.output_topic("out").read_values() == []
        d.input_topic("right").pipe(K, "f", 60 * S + 1)
        assert d.output_topic("out").read_values() == ["[E, null]", "[F, f]"]


def test_unmatched_left_is_emitted_with_its_timestamp_and_not_if_matched(tmp_path: Any) -> None:
    """KStreamKStreamLeftJoinTest.testOrdering and testGracePeriod, in one."""
    app = _stream_stream(tmp_path, "left", JoinWindows.of(100, grace_ms=10))
    with TestDriver(app) as d:
        tl, tr = d.input_topic("left"), d.input_topic("right")
        tl.pipe(0, "A0", 0)
        tl.pipe(1, "A1", 100)
        tr.pipe(2, "x", 110)  # 0 + 100 + 10 = 110: A0's window is still open
        assert d.output_topic("out").read_records() == []
        tr.pipe(1, "a1", 111)  # closes A0 (emitted first, with its own timestamp), joins A1
        assert [(r.key, r.value, r.timestamp) for r in d.output_topic("out").read_records()] == [
            (0, "A0-null", 0), (1, "A1-a1", 111)
        ]
        tl.pipe(3, "far", 10_000)  # A1 matched: never emitted as unmatched
        assert d.output_topic("out").read_records() == []


def test_left_join_asymmetric_window(tmp_path: Any) -> None:
    """KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted: a left
    record waits ``after + grace``; the right side's records never come out alone."""
    windows = JoinWindows.of(100, grace_ms=0).after(0)
    app = _stream_stream(tmp_path, "left", windows)
    with TestDriver(app) as d:
        tl, tr = d.input_topic("left"), d.input_topic("right")
        for i in range(4):
            tl.pipe(i, f"A{i}", 1000 + i)
        assert [(r.key, r.value, r.timestamp) for r in d.output_topic("out").read_records()] == [
            (0, "A0-null", 1000), (1, "A1-null", 1001), (2, "A2-null", 1002)
        ]
        tr.pipe(3, "a3", 999)  # 999 >= 1003 - 100: joins A3, which is still waiting
        tr.pipe(3, "b3", 1003)
        assert d.output_topic("out").read_values() == ["A3-a3", "A3-b3"]
        tl.pipe(9, "Z", 5000)
        assert d.output_topic("out").read_values() == []  # A3 was matched


def test_outer_join_emits_both_sides_in_kafka_order(tmp_path: Any) -> None:
    """Waiting records come out by timestamp, right before left at equal timestamps."""
    app = _stream_stream(tmp_path, "outer", JoinWindows.of(10, grace_ms=0))
    with TestDriver(app) as d:
        tl, tr = d.input_topic("left"), d.input_topic("right")
        tl.pipe(1, "L1", 5)
        tr.pipe(2, "R2", 5)
        tl.pipe(3, "L3", 3)
        tr.pipe(4, "R4", 7)
        tl.pipe(9, None, 100)  # dropped (null value), but stream time moves to 100
        tr.pipe(8, "x", 90)  # out of order: waits; and no scan, as 90 != stream time
        assert d.output_topic("out").read_records() == []
        tl.pipe(6, "tick", 100)  # in order: the scan emits what is due
        assert [(r.key, r.value, r.timestamp) for r in d.output_topic("out").read_records()] == [
            (3, "L3-null", 3), (2, "null-R2", 5), (1, "L1-null", 5), (4, "null-R4", 7)
        ]


def test_late_records_are_dropped(tmp_path: Any) -> None:
    """A record older than stream time - (before + after + grace) is dropped and counted;
    stream time is shared by both sides."""
    seen: list[DroppedRecord] = []
    app = _stream_stream(tmp_path, "left", JoinWindows.of(10, grace_ms=5), on_dropped=seen.append)
    with TestDriver(app) as d:
        tl, tr = d.input_topic("left"), d.input_topic("right")
        tr.pipe(1, "r", 100)
        tl.pipe(1, "late", 74)  # 74 < 100 - 25
        tl.pipe(1, "in-time", 75)  # 75 >= 75: not late; its window closed already: emitted now
        assert d.output_topic("out").read_values() == ["in-time-null"]
        assert d.dropped_records() == {"late": 1}
        assert [(x.reason, x.value, x.detail["stream_time"]) for x in seen] == [
            ("late", "late", 100)
        ]


def test_out_of_order_record_waits_for_grace(tmp_path: Any) -> None:
    """An out-of-order left record whose window has ended but whose grace has not waits,
    and joins a partner that arrives within the grace (KAFKA-19536's semantics)."""
    app = _stream_stream(tmp_path, "left", JoinWindows.of(10, grace_ms=20))
    with TestDriver(app) as d:
        tl, tr = d.input_topic("left"), d.input_topic("right")
        tr.pipe(9, "x", 100)
        tl.pipe(1, "A", 85)  # window [75, 95] ended, grace until 115
        assert d.output_topic("out").read_values() == []
        tr.pipe(1, "a", 95)
        assert d.output_topic("out").read_values() == ["A-a"]
        tl.pipe(2, "B", 85)
        tr.pipe(9, "y", 116)  # 85 + 10 + 20 < 116: B comes out, A does not (it joined)
        assert d.output_topic("out").read_values() == ["B-null"]


def test_idle_advance_emits_waiting_results(tmp_path: Any) -> None:
    app = _stream_stream(tmp_path, "outer", JoinWindows.of(10, grace_ms=5), idle_advance_ms=100)
    with TestDriver(app) as d:
        d.input_topic("left").pipe(1, "A", 1000)
        d.input_topic("right").pipe(2, "b", 1001)
        d.advance_wall_clock(50)
        assert d.output_topic("out").read_values() == []
        d.advance_wall_clock(100)  # stream time advances to 1001 + 150 with the wall clock
        assert [(r.key, r.value, r.timestamp) for r in d.output_topic("out").read_records()] == [
            (1, "A-null", 1000), (2, "null-b", 1001)
        ]


def test_duplicates_are_retained(tmp_path: Any) -> None:
    app = _stream_stream(tmp_path, "inner", JoinWindows.of(5))
    with TestDriver(app) as d:
        d.input_topic("left").pipe(1, "A", 10)
        d.input_topic("left").pipe(1, "A", 10)
        d.input_topic("right").pipe(1, "a", 10)
        assert d.output_topic("out").read_values() == ["A-a", "A-a"]


def test_stream_stream_store_names_and_changelogs(tmp_path: Any) -> None:
    app = _stream_stream(tmp_path, "left", JoinWindows.of(5, grace_ms=1))
    text = app.describe()
    assert "KSTREAM-JOINTHIS" in text and "KSTREAM-OUTEROTHER" in text
    assert "KSTREAM-OUTERSHARED" in text and "KSTREAM-MERGE" in text
    with TestDriver(app) as d:
        d.input_topic("left").pipe(1, "A", 10)
        names = {s for t in d.tasks for s in t.stores}
        shared = next(n for n in names if "OUTERSHARED" in n)
        # the waiting record is in the shared store's changelog, and its removal too
        log = d.output_topic(f"t-{shared}-changelog")
        assert [v for _, v in log.read_key_values()] == [((1, "A"), 10)]
        d.input_topic("right").pipe(1, "a", 12)
        assert [v for _, v in log.read_key_values()] == [None]
        for task in d.tasks:
            task._check()


def test_join_windows_required(tmp_path: Any) -> None:
    app = _app(tmp_path)
    with pytest.raises(TopologyError):
        app.stream("left").join(app.stream("right"), dash, 10)


# ======================================================== stream-table joins
# StreamTableJoinIntegrationTest (not versioned): out-of-order data included
ST_INNER: Expected = [
    [], [], [], [], [(K, "B-a", 5)], [], [], [], [], [], [], [], [], [], [(K, "D-d", 6)],
    [], [], [], [(K, "E-e", 15)], [], [], [], [],
]
ST_LEFT: Expected = [
    [], [], [(K, "A-null", 3)], [], [(K, "B-a", 5)], [], [], [], [(K, "C-null", 9)], [], [],
    [], [], [], [(K, "D-d", 6)], [], [], [], [(K, "E-e", 15)], [], [], [(K, "F-null", 4)], [],
]


@pytest.mark.parametrize(("kind", "expected"), [("inner", ST_INNER), ("left", ST_LEFT)])
def test_stream_table_kafka_integration(tmp_path: Any, kind: str, expected: Expected) -> None:
    app = _app(tmp_path)
    stream, table = app.stream("left"), app.table("right")
    (stream.join if kind == "inner" else stream.left_join)(table, dash).to("out")
    with TestDriver(app) as d:
        _run(d, _keyed(INPUT), expected)


DOC_ST = [
    (L, None, 1), (R, None, 2), (L, "A", 3), (R, "a", 4), (L, "B", 5), (R, "b", 6),
    (L, None, 7), (R, None, 8), (L, "C", 9), (R, "c", 10), (R, None, 11), (L, None, 12),
    (R, None, 13), (R, "d", 14), (L, "D", 15),
]
DOC_ST_ROWS = {
    "inner": [[], [], [], [], ["[B, a]"], [], [], [], [], [], [], [], [], [], ["[D, d]"]],
    "left": [[], [], ["[A, null]"], [], ["[B, a]"], [], [], [], ["[C, null]"], [], [], [], [],
             [], ["[D, d]"]],
}


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_stream_table_developer_guide_table(tmp_path: Any, kind: str) -> None:
    app = _app(tmp_path)
    stream, table = app.stream("left"), app.table("right")
    (stream.join if kind == "inner" else stream.left_join)(table, bracket).to("out")
    with TestDriver(app) as d:
        _run(d, _keyed(DOC_ST), [[(K, v, ts) for v in row]
                                 for (_, _, ts), row in zip(DOC_ST, DOC_ST_ROWS[kind])])


def test_stream_table_null_keys(tmp_path: Any) -> None:
    """KIP-962: a left join emits a keyless stream record joined with None; an inner join
    drops it. A record with a None value is dropped by both."""
    app = _app(tmp_path)
    stream, table = app.stream("left"), app.table("right")
    stream.join(table, dash).to("inner_out")
    stream.left_join(table, dash).to("left_out")
    with TestDriver(app) as d:
        d.input_topic("left").pipe(None, "A", 1)
        d.input_topic("left").pipe(1, None, 2)
        assert d.output_topic("inner_out").read_records() == []
        assert d.output_topic("left_out").read_key_values() == [(None, "A-null")]
        assert d.dropped_records() == {"null-key": 1, "null-value": 2}


def test_global_table_join_null_mapped_key(tmp_path: Any) -> None:
    """Kafka's KStreamKTableJoinProcessor: a key selector returning None drops the record
    (left join too), unless the record's own key is None in a left join."""
    app = _app(tmp_path, default_key_serde="str")
    products = app.global_table("products")
    orders = app.stream("orders")
    pick: Any = lambda k, v: None if v == "none" else v  # noqa: E731
    orders.left_join(products, pick, dash).to("left_out")
    orders.join(products, pick, dash).to("inner_out")
    with TestDriver(app) as d:
        d.input_topic("products").pipe("p", "lamp")
        d.input_topic("orders").pipe("o1", "p")
        d.input_topic("orders").pipe("o2", "none")
        d.input_topic("orders").pipe(None, "none")
        d.input_topic("orders").pipe(None, "p")
        assert d.output_topic("left_out").read_key_values() == [
            ("o1", "p-lamp"), (None, "none-null"), (None, "p-lamp")
        ]
        assert d.output_topic("inner_out").read_key_values() == [
            ("o1", "p-lamp"), (None, "p-lamp")
        ]


# ========================================================= table-table joins
# TableTableJoinIntegrationTest, caching disabled, not versioned: out-of-order data included
TT_INNER: Expected = [
    [], [], [], [(K, "A-a", 4)], [(K, "B-a", 5)], [(K, "B-b", 6)], [(K, None, 7)], [], [],
    [(K, "C-c", 10)], [(K, None, 11)], [], [], [], [(K, "D-d", 7)], [(K, None, 7)], [], [],
    [(K, "E-e", 15)], [(K, None, 14)], [], [], [(K, "F-f", 4)],
]
TT_LEFT: Expected = [
    [], [], [(K, "A-null", 3)], [(K, "A-a", 4)], [(K, "B-a", 5)], [(K, "B-b", 6)],
    [(K, None, 7)], [], [(K, "C-null", 9)], [(K, "C-c", 10)], [(K, "C-null", 11)],
    [(K, None, 12)], [], [], [(K, "D-d", 7)], [(K, None, 7)], [], [], [(K, "E-e", 15)],
    [(K, None, 14)], [], [(K, "F-null", 4)], [(K, "F-f", 4)],
]
TT_OUTER: Expected = [
    [], [], [(K, "A-null", 3)], [(K, "A-a", 4)], [(K, "B-a", 5)], [(K, "B-b", 6)],
    [(K, "null-b", 7)], [(K, None, 8)], [(K, "C-null", 9)], [(K, "C-c", 10)],
    [(K, "C-null", 11)], [(K, None, 12)], [], [(K, "null-d", 7)], [(K, "D-d", 7)],
    [(K, "null-d", 7)], [(K, None, 3)], [(K, "null-e", 14)], [(K, "E-e", 15)],
    [(K, "null-e", 14)], [(K, None, 9)], [(K, "F-null", 4)], [(K, "F-f", 4)],
]


def _table_table(tmp_path: Any, kind: str, joiner: Any = dash) -> tuple[StreamsApp, Any]:
    app = _app(tmp_path)
    left, right = app.table("left"), app.table("right")
    joined = getattr(left, {"inner": "join", "left": "left_join", "outer": "outer_join"}[kind])(
        right, joiner
    )
    joined.to_stream().to("out")
    return app, joined


@pytest.mark.parametrize(("kind", "expected"), [
    ("inner", TT_INNER), ("left", TT_LEFT), ("outer", TT_OUTER),
])
def test_table_table_kafka_integration(tmp_path: Any, kind: str, expected: Expected) -> None:
    app, _ = _table_table(tmp_path, kind)
    with TestDriver(app) as d:
        _run(d, _keyed(INPUT), expected)


DOC_TT_ROWS = {
    "inner": [[], [], [], ["[A, a]"], ["[B, a]"], ["[B, b]"], [None], [], [], ["[C, c]"],
              [None], [], [], [], ["[D, d]"]],
    "left": [[], [], ["[A, null]"], ["[A, a]"], ["[B, a]"], ["[B, b]"], [None], [],
             ["[C, null]"], ["[C, c]"], ["[C, null]"], [None], [], [], ["[D, d]"]],
    "outer": [[], [], ["[A, null]"], ["[A, a]"], ["[B, a]"], ["[B, b]"], ["[null, b]"],
              [None], ["[C, null]"], ["[C, c]"], ["[C, null]"], [None], [], ["[null, d]"],
              ["[D, d]"]],
}


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_table_table_developer_guide_table(tmp_path: Any, kind: str) -> None:
    app, _ = _table_table(tmp_path, kind, bracket)
    with TestDriver(app) as d:
        _run(d, _keyed(DOC_ST), [[(K, v, ts) for v in row]
                                 for (_, _, ts), row in zip(DOC_ST, DOC_TT_ROWS[kind])])


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_table_table_value_getter_and_old_values(tmp_path: Any, kind: str) -> None:
    """The join's getter (used here by a stream-table join) computes the join from both
    tables; a downstream table aggregation sees correct old values (subtracts)."""
    app, joined = _table_table(tmp_path, kind)
    app.stream("probe").left_join(joined, lambda p, j: j).to("probed")
    joined.group_by(lambda k, v: ("all", v)).count().to_stream().to(
        "counts", key_serde="str", value_serde="int"
    )
    want = {
        "inner": [None, "A-a", None], "left": ["A-null", "A-a", "A-null"],
        "outer": ["A-null", "A-a", "A-null"],
    }[kind]
    with TestDriver(app) as d:
        probe = d.input_topic("probe")
        d.input_topic("left").pipe(1, "A", 1)
        probe.pipe(1, "?", 2)
        d.input_topic("right").pipe(1, "a", 3)
        probe.pipe(1, "?", 4)
        d.input_topic("right").pipe(1, None, 5)
        probe.pipe(1, "?", 6)
        d.input_topic("right").pipe(2, "b", 7)
        probe.pipe(2, "?", 8)
        assert d.output_topic("probed").read_values() == [
            *want, "null-b" if kind == "outer" else None
        ]
        counts = d.output_topic("counts", key_serde="str").read_key_values()
        # one row at a time: the count of the "all" group never exceeds the rows present
        assert all(c <= 2 for _, c in counts)
        assert counts[-1] == ("all", {"inner": 0, "left": 1, "outer": 2}[kind])


def test_table_table_join_needs_both_tables_in_one_task(tmp_path: Any) -> None:
    app, _ = _table_table(tmp_path, "inner")
    assert len(app.build().subtopologies) == 1


def test_table_table_join_of_windowed_table_is_refused(tmp_path: Any) -> None:
    from streamlog.streams import TimeWindows

    app = _app(tmp_path)
    windowed = app.stream("s").group_by_key().windowed_by(TimeWindows.of(10))
    try:
        table = windowed.count()
    except NotImplementedError:
        pytest.skip("windowed aggregations are not in yet")
    with pytest.raises(TopologyError):
        app.table("t").join(table, dash)


# ===================================================== foreign-key joins
def _fk_app(tmp_path: Any, kind: str) -> tuple[StreamsApp, Any]:
    app = _app(tmp_path, default_key_serde="str", default_value_serde="json")
    orders, products = app.table("orders"), app.table("products")
    method = orders.join if kind == "inner" else orders.left_join
    joined = method(
        products, lambda order: order.get("product"),
        lambda order, product: f"{order['id']}:{None if product is None else product['name']}",
    )
    joined.to_stream().to("out", value_serde="str")
    return app, joined


# The developer guide's foreign-key table; the extractor returns the left value (here
# {"fk": ...}). Row 1 has a record on each side (right first). One deviation: at row 3
# the guide's inner join writes a second (k, null) although k's result was deleted at
# row 2; this library's result table (as every table here, and as the brief's
# "tombstone only for a key that had a result") does not repeat a delete.
DOC_FK = [
    [("products", "1", "foo"), ("orders", "k", "1")], [("orders", "k", "2")],
    [("orders", "k", "3")], [("products", "3", "bar")], [("orders", "k", None)],
    [("orders", "k", "1")], [("orders", "q", "10")], [("orders", "r", "10")],
    [("products", "10", "baz")],
]
DOC_FK_ROWS = {
    "inner": [[("k", "1,foo")], [("k", None)], [], [("k", "3,bar")], [("k", None)],
              [("k", "1,foo")], [], [], [("q", "10,baz"), ("r", "10,baz")]],
    "left": [[("k", "1,foo")], [("k", "2,null")], [("k", "3,null")], [("k", "3,bar")],
             [("k", "null,null")], [("k", "1,foo")], [("q", "10,null")], [("r", "10,null")],
             [("q", "10,baz"), ("r", "10,baz")]],
}


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_fk_join_developer_guide_table(tmp_path: Any, kind: str) -> None:
    app = _app(tmp_path, default_key_serde="str", default_value_serde="str")
    orders = app.table("orders", value_serde="json")
    products = app.table("products")
    method = orders.join if kind == "inner" else orders.left_join
    joined = method(products, lambda v: v["fk"], lambda v, p: f"{v['fk'] or 'null'},{p or 'null'}")
    joined.to_stream().to("out")
    with TestDriver(app) as d:
        for offset, (row, want) in enumerate(zip(DOC_FK, DOC_FK_ROWS[kind]), 1):
            for topic, key, value in row:
                d.input_topic(topic).pipe(key, {"fk": value} if topic == "orders" else value)
            assert d.output_topic("out").read_key_values() == want, offset


def test_fk_join_inner_updates_on_both_sides(tmp_path: Any) -> None:
    app, _ = _fk_app(tmp_path, "inner")
    with TestDriver(app) as d:
        orders, products = d.input_topic("orders"), d.input_topic("products")
        out = d.output_topic("out")

        def records() -> list[tuple[Any, Any, int]]:
            return [(r.key, r.value, r.timestamp) for r in out.read_records()]

        orders.pipe("o1", {"id": 1, "product": "p1"}, 10)
        assert records() == []  # no product yet: an inner join emits nothing
        products.pipe("p1", {"name": "lamp"}, 20)
        assert records() == [("o1", "1:lamp", 20)]
        orders.pipe("o2", {"id": 2, "product": "p1"}, 30)
        assert records() == [("o2", "2:lamp", 30)]
        products.pipe("p1", {"name": "LAMP"}, 40)  # every subscriber is told
        assert records() == [("o1", "1:LAMP", 40), ("o2", "2:LAMP", 40)]
        products.pipe("p2", {"name": "desk"}, 50)
        orders.pipe("o1", {"id": 1, "product": "p2"}, 60)  # foreign key changes
        assert records() == [("o1", "1:desk", 60)]
        products.pipe("p1", {"name": "lamp3"}, 70)  # o1 unsubscribed from p1
        assert records() == [("o2", "2:lamp3", 70)]
        orders.pipe("o2", {"id": 2, "product": "p9"}, 80)  # no such product: delete
        assert records() == [("o2", None, 80)]
        products.pipe("p2", None, 90)  # product deleted: result deleted
        assert records() == [("o1", None, 90)]
        orders.pipe("o3", {"id": 3}, 100)  # null foreign key: dropped by an inner join
        assert records() == []
        assert d.dropped_records() == {"null-foreign-key": 1}
        orders.pipe("o3", {"id": 3, "product": "p1"}, 110)  # from null to a key (KAFKA-16407)
        assert records() == [("o3", "3:lamp3", 110)]
        orders.pipe("o3", {"id": 3}, 120)  # to null: the result is deleted (KAFKA-16434)
        assert records() == [("o3", None, 120)]
        orders.pipe("o2", None, 130)  # deleting a left row without result
        assert records() == []
        products.pipe("p9", {"name": "chair"}, 140)  # o2 is gone: nobody to tell
        assert records() == []
        for task in d.tasks:
            task._check()


def test_fk_join_left_updates_on_both_sides(tmp_path: Any) -> None:
    app, _ = _fk_app(tmp_path, "left")
    with TestDriver(app) as d:
        orders, products = d.input_topic("orders"), d.input_topic("products")
        out = d.output_topic("out")
        orders.pipe("o1", {"id": 1, "product": "p1"}, 10)
        assert out.read_key_values() == [("o1", "1:None")]
        products.pipe("p1", {"name": "lamp"}, 20)
        assert out.read_key_values() == [("o1", "1:lamp")]
        orders.pipe("o2", {"id": 2}, 30)  # a null foreign key joins None (KIP-962)
        assert out.read_key_values() == [("o2", "2:None")]
        products.pipe("p1", None, 40)
        assert out.read_key_values() == [("o1", "1:None")]
        orders.pipe("o1", {"id": 1, "product": "p2"}, 50)
        assert out.read_key_values() == [("o1", "1:None")]
        products.pipe("p2", {"name": "desk"}, 60)
        assert out.read_key_values() == [("o1", "1:desk")]
        orders.pipe("o1", None, 70)  # left row deleted: one tombstone
        assert out.read_key_values() == [("o1", None)]
        products.pipe("p2", {"name": "desk2"}, 80)
        assert out.read_key_values() == []
        assert d.dropped_records() == {}


def test_fk_join_drops_stale_responses(tmp_path: Any) -> None:
    """Two updates of one left row in one go: the answer to the first subscription comes
    back after the second update; its hash no longer matches the row, so it is dropped
    instead of joining the new order with the old product."""
    app = _app(tmp_path, default_key_serde="str", default_value_serde="str")
    # "o1" <- "p1,p2": the order's product changes twice while one record is processed
    orders = app.stream("orders").flat_map_values(lambda v: v.split(",")).to_table()
    products = app.table("products")
    joined = orders.join(products, lambda product: product, lambda o, p: f"{o}={p}")
    joined.to_stream().to("out")
    with TestDriver(app) as d:
        d.input_topic("products").pipe("p1", "lamp", 1)
        d.input_topic("products").pipe("p2", "desk", 2)
        d.input_topic("orders").pipe("o1", "p1,p2", 3)
        assert d.output_topic("out").read_key_values() == [("o1", "p2=desk")]
        resolver = next(
            p for t in d.tasks for n, p in t.processors.items() if "RESPONSE-RESOLVER" in n
        )
        assert resolver.stale == 1  # type: ignore[attr-defined]


def test_fk_join_result_is_a_table(tmp_path: Any) -> None:
    """The result has a value getter (a stream joins it) and is materialized."""
    app, joined = _fk_app(tmp_path, "inner")
    app.stream("probe").join(joined, lambda p, j: f"{p}->{j}").to("probed", value_serde="str")
    with TestDriver(app) as d:
        d.input_topic("products").pipe("p1", {"name": "lamp"}, 1)
        d.input_topic("orders").pipe("o1", {"id": 1, "product": "p1"}, 2)
        d.input_topic("probe").pipe("o1", "x", 3)
        d.input_topic("probe").pipe("o2", "y", 3)
        assert d.output_topic("probed").read_key_values() == [("o1", "x->1:lamp")]
        (store,) = joined._stores
        assert dict(d.store(store).items()) == {"o1": "1:lamp"}  # type: ignore[attr-defined]


def test_fk_join_topology(tmp_path: Any) -> None:
    app, _ = _fk_app(tmp_path, "left")
    topology = app.build()
    assert len(topology.subtopologies) == 2
    names = sorted(topology.internal_topics)
    assert len(names) == 2
    assert all(n.startswith("t-KTABLE-FK-JOIN-SUBSCRIPTION-") and n.endswith("-repartition")
               for n in names)
    with pytest.raises(TopologyError):
        app2 = _app(tmp_path)
        app2.table("a").outer_join(app2.table("b"), lambda v: v, dash)


def test_key_partitioner_matches_the_producer(tmp_path: Any) -> None:
    """Subscriptions go to the partition the right table's producer put the key in."""
    app = _app(tmp_path, default_key_serde="str")
    table = app.table("products")
    part = key_partitioner(app, table._node)
    for key in ["p1", "p2", "a much longer product key", "ü"]:
        assert part(key, None, 7) == murmur2_partition(key.encode(), 7)
    assert part(None, None, 7) is None
    assert part("x", None, 1) == 0


# ============================================================ real runs
def test_fk_join_runtime_copartitions_internal_topics(data_dir: str) -> None:
    """Under ``start()`` the subscription topic is partitioned like the right table (by the
    foreign key, written with the right table's key serde) and the response topic like the
    left table (back to the subscribing partition): different partition counts work."""
    import json
    import time

    import streamlog

    with streamlog.open(data_dir) as log:
        log.create_topic("orders", 3)
        log.create_topic("products", 2)
        log.create_topic("out", 2)
        products = {f"p{i}": f"name{i}" for i in range(6)}
        orders = {f"o{i}": f"p{i % 7}" for i in range(30)}  # p6 does not exist
        with log.producer(acks="all") as p:
            for key, name in products.items():
                p.send("products", json.dumps(name).encode(), key=key.encode())
            for key, fk in orders.items():
                p.send("orders", json.dumps({"fk": fk}).encode(), key=key.encode())
        app = StreamsApp(log, application_id="fk", default_key_serde="str",
                         default_value_serde="json", commit_interval_ms=50)
        left, right = app.table("orders"), app.table("products")
        left.join(right, lambda o: o["fk"], lambda o, name: f"{o['fk']}={name}").to_stream().to(
            "out"
        )
        app.start()
        try:
            with log.producer(acks="all") as p:  # updates on both sides while it runs
                for i in range(0, 30, 3):
                    orders[f"o{i}"] = "p1"
                    p.send("orders", json.dumps({"fk": "p1"}).encode(), key=f"o{i}".encode())
                products["p2"] = "renamed"
                p.send("products", json.dumps("renamed").encode(), key=b"p2")
                del products["p3"]
                p.send("products", None, key=b"p3")
            want = {k: f"{fk}={products[fk]}" for k, fk in orders.items() if fk in products}
            consumer = log.consumer("out", auto_offset_reset="earliest")
            got: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            while got != want and time.monotonic() < deadline:
                assert app.state != "ERROR", app.exception
                for records in consumer.poll(timeout_ms=200).values():
                    for r in records:
                        if r.value is None:
                            got.pop(r.key.decode(), None)
                        else:
                            got[r.key.decode()] = json.loads(r.value)
            consumer.close()
            assert got == want
            internal = {t: len(log.partitions_for(t)) for t in log.topics()
                        if t.startswith("fk-KTABLE-FK-JOIN") and t.endswith("-repartition")}
            assert sorted(internal.values()) == [2, 3]
            assert internal[next(t for t in internal if "REGISTRATION" in t)] == 2
        finally:
            app.close()


def test_stream_table_join_after_repartition_runtime(data_dir: str) -> None:
    """A re-keyed stream is repartitioned like the table it joins (the table topic's key
    serde decides the partition), so each key meets its row with any partition count."""
    import time

    import streamlog

    with streamlog.open(data_dir) as log:
        log.create_topic("clicks", 3)
        log.create_topic("users", 2)
        log.create_topic("out", 1)
        users = {f"u{i}": f"user{i}" for i in range(8)}
        with log.producer(acks="all") as p:
            for key, name in users.items():
                p.send("users", name.encode(), key=key.encode())
        app = StreamsApp(log, application_id="st", default_key_serde="str",
                         default_value_serde="str", commit_interval_ms=50)
        clicks = app.stream("clicks").select_key(lambda k, v: v)
        clicks.join(app.table("users"), lambda click, user: user).to("out")
        app.start()
        try:
            # the table is read first (it is older), then the clicks
            time.sleep(0.5)
            with log.producer(acks="all") as p:
                for i in range(40):
                    p.send("clicks", f"u{i % 8}".encode(), key=f"c{i}".encode())
            consumer = log.consumer("out", auto_offset_reset="earliest")
            got: list[tuple[str, str]] = []
            deadline = time.monotonic() + 60
            while len(got) < 40 and time.monotonic() < deadline:
                assert app.state != "ERROR", app.exception
                for records in consumer.poll(timeout_ms=200).values():
                    got += [(r.key.decode(), r.value.decode()) for r in records]
            consumer.close()
            assert sorted(got) == sorted((f"u{i % 8}", f"user{i % 8}") for i in range(40))
        finally:
            app.close()


def test_join_stores_restore_from_changelog_and_checkpoint() -> None:
    """What a store logs (and what it checkpoints) rebuilds it, through the internal serde."""
    from streamlog.streams._joins import JoinWindowStore, OuterJoinStore, SubscriptionStore
    from streamlog.streams._serdes import INTERNAL

    def roundtrip(store: Any, fresh: Any) -> None:
        log = INTERNAL.deserialize("c", INTERNAL.serialize("c", store.drain_changes()))
        for key, entry in log:
            fresh.restore(key, entry)
        fresh._check()
        assert sorted(map(repr, fresh.entries())) == sorted(map(repr, store.entries()))

    w = JoinWindowStore("w", retention_ms=10)
    for i, (k, ts) in enumerate([("a", 5), ("a", 5), ("b", 9), ("a", 20), (("t", 1), 21)]):
        w.put(k, ts, f"v{i}")
    w._check()
    assert w.fetch("a", 0, 100) == [(20, "v3")]  # 5 <= 21 - 10: expired
    roundtrip(w, JoinWindowStore("w", retention_ms=10))
    checkpoint = JoinWindowStore("w", retention_ms=10)
    for key, entry in INTERNAL.deserialize("c", INTERNAL.serialize("c", list(w.entries()))):
        checkpoint.restore(key, entry)
    assert checkpoint.fetch("a", 0, 100) == [(20, "v3")]
    checkpoint.put("a", 20, "v9")  # sequence numbers continue after the restored ones
    assert checkpoint.fetch("a", 20, 20) == [(20, "v3"), (20, "v9")]

    o = OuterJoinStore("o")
    o.add("a", 5, 1, "x")
    o.add("a", 5, 1, "y")
    o.add("b", 3, 0, "z")
    o.add("c", 8, 1, "q")
    o.remove_matched("a", 5, 1)
    o._check()
    fresh = OuterJoinStore("o")
    roundtrip(o, fresh)
    assert fresh.pop_due(100, 0, 0) == [("b", 3, 0, "z"), ("c", 8, 1, "q")]

    s = SubscriptionStore("s")
    s.put(("p1", "o1"), (b"h", 2, "o1", 0), 1)
    s.put(("p1", "o2"), (b"h", 2, "o2", 0), 1)
    s.put(("p2", "o3"), (b"h", 2, "o3", 0), 1)
    s.delete(("p1", "o1"))
    fresh_s = SubscriptionStore("s")
    roundtrip(s, fresh_s)
    assert [pk for pk, _ in fresh_s.subscribers("p1")] == ["o2"]
    assert fresh_s.subscribers("p9") == []
