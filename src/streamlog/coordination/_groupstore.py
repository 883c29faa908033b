"""The files of one consumer group, and the lock and liveness protocol around them.

Layout::

    <data>/meta/groups/<group>/
      group.lock        flock: exclusive to change the state, shared to commit offsets
      state.json        the GroupState (``_group``) as JSON, with a "version" number;
                        replaced by rename, never edited in place
      version           8 bytes, u64 little-endian: the version of state.json, bumped
                        after each replacement; every member maps it, so noticing a
                        change costs one memory read
      members/<id>      one per member: 16 bytes, u64 last heartbeat
                        (``time.monotonic_ns()``, one clock for every process on the
                        machine), u64 fence (1: the group removed this member)
      offsets.log ...   committed offsets (``_offsets.OffsetStore``)

Liveness. A member's process holds an exclusive ``flock`` on its member file
for as long as it is a member. The kernel drops the lock when the process
dies, however it dies, so ``kill -9`` is noticed at the next probe: any
process can try the lock without blocking, and getting it means the owner is
gone. A stopped process (SIGSTOP) keeps its lock; it is noticed by its
heartbeat, which stops advancing: once ``heartbeat + session_timeout`` has
passed, the member is expired.

Leases and fencing. A member may read its partitions until its lease ends:
the time of its last heartbeat plus its session timeout. The heartbeat is a
handshake through the member file: the member writes the heartbeat, then
reads the fence; a process removing a member writes the fence, then reads the
heartbeat. Whatever the interleaving, at least one of the two sees the other's
write: either the remover sees the fresh heartbeat (and does not expire the
member), or the member sees the fence (and stops, as lost). So a member never
believes in a lease the group has already ended, and partitions taken from a
member that may still be running stay quarantined until its lease is over.

Writes of ``state.json`` are not synced: group membership does not outlive the
processes that make it up. A ``state.json`` that cannot be read (a power cut
during a rename) is treated as an empty group; members still running notice
they are not in it and rejoin under new member ids, so fencing by member id
still holds.

Crash safety: every change is made on a private copy under the exclusive lock
and published by one rename, so a process killed at any point leaves the old
state or the new one. Thread-safe (a ``threading.RLock`` serializes the
threads of one store; ``flock`` is per open file, not per thread) and
process-safe; fork-safe (a child reopens its descriptors).
"""

from __future__ import annotations

import errno
import fcntl
import json
import mmap
import os
import struct
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from .. import _layout
from .._fs import crashpoint, fs
from .._names import check_name, is_name
from ..errors import LockTimeoutError, MetadataCorruptError, StorageIOError
from ..storage._datadir import refuse_link
from ._group import GroupState, Member

__all__ = ["GroupStore", "MemberFile"]

