"""PartitionLog: Kafka's log semantics (rolling, indexes, read path, retention, recovery)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlog._config import TopicConfig
from streamlog._fs import fs
from streamlog.errors import (
    ClosedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageIOError,
)
from streamlog.storage import PartitionLog, RecordBatch, _partition, prepare_batch
from streamlog.storage._codec import PreparedBatch, aligned
from streamlog.storage._segment import SEAL_SIZE
from streamlog.storage._state import PartitionState


class Clock:
    """A settable clock in seconds, as PartitionLog's ``clock=`` wants."""

    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def config(**kafka: object) -> TopicConfig:
    return TopicConfig.from_dict(kafka)


def cfg(d: dict[str, object] | None = None) -> TopicConfig:
    return TopicConfig.from_dict(d or {})


@pytest.fixture
def ppath(tmp_path: Path) -> str:
    return str(tmp_path / "topic-0")


@pytest.fixture
def open_log(ppath: str) -> Iterator:
    logs: list[PartitionLog] = []

    def opener(conf: dict[str, object] | None = None, **kw: object) -> PartitionLog:
        log = PartitionLog(ppath, cfg(conf), **kw)  # type: ignore[arg-type]
        logs.append(log)
        return log

    yield opener
    for log in logs:
        log.close()


def batch(
    *values: bytes | None, ts: int | list[int] = 0, keys: list | None = None
) -> PreparedBatch:
    return prepare_batch(list(values), keys, ts)


def one(i: int, size: int = 10, ts: int | None = None) -> PreparedBatch:
    """A one-record batch whose value names ``i``."""
    return prepare_batch([value(i, size)], timestamps=i if ts is None else ts)


def value(i: int, size: int = 10) -> bytes:
    """b"v<i>" padded with dots to ``size`` bytes."""
    v = b"v%d" % i
    return v + b"." * max(0, size - len(v))


def records(batches: list[RecordBatch], start: int = 0) -> list[tuple[int, bytes | None]]:
    return [(r[0], r[3]) for b in batches for r in b.records() if r[0] >= start]


def bases(log: PartitionLog) -> list[int]:
    return [s.base_offset for s in log.segments()]


def segment_files(path: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(".log"))


# --------------------------------------------------------------------- appending


def test_first_append_gets_offset_zero_and_offsets_are_dense(open_log) -> None:
    log = open_log()
    assert log.end_offset == 0 and log.log_start_offset == 0
    r1 = log.append(batch(b"a", b"b", b"c", ts=5))
    r2 = log.append(batch(b"d", ts=[7]))
    assert (r1.base_offset, r1.last_offset, r1.timestamp) == (0, 2, 5)
    assert (r2.base_offset, r2.last_offset, r2.timestamp) == (3, 3, 7)
    assert log.end_offset == 4
    assert records(log.read(0)) == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]
    log._check()


def test_append_many_assigns_offsets_in_order_and_rolls_inside(open_log) -> None:
    log = open_log({"segment.bytes": 4096})
    batches = [one(i, size=900) for i in range(10)]
    results = log.append_many(batches)
    assert [(r.base_offset, r.last_offset) for r in results] == [(i, i) for i in range(10)]
    assert len(log.segments()) > 2
    assert records(log.read(0)) == [(i, value(i, 900)) for i in range(10)]
    log._check()


def test_record_too_large_writes_nothing(open_log) -> None:
    log = open_log({"max.message.bytes": 200})
    small = batch(b"x" * 50)
    big = batch(b"x" * 200)
    assert big.size > 200 >= small.size
    with pytest.raises(RecordTooLargeError):
        log.append(big)
    with pytest.raises(RecordTooLargeError):
        log.append_many([small, big])  # checked before anything is written
    assert log.end_offset == 0 and log.size_bytes() == 0
    assert log.read(0) == []
    assert log.append(small).base_offset == 0
    log._check()


def test_batch_exactly_max_message_bytes_is_accepted(open_log) -> None:
    b = batch(b"x" * 100)
    log = open_log({"max.message.bytes": b.size})
    assert log.append(b).base_offset == 0


