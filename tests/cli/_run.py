"""Running the command line as a real subprocess: ``python -m streamlog ...``."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ENV = {k: v for k, v in os.environ.items() if k != "STREAMLOG_DATA"}


def cli(
    data: str | None,
    *args: str,
    input: bytes | str | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``streamlog [--data DATA] ARGS`` and return the finished process (text output)."""
    argv: list[str] = [sys.executable, "-m", "streamlog"]
    if data is not None:
        argv += ["--data", data]
    argv += list(args)
    if isinstance(input, bytes):
        input = input.decode("utf-8", "surrogateescape")
    if input is None:
        input = ""  # never the terminal's stdin
    return subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=timeout,
        env=ENV if env is None else env,
        cwd=cwd,
    )


def cli_many(*calls: tuple[Any, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``cli(*call)`` invocations side by side (the suite's time budget).

    A call may end with a dict of keyword arguments for ``cli`` (``{"input": ...}``).
    """

    def one(call: tuple[Any, ...]) -> subprocess.CompletedProcess[str]:
        if call and isinstance(call[-1], dict):
            return cli(*call[:-1], **call[-1])
        return cli(*call)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, calls))


def cli_bytes(
    data: str, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """As ``cli`` with bytes in and out."""
    return subprocess.run(
        [sys.executable, "-m", "streamlog", "--data", data, *args],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=60,
        env=ENV,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a run that must have succeeded."""
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single stderr line of a run that must have failed with ``code``, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def usage_error(done: subprocess.CompletedProcess[str]) -> str:
    """A usage error: exit 2 and argparse's message."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert "usage: " in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def lines(text: str) -> list[str]:
    return text.splitlines()


__all__ = ["ENV", "cli", "cli_bytes", "cli_many", "lines", "ok", "one_line_error", "usage_error"]
