"""I/O errors at the k-th facade call (reliability plan T11, T12), SQLite style.

A scripted workload (open, appends with and without sync, roll, delete_records,
retention, a commit, a topic creation, producers with ``acks="all"`` and
``acks=1``, flush, close) runs with ``ENOSPC``, ``EIO``, ``EROFS`` or ``EACCES``
injected at the k-th call of ``streamlog._fs.fs``: once (transient) or at every
call from the k-th on (persistent), for k = 1, 2, ... until the workload
completes without reaching the k-th call. Every operation runs even after an
earlier one failed. Checked:

- every error a call raises is a streamlog error carrying the OS error
  (``StorageIOError`` is an ``OSError`` with its errno), never a bare
  ``OSError``, ``ValueError``, ``BufferError``... and never a wrong diagnosis
  (``MetadataCorruptError`` for an I/O error);
- no acknowledgement with a sync (``sync=True``, ``flush()``, ``acks="all"``)
  for a partition after a sync of its data failed in that handle (fsyncgate:
  the kernel may have dropped the pages, a retry would lie);
- after the fault clears: open succeeds, every record whose append returned is
  there at its offset (the page cache kept them: no process died), offsets are
  dense, ``check`` is clean after recovery, appends continue, and the
  committed offset is at least the last acknowledged one;
- every batch of an append (``append``, and ``append_many`` of batches that
  cross a roll) is reported as it is: appended (returned, or named by
  ``PartialAppendError.appended``) and then there at its offset, or failed and
  then absent: a failed append never takes an offset;
- no descriptor is left behind: after the workload (every open, close and
  operation in it, whether it failed or not) the process holds the
  descriptors it held before.

The loop runs in a child process, so a SIGBUS or a segfault would be counted
rather than kill the test run. ``test_real_full_filesystem`` fills a 1 MiB
tmpfs (root only).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import pytest

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition
from streamlog.coordination._offsets import OffsetStore
from streamlog.errors import MetadataCorruptError, StorageIOError, StreamlogError
from streamlog.storage import AppendResult, PartitionLog, prepare_batch
from streamlog.storage._partition import PartialAppendError
from tests._helpers import mount_tmpfs
from tests._procs import call_in_child, last_json

from ._faults import ERRNOS, FaultInjector
from ._figures import record
from ._verify import Acks, check_continues, read_partition
from .test_regressions import _PARTITIONS, _fill_unsynced, _verify_all

TOPIC = "t"
GROUP = "g"
T = TypeVar("T")
CONFIG = {"segment.bytes": 4096, "index.interval.bytes": 128, "retention.bytes": 8192}


@dataclass
class FaultRun:
    fired: bool
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    refused_after_failed_sync: int = 0
    # values of batches whose append was reported failed: they must not be in the log
    absent: dict[tuple[str, int], set[bytes]] = field(default_factory=dict)
    partial_appends: int = 0  # PartialAppendError raised (some batches in, some not)


# Descriptors the workload may leave open: none (OffsetStore.close used to keep the
# offsets.lock descriptor of its first commit, one per store that wrote; fixed).
KNOWN_FD_LEAKS: tuple[str, ...] = ()


def open_fds() -> dict[int, str]:
    """This process's descriptors and what they name."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # (the descriptor listdir itself used)
    return out


def leaked(before: dict[int, str], after: dict[int, str]) -> list[str]:
    """Descriptors open in ``after`` and not in ``before``, but the known leaks."""
    return sorted(
        path
        for fd, path in after.items()
        if before.get(fd) != path and not (KNOWN_FD_LEAKS and path.endswith(KNOWN_FD_LEAKS))
    )


def make_golden(path: str) -> None:
    with streamlog.open(path) as log:
        log.create_topic(TOPIC, 2, CONFIG)
        for i in range(30):
            log.partition(TOPIC, i % 2).append(prepare_batch([b"g%d" % i] * 3, timestamps=i))


def _sync_failed(faults: FaultInjector, pdir: str, upto: int | None = None) -> bool:
    """Did a sync of this partition's data (segment, index or directory) fail (among the
    first ``upto`` failed syncs)?"""
    for path in faults.failed_syncs[:upto]:
        if path == pdir:
            return True
        if os.path.dirname(path) == pdir and path.endswith((".log", ".index", ".timeindex")):
            return True
    return False


