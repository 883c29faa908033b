"""The consumer-group state machine (``coordination._group.GroupState``) driven step by step.

No processes, no sleeps: time is the ``now`` argument (ns). Each test drives the pure
machine the way ``clients._membership`` does (join -> maybe_complete -> sync; cooperative
second round; leave; lost) and checks ``_check()`` plus, independently of it, that no
partition is ever in two members' ``owned`` (or in ``owned`` and the quarantine).

Expected assignments marked "reference" are the worked examples of
/work/shared/reference/kafka-semantics.md section 6.3. Six tests near the end pinned
bugs of ``_group.py`` that these tests found; all six are fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from streamlog._structs import TopicPartition
from streamlog.coordination._assignors import get_assignor
from streamlog.coordination._group import (
    COMPLETING,
    EMPTY,
    PREPARING,
    STABLE,
    GroupState,
    InconsistentProtocolError,
    Member,
    StaleMemberError,
)
from tests._group_helpers import (
    COUNTS,
    REBALANCE_MS,
    SESSION_MS,
    S,
    complete,
    join,
    sane,
    sync_all,
    tps,
)

# ------------------------------------------------------------------ helpers
# (join, complete, sync_all, sane, tps: tests/_group_helpers.py)


def owned(g: GroupState) -> dict[str, list[int]]:
    return {m.member_id: [tp.partition for tp in m.owned] for m in g.members.values()}


def assigned(g: GroupState) -> dict[str, list[int]]:
    return {m.member_id: [tp.partition for tp in m.assignment] for m in g.members.values()}


def stable(
    ids: Sequence[str],
    *,
    protocols: Sequence[str] = ("range",),
    instances: Mapping[str, str] | None = None,
    counts: Mapping[str, int] = COUNTS,
    topics: Sequence[str] = ("t",),
) -> GroupState:
    """A Stable group of ``ids`` (joined in that order at time 0), generation 1."""
    g = GroupState("g")
    for member_id in ids:
        join(
            g,
            member_id,
            instance=(instances or {}).get(member_id),
            protocols=protocols,
            topics=topics,
        )
        sane(g)
    assert complete(g, counts=counts)
    sync_all(g)
    assert g.state == STABLE and g.generation == 1
    return g


def heartbeat(g: GroupState, now: int, beats: Mapping[str, int] | None = None) -> None:
    """``observe`` with every member's last heartbeat at ``now`` unless given."""
    hb = {m: now for m in g.members} if beats is None else dict(beats)
    g.observe(hb, [], now)
    sane(g)


# ------------------------------------------------------------------ basic life cycle


def test_new_group_is_empty_at_generation_0() -> None:
    g = GroupState("g")
    assert g.state == EMPTY and g.generation == 0
    assert g.members == {} and g.protocol is None and g.leader is None
    assert not g.needs_join("nobody")
    g._check()
    assert not g.maybe_complete(COUNTS, get_assignor, 0)  # nothing pending
    assert not g.check_partitions(COUNTS, 0)  # an Empty group has nothing to redo


def test_first_join_prepares_completes_and_syncs_to_stable() -> None:
    g = GroupState("g")
    m = join(g, "a", 5 * S)
    sane(g)
    assert g.state == PREPARING and g.generation == 0
    assert m.joined == 1 and not g.needs_join("a")
    assert g.rebalance_deadline == 5 * S + REBALANCE_MS * 1_000_000
    assert complete(g, 5 * S)
    assert g.state == COMPLETING and g.generation == 1
    assert g.protocol == "range" and g.leader == "a"
    assert g.partition_counts == COUNTS and g.rebalance_deadline == 0
    assert assigned(g) == {"a": [0, 1, 2, 3, 4, 5]}
    assert g.members["a"].synced == -1
    g.sync("a", 1)
    sane(g)
    assert g.state == STABLE and g.generation == 1
    assert g.members["a"].owned == tps(0, 1, 2, 3, 4, 5) and g.members["a"].synced == 1
    assert not g.maybe_complete(COUNTS, get_assignor, 6 * S)  # nothing pending


def test_a_lone_member_completes_at_once() -> None:
    g = GroupState("g")
    join(g, "a")
    assert g.maybe_complete(COUNTS, get_assignor, 0)  # no waiting for anybody
    assert g.generation == 1 and assigned(g) == {"a": [0, 1, 2, 3, 4, 5]}


def test_second_join_triggers_a_rebalance_the_first_must_rejoin() -> None:
    g = stable(["a"])
    join(g, "b", 1 * S)
    sane(g)
    assert g.state == PREPARING and g.generation == 1
    assert g.needs_join("a") and not g.needs_join("b")
    assert not g.needs_join("nobody")
    assert not complete(g, 1 * S)  # a has not rejoined
    assert g.state == PREPARING and g.generation == 1
    # a keeps reading until it rejoins (eager: with nothing)
    assert owned(g) == {"a": [0, 1, 2, 3, 4, 5], "b": []}
    join(g, "a", 2 * S)
    assert not g.needs_join("a")
    assert complete(g, 2 * S)
    assert g.generation == 2 and g.leader == "a"  # the existing leader stays
    assert assigned(g) == {"a": [0, 1, 2], "b": [3, 4, 5]}
    g.sync("a", 2)
    assert g.state == COMPLETING  # b has not synced
    g.sync("b", 2)
    sane(g)
    assert g.state == STABLE


