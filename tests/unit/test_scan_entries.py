"""Recovery rebuilds indexes from the same pass that verifies the frames."""

from __future__ import annotations

import os
import random

import pytest

import streamlog
from streamlog.storage import prepare_batch


@pytest.mark.parametrize("seed", range(8))
def test_scan_collects_the_index_entries_a_separate_pass_would(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    config = {
        "segment.bytes": rng.choice([4096, 65536, 1 << 20]),
        "index.interval.bytes": rng.choice([0, 100, 4096]),
    }
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1, config)
        part = log.partition("t", 0)
        for _ in range(rng.randint(1, 200)):
            n = rng.randint(1, 20)
            values = [os.urandom(rng.randint(0, 300)) for _ in range(n)]
            part.append(prepare_batch(values, timestamps=[rng.randint(0, 10**6) for _ in values]))
        for seg in part.segments():
            entries: list[tuple[int, int, int]] = []
            result = seg.scan(0, seg.base_offset, entries=entries)
            assert entries == seg.expected_index_entries(result.end)
            assert [(rel, pos) for rel, pos, _ts in entries][: seg.offset_index.count] == [
                seg.offset_index.entry(i) for i in range(seg.offset_index.count)
            ]


def test_reading_on_from_the_last_read_skips_the_index_walk(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1, {"index.interval.bytes": 0})
        part = log.partition("t", 0)
        for i in range(50):
            part.append(prepare_batch([b"v%d" % i] * 3, timestamps=1))
        (first,) = part.read(30, 1)
        assert (first.base_offset, first.last_offset) == (30, 32)
        seg = part.segments()[-1]

        def no_lookup(*a: object) -> int:
            raise AssertionError("the index was searched for the offset after the last read")

        monkeypatch.setattr(type(seg.offset_index), "lower", no_lookup)
        (following,) = part.read(33, 1)
        assert (following.base_offset, next(iter(following.records()))[3]) == (33, b"v11")
        monkeypatch.undo()
        # any other offset still goes through the index and finds the right batch
        (other,) = part.read(7, 1)
        assert other.base_offset <= 7 <= other.last_offset
