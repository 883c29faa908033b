"""The coordinator's steps of a consumer group: the ones that change or judge its state.

In Kafka a broker's group coordinator takes these steps. Here every member
process takes them in turn, each under the group's lock (``_groupstore``), on
the state machine of ``_group``: joining, adopting an assignment, leaving,
completing a rebalance (the assignment computation), acting on dead or
expired members, overdue rebalances and changed partition counts, and
validating offset commits. ``clients._membership`` is the member's side: it
decides when to take them (inside ``poll`` or from its heartbeat thread) and
how to react to what they return or raise (``StaleMemberError``,
``InconsistentProtocolError``, ``CommitFailedError``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .._structs import OffsetAndMetadata, TopicPartition
from ..errors import CommitFailedError
from ._assignors import get_assignor
from ._group import COMPLETING, PREPARING, STABLE, GroupState, Member, StaleMemberError
from ._groupstore import GroupStore, MemberFile
from ._offsets import OffsetStore

if TYPE_CHECKING:
    from ._manager import LogManager

__all__ = ["GroupCoordinator", "may_sync"]

_MS = 1_000_000


def may_sync(state: GroupState, me: Member, generation: int) -> bool:
    """Whether member ``me``, which last adopted ``generation``, has an assignment to adopt
    now: a round it took part in is complete, and it has not joined the next one yet."""
    return (
        (me.synced < state.generation or generation != state.generation)
        and state.state in (COMPLETING, STABLE)
        and me.joined != state.generation + 1
    )


class GroupCoordinator:
    """The coordinator's steps for one group, on its ``GroupStore`` and ``OffsetStore``
    (owned by the caller, which closes them)."""

    def __init__(self, log: LogManager, store: GroupStore, offsets: OffsetStore) -> None:
        self.log = log
        self.store = store
        self.offsets = offsets

    # ------------------------------------------------------------------ membership
    def join(
        self,
        *,
        member_id: str,
        client_id: str,
        instance_id: str | None,
        topics: Sequence[str],
        protocols: Sequence[str],
        owned: Iterable[TopicPartition],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
    ) -> None:
        """Kafka's JoinGroup: the member takes part in the next generation; the round
        completes at once if it was the last one the group waited for.

        :raises InconsistentProtocolError: no assignor common to every member.
        :raises StaleMemberError: the member was removed meanwhile.
        """
        with self.store.transaction() as st:
            st.join(
                member_id=member_id,
                client_id=client_id,
                instance_id=instance_id,
                topics=topics,
                protocols=protocols,
                owned=owned,
                session_timeout_ms=session_timeout_ms,
                rebalance_timeout_ms=rebalance_timeout_ms,
                now=time.monotonic_ns(),
            )
            self._complete(st)

    def sync(self, member_id: str, generation: int) -> None:
        """Kafka's SyncGroup: the member reads exactly its assignment of ``generation`` now.

        :raises StaleMemberError: the member was removed, or the generation is over.
        """
        with self.store.transaction() as st:
            st.sync(member_id, generation)

    def leave(self, member_id: str) -> None:
        """Kafka's LeaveGroup (dynamic members)."""
        with self.store.transaction() as st:
            st.leave(member_id, time.monotonic_ns())

    def confirm_member(self, member_id: str, file: MemberFile, now: int) -> bool:
        """After a heartbeat found the member's fence set: the group removed it, or a remover
        is deciding right now (it holds the lock while it does). Look under the lock: if
        the member is still in the group, clear the fence and heartbeat again. True if that
        heartbeat went through (the lease is renewed)."""
        with self.store.locked():
            state = self.store.read()
            if member_id in state.members:
                file.clear_fence()
                if file.heartbeat(now):
                    return True
        return False

    # ------------------------------------------------------------------ housekeeping
    def due(self, state: GroupState, member_id: str | None, now: int) -> bool:
        """Whether the coordinator has something to do: another member's process is gone or
        its session expired, or a pending rebalance can complete, is overdue, or has a
        quarantine that ended."""
        due = False
        for m in state.members.values():
            if m.member_id == member_id:
                continue
            alive, hb = self.store.probe(m.member_id)
            if (m.alive and not alive) or hb + m.session_timeout_ms * _MS <= now:
                due = True
                break
        if state.state == PREPARING:
            if now >= state.rebalance_deadline or all(
                m.joined == state.generation + 1 for m in state.members.values()
            ):
                due = True
            if state.quarantine and min(state.quarantine.values()) <= now:
                due = True
        return due

    def partition_counts(self, topics: Iterable[str]) -> dict[str, int]:
        """The partition count of each of ``topics`` that exists."""
        out = {}
        for t in topics:
            meta = self.log.topic(t)
            if meta is not None:
                out[t] = meta.partitions
        return out

    @staticmethod
    def partitions_changed(state: GroupState, counts: Mapping[str, int]) -> bool:
        """Whether the assignment in force was made with other partition counts."""
        return (
            state.state in (STABLE, COMPLETING)
            and {t: n for t, n in counts.items() if n > 0} != state.partition_counts
        )

    def act(self, *, check_partitions: bool) -> None:
        """Do what is due, in one transaction: the transaction itself removes dead and
        expired members (``GroupStore.transaction``); then a rebalance for changed partition
        counts (if asked), then completing the pending round if it can complete."""
        with self.store.transaction() as st:
            if check_partitions:
                st.check_partitions(
                    self.partition_counts(st.subscribed_topics()), time.monotonic_ns()
                )
            self._complete(st)

    def _complete(self, st: GroupState) -> None:
        """In a transaction: assign and move to the next generation if every member joined."""
        if st.state != PREPARING:
            return
        counts = self.partition_counts(st.subscribed_topics())
        st.maybe_complete(counts, get_assignor, time.monotonic_ns())

    # ------------------------------------------------------------------ offsets
    def commit(
        self,
        offsets: dict[TopicPartition, OffsetAndMetadata],
        member_id: str,
        generation: int,
        *,
        sync: bool,
    ) -> None:
        """Kafka's OffsetCommit: under the group lock (shared), check that ``member_id`` of
        ``generation`` still owns every partition, then append to the offset log.

        :raises CommitFailedError: it does not (the group rebalanced since).
        """
        with self.store.locked(exclusive=False):
            state = self.store.load()
            try:
                state.validate_commit(member_id, generation, offsets)
            except StaleMemberError as e:
                raise CommitFailedError(
                    f"commit failed: {e}; the group has rebalanced since (poll() rejoins)"
                ) from None
            self.offsets.commit(offsets, generation=generation, member_id=member_id, sync=sync)

    def commit_standalone(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], *, sync: bool
    ) -> None:
        """A commit by a consumer using ``assign()``: accepted while the group has no
        active members (Kafka's standalone consumer), with generation -1.

        :raises CommitFailedError: the group has members.
        """
        with self.store.locked(exclusive=False):
            state = self.store.load()
            if state.members:
                raise CommitFailedError(
                    f"commit failed: group {self.store.group_id!r} has active members; a "
                    "consumer using assign() may only commit for a group nobody is subscribed to"
                )
            self.offsets.commit(dict(offsets), generation=-1, member_id="", sync=sync)