def test_joining_again_while_preparing_does_not_restart_the_round() -> None:
    g = stable(["a", "b"])
    join(g, "a", 1 * S)
    deadline = g.rebalance_deadline
    join(g, "a", 2 * S)  # same subscription: nothing changes
    assert g.rebalance_deadline == deadline and g.members["a"].joined == 2
    assert g.needs_join("b")


def test_stable_group_rejoin_with_changed_subscription_triggers() -> None:
    g = stable(["a", "b"], topics=("t", "u"), counts={"t": 2, "u": 2})
    join(g, "a", 1 * S, topics=("t",))  # a drops u
    assert g.state == PREPARING and g.members["a"].topics == ("t",)
    join(g, "b", 1 * S, topics=("u", "t"))
    assert complete(g, 1 * S, counts={"t": 2, "u": 2})
    for tp in g.members["a"].assignment:
        assert tp.topic == "t"


# ------------------------------------------------------------------ eager vs cooperative


def test_eager_members_rejoin_with_nothing_and_partitions_move_in_one_round() -> None:
    g = stable(["C0"], protocols=("sticky",))
    assert owned(g) == {"C0": [0, 1, 2, 3, 4, 5]}
    join(g, "C1", 1 * S, protocols=("sticky",))
    join(g, "C0", 1 * S, protocols=("sticky",), owned=())  # eager: revoked everything
    sane(g)
    assert owned(g) == {"C0": [], "C1": []}
    assert complete(g, 1 * S)
    # one round: everything is handed out at once, balanced
    mine, theirs = set(g.members["C0"].assignment), set(g.members["C1"].assignment)
    assert len(mine) == len(theirs) == 3 and mine | theirs == set(tps(0, 1, 2, 3, 4, 5))
    sync_all(g)
    assert g.state == STABLE and g.generation == 2
    assert not g.needs_join("C0") and not g.needs_join("C1")


def test_eager_sticky_reference_example_keeps_the_previous_partitions() -> None:
    # reference: "Sticky eager: C0 owns t x 6p, C1 joins | one round: C0 revokes all,
    # gets [0,1,2]; C1=[3,4,5]" (Kafka's StickyAssignor reads the previous assignment from
    # the member's userData, which survives the eager revocation)
    g = stable(["C0"], protocols=("sticky",))
    join(g, "C1", 1 * S, protocols=("sticky",))
    join(g, "C0", 1 * S, protocols=("sticky",), owned=())
    assert complete(g, 1 * S)
    assert assigned(g) == {"C0": [0, 1, 2], "C1": [3, 4, 5]}


def test_cooperative_sticky_reference_example_two_rounds() -> None:
    coop = ("cooperative-sticky",)
    g = stable(["C0"], protocols=coop)
    assert owned(g) == {"C0": [0, 1, 2, 3, 4, 5]}
    join(g, "C1", 1 * S, protocols=coop)
    assert g.needs_join("C0")
    # cooperative: C0 rejoins still owning everything
    join(g, "C0", 1 * S, protocols=coop, owned=tps(0, 1, 2, 3, 4, 5))
    sane(g)
    assert complete(g, 1 * S)
    # reference round 1: C0=[0,1,2], C1=[] (3-5 withheld: C0 still owns them)
    assert g.generation == 2
    assert assigned(g) == {"C0": [0, 1, 2], "C1": []}
    assert owned(g) == {"C0": [0, 1, 2, 3, 4, 5], "C1": []}
    g.sync("C0", 2)  # C0 revokes 3-5: owned shrinks to its assignment
    sane(g)
    assert owned(g) == {"C0": [0, 1, 2], "C1": []}
    g.sync("C1", 2)
    sane(g)
    assert g.state == STABLE
    # C0 gave something up: it rejoins at once
    join(g, "C0", 2 * S, protocols=coop, owned=tps(0, 1, 2))
    assert g.state == PREPARING and g.needs_join("C1")
    join(g, "C1", 2 * S, protocols=coop, owned=())
    assert complete(g, 2 * S)
    # reference round 2: C1=[3,4,5]
    assert g.generation == 3
    assert assigned(g) == {"C0": [0, 1, 2], "C1": [3, 4, 5]}
    assert owned(g) == {"C0": [0, 1, 2], "C1": [3, 4, 5]}  # nothing was withheld
    sync_all(g)
    assert g.state == STABLE


