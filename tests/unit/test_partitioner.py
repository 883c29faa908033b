"""Partitioners: Java-compatible murmur2, librdkafka crc32, round robin, sticky, callables."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlog.clients import _partitioner
from streamlog.clients._partitioner import (
    COMPILED,
    CallablePartitioner,
    Crc32Partitioner,
    Murmur2Partitioner,
    Partitioner,
    RoundRobinPartitioner,
    crc32_partition,
    make_partitioner,
    murmur2,
    murmur2_partition,
    to_positive,
)
from streamlog.errors import ConfigError, UnknownPartitionError

# ------------------------------------------------------------------ reference murmur2


def java_murmur2(data: bytes) -> int:
    """A literal transcription of Java's ``Utils.murmur2`` (ints wrap at 32 bits, signed)."""

    def i32(x: int) -> int:  # Java int overflow
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x >= 1 << 31 else x

    def ushr(x: int, n: int) -> int:  # Java >>>
        return (x & 0xFFFFFFFF) >> n

    def to_byte(b: int) -> int:  # Java byte: signed
        return b - 256 if b >= 128 else b

    length = len(data)
    seed = i32(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = i32(seed ^ length)
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = i32(
            (to_byte(data[i4 + 0]) & 0xFF)
            + ((to_byte(data[i4 + 1]) & 0xFF) << 8)
            + ((to_byte(data[i4 + 2]) & 0xFF) << 16)
            + ((to_byte(data[i4 + 3]) & 0xFF) << 24)
        )
        k = i32(k * m)
        k = i32(k ^ ushr(k, r))
        k = i32(k * m)
        h = i32(h * m)
        h = i32(h ^ k)
    rem = length % 4
    # switch (length % 4) with fall-through
    if rem == 3:
        h = i32(h ^ ((to_byte(data[(length & ~3) + 2]) & 0xFF) << 16))
    if rem >= 2:
        h = i32(h ^ ((to_byte(data[(length & ~3) + 1]) & 0xFF) << 8))
    if rem >= 1:
        h = i32(h ^ (to_byte(data[length & ~3]) & 0xFF))
        h = i32(h * m)
    h = i32(h ^ ushr(h, 13))
    h = i32(h * m)
    h = i32(h ^ ushr(h, 15))
    return h


# ------------------------------------------------------------------------- vectors

# Kafka's UtilsTest.testMurmur2 (and the JVM-generated cases other clients copy).
JAVA_HASHES = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (bytes([12, 42, 56, 24, 109, 111]), 274204207),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]

# librdkafka's unittest_murmur2 (rdmurmur2.c), unsigned; includes suffixes of
# "1234" and of a long string (its unaligned-pointer cases).
LIBRDKAFKA_HASHES = [
    (b"kafka", 0xD067CF64),
    (b"giberish123456789", 0x8F552B0C),
    (b"1234", 0x9FC97B14),
    (b"234", 0xE7C009CA),
    (b"34", 0x873930DA),
    (b"4", 0x5A4B5CA1),
    (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424F1C),
    (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4A62B377),
    (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xE0E4E09E),
    (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62B8B43F),
    (b"", 0x106E08D9),
]

# kafka-python's test_partitioner (1000 partitions) and the reference's 4-partition pair.
PARTITIONS_OF_1000 = [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566)]


@pytest.mark.parametrize(("key", "expected"), JAVA_HASHES)
def test_murmur2_java_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected
    assert java_murmur2(key) == expected  # the test's reference agrees too


@pytest.mark.parametrize(("key", "expected"), LIBRDKAFKA_HASHES)
def test_murmur2_librdkafka_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) & 0xFFFFFFFF == expected


@pytest.mark.parametrize(("key", "expected"), PARTITIONS_OF_1000)
def test_murmur2_partition_kafka_python_vectors(key: bytes, expected: int) -> None:
    assert murmur2_partition(key, 1000) == expected
    assert Murmur2Partitioner().partition("t", key, 1000) == expected


def test_murmur2_partition_of_four() -> None:
    assert murmur2_partition(b"key1", 4) == 0
    assert murmur2_partition(b"key2", 4) == 3


def test_murmur2_is_signed_32_bit() -> None:
    values = [murmur2(bytes([i])) for i in range(256)]
    assert all(-(1 << 31) <= v < (1 << 31) for v in values)
    assert any(v < 0 for v in values) and any(v >= 0 for v in values)


