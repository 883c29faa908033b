"""Partition assignors: Kafka's worked examples, ports of Kafka's assignor tests, and properties.

Expected results marked "reference" come from /work/shared/reference/kafka-semantics.md
section 6.3 (computed by running Kafka's classes); tests named after a Kafka test port
``RangeAssignorTest``, ``AbstractStickyAssignorTest``, ``StickyAssignorTest`` or
``CooperativeStickyAssignorTest``. Assignment lists are compared sorted by (topic, partition).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlog._structs import TopicPartition
from streamlog.coordination._assignors import (
    ASSIGNOR_NAMES,
    Assignor,
    CooperativeStickyAssignor,
    MemberSubscription,
    RangeAssignor,
    RoundRobinAssignor,
    StickyAssignor,
    cooperative_filter,
    get_assignor,
)
from streamlog.errors import ConfigError

Assignment = dict[str, list[TopicPartition]]

RANGE = RangeAssignor()
ROUNDROBIN = RoundRobinAssignor()
STICKY = StickyAssignor()
COOP = CooperativeStickyAssignor()


# ------------------------------------------------------------------ helpers


def tp(text: str) -> TopicPartition:
    """``"t0-3"`` -> ``TopicPartition("t0", 3)``."""
    topic, _, partition = text.rpartition("-")
    return TopicPartition(topic, int(partition))


def tps(*texts: str) -> list[TopicPartition]:
    return sorted(tp(t) for t in texts)


def part(topic: str, *partitions: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in partitions]


def member(
    member_id: str,
    topics: Iterable[str],
    owned: Iterable[TopicPartition] = (),
    generation: int = -1,
    instance: str | None = None,
) -> MemberSubscription:
    return MemberSubscription(member_id, frozenset(topics), tuple(owned), generation, instance)


def equal(ids: Iterable[str], topics: Iterable[str]) -> list[MemberSubscription]:
    topic_set = frozenset(topics)
    return [member(m, topic_set) for m in ids]


def rejoin(
    members: Sequence[MemberSubscription], assignment: Mapping[str, Sequence[TopicPartition]],
    generation: int,
) -> list[MemberSubscription]:
    """Every member rejoins owning what ``assignment`` gave it, in ``generation``."""
    return [
        MemberSubscription(
            m.member_id, m.topics, tuple(assignment.get(m.member_id, ())), generation,
            m.group_instance_id,
        )
        for m in members
    ]


def all_partitions(ppt: Mapping[str, int], topics: Iterable[str]) -> set[TopicPartition]:
    return {TopicPartition(t, p) for t in set(topics) if t in ppt for p in range(ppt[t])}


def check_valid(
    ppt: Mapping[str, int], members: Sequence[MemberSubscription], result: Assignment
) -> None:
    """Every partition of a subscribed topic exactly once, only to a subscriber; lists sorted."""
    assert set(result) == {m.member_id for m in members}
    subscribed = set().union(*(m.topics for m in members)) if members else set()
    seen = Counter(t for tps_ in result.values() for t in tps_)
    assert set(seen) == all_partitions(ppt, subscribed)
    assert all(n == 1 for n in seen.values())
    topics_of = {m.member_id: m.topics for m in members}
    for member_id, assigned in result.items():
        assert assigned == sorted(assigned)
        assert all(t.topic in topics_of[member_id] for t in assigned)
        assert all(isinstance(t, TopicPartition) for t in assigned)


def sizes(result: Assignment) -> list[int]:
    return sorted(len(v) for v in result.values())


def fully_balanced(result: Assignment) -> bool:
    counts = sizes(result)
    return not counts or counts[-1] - counts[0] <= 1


def check_kafka_balance(members: Sequence[MemberSubscription], result: Assignment) -> None:
    """``AbstractStickyAssignorTest.verifyValidityAndBalance``: if two members differ by more
    than one partition, the fuller one holds nothing the emptier one could take."""
    topics_of = {m.member_id: m.topics for m in members}
    for a, b in itertools.permutations(result, 2):
        if len(result[a]) > len(result[b]) + 1:
            assert not any(t.topic in topics_of[b] for t in result[a]), (a, b, result)


def optimal_sum_of_squares(ppt: Mapping[str, int], members: Sequence[MemberSubscription]) -> int:
    """Brute force over reachable count vectors: the least sum of squared counts."""
    ids = [m.member_id for m in members]
    vectors = {tuple(0 for _ in ids)}
    for t in sorted(all_partitions(ppt, set().union(*(m.topics for m in members)))):
        eligible = [i for i, m in enumerate(members) if t.topic in m.topics]
        vectors = {(*v[:i], v[i] + 1, *v[i + 1:]) for v in vectors for i in eligible}
    return min(sum(c * c for c in v) for v in vectors)


def resolved_owners(members: Sequence[MemberSubscription]) -> dict[TopicPartition, str]:
    """Independent model of Kafka's claim rules: newest generation wins; a tie drops the claim."""
    claims: dict[TopicPartition, list[tuple[int, str]]] = {}
    for m in members:
        for t in set(m.owned):
            claims.setdefault(t, []).append((m.generation, m.member_id))
    owners = {}
    for t, cs in claims.items():
        top = max(g for g, _ in cs)
        winners = [mid for g, mid in cs if g == top]
        if len(winners) == 1:
            owners[t] = winners[0]
    return owners


