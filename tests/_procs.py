"""Helpers for tests that run real child processes (tests/multiprocess, tests/crash,
tests/reliability)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

# the repository's top: children put it on sys.path to import ``tests.…``
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def finish(proc: subprocess.Popen[Any], timeout: float, what: str) -> str:
    """Wait for ``proc`` (killing it after ``timeout`` s); it must exit 0. Its stdout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{what} timed out\n{_text(out)}\n{_text(err)}") from None
    assert proc.returncode == 0, f"{what} exited with {proc.returncode}\n{_text(out)}\n{_text(err)}"
    return _text(out)


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode()
    return data or ""


def kill_after_first_ack(proc: subprocess.Popen[bytes], delay: float) -> bytes:
    """Wait for the child's first acknowledgement (a line ``A …``), let it run ``delay`` s
    more, SIGKILL it (it must die of that). Everything it printed."""
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith(b"A "):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"child failed before its first ack: {first!r}\n{err.decode()}")
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    rest, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode())
    return first + rest


def lock_held(lock_path: str) -> bool:
    """Whether another open file description holds the flock of ``lock_path``."""
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (SIGSTOP: state ``T`` in /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def call_in_child(
    module: str, function: str, kwargs: dict[str, Any], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``module.function(**kwargs)`` in a fresh interpreter (faulthandler on, cwd and
    sys.path at ``ROOT``), which prints its result as JSON; read it with ``last_json``."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "import faulthandler; faulthandler.enable()\n"
        f"from {module} import {function}\n"
        f"print(json.dumps({function}(**json.loads({json.dumps(json.dumps(kwargs))}))))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def last_json(stdout: str) -> Any:
    """The JSON value on the last line of a child's output."""
    return json.loads(stdout.strip().splitlines()[-1])
