"""kafka-python's ``DefaultPartitioner``: murmur2 of the key, as the Java client.

The shim's producer uses streamlog's built-in ``"murmur2"`` partitioner when this
class is configured (the default); keyed records land where kafka-python puts them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ....clients._partitioner import murmur2 as _murmur2_signed

__all__ = ["DefaultPartitioner", "murmur2"]


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2`` as a signed 32-bit int (kafka-python's return value)."""
    return int(_murmur2_signed(bytes(data)))


class DefaultPartitioner:
    @classmethod
    def __call__(
        cls, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            if available:
                return random.choice(available)
            return random.choice(all_partitions)
        idx = murmur2(key)
        idx &= 0x7FFFFFFF
        idx %= len(all_partitions)
        return all_partitions[idx]
