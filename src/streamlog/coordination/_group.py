"""The consumer-group state machine: membership, generations and rebalances, with no I/O.

This is Kafka's classic group coordinator (``ClassicGroup``) reduced to a
value that any member process can load, change and store back while it holds
the group lock (``_groupstore.GroupStore`` is the I/O shell). Every method is
a pure function of the state, its arguments and the clock value passed in, so
tests drive it directly, step by step, without processes or sleeps.

States (Kafka's names)::

    Empty ──join──▶ PreparingRebalance ──all members joined──▶ CompletingRebalance
      ▲                    ▲   │                                     │ all synced
      └──last member goes──┘   └──────────────◀── any trigger ───── Stable

Protocol of one rebalance:

1. A trigger (a member joins or leaves, a member dies or its session times
   out, a subscription or a partition count changes, a member asks) moves the
   group to PreparingRebalance and clears every member's ``joined`` mark.
2. Each member notices, gives up what it must (eager: everything;
   cooperative: only topics it no longer wants) and calls ``join`` with what
   it still reads (``owned``). ``owned`` can only shrink on a join.
3. When every member has joined, ``maybe_complete`` picks the protocol
   (each member votes for its most preferred assignor that every member
   supports), runs the assignor, bumps ``generation`` and hands each member
   its ``assignment``. A partition another member still owns is withheld
   (``cooperative_filter``), so a partition never has two owners: it moves
   in a later round, after its owner gave it up and rejoined.
4. Each member calls ``sync``: it now reads exactly its assignment. When all
   have synced the group is Stable.

A member that does not rejoin before the rebalance deadline (the largest
``rebalance_timeout_ms``) is removed; if its lease (last heartbeat plus its
session timeout) has not run out, its partitions are quarantined until it
does, because the process may still be reading them.

Liveness is an input: the shell passes each member's last heartbeat (and
whether its process is gone) through ``observe`` before calling the methods.
A dynamic member whose process died is removed at once (its partitions are
free: the process cannot read them any more); a static member
(``group_instance_id``) keeps its assignment until its session times out, so
a restart within the session timeout gets the same partitions back without a
rebalance.

Invariant (``_check``): the ``owned`` sets of the members and the quarantine
are pairwise disjoint. "Owned" is what a member may read now; the client
layer only reads partitions the group lists as owned by it.

Not thread-safe; the shell serializes access with the group lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._names import is_name
from .._structs import TopicPartition
from ._assignors import COOPERATIVE, Assignor, MemberSubscription, cooperative_filter

__all__ = [
    "COMPLETING",
    "DEAD",
    "EMPTY",
    "PREPARING",
    "STABLE",
    "GroupState",
    "InconsistentProtocolError",
    "Member",
    "StaleMemberError",
]

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"
STATES = (EMPTY, PREPARING, COMPLETING, STABLE, DEAD)
_MS = 1_000_000  # ns per ms


class StaleMemberError(Exception):
    """The member is not in the group (any more), or names an old generation."""


class InconsistentProtocolError(Exception):
    """A joining member shares no assignor with the members already in the group."""


def _mapping(value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, not {type(value).__name__}")
    return value


# Bounds of what a state file may hold: generations and times are int64 in Kafka and
# here (time.monotonic_ns()); anything outside is damage, not a value to compute with.
_MAX = 2**62
_MAX_MS = 2**31 - 1


def _int(value: Any, low: int = 0, high: int = _MAX) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"expected an int in [{low}, {high}], got {value!r}"[:200])
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a str, not {type(value).__name__}")
    return value


def _name(value: Any) -> str:
    """A member id, topic or group name read from disk: it may become a file name."""
    if not is_name(value):
        raise ValueError(f"not a valid name: {value!r}"[:200])
    return str(value)


def _tps(items: Iterable[Any]) -> tuple[TopicPartition, ...]:
    return tuple(sorted({TopicPartition(_name(t), _int(p, 0, _MAX_MS)) for t, p in items}))


@dataclass
class Member:
    """One member as the group records it."""

    member_id: str
    client_id: str
    instance_id: str | None
    topics: tuple[str, ...]
    protocols: tuple[str, ...]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    joined: int = -1  # the generation this member joined the pending rebalance for
    owned: tuple[TopicPartition, ...] = ()  # what it may read now
    owned_generation: int = -1  # the generation in which ``owned`` was granted (sticky claims)
    assignment: tuple[TopicPartition, ...] = ()  # its share of the current generation
    synced: int = -1  # the generation whose assignment it acknowledged
    alive: bool = True  # False: its process is gone (a static member waiting for a restart)

    def to_wire(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "client_id": self.client_id,
            "instance_id": self.instance_id,
            "topics": list(self.topics),
            "protocols": list(self.protocols),
            "session_timeout_ms": self.session_timeout_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "joined": self.joined,
            "owned": [list(tp) for tp in self.owned],
            "owned_generation": self.owned_generation,
            "assignment": [list(tp) for tp in self.assignment],
            "synced": self.synced,
            "alive": self.alive,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Member:
        """Parse what ``to_wire`` made; ``KeyError``/``TypeError``/``ValueError`` if malformed
        or out of range (a member id that is not a valid file name is damage)."""
        instance = d["instance_id"]
        alive = d["alive"]
        if not isinstance(alive, bool):
            raise TypeError("alive must be a bool")
        return cls(
            member_id=_name(d["member_id"]),
            client_id=_str(d["client_id"]),
            instance_id=None if instance is None else _name(instance),
            topics=tuple(_name(t) for t in d["topics"]),
            protocols=tuple(_str(p) for p in d["protocols"]),
            session_timeout_ms=_int(d["session_timeout_ms"], 0, _MAX_MS),
            rebalance_timeout_ms=_int(d["rebalance_timeout_ms"], 0, _MAX_MS),
            joined=_int(d["joined"], -1),
            owned=_tps(d["owned"]),
            owned_generation=_int(d["owned_generation"], -1),
            assignment=_tps(d["assignment"]),
            synced=_int(d["synced"], -1),
            alive=alive,
        )


@dataclass
class GroupState:
    """One consumer group (see the module docstring). Times are ``time.monotonic_ns()``."""

    group_id: str
    generation: int = 0
    state: str = EMPTY
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)  # in join order
    partition_counts: dict[str, int] = field(default_factory=dict)
    rebalance_deadline: int = 0
    quarantine: dict[TopicPartition, int] = field(default_factory=dict)
    # inputs from the shell, not stored: last heartbeat per member (ns)
    heartbeats: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ wire
    def to_wire(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "generation": self.generation,
            "state": self.state,
            "protocol": self.protocol,
            "leader": self.leader,
            "members": [m.to_wire() for m in self.members.values()],
            "partition_counts": dict(self.partition_counts),
            "rebalance_deadline": self.rebalance_deadline,
            "quarantine": [
                [tp.topic, tp.partition, until] for tp, until in self.quarantine.items()
            ],
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> GroupState:
        """Parse what ``to_wire`` made; ``KeyError``/``TypeError``/``ValueError`` if malformed."""
        if not isinstance(d, Mapping):
            raise TypeError("group state must be an object")
        state = str(d["state"])
        if state not in STATES:
            raise ValueError(f"unknown group state {state!r}")
        members = [Member.from_wire(m) for m in d["members"]]
        leader = d["leader"]
        protocol = d["protocol"]
        by_id = {m.member_id: m for m in members}
        if len(by_id) != len(members):
            raise ValueError("a member id appears twice")
        if leader is not None and leader not in by_id:
            raise ValueError("the leader is not a member")
        return cls(
            group_id=_name(d["group_id"]),
            generation=_int(d["generation"]),
            state=state,
            protocol=None if protocol is None else _str(protocol),
            leader=leader,
            members=by_id,
            partition_counts={
                _name(t): _int(n, 0, _MAX_MS) for t, n in _mapping(d["partition_counts"]).items()
            },
            rebalance_deadline=_int(d["rebalance_deadline"]),
            quarantine={
                TopicPartition(_name(t), _int(p, 0, _MAX_MS)): _int(u)
                for t, p, u in d["quarantine"]
            },
        )

    # ------------------------------------------------------------------ queries
    def lease_until(self, member: Member) -> int:
        """When ``member``'s right to read its partitions ends if it sends no more heartbeats."""
        hb = self.heartbeats.get(member.member_id)
        if hb is None:
            return 0
        return hb + member.session_timeout_ms * _MS

    def owner_of(self, tp: TopicPartition) -> str | None:
        for m in self.members.values():
            if tp in m.owned:
                return m.member_id
        return None

    def subscribed_topics(self) -> set[str]:
        out: set[str] = set()
        for m in self.members.values():
            out.update(m.topics)
        return out

    def needs_join(self, member_id: str) -> bool:
        """Whether ``member_id`` must (re)join: a rebalance is pending that it has not joined."""
        m = self.members.get(member_id)
        return m is not None and self.state == PREPARING and m.joined != self.generation + 1

    # ------------------------------------------------------------------ transitions
    def observe(self, heartbeats: Mapping[str, int], gone: Iterable[str], now: int) -> None:
        """Record heartbeats; handle members whose process is gone; expire sessions; time out
        the rebalance; drop expired quarantine. Call before any other method."""
        self.heartbeats = dict(heartbeats)
        for member_id in gone:
            self.member_gone(member_id, now)
        self.expire_sessions(now)
        self.check_rebalance_deadline(now)
        for tp, until in list(self.quarantine.items()):
            if until <= now:
                del self.quarantine[tp]

    def trigger(self, now: int) -> None:
        """Start a rebalance (no-op while one is being prepared)."""
        if self.state in (PREPARING, DEAD):
            return
        if not self.members:
            self._to_empty()
            return
        self.state = PREPARING
        for m in self.members.values():
            m.joined = -1
        longest = max(m.rebalance_timeout_ms for m in self.members.values())
        self.rebalance_deadline = now + longest * _MS

    def _to_empty(self) -> None:
        if self.state != EMPTY:
            self.generation += 1
        self.state = EMPTY
        self.protocol = None
        self.leader = None
        self.rebalance_deadline = 0
        self.partition_counts = {}

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
        now: int,
    ) -> Member:
        """A member (new, static restart or known) asks to take part in the next generation."""
        owned = tuple(owned)
        if not protocols:
            raise ValueError("a member needs at least one assignor")
        others = [m for m in self.members.values() if m.member_id != member_id]
        if others and not any(all(p in m.protocols for m in others) for p in protocols):
            raise InconsistentProtocolError(
                f"none of {list(protocols)} is supported by every member of group {self.group_id!r}"
            )
        topics_t = tuple(sorted(set(topics)))
        known = self.members.get(member_id)
        if known is not None:
            reported = set(_tps(owned))
            known.owned = tuple(tp for tp in known.owned if tp in reported)
            changed = known.topics != topics_t or known.protocols != tuple(protocols)
            known.topics = topics_t
            known.protocols = tuple(protocols)
            known.session_timeout_ms = session_timeout_ms
            known.rebalance_timeout_ms = rebalance_timeout_ms
            known.alive = True
            if self.state != PREPARING or changed:
                self.trigger(now)
            known.joined = self.generation + 1
            return known
        if owned:
            # Only a member the group removed (expired, late, fenced) can claim to hold
            # partitions under an id the group does not know: it must drop them first.
            raise StaleMemberError(
                f"{member_id} is not a member of group {self.group_id!r}; it must give up "
                "its partitions and join as a new member"
            )
        new = Member(
            member_id=member_id,
            client_id=client_id,
            instance_id=instance_id,
            topics=topics_t,
            protocols=tuple(protocols),
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
        )
        old = None
        if instance_id is not None:
            old = next((m for m in others if m.instance_id == instance_id), None)
        if old is not None:
            return self._replace_static(old, new, now)
        self.members[member_id] = new
        if self.leader not in self.members:
            self.leader = member_id  # Kafka: the first joiner leads
        self.trigger(now)
        if self.state == PREPARING:
            new.joined = self.generation + 1
        return new

    def _replace_static(self, old: Member, new: Member, now: int) -> Member:
        """A static member came back under a new member id: it takes the old one's place."""
        del self.members[old.member_id]
        if self.leader == old.member_id:
            self.leader = new.member_id
        old_lease = self.lease_until(old)
        free = not old.alive or old_lease <= now
        if not free:
            # The old process still runs (a duplicate instance id): it is fenced, but it
            # may read its partitions until its lease runs out.
            for tp in old.owned:
                self.quarantine[tp] = old_lease
        same = old.topics == new.topics and old.protocols == new.protocols
        new.assignment = old.assignment
        self.members[new.member_id] = new
        if (
            free
            and same
            and self.state in (STABLE, COMPLETING)
            and (old.synced == self.generation or not old.alive)
        ):
            # Kafka's static membership: the restarted member gets its partitions back,
            # with no rebalance.
            new.owned = old.assignment
            new.owned_generation = self.generation
            new.synced = self.generation
            return new
        # otherwise the new process holds nothing yet (the old one's partitions are free,
        # or quarantined); a rebalance hands them out
        self.trigger(now)
        if self.state == PREPARING:
            new.joined = self.generation + 1
        return new

    def leave(self, member_id: str, now: int) -> None:
        """A member leaves cleanly (it stopped reading everything first)."""
        if self.members.pop(member_id, None) is None:
            return
        self._after_removal(member_id, now)

    def _after_removal(self, member_id: str, now: int) -> None:
        self.heartbeats.pop(member_id, None)
        if self.leader == member_id:
            self.leader = next(iter(self.members), None)
        if not self.members:
            self._to_empty()
        else:
            self.trigger(now)

    def member_gone(self, member_id: str, now: int) -> None:
        """The member's process is gone (its liveness lock was released by the kernel)."""
        m = self.members.get(member_id)
        if m is None:
            return
        if m.instance_id is not None:
            # static: keep its place (and assignment) until its session times out
            m.alive = False
            m.owned = ()
            self._maybe_stable()
            return
        del self.members[member_id]
        self._after_removal(member_id, now)

    def expire_sessions(self, now: int) -> list[str]:
        """Remove members whose last heartbeat is older than their session timeout."""
        expired = [
            m.member_id
            for m in self.members.values()
            if m.member_id in self.heartbeats and self.lease_until(m) <= now
        ]
        for member_id in expired:
            del self.members[member_id]  # its lease ran out: its partitions are free
            self._after_removal(member_id, now)
        return expired

    def expire_member(self, member_id: str, now: int) -> bool:
        """Remove ``member_id`` as ``expire_sessions`` does when its session runs out, whatever
        its heartbeats say (its lease counts as ended: nothing is quarantined). For tests
        that simulate a session timeout (``streamlog.compat``). False if it is not a member."""
        if self.members.pop(member_id, None) is None:
            return False
        self._after_removal(member_id, now)
        return True

    def check_rebalance_deadline(self, now: int) -> list[str]:
        """Past the deadline of a pending rebalance, remove the members that did not join."""
        if self.state != PREPARING or now < self.rebalance_deadline:
            return []
        late = [m for m in self.members.values() if m.joined != self.generation + 1]
        for m in late:
            lease = self.lease_until(m)
            if m.alive and lease > now:
                for tp in m.owned:
                    self.quarantine[tp] = lease
            del self.members[m.member_id]
            self.heartbeats.pop(m.member_id, None)
            if self.leader == m.member_id:
                self.leader = None
        if not self.members:
            self._to_empty()
        elif self.leader is None:
            self.leader = next(iter(self.members))
        return [m.member_id for m in late]

    def check_partitions(self, counts: Mapping[str, int], now: int) -> bool:
        """Start a rebalance if a subscribed topic's partition count differs from the one the
        current assignment was made with (created, grown or deleted topics)."""
        if self.state not in (STABLE, COMPLETING):
            return False
        wanted = self.subscribed_topics()
        current = {t: n for t, n in counts.items() if t in wanted and n > 0}
        if current != self.partition_counts:
            self.trigger(now)
            return True
        return False

    def choose_protocol(self) -> str:
        """Kafka's vote: each member names its most preferred assignor that all support."""
        members = list(self.members.values())
        common = [p for p in members[0].protocols if all(p in m.protocols for m in members)]
        if not common:
            raise InconsistentProtocolError(
                f"the members of group {self.group_id!r} share no assignor"
            )
        votes: dict[str, int] = {}
        for m in members:
            choice = next(p for p in m.protocols if p in common)
            votes[choice] = votes.get(choice, 0) + 1
        best = max(votes.values())
        # ties go to the leader's (first member's) preference
        return next(p for p in common if votes.get(p) == best)

    def maybe_complete(
        self,
        counts: Mapping[str, int],
        assignor_for: Callable[[str], Assignor],
        now: int,
    ) -> bool:
        """If every member has joined (and no partition is quarantined), assign and move to
        CompletingRebalance with the next generation. Returns whether it did."""
        if self.state != PREPARING:
            return False
        if any(m.joined != self.generation + 1 for m in self.members.values()):
            return False
        if self.quarantine and max(self.quarantine.values()) > now:
            return False
        self.quarantine.clear()
        if not self.members:
            self._to_empty()
            return True
        protocol = self.choose_protocol()
        assignor = assignor_for(protocol)
        wanted = self.subscribed_topics()
        usable = {t: n for t, n in counts.items() if t in wanted and n > 0}
        # What each member holds now (the safety filter works on this), and what it
        # claims for stickiness: eager members rejoin holding nothing, so their claim is
        # their previous share, which Kafka's eager sticky assignor sends as userData.
        held = [
            MemberSubscription(
                member_id=m.member_id,
                topics=frozenset(m.topics),
                owned=m.owned,
                generation=m.owned_generation,
                group_instance_id=m.instance_id,
            )
            for m in self.members.values()
        ]
        claims = [
            sub
            if sub.owned or not m.assignment
            else MemberSubscription(
                member_id=m.member_id,
                topics=frozenset(m.topics),
                owned=m.assignment,
                generation=self.generation,
                group_instance_id=m.instance_id,
            )
            for sub, m in zip(held, self.members.values(), strict=True)
        ]
        result = assignor.assign(usable, claims)
        if assignor.protocol == COOPERATIVE or any(m.owned for m in self.members.values()):
            result = cooperative_filter(result, held)
        self.generation += 1
        self.protocol = protocol
        if self.leader not in self.members:
            self.leader = next(iter(self.members))
        self.partition_counts = usable
        self.rebalance_deadline = 0
        for m in self.members.values():
            m.assignment = _tps(result.get(m.member_id, ()))
            # Granted partitions are the member's from now on; what it must give up stays
            # its own until it syncs (cooperative revocation).
            # (a dead static member's share waits for its restart, owned by nobody)
            m.owned = tuple(sorted(set(m.owned) | set(m.assignment))) if m.alive else ()
            m.owned_generation = self.generation
            m.synced = -1
        self.state = COMPLETING
        return True

    def sync(self, member_id: str, generation: int) -> Member:
        """The member reads exactly its assignment of ``generation`` now."""
        m = self.members.get(member_id)
        if m is None:
            raise StaleMemberError(f"{member_id} is not a member of group {self.group_id!r}")
        if generation != self.generation or self.state not in (COMPLETING, STABLE, PREPARING):
            raise StaleMemberError(
                f"generation {generation} of group {self.group_id!r} is over "
                f"(now {self.generation}, {self.state})"
            )
        if m.joined == self.generation + 1:
            return m  # it already gave up its partitions for the next round: nothing to adopt
        m.owned = m.assignment
        m.synced = generation
        self._maybe_stable()
        return m

    def _maybe_stable(self) -> None:
        if self.state == COMPLETING and all(
            x.synced == self.generation or not x.alive for x in self.members.values()
        ):
            self.state = STABLE

    def validate_commit(
        self, member_id: str, generation: int, partitions: Iterable[TopicPartition]
    ) -> None:
        """Raise ``StaleMemberError`` unless ``member_id`` of ``generation`` owns ``partitions``."""
        m = self.members.get(member_id)
        if m is None:
            raise StaleMemberError(f"{member_id} is no longer a member of group {self.group_id!r}")
        if generation != self.generation:
            raise StaleMemberError(
                f"generation {generation} of group {self.group_id!r} is over "
                f"(now {self.generation})"
            )
        owned = set(m.owned)
        missing = [tp for tp in partitions if tp not in owned]
        if missing:
            raise StaleMemberError(f"{missing} not assigned to {member_id}")

    # ------------------------------------------------------------------ invariants
    def _check(self) -> None:
        assert self.state in STATES, self.state
        assert self.generation >= 0
        if self.state == EMPTY:
            assert not self.members, "an Empty group has no members"
        if self.members:
            assert self.state != EMPTY
            assert self.leader in self.members, (self.leader, list(self.members))
        seen: dict[TopicPartition, str] = {}
        for m in self.members.values():
            assert len(set(m.owned)) == len(m.owned)
            for tp in m.owned:
                assert tp not in seen, f"{tp} owned by {seen[tp]} and {m.member_id}"
                assert tp not in self.quarantine, f"{tp} owned by {m.member_id} and quarantined"
                seen[tp] = m.member_id
            if not m.alive:
                assert m.instance_id is not None and not m.owned
        instances = [m.instance_id for m in self.members.values() if m.instance_id is not None]
        assert len(instances) == len(set(instances)), "duplicate static instance"
        if self.state in (COMPLETING, STABLE):
            given: set[TopicPartition] = set()
            for m in self.members.values():
                for tp in m.assignment:
                    assert tp not in given, f"{tp} assigned twice"
                    assert tp.topic in m.topics, f"{tp} assigned to a member not subscribed"
                    given.add(tp)
        if self.state == STABLE:
            for m in self.members.values():
                if m.alive:
                    assert m.synced == self.generation and m.owned == m.assignment, m
        if self.state == PREPARING:
            assert self.rebalance_deadline > 0
