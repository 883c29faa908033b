"""confluent-kafka's ``Consumer`` over a streamlog consumer.

The streamlog consumer fetches ahead into a buffer; this class hands out one message at
a time and keeps librdkafka's per-partition state itself: the application position
(last returned offset + 1), the stored offsets (``enable.auto.offset.store``) that
``commit()`` and auto-commit write, and the end-of-partition events.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import streamlog
from streamlog.compat._state import sync_pauses

from ._config import Conf, parse
from ._handle import ensure_topic, installation, log_handle, register, unregister
from ._metadata import ClusterMetadata, cluster_metadata
from ._producer import _seconds
from ._types import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
    error_from,
)

__all__ = ["Consumer"]

STP = streamlog.TopicPartition
RebalanceCallback = Callable[["Consumer", list[TopicPartition]], Any]

_RESET = {
    "smallest": "earliest", "earliest": "earliest", "beginning": "earliest",
    "largest": "latest", "latest": "latest", "end": "latest", "error": "none",
}
_STRATEGIES = {
    "range": "range", "roundrobin": "roundrobin", "cooperative-sticky": "cooperative-sticky",
}


def _invalid(text: str) -> KafkaException:
    return KafkaException(KafkaError(KafkaError._INVALID_ARG, text))


def _stp(tp: TopicPartition) -> streamlog.TopicPartition:
    if not isinstance(tp, TopicPartition):
        raise TypeError("expected a confluent_kafka.TopicPartition")
    return STP(tp.topic, tp.partition)


def consumer_kwargs(conf: Conf) -> dict[str, Any]:
    group = conf.get_str("group.id")
    if not group:
        raise ValueError("Failed to create consumer: group.id must be set")
    reset = str(conf.get("auto.offset.reset", default="largest"))
    if reset not in _RESET:
        raise _invalid(f'Invalid value "{reset}" for configuration property "auto.offset.reset"')
    isolation = str(conf.get("isolation.level", default="read_committed"))
    if isolation not in ("read_committed", "read_uncommitted"):
        raise _invalid(f'Invalid value "{isolation}" for configuration property '
                       '"isolation.level"')
    strategies = []
    names = str(conf.get("partition.assignment.strategy", default="range,roundrobin"))
    for s in (n.strip() for n in names.split(",")):
        if s not in _STRATEGIES:
            raise _invalid(f'Invalid value "{s}" for configuration property '
                           '"partition.assignment.strategy"')
        strategies.append(_STRATEGIES[s])
    kw: dict[str, Any] = {
        "group_id": group,
        "auto_offset_reset": _RESET[reset],
        "enable_auto_commit": False,  # auto-commit of *stored* offsets is done here
        "isolation_level": isolation,
        "partition_assignment_strategy": strategies,
        "session_timeout_ms": conf.get_int("session.timeout.ms", default=45000, low=1),
        "heartbeat_interval_ms": conf.get_int("heartbeat.interval.ms", default=3000, low=1),
        "max_poll_interval_ms": conf.get_int("max.poll.interval.ms", default=300000, low=1),
    }
    instance = conf.get_str("group.instance.id")
    if instance:
        kw["group_instance_id"] = instance
    client_id = conf.get_str("client.id")
    if client_id:
        kw["client_id"] = client_id
    return kw


class _Listener(streamlog.ConsumerRebalanceListener):
    """Calls ``on_assign``/``on_revoke``/``on_lost`` with confluent's arguments."""

    def __init__(self, owner: Consumer, on_assign: RebalanceCallback | None,
                 on_revoke: RebalanceCallback | None, on_lost: RebalanceCallback | None) -> None:
        self._owner = owner
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost

    def on_partitions_assigned(self, assigned: set[streamlog.TopicPartition]) -> None:
        o = self._owner
        tps = [TopicPartition(t, p) for t, p in sorted(assigned)]
        for stp in assigned:
            o._eof_sent.discard(stp)
        if self._on_assign is not None:
            o._in_rebalance = True
            try:
                self._on_assign(o, tps)
            finally:
                o._in_rebalance = False

    def _revoke(self, revoked: set[streamlog.TopicPartition], cb: RebalanceCallback | None,
                lost: bool) -> None:
        o = self._owner
        tps = [TopicPartition(t, p) for t, p in sorted(revoked)]
        if cb is not None:
            o._in_rebalance = True
            try:
                cb(o, tps)
            finally:
                o._in_rebalance = False
        if o._auto_commit and not lost:
            o._commit_stored(revoked, sync=True, quiet=True)
        o._forget(revoked)

    def on_partitions_revoked(self, revoked: set[streamlog.TopicPartition]) -> None:
        self._revoke(revoked, self._on_revoke, lost=False)

    def on_partitions_lost(self, lost: set[streamlog.TopicPartition]) -> None:
        self._revoke(lost, self._on_lost or self._on_revoke, lost=True)


