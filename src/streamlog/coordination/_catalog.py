"""The topic catalog: one JSON file per topic under ``meta/topics``, changed under a lock.

``meta/topics/<topic>.json``::

    {"version": 1, "name": "orders", "id": "<uuid hex>", "partitions": 3,
     "config": {"retention.ms": 3600000}, "created_ms": 1700000000000,
     "state": "active"}

``meta/topics/<topic>.del``: the same file, renamed there by a deletion under way
(releases before 0.2 marked it ``"state": "deleting"`` in place instead; both are
finished the same way)

``config`` holds only what the user set; defaults are filled in when read, so
a future release can change a default for topics that never chose.

Create, delete and grow take ``meta/catalog.lock`` (a ``flock``, as partitions do)
and write atomically (temporary file, fsync, rename, fsync of the directory).
Delete first renames the file to ``<topic>.del`` (no byte written, so it works
on a full disk and on a damaged file), then moves the topic's data to
``trash/`` and removes the marker; an interrupted delete is finished by the
next catalog change. Readers take no lock: the rename makes every read see either
the old or the new file. Readers cache by a change counter, ``meta/catalog.version``
(mapped; every change bumps it once the change is on disk), and by the file's (inode,
mtime, size). The hot path of reads and appends (``current``) compares the counter
alone, and looks at the file again at least every ``RECHECK_S`` seconds (a file
changed by hand, or by a change that crashed before bumping the counter).

Process-safe and thread-safe.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import _layout
from .._config import TopicConfig
from .._fs import crashpoint, fs
from .._names import check_topic_name, is_name, short_repr
from ..errors import (
    ConfigError,
    MetadataCorruptError,
    StorageIOError,
    TopicExistsError,
    UnknownTopicError,
)
from ..storage._datadir import DataDir, read_json, refuse_link, write_json
from ..storage._state import AppendLock

_VERSION = 1
_U64 = struct.Struct("<Q")
MAX_PARTITIONS = 100_000
RECHECK_S = 1.0  # ``current``: the longest a cached topic is trusted on the counter alone


@dataclass(frozen=True)
class TopicMeta:
    name: str
    id: str
    partitions: int
    overrides: dict[str, Any]
    config: TopicConfig
    created_ms: int


class TopicCatalog:
    """Reads and changes the topic catalog of one data directory (see the module docstring)."""

    def __init__(self, datadir: DataDir, *, lock_timeout: float = 30.0) -> None:
        self.datadir = datadir
        self.dir = _layout.catalog_dir(datadir.root)
        self._lock_path = _layout.catalog_lock(datadir.root)
        self._lock_timeout = lock_timeout
        self._lock: AppendLock | None = None  # opened at the first change
        self._cache: dict[str, tuple[tuple[int, int, int, int], TopicMeta | None]] = {}
        self._cache_lock = threading.Lock()
        self._paths: dict[str, str] = {}  # valid names looked up so far -> their file
        self._version_path = _layout.catalog_version(datadir.root)
        self._version_map: mmap.mmap | None = None
        # ``current``: name -> (counter before it was read, when, its metadata)
        self._current: dict[str, tuple[int, float, TopicMeta]] = {}

    def close(self) -> None:
        """Release the lock file's descriptor and the version map."""
        lock, self._lock = self._lock, None
        vmap, self._version_map = self._version_map, None
        try:
            if lock is not None:
                lock.close()
        finally:
            if vmap is not None:  # released even when the lock's close failed
                with contextlib.suppress(BufferError, ValueError):
                    vmap.close()

    # ------------------------------------------------------------------ change counter
    # Why a counter and not only (inode, mtime, size) of the file: a topic deleted and
    # created again within one clock tick gets the same inode (reused at once), the same
    # coarse mtime and the same size, so a cache keyed by them served the old topic id.
    def _version(self) -> int:
        """The change counter (one memory read), or -1 if it cannot be mapped."""
        vmap = self._version_map
        if vmap is None:
            try:
                fd = fs.open(self._version_path, create=True)
                try:
                    # allocated, not extended: a store into a hole on a full disk is a SIGBUS
                    if fs.size(fd) < 8:
                        fs.fallocate(fd, 0, 8, self._version_path)
                    vmap = self._version_map = fs.map(fd, 8, path=self._version_path)
                finally:
                    fs.close(fd)
            except StorageIOError:
                return -1  # a full disk, a read-only directory: no caching then
        return int(_U64.unpack_from(vmap, 0)[0])

    def _changed(self) -> None:
        """After a change is on disk (under the lock): make every reader look again."""
        version = self._version()
        if version >= 0 and self._version_map is not None:
            _U64.pack_into(self._version_map, 0, (version + 1) % 2**63)

    def _path(self, name: str) -> str:
        return _layout.topic_meta_file(self.datadir.root, name)

    def topic_dir(self, name: str) -> str:
        return _layout.topic_dir(self.datadir.root, name)

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> TopicMeta | None:
        """The topic's metadata, or None if it does not exist (or is being deleted)."""
        path = self._paths.get(name)
        if path is None:  # first look at this name: check it once, remember its path
            check_topic_name(name)
            if len(self._paths) >= 10_000:
                self._paths.clear()  # bounded, whatever names a caller tries
            path = self._paths[name] = self._path(name)
        # the counter first, then the file: a change made in between bumps the counter
        # again, so the entry cached here is looked at again next time
        version = self._version()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as e:  # a planted link loop, no permission: a failing metadata read
            raise StorageIOError(e.errno or errno.EIO, e.strerror or str(e), path) from e
        # the file's identity too: a file changed behind the catalog's back (by hand, or
        # damaged) is read again
        key = (version, st.st_ino, st.st_mtime_ns, st.st_size)
        with self._cache_lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            data = read_json(path)
        except StorageIOError as e:
            if e.errno == 2:  # ENOENT: deleted between stat and open
                return None
            raise
        meta = self._parse(path, name, data)
        with self._cache_lock:
            self._cache[name] = (key, meta)
        return meta

    def require(self, name: str) -> TopicMeta:
        meta = self.get(name)
        if meta is None:
            raise UnknownTopicError(f"unknown topic {name!r}")
        return meta

    def current(self, name: str) -> TopicMeta:
        """``require``, for the hot path (every append and fetch): a topic looked up
        less than ``RECHECK_S`` ago is trusted if the change counter has not moved since
        (one memory read instead of a ``stat`` of its file). Any change through a
        catalog, in any process, moves the counter, so a topic deleted, created again
        or grown is seen at once; only a change the counter missed (by hand, or a change
        that crashed before its bump) waits up to ``RECHECK_S`` for the file's look."""
        hit = self._current.get(name)
        if hit is not None and hit[0] == self._version() and time.monotonic() - hit[1] < RECHECK_S:
            return hit[2]
        # the counter before the file (as get does): a change in between moves it again,
        # so what is cached below is looked at again next time
        version = self._version()
        meta = self.require(name)
        if version >= 0:
            if len(self._current) >= 10_000:
                self._current.clear()  # bounded, whatever names a caller tries
            self._current[name] = (version, time.monotonic(), meta)
        return meta

    @staticmethod
    def _parse(path: str, name: str, data: dict[str, Any]) -> TopicMeta | None:
        def bad(why: str) -> MetadataCorruptError:
            return MetadataCorruptError(f"topic metadata {why}", path=path)

        if data.get("version") != _VERSION:
            raise bad(f"has unknown version {data.get('version')!r}")
        if data.get("name") != name:
            raise bad("names another topic")
        parts = data.get("partitions")
        if (
            isinstance(parts, bool)
            or not isinstance(parts, int)
            or not 1 <= parts <= MAX_PARTITIONS
        ):
            raise bad("has an invalid partition count")
        overrides = data.get("config")
        if not isinstance(overrides, dict):
            raise bad("has no config object")
        topic_id = data.get("id")
        created = data.get("created_ms", 0)
        if not isinstance(topic_id, str) or not isinstance(created, int):
            raise bad("has an invalid id or creation time")
        state = data.get("state", "active")
        if state == "deleting":
            return None
        if state != "active":
            raise bad(f"has unknown state {state!r}")
        try:
            config = TopicConfig.from_dict(overrides)
        except ConfigError as e:
            raise bad(f"has an invalid config ({e})") from e
        return TopicMeta(name, topic_id, parts, dict(overrides), config, created)

    def names(self) -> list[str]:
        out = []
        for fname in fs.listdir(self.dir):
            if fname.endswith(".json"):
                name = fname[:-5]
                try:
                    check_topic_name(name)
                except ValueError:
                    continue
                if self.get(name) is not None:
                    out.append(name)
        return sorted(out)

    # ------------------------------------------------------------------ changing
    def _acquire(self) -> AppendLock:
        lock = self._lock
        if lock is None:
            refuse_link(self._lock_path)
            lock = self._lock = AppendLock(
                self._lock_path, self._lock_timeout, what="topic catalog lock"
            )
        lock.acquire()
        try:
            self._finish_deletions()
        except BaseException:
            lock.release()
            raise
        return lock

    def create(self, name: str, partitions: int, config: Mapping[str, Any] | None) -> TopicMeta:
        check_topic_name(name)
        if isinstance(partitions, bool) or not isinstance(partitions, int):
            raise ConfigError(f"partitions must be an int, not {type(partitions).__name__}")
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ConfigError(
                f"partitions must be between 1 and {MAX_PARTITIONS}; got {short_repr(partitions)}"
            )
        parsed = TopicConfig.from_dict(config)  # validates before any I/O
        overrides = dict(config or {})
        lock = self._acquire()
        try:
            if self.get(name) is not None:
                raise TopicExistsError(f"topic {name!r} already exists")
            tdir = self.topic_dir(name)
            if os.path.lexists(tdir):
                # left by a creation that crashed before its metadata was written
                self._to_trash(tdir, name)
            meta = TopicMeta(
                name, uuid.uuid4().hex, partitions, overrides, parsed, int(time.time() * 1000)
            )
            fs.makedirs(tdir)
            for p in range(partitions):
                fs.makedirs(os.path.join(tdir, str(p)))
            fs.sync_dir(self.datadir.topics_dir)
            self._write(meta)
            self._changed()
            return meta
        finally:
            lock.release()

    def _write(self, meta: TopicMeta, state: str = "active") -> None:
        write_json(
            self._path(meta.name),
            {
                "version": _VERSION,
                "name": meta.name,
                "id": meta.id,
                "partitions": meta.partitions,
                "config": meta.overrides,
                "created_ms": meta.created_ms,
                "state": state,
            },
        )

    def delete(self, name: str) -> None:
        """Delete a topic: rename its catalog file to ``<name>.del`` (readers see the
        topic gone at once; no byte is written, so this works on a full disk and on a
        damaged catalog file), move its data to ``trash/``, remove the marker. A crash
        in between is finished by the next catalog change."""
        check_topic_name(name)
        lock = self._acquire()
        try:
            path = self._path(name)
            if not os.path.lexists(path):
                raise UnknownTopicError(f"unknown topic {name!r}")
            refuse_link(path)  # planted: refused, as everywhere (not quietly removed)
            fs.replace(path, _layout.topic_deleting_file(self.datadir.root, name))
            fs.sync_dir(self.dir)
            self._changed()
            crashpoint("catalog.delete_marked")
            self._finish_deletion(name)
        finally:
            lock.release()

    def grow(self, name: str, total: int) -> TopicMeta:
        check_topic_name(name)
        if isinstance(total, bool) or not isinstance(total, int):
            raise ConfigError(f"partition count must be an int, not {type(total).__name__}")
        lock = self._acquire()
        try:
            meta = self.require(name)
            if total <= meta.partitions:
                raise ConfigError(
                    f"topic {name!r} has {meta.partitions} partitions; the count can only grow "
                    f"(asked for {short_repr(total)})"
                )
            if total > MAX_PARTITIONS:
                raise ConfigError(f"at most {MAX_PARTITIONS} partitions")
            tdir = self.topic_dir(name)
            for p in range(meta.partitions, total):
                fs.makedirs(os.path.join(tdir, str(p)))
            new = TopicMeta(name, meta.id, total, meta.overrides, meta.config, meta.created_ms)
            self._write(new)
            self._changed()
            return new
        finally:
            lock.release()

    def alter_config(self, name: str, changes: Mapping[str, Any]) -> TopicMeta:
        check_topic_name(name)
        if not isinstance(changes, Mapping):
            raise ConfigError(f"topic config must be a dict, not {type(changes).__name__}")
        TopicConfig.from_dict(changes)  # validates before any I/O
        lock = self._acquire()
        try:
            meta = self.require(name)
            overrides = {**meta.overrides, **changes}
            config = TopicConfig.from_dict(overrides)
            new = TopicMeta(name, meta.id, meta.partitions, overrides, config, meta.created_ms)
            self._write(new)
            self._changed()
            return new
        finally:
            lock.release()

    # ------------------------------------------------------------------ deletion
    def _finish_deletions(self) -> None:
        for fname in fs.listdir(self.dir):
            if fname.endswith(_layout.DELETING_SUFFIX):
                name = fname[: -len(_layout.DELETING_SUFFIX)]
                if is_name(name):
                    self._finish_deletion(name)
                continue
            if not fname.endswith(".json"):
                continue
            name = fname[:-5]
            try:
                check_topic_name(name)
                data = read_json(self._path(name))
            except (ValueError, MetadataCorruptError, StorageIOError):
                continue
            if data.get("state") == "deleting":  # marked by an older release
                self._finish_deletion(name, marker=self._path(name))

    def _finish_deletion(self, name: str, *, marker: str | None = None) -> None:
        tdir = self.topic_dir(name)
        trash_path = None
        if os.path.lexists(tdir):
            trash_path = self._to_trash(tdir, name)
        fs.unlink(marker or _layout.topic_deleting_file(self.datadir.root, name))
        fs.sync_dir(self.dir)
        with self._cache_lock:
            self._cache.pop(name, None)
        if trash_path is not None:
            # Readers in other processes may still have segments mapped: unlinking
            # keeps their maps valid, so removing the files now is safe.
            with contextlib.suppress(StorageIOError):
                fs.rmtree(trash_path)

    def _to_trash(self, tdir: str, name: str) -> str:
        fs.makedirs(self.datadir.trash)
        dest = os.path.join(self.datadir.trash, f"{name[:200]}.{uuid.uuid4().hex}")  # <= NAME_MAX
        fs.replace(tdir, dest)
        fs.sync_dir(self.datadir.topics_dir)
        return dest
