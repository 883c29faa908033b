"""Log compaction (``storage._cleaner``): Kafka's LogCleanerTest cases, adapted.

Every test drives the cleaner directly (``Log.compact`` or ``LogCleaner.clean``) with
a fake clock; the background thread is off (``cleaner=False``) except where it is the
subject.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import streamlog
from streamlog import InvalidRecordError
from streamlog.errors import ConfigError
from streamlog.storage import PartitionLog, prepare_batch
from streamlog.storage._cleaner import (
    CHECKPOINT_NAME,
    LogCleaner,
    OffsetMap,
    finish_swaps,
    read_checkpoint,
)
from streamlog.storage._codec import ATTR_DELETE_HORIZON

T0 = 1_700_000_000.0  # the fake clock's start, seconds
DAY_MS = 24 * 3600 * 1000
SMALL = {"cleanup.policy": "compact", "segment.bytes": 4096}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


@contextmanager
def opened(
    root: str, clock: Clock, config: dict[str, object] | None = None
) -> Iterator[tuple[streamlog.Log, PartitionLog]]:
    with streamlog.open(root, clock=clock, cleaner=False) as log:
        if "t" not in log.topics():
            log.create_topic("t", 1, config or SMALL)
        yield log, log.partition("t", 0)


def put(p: PartitionLog, key: bytes, value: bytes | None, ts: int) -> int:
    return p.append(prepare_batch([value], [key], ts)).base_offset


def read_all(
    p: PartitionLog, start: int | None = None
) -> list[tuple[int, bytes | None, bytes | None]]:
    out = []
    off = p.log_start_offset if start is None else start
    while off < p.end_offset:
        batches = p.read(off)
        for b in batches:
            for o, _ts, k, v, _h in b.records():
                if o >= off:
                    out.append((o, k, v))
        off = batches[-1].next_offset
    return out


def latest(
    records: list[tuple[int, bytes | None, bytes | None]],
) -> dict[bytes | None, bytes | None]:
    state: dict[bytes | None, bytes | None] = {}
    for _o, k, v in records:
        state[k] = v
    return state


def fill(p: PartitionLog, clock: Clock, n: int, keys: int, *, tomb_every: int = 0) -> None:
    for i in range(n):
        value = None if tomb_every and i % tomb_every == tomb_every - 1 else b"v%d" % i
        put(p, b"k%d" % (i % keys), value, clock.ms() - 10_000 + i)


# ---------------------------------------------------------------- configuration


def test_cleanup_policy_spellings_and_compaction_configs() -> None:
    from streamlog import TopicConfig

    for raw, want in [
        ("compact", "compact"),
        ("delete", "delete"),
        ("compact,delete", "compact,delete"),
        ("delete,compact", "compact,delete"),
        (" compact , delete ", "compact,delete"),
    ]:
        cfg = TopicConfig.from_dict({"cleanup.policy": raw})
        assert cfg.cleanup_policy == want
    c = TopicConfig.from_dict({"cleanup.policy": "compact"})
    assert c.compacted and not c.deletes
    d = TopicConfig()
    assert d.min_cleanable_dirty_ratio == 0.5 and d.min_compaction_lag_ms == 0
    assert d.max_compaction_lag_ms == 2**63 - 1 and d.delete_retention_ms == DAY_MS
    assert (
        TopicConfig.from_dict({"min.cleanable.dirty.ratio": "0.25"}).min_cleanable_dirty_ratio
        == 0.25
    )
    for bad in [
        {"cleanup.policy": "compacted"},
        {"cleanup.policy": "compact,compress"},
        {"min.cleanable.dirty.ratio": 1.5},
        {"min.cleanable.dirty.ratio": "nan"},
        {"min.cleanable.dirty.ratio": True},
        {"max.compaction.lag.ms": 0},
        {"min.compaction.lag.ms": 10, "max.compaction.lag.ms": 5},
    ]:
        with pytest.raises(ConfigError):
            TopicConfig.from_dict(bad)


def test_open_refuses_a_bad_cleaner_option(tmp_path: os.PathLike[str]) -> None:
    for bad in ["yes", {"backoff_ms": 0}, {"dedupe_buffer_size": "big"}, {"other": 1}]:
        with pytest.raises(ConfigError):
            streamlog.open(os.fspath(tmp_path), cleaner=bad)


def test_alter_switches_policies(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with streamlog.open(os.fspath(tmp_path), clock=clock, cleaner=False) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096})
        p = log.partition("t", 0)
        p.append(prepare_batch([b"keyless"]))
        with pytest.raises(ConfigError):
            log.compact("t")
        log.alter_topic_config("t", {"cleanup.policy": "compact"})
        with pytest.raises(InvalidRecordError):
            p.append(prepare_batch([b"keyless again"]))
        log.alter_topic_config("t", {"cleanup.policy": "delete"})
        p.append(prepare_batch([b"keyless is fine again"]))


# ---------------------------------------------------------------- keyless records


def test_keyless_records_are_refused_before_any_io(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        put(p, b"k", b"v", clock.ms())
        end, size = p.end_offset, p.size_bytes()
        for batch in (
            prepare_batch([b"x"]),
            prepare_batch([b"x", b"y"], [b"a", None], clock.ms()),
            prepare_batch([b"x", b"y"]),
        ):
            with pytest.raises(InvalidRecordError) as info:
                p.append(batch)
            assert isinstance(info.value, ValueError)
            with pytest.raises(InvalidRecordError):
                p.check_batch(batch)
        assert (p.end_offset, p.size_bytes()) == (end, size)
        prod = log.producer()
        future = prod.send("t", b"no key")
        with pytest.raises(InvalidRecordError):
            future.result(timeout=10)
        assert prod.send("t", b"v", key=b"k").result(timeout=10).offset == end
        prod.close()


def test_cleaner_drops_keyless_records_written_before_the_switch(
    tmp_path: os.PathLike[str],
) -> None:
    clock = Clock()
    with streamlog.open(os.fspath(tmp_path), clock=clock, cleaner=False) as log:
        log.create_topic("t", 1, {"segment.bytes": 4096})
        p = log.partition("t", 0)
        for i in range(30):
            p.append(prepare_batch([b"x" * 100], None if i % 2 else [b"k%d" % i], clock.ms()))
        p.roll()
        log.alter_topic_config("t", {"cleanup.policy": "compact"})
        log.compact("t")
        kept = read_all(p)
        # (the last batch of a round is kept whole, so that the log does not end in a gap)
        assert kept[-1] == (29, None, b"x" * 100)
        assert all(k is not None for _o, k, _v in kept[:-1])
        assert {k for _o, k, _v in kept[:-1]} == {b"k%d" % i for i in range(0, 30, 2)}


# ---------------------------------------------------------------- the keep rule


def test_latest_per_key_kept_offsets_and_order_unchanged(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 300, 7)
        before = read_all(p)
        stats = log.compact("t")
        after = read_all(p)
        assert stats.partitions_cleaned == 1 and stats.records_after < stats.records_before
        assert stats.bytes_after < stats.bytes_before and stats.records_removed > 0
        assert latest(after) == latest(before)
        original = dict((o, (k, v)) for o, k, v in before)
        assert all(original[o] == (k, v) for o, k, v in after), "offsets moved"
        offs = [o for o, _k, _v in after]
        assert offs == sorted(offs) and len(set(offs)) == len(offs)
        assert p.end_offset == before[-1][0] + 1
        p._check()
        assert streamlog.check(log.path).ok


def test_active_segment_is_never_cleaned(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock, {"cleanup.policy": "compact"}) as (log, p):
        fill(p, clock, 50, 2)  # one (active) segment only
        assert p.segment_count == 1
        before = read_all(p)
        stats = log.compact("t")
        assert stats.segments_cleaned == 0
        assert read_all(p) == before
        active_base = list(p._segments.keys())[-1]
        p.roll()
        fill(p, clock, 10, 2)  # a new active segment, superseding everything
        log.compact("t")
        after = read_all(p)
        active = [r for r in after if r[0] >= p.segments()[-1].base_offset]
        assert len(active) == 10, "records of the active segment were removed"
        assert active_base == 0


def test_a_consumer_positioned_midway_reads_the_cleaned_log(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 200, 5)
        before = read_all(p)
        log.compact("t")
        for start in (0, 1, 57, 100, 150, 199):
            got = read_all(p, start)
            assert got and got[0][0] >= start
            # every record from ``start`` on that survived is read, from the next one
            expected = [r for r in read_all(p) if r[0] >= start]
            assert got == expected
            assert latest([r for r in before if r[0] >= start]).keys() >= latest(got).keys()
        with log.consumer(auto_offset_reset="earliest") as c:
            from streamlog import TopicPartition

            tp = TopicPartition("t", 0)
            c.assign([tp])
            c.seek(tp, 37)
            seen = []
            while True:
                batch = c.poll(timeout_ms=200)
                if not batch:
                    break
                seen += [(r.offset, r.key, r.value) for r in batch[tp]]
            assert seen == [r for r in read_all(p) if r[0] >= 37]


# ---------------------------------------------------------------- tombstones


def _horizons(p: PartitionLog) -> list[int | None]:
    from streamlog.storage._cleaner import _delete_horizon

    return [_delete_horizon(s) for s in p.segments()[:-1]]


def test_tombstones_live_until_their_delete_horizon(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    cfg = {**SMALL, "delete.retention.ms": 60_000}
    with opened(os.fspath(tmp_path), clock, cfg) as (log, p):
        for i in range(60):
            put(p, b"k%d" % (i % 4), b"x" * 80, clock.ms())
        dead = put(p, b"k0", None, clock.ms())  # a tombstone, superseding k0
        for i in range(60):
            put(p, b"j%d" % (i % 3), b"y" * 80, clock.ms())  # push it out of the active segment
        log.compact("t")
        kept = read_all(p)
        assert (dead, b"k0", None) in kept, "a tombstone went before its horizon"
        assert not [r for r in kept if r[1] == b"k0" and r[2] is not None]
        horizons = [h for h in _horizons(p) if h is not None]
        assert horizons and all(h == clock.ms() + 60_000 for h in horizons)
        clock.now += 30  # not yet
        log.compact("t")
        assert (dead, b"k0", None) in read_all(p)
        clock.now += 31  # past the horizon set by the first cleaning
        stats = log.compact("t")
        assert stats.tombstones_removed == 1
        assert b"k0" not in latest(read_all(p))
        p._check()


def test_the_horizon_is_written_in_the_seal(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 100, 3, tomb_every=10)
        log.compact("t")
        seg = p.segments()[0]
        with open(seg.path, "rb") as f:
            raw = f.read()
        from streamlog.storage._codec import HEADER

        fields = HEADER.unpack_from(raw, len(raw) - 72)
        assert fields[3] & ATTR_DELETE_HORIZON and fields[8] == clock.ms() + DAY_MS


# ---------------------------------------------------------------- what is not cleanable


def test_min_compaction_lag_leaves_new_segments_alone(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    cfg = {**SMALL, "min.compaction.lag.ms": 60_000}
    with opened(os.fspath(tmp_path), clock, cfg) as (log, p):
        for i in range(100):  # old records
            put(p, b"k%d" % (i % 3), b"x" * 60, clock.ms() - 120_000)
        p.roll()
        old_end = p.end_offset
        for i in range(100):  # new records, within the lag
            put(p, b"k%d" % (i % 3), b"y" * 60, clock.ms())
        before = read_all(p)
        log.compact("t")
        after = read_all(p)
        assert [r for r in after if r[0] >= old_end] == [r for r in before if r[0] >= old_end]
        assert len([r for r in after if r[0] < old_end]) < old_end  # the old part was cleaned
        clock.now += 120
        log.compact("t")
        assert len(read_all(p)) < len(after)


def test_nothing_at_or_past_the_lso_is_cleaned(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        for i in range(40):
            put(p, b"k%d" % (i % 2), b"a" * 60, clock.ms())
        txn_batch = prepare_batch(
            [b"open"],
            [b"k0"],
            clock.ms(),
            transactional=True,
            producer_id=7,
            producer_epoch=0,
            base_sequence=0,
        )
        lso = p.append(txn_batch).base_offset
        for i in range(120):
            put(p, b"k%d" % (i % 2), b"b" * 60, clock.ms())
        assert p.last_stable_offset() == lso
        before = read_all(p)
        log.compact("t")
        after = read_all(p)
        assert [r for r in after if r[0] >= lso] == [r for r in before if r[0] >= lso]
        assert len([r for r in after if r[0] < lso]) < lso
        p.write_marker(7, 0, 1)  # commit: the LSO moves to the end
        log.compact("t")
        assert len(read_all(p)) < len(after)
        assert [r for r in read_all(p) if r[0] == lso] == [(lso, b"k0", b"open")], (
            "the producer's last batch is kept whole"
        )


def test_aborted_transactions_are_removed_and_markers_kept(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        for seq in range(3):  # an aborted transaction of producer 5
            p.append(
                prepare_batch(
                    [b"aborted%d" % seq],
                    [b"a%d" % seq],
                    clock.ms(),
                    transactional=True,
                    producer_id=5,
                    producer_epoch=0,
                    base_sequence=seq,
                )
            )
        marker = p.write_marker(5, 0, 0)
        assert marker is not None
        p.append(
            prepare_batch(  # producer 5 goes on: its last batch is this one
                [b"later"],
                [b"z"],
                clock.ms(),
                producer_id=5,
                producer_epoch=0,
                base_sequence=3,
            )
        )
        fill(p, clock, 120, 3)
        log.compact("t")
        kept = read_all(p)
        assert not [r for r in kept if r[2] and r[2].startswith(b"aborted")]
        markers = [b for b in p.read(marker) if b.is_control]
        assert markers and markers[0].base_offset == marker
        p._check()


# ---------------------------------------------------------------- producer state


def test_idempotent_producer_dedup_survives_cleaning(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    root = os.fspath(tmp_path)
    with opened(root, clock) as (log, p):
        results = []
        for seq in range(40):
            b = prepare_batch(
                [b"v%d" % seq],
                [b"k"],
                clock.ms(),
                producer_id=9,
                producer_epoch=0,
                base_sequence=seq,
            )
            results.append(p.append(b))
        fill(p, clock, 100, 2)
        log.compact("t")
        last = prepare_batch(
            [b"v39"], [b"k"], clock.ms(), producer_id=9, producer_epoch=0, base_sequence=39
        )
        assert p.append(last).base_offset == results[-1].base_offset  # a duplicate
        assert p.producer_state().entries[9].last_seq == 39
    with opened(root, clock) as (log, p):  # rebuilt from the cleaned log
        assert p.producer_state().entries[9].last_seq == 39
        again = prepare_batch(
            [b"v39"], [b"k"], clock.ms(), producer_id=9, producer_epoch=0, base_sequence=39
        )
        assert p.append(again).base_offset == results[-1].base_offset
        nxt = prepare_batch(
            [b"v40"], [b"k"], clock.ms(), producer_id=9, producer_epoch=0, base_sequence=40
        )
        assert p.append(nxt).base_offset == p.end_offset - 1


# ---------------------------------------------------------------- the offset map


def test_offset_map_is_bounded() -> None:
    m = OffsetMap(OffsetMap.BYTES_PER_ENTRY * 10)
    assert m.slots == 9
    for i in range(9):
        assert m.put(b"k%d" % i, i)
    assert not m.put(b"new", 100)
    assert m.put(b"k3", 50) and m.get(b"k3") == 50 and m.get(b"new") == -1


def test_a_full_offset_map_cleans_up_to_where_it_got(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (_log, p):
        for i in range(400):
            put(p, b"key-%d" % (i % 50), b"v%d" % i, clock.ms())
        before = read_all(p)
        cleaner = LogCleaner(dedupe_buffer_size=OffsetMap.BYTES_PER_ENTRY * 25, clock=clock)
        rounds = 0
        while True:
            r = cleaner.clean(p)
            if r is None or (r.segments_cleaned == 0 and not r.map_full):
                break
            rounds += 1
            assert latest(read_all(p)) == latest(before)
            assert r.cleaned_up_to == read_checkpoint(p.path)
            if rounds == 1:
                assert r.map_full and r.cleaned_up_to < p.segments()[-1].base_offset
            if rounds > 50:
                raise AssertionError("no progress")
        assert rounds >= 2
        sealed_end = p.segments()[-1].base_offset
        kept_sealed = [r for r in read_all(p) if r[0] < sealed_end]
        keys = [k for _o, k, _v in kept_sealed]
        assert len(keys) == len(set(keys)), "a key left twice in the cleaned part"
        p._check()


# ---------------------------------------------------------------- checkpoint, leftovers


def test_checkpoint_is_written_and_a_damaged_one_means_all_dirty(
    tmp_path: os.PathLike[str],
) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 200, 4)
        log.compact("t")
        first = read_checkpoint(p.path)
        assert first is not None and 0 < first <= p.segments()[-1].base_offset
        with open(os.path.join(p.path, CHECKPOINT_NAME), "r+b") as f:
            f.write(b"\xff")
        assert read_checkpoint(p.path) is None
        snapshot = read_all(p)
        log.compact("t")  # everything dirty again: the same result
        assert latest(read_all(p)) == latest(snapshot)
        assert read_checkpoint(p.path) == first


def test_leftover_swap_files_are_finished_or_dropped(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 100, 4)
        d = p.path
        # an uncommitted rewrite (its log still .cleaned) and one of a deleted segment
        for name in (
            "00000000000000000000.log.cleaned",
            "00000000000000000000.index.swap",
            "00000000000000099999.log.swap",
        ):
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"junk")
        report = streamlog.check(log.path)
        assert {pr.kind for pr in report.problems} == {"temporary"}
        assert all("compaction" in pr.detail for pr in report.problems)
        before = read_all(p)
        acted = finish_swaps(d)
        assert len(acted) == 3
        assert not [n for n in os.listdir(d) if n.endswith((".cleaned", ".swap"))]
        assert read_all(p) == before
        assert streamlog.check(log.path).ok


# ---------------------------------------------------------------- two handles, one directory


def test_another_handle_sees_the_swap_and_reads_on(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    root = os.fspath(tmp_path)
    with opened(root, clock) as (log, p):
        fill(p, clock, 300, 6)
        before = read_all(p)
        other = PartitionLog(p.path, p.config, clock=clock)
        try:
            # the other handle has every sealed segment open (and mapped)
            assert read_all(other) == before
            held = [s for s in other._segments.values() if s is not None]
            half = other.read(150)  # a read in progress, batches in hand
            log.compact("t")
            # batches read before the swap stay readable (the old files are renamed over)
            assert [r[:1] for b in half for r in b.records()]
            # the old segment objects still read (more records, same offsets)
            for seg in held[:-1]:
                out: list = []
                seg.read(seg.base_offset, 1 << 30, seg.tail, out)
                assert out
            after = read_all(other)  # notices the new generation and reads the new files
            assert after == read_all(p)
            assert latest(after) == latest(before)
            other._check()
            put(other, b"k0", b"from the other", clock.ms())
            assert read_all(p)[-1] == (p.end_offset - 1, b"k0", b"from the other")
        finally:
            other.close()


def test_retention_applies_to_compact_delete_only(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    root = os.fspath(tmp_path)
    with streamlog.open(root, clock=clock, cleaner=False) as log:
        for name, policy in (("c", "compact"), ("cd", "compact,delete")):
            log.create_topic(
                name, 1, {"cleanup.policy": policy, "segment.bytes": 4096, "retention.ms": 1000}
            )
            p = log.partition(name, 0)
            for i in range(100):
                put(p, b"k%d" % i, b"x" * 60, clock.ms())
        clock.now += 10
        log.enforce_retention()
        assert log.partition("c", 0).log_start_offset == 0
        assert log.partition("cd", 0).log_start_offset > 0


def test_background_cleaner_cleans_the_dirtiest_partition(tmp_path: os.PathLike[str]) -> None:
    from streamlog.storage._cleaner import CleanerThread

    clock = Clock()
    root = os.fspath(tmp_path)
    with streamlog.open(root, clock=clock, cleaner={"backoff_ms": 3_600_000}) as log:
        log.create_topic("t", 2, SMALL)
        log.create_topic("plain", 1, {"segment.bytes": 4096})
        thread = log._manager._cleaner_thread
        assert isinstance(thread, CleanerThread)
        for part, n in ((0, 300), (1, 40)):
            p = log.partition("t", part)
            for i in range(n):
                put(p, b"k%d" % (i % 3), b"x" * 60, clock.ms())
        before = log.partition("t", 0).size_bytes()
        assert thread.run_once() >= 1  # (runs in this thread: no timing involved)
        assert log.partition("t", 0).size_bytes() < before
        assert thread.run_once() == 0  # nothing dirty enough any more
    with streamlog.open(root, cleaner=False) as log:
        assert log._manager._cleaner_thread is None


def test_a_swap_file_that_is_not_a_rewrite_is_dropped(tmp_path: os.PathLike[str]) -> None:
    """Only a sealed rewrite ending where the live sealed segment ends is finished."""
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 200, 4)
        before = read_all(p)
        sealed = p.segments()[0]
        active = p.segments()[-1]
        with open(sealed.path + ".swap", "wb") as f:
            f.write(os.urandom(200))  # garbage under a sealed segment's name
        with open(sealed.path, "rb") as f:
            whole = f.read()
        with open(active.path + ".swap", "wb") as f:
            f.write(whole)  # a valid sealed segment, but under the active one's name
        assert len(finish_swaps(p.path)) == 2
        assert read_all(p) == before
        assert streamlog.check(log.path).ok


# ---------------------------------------------------------------- merging


def _scattered(i: int, keys: int) -> bytes:
    """A key order whose latest writes are spread over the log (cleaned segments of all
    sizes, merged in several groups)."""
    return b"k%d" % ((i * 2654435761 % 2**32) % keys if i % 3 else i % keys)


def _sizes(p: PartitionLog) -> list[tuple[int, int, int | None]]:
    """(base offset, size in bytes, next base) of every segment."""
    return [(s.base_offset, s.size_bytes, s.next_base) for s in p.segments()]


def test_small_cleaned_segments_are_merged(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    cfg = {**SMALL, "index.interval.bytes": 256}
    with opened(os.fspath(tmp_path), clock, cfg) as (log, p):
        for i in range(600):
            put(p, _scattered(i, 80), b"v%d-" % i + b"x" * (i % 97), clock.ms())
        before = read_all(p)
        sealed_before = [b for b, _s, _n in _sizes(p)[:-1]]
        stats = log.compact("t")
        after = read_all(p)
        segs = _sizes(p)
        assert stats.segments_cleaned == len(sealed_before)
        assert p.segment_count < len(sealed_before) // 2 + 1, segs
        # offsets and order unchanged, the latest of every key kept
        original = {o: (k, v) for o, k, v in before}
        assert all(original[o] == (k, v) for o, k, v in after)
        assert latest(after) == latest(before)
        # merged segments are named by their first base, end where their last ended,
        # and stay within segment.bytes; the chain of seals is whole
        assert segs[0][0] == 0
        assert {b for b, _s, _n in segs} <= set(sealed_before) | {segs[-1][0]}
        for (_base, size, nxt), (next_base, _s2, _n2) in itertools.pairwise(segs):
            assert nxt == next_base and size <= 4096 + 72
        p._check()
        assert streamlog.check(log.path).ok
        # nothing left to merge: a second round rewrites nothing
        again = log.compact("t")
        assert again.segments_cleaned == 0 and _sizes(p) == segs
    with opened(os.fspath(tmp_path), clock, cfg) as (log, p):  # reopened: the same log
        assert read_all(p) == after
        p._check()


def test_a_round_merges_up_to_segment_bytes(tmp_path: os.PathLike[str]) -> None:
    """A segment joins the group before it only while the group stays within
    segment.bytes (its frames and a seal)."""
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        for i in range(400):
            put(p, b"u%d" % i, b"y" * 40, clock.ms())  # unique keys: nothing superseded
        p.roll()
        for i in range(400):
            put(p, b"u%d" % i, None, clock.ms())  # ... until all are deleted
        p.roll()
        count = p.segment_count
        log.compact("t")
        # (a segment's frames may fill segment.bytes, its seal comes on top: a merged
        # group is held to less, frames and seal within segment.bytes)
        assert all(size <= 4096 + 72 for _b, size, _n in _sizes(p))
        assert p.segment_count < count * 2 // 3
        # the tombstones got their horizon; past it they go, and the empty segments merge
        clock.now += DAY_MS / 1000 + 1
        stats = log.compact("t")
        assert stats.tombstones_removed == 399  # (the round's last batch is kept whole)
        assert p.segment_count == 2
        assert [r[0] for r in read_all(p)] == [799]
        p._check()


def test_the_index_limits_a_merged_group(tmp_path: os.PathLike[str]) -> None:
    """Both indexes of a merged segment stay within segment.index.bytes."""
    clock = Clock()
    cfg = {
        **SMALL,
        "segment.bytes": 64 * 1024,
        "segment.index.bytes": 4096,
        "index.interval.bytes": 0,  # an entry for every batch but the first
    }
    with opened(os.fspath(tmp_path), clock, cfg) as (log, p):
        for i in range(1200):
            put(p, b"k%d" % i, b"z" * 8, clock.ms())
            if i % 100 == 99:
                p.roll()
        log.compact("t")
        for seg in p.segments()[:-1]:
            assert seg.offset_index.count <= 4096 // 8
            assert seg.time_index.count <= 4096 // 12
        assert p.segment_count < 12
        p._check()
        assert streamlog.check(log.path).ok


def test_the_rules_of_a_group(tmp_path: os.PathLike[str]) -> None:
    """A segment joins the group before it while the frames and a seal fit segment.bytes,
    the offsets fit 32 bits of the group's base, and the tombstones it keeps have the
    group's delete horizon; a first segment always fits."""
    from streamlog.storage._cleaner import _Cleaned, _Group
    from streamlog.storage._segment import MAX_RELATIVE

    class _Log:
        config = streamlog.TopicConfig.from_dict(
            {"cleanup.policy": "compact", "segment.bytes": 4096}
        )

    def cleaned(
        base: int, nxt: int, size: int = 0, tombstones: bool = False, horizon: int = 1
    ) -> _Cleaned:
        frames = [(bytes(size), nxt - 1, 0)] if size else []
        return _Cleaned(base, nxt, 0, 72, frames, False, 1, horizon, tombstones, False)

    root = os.fspath(tmp_path)
    group = _Group(root, 0, _Log())  # type: ignore[arg-type]
    assert group.add(cleaned(0, 10, 3000, tombstones=True, horizon=7))
    assert not group.add(cleaned(10, 20, 1032))  # 3000 + 1032 + a seal > 4096
    assert not group.add(cleaned(10, 20, 8, tombstones=True, horizon=5))  # another horizon
    assert group.add(cleaned(10, 20, 8, tombstones=True, horizon=7))
    assert group.add(cleaned(20, 30, 1016))  # (no tombstone: any horizon) 4024 + 72 = 4096
    assert group.add(cleaned(30, 31))  # a segment cleaned empty adds nothing: it fits
    assert not group.add(cleaned(31, 40, 8))  # (full)
    assert [c.base for c in group.members] == [0, 10, 20, 30] and group.seal_horizon() == 7
    group.close()
    group = _Group(root, 0, _Log())  # type: ignore[arg-type]
    assert group.add(cleaned(0, 10, 5000))  # a first segment always fits
    group.close()
    group = _Group(root, 0, _Log())  # type: ignore[arg-type]
    assert group.add(cleaned(0, 10))
    assert group.add(cleaned(10, MAX_RELATIVE + 1))  # the last offset, MAX_RELATIVE: fits
    assert not group.add(cleaned(MAX_RELATIVE + 1, MAX_RELATIVE + 3))
    group.close()


