"""Snapshots of a directory tree, to assert that an operation changed no file.

``snapshot(root)`` maps every path under ``root`` (relative) to what it is:
``("dir",)``, ``("link", target)`` or ``("file", size, sha256 of the bytes)``;
with ``times=True`` files also record ``st_mtime_ns`` (for read-only tools such
as ``check`` that must not even touch a file). Nothing is excluded: a lock file
that appears where there was none is a change too.
"""

from __future__ import annotations

import hashlib
import os
import stat

Snapshot = dict[str, tuple[object, ...]]


def snapshot(root: str | os.PathLike[str], *, times: bool = False) -> Snapshot:
    root = os.fspath(root)
    out: Snapshot = {}
    st = os.lstat(root)
    out["."] = ("dir",) if stat.S_ISDIR(st.st_mode) else _entry(root, st, times)
    if not stat.S_ISDIR(st.st_mode):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            out[rel] = _entry(full, os.lstat(full), times)
    return out


def _entry(full: str, st: os.stat_result, times: bool) -> tuple[object, ...]:
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(full))
    if stat.S_ISDIR(st.st_mode):
        return ("dir",)
    if not stat.S_ISREG(st.st_mode):
        return ("other", stat.S_IFMT(st.st_mode))
    digest = hashlib.sha256()
    with open(full, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    entry: tuple[object, ...] = ("file", st.st_size, digest.hexdigest())
    if times:
        entry += (st.st_mtime_ns,)
    return entry


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences (empty when equal)."""
    lines = []
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel), after.get(rel)
        if a == b:
            continue
        if a is None:
            lines.append(f"created: {rel} {b}")
        elif b is None:
            lines.append(f"removed: {rel} {a}")
        else:
            lines.append(f"changed: {rel} {a} -> {b}")
    return lines


def assert_unchanged(
    before: Snapshot, root: str | os.PathLike[str], *, times: bool = False
) -> None:
    changes = diff(before, snapshot(root, times=times))
    assert not changes, "files changed:\n" + "\n".join(changes)


def file_digests(root: str | os.PathLike[str]) -> dict[str, str]:
    """The sha256 of every file's bytes under ``root``, by relative path (a lighter
    ``snapshot`` that ignores directories and times)."""
    root = os.fspath(root)
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, root)] = hashlib.sha256(f.read()).hexdigest()
    return out
