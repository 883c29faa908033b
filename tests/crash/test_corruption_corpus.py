"""Torn and corrupt files after an unclean shutdown (reliability plan T4, T5).

A golden data directory is built once: one partition with small segments
(``segment.bytes=4096``), so there are sealed segments and an active one with
several batches. Every case copies it, removes the clean-shutdown marker,
damages one thing, reopens (which runs recovery) and checks:

* every batch before the damage is intact (values decoded and compared);
* the damaged batch and everything after it is gone; the end offset is right;
* a new append continues at the next offset;
* ``streamlog.check`` reports ok afterwards;
* lookups at random offsets return the batch holding them (indexes rebuilt).

Damage inside a sealed segment is not a torn tail: nothing is truncated,
reading through it raises ``CorruptRecordError`` naming the file and byte, and
``check`` reports it without changing any file.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from dataclasses import dataclass

import pytest

import streamlog
from streamlog.storage._codec import HEADER_SIZE, aligned, prepare_batch
from tests._dirsnap import file_digests
from tests._helpers import flip

pytestmark = pytest.mark.crash

TOPIC = "t"
CONFIG = {"segment.bytes": 4096, "index.interval.bytes": 256}
N_BATCHES = 110
SEED = 20240601


@dataclass(frozen=True)
class Batch:
    base: int
    values: tuple[bytes, ...]
    keys: tuple[bytes | None, ...]
    timestamp: int

    @property
    def last(self) -> int:
        return self.base + len(self.values) - 1


@dataclass(frozen=True)
class Frame:
    segment: str  # file name of the .log
    position: int
    length: int
    batch_index: int


@dataclass(frozen=True)
class Golden:
    root: str
    batches: tuple[Batch, ...]
    frames: tuple[Frame, ...]  # one per batch, in order
    segments: tuple[str, ...]  # .log file names, in order

    @property
    def active(self) -> str:
        return self.segments[-1]

    def frames_in(self, segment: str) -> list[Frame]:
        return [f for f in self.frames if f.segment == segment]


def _batch_content(i: int, rng: random.Random) -> tuple[list[bytes], list[bytes | None]]:
    n = rng.randint(1, 4)
    values = [
        b"b%03d-r%d-" % (i, j) + bytes(rng.randrange(256) for _ in range(rng.randint(8, 40)))
        for j in range(n)
    ]
    keys: list[bytes | None] = [b"k%d" % j if (i + j) % 3 else None for j in range(n)]
    return values, keys


def _pdir(root: str) -> str:
    return os.path.join(root, "topics", TOPIC, "0")


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Golden:
    root = str(tmp_path_factory.mktemp("golden") / "data")
    rng = random.Random(SEED)
    batches: list[Batch] = []
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, CONFIG)
        p = log.partition(TOPIC, 0)
        for i in range(N_BATCHES):
            values, keys = _batch_content(i, rng)
            ts = 1_700_000_000_000 + i * 10
            r = p.append(prepare_batch(values, keys=keys, timestamps=ts), sync=(i % 10 == 0))
            assert r.base_offset == (batches[-1].last + 1 if batches else 0)
            batches.append(Batch(r.base_offset, tuple(values), tuple(keys), ts))
        frames: list[Frame] = []
        segs = p.segments()
        names = []
        for seg in segs:
            name = os.path.basename(seg.path)
            names.append(name)
            for pos, rb in seg.batches():
                assert rb is not None
                idx = next(k for k, b in enumerate(batches) if b.base == rb.base_offset)
                frames.append(Frame(name, pos, rb.size, idx))
    assert len(frames) == len(batches)
    g = Golden(root, tuple(batches), tuple(frames), tuple(names))
    assert len(g.segments) >= 3, "want several sealed segments"
    assert len(g.frames_in(g.active)) >= 3, "want several batches in the active segment"
    assert streamlog.check(root).ok
    return g


def _copy(golden: Golden, dst: str) -> str:
    shutil.copytree(golden.root, dst)
    marker = os.path.join(dst, "meta", "clean-shutdown")
    assert os.path.exists(marker)
    os.unlink(marker)  # an unclean shutdown: the next open recovers
    return dst


def _read_all(p: streamlog.storage._partition.PartitionLog, start: int = 0) -> list[tuple]:
    out = []
    off = start
    end = p.end_offset
    while off < end:
        batches = p.read(off, 1 << 16)
        assert batches, f"read({off}) returned nothing before the end {end}"
        for b in batches:
            for rec in b.records():
                if rec[0] >= off:
                    out.append(rec)
            off = b.last_offset + 1
    return out


def _expected_records(batches: tuple[Batch, ...] | list[Batch]) -> list[tuple]:
    out = []
    for b in batches:
        for j, (v, k) in enumerate(zip(b.values, b.keys)):
            out.append((b.base + j, b.timestamp, k, v))
    return out


def _verify(root: str, golden: Golden, keep: int, *, what: str, rng: random.Random) -> None:
    """After recovery: the first ``keep`` batches intact, nothing after, appends continue."""
    kept = list(golden.batches[:keep])
    end = kept[-1].last + 1 if kept else 0
    with streamlog.open(root) as log:
        p = log.partition(TOPIC, 0)
        assert p.end_offset == end, f"{what}: end offset {p.end_offset}, expected {end}"
        got = [(o, ts, k, v) for o, ts, k, v, _h in _read_all(p)]
        assert got == _expected_records(kept), f"{what}: records differ"
        # indexes agree with the log, and random lookups land on the right batch
        for seg in p.segments():
            oi = seg.offset_index
            actual = [oi.entry(i) for i in range(oi.count)]
            expected = [(rel, pos) for rel, pos, _ in seg.expected_index_entries(seg.tail)]
            assert actual == expected, f"{what}: index of {seg.path} not rebuilt"
        for off in rng.sample(range(end), min(end, 40)):
            b = p.read(off, 1)[0]
            assert b.base_offset <= off <= b.last_offset, (what, off, b)
            want = next(x for x in kept if x.base <= off <= x.last)
            assert b.base_offset == want.base
            assert [r[3] for r in b.records()] == list(want.values)
        # appends continue at the next offset
        r = p.append(prepare_batch([b"after-" + what.encode()]), sync=True)
        assert r.base_offset == end, f"{what}: append went to {r.base_offset}, expected {end}"
        assert p.read(end)[0].base_offset == end
        p._check()
    report = streamlog.check(root)
    assert report.ok, f"{what}: check after recovery:\n{report}"
    assert report.records == sum(len(b.values) for b in kept) + 1


def _log_path(root: str, name: str) -> str:
    return os.path.join(_pdir(root), name)


def _recovery_truncated(log_report: list, name: str) -> list[int]:
    return [pos for r in log_report for (path, pos) in r.truncated_at if path.endswith(name)]


# ---------------------------------------------------------------------------- torn tail


def test_truncate_at_every_byte_of_last_frame(golden: Golden, tmp_path) -> None:
    """The .log cut at every byte inside the last frame: that batch goes, the rest stays."""
    last = golden.frames[-1]
    rng = random.Random(SEED + 1)
    assert last.length > HEADER_SIZE
    cases = 0
    for k in range(last.length + 1):
        root = _copy(golden, str(tmp_path / f"cut{k}"))
        path = _log_path(root, last.segment)
        os.truncate(path, last.position + k)
        keep = len(golden.batches) if k == last.length else len(golden.batches) - 1
        _verify(root, golden, keep, what=f"truncate at +{k}", rng=rng)
        shutil.rmtree(root)
        cases += 1
    assert cases == last.length + 1


# byte positions in the frame (relative to its start) and XOR masks
_FLIP_POSITIONS = [0, 1, 2, 3, 4, 7, 11, 12, 13, 16, 24, 28, 32, 40, 48, 56, 60, 64, 67, 68]


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_bit_flips_in_last_frame(golden: Golden, tmp_path, mask: int) -> None:
    last = golden.frames[-1]
    rng = random.Random(SEED + mask)
    positions = sorted({*_FLIP_POSITIONS, last.length // 2, last.length - 1})
    for rel in positions:
        root = _copy(golden, str(tmp_path / f"flip{rel}"))
        path = _log_path(root, last.segment)
        flip(path, last.position + rel, mask)
        _verify(root, golden, len(golden.batches) - 1, what=f"xor {mask:#x} at +{rel}", rng=rng)
        shutil.rmtree(root)


def test_bit_flip_in_earlier_frame_of_active_segment_truncates_from_there(
    golden: Golden, tmp_path
) -> None:
    """A bad length word with nothing valid after it is a torn tail, wherever it is."""
    frames = golden.frames_in(golden.active)
    target = frames[-2]
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, target.segment)
    # a huge length: the frames after it can no longer be found
    flip(path, target.position + 3, 0x40)
    # the following (last) frame is also torn
    flip(path, frames[-1].position + 20, 0x01)
    _verify(root, golden, target.batch_index, what="two torn frames", rng=random.Random(3))


def test_unpublished_frame_with_zero_length_word(golden: Golden, tmp_path) -> None:
    """A writer killed before publishing (append.before_publish): body written, length 0.

    The frame does not exist; the stale bytes must not survive recovery, or a
    later, shorter frame written there would leave them after its end.
    """
    last = golden.frames[-1]
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, last.segment)
    with open(path, "r+b") as f:
        f.seek(last.position)
        f.write(b"\0\0\0\0")
    _verify(root, golden, len(golden.batches) - 1, what="unpublished", rng=random.Random(4))
    with open(path, "rb") as f:
        f.seek(last.position)
        rest = f.read()
    # what follows the new (short) batch must be zeros
    new_len = aligned(HEADER_SIZE + 20)
    assert rest[new_len + 64 :] == bytes(len(rest) - new_len - 64)


@pytest.mark.parametrize("size", [1, 3, 4, 7, 67, 68, 200, 1024])
def test_garbage_at_the_tail(golden: Golden, tmp_path, size: int) -> None:
    """Random bytes written in the preallocated zeros right after the last frame."""
    last = golden.frames[-1]
    rng = random.Random(SEED + size)
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, last.segment)
    garbage = bytearray(rng.randbytes(size))
    garbage[0] |= 0x01  # a non-zero first byte: the length word is not "end of data"
    with open(path, "r+b") as f:
        f.seek(last.position + aligned(last.length))
        f.write(garbage)
    _verify(root, golden, len(golden.batches), what=f"garbage {size}", rng=rng)


@pytest.mark.parametrize("size", [1, 100, 5000])
def test_garbage_appended_after_end_of_file(golden: Golden, tmp_path, size: int) -> None:
    rng = random.Random(SEED + 7 * size)
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, golden.active)
    with open(path, "ab") as f:
        f.write(rng.randbytes(size))
    _verify(root, golden, len(golden.batches), what=f"appended garbage {size}", rng=rng)


@pytest.mark.parametrize("extra", [0, 8, 4096, 1 << 20])
def test_zero_filled_tail(golden: Golden, tmp_path, extra: int) -> None:
    """Preallocated zeros after the data (the normal case), of any length."""
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, golden.active)
    os.truncate(path, os.path.getsize(path) + extra)
    _verify(root, golden, len(golden.batches), what=f"zeros +{extra}", rng=random.Random(extra))


def test_active_segment_without_preallocation(golden: Golden, tmp_path) -> None:
    """The file ends exactly after the last frame (no zeros at all)."""
    last = golden.frames[-1]
    root = _copy(golden, str(tmp_path / "d"))
    os.truncate(_log_path(root, last.segment), last.position + aligned(last.length))
    _verify(root, golden, len(golden.batches), what="no zeros", rng=random.Random(5))


# ---------------------------------------------------------------------------- indexes


def _index_damage(kind: str, path: str, rng: random.Random) -> None:
    if kind == "missing":
        os.unlink(path)
    elif kind == "empty":
        os.truncate(path, 0)
    elif kind == "truncated-odd":
        os.truncate(path, 13)
    elif kind == "random":
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.write(rng.randbytes(size))
    elif kind == "random-prefix":
        with open(path, "r+b") as f:
            f.write(rng.randbytes(24))
    elif kind == "zero":
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.write(bytes(size))
    elif kind == "non-monotonic":
        # KAFKA-3919: entries out of order (swap the first two 8- or 12-byte entries)
        w = 8 if path.endswith(".index") else 12
        with open(path, "r+b") as f:
            a = f.read(w)
            b = f.read(w)
            assert a.strip(b"\0") and b.strip(b"\0"), "want two entries to swap"
            f.seek(0)
            f.write(b + a)
    elif kind == "huge-position":
        with open(path, "r+b") as f:
            f.write(struct.pack("<II", 1, 0xFFFFFFF0) if path.endswith(".index") else bytes(12))
    else:
        raise AssertionError(kind)


_INDEX_KINDS = [
    "missing", "empty", "truncated-odd", "random", "random-prefix", "zero",
    "non-monotonic", "huge-position",
]


@pytest.mark.parametrize("which", ["index", "timeindex", "both"])
@pytest.mark.parametrize("kind", _INDEX_KINDS)
def test_damaged_index_of_active_segment(golden: Golden, tmp_path, kind: str, which: str) -> None:
    rng = random.Random(f"{kind}-{which}")
    root = _copy(golden, str(tmp_path / "d"))
    stem = _log_path(root, golden.active)[: -len(".log")]
    suffixes = {"index": [".index"], "timeindex": [".timeindex"], "both": [".index", ".timeindex"]}
    for suffix in suffixes[which]:
        if kind == "non-monotonic" and suffix == ".timeindex":
            # the active segment may have too few time entries to swap; use the offset index
            continue
        _index_damage(kind, stem + suffix, rng)
    _verify(root, golden, len(golden.batches), what=f"{kind} {which}", rng=rng)


@pytest.mark.parametrize("kind", ["missing", "random", "truncated-odd", "non-monotonic"])
def test_damaged_index_of_sealed_segment(golden: Golden, tmp_path, kind: str) -> None:
    """Indexes of sealed segments are disposable too: reads stay right, check ends ok."""
    rng = random.Random(f"sealed-{kind}")
    root = _copy(golden, str(tmp_path / "d"))
    stem = _log_path(root, golden.segments[0])[: -len(".log")]
    _index_damage(kind, stem + ".index", rng)
    if kind != "non-monotonic":
        _index_damage(kind, stem + ".timeindex", rng)
    _verify(root, golden, len(golden.batches), what=f"sealed {kind}", rng=rng)


def test_orphan_index_files_are_removed(golden: Golden, tmp_path) -> None:
    root = _copy(golden, str(tmp_path / "d"))
    pdir = _pdir(root)
    orphans = ["00000000000000099999.index", "00000000000000099999.timeindex"]
    for name in orphans:
        with open(os.path.join(pdir, name), "wb") as f:
            f.write(b"\x01" * 4096)
    assert any(pr.kind == "orphan" for pr in streamlog.check(root).problems)
    _verify(root, golden, len(golden.batches), what="orphans", rng=random.Random(6))
    for name in orphans:
        assert not os.path.exists(os.path.join(pdir, name))


def test_stale_temporary_files_are_removed(golden: Golden, tmp_path) -> None:
    root = _copy(golden, str(tmp_path / "d"))
    pdir = _pdir(root)
    active_stem = golden.active[: -len(".log")]
    stale = [
        active_stem + ".index.tmp",
        active_stem + ".timeindex.tmp",
        golden.segments[0] + ".deleted",
        "00000000000000000000.index.deleted",
        active_stem + ".log.swap",
        active_stem + ".log.cleaned",
    ]
    for name in stale:
        with open(os.path.join(pdir, name), "wb") as f:
            f.write(os.urandom(100))
    meta_tmp = os.path.join(root, "meta", "topics", f"{TOPIC}.json.tmp")
    with open(meta_tmp, "wb") as f:
        f.write(b'{"half": ')
    report = streamlog.check(root)
    assert sum(pr.kind == "temporary" for pr in report.problems) == len(stale) + 1
    _verify(root, golden, len(golden.batches), what="stale temporaries", rng=random.Random(7))
    for name in stale:
        assert not os.path.exists(os.path.join(pdir, name)), name
    assert not os.path.exists(meta_tmp)


def test_torn_tail_plus_damaged_indexes_plus_stale_files(golden: Golden, tmp_path) -> None:
    """Everything at once, as a crash might leave it."""
    last = golden.frames[-1]
    rng = random.Random(8)
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, last.segment)
    os.truncate(path, last.position + last.length // 2)
    stem = path[: -len(".log")]
    _index_damage("random", stem + ".index", rng)
    os.unlink(stem + ".timeindex")
    with open(stem + ".index.tmp", "wb") as f:
        f.write(b"junk")
    _verify(root, golden, len(golden.batches) - 1, what="all at once", rng=rng)


def test_recovery_runs_twice(golden: Golden, tmp_path) -> None:
    """Recovering an already recovered directory (crash right after recovery) changes nothing."""
    last = golden.frames[-1]
    root = _copy(golden, str(tmp_path / "d"))
    os.truncate(_log_path(root, last.segment), last.position + 30)
    with streamlog.open(root) as log:
        assert _recovery_truncated(log.recovery, last.segment) == [last.position]
    os.unlink(os.path.join(root, "meta", "clean-shutdown"))
    with streamlog.open(root) as log:
        assert all(r.clean for r in log.recovery), log.recovery
    _verify(root, golden, len(golden.batches) - 1, what="twice", rng=random.Random(9))


# ---------------------------------------------------------------------------- sealed damage


@pytest.mark.parametrize(
    "where",
    ["payload", "checksum", "length-word", "header-offset"],
)
def test_damage_inside_sealed_segment(golden: Golden, tmp_path, where: str) -> None:
    seg_name = golden.segments[1]
    frames = golden.frames_in(seg_name)
    target = frames[len(frames) // 2]
    rel = {"payload": target.length - 3, "checksum": 6, "length-word": 1, "header-offset": 17}[
        where
    ]
    root = _copy(golden, str(tmp_path / "d"))
    seg_path = _log_path(root, seg_name)
    flip(seg_path, target.position + rel, 0x10)

    # check() reports it, and changes nothing
    before = file_digests(root)
    report = streamlog.check(root)
    assert file_digests(root) == before, "check() changed files"
    corrupt = [pr for pr in report.problems if pr.kind == "corrupt"]
    assert corrupt, str(report)
    assert corrupt[0].path == seg_path and corrupt[0].position == target.position, str(report)

    bad = golden.batches[target.batch_index]
    with streamlog.open(root) as log:
        p = log.partition(TOPIC, 0)
        # nothing truncated
        assert p.end_offset == golden.batches[-1].last + 1
        sizes = {n: os.path.getsize(_log_path(root, n)) for n in golden.segments[:-1]}
        # batches before the damage are readable, one at a time
        off = 0
        while off < bad.base:
            b = p.read(off, 1)[0]
            want = golden.batches[next(i for i, x in enumerate(golden.batches) if x.base == off)]
            assert [r[3] for r in b.records()] == list(want.values)
            off = b.last_offset + 1
        assert off == bad.base
        # reading through the damaged batch raises, naming the file and the byte
        seg_first = golden.batches[frames[0].batch_index].base
        for start in (0, seg_first, bad.base, bad.last):
            with pytest.raises(streamlog.CorruptRecordError) as ei:
                _read_all(p, start)
            assert ei.value.path == seg_path
            assert ei.value.position == target.position
        # batches after it (in later segments) are still readable directly
        nxt = golden.batches[-1]
        assert [r[3] for r in p.read(nxt.base)[0].records()] == list(nxt.values)
        # appends continue
        r = p.append(prepare_batch([b"more"]), sync=True)
        assert r.base_offset == golden.batches[-1].last + 1
    assert {n: os.path.getsize(_log_path(root, n)) for n in golden.segments[:-1]} == sizes
    with open(seg_path, "rb") as f, open(_log_path(golden.root, seg_name), "rb") as g:
        a, b_ = f.read(), g.read()
    assert len(a) == len(b_)
    assert sum(x != y for x, y in zip(a, b_)) == 1, "only the flipped byte may differ"
    report = streamlog.check(root)
    # (check may also flag the index entry that points at the damaged batch)
    assert {pr.kind for pr in report.problems} <= {"corrupt", "index"}, str(report)
    assert [(pr.path, pr.position) for pr in report.problems if pr.kind == "corrupt"] == [
        (seg_path, target.position)
    ], str(report)


def test_damage_in_middle_of_active_segment_is_kept_and_reported(golden: Golden, tmp_path) -> None:
    """Valid batches after a bad one are not thrown away (no silent loss)."""
    frames = golden.frames_in(golden.active)
    target = frames[0]
    root = _copy(golden, str(tmp_path / "d"))
    path = _log_path(root, golden.active)
    flip(path, target.position + target.length - 1, 0x04)
    with streamlog.open(root) as log:
        p = log.partition(TOPIC, 0)
        assert p.end_offset == golden.batches[-1].last + 1
        with pytest.raises(streamlog.CorruptRecordError) as ei:
            _read_all(p, golden.batches[target.batch_index].base)
        assert ei.value.path == path and ei.value.position == target.position
        after = golden.batches[frames[-1].batch_index]
        assert [r[3] for r in p.read(after.base)[0].records()] == list(after.values)
        assert any(
            path == c[0] and c[1] == target.position for r in log.recovery for c in r.corrupt
        )
    report = streamlog.check(root)
    assert [(pr.kind, pr.position) for pr in report.problems] == [("corrupt", target.position)]