def test_tombstones_of_different_horizons_are_not_merged(tmp_path: os.PathLike[str]) -> None:
    """The horizon is kept per segment: a tombstone's removal is neither brought forward
    nor put off by merging (segments that keep tombstones merge only with the same
    horizon); once the older ones are gone, the segments merge."""
    clock = Clock()
    cfg = {**SMALL, "delete.retention.ms": 60_000}
    with opened(os.fspath(tmp_path), clock, cfg) as (log, p):
        for i in range(20):
            put(p, b"a%d" % i, b"x" * 50, clock.ms())
        first = [put(p, b"a%d" % i, None, clock.ms()) for i in range(3)]
        p.roll()
        log.compact("t")  # first cleaning: horizon T0 + 60 s
        assert p.segment_count == 2
        clock.now += 30
        second = [put(p, b"b%d" % i, None, clock.ms()) for i in range(3)]
        put(p, b"c", b"after", clock.ms())
        p.roll()
        log.compact("t")  # the new segment's horizon is T0 + 90 s: not merged
        horizons = _horizons(p)
        assert len(horizons) == 2 and horizons[0] != horizons[1], horizons
        kept = {r[0] for r in read_all(p)}
        assert set(first) | set(second) <= kept
        clock.now += 31  # past the first horizon only
        stats = log.compact("t")
        kept = {r[0] for r in read_all(p)}
        assert not set(first) & kept and set(second) <= kept
        assert stats.tombstones_removed == 3
        assert p.segment_count == 2  # merged now: the first segment keeps no tombstone
        assert _horizons(p) == [int((T0 + 30) * 1000) + 60_000]
        p._check()


