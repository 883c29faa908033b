"""confluent-kafka's cluster metadata objects (``list_topics()``), for one local
"broker" with id 0."""

from __future__ import annotations

import streamlog

from ._handle import ensure_topic
from ._types import KafkaError

__all__ = [
    "BrokerMetadata", "ClusterMetadata", "PartitionMetadata", "TopicMetadata", "cluster_metadata",
]

CLUSTER_ID = "streamlog"


class BrokerMetadata:
    def __init__(self, broker_id: int = 0, host: str = "localhost", port: int = 9092) -> None:
        self.id = broker_id
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return f"BrokerMetadata({self.id}, {self.host}:{self.port})"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.id}"


class PartitionMetadata:
    def __init__(self, partition_id: int) -> None:
        self.id = partition_id
        self.leader = 0
        self.replicas = [0]
        self.isrs = [0]
        self.error: KafkaError | None = None

    def __repr__(self) -> str:
        if self.error is not None:
            return f"PartitionMetadata({self.id}, {self.error})"
        return f"PartitionMetadata({self.id})"

    def __str__(self) -> str:
        return str(self.id)


class TopicMetadata:
    def __init__(self, topic: str, partitions: int, error: KafkaError | None = None) -> None:
        self.topic = topic
        self.partitions = {i: PartitionMetadata(i) for i in range(partitions)}
        self.error = error

    def __repr__(self) -> str:
        if self.error is not None:
            return f"TopicMetadata({self.topic}, {len(self.partitions)} partitions, {self.error})"
        return f"TopicMetadata({self.topic}, {len(self.partitions)} partitions)"

    def __str__(self) -> str:
        return self.topic


class ClusterMetadata:
    def __init__(self) -> None:
        self.cluster_id: str | None = CLUSTER_ID
        self.controller_id = 0
        self.brokers = {0: BrokerMetadata()}
        self.topics: dict[str, TopicMetadata] = {}
        self.orig_broker_id = 0
        self.orig_broker_name = "localhost:9092/0"

    def __repr__(self) -> str:
        return f"ClusterMetadata({self.cluster_id})"

    def __str__(self) -> str:
        return str(self.cluster_id)


def cluster_metadata(
    log: streamlog.Log, topic: str | None = None, *, auto_create: bool = False
) -> ClusterMetadata:
    """``list_topics(topic)``: every topic, or just ``topic`` (with error
    ``UNKNOWN_TOPIC_OR_PART`` if it does not exist). ``auto_create``: a metadata
    request for a missing ``topic`` creates it, as a broker with
    ``auto.create.topics.enable`` does for clients with ``allow.auto.create.topics``
    (librdkafka's default: true for producers and AdminClient, false for consumers)."""
    md = ClusterMetadata()
    if topic is not None and auto_create:
        try:
            ensure_topic(log, topic)
        except streamlog.InvalidTopicError:
            pass  # reported below as unknown
    names = log.topics() if topic is None else [topic]
    for name in names:
        try:
            count = len(log.partitions_for(name))
        except streamlog.UnknownTopicError:
            md.topics[name] = TopicMetadata(
                name, 0, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
            )
            continue
        md.topics[name] = TopicMetadata(name, count)
    return md
