"""kafka-python's ``KafkaProducer`` over a streamlog data directory."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ... import _state
from ..._compression import compression_type
from .. import errors as Errors  # noqa: N812 - kafka-python's spelling
from .._convert import (
    AssertionIllegalStateError,
    AssertionTypeError,
    AssertionValueError,
    converted,
)
from ..partitioner.default import DefaultPartitioner
from ..serializer import serialize
from ..structs import OffsetAndMetadata, TopicPartition
from .future import FutureRecordMetadata, failed

__all__ = ["KafkaProducer"]

# accepted for compatibility; they tune the network client, which does not exist here
_NETWORK = frozenset({
    "bootstrap_servers", "connections_max_idle_ms", "metadata_max_age_ms",
    "retry_backoff_ms", "request_timeout_ms", "receive_buffer_bytes", "send_buffer_bytes",
    "socket_options", "sock_chunk_bytes", "sock_chunk_buffer_count", "reconnect_backoff_ms",
    "reconnect_backoff_max_ms", "max_in_flight_requests_per_connection", "security_protocol",
    "ssl_context", "ssl_check_hostname", "ssl_cafile", "ssl_certfile", "ssl_keyfile",
    "ssl_crlfile", "ssl_password", "ssl_ciphers", "api_version", "api_version_auto_timeout_ms",
    "metric_reporters", "metrics_enabled", "metrics_num_samples", "metrics_sample_window_ms",
    "selector", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    "sasl_kerberos_name", "sasl_kerberos_service_name", "sasl_kerberos_domain_name",
    "sasl_oauth_token_provider", "socks5_proxy", "kafka_client", "retries",
    "delivery_timeout_ms", "wakeup_timeout_ms",
})


class KafkaProducer:
    """kafka-python's ``KafkaProducer(**configs)``: same config names and defaults
    (2.0.2's ``acks=1``; 2.3's transactions). See docs/compatibility.md."""

    DEFAULT_CONFIG: Mapping[str, Any] = {
        "bootstrap_servers": "localhost",
        "client_id": None,
        "key_serializer": None,
        "value_serializer": None,
        "enable_idempotence": False,
        "transactional_id": None,
        "transaction_timeout_ms": 60000,
        "delivery_timeout_ms": 120000,
        "acks": 1,
        "bootstrap_topics_filter": set(),
        "compression_type": None,
        "retries": 0,
        "batch_size": 16384,
        "linger_ms": 0,
        "partitioner": DefaultPartitioner(),
        "buffer_memory": 33554432,
        "connections_max_idle_ms": 9 * 60 * 1000,
        "max_block_ms": 60000,
        "max_request_size": 1048576,
        "metadata_max_age_ms": 300000,
        "retry_backoff_ms": 100,
        "request_timeout_ms": 30000,
        "receive_buffer_bytes": None,
        "send_buffer_bytes": None,
        "socket_options": None,
        "sock_chunk_bytes": 4096,
        "sock_chunk_buffer_count": 1000,
        "reconnect_backoff_ms": 50,
        "reconnect_backoff_max_ms": 1000,
        "max_in_flight_requests_per_connection": 5,
        "security_protocol": "PLAINTEXT",
        "ssl_context": None,
        "ssl_check_hostname": True,
        "ssl_cafile": None,
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "ssl_crlfile": None,
        "ssl_password": None,
        "ssl_ciphers": None,
        "api_version": None,
        "api_version_auto_timeout_ms": 2000,
        "metric_reporters": [],
        "metrics_enabled": True,
        "metrics_num_samples": 2,
        "metrics_sample_window_ms": 30000,
        "selector": None,
        "sasl_mechanism": None,
        "sasl_plain_username": None,
        "sasl_plain_password": None,
        "sasl_kerberos_name": None,
        "sasl_kerberos_service_name": "kafka",
        "sasl_kerberos_domain_name": None,
        "sasl_oauth_token_provider": None,
        "socks5_proxy": None,
        "kafka_client": None,
        "allow_auto_create_topics": True,
        "wakeup_timeout_ms": 3000,
    }

    def __init__(self, **configs: Any) -> None:
        extra = {k: v for k, v in configs.items() if k not in self.DEFAULT_CONFIG}
        if extra:  # kafka-python: ``assert not configs, 'Unrecognized configs: ...'``
            raise AssertionError(f"Unrecognized configs: {extra}")
        self.config: dict[str, Any] = {**self.DEFAULT_CONFIG, **configs}
        cfg = self.config
        acks = cfg["acks"]
        if acks == -1:
            acks = "all"
        if acks not in (0, 1, "all"):
            raise Errors.KafkaConfigurationError(f"acks must be 0, 1, -1 or 'all'; got {acks!r}")
        compression = cfg["compression_type"]
        if compression not in (None, "gzip", "snappy", "lz4", "zstd"):
            # kafka-python's own check ("none" included: it takes None for no codec)
            raise ValueError(f"Not supported codec: {compression}")
        part = cfg["partitioner"]
        partitioner: Any = "murmur2" if isinstance(part, DefaultPartitioner) else part
        if not callable(partitioner) and partitioner != "murmur2":
            raise Errors.KafkaConfigurationError("partitioner must be callable")
        kw: dict[str, Any] = {
            "acks": acks,
            "linger_ms": cfg["linger_ms"],
            "batch_size": cfg["batch_size"],
            # gzip/snappy/lz4 are stored as zstd (one policy for both shims: _compression)
            "compression_type": compression_type(compression),
            "partitioner": partitioner,
            "max_request_size": cfg["max_request_size"],
            "buffer_memory": cfg["buffer_memory"],
            "max_block_ms": cfg["max_block_ms"],
            "client_id": cfg["client_id"],
        }
        if cfg["transactional_id"] is not None:
            kw["transactional_id"] = cfg["transactional_id"]
            kw["transaction_timeout_ms"] = cfg["transaction_timeout_ms"]
            kw["acks"] = "all"
        elif cfg["enable_idempotence"]:
            kw["enable_idempotence"] = True
            kw["acks"] = "all"
        with converted():
            self._inst = _state.current()
            self._producer = self._inst.log.producer(**kw)
        self._clock = self._inst.clock
        self._known: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()
        self._sent = 0
        _state.register(self)

    # ------------------------------------------------------------------ metadata
    def _ensure_topic(self, topic: str) -> None:
        if topic in self._known:
            return
        if not isinstance(topic, str):
            raise TypeError(f"topic must be a str, not {type(topic).__name__}")
        with converted():
            exists = _state.ensure_topic(
                self._inst, topic, allow=bool(self.config["allow_auto_create_topics"])
            )
        if not exists:
            # kafka-python waits max_block_ms for the metadata, then raises this
            raise Errors.KafkaTimeoutError(
                f"Failed to update metadata after {self.config['max_block_ms'] / 1000:.1f} "
                f"secs. (topic {topic!r} does not exist and auto-creation is off)"
            )
        self._known.add(topic)

    def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of ``topic`` (auto-created if allowed)."""
        self._ensure_topic(topic)
        with converted():
            return self._producer.partitions_for(topic)

    def bootstrap_connected(self) -> bool:
        return not self._closed

    # ------------------------------------------------------------------ send
    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        """Publish one record; returns a ``FutureRecordMetadata``.

        As kafka-python: a closed producer, both key and value None, headers that are
        not a list of ``(str, bytes)`` tuples raise (``AssertionError`` as 2.0.2, which
        is also 3.x's ``IllegalStateError``/``ValueError``/``TypeError``); serializers
        are called for None too; a record larger than ``max_request_size`` fails its
        future with ``MessageSizeTooLargeError``.
        """
        if self._closed:
            raise AssertionIllegalStateError("KafkaProducer already closed!")
        if value is None and key is None:
            raise AssertionValueError("Need at least one: key or value")
        if headers is not None:
            if not isinstance(headers, list):
                raise AssertionTypeError("headers must be list-type")
            for item in headers:
                if not (isinstance(item, tuple) and len(item) == 2
                        and isinstance(item[0], str) and isinstance(item[1], bytes)):
                    raise AssertionTypeError("All headers items must be (str, bytes) tuples")
        key_bytes = serialize(self.config["key_serializer"], topic, key)
        value_bytes = serialize(self.config["value_serializer"], topic, value)
        if isinstance(key_bytes, (bytearray, memoryview)):
            key_bytes = bytes(key_bytes)
        if isinstance(value_bytes, (bytearray, memoryview)):
            value_bytes = bytes(value_bytes)
        for what, data in (("key", key_bytes), ("value", value_bytes)):
            if data is not None and not isinstance(data, bytes):
                raise AssertionTypeError(f"{what} must be bytes after serialization, "
                                         f"not {type(data).__name__}")
        self._ensure_topic(topic)
        fault = self._inst.take_fault("produce")
        if fault is not None:  # injected through kafka_cluster.fail_next
            self._sent += 1
            return failed(Errors.for_code(fault.code)(f"injected fault: {fault.name}"))
        if timestamp_ms is None:
            timestamp_ms = self._clock.fixed_ms  # a test set the clock (None: it did not)
        with converted():
            inner = self._producer.send(
                topic, value_bytes, key_bytes, partition=partition,
                timestamp_ms=timestamp_ms, headers=headers or None,
            )
        self._sent += 1
        header_size = (
            sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers)
            if headers else -1
        )
        return FutureRecordMetadata(
            inner,
            len(key_bytes) if key_bytes is not None else -1,
            len(value_bytes) if value_bytes is not None else -1,
            header_size,
        )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent so far is acknowledged (or failed).

        :raises KafkaTimeoutError: not done within ``timeout`` seconds.
        """
        with converted():
            self._producer.flush(None if timeout is None else int(timeout * 1000))

    def close(self, timeout: float | None = None) -> None:
        """Flush and close; idempotent. Waits up to ``timeout`` seconds (None: no limit)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _state.unregister(self)
        with converted():
            self._producer.close(None if timeout is None else int(timeout * 1000))

    def metrics(self, raw: bool = False) -> dict[str, dict[str, Any]]:
        """A small subset of kafka-python's metrics (``producer-metrics`` group)."""
        return {
            "producer-metrics": {
                "record-send-total": float(self._sent),
                "buffer-total-bytes": float(self.config["buffer_memory"]),
            }
        }

    # ------------------------------------------------------------------ transactions
    def init_transactions(self) -> None:
        with converted():
            self._producer.init_transactions()

    def begin_transaction(self) -> None:
        with converted():
            self._producer.begin_transaction()

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata], consumer_group_id: Any
    ) -> None:
        """``offsets``: {TopicPartition: OffsetAndMetadata}; ``consumer_group_id``: the
        group id (kafka-python 2.3), or ``consumer.group_metadata()`` of a streamlog consumer."""
        from ...._structs import OffsetAndMetadata as SlOAM  # noqa: PLC0415

        checked = {
            TopicPartition(*tp): SlOAM(int(o[0]), str(o[1]) if len(o) > 1 and o[1] else "")
            for tp, o in offsets.items()
        }
        with converted():
            self._producer.send_offsets_to_transaction(checked, consumer_group_id)

    def commit_transaction(self) -> None:
        with converted():
            self._producer.commit_transaction()

    def abort_transaction(self) -> None:
        with converted():
            self._producer.abort_transaction()

    def __repr__(self) -> str:
        return f"<kafka.KafkaProducer (streamlog) {self._producer.client_id}>"
