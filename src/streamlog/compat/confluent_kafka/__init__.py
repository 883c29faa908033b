"""A drop-in ``confluent_kafka`` over streamlog: ``Producer``, ``Consumer``, ``Message``,
``KafkaError``, ``KafkaException``, ``TopicPartition`` and the offset constants,
``SerializingProducer``/``DeserializingConsumer`` with ``confluent_kafka.serialization``,
with librdkafka's defaults (crc32 ``consistent_random`` partitioner, ``linger.ms`` 5,
``isolation.level`` read_committed, ``auto.offset.reset`` largest).

``streamlog.compat.install()`` makes ``import confluent_kafka`` resolve here; the
clients use the data directory it opened (see ``_log_handle``). Used without it, they
share one temporary data directory. See docs/compatibility.md.
"""

from __future__ import annotations

from . import _handle
from ._consumer import Consumer
from ._metadata import BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata
from ._producer import Producer
from ._types import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from .deserializing_consumer import DeserializingConsumer
from .serializing_producer import SerializingProducer

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "BrokerMetadata",
    "ClusterMetadata",
    "Consumer",
    "DeserializingConsumer",
    "KafkaError",
    "KafkaException",
    "Message",
    "PartitionMetadata",
    "Producer",
    "SerializingProducer",
    "TopicMetadata",
    "TopicPartition",
    "libversion",
    "version",
]

__version__ = "2.3.0"


def version() -> tuple[str, int]:
    """The confluent-kafka version this shim follows, as ``(str, int)``."""
    return ("2.3.0", 0x02030000)


def libversion() -> tuple[str, int]:
    """The librdkafka version whose defaults the shim follows."""
    return ("2.3.0", 0x020300FF)


#: the data directory accessor every client uses (the installed one, else a temporary one)
_log_handle = _handle.log_handle
