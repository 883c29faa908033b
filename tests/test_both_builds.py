"""The compiled speedups and the pure-Python fallback pass the same tests.

The suite runs against whichever build is installed (the C extension when a
compiler was found). This test runs the tests of everything the extension
replaces (the partitioner and the producer that calls it, and the
produce-consume round trip) again in a child with ``STREAMLOG_PURE_PYTHON=1``,
so both builds are tested in every CI run. Without the extension every test
already runs the fallback, and this one is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from streamlog.clients import _partitioner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBSET = [
    "tests/unit/test_partitioner.py",
    "tests/unit/test_producer.py",
    "tests/property/test_produce_roundtrip.py",
]


@pytest.mark.skipif(not _partitioner.COMPILED, reason="no compiled extension: all runs are pure")
def test_the_pure_python_fallback_passes_the_same_tests() -> None:
    env = {**os.environ, _partitioner.PURE_PYTHON_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