def test_cooperative_sticky_reference_example_three_to_four_members() -> None:
    coop = ("cooperative-sticky",)
    g = stable(["C0", "C1", "C2"], protocols=coop)
    assert assigned(g) == {"C0": [0, 3], "C1": [1, 4], "C2": [2, 5]}
    join(g, "C3", 1 * S, protocols=coop)
    for member_id in ("C0", "C1", "C2"):
        join(g, member_id, 1 * S, protocols=coop, owned=g.members[member_id].owned)
        sane(g)
    assert complete(g, 1 * S)
    # reference round 1: C0=[0,3] C1=[1,4] C2=[2] C3=[]
    assert assigned(g) == {"C0": [0, 3], "C1": [1, 4], "C2": [2], "C3": []}
    sync_all(g)
    assert g.state == STABLE and owned(g)["C2"] == [2]
    join(g, "C2", 2 * S, protocols=coop, owned=tps(2))  # C2 revoked 5: second round
    for member_id in ("C0", "C1", "C3"):
        join(g, member_id, 2 * S, protocols=coop, owned=g.members[member_id].owned)
    assert complete(g, 2 * S)
    # reference round 2: C3=[5]
    assert assigned(g) == {"C0": [0, 3], "C1": [1, 4], "C2": [2], "C3": [5]}
    sync_all(g)
    assert g.state == STABLE and g.generation == 3


def test_cooperative_unsubscribed_topic_is_revoked_before_the_join() -> None:
    coop = ("cooperative-sticky",)
    counts = {"t": 2, "u": 2}
    g = stable(["a"], protocols=coop, topics=("t", "u"), counts=counts)
    # a drops u: it stops reading u first, then joins with what it still reads
    join(g, "a", 1 * S, protocols=coop, topics=("t",), owned=tps(0, 1))
    assert owned(g) == {"a": [0, 1]}  # owned only shrinks on a join
    assert complete(g, 1 * S, counts=counts)
    assert g.partition_counts == {"t": 2}
    assert assigned(g) == {"a": [0, 1]}


def test_join_cannot_grow_owned() -> None:
    g = stable(["a", "b"])
    join(g, "a", 1 * S, owned=tps(0, 1, 2, 3, 4, 5))  # claims b's partitions too
    sane(g)
    assert owned(g) == {"a": [0, 1, 2], "b": [3, 4, 5]}


# ------------------------------------------------------------------ leaving


def test_leave_triggers_a_rebalance() -> None:
    g = stable(["a", "b"])
    g.leave("b", 1 * S)
    sane(g)
    assert list(g.members) == ["a"] and g.state == PREPARING and g.needs_join("a")
    join(g, "a", 1 * S)
    assert complete(g, 1 * S)
    assert assigned(g) == {"a": [0, 1, 2, 3, 4, 5]} and g.generation == 2
    g.leave("nobody", 2 * S)  # unknown: nothing happens
    assert g.state == COMPLETING


def test_leader_leaving_hands_the_lead_on() -> None:
    g = stable(["a", "b", "c"])
    assert g.leader == "a"
    g.leave("a", 1 * S)
    sane(g)
    assert g.leader == "b"


def test_last_leave_empties_the_group_and_bumps_the_generation() -> None:
    g = stable(["a", "b"])
    g.leave("a", 1 * S)
    g.leave("b", 1 * S)
    sane(g)
    assert g.state == EMPTY and g.members == {}
    assert g.generation == 2  # generations never go back: old commits stay fenced
    assert g.protocol is None and g.leader is None and g.partition_counts == {}
    # a new member starts the next generation
    join(g, "c", 2 * S)
    assert complete(g, 2 * S)
    assert g.generation == 3


def test_leaving_before_the_first_completion_empties_the_group() -> None:
    g = GroupState("g")
    join(g, "a")
    g.leave("a", 1)
    sane(g)
    assert g.state == EMPTY and g.generation == 1


# ------------------------------------------------------------------ dead processes


def test_member_gone_dynamic_is_removed_and_rebalances() -> None:
    g = stable(["a", "b"])
    g.observe({"a": 0, "b": 0}, ["b"], 1 * S)
    sane(g)
    assert list(g.members) == ["a"] and g.state == PREPARING
    join(g, "a", 1 * S)
    assert complete(g, 1 * S)
    assert assigned(g) == {"a": [0, 1, 2, 3, 4, 5]}


def test_member_gone_static_keeps_its_place_without_a_rebalance() -> None:
    g = stable(["a", "b"], instances={"a": "ia"})
    g.member_gone("a", 1 * S)
    sane(g)
    a = g.members["a"]
    assert not a.alive and a.owned == () and a.assignment == tps(0, 1, 2)
    assert g.state == STABLE and g.generation == 1
    g.member_gone("a", 2 * S)  # again: no change
    g.member_gone("nobody", 2 * S)
    assert g.state == STABLE and "a" in g.members


