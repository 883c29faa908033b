"""Where the confluent-kafka shim finds its data directory: ``log_handle()``
(re-exported as ``confluent_kafka._log_handle``)."""

from __future__ import annotations

import atexit
import tempfile
import threading

import streamlog

from .. import _state

__all__ = ["ensure_topic", "installation", "log_handle", "register", "unregister"]

_lock = threading.Lock()
_default: streamlog.Log | None = None


def log_handle() -> streamlog.Log:
    """The ``Log`` the shim's clients use: the one ``streamlog.compat.install()`` opened,
    or, used without ``install()``, one default temporary data directory opened on
    first use, closed and deleted at exit."""
    global _default
    if _state.is_installed():
        try:
            return _state.current().log
        except _state.NoInstallationError:  # uninstalled meanwhile
            pass
    with _lock:
        if _default is None:
            path = tempfile.mkdtemp(prefix="streamlog-confluent-")
            _default = streamlog.open(path)
            atexit.register(_state.remove_quietly, path)  # runs after the close below
            atexit.register(_default.close)
        return _default


def installation(log: streamlog.Log) -> _state.Installation | None:
    """The installation whose handle ``log`` is (its fault registry applies), or None
    (the shim used without ``install()``, or uninstalled since)."""
    try:
        inst = _state.current()
    except _state.NoInstallationError:
        return None
    return inst if inst.log is log else None


def ensure_topic(log: streamlog.Log, topic: str, allow: bool = True) -> bool:
    """Create ``topic`` (one partition, ``num.partitions=1``) if it is missing and
    auto-creation is on (``install(auto_create_topics=...)``, default on, and the
    client's ``allow``: its ``allow.auto.create.topics``); True if the topic exists
    afterwards."""
    if _state.is_installed():
        try:
            inst = _state.current()
        except _state.NoInstallationError:
            inst = None
        if inst is not None and inst.log is log:
            return _state.ensure_topic(inst, topic, allow=allow)
    if topic in log.topics():
        return True
    if not allow:
        return False
    try:
        log.create_topic(topic, 1)
    except streamlog.TopicExistsError:
        pass
    return True


def register(client: object) -> None:
    """Have ``uninstall()`` close ``client``."""
    _state.register(client)  # type: ignore[arg-type]


def unregister(client: object) -> None:
    _state.unregister(client)
