"""Committed offsets of one consumer group: an append-only log of checksummed commit records.

Layout::

    <data>/meta/groups/<group>/
      offsets.lock        flock target; never deleted
      offsets.log         header, then records (below)
      offsets.log.tmp     only while a rewrite is in progress (or left by a crash during one)

``offsets.log`` (all integers little-endian)::

    header  8 bytes   u32 magic 0x464F4C53 (b"SLOF"), u32 version (1)
    record  12 + n    u32 n (body length, 1 <= n <= 1 GiB)
                      u64 xxh3-64 of the body, seeded with n (so the length is covered too)
                      body: msgpack [kind, timestamp_ms, generation, member_id, entries]

``kind`` and its ``entries``:

- 1 commit, 2 reset: ``[[topic, partition, offset, metadata], ...]``; the
  offsets of one call, applied together;
- 3 delete: ``[[topic, partition], ...]``; tombstones;
- 4 snapshot: ``[[topic, partition, offset, metadata, commit_ms], ...]``; every
  live offset; replaces whatever came before (only written as the first
  record of a rewritten file). ``generation`` is -1 and ``member_id`` "".

The state is the records applied in file order; the last write per partition
wins. A commit is one record, so after a crash either all of its offsets are
visible or none.

Writers (``commit``, ``reset``, ``delete_partitions``) take a
``threading.Lock`` and then an exclusive ``flock`` on ``offsets.lock``. Under
the lock a writer reads whatever other processes appended (see readers), cuts
a torn tail left by a crashed writer, appends its record with one ``pwrite``
and, with ``sync=True``, ``fdatasync``s the file before returning. The first
record creates the file with ``fs.write_atomic`` (header and record together,
synced, as are the parent directories), so a file never lacks its header.

Compaction: when the file grows past ``max(64 KiB, 8 x size of a snapshot)``
the writer, still under the lock, replaces it with a single snapshot record
through ``fs.write_atomic`` (temporary file, fsync, rename, fsync of the
directory). The rename is atomic: a crash at any point leaves the old file or
the new one, both complete; a stale ``offsets.log.tmp`` is overwritten by the
next rewrite. A rewrite is always durable, whatever ``sync`` says: it replaces
records that earlier callers may have synced.

Readers take no lock. Each store keeps the file open and remembers its
(device, inode) and how far it has parsed. On every read it ``stat``s the
path: a different inode means the file was rewritten or deleted and
recreated, so the store reloads it from the start (the open descriptor keeps
the old inode alive, so its number cannot be reused while cached); a larger
size means new records, and only the new bytes are read and parsed; an
unchanged size costs nothing more. Holding the old file open while another
process renames over it is harmless: the old file stays complete.

A record that fails its bounds or checksum check is where the valid data
ends. If a valid record follows it anywhere later in the file, the bad one is
corruption and every read raises ``MetadataCorruptError`` naming the file (a
record whose checksum passes but whose body is not a well-formed record
raises too). Otherwise it is a torn tail (a writer died mid-append, or is
appending right now): it is ignored, and the next writer truncates it under
the lock. ``delete()`` works on a corrupt file, so an operator can start the
group's offsets over.

Durability: ``commit(..., sync=True)`` returned means the record is on disk.
A commit that raised may or may not be visible. After a failed ``fdatasync``
the store's next write rewrites the whole file (Linux may have dropped the
unwritten pages, so later appends alone could leave a hole).

Crash points (``_fs.crashpoint``): ``offsets.appended`` (a record is written,
not yet synced or acknowledged) and ``offsets.before_rewrite_rename`` (a
rewrite is decided and its snapshot encoded; the old file is untouched). The
steps of the rewrite itself are ``fs.write_atomic``'s points
``meta.tmp_written`` (temporary file written, not renamed) and
``meta.renamed`` (renamed, directory not yet synced); the file's creation
passes through them too.

Thread-safe and process-safe. Committed offset = the next offset to read; the
store keeps what the caller gives (fencing by generation is the group's job).
"""

from __future__ import annotations

import errno
import math
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import msgpack
import xxhash

