"""One PartitionLog against a plain Python model, driven by random operations.

The model is a dict offset -> record, the list of batches (base, last, frame
size), the log start and the end offset. Rules append, read, roll, delete
records, enforce retention (with an explicit ``now``), close and reopen (with
and without recovery), and tear the last frame of the active segment (as a
power cut would) before reopening with recovery. After every step the log's
own invariants (``_check``) must hold and its offsets must match the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamlog._config import TopicConfig
from streamlog.errors import OffsetOutOfRangeError
from streamlog.storage import PartitionLog, prepare_batch
from streamlog.storage._codec import COMPRESSION_NONE, COMPRESSION_ZSTD

T0 = 1_700_000_000_000  # the log's clock, fixed: retention is only run with an explicit now
RETENTION_MS = 20_000
RETENTION_BYTES = 24_576
CONFIG = TopicConfig.from_dict(
    {
        "segment.bytes": 4096,
        "index.interval.bytes": 300,
        "retention.ms": RETENTION_MS,
        "retention.bytes": RETENTION_BYTES,
    }
)

_filled = st.integers(0, 1500).map(lambda n: bytes([n % 251]) * n)
_value = st.one_of(st.none(), st.binary(max_size=24), _filled, _filled)
_key = st.one_of(st.none(), st.binary(max_size=8))
_header = st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.binary(max_size=4)))
_headers = st.one_of(st.none(), st.lists(_header, max_size=3))


@st.composite
def _batch_spec(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 6))
    values = draw(st.lists(_value, min_size=n, max_size=n))
    keys = draw(st.one_of(st.none(), st.lists(_key, min_size=n, max_size=n)))
    headers = draw(st.one_of(st.none(), st.lists(_headers, min_size=n, max_size=n)))
    ts_deltas = draw(st.lists(st.integers(-2000, 2000), min_size=n, max_size=n))
    zstd = draw(st.booleans())
    return values, keys, headers, ts_deltas, zstd


class PartitionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="streamlog-model-")
        self.path = os.path.join(self.tmp, "t-0")
        self.log = self._open()
        self.recs: dict[int, tuple] = {}  # offset -> (offset, ts, key, value, headers)
        self.batches: list[tuple[int, int, int]] = []  # (base, last, frame size)
        self.start = 0
        self.end = 0
        self.now = 100_000  # the model's time: records are stamped around it

    def _open(self, *, recover: bool = False) -> PartitionLog:
        return PartitionLog(self.path, CONFIG, recover=recover, clock=lambda: T0 / 1000)

    def teardown(self) -> None:
        try:
            self.log.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ rules

    @rule(specs=st.lists(_batch_spec(), min_size=1, max_size=3), many=st.booleans())
    def append(self, specs: list[tuple], many: bool) -> None:
        prepared = []
        for values, keys, headers, deltas, zstd in specs:
            stamps = [max(0, self.now + d) for d in deltas]
            pb = prepare_batch(
                values, keys, stamps, headers,
                compression=COMPRESSION_ZSTD if zstd else COMPRESSION_NONE,
            )
            prepared.append((pb, values, keys, headers, stamps))
        if many:
            results = self.log.append_many([p[0] for p in prepared])
        else:
            results = [self.log.append(p[0]) for p in prepared]
        for (pb, values, keys, headers, stamps), res in zip(prepared, results):
            n = len(values)
            assert (res.base_offset, res.last_offset) == (self.end, self.end + n - 1)
            assert res.timestamp == max(stamps)
            for i in range(n):
                off = self.end + i
                self.recs[off] = (
                    off,
                    stamps[i],
                    None if keys is None else keys[i],
                    values[i],
                    tuple(headers[i]) if headers and headers[i] else (),
                )
            self.batches.append((self.end, self.end + n - 1, pb.size))
            self.end += n

    @rule(where=st.integers(0, 10**6), max_bytes=st.sampled_from([1, 200, 2000, 6000, 1 << 20]))
    def read(self, where: int, max_bytes: int) -> None:
        lo, hi = self.start - 2, self.end + 2
        off = lo + where % (hi - lo + 1)
        if off < self.start or off > self.end:
            with pytest.raises(OffsetOutOfRangeError):
                self.log.read(off, max_bytes)
            return
        got = self.log.read(off, max_bytes)
        if off == self.end:
            assert got == []
            return
        # whole batches from the one holding ``off``, as many as fit (at least one)
        candidates = [b for b in self.batches if b[1] >= off]
        expected, used = [], 0
        for b in candidates:
            if expected and used + b[2] > max_bytes:
                break
            expected.append(b)
            used += b[2]
        assert [(b.base_offset, b.last_offset, b.size) for b in got] == expected
        event(f"read {min(len(got), 3)}+ batches")
        for b in got:
            want = [self.recs[o] for o in range(b.base_offset, b.last_offset + 1)]
            assert list(b.records()) == want
        # the records a consumer keeps: from ``off`` on, dense
        kept = [r for b in got for r in b.records() if r[0] >= off]
        assert [r[0] for r in kept] == list(range(off, off + len(kept)))

    @rule()
    def roll(self) -> None:
        n = len(self.log.segments())
        empty = self.log.segments()[-1].tail == 0
        self.log.roll()
        assert len(self.log.segments()) == n + (0 if empty else 1)

    @rule(ms=st.integers(0, 30_000))
    def tick(self, ms: int) -> None:
        self.now += ms

    @rule(where=st.integers(0, 10**6), past_end=st.booleans())
    def delete_records(self, where: int, past_end: bool) -> None:
        if past_end:
            with pytest.raises(OffsetOutOfRangeError):
                self.log.delete_records(self.end + 1)
            return
        off = self.start + where % (self.end - self.start + 1)
        assert self.log.delete_records(off) == max(self.start, off)
        self.start = max(self.start, off)

    @rule(ahead=st.integers(0, 40_000))
    def enforce_retention(self, ahead: int) -> None:
        now = self.now + ahead
        segs = self.log.segments()
        keys = [s.base_offset for s in segs]
        excess = sum(s.size_bytes for s in segs) - RETENTION_BYTES
        doomed, new_start = 0, self.start
        for i, seg in enumerate(segs):
            if seg.tail == 0:
                break
            nxt = keys[i + 1] if i + 1 < len(keys) else self.end
            stamps = [self.recs[o][1] for o in range(seg.base_offset, nxt) if o in self.recs]
            by_start = nxt <= self.start
            by_size = excess - seg.size_bytes >= 0
            by_time = 0 <= max(stamps) < now - RETENTION_MS
            if not (by_start or by_size or by_time):
                break
            doomed += 1
            new_start = max(new_start, nxt)
            if by_size:
                excess -= seg.size_bytes
        assert self.log.enforce_retention(now_ms=now) == doomed
        event(f"retention deleted {min(doomed, 2)}+ segments")
        self.start = new_start
        if doomed:
            assert os.path.exists(self.log.segments()[0].path)
            assert not os.path.exists(segs[0].path) or segs[0].base_offset == self.end

    @rule(recover=st.booleans())
    def reopen(self, recover: bool) -> None:
        self.log.close()
        self.log = self._open(recover=recover)
        if recover:
            report = self.log.report
            assert report is not None and report.clean, report

    @rule(truncate=st.booleans(), where=st.integers(0, 10**6), bit=st.integers(0, 7))
    def torn_tail(self, truncate: bool, where: int, bit: int) -> None:
        active = self.log.segments()[-1]
        if active.tail == 0:
            return
        pos, last = active.batches()[-1]
        assert last is not None
        assert (last.base_offset, last.last_offset, last.size) == self.batches[-1]
        path = active.path
        self.log.close()
        damaged = pos + where % last.size
        with open(path, "r+b") as f:
            if truncate:
                f.truncate(damaged)
            else:
                f.seek(damaged)
                byte = f.read(1)[0]
                f.seek(damaged)
                f.write(bytes([byte ^ (1 << bit)]))
        self.log = self._open(recover=True)
        report = self.log.report
        assert report is not None
        event("torn tail")
        if not truncate:
            assert report.truncated_at == [(path, pos)], report
        else:
            assert report.truncated_at in ([], [(path, pos)]), report
        assert report.corrupt == []
        base, lastoff, _size = self.batches.pop()
        for o in range(base, lastoff + 1):
            del self.recs[o]
        self.end = base
        if self.end < self.start:
            event("torn tail below the log start")
            # the start was moved past the lost batch: the log starts over there
            self.end = self.start
            assert report.segments_created == [self.start]

    # ------------------------------------------------------------------ invariants

    @invariant()
    def consistent(self) -> None:
        assert self.log.end_offset == self.end  # (also follows what others appended)
        assert self.log.log_start_offset == self.start
        self.log._check()


PartitionMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_partition_model = PartitionMachine.TestCase