def check_cooperative_safe(
    members: Sequence[MemberSubscription], target: Assignment, given: Assignment
) -> None:
    """No partition goes to a member while another member still owns it."""
    owners = resolved_owners(members)
    for member_id, assigned in given.items():
        assert set(assigned) <= set(target[member_id])
        assert assigned == [t for t in target[member_id] if t in set(assigned)]
        for t in assigned:
            others = {m.member_id for m in members if t in m.owned} - {member_id}
            assert not others or owners.get(t) == member_id, (member_id, t, others)


def cooperative_rounds(
    ppt: Mapping[str, int], members: Sequence[MemberSubscription], limit: int = 4
) -> list[Assignment]:
    """Run cooperative rebalances until one withholds nothing; return what each round gave."""
    generation = max((m.generation for m in members), default=-1) + 1
    rounds: list[Assignment] = []
    current = list(members)
    for _ in range(limit):
        target = COOP.assign(ppt, current)
        given = cooperative_filter(target, current)
        check_cooperative_safe(current, target, given)
        rounds.append(given)
        if given == target:
            return rounds
        current = rejoin(current, given, generation)
        generation += 1
    raise AssertionError(f"no convergence in {limit} rounds: {rounds}")


# ------------------------------------------------------------------ get_assignor


def test_get_assignor_names_and_protocols() -> None:
    assert ASSIGNOR_NAMES == ("cooperative-sticky", "range", "roundrobin", "sticky")
    expected = {
        "range": (RangeAssignor, "eager"),
        "roundrobin": (RoundRobinAssignor, "eager"),
        "sticky": (StickyAssignor, "eager"),
        "cooperative-sticky": (CooperativeStickyAssignor, "cooperative"),
    }
    for name, (cls, protocol) in expected.items():
        assignor = get_assignor(name)
        assert isinstance(assignor, cls)
        assert assignor.name == name
        assert assignor.protocol == protocol


