"""Helpers shared by the benchmark scripts: machine and source description, statistics."""

from __future__ import annotations

import datetime
import gc
import hashlib
import os
import platform
import statistics
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
    """A result table: rows of cells under ``columns`` (by default: name, median, range,
    detail, target, status) and section titles; ``render`` pads the columns, right-aligning
    the ``right`` ones (numbers). The last column is the status."""

    DEFAULT = ("median", "range", "detail", "target", "status")

    def __init__(
        self,
        first: str = "workload",
        *,
        columns: tuple[str, ...] | None = None,
        right: set[int] | None = None,
    ) -> None:
        self.HEAD = columns if columns is not None else (first, *self.DEFAULT)
        self.right = {1, 2} if right is None else right
        self.rows: list[tuple[str, ...]] = []

    def row(self, name: str, *cells: str) -> None:
        k = len(self.HEAD)
        if len(cells) >= k:
            raise ValueError(f"{len(cells) + 1} cells for {k} columns")
        self.rows.append((name, *cells, *("" for _ in range(k - 1 - len(cells)))))

    def section(self, title: str) -> None:
        self.rows.append((title, *("" for _ in range(len(self.HEAD) - 2)), "#"))

    def render(self) -> str:
        head = self.HEAD
        k = len(head)
        body = [r for r in self.rows if r[-1] != "#"]
        w = [max(len(head[i]), *(len(r[i]) for r in body)) for i in range(k)]
        line = "  ".join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip()
        out = [line, "-" * len(line)]
        for r in self.rows:
            if r[-1] == "#":
                out.append(r[0])
                continue
            out.append(
                "  ".join(
                    (r[i].rjust(w[i]) if i in self.right else r[i].ljust(w[i]))
                    for i in range(k)
                ).rstrip()
            )
        return "\n".join(out)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = ",.0f") -> str:
    """The range of ``xs`` as ``min-max``."""
    return f"{min(xs):{fmt}}-{max(xs):{fmt}}"


def percentile(sorted_xs: list[float] | list[int], q: float) -> float:
    """The ``q`` quantile (0..1) of an already sorted list, nearest rank; nan if empty."""
    if not sorted_xs:
        return float("nan")
    i = min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))
    return float(sorted_xs[i])


def settle() -> None:
    """Flush dirty pages and collect garbage between measurements, so writeback of one
    does not tax the next."""
    gc.collect()
    os.sync()


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
