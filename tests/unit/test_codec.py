"""The record batch codec: prepare_batch, PreparedBatch.frame, RecordBatch; round trips, layout."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable

import msgpack
import pytest
import xxhash
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlog.errors import ConfigError, CorruptRecordError, UnsupportedFormatError
from streamlog.storage import _codec as codec
from streamlog.storage._codec import (
    ATTR_CONTROL,
    ATTR_LOG_APPEND_TIME,
    ATTR_SEAL,
    ATTR_TRANSACTIONAL,
    COMPRESSION_NONE,
    COMPRESSION_ZSTD,
    HEADER,
    HEADER_SIZE,
    PreparedBatch,
    RecordBatch,
    aligned,
    prepare_batch,
    seal_frame,
)


def decode(frame: bytes, position: int = 0) -> RecordBatch:
    """A RecordBatch from a complete frame, as a segment read builds it."""
    fields = HEADER.unpack_from(frame, 0)
    return RecordBatch(fields, frame[HEADER_SIZE : fields[0]], position)


def roundtrip(pb: PreparedBatch, base: int = 0) -> list[tuple]:
    return list(decode(pb.frame(base)).records("test"))


# --------------------------------------------------------------------- round trips


def test_values_only_dense_offsets_from_base() -> None:
    pb = prepare_batch([b"a", b"bb", b"ccc"], timestamps=1000)
    assert roundtrip(pb, base=42) == [
        (42, 1000, None, b"a", ()),
        (43, 1000, None, b"bb", ()),
        (44, 1000, None, b"ccc", ()),
    ]


def test_none_and_empty_keys_and_values_are_distinct() -> None:
    pb = prepare_batch(
        [None, b"", b"v", None],
        keys=[b"", None, b"k", b"k2"],
        timestamps=5,
    )
    recs = roundtrip(pb)
    assert [(r[2], r[3]) for r in recs] == [(b"", None), (None, b""), (b"k", b"v"), (b"k2", None)]


def test_all_none_keys_read_as_none() -> None:
    pb = prepare_batch([b"x", b"y"], keys=[None, None], timestamps=0)
    assert [r[2] for r in roundtrip(pb)] == [None, None]
    # stored as a nil column: same payload as with no keys at all
    assert pb.payload == prepare_batch([b"x", b"y"], timestamps=0).payload


def test_headers_keep_order_duplicates_and_none_values() -> None:
    headers = [
        [("h", b"1"), ("h", b"2"), ("n", None), ("a", b"")],
        None,
        [],
        [("z", None)],
    ]
    pb = prepare_batch([b"a", b"b", b"c", b"d"], timestamps=0, headers=headers)
    recs = roundtrip(pb)
    assert [r[4] for r in recs] == [
        (("h", b"1"), ("h", b"2"), ("n", None), ("a", b"")),
        (),
        (),
        (("z", None),),
    ]


def test_no_headers_anywhere_is_a_nil_column() -> None:
    pb = prepare_batch([b"a", b"b"], timestamps=0, headers=[None, []])
    assert [r[4] for r in roundtrip(pb)] == [(), ()]
    cols = msgpack.unpackb(pb.payload)
    assert cols[4] is None


def test_per_record_timestamps_with_negative_deltas() -> None:
    pb = prepare_batch([b"a", b"b", b"c", b"d"], timestamps=[1000, 400, 2500, 999])
    assert pb.base_timestamp == 1000
    assert pb.max_timestamp == 2500
    assert [r[1] for r in roundtrip(pb)] == [1000, 400, 2500, 999]
    batch = decode(pb.frame(0))
    assert batch.base_timestamp == 1000
    assert batch.max_timestamp == 2500


def test_equal_per_record_timestamps_store_no_deltas() -> None:
    pb = prepare_batch([b"a", b"b"], timestamps=[7, 7])
    assert msgpack.unpackb(pb.payload)[1] is None
    assert [r[1] for r in roundtrip(pb)] == [7, 7]


def test_negative_timestamps_round_trip() -> None:
    pb = prepare_batch([b"a", b"b"], timestamps=[-1, -5])
    assert [r[1] for r in roundtrip(pb)] == [-1, -5]
    assert pb.max_timestamp == -1


def test_zstd_compression_round_trip() -> None:
    values = [b"x" * 1000, b"y" * 1000, None]
    keys = [b"k1", None, b"k3"]
    headers = [[("h", b"v")], None, [("a", None), ("a", b"b")]]
    pb = prepare_batch(values, keys, [10, 5, 20], headers, compression=COMPRESSION_ZSTD)
    plain = prepare_batch(values, keys, [10, 5, 20], headers)
    assert pb.attributes & codec.COMPRESSION_MASK == COMPRESSION_ZSTD
    assert len(pb.payload) < len(plain.payload)
    assert pb.payload_size == len(plain.payload)
    batch = decode(pb.frame(3))
    assert batch.compression == COMPRESSION_ZSTD
    assert list(batch.records()) == list(decode(plain.frame(3)).records())
    assert [r[0] for r in batch.records()] == [3, 4, 5]


def test_unknown_compression_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        prepare_batch([b"a"], compression=7)


def test_log_append_time_attribute_uses_max_timestamp_for_every_record() -> None:
    pb = prepare_batch([b"a", b"b"], timestamps=[100, 300], log_append_time=True)
    assert pb.attributes & ATTR_LOG_APPEND_TIME
    batch = decode(pb.frame(0))
    assert batch.log_append_time
    assert [r[1] for r in batch.records()] == [300, 300]


def test_frame_with_append_time_overrides_timestamps_and_sets_attribute() -> None:
    # What the partition does under message.timestamp.type=LogAppendTime.
    pb = prepare_batch([b"a", b"b"], timestamps=[100, 300])
    batch = decode(pb.frame(0, max_timestamp=9999))
    assert batch.max_timestamp == 9999
    assert batch.log_append_time
    assert [r[1] for r in batch.records()] == [9999, 9999]
    # the prepared batch itself is unchanged: a CreateTime frame still reads as before
    assert [r[1] for r in decode(pb.frame(0)).records()] == [100, 300]


def test_transactional_control_and_producer_fields() -> None:
    pb = prepare_batch(
        [b"m"], timestamps=1, transactional=True, control=True,
        producer_id=77, producer_epoch=3, base_sequence=12,
    )
    batch = decode(pb.frame(5))
    assert batch.is_transactional and batch.is_control
    both = ATTR_TRANSACTIONAL | ATTR_CONTROL
    assert batch.attributes & both == both
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (77, 3, 12)
    plain = decode(prepare_batch([b"m"]).frame(0))
    assert (plain.producer_id, plain.producer_epoch, plain.base_sequence) == (-1, -1, -1)
    assert not plain.is_transactional and not plain.is_control and not plain.log_append_time


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": []}, "at least one"),
        ({"values": [b"a"], "keys": [b"k", b"l"]}, "keys"),
        ({"values": [b"a"], "timestamps": [1, 2]}, "timestamps"),
        ({"values": [b"a"], "headers": [None, None]}, "headers"),
    ],
)
def test_prepare_batch_rejects_mismatched_columns(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_batch(**kwargs)


# --------------------------------------------------------------------- frame layout


def test_frame_header_layout() -> None:
    pb = prepare_batch(
        [b"a", b"b", b"c"], keys=[b"k", None, None], timestamps=[50, 70, 60],
        producer_id=9, producer_epoch=2, base_sequence=4,
    )
    frame = pb.frame(1234)
    assert HEADER_SIZE == 68
    assert len(frame) == pb.size == 68 + len(pb.payload)
    (length,) = struct.unpack_from("<I", frame, 0)
    assert length == len(frame)  # the length word comes first and includes the header
    (checksum,) = struct.unpack_from("<Q", frame, 4)
    assert checksum == xxhash.xxh3_64_intdigest(frame[12:], seed=length)
    assert checksum != xxhash.xxh3_64_intdigest(frame[12:])  # the seed matters
    magic, attrs, reserved = struct.unpack_from("<BBH", frame, 12)
    assert (magic, attrs, reserved) == (1, 0, 0)
    assert struct.unpack_from("<q", frame, 16)[0] == 1234  # base offset
    assert struct.unpack_from("<I", frame, 24)[0] == 2  # last offset delta
    assert struct.unpack_from("<I", frame, 28)[0] == 3  # record count
    assert struct.unpack_from("<q", frame, 32)[0] == 50  # base timestamp
    assert struct.unpack_from("<q", frame, 40)[0] == 70  # max timestamp
    assert struct.unpack_from("<q", frame, 48)[0] == 9  # producer id
    assert struct.unpack_from("<h", frame, 56)[0] == 2  # producer epoch
    assert struct.unpack_from("<H", frame, 58)[0] == 0  # reserved
    assert struct.unpack_from("<i", frame, 60)[0] == 4  # base sequence
    assert struct.unpack_from("<I", frame, 64)[0] == len(pb.payload)  # payload size
    assert frame[68:] == pb.payload
    batch = decode(frame, position=4096)
    assert (batch.base_offset, batch.last_offset, batch.next_offset) == (1234, 1236, 1237)
    assert batch.record_count == 3 and batch.size == len(frame) and batch.position == 4096
    assert "base_offset=1234" in repr(batch)


def test_frame_checksum_changes_with_base_offset() -> None:
    pb = prepare_batch([b"a"])
    f0, f1 = pb.frame(0), pb.frame(1)
    assert f0[68:] == f1[68:]
    assert f0[4:12] != f1[4:12]


def test_seal_frame() -> None:
    frame = seal_frame(500, 1234)
    assert len(frame) == HEADER_SIZE
    fields = HEADER.unpack_from(frame, 0)
    assert fields[0] == HEADER_SIZE
    assert fields[1] == xxhash.xxh3_64_intdigest(frame[12:], seed=HEADER_SIZE)
    assert fields[2] == 1
    assert fields[3] == ATTR_SEAL
    assert fields[5] == 500  # the next segment's base offset
    assert fields[7] == 0  # no records
    assert fields[8] == fields[9] == 1234
    assert fields[14] == 0


def test_aligned() -> None:
    assert [aligned(n) for n in (0, 1, 7, 8, 9, 68, 72, 73)] == [0, 8, 8, 8, 16, 72, 72, 80]


def test_check_magic_refuses_other_versions() -> None:
    codec.check_magic(1, "p")
    with pytest.raises(UnsupportedFormatError):
        codec.check_magic(2, "p")


# --------------------------------------------------------------------- malformed payloads


def _forged(payload: bytes, record_count: int = 1, attributes: int = 0) -> RecordBatch:
    """A batch whose checksum is valid but whose payload streamlog did not write."""
    pb = PreparedBatch(payload, len(payload), record_count, 0, 0, attributes, -1, -1, -1)
    return decode(pb.frame(10), position=640)


_OK = [None, None, None, [b"a"], None]


_MALFORMED = {
    "not msgpack": (b"\xc1\xc1", 0),  # 0xc1 is never used
    "empty": (b"", 0),
    "trailing bytes": (msgpack.packb(_OK) + b"\x00", 0),
    "four columns": (msgpack.packb([None, None, None, [b"a"]]), 0),
    "a map": (msgpack.packb({"a": 1}), 0),
    "int map key": (msgpack.packb({1: 2}), 0),
    "an int": (msgpack.packb(5), 0),
    "two values for count 1": (msgpack.packb([None, None, None, [b"a", b"b"], None]), 0),
    "values not an array": (msgpack.packb([None, None, None, b"a", None]), 0),
    "offset deltas too long": (msgpack.packb([[0, 1], None, None, [b"a"], None]), 0),
    "timestamp deltas too long": (msgpack.packb([None, [0, 1], None, [b"a"], None]), 0),
    "keys too long": (msgpack.packb([None, None, [b"k", b"l"], [b"a"], None]), 0),
    "headers too long": (msgpack.packb([None, None, None, [b"a"], [None, None]]), 0),
    "header list an int": (msgpack.packb([None, None, None, [b"a"], [5]]), 0),
    "offset delta a str": (msgpack.packb([["x"], None, None, [b"a"], None]), 0),
    "timestamp delta nil": (msgpack.packb([None, [None], None, [b"a"], None]), 0),
    "says zstd, is not": (msgpack.packb(_OK), COMPRESSION_ZSTD),
    "zstd of garbage": (zstandard.ZstdCompressor().compress(b"\xc1"), COMPRESSION_ZSTD),
}


@pytest.mark.parametrize(
    ("payload", "attributes"), list(_MALFORMED.values()), ids=list(_MALFORMED)
)
def test_checksum_valid_but_malformed_payload_raises_corrupt(
    payload: bytes, attributes: int
) -> None:
    batch = _forged(payload, attributes=attributes)
    with pytest.raises(CorruptRecordError) as info:
        list(batch.records("seg.log"))
    assert info.value.path == "seg.log"
    assert info.value.position == 640


def test_forged_but_well_formed_payload_decodes() -> None:
    # the control for the test above: the same helper with a good payload works
    batch = _forged(msgpack.packb(_OK))
    assert list(batch.records()) == [(10, 0, None, b"a", ())]


def test_offset_deltas_column_is_honoured() -> None:
    # written by compaction (not yet implemented): offsets with gaps
    payload = msgpack.packb([[0, 3, 7], None, None, [b"a", b"b", b"c"], None])
    pb = PreparedBatch(payload, len(payload), 3, 0, 0, 0, -1, -1, -1)
    batch = decode(pb.frame(100))
    assert [r[0] for r in batch.records()] == [100, 103, 107]


# --------------------------------------------------------------------- property


_value = st.one_of(st.none(), st.binary(max_size=40))
_headers = st.one_of(
    st.none(),
    st.lists(st.tuples(st.sampled_from(["a", "b", "ü"]), _value), max_size=3),
)


@st.composite
def _records(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 8))
    values = draw(st.lists(_value, min_size=n, max_size=n))
    keys = draw(st.one_of(st.none(), st.lists(_value, min_size=n, max_size=n)))
    ts = draw(
        st.one_of(
            st.integers(-(2**40), 2**41),
            st.lists(st.integers(-(2**40), 2**41), min_size=n, max_size=n),
        )
    )
    headers = draw(st.one_of(st.none(), st.lists(_headers, min_size=n, max_size=n)))
    return values, keys, ts, headers


@settings(max_examples=150, deadline=None)
@given(_records(), st.integers(0, 2**40), st.booleans())
def test_round_trip_property(recs: tuple, base: int, zstd: bool) -> None:
    values, keys, ts, headers = recs
    pb = prepare_batch(
        values, keys, ts, headers, compression=COMPRESSION_ZSTD if zstd else COMPRESSION_NONE
    )
    batch = decode(pb.frame(base))
    n = len(values)
    stamps = [ts] * n if isinstance(ts, int) else ts
    expected = [
        (
            base + i,
            stamps[i],
            None if keys is None else keys[i],
            values[i],
            tuple(headers[i]) if headers and headers[i] else (),
        )
        for i in range(n)
    ]
    assert list(batch.records()) == expected
    assert (batch.base_offset, batch.last_offset, batch.record_count) == (base, base + n - 1, n)
    assert batch.max_timestamp == max(stamps)


def test_zstd_frame_claiming_more_than_the_header_is_corrupt_not_allocated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoDecompress:
        def decompress(self, *a: object, **k: object) -> bytes:
            raise AssertionError("a frame stating a larger size must not be decompressed")

    batch = codec.prepare_batch([b"x" * 100] * 10, compression=codec.COMPRESSION_ZSTD)
    big = zstandard.ZstdCompressor().compress(b"\0" * (1 << 20))  # states 1 MiB
    forged = codec.PreparedBatch(
        big, batch.payload_size, batch.record_count, 0, 0, batch.attributes, -1, -1, -1
    )
    frame = forged.frame(0)
    fields = codec.HEADER.unpack_from(frame, 0)
    rb = codec.RecordBatch(fields, frame[codec.HEADER_SIZE :], 0)
    monkeypatch.setattr(codec.zstandard, "ZstdDecompressor", NoDecompress)
    with pytest.raises(CorruptRecordError):
        list(rb.records("seg"))


# --------------------------------------------------------------------- allocation bounds


def _peak_while(fn: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak bytes allocated (tracemalloc) while ``fn`` runs, and what it raised."""
    err: BaseException | None = None
    tracemalloc.start()
    try:
        fn()
    except BaseException as e:
        err = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, err