def test_to_positive_masks_the_sign_bit_not_abs() -> None:
    assert to_positive(5) == 5
    assert to_positive(0) == 0
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(1 << 31)) == 0
    assert to_positive(-790332482) == 1357151166  # not abs() = 790332482
    assert to_positive(0x7FFFFFFF) == 0x7FFFFFFF


def test_murmur2_partition_is_to_positive_mod_n() -> None:
    for key, h in JAVA_HASHES:
        for n in (1, 2, 3, 7, 12, 1000):
            assert murmur2_partition(key, n) == to_positive(h) % n


# --------------------------------------------------- equality with the reference


def test_murmur2_matches_reference_at_every_length() -> None:
    # 0..299 bytes: every tail length, the plain loop (< 7 words) and lanes (>= 7 words).
    rnd = random.Random(1)
    for length in range(300):
        for _ in range(3):
            data = rnd.randbytes(length)
            assert murmur2(data) == java_murmur2(data), (length, data)


@pytest.mark.parametrize("length", [511, 512, 513, 515, 1000, 1027, 4097])
def test_murmur2_matches_reference_on_long_keys(length: int) -> None:
    # Longer than one 64-word lane chunk: several chunks and a short last one.
    data = random.Random(length).randbytes(length)
    assert murmur2(data) == java_murmur2(data)


def test_murmur2_high_bytes_and_all_ones() -> None:
    # Java bytes are signed: every byte >= 0x80 exercises the & 0xff masks.
    for length in range(0, 70):
        for fill in (b"\xff", b"\x80", b"\x00", b"\x7f"):
            data = fill * length
            assert murmur2(data) == java_murmur2(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_murmur2_matches_reference_property(data: bytes) -> None:
    assert murmur2(data) == java_murmur2(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=80), st.integers(min_value=1, max_value=10_000))
def test_partition_functions_in_range(key: bytes, n: int) -> None:
    p = murmur2_partition(key, n)
    assert 0 <= p < n
    assert p == (java_murmur2(key) & 0x7FFFFFFF) % n
    c = crc32_partition(key, n)
    assert 0 <= c < n


def test_murmur2_accepts_bytes_like() -> None:
    data = b"a-little-bit-long-string"
    assert murmur2(bytearray(data)) == -985981536
    assert murmur2(memoryview(data)) == -985981536
    assert murmur2_partition(bytearray(b"abc"), 1000) == 107


# ---------------------------------------------------------------------------- crc32


def test_crc32_partition_values() -> None:
    # 0xCBF43926 is CRC-32's standard check value for "123456789".
    assert crc32_partition(b"123456789", 10) == 0xCBF43926 % 10 == 2
    assert crc32_partition(b"123456789", 1000) == 262
    fox = b"The quick brown fox jumps over the lazy dog"
    assert crc32_partition(fox, 7) == 0x414FA339 % 7
    assert crc32_partition(b"", 5) == 0
    for key in (b"a", b"key1", bytes(range(256))):
        assert crc32_partition(key, 12) == zlib.crc32(key) % 12


def test_crc32_partitioner_keyed_is_consistent() -> None:
    p = Crc32Partitioner()
    for i in range(200):
        key = f"user-{i}".encode()
        assert p.partition("t", key, 6) == crc32_partition(key, 6) == p.partition("u", key, 6)


def test_crc32_partitioner_null_and_empty_keys_are_random_per_record() -> None:
    p = Crc32Partitioner(rng=random.Random(7))
    for key in (None, b""):
        seen = Counter(p.partition("t", key, 4) for _ in range(4000))
        assert set(seen) == {0, 1, 2, 3}
        assert min(seen.values()) > 800  # uniform: about 1000 each
    assert all(p.partition("t", None, 1) == 0 for _ in range(100))


def test_crc32_partitioner_seeded_is_reproducible() -> None:
    a = Crc32Partitioner(rng=random.Random(3))
    b = Crc32Partitioner(rng=random.Random(3))
    assert [a.partition("t", None, 9) for _ in range(50)] == [
        b.partition("t", None, 9) for _ in range(50)
    ]


# ---------------------------------------------------------------------- round robin


