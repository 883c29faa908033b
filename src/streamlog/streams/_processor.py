"""The processor model under the DSL (Kafka Streams' Processor API, simplified).

A topology is a graph of nodes; a *task* (one per input partition of a
sub-topology) holds one instance of each node's processor and of each state
store. A record enters at a source node and is pushed depth-first through the
children with ``forward``: one call chain, no queues, as in Kafka Streams.

Processors are not thread-safe and need not be: a task is only ever run by one
thread at a time. ``ProcessorContext`` is the processor's view of its task:
the record being processed, stream time, stores, punctuation and forwarding
to its own children.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ._stores import StateStore
    from ._task import StreamTask

__all__ = [
    "Change",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Punctuation",
    "Record",
]


# ``tuple_new(Record, (key, value, timestamp, headers))`` makes a Record (or a Change)
# without the Python-level ``__new__`` of a NamedTuple: half the cost, on the hot path
# of every record (processors may use it; ``Record(...)`` is the same thing)
tuple_new = tuple.__new__


class Record(NamedTuple):
    """A record inside a topology: deserialized key and value, timestamp in ms, headers."""

    key: Any
    value: Any
    timestamp: int
    headers: tuple[tuple[str, bytes | None], ...] = ()

    def with_value(self, value: Any) -> Record:
        return tuple_new(Record, (self[0], value, self[2], self[3]))

    def with_key_value(self, key: Any, value: Any) -> Record:
        return tuple_new(Record, (key, value, self[2], self[3]))


class Change(NamedTuple):
    """What a KTable forwards downstream: the new value and the value it replaces
    (``None`` for an insert, or as ``new`` for a delete)."""

    new: Any
    old: Any


class PunctuationType(enum.Enum):
    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


class Punctuation:
    """A scheduled callback; ``cancel()`` stops it."""

    __slots__ = ("callback", "cancelled", "interval_ms", "kind", "next_ms")

    def __init__(
        self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None], first: int
    ) -> None:
        self.interval_ms = interval_ms
        self.kind = kind
        self.callback = callback
        self.next_ms = first
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Processor(abc.ABC):
    """Base class of every processor. Override ``process``; call ``self.context.forward``.

    ``on_stream_time`` is called when the task's stream time moves without a
    record reaching this processor (wall-clock advance of idle tasks), so
    processors that emit on time (suppression, outer joins) can do so.
    """

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    @abc.abstractmethod
    def process(self, record: Record) -> None:
        """Handle one record (forward results with ``self.context.forward``)."""

    def on_stream_time(self, stream_time: int) -> None:  # noqa: B027 - an optional hook
        """Stream time reached ``stream_time``; default: nothing to do."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Called once when the task is closed."""


class ProcessorContext:
    """One processor's view of its task (the ``context`` of Kafka's Processor API)."""

    __slots__ = ("_children", "_task", "forward", "name")

    #: ``forward(record)``: push ``record`` to every child of this node, depth-first.
    #: (An attribute: with one child, that child's ``process`` itself, one call less
    #: per record and hop on the hot path.)
    forward: Callable[[Record], None]

    def __init__(self, task: StreamTask, name: str, children: list[Processor]) -> None:
        self._task = task
        self._children = children
        self.name = name
        if len(children) == 1:
            self.forward = children[0].process
        else:
            self.forward = self._forward_all

    # ----------------------------------------------------------- forwarding
    def _forward_all(self, record: Record) -> None:
        for child in self._children:
            child.process(record)

    # ----------------------------------------------------- the task's state
    @property
    def application_id(self) -> str:
        return self._task.application_id

    @property
    def task_id(self) -> str:
        return self._task.task_id

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def topic(self) -> str | None:
        """The input topic of the record being processed (``None`` in a punctuation)."""
        return self._task.current_topic

    @property
    def offset(self) -> int | None:
        return self._task.current_offset

    @property
    def timestamp(self) -> int:
        """The timestamp of the record being processed (stream time in a punctuation)."""
        return self._task.current_timestamp

    @property
    def stream_time(self) -> int:
        """The largest timestamp this task has seen (-1 before its first record),
        or the wall-clock advance of an idle task when that is configured."""
        return self._task.stream_time

    @property
    def wall_clock_ms(self) -> int:
        return self._task.wall_clock_ms()

    def get_state_store(self, name: str) -> StateStore:
        return self._task.store(name)

    def schedule(
        self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]
    ) -> Punctuation:
        """Call ``callback(time)`` every ``interval_ms`` of stream time or wall-clock time."""
        return self._task.schedule(interval_ms, kind, callback)

    def record_dropped(self, reason: str, record: Record, **detail: Any) -> None:
        """Count a dropped record (late, null key, ...) and tell the app's callback."""
        self._task.record_dropped(self.name, reason, record, detail)