class Consumer:
    """confluent-kafka's ``Consumer(config)`` reading the installed data directory."""

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        conf = parse({**(config or {}), **kwargs}, "consumer")
        kw = consumer_kwargs(conf)
        self._auto_commit = conf.get_bool("enable.auto.commit",
                                      conf.get_bool("auto.commit.enable", True))
        self._auto_store = conf.get_bool("enable.auto.offset.store", True)
        self._eof = conf.get_bool("enable.partition.eof", False)
        self._interval = conf.get_int("auto.commit.interval.ms", default=5000) / 1000
        self._on_commit = conf.callback("on_commit")
        # librdkafka's consumer default (the producer's is true): subscribing to or asking
        # for a missing topic does not create it
        self._auto_create = conf.get_bool("allow.auto.create.topics", False)
        self._group_id = kw["group_id"]
        self._log = log_handle()
        try:
            self._c = self._log.consumer(**kw)
        except streamlog.ConfigError as e:
            raise KafkaException(error_from(e)) from e
        self._buf: collections.deque[streamlog.ConsumerRecord] = collections.deque()
        self._pos: dict[streamlog.TopicPartition, int] = {}
        self._stored: dict[streamlog.TopicPartition, tuple[int, str]] = {}
        self._committed_stored: dict[streamlog.TopicPartition, int] = {}
        self._eof_sent: set[streamlog.TopicPartition] = set()
        self._errors: collections.deque[Message] = collections.deque()
        self._in_rebalance = False
        self._fault_paused: set[streamlog.TopicPartition] = set()
        self._expired = False  # kafka_cluster.expire_member: look at the group first
        self._ts_types: dict[str, int] = {}
        self._inst = installation(self._log)
        self._closed = False
        self._next_commit = time.monotonic() + self._interval
        register(self)  # uninstall() closes it

    # ----------------------------------------------------------------- helpers
    def _check(self) -> None:
        if self._closed:
            raise RuntimeError("Consumer closed")

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except streamlog.StreamlogError as e:
            raise KafkaException(error_from(e)) from e

    def _unbuffer(self, tps: Iterable[streamlog.TopicPartition], rewind: bool) -> None:
        """Drop buffered records of ``tps``; with ``rewind`` make the streamlog consumer
        fetch them again."""
        drop = set(tps)
        if not drop or not self._buf:
            return
        first: dict[streamlog.TopicPartition, int] = {}
        keep: collections.deque[streamlog.ConsumerRecord] = collections.deque()
        for r in self._buf:
            tp = STP(r.topic, r.partition)
            if tp in drop:
                first.setdefault(tp, r.offset)
            else:
                keep.append(r)
        self._buf = keep
        if rewind:
            for tp, off in first.items():
                self._c.seek(tp, off)

    def _forget(self, tps: Iterable[streamlog.TopicPartition]) -> None:
        tps = set(tps)
        self._unbuffer(tps, rewind=False)
        for tp in tps:
            self._pos.pop(tp, None)
            self._stored.pop(tp, None)
            self._committed_stored.pop(tp, None)
            self._eof_sent.discard(tp)

    def _take(self, n: int) -> list[Message]:
        """Up to ``n`` buffered records as messages (the buffer must not be empty); the
        position (and, with ``enable.auto.offset.store``, the stored offset) of each
        partition moves past the last one returned."""
        buf = self._buf
        k = min(n, len(buf))
        popleft = buf.popleft
        records = [popleft() for _ in range(k)] if k > 1 else [popleft()]
        out: list[Message] = []
        append = out.append
        last: dict[tuple[str, int], int] = {}
        topic_now = ""
        ts_type = 0
        for topic, partition, offset, timestamp, key, value, headers in records:
            if topic is not topic_now:
                topic_now = topic
                ts_type = self._timestamp_type(topic)
            append(Message(topic, partition, offset, key, value,
                           list(headers) if headers else None, None, (ts_type, timestamp)))
            last[topic, partition] = offset
        for (topic, partition), offset in last.items():
            tp = STP(topic, partition)
            self._pos[tp] = offset + 1
            self._eof_sent.discard(tp)
            if self._auto_store:
                self._stored[tp] = (offset + 1, "")
        return out

    def _timestamp_type(self, topic: str) -> int:
        """``TIMESTAMP_LOG_APPEND_TIME`` for a topic with ``message.timestamp.type``
        LogAppendTime, else ``TIMESTAMP_CREATE_TIME`` (looked up once per topic)."""
        t = self._ts_types.get(topic)
        if t is None:
            try:
                conf = self._log.describe_topic(topic).config
            except streamlog.StreamlogError:
                conf = {}
            t = self._ts_types[topic] = (
                TIMESTAMP_LOG_APPEND_TIME if conf.get("message.timestamp.type") == "LogAppendTime"
                else TIMESTAMP_CREATE_TIME
            )
        return t

    def _fetch(self, timeout_s: float, n: int = 1) -> list[Message]:
        """Fetch into the buffer (waiting up to ``timeout_s`` for something); up to ``n``
        messages, or an error event."""
        try:
            # (a float, or inf for no limit: streamlog's poll takes any number)
            wait_ms: Any = timeout_s * 1000
            batches = self._c.poll(timeout_ms=wait_ms)
        except streamlog.OffsetOutOfRangeError as e:
            err = KafkaError(KafkaError._AUTO_OFFSET_RESET, str(e))
            return [Message(None, None, None, error=err)]
        except streamlog.StreamlogError as e:
            if isinstance(e, (streamlog.CommitFailedError, streamlog.GroupError)):
                return [Message(None, None, None, error=self._error(e, self._member_id()))]
            raise KafkaException(error_from(e)) from e
        for records in batches.values():
            self._buf.extend(records)
        self._sync_pauses()  # (a partition this poll's join assigned may be paused)
        return self._take(n) if self._buf else []

    def _eof_event(self) -> Message | None:
        buffered = {(r.topic, r.partition) for r in self._buf}
        paused = self._c.paused()
        for tp in sorted(self._c.assignment()):
            if tp in self._eof_sent or tp in paused or tp in buffered:
                continue
            try:
                pos = self._c.position(tp)
                end = self._c.end_offsets([tp])[tp]
            except streamlog.StreamlogError:
                continue
            if pos >= end:
                self._eof_sent.add(tp)
                err = KafkaError(
                    KafkaError._PARTITION_EOF,
                    f"Fetch from broker 0 reached end of partition at offset {pos} "
                    f"(HighwaterMark {end})",
                )
                return Message(tp.topic, tp.partition, pos, error=err)
        return None

    def _maybe_auto_commit(self) -> None:
        if self._auto_commit and time.monotonic() >= self._next_commit:
            self._next_commit = time.monotonic() + self._interval
            self._commit_stored(None, sync=False, quiet=True)

    def _commit_stored(self, tps: Iterable[streamlog.TopicPartition] | None, *, sync: bool,
                       quiet: bool) -> list[TopicPartition] | None:
        """Commit the stored offsets of ``tps`` (None: the assignment) that are past the
        offset last committed, as librdkafka's ``rd_kafka_topic_partition_list_set_offsets``
        (a stored offset not above the committed one is left out); none → ``_NO_OFFSET``.
        A synchronous commit returns every partition asked about, those left out with
        ``OFFSET_INVALID``, as librdkafka."""
        assigned = self._c.assignment()
        chosen = set(tps) if tps is not None else assigned
        offsets = {
            tp: streamlog.OffsetAndMetadata(off, md)
            for tp, (off, md) in self._stored.items()
            if tp in chosen and off > self._committed_stored.get(tp, OFFSET_INVALID)
        }
        if not offsets:
            if quiet:
                return None
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        done = self._commit(offsets, sync=sync, quiet=quiet)
        if done is None:
            return None
        left_out = [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID)
                    for tp in chosen if tp not in offsets]
        return sorted(done + left_out)

    def _sync_pauses(self) -> None:
        """Apply ``kafka_cluster.pause``/``resume`` (dropping what was buffered)."""
        inst = self._inst
        if inst is None or not (inst._paused or self._fault_paused):  # (per poll: cheap)
            return
        newly = self._call(lambda: sync_pauses(inst, self._c, self._fault_paused))
        if newly:
            self._unbuffer(newly, rewind=True)

    def _sl_force_rebalance(self, group_id: str) -> bool:
        """``Installation.force_rebalance``: rejoin at the next poll if subscribed to it."""
        if self._closed or self._group_id != group_id or not self._c.subscription():
            return False
        self._call(self._c.enforce_rebalance)
        return True

    def _sl_group_member(self) -> tuple[str, str] | None:
        """``Installation.expire_member``: (group id, member id) while a group member."""
        if self._closed or not self._c.subscription():
            return None
        member_id = self._c.group_metadata().member_id
        return (self._group_id, member_id) if member_id else None

    def _sl_member_expired(self, group_id: str, member_id: str) -> None:
        """``Installation.expire_member`` expired ``member_id``: if it is this consumer,
        its next poll looks at the group before handing out anything it buffered (it
        finds its partitions lost, as librdkafka after the heartbeat's UNKNOWN_MEMBER_ID)."""
        if not self._closed and self._group_id == group_id and (
            self._c.group_metadata().member_id == member_id
        ):
            self._expired = True

    def _member_id(self) -> str | None:
        member = self._c._member
        return None if member is None else member.member_id

    def _is_member(self, member_id: str | None) -> bool:
        """Whether the group lists ``member_id`` as a member now (an id the group removed
        never comes back: a consumer joins again under a new one)."""
        member = self._c._member
        if member is None or member_id is None:
            return False
        try:
            return member_id in member.store.load().members
        except streamlog.StreamlogError:
            return True  # unknown: leave the generation as the cause

    def _error(self, exc: BaseException, member_id: str | None) -> KafkaError:
        """``error_from(exc)``; a failed commit by ``member_id`` gets the broker's reason:
        UNKNOWN_MEMBER_ID when it is not a member of the group (its session expired, it
        was removed, or the consumer uses assign() while the group has members), else
        ILLEGAL_GENERATION (the group rebalanced since)."""
        if isinstance(exc, streamlog.CommitFailedError) and not self._is_member(member_id):
            return KafkaError(KafkaError.UNKNOWN_MEMBER_ID, str(exc))
        return error_from(exc)

    def _commit(self, offsets: dict[streamlog.TopicPartition, streamlog.OffsetAndMetadata], *,
                sync: bool, quiet: bool = False) -> list[TopicPartition] | None:
        out = [TopicPartition(tp.topic, tp.partition, om.offset, om.metadata or None)
               for tp, om in sorted(offsets.items())]
        inst = installation(self._log)
        fault = None if inst is None else inst.take_fault("commit")
        if fault is not None:  # injected through kafka_cluster.fail_next
            err = KafkaError(fault.code, retriable=fault.retriable)
            if sync:
                if quiet:
                    return None
                raise KafkaException(err)
            if self._on_commit is not None:
                self._on_commit(err, out)
            return None
        member_id = self._member_id()  # (the member committing, for the error's reason)
        if sync:
            try:
                self._c.commit(offsets)
            except streamlog.StreamlogError as e:
                if quiet:
                    return None
                raise KafkaException(self._error(e, member_id)) from e
            for tp, om in offsets.items():
                self._committed_stored[tp] = om.offset
            if self._on_commit is not None:
                self._on_commit(None, out)
            return out

        def done(_offsets: object, exc: BaseException | None) -> None:
            if exc is None:
                for tp, om in offsets.items():
                    self._committed_stored[tp] = om.offset
            if self._on_commit is not None:
                self._on_commit(None if exc is None else self._error(exc, member_id), out)

        try:
            self._c.commit_async(offsets, done)
        except streamlog.StreamlogError as e:
            if not quiet:
                raise KafkaException(self._error(e, member_id)) from e
        return None

    # ----------------------------------------------------------------- subscription
    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        """Join the group for ``topics`` (a leading ``^`` makes a regex)."""
        self._check()
        if isinstance(topics, str) or not isinstance(topics, (list, tuple)):
            raise TypeError("expected list of topic unicode strings")
        for cb in (on_assign, on_revoke, on_lost):
            if cb is not None and not callable(cb):
                raise TypeError("expected callable rebalance callbacks")
        plain = [t for t in topics if not t.startswith("^")]
        regexes = [t[1:] for t in topics if t.startswith("^")]
        for t in plain:
            try:
                exists = ensure_topic(self._log, t, self._auto_create)
            except streamlog.InvalidTopicError as e:
                raise KafkaException(error_from(e)) from e
            if not exists:
                err = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART,
                                 f"Subscribed topic not available: {t}: "
                                 "Broker: Unknown topic or partition")
                self._errors.append(Message(t, None, None, error=err))
        listener = _Listener(self, on_assign, on_revoke, on_lost)
        if self._c.subscription() or self._c.assignment():
            self._c.unsubscribe()
        self._forget(list(self._pos) + [STP(r.topic, r.partition) for r in self._buf])
        if regexes:
            pattern = "|".join([*(re.escape(t) for t in plain), *regexes])
            self._call(lambda: self._c.subscribe(pattern=pattern, listener=listener))
        else:
            self._call(lambda: self._c.subscribe(plain, listener=listener))

    def unsubscribe(self) -> None:
        self._check()
        self._call(self._c.unsubscribe)
        self._forget(list(self._pos) + [STP(r.topic, r.partition) for r in self._buf])

    def _apply_offsets(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            stp = _stp(tp)
            self._eof_sent.discard(stp)
            if tp.offset == OFFSET_BEGINNING:
                self._call(lambda s=stp: self._c.seek_to_beginning(s))  # type: ignore[misc]
            elif tp.offset == OFFSET_END:
                self._call(lambda s=stp: self._c.seek_to_end(s))  # type: ignore[misc]
            elif tp.offset >= 0:
                self._call(lambda s=stp, o=tp.offset: self._c.seek(s, o))  # type: ignore[misc]

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read exactly ``partitions``, from each one's ``.offset`` when it is set (else
        the committed offset, else ``auto.offset.reset``). Inside ``on_assign``: accept
        the group's assignment with those start offsets."""
        self._check()
        tps = list(partitions)
        if not self._in_rebalance:
            old = self._c.assignment()
            self._forget(old)
            self._call(lambda: self._c.assign([_stp(tp) for tp in tps]))
        self._apply_offsets(tps)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self._check()
        tps = list(partitions)
        if not self._in_rebalance:
            current = self._c.assignment()
            self._call(lambda: self._c.assign(sorted(current | {_stp(tp) for tp in tps})))
        self._apply_offsets(tps)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self._check()
        drop = {_stp(tp) for tp in partitions}
        if not self._in_rebalance:
            current = self._c.assignment()
            self._call(lambda: self._c.assign(sorted(current - drop)))
            self._forget(drop)

    def unassign(self) -> None:
        self._check()
        if not self._in_rebalance:
            old = self._c.assignment()
            if self._c.subscription():
                return
            self._call(lambda: self._c.assign([]))
            self._forget(old)

    def assignment(self) -> list[TopicPartition]:
        self._check()
        return [TopicPartition(t, p) for t, p in sorted(self._c.assignment())]

    # ----------------------------------------------------------------- consuming
    def poll(self, timeout: float | None = None) -> Message | None:
        """One message (check ``msg.error()`` first), or None after ``timeout``
        seconds (None or -1: wait forever)."""
        if self._closed:
            raise RuntimeError("Consumer closed")
        if self._buf and not (self._expired or self._errors):  # the common case, quickly
            if self._auto_commit and time.monotonic() >= self._next_commit:
                self._maybe_auto_commit()
            inst = self._inst
            if inst is not None and (inst._paused or self._fault_paused):
                self._sync_pauses()
            if self._buf and not self._errors:
                return self._take_one()
        got = self._next(1, _seconds(timeout))
        return got[0] if got else None

    def _take_one(self) -> Message:
        """``_take(1)[0]``, without the batch bookkeeping (poll's hot path)."""
        topic, partition, offset, timestamp, key, value, headers = self._buf.popleft()
        tp = STP(topic, partition)
        self._pos[tp] = offset + 1
        if self._eof_sent:
            self._eof_sent.discard(tp)
        if self._auto_store:
            self._stored[tp] = (offset + 1, "")
        return Message(topic, partition, offset, key, value,
                       list(headers) if headers else None, None,
                       (self._ts_types.get(topic) or self._timestamp_type(topic), timestamp))

    def _next(self, n: int, wait: float | None) -> list[Message]:
        """What one poll returns, up to ``n`` messages: an error or EOF event alone, or
        records; waits up to ``wait`` seconds (None: forever) when there is nothing."""
        if self._expired:  # (expired by kafka_cluster.expire_member: find out first)
            self._expired = False
            got = self._fetch(0, n)
            if got:
                return got
        self._maybe_auto_commit()
        self._sync_pauses()
        if self._errors:
            return [self._errors.popleft()]
        if self._buf:
            return self._take(n)
        got = self._fetch(0, n)
        if got:
            return got
        if self._eof:
            ev = self._eof_event()
            if ev is not None:
                return [ev]
        if wait == 0:
            return []
        got = self._fetch(float("inf") if wait is None else wait, n)
        if not got and self._eof:
            ev = self._eof_event()
            if ev is not None:
                return [ev]
        return got

    def consume(self, num_messages: int = 1, timeout: float | None = -1) -> list[Message]:
        """Up to ``num_messages`` messages; waits until that many arrived or ``timeout``
        seconds (-1: forever) passed, as librdkafka's batch consume."""
        self._check()
        if isinstance(num_messages, bool) or not isinstance(num_messages, int) or not (
            0 <= num_messages <= 1000000
        ):
            raise ValueError("num_messages must be between 0 and 1000000 (1M)")
        wait = _seconds(timeout)
        deadline = None if wait is None else time.monotonic() + wait
        out: list[Message] = []
        while len(out) < num_messages:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            got = self._next(num_messages - len(out), left)
            if got:
                out.extend(got)
            elif left is not None and time.monotonic() >= (deadline or 0):
                break
        return out

    # ----------------------------------------------------------------- offsets
    def commit(self, message: Message | None = None, offsets: list[TopicPartition] | None = None,
               asynchronous: bool = True) -> list[TopicPartition] | None:
        """Commit ``message.offset() + 1``, or ``offsets``, or the stored offsets of the
        assignment. Synchronous commits return the committed partitions."""
        self._check()
        if message is not None and offsets is not None:
            raise ValueError("Commit: message and offsets are mutually exclusive")
        if message is not None:
            if message.error() is not None or message.topic() is None:
                raise KafkaException(KafkaError(KafkaError._INVALID_ARG))
            stp = STP(str(message.topic()), int(message.partition() or 0))
            return self._commit({stp: streamlog.OffsetAndMetadata(int(message.offset() or 0) + 1)},
                                sync=not asynchronous)
        if offsets is not None:
            checked = {_stp(tp): streamlog.OffsetAndMetadata(tp.offset, tp.metadata or "")
                       for tp in offsets}
            return self._commit(checked, sync=not asynchronous)
        return self._commit_stored(None, sync=not asynchronous, quiet=False)

    def store_offsets(self, message: Message | None = None,
                      offsets: list[TopicPartition] | None = None) -> None:
        """Store the offset to commit (``message.offset() + 1``, or each ``.offset``);
        needs ``enable.auto.offset.store=false``."""
        self._check()
        if self._auto_store:
            raise _invalid("Operation not valid when enable.auto.offset.store=true")
        if (message is None) == (offsets is None):
            raise ValueError("expected either message or offsets")
        assigned = self._c.assignment()
        if message is not None:
            stp = STP(str(message.topic()), int(message.partition() or 0))
            pairs = [(stp, int(message.offset() or 0) + 1, "")]
        else:
            pairs = [(_stp(tp), tp.offset, tp.metadata or "") for tp in offsets or []]
        for stp, off, md in pairs:
            if stp not in assigned:
                raise KafkaException(KafkaError(KafkaError._STATE))
            self._stored[stp] = (off, md)

    def committed(self, partitions: list[TopicPartition], timeout: float | None = None
                  ) -> list[TopicPartition]:
        self._check()
        out = []
        for tp in partitions:
            stp = _stp(tp)
            off = self._call(lambda s=stp: self._c.committed(s))  # type: ignore[misc]
            if off is None:
                out.append(TopicPartition(tp.topic, tp.partition, OFFSET_INVALID))
                continue
            # the commit's metadata too (None when empty, as librdkafka)
            found = self._c._offsets().committed(stp)
            metadata = found.metadata if found is not None and found.offset == off else ""
            out.append(TopicPartition(tp.topic, tp.partition, off, metadata or None))
        return out

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The offset after the last message returned per partition (OFFSET_INVALID if
        none yet)."""
        self._check()
        return [TopicPartition(tp.topic, tp.partition, self._pos.get(_stp(tp), OFFSET_INVALID))
                for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float | None = None,
                              cached: bool = False) -> tuple[int, int]:
        self._check()
        try:
            plog = self._log.partition(partition.topic, partition.partition)
        except (streamlog.UnknownTopicError, streamlog.UnknownPartitionError) as e:
            # librdkafka finds no leader for it in its metadata: a local error
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, str(e))) from e
        return plog.log_start_offset, plog.end_offset

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float | None = None
                          ) -> list[TopicPartition]:
        self._check()
        query = {_stp(tp): tp.offset for tp in partitions}
        found = self._call(lambda: self._c.offsets_for_times(query))
        return [TopicPartition(tp.topic, tp.partition,
                               OFFSET_END if found[tp] is None else found[tp].offset)
                for tp in query]

    def seek(self, partition: TopicPartition) -> None:
        """Read ``partition`` (assigned) from its ``.offset`` at the next poll."""
        self._check()
        stp = _stp(partition)
        assigned = self._c.assignment()
        if stp not in assigned:
            # librdkafka: a partition of a topic this consumer has (assigned) is known
            # but not being fetched (_STATE); any other is unknown to it
            known = any(tp.topic == stp.topic for tp in assigned)
            raise KafkaException(KafkaError(
                KafkaError._STATE if known else KafkaError._UNKNOWN_PARTITION))
        self._unbuffer([stp], rewind=False)
        self._apply_offsets([partition])
        if partition.offset >= 0:
            self._pos[stp] = partition.offset

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._check()
        stps = [_stp(tp) for tp in partitions]
        self._unbuffer(stps, rewind=True)
        self._call(lambda: self._c.pause(*stps))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._check()
        stps = [_stp(tp) for tp in partitions]
        self._call(lambda: self._c.resume(*stps))

    # ----------------------------------------------------------------- metadata, lifecycle
    def consumer_group_metadata(self) -> streamlog.ConsumerGroupMetadata:
        self._check()
        return self._c.group_metadata()

    def memberid(self) -> str | None:
        self._check()
        return self._c.group_metadata().member_id or None

    def list_topics(self, topic: str | None = None, timeout: float | None = -1
                    ) -> ClusterMetadata:
        self._check()
        return cluster_metadata(self._log, topic, auto_create=self._auto_create)

    def close(self) -> None:
        """Commit the stored offsets (with ``enable.auto.commit``), leave the group."""
        if self._closed:
            return
        try:
            if self._auto_commit and self._stored:
                self._commit_stored(None, sync=True, quiet=True)
            self._c.close()
        finally:
            self._closed = True
            unregister(self)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