_STORES: weakref.WeakSet[GroupStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

_U64 = struct.Struct("<Q")
_MEMBER = struct.Struct("<QQ")
_MAX_STATE = 16 << 20
_MAX_VERSION = 2**62  # a version word above this is damage (see ``_next_version``)


class MemberFile:
    """This process's liveness file for one member id (holds its flock)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def heartbeat(self, now: int) -> bool:
        """Write the heartbeat, then read the fence: False if the group removed this member."""
        fs.pwrite(self.fd, _U64.pack(now), 0, self.path)
        (fence,) = _U64.unpack(fs.pread(self.fd, 8, 8, self.path).ljust(8, b"\0"))
        return bool(fence == 0)

    def clear_fence(self) -> None:
        fs.pwrite(self.fd, _U64.pack(0), 8, self.path)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                fs.close(self.fd)  # releases the flock
            except StorageIOError:
                pass
            self.fd = -1


class GroupStore:
    """One consumer group's state files (see the module docstring)."""

    def __init__(self, root: str, group_id: str, *, lock_timeout: float = 30.0) -> None:
        self.group_id = check_name("group_id", group_id)
        self._root = root
        self.dir = _layout.group_dir(root, self.group_id)
        self.members_dir = _layout.group_members_dir(root, self.group_id)
        self.state_path = _layout.group_state_file(root, self.group_id)
        self.lock_path = _layout.group_lock_file(root, self.group_id)
        self.version_path = _layout.group_version_file(root, self.group_id)
        self.lock_timeout = lock_timeout
        self._rlock = threading.RLock()
        _STORES.add(self)
        self._pid = -1
        self._lock_fd = -1
        self._lock_depth = 0
        self._map: mmap.mmap | None = None
        self._cached: GroupState | None = None
        self._cached_version = -1
        self._probe_fds: dict[str, int] = {}
        self.last_version = 0

    def _after_fork(self) -> None:
        # a lock held by another thread at fork time would never be released in the child
        self._rlock = threading.RLock()
        self._lock_depth = 0

    # ------------------------------------------------------------------ files
    def exists(self) -> bool:
        return os.path.exists(self.state_path)

    def _ensure_open(self) -> None:
        if self._pid == os.getpid() and self._lock_fd >= 0:
            return
        if self._pid not in (-1, os.getpid()):
            # forked: inherited descriptors share the parent's locks; start afresh (the
            # thread lock was re-created by the fork hook)
            self._lock_fd = -1
            self._map = None
            self._probe_fds = {}
            self._lock_depth = 0
        # built from a path, not through DataDir: refuse links planted on the way down
        for d in _layout.group_dirs(self._root, self.group_id):
            refuse_link(d)
        fs.makedirs(self.members_dir)
        self._lock_fd = fs.open(self.lock_path, create=True)
        self._pid = os.getpid()

    def _version_map(self) -> mmap.mmap:
        if self._map is None:
            fd = fs.open(self.version_path, create=True)
            try:
                # allocated, never just extended: a store through a map into a hole on a
                # full disk is a SIGBUS that kills the process; fallocate says ENOSPC
                fs.fallocate(fd, 0, 8, self.version_path)
                self._map = fs.map(fd, 8, path=self.version_path)
            finally:
                fs.close(fd)
        return self._map

    def version(self) -> int:
        """The published version of the state (0 before the first write). Lock-free."""
        m = self._map
        if m is None:
            if not os.path.exists(self.version_path):
                return 0
            self._ensure_open()
            m = self._version_map()
        return int(_U64.unpack_from(m, 0)[0])

    # ------------------------------------------------------------------ lock
    @contextmanager
    def locked(self, *, exclusive: bool = True, timeout: float | None = None) -> Iterator[None]:
        """Hold the group lock (re-entrant within this store)."""
        limit = self.lock_timeout if timeout is None else timeout
        if not self._rlock.acquire(timeout=limit):
            raise LockTimeoutError(
                f"the lock of group {self.group_id!r} is busy in this process", path=self.lock_path
            )
        try:
            self._ensure_open()
            if self._lock_depth == 0:
                self._flock(exclusive, limit)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    fs.flock(self._lock_fd, fcntl.LOCK_UN, self.lock_path)
        finally:
            self._rlock.release()

    def _flock(self, exclusive: bool, limit: float) -> None:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + limit
        delay = 20e-6
        while True:
            if fs.flock(self._lock_fd, mode, self.lock_path):
                return
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"the lock of group {self.group_id!r} was held by another process for "
                    f"more than {limit:.1f}s (a stopped process?)",
                    path=self.lock_path,
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.002)

    # ------------------------------------------------------------------ state
    def load(self) -> GroupState:
        """The current state (cached while the version is unchanged). Lock-free."""
        version = self.version()
        if self._cached is not None and version == self._cached_version:
            return self._cached
        state, file_version = self._read()
        self._cached, self._cached_version = state, file_version
        self.last_version = file_version
        return state

    def read(self) -> GroupState:
        """The state as published now, read from its file (not the cache); hold the lock
        to act on it."""
        return self._read()[0]

    def _read(self) -> tuple[GroupState, int]:
        try:
            raw = fs.read_file(self.state_path, _MAX_STATE)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return GroupState(self.group_id), 0
            raise
        try:
            data = json.loads(raw)
            state = GroupState.from_wire(data["state"])
            version = data["version"]
            if type(version) is not int or not 0 <= version <= _MAX_VERSION:
                raise ValueError(f"version {version!r} out of range")
            if state.group_id != self.group_id:
                raise ValueError("the state of another group")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            # Not synced on purpose (see the module docstring): start the group afresh.
            return GroupState(self.group_id), 0
        return state, version

    def _next_version(self) -> int:
        """One more than any version seen. A version word out of range (damage: it is only
        a change signal) is ignored; this write puts a good one in its place."""
        word = self.version()
        return max(word if word <= _MAX_VERSION else 0, self._cached_version) + 1

    def write(self, state: GroupState) -> None:
        """Publish ``state`` (under the exclusive lock)."""
        version = self._next_version()
        body = json.dumps({"version": version, "state": state.to_wire()}, sort_keys=True)
        fs.write_atomic(self.state_path, body.encode(), durable=False)
        crashpoint("group.state_written")
        _U64.pack_into(self._version_map(), 0, version)
        self._cached, self._cached_version = GroupState.from_wire(state.to_wire()), version
        self.last_version = version

    # ------------------------------------------------------------------ members
    def member_path(self, member_id: str) -> str:
        # the one place a member id becomes a path: ids come from state files and
        # directory listings too, so a crafted one (``../x``) must never get this far
        if not is_name(member_id):
            raise MetadataCorruptError(
                f"group {self.group_id!r} names an invalid member id {member_id!r:.80}",
                path=self.state_path,
            )
        return os.path.join(self.members_dir, member_id)

    def create_member(self, member_id: str, now: int) -> MemberFile:
        """Create and lock this process's member file (before joining)."""
        self._ensure_open()
        path = self.member_path(member_id)
        tmp = f"{path}.new"
        fd = fs.open(tmp, create=True)
        try:
            if not fs.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, tmp):
                raise StorageIOError(errno.EAGAIN, "member file locked by another process", tmp)
            fs.pwrite(fd, _MEMBER.pack(now, 0), 0, tmp)
            # renamed only once locked, so a probe never finds it unlocked while we live
            fs.replace(tmp, path)
        except BaseException:
            fs.close(fd)
            raise
        return MemberFile(path, fd)

    def _probe_fd(self, member_id: str) -> int:
        fd = self._probe_fds.get(member_id, -1)
        if fd < 0:
            fd = fs.open(self.member_path(member_id))
            self._probe_fds[member_id] = fd
        return fd

    def forget_probe(self, member_id: str) -> None:
        fd = self._probe_fds.pop(member_id, -1)
        if fd >= 0:
            try:
                fs.close(fd)
            except StorageIOError:
                pass

    def probe(self, member_id: str) -> tuple[bool, int]:
        """(process alive, last heartbeat ns) of a member; (False, 0) if it has no file."""
        try:
            fd = self._probe_fd(member_id)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return False, 0
            raise
        path = self.member_path(member_id)
        alive = not fs.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, path)
        if not alive:
            fs.flock(fd, fcntl.LOCK_UN, path)
        hb, _fence = _MEMBER.unpack(fs.pread(fd, 16, 0).ljust(16, b"\0"))
        return alive, int(hb)

    def fence(self, member_id: str, value: int = 1) -> int:
        """Write the member's fence, then read its heartbeat (the remover's half of the
        handshake). Returns the heartbeat (0 if the member has no file)."""
        try:
            fd = self._probe_fd(member_id)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return 0
            raise
        fs.pwrite(fd, _U64.pack(value), 8)
        (hb,) = _U64.unpack(fs.pread(fd, 8, 0).ljust(8, b"\0"))
        return int(hb)

    def remove_member_file(self, member_id: str) -> None:
        self.forget_probe(member_id)
        try:
            fs.unlink(self.member_path(member_id))
        except StorageIOError as e:
            if e.errno != errno.ENOENT:
                raise

    def member_files(self) -> list[str]:
        """Member ids with a file. A link planted at the directory is refused (the sweep
        would delete what it points to); entries that are not member ids are skipped."""
        refuse_link(self.members_dir)
        try:
            names = fs.listdir(self.members_dir)
        except StorageIOError as e:
            if e.errno == errno.ENOENT:
                return []
            raise
        return [n for n in names if not n.endswith(".new") and is_name(n)]

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self, now: int | None = None) -> Iterator[GroupState]:
        """Exclusive lock; the fresh state with liveness observed; published if changed.

        ``now`` is sampled after the lock is taken unless given (tests).
        """
        with self.locked(exclusive=True):
            if now is None:
                now = time.monotonic_ns()
            state, version = self._read()
            self._cached_version = max(self._cached_version, version)
            before = json.dumps(state.to_wire(), sort_keys=True)
            before_members = dict(state.members)
            heartbeats: dict[str, int] = {}
            gone: list[str] = []
            for m in state.members.values():
                alive, hb = self.probe(m.member_id)
                if alive and hb + m.session_timeout_ms * 1_000_000 <= now:
                    # looks expired: fence first, then look again (the handshake)
                    hb = self.fence(m.member_id)
                    if hb + m.session_timeout_ms * 1_000_000 > now:
                        self.fence(m.member_id, 0)
                heartbeats[m.member_id] = hb
                if not alive and m.alive:
                    gone.append(m.member_id)
            state.observe(heartbeats, gone, now)
            yield state
            self._settle_removed(state, before_members)
            after = json.dumps(state.to_wire(), sort_keys=True)
            if after != before or version != self.version():
                self.write(state)
            self._sweep(state)

    def _settle_removed(self, state: GroupState, before: dict[str, Member]) -> None:
        for member_id, m in before.items():
            if member_id in state.members:
                continue
            hb = self.fence(member_id)  # fenced first: it cannot extend its lease any more
            lease = hb + m.session_timeout_ms * 1_000_000
            for tp in m.owned:
                if tp in state.quarantine and state.quarantine[tp] < lease:
                    state.quarantine[tp] = lease

    def _sweep(self, state: GroupState) -> None:
        """Delete member files of members that are gone from the state and not running."""
        for name in self.member_files():
            if name in state.members:
                continue
            alive, _hb = self.probe(name)
            if not alive:
                self.remove_member_file(name)
            else:
                self.forget_probe(name)

    def delete(self) -> None:
        """Remove the group's state and member files (under the exclusive lock)."""
        for name in self.member_files():
            self.remove_member_file(name)
        for path in (self.state_path, f"{self.state_path}.tmp"):
            try:
                fs.unlink(path)
            except StorageIOError as e:
                if e.errno != errno.ENOENT:
                    raise
        if self._map is not None:
            _U64.pack_into(self._map, 0, self._next_version())
        self._cached = None

    def close(self) -> None:
        for name in list(self._probe_fds):
            self.forget_probe(name)
        if self._map is not None:
            try:
                self._map.close()
            except (BufferError, ValueError):
                pass
            self._map = None
        if self._lock_fd >= 0 and self._pid == os.getpid():
            try:
                fs.close(self._lock_fd)
            except StorageIOError:
                pass
        self._lock_fd = -1
