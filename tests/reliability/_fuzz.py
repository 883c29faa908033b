"""Hostile bytes in every file streamlog reads (reliability plan T17, §7 "untrusted files").

Each case takes a real file (a segment, its indexes, a partition ``state``, a
topic's metadata JSON, ``streamlog.json``, a group's ``offsets.log``), mutates
it (bit flips, random runs, truncation, garbage appended or inserted, zeroed
runs, huge/zero/negative length words, and, for segments, header fields and
payload bytes changed *with the checksum recomputed*, so the decoder itself
gets the hostile input), then reads everything the way streamlog does.

The only acceptable outcomes are success or a streamlog error
(``CorruptRecordError``, ``MetadataCorruptError``, ``UnsupportedFormatError``,
``StorageIOError``...): any other exception is a finding, as is a value of the
wrong type returned to the caller. ``run_cases`` returns counts per outcome
and the findings (with the seed that reproduces each).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import xxhash

import streamlog
from streamlog import TopicPartition
from streamlog._config import TopicConfig
from streamlog.coordination._catalog import TopicCatalog
from streamlog.coordination._offsets import OffsetStore
from streamlog.errors import StreamlogError
from streamlog.storage import prepare_batch
from streamlog.storage._codec import COMPRESSION_ZSTD, HEADER_SIZE, aligned
from streamlog.storage._datadir import DataDir, read_json
from streamlog.storage._segment import Segment
from streamlog.storage._state import PartitionState

TOPIC = "t"
CONFIG = {"segment.bytes": 8192, "index.interval.bytes": 200}
BASE = 0


@dataclass
class Golden:
    """Bytes of real files, and where they came from."""

    root: str
    files: dict[str, bytes]  # kind -> content
    segment_base: int


@dataclass
class Results:
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)


def make_golden(root: str) -> Golden:
    rng = random.Random(7)
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, CONFIG)
        p = log.partition(TOPIC, 0)
        for i in range(60):
            n = rng.randint(1, 4)
            values = [
                bytes(rng.randrange(256) for _ in range(rng.randint(0, 60))) for _ in range(n)
            ]
            keys = [None if j % 2 else b"k%d" % j for j in range(n)]
            headers = [[("h", b"v"), ("h2", None)] if j % 3 == 0 else [] for j in range(n)]
            p.append(
                prepare_batch(
                    values,
                    keys,
                    [1000 + i * 10 + j for j in range(n)],
                    headers,
                    compression=COMPRESSION_ZSTD if i % 3 == 0 else 0,
                )
            )
        seg = p.segments()[0]
        base = seg.base_offset
        stem = seg.path[: -len(".log")]
        pdir = p.path
        with OffsetStore(root, "g") as store:
            for c in range(5):
                store.commit({TopicPartition(TOPIC, 0): streamlog.OffsetAndMetadata(c, f"m{c}")})
    files = {}
    for kind, path in (
        ("log", stem + ".log"),
        ("index", stem + ".index"),
        ("timeindex", stem + ".timeindex"),
        ("state", os.path.join(pdir, "state")),
        ("topic", os.path.join(root, "meta", "topics", f"{TOPIC}.json")),
        ("format", os.path.join(root, "streamlog.json")),
        ("offsets", os.path.join(root, "meta", "groups", "g", "offsets.log")),
    ):
        with open(path, "rb") as f:
            files[kind] = f.read()
    return Golden(root, files, base)


# ---------------------------------------------------------------- mutations


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(position, length) of the plausible frames of a segment, following length words."""
    out = []
    pos = 0
    while pos + HEADER_SIZE <= len(data):
        length = struct.unpack_from("<I", data, pos)[0]
        if length < HEADER_SIZE or pos + length > len(data):
            break
        out.append((pos, length))
        pos += aligned(length)
    return out


def _rechecksum(buf: bytearray) -> None:
    """Recompute every plausible frame's checksum (so mutations reach the decoder)."""
    for pos, length in _frames(bytes(buf)):
        body = bytes(buf[pos + 12 : pos + length])
        struct.pack_into("<Q", buf, pos + 4, xxhash.xxh3_64_intdigest(body, seed=length))


