"""The crash points (``crashpoint("name")`` in the source; ``STREAMLOG_CRASHPOINT=name:n``
kills the process at the n-th pass) and which suite runs which.

Every point is read from the package's source, so a new one is picked up by
``test_crash_points.py`` without a list to update (recovery points by their ``recover.``
prefix); ``test_crash_points.py`` and ``test_io_seam.py`` check that
``docs/reliability.md`` lists each. The suites in ``tests/crash`` run fixed subsets at
n = 1..3 (their workload passes those points); they check that the names still exist.
"""

from __future__ import annotations

import os
import re

import streamlog

SRC = os.path.dirname(streamlog.__file__)
_CRASHPOINT = re.compile(r'crashpoint\("([a-z_.]+)"\)')

# tests/crash/test_kill9.py: a producer process (appends, rolls, retention, metadata)
KILL9_POINTS = [
    "append.before_publish",
    "append.after_publish",
    "append.indexed",
    "roll.sealed",
    "roll.before_create",
    "roll.created",
    "retention.start_moved",
    "retention.deleted_one",
    "sync.before",
    "sync.after",
    "meta.tmp_written",
    "meta.renamed",
]
# tests/crash/test_offsets_crash.py: a process committing offsets (the ``meta.*`` points
# are inside ``fs.write_atomic``, which creates and rewrites the file)
OFFSETS_POINTS = [
    "offsets.appended",
    "offsets.before_rewrite_rename",
    "meta.tmp_written",
    "meta.renamed",
]
# tests/crash/test_crash_during_recovery.py: an open recovering a torn tail
MID_RECOVERY_POINTS = ["recover.indexed", "recover.truncated", "recover.synced"]
# what tests/crash already runs at n = 1..3 (tests/reliability runs the rest at n = 1)
COVERED = {*KILL9_POINTS, *OFFSETS_POINTS, *MID_RECOVERY_POINTS}


def source_crash_points() -> list[str]:
    """Every ``crashpoint("...")`` name in the package's source, sorted."""
    names: set[str] = set()
    for dirpath, _dirs, files in os.walk(SRC):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    names.update(_CRASHPOINT.findall(f.read()))
    return sorted(names)


def recovery_points() -> list[str]:
    """The points passed while an open recovers a partition (``recover.*``)."""
    return [p for p in source_crash_points() if p.startswith("recover.")]


def group_points() -> list[str]:
    """The points passed by the consumer-group code (``group.*``): left to its chaos suite."""
    return [p for p in source_crash_points() if p.startswith("group.")]


def txn_points() -> list[str]:
    """The points of the transaction coordinator (``txn.*``): run by test_txn_crash_points."""
    return [p for p in source_crash_points() if p.startswith("txn.")]


def clean_points() -> list[str]:
    """The points of the log cleaner (``clean.*``): run by test_clean_crash_points."""
    return [p for p in source_crash_points() if p.startswith("clean.")]


def operation_points() -> list[str]:
    """The points passed by operations on an open directory (all but the four above)."""
    return [
        p
        for p in source_crash_points()
        if not p.startswith(("recover.", "group.", "txn.", "clean."))
    ]
