"""Light futures for produced records: one small object per ``send``, one event per batch.

``concurrent.futures.Future.__init__`` builds a ``Condition`` per future (a
few microseconds), which alone would cap ``send()`` far below a million
records a second. Here the waiting machinery lives on the batch: a record's
future is three references, and ``result()`` waits on its batch's event.

``FutureRecordMetadata`` is a ``concurrent.futures.Future`` (so ``isinstance``
checks and type hints work), but all of its methods are overridden and do not
touch the base class's state; ``concurrent.futures.wait``/``as_completed``
are not supported on it (use ``result``/``add_done_callback``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .._config import wait_seconds
from .._structs import RecordMetadata
from ..errors import KafkaTimeoutError

Callback = Callable[["FutureRecordMetadata"], object]
_logger = logging.getLogger("streamlog")


class BatchResult:
    """Completion state shared by every record of one produced batch.

    Completed once, by the producer's sender thread (or at once for
    failures found during ``send``). Thread-safe.
    """

    __slots__ = ("append_time", "base_offset", "callbacks", "done", "error", "event", "lock")

    def __init__(self) -> None:
        self.done = False
        self.base_offset = -1
        self.append_time = -1  # under LogAppendTime: every record's timestamp
        self.error: BaseException | None = None
        self.event: threading.Event | None = None
        self.callbacks: list[tuple[FutureRecordMetadata, Callback]] | None = None
        self.lock = threading.Lock()

    def wait(self, timeout: float | None) -> bool:
        if self.done:
            return True
        with self.lock:
            if self.done:
                return True
            if self.event is None:
                self.event = threading.Event()
            event = self.event
        return event.wait(timeout)

    def complete(
        self, base_offset: int, error: BaseException | None, append_time: int = -1
    ) -> None:
        """Resolve every future of the batch and run their callbacks, in send order."""
        with self.lock:
            self.base_offset = base_offset
            self.append_time = append_time
            self.error = error
            self.done = True
            callbacks, self.callbacks = self.callbacks, None
            if self.event is not None:
                self.event.set()
        if callbacks:
            for fut, fn in callbacks:
                _run_callback(fut, fn)

    def add_callback(self, fut: FutureRecordMetadata, fn: Callback) -> bool:
        """Queue ``fn``; False if the batch is already done (the caller runs it)."""
        if self.done:
            return False
        with self.lock:
            if self.done:
                return False
            if self.callbacks is None:
                self.callbacks = []
            self.callbacks.append((fut, fn))
            return True


def _run_callback(fut: FutureRecordMetadata, fn: Callback) -> None:
    try:
        fn(fut)
    except Exception:  # as concurrent.futures does: a failing callback must not stop others
        _logger.exception("exception in a send callback")


class FutureRecordMetadata(Future):  # type: ignore[type-arg]
    """The future ``Producer.send`` returns; resolves to ``RecordMetadata``."""

    __slots__ = ("_batch", "_index", "_partition", "_timestamp", "_topic")

    def __init__(
        self, batch: BatchResult, index: int, topic: str, partition: int, timestamp: int
    ) -> None:
        # Deliberately not calling Future.__init__ (see the module docstring).
        self._batch = batch
        self._index = index
        self._topic = topic
        self._partition = partition
        self._timestamp = timestamp

    def done(self) -> bool:
        return self._batch.done

    def cancel(self) -> bool:
        return False  # a record handed to the producer cannot be withdrawn

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return not self._batch.done

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """The record's metadata; waits up to ``timeout`` seconds (None, ``inf`` or more
        than a thread can wait: no limit).

        :raises KafkaTimeoutError: not done within ``timeout``.
        :raises ValueError: ``timeout`` is negative or NaN (``TypeError``: not a number).
        """
        batch = self._batch
        if timeout is not None:
            timeout = wait_seconds("timeout", timeout, unit=1)
        if not batch.done and not batch.wait(timeout):
            raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")
        if batch.error is not None:
            raise batch.error
        offset = batch.base_offset + self._index if batch.base_offset >= 0 else -1
        ts = batch.append_time if batch.append_time >= 0 else self._timestamp
        return RecordMetadata(self._topic, self._partition, offset, ts)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        batch = self._batch
        if timeout is not None:
            timeout = wait_seconds("timeout", timeout, unit=1)
        if not batch.done and not batch.wait(timeout):
            raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")
        return batch.error

    def add_done_callback(self, fn: Callback) -> None:
        """Call ``fn(future)`` when done: on the producer's sender thread, in send order
        per partition; at once, in this thread, if the future is already done."""
        if not self._batch.add_callback(self, fn):
            _run_callback(self, fn)

    def set_result(self, result: Any) -> None:
        raise RuntimeError("the producer resolves this future")

    def set_exception(self, exception: BaseException | None) -> None:
        raise RuntimeError("the producer resolves this future")

    def __repr__(self) -> str:
        state = "pending"
        if self._batch.done:
            state = "failed" if self._batch.error is not None else "done"
        return f"<FutureRecordMetadata {self._topic}-{self._partition} {state}>"


def failed_future(
    topic: str, partition: int, timestamp: int, error: BaseException
) -> FutureRecordMetadata:
    batch = BatchResult()
    batch.complete(-1, error)
    return FutureRecordMetadata(batch, 0, topic, partition, timestamp)
