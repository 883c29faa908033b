"""Segment: one .log of frames written through a map, with its two indexes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamlog.errors import CorruptRecordError, UnsupportedFormatError
from streamlog.storage._codec import HEADER_SIZE, aligned, prepare_batch
from streamlog.storage._segment import SEAL_SIZE, Segment

BASE = 100


def make(directory: Path, *, base: int = BASE, interval: int = 0, index_bytes: int = 1 << 20,
         writable: bool = True, create: bool = True) -> Segment:
    return Segment(
        str(directory), base, index_interval=interval, max_index_bytes=index_bytes,
        writable=writable, create=create,
    )


def put(seg: Segment, values: list[bytes | None], ts: int | list[int] = 0) -> int:
    """Append one batch at the segment's next offset; returns its position."""
    pb = prepare_batch(values, timestamps=ts)
    base = seg.next_offset
    return seg.append(pb.frame(base), base + len(values) - 1, pb.max_timestamp)


def read_values(seg: Segment, offset: int, max_bytes: int = 1 << 30) -> list[tuple[int, bytes]]:
    out: list = []
    seg.read(offset, max_bytes, seg.tail, out)
    return [(r[0], r[3]) for b in out for r in b.records()]


def fill(seg: Segment, n: int, size: int = 50) -> list[int]:
    """n one-record batches with values b'<offset>' padded to ``size``, ts = offset."""
    positions = []
    for _ in range(n):
        off = seg.next_offset
        positions.append(put(seg, [str(off).encode().ljust(size, b".")], ts=off))
    return positions


def flip(path: str, pos: int, bit: int = 1) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ bit]))


# --------------------------------------------------------------------- append, read, scan


def test_new_segment_files_and_state(tmp_path: Path) -> None:
    seg = make(tmp_path)
    assert os.path.basename(seg.path) == "00000000000000000100.log"
    assert os.path.exists(seg.index_path) and os.path.exists(seg.timeindex_path)
    assert (seg.tail, seg.next_offset, seg.sealed, seg.size_bytes) == (0, BASE, False, 0)
    assert seg.allocated == os.path.getsize(seg.path) == 16 * 1024
    assert read_values(seg, BASE) == []
    seg._check()
    seg.close()


def test_append_positions_are_aligned_and_dense(tmp_path: Path) -> None:
    seg = make(tmp_path)
    p0 = put(seg, [b"a", b"b"], ts=10)
    p1 = put(seg, [b"c"], ts=5)
    p2 = put(seg, [b"d", b"e", b"f"], ts=[20, 30, 25])
    assert p0 == 0
    size0 = HEADER_SIZE + len(prepare_batch([b"a", b"b"], timestamps=10).payload)
    assert p1 == aligned(size0)
    assert p1 % 8 == 0 and p2 % 8 == 0 and p2 > p1
    assert seg.next_offset == BASE + 6
    assert seg.max_timestamp == 30
    assert seg.first_max_timestamp == 10
    assert read_values(seg, BASE) == [
        (100, b"a"), (101, b"b"), (102, b"c"), (103, b"d"), (104, b"e"), (105, b"f"),
    ]
    seg._check()
    seg.close()


def test_read_returns_whole_batches_holding_the_offset(tmp_path: Path) -> None:
    seg = make(tmp_path)
    put(seg, [b"a", b"b", b"c"])
    put(seg, [b"d", b"e"])
    out: list = []
    seg.read(BASE + 1, 1 << 20, seg.tail, out)
    assert [(b.base_offset, b.last_offset) for b in out] == [(100, 102), (103, 104)]
    out = []
    seg.read(BASE + 3, 1 << 20, seg.tail, out)
    assert [(b.base_offset, b.last_offset) for b in out] == [(103, 104)]
    seg.close()


def test_read_max_bytes_and_oversized_first_batch(tmp_path: Path) -> None:
    seg = make(tmp_path)
    fill(seg, 4, size=100)
    out: list = []
    used, done = seg.read(BASE, 1, seg.tail, out)
    assert len(out) == 1 and used == out[0].size and not done  # the first is always returned
    size = out[0].size
    out = []
    used, done = seg.read(BASE, 2 * size + size - 1, seg.tail, out)
    assert len(out) == 2 and used == 2 * size and not done
    out = []
    used, done = seg.read(BASE, 4 * size, seg.tail, out)
    assert len(out) == 4 and done
    seg.close()


