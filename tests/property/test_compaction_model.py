"""Compaction against a model: the compacted log reads as the dict of last writes.

A stateful machine writes keyed records (values and tombstones) to a compacted
partition, rolls, advances a fake clock, cleans (with a small offset map, so some
rounds stop early; segments of 4096 bytes, so rounds merge the small cleaned
segments into one, in groups), cleans with a round "killed" at one of its crash
points (an exception there: the swap of a group is left half done, as a process
killed in it leaves it for the handles still open), reopens, and reads through a
second handle on the same directory, which keeps its maps of the old segments
across merges. After every step:

- every record read is the record written at that offset (offsets never change);
- offsets read are increasing (order never changes);
- the last write of every key is read (a value, or a tombstone until its delete
  horizon); a tombstone missing is only allowed once the clock has passed the
  horizon its first cleaning set (KIP-534);
- ``PartitionLog._check()`` holds, and at the end ``streamlog.check`` is clean.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import streamlog
import streamlog.storage._cleaner as cleaner_mod
from streamlog._config import TopicConfig
from streamlog.storage import PartitionLog, prepare_batch
from streamlog.storage._cleaner import LogCleaner, OffsetMap

RETENTION_MS = 5_000
CONFIG = TopicConfig.from_dict(
    {
        "cleanup.policy": "compact",
        "segment.bytes": 4096,
        "index.interval.bytes": 256,
        "delete.retention.ms": RETENTION_MS,
    }
)
KEYS = [b"k%d" % i for i in range(8)]
# the points of a round where a kill leaves something for the next round to finish
KILL_POINTS = [
    "clean.cleaned_written",
    "clean.swap_renamed",
    "clean.log_replaced",
    "clean.merged_synced",
    "clean.superseded_deleted",
    "clean.indexes_replaced",
]


class Killed(Exception):
    pass


class CompactionModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="compaction-model-")
        self.path = os.path.join(self.root, "p")
        self.now = 1_700_000_000.0
        self.log = PartitionLog(self.path, CONFIG, clock=self.clock)
        self.other: PartitionLog | None = None
        self.written: dict[int, tuple[bytes, bytes | None]] = {}
        self.last: dict[bytes, int] = {}  # key -> offset of its last write
        self.first_cleaned: dict[int, float] = {}  # tombstone offset -> first cleaning time

    def clock(self) -> float:
        return self.now

    def teardown(self) -> None:
        for log in (self.log, self.other):
            if log is not None and not log.closed:
                log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(
        key=st.sampled_from(KEYS),
        value=st.one_of(st.none(), st.binary(min_size=1, max_size=300)),
        n=st.integers(1, 4),
    )
    def write(self, key: bytes, value: bytes | None, n: int) -> None:
        keys = [key] * n
        values = [value] * n
        r = self.log.append(prepare_batch(values, keys, int(self.now * 1000)))
        for off in range(r.base_offset, r.last_offset + 1):
            self.written[off] = (key, value)
        self.last[key] = r.last_offset

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(seconds=st.sampled_from([0.5, 2.0, 6.0]))
    def tick(self, seconds: float) -> None:
        self.now += seconds

    @rule(small=st.booleans())
    def clean(self, small: bool) -> None:
        budget = OffsetMap.BYTES_PER_ENTRY * 4 if small else 1 << 20
        active_base = self.log.segments()[-1].base_offset
        result = LogCleaner(dedupe_buffer_size=budget, clock=self.clock).clean(self.log)
        event(f"cleaned {'some' if result and result.segments_cleaned else 'no'} segments")
        if result is not None and result.tombstones_removed:
            event("tombstones removed")
        if result is not None and result.segments_removed:
            event("segments merged")
        if result is not None:
            self._cleaned_now(active_base)
        leftovers = [n for n in os.listdir(self.path) if n.endswith((".swap", ".cleaned"))]
        assert not leftovers, f"a round left {leftovers}"

    def _cleaned_now(self, active_base: int) -> None:
        for off, (_k, v) in self.written.items():
            if v is None and off < active_base and off not in self.first_cleaned:
                self.first_cleaned[off] = self.now

    @rule(point=st.sampled_from(KILL_POINTS), n=st.integers(1, 3))
    def clean_killed(self, point: str, n: int) -> None:
        """A round that dies at the n-th pass of ``point``: what it left must read as a
        whole log through both handles (and a fresh one), and the next round finishes it."""
        active_base = self.log.segments()[-1].base_offset
        counts: dict[str, int] = {}
        real = cleaner_mod.crashpoint

        def fake(name: str) -> None:
            counts[name] = counts.get(name, 0) + 1
            if name == point and counts[name] == n:
                raise Killed(name)

        cleaner_mod.crashpoint = fake
        try:
            LogCleaner(clock=self.clock).clean(self.log)
            event("a round to kill completed")
        except Killed:
            event(f"a round killed at {point}")
        finally:
            cleaner_mod.crashpoint = real
        # (the tombstones of the groups it swapped in got their horizon now)
        self._cleaned_now(active_base)
        fresh = PartitionLog(self.path, CONFIG, clock=self.clock)
        try:
            self._check_reads(fresh)
        finally:
            fresh.close()

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = PartitionLog(self.path, CONFIG, clock=self.clock)

    @precondition(lambda self: self.other is None)
    @rule()
    def open_other(self) -> None:
        self.other = PartitionLog(self.path, CONFIG, clock=self.clock)

    def _read(self, log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
        out = []
        off = log.log_start_offset
        end = log.end_offset
        while off < end:
            batches = log.read(off)
            assert batches, f"a read at {off} below the end {end} returned nothing"
            for b in batches:
                for o, _ts, k, v, _h in b.records():
                    if o >= off:
                        out.append((o, k, v))
            off = batches[-1].next_offset
        return out

    @invariant()
    def reads_as_the_model(self) -> None:
        for log in (self.log, self.other):
            if log is not None:
                self._check_reads(log)

    def _check_reads(self, log: PartitionLog) -> None:
        records = self._read(log)
        offsets = [o for o, _k, _v in records]
        assert offsets == sorted(set(offsets)), "order or uniqueness broken"
        for o, k, v in records:
            assert self.written[o] == (k, v), f"offset {o} changed"
        seen = {o for o in offsets}
        for key, off in self.last.items():
            if off in seen:
                continue
            value = self.written[off][1]
            assert value is None, f"the latest value of {key!r} (offset {off}) is gone"
            first = self.first_cleaned.get(off)
            assert first is not None and self.now >= first + RETENTION_MS / 1000, (
                f"tombstone at {off} removed before its delete horizon"
            )
        if not [n for n in os.listdir(self.path) if n.endswith(".swap")]:
            # (with a killed round's index ``.swap`` files left, the live index of its
            # merged segment is the old one's until the next round: reads check every
            # entry they use, but _check would flag it)
            log._check()


TestCompactionModel = CompactionModel.TestCase
TestCompactionModel.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_check_is_clean_after_cleaning(tmp_path: os.PathLike[str]) -> None:
    root = os.fspath(tmp_path)
    with streamlog.open(root, cleaner=False) as log:
        log.create_topic("t", 1, {"cleanup.policy": "compact", "segment.bytes": 4096})
        p = log.partition("t", 0)
        for i in range(500):
            p.append(prepare_batch([b"v" * (i % 50) or None], [KEYS[i % 8]], 1000 + i))
        log.compact("t")
    assert streamlog.check(root).ok
