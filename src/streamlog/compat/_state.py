"""The installed data directory, shared by the compatibility shims (internal).

``streamlog.compat.install()`` opens one :class:`~streamlog.Log` and records it
here; every shim (kafka-python's in ``compat/kafka``, confluent-kafka's in
``compat/confluent_kafka``) finds it through :func:`current`::

    from streamlog.compat import _state
    inst = _state.current()            # raises NoInstallationError (a RuntimeError) if none
    inst.log                           # the streamlog.Log handle (never close it yourself)
    inst.path                          # the data directory (str)
    inst.auto_create_topics            # install(..., auto_create_topics=...)
    inst.temporary                     # True when install() made the directory itself
    inst.bootstrap_servers             # "localhost:9092": a placeholder value to hand to clients
    _state.ensure_topic(inst, topic, allow=True)
        # auto-create ``topic`` (num.partitions=1) when both the installation and ``allow``
        # permit it; returns True if the topic exists afterwards, False if it does not
    _state.register(client)            # any object with close(): closed by uninstall()
    _state.unregister(client)          # call from the client's own close()

It also holds the import hook: a meta path finder that maps ``kafka[.x]`` and
``confluent_kafka[.x]`` to ``streamlog.compat.kafka[.x]`` and
``streamlog.compat.confluent_kafka[.x]``, importing a shim module only when its
alias is first imported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import tempfile
import threading
import types
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._fs import fs
from .._log import Log
from .._log import open as open_log
from ..errors import StreamlogError, TopicExistsError

__all__ = [
    "ALIASES",
    "Installation",
    "NoInstallationError",
    "activate",
    "current",
    "deactivate",
    "ensure_topic",
    "is_installed",
    "register",
    "remove_quietly",
    "unregister",
]

#: the top-level names the shims answer for
ALIASES = ("kafka", "confluent_kafka")


class NoInstallationError(RuntimeError):
    """A shim was used with no ``streamlog.compat.install()`` in effect."""


class _Closable(Protocol):
    def close(self) -> Any: ...


@dataclass(eq=False)
class Installation:
    """One ``install()``: the handle, its settings, and the clients made through it.

    Also a context manager: ``with streamlog.compat.install() as inst:`` uninstalls
    on exit.
    """

    log: Log
    path: str
    auto_create_topics: bool = True
    temporary: bool = False
    bootstrap_servers: str = "localhost:9092"
    _clients: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet, repr=False)
    _saved: dict[str, types.ModuleType] = field(default_factory=dict, repr=False)
    _finder: _ShimFinder | None = field(default=None, repr=False)

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        if _current is self:
            deactivate()


_lock = threading.RLock()
_current: Installation | None = None


def current() -> Installation:
    """The installation in effect.

    :raises NoInstallationError: ``streamlog.compat.install()`` was not called (or was undone).
    """
    inst = _current
    if inst is None:
        raise NoInstallationError(
            "streamlog.compat is not installed: call streamlog.compat.install() before "
            "creating Kafka clients"
        )
    return inst


def is_installed() -> bool:
    return _current is not None


def ensure_topic(inst: Installation, topic: str, *, allow: bool = True) -> bool:
    """Create ``topic`` with one partition if it is missing and auto-creation is on.

    Returns whether the topic exists afterwards (False: missing, creation not allowed).
    Invalid names raise ``streamlog.InvalidTopicError`` (convert it at your boundary).
    """
    if topic in inst.log.topics():
        return True
    if not (allow and inst.auto_create_topics):
        return False
    try:
        inst.log.create_topic(topic, partitions=1)
    except TopicExistsError:  # another client or process won the race
        pass
    return True


def register(client: _Closable) -> None:
    """Close ``client`` when the installation is undone (held weakly)."""
    with _lock:
        if _current is not None:
            _current._clients.add(client)


def unregister(client: object) -> None:
    with _lock:
        if _current is not None:
            _current._clients.discard(client)


# ---------------------------------------------------------------- the import hook


def _is_alias(name: str) -> bool:
    return name.partition(".")[0] in ALIASES


class _ShimLoader(importlib.abc.Loader):
    """Puts the shim module itself in ``sys.modules`` under the alias."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # a placeholder; exec_module swaps in the shim

    def exec_module(self, module: types.ModuleType) -> None:
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _ShimFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not _is_alias(fullname):
            return None
        shim = f"{__package__}.{fullname}"
        try:
            found = importlib.util.find_spec(shim)
        except ModuleNotFoundError:
            found = None
        if found is None:
            root = fullname.partition(".")[0]
            what = (
                f"streamlog.compat has no shim for {fullname!r}"
                if fullname != root
                else f"streamlog.compat's {root} shim ({shim}) is not available"
            )
            raise ModuleNotFoundError(f"No module named {fullname!r}: {what}", name=fullname)
        return importlib.machinery.ModuleSpec(
            fullname, _ShimLoader(shim), is_package=found.submodule_search_locations is not None
        )


def activate(
    path: str | None, *, auto_create_topics: bool = True
) -> Installation:
    """Open the data directory and install the import hook (``install()``'s body)."""
    global _current
    with _lock:
        if _current is not None:
            raise RuntimeError(
                "streamlog.compat is already installed; call streamlog.compat.uninstall() first"
            )
        temporary = path is None
        where = tempfile.mkdtemp(prefix="streamlog-compat-") if path is None else str(path)
        try:
            log = open_log(where)
        except BaseException:
            if temporary:
                remove_quietly(where)
            raise
        inst = Installation(
            log, where, auto_create_topics=bool(auto_create_topics), temporary=temporary
        )
        for name in list(sys.modules):
            if _is_alias(name):
                inst._saved[name] = sys.modules.pop(name)
        inst._finder = _ShimFinder()
        sys.meta_path.insert(0, inst._finder)
        importlib.invalidate_caches()
        _current = inst
        return inst


def deactivate() -> None:
    """Close the clients and the handle, remove the hook, restore ``sys.modules``.

    Idempotent (``uninstall()``'s body).
    """
    global _current
    with _lock:
        inst = _current
        if inst is None:
            return
        _current = None
        clients = list(inst._clients)
        inst._clients = weakref.WeakSet()
    try:
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: S110 - closing is best effort here
                pass
    finally:
        if inst._finder is not None and inst._finder in sys.meta_path:
            sys.meta_path.remove(inst._finder)
        for name in list(sys.modules):
            if _is_alias(name):
                del sys.modules[name]
        sys.modules.update(inst._saved)
        inst._saved.clear()
        importlib.invalidate_caches()
        inst.log.close()
        if inst.temporary:
            remove_quietly(inst.path)


def remove_quietly(path: str) -> None:
    """Delete a temporary data directory we made (through the facade, like every file
    operation of the package); a failure leaves it behind in /tmp, nothing worse."""
    with contextlib.suppress(StreamlogError, OSError):
        fs.rmtree(path)
