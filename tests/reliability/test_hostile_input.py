"""Hostile input: fuzzed arguments and fuzzed files (reliability plan T17 and §7).

The bad-input table of the plan is covered case by case in
``tests/test_bad_input.py`` (names, partition counts and numbers, configs,
record sizes at the limit, data directory paths, corrupt metadata, use after
close) and the client unit tests (``send`` and ``seek`` arguments). Here:

- arguments drawn by Hypothesis for the admin, producer and consumer calls:
  every call succeeds or raises a streamlog error, ``TypeError`` or
  ``ValueError``; a call that raises changes no file, and nothing outside the
  data directory is ever created or changed. The values include the hostile
  ones that are of the right type: NaN, infinities, ``-0.0``, ``2**63``,
  ``2**64``, ``10**20``, digit strings longer than Python converts, bools where
  ints are expected, plain ``(topic, partition)`` tuples. Every call runs under
  a time limit (a hang is a finding), timeouts are checked against how long the
  call really waited, and Python's own errors for such values (``OverflowError``,
  ``struct.error``, ``AttributeError``, the digit-limit ``ValueError``) are
  findings;
- the file fuzz of ``_fuzz.py`` in process (thousands of cheap cases: every
  kind of file, mutated, read every way);
- a whole-directory fuzz in a child process (several files damaged at once,
  then open, recovery, read everything, commit, ``check``), with an audit hook
  that records any file the process touches outside the data directory, and
  an address-space limit that turns an unbounded allocation into a
  ``MemoryError``; the parent counts crashes (SIGSEGV, SIGBUS);
- forged frames with valid checksums and hostile lengths: bounded memory.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamlog
from streamlog import TopicPartition
from streamlog.coordination._offsets import OffsetStore
from streamlog.errors import CorruptRecordError, StreamlogError
from streamlog.storage._codec import HEADER, MAX_PAYLOAD, PreparedBatch, RecordBatch
from tests._dirsnap import assert_unchanged, snapshot
from tests._helpers import numeric_topic_keys
from tests._procs import ROOT, call_in_child, last_json

from . import _fuzz
from ._figures import record

# ---------------------------------------------------------------- fuzzed arguments

# Values of the right type, or nearly, that pass naive checks: each found a defect once.
HOSTILE_VALUES: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.5,
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**63,
    2**64,
    10**20,
    -(2**63),
    -(2**63) - 1,
    "9" * 5000,
    "-" + "9" * 5000,
    "0" * 5000 + "1",
    "12",
    True,
    False,
    ("t", 0),
    ("t", 1),
    TopicPartition("t", 0),
    ("t",),
    ("t", 0, 0),
    (0, "t"),
]
_hostile = st.sampled_from(HOSTILE_VALUES)
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    _hostile,
    _hostile,
)
_name = st.one_of(
    st.sampled_from(["t", "u", "..", "a/b", "", "x" * 250]), st.text(max_size=12), _anything
)

_CALLS = [
    "create_topic",
    "delete_topic",
    "describe_topic",
    "partition",
    "create_partitions",
    "alter_topic_config",
    "delete_records",
    "send",
    "seek",
    "offsets_for_times",
]


def _call(log: streamlog.Log, which: str, a: Any, b: Any, c: Any) -> None:
    if which == "create_topic":
        log.create_topic(a, b, c)
    elif which == "delete_topic":
        log.delete_topic(a)
    elif which == "describe_topic":
        log.describe_topic(a)
    elif which == "partition":
        log.partition(a, b)
    elif which == "create_partitions":
        log.create_partitions(a, b)
    elif which == "alter_topic_config":
        log.alter_topic_config(a, c)
    elif which == "delete_records":
        log.delete_records({TopicPartition(a, b): c})
    elif which == "send":
        with log.producer(linger_ms=0) as prod:
            prod.send("t", a, b, partition=c).result(timeout=10)
    elif which == "seek":
        consumer = log.consumer()
        try:
            consumer.assign([TopicPartition("t", 0)])
            consumer.seek(TopicPartition(a, b) if isinstance(a, str) else a, c)
        finally:
            consumer.close()
    elif which == "offsets_for_times":
        consumer = log.consumer()
        try:
            consumer.offsets_for_times({TopicPartition(a, b): c})
        finally:
            consumer.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(which=st.sampled_from(_CALLS), a=_name, b=_anything, c=_anything)
def test_fuzzed_arguments(
    tmp_path_factory: pytest.TempPathFactory, which: str, a: Any, b: Any, c: Any
) -> None:
    top = tmp_path_factory.mktemp("args")
    data = os.path.join(os.fspath(top), "data")
    with streamlog.open(data) as log:
        log.create_topic("t", 2)
        log.partition("t", 0).append(streamlog.storage.prepare_batch([b"x"] * 3))
        log.describe_topic("t")
        before = snapshot(top)
        try:
            what = f"{which}({a!r:.40}, {b!r:.40}, {c!r:.40})"
            _in_time(lambda: _call(log, which, a, b, c), what)
        except (StreamlogError, TypeError, ValueError) as e:
            _documented(e)
            assert_unchanged(before, top)  # a refused call changes nothing
        # nothing outside the data directory, whatever happened
        outside = {k: v for k, v in snapshot(top).items() if not k.startswith("data")}
        assert outside == {k: v for k, v in before.items() if not k.startswith("data")}


# ---------------------------------------------------------------- fuzzed client arguments

_CALL_LIMIT = 20.0  # seconds: a call still running then is a hang (a finding)
_INTERRUPT = 0.3  # seconds: when a long wait of a fuzz case is interrupted (wakeup, close)


def _in_time(fn: Callable[[], object], what: str, limit: float = _CALL_LIMIT) -> None:
    """Run ``fn`` in a thread; re-raise what it raised; a call running past ``limit`` is a
    finding (a hang; the thread is a daemon and is left behind)."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True, name="fuzz-call")
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise AssertionError(f"hang: {what} still running after {limit} s")
    if outcome:
        raise outcome[0]