def test_read_stops_at_end_position(tmp_path: Path) -> None:
    seg = make(tmp_path)
    positions = fill(seg, 3)
    out: list = []
    seg.read(BASE, 1 << 20, positions[2], out)  # a reader that knows only two frames
    assert [b.base_offset for b in out] == [100, 101]
    seg.close()


def test_scan_reports_tail_offset_and_max_timestamp(tmp_path: Path) -> None:
    seg = make(tmp_path)
    put(seg, [b"a"], ts=50)
    put(seg, [b"b", b"c"], ts=[10, 70])
    put(seg, [b"d"], ts=60)
    res = seg.scan(0, BASE)
    assert (res.end, res.next_offset, res.max_timestamp) == (seg.tail, 104, 70)
    assert not res.sealed and res.damage is None and res.corrupt == []
    seg.close()


def test_scan_finds_corruption_inside_and_damage_at_tail(tmp_path: Path) -> None:
    seg = make(tmp_path)
    positions = fill(seg, 4)
    seg.close()
    flip(seg.path, positions[1] + HEADER_SIZE + 3)  # payload of the second batch
    seg = make(tmp_path, create=False)
    seg.load()
    res = seg.scan(0, BASE)
    assert res.corrupt == [positions[1]]
    assert res.damage is None
    assert res.next_offset == BASE + 4
    with pytest.raises(CorruptRecordError) as info:
        read_values(seg, BASE + 1)
    assert info.value.position == positions[1]
    seg.close()
    flip(seg.path, positions[3] + 20)  # header of the last batch: a torn tail
    seg = make(tmp_path, create=False)
    seg.load()
    res = seg.scan(0, BASE)
    assert res.corrupt == [positions[1]]
    assert res.damage == positions[3]
    assert res.end == positions[3] and res.next_offset == BASE + 3
    seg.close()


def test_read_around_a_corrupt_batch(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=10**6)  # no index entries: every read scans from 0
    positions = fill(seg, 4)
    seg.close()
    flip(seg.path, positions[1] + HEADER_SIZE + 3)
    seg = make(tmp_path, interval=10**6, create=False)
    seg.load()
    v = [str(o).encode().ljust(50, b".") for o in range(BASE, BASE + 4)]
    # the intact batch before the damage is returned; the next read raises
    out: list = []
    assert seg.read(BASE, 1 << 20, seg.tail, out) == (out[0].size, False)
    assert [b.base_offset for b in out] == [BASE]
    with pytest.raises(CorruptRecordError) as info:
        read_values(seg, BASE + 1)
    assert info.value.position == positions[1]
    # a consumer that seeks past the damaged batch reads on
    assert read_values(seg, BASE + 2) == [(BASE + 2, v[2]), (BASE + 3, v[3])]
    assert read_values(seg, BASE + 3) == [(BASE + 3, v[3])]
    seg.close()


def test_damaged_last_batch_of_sealed_segment_raises(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=10**6)
    positions = fill(seg, 3)
    seg.seal(BASE + 3)
    seg.trim()
    seg.close()
    flip(seg.path, positions[2] + HEADER_SIZE + 1)
    seg = make(tmp_path, interval=10**6, create=False)
    seg.load()
    assert seg.sealed and seg.scan(0, BASE).corrupt == [positions[2]]
    with pytest.raises(CorruptRecordError):
        read_values(seg, BASE + 2)


def test_frame_with_unknown_magic_and_valid_checksum(tmp_path: Path) -> None:
    import xxhash

    seg = make(tmp_path)
    put(seg, [b"a"])
    seg.close()
    with open(seg.path, "r+b") as f:
        data = bytearray(f.read(HEADER_SIZE + 16))
        length = int.from_bytes(data[:4], "little")
        f.seek(0)
        body = bytearray(f.read(length))
        body[12] = 9
        body[4:12] = xxhash.xxh3_64_intdigest(bytes(body[12:]), seed=length).to_bytes(8, "little")
        f.seek(0)
        f.write(body)
    seg = make(tmp_path, create=False)
    with pytest.raises(UnsupportedFormatError):
        seg.frame_at(0)
    seg.close()


def test_file_grows_past_initial_allocation(tmp_path: Path) -> None:
    seg = make(tmp_path)
    fill(seg, 100, size=400)  # ~50 KiB
    assert seg.allocated > 16 * 1024
    assert seg.allocated == os.path.getsize(seg.path)
    assert seg.next_offset == BASE + 100
    assert read_values(seg, BASE + 99)[0][0] == BASE + 99
    seg._check()
    seg.close()


