"""Differential tests: the same test bodies against streamlog's shims and the real clients.

Every ``case_*`` body below is written once, against a :class:`Side`: ``side.ck`` is a
``confluent_kafka`` module and ``side.kafka`` a kafka-python ``kafka`` module, either

- **streamlog**: the shims as users get them, ``import confluent_kafka`` / ``import kafka``
  inside the ``kafka_cluster`` fixture (``streamlog.compat.install()``), or
- **real**: the installed confluent-kafka / kafka-python, talking over TCP to librdkafka's
  mock cluster (one in-process broker; ``tests/compat/_rdmock.py``).

A body asserts what must hold for both clients, and returns an *observation* (plain data:
keys, values, offsets, error codes, the shapes of returned objects). The ``real`` run
stores its observation; the ``streamlog`` run compares its own with it (and computes it
first, before installing the shims, when the ``real`` run has not: ``-k streamlog``).
Where the two legitimately differ (timing, values the mock makes up), the body records
shapes and types rather than values and says why in a comment.

The module is skipped as a whole without confluent-kafka; the kafka-python cases are
skipped without kafka-python. A case the mock cannot serve is skipped for ``real`` only,
with the reason (``mock lacks ...``); the ``streamlog`` run then checks the body's own
assertions (what Kafka's semantics say) without a comparison.

Mock cluster notes (librdkafka 2.x, ``src/rdkafka_mock*.c``):

- no CreateTopics/DeleteTopics/DescribeConfigs/ListGroups handlers: AdminClient cannot
  create topics, so topics are made through the mock's C API (``rd_kafka_mock_topic_create``)
  on the real side and with ``log.create_topic`` on the streamlog side, with the same
  partition counts;
- ListOffsets by timestamp is not implemented (always -1): ``offsets_for_times`` is
  skipped for ``real``;
- a ProduceResponse always carries LogAppendTime 1234, so delivery reports /
  ``RecordMetadata`` timestamps on the real side are (LOG_APPEND_TIME, 1234): compared by
  shape only;
- the group's initial rebalance delay is set to 0 (the mock's default is 3 s).

kafka-python 3.x sends ApiVersions v4 first, which the mock answers with
UNSUPPORTED_VERSION in a form kafka-python cannot decode (it never connects); with
``api_version=(2, 1)`` it skips the probe and works (pins of (2, 4) and later hang after
connecting). The bodies pass that setting to both sides (the shim accepts and ignores it).
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

REAL_CK = pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")
import confluent_kafka.admin  # noqa: E402  (the real one, imported before any install())

from tests.compat._rdmock import RdMockCluster  # noqa: E402

REAL_ADMIN = confluent_kafka.admin

SIDES = ["real", "streamlog"]
KAFKA_API_VERSION = (2, 1)  # see the module docstring
_NAMES = itertools.count()
_OBSERVED: dict[str, Any] = {}
_REAL_KAFKA: list[ModuleType] = []

Body = Callable[["Side"], Any]
# librdkafka/confluent properties spelled with underscores
_UNDERSCORED = frozenset({"on_delivery", "on_commit", "error_cb", "stats_cb", "throttle_cb",
                          "log_level", "dr_cb", "dr_msg_cb", "logger", "oauth_cb"})


def _real_kafka() -> ModuleType:
    """The installed kafka-python (imported while no shim is installed)."""
    if not _REAL_KAFKA:
        kafka = pytest.importorskip("kafka", reason="kafka-python is not installed")
        if kafka.__name__ != "kafka" or "streamlog" in (kafka.__file__ or ""):
            pytest.skip("`import kafka` resolves to streamlog's shim here")
        for sub in ("kafka.errors", "kafka.structs", "kafka.admin", "kafka.consumer",
                    "kafka.producer", "kafka.partitioner"):
            importlib.import_module(sub)
        _REAL_KAFKA.append(kafka)
    return _REAL_KAFKA[0]


# ---------------------------------------------------------------- the two sides


class Side:
    """What a body needs: the client modules, topics and group ids, and configs."""

    def __init__(self, name: str, ck: ModuleType, admin: ModuleType, bootstrap: str,
                 create_topic: Callable[[str, int], None],
                 kafka: Callable[[], ModuleType]) -> None:
        self.name = name
        self.ck = ck
        self.admin = admin
        self.bootstrap = bootstrap
        self._create_topic = create_topic
        self._kafka = kafka
        self._clients: list[Any] = []

    @property
    def real(self) -> bool:
        return self.name == "real"

    @property
    def kafka(self) -> ModuleType:
        return self._kafka()

    def _unique(self, base: str) -> str:
        # one mock cluster serves the whole module: real-side names must not repeat
        return f"{base}-{next(_NAMES)}" if self.real else base

    def topic(self, base: str, partitions: int = 1) -> str:
        name = self._unique(base)
        self._create_topic(name, partitions)
        return name

    def group(self, base: str = "g") -> str:
        return self._unique(base)

    # ------------------------------------------------------------ confluent-kafka
    def conf(self, **extra: Any) -> dict[str, Any]:
        """``bootstrap.servers`` plus ``extra`` (``a_b`` → ``a.b``)."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "log_level": 3}
        conf.update({k if k in _UNDERSCORED else k.replace("_", "."): v
                     for k, v in extra.items()})
        return conf

    def producer(self, **extra: Any) -> Any:
        p = self.ck.Producer(self.conf(**extra))
        self._clients.append(("producer", p))
        return p

    def consumer(self, group: str | None = None, **extra: Any) -> Any:
        settings: dict[str, Any] = {
            "group_id": group or self.group(),
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
            # quick group protocol and empty fetches on the mock; the shim accepts them
            "heartbeat_interval_ms": 100,
            "session_timeout_ms": 6000,
            "fetch_wait_max_ms": 10,
        }
        settings.update(extra)
        c = self.ck.Consumer(self.conf(**settings))
        self._clients.append(("consumer", c))
        return c

    # ------------------------------------------------------------ kafka-python
    def kconf(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap, "api_version": KAFKA_API_VERSION, **extra}

    def kproducer(self, **extra: Any) -> Any:
        p = self.kafka.KafkaProducer(**self.kconf(**extra))
        self._clients.append(("kproducer", p))
        return p

    def kconsumer(self, *topics: str, **extra: Any) -> Any:
        settings: dict[str, Any] = {
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
            "consumer_timeout_ms": 3000,
            "fetch_max_wait_ms": 10,
            "heartbeat_interval_ms": 100,
            "session_timeout_ms": 6000,
        }
        settings.update(extra)
        c = self.kafka.KafkaConsumer(*topics, **self.kconf(**settings))
        self._clients.append(("kconsumer", c))
        return c

    def close(self) -> None:
        for kind, client in reversed(self._clients):
            try:
                if kind == "producer":
                    client.flush(5)
                elif kind == "kproducer":
                    client.close(5)
                else:
                    client.close()
            except Exception:
                pass
        self._clients.clear()


