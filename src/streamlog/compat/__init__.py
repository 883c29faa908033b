"""Drop-in compatibility: run code written for kafka-python or confluent-kafka on streamlog.

    import streamlog.compat
    with streamlog.compat.install("data"):      # or install() for a fresh temporary directory
        from kafka import KafkaProducer          # streamlog.compat.kafka.KafkaProducer
        KafkaProducer(bootstrap_servers="localhost:9092").send("t", b"v").get(5)

After ``install()``, ``import kafka``, ``kafka.errors``, ``kafka.admin``,
``kafka.structs``, ``confluent_kafka`` and ``confluent_kafka.admin`` resolve to
shims over one data directory (a meta path finder; whatever those names were
bound to in ``sys.modules`` is set aside and restored by ``uninstall()``). The
shims act like one default broker: ``bootstrap_servers`` values are accepted and
ignored; topics are created on first use (``num.partitions=1``) unless
``auto_create_topics=False``. See docs/compatibility.md.
"""

from __future__ import annotations

import os

from ._state import Installation, activate, deactivate

__all__ = ["Installation", "install", "uninstall"]


def install(
    path: str | os.PathLike[str] | None = None, *, auto_create_topics: bool = True
) -> Installation:
    """Make ``kafka`` and ``confluent_kafka`` imports resolve to streamlog's shims.

    ``path``: the data directory (created if missing); None makes a temporary one,
    deleted by ``uninstall()``. Returns the installation handle (``.log``, ``.path``),
    which is also a context manager that uninstalls on exit.

    :raises RuntimeError: already installed (``uninstall()`` first).
    """
    return activate(
        None if path is None else os.fspath(path), auto_create_topics=auto_create_topics
    )


def uninstall() -> None:
    """Undo ``install()``: close the clients made through the shims and the data
    directory handle, and restore ``sys.modules``. Idempotent."""
    deactivate()
