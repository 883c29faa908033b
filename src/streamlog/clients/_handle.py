"""How a client gets the ``LogManager`` it works through.

Clients accept a ``streamlog.Log`` (they share its manager and leave it open),
a path (they open a manager of their own and close it with themselves), or a
``LogManager`` (what ``Log.producer``/``Log.consumer`` pass). The handle is
recognised by the manager it carries, so this layer never imports ``_log``.
"""

from __future__ import annotations

import os
from typing import Protocol, Union

from ..coordination._manager import LogManager


class HasManager(Protocol):
    """What clients need of ``streamlog.Log``: the manager it fronts."""

    _manager: LogManager


PathOrLog = Union[HasManager, LogManager, str, "os.PathLike[str]"]


def resolve(path_or_log: PathOrLog) -> tuple[LogManager, bool]:
    """``(manager, owned)``: ``owned`` is True when the client opened it and must close it."""
    if isinstance(path_or_log, LogManager):
        return path_or_log, False
    if isinstance(path_or_log, (str, os.PathLike)):
        return LogManager(path_or_log), True
    manager = getattr(path_or_log, "_manager", None)
    if isinstance(manager, LogManager):
        return manager, False
    raise TypeError(f"expected a streamlog.Log or a path, not {type(path_or_log).__name__}")