@pytest.mark.parametrize(
    "name", ["Range", "round_robin", "", "org.apache.kafka.clients.consumer.RangeAssignor"]
)
def test_get_assignor_unknown_name_lists_valid_ones(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_assignor(name)
    message = str(info.value)
    assert repr(name) in message
    for valid in ASSIGNOR_NAMES:
        assert repr(valid) in message
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------ reference table (6.3)

TWO_BY_TWO = {"t0": 3, "t1": 3}


def test_reference_range_two_members_two_topics() -> None:
    result = RANGE.assign(TWO_BY_TWO, equal(["C0", "C1"], ["t0", "t1"]))
    assert result == {"C0": tps("t0-0", "t0-1", "t1-0", "t1-1"), "C1": tps("t0-2", "t1-2")}


def test_reference_range_three_members_seven_partitions() -> None:
    result = RANGE.assign({"t0": 7}, equal(["C0", "C1", "C2"], ["t0"]))
    assert result == {"C0": part("t0", 0, 1, 2), "C1": part("t0", 3, 4), "C2": part("t0", 5, 6)}


@pytest.mark.parametrize("assignor", [ROUNDROBIN, STICKY, COOP], ids=lambda a: a.name)
def test_reference_roundrobin_two_members_two_topics(assignor: Assignor) -> None:
    # "RoundRobin: C0,C1 on t0,t1 x3p (fresh sticky gives the same)"
    result = assignor.assign(TWO_BY_TWO, equal(["C0", "C1"], ["t0", "t1"]))
    assert result == {"C0": tps("t0-0", "t0-2", "t1-1"), "C1": tps("t0-1", "t1-0", "t1-2")}


def test_reference_roundrobin_three_members_seven_partitions() -> None:
    result = ROUNDROBIN.assign({"t0": 7}, equal(["C0", "C1", "C2"], ["t0"]))
    assert result == {"C0": part("t0", 0, 3, 6), "C1": part("t0", 1, 4), "C2": part("t0", 2, 5)}


UNEQUAL_PPT = {"t0": 1, "t1": 2, "t2": 3}
UNEQUAL_MEMBERS = [
    member("C0", ["t0"]), member("C1", ["t0", "t1"]), member("C2", ["t0", "t1", "t2"]),
]


@pytest.mark.parametrize("assignor", [RANGE, ROUNDROBIN], ids=lambda a: a.name)
def test_reference_unequal_subscriptions_range_and_roundrobin(assignor: Assignor) -> None:
    result = assignor.assign(UNEQUAL_PPT, UNEQUAL_MEMBERS)
    assert result == {
        "C0": tps("t0-0"), "C1": tps("t1-0"), "C2": tps("t1-1", "t2-0", "t2-1", "t2-2"),
    }


@pytest.mark.parametrize("assignor", [STICKY, COOP], ids=lambda a: a.name)
def test_reference_unequal_subscriptions_sticky(assignor: Assignor) -> None:
    result = assignor.assign(UNEQUAL_PPT, UNEQUAL_MEMBERS)
    assert result == {
        "C0": tps("t0-0"), "C1": tps("t1-0", "t1-1"), "C2": tps("t2-0", "t2-1", "t2-2"),
    }


FOUR_BY_TWO = {"t0": 2, "t1": 2, "t2": 2, "t3": 2}
ALL_FOUR = ["t0", "t1", "t2", "t3"]


def test_reference_sticky_three_members_then_one_leaves() -> None:
    members = equal(["C0", "C1", "C2"], ALL_FOUR)
    fresh = STICKY.assign(FOUR_BY_TWO, members)
    assert fresh == {
        "C0": tps("t0-0", "t1-1", "t3-0"),
        "C1": tps("t0-1", "t2-0", "t3-1"),
        "C2": tps("t1-0", "t2-1"),
    }
    remaining = [m for m in rejoin(members, fresh, 1) if m.member_id != "C1"]
    after = STICKY.assign(FOUR_BY_TWO, remaining)
    assert after == {
        "C0": tps("t0-0", "t3-0", "t1-1", "t0-1"),
        "C2": tps("t1-0", "t2-1", "t2-0", "t3-1"),
    }
    # "RR reshuffles to C0=[t*-0] C2=[t*-1]"
    assert ROUNDROBIN.assign(FOUR_BY_TWO, remaining) == {
        "C0": tps("t0-0", "t1-0", "t2-0", "t3-0"),
        "C2": tps("t0-1", "t1-1", "t2-1", "t3-1"),
    }


def test_reference_sticky_eager_member_joins() -> None:
    members = [member("C0", ["t"], part("t", 0, 1, 2, 3, 4, 5), 1), member("C1", ["t"])]
    # Eager: one round; C0 revokes everything before the join and gets [0, 1, 2] back.
    assert STICKY.assign({"t": 6}, members) == {"C0": part("t", 0, 1, 2), "C1": part("t", 3, 4, 5)}


def test_reference_cooperative_member_joins_two_rounds() -> None:
    ppt = {"t": 6}
    members = [member("C0", ["t"], part("t", 0, 1, 2, 3, 4, 5), 1), member("C1", ["t"])]
    target = COOP.assign(ppt, members)
    assert target == {"C0": part("t", 0, 1, 2), "C1": part("t", 3, 4, 5)}
    round1 = cooperative_filter(target, members)
    assert round1 == {"C0": part("t", 0, 1, 2), "C1": []}
    # C0 revokes 3-5 and rejoins at once.
    round2_members = rejoin(members, round1, 2)
    target2 = COOP.assign(ppt, round2_members)
    round2 = cooperative_filter(target2, round2_members)
    assert round2 == target2 == {"C0": part("t", 0, 1, 2), "C1": part("t", 3, 4, 5)}
    assert cooperative_rounds(ppt, members) == [round1, round2]


def test_reference_cooperative_three_to_four_members() -> None:
    ppt = {"t": 6}
    members = [
        member("C0", ["t"], part("t", 0, 3), 1),
        member("C1", ["t"], part("t", 1, 4), 1),
        member("C2", ["t"], part("t", 2, 5), 1),
        member("C3", ["t"]),
    ]
    round1 = cooperative_filter(COOP.assign(ppt, members), members)
    assert round1 == {
        "C0": part("t", 0, 3), "C1": part("t", 1, 4), "C2": part("t", 2), "C3": [],
    }
    round2_members = rejoin(members, round1, 2)
    round2 = cooperative_filter(COOP.assign(ppt, round2_members), round2_members)
    assert round2 == {**round1, "C3": part("t", 5)}


# ------------------------------------------------------------------ range (RangeAssignorTest)

STATIC = [("consumer1", "instance1"), ("consumer2", "instance2"), ("consumer3", "instance3")]


def test_range_static_members_sort_by_instance_id() -> None:
    # testTwoStaticConsumersTwoTopicsSixPartitions: "consumer-a" < "consumer-b", but the
    # instance ids decide.
    members = [
        member("consumer-b", ["topic1", "topic2"], instance="instance1"),
        member("consumer-a", ["topic1", "topic2"], instance="instance2"),
    ]
    result = RANGE.assign({"topic1": 3, "topic2": 3}, members)
    assert result["consumer-b"] == tps("topic1-0", "topic1-1", "topic2-0", "topic2-1")
    assert result["consumer-a"] == tps("topic1-2", "topic2-2")


def test_range_static_member_before_dynamic_member() -> None:
    # testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions
    members = [
        member("consumer-b", ["topic1", "topic2"], instance="instance1"),
        member("consumer-a", ["topic1", "topic2"]),
    ]
    result = RANGE.assign({"topic1": 3, "topic2": 3}, members)
    assert result["consumer-b"] == tps("topic1-0", "topic1-1", "topic2-0", "topic2-1")
    assert result["consumer-a"] == tps("topic1-2", "topic2-2")


def test_range_static_assignment_persistent_when_dynamic_member_replaced() -> None:
    # testStaticMemberRangeAssignmentPersistent
    ppt = {"topic1": 5, "topic2": 4}
    statics = [member(c, ["topic1", "topic2"], instance=i) for c, i in STATIC]
    result = RANGE.assign(ppt, [*statics, member("consumer4", ["topic1", "topic2"])])
    expected = {
        "consumer1": tps("topic1-0", "topic1-1", "topic2-0"),
        "consumer2": tps("topic1-2", "topic2-1"),
        "consumer3": tps("topic1-3", "topic2-2"),
        "consumer4": tps("topic1-4", "topic2-3"),
    }
    assert result == expected
    result = RANGE.assign(ppt, [*statics, member("consumer5", ["topic1", "topic2"])])
    expected["consumer5"] = expected.pop("consumer4")
    assert result == expected


def test_range_static_assignment_persistent_after_member_id_changes() -> None:
    # testStaticMemberRangeAssignmentPersistentAfterMemberIdChanges
    ppt = {"topic1": 5, "topic2": 5}
    first = [member(c, ["topic1", "topic2"], instance=i) for c, i in STATIC]
    by_instance = {
        m.group_instance_id: RANGE.assign(ppt, first)[m.member_id] for m in first
    }
    assert by_instance == {
        "instance1": tps("topic1-0", "topic1-1", "topic2-0", "topic2-1"),
        "instance2": tps("topic1-2", "topic1-3", "topic2-2", "topic2-3"),
        "instance3": tps("topic1-4", "topic2-4"),
    }
    # consumer3 -> consumer4 and consumer2 -> consumer5: new member ids sort differently.
    renamed = {"consumer1": "consumer1", "consumer2": "consumer5", "consumer3": "consumer4"}
    second = [member(renamed[c], ["topic1", "topic2"], instance=i) for c, i in STATIC]
    result = RANGE.assign(ppt, second)
    assert {m.group_instance_id: result[m.member_id] for m in second} == by_instance


def test_range_mixed_subscriptions_and_missing_topics() -> None:
    # testMultipleConsumersMixedTopics / testOneConsumerNonexistentTopic
    members = [
        member("consumer1", ["topic1"]),
        member("consumer2", ["topic1", "topic2"]),
        member("consumer3", ["topic1", "nope"]),
    ]
    result = RANGE.assign({"topic1": 3, "topic2": 2, "unsubscribed": 4}, members)
    assert result == {
        "consumer1": tps("topic1-0"),
        "consumer2": tps("topic1-1", "topic2-0", "topic2-1"),
        "consumer3": tps("topic1-2"),
    }
    assert RANGE.assign({}, [member("c", ["missing"])]) == {"c": []}


# ------------------------------------------------------------------ sticky (Kafka ports)


def test_sticky_mixed_topic_subscriptions() -> None:
    # testMultipleConsumersMixedTopicSubscriptions (general path): same result as Kafka.
    members = [
        member("consumer1", ["topic1"]),
        member("consumer2", ["topic1", "topic2"]),
        member("consumer3", ["topic1"]),
    ]
    result = STICKY.assign({"topic1": 3, "topic2": 2}, members)
    assert result == {
        "consumer1": tps("topic1-0", "topic1-2"),
        "consumer2": tps("topic2-0", "topic2-1"),
        "consumer3": tps("topic1-1"),
    }


def test_sticky_consumer_owning_min_quota_expected_max_quota() -> None:
    # testConsumerOwningMinQuotaExpectedMaxQuota
    topics = ["topic1", "topic2"]
    members = [
        member("consumer1", topics, tps("topic1-0", "topic2-1"), 1),
        member("consumer2", topics, tps("topic1-1", "topic2-2"), 1),
    ]
    target = COOP.assign({"topic1": 2, "topic2": 3}, members)
    assert target == {
        "consumer1": tps("topic1-0", "topic2-1", "topic2-0"),
        "consumer2": tps("topic1-1", "topic2-2"),
    }
    assert cooperative_filter(target, members) == target


def test_sticky_more_max_quota_owners_than_expected() -> None:
    # testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers. Two members own maxQuota (2)
    # but only one may keep it. Kafka picks by HashMap order (consumer2 there); streamlog picks
    # by member id, so consumer1 keeps two and consumer2 gives up one: same amount of movement.
    topics = ["topic1", "topic2"]
    members = [
        member("consumer1", topics, tps("topic1-0", "topic2-0"), 1),
        member("consumer2", topics, tps("topic1-1", "topic2-1"), 1),
        member("consumer3", topics, (), 1),
    ]
    target = STICKY.assign({"topic1": 2, "topic2": 2}, members)
    assert target == {
        "consumer1": tps("topic1-0", "topic2-0"),
        "consumer2": tps("topic1-1"),
        "consumer3": tps("topic2-1"),
    }
    assert cooperative_filter(target, members) == {**target, "consumer3": []}


def test_sticky_all_consumers_under_min_quota() -> None:
    # testAllConsumersAreUnderMinQuota
    topics = ["topic1", "topic2"]
    members = [
        member("consumer1", topics, tps("topic1-0"), 1),
        member("consumer2", topics, tps("topic1-1"), 1),
        member("consumer3", topics, (), 1),
    ]
    target = COOP.assign({"topic1": 2, "topic2": 3}, members)
    assert target == {
        "consumer1": tps("topic1-0", "topic2-1"),
        "consumer2": tps("topic1-1", "topic2-2"),
        "consumer3": tps("topic2-0"),
    }
    assert cooperative_filter(target, members) == target


def test_sticky_add_remove_two_consumers_two_topics() -> None:
    # testAddRemoveTwoConsumersTwoTopics
    topics = ["topic1", "topic2"]
    ppt = {"topic1": 3, "topic2": 4}
    members = equal(["consumer1", "consumer2"], topics)
    first = STICKY.assign(ppt, members)
    assert first == {
        "consumer1": tps("topic1-0", "topic1-2", "topic2-1", "topic2-3"),
        "consumer2": tps("topic1-1", "topic2-0", "topic2-2"),
    }
    grown = [*rejoin(members, first, 1), *equal(["consumer3", "consumer4"], topics)]
    second = STICKY.assign(ppt, grown)
    assert second == {
        "consumer1": tps("topic1-0", "topic2-1"),
        "consumer2": tps("topic2-0", "topic1-1"),
        "consumer3": tps("topic1-2", "topic2-3"),
        "consumer4": tps("topic2-2"),
    }
    # Kafka's partitionsTransferringOwnership: {topic1-2: c3, topic2-3: c3, topic2-2: c4}.
    assert cooperative_filter(second, grown) == {**second, "consumer3": [], "consumer4": []}
    shrunk = [m for m in rejoin(grown, second, 2) if m.member_id in ("consumer3", "consumer4")]
    assert STICKY.assign(ppt, shrunk) == {
        "consumer3": tps("topic1-2", "topic2-3", "topic1-0", "topic2-1"),
        "consumer4": tps("topic2-2", "topic1-1", "topic2-0"),
    }


def test_sticky_add_then_remove_consumer_one_topic() -> None:
    # testAddRemoveConsumerOneTopic
    ppt = {"topic": 3}
    one = STICKY.assign(ppt, equal(["consumer1"], ["topic"]))
    assert one == {"consumer1": part("topic", 0, 1, 2)}
    two_members = [
        member("consumer1", ["topic"], one["consumer1"], 1), member("consumer2", ["topic"]),
    ]
    two = COOP.assign(ppt, two_members)
    assert two == {"consumer1": part("topic", 0, 1), "consumer2": part("topic", 2)}
    assert cooperative_filter(two, two_members)["consumer2"] == []
    alone = [member("consumer2", ["topic"], two["consumer2"], 2)]
    assert STICKY.assign(ppt, alone) == {"consumer2": part("topic", 0, 1, 2)}


def test_sticky_chain_moves_balance_beyond_single_moves() -> None:
    # Kafka's balancer only moves one partition at a time, so it accepts 3/2/1 here: A cannot
    # give to C directly. A chain A -> B -> C balances to 2/2/2 and moves one owned partition
    # per hop.
    members = [
        member("A", ["x", "y"], tps("x-0", "x-1", "y-0"), 1),
        member("B", ["y", "z"], tps("y-1", "z-0"), 1),
        member("C", ["z"], tps("z-1"), 1),
    ]
    ppt = {"x": 2, "y": 2, "z": 2}
    result = STICKY.assign(ppt, members)
    check_valid(ppt, members, result)
    assert sizes(result) == [2, 2, 2]
    assert result == {"A": tps("x-0", "x-1"), "B": tps("y-0", "y-1"), "C": tps("z-0", "z-1")}


# ------------------------------------------------------------------ ownership and generations


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        # ...WithEqualPartitionsPerConsumer
        (3, {"consumer1": part("topic", 1), "consumer2": part("topic", 2),
             "consumer3": part("topic", 0)}),
        # ...WithUnequalPartitionsPerConsumer
        (4, {"consumer1": part("topic", 1, 3), "consumer2": part("topic", 2),
             "consumer3": part("topic", 0)}),
    ],
)
def test_partition_claimed_twice_in_same_generation_is_dropped(
    partitions: int, expected: Assignment
) -> None:
    # testAllConsumersHaveOwnedPartitionInvalidatedWhenClaimedByMultipleConsumersInSameGeneration*
    # and testPartitionsTransferringOwnershipIncludeThePartitionClaimedByMultipleConsumers...
    members = [
        member("consumer1", ["topic"], part("topic", 0, 1), 1),
        member("consumer2", ["topic"], part("topic", 0, 2), 1),
        member("consumer3", ["topic"], (), 1),
    ]
    ppt = {"topic": partitions}
    assert STICKY.assign(ppt, members) == expected
    target = COOP.assign(ppt, members)
    assert target == expected
    # topic-0 is still owned by two members: nobody gets it until both have revoked it.
    assert cooperative_filter(target, members) == {**expected, "consumer3": []}