_N = 1 << 20
_NILS = b"\xdd" + _N.to_bytes(4, "big") + b"\xc0" * _N  # an array32 of 1 Mi nils
_ZEROS = b"\xdd" + _N.to_bytes(4, "big") + b"\x00" * _N  # an array32 of 1 Mi zeros

# payloads of a batch that states 1 record, with one array of 1 Mi entries
_LONG_ARRAYS = {
    "offset deltas": b"\x95" + _ZEROS + b"\xc0\xc0\x91\xc0\xc0",
    "timestamp deltas": b"\x95\xc0" + _ZEROS + b"\xc0\x91\xc0\xc0",
    "keys": b"\x95\xc0\xc0" + _NILS + b"\x91\xc0\xc0",
    "values": b"\x95\xc0\xc0\xc0" + _NILS + b"\xc0",
    "headers": b"\x95\xc0\xc0\xc0\x91\xc0" + _NILS,
    "an array as a key": b"\x95\xc0\xc0\x91" + _NILS + b"\x91\xc0\xc0",
    "an array as a value": b"\x95\xc0\xc0\xc0\x91" + _NILS + b"\xc0",
}


@pytest.mark.parametrize("zstd", [False, True], ids=["plain", "zstd"])
@pytest.mark.parametrize("raw", list(_LONG_ARRAYS.values()), ids=list(_LONG_ARRAYS))
def test_arrays_far_longer_than_the_record_count_are_refused_before_allocation(
    raw: bytes, zstd: bool
) -> None:
    """A checksum-valid frame stating 1 record and 1 MiB of payload, whose payload holds
    an array of 1 Mi entries: ``CorruptRecordError``, having allocated less than twice the
    stated payload size. Decoding it first used to allocate about 17 bytes per payload
    byte (a tuple slot and a list slot per entry) before the record count was checked;
    compressed, the frame is 62 bytes."""
    data = zstandard.ZstdCompressor(level=19).compress(raw) if zstd else raw
    pb = PreparedBatch(data, len(raw), 1, 0, 0, COMPRESSION_ZSTD if zstd else 0, -1, -1, -1)
    batch = decode(pb.frame(10), position=640)
    peak, err = _peak_while(lambda: list(batch.records("seg.log")))
    assert isinstance(err, CorruptRecordError), err
    assert (err.path, err.position) == ("seg.log", 640)
    assert peak < 2 * len(raw), f"peak {peak} bytes for a {len(raw)}-byte payload"


