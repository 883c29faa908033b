"""Helpers shared by the benchmark scripts: machine and source description, statistics."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess
import sys
import time

import streamlog


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


class Table:
    """A result table: rows of (name, median, range, detail, target, status), and
    section titles; ``render`` pads the columns (numbers right-aligned)."""

    def __init__(self, first: str = "workload") -> None:
        self.HEAD = (first, "median", "range", "detail", "target", "status")
        self.rows: list[tuple[str, ...]] = []

    def row(
        self,
        name: str,
        value: str,
        rng: str = "",
        detail: str = "",
        target: str = "",
        status: str = "",
    ) -> None:
        self.rows.append((name, value, rng, detail, target, status))

    def section(self, title: str) -> None:
        self.rows.append((title, "", "", "", "", "#"))

    def render(self) -> str:
        head = self.HEAD
        body = [r for r in self.rows if r[5] != "#"]
        k = len(head)
        w = [max(len(head[i]), *(len(r[i]) for r in body)) for i in range(k)]
        right = {1, 2}
        line = "  ".join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip()
        out = [line, "-" * len(line)]
        for r in self.rows:
            if r[5] == "#":
                out.append(r[0])
                continue
            out.append(
                "  ".join(
                    (r[i].rjust(w[i]) if i in right else r[i].ljust(w[i])) for i in range(k)
                ).rstrip()
            )
        return "\n".join(out)


def status(ok: bool) -> str:
    """The status column of a row with a target."""
    return "met" if ok else "MISSED"


def write_report(
    title: str,
    table: Table,
    source: str,
    t_start: float,
    load_at_start: tuple[float, float, float],
    out_path: str,
) -> None:
    """Print ``table`` under the run's header (machine, source, command, time, load) and
    write the same text to ``out_path``."""
    python = sys.executable
    if python.startswith(os.getcwd() + os.sep):
        python = os.path.relpath(python)
    header = [
        f"{title}, " + datetime.datetime.now().isoformat(timespec="seconds"),
        f"machine: {machine()}",
        f"streamlog {streamlog.__version__}, {source}",
        f"command: {' '.join([python, *sys.argv])}",
        f"total time {time.perf_counter() - t_start:.0f}s; load average (1 min) "
        f"{load_at_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "",
    ]
    text = "\n".join(header) + table.render() + "\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as out:
        out.write(text)
    print(f"written to {out_path}", file=sys.stderr)