def test_round_robin_order_ignores_keys() -> None:
    p = RoundRobinPartitioner()
    got = [p.partition("t", key, 3) for key in (b"k", b"k", None, b"x", b"k", None, b"k")]
    assert got == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_counters_are_per_topic() -> None:
    p = RoundRobinPartitioner()
    assert [p.partition("a", None, 4) for _ in range(3)] == [0, 1, 2]
    assert [p.partition("b", None, 4) for _ in range(2)] == [0, 1]
    assert p.partition("a", None, 4) == 3
    assert p.partition("a", None, 4) == 0


def test_round_robin_follows_partition_count_changes() -> None:
    p = RoundRobinPartitioner()
    assert [p.partition("t", None, 2) for _ in range(3)] == [0, 1, 0]
    assert [p.partition("t", None, 5) for _ in range(3)] == [3, 4, 0]


def test_round_robin_wraps_like_java_int() -> None:
    p = RoundRobinPartitioner()
    p._next["t"] = 0x7FFFFFFF
    assert p.partition("t", None, 10) == 0x7FFFFFFF % 10
    assert p.partition("t", None, 10) == 0  # toPositive(Integer.MIN_VALUE) == 0
    assert p.partition("t", None, 10) == 1


def test_round_robin_on_batch_bytes_is_a_no_op() -> None:
    p = RoundRobinPartitioner()
    p.on_batch_bytes("t", 0, 10**9)
    assert p.partition("t", None, 3) == 0


# -------------------------------------------------------------- murmur2 partitioner


def test_murmur2_partitioner_keyed_matches_function_and_ignores_topic() -> None:
    p = Murmur2Partitioner()
    for i in range(300):
        key = f"order-{i}".encode()
        for n in (1, 3, 12):
            assert p.partition("t", key, n) == murmur2_partition(key, n)
            assert p.partition("other", key, n) == murmur2_partition(key, n)


# The key cache belongs to the pure-Python path (``_partition_cached``); the compiled
# path (``_partition_compiled``) hashes every time. These tests call the cached one
# directly, so they run whichever path ``partition`` is.


def test_murmur2_partitioner_cache_is_bounded_and_correct() -> None:
    p = Murmur2Partitioner(cache_size=10)
    keys = [f"k{i}".encode() for i in range(35)]
    for _ in range(2):
        for key in keys:
            assert p._partition_cached("t", key, 7) == murmur2_partition(key, 7)
            assert len(p._hashes) <= 10
    # a cached key answers from the cache
    key = keys[-1]
    assert key in p._hashes
    p._hashes[key] = 5  # poison it: the partitioner must use the cached value
    assert p._partition_cached("t", key, 7) == 5


def test_murmur2_partitioner_cache_skips_long_keys_and_can_be_off() -> None:
    p = Murmur2Partitioner(cache_max_key=8)
    long_key = b"x" * 9
    assert p._partition_cached("t", long_key, 5) == murmur2_partition(long_key, 5)
    assert long_key not in p._hashes
    off = Murmur2Partitioner(cache_size=0)
    for i in range(20):
        key = bytes([i])
        assert off._partition_cached("t", key, 5) == murmur2_partition(key, 5)
    assert off._hashes == {}


def test_murmur2_partitioner_uses_the_active_path() -> None:
    expected = (
        Murmur2Partitioner._partition_compiled if COMPILED
        else Murmur2Partitioner._partition_cached
    )
    assert Murmur2Partitioner.partition is expected
    p = Murmur2Partitioner(rng=random.Random(1))
    for part in (p._partition_compiled, p._partition_cached):
        for key, expected_partition in PARTITIONS_OF_1000:
            assert part("t", key, 1000) == expected_partition
        assert part("t", bytearray(b"abc"), 1000) == 107  # type: ignore[arg-type]
        assert 0 <= part("t", None, 5) < 5


def test_murmur2_partitioner_bytes_like_keys() -> None:
    for name in ("partition", "_partition_cached"):
        p = Murmur2Partitioner()
        part = getattr(p, name)
        assert part("t", bytearray(b"abc"), 1000) == 107  # type: ignore[arg-type]
        assert part("t", memoryview(b"abc"), 1000) == 107  # type: ignore[arg-type]
        assert p._hashes == {}  # neither is cached (they are mutable or hold a buffer)
        assert part("t", b"abc", 1000) == 107


# ------------------------------------------------------------------------ sticky


