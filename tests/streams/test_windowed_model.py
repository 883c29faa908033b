"""Hypothesis: windowed aggregations (with and without suppression) equal a brute-force
model over random event times, keys and lateness.

The model replays the records in arrival order with the close rules of
``_windowed.py``: for each record, which windows it contributes to (unless late);
each window's aggregate is then the fold of its records in arrival order. Checked:
the table the emitted changes build (last value per window, tombstones delete),
the timestamp of each window's last change (its records' largest timestamp), the
late count, the stores' contents, and for the suppressed table that every window
is emitted exactly once, with its final value, once it closed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamlog.streams import (
    Record,
    SessionWindows,
    SlidingWindows,
    StreamsApp,
    TestDriver,
    TimeWindows,
    Windowed,
)
from streamlog.streams._stores import SessionStore, WindowStore

KEYS = st.sampled_from(["a", "b", "c"])
KINDS = st.sampled_from(["count", "aggregate", "reduce"])
FLUSH = 10**6  # idle advance at the end: closes every window

Event = tuple[str, int]
WindowKey = tuple[str, int, int]  # key, start, end (as Windowed reports it)


@st.composite
def event_lists(draw: Any, max_late: int = 25) -> list[Event]:
    """Keys and timestamps in arrival order: time moves forward by small steps and some
    records come late by up to ``max_late`` ms (by default often more than the grace)."""
    n = draw(st.integers(0, 30))
    t = draw(st.integers(0, 20))
    out = []
    for _ in range(n):
        t += draw(st.integers(0, 6))
        late = draw(st.one_of(st.just(0), st.integers(0, max_late)))
        out.append((draw(KEYS), max(0, t - late)))
    return out


class _Capture:
    def __init__(self, sink: list[tuple[Any, Any, int]]) -> None:
        self.sink = sink

    def process(self, record: Record) -> None:
        self.sink.append((record.key, record.value, record.timestamp))


def _value(kind: str, ids: list[int]) -> Any:
    if kind == "count":
        return len(ids)
    if kind == "aggregate":
        return tuple(ids)
    return ",".join(str(i) for i in ids)


class _Run:
    """Pipes the events through ``windowed_by(windows).<kind>()``, with and without
    suppression, then advances stream time far enough to close every window."""

    def __init__(self, tmp: Any, windows: Any, kind: str, events: list[Event]) -> None:
        app = StreamsApp(
            tmp,
            application_id="m",
            default_key_serde="str",
            default_value_serde="str",
            idle_advance_ms=0,
        )
        w = app.stream("in").group_by_key().windowed_by(windows)
        session = isinstance(windows, SessionWindows)
        if kind == "count":
            table = w.count(materialized_as="w")
        elif kind == "reduce":
            table = w.reduce(lambda a, v: a + "," + v, materialized_as="w")
        elif session:
            table = w.aggregate(
                tuple, lambda k, v, a: (*a, int(v)), lambda k, a, b: a + b, materialized_as="w"
            )
        else:
            table = w.aggregate(tuple, lambda k, v, a: (*a, int(v)), materialized_as="w")
        self.raw: list[tuple[Any, Any, int]] = []
        self.suppressed: list[tuple[Any, Any, int]] = []
        table.to_stream().process(lambda: _Capture(self.raw))
        table.suppress_until_window_closes().to_stream().process(lambda: _Capture(self.suppressed))
        with TestDriver(app) as d:
            tin = d.input_topic("in")
            for i, (key, ts) in enumerate(events):
                tin.pipe(key, str(i), ts)
                for task in d.tasks:
                    task._check()
            store = d.store("w")
            self.store_entries = list(store.entries())
            assert isinstance(store, SessionStore if session else WindowStore)
            self.dropped = d.dropped_records()
            self.suppressed_before_flush = len(self.suppressed)
            if events:
                d.advance_wall_clock(FLUSH)
            for task in d.tasks:
                task._check()

    def table(self) -> dict[WindowKey, Any]:
        out: dict[WindowKey, Any] = {}
        for key, value, _ in self.raw:
            assert isinstance(key, Windowed)
            if value is None:
                del out[(key.key, key.start, key.end)]  # a tombstone deletes a live window
            else:
                out[(key.key, key.start, key.end)] = value
        return out

    def last_timestamps(self) -> dict[WindowKey, int]:
        return {(k.key, k.start, k.end): ts for k, v, ts in self.raw if v is not None}


class _Model:
    """What the model computes: live windows and their records, and what the
    suppression emits (each window once, when stream time reaches end + delay)."""

    def __init__(self, events: list[Event], delay: int) -> None:
        self.events = events
        self.delay = delay
        self.live: dict[WindowKey, list[int]] = {}
        self.emitted: dict[WindowKey, list[int]] = {}
        self.late = 0
        self.stream_time = -1

    def add(self, w: WindowKey, i: int) -> None:
        assert w not in self.emitted, f"{w} changed after it closed"
        self.live.setdefault(w, []).append(i)

    def create(self, w: WindowKey, ids: list[int]) -> None:
        assert w not in self.emitted, f"{w} changed after it closed"
        self.live[w] = ids

    def close_due(self, stream_time: int) -> None:
        for w, ids in self.live.items():
            if w not in self.emitted and stream_time >= w[2] + self.delay:
                self.emitted[w] = list(ids)

    def check(self, run: _Run, kind: str) -> None:
        expected = {w: _value(kind, ids) for w, ids in self.live.items()}
        assert run.table() == expected
        ts = {w: max(self.events[i][1] for i in ids) for w, ids in self.live.items()}
        assert {w: t for w, t in run.last_timestamps().items() if w in ts} == ts
        assert run.dropped.get("late", 0) == self.late
        # the suppressed table: each window once, with its final value, once closed
        keys = [(k.key, k.start, k.end) for k, _, _ in run.suppressed]
        assert len(keys) == len(set(keys)), "a window was emitted twice"
        assert all(v is not None for _, v, _ in run.suppressed)
        before = run.suppressed[: run.suppressed_before_flush]
        assert {(k.key, k.start, k.end): v for k, v, _ in before} == {
            w: _value(kind, ids) for w, ids in self.emitted.items()
        }
        if self.events:
            self.close_due(self.stream_time + FLUSH)
        assert {(k.key, k.start, k.end): v for k, v, _ in run.suppressed} == {
            w: _value(kind, ids) for w, ids in self.emitted.items()
        }
        for k, _, t in run.suppressed:
            w = (k.key, k.start, k.end)
            assert t == max(self.events[i][1] for i in self.emitted[w])


# ------------------------------------------------------------------ time windows
def _model_time(events: list[Event], size: int, advance: int, grace: int) -> _Model:
    model = _Model(events, grace)
    for i, (key, ts) in enumerate(events):
        model.stream_time = max(model.stream_time, ts)
        for start in range(0, ts + 1, advance):
            end = start + size
            if not start <= ts < end:
                continue
            if end <= model.stream_time - grace:
                model.late += 1
            else:
                model.add((key, start, end), i)
        model.close_due(model.stream_time)
    return model


@settings(max_examples=80, deadline=None)
@given(
    kind=KINDS,
    size=st.integers(1, 12),
    advance_part=st.integers(1, 12),
    grace=st.integers(0, 10),
    events=event_lists(),
)
def test_time_windows_match_model(
    tmp_path_factory: Any, kind: str, size: int, advance_part: int, grace: int, events: list[Event]
) -> None:
    advance = min(size, advance_part)
    windows = TimeWindows.of(size, grace_ms=grace).advance_by(advance)
    run = _Run(tmp_path_factory.mktemp("t"), windows, kind, events)
    model = _model_time(events, size, advance, grace)
    model.check(run, kind)
    for (key, start), (value, _) in run.store_entries:
        assert value == _value(kind, model.live[(key, start, start + size)])


# ---------------------------------------------------------------- sliding windows
def _model_sliding(events: list[Event], diff: int, grace: int) -> _Model:
    """KIP-450: every record has a left window ``[t - diff, t]`` (``[0, diff]`` before
    ``diff``) and a right window ``[t + 1, t + 1 + diff]`` when a later record is within
    ``diff`` of it; a window holds the records in its bounds. A record is dropped when
    ``t + diff < S - grace``; a window ending before ``S - grace`` is closed."""
    model = _Model(events, grace + 1)
    accepted: list[tuple[int, str, int]] = []
    for i, (key, ts) in enumerate(events):
        model.stream_time = max(model.stream_time, ts)
        close = model.stream_time - grace
        if ts + diff < close:
            model.late += 1
            continue
        accepted.append((i, key, ts))
        mine = [(j, t) for j, k, t in accepted if k == key]
        starts = set()
        for _, t in mine:
            starts.add(max(0, t - diff))
            if any(t < u <= t + diff for _, u in mine):
                starts.add(t + 1)
        for start in sorted(starts):
            w = (key, start, start + diff)
            inside = start <= ts <= start + diff
            if w in model.live:
                if inside:
                    if start + diff >= close:
                        model.add(w, i)
                    else:
                        model.late += 1
            elif start + diff >= close:
                model.create(w, [j for j, t in mine if start <= t <= start + diff])
            elif inside:
                model.late += 1
        model.close_due(model.stream_time)
    return model


@settings(max_examples=80, deadline=None)
@given(
    kind=KINDS,
    diff=st.integers(1, 12),
    grace=st.integers(0, 10),
    events=event_lists(),
)
def test_sliding_windows_match_model(
    tmp_path_factory: Any, kind: str, diff: int, grace: int, events: list[Event]
) -> None:
    windows = SlidingWindows.of(diff, grace_ms=grace)
    run = _Run(tmp_path_factory.mktemp("s"), windows, kind, events)
    model = _model_sliding(events, diff, grace)
    model.check(run, kind)
    # closed windows stay up to date in the store (not forwarded): compare the open ones
    for (key, start), (value, _) in run.store_entries:
        if start + diff >= model.stream_time - grace:
            assert value == _value(kind, model.live[(key, start, start + diff)])


@settings(max_examples=40, deadline=None)
@given(
    diff=st.integers(1, 12),
    grace=st.integers(0, 10),
    data=st.data(),
)
def test_sliding_windows_in_grace_never_late(
    tmp_path_factory: Any, diff: int, grace: int, data: Any
) -> None:
    """Records out of order by at most the grace are never late."""
    events = data.draw(event_lists(max_late=grace))
    windows = SlidingWindows.of(diff, grace_ms=grace)
    run = _Run(tmp_path_factory.mktemp("s"), windows, "aggregate", events)
    model = _model_sliding(events, diff, grace)
    assert model.late == 0
    model.check(run, "aggregate")


# ---------------------------------------------------------------- session windows
def _model_sessions(events: list[Event], gap: int, grace: int) -> _Model:
    """A record merges the sessions of its key within ``gap`` of it that ended at or
    after ``S - grace - 2 * gap`` (older ones are forgotten); the merged session is late
    when it ends before ``S - grace - gap``; otherwise the merged sessions are replaced."""
    model = _Model(events, gap + grace + 1)
    kept: dict[str, list[tuple[int, int]]] = {}  # the sessions the store still holds
    for i, (key, ts) in enumerate(events):
        model.stream_time = max(model.stream_time, ts)
        close = model.stream_time - grace - gap
        for k in kept:
            kept[k] = [(s, e) for s, e in kept[k] if e >= close - gap]
        found = sorted((s, e) for s, e in kept.get(key, []) if e >= ts - gap and s <= ts + gap)
        start = min([ts] + [s for s, _ in found])
        end = max([ts] + [e for _, e in found])
        if end < close:
            model.late += 1
            continue
        ids: list[int] = []
        for s, e in found:
            ids += model.live.pop((key, s, e))
            kept[key].remove((s, e))
        model.create((key, start, end), [*ids, i])
        kept.setdefault(key, []).append((start, end))
        model.close_due(model.stream_time)
    return model


@settings(max_examples=80, deadline=None)
@given(
    kind=KINDS,
    gap=st.integers(1, 8),
    grace=st.integers(0, 8),
    events=event_lists(),
)
def test_session_windows_match_model(
    tmp_path_factory: Any, kind: str, gap: int, grace: int, events: list[Event]
) -> None:
    windows = SessionWindows.with_inactivity_gap(gap, grace_ms=grace)
    run = _Run(tmp_path_factory.mktemp("g"), windows, kind, events)
    model = _model_sessions(events, gap, grace)
    model.check(run, kind)
    for (key, start, end), (value, ts) in run.store_entries:
        assert value == _value(kind, model.live[(key, start, end)])
        assert ts == end