def test_log_append_time_overrides_record_timestamps(open_log) -> None:
    clock = Clock(5_000_000)
    log = open_log({"message.timestamp.type": "LogAppendTime"}, clock=clock)
    r = log.append(batch(b"a", b"b", ts=[10, 20]))
    assert r.timestamp == 5_000_000
    clock.ms += 7
    log.append(batch(b"c", ts=30))
    read = log.read(0)
    assert all(b.log_append_time for b in read)
    assert [(o, t) for b in read for o, t, *_ in b.records()] == [
        (0, 5_000_000), (1, 5_000_000), (2, 5_000_007),
    ]
    assert log.offset_for_timestamp(5_000_001) == (2, 5_000_007)
    assert log.offset_for_timestamp(11) == (0, 5_000_000)


def test_create_time_keeps_producer_timestamps(open_log) -> None:
    log = open_log(clock=Clock(5_000_000))
    log.append(batch(b"a", b"b", ts=[10, 20]))
    b = log.read(0)[0]
    assert not b.log_append_time
    assert [r[1] for r in b.records()] == [10, 20]


def test_closed_log_refuses(open_log) -> None:
    log = open_log()
    log.append(batch(b"a"))
    log.close()
    for call in (lambda: log.append(batch(b"b")), lambda: log.read(0), lambda: log.end_offset):
        with pytest.raises(ClosedError):
            call()
    log.close()  # twice is fine


# --------------------------------------------------------------------- rolling


def test_size_based_roll_at_segment_bytes(open_log) -> None:
    log = open_log({"segment.bytes": 4096})
    b = one(0, size=947)
    assert aligned(b.size) == 1024  # four fill a 4096-byte segment exactly
    for i in range(9):
        log.append(one(i, size=947))
    # tail + frame > segment.bytes rolls; == does not
    assert bases(log) == [0, 4, 8]
    segs = log.segments()
    assert segs[0].sealed and segs[0].tail == 4096 and segs[0].size_bytes == 4096 + SEAL_SIZE
    assert os.path.getsize(segs[0].path) == 4096 + SEAL_SIZE  # trimmed after the seal
    assert segment_files(log.path) == [
        "00000000000000000000.log", "00000000000000000004.log", "00000000000000000008.log",
    ]
    assert records(log.read(3, 1 << 20))[0] == (3, b"v3" + b"." * 945)
    log._check()


def test_oversized_batch_goes_alone_into_an_empty_segment(open_log) -> None:
    log = open_log({"segment.bytes": 4096})
    log.append(one(0, size=10))
    log.append(one(1, size=6000))  # bigger than segment.bytes, under max.message.bytes
    log.append(one(2, size=10))
    assert bases(log) == [0, 1, 2]
    assert records(log.read(1)) [:1] == [(1, b"v1" + b"." * 5998)]
    log._check()


def test_time_based_roll_by_record_timestamps(open_log) -> None:
    log = open_log({"segment.ms": 1000})
    for ts in (0, 500, 1000):  # 1000 - 0 is not > segment.ms
        log.append(batch(b"x", ts=ts))
    assert bases(log) == [0]
    log.append(batch(b"x", ts=1001))
    assert bases(log) == [0, 3]
    log.append(batch(b"x", ts=900))  # older than the new segment's first batch: no roll
    log.append(batch(b"x", ts=2001))  # 2001 - 1001 = 1000: no roll
    assert bases(log) == [0, 3]
    log.append(batch(b"x", ts=2002))
    assert bases(log) == [0, 3, 6]
    log._check()


def test_time_based_roll_uses_first_batch_max_timestamp(open_log) -> None:
    log = open_log({"segment.ms": 1000})
    log.append(batch(b"a", b"b", ts=[0, 600]))  # the first batch's max timestamp is 600
    log.append(batch(b"c", ts=1600))
    assert bases(log) == [0]
    log.append(batch(b"c", ts=1601))
    assert bases(log) == [0, 3]


def test_negative_timestamps_never_roll_by_time(open_log) -> None:
    log = open_log({"segment.ms": 1})
    log.append(batch(b"a", ts=-1))
    log.append(batch(b"b", ts=10**9))
    assert bases(log) == [0]
    log.append(batch(b"c", ts=-1))
    assert bases(log) == [0]