def test_would_overflow(tmp_path: Path) -> None:
    seg = make(tmp_path)
    assert not seg.would_overflow(10_000, 4096)  # an empty segment takes any batch
    put(seg, [b"x" * 100])
    tail = seg.tail
    assert not seg.would_overflow(4096 - tail, 4096)
    assert seg.would_overflow(4096 - tail + 1, 4096)
    seg.close()


# --------------------------------------------------------------------- indexes


def test_index_entries_follow_the_interval(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=200)
    positions = fill(seg, 12, size=50)
    entries = [seg.offset_index.entry(i) for i in range(seg.offset_index.count)]
    # first batch never indexed; then one when the batch starts > 200 bytes after the last
    expected, last = [], 0
    for i, pos in enumerate(positions):
        if pos - last > 200:
            expected.append((i, pos))
            last = pos
    assert entries == expected and len(expected) >= 3
    assert [seg.time_index.entry(i) for i in range(seg.time_index.count)] == [
        (BASE + rel, rel) for rel, _pos in expected
    ]
    assert entries == [(rel, pos) for rel, pos, _ts in seg.expected_index_entries(seg.tail)]
    seg._check()
    seg.close()


def test_time_index_only_for_increasing_max_timestamp(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0)
    for ts in (50, 40, 60, 60, 55, 70):
        put(seg, [b"v"], ts=ts)
    assert [seg.offset_index.entry(i)[0] for i in range(seg.offset_index.count)] == [1, 2, 3, 4, 5]
    time_entries = [seg.time_index.entry(i) for i in range(seg.time_index.count)]
    assert time_entries == [(50, 1), (60, 2), (70, 5)]
    seg._check()
    seg.close()


def test_index_full(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0, index_bytes=4096)
    fill(seg, 342, size=10)  # increasing timestamps: the time index (341 entries) fills first
    assert seg.time_index.count == 341
    assert seg.index_full
    seg.close()
    os.makedirs(tmp_path / "const")
    seg = make(tmp_path / "const", interval=0, index_bytes=4096)
    for _ in range(512):
        put(seg, [b"v"], ts=1)
    assert not seg.index_full
    put(seg, [b"v"], ts=1)
    assert seg.offset_index.count == 512 and seg.index_full
    put(seg, [b"v"], ts=1)  # the segment itself does not refuse; the partition rolls
    assert seg.offset_index.count == 512
    seg._check()
    seg.close()


def test_position_for_uses_the_index(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 20)
    for rel in range(20):
        # just after the indexed batch before it (every batch but the first is
        # indexed here), or the start when no entry is below
        assert seg.position_for(BASE + rel) == (positions[rel] if rel >= 2 else 0)
    seg.close()


def test_wrong_index_entry_is_rebuilt_on_read(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 10)
    seg.offset_index._mm[5 * 8 + 4 : 5 * 8 + 8] = (positions[3]).to_bytes(4, "little")  # type: ignore[index]
    assert read_values(seg, BASE + 7)[0] == (BASE + 7, b"107".ljust(50, b"."))
    assert [seg.offset_index.entry(i)[1] for i in range(seg.offset_index.count)] == positions[1:]
    seg._check()
    seg.close()


def test_read_checks_the_indexed_frame_by_its_header_only(tmp_path: Path) -> None:
    """A random read verifies the batch it returns, not the indexed one before it:
    damage inside that one's payload is not what was asked for."""
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 10)
    seg.close()
    flip(seg.path, positions[5] + HEADER_SIZE + 3)  # payload of the batch indexed for 106
    seg = make(tmp_path, interval=0, create=False)
    seg.load()
    entries_before = [seg.offset_index.entry(i) for i in range(seg.offset_index.count)]
    assert read_values(seg, BASE + 6) == [(o, str(o).encode().ljust(50, b".")) for o in
                                          range(BASE + 6, BASE + 10)]
    assert [seg.offset_index.entry(i) for i in range(seg.offset_index.count)] == entries_before
    with pytest.raises(CorruptRecordError):
        read_values(seg, BASE + 5)  # the damaged batch itself is still refused
    seg.close()