class SeqRandom(random.Random):
    """random() yields (i + 0.5) / n-style values from a fixed list, for exact choices."""

    def __init__(self, values: list[float]) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def sticky_run(
    p: Murmur2Partitioner, topic: str, n: int, record_bytes: int, count: int
) -> list[int]:
    out = []
    for _ in range(count):
        part = p.partition(topic, None, n)
        p.on_batch_bytes(topic, part, record_bytes)
        out.append(part)
    return out


def test_sticky_stays_put_below_batch_size() -> None:
    p = Murmur2Partitioner(1000, rng=random.Random(1))
    got = sticky_run(p, "t", 8, 100, 9)  # 900 bytes < 1000
    assert len(set(got)) == 1
    assert p.partition("t", None, 8) == got[0]


def test_sticky_switches_once_batch_size_bytes_were_produced() -> None:
    # draws: partition 1, then 3, then 0 (random() * 4)
    p = Murmur2Partitioner(1000, rng=SeqRandom([0.3, 0.8, 0.1]))
    got = sticky_run(p, "t", 4, 250, 12)
    assert got == [1] * 4 + [3] * 4 + [0] * 4


def test_sticky_switch_counts_bytes_not_records() -> None:
    p = Murmur2Partitioner(1000, rng=SeqRandom([0.0, 0.5]))
    assert sticky_run(p, "t", 2, 999, 1) == [0]
    assert sticky_run(p, "t", 2, 1, 1) == [0]  # 1000 bytes now: switch after this one
    assert sticky_run(p, "t", 2, 1, 1) == [1]


def test_sticky_oversized_record_switches_at_once() -> None:
    p = Murmur2Partitioner(100, rng=SeqRandom([0.0, 0.5, 0.9]))
    assert sticky_run(p, "t", 3, 5000, 3) == [0, 1, 2]


def test_sticky_new_draw_may_repeat_like_java() -> None:
    # KIP-794's uniform draw does not exclude the current partition.
    p = Murmur2Partitioner(10, rng=SeqRandom([0.6, 0.6, 0.1]))
    assert sticky_run(p, "t", 2, 10, 3) == [1, 1, 0]


def test_sticky_ignores_bytes_for_other_partitions() -> None:
    p = Murmur2Partitioner(100, rng=SeqRandom([0.0, 0.9]))
    assert p.partition("t", None, 2) == 0
    p.on_batch_bytes("t", 1, 10_000)  # a keyed record elsewhere
    p.on_batch_bytes("other", 0, 10_000)  # another topic
    assert p.partition("t", None, 2) == 0
    p.on_batch_bytes("t", 0, 100)
    assert p.partition("t", None, 2) == 1


def test_sticky_enable_switch_false_waits_up_to_twice_batch_size() -> None:
    p = Murmur2Partitioner(100, rng=SeqRandom([0.0, 0.9]))
    assert p.partition("t", None, 2) == 0
    p.on_batch_bytes("t", 0, 150, enable_switch=False)
    assert p.partition("t", None, 2) == 0  # >= batch_size, but the batch isn't ready
    p.on_batch_bytes("t", 0, 49, enable_switch=False)
    assert p.partition("t", None, 2) == 0
    p.on_batch_bytes("t", 0, 1, enable_switch=False)  # 200 = 2 * batch_size: forced
    assert p.partition("t", None, 2) == 1


def test_sticky_single_partition_is_always_zero() -> None:
    p = Murmur2Partitioner(10, rng=random.Random(5))
    assert set(sticky_run(p, "t", 1, 7, 500)) == {0}


def test_sticky_batch_size_zero_switches_every_record() -> None:
    p = Murmur2Partitioner(0, rng=SeqRandom([0.0, 0.4, 0.7, 0.1]))
    assert sticky_run(p, "t", 3, 1, 4) == [0, 1, 2, 0]


def test_sticky_topics_are_independent() -> None:
    p = Murmur2Partitioner(100, rng=SeqRandom([0.0, 0.9, 0.5]))
    assert p.partition("a", None, 2) == 0
    assert p.partition("b", None, 2) == 1
    p.on_batch_bytes("a", 0, 100)
    assert p.partition("b", None, 2) == 1
    assert p.partition("a", None, 2) == 1  # drew 0.5 * 2


def test_sticky_redraws_when_partition_count_shrinks() -> None:
    p = Murmur2Partitioner(100, rng=SeqRandom([0.9, 0.5]))
    assert p.partition("t", None, 10) == 9
    assert p.partition("t", None, 4) == 2


