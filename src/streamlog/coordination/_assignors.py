"""Partition assignors: Kafka's ``range``, ``roundrobin``, ``sticky`` and ``cooperative-sticky``.

Pure functions of (partition counts, member subscriptions): no I/O, no clock, no
randomness, so the group leader can run them and tests can call them directly.
The algorithms follow the Java client (``RangeAssignor``, ``RoundRobinAssignor``,
``AbstractStickyAssignor``, ``CooperativeStickyAssignor``) without rack awareness.

Common rules:

* Only topics that exist (count > 0 in ``partitions_per_topic``) and that at least
  one member subscribes to are assigned; a subscription to a missing topic is
  ignored, as Kafka drops topics that have no metadata.
* Every member appears in the result, possibly with an empty list. Lists are
  sorted by ``(topic, partition)`` (Kafka returns HashMap-dependent orders).
* Member ids and instance ids are compared as Java compares strings (UTF-16
  code units), so wherever Kafka sorts members the order is the same. Where
  Kafka's result depends on HashMap iteration order (which over-quota owner of
  the equal-subscription sticky case keeps the extra partition), members are
  taken in member-id order instead.

Eager vs cooperative: ``range``, ``roundrobin`` and ``sticky`` are eager (members
revoke everything before they rejoin). ``cooperative-sticky`` computes the same
target as ``sticky``; the caller then passes it through :func:`cooperative_filter`
so that no partition is handed to a new owner in the rebalance in which its
previous owner gives it up. Members that lose partitions rejoin at once, and the
next round hands the freed partitions out (the filter is a no-op once nothing
moves, so it is safe to apply on every cooperative rebalance).

Sticky ownership. Each member reports the partitions it ``owned`` and the
``generation`` in which it owned them. For every partition, only the claims made
in the newest generation that claims it count; if two or more members claim it in
that generation, the partition is treated as unowned (``AbstractStickyAssignor``:
"claimed by multiple consumers in the same generation ... invalidated").
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .._structs import TopicPartition
from ..errors import ConfigError

__all__ = [
    "ASSIGNOR_NAMES",
    "Assignor",
    "CooperativeStickyAssignor",
    "MemberSubscription",
    "RangeAssignor",
    "RoundRobinAssignor",
    "StickyAssignor",
    "cooperative_filter",
    "get_assignor",
]

EAGER = "eager"
COOPERATIVE = "cooperative"
DEFAULT_GENERATION = -1

Assignment = dict[str, list[TopicPartition]]


@dataclass(frozen=True)
class MemberSubscription:
    """One group member's JoinGroup metadata, as the leader sees it.

    ``owned`` are the partitions the member owns now and ``generation`` the
    generation in which it got them (-1: none known); only the sticky assignors
    read them. ``group_instance_id`` is set for static members; range and
    roundrobin order members by it so that a restarted static member (new
    ``member_id``) gets the same partitions back.
    """

    member_id: str
    topics: frozenset[str]
    owned: tuple[TopicPartition, ...] = ()
    generation: int = DEFAULT_GENERATION
    group_instance_id: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable from callers that are not type-checked.
        if not isinstance(self.topics, frozenset):
            object.__setattr__(self, "topics", frozenset(self.topics))
        if not isinstance(self.owned, tuple):
            object.__setattr__(self, "owned", tuple(self.owned))


class Assignor(Protocol):
    """What the group leader calls. ``assign`` returns ``member_id -> partitions``."""

    name: str
    protocol: str

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]: ...


# ------------------------------------------------------------------ helpers


def _java_key(s: str) -> bytes:
    """Sort key ordering strings like Java's ``String.compareTo`` (UTF-16 code units)."""
    return s.encode("utf-16-be", "surrogatepass")


