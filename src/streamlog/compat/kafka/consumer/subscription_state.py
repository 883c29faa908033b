"""kafka-python's ``ConsumerRebalanceListener``."""

from __future__ import annotations

import abc

from ..structs import TopicPartition

__all__ = ["ConsumerRebalanceListener"]


class ConsumerRebalanceListener(abc.ABC):
    """Callbacks run inside ``poll()`` (or the iterator) of the consumer that subscribed."""

    @abc.abstractmethod
    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None: ...

    @abc.abstractmethod
    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None: ...
