"""Figures the reliability suites report: counts recorded per suite, printed as one table.

Each suite calls ``record("T3 power cuts", cuts=..., acked_all_lost=0, ...)``;
numbers add up over calls with the same suite name (so a suite run in several
tests reports one line). The table is printed at the end of the pytest session
(``conftest.py``) and by ``benchmarks/soak.py``.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
FIGURES: dict[str, dict[str, int | float | str]] = {}


def record(suite: str, **values: int | float | str) -> None:
    """Add ``values`` to the suite's figures (numbers add; strings replace)."""
    with _lock:
        row = FIGURES.setdefault(suite, {})
        for key, value in values.items():
            old = row.get(key)
            if isinstance(value, (int, float)) and isinstance(old, (int, float)):
                row[key] = old + value
            else:
                row[key] = value


def table() -> str:
    """The figures as text: one line per suite, ``key=value`` pairs."""
    with _lock:
        if not FIGURES:
            return ""
        width = max(len(s) for s in FIGURES)
        lines = []
        for suite in sorted(FIGURES):
            row = FIGURES[suite]
            cells = ", ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
            lines.append(f"{suite:<{width}}  {cells}")
        return "\n".join(lines)


def scratch_dir() -> str | None:
    """A directory on tmpfs for in-process durability models (their fsyncs cost nothing
    there; the model, not the disk, decides what survives), or None for the default."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return None
