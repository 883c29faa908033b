"""A kafka-python assignor class: a marker for the streamlog assignor of the same name."""

from __future__ import annotations

__all__ = ["StickyPartitionAssignor"]


class StickyPartitionAssignor:
    name = "sticky"
    version = 0
