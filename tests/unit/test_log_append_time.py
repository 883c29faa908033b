"""Under message.timestamp.type=LogAppendTime the producer reports the append time."""

from __future__ import annotations

import time

import streamlog
from streamlog import TopicPartition


def test_record_metadata_carries_the_log_append_time(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1, {"message.timestamp.type": "LogAppendTime"})
        before = int(time.time() * 1000)
        with log.producer() as producer:
            md = producer.send("t", b"x", timestamp_ms=5).result(timeout=10)
        after = int(time.time() * 1000)
        assert before <= md.timestamp <= after
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        (record,) = consumer.poll(timeout_ms=1000)[TopicPartition("t", 0)]
        assert record.timestamp == md.timestamp
        consumer.close()


def test_create_time_topics_keep_the_given_timestamp(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 1)
        with log.producer() as producer:
            md = producer.send("t", b"x", timestamp_ms=5).result(timeout=10)
        assert md.timestamp == 5
