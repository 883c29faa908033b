"""EventStore: conditional appends, reads through the per-key index, snapshots, projections."""

from __future__ import annotations

import os
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamlog
from streamlog import ANY, CAUGHT_UP, NO_STREAM, STREAM_EXISTS, WrongExpectedVersionError
from streamlog._keyindex import INDEX_FILE


def test_append_returns_revisions_and_checks_expectations(log: streamlog.Log) -> None:
    store = log.event_store("bank")
    assert store.revision("acc-1") is None
    assert store.append("acc-1", b"opened", expected_revision=NO_STREAM) == 0
    assert store.append("acc-1", [b"d1", b"d2"], expected_revision=0) == 2
    assert store.append("acc-1", b"d3", expected_revision=STREAM_EXISTS) == 3
    assert store.append("acc-1", b"d4", expected_revision=ANY) == 4
    for expected, actual in ((3, 4), (NO_STREAM, 4)):
        with pytest.raises(WrongExpectedVersionError) as info:
            store.append("acc-1", b"x", expected_revision=expected)
        assert info.value.expected is expected and info.value.actual == actual
    with pytest.raises(WrongExpectedVersionError) as info:
        store.append("acc-2", b"x", expected_revision=STREAM_EXISTS)
    assert info.value.actual is None
    with pytest.raises(WrongExpectedVersionError):
        store.append("acc-2", b"x", expected_revision=0)
    assert store.revision("acc-1") == 4 and store.revision("acc-2") is None
    # a refused append wrote nothing
    assert log.describe_topic("bank").partitions[0].end_offset == 5


def test_bad_arguments(log: streamlog.Log) -> None:
    store = log.event_store("bank")
    with pytest.raises(TypeError):
        store.append(b"acc", b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.append("acc", b"x", expected_revision="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.append("acc", ["x"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        store.append("acc", [])
    with pytest.raises(ValueError):
        store.read("acc", -1)
    assert store.revision("acc") is None


def test_read_ranges_and_headers(log: streamlog.Log) -> None:
    store = log.event_store("bank", partitions=3)
    for i in range(10):
        store.append("a", f"a{i}".encode(), headers=[("type", b"Deposited")])
        store.append("b", f"b{i}".encode())
    events = store.read("a")
    assert [e.data for e in events] == [f"a{i}".encode() for i in range(10)]
    assert [e.revision for e in events] == list(range(10))
    assert all(e.stream == "a" and e.partition == store.partition_of("a") for e in events)
    assert events[0].headers == (("type", b"Deposited"),)
    assert [e.revision for e in store.read("b", 3, 5)] == [3, 4, 5]
    assert store.read("b", 10) == [] and store.read("nobody") == []
    offsets = [e.offset for e in events]
    assert offsets == sorted(offsets)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("xyz"), st.integers(1, 3)), max_size=30),
       st.integers(0, 3))
def test_reads_match_a_model(tmp_path_factory: pytest.TempPathFactory,
                             ops: list[tuple[str, int]], flushes: int) -> None:
    path = str(tmp_path_factory.mktemp("es"))
    model: dict[str, list[bytes]] = {}
    with streamlog.open(path) as log:
        store = log.event_store("s", partitions=2)
        for n, (stream, count) in enumerate(ops):
            events = [f"{stream}{len(model.get(stream, [])) + i}".encode() for i in range(count)]
            rev = store.append(stream, events)
            model.setdefault(stream, []).extend(events)
            assert rev == len(model[stream]) - 1
            if flushes and n % (flushes + 1) == 0:
                store.flush_index()  # part of the index on disk, part in memory
        for stream, events in model.items():
            assert [e.data for e in store.read(stream)] == events
            assert [e.data for e in store.read(stream, 1, 2)] == events[1:3]
        store.close()
        again = log.event_store("s")  # a reopen reads the file, then the tail
        for stream, events in model.items():
            assert again.revision(stream) == len(events) - 1
            assert [e.data for e in again.read(stream)] == events
        assert again.check_index() == []
        again.close()