from .. import _layout
from .._fs import converted, crashpoint, fs
from .._names import check_name, check_partition, check_topic_name
from .._structs import OffsetAndMetadata, TopicPartition
from ..errors import (
    ClosedError,
    ConfigError,
    MetadataCorruptError,
    StorageIOError,
    UnsupportedFormatError,
)
from ..storage._datadir import DataDir, refuse_link
from ..storage._state import AppendLock

__all__ = ["OffsetStore", "check_offsets"]

MAGIC = 0x464F4C53  # b"SLOF" little-endian
VERSION = 1
HEADER = struct.Struct("<II")
FRAME = struct.Struct("<IQ")
HEADER_SIZE = HEADER.size  # 8
FRAME_SIZE = FRAME.size  # 12
MAX_BODY = 1 << 30
MAX_METADATA_BYTES = 4096
MAX_MEMBER_ID_BYTES = 4096
MAX_OFFSET = (1 << 63) - 1
MAX_GENERATION = (1 << 31) - 1
MIN_REWRITE_BYTES = 64 * 1024
REWRITE_FACTOR = 8

KIND_COMMIT = 1
KIND_RESET = 2
KIND_DELETE = 3
KIND_SNAPSHOT = 4
_KINDS = (KIND_COMMIT, KIND_RESET, KIND_DELETE, KIND_SNAPSHOT)

_xxh3 = xxhash.xxh3_64_intdigest

# What the cache holds per partition: the committed value and when it was committed (ms).
_Entry = tuple[OffsetAndMetadata, int]
# A decoded record: (kind, timestamp_ms, entries as the wire has them).
_Record = tuple[int, int, list[list[Any]]]


def _frame(body: bytes) -> bytes:
    return FRAME.pack(len(body), _xxh3(body, seed=len(body))) + body


def _valid_frame_at(buf: memoryview, pos: int) -> int:
    """Body length of a valid frame starting at ``pos``, or -1."""
    if len(buf) - pos < FRAME_SIZE:
        return -1
    length: int
    checksum: int
    length, checksum = FRAME.unpack_from(buf, pos)
    if length == 0 or length > MAX_BODY or length > len(buf) - pos - FRAME_SIZE:
        return -1
    start = pos + FRAME_SIZE
    if _xxh3(buf[start : start + length], seed=length) != checksum:
        return -1
    return length


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------- input checks


def _check_tp(tp: object) -> TopicPartition:
    if not isinstance(tp, tuple) or len(tp) != 2:
        raise TypeError(f"expected a TopicPartition, not {type(tp).__name__}")
    topic, partition = tp
    return TopicPartition(check_topic_name(topic), check_partition(partition))