def test_duplicate_claim_withheld_even_from_a_claimant() -> None:
    # With unequal subscriptions the dropped partition may land on one of its claimants; it is
    # still withheld, since the other claimant has not revoked it.
    members = [
        member("a", ["t"], part("t", 0), 3),
        member("b", ["t", "u"], part("t", 0), 3),
    ]
    target = COOP.assign({"t": 1, "u": 1}, members)
    check_valid({"t": 1, "u": 1}, members, target)
    given = cooperative_filter(target, members)
    assert TopicPartition("t", 0) not in given["a"] + given["b"]


@pytest.mark.parametrize("stale_generation", [9, -1])
def test_stale_generation_claims_ignored(stale_generation: int) -> None:
    # testOwnedPartitionsAreInvalidatedForConsumerWithStaleGeneration / ...WithNoGeneration
    claimed = tps("topic-0", "topic-2", "topic2-1")
    members = [
        member("consumer1", ["topic", "topic2"], claimed, 10),
        member("consumer2", ["topic", "topic2"], claimed, stale_generation),
    ]
    target = COOP.assign({"topic": 3, "topic2": 3}, members)
    assert target == {
        "consumer1": claimed,
        "consumer2": tps("topic-1", "topic2-0", "topic2-2"),
    }
    # consumer1 keeps its partitions although consumer2's stale claim names them.
    assert cooperative_filter(target, members) == target


