"""``streamlog dump``: kafka-dump-log.sh for streamlog's segment files (docs/format.md).

Reads files with plain ``read()`` and never writes. The only part of the CLI that
uses storage internals: the frame layout and the payload decoder of ``_codec``.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from typing import Any

import xxhash

from streamlog.errors import StreamlogError
from streamlog.storage import _codec as codec
from streamlog.storage._producer_state import ABORT, COMMIT

from ._common import EXIT_ERROR, EXIT_OK, CliError, write_line

_SUFFIXES = (".log", ".index", ".timeindex")
# files of a compaction under way or interrupted (``storage._cleaner``): dumped as
# the kind of file they will replace
_CLEANER_SUFFIXES = (".cleaned", ".swap")
_OFFSET_ENTRY = struct.Struct("<II")  # relative last offset, position
_TIME_ENTRY = struct.Struct("<qI")  # max timestamp, relative last offset
_CONTROL_KEY = struct.Struct(">hh")  # version, type (Kafka's ControlRecordType)
_MARKER_VALUE = struct.Struct(">hi")  # version, coordinator epoch (EndTransactionMarker)
_MARKERS = {ABORT: "ABORT", COMMIT: "COMMIT"}


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "dump",
        parents=[common],
        help="print segment and index files (kafka-dump-log)",
        description="Print the batches of .log segment files and the entries of .index and "
        ".timeindex files, as kafka-dump-log.sh does. A directory dumps every such file in "
        "it. Read-only. Exits 1 if a file holds an invalid batch or invalid bytes.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="segment files or partition dirs")
    p.add_argument(
        "--print-data",
        "--print-data-log",
        dest="print_data",
        action="store_true",
        help="print every record with its key and value",
    )
    p.add_argument(
        "--deep-iteration",
        action="store_true",
        help="print every record's metadata (without key and value)",
    )
    p.set_defaults(run=run)


def _files(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if _kind(n) in _SUFFIXES)
            if not names:
                raise CliError(f"no .log, .index or .timeindex files in {path}")
            out.extend(os.path.join(path, n) for n in names)
        elif os.path.exists(path):
            out.append(path)
        else:
            raise CliError(f"{path}: no such file or directory")
    return out


def _kind(path: str) -> str:
    """The suffix that says how to read ``path`` (``.log``...), past a cleaner's suffix."""
    for suffix in _CLEANER_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return os.path.splitext(path)[1]


def _base_offset(path: str) -> int:
    stem = os.path.basename(path).split(".", 1)[0]
    return int(stem) if stem.isdigit() else 0


def run(args: argparse.Namespace) -> int:
    valid = True
    dumped = 0
    for path in _files(args.paths):
        with open(path, "rb") as f:
            data = f.read()
        kind = _kind(path)
        if path.endswith(_CLEANER_SUFFIXES):
            write_line(f"Note: {path} is a file of a compaction in progress or interrupted")
        if kind == ".log":
            valid &= _dump_log(
                path, data, records=args.print_data or args.deep_iteration, contents=args.print_data
            )
        elif kind == ".timeindex":
            valid &= _dump_index(path, data, _TIME_ENTRY, "timestamp: {0} offset: {1}")
        elif kind == ".index":
            valid &= _dump_index(path, data, _OFFSET_ENTRY, "offset: {1} position: {0}")
        else:
            print(f"Ignoring unknown file {path}", file=sys.stderr)
            continue
        dumped += 1
    if not dumped:
        raise CliError("nothing to dump: give .log, .index or .timeindex files")
    return EXIT_OK if valid else EXIT_ERROR


