"""Helpers shared by the benchmark scripts: machine and source description, statistics."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess


def machine() -> str:
    """CPU count and model, Python version, kernel: the header line of every result file."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"nproc={os.cpu_count()}, CPU: {cpu or platform.processor() or '?'}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}"
    )


def source_state(repo: str) -> str:
    """The commit, and a digest of uncommitted changes to src/ (the numbers depend on them)."""

    def git(*a: str) -> bytes:
        return subprocess.run(
            ["git", "-C", repo, *a], capture_output=True, check=True, timeout=30
        ).stdout

    try:
        rev = git("rev-parse", "--short", "HEAD").decode().strip()
        diff = git("diff", "HEAD", "--", "src")
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    if not diff:
        return f"commit {rev}, src/ clean"
    digest = hashlib.sha1(diff).hexdigest()[:10]
    return f"commit {rev} + uncommitted changes to src/ (diff sha1 {digest})"
