"""Every exception streamlog raises on purpose.

The tree::

    StreamlogError
    ├── ConfigError (also ValueError)
    ├── ClosedError
    ├── IllegalStateError
    ├── WakeupError
    ├── KafkaTimeoutError (also TimeoutError)              retriable
    │   └── LockTimeoutError                               retriable
    ├── TopicError
    │   ├── InvalidTopicError (also ValueError)
    │   ├── TopicExistsError
    │   ├── UnknownTopicError
    │   └── UnknownPartitionError
    ├── RecordTooLargeError (also ValueError)
    ├── InvalidRecordError (also ValueError)
    ├── OffsetOutOfRangeError
    │   └── NoOffsetForPartitionError
    ├── StorageError
    │   ├── CorruptRecordError              .path .position
    │   ├── MetadataCorruptError            .path
    │   ├── UnsupportedFormatError          .path
    │   ├── DataDirectoryError              .path
    │   └── StorageIOError (also OSError)   .errno .filename
    ├── GroupError
    │   ├── CommitFailedError
    │   ├── FencedInstanceIdError
    │   ├── GroupNotEmptyError
    │   ├── InconsistentGroupProtocolError
    │   └── UnknownGroupError
    ├── TransactionError
    │   ├── ProducerFencedError                            fatal
    │   ├── OutOfOrderSequenceError                        fatal
    │   ├── InvalidTxnStateError
    │   └── TransactionAbortedError
    ├── WrongExpectedVersionError       .stream .expected .actual
    └── StreamsError
        ├── TopologyError (also ValueError)
        └── SerdeError (also ValueError)                  .topic

Foreign errors (``OSError``, ``zstandard`` and ``msgpack`` errors) are converted
once, where streamlog calls the foreign code, with ``raise X(...) from e``; the
original stays reachable as ``__cause__``.

A *fatal* producer error leaves ``close()`` as the only useful call on that
producer (as in Kafka); the others of ``TransactionError`` let the
application abort the transaction and go on.

Classes whose ``retriable`` flag is true describe a condition that may pass
by itself (a lock held by a stopped process, a timeout); retrying the same
call later can succeed.
"""

from __future__ import annotations

__all__ = [
    "ClosedError",
    "CommitFailedError",
    "ConfigError",
    "CorruptRecordError",
    "DataDirectoryError",
    "FencedInstanceIdError",
    "GroupError",
    "GroupNotEmptyError",
    "IllegalStateError",
    "InconsistentGroupProtocolError",
    "InvalidRecordError",
    "InvalidTopicError",
    "InvalidTxnStateError",
    "KafkaTimeoutError",
    "LockTimeoutError",
    "MetadataCorruptError",
    "NoOffsetForPartitionError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "ProducerFencedError",
    "RecordTooLargeError",
    "SerdeError",
    "StorageError",
    "StorageIOError",
    "StreamlogError",
    "StreamsError",
    "TopicError",
    "TopicExistsError",
    "TopologyError",
    "TransactionAbortedError",
    "TransactionError",
    "UnknownGroupError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "UnsupportedFormatError",
    "WakeupError",
    "WrongExpectedVersionError",
]


class StreamlogError(Exception):
    """Base class for every error streamlog raises on purpose."""

    retriable: bool = False

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuild without calling __init__ (several take keyword-only arguments), so
        # that errors survive pickle (multiprocessing, concurrent.futures).
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[StreamlogError], args: tuple[object, ...], state: dict[str, object]
) -> StreamlogError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class ConfigError(StreamlogError, ValueError):
    """A configuration key is unknown, or its value has the wrong type or range."""


class ClosedError(StreamlogError):
    """The handle, producer or consumer was used after ``close()``."""


class IllegalStateError(StreamlogError):
    """The call is not allowed in the object's current state."""


class WakeupError(StreamlogError):
    """A blocked call was interrupted by ``wakeup()`` from another thread."""


class KafkaTimeoutError(StreamlogError, TimeoutError):
    """An operation did not complete within its time limit."""

    retriable = True


class LockTimeoutError(KafkaTimeoutError):
    """A file lock stayed held by another process (perhaps a stopped one) past the timeout.

    Nothing was written. Retry later, or find the process holding the lock
    (``fuser <path>``) and resume or kill it.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class TopicError(StreamlogError):
    """Base class for errors about a topic or partition name."""


class InvalidTopicError(TopicError, ValueError):
    """The topic name breaks Kafka's rule: 1-249 of ``[a-zA-Z0-9._-]``, not ``.`` or ``..``."""


class TopicExistsError(TopicError):
    """A topic of that name already exists."""


class UnknownTopicError(TopicError):
    """No topic of that name exists."""


class UnknownPartitionError(TopicError):
    """The topic exists but has no partition of that number."""


class RecordTooLargeError(StreamlogError, ValueError):
    """A record batch is larger than the topic's ``max.message.bytes``. Nothing was written."""


class InvalidRecordError(StreamlogError, ValueError):
    """A record the topic refuses by its configuration, before anything is written:
    a record without a key on a compacted topic (Kafka's InvalidRecordException)."""


