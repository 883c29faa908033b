"""Public value types: small immutable tuples, as in kafka-python's ``structs``.

They are ``NamedTuple`` subclasses: immutable, cheap to create (the consumer
makes one per record), comparable, and hashable when their fields are.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CompactionStats",
    "ConsumerRecord",
    "GroupDescription",
    "MemberDescription",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "PartitionDescription",
    "PartitionLag",
    "RecordMetadata",
    "RecordedEvent",
    "Snapshot",
    "TopicDescription",
    "TopicPartition",
]

Header = tuple[str, bytes | None]


class TopicPartition(NamedTuple):
    """A partition of a topic: ``TopicPartition("orders", 3)``."""

    topic: str
    partition: int


class OffsetAndMetadata(NamedTuple):
    """A committed offset (the next offset to read) with free-form metadata."""

    offset: int
    metadata: str = ""


class OffsetAndTimestamp(NamedTuple):
    """The result of ``offsets_for_times``: the earliest offset at or after a timestamp."""

    offset: int
    timestamp: int


class RecordMetadata(NamedTuple):
    """Where an acknowledged record was stored."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class ConsumerRecord(NamedTuple):
    """One record as a consumer sees it. ``headers`` keeps order and duplicates."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]


class PartitionDescription(NamedTuple):
    """One partition's offsets and size, from ``describe_topic``.

    ``end_offset`` is the offset the next record will get (Kafka's log end
    offset); the partition holds ``[log_start_offset, end_offset)``.
    """

    partition: int
    log_start_offset: int
    end_offset: int
    size_bytes: int
    segments: int


class TopicDescription(NamedTuple):
    """A topic's partitions and its full configuration (defaults filled in)."""

    name: str
    partitions: list[PartitionDescription]
    config: dict[str, object]
    #: new for every creation of the name: a topic deleted and created again is another topic
    topic_id: str = ""


class MemberDescription(NamedTuple):
    """One member of a consumer group, from ``describe_group``."""

    member_id: str
    client_id: str
    group_instance_id: str | None
    assignment: frozenset[TopicPartition]


class PartitionLag(NamedTuple):
    """A group's progress on one partition: ``lag = end_offset - committed`` (None if
    nothing is committed)."""

    committed: int | None
    end_offset: int
    lag: int | None


class GroupDescription(NamedTuple):
    """A consumer group, from ``describe_group``.

    ``state`` is Kafka's: ``Empty``, ``PreparingRebalance``,
    ``CompletingRebalance``, ``Stable`` or ``Dead``. ``offsets`` covers every
    partition the group has committed or is assigned.
    """

    group_id: str
    state: str
    generation: int
    protocol: str | None
    members: tuple[MemberDescription, ...]
    offsets: dict[TopicPartition, PartitionLag]


class TransactionDescription(NamedTuple):
    """A transactional id as the coordinator records it (kafka-transactions.sh describe).

    ``state`` is Kafka's: ``Empty``, ``Ongoing``, ``PrepareCommit``,
    ``PrepareAbort``, ``CompleteCommit`` or ``CompleteAbort``. ``partitions`` are
    those written in the open transaction; ``start_ms`` is -1 when none is open.
    """

    transactional_id: str
    producer_id: int
    producer_epoch: int
    state: str
    partitions: frozenset[TopicPartition]
    groups: frozenset[str]
    start_ms: int
    timeout_ms: int
    last_update_ms: int


class CompactionStats(NamedTuple):
    """What ``Log.compact(topic)`` did (sums over the partitions it cleaned).

    Records and bytes are those of the segments rewritten, before and after;
    ``tombstones_removed`` counts tombstones dropped because their delete horizon
    had passed (superseded ones are counted in ``records_removed`` only).
    """

    topic: str
    partitions_cleaned: int
    segments_cleaned: int
    records_before: int
    records_after: int
    bytes_before: int
    bytes_after: int
    tombstones_removed: int
    duration_ms: float

    @property
    def records_removed(self) -> int:
        return self.records_before - self.records_after


class ProducerState(NamedTuple):
    """What one partition remembers of a producer id (kafka-transactions.sh
    describe-producers): its epoch, last sequence and timestamp, and the first offset
    of its open transaction (-1 if none)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    current_transaction_start_offset: int


class RecordedEvent(NamedTuple):
    """One event of an ``EventStore``: the ``revision``-th event (from 0) of ``stream``,
    stored at ``offset`` of ``partition`` (its position), with its ``data`` and
    ``headers`` as appended and the append's ``timestamp`` (ms)."""

    stream: str
    revision: int
    partition: int
    offset: int
    timestamp: int
    data: bytes
    headers: tuple[Header, ...]


class Snapshot(NamedTuple):
    """A stream's state as saved by ``EventStore.save_snapshot``: ``state`` holds every
    event of ``stream`` up to and including ``revision``."""

    stream: str
    revision: int
    state: bytes


class Sentinel:
    """A named marker compared by identity: ``streamlog.ANY``, ``NO_STREAM``,
    ``STREAM_EXISTS`` (expected revisions) and ``CAUGHT_UP`` (subscriptions)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"streamlog.{self._name}"

    def __reduce__(self) -> str:
        return self._name  # pickles as the module attribute: identity survives


# (pickle finds the instances as attributes of the package, as the tests expect)
Sentinel.__module__ = "streamlog"
ANY = Sentinel("ANY")
NO_STREAM = Sentinel("NO_STREAM")
STREAM_EXISTS = Sentinel("STREAM_EXISTS")
CAUGHT_UP = Sentinel("CAUGHT_UP")
