"""kafka-python's ``KafkaAdminClient`` over a streamlog data directory."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ...._config import TopicConfig
from ... import _state
from .. import errors as Errors  # noqa: N812 - kafka-python's spelling
from .._convert import converted
from ..structs import OffsetAndMetadata, TopicPartition
from .new_topic import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

__all__ = ["GroupInformation", "KafkaAdminClient", "MemberInformation"]


class MemberInformation(NamedTuple):
    member_id: str
    client_id: str
    client_host: str
    member_metadata: Any
    member_assignment: Any


class GroupInformation(NamedTuple):
    error_code: int
    group: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberInformation]
    authorized_operations: Any


class MemberAssignment(NamedTuple):
    """Decoded like kafka-python's ``ConsumerProtocolMemberAssignment``."""

    version: int
    assignment: list[tuple[str, list[int]]]
    user_data: bytes


class AdminResponse(NamedTuple):
    """Stands for the raw protocol response kafka-python returns (errors are raised)."""

    topic_errors: list[tuple[str, int, str | None]]


class DescribeConfigsResponse(NamedTuple):
    resources: list[tuple[int, str | None, int, str, list[tuple[str, str, bool, bool, bool]]]]


class KafkaAdminClient:
    """kafka-python's admin client; network configs are accepted and ignored."""

    def __init__(self, **configs: Any) -> None:
        self.config = dict(configs)
        with converted():
            self._inst = _state.current()
        self._closed = False
        self._lock = threading.Lock()
        _state.register(self)

    @property
    def _log(self) -> Any:
        if self._closed:
            raise Errors.IllegalStateError("KafkaAdminClient is closed")
        return self._inst.log

    # ------------------------------------------------------------------ topics
    def create_topics(
        self, new_topics: Iterable[NewTopic], timeout_ms: int | None = None,
        validate_only: bool = False,
    ) -> AdminResponse:
        """Create topics; raises the first error (``TopicAlreadyExistsError``, ...)."""
        log = self._log
        done: list[tuple[str, int, str | None]] = []
        for t in new_topics:
            parts = 1 if t.num_partitions in (-1, None) else t.num_partitions
            if not isinstance(parts, int) or parts < 1:
                raise Errors.InvalidPartitionsError(f"Number of partitions must be > 0: {parts}")
            with converted():
                if validate_only:
                    TopicConfig.from_dict(t.topic_configs)
                    if t.name in log.topics():
                        raise Errors.TopicAlreadyExistsError(f"Topic '{t.name}' already exists.")
                else:
                    log.create_topic(t.name, partitions=parts, config=t.topic_configs or None)
            done.append((t.name, 0, None))
        return AdminResponse(done)

    def delete_topics(self, topics: Iterable[str], timeout_ms: int | None = None) -> AdminResponse:
        log = self._log
        done: list[tuple[str, int, str | None]] = []
        for name in topics:
            with converted():
                log.delete_topic(name)
            done.append((name, 0, None))
        return AdminResponse(done)

    def list_topics(self) -> list[str]:
        with converted():
            return list(self._log.topics())

    def describe_topics(self, topics: Iterable[str] | None = None) -> list[dict[str, Any]]:
        log = self._log
        with converted():
            names = log.topics() if topics is None else list(topics)
            out = []
            for name in names:
                d = log.describe_topic(name)
                out.append({
                    "error_code": 0, "topic": name, "is_internal": False,
                    "partitions": [
                        {"error_code": 0, "partition": p.partition, "leader": 0,
                         "leader_epoch": 0, "replicas": [0], "isr": [0],
                         "offline_replicas": []}
                        for p in d.partitions
                    ],
                })
        return out

    def create_partitions(
        self, topic_partitions: Mapping[str, NewPartitions], timeout_ms: int | None = None,
        validate_only: bool = False,
    ) -> AdminResponse:
        log = self._log
        done: list[tuple[str, int, str | None]] = []
        for name, np in topic_partitions.items():
            with converted():
                current = len(log.partitions_for(name))
                if np.total_count <= current:
                    raise Errors.InvalidPartitionsError(
                        f"Topic currently has {current} partitions, which is higher than or "
                        f"equal to the requested {np.total_count}."
                    )
                if not validate_only:
                    log.create_partitions(name, np.total_count)
            done.append((name, 0, None))
        return AdminResponse(done)

    # ------------------------------------------------------------------ configs
    @staticmethod
    def _topic_resource(res: ConfigResource) -> str:
        if res.resource_type != ConfigResourceType.TOPIC:
            raise Errors.InvalidRequestError(
                "streamlog.compat: only TOPIC config resources exist (there is no broker)"
            )
        return res.name

    def describe_configs(
        self, config_resources: Iterable[ConfigResource], include_synonyms: bool = False
    ) -> list[DescribeConfigsResponse]:
        """One response with ``.resources``: ``(error_code, error_message, resource_type,
        resource_name, [(name, value, read_only, is_default, is_sensitive)])``."""
        log = self._log
        resources: list[Any] = []
        for res in config_resources:
            name = self._topic_resource(res)
            with converted():
                d = log.describe_topic(name)
            defaults = TopicConfig.from_dict({}).to_dict()
            entries = [
                (k, str(v), False, defaults.get(k) == v, False)
                for k, v in sorted(d.config.items())
                if not res.configs or k in res.configs
            ]
            resources.append((0, None, int(ConfigResourceType.TOPIC), name, entries))
        return [DescribeConfigsResponse(resources)]

    def alter_configs(self, config_resources: Iterable[ConfigResource]) -> AdminResponse:
        """Kafka's (non-incremental) AlterConfigs: the given configs replace the topic's
        overrides; keys not given go back to their defaults."""
        log = self._log
        done: list[tuple[str, int, str | None]] = []
        for res in config_resources:
            name = self._topic_resource(res)
            with converted():
                current = log.describe_topic(name).config
                defaults = TopicConfig.from_dict({}).to_dict()
                new = {k: defaults[k] for k in current if k in defaults}
                new.update(res.configs or {})
                log.alter_topic_config(name, new)
            done.append((name, 0, None))
        return AdminResponse(done)

    # ------------------------------------------------------------------ groups
    def list_consumer_groups(self, broker_ids: Any = None) -> list[tuple[str, str]]:
        with converted():
            return [(g, "consumer") for g in self._log.list_groups()]

    def describe_consumer_groups(
        self, group_ids: Iterable[str], group_coordinator_id: Any = None,
        include_authorized_operations: bool = False,
    ) -> list[GroupInformation]:
        log = self._log
        out = []
        for gid in group_ids:
            with converted():
                try:
                    d = log.describe_group(gid)
                except Exception as e:  # unknown group: Kafka reports it as Dead
                    if type(e).__name__ != "UnknownGroupError":
                        raise
                    out.append(GroupInformation(0, gid, "Dead", "", "", [], None))
                    continue
            members = []
            for m in d.members:
                by_topic: dict[str, list[int]] = {}
                for tp in sorted(m.assignment):
                    by_topic.setdefault(tp.topic, []).append(tp.partition)
                members.append(MemberInformation(
                    m.member_id, m.client_id, "/127.0.0.1", None,
                    MemberAssignment(0, sorted(by_topic.items()), b""),
                ))
            out.append(GroupInformation(
                0, gid, d.state, "consumer" if d.protocol or d.members else "",
                d.protocol or "", members, None,
            ))
        return out

    def list_consumer_group_offsets(
        self, group_id: str, group_coordinator_id: Any = None,
        partitions: Iterable[TopicPartition] | None = None,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Committed offsets (``metadata`` is reported as "")."""
        with converted():
            try:
                d = self._log.describe_group(group_id)
            except Exception as e:
                if type(e).__name__ == "UnknownGroupError":
                    return {}
                raise
        wanted = None if partitions is None else {TopicPartition(*tp) for tp in partitions}
        return {
            tp: OffsetAndMetadata(lag.committed, "")
            for tp, lag in sorted(d.offsets.items())
            if lag.committed is not None and (wanted is None or tp in wanted)
        }

    def delete_consumer_groups(
        self, group_ids: Iterable[str], group_coordinator_id: Any = None
    ) -> list[tuple[str, type[Errors.BrokerResponseError]]]:
        """``[(group_id, error class)]``: ``NoError``, ``NonEmptyGroupError`` or
        ``GroupIdNotFoundError`` per group, as kafka-python reports them."""
        out: list[tuple[str, type[Errors.BrokerResponseError]]] = []
        for gid in group_ids:
            try:
                with converted():
                    self._log.delete_group(gid)
            except Errors.BrokerResponseError as e:
                out.append((gid, type(e)))
            else:
                out.append((gid, Errors.NoError))
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _state.unregister(self)
