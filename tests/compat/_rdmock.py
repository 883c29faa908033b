"""librdkafka's mock cluster, driven through its C API (``rdkafka_mock.h``) with ctypes.

confluent-kafka's Python binding can start a mock cluster (``test.mock.num.brokers``) but
exposes none of its controls; the mock also has no CreateTopics handler, so AdminClient
cannot make topics there (topics a producer's metadata request names are auto-created
with 4 partitions). The functions used here are exported by the librdkafka that
confluent-kafka's wheel bundles (``confluent_kafka.libs/librdkafka-*.so*``), so this
module can create topics with a chosen partition count and set the group's initial
rebalance delay (3 s by default) to 0::

    with RdMockCluster() as mock:        # one broker; mock.bootstrap = "127.0.0.1:port"
        mock.create_topic("t", 3)

``RdMockCluster.unavailable()`` says why it cannot run here (None if it can).
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any

__all__ = ["RdMockCluster"]

_RD_KAFKA_PRODUCER = 0


def _library() -> Any:
    """The librdkafka that confluent_kafka's C extension loaded (the same file)."""
    import confluent_kafka

    base = os.path.dirname(os.path.abspath(confluent_kafka.__file__))
    candidates = sorted(glob.glob(os.path.join(base, os.pardir, "confluent_kafka.libs",
                                               "librdkafka*.so*")))
    if not candidates:  # a build linked against a system librdkafka
        candidates = ["librdkafka.so.1"]
    lib = ctypes.CDLL(candidates[0])
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.rd_kafka_conf_new.restype = vp
    lib.rd_kafka_conf_set.argtypes = [vp, cp, cp, cp, ctypes.c_size_t]
    lib.rd_kafka_conf_set.restype = i
    lib.rd_kafka_new.argtypes = [i, vp, cp, ctypes.c_size_t]
    lib.rd_kafka_new.restype = vp
    lib.rd_kafka_destroy.argtypes = [vp]
    lib.rd_kafka_mock_cluster_new.argtypes = [vp, i]
    lib.rd_kafka_mock_cluster_new.restype = vp
    lib.rd_kafka_mock_cluster_destroy.argtypes = [vp]
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [vp]
    lib.rd_kafka_mock_cluster_bootstraps.restype = cp
    lib.rd_kafka_mock_topic_create.argtypes = [vp, cp, i, i]
    lib.rd_kafka_mock_topic_create.restype = i
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [vp, ctypes.c_int32]
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
    lib.rd_kafka_err2str.argtypes = [i]
    lib.rd_kafka_err2str.restype = cp
    return lib


class RdMockCluster:
    """A one-broker librdkafka mock cluster owned by a bare librdkafka producer handle."""

    def __init__(self, rebalance_delay_ms: int = 0) -> None:
        self._lib = lib = _library()
        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
        self._rk = lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
        if not self._rk:
            raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
        self._mc = lib.rd_kafka_mock_cluster_new(self._rk, 1)
        if not self._mc:
            lib.rd_kafka_destroy(self._rk)
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._mc, rebalance_delay_ms)
        self.bootstrap: str = lib.rd_kafka_mock_cluster_bootstraps(self._mc).decode()

    @staticmethod
    def unavailable() -> str | None:
        try:
            RdMockCluster().close()
        except Exception as exc:
            return f"librdkafka's mock cluster cannot be driven here: {exc!r}"
        return None

    def create_topic(self, topic: str, partitions: int) -> None:
        err = self._lib.rd_kafka_mock_topic_create(self._mc, topic.encode(), partitions, 1)
        if err:
            raise RuntimeError(f"mock topic {topic!r}: {self._lib.rd_kafka_err2str(err)!r}")

    def close(self) -> None:
        if self._mc:
            self._lib.rd_kafka_mock_cluster_destroy(self._mc)
            self._mc = None
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None

    def __enter__(self) -> RdMockCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