@pytest.fixture(scope="module")
def mock() -> Iterator[RdMockCluster]:
    reason = RdMockCluster.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with RdMockCluster() as mc:
        yield mc


def _real_side(mock: RdMockCluster) -> Side:
    return Side("real", REAL_CK, REAL_ADMIN, mock.bootstrap, mock.create_topic, _real_kafka)


def _observe_real(body: Body, mock: RdMockCluster) -> None:
    """Run ``body`` on the real side now (before the shims are installed), if not yet."""
    if body.__name__ in _OBSERVED:
        return
    side = _real_side(mock)
    try:
        _OBSERVED[body.__name__] = body(side)
    except (Exception, pytest.skip.Exception, pytest.fail.Exception):
        _OBSERVED[body.__name__] = None  # skipped or failed there: the real test reports it
    finally:
        side.close()


@pytest.fixture
def side(request: pytest.FixtureRequest, mock: RdMockCluster) -> Iterator[Side]:
    body: Body = request.function.body
    if request.param == "real":
        s = _real_side(mock)
    else:
        _observe_real(body, mock)
        cluster = request.getfixturevalue("kafka_cluster")
        ck = importlib.import_module("confluent_kafka")
        admin = importlib.import_module("confluent_kafka.admin")
        assert ck.__name__ == "streamlog.compat.confluent_kafka"

        def create(name: str, partitions: int) -> None:
            cluster.log.create_topic(name, partitions=partitions)

        def kafka() -> ModuleType:
            mod = importlib.import_module("kafka")
            assert mod.__name__ == "streamlog.compat.kafka"
            return mod

        s = Side("streamlog", ck, admin, cluster.bootstrap_servers, create, kafka)
    try:
        yield s
    finally:
        s.close()


def differential(body: Body) -> Callable[[Side], None]:
    """A test running ``body`` on both sides; the streamlog run compares observations."""

    @pytest.mark.parametrize("side", SIDES, indirect=True)
    def test(side: Side) -> None:
        got = body(side)
        if side.real:
            _OBSERVED[body.__name__] = got
            return
        want = _OBSERVED.get(body.__name__)
        if want is not None:
            assert got == want, f"streamlog observed\n{got!r}\nthe real client\n{want!r}"

    test.body = body  # type: ignore[attr-defined]
    test.__doc__ = body.__doc__
    return test


# ---------------------------------------------------------------- helpers


def drain(c: Any, n: int, timeout: float = 10.0, errors: list[Any] | None = None) -> list[Any]:
    """Poll a confluent consumer until ``n`` messages (error events go to ``errors``)."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error() is not None:
            if errors is not None:
                errors.append(m)
            continue
        out.append(m)
    return out


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, step: Callable[[], Any] = (
        lambda: time.sleep(0.02))) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        step()
    return True


def err_shape(err: Any) -> tuple[Any, ...]:
    """A KafkaError's observable shape (the message text differs; its code does not)."""
    return (type(err).__name__, err.code(), err.name(), isinstance(err.str(), str),
            err.fatal(), err.retriable(), err.txn_requires_abort())


def assign_from(side: Side, c: Any, topic: str, partitions: range | list[int],
                offset: int | None = None) -> None:
    ck = side.ck
    off = ck.OFFSET_BEGINNING if offset is None else offset
    c.assign([ck.TopicPartition(topic, p, off) for p in partitions])


# ---------------------------------------------------------------- confluent-kafka cases


def case_ck_roundtrip(side: Side) -> Any:
    """Keys, values, headers and timestamps come back as produced; Message's shape."""
    t = side.topic("roundtrip")
    p = side.producer()
    sent = [
        dict(value=b"v0", key=b"k0", timestamp=1_600_000_000_000),
        dict(value="text", key="str-key", headers=[("h1", b"a"), ("h2", "b"), ("h1", b"c")],
             timestamp=1_600_000_000_001),
        dict(value=None, key=b"tombstone", timestamp=1_600_000_000_002),
        dict(value=b"", key=None, headers={"only": b"x"}, timestamp=1_600_000_000_003),
        dict(value=b"v4", headers=[("none", None)], timestamp=1_600_000_000_004),
    ]
    for kw in sent:
        p.produce(t, partition=0, **kw)
    assert p.flush(10) == 0
    c = side.consumer()
    assign_from(side, c, t, [0])
    msgs = drain(c, len(sent))
    assert len(msgs) == len(sent)
    out = []
    for m in msgs:
        assert m.topic() == t
        out.append((m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp(),
                    m.error(), len(m), type(m).__name__,
                    # a real broker's leader epoch (an int) vs None ("unknown": streamlog
                    # has no leaders); both are documented values of leader_epoch()
                    m.leader_epoch() is None or isinstance(m.leader_epoch(), int),
                    m.latency()))
    return out


def case_ck_default_partitioner(side: Side) -> Any:
    """consistent_random: crc32(key) % partitions for keyed messages; random otherwise."""
    t = side.topic("partitioner", 5)
    p = side.producer()
    parts: dict[bytes | None, list[int]] = {}

    def report(err: Any, msg: Any) -> None:
        assert err is None
        parts.setdefault(msg.key(), []).append(msg.partition())

    keys = [f"key-{i}".encode() for i in range(20)]
    for k in keys:
        p.produce(t, b"v", k, on_delivery=report)
        p.produce(t, b"v", k, on_delivery=report)  # the same key: the same partition
    for _ in range(20):
        p.produce(t, b"keyless", on_delivery=report)
    assert p.flush(10) == 0
    for k in keys:
        assert parts[k] == [zlib.crc32(k) % 5] * 2
    assert all(0 <= x < 5 for x in parts[None])
    return {k.decode(): v for k, v in parts.items() if k is not None}


