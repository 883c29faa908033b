"""Kafka's compression codecs, one policy in both shims (``compat/_compression.py``):
none → uncompressed, zstd → zstd, gzip/snappy/lz4 → zstd with one warning per codec,
anything else refused as each client refuses it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from streamlog.compat import _compression
from streamlog.storage._codec import COMPRESSION_NONE, COMPRESSION_ZSTD

STORED = {None: COMPRESSION_NONE, "none": COMPRESSION_NONE, "zstd": COMPRESSION_ZSTD,
          "gzip": COMPRESSION_ZSTD, "snappy": COMPRESSION_ZSTD, "lz4": COMPRESSION_ZSTD}


def _stored(kafka_cluster: Any, topic: str) -> int:
    (batch,) = kafka_cluster.log.partition(topic, 0).read(0)
    codec: int = batch.compression
    return codec


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_codecs(kafka_cluster: Any, codec: str | None) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    p = KafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers, compression_type=codec)
    p.send("t", b"x" * 200, key=b"k").get(5)
    p.close()
    assert _stored(kafka_cluster, "t") == STORED[codec]
    c = KafkaConsumer("t", auto_offset_reset="earliest", consumer_timeout_ms=300)
    assert [(r.key, r.value) for r in c] == [(b"k", b"x" * 200)]  # invisible to consumers
    c.close()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd", "inherit", "GZIP"])
def test_confluent_codecs(kafka_cluster: Any, codec: str) -> None:
    from confluent_kafka import Producer

    key = "compression.codec" if codec == "inherit" else "compression.type"
    p = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers, key: codec})
    p.produce("t", b"x" * 200)
    assert p.flush(5) == 0
    want = COMPRESSION_NONE if codec == "inherit" else STORED[codec.lower()]
    assert _stored(kafka_cluster, "t") == want


def test_unknown_codecs_are_refused_as_each_client_does(kafka_cluster: Any) -> None:
    from confluent_kafka import KafkaError, KafkaException, Producer
    from kafka import KafkaProducer

    for bad in ("brotli", "none"):  # kafka-python takes None, not "none"
        with pytest.raises(ValueError, match=f"Not supported codec: {bad}"):
            KafkaProducer(compression_type=bad)
    with pytest.raises(KafkaException) as info:
        Producer({"compression.type": "brotli"})
    assert info.value.args[0].code() == KafkaError._INVALID_ARG
    assert 'Invalid value "brotli" for configuration property "compression.type"' in str(
        info.value.args[0])


def test_emulated_codecs_warn_once_per_codec(
    kafka_cluster: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from confluent_kafka import Producer
    from kafka import KafkaProducer

    monkeypatch.setattr(_compression, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="streamlog.compat"):
        KafkaProducer(compression_type="gzip").close()
        Producer({"compression.type": "gzip"}).flush()
        KafkaProducer(compression_type="lz4").close()
        KafkaProducer(compression_type="zstd").close()
    warned = [r.getMessage() for r in caplog.records if r.name == "streamlog.compat"]
    assert len(warned) == 2
    assert "'gzip' is stored as zstd" in warned[0] and "'lz4'" in warned[1]