def _interrupt(point: str, n: int = 1, action: object = None) -> object:
    """A context manager making the n-th pass of crash point ``point`` raise (a cleaner
    "killed" there, its process still alive: what it wrote stays as it is), or call
    ``action`` instead."""
    import streamlog.storage._cleaner as cleaner_mod

    class Ctx:
        def __enter__(self) -> None:
            self.real = cleaner_mod.crashpoint
            counts: dict[str, int] = {}

            def fake(name: str) -> None:
                counts[name] = counts.get(name, 0) + 1
                if name == point and counts[name] == n:
                    if action is None:
                        raise _Killed(name)
                    action()  # type: ignore[operator]

            cleaner_mod.crashpoint = fake

        def __exit__(self, *exc: object) -> None:
            cleaner_mod.crashpoint = self.real

    return Ctx()


class _Killed(Exception):
    pass


@pytest.mark.parametrize(
    "point",
    [
        "clean.cleaned_written",
        "clean.swap_renamed",
        "clean.log_replaced",
        "clean.merged_synced",
        "clean.superseded_deleted",
        "clean.indexes_replaced",
    ],
)
def test_an_interrupted_group_swap_reads_whole_and_is_finished(
    tmp_path: os.PathLike[str], point: str
) -> None:
    """Killed anywhere in a group swap: the handle that was open, a partition opened
    afresh (it lists the directory: the segments the merged one supersedes are left
    out while a ``.swap`` file says a swap is unfinished) and ``check`` (which reports
    them as ``temporary``) see every record once; the next round finishes the swap."""
    clock = Clock()
    root = os.fspath(tmp_path)
    with opened(root, clock) as (log, p):
        for i in range(300):
            put(p, _scattered(i, 80), b"v%d-" % i + b"x" * (i % 97), clock.ms())
        before = read_all(p)
        with _interrupt(point), pytest.raises(_Killed):  # type: ignore[attr-defined]
            log.compact("t")
        seen = read_all(p)
        original = dict((o, (k, v)) for o, k, v in before)
        assert all(original[o] == (k, v) for o, k, v in seen)
        assert latest(seen) == latest(before)
        fresh = PartitionLog(p.path, p.config, clock=clock)
        try:
            assert read_all(fresh) == seen
        finally:
            fresh.close()
        report = streamlog.check(root)
        assert {pr.kind for pr in report.problems} <= {"temporary"}, report
        if point not in ("clean.cleaned_written", "clean.indexes_replaced"):
            assert any(n.endswith(".swap") for n in os.listdir(p.path))
        log.compact("t")
        assert not [n for n in os.listdir(p.path) if n.endswith((".swap", ".cleaned"))]
        assert latest(read_all(p)) == latest(before)
        p._check()
    assert streamlog.check(root).ok