def case_ck_murmur2_partitioner(side: Side) -> Any:
    """``partitioner=murmur2_random``: Java's partition for every keyed message."""
    t = side.topic("murmur", 6)
    p = side.producer(partitioner="murmur2_random")
    parts: dict[str, int] = {}
    for i in range(20):
        k = f"user-{i}"
        p.produce(t, b"v", k, on_delivery=lambda e, m: parts.__setitem__(m.key().decode(),
                                                                         m.partition()))
    assert p.flush(10) == 0
    return parts


def case_ck_delivery_reports(side: Side) -> Any:
    """Delivery callbacks run only from poll()/flush(), in produce order, once each."""
    t = side.topic("dr")
    p = side.producer()
    p.list_topics(t, timeout=10)  # metadata known before the clock starts (real client)
    calls: list[tuple[Any, ...]] = []
    threads: set[int] = set()

    def cb(err: Any, msg: Any) -> None:
        threads.add(threading.get_ident())
        calls.append((err, msg.topic() == t, msg.partition(), msg.offset(), msg.key(),
                      msg.value(), msg.headers(), msg.error(),
                      # the mock reports LogAppendTime 1234 for every produce, the shim the
                      # create time: compare the shape only
                      isinstance(msg.timestamp(), tuple) and len(msg.timestamp()) == 2,
                      isinstance(msg.latency(), float)))

    for i in range(5):
        p.produce(t, f"v{i}".encode(), f"k{i}".encode(), callback=cb, headers=[("i", b"%d" % i)])
    queued = len(p)
    time.sleep(0.3)  # delivered by now (linger.ms=5), but not reported until poll/flush
    before_poll = len(calls)
    left = p.flush(10)
    assert threads == {threading.get_ident()}
    return {"queued": queued, "before_poll": before_poll, "flush": left, "len_after": len(p),
            "calls": calls, "poll_after": p.poll(0)}


def case_ck_delivery_report_poll_count(side: Side) -> Any:
    """poll() returns the number of *events* served: the reports of one produced batch
    are one event (librdkafka's delivery-report op); a config-wide on_delivery is used."""
    t = side.topic("drpoll")
    seen: list[int] = []
    # linger.ms=50: the three messages go in one batch on both sides
    p = side.producer(on_delivery=lambda err, msg: seen.append(msg.offset()), linger_ms=50)
    p.list_topics(t, timeout=10)
    for i in range(3):
        p.produce(t, b"x%d" % i)
    served = 0
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        served += p.poll(0.1)
    return {"served": served, "offsets": seen, "again": p.poll(0)}


def case_ck_partition_eof(side: Side) -> Any:
    """enable.partition.eof: one _PARTITION_EOF event per partition at its end."""
    ck = side.ck
    t = side.topic("eof", 2)
    p = side.producer()
    for i in range(3):
        p.produce(t, b"m%d" % i, partition=0)
    assert p.flush(10) == 0
    c = side.consumer(enable_partition_eof=True)
    assign_from(side, c, t, [0, 1])
    events: list[tuple[Any, ...]] = []
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(events) < 2 and time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error() is None:
            values.append(m.value())
            continue
        e = m.error()
        assert e == ck.KafkaError._PARTITION_EOF
        assert m.topic() == t
        events.append((m.partition(), m.offset(), err_shape(e), e.code() == e, bool(e)))
    more = c.poll(0.3)  # no second EOF for the same end
    p.produce(t, b"late", partition=1)
    p.flush(10)
    late: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + 10
    while len(late) < 2 and time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is not None:
            late.append((m.partition(), m.offset(), None if m.error() is None
                         else m.error().code()))
    return {"values": values, "eof": sorted(events), "more": more, "late": late}


def case_ck_subscribe_unknown_topic(side: Side) -> Any:
    """A consumer subscribing to a missing topic gets UNKNOWN_TOPIC_OR_PART events
    (librdkafka's consumer does not ask for auto-creation: allow.auto.create.topics
    defaults to false for consumers)."""
    ck = side.ck
    missing = side._unique("missing-topic")
    c = side.consumer()
    c.subscribe([missing])
    errors: list[Any] = []
    assert wait_for(lambda: bool(errors), 5, lambda: drain(c, 1, 0.1, errors)), (
        "no error event for the missing topic")
    e = errors[0].error()
    return {"code": e.code(), "is_unknown": e.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART,
            "fatal": e.fatal()}


def case_ck_produce_unknown_partition(side: Side) -> Any:
    """produce() to a partition the topic does not have: KafkaException _UNKNOWN_PARTITION."""
    ck = side.ck
    t = side.topic("badpart", 2)
    p = side.producer()
    p.list_topics(t, timeout=10)
    reports: list[Any] = []
    try:
        p.produce(t, b"x", partition=7, on_delivery=lambda e, m: reports.append(e))
        raised = None
    except ck.KafkaException as e:
        raised = err_shape(e.args[0])
    p.flush(5)
    return {"raised": raised, "reports": [None if e is None else e.code() for e in reports]}