def _member_info_key(member: MemberSubscription) -> tuple[int, bytes, bytes]:
    """Kafka's ``MemberInfo`` order: static members by instance id, before dynamic ones by id."""
    if member.group_instance_id is not None:
        return (0, _java_key(member.group_instance_id), _java_key(member.member_id))
    return (1, _java_key(member.member_id), b"")


def _tp_key(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)


def _prepare(
    partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
) -> tuple[dict[str, int], dict[str, frozenset[str]]]:
    """Check member ids; return the assignable topics and each member's effective subscription."""
    seen: set[str] = set()
    for member in members:
        if member.member_id in seen:
            raise ValueError(f"member id {member.member_id!r} appears twice")
        seen.add(member.member_id)
    wanted: set[str] = set()
    for member in members:
        wanted |= member.topics
    counts = {
        topic: int(n) for topic, n in partitions_per_topic.items() if topic in wanted and int(n) > 0
    }
    subs = {m.member_id: m.topics.intersection(counts) for m in members}
    return counts, subs


def _all_partitions(counts: Mapping[str, int], topics: Iterable[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(counts[t])]


def _sorted_result(assignment: Mapping[str, Iterable[TopicPartition]]) -> Assignment:
    return {m: sorted(tps, key=_tp_key) for m, tps in assignment.items()}


# ------------------------------------------------------------------ range


class RangeAssignor:
    """Per topic, contiguous ranges to the sorted subscribers; the first ``P % C`` get one extra.

    With ``n = P // C`` and ``x = P % C``, the i-th subscriber gets partitions
    ``[n*i + min(i, x), ...)``, ``n + (i < x)`` of them. Topics are independent, so
    the first members collect every topic's extra partition.
    """

    name: str = "range"
    protocol: str = EAGER

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        counts, subs = _prepare(partitions_per_topic, members)
        result: dict[str, list[TopicPartition]] = {m.member_id: [] for m in members}
        ordered = sorted(members, key=_member_info_key)
        for topic in sorted(counts):
            subscribers = [m.member_id for m in ordered if topic in subs[m.member_id]]
            per_member, extra = divmod(counts[topic], len(subscribers))
            start = 0
            for i, member_id in enumerate(subscribers):
                length = per_member + (1 if i < extra else 0)
                result[member_id].extend(
                    TopicPartition(topic, p) for p in range(start, start + length)
                )
                start += length
        return _sorted_result(result)


# ------------------------------------------------------------------ roundrobin


class RoundRobinAssignor:
    """Deal every partition (topics by name, partitions ascending) over the sorted members.

    The dealer is a circular iterator that skips members not subscribed to the
    partition's topic and continues after the member it dealt to.
    """

    name: str = "roundrobin"
    protocol: str = EAGER

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        counts, subs = _prepare(partitions_per_topic, members)
        result: dict[str, list[TopicPartition]] = {m.member_id: [] for m in members}
        ordered = [m.member_id for m in sorted(members, key=_member_info_key)]
        position = 0
        for tp in _all_partitions(counts, sorted(counts)):
            # Some member subscribes to every topic in ``counts``, so this ends.
            while tp.topic not in subs[ordered[position]]:
                position = (position + 1) % len(ordered)
            result[ordered[position]].append(tp)
            position = (position + 1) % len(ordered)
        return _sorted_result(result)


# ------------------------------------------------------------------ sticky: ownership


def _resolve_claims(
    members: Sequence[MemberSubscription], counts: Mapping[str, int] | None = None
) -> dict[TopicPartition, str]:
    """Map each validly owned partition to its owner.

    A claim counts only if it was made in the newest generation among the claims
    on that partition (and, given ``counts``, is on an assignable topic and
    partition); a partition with several claims in that generation has no owner.
    """
    best: dict[TopicPartition, tuple[int, list[str]]] = {}
    for member in members:
        for claimed in dict.fromkeys(member.owned):
            tp = TopicPartition(claimed[0], claimed[1])
            if counts is not None and not 0 <= tp.partition < counts.get(tp.topic, 0):
                continue
            current = best.get(tp)
            if current is None or member.generation > current[0]:
                best[tp] = (member.generation, [member.member_id])
            elif member.generation == current[0]:
                current[1].append(member.member_id)
    return {tp: claimants[0] for tp, (_, claimants) in best.items() if len(claimants) == 1}


def _owned_by_member(
    owners: Mapping[TopicPartition, str], member_ids: Iterable[str]
) -> dict[str, list[TopicPartition]]:
    owned: dict[str, list[TopicPartition]] = {m: [] for m in member_ids}
    for tp, member_id in owners.items():
        owned[member_id].append(tp)
    return owned


# ------------------------------------------------------------------ sticky: equal subscriptions


def _constrained_assign(
    all_partitions: list[TopicPartition],
    order: list[str],
    owned: Mapping[str, list[TopicPartition]],
) -> Assignment:
    """``ConstrainedAssignmentBuilder``: every member has the same subscription.

    ``minQ = P // C``, ``maxQ = ceil(P / C)``, and exactly ``P % C`` members end at
    maxQ. Members are visited in ``order`` (Kafka visits them in HashMap order):

    1. each keeps its owned partitions, sorted by (partition, topic): all of them
       if fewer than minQ, maxQ of them if it owns that many and fewer than
       ``P % C`` members have been given maxQ, else minQ; the rest are released;
    2. the unassigned partitions, sorted by (topic, partition), are dealt
       round-robin to the sorted members under minQ, then one each to members
       at minQ while members at maxQ are still missing.
    """
    total = len(all_partitions)
    min_quota, expected_over = divmod(total, len(order))
    max_quota = min_quota + (1 if expected_over else 0)
    current_over = 0

    assignment: Assignment = {m: [] for m in order}
    under_min: list[str] = []
    exactly_min: list[str] = []
    taken: set[TopicPartition] = set()

    for member_id in order:
        mine = sorted(owned[member_id], key=lambda tp: (tp.partition, tp.topic))
        if len(mine) < min_quota:
            keep = mine
            under_min.append(member_id)
        elif len(mine) >= max_quota and current_over < expected_over:
            keep = mine[:max_quota]
            current_over += 1
            if current_over == expected_over:
                exactly_min.clear()
        else:
            keep = mine[:min_quota]
            if current_over < expected_over:
                exactly_min.append(member_id)
        assignment[member_id].extend(keep)
        taken.update(keep)

    unassigned = [tp for tp in all_partitions if tp not in taken]
    under_min.sort(key=_java_key)
    at_min = deque(sorted(exactly_min, key=_java_key))
    index = 0
    for tp in unassigned:
        from_under = True
        if index < len(under_min):
            member_id = under_min[index]
        elif under_min:
            index = 0
            member_id = under_min[0]
        elif at_min:
            member_id = at_min.popleft()
            from_under = False
        else:  # pragma: no cover - the quotas add up to exactly P
            raise AssertionError("no member left to take a partition")
        size = len(assignment[member_id]) + 1
        assignment[member_id].append(tp)
        if size == min_quota and from_under:
            under_min.pop(index)
            at_min.append(member_id)
        elif from_under:
            index += 1
    return assignment


# ------------------------------------------------------------------ sticky: general case


def _general_assign(
    counts: Mapping[str, int],
    subs: Mapping[str, frozenset[str]],
    owned: Mapping[str, list[TopicPartition]],
    order: list[str],
) -> Assignment:
    """Unequal subscriptions: keep owned partitions, place the rest, then balance.

    1. Each member keeps its owned partitions of topics it still subscribes to.
    2. Unassigned partitions (topics with fewer potential members first, as in
       Kafka) each go to the subscribed member holding the fewest partitions.
    3. While some member A holds at least two more partitions than a member B
       and a chain of moves A -> X1 -> ... -> B exists (each hop moves one
       partition to a member subscribed to its topic), apply the chain that
       moves the fewest previously owned partitions.

    Each chain lowers the sum of squared counts, so this ends; when no chain
    exists the counts are as balanced as the subscriptions allow (no
    assignment has a lower sum of squares, nor a smaller maximum). Kafka's own
    balancer only tries single moves, so it may stop earlier.
    """
    rank = {m: i for i, m in enumerate(order)}
    potential: dict[str, list[str]] = {t: [m for m in order if t in subs[m]] for t in counts}
    held: dict[str, set[TopicPartition]] = {m: set() for m in order}
    sticky: dict[str, set[TopicPartition]] = {m: set() for m in order}
    taken: set[TopicPartition] = set()
    for member_id in order:
        for tp in owned[member_id]:
            if tp.topic in subs[member_id]:
                held[member_id].add(tp)
                sticky[member_id].add(tp)
                taken.add(tp)

    topics = sorted(counts, key=lambda t: (len(potential[t]), t))
    for tp in _all_partitions(counts, topics):
        if tp not in taken:
            target = min(potential[tp.topic], key=lambda m: (len(held[m]), rank[m]))
            held[target].add(tp)

    while True:
        path = _best_balancing_path(order, rank, potential, held, sticky)
        if path is None:
            break
        for source, target, tp in path:
            held[source].remove(tp)
            held[target].add(tp)
    return {m: list(held[m]) for m in order}


_Hop = tuple[str, str, TopicPartition]


def _best_balancing_path(
    order: list[str],
    rank: Mapping[str, int],
    potential: Mapping[str, list[str]],
    held: Mapping[str, set[TopicPartition]],
    sticky: Mapping[str, set[TopicPartition]],
) -> list[_Hop] | None:
    """The cheapest chain from a member to one holding at least two fewer, or None."""
    sizes = {m: len(held[m]) for m in order}
    lowest = min(sizes.values())
    sources = sorted(
        (m for m in order if sizes[m] >= lowest + 2), key=lambda m: (-sizes[m], rank[m])
    )
    best: tuple[int, list[_Hop]] | None = None
    for source in sources:
        found = _cheapest_path_from(source, rank, potential, held, sticky, sizes)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
            if best[0] == 0:
                break
    return None if best is None else best[1]


def _cheapest_path_from(
    source: str,
    rank: Mapping[str, int],
    potential: Mapping[str, list[str]],
    held: Mapping[str, set[TopicPartition]],
    sticky: Mapping[str, set[TopicPartition]],
    sizes: Mapping[str, int],
) -> tuple[int, list[_Hop]] | None:
    """Dijkstra over members; a hop costs 1 if it moves a partition its holder owned before."""
    limit = sizes[source] - 2
    dist: dict[str, int] = {source: 0}
    parent: dict[str, tuple[str, TopicPartition]] = {}
    done: set[str] = set()
    heap: list[tuple[int, int, str]] = [(0, rank[source], source)]
    best_target: tuple[int, int, int, str] | None = None
    while heap:
        cost, _, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node != source and sizes[node] <= limit:
            candidate = (cost, sizes[node], rank[node], node)
            if best_target is None or candidate < best_target:
                best_target = candidate
            continue  # a chain never needs to pass through a target
        if best_target is not None and cost > best_target[0]:
            break
        # The partition each topic would give away: a not-owned-before one if any.
        by_topic: dict[str, TopicPartition] = {}
        for tp in held[node]:
            choice = by_topic.get(tp.topic)
            if choice is None or (tp in sticky[node], tp.partition) < (
                choice in sticky[node],
                choice.partition,
            ):
                by_topic[tp.topic] = tp
        for topic in sorted(by_topic):
            tp = by_topic[topic]
            step = cost + (1 if tp in sticky[node] else 0)
            for other in potential[topic]:
                if other in done or other == node:
                    continue
                if step < dist.get(other, step + 1):
                    dist[other] = step
                    parent[other] = (node, tp)
                    heapq.heappush(heap, (step, rank[other], other))
    if best_target is None:
        return None
    path: list[_Hop] = []
    node = best_target[3]
    while node != source:
        previous, tp = parent[node]
        path.append((previous, node, tp))
        node = previous
    path.reverse()
    return best_target[0], path


# ------------------------------------------------------------------ sticky: entry points


def _sticky_assign(
    partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
) -> Assignment:
    counts, subs = _prepare(partitions_per_topic, members)
    if not members:
        return {}
    order = sorted((m.member_id for m in members), key=_java_key)
    owned = _owned_by_member(_resolve_claims(members, counts), order)
    if len(set(subs.values())) == 1:
        partitions = _all_partitions(counts, sorted(counts))
        result = _constrained_assign(partitions, order, owned)
    else:
        result = _general_assign(counts, subs, owned, order)
    return _sorted_result(result)


class StickyAssignor:
    """Kafka's eager ``sticky`` assignor: balance first, then keep what members owned.

    With equal subscriptions the counts differ by at most one and every member
    keeps its owned partitions up to its quota. With unequal subscriptions the
    counts are as balanced as the subscriptions allow, and owned partitions move
    only when balance needs them to. Subscriptions count as equal when they are
    equal after dropping topics that do not exist (Kafka compares them raw).
    """

    name: str = "sticky"
    protocol: str = EAGER

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        return _sticky_assign(partitions_per_topic, members)


class CooperativeStickyAssignor:
    """Kafka's ``cooperative-sticky``: the sticky target, delivered incrementally.

    ``assign`` returns the same target as :class:`StickyAssignor`; the caller
    applies :func:`cooperative_filter` before handing it out.
    """

    name: str = "cooperative-sticky"
    protocol: str = COOPERATIVE

    def assign(
        self, partitions_per_topic: Mapping[str, int], members: Sequence[MemberSubscription]
    ) -> dict[str, list[TopicPartition]]:
        return _sticky_assign(partitions_per_topic, members)


def cooperative_filter(
    assignment: Mapping[str, Sequence[TopicPartition]], members: Sequence[MemberSubscription]
) -> dict[str, list[TopicPartition]]:
    """Drop from each member the partitions another member still owns (cooperative round 1).

    A partition stays with member M if no other member claims it, or if M is its
    valid owner (M's claim is the only one in the newest generation claiming it).
    Otherwise it is withheld: its current owner revokes it after this rebalance,
    rejoins, and the next rebalance gives it out. As in Kafka, a
    partition claimed twice in the same generation is withheld from everyone.
    """
    claimants: dict[TopicPartition, set[str]] = {}
    for member in members:
        for claimed in member.owned:
            tp = TopicPartition(claimed[0], claimed[1])
            claimants.setdefault(tp, set()).add(member.member_id)
    owners = _resolve_claims(members)
    result: dict[str, list[TopicPartition]] = {}
    for member_id, tps in assignment.items():
        kept: list[TopicPartition] = []
        for tp in tps:
            others = claimants.get(tp, set()) - {member_id}
            if not others or owners.get(tp) == member_id:
                kept.append(tp)
        result[member_id] = kept
    for member in members:
        result.setdefault(member.member_id, [])
    return result


# ------------------------------------------------------------------ registry

_ASSIGNORS: dict[str, Assignor] = {
    a.name: a
    for a in (RangeAssignor(), RoundRobinAssignor(), StickyAssignor(), CooperativeStickyAssignor())
}
ASSIGNOR_NAMES: tuple[str, ...] = tuple(sorted(_ASSIGNORS))


def get_assignor(name: str) -> Assignor:
    """The assignor called ``name`` (Kafka's names); ``ConfigError`` for any other."""
    try:
        return _ASSIGNORS[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in ASSIGNOR_NAMES)
        raise ConfigError(
            f"unknown partition assignment strategy {name!r}; valid: {valid}"
        ) from None
