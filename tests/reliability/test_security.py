"""Security basics (reliability plan §7): modes, names, planted symlinks, no pickle, decode limits.

- The data directory and everything streamlog creates in it are 0700 (dirs)
  and 0600 (files), whatever the umask.
- Names are validated before any path is built: a bad name makes no system
  call on the data directory at all.
- Symbolic links planted inside the data directory by someone else (a topic
  or partition directory, ``topics`` or ``meta``, a segment, ``state``, the
  lock file, a topic's metadata file, a group's offsets log) are refused with
  a clear error naming the path, and never followed: nothing outside changes.
- ``pickle`` is imported nowhere in the package.
- The record decoder uses explicit msgpack limits (see ``test_hostile_input``).
"""

from __future__ import annotations

import ast
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition
from streamlog._fs import fs
from streamlog.coordination._offsets import OffsetStore
from streamlog.storage import prepare_batch
from tests._dirsnap import assert_unchanged, snapshot

from ._figures import record

SRC = os.path.dirname(streamlog.__file__)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_modes(tmp_path: os.PathLike[str], mask: int) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    with umask(mask):
        with streamlog.open(root) as log:
            log.create_topic("t", 2, {"segment.bytes": 4096})
            p = log.partition("t", 0)
            for _ in range(20):
                p.append(prepare_batch([b"x" * 400]), sync=True)
            log.create_partitions("t", 3)
            with OffsetStore(root, "g") as store:
                store.commit({TopicPartition("t", 0): OffsetAndMetadata(1, "")})
            log.delete_topic("t")
            log.create_topic("t", 1)
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, ""]:
            full = os.path.join(dirpath, name) if name else dirpath
            if stat.S_IMODE(os.lstat(full).st_mode) != 0o700:
                bad.append(f"{full}: {oct(stat.S_IMODE(os.lstat(full).st_mode))}")
        for name in filenames:
            full = os.path.join(dirpath, name)
            if stat.S_IMODE(os.lstat(full).st_mode) != 0o600:
                bad.append(f"{full}: {oct(stat.S_IMODE(os.lstat(full).st_mode))}")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- names before paths


class _Recorder:
    """Records every call of the I/O facade."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in (
            "open",
            "makedirs",
            "listdir",
            "read_file",
            "write_atomic",
            "unlink",
            "replace",
            "sync_dir",
        ):
            orig = getattr(fs, name)

            def wrapper(*args: Any, _orig: Any = orig, _name: str = name, **kw: Any) -> Any:
                self.calls.append(f"{_name} {args[:1]}")
                return _orig(*args, **kw)

            monkeypatch.setattr(fs, name, wrapper)


BAD = ["../x", "/etc", "a/b", "..", "", "x\0y", "é", "t" * 250]


@pytest.mark.parametrize("name", BAD, ids=repr)
def test_names_are_checked_before_any_path_is_built(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    with streamlog.open(root) as log:
        log.create_topic("t", 1)
        rec = _Recorder(monkeypatch)
        for call in (
            lambda: log.create_topic(name),
            lambda: log.delete_topic(name),
            lambda: log.describe_topic(name),
            lambda: log.partition(name, 0),
            lambda: log.create_partitions(name, 3),
            lambda: log.alter_topic_config(name, {"retention.ms": 5}),
            lambda: log.delete_records({TopicPartition(name, 0): 0}),
        ):
            with pytest.raises(streamlog.InvalidTopicError):
                call()
        with pytest.raises(streamlog.ConfigError):
            OffsetStore(root, name)
        assert rec.calls == [], rec.calls


# ---------------------------------------------------------------- planted symlinks


def _setup(root: str) -> None:
    with streamlog.open(root) as log:
        log.create_topic("t", 2)
        for q in range(2):
            log.partition("t", q).append(prepare_batch([b"a", b"b"]))
        with OffsetStore(root, "g") as store:
            store.commit({TopicPartition("t", 0): OffsetAndMetadata(1, "")})


def _outside(top: str, like: str | None = None) -> str:
    """A directory outside the data directory, holding a copy of ``like`` if given."""
    import shutil

    out = os.path.join(top, "outside")
    if like is not None:
        shutil.copytree(like, out, symlinks=True)
    else:
        os.makedirs(out)
        with open(os.path.join(out, "precious"), "wb") as f:
            f.write(b"keep me")
    return out


def _replace_with_link(path: str, target: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


def _use_everything(root: str) -> None:
    """Open, recover, read, append, commit, check: what a planted link must not redirect."""
    with streamlog.open(root) as log:
        for q in range(2):
            p = log.partition("t", q)
            p.read(p.log_start_offset)
            p.append(prepare_batch([b"c"]), sync=True)
        log.describe_topic("t")
        log.topics()
        with OffsetStore(root, "g") as store:
            store.commit({TopicPartition("t", 0): OffsetAndMetadata(2, "")})
            store.all()


# (what, where the link goes relative to the data directory, whether it is a directory)
PLANTED = [
    ("topic directory", "topics/t", True),
    ("partition directory", "topics/t/1", True),
    ("topics", "topics", True),
    ("meta", "meta", True),
    ("meta/topics", "meta/topics", True),
    ("group directory", "meta/groups/g", True),
    ("segment", "topics/t/1/00000000000000000000.log", False),
    ("offset index", "topics/t/1/00000000000000000000.index", False),
    ("partition state", "topics/t/1/state", False),
    ("append lock", "topics/t/1/.lock", False),
    ("topic metadata", "meta/topics/t.json", False),
    ("offsets log", "meta/groups/g/offsets.log", False),
    ("format file", "streamlog.json", False),
]


@pytest.mark.parametrize(("what", "rel", "is_dir"), PLANTED, ids=[p[0] for p in PLANTED])
@pytest.mark.parametrize("recovering", [False, True], ids=["clean", "recovering"])
def test_planted_symlink_is_refused(
    tmp_path: os.PathLike[str], what: str, rel: str, is_dir: bool, recovering: bool
) -> None:
    top = os.fspath(tmp_path)
    root = os.path.join(top, "data")
    _setup(root)
    victim = os.path.join(root, rel)
    if is_dir:
        target = _outside(top, like=victim)  # a look-alike: following it would "work"
    else:
        target = os.path.join(_outside(top), "precious")
        import shutil

        shutil.copyfile(victim, target)
    _replace_with_link(victim, target)
    if recovering:
        try:
            os.unlink(os.path.join(root, "meta", "clean-shutdown"))
        except FileNotFoundError:
            pass  # (a link planted on meta itself)
    outside = snapshot(target if is_dir else os.path.dirname(target))
    with pytest.raises(streamlog.StreamlogError) as info:
        _use_everything(root)
    err = info.value
    text = str(err)
    assert "ymbolic link" in text or getattr(err, "errno", None) == errno.ELOOP, (what, err)
    assert rel.split("/")[0] in text or os.path.basename(rel) in text, (what, text)
    assert_unchanged(outside, target if is_dir else os.path.dirname(target))
    assert os.path.islink(victim), f"{what}: the planted link was replaced or removed"
    record("security: planted symlinks refused", cases=1)


def test_no_pickle_in_the_package() -> None:
    found = []
    for dirpath, _dirs, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    mods = [node.module or ""]
                else:
                    continue
                if any(
                    m.split(".")[0] in ("pickle", "cPickle", "dill", "shelve", "marshal")
                    for m in mods
                ):
                    found.append(f"{path}:{node.lineno}")
    assert not found, found