def _r(value: object) -> str:
    """A short repr for a finding's description (``repr`` of a huge int raises)."""
    try:
        return repr(value)[:40]
    except ValueError:
        return f"<{type(value).__name__} too large to show>"


def _documented(error: BaseException) -> None:
    """Python's own errors for an out-of-range value, even as a ValueError, are findings."""
    text = str(error)
    assert "integer string conversion" not in text, f"digit limit leaked: {error!r:.300}"
    assert "Invalid value NaN" not in text, f"NaN reached a thread wait: {error!r:.300}"


def _long_wait(timeout: Any, unit: float) -> bool:
    """Whether ``timeout`` (in ms for unit=1000, s for unit=1) may legitimately still be
    waiting after ``_INTERRUPT`` seconds."""
    return timeout is None or (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and timeout >= _INTERRUPT * 0.8 * unit
    )


PRODUCER_SETTINGS = [
    "linger_ms",
    "batch_size",
    "max_request_size",
    "buffer_memory",
    "max_block_ms",
    "acks",
]
CONSUMER_SETTINGS = [
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_interval_ms",
    "auto_commit_interval_ms",
    "metadata_max_age_ms",
    "max_poll_records",
    "max_partition_fetch_bytes",
    "fetch_max_bytes",
    "consumer_timeout_ms",
]
NUMERIC_TOPIC_KEYS = numeric_topic_keys()
_CLIENT_CALLS = [
    "producer_config",
    "consumer_config",
    "topic_config",
    "send_timestamp",
    "send_partition",
    "flush",
    "close",
    "future_result",
    "poll",
    "poll_max_records",
    "iterate",
    "tp_calls",
    "seek",
    "offsets_for_times",
    "commit",
    "delete_records",
    "reset_offsets",
    "open",
]


