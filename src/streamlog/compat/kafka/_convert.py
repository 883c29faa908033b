"""streamlog errors to kafka-python's, converted once at the shim's boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ... import errors as sl
from .. import _state
from . import errors as ke


class AssertionTypeError(AssertionError, TypeError):
    """Bad arguments: kafka-python 2.0.2 asserts (``AssertionError``), 3.x raises
    ``TypeError``; this is both, so either ``except`` catches it."""


class AssertionValueError(AssertionError, ValueError):
    """As :class:`AssertionTypeError`, where kafka-python 3.x raises ``ValueError``."""


class AssertionIllegalStateError(ke.IllegalStateError, AssertionError):
    """As :class:`AssertionTypeError`, where kafka-python 3.x raises
    ``IllegalStateError`` (a closed producer, a group call without ``group_id``)."""


# most specific first: the first isinstance match wins
_MAP: tuple[tuple[type[BaseException], type[ke.KafkaError]], ...] = (
    (sl.KafkaTimeoutError, ke.KafkaTimeoutError),
    (sl.TopicExistsError, ke.TopicAlreadyExistsError),
    (sl.UnknownTopicError, ke.UnknownTopicOrPartitionError),
    (sl.UnknownPartitionError, ke.UnknownTopicOrPartitionError),
    (sl.InvalidTopicError, ke.InvalidTopicError),
    (sl.RecordTooLargeError, ke.MessageSizeTooLargeError),
    (sl.InvalidRecordError, ke.InvalidRecordError),
    (sl.NoOffsetForPartitionError, ke.NoOffsetForPartitionError),
    (sl.OffsetOutOfRangeError, ke.OffsetOutOfRangeError),
    (sl.CommitFailedError, ke.CommitFailedError),
    (sl.FencedInstanceIdError, ke.FencedInstanceIdError),
    (sl.GroupNotEmptyError, ke.NonEmptyGroupError),
    (sl.UnknownGroupError, ke.GroupIdNotFoundError),
    (sl.InconsistentGroupProtocolError, ke.InconsistentGroupProtocolError),
    (sl.ProducerFencedError, ke.ProducerFencedError),
    (sl.OutOfOrderSequenceError, ke.OutOfOrderSequenceNumberError),
    (sl.InvalidTxnStateError, ke.InvalidTxnStateError),
    (sl.TransactionAbortedError, ke.TransactionAbortedError),
    (sl.IllegalStateError, ke.IllegalStateError),
    (sl.ClosedError, ke.IllegalStateError),
    (sl.ConfigError, ke.KafkaConfigurationError),
    (sl.CorruptRecordError, ke.CorruptRecordError),
    (sl.StorageError, ke.KafkaStorageError),
    (_state.NoInstallationError, ke.NoBrokersAvailable),
)


def convert(err: BaseException) -> BaseException:
    """The kafka-python error for ``err`` (``err`` itself if it is not streamlog's)."""
    if isinstance(err, ke.KafkaError):
        return err
    for src, dst in _MAP:
        if isinstance(err, src):
            out: BaseException = dst(str(err))
            break
    else:
        if not isinstance(err, sl.StreamlogError):
            return err
        out = ke.KafkaError(str(err))
    out.__cause__ = err
    return out


@contextmanager
def converted() -> Iterator[None]:
    """Re-raise streamlog errors as kafka-python's (``raise X(...) from e``)."""
    try:
        yield
    except (sl.StreamlogError, _state.NoInstallationError) as e:
        raise convert(e) from e
