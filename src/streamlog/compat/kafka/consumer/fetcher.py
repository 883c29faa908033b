"""kafka-python's ``ConsumerRecord`` (2.0.2's fields; ``leader_epoch`` of 2.1+ as an attribute)."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ConsumerRecord"]


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int  # 0: CreateTime, 1: LogAppendTime
    key: Any
    value: Any
    headers: list[tuple[str, bytes | None]]
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int

    @property
    def leader_epoch(self) -> int:
        """kafka-python 2.1+'s field: -1, unknown (there are no leaders here)."""
        return -1