def _clear(e: BaseException) -> bool:
    """A streamlog error carrying an OS error (itself a StorageIOError, or caused by one)."""
    if isinstance(e, MetadataCorruptError) or not isinstance(e, StreamlogError):
        return False
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, StorageIOError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _scripted(
    root: str, acks: Acks, faults: FaultInjector, run: FaultRun, variant: int = 0
) -> None:
    """The workload; every call is attempted, failures recorded in ``run``."""

    failed_before = [0]  # failed syncs injected before the current operation started
    ok_last = [True]  # whether the last attempt returned

    def attempt(what: str, fn: Callable[[], T], *, new_op: bool = True) -> tuple[bool, T | None]:
        if new_op:
            failed_before[0] = len(faults.failed_syncs)
        try:
            result = fn()
            ok_last[0] = True
            return True, result
        except Exception as e:
            ok_last[0] = False
            if not _clear(e):
                run.violations.append(f"{what}: unclear error {e!r}")
            run.errors.append(f"{what}: {type(e).__name__}")
            return False, None

    def acked(tp: tuple[str, int], pdir: str, base: int, values: list[bytes], sync: bool) -> None:
        acks.append(tp, base, values, durable=False)
        if sync:
            if _sync_failed(faults, pdir, failed_before[0]):
                run.violations.append(f"{tp}: acknowledged with a sync after a failed sync")
            acks.synced_all(tp)

    def appended(
        what: str, p: PartitionLog, values: list[list[bytes]], sync: bool
    ) -> list[AppendResult]:
        """Append one batch per item of ``values`` (``append_many`` if several); the
        results of those reported appended. The others are reported failed and go into
        ``run.absent``."""
        batches = [prepare_batch(v) for v in values]
        results: list[AppendResult] = []

        def go() -> None:
            try:
                if len(batches) == 1:
                    results.append(p.append(batches[0], sync=sync))
                else:
                    results.extend(p.append_many(batches, sync=sync))
            except PartialAppendError as e:
                if not e.appended or len(e.appended) > len(batches):
                    run.violations.append(f"{what}: PartialAppendError naming {e.appended}")
                if not isinstance(e.error, StreamlogError):
                    run.violations.append(f"{what}: the failing batch's error {e.error!r}")
                run.partial_appends += 1
                results.extend(e.appended)
                raise

        attempt(what, go)
        tp = (TOPIC, int(os.path.basename(p.path)))
        for i, v in enumerate(values):
            if i >= len(results):
                run.absent.setdefault(tp, set()).update(v)
        return results

    ok, log = attempt("open", lambda: streamlog.open(root))
    if log is None:
        return
    store: OffsetStore | None = None
    try:
        for i in range(8 + 6 * variant):
            tp = (TOPIC, i % 2)
            sync = i % 3 == 2
            ok, p = attempt("partition", partial(log.partition, *tp))
            if p is None:
                continue
            values = [b"w%d-%d" % (i, j) + b"x" * (150 + 100 * variant) for j in range(3)]
            res = appended("append", p, [values], sync)
            p._wait_for_flushes()  # a deterministic order of calls
            if res:
                # (with sync=True, a PartialAppendError names a batch in the log but
                # not durable: acknowledged without a sync)
                acked(tp, p.path, res[0].base_offset, values, sync and ok_last[0])
            if sync and not ok_last[0] and _sync_failed(faults, p.path):
                run.refused_after_failed_sync += 1
            if i in (2, 6):
                # several batches under one lock hold, across a roll (segment.bytes 4096)
                many = [
                    [b"m%d-%d-%d" % (i, n, j) + b"y" * (400 + 100 * variant) for j in range(3)]
                    for n in range(4)
                ]
                got = appended("append_many", p, many, False)
                p._wait_for_flushes()
                for r, v in zip(got, many):
                    acked(tp, p.path, r.base_offset, v, False)
            if i == 3:
                attempt("roll", p.roll)
                p._wait_for_flushes()
            if i == 5:
                start = p.log_start_offset
                ok, new = attempt("delete_records", partial(p.delete_records, start + 2))
                if new is not None:
                    acks.start_floor[tp] = max(acks.start_floor.get(tp, 0), new)
        store = OffsetStore(root, GROUP)
        acks.commit_attempted = 7
        s = store
        ok, _ = attempt(
            "commit",
            lambda: s.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(7, "")}, sync=True),
        )
        if ok:
            acks.commits.append(7)
        ok, _ = attempt("create_topic", lambda: log.create_topic("new", 1))
        if ok:
            acks.topics.add("new")
        for level in ("all", 1):
            tp = (TOPIC, 1)
            ok, prod = attempt("producer", partial(log.producer, acks=level))
            if prod is None:
                continue
            try:
                value = b"prod-%s" % str(level).encode()
                failed_before[0] = len(faults.failed_syncs)  # the operation starts at send
                # (an I/O error reading the topic's metadata is raised by send itself)
                ok, fut = attempt(
                    "send", partial(prod.send, TOPIC, value, partition=1), new_op=False
                )
                if fut is None:
                    continue
                ok, md = attempt(
                    f"produce acks={level}", partial(fut.result, timeout=30), new_op=False
                )
                ok, pl = attempt("partition", lambda: log.partition(*tp), new_op=False)
                if md is not None and pl is not None:
                    acked(tp, pl.path, md.offset, [value], level == "all")
                elif level == "all" and pl is not None and _sync_failed(faults, pl.path):
                    run.refused_after_failed_sync += 1
            finally:
                attempt("producer close", prod.close)
        ok, p0 = attempt("partition", lambda: log.partition(TOPIC, 0))
        if p0 is not None:
            attempt("retention", lambda: p0.enforce_retention(now_ms=10**13))
            p0._wait_for_flushes()
            ok, _ = attempt("flush", p0.flush)
            if ok and _sync_failed(faults, p0.path) and p0._unsynced:
                run.violations.append("flush returned after a failed sync")
    finally:
        if store is not None:
            attempt("store close", store.close)
        attempt("close", log.close)


