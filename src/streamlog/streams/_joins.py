"""Joins: stream-stream (windowed), stream-table, stream-global-table,
table-table and foreign-key table-table.

Each function adds the join's nodes (and stores) to the application's
topology and returns the result node (tables: also its value getter and the
stores it reads). Semantics are Kafka Streams' (docs/streams.md, "Joins").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._processor import Processor, Record
from ._windows import JoinWindows

if TYPE_CHECKING:
    from ._app import StreamsApp
    from ._dsl import GetterFactory, GlobalKTable, KTable

__all__ = [
    "foreign_key_join",
    "stream_global_table_join",
    "stream_stream_join",
    "stream_table_join",
    "table_table_join",
]


class StreamTableJoin(Processor):
    """Each stream record looks up the table's row at processing time; table updates
    only change that row (they trigger nothing)."""

    def __init__(
        self,
        getter: GetterFactory,
        joiner: Callable[[Any, Any], Any],
        left: bool,
        key_selector: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.getter_factory = getter
        self.joiner = joiner
        self.left = left
        self.key_selector = key_selector

    def init(self, context: Any) -> None:
        super().init(context)
        self.get = self.getter_factory(context._task)

    def process(self, record: Record) -> None:
        if record.value is None:
            self.context.record_dropped("null-value", record)
            return
        key = (
            record.key if self.key_selector is None else self.key_selector(record.key, record.value)
        )
        if key is None:
            if not self.left:
                self.context.record_dropped("null-key", record)
                return
            entry = None
        else:
            entry = self.get(key)
        if entry is None:
            if not self.left:
                return
            self.context.forward(record.with_value(self.joiner(record.value, None)))
            return
        self.context.forward(record.with_value(self.joiner(record.value, entry[0])))


def stream_table_join(
    app: StreamsApp, stream: str, table: KTable, joiner: Callable[[Any, Any], Any], kind: str
) -> str:
    getter = table.value_getter()
    return app._builder.add_processor(
        "KSTREAM-JOIN" if kind == "inner" else "KSTREAM-LEFTJOIN",
        lambda: StreamTableJoin(getter, joiner, kind == "left"),
        [stream],
        table._stores,
    )


def stream_global_table_join(
    app: StreamsApp,
    stream: str,
    table: GlobalKTable,
    key_selector: Callable[[Any, Any], Any],
    joiner: Callable[[Any, Any], Any],
    kind: str,
) -> str:
    getter = table.value_getter()
    return app._builder.add_processor(
        "KSTREAM-JOIN" if kind == "inner" else "KSTREAM-LEFTJOIN",
        lambda: StreamTableJoin(getter, joiner, kind == "left", key_selector),
        [stream],
        (table.queryable_store_name,),
    )


def stream_stream_join(
    app: StreamsApp,
    left: str,
    right: str,
    joiner: Callable[[Any, Any], Any],
    windows: JoinWindows,
    kind: str,
) -> str:
    raise NotImplementedError


def table_table_join(
    app: StreamsApp, left: KTable, right: KTable, joiner: Callable[[Any, Any], Any], kind: str
) -> tuple[str, GetterFactory | None, tuple[str, ...]]:
    raise NotImplementedError


def foreign_key_join(
    app: StreamsApp,
    left: KTable,
    right: KTable,
    extractor: Callable[[Any], Any],
    joiner: Callable[[Any, Any], Any],
    kind: str,
) -> tuple[str, GetterFactory | None, tuple[str, ...]]:
    raise NotImplementedError