def test_static_restart_within_the_session_keeps_the_assignment_without_a_rebalance() -> None:
    g = stable(["s", "b"], instances={"s": "inst"})
    heartbeat(g, 1 * S)
    g.observe({"s": 1 * S, "b": 2 * S}, ["s"], 2 * S)  # its process dies
    sane(g)
    assert g.state == STABLE
    # restart, new member id, same instance id, same subscription, within the session
    m = join(g, "s2", 5 * S, instance="inst")
    sane(g)
    assert g.state == STABLE and g.generation == 1
    assert "s" not in g.members and m.member_id == "s2"
    assert m.assignment == tps(0, 1, 2) and m.owned == tps(0, 1, 2) and m.synced == 1
    assert g.leader == "s2"  # it takes the old one's place, leadership included
    assert not g.needs_join("b") and not g.needs_join("s2")
    g.sync("s2", 1)  # the new process adopts it as usual
    sane(g)
    g.validate_commit("s2", 1, tps(0, 1, 2))


def test_a_static_member_that_dies_after_joining_is_granted_nothing_to_read() -> None:
    # (regression: maybe_complete used to make the dead member the owner of its share)
    g = GroupState("g")
    join(g, "s", instance="inst")
    join(g, "b")
    g.observe({"s": 0, "b": 0}, ["s"], 1)  # s's process dies while the round is pending
    assert complete(g, 1)
    s = g.members["s"]
    assert s.owned == () and s.assignment == tps(0, 1, 2)  # its share waits for a restart
    g.sync("b", 1)
    assert g.state == STABLE
    # the restart takes the share back without a rebalance
    m = join(g, "s2", 2, instance="inst")
    sane(g)
    assert g.state == STABLE and g.generation == 1 and m.owned == tps(0, 1, 2)


def test_static_restart_with_a_changed_subscription_rebalances() -> None:
    g = stable(["s", "b"], instances={"s": "inst"}, topics=("t", "u"), counts={"t": 6, "u": 2})
    g.observe({"s": 0, "b": 0}, ["s"], 1 * S)
    join(g, "s2", 2 * S, instance="inst", topics=("t",))
    sane(g)
    assert g.state == PREPARING and "s" not in g.members
    assert not g.needs_join("s2") and g.needs_join("b")


def test_static_restart_with_changed_protocols_rebalances() -> None:
    g = stable(["s", "b"], instances={"s": "inst"})
    g.observe({"s": 0, "b": 0}, ["s"], 1 * S)
    join(g, "s2", 2 * S, instance="inst", protocols=("roundrobin", "range"))
    sane(g)
    assert g.state == PREPARING


def test_duplicate_static_instance_fences_and_quarantines_the_old_one() -> None:
    g = stable(["s", "b"], instances={"s": "inst"})
    heartbeat(g, 3 * S)  # s's lease: until 13 s
    lease = 3 * S + SESSION_MS * 1_000_000
    # a second process with the same instance id while the first still runs
    join(g, "s2", 4 * S, instance="inst")
    sane(g)
    assert "s" not in g.members and g.state == PREPARING
    assert g.quarantine == dict.fromkeys(tps(0, 1, 2), lease)
    assert g.members["s2"].owned == ()
    join(g, "b", 4 * S)
    assert not complete(g, 4 * S)  # the old process may still read 0-2
    assert not complete(g, lease - 1)
    assert g.state == PREPARING
    heartbeat(g, lease, {"s2": lease, "b": lease})  # observe drops the ended quarantine
    assert g.quarantine == {}
    assert complete(g, lease)
    assert set(assigned(g)["s2"]) | set(assigned(g)["b"]) == {0, 1, 2, 3, 4, 5}
    with pytest.raises(StaleMemberError):
        g.sync("s", g.generation)  # the fenced process is told so


# ------------------------------------------------------------------ timeouts


def test_expire_sessions_through_observe() -> None:
    g = stable(["a", "b"], protocols=("roundrobin",))
    heartbeat(g, 1 * S)
    # b's heartbeat stops; a keeps beating. Nothing happens until b's lease ends.
    beats = {"a": 10 * S, "b": 1 * S}
    g.observe(beats, [], 11 * S - 1)
    assert g.state == STABLE and set(g.members) == {"a", "b"}
    g.observe(beats, [], 11 * S)
    sane(g)
    assert set(g.members) == {"a"} and g.state == PREPARING
    assert g.quarantine == {}  # its lease is over: its partitions are free at once
    join(g, "a", 11 * S)
    assert complete(g, 11 * S)
    assert assigned(g) == {"a": [0, 1, 2, 3, 4, 5]}


def test_expire_sessions_ignores_members_without_a_heartbeat() -> None:
    g = stable(["a"])
    g.heartbeats = {}
    assert g.expire_sessions(10**15) == []
    g.heartbeats = {"a": 0}
    assert g.expire_sessions(SESSION_MS * 1_000_000) == ["a"]
    sane(g)
    assert g.state == EMPTY and g.generation == 2


