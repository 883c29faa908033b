"""The DSL's stateless operations, aggregations and tables, through the TestDriver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamlog.errors import ConfigError, SerdeError, TopologyError
from streamlog.streams import (
    Change,
    Processor,
    PunctuationType,
    Record,
    StreamsApp,
    TestDriver,
    Windowed,
)


def _app(tmp_path: Any, **kw: Any) -> StreamsApp:
    kw.setdefault("default_key_serde", "str")
    kw.setdefault("default_value_serde", "str")
    return StreamsApp(tmp_path, application_id="t", **kw)


# ------------------------------------------------------------------ stateless
def test_stateless_chain(tmp_path: Any) -> None:
    app = _app(tmp_path)
    seen: list[tuple[Any, Any]] = []
    (
        app.stream("in")
        .filter(lambda k, v: v != "drop")
        .filter_not(lambda k, v: v == "skip")
        .map_values(str.upper)
        .peek(lambda k, v: seen.append((k, v)))
        .map(lambda k, v: (v, k))
        .to("out")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for k, v in [("a", "x"), ("b", "drop"), ("c", "skip"), ("d", "y")]:
            tin.pipe(k, v, 10)
        out = d.output_topic("out").read_records()
    assert [(r.key, r.value, r.timestamp) for r in out] == [("X", "a", 10), ("Y", "d", 10)]
    assert seen == [("a", "X"), ("d", "Y")]


def test_flat_map_and_flat_map_values_keep_timestamp(tmp_path: Any) -> None:
    app = _app(tmp_path)
    s = app.stream("in")
    s.flat_map_values(str.split).to("words")
    s.flat_map(lambda k, v: [(w, len(w)) for w in v.split()]).to("lens", value_serde="int")
    with TestDriver(app) as d:
        d.input_topic("in").pipe("k", "ab c", 7)
        assert d.output_topic("words").read_records() == [
            ("k", "ab", 7, (), "words"), ("k", "c", 7, (), "words")
        ]
        assert d.output_topic("lens").read_key_values() == [("ab", 2), ("c", 1)]


def test_branch_and_split(tmp_path: Any) -> None:
    app = _app(tmp_path)
    small, big = app.stream("in").map_values(int).branch(lambda k, v: v < 10, lambda k, v: v < 100)
    small.to("small", value_serde="int")
    big.to("big", value_serde="int")
    branches = (
        app.stream("in2").split("b-").branch(lambda k, v: v == "x", name="x").default_branch()
    )
    assert sorted(branches) == ["b-0", "b-x"]
    branches["b-x"].to("xs")
    branches["b-0"].to("rest")
    with TestDriver(app) as d:
        for v in ["1", "50", "500", "2"]:
            d.input_topic("in").pipe("k", v)
        for v in ["x", "y", "x"]:
            d.input_topic("in2").pipe("k", v)
        assert d.output_topic("small").read_values() == [1, 2]
        assert d.output_topic("big").read_values() == [50]  # 500 matched no predicate
        assert d.output_topic("xs").read_values() == ["x", "x"]
        assert d.output_topic("rest").read_values() == ["y"]


def test_merge_and_foreach(tmp_path: Any) -> None:
    app = _app(tmp_path)
    got: list[Any] = []
    app.stream("a").merge(app.stream("b")).foreach(lambda k, v: got.append(v))
    with TestDriver(app) as d:
        d.input_topic("a").pipe("k", "1")
        d.input_topic("b").pipe("k", "2")
        d.input_topic("a").pipe("k", "3")
    assert got == ["1", "2", "3"]


def test_select_key_then_group_by_key_repartitions(tmp_path: Any) -> None:
    app = _app(tmp_path)
    app.stream("in").select_key(lambda k, v: v[0]).group_by_key().count().to_stream().to(
        "out", value_serde="int"
    )
    assert "repartition" in app.describe()
    with TestDriver(app) as d:
        for v in ["apple", "avocado", "banana"]:
            d.input_topic("in").pipe(None, v)
        assert d.output_topic("out").read_key_values() == [("a", 1), ("a", 2), ("b", 1)]


def test_map_values_does_not_repartition(tmp_path: Any) -> None:
    app = _app(tmp_path)
    app.stream("in").map_values(str.upper).group_by_key().count().to_stream().to(
        "out", value_serde="int"
    )
    assert "repartition" not in app.describe()


# --------------------------------------------------------------- aggregations
def test_word_count(tmp_path: Any) -> None:
    app = _app(tmp_path)
    (
        app.stream("text")
        .flat_map_values(lambda line: line.lower().split())
        .group_by(lambda k, word: word)
        .count(materialized_as="counts")
        .to_stream()
        .to("counts", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("text")
        tin.pipe(None, "the quick brown fox", 1)
        tin.pipe(None, "The lazy dog", 2)
        out = d.output_topic("counts").read_key_values()
        assert out[-2:] == [("lazy", 1), ("dog", 1)]
        assert ("the", 2) in out
        store = d.store("counts")
        assert store.get("the") == 2 and store.get("fox") == 1
        assert len(store) == 6  # type: ignore[arg-type]


def test_reduce_and_aggregate_timestamps(tmp_path: Any) -> None:
    app = _app(tmp_path, default_value_serde="int")
    g = app.stream("in").group_by_key()
    g.reduce(lambda agg, v: agg + v).to_stream().to("sum")
    g.aggregate(lambda: 0, lambda k, v, agg: max(agg, v)).to_stream().to("max")
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        tin.pipe("a", 5, 100)
        tin.pipe("a", 3, 50)  # out of order: the aggregate keeps the largest timestamp
        tin.pipe("b", 1, 60)
        sums = d.output_topic("sum").read_records()
        assert [(r.key, r.value, r.timestamp) for r in sums] == [
            ("a", 5, 100), ("a", 8, 100), ("b", 1, 60)
        ]
        assert d.output_topic("max").read_values() == [5, 5, 1]


def test_null_keys_and_values_are_dropped_and_counted(tmp_path: Any) -> None:
    dropped: list[Any] = []
    app = _app(tmp_path, on_dropped=dropped.append)
    app.stream("in").group_by_key().count().to_stream().to("out", value_serde="int")
    with TestDriver(app) as d:
        d.input_topic("in").pipe(None, "x")
        d.input_topic("in").pipe("k", None)
        d.input_topic("in").pipe("k", "v")
        assert d.output_topic("out").read_key_values() == [("k", 1)]
        assert d.dropped_records() == {"null-key": 1, "null-value": 1}
    assert [x.reason for x in dropped] == ["null-key", "null-value"]


# --------------------------------------------------------------------- tables
def test_table_upserts_and_tombstones(tmp_path: Any) -> None:
    app = _app(tmp_path)
    t = app.table("users", materialized_as="users")
    t.filter(lambda k, v: v != "hidden").map_values(str.upper).to_stream().to("out")
    with TestDriver(app) as d:
        tin = d.input_topic("users")
        tin.pipe("u1", "alice")
        tin.pipe("u2", "bob")
        tin.pipe("u1", "hidden")  # stops matching: forwarded as a delete
        tin.pipe("u2", None)  # tombstone
        tin.pipe("u3", None)  # deleting a missing key forwards nothing
        assert d.output_topic("out").read_key_values() == [
            ("u1", "ALICE"), ("u2", "BOB"), ("u1", None), ("u2", None)
        ]
        store = d.store("users")
        assert store.get("u1") == "hidden" and store.get("u2") is None


def test_table_group_by_with_adder_and_subtractor(tmp_path: Any) -> None:
    """Kafka's example: users by region; a user moving region subtracts then adds."""
    app = _app(tmp_path)
    (
        app.table("user-region")
        .group_by(lambda user, region: (region, user))
        .count(materialized_as="per-region")
        .to_stream()
        .to("out", value_serde="int")
    )
    with TestDriver(app) as d:
        tin = d.input_topic("user-region")
        tin.pipe("alice", "asia")
        tin.pipe("bob", "europe")
        tin.pipe("alice", "europe")
        tin.pipe("bob", None)
        assert d.output_topic("out").read_key_values() == [
            ("asia", 1), ("europe", 1), ("asia", 0), ("europe", 2), ("europe", 1)
        ]
        assert d.store("per-region").get("europe") == 1