def test_time_roll_survives_reopen(ppath: str) -> None:
    log = PartitionLog(ppath, config(**{"segment.ms": 1000}))
    log.append(batch(b"a", ts=100))
    log.close()
    log = PartitionLog(ppath, config(**{"segment.ms": 1000}))
    log.append(batch(b"b", ts=1101))
    assert bases(log) == [0, 1]
    log.close()


def test_empty_segment_never_rolls(open_log) -> None:
    log = open_log({"segment.ms": 1000})
    log.append(batch(b"a", ts=0))
    log.roll()
    assert bases(log) == [0, 1]
    log.roll()  # the active segment is empty: nothing to seal
    assert bases(log) == [0, 1]
    log.append(batch(b"b", ts=10**6))  # far past segment.ms, but the segment is empty
    assert bases(log) == [0, 1]
    log.append(batch(b"c", ts=10**6))
    assert bases(log) == [0, 1]
    assert records(log.read(0)) == [(0, b"a"), (1, b"b"), (2, b"c")]
    log._check()


def test_index_full_rolls_offset_index(open_log) -> None:
    # 4096 bytes = 512 offset entries; every batch but the first is indexed
    log = open_log({"segment.index.bytes": 4096, "index.interval.bytes": 0})
    log.append_many([batch(b"v", ts=1) for _ in range(514)])
    assert bases(log) == [0, 513]
    seg = log.segments()[0]
    assert seg.offset_index.count == 512 and seg.sealed
    assert records(log.read(512, 100)) == [(512, b"v")]
    log._check()


def test_index_full_rolls_time_index(open_log) -> None:
    # 4096 bytes = 341 time entries; increasing timestamps index every batch
    log = open_log({"segment.index.bytes": 4096, "index.interval.bytes": 0})
    log.append_many([batch(b"v", ts=i) for i in range(343)])
    assert bases(log) == [0, 342]
    assert log.segments()[0].time_index.count == 341
    log._check()


# --------------------------------------------------------------------- reading


def test_read_at_end_is_empty_and_past_end_is_out_of_range(open_log) -> None:
    log = open_log()
    assert log.read(0) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(1)
    log.append(batch(b"a", b"b"))
    assert log.read(2) == []
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(3)
    assert (info.value.offset, info.value.log_start_offset, info.value.end_offset) == (3, 0, 2)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1)


def test_read_mid_batch_returns_the_whole_batch(open_log) -> None:
    log = open_log()
    log.append(batch(b"a", b"b", b"c"))
    log.append(batch(b"d"))
    got = log.read(1)
    assert [(b.base_offset, b.last_offset) for b in got] == [(0, 2), (3, 3)]
    assert records(got, start=1) == [(1, b"b"), (2, b"c"), (3, b"d")]


def test_max_bytes_bounds_and_oversized_first_batch(open_log) -> None:
    log = open_log({"segment.bytes": 4096})
    for i in range(12):
        log.append(one(i, size=1000))
    size = log.read(0)[0].size
    assert [b.base_offset for b in log.read(0, max_bytes=1)] == [0]  # first batch always
    assert [b.base_offset for b in log.read(5, max_bytes=size)] == [5]
    assert [b.base_offset for b in log.read(5, max_bytes=3 * size - 1)] == [5, 6]
    assert [b.base_offset for b in log.read(5, max_bytes=3 * size)] == [5, 6, 7]
    # across segment boundaries too
    assert len(log.segments()) >= 3
    assert [b.base_offset for b in log.read(0, max_bytes=11 * size)] == list(range(11))
    assert [b.base_offset for b in log.read(0)] == list(range(12))
    big = log.append(one(12, size=5000)).base_offset
    got = log.read(big, max_bytes=100)
    assert [b.base_offset for b in got] == [12] and got[0].size > 5000