def test_each_member_has_its_own_session_timeout() -> None:
    g = GroupState("g")
    join(g, "short", session_ms=1_000)
    join(g, "long", session_ms=20_000)
    complete(g)
    sync_all(g)
    g.observe({"short": 0, "long": 0}, [], 1 * S)
    assert set(g.members) == {"long"}


def test_rebalance_deadline_removes_late_members_and_quarantines_live_ones() -> None:
    g = stable(["a", "b", "c"])
    heartbeat(g, 0)
    join(g, "a", 1 * S)  # trigger: deadline at 31 s
    deadline = 1 * S + REBALANCE_MS * 1_000_000
    assert g.rebalance_deadline == deadline
    assert g.check_rebalance_deadline(deadline - 1) == []
    assert set(g.members) == {"a", "b", "c"}
    # b is alive (heartbeats) but never rejoins; c's process died (static? no: dynamic
    # members that die are removed at once, so make it merely late with an ended lease)
    beats = {"a": deadline, "b": deadline - 1 * S, "c": deadline - SESSION_MS * 1_000_000}
    g.observe(beats, [], deadline)
    sane(g)
    assert set(g.members) == {"a"}
    b_lease = deadline - 1 * S + SESSION_MS * 1_000_000
    # b may still read its partitions until its lease ends; c's lease is over
    assert g.quarantine == dict.fromkeys(tps(2, 3), b_lease)
    assert not complete(g, deadline)
    heartbeat(g, b_lease, {"a": b_lease})
    assert complete(g, b_lease)
    assert assigned(g) == {"a": [0, 1, 2, 3, 4, 5]}


def test_rebalance_deadline_with_a_late_leader_picks_a_new_one() -> None:
    g = stable(["a", "b"])
    join(g, "b", 0)
    late = g.check_rebalance_deadline(REBALANCE_MS * 1_000_000)
    assert late == ["a"]
    sane(g)
    assert g.leader == "b" and g.state == PREPARING
    assert complete(g, REBALANCE_MS * 1_000_000)


def test_rebalance_deadline_removing_everybody_empties_the_group() -> None:
    g = stable(["a"])
    g.trigger(0)
    assert g.check_rebalance_deadline(REBALANCE_MS * 1_000_000) == ["a"]
    sane(g)
    assert g.state == EMPTY and g.generation == 2
    assert g.check_rebalance_deadline(10**15) == []  # not preparing: nothing to do


def test_rebalance_deadline_is_the_longest_rebalance_timeout() -> None:
    g = GroupState("g")
    join(g, "a", 0, rebalance_ms=5_000)
    join(g, "b", 0, rebalance_ms=50_000)
    complete(g)
    sync_all(g)
    g.trigger(1 * S)
    assert g.rebalance_deadline == 51 * S


# ------------------------------------------------------------------ partition counts


def test_check_partitions_grown_subscribed_topic_triggers() -> None:
    g = stable(["a"], counts={"t": 6, "u": 3})
    assert g.partition_counts == {"t": 6}  # only subscribed, existing topics
    assert not g.check_partitions({"t": 6, "u": 3}, 1 * S)
    assert not g.check_partitions({"t": 6, "u": 9}, 1 * S)  # not subscribed: no matter
    assert not g.check_partitions({"t": 6, "u": 0}, 1 * S)
    assert g.state == STABLE
    assert g.check_partitions({"t": 8, "u": 3}, 1 * S)
    assert g.state == PREPARING
    assert not g.check_partitions({"t": 9}, 1 * S)  # already preparing
    join(g, "a", 1 * S)
    assert complete(g, 1 * S, counts={"t": 8})
    assert assigned(g) == {"a": list(range(8))} and g.partition_counts == {"t": 8}


@pytest.mark.parametrize("counts", [{}, {"t": 0}, {"u": 6}])
def test_check_partitions_deleted_subscribed_topic_triggers(counts: dict[str, int]) -> None:
    g = stable(["a"])
    assert g.check_partitions(counts, 1 * S)
    assert g.state == PREPARING
    join(g, "a", 1 * S, owned=())
    assert complete(g, 1 * S, counts=counts)
    assert assigned(g) == {"a": []} and g.partition_counts == {}


def test_check_partitions_created_subscribed_topic_triggers() -> None:
    g = stable(["a"], topics=("t", "new"))
    assert g.partition_counts == {"t": 6}
    assert not g.check_partitions({"t": 6}, 1 * S)
    assert g.check_partitions({"t": 6, "new": 2}, 1 * S)


def test_check_partitions_also_while_completing() -> None:
    g = GroupState("g")
    join(g, "a")
    join(g, "b")
    complete(g)
    assert g.state == COMPLETING
    assert g.check_partitions({"t": 7}, 1 * S)
    assert g.state == PREPARING and g.needs_join("a") and g.needs_join("b")


# ------------------------------------------------------------------ protocols


def protocol_group(prefs: Sequence[Sequence[str]]) -> GroupState:
    g = GroupState("g")
    for i, protocols in enumerate(prefs):
        join(g, f"m{i}", protocols=protocols)
    return g


