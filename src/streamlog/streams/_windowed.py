"""Windowed aggregations (time, sliding, session windows) and suppression."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import StreamsApp

__all__ = ["suppress_until_window_closes", "windowed_aggregate"]


def windowed_aggregate(
    app: StreamsApp,
    parent: str,
    windows: Any,
    store: str,
    *,
    initializer: Any,
    aggregator: Any,
    reducer: Any,
    merger: Any = None,
) -> str:
    raise NotImplementedError("windowed aggregations are not implemented yet")


def suppress_until_window_closes(app: StreamsApp, parent: str, windows: Any) -> str:
    raise NotImplementedError("suppression is not implemented yet")
