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
    inst.take_fault("produce")         # the next injected Fault for that call, or None
    _state.sync_pauses(inst, consumer, mine)
        # pause/resume a streamlog consumer's partitions to match inst.pause()/resume()

Fault injection (``inst.fail_next``, ``inst.force_rebalance``, ``inst.expire_member``,
``inst.pause``, ``inst.resume``; the ``kafka_cluster`` fixture delegates to them) is
registered here and applied by each shim in its own client's form. ``inst.clock`` (a
``_clock.Clock``) is the data directory's clock, which a test may set or advance.

It also holds the import hook: a meta path finder that maps ``kafka[.x]`` and
``confluent_kafka[.x]`` to ``streamlog.compat.kafka[.x]`` and
``streamlog.compat.confluent_kafka[.x]``, importing a shim module only when its
alias is first imported.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import tempfile
import threading
import types
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._fs import fs
from .._log import Log
from .._log import open as open_log
from .._structs import TopicPartition
from ..coordination import _groupadmin
from ..errors import ClosedError, StreamlogError, TopicExistsError
from ._clock import Clock

if TYPE_CHECKING:
    from ..clients._consumer import Consumer

__all__ = [
    "ALIASES",
    "FAULT_ERRORS",
    "Fault",
    "Installation",
    "NoInstallationError",
    "activate",
    "current",
    "deactivate",
    "ensure_topic",
    "is_installed",
    "register",
    "remove_quietly",
    "sync_pauses",
    "unregister",
]

#: the top-level names the shims answer for
ALIASES = ("kafka", "confluent_kafka")


class NoInstallationError(RuntimeError):
    """A shim was used with no ``streamlog.compat.install()`` in effect."""


class _Closable(Protocol):
    def close(self) -> Any: ...


@dataclass(frozen=True)
class Fault:
    """One injected error: Kafka's protocol name and code, and whether it is retriable."""

    name: str
    code: int
    retriable: bool


#: the errors ``fail_next`` can inject (Kafka protocol names and codes)
FAULT_ERRORS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("LEADER_NOT_AVAILABLE", 5, True),
        Fault("NOT_LEADER_FOR_PARTITION", 6, True),
        Fault("REQUEST_TIMED_OUT", 7, True),
        Fault("COORDINATOR_NOT_AVAILABLE", 15, True),
        Fault("NOT_COORDINATOR", 16, True),
        Fault("REBALANCE_IN_PROGRESS", 27, True),
        Fault("TOPIC_AUTHORIZATION_FAILED", 29, False),
        Fault("GROUP_AUTHORIZATION_FAILED", 30, False),
        Fault("UNKNOWN_SERVER_ERROR", -1, False),
    )
}

FAULT_OPERATIONS = ("produce", "commit")


