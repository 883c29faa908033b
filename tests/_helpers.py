"""Small helpers shared across the suite (no fixtures: those are in ``conftest.py``)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """The wall clock in ms, as record timestamps take it."""
    return int(time.time() * 1000)


def flip(path: str, pos: int, mask: int = 0xFF) -> None:
    """Damage a file in place: XOR the byte at ``pos`` with ``mask`` (all bits by default)."""
    with open(path, "r+b") as f:
        f.seek(pos)
        byte = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([byte ^ mask]))
