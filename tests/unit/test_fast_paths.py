"""Fast paths of the latency and random-read paths give what the general ones do.

- ``prepare_batch`` of one uncompressed record: the same bytes and checks;
- ``PartitionState.log_start``: cached on the durable words, a change or damage seen;
- the iterator over a dense batch, whose position is compared by identity;
- ``TopicCatalog.current``: a change through any catalog (the counter) is seen at once.
"""

from __future__ import annotations

import os

import msgpack
import pytest

import streamlog
from streamlog import TopicPartition
from streamlog.errors import UnknownTopicError
from streamlog.storage._codec import (
    ATTR_CONTROL,
    ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL,
    HEADER,
    RecordBatch,
    prepare_batch,
)
from streamlog.storage._state import PartitionState

TP = TopicPartition("t", 0)


def _general(values, keys, timestamps, headers):  # type: ignore[no-untyped-def]
    """The payload the general path writes for these columns (prepare_batch's format)."""
    if keys is not None and all(k is None for k in keys):
        keys = None
    flat = None
    if headers is not None and any(headers):
        flat = [[x for pair in h for x in pair] if h else None for h in headers]
    return msgpack.packb([None, None, keys, values, flat])


@pytest.mark.parametrize(
    ("values", "keys", "timestamps", "headers"),
    [
        ([b"v"], None, 0, None),
        ([b"v"], [b"k"], [5], None),
        ([None], [None], 7, [None]),
        ([b""], [b"k"], (9,), [[("h", b"1"), ("h", None)]]),
        ((b"v",), (b"k",), [3], [[]]),
    ],
)
def test_one_record_is_encoded_as_the_general_path_does(values, keys, timestamps, headers) -> None:  # type: ignore[no-untyped-def]
    pb = prepare_batch(values, keys, timestamps, headers)
    assert pb.payload == _general(values, keys, timestamps, headers)
    assert pb.payload_size == len(pb.payload) and pb.record_count == 1
    ts = timestamps if isinstance(timestamps, int) else timestamps[0]
    assert (pb.base_timestamp, pb.max_timestamp, pb.attributes) == (ts, ts, 0)
    frame = pb.frame(10)
    batch = RecordBatch(HEADER.unpack_from(frame, 0), frame[HEADER.size :], 0)
    [(offset, stamp, key, value, heads)] = list(batch.records())
    assert (offset, stamp, value) == (10, ts, values[0])
    assert key == (None if keys is None else keys[0])
    assert heads == tuple(headers[0] or ()) if headers else heads == ()


def test_one_record_keeps_the_flags_and_the_checks() -> None:
    pb = prepare_batch(
        [b"v"],
        log_append_time=True,
        transactional=True,
        control=True,
        producer_id=4,
        producer_epoch=2,
        base_sequence=9,
    )
    assert pb.attributes == ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL
    assert (pb.producer_id, pb.producer_epoch, pb.base_sequence) == (4, 2, 9)
    for kwargs in ({"keys": [b"a", b"b"]}, {"timestamps": [1, 2]}, {"headers": [None, None]}):
        with pytest.raises(ValueError, match="differ in length"):
            prepare_batch([b"v"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one record"):
        prepare_batch([])


def test_log_start_is_cached_and_follows_changes_and_damage(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "state")
    writer = PartitionState(path)
    reader = PartitionState(path, writable=False)
    try:
        assert reader.log_start() == 0
        writer.write_durable(42, 7)
        assert reader.log_start() == 42 and reader.log_start() == 42
        writer.write_durable(50, 8)
        assert reader.log_start() == 50
        writer._mm[48] ^= 0xFF  # a damaged checksum: unknown, as before the cache
        assert reader.log_start() == -1
        writer._mm[48] ^= 0xFF
        assert reader.log_start() == 50
    finally:
        reader.close()
        writer.close()


def _fill(log: streamlog.Log, n: int) -> None:
    with log.producer(linger_ms=50) as producer:
        for i in range(n):
            producer.send("t", b"%d" % i, partition=0)


def test_iterator_on_a_dense_batch_follows_seeks_to_the_same_and_small_offsets(
    log: streamlog.Log,
) -> None:
    log.create_topic("t", 1)
    _fill(log, 600)  # more than max_poll_records: the iterator polls again in between
    c = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=200)
    it = iter(c)
    assert [next(it).offset for _ in range(5)] == [0, 1, 2, 3, 4]
    c.seek(TP, c.position(TP))  # the very int it stored: nothing changes
    assert next(it).offset == 5
    c.seek(TP, 6)  # a small int equal to the next position (the same object)
    assert next(it).offset == 6
    c.seek(TP, 2)
    assert [next(it).offset for _ in range(3)] == [2, 3, 4]
    assert c.position(TP) == 5
    assert c.poll(timeout_ms=1000, max_records=2)[TP][0].offset == 5
    assert next(it).offset == 7
    rest = [r.offset for r in it]
    assert rest == list(range(8, 600))
    assert c.position(TP) == 600
    c.close()


def test_the_catalog_counter_is_shared_by_handles(data_dir: str) -> None:
    with streamlog.open(data_dir) as a, streamlog.open(data_dir) as b:
        a.create_topic("t", 1)
        first, _ = a._manager.partition_entry("t", 0)
        assert b._manager.partition_entry("t", 0)[0] == first
        b.delete_topic("t")
        with pytest.raises(UnknownTopicError):
            a._manager.partition_entry("t", 0)
        b.create_topic("t", 1)
        assert a._manager.partition_entry("t", 0)[0] != first
