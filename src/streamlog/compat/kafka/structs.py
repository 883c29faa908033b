"""kafka-python's ``kafka.structs``.

``TopicPartition`` is streamlog's own (a ``(topic, partition)`` named tuple, as in
kafka-python). ``OffsetAndMetadata`` and ``OffsetAndTimestamp`` take
``leader_epoch`` as an optional third field, so both kafka-python 2.0.2 calls
(``OffsetAndMetadata(5, "")``) and 2.1+ calls (``OffsetAndMetadata(5, "", -1)``) work.
"""

from __future__ import annotations

from typing import NamedTuple

from ..._structs import TopicPartition

__all__ = ["BrokerMetadata", "OffsetAndMetadata", "OffsetAndTimestamp", "TopicPartition"]


class OffsetAndMetadata(NamedTuple):
    offset: int
    metadata: str = ""
    leader_epoch: int = -1


class OffsetAndTimestamp(NamedTuple):
    offset: int
    timestamp: int
    leader_epoch: int = -1


class BrokerMetadata(NamedTuple):
    nodeId: int  # noqa: N815 - kafka-python's field name
    host: str
    port: int
    rack: str | None
