"""Setup (and teardown) time per test of the pytest plugin's fixtures.

    .venv/bin/python benchmarks/bench_fixture.py [--tests 200]

Runs a generated test module in-process with pytest: N tests using ``kafka_cluster``,
N using ``streamlog_log``, and N using only ``tmp_path`` (the baseline both fixtures
build on), and prints the median / p95 / mean setup time of each group, from pytest's
own per-phase durations. The target is well under 20 ms of setup per test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine

MODULE = '''
import pytest

N = {n}

@pytest.mark.parametrize("i", range(N))
def test_kafka_cluster(kafka_cluster, i):
    from confluent_kafka import Producer
    Producer({{"bootstrap.servers": kafka_cluster.bootstrap_servers}})

@pytest.mark.parametrize("i", range(N))
def test_streamlog_log(streamlog_log, i):
    streamlog_log.topics()

@pytest.mark.parametrize("i", range(N))
def test_baseline_tmp_path(tmp_path, i):
    pass
'''


class Collect:
    def __init__(self) -> None:
        self.times: dict[str, dict[str, list[float]]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        group = report.nodeid.split("::")[-1].split("[")[0]
        self.times.setdefault(group, {}).setdefault(report.when, []).append(report.duration)


GROUPS = ("test_kafka_cluster", "test_streamlog_log", "test_baseline_tmp_path")


def measure(tests: int) -> tuple[int, dict[str, dict[str, list[float]]]]:
    """Run the generated module with ``tests`` tests per fixture; returns pytest's exit
    code and the per-phase durations in seconds, ``{group: {"setup": [...], ...}}``."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "test_bench_fixture.py")
        with open(path, "w") as f:
            f.write(MODULE.format(n=tests))
        collect = Collect()
        rc = pytest.main(
            [path, "-q", "-p", "no:cacheprovider", "--rootdir", d, "-o", "addopts=",
             "--basetemp", os.path.join(d, "tmp")],
            plugins=[collect],
        )
    return int(rc), collect.times


def summary(times: dict[str, dict[str, list[float]]], group: str) -> dict[str, float]:
    """setup median / p95 / mean and teardown median of one group, in ms."""
    t = times.get(group, {})
    setup = sorted(x * 1000 for x in t.get("setup", [0.0]))
    teardown = sorted(x * 1000 for x in t.get("teardown", [0.0]))
    return {
        "setup_median": statistics.median(setup),
        "setup_p95": setup[min(len(setup) - 1, int(len(setup) * 0.95))],
        "setup_mean": statistics.mean(setup),
        "teardown_median": statistics.median(teardown),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tests", type=int, default=200, help="tests per fixture")
    args = ap.parse_args()
    rc, times = measure(args.tests)
    print(machine())
    print(f"{args.tests} tests per fixture; times in ms")
    print(f"{'fixture':<24}{'setup median':>14}{'setup p95':>11}{'setup mean':>12}"
          f"{'teardown median':>17}")
    for group in GROUPS:
        s = summary(times, group)
        print(f"{group.removeprefix('test_'):<24}{s['setup_median']:>14.2f}"
              f"{s['setup_p95']:>11.2f}{s['setup_mean']:>12.2f}{s['teardown_median']:>17.2f}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