def case_ck_commit_committed(side: Side) -> Any:
    """commit() and committed() round trip; nothing stored → _NO_OFFSET; metadata kept."""
    ck = side.ck
    t = side.topic("commit", 2)
    p = side.producer()
    for i in range(6):
        p.produce(t, b"%d" % i, partition=0)
    assert p.flush(10) == 0
    g = side.group()
    c = side.consumer(g)
    tp0, tp1 = ck.TopicPartition(t, 0), ck.TopicPartition(t, 1)
    before = [(x.partition, x.offset) for x in c.committed([tp0, tp1], timeout=10)]
    try:
        c.commit(asynchronous=False)
        no_offset = None
    except ck.KafkaException as e:
        no_offset = err_shape(e.args[0])
    assign_from(side, c, t, [0, 1])
    msgs = drain(c, 3)
    res = c.commit(message=msgs[-1], asynchronous=False)
    got = [(x.partition, x.offset, x.error) for x in res]
    after_msg = [(x.partition, x.offset) for x in c.committed([tp0, tp1], timeout=10)]
    res2 = c.commit(offsets=[ck.TopicPartition(t, 1, 0, "meta-data")], asynchronous=False)
    got2 = [(x.partition, x.offset, x.metadata) for x in res2]
    committed = c.committed([tp0, tp1], timeout=10)
    after_offsets = [(x.partition, x.offset, x.metadata, x.error) for x in committed]
    try:  # librdkafka commits only stored offsets not committed yet: none here
        c.commit(asynchronous=False)
        nothing_new: Any = None
    except ck.KafkaException as e:
        nothing_new = err_shape(e.args[0])
    drain(c, 1)  # offset 3: stores 4 on partition 0
    stored = [(x.partition, x.offset) for x in c.commit(asynchronous=False)]
    c.seek(ck.TopicPartition(t, 0, 0))
    drain(c, 1)  # stores 1 on partition 0: below the committed 4, left out
    try:
        c.commit(asynchronous=False)
        behind: Any = None
    except ck.KafkaException as e:
        behind = err_shape(e.args[0])
    unknown = c.committed([ck.TopicPartition(side._unique("no-such-topic"), 0)], timeout=10)
    # (the mock sets UNKNOWN_TOPIC_OR_PART on it; a Kafka broker answers offset -1 and no
    # error: OffsetMetadataManager.fetchOffsets; only the offset is compared)
    unknown_tp = [(x.partition, x.offset) for x in unknown]
    c.close()
    c2 = side.consumer(g)
    again = [(x.partition, x.offset) for x in c2.committed([tp0, tp1], timeout=10)]
    return {"before": before, "no_offset": no_offset, "commit_msg": got,
            "after_msg": after_msg, "commit_offsets": got2, "after_offsets": after_offsets,
            "nothing_new": nothing_new, "commit_stored": stored, "behind": behind,
            "unknown": unknown_tp,
            "second_consumer": again}


def case_ck_async_commit_callback(side: Side) -> Any:
    """An asynchronous commit reports to on_commit from a later poll."""
    t = side.topic("acommit")
    p = side.producer()
    p.produce(t, b"a")
    p.produce(t, b"b")
    assert p.flush(10) == 0
    calls: list[Any] = []
    threads: set[int] = set()

    def on_commit(err: Any, parts: Any) -> None:
        threads.add(threading.get_ident())
        calls.append((err, [(x.partition, x.offset, x.error) for x in parts]))

    c = side.consumer(on_commit=on_commit)
    assign_from(side, c, t, [0])
    msgs = drain(c, 2)
    ret = c.commit(message=msgs[-1])  # asynchronous
    wait_for(lambda: bool(calls), 10, lambda: c.poll(0.05))
    assert threads <= {threading.get_ident()}
    return {"returned": ret, "calls": calls}


def case_ck_offsets_for_times(side: Side) -> Any:
    """offsets_for_times: the first offset at or after each timestamp, -1 past the end."""
    ck = side.ck
    if side.real:
        pytest.skip("mock lacks ListOffsets by timestamp (rdkafka_mock_handlers.c answers -1)")
    t = side.topic("times", 4)
    p = side.producer()
    for part in range(4):
        for i, ts in enumerate((1000, 2000, 3000)):
            p.produce(t, b"%d" % i, partition=part, timestamp=ts)
    assert p.flush(10) == 0
    c = side.consumer()
    query = [ck.TopicPartition(t, part, ts) for part, ts in enumerate((0, 1500, 3000, 9000))]
    found = c.offsets_for_times(query, timeout=10)
    out = [(x.partition, x.offset) for x in found]
    assert out == [(0, 0), (1, 1), (2, 2), (3, -1)]
    return out


def case_ck_watermarks(side: Side) -> Any:
    """get_watermark_offsets: (low, high) of a partition; an unknown topic raises."""
    ck = side.ck
    t = side.topic("wm", 2)
    p = side.producer()
    for _ in range(4):
        p.produce(t, b"x", partition=1)
    assert p.flush(10) == 0
    c = side.consumer()
    w0 = c.get_watermark_offsets(ck.TopicPartition(t, 0), timeout=10)
    w1 = c.get_watermark_offsets(ck.TopicPartition(t, 1), timeout=10)
    try:
        c.get_watermark_offsets(ck.TopicPartition(side._unique("nope"), 0), timeout=5)
        unknown = None
    except ck.KafkaException as e:
        unknown = e.args[0].code()
    return {"p0": tuple(w0), "p1": tuple(w1), "types": [type(x).__name__ for x in w1],
            "unknown": unknown}


def case_ck_position_seek(side: Side) -> Any:
    """position() is the last returned offset + 1; seek() moves the next message."""
    ck = side.ck
    t = side.topic("seek", 2)
    p = side.producer()
    for i in range(6):
        p.produce(t, b"%d" % i, partition=0)
    assert p.flush(10) == 0
    c = side.consumer()
    tp = ck.TopicPartition(t, 0)
    assign_from(side, c, t, [0])
    pos0 = [(x.partition, x.offset) for x in c.position([tp])]
    first = [m.offset() for m in drain(c, 3)]
    pos1 = [(x.partition, x.offset) for x in c.position([tp])]
    c.seek(ck.TopicPartition(t, 0, 1))
    after_seek = [m.offset() for m in drain(c, 2)]
    c.seek(ck.TopicPartition(t, 0, ck.OFFSET_END))
    # (librdkafka resolves OFFSET_END with a ListOffsets request after seek() returns;
    # a poll in between lets it finish before the next message is produced)
    idle = c.poll(0.5)
    p.produce(t, b"new", partition=0)
    p.flush(10)
    at_end = [(m.offset(), m.value()) for m in drain(c, 1)]
    unassigned = []
    # not assigned: another partition of an assigned topic (librdkafka knows the topic:
    # _STATE), a topic this consumer never used (_UNKNOWN_PARTITION)
    for tp in (ck.TopicPartition(t, 1, 0), ck.TopicPartition(side._unique("other"), 0, 0)):
        try:
            c.seek(tp)
            unassigned.append(None)
        except ck.KafkaException as e:
            unassigned.append(e.args[0].code())
    return {"pos_before": pos0, "first": first, "pos": pos1, "after_seek": after_seek,
            "idle": idle, "at_end": at_end, "unassigned": unassigned}