def test_superseded_segments_are_left_out_of_a_listing(tmp_path: os.PathLike[str]) -> None:
    from streamlog.storage._cleaner import superseded

    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        for i in range(300):
            put(p, _scattered(i, 80), b"v%d-" % i + b"x" * (i % 97), clock.ms())
        bases = [s.base_offset for s in p.segments()]
        with _interrupt("clean.superseded_deleted"), pytest.raises(_Killed):  # type: ignore[attr-defined]
            log.compact("t")
        listed = sorted(
            int(n[:20]) for n in os.listdir(p.path) if n.endswith(".log")
        )
        gone = superseded(p.path, listed, listed)
        assert gone and gone < set(bases)
        assert p._list_bases() == [b for b in listed if b not in gone]
        # without a .swap file left, a listing looks at no seal (recovery sweeps)
        log.compact("t")
        assert p._list_bases() == sorted(
            int(n[:20]) for n in os.listdir(p.path) if n.endswith(".log")
        )


def test_retention_deleting_a_group_under_the_cleaner_wins(tmp_path: os.PathLike[str]) -> None:
    """delete_records deletes the first segment of a group between its rewrite and its
    swap: the swap is dropped (the records stay deleted) and the log stays whole."""
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        for i in range(300):
            put(p, _scattered(i, 80), b"v%d-" % i + b"x" * (i % 97), clock.ms())
        second = p.segments()[1].base_offset
        target = second + 1

        def delete() -> None:
            p.delete_records(target)

        with _interrupt("clean.swap_renamed", action=delete):  # type: ignore[attr-defined]
            log.compact("t")
        assert p.log_start_offset == target
        assert read_all(p)[0][0] >= target
        assert not [n for n in os.listdir(p.path) if n.endswith((".swap", ".cleaned"))]
        p._check()
        assert streamlog.check(log.path).ok
        log.compact("t")  # (the next round merges what is left)
        assert p.log_start_offset == target and read_all(p)[0][0] >= target
        p._check()