class OffsetOutOfRangeError(StreamlogError):
    """The offset is below the log start offset or beyond the log end offset."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        log_start_offset: int | None = None,
        end_offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.end_offset = end_offset


class NoOffsetForPartitionError(OffsetOutOfRangeError):
    """No position is known for a partition and ``auto_offset_reset`` is ``"none"``."""


class StorageError(StreamlogError):
    """Base class for errors of the data directory and its files."""


class CorruptRecordError(StorageError):
    """A record batch failed its checksum or bounds check where data was expected.

    Raised for damage inside a sealed segment, never for a torn tail (that is
    truncated by recovery). Everything before ``position`` in ``path`` is intact;
    ``streamlog.check()`` reports the extent. Operator action: restore the
    segment from a backup, or seek consumers past the damaged batch.
    """

    def __init__(self, message: str, *, path: str, position: int) -> None:
        super().__init__(f"{message} ({path} at byte {position})")
        self.path = path
        self.position = position


class MetadataCorruptError(StorageError):
    """A metadata file is unreadable: empty, truncated, not JSON, or of the wrong shape.

    Streamlog never repairs metadata by deleting data. Operator action: restore
    the named file from a backup, or move it aside if the topic or group it
    describes is not needed.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class UnsupportedFormatError(StorageError):
    """The data directory or a file in it was written by a newer, incompatible version."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class DataDirectoryError(StorageError):
    """The data directory cannot be used: it is a file, not writable, or escapes its root."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{message}: {path}")
        self.path = path


class StorageIOError(StorageError, OSError):
    """The operating system refused an I/O operation (disk full, I/O error, read-only).

    ``errno`` and ``filename`` are those of the underlying ``OSError``. No
    acknowledgement is ever given for a write whose sync failed.
    """

    def __init__(self, errno: int, message: str, filename: str | None = None) -> None:
        OSError.__init__(self, errno, message, filename)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.errno, self.strerror, self.filename), self.__dict__)

    def __str__(self) -> str:
        where = f": {self.filename}" if self.filename else ""
        return f"[Errno {self.errno}] {self.strerror}{where}"


class GroupError(StreamlogError):
    """Base class for errors about a consumer group."""


class CommitFailedError(GroupError):
    """An offset commit was rejected: this consumer is no longer a member of the group, or
    no longer owns the partition (its session expired, it was too slow to poll, or the
    partition moved to another member in a rebalance). Poll again to rejoin."""


class FencedInstanceIdError(GroupError):
    """Another consumer joined with this consumer's ``group_instance_id``, which fences
    this one out of the group for good (as Kafka does). Close this consumer."""


class GroupNotEmptyError(GroupError):
    """The operation needs a group without active members (stop its consumers first)."""


class InconsistentGroupProtocolError(GroupError):
    """A consumer's ``partition_assignment_strategy`` shares no assignor with the members
    already in the group."""


class UnknownGroupError(GroupError):
    """No consumer group of that name exists (no members and no committed offsets)."""


class TransactionError(StreamlogError):
    """Base class for errors of idempotent and transactional producing."""


class ProducerFencedError(TransactionError):
    """Another producer with the same ``transactional_id`` called ``init_transactions``
    (a newer epoch) and took over, or this producer's transaction outlived
    ``transaction_timeout_ms`` and was aborted for it. Fatal: close this producer."""


class OutOfOrderSequenceError(TransactionError):
    """A partition received a batch whose sequence number does not follow the last one
    of its producer: records would be lost or reordered. Fatal: close this producer."""


class InvalidTxnStateError(TransactionError):
    """The operation conflicts with the transaction's state in the log: for example a
    non-transactional write by a producer id whose transaction is open."""


class TransactionAbortedError(TransactionError):
    """The transaction this send belonged to was aborted before the record was written,
    or an earlier send of the transaction failed, so it can only be aborted."""


class WrongExpectedVersionError(StreamlogError):
    """``EventStore.append`` found the stream at another revision than expected; nothing
    was written. ``expected`` is what the caller passed (an int or a sentinel such as
    ``streamlog.NO_STREAM``); ``actual`` the stream's last revision, None if it has no
    event. Retry after reading the stream again."""

    def __init__(
        self,
        message: str,
        *,
        stream: str | None = None,
        expected: object = None,
        actual: int | None = None,
    ) -> None:
        super().__init__(message)
        self.stream = stream
        self.expected = expected
        self.actual = actual


class StreamsError(StreamlogError):
    """Base class for errors of stream processing (``streamlog.streams``)."""


class TopologyError(StreamsError, ValueError):
    """A stream-processing topology is invalid: raised while it is built or when the
    application starts (co-partitioning, an unknown store, a missing serde), before
    anything is read or written."""


class SerdeError(StreamsError, ValueError):
    """A key or value could not be serialized or deserialized with the configured serde."""

    def __init__(self, message: str, *, topic: str | None = None) -> None:
        super().__init__(message)
        self.topic = topic