def fault_run(
    golden: str, top: str, k: int, err: int, persistent: bool, variant: int = 0
) -> FaultRun:
    if os.path.exists(top):
        shutil.rmtree(top)
    os.makedirs(top)
    root = os.path.join(top, "data")
    shutil.copytree(golden, root)
    acks = Acks()
    acks.topics.add(TOPIC)
    with streamlog.open(root) as log:
        for q in range(2):
            view = read_partition(log.partition(TOPIC, q))
            for off, v in view.records.items():
                acks.append((TOPIC, q), off, [v], durable=True)
    faults = FaultInjector(k, err, persistent=persistent)
    run = FaultRun(fired=False)
    before = open_fds()
    with faults:
        _scripted(root, acks, faults, run, variant)
    run.fired = bool(faults.fired)
    what = f"k={k} {errno.errorcode[err]} {'persistent' if persistent else 'transient'}: "
    left = leaked(before, open_fds())
    if left:
        # every open and close of the workload ran, failed or not: nothing may stay open
        run.violations.append(f"{what}descriptors left open ({faults.fired}): {left[:6]}")
    for path in faults.resynced:
        run.violations.append(f"synced again after its sync failed (fsyncgate): {path}")
    try:
        _verify_after(root, acks, what, run.absent)
    except AssertionError as e:
        run.violations.append(str(e))
    return run


def _verify_after(
    root: str, acks: Acks, what: str, absent: dict[tuple[str, int], set[bytes]] | None = None
) -> None:
    with streamlog.open(root) as log:
        topics = set(log.topics())
        assert acks.topics <= topics, f"{what}topics lost: {acks.topics - topics}"
        for q in range(2):
            tp = (TOPIC, q)
            p = log.partition(*tp)
            view = read_partition(p)
            assert view.holes == 0, f"{what}{tp}: corrupt batches"
            floor = acks.start_floor.get(tp, 0)
            assert view.start >= floor, f"{what}{tp}: start {view.start} < {floor}"
            written = acks.written.get(tp, {})
            lost = sorted(
                o for o in written if o >= view.start and view.records.get(o) != written[o]
            )
            assert not lost, f"{what}{tp}: written records lost or changed: {lost[:10]}"
            assert sorted(view.records) == list(range(view.start, view.end)), (
                f"{what}{tp}: not dense"
            )
            there = sorted(o for o, v in view.records.items() if v in (absent or {}).get(tp, ()))
            assert not there, f"{what}{tp}: appends reported failed are in the log at {there}"
            check_continues(p)
        with OffsetStore(root, GROUP) as store:
            c = store.committed(TopicPartition(TOPIC, 0))
            if acks.commits:
                assert c is not None and c.offset >= acks.commits[-1], f"{what}commit lost"
    report = streamlog.check(root)
    assert report.ok, f"{what}check after the fault cleared:\n{report}"


