"""What a failed append reports is exactly what is in the log (docs/producer.md: a failed
send never takes an offset; a retry must not duplicate a batch that is already there).

``PartitionLog.append_many`` appends several batches under one lock hold. A batch is
all or nothing; when one fails after earlier ones were appended, ``PartialAppendError``
names those (``appended``) and why the rest failed (``error``, of the type the batch
alone would have raised); any other exception means no batch is in the log. Found by
outside testing: ENOSPC allocating the second batch's new segment failed both batches
while the first was stored and readable. The same holds for every step after a batch
is published (its index entry, the seal's cut, retention, a sync).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamlog._config import TopicConfig
from streamlog._fs import INDEX_SUFFIX, LOG_SUFFIX, offset_to_name
from streamlog.errors import StorageIOError
from streamlog.storage import AppendResult, PartitionLog, prepare_batch
from streamlog.storage._codec import PreparedBatch
from streamlog.storage._partition import RETENTION_CHECK_INTERVAL_MS, PartialAppendError
from tests.reliability._faults import ERRNOS, FaultInjector


def cfg(**kafka: object) -> TopicConfig:
    return TopicConfig.from_dict(kafka)


def value(tag: str, i: int, size: int = 900) -> bytes:
    v = f"{tag}-{i}".encode()
    return v + b"." * (size - len(v))


def batch(tag: str, i: int, size: int = 900) -> PreparedBatch:
    return prepare_batch([value(tag, i, size)], timestamps=i)


def contents(log: PartitionLog) -> dict[int, bytes | None]:
    out: dict[int, bytes | None] = {}
    off = log.log_start_offset
    while off < log.end_offset:
        batches = log.read(off)
        if not batches:
            break
        for b in batches:
            for r in b.records():
                if r[0] >= off:
                    out[r[0]] = r[3]
        off = batches[-1].last_offset + 1
    return out


def _is(path: str) -> Any:
    """A FaultInjector filter: only calls on a file whose path ends with ``path``."""

    def only(_name: str, args: tuple[Any, ...]) -> bool:
        return any(isinstance(a, str) and a.endswith(path) for a in args)

    return only


@pytest.fixture
def ppath(tmp_path: Path) -> str:
    return str(tmp_path / "t" / "0")


@pytest.fixture
def logs(ppath: str) -> Iterator[list[PartitionLog]]:
    opened: list[PartitionLog] = []
    yield opened
    for log in opened:
        log.close()


def test_enospc_creating_the_second_batchs_segment_reports_the_first(
    ppath: str, logs: list[PartitionLog]
) -> None:
    """The outside report: b1 fits the active segment, b2 needs a new one, whose
    allocation fails with ENOSPC. b1 is in the log and must be reported appended."""
    log = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    logs.append(log)
    log.append_many([batch("old", i) for i in range(3)])  # 3 x ~1 KiB: b2 needs a roll
    b1, b2 = batch("b", 1), batch("b", 2)
    new_segment = offset_to_name(4) + LOG_SUFFIX  # b1 takes offset 3, b2 rolls at 4
    with FaultInjector(1, errno.ENOSPC, methods=("fallocate",), only=_is(new_segment)) as f:
        with pytest.raises(PartialAppendError) as info:
            log.append_many([b1, b2])
    assert f.fired == ["fallocate"]
    e = info.value
    assert [(r.base_offset, r.last_offset) for r in e.appended] == [(3, 3)]
    # the failing batch's error, as it would have been raised alone
    assert isinstance(e.error, StorageIOError) and e.error.errno == errno.ENOSPC
    assert isinstance(e, StorageIOError) and e.errno == errno.ENOSPC  # old callers
    assert log.end_offset == 4
    got = contents(log)
    assert got[3] == value("b", 1) and value("b", 2) not in got.values()
    # a retry of the failed batch alone takes the next offset: nothing is duplicated
    assert log.append(b2).base_offset == 4
    assert list(contents(log).values()).count(value("b", 1)) == 1
    log._check()
    log.close()
    again = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    logs.append(again)
    assert contents(again) == {
        **{i: value("old", i) for i in range(3)},
        3: value("b", 1),
        4: value("b", 2),
    }


def test_failure_before_any_batch_is_the_plain_error(ppath: str, logs: list[PartitionLog]) -> None:
    """Nothing appended: the error the caller saw before (not a PartialAppendError)."""
    log = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    logs.append(log)
    log.append_many([batch("old", i) for i in range(3)])
    # the first batch needs the new segment (offset 3): nothing can be appended
    new_segment = offset_to_name(3) + LOG_SUFFIX
    with FaultInjector(1, errno.ENOSPC, methods=("fallocate",), only=_is(new_segment)):
        with pytest.raises(StorageIOError) as info:
            log.append_many([batch("x", 0, 2000), batch("x", 1)])
    assert not isinstance(info.value, PartialAppendError)
    assert info.value.errno == errno.ENOSPC
    assert log.end_offset == 3
    assert log.append(batch("x", 2)).base_offset == 3  # the roll completes
    log._check()


def test_index_growth_failing_after_publication_is_not_a_failed_append(
    ppath: str, logs: list[PartitionLog]
) -> None:
    """The batch is published before its index entry is written: ENOSPC growing the
    offset index must not fail an append that readers can already see (the missed
    entry is added by a later append; recovery rebuilds indexes anyway)."""
    log = PartitionLog(ppath, cfg(**{"index.interval.bytes": 100}))
    logs.append(log)
    index = offset_to_name(0) + INDEX_SUFFIX
    with FaultInjector(1, errno.ENOSPC, persistent=True, only=_is(index)) as f:
        results = [log.append(batch("i", i, 300)) for i in range(5)]
    assert f.fired, "the index never grew: the test does not test anything"
    assert [r.base_offset for r in results] == list(range(5))
    for i in range(5, 10):
        log.append(batch("i", i, 300))
    assert contents(log) == {i: value("i", i, 300) for i in range(10)}
    assert log.segments()[0].offset_index.count > 0  # entries added once it could grow
    log._check()


def test_retention_failing_after_an_append_is_not_a_failed_append(
    ppath: str, logs: list[PartitionLog]
) -> None:
    """Retention runs from append once a minute, after the batches are published: its
    failure (here the sync of the new log start) must not fail the append; and a
    failed move of the log start is undone (nothing deleted, nothing hidden)."""
    now = [1_700_000_000.0]
    log = PartitionLog(
        ppath, cfg(**{"segment.bytes": 4096, "retention.ms": 1000}), clock=lambda: now[0]
    )
    logs.append(log)
    log.append_many([batch("r", i) for i in range(12)])
    assert len(log.segments()) > 2
    now[0] += 3600 + RETENTION_CHECK_INTERVAL_MS / 1000
    with FaultInjector(1, errno.EIO, methods=("msync",)) as f:
        r = log.append(prepare_batch([b"late"], timestamps=int(now[0] * 1000)))
    assert f.fired == ["msync"]
    assert r.base_offset == 12
    assert log.log_start_offset == 0  # the failed move of the start was undone
    got = contents(log)
    assert got[12] == b"late" and len(got) == 13
    with pytest.raises(StorageIOError, match="reopen"):
        log.enforce_retention()  # a failed sync fails the partition (fsyncgate)
    with pytest.raises(StorageIOError):
        log.close()  # (cannot make its appends durable either; still closes)
    again = PartitionLog(
        ppath, cfg(**{"segment.bytes": 4096, "retention.ms": 1000}), clock=lambda: now[0]
    )
    logs.append(again)
    assert again.enforce_retention() > 0  # reopened: it works
    assert again.log_start_offset > 0
    again._check()


def test_failed_sync_reports_the_batches_it_could_not_make_durable(
    ppath: str, logs: list[PartitionLog]
) -> None:
    log = PartitionLog(ppath, cfg())
    logs.append(log)
    log.append(batch("s", 0))
    with FaultInjector(1, errno.EIO, methods=("sync",)):
        with pytest.raises(PartialAppendError) as info:
            log.append_many([batch("s", 1), batch("s", 2)], sync=True)
    e = info.value
    assert [r.base_offset for r in e.appended] == [1, 2]  # in the log, not durable
    assert e.errno == errno.EIO and isinstance(e.error, StorageIOError)
    assert contents(log) == {i: value("s", i) for i in range(3)}
    with pytest.raises(StorageIOError, match="reopen"):
        log.append(batch("s", 3))  # fsyncgate: the partition is failed all the same
    with pytest.raises(StorageIOError):
        log.close()


def test_failed_cut_of_a_sealed_segment_does_not_fail_the_roll(
    ppath: str, logs: list[PartitionLog]
) -> None:
    log = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    logs.append(log)
    with FaultInjector(1, errno.EIO, methods=("truncate",)) as f:
        results = log.append_many([batch("c", i) for i in range(6)])
    assert f.fired == ["truncate"]
    assert [r.base_offset for r in results] == list(range(6))
    assert contents(log) == {i: value("c", i) for i in range(6)}
    log._check()
    log.close()
    again = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    logs.append(again)
    assert contents(again) == {i: value("c", i) for i in range(6)}
    again._check()


def test_failed_sync_of_a_new_log_start_changes_nothing(
    ppath: str, logs: list[PartitionLog]
) -> None:
    log = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    logs.append(log)
    log.append_many([batch("d", i) for i in range(8)])
    segments = len(log.segments())
    for new_start in (6, 1):  # whole segments below it, and inside the first segment
        with FaultInjector(1, errno.EIO, methods=("msync",)):
            with pytest.raises(StorageIOError):
                log.delete_records(new_start)
        assert log.log_start_offset == 0
        assert len(log.segments()) == segments
        assert contents(log) == {i: value("d", i) for i in range(8)}
        assert log.state.durable() == (0, log.state.durable()[1])  # type: ignore[index]
        with pytest.raises(StorageIOError, match="reopen"):
            log.delete_records(new_start)  # failed (fsyncgate) until reopened
        with contextlib.suppress(StorageIOError):
            log.close()  # (raises if it had appends to make durable)
        log = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
        logs.append(log)
    assert log.delete_records(6) == 6  # reopened: it works


def test_failed_unlink_after_the_start_moved_is_not_a_failed_delete(
    ppath: str, logs: list[PartitionLog]
) -> None:
    """Once the new log start is durable the records are deleted: a file that cannot be
    unlinked is left for later (the next retention pass, or the next open), its
    descriptors are released, and the call reports the deletion it made."""
    fds = set(os.listdir("/proc/self/fd"))
    log = PartitionLog(ppath, cfg(**{"segment.bytes": 4096}))
    log.append_many([batch("u", i) for i in range(12)])
    assert len(log.segments()) > 2
    with FaultInjector(1, errno.EIO, methods=("unlink",)) as f:
        assert log.delete_records(10) == 10
    assert f.fired == ["unlink"]
    assert log.log_start_offset == 10
    assert contents(log) == {10: value("u", 10), 11: value("u", 11)}
    assert log._leftovers
    log.enforce_retention()  # retries the leftovers
    assert not log._leftovers
    names = sorted(os.listdir(ppath))
    assert offset_to_name(0) + LOG_SUFFIX not in names
    log.close()
    assert set(os.listdir("/proc/self/fd")) == fds, "a deleted segment kept its descriptors"


@pytest.mark.parametrize("errname", ["ENOSPC", "EIO"])
def test_every_batch_is_reported_as_it_is(ppath: str, errname: str) -> None:
    """The class test: a fault at every k-th facade call during an append of several
    batches across rolls. Every batch is either reported appended (and readable at
    its offsets, then and after reopening) or reported failed (and absent); offsets
    stay dense; no descriptor is left behind."""
    rng = random.Random(7)
    conf = cfg(**{"segment.bytes": 4096, "index.interval.bytes": 256})
    k = 1
    fired = 0
    while True:
        path = f"{ppath}-{k}"
        fds = set(os.listdir("/proc/self/fd"))
        log = PartitionLog(path, conf)
        expected: dict[int, bytes] = {}
        for r in log.append_many([batch("pre", i, 700) for i in range(4)]):
            expected[r.base_offset] = value("pre", r.base_offset, 700)
        sizes = [rng.choice([300, 900, 1500]) for _ in range(5)]
        batches = [batch(f"k{k}", i, sizes[i]) for i in range(5)]
        appended: list[AppendResult] = []
        with FaultInjector(k, ERRNOS[errname]) as f:
            try:
                appended = log.append_many(batches)
            except PartialAppendError as e:
                assert e.appended, "a PartialAppendError names at least one batch"
                assert isinstance(e.error, StorageIOError), repr(e.error)
                appended = e.appended
            except StorageIOError:
                appended = []
        for i, r in enumerate(appended):
            expected[r.base_offset] = value(f"k{k}", i, sizes[i])
        failed = {value(f"k{k}", i, sizes[i]) for i in range(len(appended), 5)}
        for view in ("after the fault",):
            got = contents(log)
            assert got == expected, f"k={k} {f.fired} {view}: {sorted(got)} != {sorted(expected)}"
            assert not failed & set(got.values())
        try:
            log.close()
        except StorageIOError:
            pass  # (a failed earlier sync: the partition is failed)
        assert set(os.listdir("/proc/self/fd")) == fds, f"k={k}: descriptors left"
        again = PartitionLog(path, conf, recover=True)
        try:
            got = contents(again)
            assert got == expected, f"k={k} {f.fired} after reopening"
            nxt = again.append(batch("next", 0)).base_offset
            assert nxt == (max(expected) + 1 if expected else 0)
        finally:
            again.close()
        if not f.fired:
            break
        fired += 1
        k += 1
    assert fired > 20


def test_failed_unlock_is_not_a_failed_append(ppath: str, logs: list[PartitionLog]) -> None:
    """Found by the class test above: ``flock(LOCK_UN)`` failing after the batches were
    appended failed the append. Now the lock's descriptor is closed instead (which
    drops the lock whatever flock said) and opened again at the next acquire."""
    import fcntl

    log = PartitionLog(ppath, cfg())
    logs.append(log)
    unlock = FaultInjector(1, errno.EIO, only=lambda n, a: n == "flock" and a[1] == fcntl.LOCK_UN)
    with unlock:
        r = log.append(batch("l", 0))
    assert unlock.fired == ["flock"]
    assert r.base_offset == 0 and contents(log) == {0: value("l", 0)}
    other = PartitionLog(ppath, cfg(), lock_timeout=0.5)  # the lock is free for others
    logs.append(other)
    assert other.append(batch("l", 1)).base_offset == 1
    assert log.append(batch("l", 2)).base_offset == 2  # and ours works again
    assert contents(log) == {i: value("l", i) for i in range(3)}
