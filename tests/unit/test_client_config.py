"""The clients' typed configuration (``_config.ProducerConfig``/``ConsumerConfig``):
defaults, every validation error, unknown keys, immutability, and the client ids given
to clients configured without one."""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path
from typing import Any

import pytest

import streamlog
from streamlog import ConfigError
from streamlog._config import ConsumerConfig, ProducerConfig, next_client_id, wait_seconds

PRODUCER_KEYS = [
    "acks",
    "batch_size",
    "buffer_memory",
    "client_id",
    "compression_type",
    "delivery_timeout_ms",
    "enable_idempotence",
    "key_serializer",
    "linger_ms",
    "max_block_ms",
    "max_in_flight_requests_per_connection",
    "max_request_size",
    "partitioner",
    "request_timeout_ms",
    "retries",
    "transaction_timeout_ms",
    "transactional_id",
    "value_serializer",
]
CONSUMER_KEYS = [
    "auto_commit_interval_ms",
    "auto_offset_reset",
    "client_id",
    "consumer_timeout_ms",
    "enable_auto_commit",
    "fetch_max_bytes",
    "fetch_max_wait_ms",
    "fetch_min_bytes",
    "fsync_commits",
    "group_id",
    "group_instance_id",
    "heartbeat_interval_ms",
    "isolation_level",
    "key_deserializer",
    "max_partition_fetch_bytes",
    "max_poll_interval_ms",
    "max_poll_records",
    "metadata_max_age_ms",
    "partition_assignment_strategy",
    "request_timeout_ms",
    "session_timeout_ms",
    "value_deserializer",
]


def _raises(build: Any, config: object, message: str) -> ConfigError:
    with pytest.raises(ConfigError, match=message) as info:
        build(config)
    assert isinstance(info.value, ValueError)
    return info.value


# ---------------------------------------------------------------------- producer


def test_producer_defaults_are_kafka_pythons() -> None:
    cfg = ProducerConfig.from_kwargs({})
    assert cfg == ProducerConfig()
    assert cfg.to_dict() == {
        "acks": 1,
        "linger_ms": 0,
        "batch_size": 16384,
        "compression_type": None,
        "key_serializer": None,
        "value_serializer": None,
        "partitioner": "murmur2",
        "max_request_size": 1048576,
        "buffer_memory": 33554432,
        "max_block_ms": 60000,
        "enable_idempotence": False,
        "transactional_id": None,
        "transaction_timeout_ms": 60000,
        "client_id": None,
        "retries": None,
        "request_timeout_ms": None,
        "delivery_timeout_ms": None,
        "max_in_flight_requests_per_connection": None,
    }


@pytest.mark.parametrize(
    ("given", "normalized"),
    [(0, 0), ("0", 0), (1, 1), ("1", 1), ("all", "all"), (-1, "all"), ("-1", "all")],
)
def test_producer_acks_are_normalized(given: object, normalized: object) -> None:
    acks = ProducerConfig.from_kwargs({"acks": given}).acks
    assert acks == normalized
    assert type(acks) is type(normalized)