def run_fault_loop(
    tmp: str,
    errnames: list[str],
    modes: list[str],
    *,
    stride: int = 1,
    seed: int = 0,
    variant: int = 0,
) -> dict[str, int]:
    """k = 1, 1+stride, ... until the workload completes, for every errno and mode."""
    golden = os.path.join(tmp, "golden")
    if not os.path.exists(golden):
        make_golden(golden)
    rng = random.Random(seed)
    figs = {
        "runs": 0,
        "faults_injected": 0,
        "violations": 0,
        "refused_after_failed_sync": 0,
        "partial_appends": 0,
    }
    problems: list[str] = []
    for name in errnames:
        for mode in modes:
            k = 1 + (rng.randrange(stride) if stride > 1 else 0)
            while True:
                run = fault_run(
                    golden, os.path.join(tmp, "run"), k, ERRNOS[name], mode == "persistent", variant
                )
                figs["runs"] += 1
                if not run.fired:
                    break
                figs["faults_injected"] += 1
                figs["refused_after_failed_sync"] += run.refused_after_failed_sync
                figs["partial_appends"] += run.partial_appends
                if run.violations:
                    figs["violations"] += len(run.violations)
                    problems.extend(f"{name} {mode} k={k}: {v}" for v in run.violations[:3])
                k += stride
    if problems:
        raise AssertionError("\n".join(problems[:20]))
    return figs


def _in_child(args: dict[str, object], timeout: float) -> tuple[int, dict[str, int], str]:
    """Run ``run_fault_loop(**args)`` in a child process; returns (rc, figures, stderr)."""
    proc = call_in_child("tests.reliability.test_io_errors", "run_fault_loop", args, timeout)
    figs: dict[str, int] = {}
    if proc.returncode == 0:
        figs = last_json(proc.stdout)
    return proc.returncode, figs, proc.stderr


def test_fault_loop(scratch: str) -> None:
    """EIO transient at every k; ENOSPC, EROFS, EACCES and persistent EIO at sampled k."""
    t0 = time.monotonic()
    total: dict[str, int] = {}
    crashes = 0
    for args in (
        {"errnames": ["EIO"], "modes": ["transient"], "stride": 2},
        {"errnames": ["ENOSPC", "EROFS", "EACCES"], "modes": ["transient"], "stride": 7},
        {"errnames": ["EIO", "ENOSPC"], "modes": ["persistent"], "stride": 9},
    ):
        tmp = tempfile.mkdtemp(dir=scratch)
        rc, figs, err = _in_child({"tmp": tmp, **args, "seed": 1}, timeout=600)
        if rc < 0:
            crashes += 1
        assert rc == 0, f"fault loop {args} ended with {rc}:\n{err[-4000:]}"
        for key, v in figs.items():
            total[key] = total.get(key, 0) + v
    print(
        f"\nI/O faults: {total}, child crashes (SIGBUS/SIGSEGV) {crashes}; "
        f"{time.monotonic() - t0:.1f}s"
    )
    record("T12 I/O error loop", **total, crashes=crashes)
    assert total["faults_injected"] >= 200


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_fault_loop_soak(scratch: str) -> None:
    """Every errno x transient/persistent x every k, for three workloads."""
    total: dict[str, int] = {}
    crashes = 0
    for variant in range(3):
        for name in ERRNOS:
            tmp = tempfile.mkdtemp(dir=scratch)
            args = {"tmp": tmp, "errnames": [name], "modes": ["transient", "persistent"]}
            rc, figs, err = _in_child({**args, "variant": variant}, timeout=3600)
            if rc < 0:
                crashes += 1
            assert rc == 0, f"{name} variant {variant} ended with {rc}:\n{err[-4000:]}"
            for key, v in figs.items():
                total[key] = total.get(key, 0) + v
    print(f"\nI/O faults soak: {total}, crashes {crashes}")
    record("T12 I/O error loop", **total, crashes=crashes)


