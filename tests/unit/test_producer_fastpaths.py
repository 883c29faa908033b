"""Shortcuts on the producer's hot path give the same answers as the long way."""

from __future__ import annotations

import pytest

import streamlog


def test_single_partition_topics_skip_hashing_but_not_user_partitioners(data_dir: str) -> None:
    calls: list[bytes | None] = []

    def mine(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        calls.append(key)
        return 0

    with streamlog.open(data_dir) as log:
        log.create_topic("one", 1)
        with log.producer() as builtin, log.producer(partitioner=mine) as custom:
            assert builtin.send("one", b"v", key=b"k").result(10).partition == 0
            assert custom.send("one", b"v", key=b"k").result(10).partition == 0
    assert calls == [b"k"]


def test_single_partition_shortcut_does_not_call_the_hash(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlog.clients import _partitioner

    def boom(*a: object) -> int:
        raise AssertionError("hashed a key for a one-partition topic")

    monkeypatch.setattr(_partitioner, "_murmur2_u32", boom)  # the pure path
    monkeypatch.setattr(_partitioner, "murmur2_partition", boom)  # the compiled path
    with streamlog.open(data_dir) as log:
        log.create_topic("one", 1)
        with log.producer() as producer:
            assert producer.send("one", b"v", key=b"fresh-key").result(10).partition == 0
