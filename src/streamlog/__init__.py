"""streamlog: Apache Kafka's model as an embeddable library. No server, no JVM.

    import streamlog
    with streamlog.open("data") as log:
        log.create_topic("orders", partitions=3)

Public names are re-exported here; everything in ``_``-prefixed modules and
in ``streamlog.storage`` / ``streamlog.coordination`` is internal.
"""

from __future__ import annotations

from . import aio as aio  # streamlog.aio: the asyncio API (docs/asyncio.md)
from ._check import CheckReport as CheckReport
from ._check import Problem as Problem
from ._check import check as check
from ._config import TopicConfig as TopicConfig
from ._eventstore import EventStore as EventStore
from ._eventstore import SqliteProjection as SqliteProjection
from ._eventstore import Subscription as Subscription
from ._log import Log as Log
from ._log import open as open
from ._structs import ANY as ANY
from ._structs import CAUGHT_UP as CAUGHT_UP
from ._structs import NO_STREAM as NO_STREAM
from ._structs import STREAM_EXISTS as STREAM_EXISTS
from ._structs import CompactionStats as CompactionStats
from ._structs import ConsumerRecord as ConsumerRecord
from ._structs import GroupDescription as GroupDescription
from ._structs import MemberDescription as MemberDescription
from ._structs import OffsetAndMetadata as OffsetAndMetadata
from ._structs import OffsetAndTimestamp as OffsetAndTimestamp
from ._structs import PartitionDescription as PartitionDescription
from ._structs import PartitionLag as PartitionLag
from ._structs import ProducerState as ProducerState
from ._structs import RecordedEvent as RecordedEvent
from ._structs import RecordMetadata as RecordMetadata
from ._structs import Snapshot as Snapshot
from ._structs import TopicDescription as TopicDescription
from ._structs import TopicPartition as TopicPartition
from ._structs import TransactionDescription as TransactionDescription
from ._table import Table as Table
from .clients._consumer import Consumer as Consumer
from .clients._consumer import ConsumerRebalanceListener as ConsumerRebalanceListener
from .clients._producer import Producer as Producer
from .clients._transactions import ConsumerGroupMetadata as ConsumerGroupMetadata
from .errors import ClosedError as ClosedError
from .errors import CommitFailedError as CommitFailedError
from .errors import ConfigError as ConfigError
from .errors import CorruptRecordError as CorruptRecordError
from .errors import DataDirectoryError as DataDirectoryError
from .errors import FencedInstanceIdError as FencedInstanceIdError
from .errors import GroupError as GroupError
from .errors import GroupNotEmptyError as GroupNotEmptyError
from .errors import IllegalStateError as IllegalStateError
from .errors import InconsistentGroupProtocolError as InconsistentGroupProtocolError
from .errors import InvalidRecordError as InvalidRecordError
from .errors import InvalidTopicError as InvalidTopicError
from .errors import InvalidTxnStateError as InvalidTxnStateError
from .errors import KafkaTimeoutError as KafkaTimeoutError
from .errors import LockTimeoutError as LockTimeoutError
from .errors import MetadataCorruptError as MetadataCorruptError
from .errors import NoOffsetForPartitionError as NoOffsetForPartitionError
from .errors import OffsetOutOfRangeError as OffsetOutOfRangeError
from .errors import OutOfOrderSequenceError as OutOfOrderSequenceError
from .errors import ProducerFencedError as ProducerFencedError
from .errors import RecordTooLargeError as RecordTooLargeError
from .errors import SerdeError as SerdeError
from .errors import StorageError as StorageError
from .errors import StorageIOError as StorageIOError
from .errors import StreamlogError as StreamlogError
from .errors import StreamsError as StreamsError
from .errors import TopicError as TopicError
from .errors import TopicExistsError as TopicExistsError
from .errors import TopologyError as TopologyError
from .errors import TransactionAbortedError as TransactionAbortedError
from .errors import TransactionError as TransactionError
from .errors import UnknownGroupError as UnknownGroupError
from .errors import UnknownPartitionError as UnknownPartitionError
from .errors import UnknownTopicError as UnknownTopicError
from .errors import UnsupportedFormatError as UnsupportedFormatError
from .errors import WakeupError as WakeupError
from .errors import WrongExpectedVersionError as WrongExpectedVersionError

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "CAUGHT_UP",
    "CheckReport",
    "ClosedError",
    "CommitFailedError",
    "CompactionStats",
    "ConfigError",
    "Consumer",
    "ConsumerGroupMetadata",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "CorruptRecordError",
    "DataDirectoryError",
    "EventStore",
    "FencedInstanceIdError",
    "GroupDescription",
    "GroupError",
    "GroupNotEmptyError",
    "IllegalStateError",
    "InconsistentGroupProtocolError",
    "InvalidRecordError",
    "InvalidTopicError",
    "InvalidTxnStateError",
    "KafkaTimeoutError",
    "LockTimeoutError",
    "Log",
    "MemberDescription",
    "MetadataCorruptError",
    "NO_STREAM",
    "NoOffsetForPartitionError",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionDescription",
    "PartitionLag",
    "Problem",
    "Producer",
    "ProducerFencedError",
    "ProducerState",
    "RecordMetadata",
    "RecordTooLargeError",
    "RecordedEvent",
    "STREAM_EXISTS",
    "SerdeError",
    "Snapshot",
    "SqliteProjection",
    "StorageError",
    "StorageIOError",
    "StreamlogError",
    "StreamsError",
    "Subscription",
    "Table",
    "TopicConfig",
    "TopicDescription",
    "TopicError",
    "TopicExistsError",
    "TopicPartition",
    "TopologyError",
    "TransactionAbortedError",
    "TransactionDescription",
    "TransactionError",
    "UnknownGroupError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "UnsupportedFormatError",
    "WakeupError",
    "WrongExpectedVersionError",
    "check",
    "open",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("streamlog."):
        try:
            _obj.__module__ = "streamlog"
        except (AttributeError, TypeError):
            pass
del _name, _obj
