"""The hot path's cheap checks still see what other processes change.

``LogManager.partition_entry`` trusts a cached topic on the mapped catalog change
counter (``meta/catalog.version``) instead of a ``stat`` of its file, and a reader's
partition refresh leaves the indexes to the lookups and writers that need them
(``Segment.refresh``). These cases make the changes in another process (or, for the
one the counter cannot see, by hand) and check they are noticed all the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import streamlog
from streamlog import TopicPartition, _layout
from streamlog._check import check
from streamlog.coordination import _catalog
from streamlog.errors import UnknownPartitionError, UnknownTopicError
from streamlog.storage._codec import prepare_batch

pytestmark = pytest.mark.multiprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _in_other_process(data: str, body: str) -> None:
    code = "import streamlog\n" + f"log = streamlog.open({data!r})\n" + textwrap.dedent(body)
    code += "log.close()\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


def test_partition_entry_sees_a_topic_deleted_and_created_again_elsewhere(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1)
        manager = log._manager
        old_id, _ = manager.partition_entry("t", 0)
        assert manager.partition_entry("t", 0)[0] == old_id  # (cached on the counter now)
        _in_other_process(data_dir, 'log.delete_topic("t")\n')
        with pytest.raises(UnknownTopicError):
            manager.partition_entry("t", 0)
        _in_other_process(data_dir, 'log.create_topic("t", 3)\n')
        new_id, plog = manager.partition_entry("t", 2)  # grown as well: 3 partitions
        assert new_id != old_id
        assert plog.end_offset == 0


def test_partition_entry_sees_a_topic_grown_elsewhere(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1)
        manager = log._manager
        manager.partition_entry("t", 0)
        with pytest.raises(UnknownPartitionError):
            manager.partition_entry("t", 1)
        _in_other_process(data_dir, 'log.create_partitions("t", 2)\n')
        manager.partition_entry("t", 1)


def test_a_producer_stops_writing_to_a_topic_deleted_elsewhere(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1)
        with log.producer(acks=1, linger_ms=0) as producer:
            assert producer.send("t", b"a").result(10).offset == 0
            _in_other_process(data_dir, 'log.delete_topic("t")\n')
            with pytest.raises(UnknownTopicError):
                producer.send("t", b"b").result(10)  # (raised by send, or by its future)


def test_a_catalog_file_changed_behind_the_counter_is_seen_after_the_recheck(
    data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change the counter misses (by hand here; or a change that crashed before its
    bump) is seen once ``RECHECK_S`` has passed since the file was last looked at."""
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1)
        manager = log._manager
        manager.partition_entry("t", 0)
        path = _layout.topic_meta_file(data_dir, "t")
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        meta["partitions"] = 2
        os.makedirs(os.path.join(_layout.topic_dir(data_dir, "t"), "1"), exist_ok=True)
        tmp = path + ".hand"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(tmp, path)  # no counter bump
        monkeypatch.setattr(_catalog, "RECHECK_S", 0.0)
        manager.partition_entry("t", 1)  # the file is looked at again


def test_reads_see_appends_by_another_process_and_its_index_entries_are_kept(
    data_dir: str,
) -> None:
    """A reader's refresh does not refresh the indexes; the entries the other writer
    made are still learnt before this process appends (never written over), and a
    lookup past the last known entry finds them."""
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1, {"index.interval.bytes": 256})
        plog = log.partition("t", 0)
        plog.append(prepare_batch([b"x" * 300]))
        assert plog.read(0) and plog.end_offset == 1
        _in_other_process(
            data_dir,
            """
            from streamlog.storage._codec import prepare_batch
            p = log.partition("t", 0)
            for i in range(200):
                p.append(prepare_batch([b"o%d" % i + b"y" * 300]))
            """,
        )
        assert plog.end_offset == 201
        seg = plog.segments()[-1]
        known = seg.offset_index.count  # (not refreshed by the reads)
        got = plog.read(150, 1)
        assert got[0].base_offset == 150
        assert seg.offset_index.count > known  # the lookup learnt the other's entries
        assert next(iter(got[0].records()))[3] == b"o149" + b"y" * 300
        consumer = log.consumer(auto_offset_reset="earliest")
        tp = TopicPartition("t", 0)
        consumer.assign([tp])
        seen = []
        while len(seen) < 201:
            for records in consumer.poll(timeout_ms=1000).values():
                seen.extend(r.offset for r in records)
        assert seen == list(range(201))
        assert seg.offset_index.count >= known
        for _ in range(50):  # this process appends after the other one's index entries
            plog.append(prepare_batch([b"z" * 300]))
        assert plog.end_offset == 251
        assert seg.indexes_sane()
        consumer.close()
    report = check(data_dir)
    assert not report.problems, report.problems


def test_log_start_moved_by_another_process_is_seen(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1)
        plog = log.partition("t", 0)
        for _ in range(10):
            plog.append(prepare_batch([b"v"]))
        assert plog.log_start_offset == 0
        assert plog.read(0)[0].base_offset == 0
        _in_other_process(
            data_dir,
            """
            from streamlog import TopicPartition
            log.delete_records({TopicPartition("t", 0): 7})
            """,
        )
        assert plog.log_start_offset == 7
        with pytest.raises(streamlog.OffsetOutOfRangeError):
            plog.read(3)
        assert plog.read(7)[0].base_offset == 7
