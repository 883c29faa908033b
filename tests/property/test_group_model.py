"""The consumer-group state machine (``GroupState``) driven by simulated member processes.

A hypothesis ``RuleBasedStateMachine`` with a fake clock. Each simulated process does
what ``clients/_membership.py`` does: it joins (eager members give up everything first,
cooperative ones only topics they no longer want), syncs a completed assignment (a
cooperative member that gave something up rejoins at once), heartbeats, notices it was
removed (and rejoins, or stops if another process took its static instance id), leaves,
or dies. Every group operation is a transaction as in ``_groupstore.GroupStore``: the
state is read back from its JSON wire form, ``observe`` gets every member's heartbeat and
the members whose process is gone at ``now``, and the operation itself runs ``skew`` ns
later (the shell samples the clock again after ``observe``).

After every step:

* ``_check()``; the generation never goes back;
* safety, on the processes' side: no partition is read by two processes at once (a
  process reads its local assignment while its lease - last heartbeat plus session
  timeout - holds, also after the group removed it, until it notices), and a live
  member reads only partitions the group lists as owned by it;
* in Stable: each assignment lies in the member's subscribed topics and the partition
  counts the assignment was made with, and (no quarantine, no member about to rejoin)
  every partition of the subscribed topics is assigned to someone.

Liveness: the ``settle`` rule and ``teardown`` stop all churn and keep stepping the
processes, ticking the coordinator and advancing the clock (live processes heartbeat);
the group must reach Stable, with every process reading exactly its assignment and
every partition assigned, within a bounded number of rounds.

Run longer with ``pytest --soak`` or ``STREAMLOG_SOAK=1``.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from streamlog._structs import TopicPartition
from streamlog.coordination._assignors import get_assignor
from streamlog.coordination._group import (
    EMPTY,
    PREPARING,
    STABLE,
    GroupState,
    InconsistentProtocolError,
    StaleMemberError,
)
from tests._group_helpers import MS, can_sync, sane

ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")
COOPERATIVE = "cooperative-sticky"
TOPICS = ("a", "b", "c")
INSTANCES = ("s0", "s1", "s2")
MAX_RUNNING = 5
SETTLE_ROUNDS = 80
SETTLE_STEP_MS = 250

# Bugs of _group.py this model found (regression tests in tests/unit/test_group_state.py),
# now fixed: the flags stay so the model can be pointed at the old behaviour again.
#   test_quarantine_holds_each_partition_until_its_own_lease
AVOID_QUARANTINE_MIN = False
#   test_a_removed_member_rejoining_with_owned_partitions_is_told_it_is_stale
#   (with the flag the simulated member behaves as if join raised StaleMemberError)
AVOID_REMOVED_REJOIN = False
#   test_a_static_restart_after_the_old_lease_ended_strands_no_partition
AVOID_STALE_STATIC_CARRY = False


@dataclass
class Proc:
    """One simulated consumer process (the member side of the protocol)."""

    name: str
    instance_id: str | None
    topics: tuple[str, ...]
    protocols: tuple[str, ...]
    session_ms: int
    rebalance_ms: int
    member_id: str | None = None
    local: set[TopicPartition] = field(default_factory=set)  # what it reads
    lease_end: int = 0
    running: bool = True
    generation: int = -1
    need_join: bool = True
    lost: bool = False

    @property
    def cooperative(self) -> bool:
        return all(p == COOPERATIVE for p in self.protocols)


class GroupModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.g = GroupState("g")
        self.now = 1_000 * MS
        self.skew = 0
        self.common = "range"
        self.topics: tuple[str, ...] = TOPICS
        self.counts: dict[str, int] = {}
        self.procs: list[Proc] = []
        self.proc_of: dict[str, Proc] = {}  # member id -> process
        self.hb: dict[str, int] = {}  # member id -> last heartbeat in its member file
        self.ids = itertools.count()
        self.max_generation = 0

    # ------------------------------------------------------------------ setup

    @initialize(
        data=st.data(),
        common=st.sampled_from((*ASSIGNORS, COOPERATIVE)),  # (cooperative: twice as often)
        skew_ms=st.sampled_from([0, 1, 5, 20]),
        n_topics=st.integers(2, 3),
        counts=st.lists(st.integers(1, 4), min_size=3, max_size=3),
        members=st.integers(0, 4),
    )
    def setup(
        self,
        data: st.DataObject,
        common: str,
        skew_ms: int,
        n_topics: int,
        counts: list[int],
        members: int,
    ) -> None:
        self.common = common
        self.skew = skew_ms * MS
        self.topics = TOPICS[:n_topics]
        self.counts = dict(zip(self.topics, counts, strict=False))
        for _ in range(members):
            self.start(data, data.draw(st.booleans()))

    # ------------------------------------------------------------------ helpers

    def running(self) -> list[Proc]:
        return [p for p in self.procs if p.running]

    def pick(self, i: int) -> Proc | None:
        procs = self.running()
        return procs[i % len(procs)] if procs else None

    def current_counts(self) -> dict[str, int]:
        wanted = self.g.subscribed_topics()
        return {t: n for t, n in self.counts.items() if n > 0 and t in wanted}

    def begin(self) -> int:
        """Start a transaction: reload the stored state, observe; the operation's time."""
        wire = json.loads(json.dumps(self.g.to_wire()))
        self.g = GroupState.from_wire(wire)
        assert self.g.to_wire() == wire
        heartbeats = {mid: self.hb[mid] for mid in self.g.members if mid in self.hb}
        gone = [
            mid
            for mid, m in self.g.members.items()
            if m.alive and not self.proc_of[mid].running
        ]
        before = set(self.g.members)
        self.g.observe(heartbeats, gone, self.now)
        if before - set(self.g.members):
            event("observe removed a member")
        if self.g.quarantine:
            event("quarantine")
        return self.now + self.skew

    def complete(self, t: int) -> None:
        if self.g.state != PREPARING:
            return
        q = self.g.quarantine.values()
        if AVOID_QUARANTINE_MIN and any(u <= t for u in q) and any(u > t for u in q):
            event("avoided: quarantine min")
            t = self.now  # the time of observe: every entry left is still running
        self.g.maybe_complete(self.current_counts(), get_assignor, t)

    def coordinate(self) -> None:
        """The heartbeat thread acting as coordinator: partitions, then completion."""
        t = self.begin()
        self.g.check_partitions(self.current_counts(), t)
        self.complete(t)
        self.now = t

    def heartbeat(self, proc: Proc) -> None:
        if proc.member_id is None or proc.lost or not proc.running:
            return
        if proc.member_id in self.g.members:
            self.hb[proc.member_id] = self.now
            proc.lease_end = self.now + proc.session_ms * MS
        else:
            proc.lost = True  # fenced: it finds out it was removed

    def drop_file(self, proc: Proc) -> None:
        if proc.member_id is not None:
            self.hb.pop(proc.member_id, None)
        proc.member_id = None
        proc.lease_end = 0

    # ------------------------------------------------------------------ the member side

    def advance(self, proc: Proc) -> bool:
        """``Membership._advance``: one protocol step; whether it did something."""
        if not proc.running:
            return False
        if proc.member_id is not None and not proc.lost and self.now >= proc.lease_end:
            self.heartbeat(proc)
        me = self.g.members.get(proc.member_id) if proc.member_id is not None else None
        if proc.member_id is not None and (proc.lost or me is None):
            self.handle_lost(proc)
            if not proc.running:
                return False
            me = None
        if me is None:
            self.join(proc)
            return True
        assert proc.member_id is not None
        if self.g.needs_join(proc.member_id) or proc.need_join:
            if proc.cooperative:
                proc.local = {tp for tp in proc.local if tp.topic in proc.topics}
            else:
                proc.local = set()
            self.join(proc)
            return True
        g = self.g
        if (me.synced < g.generation or proc.generation != g.generation) and can_sync(g, me):
            self.sync(proc)
            return True
        return False

    def handle_lost(self, proc: Proc) -> None:
        fenced = proc.instance_id is not None and any(
            m.instance_id == proc.instance_id and m.member_id != proc.member_id
            for m in self.g.members.values()
        )
        self.drop_file(proc)
        proc.local = set()  # on_partitions_lost
        proc.generation = -1
        proc.lost = False
        proc.need_join = True
        if fenced:
            event("fenced static process")
            proc.running = False  # FencedInstanceIdError: this consumer is done

    def join(self, proc: Proc) -> None:
        if proc.member_id is None:
            base = proc.instance_id or proc.name
            member_id = f"{base}-{next(self.ids)}"
            proc.member_id = member_id
            self.proc_of[member_id] = proc
            self.hb[member_id] = self.now
            proc.lease_end = self.now + proc.session_ms * MS
        member_id = proc.member_id
        was_member = member_id in self.g.members
        t = self.begin()
        g = self.g
        if AVOID_REMOVED_REJOIN and was_member and member_id not in g.members and proc.local:
            event("avoided: removed member rejoining")
            self.handle_lost(proc)  # removed by this very observe: as if join said stale
            self.now = t
            return
        if AVOID_STALE_STATIC_CARRY and proc.instance_id is not None and not was_member:
            old = next(
                (
                    m
                    for m in g.members.values()
                    if m.instance_id == proc.instance_id and m.member_id != member_id
                ),
                None,
            )
            if (
                old is not None
                and old.alive
                and old.owned
                and self.hb.get(old.member_id, 0) + old.session_timeout_ms * MS <= t
            ):
                event("avoided: stale static carry")
                t = self.now
        others = [m for m in g.members.values() if m.member_id != member_id]
        refused = bool(others) and not any(
            all(p in m.protocols for m in others) for p in proc.protocols
        )
        try:
            g.join(
                member_id=member_id,
                client_id=proc.name,
                instance_id=proc.instance_id,
                topics=proc.topics,
                protocols=proc.protocols,
                owned=sorted(proc.local),
                session_timeout_ms=proc.session_ms,
                rebalance_timeout_ms=proc.rebalance_ms,
                now=t,
            )
        except StaleMemberError:
            # removed meanwhile, still holding partitions: the client drops them
            # (on_partitions_lost) and joins afresh at its next step
            assert was_member and member_id not in g.members and proc.local
            event("removed member told it is stale")
            self.handle_lost(proc)
            self.now = t
            return
        except InconsistentProtocolError:
            assert refused, "join refused although an assignor is shared"
            assert not was_member or member_id not in g.members
            self.drop_file(proc)
            proc.local = set()
            proc.running = False  # InconsistentGroupProtocolError
            self.now = t
            return
        assert not refused, "join accepted although no assignor is shared"
        if g.state == STABLE:
            event("static restart without a rebalance")
        m = g.members[member_id]
        assert m.topics == tuple(sorted(proc.topics)) and m.alive
        assert set(m.owned) <= proc.local or g.state != PREPARING or m.owned == m.assignment
        self.complete(t)
        self.now = t
        proc.need_join = False

    def sync(self, proc: Proc) -> None:
        assert proc.member_id is not None
        me = self.g.members[proc.member_id]
        generation = self.g.generation
        new = set(me.assignment)
        revoked = proc.local - new
        proc.local -= revoked  # on_partitions_revoked, before the sync
        t = self.begin()
        try:
            self.g.sync(proc.member_id, generation)
        except StaleMemberError:
            self.now = t
            return
        self.now = t
        proc.generation = generation
        if revoked and proc.cooperative:
            event("cooperative revocation")
            proc.need_join = True  # hand the revoked partitions out: a second round
        proc.local = new

    # ------------------------------------------------------------------ rules

    @rule(data=st.data(), static=st.booleans())
    def start(self, data: st.DataObject, static: bool) -> None:
        """A new process joins (dynamic, static, or a second process of a static id)."""
        if len(self.running()) >= MAX_RUNNING:
            return
        instance = data.draw(st.sampled_from(INSTANCES)) if static else None
        topics = data.draw(st.lists(st.sampled_from(self.topics), min_size=1, unique=True))
        if data.draw(st.integers(0, 9)) == 0:  # anything: maybe no shared assignor
            protocols = data.draw(
                st.lists(st.sampled_from(ASSIGNORS), min_size=1, max_size=3, unique=True)
            )
        else:
            extra = data.draw(
                st.just([])
                | st.lists(
                    st.sampled_from([a for a in ASSIGNORS if a != self.common]),
                    max_size=2,
                    unique=True,
                )
            )
            at = data.draw(st.integers(0, len(extra)))
            protocols = [*extra[:at], self.common, *extra[at:]]
        proc = Proc(
            name=f"p{len(self.procs)}",
            instance_id=instance,
            topics=tuple(sorted(topics)),
            protocols=tuple(protocols),
            session_ms=data.draw(st.sampled_from([1_000, 2_000, 3_000])),
            rebalance_ms=data.draw(st.sampled_from([1_000, 1_000, 3_000, 6_000])),
        )
        self.procs.append(proc)
        self.advance(proc)

    @rule(i=st.integers(0, 10), times=st.integers(1, 3))
    def step(self, i: int, times: int) -> None:
        proc = self.pick(i)
        if proc is not None:
            for _ in range(times):
                if not self.advance(proc):
                    break

    @rule(order=st.permutations(range(MAX_RUNNING)))
    def poll_all(self, order: list[int]) -> None:
        """Every running process polls once, in some order."""
        procs = self.running()
        for j in order:
            if j < len(procs):
                self.advance(procs[j])

    @rule(i=st.integers(0, 10), act=st.integers(0, 2))
    def leave(self, i: int, act: int) -> None:
        """``Membership.leave``: dynamic members leave; static ones just stop."""
        proc = self.pick(i)
        if proc is None or act:  # (act: rarer than joins and steps)
            return
        proc.local = set()  # it stops reading first
        proc.running = False
        if proc.instance_id is None and proc.member_id is not None and not proc.lost:
            t = self.begin()
            self.g.leave(proc.member_id, t)
            self.now = t
            self.drop_file(proc)

    @rule(i=st.integers(0, 10), act=st.integers(0, 2))
    def kill(self, i: int, act: int) -> None:
        """kill -9: its lock is released; the next transaction reports it gone."""
        proc = self.pick(i)
        if proc is not None and not act:
            proc.running = False
            proc.local = set()

    @rule(
        ms=st.sampled_from([1, 300, 999, 1_000, 2_000, 3_000, 6_000]) | st.integers(1, 7_000),
        beats=st.lists(st.booleans(), min_size=5, max_size=5),
    )
    def advance_time(self, ms: int, beats: list[bool]) -> None:
        """Time passes; some processes heartbeat (the others are stopped or slow)."""
        self.now += ms * MS
        for j, proc in enumerate(self.running()):
            if beats[j % len(beats)]:
                self.heartbeat(proc)

    @rule(
        i=st.integers(0, 10),
        ms=st.sampled_from([999, 1_000, 3_000, 6_000]) | st.integers(1, 7_000),
    )
    def busy(self, i: int, ms: int) -> None:
        """Every process is busy for a while (their heartbeat threads keep beating, so
        leases hold while rebalance deadlines pass); then one of them polls first."""
        self.now += ms * MS
        for proc in self.running():
            self.heartbeat(proc)
        first = self.pick(i)
        if first is not None:
            self.advance(first)

    @rule(
        data=st.data(),
        beat=st.booleans(),
        then=st.sampled_from(["nothing", "tick", "poll", "start static"]),
    )
    def jump_to_an_edge(self, data: st.DataObject, beat: bool, then: str) -> None:
        """Time passes to just before, at or after a moment where something ends: the
        rebalance deadline, a quarantine, a lease (the shell's coordinator wakes up at
        the earliest quarantine end; ``skew`` later the operation runs). Then maybe
        something happens at that very moment."""
        g = self.g
        edges = set(g.quarantine.values())
        if g.state == PREPARING:
            edges.add(g.rebalance_deadline)
        for m in g.members.values():
            if m.member_id in self.hb:
                edges.add(self.hb[m.member_id] + m.session_timeout_ms * MS)
        ahead = sorted(e for e in edges if e > self.now)
        if not ahead:
            return
        # mostly the next thing that happens (a discrete-event simulation), else any
        edge = ahead[0] if data.draw(st.booleans()) else data.draw(st.sampled_from(ahead))
        delta = data.draw(st.sampled_from([-(self.skew // 2), -(self.skew // 2), -1, 0, 1]))
        self.now = max(self.now, edge + delta)
        if beat:
            for proc in self.running():
                self.heartbeat(proc)
        if then == "tick":
            self.coordinate()
        elif then == "poll":
            poller = self.pick(data.draw(st.integers(0, 10)))
            if poller is not None:
                self.advance(poller)
        elif then == "start static":
            self.start(data, True)

    @rule(data=st.data())
    def set_partitions(self, data: st.DataObject) -> None:
        """A topic grows, or is deleted (0) or recreated with another count."""
        topic = data.draw(st.sampled_from(self.topics))
        self.counts[topic] = data.draw(st.integers(0, 5))

    @rule(i=st.integers(0, 10), data=st.data())
    def resubscribe(self, i: int, data: st.DataObject) -> None:
        proc = self.pick(i)
        if proc is None:
            return
        topics = data.draw(st.lists(st.sampled_from(self.topics), min_size=1, unique=True))
        if tuple(sorted(topics)) != proc.topics:
            proc.topics = tuple(sorted(topics))
            proc.need_join = True

    @rule(data=st.data(), wake=st.booleans())
    def tick(self, data: st.DataObject, wake: bool) -> None:
        """The coordinator runs; with ``wake``, when a quarantine ends (the shell's
        coordinator is due then), observing a little before the operation runs."""
        ends = sorted(set(self.g.quarantine.values()))
        if wake and ends:
            edge = data.draw(st.sampled_from(ends))
            self.now = max(self.now, edge - self.skew // 2)
        self.coordinate()

    @rule(act=st.integers(0, 2))
    def settle(self, act: int) -> None:
        if not act:
            self.converge()

    def teardown(self) -> None:
        self.converge()

    # ------------------------------------------------------------------ liveness

    def converge(self) -> None:
        """No more churn: step everybody, tick, let time pass; the group must settle."""
        for rounds in range(SETTLE_ROUNDS):
            for proc in self.running():
                for _ in range(4):
                    if not self.advance(proc):
                        break
                    self.check()
            self.coordinate()
            self.check()
            if self.settled():
                bucket = "<5" if rounds < 5 else "<20" if rounds < 20 else ">=20"
                event(f"settled in {bucket} rounds")
                return
            self.now += SETTLE_STEP_MS * MS
            for proc in self.running():
                self.heartbeat(proc)
        raise AssertionError(f"the group did not settle: {self.g}\n{self.procs}")

    def settled(self) -> bool:
        g = self.g
        procs = self.running()
        if g.quarantine:
            return False
        if not procs:
            return g.state == EMPTY and not g.members
        if g.state != STABLE:
            return False
        if {m.member_id for m in g.members.values() if m.alive} != {p.member_id for p in procs}:
            return False
        for proc in procs:
            assert proc.member_id is not None
            m = g.members[proc.member_id]
            if proc.need_join or proc.lost or proc.generation != g.generation:
                return False
            if proc.local != set(m.assignment):
                return False
        if g.partition_counts != self.current_counts():
            return False
        assigned = {tp for m in g.members.values() for tp in m.assignment}
        assert assigned == self.all_partitions(g.partition_counts), "settled but incomplete"
        return True

    # ------------------------------------------------------------------ invariants

    @staticmethod
    def all_partitions(counts: dict[str, int]) -> set[TopicPartition]:
        return {TopicPartition(t, n) for t, c in counts.items() for n in range(c)}

    @invariant()
    def group_is_sound(self) -> None:
        self.check()

    def check(self) -> None:
        g = self.g
        # group side: _check(), one owner, nothing owned and quarantined
        sane(g)
        assert g.generation >= self.max_generation, "the generation went back"
        self.max_generation = g.generation

        # process side: one reader per partition at any time
        readers: dict[TopicPartition, str] = {}
        for proc in self.procs:
            if proc.running and self.now < proc.lease_end:
                for tp in proc.local:
                    assert tp not in readers, f"{tp} read by {readers[tp]} and {proc.name}"
                    readers[tp] = proc.name
            member = g.members.get(proc.member_id) if proc.member_id is not None else None
            if proc.running and member is not None and not proc.lost:
                assert member.alive
                assert proc.local <= set(member.owned), (proc, member)

        if g.state == STABLE:
            for m in g.members.values():
                for tp in m.assignment:
                    assert tp.topic in m.topics
                    assert 0 <= tp.partition < g.partition_counts.get(tp.topic, 0)
            rejoining = any(p.need_join for p in self.running() if p.member_id in g.members)
            if not g.quarantine and not rejoining:
                assigned = {tp for m in g.members.values() for tp in m.assignment}
                assert assigned == self.all_partitions(g.partition_counts), (
                    "Stable with partitions nobody is assigned"
                )


def _soak(request: pytest.FixtureRequest) -> bool:
    if os.environ.get("STREAMLOG_SOAK"):
        return True
    try:
        return bool(request.config.getoption("--soak"))
    except ValueError:
        return False


def test_group_model(request: pytest.FixtureRequest) -> None:
    soak = _soak(request)
    run_state_machine_as_test(
        GroupModel,
        settings=settings(
            max_examples=3_000 if soak else 100,
            stateful_step_count=80 if soak else 40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
