"""The storage layer: bytes on disk. Internal API, documented in docs/design.md and docs/format.md.

Knows nothing of topics' metadata, groups or clients. Imports only the
package's base modules (errors, config, _fs) and third-party libraries.
"""

from ._codec import PreparedBatch, RecordBatch, prepare_batch
from ._index import OffsetIndex, TimeIndex
from ._partition import AppendResult, PartialAppendError, PartitionLog, RecoveryReport
from ._segment import Segment

__all__ = [
    "AppendResult",
    "OffsetIndex",
    "PartialAppendError",
    "PartitionLog",
    "PreparedBatch",
    "RecordBatch",
    "RecoveryReport",
    "Segment",
    "TimeIndex",
    "prepare_batch",
]
