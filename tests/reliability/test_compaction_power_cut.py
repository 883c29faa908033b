"""Compaction (merging included) under simulated power loss (reliability plan T3, the
``_powercut`` model): cut the power inside a cleaning round, let the model choose what
survived, recover, and compare the log with what was written.

A golden directory holds a compacted topic (``segment.bytes`` 4096, records of
scattered keys, tombstones), compacted once and closed cleanly, so everything in it is
durable. Each run copies it, then, under the model: appends more records, without
sync and with ``sync=True`` (a sync makes everything written before it durable), with
rolls whose flushes are held back (the flusher has not got to them: sealed segments
that are not durable, and hold the latest writes of keys whose older, durable writes
the round removes); then ``Log.compact`` merges segments (several groups) and drops
superseded records and tombstones past their horizon. The power is cut:

- at every ``clean.*`` crash point, at every pass n (the point raises the cut instead
  of killing the process), until a round completes;
- in ``finish_swaps`` as the next round runs it: a round is first interrupted at one
  of its swap points without a power cut (the process is "killed": the page cache
  keeps everything), then the next round is cut at its n-th ``clean.swap_completed``
  or ``clean.superseded_deleted``;
- at every facade call of a round (call k = 1, 2, ...), in the merging shape.

Each cut is materialized several ways (the pessimistic model's random choices, three
times at a crash point and twice at a facade call, and at a crash point the worst
case too: nothing unsynced survives); the directory is then opened (recovery
finishes or drops the interrupted swap, removes superseded segments) and must hold:

- every record read is the one written at its offset, in order, once (offsets never
  change);
- for every key, the latest write known durable before the round is still there, or
  a later write of the key is (latest value per key; a key may be gone only if a
  tombstone at or after its latest durable write deleted it);
- the end offset is past every durable write, appends continue at it, and
  ``streamlog.check`` finds nothing but holes recovery reported in never-synced data.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

import streamlog
import streamlog.storage._cleaner as cleaner_mod
from streamlog.errors import CorruptRecordError
from streamlog.storage import PartitionLog, prepare_batch

from ._figures import record
from ._points import clean_points
from ._powercut import PowerCut, PowerModel, materialize
from ._verify import _next_good_offset, recovery_gaps

TOPIC = "t"
T0 = 1_700_000_000.0
KEYS = 80
Written = dict[int, tuple[bytes, bytes | None]]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _key(i: int) -> bytes:
    # (scattered: the latest writes of keys spread over the log, so the cleaned segments
    # are of all sizes and merge in several groups)
    return b"k%d" % ((i * 2654435761 % 2**32) % KEYS if i % 3 else i % KEYS)


def _value(i: int) -> bytes | None:
    return None if i % 13 == 12 else b"v%d-" % i + b"x" * (i % 97)


@dataclass
class Golden:
    path: str
    written: Written
    retention_ms: int


@dataclass
class Run:
    written: Written
    durable: set[int] = field(default_factory=set)
    cut_in: str = ""
    calls: int = 0


def make_golden(path: str, retention_ms: int) -> Golden:
    written: Written = {}
    clock = Clock()
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": 4096,
        "index.interval.bytes": 512,
        "delete.retention.ms": retention_ms,
    }
    with streamlog.open(path, cleaner=False, clock=clock) as log:
        log.create_topic(TOPIC, 1, config)
        p = log.partition(TOPIC, 0)
        for i in range(300):
            written[p.append(prepare_batch([_value(i)], [_key(i)], 1000 + i)).base_offset] = (
                _key(i),
                _value(i),
            )
        log.compact(TOPIC)  # (the segments get their delete horizons)
        for i in range(300, 420):
            written[p.append(prepare_batch([_value(i)], [_key(i)], 1000 + i)).base_offset] = (
                _key(i),
                _value(i),
            )
    return Golden(path, written, retention_ms)


@contextmanager
def cut_at_point(model: PowerModel, point: str, n: int) -> Iterator[dict[str, int]]:
    """Make the n-th pass of crash point ``point`` cut the power (raise ``PowerCut``)."""
    counts: dict[str, int] = {}
    real = cleaner_mod.crashpoint

    def fake(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1
        if name == point and counts[name] == n:
            model.cut_now()
            model.cut_in = point
            raise PowerCut

    cleaner_mod.crashpoint = fake
    try:
        yield counts
    finally:
        cleaner_mod.crashpoint = real


class Killed(Exception):
    """The cleaner's process "died" at a crash point (no power cut: the page cache keeps
    everything it wrote)."""


@contextmanager
def kill_at_point(point: str) -> Iterator[None]:
    real = cleaner_mod.crashpoint

    def fake(name: str) -> None:
        if name == point:
            raise Killed(point)

    cleaner_mod.crashpoint = fake
    try:
        yield
    finally:
        cleaner_mod.crashpoint = real


def _workload(p: PartitionLog, run: Run, golden_end: int) -> None:
    """Appends before the round: unsynced, one synced, unsynced again, with rolls whose
    flushes never happen (the sealed segments stay unsynced until something syncs them)."""
    p._durability.after_roll = lambda sealed: None  # type: ignore[method-assign]
    i = golden_end
    for step in range(150):
        key, value = _key(i), _value(i)
        sync = step == 60
        off = p.append(prepare_batch([value], [key], 2000 + step), sync=sync).base_offset
        run.written[off] = (key, value)
        if sync:
            run.durable.update(run.written)  # (a sync covers everything written before it)
        i += 1


def one_run(
    golden: Golden,
    top: str,
    seed: int,
    cut: Callable[[PowerModel, streamlog.Log], Any],
    *,
    worst: bool = False,
) -> Run:
    """Copy the golden directory, run the workload and a round under the model with the
    cut ``cut`` arranges (it runs the round), materialize, recover, verify."""
    if os.path.exists(top):
        shutil.rmtree(top)
    os.makedirs(top)
    root = os.path.join(top, "data")
    shutil.copytree(golden.path, root)
    run = Run(dict(golden.written), set(golden.written))
    model = PowerModel(top)
    model.install()
    log: streamlog.Log | None = None
    try:
        try:
            log = streamlog.open(root, cleaner=False, clock=Clock())
            p = log.partition(TOPIC, 0)
            _workload(p, run, max(golden.written) + 1)
            cut(model, log)
        except PowerCut:
            pass
        except (OSError, streamlog.StreamlogError) as e:
            assert model.dead, f"failed before the cut: {e!r}"
        model.cut_now()  # (no effect if the power was already cut)
        model.revive()
        if log is not None:
            try:
                log.close()
            except (OSError, streamlog.StreamlogError):
                pass
    finally:
        model.uninstall()
    run.cut_in, run.calls = model.cut_in or "?", model.calls
    rng = random.Random(seed)
    materialize(model.build(rng, worst=worst), top)
    verify(root, run, f"seed {seed}, cut in {run.cut_in} (call {model.calls}), worst {worst}: ")
    return run


def read_all(p: PartitionLog) -> tuple[Written, int]:
    """Every record from the log start (damaged batches of never-synced data skipped, and
    counted); offsets must increase."""
    out: Written = {}
    holes = 0
    off, end = p.log_start_offset, p.end_offset
    prev = off - 1
    while off < end:
        try:
            batches = p.read(off)
        except CorruptRecordError as e:
            holes += 1
            off = _next_good_offset(p, e, off)
            continue
        if not batches:
            break
        for b in batches:
            for o, _ts, k, v, _h in b.records():
                if o < off:
                    continue
                assert o > prev, f"offset {o} after {prev}"
                assert k is not None
                out[o] = (k, v)
                prev = o
        off = batches[-1].next_offset
    return out, holes


def verify(root: str, run: Run, what: str) -> None:
    with streamlog.open(root, cleaner=False, clock=Clock()) as log:
        p = log.partition(TOPIC, 0)
        records, holes = read_all(p)
        for o, kv in records.items():
            want = run.written.get(o)
            assert want == kv, f"{what}offset {o} reads {kv}, not {want}"
        assert p.end_offset > max(run.durable), f"{what}the log ends below a durable write"
        latest_durable: dict[bytes, int] = {}
        for o in sorted(run.durable):
            latest_durable[run.written[o][0]] = o
        latest_read: dict[bytes, int] = {}
        for o, (k, _v) in sorted(records.items()):
            latest_read[k] = o
        for key, d in latest_durable.items():
            if latest_read.get(key, -1) >= d:
                continue
            deleted = any(
                k == key and v is None and o >= d for o, (k, v) in run.written.items()
            )
            assert deleted and key not in latest_read, (
                f"{what}key {key!r}: its latest durable write (offset {d}) is gone, "
                f"latest read {latest_read.get(key)}"
            )
        report = streamlog.check(root)
        kinds = {pr.kind for pr in report.problems}
        assert kinds <= {"corrupt"}, f"{what}check after recovery:\n{report}"
        assert len(report.problems) <= holes, f"{what}{report}"
        # (holes of never-synced data, and a seal naming a segment the cut lost, a gap,
        # are what a power cut may leave: _check holds of the rest)
        if not report.problems and not recovery_gaps(log, p.path):
            p._check()
        end = p.end_offset
        r = p.append(prepare_batch([b"after"], [b"k0"], 9000), sync=True)
        assert r.base_offset == end, f"{what}append at {r.base_offset}, end {end}"


# ---------------------------------------------------------------------------- the cuts


def _compact(model: PowerModel, log: streamlog.Log) -> None:
    log.compact(TOPIC)


def point_loop(golden: Golden, tmp: str, seed: int, max_n: int = 50) -> dict[str, int]:
    """Every ``clean.*`` point of a round, every pass n, until a round completes; each
    cut materialized three times at random and once in the worst case."""
    rng = random.Random(seed)
    figs = {"points": 0, "cuts": 0, "images": 0}
    top = os.path.join(tmp, "run")
    round_points = [p for p in clean_points() if p != "clean.swap_completed"]
    for point in round_points:
        reached = 0
        for n in range(1, max_n + 1):
            hit = False

            def cut(model: PowerModel, log: streamlog.Log, point: str = point, n: int = n) -> None:
                nonlocal hit
                try:
                    with cut_at_point(model, point, n):
                        log.compact(TOPIC)
                finally:
                    hit = model.dead

            for worst in (False, False, False, True):
                s = rng.randrange(1 << 30)
                try:
                    one_run(golden, top, s, cut, worst=worst)
                except Exception as e:
                    raise AssertionError(f"{point}:{n}: {e}") from e
                figs["images"] += 1
            if not hit:
                break
            reached += 1
            figs["cuts"] += 1
        assert reached, f"{point} was never passed"
        figs["points"] += 1
    return figs


def finish_loop(golden: Golden, tmp: str, seed: int, max_n: int = 20) -> dict[str, int]:
    """A round killed at one of its swap points (no power cut), then the next round's
    ``finish_swaps`` cut at its n-th ``clean.swap_completed`` / ``clean.superseded_deleted``."""
    rng = random.Random(seed)
    figs = {"cases": 0, "cuts": 0, "images": 0}
    top = os.path.join(tmp, "run")
    for killed_at in ("clean.swap_renamed", "clean.merged_synced", "clean.superseded_deleted"):
        for point in ("clean.swap_completed", "clean.superseded_deleted"):
            reached = 0
            for n in range(1, max_n + 1):
                hit = False

                def cut(
                    model: PowerModel,
                    log: streamlog.Log,
                    killed_at: str = killed_at,
                    point: str = point,
                    n: int = n,
                ) -> None:
                    nonlocal hit
                    with kill_at_point(killed_at):
                        try:
                            log.compact(TOPIC)
                        except Killed:
                            pass
                    try:
                        with cut_at_point(model, point, n):
                            log.compact(TOPIC)
                    finally:
                        hit = model.dead

                s = rng.randrange(1 << 30)
                try:
                    one_run(golden, top, s, cut)
                except Exception as e:
                    raise AssertionError(f"killed at {killed_at}, then {point}:{n}: {e}") from e
                figs["images"] += 1
                if not hit:
                    break
                reached += 1
                figs["cuts"] += 1
            if point == "clean.swap_completed" or killed_at != "clean.swap_renamed":
                assert reached, f"killed at {killed_at}: the next round never passed {point}"
            figs["cases"] += 1
    return figs


def call_loop(
    golden: Golden, tmp: str, seed: int, step: int = 1, images: int = 2
) -> dict[str, int]:
    """The power cut at every ``step``-th facade call of a round (counted from the round's
    start: the workload before it makes a fixed number of calls, flushes held back),
    each materialized ``images`` times at random."""
    rng = random.Random(seed)
    top = os.path.join(tmp, "run")
    figs = {"calls": 0, "images": 0}
    base: dict[str, int] = {}

    def measure(model: PowerModel, log: streamlog.Log) -> None:
        base["before"] = model.calls
        log.compact(TOPIC)
        base["after"] = model.calls

    one_run(golden, top, 0, measure)
    total = base["after"] - base["before"]
    assert total > 50, total
    for k in range(1, total + 1, step):

        def cut(model: PowerModel, log: streamlog.Log, k: int = k) -> None:
            model.cut_at = model.calls + k
            log.compact(TOPIC)

        for _ in range(images):
            s = rng.randrange(1 << 30)
            try:
                one_run(golden, top, s, cut)
            except Exception as e:
                raise AssertionError(f"cut at call {k} of {total}: {e}") from e
            figs["images"] += 1
        figs["calls"] += 1
    return figs


@pytest.fixture(scope="module")
def goldens(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Golden]:
    tmp = tmp_path_factory.mktemp("compaction-golden")
    return {
        ms: make_golden(os.path.join(tmp, f"golden-{ms}"), ms) for ms in (0, 24 * 3600 * 1000)
    }


def _seed() -> int:
    return int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)


@pytest.mark.parametrize("retention_ms", [0, 24 * 3600 * 1000])
def test_power_cut_at_every_clean_point(
    goldens: dict[int, Golden], scratch: str, retention_ms: int
) -> None:
    seed = _seed()
    t0 = time.monotonic()
    figs = point_loop(goldens[retention_ms], scratch, seed)
    print(f"\npower cut at clean points (retention {retention_ms}, seed {seed}): {figs}; "
          f"{time.monotonic() - t0:.1f}s")
    record("T3 power cuts in compaction", **figs)
    assert figs["points"] == len(clean_points()) - 1


def test_power_cut_while_finishing_an_interrupted_round(
    goldens: dict[int, Golden], scratch: str
) -> None:
    seed = _seed()
    t0 = time.monotonic()
    figs = finish_loop(goldens[0], scratch, seed)
    print(f"\npower cut in finish_swaps (seed {seed}): {figs}; {time.monotonic() - t0:.1f}s")
    record("T3 power cuts in compaction", **figs)


def test_power_cut_at_every_facade_call_of_a_round(
    goldens: dict[int, Golden], scratch: str
) -> None:
    seed = _seed()
    t0 = time.monotonic()
    figs = call_loop(goldens[0], scratch, seed)
    print(f"\npower cut at every call of a round (seed {seed}): {figs}; "
          f"{time.monotonic() - t0:.1f}s")
    record("T3 power cuts in compaction", **figs)


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_power_cuts_in_compaction_soak(goldens: dict[int, Golden], scratch: str) -> None:
    """The three loops again with other random choices (``STREAMLOG_SOAK_ROUNDS`` times,
    default 10: about 3 minutes on 2 cores)."""
    rng = random.Random(_seed())
    suite = "T3 power cuts in compaction"
    for _ in range(int(os.environ.get("STREAMLOG_SOAK_ROUNDS", "10"))):
        for ms, golden in goldens.items():
            record(suite, **point_loop(golden, scratch, rng.randrange(1 << 30)))
            if ms == 0:
                record(suite, **finish_loop(golden, scratch, rng.randrange(1 << 30)))
                record(suite, **call_loop(golden, scratch, rng.randrange(1 << 30)))


def test_regression_holes_in_the_active_segment_after_a_cut_in_compaction(
    goldens: dict[int, Golden], scratch: str
) -> None:
    """Found by the soak (2026-12-06): a cut at call 75 of a round left the last segment
    sealed (by a roll whose next segment the cut lost) with two torn never-synced batches
    inside, stepped over by resynchronising on the trailing seal. Recovery cut the seal
    off and kept the data after the holes, which then read as a torn tail at 456 (check:
    torn-tail, index disagreeing), so the next recovery would have cut there, after newer
    records. Now recovery ends the segment at the first hole."""
    def cut(model: PowerModel, log: streamlog.Log) -> None:
        model.cut_at = model.calls + 75
        log.compact(TOPIC)

    one_run(goldens[0], os.path.join(scratch, "run"), 66803338, cut)
