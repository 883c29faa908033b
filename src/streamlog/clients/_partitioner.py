"""Partitioners: which partition a record without an explicit partition goes to.

Four strategies, chosen with the producer's ``partitioner`` setting
(``make_partitioner``):

- ``"murmur2"`` (also ``"default"``): the Java client's default. A keyed record
  goes to ``to_positive(murmur2(key)) % num_partitions``, byte-for-byte the
  partition Java's ``KafkaProducer`` and kafka-python choose. A record with a
  null key goes to a *sticky* partition (KIP-794's uniform sticky partitioner,
  ``BuiltInPartitioner``): the producer stays on one partition until
  ``batch_size`` bytes were produced to it, then moves to one chosen at random.
- ``"crc32"`` (also ``"consistent_random"``): librdkafka's (and so
  confluent-kafka's) default: ``zlib.crc32(key) % num_partitions``; a null or
  empty key gets a random partition per record.
- ``"round_robin"``: every record, keyed or not, to the next partition of its
  topic in turn (Java's ``RoundRobinPartitioner``).
- a callable ``(key_bytes, all_partitions, available_partitions) -> int``,
  kafka-python's signature.

Every partitioner is safe to share between threads. ``num_partitions`` is at
least 1 (the producer's invariant; it is not checked on the hot path).

Speed: ``Producer.send`` calls ``partition`` once per record, so the keyed
murmur2 path is tuned. ``murmur2`` unpacks all 4-byte words at once and, for
keys of 28 bytes or more, runs the per-word mixing on all words together in
one big integer (64-bit lanes); ``Murmur2Partitioner`` keeps a bounded cache
from key to hash, so a repeated key costs one dict lookup and a modulo.

Compiled: when the optional C extension ``streamlog._speedups`` is built (``pip
install`` builds it where a C compiler is found; see setup.py), ``murmur2``,
``murmur2_partition`` and the keyed path of ``Murmur2Partitioner`` use it
instead (about 30 ns a 16-byte key instead of 2 us, so the cache is skipped: a
call costs less than the dict lookup). Same results either way. Setting
``STREAMLOG_PURE_PYTHON=1`` in the environment before ``streamlog`` is imported
forces the pure-Python functions; ``COMPILED`` says which path is active.
"""

from __future__ import annotations

import operator
import os
import random
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import ConfigError, UnknownPartitionError

__all__ = [
    "COMPILED",
    "CallablePartitioner",
    "Crc32Partitioner",
    "Murmur2Partitioner",
    "Partitioner",
    "RoundRobinPartitioner",
    "crc32_partition",
    "make_partitioner",
    "murmur2",
    "murmur2_partition",
    "to_positive",
]

# ------------------------------------------------------------------------- murmur2

# Java's Utils.murmur2: seed 0x9747b28c, m 0x5bd1e995, r 24. The constants are
# written as literals in _murmur2_u32 (LOAD_CONST is the cheapest load).

# Below this many whole words the plain loop is faster than the lane trick.
_LANE_MIN_WORDS = 7
# The lane trick runs on chunks of at most this many words (bounds the constants).
_LANE_CHUNK_WORDS = 64

# _SMALL_UNPACK[nw] unpacks the first nw little-endian u32 words (trailing bytes ignored).
_SMALL_UNPACK: tuple[Callable[[bytes], tuple[int, ...]], ...] = tuple(
    struct.Struct(f"<{nw}I").unpack_from for nw in range(_LANE_MIN_WORDS)
)


def _lane_constants(nw: int) -> tuple[int, int, int, int, int, Callable[[bytes], tuple[int, ...]]]:
    """Constants for mixing ``nw`` words at once.

    The words, read as one little-endian integer ``x`` (word i at bit 32*i),
    are spread into 64-bit lanes, even words first (word 2i at lane i), then
    odd words (word 2i+1 at lane ne+i), so that a product of a word with the
    32-bit ``m`` fits its lane and one big multiplication mixes every word.
    """
    ne = (nw + 1) >> 1  # even words
    lane32 = b"\xff\xff\xff\xff\x00\x00\x00\x00"
    lane8 = b"\xff\x00\x00\x00\x00\x00\x00\x00"
    even = int.from_bytes(lane32 * ne, "little")
    shift = 64 * ne
    mask32 = int.from_bytes(lane32 * nw, "little")
    mask8 = int.from_bytes(lane8 * nw, "little")
    low = (1 << shift) - 1
    return even, shift, mask32, mask8, low, struct.Struct(f"<{nw}I").unpack


