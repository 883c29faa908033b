"""Running applications over a data directory (``StreamsApp.start``): real consumer
groups, producers, changelogs, checkpoints and commits, at-least-once and
exactly-once.

Every test body that does not depend on the guarantee runs under both
(``guarantee`` is parametrized: the same conformance checks for both). Outputs are
read back with plain consumers (``read_committed`` under exactly-once).
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.errors import TopologyError
from streamlog.streams import StreamsApp, TimeWindows

GUARANTEES = ["at_least_once", "exactly_once"]
APP = "wc"
CHANGELOG = f"{APP}-counts-changelog"
WORDS = [f"w{i}" for i in range(15)]


@pytest.fixture(params=GUARANTEES)
def guarantee(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def log(data_dir: str) -> Iterator[streamlog.Log]:
    # no background cleaner: the tests count changelog records
    with streamlog.open(data_dir, cleaner=False) as handle:
        handle.create_topic("text", 2)
        handle.create_topic("counts", 2)
        yield handle


# ------------------------------------------------------------------ helpers
def _lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(n)]


def _produce(log: streamlog.Log, topic: str, items: list[tuple[str | None, str | None]]) -> None:
    with log.producer(acks="all", linger_ms=2) as p:
        for key, value in items:
            p.send(
                topic,
                None if value is None else value.encode(),
                key=None if key is None else key.encode(),
            )


def _produce_lines(log: streamlog.Log, lines: list[str], start: int = 0) -> None:
    _produce(log, "text", [(str(start + i), line) for i, line in enumerate(lines)])


def _isolation(guarantee: str) -> str:
    return "read_committed" if guarantee == "exactly_once" else "read_uncommitted"


def _read(
    log: streamlog.Log, topic: str, guarantee: str, *, value: str = "int"
) -> list[tuple[str, Any]]:
    """Every (key, value) of ``topic`` (per partition in offset order, partitions
    interleaved: per-key order is kept)."""
    c = log.consumer(
        topic,
        auto_offset_reset="earliest",
        isolation_level=_isolation(guarantee),
        consumer_timeout_ms=300,
    )
    out: list[tuple[str, Any]] = []
    for r in c:
        v: Any = r.value
        if value == "int" and v is not None:
            v = int.from_bytes(v, "big", signed=True)
        elif value == "str" and v is not None:
            v = v.decode()
        out.append(((r.key or b"").decode(), v))
    c.close()
    return out


def _per_key(pairs: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = collections.defaultdict(list)
    for k, v in pairs:
        out[k].append(v)
    return dict(out)


def _expected(lines: list[str]) -> collections.Counter[str]:
    return collections.Counter(w for line in lines for w in line.split())


def _wait(cond: Callable[[], Any], what: str, timeout: float = 30.0, app: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if app is not None and app.state == "ERROR":
            raise AssertionError(f"the app died while waiting for {what}") from app.exception
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _caught_up(log: streamlog.Log, app: StreamsApp) -> bool:
    """Whether the group's committed offsets reached the end of every source topic
    (user and repartition): everything read was processed and committed."""
    try:
        desc = log.describe_group(app.application_id)
    except streamlog.StreamlogError:
        return False
    for topic in app.build().source_topics:
        if topic not in log.topics():
            return False
        for p in log.partitions_for(topic):
            lag = desc.offsets.get(TopicPartition(topic, p))
            end = log.partition(topic, p).end_offset
            if end and (lag is None or lag.committed != end):
                return False
    return True


def _wait_caught_up(log: streamlog.Log, *apps: StreamsApp, timeout: float = 30.0) -> None:
    for app in apps:
        _wait(lambda a=app: _caught_up(log, a), "the committed offsets", timeout, app)  # type: ignore[misc]


def _word_count(
    target: Any,
    guarantee: str,
    *,
    split: Callable[[str], list[str]] = str.split,
    **config: Any,
) -> StreamsApp:
    config.setdefault("commit_interval_ms", 50)
    app = StreamsApp(
        target,
        application_id=APP,
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        **config,
    )
    (
        app.stream("text")
        .flat_map_values(split)
        .group_by(lambda k, w: w)
        .count(materialized_as="counts")
        .to_stream()
        .to("counts", value_serde="int")
    )
    return app


def _check_counts(
    log: streamlog.Log, guarantee: str, expected: collections.Counter[str], *, exact: bool = True
) -> None:
    """The output's last count per word is the truth; with ``exact``, every count
    1..n appears once, in order (no loss, no duplicate)."""
    per_key = _per_key(_read(log, "counts", guarantee))
    assert {k: v[-1] for k, v in per_key.items()} == dict(expected)
    if exact:
        for word, counts in per_key.items():
            assert counts == list(range(1, expected[word] + 1)), word


def _changelog_records(log: streamlog.Log, guarantee: str, start: dict[int, int]) -> int:
    """Data records of the counts changelog from ``start`` (per partition) to its end."""
    c = log.consumer(isolation_level=_isolation(guarantee), enable_auto_commit=False)
    tps = [TopicPartition(CHANGELOG, p) for p in sorted(log.partitions_for(CHANGELOG))]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, start.get(tp.partition, 0))
    ends = c.end_offsets(tps)
    n = 0
    while any(c.position(tp) < ends[tp] for tp in tps):
        n += sum(len(rs) for rs in c.poll(timeout_ms=100).values())
    c.close()
    return n


def _changelog_ends(log: streamlog.Log) -> dict[int, int]:
    return {p: log.partition(CHANGELOG, p).end_offset for p in log.partitions_for(CHANGELOG)}


def _state_dir(log: streamlog.Log) -> str:
    return os.path.join(log.path, "streams", APP)


def _checkpoints(log: streamlog.Log) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(_state_dir(log)):
        out.extend(os.path.join(root, f) for f in files if f.endswith(".checkpoint"))
    return sorted(out)


# ---------------------------------------------------------------- word count
def test_word_count(log: streamlog.Log, guarantee: str) -> None:
    lines = _lines(300, seed=1)
    _produce_lines(log, lines)
    with _word_count(log, guarantee) as app:
        app.start()
        assert app.state == "RUNNING"
        _wait_caught_up(log, app)
        m = app.metrics()
        assert m["state"] == "RUNNING"
        assert m["tasks"] == ["0_0", "0_1", "1_0", "1_1"]
        assert m["processed"] == len(lines) + sum(_expected(lines).values())
        assert m["commits"] >= 1
        assert dict(app.store("counts").items()) == dict(_expected(lines))
        # more input while running
        more = _lines(100, seed=2)
        _produce_lines(log, more, start=len(lines))
        _wait_caught_up(log, app)
    assert app.state == "NOT_RUNNING"
    _check_counts(log, guarantee, _expected(lines + more))
    # the repartition topic's consumed records were deleted after the commits
    repartition = [t for t in log.topics() if t.endswith("-repartition")]
    assert len(repartition) == 1
    for p in log.partitions_for(repartition[0]):
        part = log.partition(repartition[0], p)
        assert part.log_start_offset > 0 or part.end_offset == 0


def test_input_written_while_starting_and_keyless_lines(log: streamlog.Log, guarantee: str) -> None:
    """Lines without a key and lines produced concurrently with the start are all counted."""
    lines = _lines(200, seed=3)
    app = _word_count(log, guarantee)
    writer = threading.Thread(target=_produce, args=(log, "text", [(None, x) for x in lines]))
    writer.start()
    try:
        app.start()
        writer.join()
        _wait_caught_up(log, app)
    finally:
        writer.join()
        app.close()
    _check_counts(log, guarantee, _expected(lines))


# ------------------------------------------------------------------- restart
def test_restart_continues_from_committed_offsets_with_state(
    log: streamlog.Log, guarantee: str
) -> None:
    first, second = _lines(150, seed=4), _lines(120, seed=5)
    _produce_lines(log, first)
    with _word_count(log, guarantee) as app:
        app.start()
        _wait_caught_up(log, app)
    assert len(_checkpoints(log)) == 2  # the counts store of tasks 1_0 and 1_1, on close
    _produce_lines(log, second, start=len(first))
    with _word_count(log, guarantee) as again:
        again.start()
        _wait_caught_up(log, again)
        m = again.metrics()
        # only the new lines were processed: the committed offsets were used
        assert m["processed"] == len(second) + sum(_expected(second).values())
        # the close wrote a checkpoint at the changelog's end: nothing to replay
        assert m["restored"] == 0
        assert m["restored_from_checkpoint"] == len(_expected(first))
        assert dict(again.store("counts").items()) == dict(_expected(first + second))
    _check_counts(log, guarantee, _expected(first + second))


class _CrashOnce:
    """A ``flat_map_values`` splitter that raises once on the line ``CRASH``."""

    def __init__(self) -> None:
        self.crashed = False

    def __call__(self, line: str) -> list[str]:
        if line == "CRASH" and not self.crashed:
            self.crashed = True
            raise RuntimeError("boom on CRASH")
        return line.split()


def test_restore_replays_only_the_changelog_tail(log: streamlog.Log, guarantee: str) -> None:
    """A checkpoint at offset X: a restart replays only the changelog records after X.
    Without a checkpoint (state dir deleted) or with a damaged one, the whole changelog."""
    a, b = _lines(150, seed=6), _lines(150, seed=7)
    # run 1: clean close -> checkpoint at the changelog's end
    _produce_lines(log, a)
    with _word_count(log, guarantee) as app:
        app.start()
        _wait_caught_up(log, app)
    at_checkpoint = _changelog_ends(log)
    assert sum(at_checkpoint.values()) > 0
    # run 2: no periodic checkpoint, commits, then a crash of its only thread (no
    # checkpoint on an unclean shutdown): the changelog grows past the checkpoint
    crash = _CrashOnce()
    app = _word_count(log, guarantee, split=crash, checkpoint_interval_ms=10**9)
    app.start()
    _produce_lines(log, b, start=len(a))
    _wait_caught_up(log, app)
    _produce(log, "text", [("crash", "CRASH")])
    _wait(lambda: app.state == "ERROR", "the thread to die")
    assert isinstance(app.exception, RuntimeError)
    assert str(app.exception) == "boom on CRASH"
    app.close()
    tail = _changelog_records(log, guarantee, at_checkpoint)
    assert tail > 0
    full = _changelog_records(log, guarantee, {})
    assert full > tail
    truth = _expected(a + b + ["CRASH"])
    # run 3: checkpoint + tail
    with _word_count(log, guarantee, split=crash) as app:
        app.start()
        _wait_caught_up(log, app)
        m = app.metrics()
        assert m["restored"] == tail
        assert m["restored_from_checkpoint"] == len(_expected(a))
        assert dict(app.store("counts").items()) == dict(truth)
    _check_counts(log, guarantee, truth, exact=guarantee == "exactly_once")
    # run 4: no checkpoint at all: the whole changelog
    shutil.rmtree(_state_dir(log))
    full = _changelog_records(log, guarantee, {})
    with _word_count(log, guarantee) as app:
        app.start()
        _wait(lambda: len(app.metrics()["tasks"]) == 4, "the tasks", app=app)
        m = app.metrics()
        assert m["restored"] == full
        assert m["restored_from_checkpoint"] == 0
        assert dict(app.store("counts").items()) == dict(truth)
    # run 5: damaged checkpoints (a flipped byte; a torn file): the whole changelog
    paths = _checkpoints(log)
    assert len(paths) == 2
    with open(paths[0], "r+b") as f:
        f.seek(os.path.getsize(paths[0]) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with open(paths[1], "r+b") as f:
        f.truncate(5)
    full = _changelog_records(log, guarantee, {})
    with _word_count(log, guarantee) as app:
        app.start()
        _wait(lambda: len(app.metrics()["tasks"]) == 4, "the tasks", app=app)
        m = app.metrics()
        assert m["restored"] == full
        assert m["restored_from_checkpoint"] == 0
        assert dict(app.store("counts").items()) == dict(truth)
        more = _lines(50, seed=8)
        _produce_lines(log, more, start=10_000)
        _wait_caught_up(log, app)
        assert dict(app.store("counts").items()) == dict(truth + _expected(more))


def test_checkpoint_outside_the_changelog_is_ignored(log: streamlog.Log, guarantee: str) -> None:
    """A checkpoint whose offset is past the changelog's end (the changelog was deleted
    and made again) is not trusted: the (new, empty) changelog is the state."""
    _produce_lines(log, _lines(50, seed=9))
    with _word_count(log, guarantee) as app:
        app.start()
        _wait_caught_up(log, app)
    assert _checkpoints(log)
    log.delete_topic(CHANGELOG)
    log.delete_group(APP)
    with _word_count(log, guarantee) as app:
        app.start()
        _wait(lambda: len(app.metrics()["tasks"]) == 4, "the tasks", app=app)
        m = app.metrics()
        assert m["restored_from_checkpoint"] == 0
        _wait_caught_up(log, app)  # the whole input again, from an empty store
        assert dict(app.store("counts").items()) == dict(_expected(_lines(50, seed=9)))


# -------------------------------------------------------- interactive queries
def test_interactive_queries_during_a_run(log: streamlog.Log, guarantee: str) -> None:
    lines = _lines(100, seed=10)
    with _word_count(log, guarantee, num_stream_threads=2) as app:
        with pytest.raises(TopologyError):
            app.store("counts")  # not started
        app.start()
        with pytest.raises(TopologyError, match="no state store named 'nope'"):
            app.store("nope")
        view = app.store("counts")
        seen: list[int] = []
        for i, line in enumerate(lines):
            _produce_lines(log, [line], start=i)
            if i % 25 == 24:
                truth = _expected(lines[: i + 1])
                word = truth.most_common(1)[0][0]
                _wait(lambda w=word, t=truth: view.get(w) == t[w], "the store", app=app)  # type: ignore[misc]
                seen.append(view[word])
        assert len(seen) == 4
        _wait_caught_up(log, app)
        truth = _expected(lines)
        assert len(view) == len(truth) == view.approximate_num_entries()
        assert dict(view.items()) == dict(truth) == dict(view.all())
        assert "w0" in view and "absent" not in view
        assert view.get("absent") is None and view.get("absent", 0) == 0
        with pytest.raises(KeyError):
            view["absent"]


# --------------------------------------------------------------- topology checks
def test_missing_topics_and_copartitioning_raise_before_writing(log: streamlog.Log) -> None:
    before = sorted(log.topics())

    def check(app: StreamsApp, match: str) -> None:
        with pytest.raises(TopologyError, match=match):
            app.start()
        app.close()
        assert sorted(log.topics()) == before  # no internal topic was made
        assert APP not in log.list_groups()
        assert log.partition("counts", 0).end_offset == 0

    app = StreamsApp(log, application_id=APP)
    app.stream("nope").group_by_key().count().to_stream().to("counts")
    check(app, r"source topics do not exist: \['nope'\]")

    app = StreamsApp(log, application_id=APP)
    app.stream("text").group_by(lambda k, v: v).count().to_stream().to("missing-out")
    check(app, r"output topics do not exist: \['missing-out'\]")

    log.create_topic("three", 3)
    before = sorted(log.topics())
    app = StreamsApp(log, application_id=APP)
    table = app.table("three")
    app.stream("text").join(table, lambda a, b: a).to("counts")
    check(app, "co-partitioned")

    app = StreamsApp(log, application_id=APP)
    app.stream(["text", "three"]).to("counts")
    check(app, "co-partitioned")

    app = StreamsApp(log, application_id=APP)
    app.global_table("missing-global")
    app.stream("text").to("counts")
    check(app, "missing-global")


# ------------------------------------------------------------- several members
def test_two_instances_share_the_tasks(log: streamlog.Log, data_dir: str, guarantee: str) -> None:
    first = _lines(100, seed=11)
    second = _lines(200, seed=12)
    _produce_lines(log, first)
    one = _word_count(data_dir, guarantee)  # each opens its own Log on the directory
    two = _word_count(data_dir, guarantee)
    try:
        one.start()
        _wait_caught_up(log, one)
        two.start()
        _wait(
            lambda: len(one.metrics()["tasks"]) == 2 and len(two.metrics()["tasks"]) == 2,
            "the tasks to be shared",
            app=one,
        )
        assert sorted(one.metrics()["tasks"] + two.metrics()["tasks"]) == [
            "0_0", "0_1", "1_0", "1_1"
        ]
        _produce_lines(log, second, start=len(first))
        _wait_caught_up(log, one)
        assert one.metrics()["processed"] > 0 and two.metrics()["processed"] > 0
        truth = _expected(first + second)
        assert dict(one.store("counts").items()) | dict(two.store("counts").items()) == dict(
            truth
        )
        # a leaving member's tasks move back to the other, state restored
        two.close()
        _wait(lambda: len(one.metrics()["tasks"]) == 4, "the tasks to come back", app=one)
        third = _lines(50, seed=13)
        _produce_lines(log, third, start=10_000)
        _wait_caught_up(log, one)
        truth += _expected(third)
        assert dict(one.store("counts").items()) == dict(truth)
    finally:
        two.close()
        one.close()
    _check_counts(log, guarantee, truth)


def test_two_stream_threads(log: streamlog.Log, guarantee: str) -> None:
    lines = _lines(300, seed=14)
    with _word_count(log, guarantee, num_stream_threads=2) as app:
        app.start()
        _produce_lines(log, lines)
        _wait_caught_up(log, app)
        m = app.metrics()
        assert m["threads"] == 2
        assert m["tasks"] == ["0_0", "0_1", "1_0", "1_1"]
        per_thread = [len(t.tasks) for t in app._runtime.threads]  # type: ignore[union-attr]
        assert per_thread == [2, 2]
        assert dict(app.store("counts").items()) == dict(_expected(lines))
    _check_counts(log, guarantee, _expected(lines))


# -------------------------------------------------------------- thread death
def test_user_exception_stops_the_app(log: streamlog.Log, guarantee: str) -> None:
    def upper(v: str) -> str:
        if v == "poison":
            raise ValueError("cannot take poison")
        return v.upper()

    app = StreamsApp(
        log,
        application_id="up",
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=50,
        num_stream_threads=2,
    )
    app.stream("text").map_values(upper).to("counts")
    app.start()
    try:
        _produce(log, "text", [(str(i), f"v{i}") for i in range(20)])
        _wait_caught_up(log, app)
        _produce(log, "text", [("p", "poison")])
        _wait(lambda: app.state == "ERROR", "the error state")
        assert isinstance(app.exception, ValueError)
        assert "cannot take poison" in str(app.exception)
        # the other thread stops too (the whole client shuts down, as Kafka Streams'
        # default uncaught-exception handler does)
        _wait(lambda: not any(t.is_alive() for t in app._runtime.threads), "the threads")  # type: ignore[union-attr]
        assert app.metrics()["state"] == "ERROR"
    finally:
        app.close()
    out = _read(log, "counts", guarantee, value="str")
    assert sorted(v for _k, v in out) == sorted(f"V{i}" for i in range(20))
    # the poison record was not committed: a new run (fixed code) processes it
    app = StreamsApp(
        log,
        application_id="up",
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=50,
    )
    app.stream("text").map_values(str.upper).to("counts")
    with app:
        app.start()
        _wait_caught_up(log, app)
    assert [v for _k, v in _read(log, "counts", guarantee, value="str")][-1] == "POISON"


def test_output_error_kills_the_thread(log: streamlog.Log, guarantee: str) -> None:
    """A value the output serde refuses stops the app with that error."""
    app = StreamsApp(
        log,
        application_id="bad",
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=50,
    )
    app.stream("text").map_values(len).to("counts")  # an int through the str serde
    app.start()
    try:
        _produce(log, "text", [("k", "abc")])
        _wait(lambda: app.state == "ERROR", "the error state")
        assert isinstance(app.exception, streamlog.StreamlogError)
    finally:
        app.close()
    assert _read(log, "counts", guarantee) == []


# -------------------------------------------------------------- global tables
def test_global_table_join(log: streamlog.Log, guarantee: str) -> None:
    log.create_topic("users", 3)
    log.create_topic("orders", 2)
    log.create_topic("enriched", 2)
    _produce(log, "users", [(f"u{i}", f"name{i}") for i in range(5)])
    app = StreamsApp(
        log,
        application_id="gt",
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=50,
    )
    users = app.global_table("users", materialized_as="users-store")
    orders = app.stream("orders")
    orders.join(users, lambda k, v: v.split(":")[0], lambda o, name: f"{o}@{name}").to(
        "enriched"
    )
    orders.left_join(users, lambda k, v: v.split(":")[0], lambda o, name: f"{o}@{name}").to(
        "counts"
    )
    with app:
        app.start()
        # the global table is complete before processing starts
        view = app.store("users-store")
        assert dict(view.items()) == {f"u{i}": f"name{i}" for i in range(5)}
        _produce(log, "orders", [(f"o{i}", f"u{i % 7}:item{i}") for i in range(14)])
        _wait_caught_up(log, app)
        # updates of the global topic reach the table while the app runs
        _produce(log, "users", [("u1", "renamed"), ("u6", "new"), ("u0", None)])
        _wait(lambda: view.get("u1") == "renamed" and view.get("u6") == "new", "updates", app=app)
        _wait(lambda: "u0" not in view, "the tombstone", app=app)
        _produce(log, "orders", [("o99", "u1:late"), ("o98", "u6:new"), ("o97", "u0:gone")])
        _wait_caught_up(log, app)
    inner = sorted(v for _k, v in _read(log, "enriched", guarantee, value="str"))
    expect = sorted(f"u{i % 7}:item{i}@name{i % 7}" for i in range(14) if i % 7 < 5)
    assert inner == sorted([*expect, "u1:late@renamed", "u6:new@new"])
    left = sorted(v for _k, v in _read(log, "counts", guarantee, value="str"))
    expect_left = [
        f"u{i % 7}:item{i}@" + (f"name{i % 7}" if i % 7 < 5 else "None") for i in range(14)
    ]
    assert left == sorted([*expect_left, "u1:late@renamed", "u6:new@new", "u0:gone@None"])


# ----------------------------------------------------------------- idle advance
def test_idle_advance_closes_windows_with_the_wall_clock(
    log: streamlog.Log, guarantee: str
) -> None:
    app = StreamsApp(
        log,
        application_id="win",
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=50,
        idle_advance_ms=100,
    )
    try:
        (
            app.stream("text")
            .group_by_key()
            .windowed_by(TimeWindows.of(500, grace_ms=0))
            .count(materialized_as="win-counts")
            .suppress_until_window_closes()
            .to_stream(lambda wk, v: f"{wk.key}@{wk.start}")
            .to("counts", value_serde="int")
        )
        app.build()
    except NotImplementedError:
        pytest.skip("windowed aggregations (_windowed.py) are not implemented yet")
    now = int(time.time() * 1000)
    with app:
        app.start()
        with log.producer() as p:
            for i in range(3):
                p.send("text", b"x", key=b"k", timestamp_ms=now)
        # no more records: only the wall clock can close the window
        _wait(lambda: _read(log, "counts", guarantee), "the window's final result", 10, app)
    start = now - now % 500
    assert _read(log, "counts", guarantee) == [(f"k@{start}", 3)]


# ------------------------------------------------------------------- config
def test_start_twice_and_after_close(log: streamlog.Log) -> None:
    app = _word_count(log, "at_least_once")
    app.start()
    with pytest.raises(TopologyError, match="already"):
        app.start()
    app.close()
    assert app.state == "NOT_RUNNING"
    with pytest.raises(TopologyError, match="closed"):
        app.start()
    app.close()  # idempotent


def test_store_views_of_a_closed_app_fail_cleanly(log: streamlog.Log) -> None:
    app = _word_count(log, "at_least_once")
    with app:
        app.start()
        view = app.store("counts")
    assert len(view) == 0  # its tasks are closed: nothing local is left


def test_stream_threads_start_transactions_at_once(data_dir: str) -> None:
    """Regression: the transaction coordinator made its file lock lazily, and two threads
    of one process making their first transactional producers at once could make two
    (both "held" at once: a 30 s hang, then LockTimeoutError). Exactly-once stream
    threads do that at their first assignment."""
    for _ in range(3):
        with streamlog.open(os.path.join(data_dir, str(time.monotonic_ns()))) as fresh:
            barrier = threading.Barrier(4)
            errors: list[BaseException] = []

            def init(i: int, handle: streamlog.Log = fresh) -> None:
                try:
                    producer = handle.producer(transactional_id=f"t{i}")
                    barrier.wait()
                    producer.init_transactions()
                    producer.close()
                except BaseException as e:  # reported below
                    errors.append(e)

            threads = [threading.Thread(target=init, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            assert not any(t.is_alive() for t in threads), "init_transactions hung"
            assert not errors, errors