def test_read_in_a_gap_returns_the_next_batch(ppath: str) -> None:
    # A power cut lost the end of segment 0 and its seal: recovery seals it
    # where its data ends, leaving offsets 6..9 as a gap.
    conf = config()
    log = PartitionLog(ppath, conf)
    for i in range(10):
        log.append(one(i))
    positions = [p for p, _b in log.segments()[0].batches()]
    log.roll()
    log.append(one(10))
    log.append(one(11))
    log.close()
    with open(os.path.join(ppath, "00000000000000000000.log"), "r+b") as f:
        f.truncate(positions[6])
    state = PartitionState(os.path.join(ppath, "state"))
    state.write_durable(0, 0)  # the recovery point was not yet past segment 0
    state.close()
    log = PartitionLog(ppath, conf, recover=True)
    assert log.report is not None and log.report.offset_gaps == [(6, 10)]
    log._check()
    assert [b.base_offset for b in log.read(5)] == [5, 10, 11]
    assert [b.base_offset for b in log.read(6)] == [10, 11]
    assert [b.base_offset for b in log.read(9)] == [10, 11]
    assert log.read(12) == [] and log.end_offset == 12
    assert log.offset_for_timestamp(6) == (10, 10)
    assert log.append(one(12)).base_offset == 12
    log.close()


def test_read_below_log_start_after_delete_records(open_log) -> None:
    log = open_log()
    for _ in range(4):
        log.append(batch(b"x", b"y", b"z"))  # batches at 0, 3, 6, 9
    assert log.delete_records(4) == 4
    assert log.log_start_offset == 4
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(3)
    assert info.value.log_start_offset == 4
    got = log.read(4)
    assert got[0].base_offset == 3  # whole batch; the caller skips offset 3
    assert [o for o, _v in records(got, start=4)] == list(range(4, 12))
    assert log.delete_records(2) == 4  # never moves back
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records(13)
    assert log.delete_records(12) == 12  # up to the end: everything gone
    assert log.read(12) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(11)
    assert log.append(batch(b"n")).base_offset == 12
    assert records(log.read(12)) == [(12, b"n")]
    log._check()


def test_delete_records_removes_whole_segments_below(open_log) -> None:
    log = open_log({"segment.bytes": 4096})
    for i in range(12):
        log.append(one(i, size=1000))
    bs = bases(log)
    assert bs == [0, 3, 6, 9]
    log.delete_records(7)
    assert bases(log) == [6, 9]
    assert segment_files(log.path) == ["00000000000000000006.log", "00000000000000000009.log"]
    assert not os.path.exists(os.path.join(log.path, "00000000000000000000.index"))
    assert log.log_start_offset == 7
    assert records(log.read(7))[0][0] == 7
    log._check()


def test_offset_for_timestamp(open_log) -> None:
    log = open_log({"index.interval.bytes": 0, "segment.bytes": 4096})
    log.append(batch(b"a", b"b", ts=[100, 200]))  # 0, 1
    log.append(batch(b"c", b"d", ts=[150, 300]))  # 2, 3
    for i in range(40):
        log.append(one(i, size=200, ts=1000 + 10 * i))  # 4..43, several segments
    assert len(log.segments()) > 2
    assert log.offset_for_timestamp(0) == (0, 100)
    assert log.offset_for_timestamp(100) == (0, 100)
    assert log.offset_for_timestamp(101) == (1, 200)
    assert log.offset_for_timestamp(150) == (1, 200)  # earliest offset, not smallest timestamp
    assert log.offset_for_timestamp(201) == (3, 300)
    assert log.offset_for_timestamp(301) == (4, 1000)
    assert log.offset_for_timestamp(1255) == (30, 1260)
    assert log.offset_for_timestamp(1390) == (43, 1390)
    assert log.offset_for_timestamp(1391) is None
    log.delete_records(3)
    assert log.offset_for_timestamp(0) == (3, 300)
    assert log.offset_for_timestamp(1255) == (30, 1260)


def test_offset_for_timestamp_empty_log(open_log) -> None:
    log = open_log()
    assert log.offset_for_timestamp(0) is None


# --------------------------------------------------------------------- retention


def _segments_with_timestamps(log: PartitionLog, stamps: list[int]) -> None:
    for ts in stamps:
        log.append(batch(b"x" * 100, ts=ts))
        log.roll()


def test_retention_by_time_deletes_old_prefix(open_log) -> None:
    clock = Clock()
    log = open_log({"retention.ms": 1000}, clock=clock)
    _segments_with_timestamps(log, [1000, 2000, 3000])
    log.append(batch(b"active", ts=4000))
    assert bases(log) == [0, 1, 2, 3]
    assert log.enforce_retention(now_ms=2000) == 0  # 2000 - 1000 is not > retention.ms
    assert log.enforce_retention(now_ms=2001) == 1
    assert bases(log) == [1, 2, 3] and log.log_start_offset == 1
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0)
    assert log.enforce_retention(now_ms=4000) == 1  # 3000 is not < 4000 - 1000
    assert log.enforce_retention(now_ms=4001) == 1  # the active one (4000) stays
    assert bases(log) == [3] and log.log_start_offset == 3
    assert records(log.read(3)) == [(3, b"active")]
    log._check()