def test_partitions_go_to_highest_generation() -> None:
    # testEnsurePartitionsAssignedToHighestGeneration
    topics = ["topic", "topic2", "topic3"]
    members = [
        member("consumer1", topics, tps("topic-0", "topic2-0", "topic3-0"), 10),
        member("consumer2", topics, tps("topic-1", "topic2-1", "topic3-1"), 9),
        member("consumer3", topics, tps("topic2-1", "topic3-0", "topic3-2"), 8),
    ]
    target = COOP.assign({t: 3 for t in topics}, members)
    assert target == {
        "consumer1": tps("topic-0", "topic2-0", "topic3-0"),
        "consumer2": tps("topic-1", "topic2-1", "topic3-1"),
        "consumer3": tps("topic-2", "topic2-2", "topic3-2"),
    }
    assert cooperative_filter(target, members) == target


def test_no_reassignment_on_current_members() -> None:
    # testNoReassignmentOnCurrentMembers: old-generation claims nobody contests are kept.
    topics = ["topic", "topic1", "topic2", "topic3"]
    members = [
        member("consumer1", topics, (), -1),
        member("consumer2", topics, tps("topic-0", "topic2-0", "topic1-0"), 9),
        member("consumer3", topics, tps("topic3-2", "topic2-2", "topic1-1"), 8),
        member("consumer4", topics, tps("topic3-1", "topic-1", "topic-2"), 7),
    ]
    target = COOP.assign({t: 3 for t in topics}, members)
    assert target["consumer1"] == tps("topic1-2", "topic2-1", "topic3-0")
    assert cooperative_filter(target, members) == target


