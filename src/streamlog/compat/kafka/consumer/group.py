"""kafka-python's ``KafkaConsumer`` over a streamlog data directory."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ...._structs import ConsumerRecord as _SlRecord
from ...._structs import OffsetAndMetadata as _SlOAM
from ... import _state
from .. import errors as Errors  # noqa: N812 - kafka-python's spelling
from .._convert import AssertionIllegalStateError, convert, converted
from ..serializer import deserialize
from ..structs import OffsetAndMetadata, OffsetAndTimestamp, TopicPartition
from .fetcher import ConsumerRecord

__all__ = ["KafkaConsumer"]

_STRATEGIES = {"range", "roundrobin", "sticky", "cooperative-sticky"}


def _strategy_names(strategies: Iterable[Any]) -> tuple[str, ...]:
    names = []
    for s in strategies:
        name = s if isinstance(s, str) else getattr(s, "name", None)
        if name not in _STRATEGIES:
            raise Errors.KafkaConfigurationError(
                f"partition_assignment_strategy {s!r}: streamlog.compat supports the range, "
                "roundrobin and sticky assignors (custom assignor classes are refused)"
            )
        names.append(str(name))
    return tuple(names)


class _Listener:
    """Adapts a kafka-python listener (no ``on_partitions_lost``: lost = revoked).

    kafka-python's coordinator (eager protocol) calls ``on_partitions_revoked`` with the
    partitions held, the empty set included, before every join; streamlog calls it only
    when there is something to revoke. With ``eager``, an assignment not preceded by a
    revocation since the last one gets ``on_partitions_revoked(set())`` first."""

    def __init__(self, listener: Any, eager: bool) -> None:
        self._l = listener
        self._eager = eager
        self._revoked = False  # a revocation was reported since the last assignment

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._revoked = True
        self._l.on_partitions_revoked(revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self._eager and not self._revoked:
            self.on_partitions_revoked(set())
        self._revoked = False
        self._l.on_partitions_assigned(assigned)

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        fn = getattr(self._l, "on_partitions_lost", None)
        if fn is None:
            self.on_partitions_revoked(lost)
        else:
            self._revoked = True
            fn(lost)


class KafkaConsumer:
    """kafka-python's ``KafkaConsumer(*topics, **configs)``; see docs/compatibility.md."""

    DEFAULT_CONFIG: Mapping[str, Any] = {
        "bootstrap_servers": "localhost",
        "client_id": None,
        "group_id": None,
        "group_instance_id": None,
        "key_deserializer": None,
        "value_deserializer": None,
        "fetch_max_wait_ms": 500,
        "fetch_min_bytes": 1,
        "fetch_max_bytes": 52428800,
        "max_partition_fetch_bytes": 1 * 1024 * 1024,
        "request_timeout_ms": 305000,
        "retry_backoff_ms": 100,
        "reconnect_backoff_ms": 50,
        "reconnect_backoff_max_ms": 1000,
        "max_in_flight_requests_per_connection": 5,
        "auto_offset_reset": "latest",
        "enable_auto_commit": True,
        "auto_commit_interval_ms": 5000,
        "default_offset_commit_callback": None,
        "check_crcs": True,
        "isolation_level": "read_uncommitted",
        "allow_auto_create_topics": True,
        "metadata_max_age_ms": 5 * 60 * 1000,
        "partition_assignment_strategy": ("range", "roundrobin"),
        "max_poll_records": 500,
        "max_poll_interval_ms": 300000,
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
        "receive_buffer_bytes": None,
        "send_buffer_bytes": None,
        "socket_options": None,
        "sock_chunk_bytes": 4096,
        "sock_chunk_buffer_count": 1000,
        "consumer_timeout_ms": float("inf"),
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
        "connections_max_idle_ms": 9 * 60 * 1000,
        "metric_reporters": [],
        "metrics_enabled": True,
        "metrics_num_samples": 2,
        "metrics_sample_window_ms": 30000,
        "metric_group_prefix": "consumer",
        "selector": None,
        "exclude_internal_topics": True,
        "sasl_mechanism": None,
        "sasl_plain_username": None,
        "sasl_plain_password": None,
        "sasl_kerberos_name": None,
        "sasl_kerberos_service_name": "kafka",
        "sasl_kerberos_domain_name": None,
        "sasl_oauth_token_provider": None,
        "socks5_proxy": None,
        "legacy_iterator": False,
        "enable_incremental_fetch_sessions": True,
        "kafka_client": None,
    }

    def __init__(self, *topics: str, **configs: Any) -> None:
        extra = set(configs) - set(self.DEFAULT_CONFIG)
        if extra:
            raise Errors.KafkaConfigurationError(f"Unrecognized configs: {extra}")
        self.config: dict[str, Any] = {**self.DEFAULT_CONFIG, **configs}
        cfg = self.config
        reset = {"smallest": "earliest", "largest": "latest"}.get(
            cfg["auto_offset_reset"], cfg["auto_offset_reset"]
        )
        if reset not in ("earliest", "latest", "none"):
            raise Errors.KafkaConfigurationError(
                f"auto_offset_reset must be 'earliest', 'latest' or 'none'; got {reset!r}"
            )
        timeout = cfg["consumer_timeout_ms"]
        kw: dict[str, Any] = {
            "group_id": cfg["group_id"],
            "group_instance_id": cfg["group_instance_id"],
            "client_id": cfg["client_id"],
            "auto_offset_reset": reset,
            "enable_auto_commit": bool(cfg["enable_auto_commit"]) and cfg["group_id"] is not None,
            "auto_commit_interval_ms": cfg["auto_commit_interval_ms"],
            "max_poll_records": cfg["max_poll_records"],
            "max_poll_interval_ms": cfg["max_poll_interval_ms"],
            "session_timeout_ms": cfg["session_timeout_ms"],
            "heartbeat_interval_ms": cfg["heartbeat_interval_ms"],
            "isolation_level": cfg["isolation_level"],
            "partition_assignment_strategy": _strategy_names(
                cfg["partition_assignment_strategy"]
            ),
            "max_partition_fetch_bytes": cfg["max_partition_fetch_bytes"],
            "fetch_max_bytes": cfg["fetch_max_bytes"],
            "consumer_timeout_ms": None if timeout is None or math.isinf(timeout) else timeout,
        }
        with converted():
            self._inst = _state.current()
            self._consumer = self._inst.log.consumer(**kw)
        self._eager = "cooperative-sticky" not in kw["partition_assignment_strategy"]
        self._closed = False
        self._lock = threading.Lock()
        self._fault_paused: set[TopicPartition] = set()
        self._ts_types: dict[str, int] = {}
        self._subscribed = False
        _state.register(self)
        if topics:
            self.subscribe(topics)

    # ------------------------------------------------------------------ records
    def _timestamp_type(self, topic: str) -> int:
        t = self._ts_types.get(topic)
        if t is None:
            try:
                conf = self._inst.log.describe_topic(topic).config
            except Exception:
                conf = {}
            t = self._ts_types[topic] = int(conf.get("message.timestamp.type") == "LogAppendTime")
        return t

    def _record(self, r: _SlRecord) -> ConsumerRecord:
        kd, vd = self.config["key_deserializer"], self.config["value_deserializer"]
        headers = list(r.headers)
        return ConsumerRecord(
            r.topic, r.partition, r.offset, r.timestamp, self._timestamp_type(r.topic),
            deserialize(kd, r.topic, r.key), deserialize(vd, r.topic, r.value), headers, None,
            len(r.key) if r.key is not None else -1,
            len(r.value) if r.value is not None else -1,
            sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers)
            if headers else -1,
        )

    def poll(
        self, timeout_ms: float = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records by partition, waiting up to ``timeout_ms`` when there are none."""
        if not update_offsets:
            raise Errors.IllegalArgumentError(
                "poll(update_offsets=False) is not supported by streamlog.compat"
            )
        if self._closed:
            raise Errors.IllegalStateError("KafkaConsumer is closed")
        with converted():
            _state.sync_pauses(self._inst, self._consumer, self._fault_paused)
            got = self._consumer.poll(timeout_ms, max_records)  # type: ignore[arg-type]
            # a partition assigned by this poll's (re)join may be one kafka_cluster pauses
            for tp in _state.sync_pauses(self._inst, self._consumer, self._fault_paused):
                recs = got.pop(tp, None)
                if recs:
                    self._consumer.seek(tp, recs[0].offset)
        return {tp: [self._record(r) for r in recs] for tp, recs in got.items()}

    def __iter__(self) -> Iterator[ConsumerRecord]:
        return self

    def __next__(self) -> ConsumerRecord:
        if self._closed:
            raise StopIteration
        try:
            while True:
                _state.sync_pauses(self._inst, self._consumer, self._fault_paused)
                r = next(self._consumer)
                tp = TopicPartition(r.topic, r.partition)
                if tp not in self._inst.paused_partitions():
                    break
                # assigned by this call's (re)join, paused by kafka_cluster: put it back
                _state.sync_pauses(self._inst, self._consumer, self._fault_paused)
                self._consumer.seek(tp, r.offset)
        except StopIteration:
            raise
        except Exception as e:
            raise convert(e) from e
        return self._record(r)

    # ------------------------------------------------------------------ subscription
    def subscribe(
        self, topics: Iterable[str] = (), pattern: str | None = None, listener: Any = None
    ) -> None:
        """Subscribe to ``topics`` (auto-created if allowed) or a regex ``pattern``."""
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics)
        if topics and pattern is not None:
            raise Errors.IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )
        if not topics and pattern is None:
            raise Errors.IllegalStateError("You must choose topic(s) or pattern to subscribe to")
        if listener is not None and not (
            callable(getattr(listener, "on_partitions_revoked", None))
            and callable(getattr(listener, "on_partitions_assigned", None))
        ):
            raise TypeError("listener must be a ConsumerRebalanceListener")
        with converted():
            for t in topics:
                _state.ensure_topic(
                    self._inst, t, allow=bool(self.config["allow_auto_create_topics"])
                )
            self._consumer.subscribe(
                topics, pattern,
                None if listener is None else _Listener(listener, self._eager),  # type: ignore[arg-type]
            )
        self._subscribed = True

    def subscription(self) -> set[str] | None:
        if not self._subscribed:
            return None
        with converted():
            return self._consumer.subscription()

    def unsubscribe(self) -> None:
        with converted():
            self._consumer.unsubscribe()
        self._subscribed = False

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        if self._subscribed:
            raise Errors.IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )
        with converted():
            self._consumer.assign([TopicPartition(*tp) for tp in partitions])

    def assignment(self) -> set[TopicPartition]:
        with converted():
            return self._consumer.assignment()

    # ------------------------------------------------------------------ positions
    def position(self, partition: TopicPartition, timeout_ms: float | None = None) -> int:
        with converted():
            return self._consumer.position(partition)

    def highwater(self, partition: TopicPartition) -> int | None:
        """The end offset of an assigned partition (kafka-python: the last one fetched)."""
        if partition not in self.assignment():
            raise AssertionError("Partition is not assigned")
        with converted():
            return self._consumer.end_offsets([partition])[partition]

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise AssertionError("Offset must be >= 0")
        with converted():
            self._consumer.seek(partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        with converted():
            self._consumer.seek_to_beginning(*partitions)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        with converted():
            self._consumer.seek_to_end(*partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        with converted():
            self._consumer.pause(*partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        with converted():
            self._consumer.resume(*partitions)

    def paused(self) -> set[TopicPartition]:
        with converted():
            return self._consumer.paused()

    def beginning_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        with converted():
            return self._consumer.beginning_offsets(partitions)

    def end_offsets(
        self, partitions: Iterable[TopicPartition], timeout_ms: float | None = None
    ) -> dict[TopicPartition, int]:
        with converted():
            return self._consumer.end_offsets(partitions)

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int], timeout_ms: float | None = None
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        with converted():
            got = self._consumer.offsets_for_times(timestamps)
        return {
            tp: None if v is None else OffsetAndTimestamp(v.offset, v.timestamp)
            for tp, v in got.items()
        }

    # ------------------------------------------------------------------ commits
    @staticmethod
    def _offsets(
        offsets: Mapping[TopicPartition, Any] | None,
    ) -> dict[TopicPartition, _SlOAM] | None:
        if offsets is None:
            return None
        out = {}
        for tp, o in offsets.items():
            if isinstance(o, int):
                out[TopicPartition(*tp)] = _SlOAM(o, "")
            else:
                out[TopicPartition(*tp)] = _SlOAM(o[0], o[1] if len(o) > 1 and o[1] else "")
        return out

    def _need_group(self) -> None:
        if self.config["group_id"] is None:
            raise AssertionIllegalStateError("Requires group_id")

    def commit(
        self, offsets: Mapping[TopicPartition, Any] | None = None, timeout_ms: float | None = None
    ) -> None:
        """Commit (synchronously) ``offsets`` or the current positions.

        :raises CommitFailedError: the group rebalanced meanwhile.
        """
        self._need_group()
        self._injected_commit_fault()
        with converted():
            self._consumer.commit(self._offsets(offsets))

    def _injected_commit_fault(self) -> None:
        fault = self._inst.take_fault("commit")
        if fault is not None:  # injected through kafka_cluster.fail_next
            raise Errors.for_code(fault.code)(f"injected fault: {fault.name}")

    def _sl_force_rebalance(self, group_id: str) -> bool:
        """``Installation.force_rebalance``: rejoin at the next poll if subscribed to it."""
        if self._closed or not self._subscribed or self.config["group_id"] != group_id:
            return False
        with converted():
            self._consumer.enforce_rebalance()
        return True

    def _sl_group_member(self) -> tuple[str, str] | None:
        """``Installation.expire_member``: (group id, member id) while a group member."""
        group_id = self.config["group_id"]
        if self._closed or not self._subscribed or group_id is None:
            return None
        with converted():
            member_id = self._consumer.group_metadata().member_id
        return (group_id, member_id) if member_id else None

    def commit_async(
        self,
        offsets: Mapping[TopicPartition, Any] | None = None,
        callback: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        """Commit in the background; ``callback(offsets, response_or_exception)`` runs
        inside a later ``poll``/``commit``/``close`` (the default:
        ``default_offset_commit_callback``). Returns None, not a Future."""
        self._need_group()
        cb = callback or self.config["default_offset_commit_callback"]
        wrapped = None
        if cb is not None:
            def wrapped(done: Any, exc: BaseException | None) -> None:
                cb(done, None if exc is None else convert(exc))
        try:
            self._injected_commit_fault()
        except Errors.KafkaError as e:
            if wrapped is not None:
                wrapped(offsets, e)
            return
        with converted():
            self._consumer.commit_async(self._offsets(offsets), wrapped)

    def committed(
        self, partition: TopicPartition, metadata: bool = False, timeout_ms: float | None = None
    ) -> int | OffsetAndMetadata | None:
        """The group's committed offset (an ``OffsetAndMetadata`` with ``metadata=True``)."""
        self._need_group()
        with converted():
            if not metadata:
                return self._consumer.committed(partition)
            self._consumer.committed(partition)  # checks and settles pending offsets
            found = self._consumer._offsets().committed(TopicPartition(*partition))
        return None if found is None else OffsetAndMetadata(found.offset, found.metadata)

    # ------------------------------------------------------------------ metadata
    def topics(self) -> set[str]:
        with converted():
            return set(self._inst.log.topics())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        with converted():
            if topic not in self._inst.log.topics():
                return None
            return self._inst.log.partitions_for(topic)

    def metrics(self, raw: bool = False) -> dict[str, Any]:
        with converted():
            return {"consumer-fetch-manager-metrics": self._consumer.metrics()}

    def bootstrap_connected(self) -> bool:
        return not self._closed

    def close(self, autocommit: bool = True, timeout_ms: float | None = None) -> None:
        """Leave the group (committing first when auto-commit is on and ``autocommit``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _state.unregister(self)
        if not autocommit:
            self._consumer._auto_commit = False
        with converted():
            self._consumer.close()

    def __repr__(self) -> str:
        return f"<kafka.KafkaConsumer (streamlog) group={self.config['group_id']!r}>"
