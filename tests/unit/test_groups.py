"""Consumer groups inside one process: several consumers (in threads), commits, listeners,
auto-commit, static membership, pattern subscriptions, group administration.

Multi-process behaviour (kill -9, SIGSTOP) is in tests/multiprocess/test_groups_multiprocess.py;
the state machine alone in test_group_state.py.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable

import pytest

import streamlog
from streamlog import (
    CommitFailedError,
    ConfigError,
    ConsumerRebalanceListener,
    GroupNotEmptyError,
    IllegalStateError,
    InconsistentGroupProtocolError,
    OffsetAndMetadata,
    TopicPartition,
    UnknownGroupError,
)

FAST = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 50, "auto_offset_reset": "earliest"}


@pytest.fixture
def log(log: streamlog.Log) -> streamlog.Log:
    """The shared ``log`` (conftest) with topic ``t`` of 6 partitions."""
    log.create_topic("t", 6)
    return log


def produce(log: streamlog.Log, n: int, topic: str = "t") -> None:
    with log.producer() as p:
        for i in range(n):
            p.send(topic, b"%d" % i, key=b"%d" % i)


def poll_until(
    consumers: list[streamlog.Consumer],
    cond: Callable[[], bool],
    timeout: float = 10.0,
    sink: dict[str, list[streamlog.ConsumerRecord]] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            for records in c.poll(timeout_ms=5).values():
                if sink is not None:
                    sink.setdefault(c.client_id, []).extend(records)
        if cond():
            return
    raise AssertionError("condition not reached")


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TopicPartition]]] = []

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("revoked", set(revoked)))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("assigned", set(assigned)))

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.calls.append(("lost", set(lost)))


def tps(*ps: int, topic: str = "t") -> set[TopicPartition]:
    return {TopicPartition(topic, p) for p in ps}


# ---------------------------------------------------------------- membership


def test_lone_member_gets_everything_at_its_first_poll(log: streamlog.Log) -> None:
    c = log.consumer("t", group_id="g", **FAST)
    assert c.assignment() == set()  # joining happens inside poll, as in Kafka
    c.poll(timeout_ms=0)
    assert c.assignment() == tps(0, 1, 2, 3, 4, 5)
    desc = log.describe_group("g")
    assert desc.state == "Stable" and desc.generation == 1 and desc.protocol == "range"
    assert [m.client_id for m in desc.members] == [c.client_id]
    c.close()
    assert log.describe_group("g").state == "Empty"


def test_two_members_share_and_every_record_is_delivered_once(log: streamlog.Log) -> None:
    produce(log, 300)
    r1, r2 = Recorder(), Recorder()
    c1 = log.consumer(group_id="g", **FAST)
    c1.subscribe(["t"], listener=r1)
    got: dict[str, list[streamlog.ConsumerRecord]] = {}
    poll_until([c1], lambda: bool(c1.assignment()), sink=got)
    c2 = log.consumer(group_id="g", **FAST)
    c2.subscribe(["t"], listener=r2)
    poll_until(
        [c1, c2],
        lambda: len(c1.assignment()) == 3 and len(c2.assignment()) == 3
        and sum(len(v) for v in got.values()) >= 300,
        sink=got,
    )
    assert c1.assignment() == tps(0, 1, 2) and c2.assignment() == tps(3, 4, 5)
    values = [r.value or b"" for rs in got.values() for r in rs]
    # auto-commit before the rebalance: the clean handover redelivers nothing
    assert sorted(values) == sorted(b"%d" % i for i in range(300))
    # eager: a member revokes everything before each rejoin, then gets its new share
    # (its first join has nothing to revoke and, as in Kafka, calls nothing)
    assert r1.calls == [
        ("assigned", tps(0, 1, 2, 3, 4, 5)),
        ("revoked", tps(0, 1, 2, 3, 4, 5)),
        ("assigned", tps(0, 1, 2)),
    ]
    assert r2.calls == [("assigned", tps(3, 4, 5))]
    c2.close()
    poll_until([c1], lambda: len(c1.assignment()) == 6)
    c1.close()


def test_cooperative_sticky_moves_only_what_must_move(log: streamlog.Log) -> None:
    cfg = dict(FAST, partition_assignment_strategy="cooperative-sticky")
    r1, r2 = Recorder(), Recorder()
    c1 = log.consumer(group_id="g", **cfg)
    c1.subscribe(["t"], listener=r1)
    poll_until([c1], lambda: bool(c1.assignment()))
    c2 = log.consumer(group_id="g", **cfg)
    c2.subscribe(["t"], listener=r2)
    poll_until([c1, c2], lambda: len(c2.assignment()) == 3)
    assert c1.assignment() == tps(0, 1, 2) and c2.assignment() == tps(3, 4, 5)
    # c1 never gave up 0-2 and was told only about what moved
    assert ("revoked", tps(3, 4, 5)) in r1.calls
    assert all(call[1] <= tps(3, 4, 5) for call in r1.calls if call[0] == "revoked")
    assert r1.calls[0] == ("assigned", tps(0, 1, 2, 3, 4, 5))
    # c2: the first round gives it nothing (unless the second round began before it
    # synced, as Kafka's REBALANCE_IN_PROGRESS does), the second the freed partitions
    assert r2.calls[-1] == ("assigned", tps(3, 4, 5))
    assert all(call == ("assigned", set()) for call in r2.calls[:-1])
    c1.close()
    c2.close()


def test_members_in_threads_never_share_a_partition(log: streamlog.Log) -> None:
    produce(log, 600)
    owned: dict[TopicPartition, str] = {}
    problems: list[str] = []
    lock = threading.Lock()
    counts: dict[str, int] = {}
    stop = threading.Event()

    class Exclusive(ConsumerRebalanceListener):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
            with lock:
                for tp in revoked:
                    if owned.get(tp) == self.name:
                        del owned[tp]

        def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
            self.on_partitions_revoked(lost)

        def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            with lock:
                for tp in assigned:
                    if tp in owned:
                        problems.append(f"{tp} given to {self.name} while {owned[tp]} owns it")
                    owned[tp] = self.name

    def run(name: str, lifetime: float) -> None:
        c = log.consumer(group_id="g", client_id=name, **FAST)
        c.subscribe(["t"], listener=Exclusive(name))
        end = time.monotonic() + lifetime
        while time.monotonic() < end and not stop.is_set():
            for tp, records in c.poll(timeout_ms=10).items():
                with lock:
                    if owned.get(tp) != name:
                        problems.append(f"{name} got records of {tp} owned by {owned.get(tp)}")
                    counts[name] = counts.get(name, 0) + len(records)
        c.close()

    threads = [
        threading.Thread(target=run, args=(f"m{i}", 1.0 + 0.4 * i)) for i in range(4)
    ]
    for i, t in enumerate(threads):
        t.start()
        time.sleep(0.1 * i)
    for t in threads:
        t.join(timeout=30)
    assert not problems, problems
    assert sum(counts.values()) >= 600


# ---------------------------------------------------------------- commits


def test_committed_offsets_resume_a_new_member(log: streamlog.Log) -> None:
    produce(log, 60)
    c = log.consumer("t", group_id="g", enable_auto_commit=False, **FAST)
    got: dict[str, list[streamlog.ConsumerRecord]] = {}
    poll_until([c], lambda: sum(len(v) for v in got.values()) == 60, sink=got)
    c.commit({TopicPartition("t", 0): OffsetAndMetadata(2, "meta")})
    assert c.committed(TopicPartition("t", 0)) == 2
    c.commit()  # every position
    for p in range(6):
        tp = TopicPartition("t", p)
        assert c.committed(tp) == log.partition("t", p).end_offset == c.position(tp)
    c.close()
    produce(log, 6)
    c2 = log.consumer("t", group_id="g", enable_auto_commit=False, **FAST)
    more: dict[str, list[streamlog.ConsumerRecord]] = {}
    poll_until([c2], lambda: sum(len(v) for v in more.values()) == 6, sink=more)
    assert sorted(r.value or b"" for rs in more.values() for r in rs) == [
        b"%d" % i for i in range(6)
    ]
    c2.close()


def test_commit_validation_and_misuse(log: streamlog.Log) -> None:
    plain = log.consumer("t")
    with pytest.raises(IllegalStateError):
        plain.commit()
    assert plain.committed(TopicPartition("t", 0)) is None
    plain.close()
    c = log.consumer("t", group_id="g", **FAST)
    c.poll(0)
    with pytest.raises(ValueError):
        c.commit({TopicPartition("t", 0): -1})
    with pytest.raises(TypeError):
        c.commit({TopicPartition("t", 0): "1"})
    with pytest.raises(TypeError):
        c.commit([TopicPartition("t", 0)])  # type: ignore[arg-type]
    c.close()


def test_commit_of_a_partition_owned_by_another_member_fails(log: streamlog.Log) -> None:
    c1 = log.consumer("t", group_id="g", **FAST)
    c2 = log.consumer("t", group_id="g", **FAST)
    poll_until([c1, c2], lambda: len(c1.assignment()) == 3 and len(c2.assignment()) == 3)
    theirs = next(iter(c2.assignment()))
    before = c1.committed(theirs)
    with pytest.raises(CommitFailedError):
        c1.commit({theirs: OffsetAndMetadata(1234)})
    assert c1.committed(theirs) == before
    c1.close()
    c2.close()


def test_member_that_stops_polling_is_removed_and_its_commit_fails(log: streamlog.Log) -> None:
    produce(log, 12)
    r = Recorder()
    c = log.consumer(group_id="g", max_poll_interval_ms=300, **FAST)
    c.subscribe(["t"], listener=r)
    poll_until([c], lambda: bool(c.assignment()))
    time.sleep(0.8)  # past max_poll_interval_ms: the heartbeat thread leaves the group
    assert log.describe_group("g").members == ()
    with pytest.raises(CommitFailedError):
        c.commit()
    c.poll(timeout_ms=0)  # rejoins, after on_partitions_lost
    assert ("lost", tps(0, 1, 2, 3, 4, 5)) in r.calls
    poll_until([c], lambda: len(c.assignment()) == 6)
    assert len(log.describe_group("g").members) == 1
    c.close()


def test_expired_member_loses_its_partitions_and_joins_again(log: streamlog.Log) -> None:
    """``_groupadmin.expire_member`` (streamlog.compat's ``expire_member``): the group
    rebalances at once; the expired member's commit fails, its next poll calls
    ``on_partitions_lost`` and it joins again under a new member id."""
    from streamlog.coordination import _groupadmin

    produce(log, 12)
    r1, r2 = Recorder(), Recorder()
    c1 = log.consumer(group_id="g", **FAST)
    c1.subscribe(["t"], listener=r1)
    c2 = log.consumer(group_id="g", **FAST)
    c2.subscribe(["t"], listener=r2)
    poll_until([c1, c2], lambda: len(c1.assignment()) == 3 and len(c2.assignment()) == 3)
    old_id = c1.group_metadata().member_id
    mine = c1.assignment()
    assert not _groupadmin.expire_member(log._manager, "g", "nobody")
    assert not _groupadmin.expire_member(log._manager, "no-such-group", old_id)
    assert _groupadmin.expire_member(log._manager, "g", old_id)
    assert old_id not in {m.member_id for m in log.describe_group("g").members}
    with pytest.raises(CommitFailedError):
        c1.commit({tp: OffsetAndMetadata(1) for tp in mine})
    r1.calls.clear()
    c1.poll(timeout_ms=0)
    assert r1.calls[0] == ("lost", mine)
    poll_until([c1, c2], lambda: len(c1.assignment()) == 3 and len(c2.assignment()) == 3)
    assert c1.group_metadata().member_id not in ("", old_id)
    c1.commit({tp: OffsetAndMetadata(1) for tp in c1.assignment()})
    c1.close()
    c2.close()


def test_commit_async_callbacks_run_in_call_order(log: streamlog.Log) -> None:
    produce(log, 6)
    c = log.consumer("t", group_id="g", enable_auto_commit=False, **FAST)
    poll_until([c], lambda: len(c.assignment()) == 6)
    seen: list[tuple[int, BaseException | None]] = []
    tp = TopicPartition("t", 0)
    for i in range(5):
        c.commit_async(
            {tp: OffsetAndMetadata(i)},
            lambda offsets, exc, i=i: seen.append((i, exc)),  # type: ignore[misc]
        )
    c.commit({tp: OffsetAndMetadata(7)})  # runs the earlier callbacks first
    assert seen == [(i, None) for i in range(5)]
    assert c.committed(tp) == 7
    c.close()


def test_auto_commit_happens_in_poll_after_the_interval(log: streamlog.Log) -> None:
    produce(log, 30)
    c = log.consumer("t", group_id="g", auto_commit_interval_ms=300, **FAST)
    got: dict[str, list[streamlog.ConsumerRecord]] = {}
    poll_until([c], lambda: sum(len(v) for v in got.values()) == 30, sink=got)
    tp = TopicPartition("t", 0)
    early = c.committed(tp)
    assert early is None or early < c.position(tp)  # not before the interval
    time.sleep(0.35)
    c.poll(timeout_ms=0)  # the interval elapsed: commit (asynchronously)
    deadline = time.monotonic() + 5
    while c.committed(tp) != c.position(tp) and time.monotonic() < deadline:
        c.poll(timeout_ms=10)
    assert c.committed(tp) == c.position(tp)
    produce(log, 6)
    poll_until([c], lambda: sum(len(v) for v in got.values()) == 36, sink=got)
    c.close()  # synchronous auto-commit on close
    with streamlog.open(log.path) as other:
        offsets = other.describe_group("g").offsets
    assert all(lag.lag == 0 for lag in offsets.values())


def test_standalone_consumer_commits_while_the_group_is_empty(log: streamlog.Log) -> None:
    produce(log, 6)
    c = log.consumer(group_id="g", enable_auto_commit=False, **FAST)
    c.assign([TopicPartition("t", 0)])
    c.commit({TopicPartition("t", 0): OffsetAndMetadata(1)})
    assert c.committed(TopicPartition("t", 0)) == 1
    member = log.consumer("t", group_id="g", **FAST)
    member.poll(0)
    with pytest.raises(CommitFailedError):
        c.commit({TopicPartition("t", 0): OffsetAndMetadata(2)})
    member.close()
    c.close()


# ---------------------------------------------------------------- subscriptions


def test_pattern_subscription_picks_up_a_new_topic(log: streamlog.Log) -> None:
    c = log.consumer(group_id="g", metadata_max_age_ms=100, **FAST)
    c.subscribe(pattern=r"ev-.*")
    log.create_topic("ev-a", 2)
    poll_until([c], lambda: c.assignment() == tps(0, 1, topic="ev-a"))
    log.create_topic("ev-b", 1)
    log.create_topic("other", 1)
    poll_until([c], lambda: c.assignment() == tps(0, 1, topic="ev-a") | tps(0, topic="ev-b"))
    c.close()


def test_added_partitions_trigger_a_rebalance(log: streamlog.Log) -> None:
    c = log.consumer("t", group_id="g", metadata_max_age_ms=100, **FAST)
    poll_until([c], lambda: len(c.assignment()) == 6)
    log.create_partitions("t", 8)
    poll_until([c], lambda: len(c.assignment()) == 8)
    assert log.describe_group("g").generation == 2
    c.close()


def test_unsubscribe_leaves_and_revokes(log: streamlog.Log) -> None:
    r = Recorder()
    c = log.consumer(group_id="g", **FAST)
    c.subscribe(["t"], listener=r)
    poll_until([c], lambda: len(c.assignment()) == 6)
    c.unsubscribe()
    assert r.calls[-1] == ("revoked", tps(0, 1, 2, 3, 4, 5))
    assert c.assignment() == set()
    assert log.describe_group("g").members == ()
    c.close()


def test_static_member_closes_and_returns_without_a_rebalance(log: streamlog.Log) -> None:
    a = log.consumer("t", group_id="g", group_instance_id="a", **FAST)
    b = log.consumer("t", group_id="g", group_instance_id="b", **FAST)
    poll_until([a, b], lambda: len(a.assignment()) == 3 and len(b.assignment()) == 3)
    gen = log.describe_group("g").generation
    mine = a.assignment()
    a.close()  # a static member does not leave
    assert len(log.describe_group("g").members) == 2
    a2 = log.consumer("t", group_id="g", group_instance_id="a", **FAST)
    poll_until([a2, b], lambda: bool(a2.assignment()))
    assert a2.assignment() == mine
    assert log.describe_group("g").generation == gen
    a2.close()
    b.close()


def test_static_member_expires_after_its_session(log: streamlog.Log) -> None:
    a = log.consumer("t", group_id="g", group_instance_id="a", **FAST)
    b = log.consumer("t", group_id="g", **FAST)
    poll_until([a, b], lambda: len(a.assignment()) == 3 and len(b.assignment()) == 3)
    a.close()
    start = time.monotonic()
    poll_until([b], lambda: len(b.assignment()) == 6, timeout=5)
    assert time.monotonic() - start >= 0.5  # waited for the session timeout (1 s)
    b.close()


def test_inconsistent_strategies_are_refused(log: streamlog.Log) -> None:
    a = log.consumer("t", group_id="g", partition_assignment_strategy="range", **FAST)
    a.poll(0)
    b = log.consumer("t", group_id="g", partition_assignment_strategy="roundrobin", **FAST)
    with pytest.raises(InconsistentGroupProtocolError):
        b.poll(0)
    both = log.consumer(
        "t", group_id="g", partition_assignment_strategy=["roundrobin", "range"], **FAST
    )
    poll_until([a, both], lambda: len(both.assignment()) == 3)
    assert log.describe_group("g").protocol == "range"
    for c in (a, b, both):
        c.close()


@pytest.mark.parametrize(
    "config",
    [
        {"group_id": "g", "session_timeout_ms": 0},
        {"group_id": "g", "heartbeat_interval_ms": 5000, "session_timeout_ms": 1000},
        {"group_id": "g", "partition_assignment_strategy": "nope"},
        {"group_id": "g", "partition_assignment_strategy": []},
        {"group_id": "g/x"},
        {"group_instance_id": "i"},
        {"enable_auto_commit": True},
        {"group_id": "g", "enable_auto_commit": "yes"},
    ],
)
def test_bad_group_config(log: streamlog.Log, config: dict[str, object]) -> None:
    with pytest.raises((ConfigError, ValueError)):
        log.consumer("t", **config)


# ---------------------------------------------------------------- administration


def test_group_administration(log: streamlog.Log) -> None:
    produce(log, 60)
    with pytest.raises(UnknownGroupError):
        log.describe_group("g")
    with pytest.raises(UnknownGroupError):
        log.delete_group("g")
    assert log.list_groups() == []
    c = log.consumer("t", group_id="g", **FAST)
    poll_until([c], lambda: len(c.assignment()) == 6)
    assert log.list_groups() == ["g"]
    with pytest.raises(GroupNotEmptyError):
        log.reset_offsets("g", "t", to="earliest")
    with pytest.raises(GroupNotEmptyError):
        log.delete_group("g")
    c.close()
    ends = {p: log.partition("t", p).end_offset for p in range(6)}
    desc = log.describe_group("g")
    assert desc.state == "Empty" and desc.members == ()
    assert {tp.partition: lag.committed for tp, lag in desc.offsets.items()} == ends
    tp0 = TopicPartition("t", 0)
    assert log.reset_offsets("g", "t", to="earliest", dry_run=True)[tp0] == 0
    assert log.describe_group("g").offsets[tp0].committed == ends[0]  # dry run: unchanged
    assert log.reset_offsets("g", "t", shift_by=-2)[tp0] == ends[0] - 2
    assert log.reset_offsets("g", "t", to=10**9)[tp0] == ends[0]  # clamped
    assert log.reset_offsets("g", "t", to=1, partitions=[0]) == {tp0: 1}
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    assert log.reset_offsets("g", "t", to_datetime=future)[tp0] == ends[0]
    past = datetime.datetime(2000, 1, 1)
    assert log.reset_offsets("g", "t", to_datetime=past)[tp0] == 0
    lag = log.describe_group("g").offsets[tp0]
    assert (lag.committed, lag.end_offset, lag.lag) == (0, ends[0], ends[0])
    with pytest.raises(ValueError):
        log.reset_offsets("g", "t")
    with pytest.raises(ValueError):
        log.reset_offsets("g", "t", to="middle")
    with pytest.raises(streamlog.UnknownTopicError):
        log.reset_offsets("g", "nope", to="earliest")
    log.delete_group("g")
    assert log.list_groups() == []
    with pytest.raises(UnknownGroupError):
        log.describe_group("g")


def test_consumer_metrics_and_lag(log: streamlog.Log) -> None:
    produce(log, 60)
    c = log.consumer("t", group_id="g", max_poll_records=5, **FAST)
    poll_until([c], lambda: len(c.assignment()) == 6)
    m = c.metrics()
    assert m["group"]["generation"] == 1 and len(m["group"]["assignment"]) == 6
    assert sum(m["records-lag"].values()) > 0
    assert c.group_metadata()["generation_id"] == 1
    c.close()


@pytest.mark.parametrize("fsync", [False, True])
def test_fsync_commits_decides_whether_a_commit_waits_for_the_disk(
    log: streamlog.Log, fsync: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlog._fs import fs

    c = log.consumer("t", group_id="g", enable_auto_commit=False, fsync_commits=fsync, **FAST)
    poll_until([c], lambda: len(c.assignment()) == 6)
    c.commit({TopicPartition("t", 0): OffsetAndMetadata(0)})  # creates the file
    synced: list[str | None] = []
    real = fs.sync

    def spy(fd: int, path: str | None = None) -> None:
        synced.append(path)
        real(fd, path)

    monkeypatch.setattr(fs, "sync", spy)
    c.commit({TopicPartition("t", 0): OffsetAndMetadata(1)})
    assert any(p and p.endswith("offsets.log") for p in synced) == fsync
    assert c.committed(TopicPartition("t", 0)) == 1
    monkeypatch.undo()
    c.close()


def test_close_from_another_thread_leaves_the_group(log: streamlog.Log) -> None:
    import os

    produce(log, 20)
    c = log.consumer("t", group_id="g", **FAST)
    got: list[streamlog.ConsumerRecord] = []

    def iterate() -> None:
        got.extend(c)  # blocks until closed

    t = threading.Thread(target=iterate)
    t.start()
    deadline = time.monotonic() + 10
    while len(got) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    c.close()
    t.join(timeout=10)
    assert not t.is_alive() and len(got) == 20
    assert log.describe_group("g").members == ()
    members_dir = os.path.join(log.path, "meta", "groups", "g", "members")
    assert os.listdir(members_dir) == []


def test_positions_of_unread_partitions_are_committed_too(log: streamlog.Log) -> None:
    # Kafka resolves every assigned partition's position in poll and commits them all,
    # so a partition nothing was read from yet does not fall back to the reset policy.
    with log.producer() as p:
        for i in range(5):
            p.send("t", b"%d" % i, partition=0)
    cfg = dict(FAST, max_poll_records=1)
    c = log.consumer("t", group_id="g", **cfg)
    assert c.poll(timeout_ms=1000)  # one record of partition 0; the others never fetched
    c.close()  # commits every position: 1 for partition 0, 0 for the others
    with log.producer() as p:
        p.send("t", b"while-away", partition=4)
    c2 = log.consumer("t", group_id="g", **dict(cfg, auto_offset_reset="latest"))
    got: dict[str, list[streamlog.ConsumerRecord]] = {}
    poll_until([c2], lambda: sum(len(v) for v in got.values()) >= 5, sink=got)
    assert sorted(r.value or b"" for rs in got.values() for r in rs) == [
        b"1", b"2", b"3", b"4", b"while-away"
    ]
    c2.close()


def test_commit_async_batches_but_reports_each_call(log: streamlog.Log) -> None:
    c1 = log.consumer("t", group_id="g", enable_auto_commit=False, **FAST)
    c2 = log.consumer("t", group_id="g", enable_auto_commit=False, **FAST)
    poll_until([c1, c2], lambda: len(c1.assignment()) == 3 and len(c2.assignment()) == 3)
    mine, theirs = min(c1.assignment()), min(c2.assignment())
    seen: list[tuple[int, bool]] = []
    for i in range(200):
        target = theirs if i == 100 else mine
        c1.commit_async(
            {target: OffsetAndMetadata(i)},
            lambda offsets, exc, i=i: seen.append((i, exc is None)),  # type: ignore[misc]
        )
    c1.commit({mine: OffsetAndMetadata(500)})
    assert seen == [(i, i != 100) for i in range(200)]
    assert c1.committed(mine) == 500 and c1.committed(theirs) != 100
    c1.close()
    c2.close()
