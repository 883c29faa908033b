"""Kafka's compression codecs on streamlog, one policy for both shims (internal).

streamlog stores batches uncompressed or zstd-compressed (``storage/_codec.py``). Of
Kafka's codecs:

- ``none`` (kafka-python: ``None``) → uncompressed; ``zstd`` → zstd.
- ``gzip``, ``snappy``, ``lz4`` → **zstd**, with one warning per codec per process on the
  ``streamlog.compat`` logger. The codec is invisible to every client API (consumers get
  the same records, offsets and sizes they would get from Kafka), and zstd keeps what the
  application asked for: compressed batches on disk, counted as such by
  ``retention.bytes`` and segment sizes, as a broker stores them.
- anything else is refused by each shim as its client refuses it (kafka-python:
  ``ValueError("Not supported codec: x")``; confluent-kafka: ``KafkaException`` with
  ``_INVALID_ARG``), when the producer is created.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["EMULATED", "compression_type"]

_log = logging.getLogger("streamlog.compat")

#: Kafka codecs streamlog stores as zstd
EMULATED = ("gzip", "snappy", "lz4")
_warned: set[str] = set()
_lock = threading.Lock()


def compression_type(codec: str | None) -> str | None:
    """streamlog's ``compression_type`` for a Kafka codec name (lower case): None for
    ``None``/``"none"``, ``"zstd"`` for zstd, gzip, snappy and lz4.

    :raises ValueError: not one of Kafka's codecs (the shims turn it into their error).
    """
    if codec is None or codec == "none":
        return None
    if codec == "zstd":
        return "zstd"
    if codec in EMULATED:
        with _lock:
            first = codec not in _warned
            _warned.add(codec)
        if first:
            _log.warning(
                "compression %r is stored as zstd: streamlog's only codec (consumers see the "
                "same records; only the bytes on disk differ)", codec,
            )
        return "zstd"
    raise ValueError(f"Not supported codec: {codec}")