def _fault_name(error: str) -> str:
    """``"NotLeaderForPartition"``, ``"NotLeaderForPartitionError"`` and
    ``"NOT_LEADER_FOR_PARTITION"`` all name the same error."""
    if not isinstance(error, str):
        raise TypeError("error must be a Kafka error name (str)")
    name = error
    if not name.isupper():
        if name.endswith("Error"):
            name = name[: -len("Error")]
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
    if name not in FAULT_ERRORS:
        raise ValueError(
            f"unknown error {error!r} for fail_next; one of: {', '.join(FAULT_ERRORS)}"
        )
    return name


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
    _faults: dict[str, collections.deque[Fault]] = field(
        default_factory=lambda: {op: collections.deque() for op in FAULT_OPERATIONS},
        repr=False,
    )
    _paused: set[TopicPartition] = field(default_factory=set, repr=False)
    _fault_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: the data directory's clock (``activate`` opens the log with it)
    clock: Clock = field(default_factory=Clock, repr=False)

    # ------------------------------------------------------------ the clock
    def _clock_moved(self) -> None:
        """After ``clock.set``/``advance``: what a broker runs on its timers, now (as
        Kafka's ``MockScheduler`` on ``MockTime.sleep``): a retention pass over every
        partition, and the sweep that aborts transactions open longer than their
        ``transaction.timeout.ms``."""
        try:
            self.log.enforce_retention()
            self.log._manager.transactions().sweep()
        except ClosedError:
            pass  # uninstalled meanwhile: nothing left to keep

    # ------------------------------------------------------------ fault injection
    def fail_next(
        self, operation: str, n: int = 1, error: str = "REQUEST_TIMED_OUT"
    ) -> None:
        """Make the next ``n`` ``operation`` calls (``"produce"``: a produce/send;
        ``"commit"``: a consumer commit) of any shim client fail with ``error``
        (a name of :data:`FAULT_ERRORS`, upper snake case or CamelCase). Queued
        after faults already pending."""
        if operation not in FAULT_OPERATIONS:
            raise ValueError(f"operation must be one of {FAULT_OPERATIONS}, not {operation!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError("n must be an int >= 0")
        fault = FAULT_ERRORS[_fault_name(error)]
        with self._fault_lock:
            self._faults[operation].extend([fault] * n)

    def take_fault(self, operation: str) -> Fault | None:
        """The fault the shims must apply to this ``operation`` call, or None (consumed)."""
        if not self._faults[operation]:  # the common case, without the lock (per record)
            return None
        with self._fault_lock:
            pending = self._faults[operation]
            return pending.popleft() if pending else None

    def clear_faults(self) -> None:
        """Drop pending ``fail_next`` faults and resume every paused partition."""
        with self._fault_lock:
            for pending in self._faults.values():
                pending.clear()
            self._paused.clear()

    def force_rebalance(self, group_id: str) -> int:
        """Make every subscribed shim consumer of ``group_id`` rejoin at its next poll
        (a new generation: revoke/assign callbacks run as in a real rebalance).
        Returns the number of consumers asked."""
        asked = 0
        for client in list(self._clients):
            hook = getattr(client, "_sl_force_rebalance", None)
            if hook is not None and hook(group_id):
                asked += 1
        return asked

    def expire_member(self, member: object, member_id: str | None = None) -> str:
        """Remove a consumer from its group as if its session had timed out: the group
        rebalances the others; the expired consumer finds out at its next poll (its
        partitions lost: revoke/lost callbacks, then it joins again under a new member
        id), and its commits fail until then (as a real client's get UNKNOWN_MEMBER_ID).

        ``member``: a consumer made through a shim (or a streamlog ``Consumer``) that is
        a member now, or a group id with ``member_id``. Returns the member id expired.

        :raises ValueError: not a member of the group (not joined yet: poll first).
        """
        if isinstance(member, str):
            if not isinstance(member_id, str):
                raise TypeError("expire_member(group_id, member_id): give the member id too")
            group_id = member
        else:
            if member_id is not None:
                raise TypeError("give a consumer, or a group id and a member id")
            found = _group_member(member)
            if found is None:
                raise ValueError(
                    f"{member!r} is not a member of a group now (subscribe() with a "
                    "group id, and poll() until it has joined)"
                )
            group_id, member_id = found
        if not _groupadmin.expire_member(self.log._manager, group_id, member_id):
            raise ValueError(f"{member_id!r} is not a member of group {group_id!r}")
        for client in list(self._clients):
            hook = getattr(client, "_sl_member_expired", None)
            if hook is not None:
                hook(group_id, member_id)
        return member_id

    def pause(self, topic: str, partition: int) -> None:
        """Deliver nothing of ``topic``/``partition`` to any shim consumer until
        :meth:`resume` (positions are kept; records wait)."""
        with self._fault_lock:
            self._paused.add(TopicPartition(topic, int(partition)))

    def resume(self, topic: str, partition: int) -> None:
        with self._fault_lock:
            self._paused.discard(TopicPartition(topic, int(partition)))

    def paused_partitions(self) -> set[TopicPartition]:
        with self._fault_lock:
            return set(self._paused)

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        if _current is self:
            deactivate()


def _group_member(consumer: object) -> tuple[str, str] | None:
    """(group id, member id) of a consumer that is a group member now, else None."""
    hook = getattr(consumer, "_sl_group_member", None)  # the shims' consumers
    if hook is not None:
        found: tuple[str, str] | None = hook()
        return found
    metadata = getattr(consumer, "group_metadata", None)  # a streamlog Consumer
    if metadata is None:
        raise TypeError(f"expected a consumer, not {type(consumer).__name__}")
    md = metadata()
    return (md.group_id, md.member_id) if md.member_id else None


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


def sync_pauses(
    inst: Installation, consumer: Consumer, mine: set[TopicPartition]
) -> set[TopicPartition]:
    """Pause ``consumer``'s (a streamlog consumer) assigned partitions that the
    installation pauses, resume those it paused before and no longer does. ``mine``:
    the partitions this helper paused on that consumer (updated in place). Returns
    the partitions newly paused (the caller drops what it buffered of them)."""
    wanted = inst.paused_partitions()
    if not wanted and not mine:
        return set()
    assigned = consumer.assignment()
    pause = (wanted & assigned) - mine - consumer.paused()  # (never take over a user's pause)
    resume = {tp for tp in mine if tp not in wanted and tp in assigned}
    mine.intersection_update(assigned)
    if pause:
        consumer.pause(*pause)
        mine.update(pause)
    if resume:
        consumer.resume(*resume)
        mine.difference_update(resume)
    return pause


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
        clock = Clock()
        try:
            log = open_log(where, clock=clock)
        except BaseException:
            if temporary:
                remove_quietly(where)
            raise
        inst = Installation(
            log, where, auto_create_topics=bool(auto_create_topics), temporary=temporary,
            clock=clock,
        )
        clock._moved = inst._clock_moved
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