def case_ck_pause_resume(side: Side) -> Any:
    """A paused partition delivers nothing; resume() continues from the position."""
    ck = side.ck
    t = side.topic("pause", 2)
    p = side.producer()
    for i in range(4):
        p.produce(t, b"a%d" % i, partition=0)
        p.produce(t, b"b%d" % i, partition=1)
    assert p.flush(10) == 0
    c = side.consumer()
    assign_from(side, c, t, [0, 1])
    got = drain(c, 2)
    c.pause([ck.TopicPartition(t, 0)])
    seen = got + drain(c, 8, timeout=1.5)
    by_part = sorted((m.partition(), m.offset()) for m in seen)
    paused_p0 = [o for part, o in by_part if part == 0]
    c.resume([ck.TopicPartition(t, 0)])
    rest = drain(c, 4 - len(paused_p0), timeout=10)
    return {"p1": [o for part, o in by_part if part == 1],
            "p0_total": sorted(set(paused_p0) | {m.offset() for m in rest
                                                 if m.partition() == 0}),
            "rest_in_order": [m.offset() for m in rest] == sorted(m.offset() for m in rest)}


def case_ck_subscribe_rebalance(side: Side) -> Any:
    """subscribe() with on_assign/on_revoke; a second member splits the partitions."""
    ck = side.ck
    t = side.topic("rebalance", 4)
    g = side.group()
    log: list[tuple[str, str, list[int]]] = []

    def cbs(name: str) -> dict[str, Any]:
        def on_assign(consumer: Any, parts: Any) -> None:
            assert all(isinstance(x, ck.TopicPartition) for x in parts)
            log.append((name, "assign", sorted(x.partition for x in parts)))

        def on_revoke(consumer: Any, parts: Any) -> None:
            log.append((name, "revoke", sorted(x.partition for x in parts)))

        return {"on_assign": on_assign, "on_revoke": on_revoke}

    # session.timeout.ms=1000: the mock waits up to the session timeout for the members
    # to rejoin at each rebalance (5 s with 6000)
    a = side.consumer(g, session_timeout_ms=1000)
    a.subscribe([t], **cbs("a"))
    assert wait_for(lambda: len(a.assignment()) == 4, 15, lambda: a.poll(0.05))
    first = sorted(x.partition for x in a.assignment())
    b = side.consumer(g, session_timeout_ms=1000)
    b.subscribe([t], **cbs("b"))

    def settled() -> bool:
        a.poll(0.02)
        b.poll(0.02)
        return len(a.assignment()) == 2 and len(b.assignment()) == 2

    assert wait_for(settled, 20, lambda: None)
    split = sorted(x.partition for x in a.assignment() + b.assignment())
    b.close()
    assert wait_for(lambda: len(a.assignment()) == 4, 20, lambda: a.poll(0.05))
    a_log = [e for e in log if e[0] == "a"]
    return {"first": first, "split": split, "b_first": [e[1] for e in log if e[0] == "b"][:1],
            # a: assign all, revoke all (eager range), assign 2, then again when b leaves
            "a_kinds": [k for _, k, _ in a_log][:3], "a_first": a_log[0][2],
            "memberid": isinstance(a.memberid(), str)}


def _ck_txn_data(side: Side) -> str:
    """An aborted transaction of two messages, then a committed one of one."""
    t = side.topic("txn")
    p = side.producer(transactional_id=side._unique("txn-id"))
    reports: list[Any] = []
    p.init_transactions(10)
    p.begin_transaction()
    p.produce(t, b"aborted-1", partition=0, on_delivery=lambda e, m: reports.append(e))
    p.produce(t, b"aborted-2", partition=0, on_delivery=lambda e, m: reports.append(e))
    p.flush(10)
    p.abort_transaction(10)
    p.begin_transaction()
    p.produce(t, b"committed", partition=0, on_delivery=lambda e, m: reports.append(e))
    p.commit_transaction(10)
    assert reports == [None, None, None]
    try:
        p.commit_transaction(10)  # none open
    except side.ck.KafkaException as e:
        assert e.args[0].code() in (side.ck.KafkaError._STATE,)
    else:
        raise AssertionError("commit_transaction without a transaction did not raise")
    return t


def case_ck_transactions(side: Side) -> Any:
    """Transactional producer: offsets (with the commit/abort markers) and watermarks."""
    t = _ck_txn_data(side)
    uncommitted = side.consumer(isolation_level="read_uncommitted")
    assign_from(side, uncommitted, t, [0])
    ru = [(m.offset(), m.value()) for m in drain(uncommitted, 3)]
    wm = uncommitted.get_watermark_offsets(side.ck.TopicPartition(t, 0), timeout=10)
    return {"read_uncommitted": ru, "watermarks": tuple(wm)}


def case_ck_transactions_read_committed(side: Side) -> Any:
    """read_committed (librdkafka's default) hides aborted messages."""
    if side.real:
        pytest.skip("mock lacks aborted-transaction filtering: its Fetch answers "
                    "LastStableOffset = high watermark and no AbortedTransactions")
    t = _ck_txn_data(side)
    c = side.consumer()
    assign_from(side, c, t, [0])
    got = [(m.offset(), m.value()) for m in drain(c, 1)]
    assert got == [(3, b"committed")]
    return got


