"""OffsetIndex and TimeIndex: fixed-width, memory-mapped, sparse, zero-terminated."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from streamlog.storage._index import OffsetIndex, TimeIndex


@pytest.fixture
def opath(tmp_path: Path) -> str:
    return str(tmp_path / "00000000000000000000.index")


@pytest.fixture
def tpath(tmp_path: Path) -> str:
    return str(tmp_path / "00000000000000000000.timeindex")


def entries(ix: OffsetIndex | TimeIndex) -> list[tuple[int, int]]:
    return [ix.entry(i) for i in range(ix.count)]


# --------------------------------------------------------------------- OffsetIndex


def test_offset_index_append_and_entries(opath: str) -> None:
    ix = OffsetIndex(opath, 1 << 20)
    assert ix.count == 0
    assert ix.last_position() == 0
    assert ix.floor(100) == -1
    ix.append(5, 400)
    ix.append(10, 900)
    ix.append(20, 1700)
    assert ix.count == 3
    assert entries(ix) == [(5, 400), (10, 900), (20, 1700)]
    assert ix.last_position() == 1700
    ix.close()


def test_offset_index_floor_and_lower(opath: str) -> None:
    ix = OffsetIndex(opath, 1 << 20)
    for rel, pos in [(5, 400), (10, 900), (20, 1700)]:
        ix.append(rel, pos)
    # floor: last entry with relative offset <= target
    assert [ix.floor(t) for t in (0, 4, 5, 9, 10, 19, 20, 10**6)] == [-1, -1, 0, 0, 1, 1, 2, 2]
    # lower: last entry with relative offset < target
    assert [ix.lower(t) for t in (0, 5, 6, 10, 11, 20, 21)] == [-1, -1, 0, 0, 1, 1, 2]
    ix.close()


def test_offset_index_floor_follows_appends_truncation_and_other_writers(opath: str) -> None:
    """floor bisects a copy of the relative offsets: it must see entries appended
    after a search (by this object or another one on the same file) and forget
    truncated ones."""
    ix = OffsetIndex(opath, 1 << 20)
    other = OffsetIndex(opath, 1 << 20)

    def brute(ix: OffsetIndex, t: int) -> int:
        return max((i for i, (rel, _pos) in enumerate(entries(ix)) if rel <= t), default=-1)

    for rel in range(10, 200, 10):
        ix.append(rel, rel * 8)
        assert [ix.floor(t) for t in range(0, 210, 5)] == [brute(ix, t) for t in range(0, 210, 5)]
    other.refresh()
    assert other.floor(95) == 8
    for rel in range(200, 300, 10):  # another writer appends: seen after refresh
        other.append(rel, rel * 8)
    ix.refresh()
    assert ix.floor(10**6) == ix.count - 1 == 28
    ix.truncate_entries(3)  # then rewritten with other entries at the same indexes
    for rel in (31, 32, 33):
        ix.append(rel, rel * 8)
    assert [ix.floor(t) for t in (9, 10, 30, 31, 32, 33, 99)] == [-1, 0, 2, 3, 4, 5, 5]
    other.close()
    ix.close()


def test_offset_index_file_format(opath: str) -> None:
    ix = OffsetIndex(opath, 1 << 20)
    ix.append(3, 0x1234)
    ix.append(0x01020304, 0x7FFFFFFF)
    ix.close()
    with open(opath, "rb") as f:
        data = f.read()
    assert data[:16] == struct.pack("<IIII", 3, 0x1234, 0x01020304, 0x7FFFFFFF)
    assert set(data[16:]) <= {0}


def test_reopen_discovers_count_from_zero_tail(opath: str) -> None:
    ix = OffsetIndex(opath, 1 << 20)
    for i in range(1, 38):
        ix.append(i, i * 100)
    size = os.path.getsize(opath)
    ix.close()
    assert size > 37 * 8  # preallocated zeros after the entries
    again = OffsetIndex(opath, 1 << 20)
    assert again.count == 37
    assert again.entry(36) == (37, 3700)
    assert again.last_position() == 3700
    again.append(38, 3800)
    again.close()
    assert OffsetIndex(opath, 1 << 20, writable=False).count == 38


@pytest.mark.parametrize("n", [0, 1, 2, 3, 511, 512])
def test_count_discovery_at_every_size(opath: str, n: int) -> None:
    ix = OffsetIndex(opath, 4096)
    for i in range(n):
        ix.append(i, 8 * (i + 1))
    ix.close()
    assert OffsetIndex(opath, 4096).count == n


def test_count_ends_where_the_position_is_zero(opath: str) -> None:
    # an entry with position 0 is the end marker (the first batch is never indexed);
    # a relative offset of 0 alone does not end it
    ix = OffsetIndex(opath, 1 << 20)
    for i in range(1, 11):
        ix.append(i, i * 10)
    ix.close()
    with open(opath, "r+b") as f:
        f.seek(6 * 8)
        f.write(struct.pack("<II", 77, 0) + bytes(3 * 8))  # entries 6..9 gone
        f.seek(2 * 8)
        f.write(struct.pack("<I", 0))  # entry 2: relative offset 0, position 30
    again = OffsetIndex(opath, 1 << 20)
    assert again.count == 6
    assert again.entry(2) == (0, 30)


def test_truncate_entries_zeroes_them(opath: str) -> None:
    ix = OffsetIndex(opath, 1 << 20)
    for i in range(1, 11):
        ix.append(i, i * 10)
    ix.truncate_entries(4)
    assert ix.count == 4
    ix.truncate_entries(7)  # no-op: cannot grow
    assert ix.count == 4
    ix.append(50, 500)
    assert entries(ix)[-1] == (50, 500)
    ix.close()
    assert entries(OffsetIndex(opath, 1 << 20)) == [(1, 10), (2, 20), (3, 30), (4, 40), (50, 500)]


def test_growth_and_cap(opath: str) -> None:
    ix = OffsetIndex(opath, 1 << 20)
    assert ix.size_bytes() == 0
    ix.append(1, 8)
    assert ix.size_bytes() == 4096  # grows in small steps, not to segment.index.bytes
    for i in range(2, 1500):
        ix.append(i, 8 * i)
    assert ix.count == 1499
    assert 1499 * 8 <= ix.size_bytes() <= 64 * 1024
    assert ix.size_bytes() == os.path.getsize(opath)
    assert ix.entry(1498) == (1499, 8 * 1499)
    assert ix.floor(1000) == 999
    ix.close()


def test_is_full_and_file_never_exceeds_max(opath: str) -> None:
    ix = OffsetIndex(opath, 100)  # 12 entries of 8 bytes
    assert ix.max_entries == 12
    for i in range(1, 12):
        ix.append(i, i)
        assert not ix.is_full
    ix.append(12, 12)
    assert ix.is_full
    assert os.path.getsize(opath) == 96
    ix.close()
    assert OffsetIndex(opath, 100).is_full


def test_refresh_sees_entries_appended_through_another_instance(opath: str) -> None:
    writer = OffsetIndex(opath, 1 << 20)
    writer.append(1, 100)
    reader = OffsetIndex(opath, 1 << 20, writable=False)
    other_writer = OffsetIndex(opath, 1 << 20)
    assert reader.count == other_writer.count == 1
    for i in range(2, 6):
        writer.append(i, 100 * i)
    assert reader.count == 1  # not until refresh
    reader.refresh()
    other_writer.refresh()
    assert reader.count == other_writer.count == 5
    assert reader.entry(4) == (5, 500)
    reader.refresh()
    assert reader.count == 5
    for ix in (writer, reader, other_writer):
        ix.close()


def test_one_refresh_sees_entries_beyond_the_readers_map(opath: str) -> None:
    # Regression: a reader whose map was 4 KiB saw only the first 512 entries
    # after the writer grew the file, until a second refresh.
    writer = OffsetIndex(opath, 1 << 20)
    writer.append(1, 100)
    reader = OffsetIndex(opath, 1 << 20, writable=False)
    for i in range(2, 2000):
        writer.append(i, 100 * i)
    reader.refresh()
    assert reader.count == 1999
    assert reader.floor(1500) == 1499
    writer.close()
    reader.close()


def test_refresh_from_empty_map(opath: str) -> None:
    writer = OffsetIndex(opath, 1 << 20)
    reader = OffsetIndex(opath, 1 << 20, writable=False)
    assert reader.count == 0 and reader.size_bytes() == 0
    writer.append(1, 64)
    reader.refresh()
    assert reader.count == 1 and reader.entry(0) == (1, 64)
    writer.close()
    reader.close()


def test_read_only_view_of_missing_index(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.index")
    ix = OffsetIndex(path, 1 << 20, writable=False)
    assert ix.count == 0
    assert ix.floor(10) == -1 and ix.lower(10) == -1
    assert ix.last_position() == 0
    assert not ix.is_full
    ix.refresh()
    assert ix.count == 0
    ix.close()
    assert not os.path.exists(path)
    tix = TimeIndex(str(tmp_path / "missing.timeindex"), 1 << 20, writable=False)
    assert tix.count == 0 and tix.last_timestamp() is None and tix.lower(5) == -1
    tix.close()


# --------------------------------------------------------------------- TimeIndex


def test_time_index_append_lower_last(tpath: str) -> None:
    ix = TimeIndex(tpath, 1 << 20)
    assert ix.last_timestamp() is None
    assert ix.lower(0) == -1
    ix.append(1000, 4)
    ix.append(2000, 9)
    ix.append(2500, 15)
    assert entries(ix) == [(1000, 4), (2000, 9), (2500, 15)]
    assert ix.last_timestamp() == 2500
    # lower: last entry whose timestamp is < the target
    assert [ix.lower(t) for t in (999, 1000, 1001, 2000, 2001, 2500, 2501)] == [
        -1, -1, 0, 0, 1, 1, 2,
    ]
    ix.close()


def test_time_index_valid_with_zero_and_negative_timestamps(tpath: str) -> None:
    # the validity marker is the relative offset, so a timestamp of 0 is a real entry
    ix = TimeIndex(tpath, 1 << 20)
    ix.append(-5, 1)
    ix.append(0, 2)
    ix.append(7, 3)
    ix.close()
    again = TimeIndex(tpath, 1 << 20)
    assert entries(again) == [(-5, 1), (0, 2), (7, 3)]
    assert again.lower(0) == 0
    again.close()


def test_time_index_file_format_and_is_full(tpath: str) -> None:
    ix = TimeIndex(tpath, 4096)
    assert ix.max_entries == 341  # 4096 // 12
    for i in range(1, 342):
        ix.append(1000 + i, i)
    assert ix.is_full
    ix.close()
    with open(tpath, "rb") as f:
        data = f.read()
    assert len(data) == 341 * 12
    assert struct.unpack_from("<qI", data, 0) == (1001, 1)
    assert struct.unpack_from("<qI", data, 340 * 12) == (1341, 341)
    assert TimeIndex(tpath, 4096).count == 341


def test_time_index_refresh_through_other_instance(tpath: str) -> None:
    writer = TimeIndex(tpath, 1 << 20)
    reader = TimeIndex(tpath, 1 << 20, writable=False)
    for i in range(1, 1200):
        writer.append(10 * i, i)
    reader.refresh()
    assert reader.count == 1199
    assert reader.last_timestamp() == 11990
    assert reader.lower(5000) == 498
    writer.close()
    reader.close()