def test_producer_accepts_every_setting() -> None:
    def serialize(v: Any) -> bytes:
        return bytes(v)

    def choose(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        return 0

    cfg = ProducerConfig.from_kwargs(
        {
            "acks": "all",
            "linger_ms": 5,
            "batch_size": 0,
            "compression_type": "zstd",
            "key_serializer": serialize,
            "value_serializer": serialize,
            "partitioner": choose,
            "max_request_size": 1,
            "buffer_memory": 1,
            "max_block_ms": 0,
            "enable_idempotence": True,
            "client_id": "me",
            "retries": 3,
            "request_timeout_ms": 1,
            "delivery_timeout_ms": 1,
            "max_in_flight_requests_per_connection": 1,
        }
    )
    assert (cfg.acks, cfg.linger_ms, cfg.batch_size, cfg.client_id) == ("all", 5, 0, "me")
    assert cfg.key_serializer is serialize and cfg.partitioner is choose
    assert cfg.to_dict()["value_serializer"] is serialize  # not a deep copy
    assert ProducerConfig.from_kwargs({"compression_type": "none"}).compression_type == "none"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"acks": 2}, "acks must be 0, 1 or 'all'; got 2"),
        ({"acks": "none"}, "acks must be 0, 1 or 'all'; got 'none'"),
        ({"acks": True}, "acks must be 0, 1 or 'all'; got True"),
        ({"acks": None}, "acks must be 0, 1 or 'all'; got None"),
        ({"linger_ms": -1}, "linger_ms must be >= 0; got -1"),
        ({"linger_ms": 1.5}, "linger_ms must be an int, not float"),
        ({"linger_ms": True}, "linger_ms must be an int, not bool"),
        ({"batch_size": "16k"}, "batch_size must be an int, not str"),
        ({"batch_size": -1}, "batch_size must be >= 0; got -1"),
        ({"max_request_size": 0}, "max_request_size must be >= 1; got 0"),
        ({"buffer_memory": 0}, "buffer_memory must be >= 1; got 0"),
        ({"max_block_ms": -1}, "max_block_ms must be >= 0; got -1"),
        # durations, sizes and counts: Java's int (buffer_memory: a long), as Kafka
        ({"linger_ms": 10**20}, "linger_ms must be <= 2147483647; got 100000000000000000000"),
        ({"linger_ms": 2**31}, "linger_ms must be <= 2147483647; got 2147483648"),
        ({"linger_ms": 10**5000}, "linger_ms must be <= 2147483647; got an int of 16610 bits"),
        ({"max_block_ms": 2**63}, "max_block_ms must be <= 2147483647"),
        ({"batch_size": 2**64}, "batch_size must be <= 2147483647"),
        ({"max_request_size": 2**31}, "max_request_size must be <= 2147483647"),
        ({"buffer_memory": 2**63}, "buffer_memory must be <= 9223372036854775807"),
        ({"linger_ms": float("inf")}, "linger_ms must be an int, not float"),
        ({"max_block_ms": float("nan")}, "max_block_ms must be an int, not float"),
        ({"acks": 10**5000}, "acks must be 0, 1 or 'all'; got an int of 16610 bits"),
        ({"compression_type": "gzip"}, "compression_type 'gzip' is not supported"),
        ({"compression_type": "lz4"}, "compression_type 'lz4' is not supported"),
        ({"key_serializer": 5}, "key_serializer must be callable"),
        ({"value_serializer": "json"}, "value_serializer must be callable"),
        ({"transactional_id": "tx", "acks": 1}, "need acks='all'"),
        ({"enable_idempotence": True, "acks": 0}, "need acks='all'"),
        ({"transactional_id": "tx", "enable_idempotence": False}, "needs enable_idempotence"),
        ({"transactional_id": "a/b"}, "invalid transactional_id"),
        ({"transaction_timeout_ms": 0}, "transaction_timeout_ms"),
        ({"enable_idempotence": 1}, "enable_idempotence must be a bool"),
    ],
)
def test_producer_bad_values(config: dict[str, Any], message: str) -> None:
    _raises(ProducerConfig.from_kwargs, config, re.escape(message))


def test_producer_checks_in_order_the_first_error_wins() -> None:
    _raises(ProducerConfig.from_kwargs, {"linger_ms": -1, "acks": 7}, "acks")
    _raises(ProducerConfig.from_kwargs, {"nope": 1, "acks": 7}, "unknown producer config")


def test_producer_unknown_keys_are_named_with_the_known_ones() -> None:
    err = _raises(ProducerConfig.from_kwargs, {"no_such_setting": 1, "lingerms": 5}, "unknown")
    assert str(err) == (
        f"unknown producer config ['lingerms', 'no_such_setting']; known: {PRODUCER_KEYS}"
    )


def test_producer_config_is_a_mapping_of_str_keys() -> None:
    _raises(ProducerConfig.from_kwargs, [("acks", 1)], "producer config must be a dict")
    _raises(ProducerConfig.from_kwargs, {1: 1}, "producer config keys must be str")