def test_index_rebuilt_after_deletion_and_damage(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        store = log.event_store("bank")
        for i in range(50):
            store.append(f"s{i % 5}", f"e{i}".encode())
        store.close()
        pdir = log.partition("bank", 0).path
    index = os.path.join(pdir, INDEX_FILE)
    assert os.path.exists(index)
    for extra, damage in enumerate(("delete", "garbage")):
        for suffix in ("-wal", "-shm"):
            if os.path.exists(index + suffix):
                os.unlink(index + suffix)
        if damage == "delete":
            os.unlink(index)
        else:
            with open(index, "wb") as f:
                f.write(b"not a database at all" * 100)
        with streamlog.open(data_dir) as log:
            store = log.event_store("bank")
            assert store.revision("s3") == 9 + extra
            events = [e.data for e in store.read("s3")]
            assert events == [f"e{i}".encode() for i in range(3, 50, 5)] + [b"more"] * extra
            assert store.append("s3", b"more", expected_revision=9 + extra) == 10 + extra
            store.close()
            assert log.event_store("bank").check_index() == []


def test_check_index_finds_a_wrong_row(log: streamlog.Log) -> None:
    store = log.event_store("bank")
    for i in range(10):
        store.append("a", f"e{i}".encode())
    store.flush_index()
    assert store.check_index() == []
    db = sqlite3.connect(os.path.join(log.partition("bank", 0).path, INDEX_FILE))
    assert [p.kind for p in streamlog.check(log.path).problems] == []
    db.execute("UPDATE events SET offset = offset + 1 WHERE revision = 3")
    db.commit()
    db.close()
    assert store.check_index()
    # streamlog.check reports it too (read-only, beside the log's own checks)
    problems = streamlog.check(log.path).problems
    assert [p.kind for p in problems] == ["key-index"]
    assert problems[0].path.endswith(INDEX_FILE) and "stream b'a'" in problems[0].detail


def test_index_behind_the_log_catches_up(log: streamlog.Log) -> None:
    store = log.event_store("bank")
    store.append("a", b"0")
    store.flush_index()
    with log.producer() as producer:  # plain appends are events too (their key: the stream)
        for i in range(1, 5):
            producer.send("bank", str(i).encode(), key=b"a")
    assert store.revision("a") == 4
    assert [e.data for e in store.read("a")] == [b"0", b"1", b"2", b"3", b"4"]


def test_snapshots_latest_wins(log: streamlog.Log) -> None:
    store = log.event_store("bank")
    assert store.load_snapshot("a") is None
    store.save_snapshot("a", 3, b"s3")
    store.save_snapshot("b", 0, b"b0")
    store.save_snapshot("a", 7, b"s7")
    snap = store.load_snapshot("a")
    assert snap is not None and (snap.revision, snap.state) == (7, b"s7")
    other = log.event_store("bank")  # another handle sees them too
    b = other.load_snapshot("b")
    assert b is not None and b.state == b"b0"
    assert store.snapshot_topic in log.topics()


def test_subscription_history_caught_up_then_live(log: streamlog.Log) -> None:
    store = log.event_store("bank")
    for i in range(5):
        store.append("a" if i % 2 else "b", str(i).encode())
    with store.subscribe() as sub:
        items: list[object] = []
        while CAUGHT_UP not in items:
            items += sub.poll()
        assert [getattr(e, "data", e) for e in items] == [b"0", b"1", b"2", b"3", b"4", CAUGHT_UP]
        store.append("a", b"5")
        live = sub.poll(10_000)
        assert len(live) == 1 and live[0].revision == 2 and live[0].data == b"5"  # type: ignore[union-attr]
        assert sub.poll(10_000) == [CAUGHT_UP]  # at the end again: one marker, not two
        assert sub.poll(50) == []
    with store.subscribe(from_position=2, stream="a") as sub:
        items = []
        while CAUGHT_UP not in items:
            items += sub.poll()
        assert [(e.offset, e.revision) for e in items[:-1]] == [(3, 1), (5, 2)]  # type: ignore[union-attr]


def test_projection_resumes_and_rebuilds(log: streamlog.Log, tmp_path: os.PathLike[str]) -> None:
    store = log.event_store("bank")

    def apply(conn: sqlite3.Connection, event: streamlog.RecordedEvent) -> None:
        conn.execute("INSERT INTO balance VALUES (?, ?) ON CONFLICT(account) "
                     "DO UPDATE SET amount = amount + excluded.amount",
                     (event.stream, int(event.data)))

    db = os.path.join(os.fspath(tmp_path), "read.sqlite")
    setup = sqlite3.connect(db)
    setup.execute("CREATE TABLE balance (account TEXT PRIMARY KEY, amount INTEGER)")
    setup.commit()
    setup.close()
    for i in range(10):
        store.append(f"acc-{i % 2}", str(i).encode())
    with streamlog.SqliteProjection(db, store, apply) as proj:
        assert proj.run() == 10
        assert proj.position == {0: 9}
    for i in range(10, 12):
        store.append("acc-0", str(i).encode())
    failing_once = {"armed": True}

    def flaky(conn: sqlite3.Connection, event: streamlog.RecordedEvent) -> None:
        apply(conn, event)
        if event.offset == 11 and failing_once.pop("armed", False):
            raise RuntimeError("crash in the middle")

    with streamlog.SqliteProjection(db, store, flaky) as proj:
        with pytest.raises(RuntimeError):
            proj.run()
        assert proj.position == {0: 9}  # the failed transaction left nothing behind
        assert proj.run() == 2
        rows = dict(proj.conn.execute("SELECT account, amount FROM balance").fetchall())
        assert rows == {"acc-0": 0 + 2 + 4 + 6 + 8 + 10 + 11, "acc-1": 1 + 3 + 5 + 7 + 9}
        assert proj.rebuild(None, reset=lambda c: c.execute("DELETE FROM balance")) == 12
        again = dict(proj.conn.execute("SELECT account, amount FROM balance").fetchall())
        assert again == rows
        proj.rebuild(9, reset=lambda c: c.execute("DELETE FROM balance"))
        assert dict(proj.conn.execute("SELECT * FROM balance").fetchall()) == {"acc-0": 21}