class _Case:
    """One fuzz case: the snapshot a refused call is compared with (``mark`` retakes it
    just before the hostile call), and what to close afterwards."""

    def __init__(self, top: str, log: streamlog.Log) -> None:
        self.top = top
        self.log = log
        self.before = snapshot(top)
        self.cleanups: list[Callable[[], object]] = []
        self.strict = False  # only streamlog errors are documented for this call

    def mark(self) -> None:
        self.before = snapshot(self.top)

    def producer(self, **config: Any) -> streamlog.Producer:
        producer = self.log.producer(**config)
        self.cleanups.append(lambda: producer.close(timeout_ms=10_000))
        return producer

    def consumer(self, **config: Any) -> streamlog.Consumer:
        consumer = self.log.consumer(**config)
        self.cleanups.append(consumer.close)
        return consumer

    def later(self, fn: Callable[[], object]) -> None:
        timer = threading.Timer(_INTERRUPT, fn)
        timer.daemon = True
        timer.start()
        self.cleanups.insert(0, timer.cancel)


def _client_call(case: _Case, which: str, key: str, v: Any, w: Any) -> None:
    if which == "producer_config":
        case.strict = True
        producer = case.producer(**{key: v})  # ConfigError, or a producer that works
        case.strict = False
        producer.send("t", b"v", partition=1).result(timeout=10)
    elif which == "consumer_config":
        config = {"group_id": "g", key: v}
        if key == "heartbeat_interval_ms":
            config["session_timeout_ms"] = 2**31 - 1
        case.strict = True
        consumer = case.consumer(**config, auto_offset_reset="earliest")
        case.strict = False
        consumer.assign([TopicPartition("t", 0)])
        assert consumer.poll(timeout_ms=5000)
        if key == "consumer_timeout_ms":
            case.later(consumer.close)
            assert sum(1 for _ in consumer) == 0 or True  # ends by its timeout or the close
    elif which == "topic_config":
        case.strict = True
        try:
            case.log.create_topic("n", 1, {key: v})
        finally:
            case.log.alter_topic_config("t", {key: v})
    elif which == "send_timestamp":
        producer = case.producer(linger_ms=60_000)
        good = producer.send("t", b"good", partition=1)
        case.mark()
        try:
            producer.send("t", b"v", partition=1, timestamp_ms=v)
        except (TypeError, ValueError) as e:  # refused at the call, before anything
            _documented(e)
            assert_unchanged(case.before, case.top)
        producer.flush(timeout_ms=10_000)
        good.result(timeout=10)  # a refused record never fails a good one of its batch
    elif which == "send_partition":
        case.producer().send("t", b"v", partition=v).result(timeout=10)
    elif which in ("flush", "close"):
        producer = case.producer(linger_ms=60_000)
        fut = producer.send("t", b"v", partition=1)
        case.mark()
        if which == "flush":
            producer.flush(timeout_ms=v)
        else:
            producer.close(timeout_ms=v)
        assert fut.result(timeout=10).offset >= 0  # no limit, or long enough: written
    elif which == "future_result":
        producer = case.producer(linger_ms=60_000)
        fut = producer.send("t", b"v", partition=1)  # pending until the flush
        case.mark()
        case.later(producer.flush)
        t0 = time.monotonic()
        try:
            fut.result(timeout=v) if key.startswith("s") else fut.exception(timeout=v)
        except StreamlogError:
            assert time.monotonic() - t0 < _INTERRUPT, f"result(timeout={v!r}) timed out late"
    elif which == "poll":
        consumer = case.consumer(auto_offset_reset="latest")
        consumer.assign([TopicPartition("t", 0)])
        case.later(consumer.wakeup)
        t0 = time.monotonic()
        try:
            consumer.poll(timeout_ms=v)
        finally:
            if time.monotonic() - t0 >= _INTERRUPT:
                assert _long_wait(v, 1000), f"poll(timeout_ms={v!r}) waited past its timeout"
    elif which == "poll_max_records":
        consumer = case.consumer(auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        consumer.poll(timeout_ms=0, max_records=v)
    elif which == "iterate":
        case.strict = True
        consumer = case.consumer(auto_offset_reset="latest", consumer_timeout_ms=v)
        case.strict = False
        consumer.assign([TopicPartition("t", 0)])
        case.later(consumer.close)
        t0 = time.monotonic()
        for _ in consumer:
            pass
        if time.monotonic() - t0 >= _INTERRUPT:
            assert _long_wait(v, 1000), f"consumer_timeout_ms={v!r} waited past its timeout"
    elif which == "tp_calls":
        consumer = case.consumer(group_id="g", enable_auto_commit=False)
        consumer.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        {
            "assign": lambda: consumer.assign([v]),
            "position": lambda: consumer.position(v),
            "pause": lambda: consumer.pause(v),
            "resume": lambda: consumer.resume(v),
            "seek_to_beginning": lambda: consumer.seek_to_beginning(v),
            "seek_to_end": lambda: consumer.seek_to_end(v),
            "current_lag": lambda: consumer.current_lag(v),
            "beginning_offsets": lambda: consumer.beginning_offsets([v]),
            "end_offsets": lambda: consumer.end_offsets([v]),
            "committed": lambda: consumer.committed(v),
            "commit": lambda: consumer.commit({v: 1}),
            "offsets_for_times": lambda: consumer.offsets_for_times({v: 0}),
        }[key]()
    elif which == "seek":
        consumer = case.consumer()
        consumer.assign([TopicPartition("t", 0)])
        consumer.seek(v, w)
        consumer.poll(timeout_ms=0)
    elif which == "offsets_for_times":
        consumer = case.consumer()
        consumer.offsets_for_times({v: w})
    elif which == "commit":
        consumer = case.consumer(group_id="g", enable_auto_commit=False)
        consumer.assign([TopicPartition("t", 0)])
        consumer.commit({v: w})
    elif which == "delete_records":
        case.log.delete_records({v: w})
    elif which == "reset_offsets":
        if key.startswith("s"):
            case.log.reset_offsets("g", "t", shift_by=v, partitions=w, dry_run=True)
        else:
            case.log.reset_offsets("g", "t", to=v, dry_run=True)
    elif which == "open":
        case.strict = True
        streamlog.open(case.log.path, lock_timeout_ms=v).close()


# the consumer methods that take TopicPartitions
_TP_CALLS = [
    "assign",
    "position",
    "pause",
    "resume",
    "seek_to_beginning",
    "seek_to_end",
    "current_lag",
    "beginning_offsets",
    "end_offsets",
    "committed",
    "commit",
    "offsets_for_times",
]
_KEYS = st.sampled_from([*PRODUCER_SETTINGS, *CONSUMER_SETTINGS, *NUMERIC_TOPIC_KEYS, *_TP_CALLS])


def _key_for(which: str, key: str) -> str:
    """A key that means something for ``which`` (drawn keys are mapped onto its own)."""
    pools = {
        "producer_config": PRODUCER_SETTINGS,
        "consumer_config": CONSUMER_SETTINGS,
        "topic_config": NUMERIC_TOPIC_KEYS,
        "tp_calls": _TP_CALLS,
    }
    pool = pools.get(which)
    if pool is None or key in pool:
        return key
    return pool[sum(map(ord, key)) % len(pool)]


_TP_VALUES = st.one_of(
    _hostile,
    st.tuples(
        st.sampled_from(["t", "u", "", "a/b"]),
        st.integers(-2, 3) | _hostile | st.just(10**5000),
    ),
    st.builds(TopicPartition, st.sampled_from(["t", "u"]), st.integers(0, 2)),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    which=st.sampled_from(_CLIENT_CALLS),
    key=_KEYS,
    v=st.one_of(_hostile, _hostile, _hostile, _anything),
    w=st.one_of(_hostile, _anything),
    tp=_TP_VALUES,
)
def test_fuzzed_client_arguments(
    tmp_path_factory: pytest.TempPathFactory, which: str, key: str, v: Any, w: Any, tp: Any
) -> None:
    """Producer, Consumer, topic config and Log calls with hostile values: each ends in
    success or a documented exception, in time, and a refused call changes no file."""
    key = _key_for(which, key)
    if which in ("tp_calls", "seek", "offsets_for_times", "commit", "delete_records"):
        v = tp if which != "tp_calls" or key != "assign" else v if isinstance(v, tuple) else tp
    top = os.fspath(tmp_path_factory.mktemp("client-args"))
    with streamlog.open(os.path.join(top, "data")) as log:
        log.create_topic("t", 2)
        log.partition("t", 0).append(streamlog.storage.prepare_batch([b"x"] * 3))
        log.describe_topic("t")
        case = _Case(top, log)
        what = f"{which}[{key}]({_r(v)}, {_r(w)})"
        try:
            _in_time(lambda: _client_call(case, which, key, v, w), what)
        except (StreamlogError, TypeError, ValueError) as e:
            _documented(e)
            if case.strict:
                assert isinstance(e, StreamlogError), f"{what}: {e!r:.300}"
            if isinstance(e, (TypeError, ValueError)):  # a refusal: nothing changed
                assert_unchanged(case.before, top)
        finally:
            for cleanup in case.cleanups:
                _in_time(cleanup, f"cleanup of {what}")


# ---------------------------------------------------------------- file fuzz, in process


def test_fuzz_files_in_process(scratch: str) -> None:
    """A few thousand mutated files read every way: only streamlog errors."""
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    n = 3000
    golden = _fuzz.make_golden(os.path.join(scratch, "golden"))
    t0 = time.monotonic()
    res = _fuzz.run_cases(golden, os.path.join(scratch, "work"), n, seed)
    crashes = [f for f in res.findings if "returned" not in f.splitlines()[0]]
    wrong = len(res.findings) - len(crashes)
    print(
        f"\nfile fuzz (seed {seed}): {res.cases} cases, {dict(sorted(res.outcomes.items()))}; "
        f"{time.monotonic() - t0:.1f}s"
    )
    record(
        "T17 file fuzz (in process)",
        cases=res.cases,
        unexpected_exceptions=len(crashes),
        wrong_typed_values=wrong,
    )
    assert not crashes, "\n".join(crashes[:5])


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_fuzz_files_in_process_soak(scratch: str) -> None:
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    n = int(os.environ.get("STREAMLOG_SOAK_FUZZ", "94000"))
    golden = _fuzz.make_golden(os.path.join(scratch, "golden"))
    res = _fuzz.run_cases(golden, os.path.join(scratch, "work"), n, seed)
    crashes = [f for f in res.findings if "returned" not in f.splitlines()[0]]
    wrong = [f for f in res.findings if "returned" in f.splitlines()[0]]
    print(
        f"\nfile fuzz soak (seed {seed}): {res.cases} cases, {dict(sorted(res.outcomes.items()))}"
    )
    for f in wrong[:5]:
        print("  wrong type:", f.splitlines()[0])
    record(
        "T17 file fuzz (in process)",
        cases=res.cases,
        unexpected_exceptions=len(crashes),
        wrong_typed_values=len(wrong),
    )
    assert not crashes, "\n".join(crashes[:5])


# ---------------------------------------------------------------- whole directory, in a child


def _dir_fuzz_child(golden_root: str, work: str, n: int, seed: int) -> dict[str, Any]:
    """Body of the child process: returns outcome counts and findings."""
    import resource
    import shutil

    from tests.reliability._verify import read_partition

    outside: list[str] = []
    allowed = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, ROOT, "/proc", "/dev")]
    watching = [False]
    work_real = os.path.realpath(work)

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if not watching[0] or event not in (
            "open",
            "os.listdir",
            "os.scandir",
            "os.rename",
            "os.remove",
            "os.mkdir",
            "os.rmdir",
            "os.chmod",
        ):
            return
        path = args[0] if args else None
        if isinstance(path, int) or path is None:
            return
        full = os.path.realpath(os.fsdecode(path))
        if full == work_real or full.startswith(work_real + os.sep):
            return
        if any(full.startswith(a + os.sep) for a in allowed):
            return
        outside.append(f"{event} {full}")

    sys.addaudithook(audit)
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))
    rng = random.Random(seed)
    files = []
    for dirpath, _dirs, names in os.walk(golden_root):
        for name in names:
            files.append(os.path.relpath(os.path.join(dirpath, name), golden_root))
    files.sort()
    outcomes: dict[str, int] = {}
    findings: list[str] = []
    for _ in range(n):
        case = rng.randrange(1 << 40)
        crng = random.Random(case)
        root = os.path.join(work, "data")
        if os.path.exists(work):
            shutil.rmtree(work)
        shutil.copytree(golden_root, root)
        if crng.random() < 0.6:
            try:
                os.unlink(os.path.join(root, "meta", "clean-shutdown"))
            except FileNotFoundError:
                pass
        damaged = crng.sample(files, crng.randint(1, 3))
        for rel in damaged:
            path = os.path.join(root, rel)
            if not os.path.exists(path):
                continue
            with open(path, "rb") as fin:
                data = fin.read()
            kind = "log" if rel.endswith(".log") and "topics" in rel else "other"
            _how, data = _fuzz.mutate(kind, data, crng)
            with open(path, "wb") as fout:
                fout.write(data)
        watching[0] = True
        outcome = "ok"
        try:
            with streamlog.open(root) as log:
                for topic in log.topics():
                    for q in sorted(log.partitions_for(topic)):
                        p = log.partition(topic, q)
                        try:
                            if read_partition(p, forged_ok=True).wrong_types:
                                outcome = "wrong-type"  # a forged batch: the known limit
                        except CorruptRecordError:
                            outcome = "corrupt-read"
                with OffsetStore(root, "g") as store:
                    store.all()
            streamlog.check(root)
        except StreamlogError as e:
            outcome = type(e).__name__
        except Exception as e:
            outcome = "FINDING"
            findings.append(f"case {case} damaged {damaged}: {type(e).__name__}: {e}"[:500])
        finally:
            watching[0] = False
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"outcomes": outcomes, "findings": findings, "outside": sorted(set(outside))[:20]}


