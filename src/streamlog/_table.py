"""``log.table(topic)``: a read-only Mapping of the latest value per key of a topic."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._structs import TopicPartition
from .clients._consumer import Consumer
from .errors import ClosedError

if TYPE_CHECKING:
    from .coordination._manager import LogManager

__all__ = ["Table"]


class Table(Mapping[Any, Any]):
    """The latest value of every key of a topic (all partitions), as a read-only Mapping.

    A changelog view (Kafka Streams' KTable): every record is an upsert, a record
    whose value is None (a tombstone) deletes its key; the record with the largest
    offset of its partition wins. Records without a key are skipped. Built by
    following the topic from its start with a read_committed ``Consumer`` (aborted
    transactions never show); ``refresh()`` catches up with every process's appends
    (partitions added meanwhile included). With ``refresh_interval_ms``, an access
    also refreshes when the last refresh is older than that. Memory: the live keys
    and their values (deserialized).

    Thread-safe: one lock serialises refreshes and reads of the dict.
    """

    def __init__(
        self,
        manager: LogManager,
        topic: str,
        *,
        key_deserializer: Callable[[bytes], Any] | None = None,
        value_deserializer: Callable[[bytes], Any] | None = None,
        refresh_interval_ms: float | None = None,
    ) -> None:
        if refresh_interval_ms is not None and (
                isinstance(refresh_interval_ms, bool)
                or not isinstance(refresh_interval_ms, (int, float))
                or not refresh_interval_ms >= 0):
            raise ValueError(f"refresh_interval_ms must be a number >= 0 or None; "
                             f"got {refresh_interval_ms!r}")
        manager.catalog.require(topic)  # UnknownTopicError now, not at the first refresh
        self.topic = topic
        self._manager = manager
        self._key_de = key_deserializer
        self._value_de = value_deserializer
        self._interval = None if refresh_interval_ms is None else refresh_interval_ms / 1000
        self._data: dict[Any, Any] = {}
        self._lock = threading.RLock()
        self._consumer = Consumer(manager, enable_auto_commit=False,
                                  isolation_level="read_committed")
        self._assigned: list[TopicPartition] = []
        self._refreshed = 0.0
        self._closed = False
        self.refresh()

    def _assign_new(self) -> None:
        count = self._manager.catalog.require(self.topic).partitions
        if count > len(self._assigned):
            new = [TopicPartition(self.topic, p) for p in range(len(self._assigned), count)]
            self._assigned += new
            self._consumer.assign(self._assigned)  # (keeps the positions it had)
            self._consumer.seek_to_beginning(*new)

    def refresh(self, timeout_ms: float = 0) -> int:
        """Apply every record appended so far (by any process); returns how many were
        applied. If there were none, wait up to ``timeout_ms`` for one."""
        with self._lock:
            if self._closed:
                raise ClosedError("the table is closed")
            self._assign_new()
            consumer = self._consumer
            ends = consumer.end_offsets(self._assigned)
            applied = 0
            deadline = time.monotonic() + timeout_ms / 1000
            while True:
                batch = consumer.poll(0)
                if not batch:
                    if all(consumer.position(tp) >= e for tp, e in ends.items()):
                        left = deadline - time.monotonic()
                        if applied or left <= 0:
                            break
                        # (the consumer arms a doorbell first: no lost wake-up)
                        batch = consumer.poll(max(1, int(left * 1000)))
                        if not batch:
                            break
                    else:
                        continue  # (only skipped data, e.g. aborted records)
                applied += self._apply(batch)
            self._refreshed = time.monotonic()
            return applied

    def _apply(self, batch: Mapping[TopicPartition, list[Any]]) -> int:
        data, kde, vde = self._data, self._key_de, self._value_de
        n = 0
        for records in batch.values():
            for r in records:
                if r.key is None:
                    continue
                key = kde(r.key) if kde is not None else r.key
                if r.value is None:
                    data.pop(key, None)
                else:
                    data[key] = vde(r.value) if vde is not None else r.value
                n += 1
        return n

    def _maybe_refresh(self) -> None:
        if self._closed:
            raise ClosedError("the table is closed")
        if self._interval is not None and time.monotonic() - self._refreshed >= self._interval:
            self.refresh()

    def __getitem__(self, key: Any) -> Any:
        with self._lock:
            self._maybe_refresh()
            return self._data[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._maybe_refresh()
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            self._maybe_refresh()
            return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            self._maybe_refresh()
            return iter(list(self._data))  # (a copy: refreshes may change the dict)

    def close(self) -> None:
        """Release the table's consumer. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._consumer.close()
                self._data.clear()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<streamlog.Table {self.topic!r} keys={len(self._data)}>"