def test_owned_partitions_with_multiple_generations() -> None:
    # testOwnedPartitionsAreInvalidatedForConsumerWithMultipleGeneration
    members = [
        member("consumer1", ["topic", "topic2"], tps("topic-0", "topic2-1", "topic-1"), 10),
        member("consumer2", ["topic", "topic2"], tps("topic-0", "topic2-1", "topic2-2"), 8),
    ]
    target = COOP.assign({"topic": 3, "topic2": 3}, members)
    assert target == {
        "consumer1": tps("topic-0", "topic2-1", "topic-1"),
        "consumer2": tps("topic-2", "topic2-2", "topic2-0"),
    }
    assert cooperative_filter(target, members) == target


@pytest.mark.parametrize("all_equal", [True, False])
def test_assignment_with_multiple_generations_1(all_equal: bool) -> None:
    # StickyAssignorTest.testAssignmentWithMultipleGenerations1
    both = ["topic", "topic2"]
    c2_topics = both if all_equal else ["topic"]
    ppt = {"topic": 6, "topic2": 6}
    r1 = STICKY.assign(ppt, [member("c1", both), member("c2", c2_topics), member("c3", both)])
    assert sizes(r1) == [4, 4, 4]
    r2 = STICKY.assign(ppt, [member("c1", both, r1["c1"], 1), member("c2", c2_topics, r1["c2"], 1)])
    assert sizes(r2) == [6, 6]
    if all_equal:
        assert set(r1["c1"]) <= set(r2["c1"])
    assert set(r1["c2"]) <= set(r2["c2"])
    assert set(r2["c2"]) & set(r1["c3"])
    # c3 comes back with its generation-1 partitions, some of which c2 owns in generation 2.
    r3_members = [member("c2", c2_topics, r2["c2"], 2), member("c3", both, r1["c3"], 1)]
    r3 = STICKY.assign(ppt, r3_members)
    check_valid(ppt, r3_members, r3)
    assert sizes(r3) == [6, 6]


@pytest.mark.parametrize("all_equal", [True, False])
def test_assignment_with_multiple_generations_2(all_equal: bool) -> None:
    # StickyAssignorTest.testAssignmentWithMultipleGenerations2
    every = ["topic", "topic2", "topic3"]
    c1_topics = every if all_equal else ["topic"]
    c3_topics = every if all_equal else ["topic", "topic2"]
    ppt = {"topic": 4, "topic2": 4, "topic3": 4}
    r1 = STICKY.assign(ppt, [member("c1", c1_topics), member("c2", every), member("c3", c3_topics)])
    assert sizes(r1) == [4, 4, 4]
    r2 = STICKY.assign(ppt, [member("c2", every, r1["c2"], 1)])
    assert len(r2["c2"]) == 12
    r3_members = [
        member("c1", c1_topics, r1["c1"], 1),
        member("c2", every, r2["c2"], 2),
        member("c3", c3_topics, r1["c3"], 1),
    ]
    r3 = STICKY.assign(ppt, r3_members)
    check_valid(ppt, r3_members, r3)
    assert sizes(r3) == [4, 4, 4]


