"""The stream-processing examples run and print what docs/streams.md shows."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(script: str, data_dir: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", script), data_dir],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_word_count_example(data_dir: str) -> None:
    out = _run("streams_word_count.py", data_dir)
    assert out[0] == "600 lines, 4200 words written to 'text'"
    assert out[1] == "top words (interactive query): the=800, dog=600, fox=400, is=400"
    assert out[2] == "'word-counts' agrees: 12 distinct words, the=800"
    assert out[3] == "after a restart and one more line: the=801, end=1"


def test_sessions_example(data_dir: str) -> None:
    out = _run("streams_sessions.py", data_dir)
    assert out[-1] == "5 sessions, identical in both runs"
    assert "  alice: minute 0-20, 3 view(s)" in out
    assert "  bob: minute 45-70, 2 view(s)" in out


def test_orders_payments_example(data_dir: str) -> None:
    out = _run("streams_orders_payments.py", data_dir)
    assert out == [
        "Ada: order of 15 UNPAID",
        "Ada: order of 25 paid",
        "Grace: order of 40 paid",
        "Grace: order of 99 UNPAID",
        "o5 is still inside its window: not reported yet",
    ]


def test_fraud_example(data_dir: str) -> None:
    out = _run("streams_fraud.py", data_dir)
    assert out == [
        "ALERT card-2: 2 payment(s), 1050.00 in the minute from 0 s",
        "ALERT card-3: 6 payment(s), 6.00 in the minute from 0 s",
        "dropped (late): card-1 99999 at 50 s",
    ]
