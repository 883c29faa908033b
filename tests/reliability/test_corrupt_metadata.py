"""Corrupt metadata files (reliability plan T6), the cases other suites do not cover.

``tests/test_bad_input.py`` covers the topic catalog JSON (empty, truncated,
invalid UTF-8, wrong shape and types, unknown version; through every call,
in another handle and during recovery) and ``streamlog.json``;
``tests/unit/test_offsets.py`` covers ``offsets.log`` at the store level;
``tests/crash/test_corruption_corpus.py`` covers segments, indexes and stale
temporary files. Here:

- the partition ``state`` file: its durable fields are checksummed and a bad
  checksum means "unknown" (the log start is taken from the first segment and
  recovery scans everything), so garbage, zeros, a short or empty file are
  survived, with every record intact and the segment files byte-identical;
  a *newer* version is refused with ``UnsupportedFormatError`` naming the file
  (docs/format.md), changing nothing;
- ``offsets.log`` and the topic catalog through the public handle and a
  consumer: ``MetadataCorruptError`` naming the file, nothing changed (sha256).
"""

from __future__ import annotations

import hashlib
import os
import struct

import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.storage import prepare_batch
from tests._dirsnap import assert_unchanged, snapshot

from ._figures import record


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _data_files(root: str) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(os.path.join(root, "topics")):
        for name in files:
            if name.endswith(".log"):
                full = os.path.join(dirpath, name)
                out[os.path.relpath(full, root)] = _sha(full)
    return out


def _populated(root: str) -> list[bytes]:
    values = [b"v%03d" % i for i in range(60)]
    with streamlog.open(root) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096})
        p = log.partition("t", 0)
        for i in range(0, 60, 3):
            p.append(prepare_batch([v + b"x" * 200 for v in values[i : i + 3]]))
        p.delete_records(4)
        assert len(p.segments()) >= 3
    return [v + b"x" * 200 for v in values]


def _state_path(root: str) -> str:
    return os.path.join(root, "topics", "t", "0", "state")


def _rewrite(path: str, fn: object) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    assert callable(fn)
    data = fn(data)
    with open(path, "wb") as f:
        f.write(bytes(data))


STATE_SURVIVABLE = {
    "empty": lambda b: bytearray(),
    "truncated": lambda b: b[:10],
    "zeros": lambda b: bytearray(len(b)),
    "garbage": lambda b: bytearray(os.urandom(len(b))),
    "bad-checksum": lambda b: b[:48] + bytearray(8) + b[56:],
    "wrong-magic": lambda b: bytearray(b"JUNK") + b[4:],
    # the log start field damaged (its checksum no longer matches): before the fix it was
    # used unchecked, hiding every record (and retention would have deleted them all)
    "huge-start": lambda b: b[:32] + bytearray(struct.pack("<q", 1 << 62)) + b[40:],
}


@pytest.mark.parametrize("case", sorted(STATE_SURVIVABLE))
@pytest.mark.parametrize("clean", [True, False], ids=["clean", "unclean"])
def test_damaged_state_file_is_survived(tmp_path: os.PathLike[str], case: str, clean: bool) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    values = _populated(root)
    before = _data_files(root)
    _rewrite(_state_path(root), STATE_SURVIVABLE[case])
    if not clean:
        os.unlink(os.path.join(root, "meta", "clean-shutdown"))
    with streamlog.open(root) as log:
        p = log.partition("t", 0)
        start = p.log_start_offset
        # the log start falls back to the first segment (never past data), or stays
        assert start <= 4
        got = [r[3] for b in p.read(start, 1 << 30) for r in b.records() if r[0] >= start]
        assert got == values[start:]
    assert _data_files(root) == before, "segment files changed"
    with streamlog.open(root) as log:
        log.partition("t", 0).append(prepare_batch([b"after"]), sync=True)
    assert streamlog.check(root).ok
    record("T6 corrupt metadata", cases=1, survived=1)


@pytest.mark.parametrize("version", [2, 99, 0xFFFFFFFF])
def test_newer_state_version_is_refused(tmp_path: os.PathLike[str], version: int) -> None:
    """docs/format.md: a reader refuses a newer version of the state file. Before the
    fix the version was never read: a future layout would have been misread."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _populated(root)
    path = _state_path(root)
    _rewrite(path, lambda b: b[:4] + bytearray(struct.pack("<I", version)) + b[8:])
    before = snapshot(os.path.dirname(root))
    with streamlog.open(root) as log:
        with pytest.raises(streamlog.UnsupportedFormatError) as info:
            log.partition("t", 0)
        assert info.value.path == path
    before.pop(os.path.join("data", "meta", "clean-shutdown"), None)
    after = snapshot(os.path.dirname(root))
    after.pop(os.path.join("data", "meta", "clean-shutdown"), None)
    assert after == before, "files changed"
    record("T6 corrupt metadata", cases=1, refused=1)


def test_corrupt_offsets_through_a_consumer(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    _populated(root)
    with streamlog.open(root) as log:
        c = log.consumer(group_id="g", enable_auto_commit=False)
        c.assign([TopicPartition("t", 0)])
        c.commit({TopicPartition("t", 0): streamlog.OffsetAndMetadata(7, "")})
        c.close()
    path = os.path.join(root, "meta", "groups", "g", "offsets.log")
    for case, fn in {
        "empty": lambda b: bytearray(),
        "bad-magic": lambda b: bytearray(b"JUNK") + b[4:],
        "newer": lambda b: b[:4] + bytearray(struct.pack("<I", 2)) + b[8:],
    }.items():
        with open(path, "rb") as f:
            original = f.read()
        _rewrite(path, fn)
        before = snapshot(root)
        with streamlog.open(root) as log:
            c = log.consumer(group_id="g", enable_auto_commit=False)
            try:
                c.assign([TopicPartition("t", 0)])
                with pytest.raises(
                    (streamlog.MetadataCorruptError, streamlog.UnsupportedFormatError)
                ) as info:
                    c.committed(TopicPartition("t", 0))
                err = info.value
                assert isinstance(
                    err, streamlog.MetadataCorruptError | streamlog.UnsupportedFormatError
                )
                assert err.path == path, case
            finally:
                c.close()
        after = snapshot(root)
        for s in (before, after):
            s.pop(os.path.join("meta", "clean-shutdown"), None)
        assert after == before, f"{case}: files changed"
        with open(path, "wb") as f:
            f.write(original)
        record("T6 corrupt metadata", cases=1, refused=1)


def test_corrupt_topic_metadata_leaves_data_identical(tmp_path: os.PathLike[str]) -> None:
    """Every call on a topic whose metadata is corrupt raises, and the segments of that
    topic are byte-identical afterwards (sha256)."""
    root = os.path.join(os.fspath(tmp_path), "data")
    _populated(root)
    before = _data_files(root)
    meta = os.path.join(root, "meta", "topics", "t.json")
    with open(meta, "wb") as f:
        f.write(b'{"version": 7}')
    os.unlink(os.path.join(root, "meta", "clean-shutdown"))  # and recovery must not touch it
    with pytest.raises(streamlog.MetadataCorruptError) as info:
        streamlog.open(root)
    assert info.value.path == meta
    assert _data_files(root) == before
    snap = snapshot(root)
    with pytest.raises(streamlog.MetadataCorruptError):
        streamlog.open(root)
    assert_unchanged(snap, root)
    record("T6 corrupt metadata", cases=1, refused=1)
