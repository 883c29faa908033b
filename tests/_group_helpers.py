"""Driving the pure consumer-group state machine (``coordination._group.GroupState``).

Shared by ``tests/unit/test_group_state.py`` and ``test_group_machine.py`` (scenarios),
``tests/property/test_group_model.py`` (simulated processes) and
``tests/multiprocess/test_groups_multiprocess.py`` (states sampled from real processes).
Time is an argument in ns, as in ``GroupState``: ``5 * S``, ``300 * MS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from streamlog._structs import TopicPartition
from streamlog.coordination._assignors import get_assignor
from streamlog.coordination._group import COMPLETING, STABLE, GroupState, Member

MS = 1_000_000  # ns per millisecond
S = 1_000_000_000  # ns per second
SESSION_MS = 10_000
REBALANCE_MS = 30_000
COUNTS = {"t": 6}  # partition counts of the topics: one topic "t" of 6


def tps(*partitions: int, topic: str = "t") -> tuple[TopicPartition, ...]:
    return tuple(TopicPartition(topic, n) for n in partitions)


def join(
    g: GroupState,
    member_id: str,
    now: int = 0,
    *,
    instance: str | None = None,
    topics: Sequence[str] = ("t",),
    protocols: Sequence[str] = ("range",),
    owned: Iterable[TopicPartition] = (),
    session_ms: int = SESSION_MS,
    rebalance_ms: int = REBALANCE_MS,
) -> Member:
    """``g.join`` with defaults: client id ``client-<member_id>``, topic ``t``, ``range``."""
    return g.join(
        member_id=member_id,
        client_id=f"client-{member_id}",
        instance_id=instance,
        topics=topics,
        protocols=protocols,
        owned=owned,
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms,
        now=now,
    )


def complete(g: GroupState, now: int = 0, counts: Mapping[str, int] = COUNTS) -> bool:
    """``maybe_complete`` with the real assignors; whether the round completed. Checks ``sane``."""
    done = g.maybe_complete(counts, get_assignor, now)
    sane(g)
    return done


def sync_all(g: GroupState) -> None:
    """Every live member syncs the current generation (checking ``sane`` after each)."""
    for member_id in list(g.members):
        if g.members[member_id].alive:
            g.sync(member_id, g.generation)
            sane(g)


def can_sync(g: GroupState, m: Member) -> bool:
    """Whether ``m`` may sync now, as ``clients._membership`` decides: an assignment is
    out (Completing or Stable) and ``m`` has not already joined the next round."""
    return g.state in (COMPLETING, STABLE) and m.joined != g.generation + 1


def double_owned(g: GroupState) -> list[str]:
    """The breaches of the safety property: a partition in two members' ``owned``, or in
    ``owned`` and the quarantine (empty when safe)."""
    problems: list[str] = []
    seen: dict[TopicPartition, str] = {}
    for m in g.members.values():
        for tp in m.owned:
            if tp in seen:
                problems.append(f"{tp} owned by {seen[tp]} and {m.member_id}")
            if tp in g.quarantine:
                problems.append(f"{tp} owned by {m.member_id} and quarantined")
            seen[tp] = m.member_id
    return problems


def sane(g: GroupState) -> None:
    """``_check()`` and, on its own, the safety property: one reader per partition."""
    g._check()
    problems = double_owned(g)
    assert not problems, "\n".join(problems)
