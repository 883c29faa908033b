"""Name rules for everything that becomes a file name (topics, groups, transactional ids).

Kafka's rule (``Topic.java``): 1..249 characters of ``[a-zA-Z0-9._-]``, not ``.``
or ``..``. Names are checked here, before any path is built from them.
"""

from __future__ import annotations

import re

from .errors import ConfigError, InvalidTopicError

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+\Z")


def short_repr(value: object) -> str:
    """``repr(value)`` for an error message, cut to a readable length: a hostile value
    may be huge, and ``repr`` of an int of more than 4300 digits even raises."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except ValueError:  # it holds an int too large to convert
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _problem(name: object) -> str | None:
    if not isinstance(name, str):
        return f"must be a str, not {type(name).__name__}"
    if not name:
        return "must not be empty"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    if not _LEGAL.match(name):
        bad = next(c for c in name if not _LEGAL.match(c))
        return f"contains {bad!r}; only ASCII letters, digits, '.', '_' and '-' are allowed"
    return None


def check_topic_name(name: object) -> str:
    """Return ``name`` if it is a legal topic name, else raise ``InvalidTopicError``."""
    problem = _problem(name)
    if problem is not None:
        raise InvalidTopicError(f"invalid topic name {short_repr(name)}: {problem}")
    assert isinstance(name, str)
    return name


def check_name(kind: str, name: object) -> str:
    """Check a group id or transactional id; raise ``ConfigError`` naming ``kind``."""
    problem = _problem(name)
    if problem is not None:
        raise ConfigError(f"invalid {kind} {short_repr(name)}: {problem}")
    assert isinstance(name, str)
    return name


def check_partition(partition: object) -> int:
    """Return ``partition`` if it is a non-negative int (bool refused), else raise."""
    if isinstance(partition, bool) or not isinstance(partition, int):
        raise TypeError(f"partition must be an int, not {type(partition).__name__}")
    if partition < 0:
        raise ValueError(f"partition must be >= 0, not {short_repr(partition)}")
    return partition


def is_name(name: object) -> bool:
    """Whether ``name`` may become a file name (the rule above); for names read from disk,
    which are skipped or refused as damage rather than raised about as misuse."""
    return _problem(name) is None


_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]")


def member_id_for(base: str, unique: str) -> str:
    """A consumer group member id: Kafka's ``<client.id>-<uuid>``, with every character a
    file name cannot hold replaced (a client id is free text; the id names a file)."""
    safe = _UNSAFE.sub("_", base)[:200].strip(".") or "member"
    return f"{safe}-{unique}"