def _run_dir_fuzz(scratch: str, n: int, seed: int) -> dict[str, Any]:
    golden = os.path.join(scratch, "golden-dir")
    if not os.path.exists(golden):
        _fuzz.make_golden(golden)
    proc = call_in_child(
        "tests.reliability.test_hostile_input",
        "_dir_fuzz_child",
        {"golden_root": golden, "work": os.path.join(scratch, "w"), "n": n, "seed": seed},
        timeout=3600,
    )
    crashed = proc.returncode in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT)
    assert proc.returncode == 0 or crashed, proc.stderr[-3000:]
    if crashed:
        return {"outcomes": {}, "findings": [proc.stderr[-2000:]], "outside": [], "crashes": 1}
    out: dict[str, Any] = last_json(proc.stdout)
    out["crashes"] = 0
    return out


def test_fuzz_data_directory_in_a_child(scratch: str) -> None:
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    t0 = time.monotonic()
    out = _run_dir_fuzz(scratch, 120, seed)
    print(
        f"\ndirectory fuzz (seed {seed}): {out['outcomes']}; crashes {out['crashes']}; "
        f"touched outside: {len(out['outside'])}; {time.monotonic() - t0:.1f}s"
    )
    record(
        "T17 directory fuzz (child)",
        cases=sum(out["outcomes"].values()),
        crashes=out["crashes"],
        unexpected_exceptions=len(out["findings"]),
        outside_accesses=len(out["outside"]),
    )
    assert out["crashes"] == 0, out["findings"]
    assert not out["findings"], "\n".join(out["findings"][:5])
    assert not out["outside"], out["outside"]


