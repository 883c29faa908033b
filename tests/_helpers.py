"""Small helpers shared across the suite (no fixtures: those are in ``conftest.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
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


def mount_tmpfs(path: str, size: str) -> bool:
    """Mount a tmpfs of ``size`` (``"1m"``) at ``path``: a real small disk to fill. False
    where that is not possible (not root, no ``mount``); unmount with ``umount -l``."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True
    )
    return done.returncode == 0


def numeric_topic_keys() -> list[str]:
    """Every topic config key whose value is an int (from the defaults, so a new key is
    covered without a list to update)."""
    import streamlog

    defaults = streamlog.TopicConfig().to_dict()
    return sorted(k for k, v in defaults.items() if isinstance(v, int) and not isinstance(v, bool))
