"""Hypothesis: non-windowed aggregations and table re-grouping equal a brute-force model."""

from __future__ import annotations

import collections
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamlog.streams import StreamsApp, TestDriver

KEYS = st.sampled_from(["a", "b", "c", "d"])
GROUPS = st.sampled_from(["x", "y", "z"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(KEYS, st.one_of(st.none(), st.integers(-5, 5))), max_size=40))
def test_stream_count_and_reduce(tmp_path_factory: Any, records: list[tuple[str, Any]]) -> None:
    app = StreamsApp(tmp_path_factory.mktemp("d"), application_id="m", default_key_serde="str",
                     default_value_serde="json")
    g = app.stream("in").group_by_key()
    g.count(materialized_as="count")
    g.reduce(lambda agg, v: agg + v, materialized_as="sum")
    g.aggregate(list, lambda k, v, agg: [*agg, v], materialized_as="all")
    with TestDriver(app) as d:
        tin = d.input_topic("in")
        for ts, (key, value) in enumerate(records):
            tin.pipe(key, value, ts)
        counts: collections.Counter[str] = collections.Counter()
        sums: dict[str, int] = {}
        alls: dict[str, list[int]] = {}
        for key, value in records:
            if value is None:
                continue
            counts[key] += 1
            sums[key] = sums.get(key, 0) + value
            alls.setdefault(key, []).append(value)
        assert dict(d.store("count").items()) == dict(counts)  # type: ignore[attr-defined]
        assert dict(d.store("sum").items()) == sums  # type: ignore[attr-defined]
        assert {k: list(v) for k, v in d.store("all").items()} == alls  # type: ignore[attr-defined]
        nulls = sum(v is None for _, v in records)
        assert d.dropped_records().get("null-value", 0) == 3 * nulls  # once per aggregation
        for task in d.tasks:
            task._check()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(KEYS, st.one_of(st.none(), st.tuples(GROUPS, st.integers(0, 9)))),
                max_size=40))
def test_table_group_by_count_and_sum(
    tmp_path_factory: Any, updates: list[tuple[str, Any]]
) -> None:
    """A table of key -> (group, amount); per group the row count and amount sum."""
    app = StreamsApp(tmp_path_factory.mktemp("d"), application_id="m", default_key_serde="str",
                     default_value_serde="json")
    table = app.table("rows")
    grouped = table.group_by(lambda k, row: (row[0], row[1]))
    grouped.count(materialized_as="n")
    grouped.aggregate(lambda: 0, lambda k, v, agg: agg + v, lambda k, v, agg: agg - v,
                      materialized_as="total")
    latest_out = app.table("rows2").filter(lambda k, row: row[1] > 4)
    latest_out.to_stream().to("big")
    with TestDriver(app) as d:
        tin = d.input_topic("rows")
        tin2 = d.input_topic("rows2")
        model: dict[str, Any] = {}
        for ts, (key, row) in enumerate(updates):
            tin.pipe(key, None if row is None else list(row), ts)
            tin2.pipe(key, None if row is None else list(row), ts)
            if row is None:
                model.pop(key, None)
            else:
                model[key] = row
        n: collections.Counter[str] = collections.Counter()
        total: collections.Counter[str] = collections.Counter()
        for group, amount in model.values():
            n[group] += 1
            total[group] += amount
        got_n = {k: v for k, v in d.store("n").items() if v}  # type: ignore[attr-defined]
        got_total = dict(d.store("total").items())  # type: ignore[attr-defined]
        assert got_n == dict(n)
        # groups that were emptied keep 0 (Kafka's count/aggregate do not delete)
        assert {k: v for k, v in got_total.items() if k in n} == dict(total)
        assert all(v == 0 for k, v in got_total.items() if k not in n)
        big = d.output_topic("big").read_key_values_to_map()
        assert big == {k: list(r) for k, r in model.items() if r[1] > 4}
