"""Shared fixtures of the reliability suites, and the figures table at the end of the run."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from ._figures import scratch_dir, table


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """True when the run was started with ``--soak`` (long loops)."""
    return bool(request.config.getoption("--soak"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    text = table()
    if text:
        terminalreporter.section("streamlog reliability figures")
        terminalreporter.write_line(text)


@pytest.fixture
def scratch() -> Iterator[str]:
    """A temporary directory on tmpfs when there is one (see ``_figures.scratch_dir``)."""
    path = tempfile.mkdtemp(prefix="streamlog-reliability-", dir=scratch_dir())
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
