"""confluent-kafka's value types: ``KafkaError``, ``KafkaException``, ``TopicPartition``,
``Message``, the offset and timestamp constants, and the mapping from streamlog's
errors to librdkafka's error codes."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import streamlog

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "KafkaError",
    "KafkaException",
    "Message",
    "TopicPartition",
    "error_from",
    "exception_from",
]

OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

# (name, code, librdkafka's description: rd_kafka_err2str); local codes are negative
_CODES: tuple[tuple[str, int, str], ...] = (
    ("_BAD_MSG", -199, "Local: Bad message format"),
    ("_BAD_COMPRESSION", -198, "Local: Invalid compressed data"),
    ("_DESTROY", -197, "Local: Broker handle destroyed"),
    ("_FAIL", -196, "Local: Communication failure with broker"),
    ("_TRANSPORT", -195, "Local: Broker transport failure"),
    ("_CRIT_SYS_RESOURCE", -194, "Local: Critical system resource failure"),
    ("_RESOLVE", -193, "Local: Host resolution failure"),
    ("_MSG_TIMED_OUT", -192, "Local: Message timed out"),
    ("_PARTITION_EOF", -191, "Broker: No more messages"),
    ("_UNKNOWN_PARTITION", -190, "Local: Unknown partition"),
    ("_FS", -189, "Local: File or filesystem error"),
    ("_UNKNOWN_TOPIC", -188, "Local: Unknown topic"),
    ("_ALL_BROKERS_DOWN", -187, "Local: All broker connections are down"),
    ("_INVALID_ARG", -186, "Local: Invalid argument or configuration"),
    ("_TIMED_OUT", -185, "Local: Timed out"),
    ("_QUEUE_FULL", -184, "Local: Queue full"),
    ("_ISR_INSUFF", -183, "Local: ISR count insufficient"),
    ("_NODE_UPDATE", -182, "Local: Broker node update"),
    ("_SSL", -181, "Local: SSL error"),
    ("_WAIT_COORD", -180, "Local: Waiting for coordinator"),
    ("_UNKNOWN_GROUP", -179, "Local: Unknown group"),
    ("_IN_PROGRESS", -178, "Local: Operation in progress"),
    ("_PREV_IN_PROGRESS", -177, "Local: Previous operation in progress"),
    ("_EXISTING_SUBSCRIPTION", -176, "Local: Existing subscription"),
    ("_ASSIGN_PARTITIONS", -175, "Local: Assign partitions"),
    ("_REVOKE_PARTITIONS", -174, "Local: Revoke partitions"),
    ("_CONFLICT", -173, "Local: Conflicting use"),
    ("_STATE", -172, "Local: Erroneous state"),
    ("_UNKNOWN_PROTOCOL", -171, "Local: Unknown protocol"),
    ("_NOT_IMPLEMENTED", -170, "Local: Not implemented"),
    ("_AUTHENTICATION", -169, "Local: Authentication failure"),
    ("_NO_OFFSET", -168, "Local: No offset stored"),
    ("_OUTDATED", -167, "Local: Outdated"),
    ("_TIMED_OUT_QUEUE", -166, "Local: Timed out in queue"),
    ("_UNSUPPORTED_FEATURE", -165, "Local: Required feature not supported by broker"),
    ("_WAIT_CACHE", -164, "Local: Awaiting cache update"),
    ("_INTR", -163, "Local: Operation interrupted"),
    ("_KEY_SERIALIZATION", -162, "Local: Key serialization error"),
    ("_VALUE_SERIALIZATION", -161, "Local: Value serialization error"),
    ("_KEY_DESERIALIZATION", -160, "Local: Key deserialization error"),
    ("_VALUE_DESERIALIZATION", -159, "Local: Value deserialization error"),
    ("_PARTIAL", -158, "Local: Partial response"),
    ("_READ_ONLY", -157, "Local: Read-only object"),
    ("_NOENT", -156, "Local: No such entry"),
    ("_UNDERFLOW", -155, "Local: Read underflow"),
    ("_INVALID_TYPE", -154, "Local: Invalid type"),
    ("_RETRY", -153, "Local: Retry operation"),
    ("_PURGE_QUEUE", -152, "Local: Purged in queue"),
    ("_PURGE_INFLIGHT", -151, "Local: Purged in flight"),
    ("_FATAL", -150, "Local: Fatal error"),
    ("_INCONSISTENT", -149, "Local: Inconsistent state"),
    ("_GAPLESS_GUARANTEE", -148, "Local: Gap-less ordering would not be guaranteed if proceeding"),
    ("_MAX_POLL_EXCEEDED", -147, "Local: Maximum application poll interval (max.poll.interval.ms) exceeded"),  # noqa: E501
    ("_UNKNOWN_BROKER", -146, "Local: Unknown broker"),
    ("_NOT_CONFIGURED", -145, "Local: Functionality not configured"),
    ("_FENCED", -144, "Local: This instance has been fenced by a newer instance"),
    ("_APPLICATION", -143, "Local: Application generated error"),
    ("_ASSIGNMENT_LOST", -142, "Local: Group partitions lost"),
    ("_NOOP", -141, "Local: No operation performed"),
    ("_AUTO_OFFSET_RESET", -140, "Local: No offset to automatically reset to"),
    ("_LOG_TRUNCATION", -139, "Local: Partition log truncation detected"),
    ("UNKNOWN", -1, "Unknown broker error"),
    ("NO_ERROR", 0, "Success"),
    ("OFFSET_OUT_OF_RANGE", 1, "Broker: Offset out of range"),
    ("INVALID_MSG", 2, "Broker: Invalid message"),
    ("UNKNOWN_TOPIC_OR_PART", 3, "Broker: Unknown topic or partition"),
    ("INVALID_MSG_SIZE", 4, "Broker: Invalid message size"),
    ("LEADER_NOT_AVAILABLE", 5, "Broker: Leader not available"),
    ("NOT_LEADER_FOR_PARTITION", 6, "Broker: Not leader for partition"),
    ("REQUEST_TIMED_OUT", 7, "Broker: Request timed out"),
    ("MSG_SIZE_TOO_LARGE", 10, "Broker: Message size too large"),
    ("OFFSET_METADATA_TOO_LARGE", 12, "Broker: Offset metadata string too large"),
    ("COORDINATOR_LOAD_IN_PROGRESS", 14, "Broker: Coordinator load in progress"),
    ("COORDINATOR_NOT_AVAILABLE", 15, "Broker: Coordinator not available"),
    ("NOT_COORDINATOR", 16, "Broker: Not coordinator"),
    ("TOPIC_EXCEPTION", 17, "Broker: Invalid topic"),
    ("RECORD_LIST_TOO_LARGE", 18, "Broker: Message batch larger than configured server segment size"),  # noqa: E501
    ("ILLEGAL_GENERATION", 22, "Broker: Specified group generation id is not valid"),
    ("INCONSISTENT_GROUP_PROTOCOL", 23, "Broker: Inconsistent group protocol"),
    ("INVALID_GROUP_ID", 24, "Broker: Invalid group.id"),
    ("UNKNOWN_MEMBER_ID", 25, "Broker: Unknown member"),
    ("INVALID_SESSION_TIMEOUT", 26, "Broker: Invalid session timeout"),
    ("REBALANCE_IN_PROGRESS", 27, "Broker: Group rebalance in progress"),
    ("INVALID_COMMIT_OFFSET_SIZE", 28, "Broker: Commit offset data size is not valid"),
    ("TOPIC_AUTHORIZATION_FAILED", 29, "Broker: Topic authorization failed"),
    ("GROUP_AUTHORIZATION_FAILED", 30, "Broker: Group authorization failed"),
    ("INVALID_TIMESTAMP", 32, "Broker: Invalid timestamp"),
    ("TOPIC_ALREADY_EXISTS", 36, "Broker: Topic already exists"),
    ("INVALID_PARTITIONS", 37, "Broker: Invalid number of partitions"),
    ("INVALID_REPLICATION_FACTOR", 38, "Broker: Invalid replication factor"),
    ("INVALID_REQUEST", 42, "Broker: Invalid request"),
    ("INVALID_CONFIG", 40, "Broker: Configuration is invalid"),
    ("OUT_OF_ORDER_SEQUENCE_NUMBER", 45, "Broker: Broker received an out of order sequence number"),
    ("DUPLICATE_SEQUENCE_NUMBER", 46, "Broker: Broker received a duplicate sequence number"),
    ("INVALID_PRODUCER_EPOCH", 47, "Broker: Producer attempted an operation with an old epoch"),
    ("INVALID_TXN_STATE", 48, "Broker: Producer attempted a transactional operation in an invalid state"),  # noqa: E501
    ("INVALID_PRODUCER_ID_MAPPING", 49, "Broker: Producer attempted to use a producer id which is not currently assigned to its transactional id"),  # noqa: E501
    ("INVALID_TRANSACTION_TIMEOUT", 50, "Broker: Transaction timeout is larger than the maximum value allowed by the broker's max.transaction.timeout.ms"),  # noqa: E501
    ("CONCURRENT_TRANSACTIONS", 51, "Broker: Producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing"),  # noqa: E501
    ("KAFKA_STORAGE_ERROR", 56, "Broker: Disk error when trying to access log file on disk"),
    ("NON_EMPTY_GROUP", 68, "Broker: The group is not empty"),
    ("GROUP_ID_NOT_FOUND", 69, "Broker: The group id does not exist"),
    ("FENCED_INSTANCE_ID", 82, "Broker: Static consumer fenced by other consumer with same group.instance.id"),  # noqa: E501
    ("PRODUCER_FENCED", 90, "Broker: There is a newer producer with the same transactionalId which fences the current one"),  # noqa: E501
)
_BY_CODE: dict[int, tuple[str, str]] = {code: (name, text) for name, code, text in _CODES}

_RETRIABLE = frozenset({-185, -192, -195, 5, 6, 7, 14, 15, 16, 27, 51})


class KafkaError:
    """confluent-kafka's ``KafkaError``: an error code (``KafkaError.<NAME>``), its
    name, a description, and the ``fatal``/``retriable``/``txn_requires_abort`` flags.

    Compares equal to its code (``err == KafkaError._PARTITION_EOF``), as the C class does.
    """

    # librdkafka's error codes (rdkafka.h): local ones negative, broker ones Kafka's
    _BAD_MSG = -199
    _BAD_COMPRESSION = -198
    _DESTROY = -197
    _FAIL = -196
    _TRANSPORT = -195
    _CRIT_SYS_RESOURCE = -194
    _RESOLVE = -193
    _MSG_TIMED_OUT = -192
    _PARTITION_EOF = -191
    _UNKNOWN_PARTITION = -190
    _FS = -189
    _UNKNOWN_TOPIC = -188
    _ALL_BROKERS_DOWN = -187
    _INVALID_ARG = -186
    _TIMED_OUT = -185
    _QUEUE_FULL = -184
    _ISR_INSUFF = -183
    _NODE_UPDATE = -182
    _SSL = -181
    _WAIT_COORD = -180
    _UNKNOWN_GROUP = -179
    _IN_PROGRESS = -178
    _PREV_IN_PROGRESS = -177
    _EXISTING_SUBSCRIPTION = -176
    _ASSIGN_PARTITIONS = -175
    _REVOKE_PARTITIONS = -174
    _CONFLICT = -173
    _STATE = -172
    _UNKNOWN_PROTOCOL = -171
    _NOT_IMPLEMENTED = -170
    _AUTHENTICATION = -169
    _NO_OFFSET = -168
    _OUTDATED = -167
    _TIMED_OUT_QUEUE = -166
    _UNSUPPORTED_FEATURE = -165
    _WAIT_CACHE = -164
    _INTR = -163
    _KEY_SERIALIZATION = -162
    _VALUE_SERIALIZATION = -161
    _KEY_DESERIALIZATION = -160
    _VALUE_DESERIALIZATION = -159
    _PARTIAL = -158
    _READ_ONLY = -157
    _NOENT = -156
    _UNDERFLOW = -155
    _INVALID_TYPE = -154
    _RETRY = -153
    _PURGE_QUEUE = -152
    _PURGE_INFLIGHT = -151
    _FATAL = -150
    _INCONSISTENT = -149
    _GAPLESS_GUARANTEE = -148
    _MAX_POLL_EXCEEDED = -147
    _UNKNOWN_BROKER = -146
    _NOT_CONFIGURED = -145
    _FENCED = -144
    _APPLICATION = -143
    _ASSIGNMENT_LOST = -142
    _NOOP = -141
    _AUTO_OFFSET_RESET = -140
    _LOG_TRUNCATION = -139
    UNKNOWN = -1
    NO_ERROR = 0
    OFFSET_OUT_OF_RANGE = 1
    INVALID_MSG = 2
    UNKNOWN_TOPIC_OR_PART = 3
    INVALID_MSG_SIZE = 4
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_FOR_PARTITION = 6
    REQUEST_TIMED_OUT = 7
    MSG_SIZE_TOO_LARGE = 10
    OFFSET_METADATA_TOO_LARGE = 12
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    TOPIC_EXCEPTION = 17
    RECORD_LIST_TOO_LARGE = 18
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    TOPIC_AUTHORIZATION_FAILED = 29
    GROUP_AUTHORIZATION_FAILED = 30
    INVALID_TIMESTAMP = 32
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REQUEST = 42
    INVALID_CONFIG = 40
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    KAFKA_STORAGE_ERROR = 56
    NON_EMPTY_GROUP = 68
    GROUP_ID_NOT_FOUND = 69
    FENCED_INSTANCE_ID = 82
    PRODUCER_FENCED = 90

    __slots__ = ("_code", "_fatal", "_reason", "_retriable", "_txn_requires_abort")

    def __init__(
        self,
        error: int,
        reason: builtins.str | None = None,
        fatal: bool = False,
        retriable: bool = False,
        txn_requires_abort: bool = False,
    ) -> None:
        if isinstance(error, bool) or not isinstance(error, int):
            raise TypeError("error must be an int error code")
        self._code = error
        self._reason = reason
        self._fatal = bool(fatal)
        self._retriable = bool(retriable) or error in _RETRIABLE
        self._txn_requires_abort = bool(txn_requires_abort)

    def code(self) -> int:
        return self._code

    def name(self) -> builtins.str:
        found = _BY_CODE.get(self._code)
        return found[0] if found else f"ERR_{self._code}?"

    def str(self) -> builtins.str:
        if self._reason is not None:
            return self._reason
        found = _BY_CODE.get(self._code)
        return found[1] if found else f"Err-{self._code}?"

    def fatal(self) -> bool:
        return self._fatal

    def retriable(self) -> bool:
        return self._retriable

    def txn_requires_abort(self) -> bool:
        return self._txn_requires_abort

    def __str__(self) -> builtins.str:
        return self.str()

    def __repr__(self) -> builtins.str:
        return f'KafkaError{{code={self.name()},val={self._code},str="{self.str()}"}}'

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        if isinstance(other, int) and not isinstance(other, bool):
            return self._code == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._code)

    def __bool__(self) -> bool:
        return True


class KafkaException(Exception):  # noqa: N818 (confluent-kafka's name)
    """confluent-kafka's exception: ``args[0]`` is the ``KafkaError``."""

    def __init__(self, *args: Any) -> None:
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            args = (KafkaError(args[0], *args[1:2]),)
        super().__init__(*args)

    def __str__(self) -> str:
        if self.args and isinstance(self.args[0], KafkaError):
            return repr(self.args[0])
        return super().__str__()