def test_retention_by_time_uses_the_clock(open_log) -> None:
    clock = Clock(10_000)
    log = open_log({"retention.ms": 1000}, clock=clock)
    _segments_with_timestamps(log, [1000, 9500])
    assert log.enforce_retention() == 1
    assert log.log_start_offset == 1


def test_retention_runs_from_append_once_a_minute(open_log) -> None:
    clock = Clock(100_000)
    log = open_log({"retention.ms": 1000}, clock=clock)
    _segments_with_timestamps(log, [50_000, 60_000])
    log.append(batch(b"x", ts=100_000))
    assert bases(log) == [0, 1, 2]  # not checked yet
    clock.ms += _partition.RETENTION_CHECK_INTERVAL_MS
    log.append(batch(b"y", ts=clock.ms))
    assert bases(log) == [2] and log.log_start_offset == 2


def test_future_timestamp_pins_its_segment_and_those_after(open_log) -> None:
    log = open_log({"retention.ms": 1000})
    _segments_with_timestamps(log, [10**12, 1000, 1000])
    log.append(batch(b"x", ts=1000))
    assert log.enforce_retention(now_ms=10**6) == 0  # only a prefix is deleted
    assert bases(log) == [0, 1, 2, 3]


def test_retention_by_size_never_goes_below_the_limit(ppath: str) -> None:
    log = PartitionLog(ppath, config())
    _segments_with_timestamps(log, [1, 2, 3, 4])
    log.append(batch(b"x" * 100, ts=5))
    sizes = [s.size_bytes for s in log.segments()]
    total = sum(sizes)
    assert total == log.size_bytes()
    log.close()
    # limit one byte more than total minus the oldest: deleting it would go below
    log = PartitionLog(ppath, config(**{"retention.bytes": total - sizes[0] + 1}))
    assert log.enforce_retention(now_ms=0) == 0
    log.close()
    log = PartitionLog(ppath, config(**{"retention.bytes": total - sizes[0]}))
    assert log.enforce_retention(now_ms=0) == 1
    assert bases(log) == [1, 2, 3, 4]
    log.close()
    limit = sizes[4] + sizes[3] - 1  # two segments are one byte too many
    log = PartitionLog(ppath, config(**{"retention.bytes": limit}))
    assert log.enforce_retention(now_ms=0) == 2
    assert bases(log) == [3, 4] and log.size_bytes() >= limit
    assert log.log_start_offset == 3
    log._check()
    log.close()


def test_retention_bytes_minus_one_is_unlimited(open_log) -> None:
    log = open_log({"retention.bytes": -1, "retention.ms": -1})
    _segments_with_timestamps(log, [1, 2, 3])
    assert log.enforce_retention(now_ms=10**15) == 0


def test_deleting_every_segment_keeps_the_end_offset(open_log) -> None:
    clock = Clock(10**6)
    log = open_log({"retention.ms": 1000}, clock=clock)
    _segments_with_timestamps(log, [1, 2])
    log.append(batch(b"a", b"b", ts=3))  # the active segment is past retention too
    assert log.end_offset == 4
    assert log.enforce_retention(now_ms=10**6) == 3
    assert bases(log) == [4]
    assert log.end_offset == 4 and log.log_start_offset == 4
    assert segment_files(log.path) == ["00000000000000000004.log"]
    assert log.read(4) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(3)
    assert log.append(batch(b"c", ts=clock.ms)).base_offset == 4
    assert log.enforce_retention(now_ms=10**6) == 0
    log._check()


def test_empty_active_segment_is_never_deleted(open_log) -> None:
    log = open_log({"retention.ms": 1000})
    _segments_with_timestamps(log, [1])
    assert bases(log) == [0, 1]
    assert log.enforce_retention(now_ms=10**9) == 1
    assert bases(log) == [1]
    assert log.enforce_retention(now_ms=10**9) == 0
    assert log.end_offset == 1


