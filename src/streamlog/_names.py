"""Name rules for everything that becomes a file name (topics, groups, transactional ids).

Kafka's rule (``Topic.java``): 1..249 characters of ``[a-zA-Z0-9._-]``, not ``.``
or ``..``. Names are checked here, before any path is built from them.
"""

from __future__ import annotations

import re

from .errors import ConfigError, InvalidTopicError

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+\Z")


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
        raise InvalidTopicError(f"invalid topic name {name!r}: {problem}")
    assert isinstance(name, str)
    return name


def check_name(kind: str, name: object) -> str:
    """Check a group id or transactional id; raise ``ConfigError`` naming ``kind``."""
    problem = _problem(name)
    if problem is not None:
        raise ConfigError(f"invalid {kind} {name!r}: {problem}")
    assert isinstance(name, str)
    return name


def check_partition(partition: object) -> int:
    """Return ``partition`` if it is a non-negative int (bool refused), else raise."""
    if isinstance(partition, bool) or not isinstance(partition, int):
        raise TypeError(f"partition must be an int, not {type(partition).__name__}")
    if partition < 0:
        raise ValueError(f"partition must be >= 0, not {partition}")
    return partition
