"""kafka-python's ``NewTopic``, ``NewPartitions``, ``ConfigResource``."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

__all__ = ["ConfigResource", "ConfigResourceType", "NewPartitions", "NewTopic"]


class NewTopic:
    """A topic for ``create_topics``. ``num_partitions=-1`` takes the broker default (1);
    ``replication_factor`` and ``replica_assignments`` are accepted, not modelled."""

    def __init__(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        replica_assignments: Mapping[int, list[int]] | None = None,
        topic_configs: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.replica_assignments = dict(replica_assignments or {})
        self.topic_configs = dict(topic_configs or {})

    def __repr__(self) -> str:
        return f"NewTopic(name={self.name!r}, num_partitions={self.num_partitions})"


class NewPartitions:
    def __init__(self, total_count: int, new_assignments: list[list[int]] | None = None) -> None:
        self.total_count = total_count
        self.new_assignments = new_assignments


class ConfigResourceType(IntEnum):
    BROKER = 4
    TOPIC = 2


class ConfigResource:
    def __init__(
        self,
        resource_type: ConfigResourceType | str | int,
        name: str,
        configs: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(resource_type, str):
            resource_type = ConfigResourceType[resource_type.upper()]
        self.resource_type = ConfigResourceType(resource_type)
        self.name = name
        self.configs = configs
