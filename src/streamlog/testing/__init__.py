"""Test helpers for code that uses streamlog or the Kafka client shims.

``streamlog.testing.pytest_plugin`` is registered with pytest through the ``pytest11``
entry point, so installing streamlog is enough for its fixtures (``kafka_cluster``,
``streamlog_log``) to be available in every test suite. See docs/compatibility.md.
"""

from __future__ import annotations

__all__: list[str] = []