@pytest.mark.parametrize("zstd", [False, True], ids=["plain", "zstd"])
@pytest.mark.parametrize("count", [3, 200])
@pytest.mark.parametrize("records", [1, 2, 7])
def test_header_lists_longer_than_the_record_count_still_decode(
    records: int, count: int, zstd: bool
) -> None:
    # a header list is the one array that may be longer than the record count (over
    # 256 entries, it is decoded column by column)
    headers = [[(f"h{i}", b"v%d" % i) for i in range(count)] + [("none", None)]] * records
    pb = prepare_batch(
        [b"v"] * records,
        headers=headers,
        compression=COMPRESSION_ZSTD if zstd else COMPRESSION_NONE,
    )
    got = list(decode(pb.frame(3)).records())
    assert got == [(3 + i, 0, None, b"v", tuple(headers[i])) for i in range(records)]


def test_a_payload_of_another_size_than_stated_is_corrupt() -> None:
    raw = msgpack.packb(_OK)
    for stated in (len(raw) - 1, len(raw) + 1):
        pb = PreparedBatch(raw, stated, 1, 0, 0, 0, -1, -1, -1)
        with pytest.raises(CorruptRecordError):
            list(decode(pb.frame(0)).records())
    # a zstd frame without a content size that decompresses to less than stated
    short = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    pb = PreparedBatch(short, len(raw) + 100, 1, 0, 0, COMPRESSION_ZSTD, -1, -1, -1)
    with pytest.raises(CorruptRecordError):
        list(decode(pb.frame(0)).records())
