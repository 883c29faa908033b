# ruff: noqa: N818 - the class names are kafka-python's
"""kafka-python's ``kafka.errors``: the same class names, bases, ``errno`` codes and flags.

``KafkaError`` derives from ``RuntimeError``; broker error codes are subclasses of
``BrokerResponseError`` with ``.errno``, ``.message`` and ``.description``;
``for_code(n)`` maps a code to its class. Errors raised by streamlog underneath are
converted once, at the shim's boundary, with ``raise X(...) from e`` (the
streamlog error stays reachable as ``__cause__``).
"""

from __future__ import annotations

import inspect
import sys


class KafkaError(RuntimeError):
    retriable = False
    # whether metadata should be refreshed on error
    invalid_metadata = False

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        return f"{self.__class__.__name__}: {super().__str__()}"

    def __eq__(self, other: object) -> bool:
        return self.__class__ == other.__class__ and self.args == getattr(other, "args", None)

    __hash__ = RuntimeError.__hash__


class CommitFailedError(KafkaError):
    def __init__(self, *args: object) -> None:
        if not args:
            args = ("Commit cannot be completed since the group has already"
                    " rebalanced and assigned the partitions to another member.",)
        super().__init__(*args)


class Cancelled(KafkaError):
    retriable = True


class IllegalArgumentError(KafkaError):
    pass


class IllegalStateError(KafkaError):
    pass


class KafkaConfigurationError(KafkaError):
    pass


class KafkaConnectionError(KafkaError):
    retriable = True
    invalid_metadata = True


class KafkaProtocolError(KafkaError):
    retriable = True


class CorrelationIdError(KafkaProtocolError):
    retriable = True


class KafkaTimeoutError(KafkaError):
    retriable = True


class MetadataEmptyBrokerList(KafkaError):
    retriable = True


class NoBrokersAvailable(KafkaError):
    retriable = True
    invalid_metadata = True


class NoOffsetForPartitionError(KafkaError):
    pass


class NodeNotReadyError(KafkaError):
    retriable = True


class UnknownBrokerIdError(KafkaError):
    pass


class QuotaViolationError(KafkaError):
    pass


class StaleMetadata(KafkaError):
    retriable = True
    invalid_metadata = True


class TooManyInFlightRequests(KafkaError):
    retriable = True


class UnrecognizedBrokerVersion(KafkaError):
    pass


class UnsupportedCodecError(KafkaError):
    pass


class TransactionAbortedError(KafkaError):
    pass


class KafkaUnavailableError(KafkaError):
    pass


class AuthenticationFailedError(KafkaError):
    pass


class AuthenticationMethodNotSupported(KafkaError):
    pass


class BrokerResponseError(KafkaError):
    errno: int | None = None
    message: str | None = None
    description: str | None = None

    def __str__(self) -> str:
        """Add errno to standard KafkaError str"""
        return f"[Error {self.errno}] {super().__str__()}"


class AuthorizationError(BrokerResponseError):
    pass


class NoError(BrokerResponseError):
    errno = 0
    message = 'NO_ERROR'


class UnknownError(BrokerResponseError):
    errno = -1
    message = 'UNKNOWN'


class OffsetOutOfRangeError(BrokerResponseError):
    errno = 1
    message = 'OFFSET_OUT_OF_RANGE'


class CorruptRecordError(BrokerResponseError):
    errno = 2
    message = 'CORRUPT_MESSAGE'


class UnknownTopicOrPartitionError(BrokerResponseError):
    errno = 3
    message = 'UNKNOWN_TOPIC_OR_PARTITION'
    retriable = True
    invalid_metadata = True


class InvalidFetchRequestError(BrokerResponseError):
    errno = 4
    message = 'INVALID_FETCH_SIZE'


class LeaderNotAvailableError(BrokerResponseError):
    errno = 5
    message = 'LEADER_NOT_AVAILABLE'
    retriable = True
    invalid_metadata = True


class NotLeaderForPartitionError(BrokerResponseError):
    errno = 6
    message = 'NOT_LEADER_FOR_PARTITION'
    retriable = True
    invalid_metadata = True


class RequestTimedOutError(BrokerResponseError):
    errno = 7
    message = 'REQUEST_TIMED_OUT'
    retriable = True


class BrokerNotAvailableError(BrokerResponseError):
    errno = 8
    message = 'BROKER_NOT_AVAILABLE'


