"""kafka-python's ``kafka.producer.future``: ``FutureRecordMetadata`` and ``RecordMetadata``."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from ....clients._future import FutureRecordMetadata as _SlFuture
from ....errors import KafkaTimeoutError as _SlTimeout
from .. import errors as Errors  # noqa: N812 - kafka-python's spelling
from .._convert import convert
from ..structs import TopicPartition

__all__ = ["FutureRecordMetadata", "RecordMetadata"]

_log = logging.getLogger(__name__)


class RecordMetadata(NamedTuple):
    """kafka-python 2.0.2's fields (``log_start_offset`` is -1: not reported)."""

    topic: str
    partition: int
    topic_partition: TopicPartition
    offset: int
    timestamp: int
    log_start_offset: int
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


class FutureRecordMetadata:
    """What ``KafkaProducer.send`` returns: ``get(timeout)``, ``add_callback``,
    ``add_errback``, ``add_both``, ``succeeded()``, ``failed()``, ``retriable()``,
    ``is_done``, ``value``, ``exception``.

    Callbacks run on the producer's sender thread (at once, in the caller's thread,
    when the future is already done); an exception in one is logged, as kafka-python does.
    """

    def __init__(
        self, inner: _SlFuture, key_size: int, value_size: int, header_size: int
    ) -> None:
        self._inner = inner
        self._sizes = (key_size, value_size, header_size)
        self._lock = threading.Lock()
        self._value: RecordMetadata | None = None
        self._exception: BaseException | None = None
        self._resolved = False

    def _resolve(self) -> None:
        if self._resolved:
            return
        with self._lock:
            if self._resolved:
                return
            err = self._inner.exception(0)
            if err is not None:
                self._exception = convert(err)
            else:
                md = self._inner.result(0)
                self._value = RecordMetadata(
                    md.topic, md.partition, TopicPartition(md.topic, md.partition),
                    md.offset, md.timestamp, -1, None, *self._sizes,
                )
            self._resolved = True

    @property
    def is_done(self) -> bool:
        return self._inner.done()

    @property
    def value(self) -> RecordMetadata | None:
        if not self._inner.done():
            return None
        self._resolve()
        return self._value

    @property
    def exception(self) -> BaseException | None:
        if not self._inner.done():
            return None
        self._resolve()
        return self._exception

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def retriable(self) -> bool:
        return bool(getattr(self.exception, "retriable", False))

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """The record's metadata; waits up to ``timeout`` seconds.

        :raises KafkaTimeoutError: not done in time. Otherwise the send's own error.
        """
        if not self._inner.done():
            try:
                self._inner.exception(timeout)
            except _SlTimeout as e:
                raise Errors.KafkaTimeoutError(
                    f"Timeout after waiting for {timeout} secs."
                ) from e
        self._resolve()
        if self._exception is not None:
            raise self._exception
        assert self._value is not None
        return self._value

    def _run(self, fn: Callable[[Any], Any], on_error: bool) -> None:
        self._resolve()
        try:
            if on_error and self._exception is not None:
                fn(self._exception)
            elif not on_error and self._exception is None:
                fn(self._value)
        except Exception:
            _log.exception("Error processing callback")

    def add_callback(
        self, f: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> FutureRecordMetadata:
        """Call ``f(*args, metadata, **kwargs)`` when the send succeeds."""
        fn = functools.partial(f, *args, **kwargs) if args or kwargs else f
        self._inner.add_done_callback(lambda _f: self._run(fn, False))
        return self

    def add_errback(
        self, f: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> FutureRecordMetadata:
        """Call ``f(*args, exception, **kwargs)`` when the send fails."""
        fn = functools.partial(f, *args, **kwargs) if args or kwargs else f
        self._inner.add_done_callback(lambda _f: self._run(fn, True))
        return self

    def add_both(
        self, f: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> FutureRecordMetadata:
        self.add_callback(f, *args, **kwargs)
        self.add_errback(f, *args, **kwargs)
        return self

    def __repr__(self) -> str:
        state = "pending"
        if self.is_done:
            state = "failed" if self.failed() else "done"
        return f"<FutureRecordMetadata {state}>"


def failed(error: BaseException) -> FutureRecordMetadata:
    """A future that failed before reaching streamlog."""
    from ....clients._future import failed_future  # noqa: PLC0415

    return FutureRecordMetadata(failed_future("", -1, -1, error), -1, -1, -1)
