"""A consumer's membership in a group: joining, syncing, heartbeats and offset commits.

The Consumer owns one ``Membership`` when it subscribes with a ``group_id``.
The group's state machine is ``coordination._group``; its files and the
liveness handshake are ``coordination._groupstore``; the steps that change the
group's state (join, sync, leave, completing a rebalance, expiring members,
validating commits) are ``coordination._coordinator``. This module is the
member's side of the protocol, as Kafka's ``ConsumerCoordinator``: when to take
those steps, and what the consumer does about their outcome. It talks to its
consumer through ``Hooks``.

* ``poll`` calls ``step`` (cheap unless something changed: one memory read of
  the group's version word and one clock read). ``step`` joins, gives up
  partitions before a rebalance (eager: all of them, after an auto-commit and
  ``on_partitions_revoked``; cooperative: only those of topics no longer
  subscribed), adopts a completed assignment (``on_partitions_revoked`` for
  what moved away in a cooperative round, then ``on_partitions_assigned``
  with what is new, exactly once per completed rebalance) and rejoins at once
  after a cooperative revocation. Every callback runs in the consumer's thread,
  inside ``poll``.
* A background thread heartbeats every ``heartbeat_interval_ms`` and, every
  ``min(heartbeat_interval_ms, 100)`` ms, probes the other members (a dead
  process is noticed through its released lock, a stopped one through its
  stale heartbeat) and acts as the group's coordinator when something is due:
  expiring members, timing out a rebalance, completing one, noticing new
  partitions or topics. It also leaves the group (dynamic members) when
  ``max_poll_interval_ms`` passes without a ``poll``.
* A member reads a partition only while the group lists it as owned by the
  member and its lease (last confirmed heartbeat + session timeout) holds:
  ``poll`` renews the lease itself before returning records if the
  heartbeat thread fell behind (a process resumed after SIGSTOP finds out it
  was removed before it returns anything).
* Commits take the group lock shared, check that this member still owns the
  partitions, and append to the group's offset log (``fdatasync``\\ed): a
  member that was removed, or whose partition moved, gets ``CommitFailedError``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .._fs import fs
from .._names import member_id_for
from .._structs import OffsetAndMetadata, TopicPartition
from ..coordination._assignors import COOPERATIVE, get_assignor
from ..coordination._coordinator import GroupCoordinator, may_sync
from ..coordination._group import GroupState, InconsistentProtocolError, StaleMemberError
from ..coordination._groupstore import GroupStore, MemberFile
from ..coordination._offsets import OffsetStore
from ..errors import (
    CommitFailedError,
    FencedInstanceIdError,
    InconsistentGroupProtocolError,
    KafkaTimeoutError,
    StorageIOError,
    StreamlogError,
)

if TYPE_CHECKING:
    from .._config import ConsumerConfig
    from ..coordination._manager import LogManager

__all__ = ["AutoCommitTimer", "Hooks", "Membership"]

_log = logging.getLogger("streamlog.group")
_MS = 1_000_000
CommitCallback = Callable[[dict[TopicPartition, OffsetAndMetadata], BaseException | None], Any]


class Hooks(Protocol):
    """What the membership needs from its consumer (``_consumer._GroupHooks``). Called in
    the consumer's thread (inside ``poll``, ``unsubscribe``, ``close``)."""

    def group_revoke(self, tps: set[TopicPartition], *, lost: bool) -> None: ...

    def group_assign(
        self, added: set[TopicPartition], all_assigned: set[TopicPartition]
    ) -> None: ...

    def group_assigned(self) -> set[TopicPartition]: ...

    def group_consumed(self) -> dict[TopicPartition, OffsetAndMetadata]: ...

    def group_topics(self) -> tuple[str, ...]: ...


class AutoCommitTimer:
    """When the next auto-commit is due. One per consumer: it owns it, and its membership
    (if any) runs on the same timer."""

    __slots__ = ("deadline", "interval")

    def __init__(self, interval_ms: int) -> None:
        self.interval = interval_ms / 1000
        self.deadline = time.monotonic() + self.interval

    def due(self) -> bool:
        return time.monotonic() >= self.deadline

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.interval