def test_sticky_spreads_over_all_partitions() -> None:
    p = Murmur2Partitioner(1000, rng=random.Random(42))
    got = sticky_run(p, "t", 8, 100, 8000)  # about 800 stints of 10 records
    per_partition = Counter(got)
    assert set(per_partition) == set(range(8))
    assert min(per_partition.values()) > 700  # 1000 expected each
    stints = sum(1 for a, b in itertools.pairwise(got) if a != b)
    assert stints > 500


def test_keyed_records_do_not_disturb_sticky() -> None:
    p = Murmur2Partitioner(1000, rng=random.Random(3))
    first = p.partition("t", None, 4)
    for i in range(50):
        key = f"k{i}".encode()
        assert p.partition("t", key, 4) == murmur2_partition(key, 4)
    assert p.partition("t", None, 4) == first


# ------------------------------------------------------------------------ callable


def test_callable_receives_kafka_python_arguments() -> None:
    calls: list[tuple[bytes | None, list[int], list[int]]] = []

    def fn(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        calls.append((key, list(all_partitions), list(available)))
        all_partitions.clear()  # mutating the lists must not leak into later calls
        available.append(99)
        return 2

    p = CallablePartitioner(fn)
    assert p.partition("t", b"k", 4) == 2
    assert p.partition("t", None, 3) == 2
    assert calls == [(b"k", [0, 1, 2, 3], [0, 1, 2, 3]), (None, [0, 1, 2], [0, 1, 2])]


def test_callable_kafka_python_default_partitioner_shape() -> None:
    # kafka-python's DefaultPartitioner logic, as a user would pass it.
    def kp_default(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]

    p = make_partitioner(kp_default, batch_size=16384)
    assert isinstance(p, CallablePartitioner)
    for key, expected in PARTITIONS_OF_1000:
        assert p.partition("t", key, 1000) == expected
    assert 0 <= p.partition("t", None, 5) < 5


@pytest.mark.parametrize("bad", [-1, 4, 100, 2.0, "1", None, True, False])
def test_callable_result_is_validated(bad: object) -> None:
    p = CallablePartitioner(lambda key, all_p, avail: bad)
    with pytest.raises(UnknownPartitionError) as info:
        p.partition("events", b"k", 4)
    msg = str(info.value)
    assert "events" in msg
    assert "0..3" in msg
    assert repr(bad) in msg or str(bad) in msg


def test_callable_error_message_names_the_function() -> None:
    def my_partitioner(key: bytes | None, all_p: list[int], avail: list[int]) -> int:
        return 7

    with pytest.raises(UnknownPartitionError, match=r"my_partitioner returned 7 .*'t'.*0\.\.2"):
        CallablePartitioner(my_partitioner).partition("t", None, 3)


def test_callable_accepts_index_like_ints() -> None:
    class NumpyLikeInt:
        def __index__(self) -> int:
            return 1

    p = CallablePartitioner(lambda key, all_p, avail: NumpyLikeInt())
    result = p.partition("t", b"k", 3)
    assert result == 1 and type(result) is int


def test_callable_exceptions_propagate() -> None:
    def boom(key: bytes | None, all_p: list[int], avail: list[int]) -> int:
        raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        CallablePartitioner(boom).partition("t", b"k", 3)


def test_callable_must_be_callable() -> None:
    with pytest.raises(ConfigError):
        CallablePartitioner(42)  # type: ignore[arg-type]


# --------------------------------------------------------------- make_partitioner


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("murmur2", Murmur2Partitioner),
        ("default", Murmur2Partitioner),
        ("crc32", Crc32Partitioner),
        ("consistent_random", Crc32Partitioner),
        ("round_robin", RoundRobinPartitioner),
    ],
)
def test_make_partitioner_names(spec: str, cls: type) -> None:
    p: Partitioner = make_partitioner(spec, batch_size=16384)
    assert type(p) is cls
    assert 0 <= p.partition("t", b"key", 5) < 5
    assert 0 <= p.partition("t", None, 5) < 5
    p.on_batch_bytes("t", 0, 100)


def test_make_partitioner_passes_batch_size_and_rng() -> None:
    p = make_partitioner("murmur2", batch_size=200, rng=SeqRandom([0.0, 0.9]))
    assert sticky_run(p, "t", 2, 100, 3) == [0, 0, 1]  # type: ignore[arg-type]
    c = make_partitioner("crc32", batch_size=1, rng=SeqRandom([0.99]))
    assert c.partition("t", None, 10) == 9


