"""kafka-python's ``kafka`` package, emulated over a streamlog data directory.

Importable as ``kafka`` after ``streamlog.compat.install()``; see docs/compatibility.md.
Shapes follow kafka-python 2.0.2 (plus 2.3's producer transactions).
"""

from __future__ import annotations

from . import errors
from .admin import KafkaAdminClient
from .consumer import KafkaConsumer
from .consumer.subscription_state import ConsumerRebalanceListener
from .producer import KafkaProducer
from .serializer import Deserializer, Serializer
from .structs import OffsetAndMetadata, TopicPartition

__title__ = "kafka"
__version__ = "2.0.2"

__all__ = [
    "ConsumerRebalanceListener",
    "Deserializer",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "OffsetAndMetadata",
    "Serializer",
    "TopicPartition",
    "errors",
]