def test_read_after_an_indexed_frame_with_a_wrong_length_checks_it(tmp_path: Path) -> None:
    """An indexed frame whose length word is damaged points the read at a place that
    is no frame: the read then checks the indexed frame's checksum (and rebuilds the
    indexes), so the outcome is the one a read verifying every frame gives: the
    damaged frame hides where the next one starts, and reading past it raises."""
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 10)
    seg.close()
    with open(seg.path, "r+b") as f:  # batch 105's length, 8 bytes longer (aligned)
        f.seek(positions[5])
        length = int.from_bytes(f.read(4), "little")
        f.seek(positions[5])
        f.write((length + 8).to_bytes(4, "little"))
    seg = make(tmp_path, interval=0, create=False)
    seg.load()
    with pytest.raises(CorruptRecordError) as info:
        read_values(seg, BASE + 6)
    assert info.value.position == positions[5]
    assert read_values(seg, BASE + 4) == [(BASE + 4, b"104".ljust(50, b"."))]
    seg.close()


# --------------------------------------------------------------------- load


def test_load_unsealed_segment_from_last_index_entry(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=100)
    fill(seg, 30)
    want = (seg.tail, seg.next_offset, seg.max_timestamp, seg.first_max_timestamp)
    seg.close()
    again = make(tmp_path, interval=100, create=False)
    res = again.load()
    assert (again.tail, again.next_offset, again.max_timestamp, again.first_max_timestamp) == want
    assert (res.end, res.next_offset) == want[:2]
    assert not again.sealed
    again._check()
    again.close()


def test_load_rebuilds_when_last_index_entry_is_wrong(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 10)
    seg.close()
    with open(seg.index_path, "r+b") as f:
        f.seek(8 * 8 + 4)
        f.write((positions[2]).to_bytes(4, "little"))  # last entry names the wrong batch
    again = make(tmp_path, interval=0, create=False)
    again.load()
    assert (again.tail, again.next_offset) == (seg.tail, BASE + 10)
    oi = again.offset_index
    assert [oi.entry(i)[1] for i in range(oi.count)] == positions[1:]
    again._check()
    again.close()


def test_seal_trim_and_load_via_the_seal(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=100)
    fill(seg, 10)
    put(seg, [b"late"], ts=5)  # max timestamp stays 9
    tail, nxt = seg.tail, seg.next_offset
    seg.seal(nxt + 5)  # a gap: the next segment starts later
    seg.trim()
    assert os.path.getsize(seg.path) == tail + SEAL_SIZE
    assert seg.sealed and seg.next_base == nxt + 5 and seg.size_bytes == tail + SEAL_SIZE
    seg._check()
    seg.close()
    # remove the indexes: a sealed segment loads from its seal alone
    os.unlink(seg.index_path)
    os.unlink(seg.timeindex_path)
    again = make(tmp_path, interval=100, create=False, writable=False)
    res = again.load()
    assert res.sealed and res.next_base == nxt + 5
    assert again.sealed and again.tail == tail and again.next_base == nxt + 5
    assert again.next_offset == nxt + 5
    assert again.max_timestamp == BASE + 9
    assert again.size_bytes == tail + SEAL_SIZE  # frames, then the seal (what retention counts)
    assert again.refresh() is None
    assert read_values(again, BASE + 10) == [(BASE + 10, b"late")]
    out: list = []
    assert again.read(BASE, 1 << 20, again.tail, out)[1] is True
    assert len(out) == 11
    again.close()


def test_untrimmed_seal_found_by_scan(tmp_path: Path) -> None:
    seg = make(tmp_path)
    fill(seg, 3)
    seg.seal(BASE + 3)  # crash before trim
    seg.close()
    again = make(tmp_path, create=False)
    res = again.load()
    assert res.sealed and again.sealed and again.next_base == BASE + 3
    again._check()
    again.close()


# --------------------------------------------------------------------- refresh (other processes)