class TopicPartition:
    """confluent-kafka's mutable ``TopicPartition(topic, partition=-1, offset=-1001,
    metadata=None, leader_epoch=None)`` with ``.error``. Hashes on (topic, partition)."""

    __slots__ = ("error", "leader_epoch", "metadata", "offset", "partition", "topic")

    def __init__(
        self,
        topic: str,
        partition: int = -1,
        offset: int = OFFSET_INVALID,
        metadata: str | None = None,
        leader_epoch: int | None = None,
    ) -> None:
        if not isinstance(topic, str):
            raise TypeError("topic must be a str")
        self.topic = topic
        self.partition = int(partition)
        self.offset = int(offset)
        self.metadata = metadata
        self.leader_epoch = leader_epoch
        self.error: KafkaError | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopicPartition):
            return NotImplemented
        return (self.topic, self.partition) == (other.topic, other.partition)

    def __lt__(self, other: TopicPartition) -> bool:
        return (self.topic, self.partition) < (other.topic, other.partition)

    def __hash__(self) -> int:
        return hash((self.topic, self.partition))

    def __repr__(self) -> str:
        return (
            f"TopicPartition{{topic={self.topic},partition={self.partition},"
            f"offset={self.offset},leader_epoch={self.leader_epoch},error={self.error!r}}}"
        )

    __str__ = __repr__