# ---------------------------------------------------------------- a failed close


@pytest.mark.parametrize(
    ("err", "methods"),
    [
        (errno.EMFILE, ("sync_dir",)),
        (errno.EIO, ("sync_dir",)),
        (errno.EIO, ("sync",)),
        (errno.EIO, ("close",)),
        (errno.EIO, ("flock",)),
        (errno.EMFILE, ("open", "sync_dir")),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else errno.errorcode[v],
)
def test_failed_close_releases_every_descriptor(
    tmp_path: os.PathLike[str], err: int, methods: tuple[str, ...]
) -> None:
    """Every call of ``methods`` fails while a handle on many partitions closes (found by
    outside testing: an EMFILE in the close's directory syncs). Every map and
    descriptor is released all the same, the first error is raised once (a second
    close is a no-op), a directory whose sync failed is not marked clean (fsyncgate),
    and the next open has every record."""
    root = os.path.join(os.fspath(tmp_path), "data")
    before = open_fds()
    log = _fill_unsynced(root)
    assert len(open_fds()) - len(before) > 6 * _PARTITIONS
    with FaultInjector(1, err, persistent=True, methods=methods) as faults:
        with pytest.raises(OSError) as info:
            log.close()
        log.close()  # a no-op: no second error
    assert faults.fired
    assert info.value.errno == err
    assert leaked(before, open_fds()) == [], "descriptors left after a failed close"
    clean = os.path.exists(os.path.join(root, "meta", "clean-shutdown"))
    assert not (clean and faults.failed_syncs), "marked clean after a failed sync"
    recovered = _verify_all(root)["recovered"]
    assert recovered == (0 if clean else _PARTITIONS)


# ---------------------------------------------------------------- a real full disk


def _disk_full_child(mnt: str) -> dict[str, int]:
    """Fill the tmpfs with acks="all" records until ENOSPC, free space, go on (child body)."""
    root = os.path.join(mnt, "data")
    ballast = os.path.join(mnt, "ballast")
    acked: list[tuple[int, bytes]] = []
    with streamlog.open(root) as log:
        log.create_topic(TOPIC, 1, {"segment.bytes": 64 * 1024})
    with open(ballast, "wb") as f:  # most of the space, so the log fills it quickly
        f.write(b"\0" * (600 * 1024))
    enospc = 0
    log = streamlog.open(root)
    try:
        with log.producer(acks="all") as prod:
            for i in range(100_000):
                value = b"%06d" % i + os.urandom(500)
                try:
                    md = prod.send(TOPIC, value).result(timeout=30)
                except StorageIOError as e:
                    assert e.errno == errno.ENOSPC, e
                    enospc += 1
                    break
                acked.append((md.offset, value))
        assert enospc, "the disk never filled"
    finally:
        try:
            log.close()
        except StorageIOError:
            pass
    os.unlink(ballast)
    with streamlog.open(root) as log, log.producer(acks="all") as prod:
        for i in range(50):
            value = b"after-%d" % i
            md = prod.send(TOPIC, value).result(timeout=30)
            acked.append((md.offset, value))
        p = log.partition(TOPIC, 0)
        view = read_partition(p)
        for off, value in acked:
            assert view.records.get(off) == value, f"acknowledged offset {off} lost"
        assert sorted(view.records) == list(range(view.start, view.end))
    report = streamlog.check(root)
    assert report.ok, str(report)
    return {"acked": len(acked), "enospc": enospc}


def test_real_full_filesystem(tmp_path: os.PathLike[str]) -> None:
    """Produce into a 1 MiB tmpfs until ENOSPC; then free space and go on (T11)."""
    mnt = os.path.join(os.fspath(tmp_path), "mnt")
    if not mount_tmpfs(mnt, "1m"):
        pytest.skip("needs root and mount -t tmpfs")
    try:
        proc = call_in_child(
            "tests.reliability.test_io_errors", "_disk_full_child", {"mnt": mnt}, timeout=120
        )
        assert proc.returncode != -signal.SIGBUS, "SIGBUS on a full disk"
        assert proc.returncode == 0, proc.stderr[-4000:]
        figs = last_json(proc.stdout)
        print(f"\nreal full tmpfs: {figs}, SIGBUS 0")
        record("T11 real full disk", runs=1, **figs, sigbus=0)
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