def test_refresh_follows_frames_appended_by_another_instance(tmp_path: Path) -> None:
    writer = make(tmp_path, interval=0)
    reader = make(tmp_path, interval=0, create=False, writable=False)
    reader.load()
    assert reader.refresh() is None
    fill(writer, 3)
    res = reader.refresh()
    assert res is not None and res.next_offset == BASE + 3
    assert (reader.tail, reader.next_offset) == (writer.tail, BASE + 3)
    assert reader.max_timestamp == BASE + 2
    assert reader.first_max_timestamp == BASE
    assert reader.offset_index.count == writer.offset_index.count == 2
    assert reader.refresh() is None
    # past the reader's map: the writer grew the file
    fill(writer, 200, size=300)
    assert writer.allocated > reader.allocated
    reader.refresh()
    assert reader.next_offset == BASE + 203 and reader.tail == writer.tail
    assert read_values(reader, BASE + 202)[0][0] == BASE + 202
    writer.seal(BASE + 203)
    writer.trim()
    res = reader.refresh()
    assert res is not None and res.sealed and reader.sealed and reader.next_base == BASE + 203
    reader._check()
    writer.close()
    reader.close()


def test_second_writer_indexes_after_the_first_writers_entries(tmp_path: Path) -> None:
    # Regression: a writer that learned of another writer's frames kept its stale
    # index count and wrote its entries over the other's, out of order.
    a = make(tmp_path, interval=0)
    b = make(tmp_path, interval=0, create=False)
    b.load()
    fill(a, 5)
    assert b.refresh() is not None
    put(b, [b"from b"], ts=1000)
    put(b, [b"from b"], ts=1001)
    a.refresh()
    put(a, [b"from a"], ts=1002)
    assert [b.offset_index.entry(i)[0] for i in range(b.offset_index.count)] == [1, 2, 3, 4, 5, 6]
    a._check()
    b.refresh()
    b._check()
    assert [a.offset_index.entry(i)[0] for i in range(a.offset_index.count)] == list(range(1, 8))
    assert [a.time_index.entry(i)[0] for i in range(a.time_index.count)] == [
        101, 102, 103, 104, 1000, 1001, 1002,
    ]
    a.close()
    b.close()


# --------------------------------------------------------------------- rebuild, truncate, check


@pytest.mark.parametrize("exclusive", [True, False])
def test_rebuild_indexes(tmp_path: Path, exclusive: bool) -> None:
    seg = make(tmp_path, interval=150)
    fill(seg, 30)
    want_o = [seg.offset_index.entry(i) for i in range(seg.offset_index.count)]
    want_t = [seg.time_index.entry(i) for i in range(seg.time_index.count)]
    assert len(want_o) > 3
    # damage both indexes
    seg.offset_index.truncate_entries(0)
    seg.offset_index.append(3, 8)
    seg.time_index.truncate_entries(1)
    old_inode = os.stat(seg.index_path).st_ino
    res = seg.rebuild_indexes(exclusive=exclusive)
    assert (res.end, res.next_offset) == (seg.tail, BASE + 30)
    assert [seg.offset_index.entry(i) for i in range(seg.offset_index.count)] == want_o
    assert [seg.time_index.entry(i) for i in range(seg.time_index.count)] == want_t
    assert (os.stat(seg.index_path).st_ino == old_inode) is exclusive
    assert not os.path.exists(seg.index_path + ".tmp")
    seg._check()
    seg.close()
    again = make(tmp_path, interval=150, create=False)
    assert [again.offset_index.entry(i) for i in range(again.offset_index.count)] == want_o
    again.close()


def test_truncate_to_drops_frames_and_their_index_entries(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 10)
    dropped = seg.truncate_to(positions[6])
    assert dropped == 16 * 1024 - positions[6]
    assert os.path.getsize(seg.path) == 16 * 1024  # reallocated, zeros from the cut
    assert [seg.offset_index.entry(i)[0] for i in range(seg.offset_index.count)] == [1, 2, 3, 4, 5]
    assert [seg.time_index.entry(i)[1] for i in range(seg.time_index.count)] == [1, 2, 3, 4, 5]
    res = seg.scan(0, BASE)
    assert (res.end, res.next_offset) == (positions[6], BASE + 6)
    seg.rebuild_indexes(exclusive=True)
    assert seg.tail == positions[6] and seg.next_offset == BASE + 6
    seg._check()
    put(seg, [b"new"], ts=1)
    assert read_values(seg, BASE + 6) == [(BASE + 6, b"new")]
    assert seg.truncate_to(10**9) == 0
    seg.close()


def test_truncate_to_unseals(tmp_path: Path) -> None:
    seg = make(tmp_path)
    fill(seg, 2)
    tail = seg.tail
    seg.seal(BASE + 2)
    seg.trim()
    seg.truncate_to(tail)
    assert not seg.sealed and seg.next_base is None
    seg.rebuild_indexes(exclusive=True)
    assert not seg.sealed and seg.tail == tail
    seg._check()
    seg.close()