def case_ck_list_topics(side: Side) -> Any:
    """AdminClient list_topics(): the cluster metadata's shape."""
    t = side.topic("meta", 3)
    a = side.admin.AdminClient(side.conf(allow_auto_create_topics=False))
    md = a.list_topics(timeout=10)
    tm = md.topics[t]
    pm = tm.partitions[1]
    broker = next(iter(md.brokers.values()))
    one = a.list_topics(t, timeout=10)
    missing = side._unique("absent")
    absent = a.list_topics(missing, timeout=10).topics.get(missing)
    return {
        "types": [type(x).__name__ for x in (md, tm, pm, broker)],
        "brokers": len(md.brokers),
        "broker_fields": [type(getattr(broker, f)).__name__ for f in ("id", "host", "port")],
        "partitions": sorted(tm.partitions),
        "partition": (pm.id, pm.leader in md.brokers, [r in md.brokers for r in pm.replicas],
                      [r in md.brokers for r in pm.isrs], pm.error),
        "topic_error": tm.error,
        "one": sorted(one.topics) == [t],
        "cluster_id": type(md.cluster_id).__name__,
        "controller": type(md.controller_id).__name__,
        # (which broker answered: -1 on the real client until it knows; not compared)
        "orig_broker": (type(md.orig_broker_id).__name__,
                        type(md.orig_broker_name).__name__ in ("str", "NoneType")),
        "str": [str(md) == md.cluster_id, repr(md) == f"ClusterMetadata({md.cluster_id})",
                str(tm) == t, repr(tm) == f"TopicMetadata({t}, 3 partitions)",
                str(pm), repr(pm),
                str(broker) == f"{broker.host}:{broker.port}/{broker.id}",
                repr(broker) == f"BrokerMetadata({broker.id}, {broker.host}:{broker.port})"],
        "absent": None if absent is None else (
            absent.error.code(), len(absent.partitions),
            repr(absent) == f"TopicMetadata({missing}, 0 partitions, {absent.error})"),
    }


def case_ck_list_topics_auto_create(side: Side) -> Any:
    """list_topics(topic) asks the broker to auto-create a missing topic from a producer
    or an AdminClient (allow.auto.create.topics defaults to true there), not from a
    consumer (false)."""
    check = side.admin.AdminClient(side.conf(allow_auto_create_topics=False))
    out = {}
    for kind in ("producer", "admin", "consumer"):
        topic = side._unique(f"auto-{kind}")
        if kind == "producer":
            client = side.producer()
        elif kind == "admin":
            client = side.admin.AdminClient(side.conf())
        else:
            client = side.consumer()
        tm = client.list_topics(topic, timeout=10).topics[topic]
        after = check.list_topics(topic, timeout=10).topics[topic]
        # the partition count is the broker's num.partitions: 4 on the mock, 1 in streamlog
        out[kind] = (None if tm.error is None else tm.error.code(), len(tm.partitions) > 0,
                     None if after.error is None else after.error.code())
    return out


test_ck_roundtrip = differential(case_ck_roundtrip)
test_ck_default_partitioner = differential(case_ck_default_partitioner)
test_ck_murmur2_partitioner = differential(case_ck_murmur2_partitioner)
test_ck_delivery_reports = differential(case_ck_delivery_reports)
test_ck_delivery_report_poll_count = differential(case_ck_delivery_report_poll_count)
test_ck_partition_eof = differential(case_ck_partition_eof)
test_ck_subscribe_unknown_topic = differential(case_ck_subscribe_unknown_topic)
test_ck_produce_unknown_partition = differential(case_ck_produce_unknown_partition)
test_ck_commit_committed = differential(case_ck_commit_committed)
test_ck_async_commit_callback = differential(case_ck_async_commit_callback)
test_ck_offsets_for_times = differential(case_ck_offsets_for_times)
test_ck_watermarks = differential(case_ck_watermarks)
test_ck_position_seek = differential(case_ck_position_seek)
test_ck_pause_resume = differential(case_ck_pause_resume)
test_ck_subscribe_rebalance = differential(case_ck_subscribe_rebalance)
test_ck_transactions = differential(case_ck_transactions)
test_ck_transactions_read_committed = differential(case_ck_transactions_read_committed)
test_ck_list_topics = differential(case_ck_list_topics)
test_ck_list_topics_auto_create = differential(case_ck_list_topics_auto_create)


# ---------------------------------------------------------------- kafka-python cases


def _record_fields(r: Any) -> dict[str, Any]:
    """A ConsumerRecord's fields common to kafka-python 2.0.2 (the shim's target) and 3.x
    (3.x adds leader_epoch as a field; the shim has it as an attribute)."""
    return {f: getattr(r, f) for f in (
        "partition", "offset", "timestamp", "timestamp_type", "key", "value", "headers",
        "checksum", "serialized_key_size", "serialized_value_size", "serialized_header_size")}


def case_kp_send_get(side: Side) -> Any:
    """send() returns a future; get() gives RecordMetadata; callbacks see the same."""
    kafka = side.kafka
    t = side.topic("kp-send", 2)
    p = side.kproducer()
    fut = p.send(t, b"value", key=b"key", headers=[("h", b"1")], partition=1,
                 timestamp_ms=1_600_000_000_000)
    md = fut.get(10)
    seen: list[Any] = []
    fut2 = p.send(t, value=b"v2", partition=1).add_callback(seen.append)
    fut2.get(10)
    p.flush(10)
    assert wait_for(lambda: bool(seen), 5)
    return {
        "type": type(md).__name__,
        "fields": (md.topic == t, md.partition, md.offset,
                   md.topic_partition == kafka.TopicPartition(t, 1),
                   md.serialized_key_size, md.serialized_value_size,
                   md.serialized_header_size, md.checksum),
        # the mock answers every Produce with LogAppendTime 1234 (kafka-python reports it);
        # streamlog the record's create time: compare the type
        "timestamp": type(md.timestamp).__name__,
        "future": (fut.is_done, fut.succeeded(), fut.failed(), fut.exception),
        "callback": [(m.offset, m.serialized_key_size) for m in seen],
        "keyless": p.send(t, value=b"x", partition=0).get(10).serialized_key_size,
    }


