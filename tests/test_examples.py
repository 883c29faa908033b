"""The examples run as the README says, and show what they promise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script: str, data_dir: str) -> str:
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", script), data_dir],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quickstart_produces_consumes_and_checks_clean(data_dir: str) -> None:
    out = _run("quickstart.py", data_dir)
    assert out.count("sent to orders-") == 4
    assert out.count("orders-0@") + out.count("orders-1@") + out.count("orders-2@") == 4
    assert "records: ok" in out.splitlines()[-1]


@pytest.mark.multiprocess
def test_two_processes_example_delivers_every_event(data_dir: str) -> None:
    out = _run("two_processes.py", data_dir)
    assert out.count("consumer pid: got b'event ") == 20
    assert out.splitlines()[-1] == "consumer exited with 0"


@pytest.mark.multiprocess
def test_exactly_once_example_survives_a_sigkill(data_dir: str) -> None:
    out = _run("exactly_once.py", data_dir)
    assert "transformer killed with SIGKILL (exit code -9)" in out
    assert out.splitlines()[-1] == (
        "read_committed sees 2000: each payment exactly once, in order"
    )


@pytest.mark.multiprocess
def test_event_sourcing_example_races_projects_and_rebuilds(data_dir: str) -> None:
    out = _run("event_sourcing.py", data_dir)
    assert out.count("50 deposits") == 2
    assert "acc-1: 101 events, revision 100, balance 1000" in out
    assert "from snapshot at revision 100 + 1 newer event(s): balance 970" in out
    assert "projection applied 102 events: balance 970" in out
    assert out.splitlines()[-1] == "projection rebuilt from the beginning (102 events): balance 970"


def test_asyncio_service_example_serves_a_projection(data_dir: str) -> None:
    out = _run("asyncio_service.py", data_dir)
    assert "20 concurrent deposits of 10: 20 x 200" in out
    assert "20 concurrent withdrawals of 15: 13 x 200, 7 x 409 (insufficient)" in out
    conflicts = int(out.split("optimistic concurrency: ")[1].split()[0])
    assert conflicts > 0  # concurrent requests raced, and the losers retried
    assert '-> 200 {"account": "acc-1", "balance": 5, "revision": 32}' in out
    assert "mailer: 33 notifications (Deposited, Withdrawn)" in out
    assert "projection: 33 events applied, position 32" in out
    assert out.splitlines()[-1] == "service stopped cleanly"
