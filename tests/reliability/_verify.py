"""What was acknowledged, and the invariants every reliability suite checks after a fault.

Invariants (reliability plan §6):

a. every record acknowledged at the level under test is present exactly once,
   in order, at its offset;
b. offsets are dense and increasing (except gaps recovery reports, and
   batches recovery reports as corrupt, which reads refuse);
c. no record that was not written is ever returned, and no read returns a
   damaged batch (``CorruptRecordError`` instead);
d. open succeeds and appends continue at the end offset;
e. committed offsets never go back past an acknowledged commit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import streamlog
from streamlog.errors import CorruptRecordError
from streamlog.storage import PartitionLog, prepare_batch

TP = tuple[str, int]


@dataclass
class Acks:
    """What the workload was told, per partition."""

    written: dict[TP, dict[int, bytes]] = field(default_factory=dict)  # append returned
    durable: dict[TP, set[int]] = field(default_factory=dict)  # acknowledged with a sync
    start_floor: dict[TP, int] = field(default_factory=dict)  # delete_records returned
    topics: set[str] = field(default_factory=set)  # create_topic returned
    commits: list[int] = field(default_factory=list)  # OffsetStore.commit(sync=True) returned
    commit_attempted: int = -1  # the highest offset a commit was started for

    def append(self, tp: TP, base: int, values: list[bytes], *, durable: bool) -> None:
        w = self.written.setdefault(tp, {})
        d = self.durable.setdefault(tp, set())
        for i, v in enumerate(values):
            off = base + i
            assert w.get(off, v) == v, f"{tp}: offset {off} acknowledged for two values"
            w[off] = v
            if durable:
                d.add(off)

    def synced_all(self, tp: TP) -> None:
        """A sync of ``tp`` returned: everything written to it so far is durable."""
        self.durable.setdefault(tp, set()).update(self.written.get(tp, {}))


@dataclass
class PartitionView:
    start: int
    end: int
    records: dict[int, bytes]
    holes: int  # batches that failed their checksum (reads raise; recovery reported them)
    wrong_types: int = 0  # values not bytes: forged batches (a known limit), when allowed


def read_partition(p: PartitionLog, *, forged_ok: bool = False) -> PartitionView:
    """Every record from the log start to the end through ``read``; damaged batches
    (``CorruptRecordError``) are counted and skipped to the next good batch. With
    ``forged_ok`` (fuzzers that forge batches with valid checksums), a value that is not
    bytes is counted as the documented limit (reliability.md, "Known limits") instead of
    failing."""
    start, end = p.log_start_offset, p.end_offset
    records: dict[int, bytes] = {}
    holes = 0
    wrong_types = 0
    off = start
    prev = start - 1
    while off < end:
        try:
            batches = p.read(off, 1 << 20)
        except CorruptRecordError as e:
            holes += 1
            off = _next_good_offset(p, e, off)
            continue
        if not batches:
            break  # the rest is a gap (a seal lost to a power cut) with nothing after it
        for b in batches:
            for o, _ts, _k, v, _h in b.records():
                if o < off:
                    continue
                assert o > prev, f"offset {o} after {prev}: not increasing"
                if not isinstance(v, bytes):
                    assert forged_ok, f"offset {o}: a value of type {type(v).__name__}"
                    wrong_types += 1
                    continue
                records[o] = v
                prev = o
            off = b.last_offset + 1
    return PartitionView(start, end, records, holes, wrong_types)


def _next_good_offset(p: PartitionLog, e: CorruptRecordError, off: int) -> int:
    """The base offset of the first good batch after the damaged one at ``e.position``."""
    for seg in p.segments():
        if seg.path != e.path:
            continue
        after = [b for pos, b in seg.batches() if b is not None and pos > (e.position or 0)]
        if after:
            return max(off + 1, int(after[0].base_offset))
        nxt: int = seg.next_base if seg.sealed and seg.next_base is not None else p.end_offset
        return max(off + 1, nxt)
    raise AssertionError(f"corrupt batch in unknown file {e.path}")


def check_partition(
    view: PartitionView,
    acks: Acks,
    tp: TP,
    *,
    gaps: list[tuple[int, int]] | None = None,
    what: str = "",
) -> int:
    """Invariants a-c for one partition; returns how many non-durable acks were lost."""
    written = acks.written.get(tp, {})
    durable = acks.durable.get(tp, set())
    floor = acks.start_floor.get(tp, 0)
    # the log start never goes below an acknowledged delete_records, and is never past
    # the end of what was written (unless every record was lost and it starts over)
    assert view.start >= floor or not written, f"{what}{tp}: start {view.start} < {floor}"
    for off, v in view.records.items():
        want = written.get(off)
        # unacknowledged records may be present (written, not yet acknowledged)
        assert want is None or want == v, f"{what}{tp}: offset {off} holds {v!r}, not {want!r}"
    lost_durable = sorted(o for o in durable if o >= view.start and o not in view.records)
    assert not lost_durable, f"{what}{tp}: durably acknowledged offsets lost: {lost_durable[:10]}"
    # a sync makes everything written before it durable, not only its own batch
    last_durable = max((o for o in durable if o >= view.start), default=-1)
    before = sorted(o for o in written if view.start <= o < last_durable and o not in view.records)
    assert not before, f"{what}{tp}: offsets before a durable ack lost: {before[:10]}"
    # dense: every offset in [start, end) is a record, in a reported gap, or in a hole
    missing = [o for o in range(view.start, view.end) if o not in view.records]
    if missing and not view.holes:
        in_gap = [o for o in missing if not any(a <= o < b for a, b in gaps or [])]
        assert not in_gap, f"{what}{tp}: offsets missing without a reported gap: {in_gap[:10]}"
    return sum(1 for o in written if o >= view.start and o not in view.records and o not in durable)


def check_continues(p: PartitionLog) -> None:
    """Invariant d: an append continues at the end offset.

    (Offsets of ``acks=1`` records lost to a power cut are given out again.)
    """
    end = p.end_offset
    r = p.append(prepare_batch([b"after-%d" % end]), sync=True)
    assert r.base_offset == end, (r.base_offset, end)


def recovery_gaps(log: streamlog.Log, tp_path: str) -> list[tuple[int, int]]:
    gaps: list[tuple[int, int]] = []
    for rep in log.recovery:
        if os.path.abspath(rep.path) == os.path.abspath(tp_path):
            gaps.extend(rep.offset_gaps)
    return gaps
