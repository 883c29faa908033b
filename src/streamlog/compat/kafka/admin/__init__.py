"""kafka-python's ``kafka.admin``."""

from __future__ import annotations

from .client import KafkaAdminClient
from .new_topic import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

__all__ = ["ConfigResource", "ConfigResourceType", "KafkaAdminClient", "NewPartitions", "NewTopic"]