@pytest.mark.parametrize("all_equal", [True, False])
def test_assignment_with_conflicting_previous_generations(all_equal: bool) -> None:
    # StickyAssignorTest.testAssignmentWithConflictingPreviousGenerations
    every = ["topic", "topic2", "topic3"]
    c1_topics = every if all_equal else ["topic"]
    c2_topics = every if all_equal else ["topic", "topic2"]
    c1_owned = (
        tps("topic-0", "topic-1", "topic-2", "topic2-2", "topic2-3", "topic3-0")
        if all_equal else tps("topic-0", "topic-1", "topic-2", "topic-3")
    )
    c2_owned = tps("topic-0", "topic-1", "topic2-0", "topic2-1", "topic2-2", "topic2-3")
    c3_owned = tps("topic-2", "topic-3", "topic3-0", "topic3-1", "topic3-2", "topic3-3")
    members = [
        member("c1", c1_topics, c1_owned, 1),
        member("c2", c2_topics, c2_owned, 2),
        member("c3", every, c3_owned, 2),
    ]
    ppt = {"topic": 4, "topic2": 4, "topic3": 4}
    result = STICKY.assign(ppt, members)
    check_valid(ppt, members, result)
    assert sizes(result) == [4, 4, 4]
    assert set(result["c2"]) <= set(c2_owned)
    assert set(result["c3"]) <= set(c3_owned)


# ------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("name", ASSIGNOR_NAMES)
def test_edge_cases(name: str) -> None:
    assignor = get_assignor(name)
    assert assignor.assign({"t": 3}, []) == {}
    assert assignor.assign({}, [member("a", ["t"]), member("b", [])]) == {"a": [], "b": []}
    # More members than partitions; a member subscribed to nothing that exists.
    members = [member("a", ["t"]), member("b", ["t"]), member("c", ["t"]), member("d", ["gone"])]
    result = assignor.assign({"t": 2, "other": 5}, members)
    check_valid({"t": 2, "other": 5}, members, result)
    assert result["d"] == []
    with pytest.raises(ValueError, match="twice"):
        assignor.assign({"t": 1}, [member("a", ["t"]), member("a", ["t"])])


def test_owned_partitions_outside_the_topic_set_are_ignored() -> None:
    members = [
        member("a", ["t"], [*part("t", 0, 7), *part("gone", 0), *part("u", 0)], 1),
        member("b", ["t", "u"], part("t", 1), 1),
    ]
    ppt = {"t": 2, "u": 1}
    result = STICKY.assign(ppt, members)
    check_valid(ppt, members, result)
    assert TopicPartition("t", 0) in result["a"]
    assert TopicPartition("t", 1) in result["b"]