def test_the_log_start_inside_a_merged_segment(tmp_path: os.PathLike[str]) -> None:
    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        for i in range(300):
            put(p, _scattered(i, 80), b"v%d-" % i + b"x" * (i % 97), clock.ms())
        log.compact("t")
        first = p.segments()[0]
        assert first.next_base is not None and first.next_base > 2
        kept = [r for r in read_all(p) if r[0] < first.next_base]
        middle = kept[len(kept) // 2][0]
        assert p.delete_records(middle) == middle
        assert p.segments()[0].base_offset == 0  # (it holds records from the start on)
        assert read_all(p)[0][0] == middle
        p.enforce_retention()
        log.compact("t")
        assert read_all(p)[0][0] == middle
        p._check()


# ---------------------------------------------------------------- tombstone rounds


def test_background_cleaner_removes_tombstones_past_their_horizon(
    tmp_path: os.PathLike[str],
) -> None:
    """With nothing dirty enough, the background cleaner still runs a round once a
    tombstone it kept has passed its delete horizon (the time is in the checkpoint)."""
    from streamlog.storage._cleaner import CleanerThread, read_tombstones_due

    clock = Clock()
    root = os.fspath(tmp_path)
    cfg = {**SMALL, "delete.retention.ms": 60_000}
    with streamlog.open(root, clock=clock, cleaner={"backoff_ms": 3_600_000}) as log:
        log.create_topic("t", 1, cfg)
        thread = log._manager._cleaner_thread
        assert isinstance(thread, CleanerThread)
        p = log.partition("t", 0)
        for i in range(200):
            put(p, b"k%d" % (i % 20), b"x" * 60, clock.ms())
        dead = [put(p, b"k%d" % i, None, clock.ms()) for i in range(5)]
        for i in range(60):
            put(p, b"j%d" % (i % 3), b"y" * 60, clock.ms())
        assert thread.run_once() == 1  # dirty: cleaned, the tombstones get their horizon
        assert read_tombstones_due(p.path) == clock.ms() + 60_000
        assert {r[0] for r in read_all(p)} >= set(dead)
        clock.now += 30
        assert log._manager.cleaner.needs_cleaning(p) is None  # (nothing dirty, not due)
        assert thread.run_once() == 0
        clock.now += 31
        assert log._manager.cleaner.needs_cleaning(p) is not None
        assert thread.run_once() == 1
        assert not {r[0] for r in read_all(p)} & set(dead)
        assert read_tombstones_due(p.path) is None  # (it kept none)
        assert thread.run_once() == 0


def test_a_version_1_checkpoint_is_read(tmp_path: os.PathLike[str]) -> None:
    import struct

    import xxhash

    from streamlog.storage._cleaner import read_tombstones_due

    clock = Clock()
    with opened(os.fspath(tmp_path), clock) as (log, p):
        fill(p, clock, 200, 4)
        put(p, b"gone", None, clock.ms())
        put(p, b"k0", b"last", clock.ms())  # (the round's last batch is kept whole)
        p.roll()
        log.compact("t")
        first = read_checkpoint(p.path)
        assert first is not None and read_tombstones_due(p.path) == clock.ms() + DAY_MS
        head = struct.pack("<IIq", 0x4B434C53, 1, first)
        with open(os.path.join(p.path, CHECKPOINT_NAME), "wb") as f:
            f.write(head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head)))
        assert read_checkpoint(p.path) == first and read_tombstones_due(p.path) is None
        stats = log.compact("t")
        assert stats.segments_cleaned == 0  # (not dirty: the checkpoint was understood)
        assert os.path.getsize(os.path.join(p.path, CHECKPOINT_NAME)) == 32