def test_check_catches_broken_invariants(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=0)
    positions = fill(seg, 5)
    seg._check()
    assert seg._mm is not None
    seg._mm[seg.tail + 5] = 1  # garbage after the tail
    with pytest.raises(AssertionError):
        seg._check()
    seg._mm[seg.tail + 5] = 0
    seg._check()
    good = bytes(seg.offset_index._mm[8:16])  # type: ignore[index]
    seg.offset_index._mm[8:16] = (7).to_bytes(4, "little") + positions[1].to_bytes(4, "little")  # type: ignore[index]
    with pytest.raises(AssertionError):
        seg._check()
    seg.offset_index._mm[8:16] = good  # type: ignore[index]
    seg._check()
    seg.tail -= 8
    with pytest.raises(AssertionError):
        seg._check()
    seg.close()


# --------------------------------------------------------------------- descriptors


def held(directory: Path) -> dict[str, int]:
    """Descriptors this process holds on files of ``directory``, by file name."""
    out: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if os.path.dirname(target) == str(directory):
            name = os.path.basename(target)
            out[name] = out.get(name, 0) + 1
    return out


def test_empty_indexes_hold_no_descriptor_until_entries_appear(tmp_path: Path) -> None:
    """An index empty when opened keeps no descriptor (every small segment's indexes are
    empty: the first batch is never indexed). It opens its file when it grows, or
    when a refresh sees entries another process (here: another instance) wrote."""
    seg = make(tmp_path, interval=100)
    reader = make(tmp_path, create=False)
    reader.load()
    assert held(tmp_path) == {"00000000000000000100.log": 4}  # two fds + two maps
    fill(seg, 6, size=200)  # indexed from the second batch on
    assert seg.offset_index.count > 0
    assert held(tmp_path)["00000000000000000100.index"] == 2  # ours: fd + map
    reader.refresh()
    assert reader.offset_index.count == seg.offset_index.count
    assert held(tmp_path)["00000000000000000100.index"] == 4  # and the reader's
    assert read_values(reader, BASE + 5) == [(BASE + 5, read_values(seg, BASE + 5)[0][1])]
    seg._check()
    reader._check()
    seg.close()
    reader.close()
    assert held(tmp_path) == {}


def test_sealed_segment_indexes_keep_their_maps_not_their_descriptors(tmp_path: Path) -> None:
    seg = make(tmp_path, interval=100)
    fill(seg, 6, size=200)
    seg.seal(seg.next_offset)
    seg.trim()
    seg.sync_all()
    seg.freeze_indexes()  # (what the flush of a sealed segment does once it synced it)
    counts = held(tmp_path)
    assert counts["00000000000000000100.index"] == 1  # the map only
    assert counts["00000000000000000100.timeindex"] == 1
    seg.sync_all()  # again: through a descriptor opened for the sync
    assert held(tmp_path) == counts
    assert read_values(seg, BASE + 5)[0][0] == BASE + 5
    seg._check()
    again = make(tmp_path, create=False)
    again.load()  # a sealed segment loaded from disk: frozen too
    assert held(tmp_path)["00000000000000000100.index"] == 2
    assert again.indexes_sane()
    # recovery (exclusive use of the directory) rewrites a frozen index in place
    again.rebuild_indexes(exclusive=True)
    again._check()
    for path in (again.index_path, again.timeindex_path):
        os.unlink(path)
    again.sync_all()  # a frozen index whose file is gone has nothing to sync
    seg.close()
    again.close()
    assert held(tmp_path) == {}


def test_cutting_a_seal_takes_the_index_descriptors_again(tmp_path: Path) -> None:
    """Recovery cuts a seal (``truncate_to``): the segment may take appends again, so its
    indexes must see entries others append and sync their own: no longer frozen."""
    seg = make(tmp_path, interval=100)
    fill(seg, 6, size=200)
    tail = seg.tail
    seg.seal(seg.next_offset)
    seg.close()
    again = make(tmp_path, interval=100, create=False)
    again.load()  # sealed: frozen
    assert held(tmp_path)["00000000000000000100.index"] == 1  # the map
    again.truncate_to(tail)
    assert not again.sealed
    assert held(tmp_path)["00000000000000000100.index"] == 2  # and its descriptor again
    fill(again, 6, size=200)
    again.sync_all()
    again._check()
    again.close()