def test_table_reduce_adder_subtractor(tmp_path: Any) -> None:
    app = _app(tmp_path, default_value_serde="int")
    app.table("balances").group_by(lambda k, v: ("total", v)).reduce(
        lambda agg, v: agg + v, lambda agg, v: agg - v, materialized_as="total"
    )
    with TestDriver(app) as d:
        tin = d.input_topic("balances")
        tin.pipe("a", 10)
        tin.pipe("b", 5)
        tin.pipe("a", 7)
        assert d.store("total").get("total") == 12


def test_stream_to_table(tmp_path: Any) -> None:
    app = _app(tmp_path)
    app.stream("in").to_table(materialized_as="latest").to_stream().to("out")
    with TestDriver(app) as d:
        d.input_topic("in").pipe("a", "1")
        d.input_topic("in").pipe("a", "2")
        assert d.store("latest").get("a") == "2"
        assert d.output_topic("out").read_key_values_to_map() == {"a": "2"}


def test_stream_table_join(tmp_path: Any) -> None:
    app = _app(tmp_path)
    users = app.table("users")
    clicks = app.stream("clicks")
    clicks.join(users, lambda click, user: f"{user}:{click}").to("joined")
    clicks.left_join(users, lambda click, user: f"{user}:{click}").to("left")
    with TestDriver(app) as d:
        d.input_topic("clicks").pipe("u1", "c0")
        d.input_topic("users").pipe("u1", "alice")
        d.input_topic("clicks").pipe("u1", "c1")
        d.input_topic("users").pipe("u1", None)
        d.input_topic("clicks").pipe("u1", "c2")
        assert d.output_topic("joined").read_values() == ["alice:c1"]
        assert d.output_topic("left").read_values() == ["None:c0", "alice:c1", "None:c2"]