class ReplicaNotAvailableError(BrokerResponseError):
    errno = 9
    message = 'REPLICA_NOT_AVAILABLE'
    retriable = True
    invalid_metadata = True


class MessageSizeTooLargeError(BrokerResponseError):
    errno = 10
    message = 'MESSAGE_SIZE_TOO_LARGE'


class StaleControllerEpochError(BrokerResponseError):
    errno = 11
    message = 'STALE_CONTROLLER_EPOCH'


class OffsetMetadataTooLargeError(BrokerResponseError):
    errno = 12
    message = 'OFFSET_METADATA_TOO_LARGE'


class NetworkExceptionError(BrokerResponseError):
    errno = 13
    message = 'NETWORK_EXCEPTION'
    retriable = True
    invalid_metadata = True


class CoordinatorLoadInProgressError(BrokerResponseError):
    errno = 14
    message = 'COORDINATOR_LOAD_IN_PROGRESS'
    retriable = True


class CoordinatorNotAvailableError(BrokerResponseError):
    errno = 15
    message = 'COORDINATOR_NOT_AVAILABLE'
    retriable = True


class NotCoordinatorError(BrokerResponseError):
    errno = 16
    message = 'NOT_COORDINATOR'
    retriable = True


class InvalidTopicError(BrokerResponseError):
    errno = 17
    message = 'INVALID_TOPIC'


class RecordListTooLargeError(BrokerResponseError):
    errno = 18
    message = 'RECORD_LIST_TOO_LARGE'


class NotEnoughReplicasError(BrokerResponseError):
    errno = 19
    message = 'NOT_ENOUGH_REPLICAS'
    retriable = True


class NotEnoughReplicasAfterAppendError(BrokerResponseError):
    errno = 20
    message = 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'
    retriable = True


class InvalidRequiredAcksError(BrokerResponseError):
    errno = 21
    message = 'INVALID_REQUIRED_ACKS'


class IllegalGenerationError(BrokerResponseError):
    errno = 22
    message = 'ILLEGAL_GENERATION'


class InconsistentGroupProtocolError(BrokerResponseError):
    errno = 23
    message = 'INCONSISTENT_GROUP_PROTOCOL'


class InvalidGroupIdError(BrokerResponseError):
    errno = 24
    message = 'INVALID_GROUP_ID'


class UnknownMemberIdError(BrokerResponseError):
    errno = 25
    message = 'UNKNOWN_MEMBER_ID'


class InvalidSessionTimeoutError(BrokerResponseError):
    errno = 26
    message = 'INVALID_SESSION_TIMEOUT'


class RebalanceInProgressError(BrokerResponseError):
    errno = 27
    message = 'REBALANCE_IN_PROGRESS'


class InvalidCommitOffsetSizeError(BrokerResponseError):
    errno = 28
    message = 'INVALID_COMMIT_OFFSET_SIZE'


class TopicAuthorizationFailedError(AuthorizationError):
    errno = 29
    message = 'TOPIC_AUTHORIZATION_FAILED'


class GroupAuthorizationFailedError(AuthorizationError):
    errno = 30
    message = 'GROUP_AUTHORIZATION_FAILED'


class ClusterAuthorizationFailedError(AuthorizationError):
    errno = 31
    message = 'CLUSTER_AUTHORIZATION_FAILED'


class InvalidTimestampError(BrokerResponseError):
    errno = 32
    message = 'INVALID_TIMESTAMP'


class UnsupportedSaslMechanismError(BrokerResponseError):
    errno = 33
    message = 'UNSUPPORTED_SASL_MECHANISM'


class IllegalSaslStateError(BrokerResponseError):
    errno = 34
    message = 'ILLEGAL_SASL_STATE'


class UnsupportedVersionError(BrokerResponseError):
    errno = 35
    message = 'UNSUPPORTED_VERSION'


class TopicAlreadyExistsError(BrokerResponseError):
    errno = 36
    message = 'TOPIC_ALREADY_EXISTS'


class InvalidPartitionsError(BrokerResponseError):
    errno = 37
    message = 'INVALID_PARTITIONS'


class InvalidReplicationFactorError(BrokerResponseError):
    errno = 38
    message = 'INVALID_REPLICATION_FACTOR'


