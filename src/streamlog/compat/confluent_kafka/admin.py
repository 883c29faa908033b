"""``confluent_kafka.admin``: ``AdminClient`` over the installed data directory.

Every call returns completed ``concurrent.futures.Future`` objects, keyed as the real
client keys them; failures are ``KafkaException`` with the broker's error code.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

import streamlog

from ._config import parse
from ._handle import log_handle
from ._metadata import BrokerMetadata, ClusterMetadata, cluster_metadata
from ._types import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition, error_from

__all__ = [
    "AdminClient", "BrokerMetadata", "ClusterMetadata", "ConfigEntry", "ConfigResource",
    "ConfigSource", "ConsumerGroupDescription", "ConsumerGroupListing", "ConsumerGroupState",
    "ConsumerGroupTopicPartitions", "ListConsumerGroupsResult", "MemberAssignment",
    "MemberDescription", "NewPartitions", "NewTopic", "Node", "ResourceType",
]

T = TypeVar("T")


class NewTopic:
    def __init__(self, topic: str, num_partitions: int = -1, replication_factor: int = -1,
                 replica_assignment: list[list[int]] | None = None,
                 config: Mapping[str, str] | None = None) -> None:
        self.topic = topic
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignment = replica_assignment
        self.config = dict(config or {})

    def __repr__(self) -> str:
        return f"NewTopic(topic={self.topic},num_partitions={self.num_partitions})"


class NewPartitions:
    def __init__(self, topic: str, new_total_count: int,
                 replica_assignment: list[list[int]] | None = None) -> None:
        self.topic = topic
        self.new_total_count = new_total_count
        self.replica_assignment = replica_assignment


class ResourceType(enum.Enum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    BROKER = 4


class ConfigSource(enum.Enum):
    UNKNOWN_CONFIG = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class ConsumerGroupState(enum.Enum):
    UNKNOWN = 0
    PREPARING_REBALANCING = 1
    COMPLETING_REBALANCING = 2
    STABLE = 3
    DEAD = 4
    EMPTY = 5


class ConfigResource:
    Type = ResourceType

    def __init__(self, restype: ResourceType | str | int, name: str,
                 set_config: Mapping[str, str] | None = None) -> None:
        if isinstance(restype, str):
            restype = ResourceType[restype.upper()]
        elif isinstance(restype, int):
            restype = ResourceType(restype)
        self.restype = restype
        self.name = name
        self.set_config_dict = dict(set_config or {})

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ConfigResource)
                and (self.restype, self.name) == (other.restype, other.name))

    def __hash__(self) -> int:
        return hash((self.restype, self.name))

    def __repr__(self) -> str:
        return f"ConfigResource({self.restype},{self.name})"


class ConfigEntry:
    def __init__(self, name: str, value: str | None, source: ConfigSource,
                 is_read_only: bool = False, is_default: bool = False,
                 is_sensitive: bool = False, is_synonym: bool = False) -> None:
        self.name = name
        self.value = value
        self.source = source
        self.is_read_only = is_read_only
        self.is_default = is_default
        self.is_sensitive = is_sensitive
        self.is_synonym = is_synonym
        self.synonyms: dict[str, ConfigEntry] = {}

    def __repr__(self) -> str:
        return f"ConfigEntry({self.name}=\"{self.value}\")"


class Node:
    def __init__(self, node_id: int = 0, host: str = "localhost", port: int = 9092,
                 rack: str | None = None) -> None:
        self.id = node_id
        self.id_string = str(node_id)
        self.host = host
        self.port = port
        self.rack = rack


class ConsumerGroupListing:
    def __init__(self, group_id: str, is_simple_consumer_group: bool,
                 state: ConsumerGroupState) -> None:
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.state = state


class ListConsumerGroupsResult:
    def __init__(self, valid: list[ConsumerGroupListing]) -> None:
        self.valid = valid
        self.errors: list[KafkaException] = []


class MemberAssignment:
    def __init__(self, topic_partitions: list[TopicPartition]) -> None:
        self.topic_partitions = topic_partitions


class MemberDescription:
    def __init__(self, member_id: str, client_id: str, host: str,
                 assignment: MemberAssignment, group_instance_id: str | None = None) -> None:
        self.member_id = member_id
        self.client_id = client_id
        self.host = host
        self.assignment = assignment
        self.group_instance_id = group_instance_id


class ConsumerGroupDescription:
    def __init__(self, group_id: str, is_simple_consumer_group: bool,
                 members: list[MemberDescription], partition_assignor: str,
                 state: ConsumerGroupState, coordinator: Node) -> None:
        self.group_id = group_id
        self.is_simple_consumer_group = is_simple_consumer_group
        self.members = members
        self.partition_assignor = partition_assignor
        self.state = state
        self.coordinator = coordinator


class ConsumerGroupTopicPartitions:
    def __init__(self, group_id: str, topic_partitions: list[TopicPartition] | None = None
                 ) -> None:
        self.group_id = group_id
        self.topic_partitions = topic_partitions


_STATES = {
    "Stable": ConsumerGroupState.STABLE, "Empty": ConsumerGroupState.EMPTY,
    "Dead": ConsumerGroupState.DEAD, "PreparingRebalance": ConsumerGroupState.PREPARING_REBALANCING,
    "CompletingRebalance": ConsumerGroupState.COMPLETING_REBALANCING,
}


def _future(fn: Callable[[], T]) -> Future[T]:
    """A completed future holding ``fn()``, or its error as ``KafkaException``."""
    fut: Future[T] = Future()
    try:
        fut.set_result(fn())
    except KafkaException as e:
        fut.set_exception(e)
    except streamlog.StreamlogError as e:
        fut.set_exception(KafkaException(error_from(e)))
    return fut


def _fail(code: int, text: str | None = None) -> KafkaException:
    return KafkaException(KafkaError(code, text))


class AdminClient:
    """confluent-kafka's ``AdminClient(config)`` for the installed data directory."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        parsed = parse({**(conf or {}), **kwargs}, "admin")
        self._auto_create = parsed.get_bool("allow.auto.create.topics", True)
        self._log = log_handle()

    # ----------------------------------------------------------------- topics
    def create_topics(self, new_topics: list[NewTopic], operation_timeout: float = 0,
                      request_timeout: float = -1, validate_only: bool = False
                      ) -> dict[str, Future[None]]:
        if not isinstance(new_topics, list) or not all(isinstance(t, NewTopic)
                                                       for t in new_topics):
            raise TypeError("Expected list of NewTopic objects")
        seen: set[str] = set()
        for t in new_topics:
            if t.topic in seen:
                raise KafkaException(KafkaError(
                    KafkaError._INVALID_ARG,
                    f"Duplicate topic name \"{t.topic}\" in NewTopic list"))
            seen.add(t.topic)
        return {t.topic: _future(lambda t=t: self._create(t, validate_only))  # type: ignore[misc]
                for t in new_topics}

    def _create(self, t: NewTopic, validate_only: bool) -> None:
        partitions = 1 if t.num_partitions == -1 else t.num_partitions
        if partitions < 1:
            raise _fail(KafkaError.INVALID_PARTITIONS,
                        "Number of partitions must be larger than 0.")
        if t.replication_factor == 0 or t.replication_factor < -1:
            raise _fail(KafkaError.INVALID_REPLICATION_FACTOR,
                        "Replication factor must be larger than 0, or -1 to use the default.")
        if t.topic in self._log.topics():
            raise _fail(KafkaError.TOPIC_ALREADY_EXISTS,
                        f"Topic '{t.topic}' already exists.")
        if validate_only:
            return
        try:
            self._log.create_topic(t.topic, partitions, t.config or None)
        except streamlog.ConfigError as e:
            raise _fail(KafkaError.INVALID_CONFIG, str(e)) from e

    def delete_topics(self, topics: list[str], operation_timeout: float = 0,
                      request_timeout: float = -1) -> dict[str, Future[None]]:
        if not isinstance(topics, list):
            raise TypeError("Expected list of topic strings")
        return {t: _future(lambda t=t: self._log.delete_topic(t)) for t in topics}  # type: ignore[misc]

    def create_partitions(self, new_partitions: list[NewPartitions],
                          operation_timeout: float = 0, request_timeout: float = -1,
                          validate_only: bool = False) -> dict[str, Future[None]]:
        def grow(p: NewPartitions) -> None:
            current = len(self._log.partitions_for(p.topic))
            if p.new_total_count <= current:
                raise _fail(KafkaError.INVALID_PARTITIONS,
                            f"Topic currently has {current} partitions, which is higher than "
                            f"or equal to the requested {p.new_total_count}.")
            if not validate_only:
                self._log.create_partitions(p.topic, p.new_total_count)

        return {p.topic: _future(lambda p=p: grow(p)) for p in new_partitions}  # type: ignore[misc]

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """The cluster's metadata; a missing ``topic`` named here is auto-created unless
        ``allow.auto.create.topics=false`` (librdkafka asks the broker to)."""
        return cluster_metadata(self._log, topic, auto_create=self._auto_create)

    def describe_configs(self, resources: list[ConfigResource], request_timeout: float = -1
                         ) -> dict[ConfigResource, Future[dict[str, ConfigEntry]]]:
        def describe(r: ConfigResource) -> dict[str, ConfigEntry]:
            if r.restype is not ResourceType.TOPIC:
                raise _fail(KafkaError._UNSUPPORTED_FEATURE,
                            "streamlog describes topic configs only")
            desc = self._log.describe_topic(r.name)
            overrides = self._overrides(r.name)
            return {
                k: ConfigEntry(
                    k, None if v is None else str(v),
                    ConfigSource.DYNAMIC_TOPIC_CONFIG if k in overrides
                    else ConfigSource.DEFAULT_CONFIG,
                    is_default=k not in overrides,
                )
                for k, v in sorted(desc.config.items())
            }

        return {r: _future(lambda r=r: describe(r)) for r in resources}  # type: ignore[misc]

    def _overrides(self, topic: str) -> set[str]:
        """The keys whose value differs from streamlog's default (Kafka reports the
        topic's explicit overrides; a value set equal to the default shows as default)."""
        desc = self._log.describe_topic(topic).config
        defaults = streamlog.TopicConfig.from_dict(None).to_dict()
        return {k for k, v in desc.items() if k not in defaults or defaults[k] != v}

    def alter_configs(self, resources: list[ConfigResource], request_timeout: float = -1,
                      validate_only: bool = False) -> dict[ConfigResource, Future[None]]:
        def alter(r: ConfigResource) -> None:
            if r.restype is not ResourceType.TOPIC:
                raise _fail(KafkaError._UNSUPPORTED_FEATURE)
            if not validate_only:
                try:
                    self._log.alter_topic_config(r.name, r.set_config_dict)
                except streamlog.ConfigError as e:
                    raise _fail(KafkaError.INVALID_CONFIG, str(e)) from e

        return {r: _future(lambda r=r: alter(r)) for r in resources}  # type: ignore[misc]

    # ----------------------------------------------------------------- groups
    def list_consumer_groups(self, request_timeout: float = -1, states: Any = None,
                             **kwargs: Any) -> Future[ListConsumerGroupsResult]:
        def listing() -> ListConsumerGroupsResult:
            out = []
            for g in self._log.list_groups():
                d = self._log.describe_group(g)
                state = _STATES.get(d.state, ConsumerGroupState.UNKNOWN)
                if states and state not in states:
                    continue
                out.append(ConsumerGroupListing(g, not d.protocol, state))
            return ListConsumerGroupsResult(out)

        return _future(listing)

    def describe_consumer_groups(self, group_ids: list[str], request_timeout: float = -1,
                                 **kwargs: Any) -> dict[str, Future[ConsumerGroupDescription]]:
        def describe(g: str) -> ConsumerGroupDescription:
            try:
                d = self._log.describe_group(g)
            except streamlog.UnknownGroupError:
                return ConsumerGroupDescription(g, True, [], "", ConsumerGroupState.DEAD, Node())
            members = [
                MemberDescription(
                    m.member_id, m.client_id, "/127.0.0.1",
                    MemberAssignment([TopicPartition(t, p) for t, p in sorted(m.assignment)]),
                    getattr(m, "group_instance_id", None),
                )
                for m in d.members
            ]
            return ConsumerGroupDescription(
                g, not d.protocol, members, d.protocol or "",
                _STATES.get(d.state, ConsumerGroupState.UNKNOWN), Node(),
            )

        return {g: _future(lambda g=g: describe(g)) for g in group_ids}  # type: ignore[misc]

    def list_consumer_group_offsets(self, list_consumer_group_offsets_request:
                                    list[ConsumerGroupTopicPartitions], **kwargs: Any
                                    ) -> dict[str, Future[ConsumerGroupTopicPartitions]]:
        def offsets(req: ConsumerGroupTopicPartitions) -> ConsumerGroupTopicPartitions:
            try:
                committed = self._log.describe_group(req.group_id).offsets
            except streamlog.UnknownGroupError:
                committed = {}
            if req.topic_partitions:
                tps = [(tp.topic, tp.partition) for tp in req.topic_partitions]
            else:
                tps = sorted(committed)
            out = []
            for t, p in tps:
                lag = committed.get(streamlog.TopicPartition(t, p))
                off = None if lag is None else lag.committed
                out.append(TopicPartition(t, p, OFFSET_INVALID if off is None else off))
            return ConsumerGroupTopicPartitions(req.group_id, out)

        return {r.group_id: _future(lambda r=r: offsets(r))  # type: ignore[misc]
                for r in list_consumer_group_offsets_request}

    def alter_consumer_group_offsets(self, alter_consumer_group_offsets_request:
                                     list[ConsumerGroupTopicPartitions], **kwargs: Any
                                     ) -> dict[str, Future[ConsumerGroupTopicPartitions]]:
        def alter(req: ConsumerGroupTopicPartitions) -> ConsumerGroupTopicPartitions:
            out = []
            for tp in req.topic_partitions or []:
                try:
                    self._log.reset_offsets(req.group_id, tp.topic, to=tp.offset,
                                            partitions=[tp.partition])
                except streamlog.GroupNotEmptyError as e:
                    raise _fail(KafkaError.UNKNOWN_MEMBER_ID, str(e)) from e
                out.append(TopicPartition(tp.topic, tp.partition, tp.offset))
            return ConsumerGroupTopicPartitions(req.group_id, out)

        return {r.group_id: _future(lambda r=r: alter(r))  # type: ignore[misc]
                for r in alter_consumer_group_offsets_request}

    def delete_consumer_groups(self, group_ids: list[str], request_timeout: float = -1,
                               **kwargs: Any) -> dict[str, Future[None]]:
        def delete(g: str) -> None:
            try:
                self._log.delete_group(g)
            except streamlog.GroupNotEmptyError as e:
                raise _fail(KafkaError.NON_EMPTY_GROUP, str(e)) from e
            except streamlog.UnknownGroupError as e:
                raise _fail(KafkaError.GROUP_ID_NOT_FOUND, str(e)) from e

        return {g: _future(lambda g=g: delete(g)) for g in group_ids}  # type: ignore[misc]

    def poll(self, timeout: float = -1) -> int:
        return 0

    def __len__(self) -> int:
        return 0