class Membership:
    """The member side of the group protocol for one consumer (see the module docstring)."""

    def __init__(
        self,
        log: LogManager,
        hooks: Hooks,
        config: ConsumerConfig,
        client_id: str,
        auto_commit_timer: AutoCommitTimer,
    ) -> None:
        if config.group_id is None:
            raise ValueError("a group membership needs a group_id")
        self.log = log
        self.hooks = hooks
        self.group_id: str = config.group_id
        self.client_id = client_id
        self.instance_id: str | None = config.group_instance_id
        self.protocols = tuple(get_assignor(s).name for s in config.partition_assignment_strategy)
        self.cooperative = all(get_assignor(p).protocol == COOPERATIVE for p in self.protocols)
        self.session_ms = config.session_timeout_ms
        self.heartbeat_ms = config.heartbeat_interval_ms
        self.max_poll_ms = config.max_poll_interval_ms
        self.auto_commit = config.enable_auto_commit
        self.auto_commit_timer = auto_commit_timer
        self.metadata_ms = config.metadata_max_age_ms
        self.fsync_commits = config.fsync_commits
        self.store = GroupStore(log.path, self.group_id)
        self.offsets = OffsetStore(log.path, self.group_id)
        self.coordinator = GroupCoordinator(log, self.store, self.offsets)
        self.member_id: str | None = None
        self.file: MemberFile | None = None
        self.generation = -1
        self.lease_until = 0
        self.seen_version = -1
        self.need_join = True
        self.lost = False  # removed by the group (fenced) or gave up after max_poll_interval
        self.fenced_instance = False
        self.poll_expired = False
        self.active = False
        self.closed = False
        self.last_poll = time.monotonic_ns()
        self.committed_positions: dict[TopicPartition, int] = {}
        self._mutex = threading.RLock()  # member state, between poll and heartbeat threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._async: collections.deque[
            tuple[dict[TopicPartition, OffsetAndMetadata], CommitCallback | None, str, int]
        ] = collections.deque()
        self._async_done: collections.deque[
            tuple[
                CommitCallback | None, dict[TopicPartition, OffsetAndMetadata], BaseException | None
            ]
        ] = collections.deque()
        self._async_cond = threading.Condition()
        self._async_thread: threading.Thread | None = None
        self._async_busy = 0

    # ------------------------------------------------------------------ poll side
    def attention(self) -> bool:
        """Cheap check (every poll): must ``step`` run before records are returned?"""
        if self.need_join or self.lost or self.poll_expired:
            return True
        if self.store.version() != self.seen_version:
            return True
        now = time.monotonic_ns()
        self.last_poll = now
        if now >= self.lease_until:
            return True
        return self.auto_commit and self.auto_commit_timer.due()

    def step(self) -> None:
        """Bring this member up to date with the group (see the module docstring)."""
        if self.closed:
            return  # closed by another thread meanwhile: never join again
        self.last_poll = time.monotonic_ns()
        self.run_async_callbacks()
        if self.fenced_instance:
            raise FencedInstanceIdError(
                f"another consumer joined group {self.group_id!r} with group_instance_id "
                f"{self.instance_id!r}; this one is fenced"
            )
        if self.poll_expired:
            self.poll_expired = False
            self.lost = True
        if self.member_id is not None and not self.lost:
            now = time.monotonic_ns()
            if now >= self.lease_until:
                with self._mutex:
                    self._heartbeat(now)
        # A join may complete the round at once (a lone member, the last joiner), and a
        # cooperative revocation rejoins at once: keep going while steps make progress.
        for _ in range(4):
            if not self._advance():
                break
        if self.auto_commit and self.auto_commit_timer.due():
            self.auto_commit_timer.restart()
            offsets = self.changed(self.hooks.group_consumed())
            if offsets:
                self.commit_async(offsets, None)

    def _advance(self) -> bool:
        """One protocol step; True if it changed something another step may build on."""
        state = self.store.load()
        self.seen_version = self.store.last_version
        me = state.members.get(self.member_id) if self.member_id else None
        if self.member_id is not None and (self.lost or me is None):
            self._handle_lost(state)
            me = None
        if me is None:
            self._join(state)
            return True
        if state.needs_join(me.member_id) or self.need_join:
            self._prepare_join(state)
            self._join(state)
            return True
        if may_sync(state, me, self.generation):
            self._sync(state)
            return True
        return False

    def _handle_lost(self, state: GroupState) -> None:
        was = self.hooks.group_assigned()
        if self.instance_id is not None and any(
            m.instance_id == self.instance_id and m.member_id != self.member_id
            for m in state.members.values()
        ):
            self.fenced_instance = True
        self._drop_file()
        self.generation = -1
        self.lost = False
        self.need_join = True
        self.hooks.group_revoke(was, lost=True)
        if self.fenced_instance:
            raise FencedInstanceIdError(
                f"another consumer joined group {self.group_id!r} with group_instance_id "
                f"{self.instance_id!r}; this one is fenced"
            )

    def _prepare_join(self, state: GroupState) -> None:
        """Kafka's ``onJoinPrepare``: commit, then give up what the protocol says."""
        assigned = self.hooks.group_assigned()
        if self.auto_commit:
            self._commit_quietly(self.changed(self.hooks.group_consumed()))
        if self.cooperative:
            wanted = set(self.hooks.group_topics())
            gone = {tp for tp in assigned if tp.topic not in wanted}
            if gone:
                self.hooks.group_revoke(gone, lost=False)
        else:
            self.hooks.group_revoke(assigned, lost=False)

    def _join(self, state: GroupState) -> None:
        topics = self.hooks.group_topics()
        owned = self.hooks.group_assigned()
        # Under the mutex as a whole, so that a close() from another thread either
        # sees the member (and makes it leave) or stops the join before it starts.
        with self._mutex:
            if self.closed:
                return
            now = time.monotonic_ns()
            if self.member_id is None or self.file is None:
                base = self.instance_id or self.client_id
                member_id = member_id_for(base, str(uuid.uuid4()))
                self.file = self.store.create_member(member_id, now)
                self.member_id = member_id
                self.lease_until = now + self.session_ms * _MS
            try:
                self.coordinator.join(
                    member_id=self.member_id,
                    client_id=self.client_id,
                    instance_id=self.instance_id,
                    topics=topics,
                    protocols=self.protocols,
                    owned=owned,
                    session_timeout_ms=self.session_ms,
                    rebalance_timeout_ms=self.max_poll_ms,
                )
            except InconsistentProtocolError as e:
                self._drop_file()
                raise InconsistentGroupProtocolError(str(e)) from None
            except StaleMemberError:
                # removed between our look at the state and this join: drop what we
                # read (on_partitions_lost) and join afresh at the next step
                self.lost = True
                self.seen_version = -1
                return
            self.need_join = False
            self.active = True
            self.seen_version = -1  # look again at once: the join may have completed the round
            self._start_thread()

    def _sync(self, state: GroupState) -> None:
        assert self.member_id is not None
        me = state.members[self.member_id]
        generation = state.generation
        new = set(me.assignment)
        local = self.hooks.group_assigned()
        revoked = local - new
        if revoked:
            if self.auto_commit:
                self._commit_quietly(
                    {
                        tp: o
                        for tp, o in self.changed(self.hooks.group_consumed()).items()
                        if tp in revoked
                    }
                )
            self.hooks.group_revoke(revoked, lost=False)
        try:
            self.coordinator.sync(self.member_id, generation)
        except StaleMemberError:
            self.seen_version = -1
            return
        self.generation = generation
        added = new - local
        self.auto_commit_timer.restart()
        if revoked and self.cooperative:
            self.need_join = True  # hand the revoked partitions out: a second round
        self.hooks.group_assign(added, new)

    # ------------------------------------------------------------------ heartbeat
    def _heartbeat(self, now: int) -> None:
        """One heartbeat; renews the lease, or finds out that this member was removed."""
        f = self.file
        if f is None or self.member_id is None:
            return
        if f.heartbeat(now):
            self.lease_until = now + self.session_ms * _MS
            return
        # Fenced: the group removed this member, or a remover is deciding right now.
        if self.coordinator.confirm_member(self.member_id, f, now):
            self.lease_until = now + self.session_ms * _MS
            return
        self.lost = True

    def _start_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"streamlog-heartbeat-{self.client_id}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        tick = min(self.heartbeat_ms, 100) / 1000
        next_hb = 0
        next_meta = 0.0
        while not self._stop.wait(tick):
            try:
                with self._mutex:
                    if self._stop.is_set() or self.member_id is None or self.poll_expired:
                        continue
                    now = time.monotonic_ns()
                    if now - self.last_poll > self.max_poll_ms * _MS and self.active:
                        self._poll_timeout()
                        continue
                    if now >= next_hb and not self.lost:
                        self._heartbeat(now)
                        next_hb = now + self.heartbeat_ms * _MS
                    check_meta = time.monotonic() >= next_meta
                    if check_meta:
                        next_meta = time.monotonic() + self.metadata_ms / 1000
                self._coordinate(check_meta)
            except StreamlogError as e:  # a busy lock, a full disk: try again next tick
                _log.debug("group %s heartbeat: %s", self.group_id, e)
            except Exception:  # pragma: no cover - a bug; keep the member alive
                _log.exception("group %s heartbeat failed", self.group_id)

    def _poll_timeout(self) -> None:
        """``max_poll_interval_ms`` passed without a poll: leave (dynamic members)."""
        _log.warning(
            "consumer %s of group %s did not poll within max_poll_interval_ms=%d; leaving "
            "the group",
            self.client_id,
            self.group_id,
            self.max_poll_ms,
        )
        self.active = False
        self.poll_expired = True
        if self.instance_id is None and self.member_id is not None:
            self.coordinator.leave(self.member_id)
        # A static member just stops heartbeating; its session times out. Either way the
        # consumer's thread drops the member file at its next poll (and calls
        # on_partitions_lost), since it may be using it right now.

    def _coordinate(self, check_meta: bool) -> None:
        """Act as the group's coordinator if anything is due."""
        coordinator = self.coordinator
        state = self.store.load()
        now = time.monotonic_ns()
        due = coordinator.due(state, self.member_id, now)
        counts: dict[str, int] | None = None
        if check_meta:
            topics = self.hooks.group_topics()
            me = state.members.get(self.member_id or "")
            if me is not None and tuple(sorted(topics)) != me.topics:
                self.need_join = True  # a pattern now matches other topics
                self.log.signal.notify()
            counts = coordinator.partition_counts(state.subscribed_topics())
            if coordinator.partitions_changed(state, counts):
                due = True
        if not due:
            return
        coordinator.act(check_partitions=counts is not None)
        self.log.signal.notify()  # wake a waiting poll of this process

    # ------------------------------------------------------------------ commits
    def changed(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        return {tp: o for tp, o in offsets.items() if self.committed_positions.get(tp) != o.offset}

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        """Synchronous commit (earlier async commits complete first)."""
        self.wait_async()
        self.run_async_callbacks()
        self._commit(dict(offsets), self.member_id, self.generation)

    def _commit(
        self,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        member_id: str | None,
        generation: int,
    ) -> None:
        if not offsets:
            return
        if member_id is None or self.lost or self.poll_expired:
            raise CommitFailedError(
                f"commit failed: this consumer is not a member of group {self.group_id!r} "
                "now (it left, was removed, or did not poll within max_poll_interval_ms); "
                "poll() rejoins"
            )
        self.coordinator.commit(offsets, member_id, generation, sync=self.fsync_commits)
        for tp, o in offsets.items():
            self.committed_positions[tp] = o.offset

    def _commit_quietly(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            self._commit(offsets, self.member_id, self.generation)
        except StreamlogError as e:
            _log.warning("auto-commit of group %s failed: %s", self.group_id, e)

    def commit_standalone(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        """A commit by a consumer using ``assign()``: accepted while the group has no
        active members (Kafka's standalone consumer), with generation -1."""
        if not offsets:
            return
        self.coordinator.commit_standalone(offsets, sync=self.fsync_commits)
        for tp, o in offsets.items():
            self.committed_positions[tp] = o.offset

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, OffsetAndMetadata],
        callback: CommitCallback | None,
        *,
        standalone: bool = False,
    ) -> None:
        """Queue a commit; ``callback(offsets, exception)`` runs in a later poll/commit/close,
        in call order."""
        item = (
            dict(offsets),
            callback,
            "" if standalone else (self.member_id or "-"),
            self.generation,
        )
        with self._async_cond:
            self._async.append(item)
            self._async_busy += 1
            if self._async_thread is None or not self._async_thread.is_alive():
                self._async_thread = threading.Thread(
                    target=self._async_run, name=f"streamlog-commit-{self.client_id}", daemon=True
                )
                self._async_thread.start()
            self._async_cond.notify_all()

    def _async_run(self) -> None:
        while True:
            with self._async_cond:
                while not self._async:
                    if not self._async_cond.wait(5.0) and not self._async:
                        self._async_thread = None
                        return
                # Calls queued meanwhile by the same member and generation go to disk as
                # one record (later offsets win): one write and one sync for all of them.
                _o, _c, member_id, generation = self._async[0]
                batch = []
                for item in self._async:
                    if item[2] != member_id or item[3] != generation:
                        break
                    batch.append(item)
            merged: dict[TopicPartition, OffsetAndMetadata] = {}
            for offsets, *_rest in batch:
                merged.update(offsets)
            results = [self._async_commit(merged, member_id, generation)] * len(batch)
            if results[0] is not None and len(batch) > 1:
                # one of them may be the culprit: each call gets its own outcome
                results = [self._async_commit(o, member_id, generation) for o, *_r in batch]
            with self._async_cond:
                for (offsets, callback, _m, _g), error in zip(batch, results, strict=True):
                    self._async.popleft()
                    if error is not None and callback is None:
                        _log.warning("async commit of group %s failed: %s", self.group_id, error)
                    self._async_done.append((callback, offsets, error))
                    self._async_busy -= 1
                self._async_cond.notify_all()

    def _async_commit(
        self, offsets: dict[TopicPartition, OffsetAndMetadata], member_id: str, generation: int
    ) -> BaseException | None:
        try:
            if member_id == "":
                self.commit_standalone(offsets)
            else:
                self._commit(offsets, None if member_id == "-" else member_id, generation)
        except Exception as e:  # reported to the callback, as Kafka does
            return e
        return None

    def wait_async(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._async_cond:
            while self._async_busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KafkaTimeoutError("async commits did not complete in time")
                self._async_cond.wait(left)

    def run_async_callbacks(self) -> None:
        while self._async_done:
            callback, offsets, error = self._async_done.popleft()
            if callback is not None:
                callback(offsets, error)

    def committed(self, tp: TopicPartition) -> OffsetAndMetadata | None:
        return self.offsets.committed(tp)

    # ------------------------------------------------------------------ leaving
    def _drop_file(self) -> None:
        with self._mutex:
            self._drop_file_locked()

    def _drop_file_locked(self) -> None:
        if self.file is not None:
            path = self.file.path
            self.file.close()
            self.file = None
            if self.member_id is not None:
                try:
                    fs.unlink(path)
                except StorageIOError:
                    pass  # gone already, or the sweep of another member removes it
        self.member_id = None
        self.lease_until = 0

    def leave(self, *, revoke: bool) -> None:
        """Stop being a member: revoke callback (if asked), leave (dynamic members), stop.

        Final: this membership never joins again (a new ``subscribe`` makes a new one).
        """
        with self._mutex:
            self.closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        with self._mutex:
            if revoke and self.member_id is not None:
                assigned = self.hooks.group_assigned()
                if self.lost:
                    self.hooks.group_revoke(assigned, lost=True)
                else:
                    self.hooks.group_revoke(assigned, lost=False)
            if self.member_id is not None and self.instance_id is None and not self.lost:
                try:
                    self.coordinator.leave(self.member_id)
                except StreamlogError as e:
                    _log.warning("leaving group %s failed: %s", self.group_id, e)
            self._drop_file() if self.instance_id is None else self._release_static()
            self.active = False
            self.need_join = True
            self.generation = -1

    def _release_static(self) -> None:
        # A static member does not leave: its place (and partitions) wait for a restart
        # with the same group_instance_id until its session times out.
        if self.file is not None:
            self.file.close()
            self.file = None
        self.member_id = None
        self.lease_until = 0

    def close(self) -> None:
        self._stop.set()
        self.store.close()
        self.offsets.close()