class InvalidReplicationAssignmentError(BrokerResponseError):
    errno = 39
    message = 'INVALID_REPLICATION_ASSIGNMENT'


class InvalidConfigurationError(BrokerResponseError):
    errno = 40
    message = 'INVALID_CONFIG'


class NotControllerError(BrokerResponseError):
    errno = 41
    message = 'NOT_CONTROLLER'
    retriable = True


class InvalidRequestError(BrokerResponseError):
    errno = 42
    message = 'INVALID_REQUEST'


class UnsupportedForMessageFormatError(BrokerResponseError):
    errno = 43
    message = 'UNSUPPORTED_FOR_MESSAGE_FORMAT'


class PolicyViolationError(BrokerResponseError):
    errno = 44
    message = 'POLICY_VIOLATION'


class OutOfOrderSequenceNumberError(BrokerResponseError):
    errno = 45
    message = 'OUT_OF_ORDER_SEQUENCE_NUMBER'


class DuplicateSequenceNumberError(BrokerResponseError):
    errno = 46
    message = 'DUPLICATE_SEQUENCE_NUMBER'


class InvalidProducerEpochError(BrokerResponseError):
    errno = 47
    message = 'INVALID_PRODUCER_EPOCH'


class InvalidTxnStateError(BrokerResponseError):
    errno = 48
    message = 'INVALID_TXN_STATE'


class InvalidProducerIdMappingError(BrokerResponseError):
    errno = 49
    message = 'INVALID_PRODUCER_ID_MAPPING'


class InvalidTransactionTimeoutError(BrokerResponseError):
    errno = 50
    message = 'INVALID_TRANSACTION_TIMEOUT'


class ConcurrentTransactionsError(BrokerResponseError):
    errno = 51
    message = 'CONCURRENT_TRANSACTIONS'
    retriable = True


class TransactionCoordinatorFencedError(BrokerResponseError):
    errno = 52
    message = 'TRANSACTION_COORDINATOR_FENCED'


class TransactionalIdAuthorizationFailedError(AuthorizationError):
    errno = 53
    message = 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'


class SecurityDisabledError(BrokerResponseError):
    errno = 54
    message = 'SECURITY_DISABLED'


class OperationNotAttemptedError(BrokerResponseError):
    errno = 55
    message = 'OPERATION_NOT_ATTEMPTED'


class KafkaStorageError(BrokerResponseError):
    errno = 56
    message = 'KAFKA_STORAGE_ERROR'
    retriable = True
    invalid_metadata = True


class NonEmptyGroupError(BrokerResponseError):
    errno = 68
    message = 'NON_EMPTY_GROUP'


class GroupIdNotFoundError(BrokerResponseError):
    errno = 69
    message = 'GROUP_ID_NOT_FOUND'


class MemberIdRequiredError(BrokerResponseError):
    errno = 79
    message = 'MEMBER_ID_REQUIRED'


class FencedInstanceIdError(BrokerResponseError):
    errno = 82
    message = 'FENCED_INSTANCE_ID'


class InvalidRecordError(BrokerResponseError):
    errno = 87
    message = 'INVALID_RECORD'


class ProducerFencedError(BrokerResponseError):
    errno = 90
    message = 'PRODUCER_FENCED'


# Backward-compatible aliases kept by kafka-python
CorruptRecordException = CorruptRecordError
InvalidMessageError = CorruptRecordError
NotCoordinatorForGroupError = NotCoordinatorError
GroupCoordinatorNotAvailableError = CoordinatorNotAvailableError
GroupLoadInProgressError = CoordinatorLoadInProgressError
#: not a kafka-python name: streamlog's ``RecordTooLargeError`` arrives as this class
RecordTooLargeError = MessageSizeTooLargeError


def _iter_broker_errors() -> list[type[BrokerResponseError]]:
    return [
        obj for _, obj in inspect.getmembers(sys.modules[__name__], inspect.isclass)
        if issubclass(obj, BrokerResponseError) and obj.errno is not None
    ]


kafka_errors: dict[int, type[BrokerResponseError]] = {
    cls.errno: cls for cls in _iter_broker_errors() if cls.errno is not None
}


def for_code(error_code: int) -> type[BrokerResponseError]:
    """The class of a broker error code (``UnknownError`` for unknown codes)."""
    return kafka_errors.get(error_code, UnknownError)