# Indexed by word count; a long key's last chunk may have fewer than _LANE_MIN_WORDS.
_LANES = (None, *(_lane_constants(nw) for nw in range(1, _LANE_CHUNK_WORDS + 1)))


def _murmur2_u32(data: bytes) -> int:
    """Java's ``Utils.murmur2`` as an unsigned 32-bit int."""
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    h = 0x9747B28C ^ n
    nw = n >> 2
    if nw < _LANE_MIN_WORDS:
        if nw:
            for w in _SMALL_UNPACK[nw](data):
                k = w * 0x5BD1E995 & 0xFFFFFFFF
                k ^= k >> 24
                h = (h * 0x5BD1E995 ^ k * 0x5BD1E995) & 0xFFFFFFFF
    else:
        # Per word: k *= m; k ^= k >>> 24; k *= m (all words at once, in lanes),
        # then, in order: h = h * m ^ k.
        start = 0
        end = nw << 2
        while start < end:
            cw = (end - start) >> 2
            cw = min(cw, _LANE_CHUNK_WORDS)
            even, shift, mask32, mask8, low, unpack = _LANES[cw]  # type: ignore[misc]
            stop = start + (cw << 2)
            x = int.from_bytes(data[start:stop], "little")
            z = (x & even) | (((x >> 32) & even) << shift)
            z = z * 0x5BD1E995 & mask32
            z ^= (z >> 24) & mask8
            z = z * 0x5BD1E995 & mask32
            x = (z & low) | ((z >> shift) << 32)
            for k in unpack(x.to_bytes(cw << 2, "little")):
                h = (h * 0x5BD1E995 ^ k) & 0xFFFFFFFF
            start = stop
    r = n & 3
    if r:
        h = (h ^ int.from_bytes(data[n - r :], "little")) * 0x5BD1E995 & 0xFFFFFFFF
    h ^= h >> 13
    h = h * 0x5BD1E995 & 0xFFFFFFFF
    return h ^ (h >> 15)


def _py_murmur2(data: bytes) -> int:
    """Java's ``org.apache.kafka.common.utils.Utils.murmur2``: a signed 32-bit int.

    Byte-for-byte compatible: ``murmur2(b"21") == -973932308``.
    """
    h = _murmur2_u32(data)
    return h - 0x100000000 if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Java's ``Utils.toPositive``: clear the sign bit (``n & 0x7fffffff``; not ``abs``)."""
    return n & 0x7FFFFFFF


def _py_murmur2_partition(key: bytes, num_partitions: int) -> int:
    """The partition Java's producer (and kafka-python) choose for a keyed record."""
    return (_murmur2_u32(key) & 0x7FFFFFFF) % num_partitions


# The compiled functions, unless the extension is missing or STREAMLOG_PURE_PYTHON
# is set (read once, here). Tests compare both paths (_py_* are always the pure ones).
PURE_PYTHON_ENV = "STREAMLOG_PURE_PYTHON"
COMPILED: bool = False
if os.environ.get(PURE_PYTHON_ENV, "") in ("", "0"):
    try:
        from .. import _speedups
    except ImportError:  # not built: no C compiler at install time
        pass
    else:
        COMPILED = True

if COMPILED:
    murmur2 = _speedups.murmur2
    murmur2_partition = _speedups.murmur2_partition
else:
    murmur2 = _py_murmur2
    murmur2_partition = _py_murmur2_partition


def crc32_partition(key: bytes, num_partitions: int) -> int:
    """librdkafka's ``consistent`` hash: ``zlib.crc32(key) % num_partitions``.

    ``consistent_random`` uses it for non-empty keys (``Crc32Partitioner``).
    """
    return zlib.crc32(key) % num_partitions


# --------------------------------------------------------------------- partitioners


