"""Consumer group administration: what Kafka's ``kafka-consumer-groups.sh`` does.

``list_groups``, ``describe_group``, ``reset_offsets`` and ``delete_group`` on
the groups of one data directory. Each opens the group's ``GroupStore`` and
``OffsetStore`` for the call and closes them. A describe removes dead and
expired members first, as a coordinator would; reset and delete are refused
while the group has active members.

Process-safe: every change happens under the group's state lock.
"""

from __future__ import annotations

import datetime
import errno
import os
import time
from collections.abc import Iterable

from .. import _layout
from .._fs import fs
from .._names import check_name, check_partition, check_topic_name, short_repr
from .._structs import (
    GroupDescription,
    MemberDescription,
    OffsetAndMetadata,
    PartitionLag,
    TopicPartition,
)
from ..errors import (
    GroupNotEmptyError,
    StorageIOError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from ._group import GroupState
from ._groupstore import GroupStore
from ._manager import LogManager
from ._offsets import OffsetStore

__all__ = ["delete_group", "describe_group", "list_groups", "reset_offsets"]


def list_groups(manager: LogManager) -> list[str]:
    """Every consumer group with members or committed offsets, sorted."""
    manager.check_open()
    root = manager.path
    try:
        names = fs.listdir(_layout.groups_dir(root))
    except StorageIOError as e:
        if e.errno == errno.ENOENT:
            return []
        raise
    return sorted(
        name
        for name in names
        if os.path.exists(_layout.group_state_file(root, name))
        or os.path.exists(_layout.offsets_file(root, name))
    )


def _stores(manager: LogManager, group_id: str) -> tuple[GroupStore, OffsetStore]:
    return GroupStore(manager.path, group_id), OffsetStore(manager.path, group_id)


def describe_group(manager: LogManager, group_id: str) -> GroupDescription:
    """State, generation, protocol, members and per-partition committed offset and lag."""
    manager.check_open()
    store, offsets = _stores(manager, group_id)
    try:
        if not store.exists() and not offsets.all():
            raise UnknownGroupError(f"no consumer group {group_id!r}")
        state: GroupState
        if store.exists():
            with store.transaction() as state:
                pass  # the transaction removes dead and expired members
        else:
            state = store.load()
        committed = offsets.all()
    finally:
        store.close()
        offsets.close()
    members = tuple(
        MemberDescription(m.member_id, m.client_id, m.instance_id, frozenset(m.assignment))
        for m in state.members.values()
    )
    tps = set(committed)
    for m in state.members.values():
        tps.update(m.assignment)
    lags: dict[TopicPartition, PartitionLag] = {}
    for tp in sorted(tps):
        try:
            end = manager.partition(tp.topic, tp.partition).end_offset
        except (UnknownTopicError, UnknownPartitionError):
            continue  # the topic was deleted; its offsets linger until deleted
        c = committed.get(tp)
        offset = None if c is None else c.offset
        lags[tp] = PartitionLag(offset, end, None if offset is None else max(0, end - offset))
    return GroupDescription(
        group_id=group_id,
        state=state.state,
        generation=state.generation,
        protocol=state.protocol,
        members=members,
        offsets=lags,
    )


def expire_member(manager: LogManager, group_id: str, member_id: str) -> bool:
    """Remove a member from the group as if its session had timed out (internal: the
    ``expire_member`` fault of ``streamlog.compat``). The group rebalances; the member is
    fenced, so it finds out at its next heartbeat or poll (``on_partitions_lost``, then it
    joins again under a new id) and its commits fail meanwhile (``CommitFailedError``).
    False if ``member_id`` is not a member of ``group_id``."""
    manager.check_open()
    check_name("group_id", group_id)
    store = GroupStore(manager.path, group_id)
    try:
        if not store.exists():
            return False
        with store.transaction() as state:
            # (removed members are fenced by the transaction on its way out)
            expired = state.expire_member(member_id, time.monotonic_ns())
        return expired
    finally:
        store.close()


def _check_reset_args(
    to: str | int | None,
    shift_by: int | None,
    to_datetime: datetime.datetime | None,
    dry_run: bool,
) -> None:
    given = [x is not None for x in (to, shift_by, to_datetime)]
    if sum(given) != 1:
        raise ValueError("give exactly one of to=, shift_by= or to_datetime=")
    if to is not None and to not in ("earliest", "latest"):
        if isinstance(to, bool) or not isinstance(to, int):
            raise ValueError(f"to must be 'earliest', 'latest' or an offset, not {to!r}")
        if to < 0:
            raise ValueError(f"offset must be >= 0, not {to}")
    if shift_by is not None and (isinstance(shift_by, bool) or not isinstance(shift_by, int)):
        raise TypeError("shift_by must be an int")
    if to_datetime is not None and not isinstance(to_datetime, datetime.datetime):
        raise TypeError("to_datetime must be a datetime.datetime")
    if not isinstance(dry_run, bool):
        raise TypeError("dry_run must be a bool")


def reset_offsets(
    manager: LogManager,
    group_id: str,
    topic: str,
    *,
    to: str | int | None = None,
    shift_by: int | None = None,
    to_datetime: datetime.datetime | None = None,
    partitions: Iterable[int] | None = None,
    dry_run: bool = False,
) -> dict[TopicPartition, int]:
    """See ``Log.reset_offsets``."""
    manager.check_open()
    check_name("group_id", group_id)
    check_topic_name(topic)
    _check_reset_args(to, shift_by, to_datetime, dry_run)
    meta = manager.catalog.require(topic)
    chosen = range(meta.partitions) if partitions is None else sorted(set(partitions))
    for p in chosen:
        check_partition(p)
        if p >= meta.partitions:
            raise UnknownPartitionError(f"topic {topic!r} has no partition {short_repr(p)}")
    store, offsets = _stores(manager, group_id)
    try:
        with store.transaction() as state:
            if state.members:
                raise GroupNotEmptyError(
                    f"offsets can only be reset while group {group_id!r} is inactive; "
                    f"it is {state.state} with {len(state.members)} member(s)"
                )
            current = offsets.all()
            new: dict[TopicPartition, int] = {}
            for p in chosen:
                tp = TopicPartition(topic, p)
                plog = manager.partition(topic, p)
                start, end = plog.log_start_offset, plog.end_offset
                if to == "earliest":
                    target = start
                elif to == "latest":
                    target = end
                elif to is not None:
                    target = int(to)
                elif shift_by is not None:
                    c = current.get(tp)
                    if c is None:
                        continue
                    target = c.offset + shift_by
                else:
                    assert to_datetime is not None
                    when = to_datetime
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=datetime.timezone.utc)
                    found = plog.offset_for_timestamp(int(when.timestamp() * 1000))
                    target = end if found is None else found[0]
                new[tp] = min(max(target, start), end)
            if not dry_run and new:
                offsets.reset({tp: OffsetAndMetadata(o) for tp, o in new.items()})
        return new
    finally:
        store.close()
        offsets.close()


def delete_group(manager: LogManager, group_id: str) -> None:
    """See ``Log.delete_group``."""
    manager.check_open()
    check_name("group_id", group_id)
    store, offsets = _stores(manager, group_id)
    try:
        # by its files, not their contents: a group whose files are damaged can be deleted
        root = manager.path
        if not any(
            os.path.lexists(p)
            for p in (
                _layout.group_state_file(root, group_id),
                _layout.offsets_file(root, group_id),
            )
        ):
            raise UnknownGroupError(f"no consumer group {group_id!r}")
        with store.locked():
            with store.transaction() as state:
                if state.members:
                    raise GroupNotEmptyError(
                        f"group {group_id!r} has {len(state.members)} active member(s); "
                        "stop its consumers first"
                    )
            offsets.delete()
            store.delete()
    finally:
        store.close()
        offsets.close()