def test_retention_deletes_segments_below_log_start(open_log) -> None:
    log = open_log({"segment.bytes": 4096, "retention.ms": -1})
    for i in range(8):
        log.append(one(i, size=1000))
    assert bases(log) == [0, 3, 6]
    log.delete_records(6)  # deletes whole segments below 6 at once
    assert bases(log) == [6]
    log.delete_records(8)  # the active segment is wholly below the start now
    assert log.enforce_retention(now_ms=0) == 1
    assert bases(log) == [8] and log.end_offset == 8 and log.log_start_offset == 8


# --------------------------------------------------------------------- reopen and recovery


def test_reopen_keeps_everything(ppath: str) -> None:
    conf = config(**{"segment.bytes": 4096})
    log = PartitionLog(ppath, conf)
    for i in range(20):
        log.append(one(i, size=500, ts=1000 + i))
    log.delete_records(5)
    want = [(o, v) for o, v in records(log.read(5), start=5)]
    want_bases = bases(log)
    log.close()
    log = PartitionLog(ppath, conf)
    assert log.end_offset == 20 and log.log_start_offset == 5
    assert bases(log) == want_bases
    assert records(log.read(5), start=5) == want
    with pytest.raises(OffsetOutOfRangeError):
        log.read(4)
    assert log.offset_for_timestamp(1010) == (10, 1010)
    assert log.append(one(20)).base_offset == 20
    log._check()
    log.close()
    ro = PartitionLog(ppath, conf, writable=False)
    assert ro.end_offset == 21 and records(ro.read(20)) == [(20, b"v20.......")]
    ro.close()


def test_recover_on_a_clean_log_reports_clean(ppath: str) -> None:
    conf = config(**{"segment.bytes": 4096, "index.interval.bytes": 100})
    log = PartitionLog(ppath, conf)
    for i in range(30):
        log.append(one(i, size=300))
    log.delete_records(2)
    want = records(log.read(2))
    log.close()
    log = PartitionLog(ppath, conf, recover=True)
    report = log.report
    assert report is not None and report.clean
    assert report.bytes_truncated == 0 and report.corrupt == [] and report.offset_gaps == []
    assert report.removed_files == [] and report.segments_created == []
    assert report.segments_scanned >= 1
    assert log.end_offset == 30 and log.log_start_offset == 2
    assert records(log.read(2)) == want
    log._check()
    log.close()


def test_recover_truncates_a_torn_tail(ppath: str) -> None:
    conf = config()
    log = PartitionLog(ppath, conf)
    for i in range(5):
        log.append(one(i))
    seg = log.segments()[-1]
    pos, last = seg.batches()[-1]
    log.close()
    with open(seg.path, "r+b") as f:
        f.truncate(pos + last.size - 3)
    log = PartitionLog(ppath, conf, recover=True)
    assert log.report is not None and not log.report.clean
    assert log.report.truncated_at == [(seg.path, pos)]
    assert log.end_offset == 4
    log._check()
    assert log.append(one(9)).base_offset == 4
    assert records(log.read(3)) == [(3, b"v3........"), (4, b"v9........")]
    log.close()


def test_recover_drops_an_unpublished_frame(ppath: str) -> None:
    # Regression: a crash after writing a frame's body but before its length word
    # left non-zero bytes after the end; recovery called the log clean and kept them.
    conf = config()
    log = PartitionLog(ppath, conf)
    log.append(one(0))
    log.append(one(1, size=300))
    seg = log.segments()[-1]
    pos, _last = seg.batches()[-1]
    log.close()
    with open(seg.path, "r+b") as f:
        f.seek(pos)
        f.write(bytes(4))  # the length word, stored last, never made it
    log = PartitionLog(ppath, conf, recover=True)
    assert log.report is not None and not log.report.clean
    assert log.report.truncated_at == [(seg.path, pos)]
    assert log.end_offset == 1
    log._check()
    log.append(one(2))
    log.append(one(3))
    assert [o for o, _v in records(log.read(0))] == [0, 1, 2]
    log._check()
    log.close()


