"""streamlog: Apache Kafka's model as an embeddable library. No server, no JVM.

    import streamlog
    with streamlog.open("data") as log:
        log.create_topic("orders", partitions=3)

Public names are re-exported here; everything in ``_``-prefixed modules and
in ``streamlog.storage`` / ``streamlog.coordination`` is internal.
"""

from __future__ import annotations

from ._check import CheckReport as CheckReport
from ._check import Problem as Problem
from ._check import check as check
from ._config import TopicConfig as TopicConfig
from ._log import Log as Log
from ._log import open as open
from ._structs import ConsumerRecord as ConsumerRecord
from ._structs import OffsetAndMetadata as OffsetAndMetadata
from ._structs import OffsetAndTimestamp as OffsetAndTimestamp
from ._structs import PartitionDescription as PartitionDescription
from ._structs import RecordMetadata as RecordMetadata
from ._structs import TopicDescription as TopicDescription
from ._structs import TopicPartition as TopicPartition
from .errors import *  # noqa: F403
from .errors import __all__ as _error_names

__version__ = "0.1.0"

__all__ = sorted(
    [
        "CheckReport",
        "ConsumerRecord",
        "Log",
        "OffsetAndMetadata",
        "OffsetAndTimestamp",
        "PartitionDescription",
        "Problem",
        "RecordMetadata",
        "TopicConfig",
        "TopicDescription",
        "TopicPartition",
        "check",
        "open",
        *_error_names,
    ]
)

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("streamlog."):
        try:
            _obj.__module__ = "streamlog"
        except (AttributeError, TypeError):
            pass
del _name, _obj