def case_kp_consume_iter(side: Side) -> Any:
    """Iterating a KafkaConsumer yields ConsumerRecords until consumer_timeout_ms."""
    t = side.topic("kp-iter")
    p = side.kproducer()
    p.send(t, b"a", key=b"k1", timestamp_ms=1_600_000_000_000)
    p.send(t, b"b", headers=[("x", b"y"), ("e", b"")], timestamp_ms=1_600_000_000_001)
    p.send(t, None, key=b"tomb", timestamp_ms=1_600_000_000_002)
    p.flush(10)
    c = side.kconsumer(t, group_id=side.group(), consumer_timeout_ms=10000)
    records = []
    for r in c:
        assert r.topic == t
        records.append(_record_fields(r))
        if len(records) == 3:
            break
    return {"records": records, "types": type(c).__name__}


def case_kp_poll_shape(side: Side) -> Any:
    """poll() returns {TopicPartition: [ConsumerRecord]}; max_records caps it."""
    kafka = side.kafka
    t = side.topic("kp-poll", 2)
    p = side.kproducer()
    for i in range(6):
        p.send(t, b"%d" % i, partition=i % 2)
    p.flush(10)
    c = side.kconsumer()
    c.assign([kafka.TopicPartition(t, 0), kafka.TopicPartition(t, 1)])
    c.seek_to_beginning()
    first: dict[Any, Any] = {}
    deadline = time.monotonic() + 10
    while not first and time.monotonic() < deadline:
        first = c.poll(timeout_ms=200, max_records=2)
    got: dict[int, list[int]] = {}
    batches = [first]
    while sum(len(v) for b in batches for v in b.values()) < 6 and time.monotonic() < deadline:
        batches.append(c.poll(timeout_ms=200))
    for b in batches:
        for tp, recs in b.items():
            assert isinstance(tp, kafka.TopicPartition)
            got.setdefault(tp.partition, []).extend(r.offset for r in recs)
    return {"type": type(first).__name__, "first_size": sum(len(v) for v in first.values()),
            "offsets": {k: sorted(v) for k, v in sorted(got.items())},
            "empty": c.poll(timeout_ms=100)}


def case_kp_commit_committed(side: Side) -> Any:
    """commit()/committed() round trip, with metadata; the position is committed by default."""
    kafka = side.kafka
    t = side.topic("kp-commit")
    p = side.kproducer()
    for i in range(5):
        p.send(t, b"%d" % i)
    p.flush(10)
    g = side.group()
    c = side.kconsumer(group_id=g)
    tp = kafka.TopicPartition(t, 0)
    c.assign([tp])
    before = c.committed(tp)
    c.seek_to_beginning(tp)
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=200, max_records=3 - len(seen)).values():
            seen.extend(r.offset for r in recs)
    c.commit()
    after = c.committed(tp)
    position = c.position(tp)
    c.commit({tp: kafka.OffsetAndMetadata(4, "meta", -1)})
    with_md = c.committed(tp, metadata=True)
    c.close()
    c2 = side.kconsumer(group_id=g)
    c2.assign([tp])
    return {"before": before, "seen": seen, "after": after, "position": position,
            "with_md": (type(with_md).__name__, with_md.offset, with_md.metadata),
            "second": c2.committed(tp), "second_position": c2.position(tp)}


def case_kp_metadata(side: Side) -> Any:
    """partitions_for (producer), partitions_for_topic and topics (consumer)."""
    t = side.topic("kp-meta", 3)
    p = side.kproducer()
    c = side.kconsumer(group_id=side.group())
    missing = side._unique("kp-missing")
    # a missing topic: kafka-python 2.0.2 (the shim's target) answers None, 3.x set()
    return {"producer": p.partitions_for(t), "consumer": c.partitions_for_topic(t),
            "in_topics": t in c.topics(), "missing": not c.partitions_for_topic(missing),
            "missing_in_topics": missing in c.topics()}


def case_kp_errors(side: Side) -> Any:
    """Errors: a missing topic with auto-creation off, an unassigned partition, a group-less
    commit, a record larger than max_request_size."""
    kafka = side.kafka
    errors = importlib.import_module(f"{kafka.__name__}.errors")
    t = side.topic("kp-err")
    out: dict[str, Any] = {}
    # (a missing topic with allow_auto_create_topics=False is not compared: kafka-python
    # 2.0.2 raises KafkaTimeoutError from send() after max_block_ms, 3.x returns a future,
    # and the mock creates the topic anyway)
    p = side.kproducer()
    p2 = side.kproducer(max_request_size=1000)
    try:
        p2.send(t, b"x" * 2000).get(10)
        out["too_large"] = None
    except errors.KafkaError as e:
        out["too_large"] = type(e).__name__
    c = side.kconsumer()
    try:
        c.position(kafka.TopicPartition(t, 0))
        out["position_unassigned"] = None
    except Exception as e:
        out["position_unassigned"] = type(e).__name__
    try:
        c.commit()
        out["commit_no_group"] = None
    except Exception as e:  # 2.0.2: AssertionError, 3.x: IllegalStateError
        out["commit_no_group"] = isinstance(e, errors.IllegalStateError)
    # kafka-python 2.0.2 asserts (AssertionError), 3.x raises ValueError/TypeError: the
    # shim's exceptions are both
    bad_sends = {"no_key_value": dict(value=None, key=None),
                 "header_none": dict(value=b"x", headers=[("h", None)]),
                 "header_str": dict(value=b"x", headers=[("h", "text")]),
                 "headers_tuple": dict(value=b"x", headers=(("h", b"v"),))}
    for name, kw in bad_sends.items():
        try:
            p.send(t, **kw)
            out[name] = None
        except Exception as e:
            out[name] = [base.__name__ for base in (AssertionError, TypeError, ValueError)
                         if isinstance(e, base) and (side.real or base is not AssertionError)]
    return out


def case_kp_murmur2_partitioner(side: Side) -> Any:
    """kafka-python's default partitioner: murmur2(key) like Java."""
    t = side.topic("kp-murmur", 6)
    p = side.kproducer()
    futs = {f"user-{i}": p.send(t, b"v", key=f"user-{i}".encode()) for i in range(20)}
    return {k: f.get(10).partition for k, f in futs.items()}


