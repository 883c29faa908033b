"""Every storage system call goes through the I/O facade ``streamlog._fs.fs``.

Fault injection and the power-cut model only see what passes through the
facade, so a call that bypasses it is a hole in every other suite.

- Statically: no module of the package but ``_fs.py`` (and the command line,
  which reads files the user names) calls an ``os``/``mmap``/``shutil``/``fcntl``
  function that opens, writes, syncs, allocates, maps, renames, unlinks,
  truncates, creates, locks or closes a file (reads of metadata such as
  ``stat`` and ``scandir`` are allowed).
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
import fcntl
import os
import re
import socket
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

from ._faults import METHODS, restore_facade, wrap_facade
from ._figures import record
from ._points import source_crash_points

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
        if isinstance(owner, ast.Name) and owner.id in ("os", "mmap", "shutil", "fcntl"):
            if node.func.attr in FORBIDDEN or owner.id in ("shutil", "fcntl"):
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


def test_the_package_calls_the_os_only_through_the_facade() -> None:
    bad = [
        b
        for path in _sources()
        if not path.endswith("_fs.py") and os.sep + "_cli" + os.sep not in path
        for b in _bypasses(path)
    ]
    assert not bad, "system calls bypassing streamlog._fs.fs:\n" + "\n".join(bad)
    record("I/O seam", bypasses=0)


def test_the_bypass_finder_finds_bypasses(tmp_path: os.PathLike[str]) -> None:
    probe = os.path.join(os.fspath(tmp_path), "probe.py")
    with open(probe, "w", encoding="utf-8") as f:
        f.write("import fcntl, os, shutil\nfcntl.flock(3, 2)\nos.unlink('x')\nshutil.rmtree('d')\n")
    found = [b.rsplit(" ", 1)[1] for b in _bypasses(probe)]
    assert found == ["fcntl.flock", "os.unlink", "shutil.rmtree"]


@contextmanager
def _watch(root: str) -> Iterator[list[str]]:
    """Record file operations on ``root`` made outside a facade call, with their caller."""
    inside = threading.local()
    events: list[str] = []

    def counting(_name: str, orig: Any) -> Any:
        def wrapper(*args: Any, **kw: Any) -> Any:
            depth = getattr(inside, "depth", 0)
            inside.depth = depth + 1
            try:
                return orig(*args, **kw)
            finally:
                inside.depth = depth

        return wrapper

    saved = wrap_facade(counting)
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
        restore_facade(saved)


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


def test_crash_points_are_documented() -> None:
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("## Crash points", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.M))
    assert documented, "no crash point table in docs/reliability.md"
    in_source = set(source_crash_points())
    assert in_source - documented == set(), f"undocumented: {sorted(in_source - documented)}"
    assert documented - in_source == set(), f"documented but gone: {sorted(documented - in_source)}"


def _send_to(path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        fs.send_datagram(sock, path)


def _a_file(tmp_path: os.PathLike[str]) -> str:
    path = os.path.join(os.fspath(tmp_path), "plain-file")
    with open(path, "wb") as f:
        f.write(b"x")
    return path


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
        "rmtree": lambda: fs.rmtree(_a_file(tmp_path)),  # not a directory
        "flock": lambda: fs.flock(10_000, fcntl.LOCK_EX, missing),
        "bind_socket": lambda: fs.bind_socket(missing),  # its directory does not exist
        "send_datagram": lambda: _send_to(missing),  # nobody bound there
    }
    call = calls[method]
    if call is None:
        pytest.skip("msync needs a map; covered by the fault loop")
    with pytest.raises(streamlog.StorageIOError) as info:
        call()
    assert isinstance(info.value, OSError) and info.value.errno