def test_the_producer_constructor_raises_the_configs_errors(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with pytest.raises(ConfigError, match=re.escape(f"known: {PRODUCER_KEYS}")):
        streamlog.Producer(path, lingerms=5)
    with pytest.raises(ConfigError, match="acks"):
        streamlog.Producer(path, acks=2)
    with pytest.raises(ConfigError, match="partitioner"):  # the partitioner's name: its own check
        streamlog.Producer(path, partitioner="nope")
    assert not path.exists()  # refused before anything touched the disk


# ---------------------------------------------------------------------- consumer


def test_consumer_defaults_are_kafka_pythons() -> None:
    cfg = ConsumerConfig.from_kwargs({})
    assert cfg == ConsumerConfig()
    assert cfg.to_dict() == {
        "group_id": None,
        "auto_offset_reset": "latest",
        "enable_auto_commit": True,
        "auto_commit_interval_ms": 5000,
        "max_poll_records": 500,
        "max_poll_interval_ms": 300000,
        "session_timeout_ms": 45000,
        "heartbeat_interval_ms": 3000,
        "isolation_level": "read_uncommitted",
        "partition_assignment_strategy": ("range",),
        "group_instance_id": None,
        "key_deserializer": None,
        "value_deserializer": None,
        "consumer_timeout_ms": None,
        "client_id": None,
        "max_partition_fetch_bytes": 1048576,
        "fetch_max_bytes": 52428800,
        "fetch_min_bytes": None,
        "fetch_max_wait_ms": None,
        "request_timeout_ms": None,
        "metadata_max_age_ms": 1000,
        "fsync_commits": False,
    }
    assert not cfg.auto_commit  # enabled, but there is no group to commit for


def test_consumer_accepts_every_setting() -> None:
    def deserialize(b: bytes) -> str:
        return b.decode()

    cfg = ConsumerConfig.from_kwargs(
        {
            "group_id": "g",
            "auto_offset_reset": "earliest",
            "enable_auto_commit": True,
            "auto_commit_interval_ms": 1,
            "max_poll_records": 1,
            "max_poll_interval_ms": 1,
            "session_timeout_ms": 2,
            "heartbeat_interval_ms": 1,
            "isolation_level": "read_committed",
            "partition_assignment_strategy": ["roundrobin", "range"],
            "group_instance_id": "i-1",
            "key_deserializer": deserialize,
            "value_deserializer": deserialize,
            "consumer_timeout_ms": 0.5,
            "client_id": "me",
            "max_partition_fetch_bytes": 1,
            "fetch_max_bytes": 1,
            "fetch_min_bytes": 1,
            "fetch_max_wait_ms": 1,
            "request_timeout_ms": 1,
            "metadata_max_age_ms": 1,
            "fsync_commits": True,
        }
    )
    assert cfg.partition_assignment_strategy == ("roundrobin", "range")
    assert cfg.auto_commit
    assert cfg.value_deserializer is deserialize
    assert cfg.to_dict()["key_deserializer"] is deserialize
    assert ConsumerConfig.from_kwargs({"consumer_timeout_ms": 0}).consumer_timeout_ms == 0
    assert ConsumerConfig.from_kwargs({"auto_offset_reset": "none"}).auto_offset_reset == "none"


@pytest.mark.parametrize(
    ("given", "normalized"),
    [("range", ("range",)), (["sticky"], ("sticky",)), (("a", "b"), ("a", "b"))],
)
def test_consumer_strategies_become_a_tuple(given: object, normalized: tuple[str, ...]) -> None:
    # names are the assignor registry's to check (the consumer asks it), not the config's
    cfg = ConsumerConfig.from_kwargs({"group_id": "g", "partition_assignment_strategy": given})
    assert cfg.partition_assignment_strategy == normalized


def test_consumer_auto_commit_needs_enabling_and_a_group() -> None:
    assert ConsumerConfig.from_kwargs({"group_id": "g"}).auto_commit
    assert not ConsumerConfig.from_kwargs(
        {"group_id": "g", "enable_auto_commit": False}
    ).auto_commit
    # not asked for explicitly: no group, no auto-commit, no error
    assert not ConsumerConfig.from_kwargs({"enable_auto_commit": False}).auto_commit


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"auto_offset_reset": "smallest"}, "auto_offset_reset must be 'earliest', 'latest' or"),
        ({"isolation_level": "serializable"}, "isolation_level must be 'read_uncommitted' or"),
        ({"max_poll_records": 0}, "max_poll_records must be a positive int; got 0"),
        ({"max_poll_records": True}, "max_poll_records must be a positive int; got True"),
        ({"max_poll_records": "5"}, "max_poll_records must be a positive int; got '5'"),
        ({"max_partition_fetch_bytes": 0}, "max_partition_fetch_bytes must be a positive int"),
        ({"fetch_max_bytes": -1}, "fetch_max_bytes must be a positive int; got -1"),
        ({"consumer_timeout_ms": -1}, "consumer_timeout_ms must be a number >= 0; got -1"),
        ({"consumer_timeout_ms": True}, "consumer_timeout_ms must be a number >= 0; got True"),
        ({"consumer_timeout_ms": "1"}, "consumer_timeout_ms must be a number >= 0; got '1'"),
        (
            {"consumer_timeout_ms": float("nan")},
            "consumer_timeout_ms must be a number >= 0; got nan",
        ),
        ({"consumer_timeout_ms": -float("inf")}, "consumer_timeout_ms must be a number >= 0"),
        ({"max_poll_records": 2**31}, "max_poll_records must be <= 2147483647; got 2147483648"),
        ({"fetch_max_bytes": 10**20}, "fetch_max_bytes must be <= 2147483647"),
        ({"max_partition_fetch_bytes": 2**63}, "max_partition_fetch_bytes must be <= 2147483647"),
        (
            {"group_id": "g", "session_timeout_ms": 2**31},
            "session_timeout_ms must be <= 2147483647 (milliseconds); got 2147483648",
        ),
        ({"metadata_max_age_ms": 2**64}, "metadata_max_age_ms must be <= 2147483647"),
        ({"auto_commit_interval_ms": 10**20}, "auto_commit_interval_ms must be <= 2147483647"),
        ({"group_id": "g", "max_poll_interval_ms": 2**63}, "max_poll_interval_ms must be <="),
        ({"key_deserializer": 5}, "key_deserializer must be callable"),
        ({"value_deserializer": "json"}, "value_deserializer must be callable"),
        ({"group_id": ""}, "invalid group_id '': must not be empty"),
        ({"group_id": "a/b"}, "invalid group_id 'a/b': contains '/'"),
        ({"group_id": 5}, "invalid group_id 5: must be a str, not int"),
        ({"enable_auto_commit": True}, "enable_auto_commit=True needs a group_id"),
        ({"group_instance_id": "i"}, "group_instance_id needs a group_id"),
        ({"group_id": "g", "group_instance_id": ".."}, "invalid group_instance_id '..'"),
        ({"group_id": "g", "enable_auto_commit": 1}, "enable_auto_commit must be a bool"),
        ({"fsync_commits": "yes"}, "fsync_commits must be a bool"),
        (
            {"session_timeout_ms": 0},
            "session_timeout_ms must be a positive int (milliseconds); got 0",
        ),
        ({"heartbeat_interval_ms": 1.5}, "heartbeat_interval_ms must be a positive int"),
        ({"max_poll_interval_ms": True}, "max_poll_interval_ms must be a positive int"),
        ({"auto_commit_interval_ms": -5}, "auto_commit_interval_ms must be a positive int"),
        ({"metadata_max_age_ms": None}, "metadata_max_age_ms must be a positive int"),
        (
            {"session_timeout_ms": 3000},
            "heartbeat_interval_ms must be lower than session_timeout_ms (3000 >= 3000)",
        ),
        ({"partition_assignment_strategy": []}, "must be a name or a list of names"),
        ({"partition_assignment_strategy": None}, "must be a name or a list of names"),
        ({"partition_assignment_strategy": {"range"}}, "must be a name or a list of names"),
    ],
)
def test_consumer_bad_values(config: dict[str, Any], message: str) -> None:
    _raises(ConsumerConfig.from_kwargs, config, re.escape(message))


