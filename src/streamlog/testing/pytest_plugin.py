"""pytest fixtures for streamlog, loaded by pytest through the ``pytest11`` entry point.

- ``kafka_cluster``: ``streamlog.compat.install()`` for one test, on a fresh data
  directory under ``tmp_path``: ``import kafka`` / ``import confluent_kafka`` inside the
  test reach streamlog's shims. The fixture's value has ``.bootstrap_servers`` (a
  placeholder string for client configs), ``.log`` (the ``streamlog.Log``) and ``.path``.
  Uninstalled, and every client made through the shims closed, after the test.
  Fault injection, applied by both shims: ``fail_next(operation, n=1, error=...)``
  (``"produce"``/``"commit"``), ``force_rebalance(group_id)``, ``expire_member(consumer)``
  (as if its session had timed out), ``pause(topic, partition)`` / ``resume(topic,
  partition)``, ``clear_faults()`` (docs/compatibility.md, "Fault injection"). ``clock``:
  the cluster's clock, real until the test calls ``clock.set(ms)`` or
  ``clock.advance(ms)``; it then drives producer timestamps, retention and transaction
  timeouts (docs/compatibility.md, "The clock").
- ``streamlog_log``: a ``streamlog.Log`` open on a fresh data directory, closed after
  the test.

Both cost a few milliseconds of setup (``benchmarks/bench_fixture.py``). Nothing is
imported from streamlog until a fixture is used, so the plugin costs nothing to test
suites that do not use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import streamlog
    from streamlog.compat._clock import Clock
    from streamlog.compat._state import Installation

__all__ = ["KafkaCluster", "kafka_cluster", "streamlog_log"]


@dataclass(frozen=True)
class KafkaCluster:
    """What ``kafka_cluster`` gives a test."""

    bootstrap_servers: str
    log: streamlog.Log
    path: str
    installation: Installation

    def fail_next(self, operation: str, n: int = 1, error: str = "REQUEST_TIMED_OUT") -> None:
        """Make the next ``n`` ``"produce"`` or ``"commit"`` calls fail with ``error``."""
        self.installation.fail_next(operation, n, error)

    @property
    def clock(self) -> Clock:
        """The cluster's clock: ``set(ms)``, ``advance(ms)``, ``now_ms()``. Real time until
        set or advanced, then frozen; each move runs retention and the transaction-timeout
        sweep, as a broker's timers would."""
        return self.installation.clock

    def force_rebalance(self, group_id: str) -> int:
        """Make the group's consumers rejoin at their next poll; returns how many."""
        return self.installation.force_rebalance(group_id)

    def expire_member(self, member: object, member_id: str | None = None) -> str:
        """Remove a consumer (or ``group_id, member_id``) from its group as if its session
        had timed out: the others rebalance; it finds its partitions lost at its next
        poll, and its commits fail until then. Returns the member id."""
        return self.installation.expire_member(member, member_id)

    def pause(self, topic: str, partition: int) -> None:
        """Polls return nothing of this partition until :meth:`resume`."""
        self.installation.pause(topic, partition)

    def resume(self, topic: str, partition: int) -> None:
        self.installation.resume(topic, partition)

    def clear_faults(self) -> None:
        """Drop pending ``fail_next`` faults and resume every paused partition."""
        self.installation.clear_faults()


@pytest.fixture
def kafka_cluster(tmp_path: os.PathLike[str]) -> Iterator[KafkaCluster]:
    """The Kafka client shims installed over a fresh data directory for one test."""
    import streamlog.compat  # noqa: PLC0415 (lazy: only tests that use it pay for it)

    inst = streamlog.compat.install(os.path.join(os.fspath(tmp_path), "kafka-cluster"))
    try:
        yield KafkaCluster(inst.bootstrap_servers, inst.log, inst.path, inst)
    finally:
        streamlog.compat.uninstall()


@pytest.fixture
def streamlog_log(tmp_path: os.PathLike[str]) -> Iterator[streamlog.Log]:
    """A ``streamlog.Log`` open on a fresh data directory, closed after the test."""
    import streamlog  # noqa: PLC0415

    with streamlog.open(os.path.join(os.fspath(tmp_path), "streamlog-data")) as log:
        yield log