def _check_offset(tp: TopicPartition, value: object) -> OffsetAndMetadata:
    if not isinstance(value, OffsetAndMetadata):
        raise TypeError(
            f"the offset for {tp} must be an OffsetAndMetadata, not {type(value).__name__}"
        )
    offset, metadata = value
    if not _is_int(offset):
        raise TypeError(f"the offset for {tp} must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"the offset for {tp} must be >= 0, not {offset}")
    if offset > MAX_OFFSET:
        raise ValueError(f"the offset for {tp} does not fit in 63 bits: {offset}")
    if not isinstance(metadata, str):
        raise TypeError(f"the metadata for {tp} must be a str, not {type(metadata).__name__}")
    try:
        size = len(metadata.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError(f"the metadata for {tp} is not encodable as UTF-8 ({e})") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"the metadata for {tp} is {size} bytes in UTF-8; the limit is {MAX_METADATA_BYTES}"
        )
    return OffsetAndMetadata(offset, metadata)


def check_offsets(offsets: object) -> dict[TopicPartition, OffsetAndMetadata]:
    if not isinstance(offsets, Mapping):
        raise TypeError(f"offsets must be a mapping, not {type(offsets).__name__}")
    out: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp, value in offsets.items():
        key = _check_tp(tp)
        out[key] = _check_offset(key, value)
    return out


def _check_generation(generation: object, member_id: object) -> tuple[int, str]:
    if not _is_int(generation):
        raise TypeError(f"generation must be an int, not {type(generation).__name__}")
    assert isinstance(generation, int)
    if not -1 <= generation <= MAX_GENERATION:
        raise ValueError(f"generation must be between -1 and {MAX_GENERATION}, not {generation}")
    if not isinstance(member_id, str):
        raise TypeError(f"member_id must be a str, not {type(member_id).__name__}")
    try:
        size = len(member_id.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError(f"member_id is not encodable as UTF-8 ({e})") from None
    if size > MAX_MEMBER_ID_BYTES:
        raise ValueError(f"member_id is {size} bytes; the limit is {MAX_MEMBER_ID_BYTES}")
    return generation, member_id


def _check_sync(sync: object) -> bool:
    if not isinstance(sync, bool):
        raise TypeError(f"sync must be a bool, not {type(sync).__name__}")
    return sync


# ---------------------------------------------------------------------- the store


def sync_all_offsets(root: str) -> None:
    """fdatasync every group's committed offsets (commits need not be synced one by
    one): run by the last user of the directory before it is marked clean."""
    groups = _layout.groups_dir(root)
    try:
        names = sorted(fs.listdir(groups))
    except StorageIOError as e:
        if e.errno != errno.ENOENT:
            raise
        names = []
    for group in names:
        path = _layout.offsets_file(root, group)
        try:
            fd = fs.open(path, write=False)
        except StorageIOError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            raise
        try:
            fs.sync(fd, path)
        finally:
            fs.close(fd)


class OffsetStore:
    """The committed offsets of one consumer group (see the module docstring).

    ``datadir`` is a ``DataDir`` or the data directory's path. Nothing is
    created until the first write; reading a group that never committed
    returns nothing and touches no file.
    """

    def __init__(
        self,
        datadir: DataDir | str | os.PathLike[str],
        group_id: str,
        *,
        lock_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.group_id = check_name("group_id", group_id)
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, (int, float))
            or not math.isfinite(lock_timeout)
            or lock_timeout <= 0
        ):
            raise ConfigError(f"lock_timeout must be a positive number, not {lock_timeout!r}")
        root = datadir.root if isinstance(datadir, DataDir) else os.path.abspath(os.fspath(datadir))
        self._root = root
        self.meta_dir = _layout.meta_dir(root)
        self.groups_dir = _layout.groups_dir(root)
        self.dir = _layout.group_dir(root, self.group_id)
        self.path = _layout.offsets_file(root, self.group_id)
        self.lock_path = _layout.offsets_lock_file(root, self.group_id)
        self._lock_timeout = float(lock_timeout)
        self._clock = clock
        self._closed = False
        self._init_locks()
        # cache of what the file holds; guarded by _cache_lock
        self._fd = -1
        self._ident: tuple[int, int] = (-1, -1)
        self._pos = 0  # end of the last valid record parsed
        self._unparsed = b""  # the bytes after _pos when last read (a torn tail, or a record
        # being written): the same bytes again need no new scan
        self._entries: dict[TopicPartition, _Entry] = {}
        # writer state; guarded by _write_lock
        self._rewrite_at = MIN_REWRITE_BYTES
        self._must_rewrite = False

    def _init_locks(self) -> None:
        self._pid = os.getpid()
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        # Created at the first write (nothing exists before). A raw flock, not
        # filelock: filelock reopens and resolves the lock file on every acquire
        # (~200 us here), which halved the rate of synchronous commits.
        self._flock: AppendLock | None = None

    def _enter(self) -> None:
        if self._closed:
            raise ClosedError(f"offset store of group {self.group_id!r} is closed")
        if self._pid != os.getpid():
            # A forked child must not share the parent's lock state (a lock held by
            # another thread at fork time would never be released in the child).
            self._init_locks()

    # ------------------------------------------------------------------ reading

    def committed(self, tp: TopicPartition) -> OffsetAndMetadata | None:
        """The committed offset of ``tp``, or None if the group has none for it."""
        key = _check_tp(tp)
        self._enter()
        with self._cache_lock:
            self._refresh()
            entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def all(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Every committed offset of the group."""
        self._enter()
        with self._cache_lock:
            self._refresh()
            return {tp: e[0] for tp, e in self._entries.items()}

    def commit_times(self) -> dict[TopicPartition, int]:
        """When each offset was committed (ms since the epoch), for offset retention."""
        self._enter()
        with self._cache_lock:
            self._refresh()
            return {tp: e[1] for tp, e in self._entries.items()}

    # ------------------------------------------------------------------ writing

    def commit(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        *,
        generation: int = -1,
        member_id: str = "",
        sync: bool = True,
    ) -> None:
        """Commit ``offsets`` atomically (all or none survive a crash).

        Everything is validated before any I/O: offsets are ints >= 0 (bool
        refused), metadata a str of at most 4096 bytes in UTF-8. An empty
        mapping does nothing. With ``sync=True`` the record is on disk when
        this returns.
        """
        checked = check_offsets(offsets)
        gen, member = _check_generation(generation, member_id)
        sync = _check_sync(sync)
        if not checked:
            return
        self._write(KIND_COMMIT, gen, member, checked, sync)

    def reset(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], *, sync: bool = True
    ) -> None:
        """Set offsets as an administrator does (kafka-consumer-groups --reset-offsets).

        The same as ``commit`` but recorded as a reset, with no generation.
        """
        checked = check_offsets(offsets)
        sync = _check_sync(sync)
        if not checked:
            return
        self._write(KIND_RESET, -1, "", checked, sync)

    def delete_partitions(self, tps: Iterable[TopicPartition], *, sync: bool = True) -> None:
        """Forget the committed offsets of ``tps`` (tombstones); unknown ones are ignored."""
        if isinstance(tps, (str, bytes)) or not isinstance(tps, Iterable):
            raise TypeError(f"expected an iterable of TopicPartition, not {type(tps).__name__}")
        checked = {_check_tp(tp): None for tp in tps}
        sync = _check_sync(sync)
        if not checked:
            return
        self._write(KIND_DELETE, -1, "", checked, sync)

    def delete(self) -> None:
        """Remove every committed offset of the group (the file goes; the lock file stays).

        Works even when the file is corrupt.
        """
        self._enter()
        with self._write_lock:
            if not os.path.isdir(self.dir):
                with self._cache_lock:
                    self._forget()
                return
            with self._file_lock():
                removed = False
                for path in (self.path, f"{self.path}.tmp"):
                    try:
                        fs.unlink(path)
                        removed = True
                    except StorageIOError as e:
                        if e.errno != errno.ENOENT:
                            raise
                if removed:
                    fs.sync_dir(self.dir)
                with self._cache_lock:
                    self._forget()
                self._rewrite_at = MIN_REWRITE_BYTES
                self._must_rewrite = False

    def close(self) -> None:
        """Close the file. Idempotent; later calls raise ``ClosedError``."""
        with self._write_lock, self._cache_lock:
            self._closed = True
            lock, self._flock = self._flock, None
            try:
                self._forget()
            finally:
                if lock is not None:  # the offsets.lock descriptor of the first commit
                    lock.close()

    def __enter__(self) -> OffsetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OffsetStore(group_id={self.group_id!r}, path={self.path!r})"

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        # built from a path, not through DataDir: refuse links planted on the way down
        for d in _layout.group_dirs(self._root, self.group_id)[:-1]:
            refuse_link(d)
        fs.makedirs(self.dir)
        lock = self._flock
        if lock is None:
            lock = self._flock = AppendLock(
                self.lock_path, self._lock_timeout, what=f"offsets lock of group {self.group_id!r}"
            )
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    @staticmethod
    def _wire(
        kind: int, entries: Mapping[TopicPartition, OffsetAndMetadata | None]
    ) -> list[list[Any]]:
        if kind == KIND_DELETE:
            return [[tp.topic, tp.partition] for tp in entries]
        out: list[list[Any]] = []
        for tp, v in entries.items():
            assert v is not None
            out.append([tp.topic, tp.partition, v.offset, v.metadata])
        return out

    def _write(
        self,
        kind: int,
        generation: int,
        member_id: str,
        entries: Mapping[TopicPartition, OffsetAndMetadata | None],
        sync: bool,
    ) -> None:
        ts = int(self._clock() * 1000)
        wire = self._wire(kind, entries)
        body = msgpack.packb([kind, ts, generation, member_id, wire], use_bin_type=True)
        if len(body) > MAX_BODY:
            raise ValueError(f"the commit is {len(body)} bytes encoded; the limit is {MAX_BODY}")
        frame = _frame(body)
        self._enter()
        with self._write_lock, self._file_lock():
            with self._cache_lock:
                self._refresh()
                fd, pos, ident = self._fd, self._pos, self._ident
            if fd < 0:
                self._create(HEADER.pack(MAGIC, VERSION) + frame)
                with self._cache_lock:
                    self._refresh()
            else:
                if fs.size(fd) > pos:
                    fs.truncate(fd, pos, self.path)  # a torn tail left by a crashed writer
                fs.pwrite(fd, frame, pos, self.path)
                crashpoint("offsets.appended")
                if sync:
                    try:
                        fs.sync(fd, self.path)
                    except StorageIOError:
                        self._must_rewrite = True
                        raise
                with self._cache_lock:
                    if self._ident == ident and self._pos == pos:
                        self._apply(self._entries, (kind, ts, wire))
                        self._pos = pos + len(frame)
                        self._unparsed = b""
                    else:  # a reader of this process got there first
                        self._refresh()
            size = self._pos
            if self._must_rewrite or size > self._rewrite_at:
                self._maybe_rewrite(size)

    def _create(self, data: bytes) -> None:
        fs.write_atomic(self.path, data)
        # the group directory's entry (and meta/groups') must survive power loss too
        fs.sync_dir(self.groups_dir)
        fs.sync_dir(self.meta_dir)

    def _maybe_rewrite(self, size: int) -> None:
        """Under both locks: replace the file by one snapshot record if it is large enough."""
        with self._cache_lock:
            snapshot = [
                [tp.topic, tp.partition, v.offset, v.metadata, ts]
                for tp, (v, ts) in self._entries.items()
            ]
        body = msgpack.packb(
            [KIND_SNAPSHOT, int(self._clock() * 1000), -1, "", snapshot], use_bin_type=True
        )
        data = HEADER.pack(MAGIC, VERSION) + _frame(body)
        limit = max(MIN_REWRITE_BYTES, REWRITE_FACTOR * len(data))
        self._rewrite_at = limit
        if size <= limit and not self._must_rewrite:
            return
        crashpoint("offsets.before_rewrite_rename")
        fs.write_atomic(self.path, data)
        self._must_rewrite = False
        with self._cache_lock:
            self._refresh()

    def _forget(self) -> None:
        """Under the cache lock: drop the open file and everything cached."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            fs.close(fd)
        self._ident = (-1, -1)
        self._pos = 0
        self._unparsed = b""
        self._entries = {}

    def _refresh(self) -> None:
        """Under the cache lock: bring the cache up to date with the file (module docstring)."""
        with converted(self.path):
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
        if st is None:
            if self._fd >= 0 or self._entries:
                self._forget()
            return
        if self._fd < 0 or (st.st_dev, st.st_ino) != self._ident or st.st_size < self._pos:
            self._reload()
        elif st.st_size > self._pos:
            data = self._read(self._fd, self._pos, st.st_size - self._pos)
            if data == self._unparsed:
                return  # the same torn tail as last time: nothing to parse
            records, end = self._scan(data, self._pos)
            for rec in records:
                self._apply(self._entries, rec)
            self._pos += end
            self._unparsed = data[end:]

    def _reload(self) -> None:
        self._forget()
        try:
            fd = fs.open(self.path)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:  # deleted between stat and open
                return
            raise
        try:
            with converted(self.path):
                st = os.fstat(fd)
            data = self._read(fd, 0, st.st_size)
            parsed = self._parse_file(data)
        except BaseException:
            fs.close(fd)
            raise
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._pos, self._entries = parsed
        self._unparsed = data[self._pos :]

    def _parse_file(self, data: bytes) -> tuple[int, dict[TopicPartition, _Entry]]:
        if len(data) < HEADER_SIZE:
            raise MetadataCorruptError("offsets log is shorter than its header", path=self.path)
        magic, version = HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise MetadataCorruptError("offsets log has a bad magic number", path=self.path)
        if version != VERSION:
            if version > VERSION:
                raise UnsupportedFormatError(
                    f"offsets log version {version} is newer than this streamlog supports "
                    f"({VERSION}); upgrade streamlog",
                    path=self.path,
                )
            raise MetadataCorruptError(f"offsets log has unknown version {version}", path=self.path)
        records, end = self._scan(data[HEADER_SIZE:], HEADER_SIZE)
        entries: dict[TopicPartition, _Entry] = {}
        for rec in records:
            self._apply(entries, rec)
        return HEADER_SIZE + end, entries

    def _read(self, fd: int, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            chunk = fs.pread(fd, min(length, 1 << 24), offset, self.path)
            if not chunk:
                break  # the file was cut meanwhile (a writer truncating a torn tail)
            parts.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(parts)

    def _scan(self, data: bytes, base: int) -> tuple[list[_Record], int]:
        """Decode the valid records at the start of ``data`` (which starts at file position
        ``base``); returns them and where they end. Raises if a bad record is followed by a
        valid one."""
        buf = memoryview(data)
        n = len(buf)
        records: list[_Record] = []
        pos = 0
        while pos < n:
            length = _valid_frame_at(buf, pos)
            if length < 0:
                for later in range(pos + 1, n - FRAME_SIZE + 1):
                    if _valid_frame_at(buf, later) >= 0:
                        raise MetadataCorruptError(
                            f"offsets log has a damaged record at byte {base + pos} followed by "
                            f"a valid one at byte {base + later}",
                            path=self.path,
                        )
                break  # a torn tail: ignored (the next writer cuts it)
            start = pos + FRAME_SIZE
            records.append(self._decode(buf[start : start + length], base + pos))
            pos = start + length
        return records, pos

    def _decode(self, body: memoryview, position: int) -> _Record:
        def bad(why: str) -> MetadataCorruptError:
            return MetadataCorruptError(
                f"offsets log record at byte {position} {why}", path=self.path
            )

        try:
            obj = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
        except Exception as e:
            raise bad(f"does not decode ({type(e).__name__})") from e
        if not isinstance(obj, list) or len(obj) != 5:
            raise bad("is not a 5-element array")
        kind, ts, generation, member_id, entries = obj
        if kind not in _KINDS or not _is_int(kind):
            raise bad(f"has unknown kind {kind!r}")
        if not _is_int(ts) or not _is_int(generation) or not isinstance(member_id, str):
            raise bad("has a bad timestamp, generation or member id")
        if not isinstance(entries, list):
            raise bad("has no entry list")
        width = {KIND_DELETE: 2, KIND_SNAPSHOT: 5}.get(kind, 4)
        for ent in entries:
            if (
                not isinstance(ent, list)
                or len(ent) != width
                or not isinstance(ent[0], str)
                or not _is_int(ent[1])
                or ent[1] < 0
                or (width > 2 and not (_is_int(ent[2]) and ent[2] >= 0 and isinstance(ent[3], str)))
                or (width == 5 and not _is_int(ent[4]))
            ):
                raise bad(f"has a malformed entry {ent!r:.200}")
        return kind, ts, entries

    @staticmethod
    def _apply(state: dict[TopicPartition, _Entry], rec: _Record) -> None:
        kind, ts, entries = rec
        if kind == KIND_DELETE:
            for topic, partition in entries:
                state.pop(TopicPartition(topic, partition), None)
            return
        if kind == KIND_SNAPSHOT:
            state.clear()
            for topic, partition, offset, metadata, committed_ms in entries:
                state[TopicPartition(topic, partition)] = (
                    OffsetAndMetadata(offset, metadata),
                    committed_ms,
                )
            return
        for topic, partition, offset, metadata in entries:
            state[TopicPartition(topic, partition)] = (OffsetAndMetadata(offset, metadata), ts)

    def _check(self) -> None:
        """Assert the invariants: the cache equals a fresh parse of the whole file.

        Takes the group's lock, so it holds while other processes commit.
        """
        self._enter()
        if not os.path.isdir(self.dir):
            with self._cache_lock:
                self._refresh()
                assert not self._entries
            return
        with self._write_lock, self._file_lock(), self._cache_lock:
            self._refresh()
            if self._fd < 0:
                assert not self._entries
                assert not os.path.exists(self.path)
                return
            size = fs.size(self._fd)
            assert HEADER_SIZE <= self._pos <= size, (self._pos, size)
            pos, entries = self._parse_file(self._read(self._fd, 0, size))
            assert pos == self._pos, (pos, self._pos)
            assert entries == self._entries