def test_global_table_join_with_key_selector(tmp_path: Any) -> None:
    app = _app(tmp_path, default_value_serde="json")
    products = app.global_table("products")
    app.stream("orders").join(
        products, lambda k, order: order["product"], lambda order, p: {**order, "name": p["name"]}
    ).to("enriched")
    with TestDriver(app) as d:
        d.input_topic("products").pipe("p1", {"name": "lamp"})
        d.input_topic("orders").pipe("o1", {"product": "p1", "qty": 2})
        d.input_topic("orders").pipe("o2", {"product": "p9", "qty": 1})  # no match: inner drops
        assert d.output_topic("enriched").read_key_values() == [
            ("o1", {"product": "p1", "qty": 2, "name": "lamp"})
        ]


# --------------------------------------------------------- processor API
class _Dedup(Processor):
    def init(self, context: Any) -> None:
        super().init(context)
        self.seen = context.get_state_store("seen")
        self.ticks: list[int] = []
        context.schedule(10, PunctuationType.STREAM_TIME, self.ticks.append)
        context.schedule(1000, PunctuationType.WALL_CLOCK_TIME, self._wall)

    def _wall(self, now: int) -> None:
        self.context.forward(Record("tick", str(now), self.context.timestamp))

    def process(self, record: Record) -> None:
        if record.value not in self.seen:
            self.seen.put(record.value, 1, record.timestamp)
            self.context.forward(record)


def test_user_processor_with_store_and_punctuations(tmp_path: Any) -> None:
    app = _app(tmp_path)
    app.add_state_store("seen")
    procs: list[_Dedup] = []

    def make() -> _Dedup:
        p = _Dedup()
        procs.append(p)
        return p

    app.stream("in").process(make, "seen").to("out")
    with TestDriver(app) as d:
        for ts, v in [(1, "a"), (5, "a"), (12, "b"), (35, "a")]:
            d.input_topic("in").pipe("k", v, ts)
        assert d.output_topic("out").read_values() == ["a", "b"]
        # aligned to 0, first with the first record; then at 10, 30 (20 was skipped over)
        assert procs[0].ticks == [1, 12, 35]
        d.advance_wall_clock(999)
        assert d.output_topic("out").read_values() == []
        d.advance_wall_clock(1)
        assert d.output_topic("out").read_key_values() == [("tick", "1000")]


def test_changelog_records_are_captured(tmp_path: Any) -> None:
    app = _app(tmp_path)
    app.stream("in").group_by_key().count(materialized_as="c")
    with TestDriver(app) as d:
        d.input_topic("in").pipe("a", "x", 3)
        d.input_topic("in").pipe("a", "x", 4)
        log = d.output_topic("t-c-changelog").read_key_values()
        assert log == [("a", (1, 3)), ("a", (2, 4))]