Headers = list[tuple[str, bytes | None]]


class Message:
    """confluent-kafka's ``Message``: a record, a delivery report, or an event (check
    ``error()`` first)."""

    __slots__ = (
        "_error", "_headers", "_key", "_latency", "_offset", "_partition", "_timestamp",
        "_topic", "_value",
    )

    def __init__(
        self,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Headers | None = None,
        error: KafkaError | None = None,
        timestamp: tuple[int, int] = (TIMESTAMP_NOT_AVAILABLE, 0),
        latency: float | None = None,
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._error = error
        self._timestamp = timestamp
        self._latency = latency

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> Any:
        return self._key

    def value(self) -> Any:
        return self._value

    def headers(self) -> Headers | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def error(self) -> KafkaError | None:
        return self._error

    def latency(self) -> float | None:
        return self._latency

    def leader_epoch(self) -> int | None:
        return None

    def set_key(self, key: Any) -> None:
        self._key = key

    def set_value(self, value: Any) -> None:
        self._value = value

    def set_headers(self, headers: Headers | None) -> None:
        self._headers = headers

    def __len__(self) -> int:
        v = self._value
        return len(v) if isinstance(v, (bytes, str)) else 0

    def len(self) -> int:  # the C class has both
        return self.__len__()

    def __repr__(self) -> str:
        return (
            f"<confluent_kafka.Message topic={self._topic!r} partition={self._partition} "
            f"offset={self._offset} error={self._error!r}>"
        )


def error_from(exc: BaseException) -> KafkaError:
    """The ``KafkaError`` a librdkafka client would report for a streamlog exception."""
    k = KafkaError
    text = str(exc)
    table: Sequence[tuple[type[BaseException], int, bool]] = (
        (streamlog.ProducerFencedError, -144, True),
        (streamlog.OutOfOrderSequenceError, 45, True),
        (streamlog.InvalidTxnStateError, 48, False),
        (streamlog.TransactionAbortedError, 48, False),
        (streamlog.TopicExistsError, 36, False),
        (streamlog.UnknownTopicError, 3, False),
        (streamlog.UnknownPartitionError, 3, False),
        (streamlog.InvalidTopicError, 17, False),
        (streamlog.RecordTooLargeError, 10, False),
        (streamlog.InvalidRecordError, 2, False),
        (streamlog.NoOffsetForPartitionError, -140, False),
        (streamlog.OffsetOutOfRangeError, 1, False),
        (streamlog.CommitFailedError, 22, False),
        (streamlog.FencedInstanceIdError, 82, True),
        (streamlog.GroupNotEmptyError, 68, False),
        (streamlog.UnknownGroupError, 69, False),
        (streamlog.IllegalStateError, -172, False),
        (streamlog.KafkaTimeoutError, -185, False),
        (streamlog.ConfigError, -186, False),
        (streamlog.StorageError, 56, False),
        (OSError, -189, False),
    )
    for cls, code, fatal in table:
        if isinstance(exc, cls):
            return k(code, text, fatal=fatal,
                     txn_requires_abort=isinstance(exc, streamlog.TransactionAbortedError))
    return k(-196, text)


def exception_from(exc: BaseException) -> KafkaException:
    """``KafkaException(error_from(exc))``, to be raised ``from exc``."""
    return KafkaException(error_from(exc))