def test_consumer_checks_in_order_the_first_error_wins() -> None:
    _raises(
        ConsumerConfig.from_kwargs,
        {"session_timeout_ms": 0, "auto_offset_reset": "x"},
        "auto_offset_reset",
    )
    # an explicit enable_auto_commit without a group is refused before its type is looked at
    _raises(ConsumerConfig.from_kwargs, {"enable_auto_commit": 1}, "needs a group_id")


def test_consumer_unknown_keys_are_named_with_the_known_ones() -> None:
    err = _raises(ConsumerConfig.from_kwargs, {"groupid": "g"}, "unknown")
    assert str(err) == f"unknown consumer config ['groupid']; known: {CONSUMER_KEYS}"


def test_the_consumer_constructor_raises_the_configs_errors(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with pytest.raises(ConfigError, match=re.escape(f"known: {CONSUMER_KEYS}")):
        streamlog.Consumer(path, groupid="g")
    with pytest.raises(ConfigError, match="unknown partition assignment strategy 'nope'"):
        streamlog.Consumer(path, group_id="g", partition_assignment_strategy="nope")
    assert not path.exists()  # refused before anything touched the disk


def test_the_consumer_shows_its_config_read_only(tmp_path: Path) -> None:
    with streamlog.open(tmp_path / "data") as log:
        consumer = log.consumer(auto_offset_reset="earliest", client_id="c")
        try:
            assert consumer.config["auto_offset_reset"] == "earliest"
            assert consumer.config["max_poll_records"] == 500
            assert sorted(consumer.config) == CONSUMER_KEYS
            with pytest.raises(TypeError):
                consumer.config["auto_offset_reset"] = "latest"  # type: ignore[index]
        finally:
            consumer.close()


# ---------------------------------------------------------------------- both


@pytest.mark.parametrize("config", [ProducerConfig(), ConsumerConfig()])
def test_configs_are_frozen(config: ProducerConfig | ConsumerConfig) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.client_id = "other"  # type: ignore[misc]


def test_equal_configs_compare_and_hash_equal() -> None:
    assert ConsumerConfig.from_kwargs({"partition_assignment_strategy": ["range"]}) == (
        ConsumerConfig()
    )
    assert hash(ProducerConfig.from_kwargs({"acks": "1"})) == hash(ProducerConfig())


def test_client_ids_are_numbered_per_kind() -> None:
    first = next_client_id("test-kind")
    second = next_client_id("test-kind")
    assert re.fullmatch(r"test-kind-\d+", first)
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1
    assert next_client_id("other-test-kind") == "other-test-kind-1"


def test_clients_without_a_client_id_get_one_of_their_kind(tmp_path: Path) -> None:
    with streamlog.open(tmp_path / "data") as log:
        with log.producer() as p1, log.producer() as p2, log.producer(client_id="") as p3:
            ids = [p1.client_id, p2.client_id, p3.client_id]
        assert all(i.startswith("producer-") for i in ids) and len(set(ids)) == 3
        c1, c2 = log.consumer(), log.consumer(client_id="mine")
        assert c1.client_id.startswith("consumer-") and c2.client_id == "mine"
        c1.close()
        c2.close()


# ---------------------------------------------------------------------- ranges


def test_the_largest_values_are_accepted() -> None:
    top = 2**31 - 1
    producer = ProducerConfig.from_kwargs(
        {
            "linger_ms": top,
            "max_block_ms": top,
            "batch_size": top,
            "max_request_size": top,
            "buffer_memory": 2**63 - 1,
        }
    )
    assert (producer.linger_ms, producer.buffer_memory) == (top, 2**63 - 1)
    consumer = ConsumerConfig.from_kwargs(
        {
            "group_id": "g",
            "session_timeout_ms": top,
            "heartbeat_interval_ms": top - 1,
            "max_poll_interval_ms": top,
            "auto_commit_interval_ms": top,
            "metadata_max_age_ms": top,
            "max_poll_records": top,
            "max_partition_fetch_bytes": top,
            "fetch_max_bytes": top,
        }
    )
    assert consumer.session_timeout_ms == top


@pytest.mark.parametrize("timeout", [float("inf"), 2**63, 10**400, 1e300, 0, -0.0, 0.5])
def test_consumer_timeout_accepts_any_non_negative_number(timeout: float) -> None:
    """kafka-python's default is float("inf"): no timeout, as is anything longer."""
    assert ConsumerConfig.from_kwargs({"consumer_timeout_ms": timeout}).consumer_timeout_ms == (
        timeout
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (0, 0.0),
        (-0.0, 0.0),
        (1500, 1.5),
        (0.5, 0.0005),
        (float("inf"), None),
        (2**63, None),
        (10**400, None),
        (1e300, None),
        (int(threading.TIMEOUT_MAX) * 1000, float(int(threading.TIMEOUT_MAX))),
    ],
)
def test_wait_seconds(value: object, seconds: float | None) -> None:
    """A call's timeout for a thread wait: None (no limit) past what threads can wait."""
    got = wait_seconds("timeout_ms", value)
    assert got == seconds
    if got is not None:
        assert got <= threading.TIMEOUT_MAX
        threading.Event().wait(min(got, 0.0))  # a thread wait takes it


@pytest.mark.parametrize(
    ("value", "exc", "message"),
    [
        (float("nan"), ValueError, "timeout_ms must be a number >= 0, not NaN"),
        (-1, ValueError, "timeout_ms must be >= 0; got -1"),
        (-(10**400), ValueError, "timeout_ms must be >= 0; got an int of 1329 bits"),
        (float("-inf"), ValueError, "timeout_ms must be >= 0; got -inf"),
        (True, TypeError, "timeout_ms must be a number or None, not bool"),
        ("5", TypeError, "timeout_ms must be a number or None, not str"),
    ],
)
def test_wait_seconds_refuses(value: object, exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=re.escape(message)):
        wait_seconds("timeout_ms", value)
