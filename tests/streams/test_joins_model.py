"""Hypothesis: joins through the TestDriver equal brute-force models.

- stream-stream joins (inner/left/outer), any order and lateness: a model that
  keeps every record in plain lists and rescans them (Kafka's rules, written
  naively: visibility ``ts > largest ts of that side - (before + after + grace)``,
  lateness, waiting unmatched records, emission order, idle advance);
- stream-stream joins on in-order input: the relational definition (every pair in
  the window, each unmatched record exactly once);
- table-table joins (inner/left/outer), any order: after every record the
  result table is the relational join of the two tables, timestamps are the
  larger of the rows', tombstones only for keys that had a result, and the old
  values handed downstream are the previous results;
- foreign-key joins (inner/left), with several left updates per input record so
  that stale responses happen: the result table equals the relational join.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamlog.streams import JoinWindows, StreamsApp, TestDriver

LEFT, RIGHT = 1, 0
KINDS = st.sampled_from(["inner", "left", "outer"])


def joiner(left: Any, right: Any) -> str:
    return f"{'_' if left is None else left}+{'_' if right is None else right}"


def _app(tmp_path_factory: Any, **kw: Any) -> StreamsApp:
    kw.setdefault("default_key_serde", "str")
    kw.setdefault("default_value_serde", "str")
    return StreamsApp(tmp_path_factory.mktemp("d"), application_id="m", **kw)


def _join(stream: Any, other: Any, kind: str, *args: Any) -> Any:
    return getattr(stream, {"inner": "join", "left": "left_join", "outer": "outer_join"}[kind])(
        other, *args
    )


# ================================================================ stream-stream
Step = tuple[Any, ...]  # ("rec", side, key, value, ts) or ("tick", ms)


def stream_stream_model(
    kind: str, before: int, after: int, grace: int, steps: list[Step]
) -> tuple[list[tuple[Any, Any, int]], int]:
    """What the join writes, and how many records it drops as late."""
    retention = before + after + grace
    outer = {LEFT: kind in ("left", "outer"), RIGHT: kind == "outer"}
    wait = {LEFT: after + grace, RIGHT: before + grace}
    stored: dict[int, list[tuple[Any, int, int, Any]]] = {LEFT: [], RIGHT: []}
    largest = {LEFT: -1, RIGHT: -1}  # per side's store
    pending: list[tuple[int, int, int, Any, Any]] = []  # (ts, side, seq, key, value)
    out: list[tuple[Any, Any, int]] = []
    stream_time, seq, late = -1, 0, 0
    wall, last_wall, last_stream_time = 0, 0, -1

    def both(side: int, this: Any, other: Any) -> str:
        return joiner(this, other) if side == LEFT else joiner(other, this)

    def emit_due() -> None:
        due = sorted(p for p in pending if p[0] + wait[p[1]] < stream_time)
        for p in due:
            pending.remove(p)
            out.append((p[3], both(p[1], p[4], None), p[0]))

    for step in steps:
        if step[0] == "tick":  # advance_wall_clock with idle_advance_ms=0
            wall += step[1]
            if last_stream_time >= 0:
                advanced = last_stream_time + (wall - last_wall)
                if advanced > stream_time:
                    stream_time = advanced
                    if outer[LEFT]:
                        emit_due()
            continue
        _, side, key, value, ts = step
        other = RIGHT if side == LEFT else LEFT
        stream_time = max(stream_time, ts)
        last_wall, last_stream_time = wall, stream_time
        look_back, look_ahead = (before, after) if side == LEFT else (after, before)
        if key is None and value is not None and outer[side]:
            out.append((None, both(side, value, None), ts))
            continue
        if key is None or value is None:
            if key is not None:
                largest[side] = max(largest[side], ts)
            continue
        if ts < stream_time - retention:
            late += 1
            continue
        if outer[LEFT] and ts == stream_time:
            emit_due()
        partners = sorted(
            (o_ts, o_seq, o_value)
            for o_key, o_ts, o_seq, o_value in stored[other]
            if o_key == key and max(0, ts - look_back) <= o_ts <= ts + look_ahead
            and o_ts > largest[other] - retention
        )
        for o_ts, _, o_value in partners:
            pending[:] = [p for p in pending if (p[3], p[0], p[1]) != (key, o_ts, other)]
            out.append((key, both(side, value, o_value), max(ts, o_ts)))
        if not partners and outer[side]:
            if ts + look_ahead + grace < stream_time:
                out.append((key, both(side, value, None), ts))
            else:
                pending.append((ts, side, seq, key, value))
        largest[side] = max(largest[side], ts)
        if ts > largest[side] - retention:
            stored[side].append((key, ts, seq, value))
        seq += 1
    return out, late


def _stream_stream_app(tmp_path_factory: Any, kind: str, windows: JoinWindows) -> StreamsApp:
    app = _app(tmp_path_factory, idle_advance_ms=0)
    _join(app.stream("l"), app.stream("r"), kind, joiner, windows).to("out")
    return app


def _run_stream_stream(
    app: StreamsApp, steps: list[Step]
) -> tuple[list[tuple[int, Any, Any, int]], dict[str, int]]:
    """What the join wrote (``(step, key, value, ts)``: the step that made it come out),
    and the dropped-record counts."""
    got: list[tuple[int, Any, Any, int]] = []
    with TestDriver(app) as d:
        out = d.output_topic("out")
        for i, step in enumerate(steps):
            if step[0] == "tick":
                d.advance_wall_clock(step[1])
            else:
                _, side, key, value, ts = step
                d.input_topic("l" if side == LEFT else "r").pipe(key, value, ts)
            got += [(i, r.key, r.value, r.timestamp) for r in out.read_records()]
            if i % 7 == 0:
                for task in d.tasks:
                    task._check()
        for task in d.tasks:
            task._check()
        return got, d.dropped_records()


def _records(draw: Any, n: int, in_order: bool, nulls: bool) -> list[Step]:
    steps: list[Step] = []
    ts = 0
    for i in range(n):
        if not in_order and draw(st.integers(0, 9)) == 0:
            steps.append(("tick", draw(st.integers(0, 30))))
            continue
        side = draw(st.sampled_from([LEFT, RIGHT]))
        key = draw(st.sampled_from(["a", "b", None] if nulls else ["a", "b"]))
        value = None if nulls and draw(st.integers(0, 7)) == 0 else f"{'LR'[side == RIGHT]}{i}"
        if in_order:
            ts += draw(st.integers(0, 4))
        else:  # mostly forward, sometimes far back (late), sometimes a little back
            ts = max(0, ts + draw(st.integers(-25, 8)))
        steps.append(("rec", side, key, value, ts))
    return steps


@st.composite
def any_order(draw: Any) -> tuple[int, int, int, list[Step]]:
    before, after, grace = (draw(st.integers(0, 12)) for _ in range(3))
    return before, after, grace, _records(draw, draw(st.integers(0, 40)), False, True)


@settings(max_examples=150, deadline=None)
@given(KINDS, any_order())
def test_stream_stream_join_equals_model(
    tmp_path_factory: Any, kind: str, case: tuple[int, int, int, list[Step]]
) -> None:
    before, after, grace, steps = case
    windows = JoinWindows.of(0, grace_ms=grace).before(before).after(after)
    app = _stream_stream_app(tmp_path_factory, kind, windows)
    got, dropped = _run_stream_stream(app, steps)
    want, late = stream_stream_model(kind, before, after, grace, steps)
    assert [(k, v, ts) for _, k, v, ts in got] == want
    assert dropped.get("late", 0) == late


@st.composite
def in_order(draw: Any) -> tuple[int, int, int, list[Step]]:
    before, after = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    grace = draw(st.integers(1, 6))
    return before, after, grace, _records(draw, draw(st.integers(0, 40)), True, False)


@settings(max_examples=150, deadline=None)
@given(KINDS, in_order())
def test_stream_stream_join_in_order_is_the_relational_join(
    tmp_path_factory: Any, kind: str, case: tuple[int, int, int, list[Step]]
) -> None:
    """In timestamp order (and with a grace of at least 1 ms, so that Kafka's retention of
    before + after + grace covers both window ends), the join is its definition."""
    before, after, grace, steps = case
    windows = JoinWindows.of(0, grace_ms=grace).before(before).after(after)
    app = _stream_stream_app(tmp_path_factory, kind, windows)
    flushed: list[Step] = [*steps, ("tick", 10_000)]
    timed, dropped = _run_stream_stream(app, flushed)
    got = [(k, v, ts) for _, k, v, ts in timed]
    lefts = [(k, v, ts) for _, side, k, v, ts in steps if side == LEFT]
    rights = [(k, v, ts) for _, side, k, v, ts in steps if side == RIGHT]
    want = [
        (lk, joiner(lv, rv), max(lts, rts))
        for lk, lv, lts in lefts for rk, rv, rts in rights
        if lk == rk and lts - before <= rts <= lts + after
    ]
    if kind in ("left", "outer"):
        want += [(k, joiner(v, None), ts) for k, v, ts in lefts
                 if not any(k == rk and ts - before <= rts <= ts + after for rk, _, rts in rights)]
    if kind == "outer":
        want += [(k, joiner(None, v), ts) for k, v, ts in rights
                 if not any(k == lk and lts - before <= ts <= lts + after for lk, _, lts in lefts)]
    assert sorted(got) == sorted(want)
    assert dropped == {}
    # timing: a pair comes out when its second record arrives; an unmatched record at
    # the first record that moves stream time past its ts + after (right: before) + grace
    wait = {LEFT: after + grace, RIGHT: before + grace}
    for step, _, value, _ in timed:
        this, other = value.split("+")
        names = [n for n in (this, other) if n != "_"]
        at = {n: i for i, s in enumerate(steps) for n in names if s[3] == n}
        if len(names) == 2:
            assert step == max(at.values())
        else:
            (name,) = names
            side, ts = steps[at[name]][1], steps[at[name]][4]
            later = [i for i in range(at[name] + 1, len(steps)) if steps[i][4] > ts + wait[side]]
            assert step == (later[0] if later else len(steps))


# ================================================================== table-table
@st.composite
def table_updates(draw: Any) -> list[tuple[int, str, Any, int]]:
    n = draw(st.integers(0, 40))
    return [
        (draw(st.sampled_from([LEFT, RIGHT])), draw(st.sampled_from(["a", "b", "c"])),
         None if draw(st.integers(0, 3)) == 0 else f"v{i}", draw(st.integers(0, 50)))
        for i in range(n)
    ]


@settings(max_examples=150, deadline=None)
@given(KINDS, table_updates())
def test_table_table_join_equals_relational_join(
    tmp_path_factory: Any, kind: str, updates: list[tuple[int, str, Any, int]]
) -> None:
    app = _app(tmp_path_factory)
    joined = _join(app.table("l"), app.table("r"), kind, joiner)
    joined.to_stream().to("out")
    # the old values handed downstream must be the previous results: a table group-by
    # subtracts the old value before adding the new one
    bad_old: list[tuple[Any, Any]] = []

    def subtract(key: Any, old: Any, agg: Any) -> None:
        if old != agg:
            bad_old.append((old, agg))

    joined.group_by(lambda k, v: (k, v)).aggregate(
        lambda: None, lambda k, v, agg: v, subtract, materialized_as="mirror"
    )
    with TestDriver(app) as d:
        task = next(t for t in d.tasks if joined._node in t.processors)
        get = joined.value_getter()(task)
        out = d.output_topic("out")
        tables: dict[int, dict[str, tuple[str, int]]] = {LEFT: {}, RIGHT: {}}
        result: dict[str, tuple[str, int]] = {}
        want: dict[str, tuple[str, int]] = {}
        for side, key, value, ts in updates:
            d.input_topic("l" if side == LEFT else "r").pipe(key, value, ts)
            if value is not None or key in tables[side]:  # deleting nothing changes nothing
                if value is None:
                    del tables[side][key]
                else:
                    tables[side][key] = (value, ts)
                lv, rv = tables[LEFT].get(key), tables[RIGHT].get(key)
                if {"inner": lv and rv, "left": lv, "outer": lv or rv}[kind]:
                    # the result's timestamp: the update's and the other side's row's
                    other = rv if side == LEFT else lv
                    want[key] = (joiner(lv and lv[0], rv and rv[0]),
                                 ts if other is None else max(ts, other[1]))
                else:
                    want.pop(key, None)
            for record in out.read_records():
                if record.value is None:
                    assert record.key in result, "tombstone for a key without result"
                    del result[record.key]
                else:
                    result[record.key] = (record.value, record.timestamp)
            assert result == want
            # the getter: the join of the current rows, stamped with the larger row timestamp
            for k in "abc":
                lv, rv = tables[LEFT].get(k), tables[RIGHT].get(k)
                rows = [r for r in (lv, rv) if r is not None]
                expected = (want[k][0], max(t for _, t in rows)) if k in want else None
                assert get(k) == expected
            assert dict(d.store("mirror").items()) == {  # type: ignore[attr-defined]
                k: v for k, (v, _) in want.items()
            }
        assert bad_old == []
        for t in d.tasks:
            t._check()


# ============================================================== foreign-key join
PRODUCTS = ["p1", "p2", "p3"]


@st.composite
def fk_updates(draw: Any) -> list[tuple[str, str, Any]]:
    """("orders", key, [order or None, ...]) — several updates of one order in one input
    record — or ("products", key, name or None)."""
    out: list[tuple[str, str, Any]] = []
    for i in range(draw(st.integers(0, 30))):
        if draw(st.booleans()):
            batch = [
                None if draw(st.integers(0, 4)) == 0
                else {"n": f"{i}.{j}", "fk": draw(st.sampled_from([*PRODUCTS, None]))}
                for j in range(draw(st.integers(1, 3)))
            ]
            out.append(("orders", draw(st.sampled_from(["o1", "o2", "o3"])), batch))
        else:
            name = None if draw(st.integers(0, 3)) == 0 else f"name{i}"
            out.append(("products", draw(st.sampled_from(PRODUCTS)), name))
    return out


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["inner", "left"]), fk_updates())
def test_foreign_key_join_equals_relational_join(
    tmp_path_factory: Any, kind: str, updates: list[tuple[str, str, Any]]
) -> None:
    app = _app(tmp_path_factory, default_value_serde="json")
    orders = app.stream("orders").flat_map_values(lambda batch: batch).to_table()
    products = app.table("products")
    join = orders.join if kind == "inner" else orders.left_join
    joined = join(products, lambda order: order["fk"], lambda o, p: [o["n"], p])
    joined.to_stream().to("out")
    (result_store,) = joined._stores
    with TestDriver(app) as d:
        out = d.output_topic("out")
        left: dict[str, Any] = {}
        right: dict[str, Any] = {}
        result: dict[str, Any] = {}
        for topic, key, value in updates:
            d.input_topic(topic).pipe(key, value)
            if topic == "orders":
                left[key] = value[-1]
                if left[key] is None:
                    del left[key]
            elif value is None:
                right.pop(key, None)
            else:
                right[key] = value
            for k, v in out.read_key_values():
                if v is None:
                    result.pop(k, None)
                else:
                    result[k] = v
            want = {}
            for k, order in left.items():
                fk = order["fk"]
                if kind == "left":
                    want[k] = (order["n"], right.get(fk) if fk is not None else None)
                elif fk is not None and fk in right:
                    want[k] = (order["n"], right[fk])
            assert {k: tuple(v) for k, v in result.items()} == want
            assert {  # type: ignore[attr-defined]
                k: tuple(v) for k, v in d.store(result_store).items()
            } == want
        for task in d.tasks:
            task._check()