@pytest.mark.parametrize(
    "bad", ["murmur3", "Murmur2", "", "random", None, 3, b"murmur2", ["crc32"]]
)
def test_make_partitioner_rejects_unknown_specs(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        make_partitioner(bad, batch_size=16384)  # type: ignore[arg-type]
    msg = str(info.value)
    for choice in ("murmur2", "default", "crc32", "consistent_random", "round_robin", "callable"):
        assert choice in msg
    assert repr(bad) in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "16384", None])
def test_make_partitioner_rejects_bad_batch_size(bad: object) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        make_partitioner("murmur2", batch_size=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------- thread safety


def hammer(worker: Callable[[int], None], threads: int = 8) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(i: int) -> None:
        try:
            barrier.wait()
            worker(i)
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_sticky_under_threads_stays_in_range_and_switches() -> None:
    p = Murmur2Partitioner(500, rng=random.Random(9))
    seen: list[Counter[int]] = [Counter() for _ in range(8)]

    def worker(i: int) -> None:
        for j in range(4000):
            n = 6 if j % 2 else 4  # the count may differ between calls: stay in range
            part = p.partition("t", None, n)
            assert 0 <= part < n
            p.on_batch_bytes("t", part, 37)
            seen[i][part] += 1

    hammer(worker)
    total: Counter[int] = sum(seen, Counter())
    assert len(total) >= 4  # it kept switching


def test_round_robin_under_threads_is_exactly_balanced() -> None:
    p = RoundRobinPartitioner()
    seen: list[Counter[int]] = [Counter() for _ in range(8)]

    def worker(i: int) -> None:
        for _ in range(3000):
            seen[i][p.partition("t", None, 6)] += 1

    hammer(worker)
    total: Counter[int] = sum(seen, Counter())
    assert total == Counter({k: 4000 for k in range(6)})  # no lost or doubled increments


def test_keyed_cache_under_threads_stays_correct() -> None:
    p = Murmur2Partitioner(cache_size=50)  # small: clears race with lookups
    keys = [f"key-{i}".encode() for i in range(400)]
    expected = {k: murmur2_partition(k, 9) for k in keys}

    def worker(i: int) -> None:
        rnd = random.Random(i)
        for _ in range(3000):
            key = rnd.choice(keys)
            assert p.partition("t", key, 9) == expected[key]

    hammer(worker)


# ------------------------------------------------------- compiled speedups (C extension)

try:
    from streamlog import _speedups
except ImportError:  # not built (no C compiler at install time)
    _speedups = None  # type: ignore[assignment]

needs_extension = pytest.mark.skipif(
    _speedups is None,
    reason="streamlog._speedups is not built (no C compiler when installed): "
    "only the pure-Python path can be tested",
)

ALL_VECTORS = [(k, h) for k, h in JAVA_HASHES] + [
    (k, h - (1 << 32) if h & 0x80000000 else h) for k, h in LIBRDKAFKA_HASHES
]


def test_active_path_matches_the_switch_and_the_build() -> None:
    pure_forced = os.environ.get("STREAMLOG_PURE_PYTHON", "") not in ("", "0")
    assert COMPILED == (_speedups is not None and not pure_forced)
    if COMPILED:
        assert murmur2 is _speedups.murmur2
        assert murmur2_partition is _speedups.murmur2_partition
    else:
        assert murmur2 is _partitioner._py_murmur2
        assert murmur2_partition is _partitioner._py_murmur2_partition


@pytest.mark.parametrize("env", ["1", "0", ""])
def test_pure_python_switch_in_a_subprocess(env: str) -> None:
    code = (
        "import json, sys\n"
        "from streamlog.clients import _partitioner as p\n"
        "print(json.dumps([p.COMPILED, p.murmur2.__name__, p.murmur2(b'21'),"
        " p.murmur2_partition(b'abc', 1000), p.Murmur2Partitioner.partition.__name__]))\n"
    )
    environ = {**os.environ, "STREAMLOG_PURE_PYTHON": env}
    out = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    ).stdout
    compiled, name, h, part, method = __import__("json").loads(out)
    assert (h, part) == (-973932308, 107)
    if env == "1":
        assert (compiled, name, method) == (False, "_py_murmur2", "_partition_cached")
    else:
        built = _speedups is not None
        assert compiled is built
        assert name == ("murmur2" if built else "_py_murmur2")
        assert method == ("_partition_compiled" if built else "_partition_cached")