@pytest.mark.parametrize(
    ("prefs", "chosen"),
    [
        ([["range"]], "range"),
        ([["range", "roundrobin"], ["roundrobin", "range"], ["roundrobin"]], "roundrobin"),
        ([["sticky", "range"], ["range", "sticky"], ["range", "sticky"]], "range"),
        # a tie goes to the first member's preference
        ([["sticky", "range"], ["range", "sticky"]], "sticky"),
        ([["range", "sticky"], ["sticky", "range"]], "range"),
        # a member's first choice that not everybody supports does not count
        (
            [["cooperative-sticky", "range"], ["roundrobin", "range"], ["range", "roundrobin"]],
            "range",
        ),
        (
            [["roundrobin", "range"], ["cooperative-sticky", "roundrobin", "range"]],
            "roundrobin",
        ),
    ],
)
def test_choose_protocol_votes(prefs: list[list[str]], chosen: str) -> None:
    g = protocol_group(prefs)
    assert g.choose_protocol() == chosen
    assert complete(g)
    assert g.protocol == chosen


def test_join_without_a_common_assignor_is_refused() -> None:
    g = protocol_group([["range", "sticky"], ["sticky"]])
    with pytest.raises(InconsistentProtocolError):
        join(g, "x", protocols=("roundrobin", "range"))
    assert "x" not in g.members
    sane(g)
    with pytest.raises(ValueError, match="assignor"):
        join(g, "y", protocols=())
    # a known member changing to something the others do not support is refused too
    with pytest.raises(InconsistentProtocolError):
        join(g, "m1", protocols=("roundrobin",))
    assert g.members["m1"].protocols == ("sticky",)
    # a lone member may change freely
    solo = protocol_group([["range"]])
    join(solo, "m0", protocols=("roundrobin",))
    assert solo.members["m0"].protocols == ("roundrobin",)


def test_choose_protocol_refuses_members_sharing_nothing() -> None:
    g = protocol_group([["range"]])
    g.members["m0"].protocols = ("range",)
    g.members["x"] = Member("x", "c", None, ("t",), ("sticky",), SESSION_MS, REBALANCE_MS)
    with pytest.raises(InconsistentProtocolError):
        g.choose_protocol()


# ------------------------------------------------------------------ commits and sync


def test_validate_commit() -> None:
    g = stable(["a", "b"])
    g.validate_commit("a", 1, tps(0, 1, 2))
    g.validate_commit("a", 1, [])  # nothing to check
    with pytest.raises(StaleMemberError):
        g.validate_commit("a", 1, tps(3))  # b's
    with pytest.raises(StaleMemberError):
        g.validate_commit("a", 0, tps(0))  # an old generation
    with pytest.raises(StaleMemberError):
        g.validate_commit("nobody", 1, tps(0))
    g.leave("b", 1 * S)
    with pytest.raises(StaleMemberError):
        g.validate_commit("b", 1, tps(3))
    # while a rebalance is pending the current owner may still commit
    g.validate_commit("a", 1, tps(0, 1, 2))


def test_sync_of_an_old_generation_or_an_unknown_member_is_stale() -> None:
    g = stable(["a", "b"])
    join(g, "c", 1 * S)
    join(g, "a", 1 * S)
    join(g, "b", 1 * S)
    assert complete(g, 1 * S)
    with pytest.raises(StaleMemberError):
        g.sync("a", 1)
    with pytest.raises(StaleMemberError):
        g.sync("a", 3)
    with pytest.raises(StaleMemberError):
        g.sync("nobody", 2)
    g.sync("a", 2)
    sane(g)


def test_sync_in_an_empty_group_is_stale() -> None:
    g = stable(["a"])
    g.leave("a", 0)
    with pytest.raises(StaleMemberError):
        g.sync("a", g.generation)


def test_sync_after_joining_the_next_round_does_not_regrow_owned() -> None:
    coop = ("cooperative-sticky",)
    g = stable(["a"], protocols=coop)
    join(g, "b", 1 * S, protocols=coop)
    join(g, "a", 1 * S, protocols=coop, owned=tps(0, 1, 2, 3, 4, 5))
    assert complete(g, 1 * S)  # generation 2: a=[0,1,2], b=[]
    # before anybody syncs, another member arrives: a new round
    join(g, "c", 2 * S, protocols=coop)
    assert g.needs_join("a")
    join(g, "a", 2 * S, protocols=coop, owned=tps(0, 1, 2))  # it gave up 3-5 meanwhile
    assert owned(g)["a"] == [0, 1, 2]
    g.sync("a", 2)  # a late sync of generation 2: nothing to adopt
    sane(g)
    assert owned(g)["a"] == [0, 1, 2] and g.members["a"].synced == -1
    assert g.state == PREPARING