# ---------------------------------------------------------------- errors
def test_bad_config_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ConfigError):
        StreamsApp(tmp_path, application_id="bad id!")
    with pytest.raises(ConfigError):
        StreamsApp(tmp_path, application_id="a", processing_guarantee="twice")
    with pytest.raises(ConfigError):
        StreamsApp(tmp_path, application_id="a", default_key_serde="yaml")
    with pytest.raises(ConfigError):
        StreamsApp(tmp_path, application_id="a", commit_interval_ms=-1)


def test_topology_errors(tmp_path: Any) -> None:
    app = _app(tmp_path)
    s = app.stream("in")
    with pytest.raises(TopologyError):
        app.stream("in")  # the same topic twice
    with pytest.raises(TopologyError):
        s.filter(42)  # type: ignore[arg-type]
    with pytest.raises(TopologyError):
        s.to("bad topic")
    with pytest.raises(TopologyError):
        s.group_by_key().windowed_by(5000)
    with pytest.raises(TopologyError):
        s.group_by_key().count().suppress_until_window_closes()  # not windowed
    with pytest.raises(TopologyError):
        s.process(lambda: None, "no-such-store")
    s.to("out")
    TestDriver(app)
    with pytest.raises(TopologyError):
        s.to("late")  # the topology is frozen once built


def test_serde_errors_fail_or_continue(tmp_path: Any) -> None:
    app = _app(tmp_path, default_value_serde="json")
    app.stream("in").to("out")
    with TestDriver(app) as d:
        with pytest.raises(SerdeError):
            d.input_topic("in", value_serde="bytes").pipe("k", b"{not json")
    app = StreamsApp(
        tmp_path, application_id="u", default_key_serde="str", default_value_serde="json",
        deserialization_exception_handler="continue",
    )
    app.stream("in").to("out")
    with TestDriver(app) as d:
        d.input_topic("in", value_serde="bytes").pipe("k", b"{not json")
        d.input_topic("in").pipe("k", {"ok": 1})
        assert d.output_topic("out").read_values() == [{"ok": 1}]
        assert d.dropped_records() == {"deserialization": 1}


def test_bytes_serde_refuses_str_with_a_hint(tmp_path: Any) -> None:
    app = StreamsApp(tmp_path, application_id="t")
    app.stream("in").to("out")
    with TestDriver(app) as d, pytest.raises(SerdeError, match="configure a serde"):
        d.input_topic("in").pipe("k", "text")


def test_windowed_keys_to_a_user_topic_read_back(tmp_path: Any) -> None:
    from streamlog.streams._serdes import WindowedSerde, resolve_serde

    serde = WindowedSerde(resolve_serde("str", "k"))
    data = serde.serialize("t", Windowed("k", 0, 5000))
    assert data == b"k" + (0).to_bytes(8, "big") + (5000).to_bytes(8, "big")
    assert serde.deserialize("t", data) == Windowed("k", 0, 5000)


def test_internal_serde_round_trips(tmp_path: Any) -> None:
    from streamlog.streams._serdes import INTERNAL

    value = {"a": [1, 2], "w": Windowed(("x", 1), 0, 10), "b": b"\x00"}
    back = INTERNAL.deserialize("t", INTERNAL.serialize("t", value))
    assert back == {"a": (1, 2), "w": Windowed(("x", 1), 0, 10), "b": b"\x00"}
    with pytest.raises(SerdeError, match="msgpack"):
        INTERNAL.serialize("t", object())


def test_json_and_int_serdes(tmp_path: Any) -> None:
    from streamlog.streams._serdes import resolve_serde

    js = resolve_serde("json", "v")
    assert json.loads(js.serialize("t", {"a": 1}) or b"") == {"a": 1}
    ints = resolve_serde("int", "v")
    assert ints.deserialize("t", ints.serialize("t", -5)) == -5
    with pytest.raises(SerdeError):
        ints.serialize("t", "5")
    with pytest.raises(SerdeError):
        ints.deserialize("t", b"123")


def test_change_is_what_tables_forward(tmp_path: Any) -> None:
    app = _app(tmp_path)
    changes: list[Any] = []

    class Spy(Processor):
        def process(self, record: Record) -> None:
            changes.append(record.value)

    t = app.table("t")
    t.to_stream().process(Spy)
    with TestDriver(app) as d:
        d.input_topic("t").pipe("k", "1")
    assert changes == ["1"]
    assert Change("n", "o").new == "n"