@pytest.mark.parametrize(("key", "expected"), ALL_VECTORS)
def test_pure_function_on_known_vectors(key: bytes, expected: int) -> None:
    assert _partitioner._py_murmur2(key) == expected
    for n in (1, 7, 1000):
        assert _partitioner._py_murmur2_partition(key, n) == to_positive(expected) % n


@needs_extension
@pytest.mark.parametrize(("key", "expected"), ALL_VECTORS)
def test_compiled_on_known_vectors(key: bytes, expected: int) -> None:
    assert _speedups.murmur2(key) == expected
    assert _speedups.murmur2_positive(key) == to_positive(expected)
    for n in (1, 7, 1000):
        assert _speedups.murmur2_partition(key, n) == to_positive(expected) % n


@needs_extension
@pytest.mark.parametrize(("key", "expected"), PARTITIONS_OF_1000)
def test_compiled_partition_kafka_python_vectors(key: bytes, expected: int) -> None:
    assert _speedups.murmur2_partition(key, 1000) == expected


@needs_extension
@settings(max_examples=1500, deadline=None)
@given(st.integers(min_value=0, max_value=300).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.integers(min_value=1, max_value=(1 << 40)))
def test_compiled_agrees_with_pure_on_random_keys(data: bytes, n: int) -> None:
    h = _partitioner._py_murmur2(data)
    assert _speedups.murmur2(data) == h
    assert _speedups.murmur2_positive(data) == to_positive(h)
    assert _speedups.murmur2_partition(data, n) == _partitioner._py_murmur2_partition(data, n)


@needs_extension
def test_compiled_agrees_with_pure_at_every_length() -> None:
    rnd = random.Random(2)
    for length in range(301):
        for _ in range(5):
            data = rnd.randbytes(length)
            assert _speedups.murmur2(data) == _partitioner._py_murmur2(data), length
        for fill in (b"\xff", b"\x80", b"\x00"):
            assert _speedups.murmur2(fill * length) == _partitioner._py_murmur2(fill * length)


@needs_extension
def test_compiled_accepts_what_pure_accepts() -> None:
    data = b"a-little-bit-long-string"
    strided = memoryview(data)[::3]  # not contiguous: copied through bytes()
    as_words = memoryview(bytearray(data)).cast("I")  # bytes(view) is its raw bytes
    for key in (bytearray(data), memoryview(data), strided, as_words, memoryview(b"")):
        assert _speedups.murmur2(key) == _partitioner._py_murmur2(key)  # type: ignore[arg-type]
        assert _speedups.murmur2_partition(key, 12) == (  # type: ignore[arg-type]
            _partitioner._py_murmur2_partition(key, 12)  # type: ignore[arg-type]
        )

    class Sub(bytes):
        def __bytes__(self) -> bytes:
            return b"other"

    assert _speedups.murmur2(Sub(b"x")) == _partitioner._py_murmur2(Sub(b"x"))
    for bad in ("str", None, 1.5):
        with pytest.raises(TypeError):
            _partitioner._py_murmur2(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            _speedups.murmur2(bad)  # type: ignore[arg-type]
    released = memoryview(b"abc")
    released.release()
    with pytest.raises(ValueError):
        _speedups.murmur2(released)


@needs_extension
def test_compiled_partition_modulo_matches_python_for_odd_counts() -> None:
    # The pure code leaves ``%`` to Python: the compiled one does too outside 1..LONG_MAX.
    key = b"foobar"
    for n in (1, 2**31 - 1, 2**31, 2**62, 2**70, -3, True):
        assert _speedups.murmur2_partition(key, n) == _partitioner._py_murmur2_partition(key, n)
    with pytest.raises(ZeroDivisionError):
        _speedups.murmur2_partition(key, 0)
    with pytest.raises(ZeroDivisionError):
        _partitioner._py_murmur2_partition(key, 0)
    with pytest.raises(TypeError):
        _speedups.murmur2_partition(key)  # type: ignore[call-arg]
    assert _speedups.murmur2_partition(key, 7.0) == _partitioner._py_murmur2_partition(key, 7.0)  # type: ignore[arg-type]
