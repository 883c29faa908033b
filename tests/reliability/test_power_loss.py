"""Simulated power loss (reliability plan T3), in process, with the model of ``_powercut``.

Each run copies a golden data directory (or starts from nothing), runs a
random workload through the public handle, the storage layer, the producer
(``acks=1`` and ``acks="all"``) and an ``OffsetStore``, cuts the power at a
random facade call, lets the model choose what survived, reopens in the same
process and checks:

- open succeeds (recovery), and every topic whose creation returned exists;
- every record acknowledged with a sync (``sync=True``, ``flush()``,
  ``acks="all"``, a clean ``close()``) is present, at its offset, with its
  value, and so is every record written before it;
- no record returned differs from what was written at its offset; offsets
  increase; missing offsets are in gaps recovery reports, or in batches that
  reads refuse with ``CorruptRecordError`` (holes in never-synced data);
- the log start is never below an acknowledged ``delete_records``;
- the committed offset is at least the last acknowledged ``commit``;
- appends continue at the end offset.

``acks=1`` records may be lost (docs/producer.md: they survive a crash of the
process, not of the machine); how many were is reported.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

import streamlog
from streamlog import OffsetAndMetadata, TopicPartition
from streamlog.coordination._offsets import OffsetStore
from streamlog.storage import prepare_batch

from ._figures import record
from ._powercut import PowerCut, PowerModel, materialize
from ._verify import (
    Acks,
    check_continues,
    check_partition,
    read_partition,
    recovery_gaps,
)

TOPIC = "t"
CONFIG = {
    "segment.bytes": 4096,
    "index.interval.bytes": 128,
    "retention.bytes": 12288,
    "retention.ms": -1,
}
GROUP = "g"


@dataclass
class Outcome:
    cut_in: str
    calls: int
    acked_lost: int = 0
    durable_acked: int = 0
    holes: int = 0
    gaps: int = 0
    recovered: int = 0
    topics_checked: int = 0
    notes: list[str] = field(default_factory=list)


def make_golden(path: str) -> None:
    """A cleanly closed directory: topic ``t`` (2 partitions, small segments), a group."""
    with streamlog.open(path) as log:
        log.create_topic(TOPIC, 2, CONFIG)
        for i in range(40):
            p = log.partition(TOPIC, i % 2)
            p.append(prepare_batch([b"g%d-%d" % (i, j) for j in range(3)], timestamps=1000 + i))
        with OffsetStore(path, GROUP) as store:
            store.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(1, "")})


def _golden_acks(path: str) -> Acks:
    """Everything in the golden directory is durable (it was closed cleanly)."""
    acks = Acks()
    acks.topics.add(TOPIC)
    with streamlog.open(path) as log:
        for p in range(2):
            plog = log.partition(TOPIC, p)
            view = read_partition(plog)
            tp = (TOPIC, p)
            for off, v in view.records.items():
                acks.append(tp, off, [v], durable=True)
            acks.start_floor[tp] = view.start
    acks.commits.append(1)
    acks.commit_attempted = 1
    return acks


def _workload(
    root: str,
    rng: random.Random,
    acks: Acks,
    steps: int,
    producer: str | None,
    handles: dict[str, Any],
) -> None:
    """Random operations; every acknowledgement is recorded in ``acks`` as it returns.

    The open handles are left in ``handles``: the caller closes them once the power is
    back (closing while it is cut would leave descriptors open, as a dead machine does).
    """
    log = handles["log"] = streamlog.open(root)
    store = handles["store"] = OffsetStore(root, GROUP)
    prod = None
    if TOPIC not in acks.topics:
        log.create_topic(TOPIC, 2, CONFIG)
        acks.topics.add(TOPIC)
    if producer is not None:
        prod = handles["prod"] = log.producer(acks=producer)
    seq = 0
    for step in range(steps):
        tp = (TOPIC, rng.randrange(2))
        p = log.partition(*tp)
        r = rng.random()
        if r < 0.55:
            values = [
                b"s%d-%d-" % (step, j) + b"v" * rng.randrange(200) for j in range(rng.randint(1, 4))
            ]
            if prod is not None and rng.random() < 0.5:
                futs = [prod.send(TOPIC, v, partition=tp[1]) for v in values]
                for v, f in zip(values, futs):
                    md = f.result(timeout=30)
                    acks.append(tp, md.offset, [v], durable=producer == "all")
                    if producer == "all":
                        acks.synced_all(tp)
            else:
                sync = rng.random() < 0.35
                res = p.append(prepare_batch(values, timestamps=2000 + step), sync=sync)
                acks.append(tp, res.base_offset, values, durable=sync)
                if sync:
                    acks.synced_all(tp)
        elif r < 0.62:
            p.roll()
        elif r < 0.67:
            start, end = p.log_start_offset, p.end_offset
            target = rng.randint(start, end)
            new = p.delete_records(target)
            acks.start_floor[tp] = max(acks.start_floor.get(tp, 0), new)
        elif r < 0.71:
            p.enforce_retention(now_ms=10_000)
            acks.start_floor[tp] = max(acks.start_floor.get(tp, 0), p.log_start_offset)
        elif r < 0.79:
            seq += 1
            n = max(acks.commits, default=0) + seq
            acks.commit_attempted = max(acks.commit_attempted, n)
            store.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(n, "")}, sync=True)
            acks.commits.append(n)
        elif r < 0.83:
            name = f"x{step}"
            log.create_topic(name, 1)
            acks.topics.add(name)
        elif r < 0.88:
            p.flush()
            acks.synced_all(tp)
        elif r < 0.93:
            if prod is not None:
                prod.close()
                prod = handles["prod"] = None
            log.close()
            for q in range(2):
                acks.synced_all((TOPIC, q))
            log = handles["log"] = streamlog.open(root)
            if producer is not None:
                prod = handles["prod"] = log.producer(acks=producer)
        else:
            # a read in the middle: the handle maps and follows segments
            read_partition(p)


def power_cut_run(
    golden: str | None,
    top: str,
    seed: int,
    *,
    cut_at: int,
    steps: int = 25,
    producer: str | None = None,
    mode: str = "pessimistic",
) -> Outcome:
    rng = random.Random(seed)
    if os.path.exists(top):
        shutil.rmtree(top)
    os.makedirs(top)
    root = os.path.join(top, "data")
    if golden is not None:
        shutil.copytree(golden, root)
        acks = _golden_acks(root)
    else:
        acks = Acks()
    model = PowerModel(top, mode=mode)
    model.cut_at = cut_at
    model.install()
    handles: dict[str, Any] = {}
    try:
        try:
            _workload(root, rng, acks, steps, producer, handles)
        except PowerCut:
            pass
        except (OSError, streamlog.StreamlogError) as e:
            # a consequence of the cut (an I/O error wrapped by the library)
            assert model.dead, f"workload failed before the cut: {e!r}"
        model.cut_now()  # no effect if the power was already cut
        model.revive()
        for name in ("prod", "store", "log"):
            handle = handles.get(name)
            if handle is not None:
                try:
                    handle.close()
                except (OSError, streamlog.StreamlogError):
                    pass
    finally:
        model.uninstall()
    image = model.build(rng)
    materialize(image, top)
    out = Outcome(model.cut_in or "?", model.calls)
    what = f"seed {seed} cut_at {cut_at} ({model.cut_in}): "
    _verify(root, acks, out, what)
    return out


def _verify(root: str, acks: Acks, out: Outcome, what: str) -> None:
    with streamlog.open(root) as log:
        out.recovered = len(log.recovery)
        topics = set(log.topics())
        missing = acks.topics - topics
        assert not missing, f"{what}created topics lost: {missing}"
        if TOPIC in topics:
            for q in range(2):
                tp = (TOPIC, q)
                p = log.partition(*tp)
                view = read_partition(p)
                gaps = recovery_gaps(log, p.path)
                out.gaps += len(gaps)
                out.holes += view.holes
                out.acked_lost += check_partition(view, acks, tp, gaps=gaps, what=what)
                out.durable_acked += len(acks.durable.get(tp, ()))
                check_continues(p)
                out.topics_checked += 1
        with OffsetStore(root, GROUP) as store:
            c = store.committed(TopicPartition(TOPIC, 0))
            if acks.commits:
                assert c is not None, f"{what}acknowledged commits lost"
                assert acks.commits[-1] <= c.offset <= acks.commit_attempted, (
                    f"{what}committed {c.offset}, acknowledged {acks.commits[-1]}"
                )
            store._check()
    report = streamlog.check(root)
    kinds = {pr.kind for pr in report.problems}
    assert kinds <= {"corrupt"}, f"{what}check after recovery:\n{report}"
    assert sum(pr.kind == "corrupt" for pr in report.problems) <= out.holes + out.gaps, str(report)


def run_power_cuts(tmp: str, n: int, seed: int, *, mode: str = "pessimistic") -> dict[str, int]:
    golden = os.path.join(tmp, "golden")
    if not os.path.exists(golden):
        make_golden(golden)
    rng = random.Random(seed)
    top = os.path.join(tmp, "run")
    # calibrate: how many facade calls a whole workload makes
    totals = {}
    for kind in ("golden", "fresh"):
        full = power_cut_run(golden if kind == "golden" else None, top, seed, cut_at=10**9)
        totals[kind] = full.calls
    figures = {
        "power_cuts": 0,
        "durable_acks_checked": 0,
        "durable_acks_lost": 0,
        "acks1_lost": 0,
        "holes_refused": 0,
        "recovered_partitions": 0,
    }
    for i in range(n):
        s = rng.randrange(1 << 30)
        kind = "fresh" if i % 5 == 4 else "golden"
        producer = (None, None, "all", "1")[i % 4] if kind == "golden" else None
        cut_at = rng.randint(1, int(totals[kind] * 1.1) + 1)
        try:
            out = power_cut_run(
                golden if kind == "golden" else None,
                top,
                s,
                cut_at=cut_at,
                producer=producer,
                mode=mode,
            )
        except Exception as e:
            raise AssertionError(
                f"power cut run {i}: reproduce with power_cut_run({kind!r} golden, seed={s}, "
                f"cut_at={cut_at}, producer={producer!r}, mode={mode!r}): {e}"
            ) from e
        figures["power_cuts"] += 1
        figures["durable_acks_checked"] += out.durable_acked
        figures["acks1_lost"] += out.acked_lost
        figures["holes_refused"] += out.holes
        figures["recovered_partitions"] += out.recovered
    return figures


def test_power_cuts(scratch: str) -> None:
    """A few hundred random power cuts (fast tier)."""
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    t0 = time.monotonic()
    figs = run_power_cuts(scratch, 200, seed)
    figs_s = ", ".join(f"{k}={v}" for k, v in figs.items())
    print(f"\npower cuts (seed {seed}): {figs_s}; {time.monotonic() - t0:.1f}s")
    record("T3 power cuts", **figs)
    assert figs["power_cuts"] == 200


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_power_cuts_soak(scratch: str) -> None:
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    n = int(os.environ.get("STREAMLOG_SOAK_POWER_CUTS", "5000"))
    figs = run_power_cuts(scratch, n, seed)
    print(f"\npower cuts soak (seed {seed}): {figs}")
    record("T3 power cuts", **figs)
