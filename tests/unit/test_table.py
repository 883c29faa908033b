"""Table: latest value per key of a topic, tombstones delete, caught up by refresh()."""

from __future__ import annotations

import pytest

import streamlog


@pytest.fixture
def log(log: streamlog.Log) -> streamlog.Log:
    log.create_topic("users", partitions=3)
    return log


def _send(log: streamlog.Log, pairs: list[tuple[bytes | None, bytes | None]]) -> None:
    with log.producer() as producer:
        for key, value in pairs:
            producer.send("users", value, key=key)


def test_latest_value_per_key_and_tombstones(log: streamlog.Log) -> None:
    _send(log, [(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (None, b"keyless"), (b"c", b"4")])
    with log.table("users") as table:
        assert dict(table) == {b"a": b"3", b"b": b"2", b"c": b"4"}
        assert len(table) == 3 and b"a" in table and table.get(b"zz", 0) == 0
        _send(log, [(b"b", None), (b"d", b"5")])
        assert b"b" in table  # not refreshed yet
        assert table.refresh() == 2
        assert dict(table) == {b"a": b"3", b"c": b"4", b"d": b"5"}
        with pytest.raises(KeyError):
            table[b"b"]
        assert table.refresh() == 0


def test_deserializers_and_auto_refresh(log: streamlog.Log) -> None:
    _send(log, [(b"k", b"1")])
    with log.table("users", key_deserializer=bytes.decode, value_deserializer=int,
                   refresh_interval_ms=0) as table:
        assert table["k"] == 1
        _send(log, [(b"k", b"2")])
        assert table["k"] == 2  # refreshed on access


def test_refresh_waits_for_an_append(log: streamlog.Log) -> None:
    import threading
    with log.table("users") as table:
        t = threading.Thread(target=_send, args=(log, [(b"x", b"1")]))
        t.start()
        applied = 0
        while not applied:
            applied = table.refresh(timeout_ms=10_000)
        t.join()
        assert table[b"x"] == b"1"


def test_new_partitions_and_close(log: streamlog.Log) -> None:
    table = log.table("users")
    log.create_partitions("users", 5)
    with log.producer() as producer:
        producer.send("users", b"v", key=b"p4", partition=4)
    assert table.refresh() == 1 and table[b"p4"] == b"v"
    table.close()
    table.close()
    with pytest.raises(streamlog.ClosedError):
        len(table)


def test_unknown_topic(log: streamlog.Log) -> None:
    with pytest.raises(streamlog.UnknownTopicError):
        log.table("nope")


def test_table_follows_another_process(data_dir: str) -> None:
    import multiprocessing as mp
    with streamlog.open(data_dir) as log:
        log.create_topic("users")
        table = log.table("users")
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_writer, args=(data_dir,))
        p.start()
        p.join(60)
        assert p.exitcode == 0
        assert table.refresh() == 100
        assert len(table) == 10 and table[b"k3"] == b"93"
        table.close()


def _writer(path: str) -> None:
    with streamlog.open(path) as log, log.producer() as producer:
        for i in range(100):
            producer.send("users", str(i).encode(), key=f"k{i % 10}".encode())