def _dump_index(path: str, data: bytes, entry: struct.Struct, line: str) -> bool:
    write_line(f"Dumping {path}")
    base = _base_offset(path)
    timestamps = entry is _TIME_ENTRY
    for i in range(len(data) // entry.size):
        a, b = entry.unpack_from(data, i * entry.size)
        if (b if timestamps else a) == 0 and (a if timestamps else b) == 0:
            break  # the first all-zero entry ends the entries (files grow in zeroed steps)
        if timestamps:
            write_line(line.format(a, base + b))
        else:
            write_line(line.format(b, base + a))
    return True


def _frame_at(data: bytes, view: memoryview, pos: int) -> tuple[Any, ...] | None:
    """The header fields of a valid frame at ``pos``, else None."""
    if pos + codec.HEADER_SIZE > len(data):
        return None
    length = codec.LENGTH.unpack_from(data, pos)[0]
    if length < codec.HEADER_SIZE or length > codec.MAX_FRAME or pos + length > len(data):
        return None
    fields = codec.HEADER.unpack_from(data, pos)
    if xxhash.xxh3_64_intdigest(view[pos + 12 : pos + length], seed=length) != fields[1]:
        return None
    return tuple(fields)


def _batch_line(fields: tuple[Any, ...], pos: int, valid: bool) -> str:
    (
        length,
        checksum,
        magic,
        attrs,
        _r,
        base,
        last_delta,
        count,
        _bts,
        max_ts,
        pid,
        epoch,
        _r2,
        base_seq,
        _psize,
    ) = fields
    last_seq = base_seq + last_delta if base_seq >= 0 else -1
    compression = attrs & codec.COMPRESSION_MASK
    codec_name = {codec.COMPRESSION_NONE: "none", codec.COMPRESSION_ZSTD: "zstd"}.get(
        compression, f"unknown({compression})"
    )
    ts_type = "LogAppendTime" if attrs & codec.ATTR_LOG_APPEND_TIME else "CreateTime"
    transactional = str(bool(attrs & codec.ATTR_TRANSACTIONAL)).lower()
    control = str(bool(attrs & codec.ATTR_CONTROL)).lower()
    return (
        f"baseOffset: {base} lastOffset: {base + last_delta} count: {count} "
        f"baseSequence: {base_seq} lastSequence: {last_seq} producerId: {pid} "
        f"producerEpoch: {epoch} isTransactional: {transactional} "
        f"isControl: {control} position: {pos} "
        f"{ts_type}: {max_ts} size: {length} magic: {magic} compresscodec: {codec_name} "
        f"crc: {checksum} isvalid: {str(valid).lower()}"
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _control(key: bytes | None, value: bytes | None) -> tuple[str, bool]:
    """What Kafka prints for a control record, and whether it decodes."""
    if key is None or len(key) < _CONTROL_KEY.size:
        return f"controlType: UNKNOWN(key of {0 if key is None else len(key)} bytes)", False
    kind = _CONTROL_KEY.unpack_from(key)[1]
    name = _MARKERS.get(kind)
    if name is None:
        return f"controlType: UNKNOWN({kind})", True
    if value is None or len(value) < _MARKER_VALUE.size:
        size = -1 if value is None else len(value)
        return f"endTxnMarker: {name} coordinatorEpoch: invalid (valueSize {size})", False
    return f"endTxnMarker: {name} coordinatorEpoch: {_MARKER_VALUE.unpack_from(value)[1]}", True


def _record_lines(
    path: str, data: bytes, pos: int, fields: tuple[Any, ...], contents: bool
) -> bool:
    length, attrs, base_seq = fields[0], fields[3], fields[13]
    control = bool(attrs & codec.ATTR_CONTROL)
    valid = True
    base = fields[5]
    ts_type = "LogAppendTime" if attrs & codec.ATTR_LOG_APPEND_TIME else "CreateTime"
    batch = codec.RecordBatch(fields, data[pos + codec.HEADER_SIZE : pos + length], pos)
    try:
        records = list(batch.records(path))
    except StreamlogError as e:
        write_line(f"| undecodable records: {' '.join(str(e).split())}")
        return False
    for offset, timestamp, key, value, headers in records:
        seq = base_seq + (offset - base) if base_seq >= 0 else -1
        line = (
            f"| offset: {offset} {ts_type}: {timestamp} "
            f"keySize: {-1 if key is None else len(key)} "
            f"valueSize: {-1 if value is None else len(value)} sequence: {seq} "
            f"headerKeys: [{','.join(k for k, _v in headers)}]"
        )
        if control:
            # a transaction marker: Kafka prints what it says instead of key and payload
            marker, decoded = _control(key, value)
            line += f" {marker}"
            valid &= decoded
        elif contents:
            if key is not None:
                line += f" key: {_text(key)}"
            if value is not None:
                line += f" payload: {_text(value)}"
        write_line(line)
    return valid


def _dump_log(path: str, data: bytes, *, records: bool, contents: bool) -> bool:
    write_line(f"Dumping {path}")
    write_line(f"Log starting offset: {_base_offset(path)}")
    view = memoryview(data)
    end = len(data.rstrip(b"\0"))  # segments are preallocated: zeros follow the data
    valid = True
    pos = 0
    while pos < end:
        fields = _frame_at(data, view, pos)
        if fields is not None:
            length, attrs = fields[0], fields[3]
            if attrs & codec.ATTR_SEAL:
                horizon = ""
                if attrs & codec.ATTR_DELETE_HORIZON:  # a segment the cleaner rewrote
                    horizon = f"deleteHorizonMs: {fields[8]} "
                write_line(
                    f"seal: nextOffset: {fields[5]} position: {pos} maxTimestamp: {fields[9]} "
                    f"{horizon}size: {length} crc: {fields[1]} isvalid: true"
                )
            else:
                write_line(_batch_line(fields, pos, True))
                if records and fields[2] == codec.MAGIC:
                    valid &= _record_lines(path, data, pos, fields, contents)
            pos += codec.aligned(length)
            continue
        valid = False
        length = codec.LENGTH.unpack_from(data, pos)[0] if pos + 4 <= len(data) else 0
        if codec.HEADER_SIZE <= length <= codec.MAX_FRAME and pos + length <= len(data):
            after = pos + codec.aligned(length)
            if after >= end or _frame_at(data, view, after) is not None:
                # a batch whose bytes changed after it was written: its checksum fails
                write_line(_batch_line(tuple(codec.HEADER.unpack_from(data, pos)), pos, False))
                pos = after
                continue
        found = next(
            (p for p in range(pos + codec.ALIGN, end, codec.ALIGN) if _frame_at(data, view, p)),
            None,
        )
        if found is None:
            write_line(f"Found {end - pos} invalid bytes at the end of {path}")
            break
        write_line(f"Found {found - pos} invalid bytes at position {pos} of {path}")
        pos = found
    return valid