def test_member_subscription_coerces_containers() -> None:
    m = MemberSubscription("a", {"t"}, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    assert m.topics == frozenset({"t"})
    assert m.owned == (TopicPartition("t", 0),)
    assert hash(m) == hash(MemberSubscription("a", frozenset({"t"}), (TopicPartition("t", 0),)))


def test_cooperative_filter_lists_every_member() -> None:
    members = [member("a", ["t"], part("t", 0), 1), member("b", ["t"])]
    assert cooperative_filter({"a": part("t", 0)}, members) == {"a": part("t", 0), "b": []}


# ------------------------------------------------------------------ properties

TOPIC_NAMES = ["t0", "t1", "t2", "t3"]


@st.composite
def groups(
    draw: st.DrawFn, equal_subscriptions: bool | None = None, max_members: int = 6,
    max_partitions: int = 6, with_claims: bool = True,
) -> tuple[dict[str, int], list[MemberSubscription]]:
    n_topics = draw(st.integers(1, 4))
    topics = TOPIC_NAMES[:n_topics]
    ppt = {t: draw(st.integers(0, max_partitions)) for t in topics}
    n_members = draw(st.integers(1, max_members))
    ids = draw(
        st.lists(st.text("abcC01", min_size=1, max_size=3), min_size=n_members,
                 max_size=n_members, unique=True)
    )
    same = draw(st.booleans()) if equal_subscriptions is None else equal_subscriptions
    shared = draw(st.sets(st.sampled_from([*topics, "missing"]), min_size=1))
    universe = sorted(all_partitions({**ppt, "missing": 2}, [*topics, "missing"]))
    universe += [TopicPartition("t0", 99)]
    members = []
    for i, member_id in enumerate(ids):
        subscribed = (
            shared if same else draw(st.sets(st.sampled_from([*topics, "missing"]), min_size=1))
        )
        owned: list[TopicPartition] = (
            draw(st.lists(st.sampled_from(universe), max_size=6)) if with_claims else []
        )
        generation = draw(st.integers(-1, 3))
        instance = draw(st.none() | st.just(f"i{i}"))
        members.append(member(member_id, subscribed, owned, generation, instance))
    return ppt, members


PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(groups())
def test_property_every_assignor_is_valid(
    group: tuple[dict[str, int], list[MemberSubscription]],
) -> None:
    ppt, members = group
    for name in ASSIGNOR_NAMES:
        result = get_assignor(name).assign(ppt, members)
        check_valid(ppt, members, result)
        # Deterministic, whatever order the members come in.
        assert get_assignor(name).assign(ppt, list(reversed(members))) == result


@PROPERTY
@given(groups(equal_subscriptions=True))
def test_property_equal_subscriptions_are_balanced(
    group: tuple[dict[str, int], list[MemberSubscription]],
) -> None:
    ppt, members = group
    for assignor in (ROUNDROBIN, STICKY, COOP):
        assert fully_balanced(assignor.assign(ppt, members)), assignor.name
    # Range balances each topic, not the total (the reference's C0=4, C1=2 example).
    result = RANGE.assign(ppt, members)
    for topic in ppt:
        per_topic = [sum(1 for t in v if t.topic == topic) for v in result.values()]
        assert max(per_topic) - min(per_topic) <= 1


@settings(PROPERTY, max_examples=250)
@given(groups(max_members=4, max_partitions=3))
def test_property_sticky_is_as_balanced_as_possible(
    group: tuple[dict[str, int], list[MemberSubscription]],
) -> None:
    ppt, members = group
    result = STICKY.assign(ppt, members)
    check_kafka_balance(members, result)
    assert sum(n * n for n in sizes(result)) == optimal_sum_of_squares(ppt, members)


@PROPERTY
@given(groups())
def test_property_sticky_keeps_a_balanced_assignment(
    group: tuple[dict[str, int], list[MemberSubscription]],
) -> None:
    ppt, members = group
    for assignor in (STICKY, COOP):
        first = assignor.assign(ppt, members)
        again = rejoin(members, first, 7)
        assert assignor.assign(ppt, again) == first
        # Nothing moves, so the cooperative filter withholds nothing.
        assert cooperative_filter(first, again) == first


@PROPERTY
@given(groups(equal_subscriptions=True, with_claims=False), st.data())
def test_property_sticky_keeps_any_balanced_equal_assignment(
    group: tuple[dict[str, int], list[MemberSubscription]], data: st.DataObject,
) -> None:
    # Any within-one assignment (here roundrobin's, or range's for one topic) is kept as is.
    ppt, members = group
    previous = ROUNDROBIN.assign(ppt, members)
    assert STICKY.assign(ppt, rejoin(members, previous, 1)) == previous
    # A member leaves: everyone else keeps what it owned, up to the new quota.
    if len(members) > 1:
        leaving = data.draw(st.sampled_from(members)).member_id
        rest = [m for m in rejoin(members, previous, 1) if m.member_id != leaving]
        after = STICKY.assign(ppt, rest)
        for m in rest:
            assert set(previous[m.member_id]) <= set(after[m.member_id])


@PROPERTY
@given(groups(equal_subscriptions=True))
def test_property_sticky_keeps_owned_up_to_min_quota(
    group: tuple[dict[str, int], list[MemberSubscription]],
) -> None:
    ppt, members = group
    result = STICKY.assign(ppt, members)
    owners = resolved_owners(members)
    total = sum(len(v) for v in result.values())
    min_quota = total // len(members)
    for m in members:
        valid = {t for t, owner in owners.items() if owner == m.member_id and t.topic in ppt
                 and t.partition < ppt[t.topic] and t.topic in m.topics}
        kept = valid & set(result[m.member_id])
        assert len(kept) >= min(len(valid), min_quota)


@PROPERTY
@given(groups())
def test_property_cooperative_never_hands_over_an_owned_partition(
    group: tuple[dict[str, int], list[MemberSubscription]],
) -> None:
    ppt, members = group
    rounds = cooperative_rounds(ppt, members)
    assert len(rounds) <= 3
    final = rounds[-1]
    check_valid(ppt, members, final)
    assert final == STICKY.assign(ppt, rejoin(members, final, 99))


@PROPERTY
@given(groups(with_claims=False), st.permutations(range(6)))
def test_property_static_members_keep_assignment_when_member_ids_change(
    group: tuple[dict[str, int], list[MemberSubscription]], perm: list[int],
) -> None:
    ppt, members = group
    statics = [
        MemberSubscription(m.member_id, m.topics, (), -1, f"instance-{i}")
        for i, m in enumerate(members)
    ]
    renamed = [
        MemberSubscription(f"new-{perm[i % 6]}-{i}", m.topics, (), -1, m.group_instance_id)
        for i, m in enumerate(statics)
    ]
    for assignor in (RANGE, ROUNDROBIN):
        before = assignor.assign(ppt, statics)
        after = assignor.assign(ppt, renamed)
        assert {m.group_instance_id: before[m.member_id] for m in statics} == {
            m.group_instance_id: after[m.member_id] for m in renamed
        }