class Partitioner(Protocol):
    """What the producer asks: a partition for a record sent without one."""

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        """A partition in ``range(num_partitions)`` for a record with ``key``."""

    def on_batch_bytes(self, topic: str, partition: int, nbytes: int) -> None:
        """``nbytes`` were appended to ``partition`` (sticky bookkeeping; others ignore it)."""


def _random_source(rng: random.Random | None) -> Callable[[], float]:
    return (rng if rng is not None else random.Random()).random


class Murmur2Partitioner:
    """Java's default: murmur2 for keyed records, uniform sticky for null keys.

    Null keys follow KIP-794 (``BuiltInPartitioner`` without adaptive
    partitioning): a topic's records stick to one partition until
    ``batch_size`` bytes were reported for it through ``on_batch_bytes``, then
    the next partition is drawn uniformly at random from all partitions (as in
    Java, the draw may land on the same partition again). With
    ``enable_switch=False`` (Java passes "the partition's last batch is not
    full yet") the switch waits, up to ``2 * batch_size`` bytes. A
    ``batch_size`` of 0 (batching disabled) counts as 1, as in Java.

    Keyed records never take the lock. With the pure-Python hash, their
    hashes (keys up to ``cache_max_key`` bytes) are cached, up to
    ``cache_size`` keys; the cache is emptied when full. With the compiled
    hash (``COMPILED``) there is no cache: hashing costs less than a lookup.
    """

    def __init__(
        self,
        batch_size: int = 16384,
        *,
        rng: random.Random | None = None,
        cache_size: int = 100_000,
        cache_max_key: int = 64,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise ConfigError(f"batch_size must be an int >= 0, not {batch_size!r}")
        self._batch_size = max(1, batch_size)
        self._random = _random_source(rng)
        self._cache_size = cache_size
        self._cache_max_key = cache_max_key
        self._hashes: dict[bytes, int] = {}  # key -> to_positive(murmur2(key))
        self._lock = threading.Lock()
        # topic -> [sticky partition, bytes produced to it]. Read without the lock;
        # the count is changed and entries replaced under it. A list's partition
        # never changes: a switch removes the list.
        self._sticky: dict[str, list[int]] = {}

    def _partition_compiled(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        if key is None:
            st = self._sticky.get(topic)
            if st is not None and st[0] < num_partitions:
                return st[0]
            return self._stick(topic, num_partitions)
        return murmur2_partition(key, num_partitions)  # no cache: the call is cheaper

    def _partition_cached(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        if key is None:
            st = self._sticky.get(topic)
            if st is not None and st[0] < num_partitions:
                return st[0]
            return self._stick(topic, num_partitions)
        try:
            h = self._hashes.get(key)
        except TypeError:  # unhashable: bytearray
            return (_murmur2_u32(key) & 0x7FFFFFFF) % num_partitions
        if h is not None:
            return h % num_partitions
        h = _murmur2_u32(key) & 0x7FFFFFFF
        if type(key) is bytes and len(key) <= self._cache_max_key:
            cache = self._hashes
            if len(cache) >= self._cache_size:
                cache.clear()
                if not self._cache_size:
                    return h % num_partitions
            cache[key] = h
        return h % num_partitions

    # Chosen once: the compiled hash without the cache, or the pure one with it.
    partition = _partition_compiled if COMPILED else _partition_cached

    def _stick(self, topic: str, num_partitions: int) -> int:
        with self._lock:
            st = self._sticky.get(topic)
            if st is None or st[0] >= num_partitions:
                st = self._sticky[topic] = [int(self._random() * num_partitions), 0]
            return st[0]

    def on_batch_bytes(
        self, topic: str, partition: int, nbytes: int, *, enable_switch: bool = True
    ) -> None:
        st = self._sticky.get(topic)
        if st is None or st[0] != partition:
            return  # not the sticky partition (a keyed record, or a switch raced us)
        lock = self._lock
        lock.acquire()
        try:
            if self._sticky.get(topic) is not st:
                return
            produced = st[1] = st[1] + nbytes
            size = self._batch_size
            if (enable_switch and produced >= size) or produced >= 2 * size:
                del self._sticky[topic]  # the next null-key record draws a new partition
        finally:
            lock.release()

    def __repr__(self) -> str:
        return f"Murmur2Partitioner(batch_size={self._batch_size})"


class Crc32Partitioner:
    """librdkafka's ``consistent_random``: ``crc32(key) % n``; null or empty key: random.

    The random partition is drawn per record. (librdkafka 1.5+ also makes
    null-key records sticky for ``sticky.partitioning.linger.ms``; not modelled.)
    """

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._random = _random_source(rng)

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        if key:
            return zlib.crc32(key) % num_partitions
        return int(self._random() * num_partitions)

    def on_batch_bytes(self, topic: str, partition: int, nbytes: int) -> None:
        pass

    def __repr__(self) -> str:
        return "Crc32Partitioner()"


class RoundRobinPartitioner:
    """Java's ``RoundRobinPartitioner``: each topic's records go to 0, 1, 2, ... in turn.

    Keys are ignored. The counter is per topic and wraps like Java's int counter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        with self._lock:
            c = self._next.get(topic, 0)
            self._next[topic] = (c + 1) & 0x7FFFFFFF
        return c % num_partitions

    def on_batch_bytes(self, topic: str, partition: int, nbytes: int) -> None:
        pass

    def __repr__(self) -> str:
        return "RoundRobinPartitioner()"


class CallablePartitioner:
    """A user function in kafka-python's shape: ``fn(key_bytes, all_partitions, available)``.

    ``key_bytes`` is the serialized key or None; both lists are
    ``list(range(num_partitions))`` (every partition is available), fresh for
    each call. The result must be an int in that range, else
    ``UnknownPartitionError``; exceptions from ``fn`` propagate.
    """

    def __init__(self, fn: Callable[..., int]) -> None:
        if not callable(fn):
            raise ConfigError(f"partitioner must be callable, not {type(fn).__name__}")
        self._fn = fn

    def partition(self, topic: str, key: bytes | None, num_partitions: int) -> int:
        all_partitions = list(range(num_partitions))
        result: Any = self._fn(key, all_partitions, list(all_partitions))
        if type(result) is not int:
            result = self._as_int(result, topic, num_partitions)
        if 0 <= result < num_partitions:
            return int(result)
        raise UnknownPartitionError(
            f"partitioner {self._name()} returned {result} for topic {topic!r}, which has "
            f"partitions 0..{num_partitions - 1}"
        )

    def _as_int(self, result: object, topic: str, num_partitions: int) -> int:
        if not isinstance(result, bool):
            try:
                return operator.index(result)  # type: ignore[arg-type]
            except TypeError:
                pass
        raise UnknownPartitionError(
            f"partitioner {self._name()} returned {result!r} ({type(result).__name__}) for "
            f"topic {topic!r}; it must return an int in 0..{num_partitions - 1}"
        )

    def _name(self) -> str:
        return getattr(self._fn, "__qualname__", None) or repr(self._fn)

    def on_batch_bytes(self, topic: str, partition: int, nbytes: int) -> None:
        pass

    def __repr__(self) -> str:
        return f"CallablePartitioner({self._name()})"


_CHOICES = (
    "'murmur2' (or 'default'), 'crc32' (or 'consistent_random'), 'round_robin', "
    "or a callable (key_bytes, all_partitions, available_partitions) -> int"
)


def make_partitioner(
    spec: str | Callable[..., int], *, batch_size: int, rng: random.Random | None = None
) -> Partitioner:
    """The partitioner for the producer's ``partitioner`` setting.

    ``batch_size`` is the producer's (the sticky switch threshold); ``rng``
    seeds the random choices (tests).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ConfigError(f"batch_size must be an int >= 0, not {batch_size!r}")
    if isinstance(spec, str):
        if spec in ("murmur2", "default"):
            return Murmur2Partitioner(batch_size, rng=rng)
        if spec in ("crc32", "consistent_random"):
            return Crc32Partitioner(rng=rng)
        if spec == "round_robin":
            return RoundRobinPartitioner()
    elif callable(spec):
        return CallablePartitioner(spec)
    raise ConfigError(f"partitioner must be one of {_CHOICES}; got {spec!r}")
