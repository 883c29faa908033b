"""``streamlog perf produce|consume``: Kafka's summary lines, record counts."""

from __future__ import annotations

import re

import streamlog

from ._run import cli, lines, ok

PRODUCE = re.compile(
    r"(\d+) records sent, \d+\.\d{6} records/sec \(\d+\.\d\d MB/sec\), \d+\.\d\d ms avg latency, "
    r"\d+\.\d\d ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\."
)
HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}"
ROW = re.compile(
    rf"{DATE}, {DATE}, (\d+\.\d{{4}}), \d+\.\d{{4}}, (\d+), \d+\.\d{{4}}, (\d+), (-?\d+), "
    r"\d+\.\d{4}, \d+\.\d{4}"
)


def test_perf_produce_then_consume(tmp_path: str) -> None:
    data = str(tmp_path / "d")
    done = cli(
        data,
        "perf",
        "produce",
        "--topic",
        "perf",
        "--records",
        "3000",
        "--record-size",
        "100",
        "--acks",
        "all",
        "--batch-size",
        "8192",
    )
    m = PRODUCE.fullmatch(ok(done).strip())
    assert m and m[1] == "3000", done.stdout
    assert done.stderr == ""  # progress lines only on a terminal
    with streamlog.open(data) as log:  # the topic was created, every record is there
        d = log.describe_topic("perf")
        assert [p.end_offset for p in d.partitions] == [3000]

    out = lines(ok(cli(data, "perf", "consume", "--topic", "perf", "--messages", "3000")))
    assert out[0] == HEADER
    m = ROW.fullmatch(out[1])
    assert m, out[1]
    assert m[2] == "3000"
    assert float(m[1]) == round(3000 * 100 / 2**20, 4)

    # fewer records than asked for: a warning after the timeout, the row still printed
    done = cli(
        data,
        "perf",
        "consume",
        "--topic",
        "perf",
        "--messages",
        "3001",
        "--timeout-ms",
        "200",
        "--hide-header",
        "--group",
        "perf-group",
    )
    out = lines(ok(done))
    assert len(out) == 1
    m = ROW.fullmatch(out[0])
    assert m and m[2] == "3000"
    assert done.stderr.startswith(
        "WARNING: Exiting before consuming the expected number of "
        "messages: timeout (200 ms) exceeded."
    )


def test_perf_produce_throttled_with_zstd(tmp_path: str) -> None:
    data = str(tmp_path / "d")
    done = cli(
        data,
        "perf",
        "produce",
        "--topic",
        "p2",
        "--records",
        "200",
        "--record-size",
        "10",
        "--throughput",
        "1000",
        "--compression-codec",
        "zstd",
        "--linger-ms",
        "5",
    )
    m = PRODUCE.fullmatch(ok(done).strip())
    assert m and m[1] == "200"
    rate = float(ok(done).split(", ")[1].split()[0])
    assert rate < 1300  # about 1000 records/s: throttled
