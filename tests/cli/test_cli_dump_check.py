"""``streamlog dump`` and ``streamlog check``: output, damage, exit codes, read-only."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

import streamlog
from tests._dirsnap import file_digests

from ._run import cli, cli_many, lines, ok, one_line_error

TS = 1_700_000_000_000
BATCH = re.compile(
    r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+) baseSequence: -1 lastSequence: -1 "
    r"producerId: -1 producerEpoch: -1 isTransactional: false isControl: false "
    r"position: (\d+) CreateTime: (\d+) size: (\d+) magic: 1 compresscodec: (none|zstd) "
    r"crc: (\d+) isvalid: (true|false)"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Topic ``t``: 4 KiB segments (several closed ones), an index entry every 256 bytes;
    batches of 10 records with keys, values, a header; the last batches zstd."""
    path = str(tmp_path_factory.mktemp("dump") / "data")
    with streamlog.open(path) as log:
        log.create_topic("t", config={"segment.bytes": 4096, "index.interval.bytes": 256})
        with log.producer(linger_ms=1000, batch_size=1 << 20) as p:
            for b in range(12):
                for i in range(10):
                    n = b * 10 + i
                    p.send(
                        "t",
                        f"value-{n}".encode() * 3,
                        key=f"k{n}".encode(),
                        timestamp_ms=TS + n,
                        headers=[("h", b"x")],
                    )
                p.flush()
        with log.producer(compression_type="zstd") as p:
            p.send("t", b"z" * 100, key=None, timestamp_ms=TS + 500)
    yield path


def pdir(data: str) -> str:
    return os.path.join(data, "topics", "t", "0")


def test_dump_a_partition_directory(data: str) -> None:
    before = file_digests(data)
    out = ok(cli(data, "dump", pdir(data)))
    names = sorted(
        n for n in os.listdir(pdir(data)) if n.endswith((".log", ".index", ".timeindex"))
    )
    assert [x[len("Dumping ") :] for x in lines(out) if x.startswith("Dumping ")] == [
        os.path.join(pdir(data), n) for n in names
    ]
    assert len([n for n in names if n.endswith(".log")]) >= 2  # a segment rolled
    batches = [BATCH.fullmatch(x) for x in lines(out) if x.startswith("baseOffset")]
    assert all(batches)
    offsets = [(int(m[1]), int(m[2]), int(m[3])) for m in batches if m]
    assert offsets[:2] == [(0, 9, 10), (10, 19, 10)]
    assert offsets[-1] == (120, 120, 1)
    assert [m[7] for m in batches if m][-1] == "zstd"
    assert all(m[9] == "true" for m in batches if m)
    assert re.search(r"^seal: nextOffset: \d+ position: \d+ maxTimestamp: \d+ size: 68 ", out, re.M)
    assert re.search(r"^offset: \d+ position: [1-9]\d*$", out, re.M)  # .index entries
    assert re.search(r"^timestamp: 1700000000\d\d\d offset: \d+$", out, re.M)  # .timeindex
    assert "| offset" not in out
    assert file_digests(data) == before


def test_dump_print_data_and_deep_iteration(data: str) -> None:
    first = os.path.join(pdir(data), "00000000000000000000.log")
    out = ok(cli(data, "dump", "--print-data", first))
    assert lines(out)[:2] == [f"Dumping {first}", "Log starting offset: 0"]
    assert lines(out)[3] == (
        f"| offset: 0 CreateTime: {TS} keySize: 2 valueSize: 21 sequence: -1 headerKeys: [h] "
        "key: k0 payload: value-0value-0value-0"
    )
    deep = ok(cli(data, "dump", "--deep-iteration", first))
    assert lines(deep)[3] == (
        f"| offset: 0 CreateTime: {TS} keySize: 2 valueSize: 21 sequence: -1 headerKeys: [h]"
    )


def test_check_a_clean_directory(data: str) -> None:
    out = ok(cli(data, "check"))
    assert out.endswith(": ok\n")
    assert "121 records" in out
    assert ok(cli(None, "check", data)) == out


@pytest.fixture
def damaged(data: str, tmp_path: str) -> str:
    """A copy of the data directory with one byte flipped inside a closed segment's batch."""
    copy = str(tmp_path / "damaged")
    shutil.copytree(data, copy)
    seg = os.path.join(pdir(copy), "00000000000000000000.log")
    with open(seg, "r+b") as f:
        raw = f.read()
        second = next(m for m in BATCH.finditer(ok(cli(copy, "dump", seg))) if m[1] != "0")
        pos = int(second[4]) + 80  # inside the payload of the second batch
        f.seek(pos)
        f.write(bytes([raw[pos] ^ 0xFF]))
    return copy


def test_dump_and_check_report_a_corrupt_batch(damaged: str) -> None:
    before = file_digests(damaged)
    seg = os.path.join(pdir(damaged), "00000000000000000000.log")
    done = cli(damaged, "dump", "--print-data", seg)
    assert done.returncode == 1, done.stderr
    bad = [x for x in lines(done.stdout) if x.endswith("isvalid: false")]
    assert len(bad) == 1 and bad[0].startswith("baseOffset: 10 lastOffset: 19 count: 10 ")
    # the batches after the damaged one are still dumped
    assert "| offset: 20 " in done.stdout
    check = cli(damaged, "check")
    assert check.returncode == 1
    assert "problem(s)" in check.stdout
    assert f"corrupt: {seg} at byte " in check.stdout
    assert file_digests(damaged) == before  # dump and check never write


def test_dump_reports_invalid_bytes(data: str, tmp_path: str) -> None:
    seg = os.path.join(pdir(data), "00000000000000000000.log")
    with open(seg, "rb") as f:
        raw = f.read()
    tail = str(tmp_path / "00000000000000000000.log")
    with open(tail, "wb") as f:
        f.write(raw + b"garbage!garbage")
    done = cli(None, "dump", tail)
    assert done.returncode == 1
    assert lines(done.stdout)[-1] == f"Found 15 invalid bytes at the end of {tail}"
    length = bytearray(raw)
    length[0] ^= 0x40  # the first frame's length word: nothing sane is left of it
    with open(tail, "wb") as f:
        f.write(bytes(length))
    done = cli(None, "dump", tail)
    assert done.returncode == 1
    found = [x for x in lines(done.stdout) if x.startswith("Found ")]
    assert len(found) == 1 and re.fullmatch(
        rf"Found \d+ invalid bytes at position 0 of {tail}", found[0]
    )
    assert re.search(r"^baseOffset: 10 ", done.stdout, re.M)  # resynchronized after it


def test_dump_and_check_errors(tmp_path: str) -> None:
    missing = str(tmp_path / "nope.log")
    empty = str(tmp_path / "empty")
    os.mkdir(empty)
    no_file, no_segments, not_data = cli_many(
        (None, "dump", missing), (None, "dump", empty), (None, "check", empty)
    )
    assert "no such file" in one_line_error(no_file)
    assert "no .log" in one_line_error(no_segments)
    assert "not a streamlog data directory" in one_line_error(not_data)