@pytest.mark.soak
@pytest.mark.timeout(0)
def test_fuzz_data_directory_soak(scratch: str) -> None:
    seed = int(os.environ.get("STREAMLOG_TEST_SEED", "0")) or random.randrange(1 << 30)
    n = int(os.environ.get("STREAMLOG_SOAK_DIR_FUZZ", "6000"))
    total: dict[str, int] = {}
    crashes = findings = outside = 0
    for part in range(max(1, n // 2000)):
        out = _run_dir_fuzz(scratch, min(2000, n), seed + part)
        for k, v in out["outcomes"].items():
            total[k] = total.get(k, 0) + v
        crashes += out["crashes"]
        findings += len(out["findings"])
        outside += len(out["outside"])
        for f in out["findings"][:3]:
            print("FINDING", f)
    print(f"\ndirectory fuzz soak: {total}; crashes {crashes}; outside {outside}")
    record(
        "T17 directory fuzz (child)",
        cases=sum(total.values()),
        crashes=crashes,
        unexpected_exceptions=findings,
        outside_accesses=outside,
    )
    assert crashes == 0 and findings == 0 and outside == 0


# ---------------------------------------------------------------- forged lengths


def _forged_batch(payload: bytes, *, zstd: bool, payload_size: int, count: int = 1) -> RecordBatch:
    batch = PreparedBatch(payload, payload_size, count, 5, 5, 1 if zstd else 0, -1, -1, -1)
    frame = batch.frame(0)
    return RecordBatch(HEADER.unpack_from(frame, 0), frame[68:], 0)


def _peak(fn: Any) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    err: BaseException | None = None
    try:
        fn()
    except BaseException as e:
        err = e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, err


@pytest.mark.parametrize(
    ("what", "payload", "zstd", "size"),
    [
        (
            "payload_size past the limit",
            zstandard.ZstdCompressor().compress(b"x"),
            True,
            MAX_PAYLOAD + 1,
        ),
        ("payload_size 4 GiB", zstandard.ZstdCompressor().compress(b"x"), True, 0xFFFFFFFF),
        (
            "zstd frame states another size",
            zstandard.ZstdCompressor().compress(b"\0" * 1000),
            True,
            10,
        ),
        ("array32 of 4G elements", b"\x95\xc0\xc0\xc0\xdd\xff\xff\xff\xff\xc0", False, 10),
        ("bin32 of 1 GiB", b"\x95\xc0\xc0\xc0\x91\xc6\x40\x00\x00\x00abc", False, 14),
        ("str32 of 4 GiB", b"\x95\xc0\xc0\xc0\x91\xdb\xff\xff\xff\xffabc", False, 14),
        ("nested 100k deep", b"\x95\xc0\xc0\xc0" + b"\x91" * 100_000 + b"\xc0", False, 0),
    ],
)
def test_forged_lengths_allocate_nothing_big(
    what: str, payload: bytes, zstd: bool, size: int
) -> None:
    """Checksum-valid frames claiming huge sizes: CorruptRecordError, peak memory < 16 MiB."""
    batch = _forged_batch(payload, zstd=zstd, payload_size=size or len(payload))
    peak, err = _peak(lambda: list(batch.records("forged")))
    assert isinstance(err, CorruptRecordError), (what, err)
    assert peak < 16 << 20, f"{what}: peak {peak} bytes"


def test_zstd_expansion_is_bounded_by_payload_size() -> None:
    """A small forged frame that decompresses to ``payload_size`` bytes of msgpack nils:
    the allocation is bounded by the stated size times the object overhead (reported);
    ``MAX_PAYLOAD`` (1 GiB) bounds it absolutely. A batch's stated size cannot be larger
    than what the frame's own zstd header says."""
    n = 1 << 20
    raw = b"\x95\xc0\xc0\xc0\xdd" + n.to_bytes(4, "big") + b"\xc0" * n
    compressed = zstandard.ZstdCompressor(level=19).compress(raw)
    batch = _forged_batch(compressed, zstd=True, payload_size=len(raw), count=n)
    peak, err = _peak(lambda: list(batch.columns("forged")))
    ratio = peak / len(compressed)
    print(
        f"\nzstd bomb: {len(compressed)} B frame -> {len(raw)} B payload -> peak {peak} B "
        f"({ratio:.0f}x the frame, {peak / len(raw):.1f}x the stated payload size)"
    )
    record(
        "T17 forged frames",
        zstd_bomb_frame_bytes=len(compressed),
        zstd_bomb_peak_bytes=peak,
        peak_per_payload_byte=round(peak / len(raw), 1),
    )
    assert err is None or isinstance(err, CorruptRecordError)
    assert peak < 24 * len(raw)


def test_msgpack_limits_are_explicit() -> None:
    """The decoder refuses maps and extension types (explicit limits; see _codec)."""
    import inspect

    from streamlog.storage import _codec

    src = inspect.getsource(_codec.RecordBatch._columns)
    assert "max_map_len=0" in src and "max_ext_len=0" in src
    ext = msgpack.packb([None, None, None, [msgpack.ExtType(1, b"x")], None])
    with pytest.raises(CorruptRecordError):
        list(_forged_batch(ext, zstd=False, payload_size=len(ext)).records("forged"))
