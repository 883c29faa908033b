"""The record batch codec: one frame per batch, the unit of append, checksum and read.

Frame layout (format version 1, little-endian, 68-byte header; see docs/format.md)::

    off size field
      0   4  length             bytes in the frame, header included, padding excluded;
                                written last, so a reader that sees it non-zero may
                                check the rest
      4   8  checksum           xxh3-64 of bytes [12, length), seeded with length
     12   1  magic              1
     13   1  attributes         bits 0-1 compression (0 none, 1 zstd)
                                bit 2 LogAppendTime (every record's timestamp is
                                      max_timestamp)
                                bit 3 transactional, bit 4 control
                                bit 5 segment seal: no records; base_offset is
                                      the base offset of the next segment
                                bit 6 (seals only) delete horizon: base_timestamp
                                      is the segment's tombstone delete horizon
     14   2  reserved           0
     16   8  base_offset        i64
     24   4  last_offset_delta  u32 (last offset - base offset)
     28   4  record_count       u32 (< last_offset_delta + 1 after compaction)
     32   8  base_timestamp     i64 ms, timestamp of the first record
     40   8  max_timestamp      i64 ms
     48   8  producer_id        i64, -1 without idempotence
     56   2  producer_epoch     i16, -1
     58   2  reserved           0
     60   4  base_sequence      i32, -1
     64   4  payload_size       u32, size of the payload before compression
     68      payload            msgpack, zstd-compressed when bits 0-1 say so

Frames start at multiples of 8, so the length word is an aligned 4-byte store
that a concurrent reader sees whole; padding is zeros.

Payload: a msgpack array ``[offset_deltas, timestamp_deltas, keys, values,
headers]``. Columns instead of rows because msgpack packs and unpacks three
lists of bytes about three times faster than a list of small arrays, and the
append and consume budgets are per record. ``offset_deltas`` is nil when the
offsets are dense (always, until compaction), ``timestamp_deltas`` nil when
every record has ``base_timestamp``, ``keys`` nil when every key is None,
``headers`` nil when no record has headers, else one flat list ``[k1, v1, k2,
v2, ...]`` (or nil) per record. Header keys are str, values bytes or nil.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any, NoReturn

import msgpack
import xxhash
import zstandard

from ..errors import ConfigError, CorruptRecordError, UnsupportedFormatError

MAGIC = 1
HEADER = struct.Struct("<IQBBHqIIqqqhHiI")
HEADER_SIZE = HEADER.size  # 68
REST = struct.Struct("<BBHqIIqqqhHiI")  # the header after length and checksum
LENGTH = struct.Struct("<I")
PREFIX = struct.Struct("<IQ")
ALIGN = 8

COMPRESSION_MASK = 0x03
COMPRESSION_NONE = 0
COMPRESSION_ZSTD = 1
ATTR_LOG_APPEND_TIME = 0x04
ATTR_TRANSACTIONAL = 0x08
ATTR_CONTROL = 0x10
ATTR_SEAL = 0x20
# On a seal only: the cleaner rewrote the segment, and the seal's base_timestamp is
# when its tombstones may go (Kafka's KIP-534 delete horizon, per segment here).
ATTR_DELETE_HORIZON = 0x40

# Bounds on what a frame read from disk may claim, so hostile bytes cannot
# make us allocate without limit.
MAX_FRAME = 1 << 30
MAX_PAYLOAD = 1 << 30

assert HEADER_SIZE == 68
assert 12 + REST.size == HEADER_SIZE

_xxh3 = xxhash.xxh3_64
_packb = msgpack.packb
_unpackb = msgpack.unpackb

Headers = Sequence[tuple[str, "bytes | None"]]
# (offset, timestamp, key, value, headers)
DecodedRecord = tuple[
    int, int, "bytes | None", "bytes | None", tuple[tuple[str, "bytes | None"], ...]
]
_NO_HEADERS: tuple[tuple[str, bytes | None], ...] = ()
# ``RecordBatch.decode``: (offsets, timestamps, keys, values, headers)
DecodedColumns = tuple[
    "range | list[int]",
    "int | list[int]",
    "tuple[bytes | None, ...] | None",
    "tuple[bytes | None, ...]",
    "list[tuple[tuple[str, bytes | None], ...]] | None",
]


def _refuse_map(_map: object) -> NoReturn:
    raise ValueError("a map in a batch payload")


_NIL = 0xC0
_READ_SIZE = 1 << 16
# An array in a payload may hold up to max(this, record count) entries, except a
# record's header list (see ``RecordBatch._columns``).
_MIN_ARRAY_LIMIT = 256


def _array_limit(record_count: int, size: int) -> int:
    """Most entries an array of a payload of ``size`` bytes may hold (each takes a byte)."""
    return min(max(_MIN_ARRAY_LIMIT, record_count), size)


def _array_len(data: bytes, pos: int) -> int:
    """Length of the msgpack array whose header is at ``pos`` in ``data``, or -1 if
    there is no array header there."""
    b = data[pos]
    if 0x90 <= b <= 0x9F:  # fixarray
        return b & 0x0F
    if b == 0xDC:  # array 16
        return int.from_bytes(data[pos + 1 : pos + 3], "big")
    if b == 0xDD:  # array 32
        return int.from_bytes(data[pos + 1 : pos + 5], "big")
    return -1


def _unpack_by_column(data: bytes, record_count: int) -> tuple[Any, ...]:
    """Unpack the five columns one by one, checking each column's stated length first.

    The slow path of ``RecordBatch._columns``, for payloads with an array over
    ``_array_limit``: a record's header list may legitimately be longer. The four
    other columns are unpacked with arrays within the limit; the headers column
    must be nil or an array of exactly ``record_count`` lists (checked on its
    header, before anything is allocated), each bounded by the payload's size.
    """
    size = len(data)
    limit = _array_limit(record_count, size)
    # From a stream, not ``feed``: fed data would be copied into a buffer rounded up
    # to twice its size; this way the buffer holds a chunk, or the largest object.
    unpacker = msgpack.Unpacker(
        io.BytesIO(data),
        read_size=min(max(size, 1), _READ_SIZE),
        use_list=False,
        raw=False,
        strict_map_key=True,
        max_buffer_size=max(size, 1),  # (the other limits default to it)
        max_array_len=limit,
        max_map_len=0,
        max_ext_len=0,
        object_hook=_refuse_map,
    )
    if unpacker.read_array_header() != 5:
        raise ValueError("a batch payload is not an array of five columns")
    cols = [unpacker.unpack() for _ in range(4)]
    pos = unpacker.tell()
    if pos < size and data[pos] != _NIL and _array_len(data, pos) != record_count:
        raise ValueError(f"the headers column is not nil or {record_count} lists")
    cols.append(
        _unpackb(
            memoryview(data)[pos:],
            use_list=False,
            raw=False,
            strict_map_key=True,
            max_array_len=size,
            max_map_len=0,
            max_ext_len=0,
            object_hook=_refuse_map,
        )
    )
    return tuple(cols)


def aligned(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class PreparedBatch:
    """A batch encoded outside the append lock; offsets are assigned at append.

    Encoding (msgpack, zstd) is the costly part of an append, so it is done
    before the lock is taken; under the lock only the 68-byte header and the
    checksum are computed.
    """

    __slots__ = (
        "attributes",
        "base_sequence",
        "base_timestamp",
        "control_key",
        "max_timestamp",
        "null_key",
        "payload",
        "payload_size",
        "producer_epoch",
        "producer_id",
        "record_count",
        "size",
    )

    def __init__(
        self,
        payload: bytes,
        payload_size: int,
        record_count: int,
        base_timestamp: int,
        max_timestamp: int,
        attributes: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
    ) -> None:
        self.payload = payload
        self.payload_size = payload_size
        self.record_count = record_count
        self.base_timestamp = base_timestamp
        self.max_timestamp = max_timestamp
        self.attributes = attributes
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.size = HEADER_SIZE + len(payload)
        # a transaction marker's one key (COMMIT/ABORT), so the writer need not decode it
        self.control_key: bytes | None = None
        # some record has no key (refused on a compacted topic; set by prepare_batch)
        self.null_key = True

    def header_rest(self, base_offset: int, max_timestamp: int | None = None) -> bytes:
        """The header after length and checksum; ``max_timestamp`` is a log append time.

        Given a ``max_timestamp`` (the broker's clock under LogAppendTime), the
        frame gets the LogAppendTime attribute, so every record reads as that time.
        """
        attributes = self.attributes
        if max_timestamp is not None:
            attributes |= ATTR_LOG_APPEND_TIME
        return REST.pack(
            MAGIC,
            attributes,
            0,
            base_offset,
            self.record_count - 1,
            self.record_count,
            self.base_timestamp,
            self.max_timestamp if max_timestamp is None else max_timestamp,
            self.producer_id,
            self.producer_epoch,
            0,
            self.base_sequence,
            self.payload_size,
        )

    def head(self, base_offset: int, max_timestamp: int | None = None) -> bytes:
        """The frame's 68-byte header (checksum included); the payload follows it."""
        rest = self.header_rest(base_offset, max_timestamp)
        h = _xxh3(rest, seed=self.size)
        h.update(self.payload)
        return PREFIX.pack(self.size, h.intdigest()) + rest

    def frame(self, base_offset: int, max_timestamp: int | None = None) -> bytes:
        """The complete frame for ``base_offset`` (header, checksum, payload).

        ``max_timestamp``, if given, is the log append time (see ``header_rest``).
        """
        rest = self.header_rest(base_offset, max_timestamp)
        h = _xxh3(rest, seed=self.size)
        h.update(self.payload)
        return PREFIX.pack(self.size, h.intdigest()) + rest + self.payload


def prepare_batch(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None = None,
    timestamps: Sequence[int] | int = 0,
    headers: Sequence[Headers | None] | None = None,
    *,
    compression: int = COMPRESSION_NONE,
    log_append_time: bool = False,
    transactional: bool = False,
    control: bool = False,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> PreparedBatch:
    """Encode records (given as columns) into a ``PreparedBatch``.

    ``timestamps`` is one timestamp for every record or one per record.
    Types are not re-checked here: the clients check user input; this is the
    storage layer's internal contract.
    """
    n = len(values)
    if n == 1 and compression == COMPRESSION_NONE:
        # One record (a producer at linger_ms=0, a low-rate writer): the same bytes as
        # below, without the column scans (a latency path: about a third of its cost)
        return _prepare_one(
            values,
            keys,
            timestamps,
            headers,
            (ATTR_LOG_APPEND_TIME if log_append_time else 0)
            | (ATTR_TRANSACTIONAL if transactional else 0)
            | (ATTR_CONTROL if control else 0),
            producer_id,
            producer_epoch,
            base_sequence,
        )
    if n == 0:
        raise ValueError("a batch needs at least one record")
    null_key = keys is None or None in keys
    if isinstance(timestamps, int):
        base_ts = max_ts = timestamps
        ts_deltas: list[int] | None = None
    else:
        if len(timestamps) != n:
            raise ValueError("timestamps and values differ in length")
        base_ts = timestamps[0]
        max_ts = max(timestamps)
        ts_deltas = None if max_ts == min(timestamps) else [t - base_ts for t in timestamps]
    if keys is not None:
        if len(keys) != n:
            raise ValueError("keys and values differ in length")
        if all(k is None for k in keys):
            keys = None
    flat_headers: list[list[Any] | None] | None = None
    if headers is not None:
        if len(headers) != n:
            raise ValueError("headers and values differ in length")
        if any(headers):
            flat_headers = [[x for pair in h for x in pair] if h else None for h in headers]
    raw = _packb([None, ts_deltas, keys, values, flat_headers])
    attributes = 0
    if compression == COMPRESSION_ZSTD:
        payload = zstandard.ZstdCompressor(level=3).compress(raw)
        attributes |= COMPRESSION_ZSTD
    elif compression == COMPRESSION_NONE:
        payload = raw
    else:
        raise ConfigError(f"unknown compression code {compression}")
    if log_append_time:
        attributes |= ATTR_LOG_APPEND_TIME
    if transactional:
        attributes |= ATTR_TRANSACTIONAL
    if control:
        attributes |= ATTR_CONTROL
    prepared = PreparedBatch(
        payload,
        len(raw),
        n,
        base_ts,
        max_ts,
        attributes,
        producer_id,
        producer_epoch,
        base_sequence,
    )
    prepared.null_key = null_key
    return prepared


def _prepare_one(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None,
    timestamps: Sequence[int] | int,
    headers: Sequence[Headers | None] | None,
    attributes: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
) -> PreparedBatch:
    """``prepare_batch`` of one uncompressed record (the same checks, the same bytes)."""
    if isinstance(timestamps, int):
        ts = timestamps
    else:
        if len(timestamps) != 1:
            raise ValueError("timestamps and values differ in length")
        ts = timestamps[0]
    if keys is not None:
        if len(keys) != 1:
            raise ValueError("keys and values differ in length")
        if keys[0] is None:
            keys = None
    flat_headers: list[list[Any] | None] | None = None
    if headers is not None:
        if len(headers) != 1:
            raise ValueError("headers and values differ in length")
        h = headers[0]
        if h:
            flat_headers = [[x for pair in h for x in pair]]
    raw = _packb([None, None, keys, values, flat_headers])
    prepared = PreparedBatch(
        raw, len(raw), 1, ts, ts, attributes, producer_id, producer_epoch, base_sequence
    )
    prepared.null_key = keys is None
    return prepared


def seal_frame(next_offset: int, timestamp: int, delete_horizon: int | None = None) -> bytes:
    """A header-only frame that ends a segment and names the next segment's base offset.

    ``delete_horizon`` (the cleaner's seals): stored as the base timestamp, with
    ``ATTR_DELETE_HORIZON``; readers that do not know the bit read the seal as before.
    """
    attrs, first = ATTR_SEAL, timestamp
    if delete_horizon is not None:
        attrs, first = ATTR_SEAL | ATTR_DELETE_HORIZON, delete_horizon
    rest = REST.pack(MAGIC, attrs, 0, next_offset, 0, 0, first, timestamp, -1, -1, 0, -1, 0)
    return PREFIX.pack(HEADER_SIZE, _xxh3(rest, seed=HEADER_SIZE).intdigest()) + rest


class RecordBatch:
    """A batch as read from a segment: header fields, and the payload decoded on demand.

    Immutable after construction; safe to share between threads.
    """

    __slots__ = (
        "attributes",
        "base_offset",
        "base_sequence",
        "base_timestamp",
        "last_offset",
        "max_timestamp",
        "payload",
        "payload_size",
        "position",
        "producer_epoch",
        "producer_id",
        "record_count",
        "size",
    )

    def __init__(self, fields: tuple[Any, ...], payload: bytes, position: int) -> None:
        (
            self.size,
            _checksum,
            _magic,
            self.attributes,
            _r,
            self.base_offset,
            last_delta,
            self.record_count,
            self.base_timestamp,
            self.max_timestamp,
            self.producer_id,
            self.producer_epoch,
            _r2,
            self.base_sequence,
            self.payload_size,
        ) = fields
        self.last_offset: int = self.base_offset + last_delta
        self.payload = payload
        self.position = position

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def compression(self) -> int:
        return int(self.attributes & COMPRESSION_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & ATTR_LOG_APPEND_TIME)

    def __repr__(self) -> str:
        return (
            f"RecordBatch(base_offset={self.base_offset}, last_offset={self.last_offset}, "
            f"count={self.record_count}, size={self.size}, position={self.position})"
        )

    def _columns(self, path: str) -> tuple[Any, ...]:
        data: bytes = self.payload
        n = self.record_count
        try:
            if self.attributes & COMPRESSION_MASK == COMPRESSION_ZSTD:
                # zstd trusts a size stated in its own frame header over
                # max_output_size: check it, so a crafted frame cannot make us
                # allocate more than the batch header promised.
                stated = zstandard.frame_content_size(data)
                if self.payload_size > MAX_PAYLOAD or stated not in (-1, self.payload_size):
                    raise ValueError(
                        f"compressed payload claims {stated} bytes, header {self.payload_size}"
                    )
                data = zstandard.ZstdDecompressor().decompress(
                    data, max_output_size=self.payload_size
                )
            if len(data) != self.payload_size:
                raise ValueError(f"payload of {len(data)} bytes, header {self.payload_size}")
            # What the header states bounds what decoding allocates. Every length
            # msgpack reads is bounded by the payload's size (unpackb's default limits
            # derive from the input), and an array by the record count (_array_limit):
            # a payload streamlog wrote has five columns of one entry per record, and
            # per-record header lists. An array entry costs about 16 bytes (a tuple
            # slot, and a list slot while msgpack builds it), so without the count a
            # frame stating 1 record and 1 MiB of nils would allocate 17 MiB before it
            # is refused; msgpack checks the limit on an array's header, before
            # allocating. A header list over the limit (a record with many headers)
            # fails here and is decoded column by column (as is anything else that
            # fails here: corruption fails there too). The format has no maps and no
            # extension types: refuse them rather than hand a dict or an ExtType to
            # the application as a key, value or header.
            try:
                cols = _unpackb(
                    data,
                    use_list=False,
                    raw=False,
                    strict_map_key=True,
                    max_array_len=_array_limit(n, len(data)),
                    max_map_len=0,
                    max_ext_len=0,
                    object_hook=_refuse_map,  # (an empty map passes max_map_len=0)
                )
            except ValueError:
                cols = _unpack_by_column(data, n)
        except (zstandard.ZstdError, ValueError, TypeError, msgpack.UnpackException) as e:
            # A checksum-valid payload that does not decode was written by
            # something else than streamlog: corruption, not a torn write.
            raise CorruptRecordError(
                f"undecodable payload of batch at offset {self.base_offset}: {e}",
                path=path,
                position=self.position,
            ) from e
        ok = isinstance(cols, tuple) and len(cols) == 5
        if ok and cols[0] is None and n != self.last_offset - self.base_offset + 1:
            ok = False  # dense offsets must end at the batch's last offset (no overlap)
        if ok:
            od, td, keys, values, headers = cols
            ok = (
                isinstance(values, tuple)
                and len(values) == n
                and (od is None or (isinstance(od, tuple) and len(od) == n))
                and (td is None or (isinstance(td, tuple) and len(td) == n))
                and (keys is None or (isinstance(keys, tuple) and len(keys) == n))
                and (headers is None or (isinstance(headers, tuple) and len(headers) == n))
            )
        if not ok:
            raise CorruptRecordError(
                f"malformed payload of batch at offset {self.base_offset}",
                path=path,
                position=self.position,
            )
        return cols  # type: ignore[no-any-return]

    def records(self, path: str = "?") -> Iterator[DecodedRecord]:
        """Decoded records as ``(offset, timestamp, key, value, headers)`` tuples, in order."""
        return zip(*self.columns(path), strict=False)

    def columns(self, path: str = "?") -> tuple[Any, Any, Any, Any, Any]:
        """The decoded columns: iterables of offsets, timestamps, keys, values and headers.

        Consumers zip these straight into their record objects, which saves
        building an intermediate tuple per record.
        """
        offsets, stamps, keys, values, heads = self.decode(path)
        n = self.record_count
        return (
            offsets,
            repeat(stamps, n) if type(stamps) is int else stamps,
            repeat(None, n) if keys is None else keys,
            values,
            repeat(_NO_HEADERS, n) if heads is None else heads,
        )

    def decode(self, path: str = "?") -> DecodedColumns:
        """The decoded columns, as sequences a reader can index and slice without
        building the records it does not return: ``(offsets, timestamps, keys, values,
        headers)``. Offsets are a ``range`` when dense, else a list; timestamps one int
        when every record has it, else a list; keys None when every key is None;
        headers None when no record has any, else a list of ``((key, value), ...)``.
        Verifies the whole payload: a batch that decodes is well-formed throughout.
        """
        od, td, keys, values, headers = self._columns(path)
        n = self.record_count
        base = self.base_offset
        try:
            offsets: range | list[int] = (
                range(base, base + n) if od is None else [base + d for d in od]
            )
            if self.attributes & ATTR_LOG_APPEND_TIME:
                stamps: int | list[int] = self.max_timestamp
            elif td is None:
                stamps = self.base_timestamp
            else:
                bt = self.base_timestamp
                stamps = [bt + d for d in td]
            head_col: list[tuple[tuple[str, bytes | None], ...]] | None = None
            if headers is not None:
                head_col = [
                    _NO_HEADERS if h is None else tuple(zip(h[::2], h[1::2], strict=False))
                    for h in headers
                ]
        except TypeError as e:  # e.g. a delta that is not an int, a header list that is not one
            raise CorruptRecordError(
                f"malformed payload of batch at offset {self.base_offset}: {e}",
                path=path,
                position=self.position,
            ) from e
        return offsets, stamps, keys, values, head_col


def check_magic(magic: int, path: str) -> None:
    if magic != MAGIC:
        raise UnsupportedFormatError(
            f"record batch format version {magic} is not supported (this is {MAGIC})", path=path
        )


__all__ = [
    "ALIGN",
    "ATTR_DELETE_HORIZON",
    "ATTR_SEAL",
    "COMPRESSION_NONE",
    "COMPRESSION_ZSTD",
    "HEADER",
    "HEADER_SIZE",
    "LENGTH",
    "MAX_FRAME",
    "PreparedBatch",
    "RecordBatch",
    "aligned",
    "prepare_batch",
    "seal_frame",
]