def test_recover_when_the_lost_tail_was_above_the_log_start(ppath: str) -> None:
    # Regression: delete_records moved the (synced) start past a batch that a power
    # cut then lost; recovery left end < start, so new records were unreadable.
    conf = config()
    log = PartitionLog(ppath, conf)
    log.append(one(0))
    log.append(batch(b"a", b"b"))
    assert log.delete_records(3) == 3
    seg = log.segments()[-1]
    pos, _b = seg.batches()[-1]
    log.close()
    with open(seg.path, "r+b") as f:
        f.truncate(pos + 20)
    log = PartitionLog(ppath, conf, recover=True)
    assert log.log_start_offset == 3 and log.end_offset == 3
    assert log.report is not None and log.report.segments_created == [3]
    log._check()
    assert log.read(3) == []
    assert log.append(batch(b"c")).base_offset == 3
    assert records(log.read(3)) == [(3, b"c")]
    log.close()
    log = PartitionLog(ppath, conf)
    assert bases(log) == [3] and records(log.read(3)) == [(3, b"c")]
    log.close()


def test_segment_left_below_the_log_start_is_deleted_on_open(ppath: str) -> None:
    # Regression: delete_records up to the end keeps the active segment; once
    # rolled and reopened it was hidden but never deleted, and after retention
    # deleted the segments above it, recovery found it again and reported a gap.
    conf = config(**{"retention.ms": 1000})
    log = PartitionLog(ppath, conf)
    log.append(batch(b"a", b"b", ts=1))
    log.delete_records(2)
    log.roll()
    log.close()
    log = PartitionLog(ppath, conf)
    assert segment_files(ppath) == ["00000000000000000002.log"]
    assert not any(n.startswith("00000000000000000000") for n in os.listdir(ppath))
    log.append(batch(b"c", ts=1))
    assert log.enforce_retention(now_ms=10**6) == 1
    assert segment_files(ppath) == ["00000000000000000003.log"]
    log.close()
    log = PartitionLog(ppath, conf, recover=True)
    assert log.report is not None and log.report.clean, log.report
    assert (log.log_start_offset, log.end_offset) == (3, 3)
    log._check()
    log.close()


def test_recover_deletes_segments_below_the_log_start(ppath: str) -> None:
    conf = config()
    log = PartitionLog(ppath, conf)
    log.append(batch(b"a", ts=1))
    log.roll()
    log.append(batch(b"b", ts=1))
    log.roll()
    log.append(batch(b"c", ts=1))
    state = PartitionState(os.path.join(ppath, "state"))
    state.write_durable(2, 0)  # as if a deletion was cut short after moving the start
    state.close()
    log.close()
    log = PartitionLog(ppath, conf, recover=True)
    assert segment_files(ppath) == ["00000000000000000002.log"]
    assert (log.log_start_offset, log.end_offset) == (2, 3)
    assert records(log.read(2)) == [(2, b"c")]
    log._check()
    log.close()


# --------------------------------------------------------------------- two writers


