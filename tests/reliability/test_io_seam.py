"""Every storage system call goes through the I/O facade ``streamlog._fs.fs``.

Fault injection and the power-cut model only see what passes through the
facade, so a call that bypasses it is a hole in every other suite.

- Statically: the storage layer (``storage/*.py``) calls no ``os``/``mmap``
  function that opens, writes, syncs, allocates, maps, renames, unlinks,
  truncates, creates or closes a file; only ``_fs.py`` does (reads of
  metadata such as ``stat``, ``listdir`` via ``scandir`` and ``flock`` are
  allowed). The rest of the package is reported (``_log.py``,
  ``coordination/``, ``clients/`` belong to others).
- Dynamically: an audit hook watches a workload (create, append, roll,
  retention, commit, recovery, close) and records every ``open``, ``mmap``,
  ``rename``, ``remove``, ``truncate`` and ``mkdir`` of a path in the data
  directory made while no facade call is running; none may come from the
  storage layer.
- The crash points named in the source are exactly the ones
  ``docs/reliability.md`` lists.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition
from streamlog._fs import fs
from streamlog.coordination._offsets import OffsetStore
from streamlog.storage import prepare_batch

from ._faults import METHODS
from ._figures import record

SRC = os.path.dirname(streamlog.__file__)
# next to the tests, not the package: CI installs the package into site-packages
DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "reliability.md")

# os/mmap functions that change files or descriptors: only _fs.py may call them
FORBIDDEN = {
    "open",
    "close",
    "write",
    "pwrite",
    "writev",
    "fsync",
    "fdatasync",
    "sync",
    "replace",
    "rename",
    "renames",
    "unlink",
    "remove",
    "rmdir",
    "removedirs",
    "ftruncate",
    "truncate",
    "posix_fallocate",
    "mkdir",
    "makedirs",
    "chmod",
    "fchmod",
    "link",
    "symlink",
    "mmap",
    "listdir",
}


def _bypasses(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in ("os", "mmap", "shutil"):
            if node.func.attr in FORBIDDEN or owner.id == "shutil":
                found.append(
                    f"{os.path.relpath(path, SRC)}:{node.lineno} {owner.id}.{node.func.attr}"
                )
        # a map's flush() is msync: only through fs.msync
        if (
            node.func.attr == "flush"
            and isinstance(owner, ast.Attribute)
            and owner.attr in ("_mm", "mm")
        ):
            found.append(f"{os.path.relpath(path, SRC)}:{node.lineno} map.flush")
    return found


def _sources(sub: str = "") -> Iterator[str]:
    for dirpath, _dirs, files in os.walk(os.path.join(SRC, sub)):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def test_storage_calls_the_os_only_through_the_facade() -> None:
    bad = [b for path in _sources("storage") for b in _bypasses(path)]
    assert not bad, "storage system calls bypassing streamlog._fs.fs:\n" + "\n".join(bad)
    others = [
        b
        for path in _sources()
        if not path.startswith(os.path.join(SRC, "storage"))
        and not path.endswith("_fs.py")
        and "_cli" not in path
        for b in _bypasses(path)
    ]
    print("\nbypasses outside the storage layer (not owned here):\n  " + "\n  ".join(others))
    record("I/O seam", storage_bypasses=0, other_bypasses=len(others))


@contextmanager
def _watch(root: str) -> Iterator[list[str]]:
    """Record file operations on ``root`` made outside a facade call, with their caller."""
    inside = threading.local()
    events: list[str] = []
    saved = {}
    for name in METHODS:
        orig = getattr(fs, name)

        def wrapper(*args: Any, _orig: Any = orig, **kw: Any) -> Any:
            depth = getattr(inside, "depth", 0)
            inside.depth = depth + 1
            try:
                return _orig(*args, **kw)
            finally:
                inside.depth = depth

        saved[name] = fs.__dict__.get(name)
        setattr(fs, name, wrapper)
    real = os.path.realpath(root)
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not active[0] or int(getattr(inside, "depth", 0)):
            return
        if event not in (
            "open",
            "os.rename",
            "os.remove",
            "os.truncate",
            "os.mkdir",
            "mmap.__new__",
        ):
            return
        target = args[0] if args else None
        if event == "mmap.__new__" or isinstance(target, int):
            where = "<descriptor>"
        elif target is None:
            return
        else:
            where = os.path.realpath(os.fsdecode(target))
            if not where.startswith(real):
                return
        frame = sys._getframe(1)
        caller = "?"
        while frame is not None:
            f = frame.f_code.co_filename
            if f.startswith(SRC):
                caller = f"{os.path.relpath(f, SRC)}:{frame.f_lineno}"
                break
            frame = frame.f_back  # type: ignore[assignment]
        if caller != "?":
            events.append(f"{event} {where} from {caller}")

    sys.addaudithook(hook)
    try:
        yield events
    finally:
        active[0] = False
        for name, value in saved.items():
            if value is None:
                fs.__dict__.pop(name, None)
            else:
                setattr(fs, name, value)


def test_no_bypass_at_run_time(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(os.fspath(tmp_path), "data")
    with _watch(root) as events:
        with streamlog.open(root) as log:
            log.create_topic("t", 2, {"segment.bytes": 4096, "retention.bytes": 8192})
            for i in range(40):
                log.partition("t", i % 2).append(prepare_batch([b"x" * 300] * 2), sync=i % 3 == 0)
            p = log.partition("t", 0)
            p.roll()
            p.delete_records(p.end_offset - 1)
            log.enforce_retention()
            with OffsetStore(root, "g") as store:
                for c in range(3):
                    store.commit({TopicPartition("t", 0): OffsetAndMetadata(c, "")})
            with log.producer(acks="all") as prod:
                prod.send("t", b"v").result(timeout=10)
            log.delete_topic("t")
            log.create_topic("t", 1)
        os.unlink(os.path.join(root, "meta", "clean-shutdown"))
        with streamlog.open(root) as log:  # recovery
            log.partition("t", 0).read(0)
        streamlog.check(root)
    storage = [e for e in events if " from storage/" in e or " from _fs.py" in e]
    others = sorted({e.split(" from ")[1].split(":")[0] for e in events if e not in storage})
    print(f"\nrun-time bypasses: storage {len(storage)}; elsewhere in: {others}")
    assert not storage, "\n".join(storage[:20])


def _points_in_source() -> set[str]:
    names: set[str] = set()
    for path in _sources():
        with open(path, encoding="utf-8") as f:
            names.update(re.findall(r'crashpoint\("([a-z_.]+)"\)', f.read()))
    return names


def test_crash_points_are_documented() -> None:
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("## Crash points", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.M))
    assert documented, "no crash point table in docs/reliability.md"
    in_source = _points_in_source()
    assert in_source - documented == set(), f"undocumented: {sorted(in_source - documented)}"
    assert documented - in_source == set(), f"documented but gone: {sorted(documented - in_source)}"


@pytest.mark.parametrize("method", METHODS)
def test_facade_methods_raise_storage_io_error(tmp_path: os.PathLike[str], method: str) -> None:
    """The facade converts every OSError (so a failing system call is always a
    ``StorageIOError``, an ``OSError`` with the errno and the path)."""
    missing = os.path.join(os.fspath(tmp_path), "missing", "file")
    calls: dict[str, Any] = {
        "open": lambda: fs.open(missing),
        "close": lambda: fs.close(10_000),
        "size": lambda: fs.size(10_000),
        "fallocate": lambda: fs.fallocate(10_000, 0, 10, missing),
        "pwrite": lambda: fs.pwrite(10_000, b"x", 0, missing),
        "pread": lambda: fs.pread(10_000, 1, 0, missing),
        "truncate": lambda: fs.truncate(10_000, 0, missing),
        "sync": lambda: fs.sync(10_000, missing),
        "fsync": lambda: fs.fsync(10_000, missing),
        "msync": None,
        "map": lambda: fs.map(10_000, 10, path=missing),
        "replace": lambda: fs.replace(missing, missing + "2"),
        "unlink": lambda: fs.unlink(missing),
        "sync_dir": lambda: fs.sync_dir(missing),
        "makedirs": lambda: fs.makedirs("/proc/streamlog-cannot-exist/x"),
        "listdir": lambda: fs.listdir(missing),
        "read_file": lambda: fs.read_file(missing, 10),
    }
    call = calls[method]
    if call is None:
        pytest.skip("msync needs a map; covered by the fault loop")
    with pytest.raises(streamlog.StorageIOError) as info:
        call()
    assert isinstance(info.value, OSError) and info.value.errno