def test_sync_while_preparing_adopts_the_current_assignment() -> None:
    g = GroupState("g")
    join(g, "a")
    join(g, "b")
    complete(g)  # a=[0,1,2], b=[3,4,5]
    g.sync("a", 1)
    g.check_partitions({"t": 8}, 1 * S)  # a new round before b synced
    g.sync("b", 1)
    sane(g)
    assert g.state == PREPARING and owned(g) == {"a": [0, 1, 2], "b": [3, 4, 5]}


def test_a_dead_static_member_does_not_block_stable() -> None:
    g = GroupState("g")
    join(g, "s", instance="inst")
    join(g, "b")
    complete(g)
    g.member_gone("s", 1)  # it never syncs
    g.sync("b", 1)
    sane(g)
    assert g.state == STABLE


def test_group_becomes_stable_when_the_last_unsynced_member_is_a_static_one_that_dies() -> None:
    g = GroupState("g")
    join(g, "s", instance="inst")
    join(g, "b")
    complete(g)
    g.sync("b", 1)
    assert g.state == COMPLETING
    g.member_gone("s", 1)
    sane(g)
    assert g.state == STABLE


# ------------------------------------------------------------------ wire format


def busy_group() -> GroupState:
    """A group with a bit of everything: static and dead members, quarantine, owned."""
    g = stable(["a", "s", "b"], instances={"s": "inst"}, protocols=("cooperative-sticky",))
    heartbeat(g, 1 * S)
    g.member_gone("s", 2 * S)
    join(g, "b2", 2 * S, protocols=("cooperative-sticky",))
    g.quarantine[TopicPartition("zz", 7)] = 99 * S
    sane(g)
    return g


def test_wire_round_trip() -> None:
    g = busy_group()
    wire = g.to_wire()
    back = GroupState.from_wire(json.loads(json.dumps(wire)))
    assert back.to_wire() == wire
    back.heartbeats = g.heartbeats  # inputs, not stored
    assert back == g
    assert list(back.members) == list(g.members)  # join order is kept
    back._check()


def _drop(key: str) -> Callable[[dict[str, Any]], object]:
    def f(w: dict[str, Any]) -> object:
        del w[key]
        return w

    return f