def case_kp_seek_pause(side: Side) -> Any:
    """seek, seek_to_end, position, pause/resume, beginning/end offsets."""
    kafka = side.kafka
    t = side.topic("kp-seek", 2)
    p = side.kproducer()
    for i in range(4):
        p.send(t, b"a%d" % i, partition=0)
        p.send(t, b"b%d" % i, partition=1)
    p.flush(10)
    tp0, tp1 = kafka.TopicPartition(t, 0), kafka.TopicPartition(t, 1)
    c = side.kconsumer()
    c.assign([tp0, tp1])
    out: dict[str, Any] = {
        "beginning": sorted((tp.partition, o) for tp, o in c.beginning_offsets([tp0, tp1]).items()),
        "end": sorted((tp.partition, o) for tp, o in c.end_offsets([tp0, tp1]).items())}
    c.seek(tp0, 2)
    c.seek(tp1, 1)
    out["positions"] = (c.position(tp0), c.position(tp1))
    c.pause(tp1)
    out["paused"] = c.paused() == {tp1}

    def take(n: int, timeout: float = 3.0) -> list[tuple[int, int]]:
        got: list[tuple[int, int]] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for tp, recs in c.poll(timeout_ms=100).items():
                got.extend((tp.partition, r.offset) for r in recs)
        return sorted(got)

    out["while_paused"] = take(5, 1.5)
    c.resume(tp1)
    out["after_resume"] = take(3)
    c.seek_to_end(tp0)
    out["end_position"] = c.position(tp0)
    return out


def _kp_listener(kafka: ModuleType, name: str, calls: list[tuple[str, str, list[int]]]) -> Any:
    class Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc,name-defined]
        def on_partitions_revoked(self, revoked: Any) -> None:
            calls.append((name, "revoked", sorted(tp.partition for tp in revoked)))

        def on_partitions_assigned(self, assigned: Any) -> None:
            calls.append((name, "assigned", sorted(tp.partition for tp in assigned)))

    return Listener()


def case_kp_subscribe(side: Side) -> Any:
    """subscribe() with a ConsumerRebalanceListener: kafka-python calls
    on_partitions_revoked (with the empty set) before the first assignment too."""
    kafka = side.kafka
    t = side.topic("kp-sub", 2)
    calls: list[tuple[str, str, list[int]]] = []
    # (metadata_max_age_ms: a first join that found no metadata for the topic, under
    # load, is redone at the next metadata refresh instead of after 5 minutes)
    a = side.kconsumer(group_id=side.group(), metadata_max_age_ms=500)
    assert wait_for(lambda: bool(a.partitions_for_topic(t)), 15, lambda: None)
    a.subscribe([t], listener=_kp_listener(kafka, "a", calls))
    assert wait_for(lambda: len(a.assignment()) == 2, 15, lambda: a.poll(timeout_ms=50))
    # the first join can hand out [] when the topic's metadata is not there yet (real
    # client): compare the first call and the last
    return {"subscription": a.subscription() == {t}, "first": calls[0], "last": calls[-1],
            "assignment": sorted(tp.partition for tp in a.assignment())}


def case_kp_group_rebalance(side: Side) -> Any:
    """A second member splits the partitions; eager revoke-all, then assign."""
    if side.real:
        pytest.skip("kafka-python 3.x's rebalance on the mock takes 10-20 s: the mock "
                    "answers a SyncGroup with INVALID_REQUEST and the members rejoin "
                    "several times")
    kafka = side.kafka
    t = side.topic("kp-group", 2)
    g = side.group()
    calls: list[tuple[str, str, list[int]]] = []
    a = side.kconsumer(group_id=g)
    a.subscribe([t], listener=_kp_listener(kafka, "a", calls))
    assert wait_for(lambda: len(a.assignment()) == 2, 15, lambda: a.poll(timeout_ms=50))
    b = side.kconsumer(group_id=g)
    b.subscribe(topics=[t], listener=_kp_listener(kafka, "b", calls))

    def settled() -> bool:
        a.poll(timeout_ms=20)
        b.poll(timeout_ms=20)
        return len(a.assignment()) == 1 and len(b.assignment()) == 1

    assert wait_for(settled, 20, lambda: None)
    split = sorted(tp.partition for tp in a.assignment() | b.assignment())
    assert split == [0, 1]
    a_calls = [c[1:] for c in calls if c[0] == "a"]
    assert a_calls[:3] == [("revoked", []), ("assigned", [0, 1]), ("revoked", [0, 1])]
    assert next(c[1:] for c in calls if c[0] == "b") == ("revoked", [])
    return split


def case_kp_transactions(side: Side) -> Any:
    """kafka-python's transactional producer (2.3+ API): offsets with markers."""
    kafka = side.kafka
    t = side.topic("kp-txn")
    p = side.kproducer(transactional_id=side._unique("kp-txn-id"))
    p.init_transactions()
    p.begin_transaction()
    p.send(t, b"aborted", partition=0)
    p.flush(10)
    p.abort_transaction()
    p.begin_transaction()
    p.send(t, b"committed", partition=0)
    p.commit_transaction()
    # check_crcs=False: the mock's commit/abort markers fail kafka-python's CRC check
    # (CorruptRecordError at the marker's offset); librdkafka does not check by default
    c = side.kconsumer(isolation_level="read_uncommitted", check_crcs=False)
    tp = kafka.TopicPartition(t, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=100).values():
            got.extend((r.offset, r.value) for r in recs)
    return {"read_uncommitted": got, "end": c.end_offsets([tp])[tp]}


test_kp_send_get = differential(case_kp_send_get)
test_kp_consume_iter = differential(case_kp_consume_iter)
test_kp_poll_shape = differential(case_kp_poll_shape)
test_kp_commit_committed = differential(case_kp_commit_committed)
test_kp_metadata = differential(case_kp_metadata)
test_kp_errors = differential(case_kp_errors)
test_kp_murmur2_partitioner = differential(case_kp_murmur2_partitioner)
test_kp_seek_pause = differential(case_kp_seek_pause)
test_kp_subscribe = differential(case_kp_subscribe)
test_kp_group_rebalance = differential(case_kp_group_rebalance)
test_kp_transactions = differential(case_kp_transactions)