def test_two_instances_append_with_dense_offsets_and_see_each_other(ppath: str) -> None:
    conf = config(**{"segment.bytes": 4096, "index.interval.bytes": 100})
    a = PartitionLog(ppath, conf)
    b = PartitionLog(ppath, conf)
    expected: list[tuple[int, bytes]] = []
    for i in range(60):
        writer = (a, b)[(i // 3) % 2]
        value = b"%s%d" % (b"ab"[(i // 3) % 2 : (i // 3) % 2 + 1], i) + b"." * 200
        r = writer.append(batch(value, value, ts=i))
        assert (r.base_offset, r.last_offset) == (2 * i, 2 * i + 1)
        expected += [(2 * i, value), (2 * i + 1, value)]
        if i % 7 == 0:
            other = b if writer is a else a
            assert other.end_offset == 2 * i + 2
            assert records(other.read(2 * i)) == expected[-2:]
    assert len(a.segments()) > 3
    for log in (a, b):
        assert log.end_offset == 120
        assert records(log.read(0)) == expected
        assert log.offset_for_timestamp(55) == (110, 55)
        log._check()
    b.roll()
    assert a.append(batch(b"after roll")).base_offset == 120
    assert bases(a) == bases(b)
    a.delete_records(50)
    with pytest.raises(OffsetOutOfRangeError):
        b.read(49)
    assert records(b.read(50), start=50)[0][0] == 50
    b._check()
    a._check()
    a.close()
    b.close()


def test_close_after_another_instance_deleted_my_unsynced_segments(ppath: str) -> None:
    # Regression: b still listed segments it had written (unsynced) after a
    # deleted them; b's flush and close then fsynced a closed descriptor.
    conf = config(**{"segment.bytes": 4096})
    a = PartitionLog(ppath, conf)
    b = PartitionLog(ppath, conf)
    b.append(one(0, size=1000))  # segment 0, not yet synced by b
    for i in range(1, 7):
        a.append(one(i, size=1000))  # a rolls segment 0 away
    assert bases(a) == [0, 3, 6]
    a.delete_records(6)  # and deletes it
    assert b.read(6)[0].base_offset == 6  # b learns of the new log start
    b.append(one(7), sync=True)
    b.flush()
    b.close()
    a.close()


# --------------------------------------------------------------------- durability


def test_sync_append_fsyncs_the_segment(open_log, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str | None] = []
    real = fs.sync

    def counting(fd: int, path: str | None = None) -> None:
        calls.append(path)
        real(fd, path)

    monkeypatch.setattr(fs, "sync", counting)
    log = open_log()
    log.append(batch(b"a"))
    assert calls == []
    log.append(batch(b"b"), sync=True)
    assert calls == [os.path.join(log.path, "00000000000000000000.log")]
    calls.clear()
    log.flush()  # nothing new
    assert calls == []
    log.append(batch(b"c"))
    log.flush()
    assert len(calls) == 1


def test_failed_sync_fails_the_partition(open_log, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    log.append(batch(b"a"))

    def broken(fd: int, path: str | None = None) -> None:
        raise StorageIOError(errno.EIO, "Input/output error", path)

    monkeypatch.setattr(fs, "sync", broken)
    with pytest.raises(StorageIOError):
        log.append(batch(b"b"), sync=True)
    monkeypatch.undo()
    with pytest.raises(StorageIOError, match="reopen"):
        log.append(batch(b"c"))  # never acknowledged again after a failed fsync
    assert records(log.read(0)) == [(0, b"a"), (1, b"b")]
    with pytest.raises(StorageIOError):
        log.close()  # cannot make the unsynced data durable either; still closes
    with pytest.raises(ClosedError):
        log.read(0)


def test_read_only_log_refuses_writes(ppath: str) -> None:
    w = PartitionLog(ppath, config())
    w.append(batch(b"a"))
    ro = PartitionLog(ppath, config(), writable=False)
    w.append(batch(b"b"))
    assert records(ro.read(0)) == [(0, b"a"), (1, b"b")]
    with pytest.raises(StorageIOError):
        ro.append(batch(b"c"))
    assert ro.enforce_retention(now_ms=10**15) == 0
    ro.close()
    w.close()


# --------------------------------------------------------------------- descriptors


def held(path: str) -> int:
    """Descriptors this process holds on files in ``path``."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        n += os.path.dirname(target) == path
    return n


def test_descriptors_an_open_partition_holds(ppath: str) -> None:
    """docs/reliability.md, Limits: lock file 1, state map 1, active segment 2 (fd and
    map) and its indexes 0 while empty (2 each once indexed); a loaded sealed segment 4
    (log fd and map, one map per index); retention and sizes load no sealed segment."""
    clock = Clock()
    log = PartitionLog(ppath, config(**{"segment.bytes": 4096}), clock=clock)
    log.append(one(0))
    assert held(ppath) == 4
    for i in range(1, 40):
        log.append(one(i, size=500, ts=clock.ms))
    loaded = sum(1 for s in log._segments.values() if s is not None)
    assert loaded == len(log._segments) > 3  # rolled here: every sealed one is loaded
    assert held(ppath) <= 8 + 4 * (loaded - 1)
    log.close()
    log = PartitionLog(ppath, config(**{"segment.bytes": 4096}), clock=clock)
    before = held(ppath)
    clock.ms += 3_600_000
    log.append(one(40, ts=clock.ms))  # runs retention (nothing to delete)
    assert log.enforce_retention() == 0 and log.size_bytes() > 0
    assert held(ppath) == before  # no sealed segment loaded for it
    assert sum(1 for s in log._segments.values() if s is not None) == 1
    log._check()
    log.close()
    assert held(ppath) == 0