def _set(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    def f(w: dict[str, Any]) -> object:
        w[key] = value
        return w

    return f


def _member(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    def f(w: dict[str, Any]) -> object:
        w["members"][0][key] = value
        return w

    return f


def _drop_member_key(key: str) -> Callable[[dict[str, Any]], object]:
    def f(w: dict[str, Any]) -> object:
        del w["members"][0][key]
        return w

    return f


MALFORMED: dict[str, Callable[[dict[str, Any]], object]] = {
    "not a mapping": lambda w: [w],
    "none": lambda w: None,
    "no state": _drop("state"),
    "no members": _drop("members"),
    "no group_id": _drop("group_id"),
    "no quarantine": _drop("quarantine"),
    "unknown state": _set("state", "Sleeping"),
    "generation not a number": _set("generation", "two"),
    "generation null": _set("generation", None),
    "members not a list": _set("members", 5),
    "member not a mapping": _set("members", [["a"]]),
    "member without id": _drop_member_key("member_id"),
    "member without alive": _drop_member_key("alive"),
    "owned pair too short": _member("owned", [["t"]]),
    "owned not pairs": _member("owned", [5]),
    "owned partition not a number": _member("owned", [["t", "x"]]),
    "topics not a list": _member("topics", 3),
    "session not a number": _member("session_timeout_ms", "soon"),
    "partition count not a number": _set("partition_counts", {"t": "six"}),
    "quarantine entry too short": _set("quarantine", [["t", 1]]),
    "quarantine not a list": _set("quarantine", 3),
    "deadline null": _set("rebalance_deadline", None),
}


@pytest.mark.parametrize("how", sorted(MALFORMED))
def test_from_wire_rejects_malformed_input(how: str) -> None:
    wire = json.loads(json.dumps(busy_group().to_wire()))
    bad = MALFORMED[how](wire)
    with pytest.raises((KeyError, TypeError, ValueError)):
        GroupState.from_wire(bad)  # type: ignore[arg-type]


def test_from_wire_rejects_partition_counts_that_are_not_an_object() -> None:
    wire = busy_group().to_wire()
    wire["partition_counts"] = [["t", 6]]
    with pytest.raises((KeyError, TypeError, ValueError)):
        GroupState.from_wire(wire)


# ------------------------------------------------------------------ _check


def _owned_twice(g: GroupState) -> None:
    g.members["b"].owned = (*g.members["b"].owned, TopicPartition("t", 0))


def _owned_and_quarantined(g: GroupState) -> None:
    g.quarantine[TopicPartition("t", 0)] = 10**15


def _assigned_twice(g: GroupState) -> None:
    g.members["b"].assignment = (*g.members["b"].assignment, TopicPartition("t", 0))


def _assigned_unsubscribed(g: GroupState) -> None:
    g.members["b"].assignment = (*g.members["b"].assignment, TopicPartition("zz", 0))


def _unsynced_in_stable(g: GroupState) -> None:
    g.members["b"].synced = 0


def _owned_not_assignment_in_stable(g: GroupState) -> None:
    g.members["b"].owned = g.members["b"].owned[:1]


def _empty_with_members(g: GroupState) -> None:
    g.state = EMPTY


def _leader_not_a_member(g: GroupState) -> None:
    g.leader = "ghost"


def _duplicate_instance(g: GroupState) -> None:
    g.members["a"].instance_id = "same"
    g.members["b"].instance_id = "same"


def _dead_owner(g: GroupState) -> None:
    g.members["b"].alive = False


def _dead_dynamic(g: GroupState) -> None:
    g.members["b"].owned = ()
    g.members["b"].alive = False


def _bad_state(g: GroupState) -> None:
    g.state = "Sleeping"


def _preparing_without_deadline(g: GroupState) -> None:
    g.state = PREPARING


def _owned_duplicated_in_one_member(g: GroupState) -> None:
    g.members["a"].owned = (TopicPartition("t", 0), TopicPartition("t", 0))


CORRUPTIONS: dict[str, Callable[[GroupState], None]] = {
    f.__name__.lstrip("_"): f
    for f in (
        _owned_twice,
        _owned_and_quarantined,
        _assigned_twice,
        _assigned_unsubscribed,
        _unsynced_in_stable,
        _owned_not_assignment_in_stable,
        _empty_with_members,
        _leader_not_a_member,
        _duplicate_instance,
        _dead_owner,
        _dead_dynamic,
        _bad_state,
        _preparing_without_deadline,
        _owned_duplicated_in_one_member,
    )
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_check_catches_a_corrupted_state(corruption: str) -> None:
    g = stable(["a", "b"])
    g._check()
    CORRUPTIONS[corruption](g)
    with pytest.raises(AssertionError):
        g._check()


# ------------------------------------------------------------------ bugs




def test_quarantine_holds_each_partition_until_its_own_lease() -> None:
    g = stable(["a", "b", "c"])  # a=[0,1] b=[2,3] c=[4,5]
    join(g, "a", 1 * S)  # deadline 31 s
    deadline = 31 * S
    g.observe({"a": deadline, "b": 25 * S, "c": 29 * S}, [], deadline)
    sane(g)
    b_lease, c_lease = 35 * S, 39 * S
    assert g.quarantine == {
        **dict.fromkeys(tps(2, 3), b_lease),
        **dict.fromkeys(tps(4, 5), c_lease),
    }
    # the shell observes at the start of its transaction and completes a little later:
    # b's quarantine ended in between, c's has not
    done = g.maybe_complete(COUNTS, get_assignor, b_lease + 1)
    for tp in tps(4, 5):  # c's process may read these until 39 s
        assert g.owner_of(tp) is None, f"{tp} granted while quarantined until {c_lease}"
    assert not done


def test_a_removed_member_rejoining_with_owned_partitions_is_told_it_is_stale() -> None:
    coop = ("cooperative-sticky",)
    g = stable(["a", "b"], protocols=coop)  # a=[0,2,4] b=[1,3,5]
    mine = g.members["a"].owned
    assert mine == tps(0, 2, 4)
    join(g, "c", 1 * S, protocols=coop)
    join(g, "b", 1 * S, protocols=coop, owned=g.members["b"].owned)
    deadline = g.rebalance_deadline
    # a's own join transaction: observe (a is late: removed, its partitions quarantined)
    # then join, reporting what it still reads (cooperative: everything)
    g.observe({"a": deadline, "b": deadline, "c": deadline}, [], deadline)
    assert "a" not in g.members and set(g.quarantine) == set(mine)
    with pytest.raises(StaleMemberError):
        join(g, "a", deadline, protocols=coop, owned=mine)
    # what happens instead: a is a fresh member owning nothing, while its process
    # goes on reading 0, 2, 4; after the quarantine they go to somebody else


def test_a_static_restart_after_the_old_lease_ended_strands_no_partition() -> None:
    rr = ("roundrobin",)
    g = stable(["s", "b"], instances={"s": "s"}, protocols=rr)  # s=[0,2,4] b=[1,3,5]
    # the shell observes at `now` (s's lease still runs) and joins a little later
    g.observe({"s": 0, "b": 5 * S}, [], SESSION_MS * 1_000_000 - 1)
    now = SESSION_MS * 1_000_000 + 1
    join(g, "s2", now, instance="s", protocols=("roundrobin", "range"))  # changed: rebalance
    join(g, "a", now, instance="a", protocols=rr)  # a newcomer sorted first
    join(g, "b", now, protocols=rr)
    assert complete(g, now)
    sync_all(g)
    assert g.state == STABLE
    # eager members do not rejoin after a sync: the group must be complete now
    everything = {tp for m in g.members.values() for tp in m.assignment}
    assert everything == set(tps(0, 1, 2, 3, 4, 5))