def mutate(kind: str, data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A random hostile variant of ``data``; returns (description, bytes)."""
    buf = bytearray(data)
    n = len(buf)
    choices = ["flip", "run", "truncate", "append", "insert", "zero", "length"]
    if kind == "log":
        choices += ["field", "field", "payload", "payload", "payload"]
    how = rng.choice(choices)
    if how == "flip" and n:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif how == "run" and n:
        at = rng.randrange(n)
        size = min(n - at, rng.randint(1, 64))
        buf[at : at + size] = rng.randbytes(size)
    elif how == "truncate":
        del buf[rng.randint(0, n) :]
    elif how == "append":
        buf += rng.randbytes(rng.randint(1, 300))
    elif how == "insert" and n:
        at = rng.randrange(n)
        buf[at:at] = rng.randbytes(rng.randint(1, 40))
    elif how == "zero" and n:
        at = rng.randrange(n)
        size = min(n - at, rng.randint(1, 256))
        buf[at : at + size] = bytes(size)
    elif how == "length" and n >= 4:
        frames = _frames(data) if kind == "log" else []
        at = rng.choice(frames)[0] if frames else rng.randrange(0, n - 3)
        value = rng.choice([0, 1, 67, 68, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, n * 2, 1 << 30])
        struct.pack_into("<I", buf, at, value)
    elif how == "field":
        frames = _frames(data)
        if frames:
            pos, _length = rng.choice(frames)
            # a header field after length and checksum: magic .. payload_size
            offset, fmt = rng.choice(
                [
                    (12, "<B"),
                    (13, "<B"),
                    (16, "<q"),
                    (24, "<I"),
                    (28, "<I"),
                    (32, "<q"),
                    (40, "<q"),
                    (48, "<q"),
                    (56, "<h"),
                    (60, "<i"),
                    (64, "<I"),
                ]
            )
            size = struct.calcsize(fmt)
            extremes = {
                1: [0, 1, 2, 0x20, 0x7F, 0xFF],
                2: [-1, 0, 0x7FFF, -0x8000],
                4: [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, -1 & 0xFFFFFFFF],
                8: [0, -1, 1 << 62, -(1 << 63), (1 << 63) - 1],
            }[size]
            value = rng.choice(extremes)
            if fmt in ("<b", "<h", "<i", "<q"):
                lo = -(1 << (8 * size - 1))
                value = ((value - lo) % (1 << (8 * size))) + lo
            else:
                value %= 1 << (8 * size)
            struct.pack_into(fmt, buf, pos + offset, value)
            _rechecksum(buf)
    elif how == "payload":
        frames = _frames(data)
        if frames:
            pos, length = rng.choice(frames)
            if length > HEADER_SIZE:
                for _ in range(rng.randint(1, 6)):
                    at = pos + HEADER_SIZE + rng.randrange(length - HEADER_SIZE)
                    buf[at] = rng.randrange(256)
                _rechecksum(buf)
    return how, bytes(buf)


# ---------------------------------------------------------------- exercising


def _check_record(rec: tuple[object, ...]) -> str | None:
    off, ts, key, value, headers = rec
    if type(off) is not int or type(ts) is not int:
        return f"offset/timestamp of type {type(off).__name__}/{type(ts).__name__}"
    if key is not None and type(key) is not bytes:
        return f"key of type {type(key).__name__}"
    if value is not None and type(value) is not bytes:
        return f"value of type {type(value).__name__}"
    assert isinstance(headers, tuple)
    for h in headers:
        if not (isinstance(h, tuple) and len(h) == 2 and type(h[0]) is str):
            return f"header {h!r:.40}"
        if h[1] is not None and type(h[1]) is not bytes:
            return f"header value of type {type(h[1]).__name__}"
    return None


def _exercise_segment(pdir: str, base: int) -> list[str]:
    """Read a (damaged) segment every way streamlog does; returns wrong-typed values."""
    wrong: list[str] = []
    seg = Segment(pdir, base, index_interval=200, max_index_bytes=1 << 20, writable=False)
    try:
        seg.load()
        res = seg.scan(0, base)
        for _pos, batch in seg.batches():
            if batch is None:
                continue
            try:
                for rec in batch.records(seg.path):
                    problem = _check_record(rec)
                    if problem:
                        wrong.append(problem)
            except StreamlogError:
                pass
        for off in (base, base + 1, base + 7, res.next_offset - 1, res.next_offset + 3):
            out: list[streamlog.storage.RecordBatch] = []
            try:
                seg.read(off, 1 << 20, res.end, out)
            except StreamlogError:
                pass
        seg.expected_index_entries(res.end)
        seg.indexes_sane()
    finally:
        seg.close()
    return wrong


def _exercise(kind: str, work: str, golden: Golden, data: bytes) -> list[str]:
    """Write ``data`` as the file of ``kind`` in ``work`` and read it; returns wrong types."""
    pdir = os.path.join(work, "p")
    os.makedirs(pdir, exist_ok=True)
    stem = os.path.join(pdir, f"{golden.segment_base:020d}")
    if kind in ("log", "index", "timeindex"):
        for k in ("log", "index", "timeindex"):
            with open(f"{stem}.{k}", "wb") as f:
                f.write(data if k == kind else golden.files[k])
        return _exercise_segment(pdir, golden.segment_base)
    if kind == "state":
        path = os.path.join(pdir, "state")
        with open(path, "wb") as f:
            f.write(data)
        st = PartitionState(path, writable=False)
        try:
            st.durable()
            st.hint()
            st.log_start()
        finally:
            st.close()
        return []
    if kind in ("topic", "format"):
        path = os.path.join(work, "meta.json")
        with open(path, "wb") as f:
            f.write(data)
        parsed = read_json(path)
        if kind == "topic":
            TopicCatalog._parse(path, TOPIC, parsed)
        else:
            DataDir._check_format(path)
        return []
    if kind == "offsets":
        d = os.path.join(work, "meta", "groups", "g")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "offsets.log"), "wb") as f:
            f.write(data)
        with OffsetStore(work, "g") as store:
            store.all()
        return []
    raise AssertionError(kind)


KINDS = ("log", "log", "log", "index", "timeindex", "state", "topic", "format", "offsets")


def run_cases(golden: Golden, work: str, n: int, seed: int) -> Results:
    """``n`` random cases; any exception that is not a streamlog error is a finding."""
    rng = random.Random(seed)
    results = Results()
    for _ in range(n):
        case_seed = rng.randrange(1 << 40)
        crng = random.Random(case_seed)
        kind = crng.choice(KINDS)
        how, data = mutate(kind, golden.files[kind], crng)
        if os.path.exists(work):
            shutil.rmtree(work)
        os.makedirs(work)
        results.cases += 1
        try:
            wrong = _exercise(kind, work, golden, data)
        except StreamlogError as e:
            results.outcomes[f"{kind}:{type(e).__name__}"] += 1
            continue
        except Exception as e:  # a finding: not a clear streamlog error
            tb = traceback.format_exception(type(e), e, e.__traceback__)[-3:]
            results.findings.append(
                f"{kind}/{how} seed {case_seed}: {type(e).__name__}: {e}\n{''.join(tb)}"
            )
            results.outcomes[f"{kind}:FINDING"] += 1
            continue
        if wrong:
            results.outcomes[f"{kind}:wrong-type"] += 1
            results.findings.append(f"{kind}/{how} seed {case_seed}: returned {wrong[0]}")
        else:
            results.outcomes[f"{kind}:ok"] += 1
    return results


def replay(golden: Golden, work: str, kind_seed: int) -> Callable[[], list[str]]:
    """A function that replays one case (for debugging a finding)."""
    crng = random.Random(kind_seed)
    kind = crng.choice(KINDS)
    _how, data = mutate(kind, golden.files[kind], crng)

    def go() -> list[str]:
        if os.path.exists(work):
            shutil.rmtree(work)
        os.makedirs(work)
        return _exercise(kind, work, golden, data)

    return go


__all__ = [
    "Golden",
    "Results",
    "make_golden",
    "mutate",
    "replay",
    "run_cases",
    "TopicConfig",
    "json",
]
