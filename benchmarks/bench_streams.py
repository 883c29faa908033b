"""Stream-processing benchmarks (``streamlog.streams``): word count through a real
application under both guarantees, against the same counting through the
``TestDriver`` and a plain-Python loop (the floor); a windowed count; and the
restore of a large key-value store from a checkpoint + changelog tail against a
full changelog replay.

Run from the repository root (the full run takes about 4 minutes on 2 cores and
needs about 1 GB of disk under /tmp; everything it creates goes under a temporary
directory that is removed at the end, also on error)::

    .venv/bin/python benchmarks/bench_streams.py            # full run
    .venv/bin/python benchmarks/bench_streams.py --quick    # about a minute

Options: ``--lines N`` (input lines of the word counts, default 200,000, 30,000
with ``--quick``), ``--driver-lines N`` (lines piped through the TestDriver,
default 50,000, 10,000 with ``--quick``), ``--keys N`` (keys of the restored
store, default 1,000,000, 200,000 with ``--quick``), ``--rounds N`` (default 3, 1
with ``--quick``; medians are reported), ``--only
wordcount,twoproc,driver,floor,windowed,restore`` (a subset), ``--dir DIR`` (parent of the
temporary directory, default /tmp), ``--out FILE`` (default
``benchmarks/results/streams-<date>.txt``, ``-quick`` added with ``--quick``),
``--profile alo|eos`` (instead of the benchmark: one at-least-once or exactly-once
word count with pyinstrument in the stream thread; the profile is printed).

Input: lines of 10 words drawn from a vocabulary of 10,000 words with Zipf
weights (1/rank), keyed by line number, in a topic ``text`` of 2 partitions;
record timestamps 1 ms apart. Written once, before the rounds.

1. Word count (Kafka Streams' example)::

       app.stream("text").flat_map_values(str.split).group_by(lambda k, w: w)
          .count(materialized_as="counts").to_stream().to(out, value_serde="int")

   Every word goes through the repartition topic, updates the store (and its
   changelog) and writes one output record (no caching, as the API promises).
   A real run: ``StreamsApp.start()`` over the data directory with the default
   configuration (1 stream thread; commit every 30 s at-least-once, 100 ms
   exactly-once), a fresh application id per run; timed from ``start()`` until
   every record is processed and ``close()`` returned (its last commit: the
   output flushed and the input offsets committed, under exactly-once the
   transactions committed). Words/s = words / that time. The store's counts are
   checked against the truth. Two processes: two instances of the at-least-once
   application (same application id: 2 tasks each), each in its own process
   (started and ready before the clock starts), committing every 200 ms; timed
   until the group's committed offsets reach the end of ``text`` and of the
   repartition topic (the union of their stores is checked against the truth):
   how the application scales past one core. TestDriver: the same topology, one ``pipe`` per
   line, outputs read every 1,000 lines. Floor: a consumer reads ``text`` and a
   ``collections.Counter`` counts the words of each line (no output, no state
   kept anywhere else).
2. Windowed count: the same with ``.windowed_by(TimeWindows.of(1000, grace_ms=60_000))`` (tumbling
   1 s windows of record time: 1,000 lines per window), at-least-once, real run.
3. Restore: a KTable (``app.table``) of N keys in one partition, filled by a real
   run and closed (which writes its checkpoint); then N/10 updates processed by
   a second run whose checkpoint is then put back to the first one, so that the
   changelog has N/10 records after the checkpoint. Timed: ``start()`` of a new
   instance until its task is created (restore done), and the restore alone (the
   ``restore_seconds`` metric): from the checkpoint + the N/10 tail, and with the
   checkpoint deleted (the whole changelog: N + N/10 records).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import gc
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from _common import Table, source_state, status, write_report

import streamlog
from streamlog.streams import StreamsApp, TestDriver, TimeWindows

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS_PER_LINE = 10
VOCABULARY = 10_000
TIMEOUT_S = 600.0
BASE_TS = 1_000_000_000_000  # the first line's timestamp (ms); then 1 ms apart
TARGETS = {
    "alo_words_s": 200_000,
    "eos_ratio": 0.5,  # exactly-once / at-least-once words/s
    "restore_s": 2.0,  # 1e6 keys from a checkpoint (+ tail)
}


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = ",.0f") -> str:
    return f"{min(xs):{fmt}}-{max(xs):{fmt}}"


def settle() -> None:
    gc.collect()
    os.sync()


# --------------------------------------------------------------------------- input
def make_lines(n: int, seed: int) -> tuple[list[bytes], collections.Counter[str]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(VOCABULARY)]
    weights = [1 / (i + 1) for i in range(VOCABULARY)]
    cum: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    words = rng.choices(vocab, cum_weights=cum, k=n * WORDS_PER_LINE)
    lines = [
        " ".join(words[i : i + WORDS_PER_LINE]).encode()
        for i in range(0, len(words), WORDS_PER_LINE)
    ]
    return lines, collections.Counter(words)


def produce_lines(log: streamlog.Log, lines: list[bytes], base_ts: int) -> None:
    with log.producer(linger_ms=20, batch_size=256 * 1024) as p:
        for i, line in enumerate(lines):
            p.send("text", line, key=str(i).encode(), timestamp_ms=base_ts + i)


# --------------------------------------------------------------------------- word count
def word_count_app(
    log: streamlog.Log, app_id: str, guarantee: str, out: str, **config: Any
) -> StreamsApp:
    app = StreamsApp(
        log,
        application_id=app_id,
        processing_guarantee=guarantee,
        default_key_serde="str",
        default_value_serde="str",
        **config,
    )
    (
        app.stream("text")
        .flat_map_values(str.split)
        .group_by(lambda k, w: w)
        .count(materialized_as="counts")
        .to_stream()
        .to(out, value_serde="int")
    )
    return app


def windowed_app(log: streamlog.Log, app_id: str, out: str) -> StreamsApp:
    app = StreamsApp(
        log, application_id=app_id, default_key_serde="str", default_value_serde="str"
    )
    (
        app.stream("text")
        .flat_map_values(str.split)
        .group_by(lambda k, w: w)
        .windowed_by(TimeWindows.of(1000, grace_ms=60_000))
        .count(materialized_as="counts")
        .to_stream(lambda wk, v: f"{wk.key}@{wk.start}")
        .to(out, value_serde="int")
    )
    return app


def run_to_completion(
    app: StreamsApp, expected: int, snapshot: Any = None
) -> tuple[float, dict[str, Any], Any]:
    """Start ``app``, wait until it processed ``expected`` records, take ``snapshot(app)``,
    close it. (seconds from start to the end of close, metrics, snapshot)."""
    t0 = time.perf_counter()
    app.start()
    deadline = t0 + TIMEOUT_S
    while True:
        m = app.metrics()
        if m["processed"] >= expected:
            break
        if app.state == "ERROR":
            raise RuntimeError("the application died") from app.exception
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out: {m['processed']} of {expected} records processed")
        time.sleep(0.01)
    snap = snapshot(app) if snapshot is not None else None
    app.close()
    elapsed = time.perf_counter() - t0
    if app.exception is not None:
        raise RuntimeError("the application died") from app.exception
    return elapsed, m, snap


def bench_word_count(
    log: streamlog.Log, guarantee: str, run: int, lines: int, truth: collections.Counter[str]
) -> tuple[float, dict[str, Any]]:
    app_id = f"wc-{guarantee}-{run}"
    out = f"counts-{app_id}"
    log.create_topic(out, 2)
    words = sum(truth.values())
    app = word_count_app(log, app_id, guarantee, out)
    elapsed, m, counts = run_to_completion(
        app, lines + words, lambda a: dict(a.store("counts").items())
    )
    if counts != dict(truth):
        raise AssertionError(f"{guarantee}: the counts differ from the truth")
    return elapsed, m


def bench_windowed(
    log: streamlog.Log, run: int, lines: list[bytes], words: int, base_ts: int
) -> tuple[float, dict[str, Any]]:
    app_id = f"win-{run}"
    out = f"counts-{app_id}"
    log.create_topic(out, 2)
    app = windowed_app(log, app_id, out)

    def windows(a: StreamsApp) -> list[tuple[str, int, int]]:
        # what the store still holds (the newest windows: retention is size + grace)
        found: list[tuple[str, int, int]] = a.store("counts").fetch_all(0, 2**62)
        return found

    elapsed, m, found = run_to_completion(app, len(lines) + words, windows)
    starts = {start for _k, start, _v in found}
    truth: collections.Counter[tuple[str, int]] = collections.Counter()
    for i, line in enumerate(lines):
        start = (base_ts + i) // 1000 * 1000
        if start in starts:
            truth.update((w, start) for w in line.decode().split())
    if not found or {(k, start): v for k, start, v in found} != dict(truth):
        raise AssertionError("the windowed counts differ from the truth")
    return elapsed, m


def bench_two_processes(
    log: streamlog.Log, run: int, truth: collections.Counter[str]
) -> float:
    """Two instances of the at-least-once word count in two processes (one application
    id: they share the 4 tasks). Timed from the go to both until the group's committed
    offsets reach the end of ``text`` and of the repartition topic."""
    app_id = f"wc-2p-{run}"
    out = f"counts-{app_id}"
    log.create_topic(out, 2)
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", log.path, app_id, out],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "READY":
                raise RuntimeError("a worker failed to start")
        topics = word_count_app(log, app_id, "at_least_once", out).build().source_topics
        t0 = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("GO\n")
            p.stdin.flush()
        deadline = t0 + TIMEOUT_S
        while not caught_up(log, app_id, topics):
            if time.perf_counter() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the two-process run failed or timed out")
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        counts: dict[str, int] = {}
        for p in procs:
            out_text, _ = p.communicate("STOP\n", timeout=TIMEOUT_S)
            counts.update(json.loads(out_text.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    if counts != dict(truth):
        raise AssertionError("two processes: the counts differ from the truth")
    return elapsed


def caught_up(log: streamlog.Log, app_id: str, topics: list[str]) -> bool:
    try:
        desc = log.describe_group(app_id)
    except streamlog.StreamlogError:
        return False
    for topic in topics:
        for p in log.partitions_for(topic):
            end = log.partition(topic, p).end_offset
            lag = desc.offsets.get(streamlog.TopicPartition(topic, p))
            if end and (lag is None or lag.committed != end):
                return False
    return True


def worker(path: str, app_id: str, out: str) -> int:
    """A process of ``bench_two_processes``: READY, wait for GO, run until STOP, print
    the counts of its store as JSON."""
    with streamlog.open(path, cleaner=False) as log:
        app = word_count_app(log, app_id, "at_least_once", out, commit_interval_ms=200)
        print("READY", flush=True)
        if sys.stdin.readline().strip() != "GO":
            return 1
        app.start()
        sys.stdin.readline()  # STOP
        counts = dict(app.store("counts").items())
        app.close()
    print(json.dumps(counts), flush=True)
    return 0


def bench_floor(log: streamlog.Log, lines: int, truth: collections.Counter[str]) -> float:
    t0 = time.perf_counter()
    consumer = log.consumer("text", auto_offset_reset="earliest", max_poll_records=1000)
    counts: collections.Counter[str] = collections.Counter()
    seen = 0
    while seen < lines:
        for records in consumer.poll(timeout_ms=1000).values():
            for r in records:
                counts.update(r.value.decode().split())  # type: ignore[union-attr]
            seen += len(records)
    elapsed = time.perf_counter() - t0
    consumer.close()
    if counts != truth:
        raise AssertionError("the floor's counts differ from the truth")
    return elapsed


def bench_driver(path: str, lines: list[bytes]) -> float:
    app = StreamsApp(
        path, application_id="wc-driver", default_key_serde="str", default_value_serde="str"
    )
    (
        app.stream("text")
        .flat_map_values(str.split)
        .group_by(lambda k, w: w)
        .count(materialized_as="counts")
        .to_stream()
        .to("counts", value_serde="int")
    )
    text = [line.decode() for line in lines]
    with TestDriver(app) as driver:
        tin = driver.input_topic("text")
        tout = driver.output_topic("counts")
        t0 = time.perf_counter()
        for i, line in enumerate(text):
            tin.pipe(str(i), line, 1000 + i)
            if i % 1000 == 999:
                tout.read_records()
        tout.read_records()
        return time.perf_counter() - t0


# --------------------------------------------------------------------------- restore
class RestoreSetup:
    """A KTable of ``keys`` keys (1 partition) with a saved checkpoint and a tail of
    ``keys // 10`` changelog records after it."""

    def __init__(self, log: streamlog.Log, keys: int) -> None:
        self.log = log
        self.keys = keys
        self.tail = keys // 10
        log.create_topic("kv", 1)
        self._produce(keys, b"a")
        elapsed, _m, _ = run_to_completion(self._app(), keys)
        self.fill_s = elapsed
        paths = glob.glob(os.path.join(log.path, "streams", "kv", "*", "*.checkpoint"))
        assert len(paths) == 1, paths
        self.checkpoint = paths[0]
        self.checkpoint_bytes = os.path.getsize(self.checkpoint)
        self.saved = self.checkpoint + ".saved"
        shutil.copy(self.checkpoint, self.saved)
        self._produce(self.tail, b"b")
        run_to_completion(self._app(), self.tail)

    def _produce(self, n: int, tag: bytes) -> None:
        with self.log.producer(linger_ms=20, batch_size=1 << 20) as p:
            for i in range(n):
                p.send("kv", b"value-%d-%s" % (i, tag), key=b"key-%d" % i)

    def _app(self) -> StreamsApp:
        app = StreamsApp(
            self.log,
            application_id="kv",
            default_key_serde="str",
            default_value_serde="str",
            commit_interval_ms=1000,
        )
        app.table("kv", materialized_as="kv-store")
        return app

    def restore(self, *, checkpoint: bool) -> tuple[float, dict[str, Any]]:
        if checkpoint:
            shutil.copy(self.saved, self.checkpoint)
        elif os.path.exists(self.checkpoint):
            os.remove(self.checkpoint)
        settle()
        app = self._app()
        t0 = time.perf_counter()
        app.start()
        while not app.metrics()["tasks"]:
            if app.state == "ERROR":
                raise RuntimeError("the application died") from app.exception
            time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        m = app.metrics()
        size = len(app.store("kv-store"))
        app.close()
        if size != self.keys:
            raise AssertionError(f"restored {size} keys of {self.keys}")
        return elapsed, m


# --------------------------------------------------------------------------- profile
def profile(which: str, base: str, lines_n: int) -> None:
    from pyinstrument import Profiler  # (optional: only for --profile)

    from streamlog.streams import _runtime

    guarantee = "at_least_once" if which == "alo" else "exactly_once"
    lines, truth = make_lines(lines_n, 1)
    profiles: list[Profiler] = []
    original = _runtime.StreamThread.run

    def run(self: Any) -> None:
        p = Profiler(interval=0.001)
        p.start()
        try:
            original(self)
        finally:
            p.stop()
            profiles.append(p)

    _runtime.StreamThread.run = run  # type: ignore[method-assign]
    with streamlog.open(os.path.join(base, "data"), cleaner=False) as log:
        log.create_topic("text", 2)
        produce_lines(log, lines, BASE_TS)
        elapsed, _m = bench_word_count(log, guarantee, 0, lines_n, truth)
    print(f"{guarantee}: {sum(truth.values()) / elapsed:,.0f} words/s under the profiler")
    print(profiles[0].output_text(unicode=True, color=False))


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small fast run (about a minute)")
    ap.add_argument("--lines", type=int, help="input lines of the word counts")
    ap.add_argument("--driver-lines", type=int, help="lines piped through the TestDriver")
    ap.add_argument("--keys", type=int, help="keys of the restored store")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, 1 with --quick)")
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(PARTS))
    ap.add_argument("--dir", default="/tmp", help="parent of the temporary directory")
    ap.add_argument("--out", help="result file")
    ap.add_argument("--profile", choices=["alo", "eos"], help="profile one word count")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    q = args.quick
    n_lines = args.lines or (30_000 if q else 200_000)
    n_driver = args.driver_lines or (10_000 if q else 50_000)
    n_keys = args.keys or (200_000 if q else 1_000_000)
    rounds = args.rounds or (1 if q else 3)
    only = set(args.only.split(",")) if args.only else set(PARTS)
    if only - set(PARTS):
        ap.error(f"--only takes {','.join(PARTS)}")
    today = datetime.date.today().isoformat()
    out_path = args.out or os.path.join(
        HERE, "results", f"streams-{today}{'-quick' if q else ''}.txt"
    )
    base = tempfile.mkdtemp(prefix="streamlog-bench-streams-", dir=args.dir)
    try:
        if args.profile:
            profile(args.profile, base, n_lines)
            return 0
        return run_all(args, base, out_path, n_lines, n_driver, n_keys, rounds, only)
    finally:
        shutil.rmtree(base, ignore_errors=True)


PARTS = ["wordcount", "twoproc", "driver", "floor", "windowed", "restore"]


def run_all(
    args: argparse.Namespace,
    base: str,
    out_path: str,
    n_lines: int,
    n_driver: int,
    n_keys: int,
    rounds: int,
    only: set[str],
) -> int:
    source_at_start = source_state(os.path.dirname(HERE))
    load_at_start = os.getloadavg()
    t_start = time.perf_counter()

    def note(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    res: dict[str, list[float]] = collections.defaultdict(list)
    detail: dict[str, str] = {}
    lines, truth = make_lines(n_lines, 1)
    words = sum(truth.values())
    with streamlog.open(os.path.join(base, "data"), cleaner=False) as log:
        log.create_topic("text", 2)
        produce_lines(log, lines, BASE_TS)
        note(f"{n_lines:,} lines, {words:,} words written")
        for r in range(rounds):
            order = ["at_least_once", "exactly_once"]
            if r % 2:
                order.reverse()
            if "wordcount" in only:
                for guarantee in order:
                    settle()
                    elapsed, m = bench_word_count(log, guarantee, r, n_lines, truth)
                    res[guarantee].append(words / elapsed)
                    res[f"{guarantee}-commits"].append(m["commits"])
                    note(f"round {r + 1} {guarantee}: {words / elapsed:,.0f} words/s")
            if "twoproc" in only:
                settle()
                elapsed = bench_two_processes(log, r, truth)
                res["twoproc"].append(words / elapsed)
                note(f"round {r + 1} two processes: {words / elapsed:,.0f} words/s")
            if "floor" in only:
                settle()
                elapsed = bench_floor(log, n_lines, truth)
                res["floor"].append(words / elapsed)
                note(f"round {r + 1} floor: {words / elapsed:,.0f} words/s")
            if "driver" in only:
                settle()
                elapsed = bench_driver(os.path.join(base, "driver"), lines[:n_driver])
                res["driver"].append(n_driver * WORDS_PER_LINE / elapsed)
                note(f"round {r + 1} TestDriver: {res['driver'][-1]:,.0f} words/s")
            if "windowed" in only:
                settle()
                elapsed, m = bench_windowed(log, r, lines, words, BASE_TS)
                res["windowed"].append(words / elapsed)
                note(f"round {r + 1} windowed: {words / elapsed:,.0f} words/s")
        if "restore" in only:
            settle()
            note(f"filling a store of {n_keys:,} keys")
            setup = RestoreSetup(log, n_keys)
            detail["fill"] = (
                f"filled by a real run at {n_keys / setup.fill_s:,.0f} keys/s; checkpoint "
                f"{setup.checkpoint_bytes / 1e6:.0f} MB"
            )
            for r in range(rounds):
                for checkpoint in (True, False) if r % 2 == 0 else (False, True):
                    elapsed, m = setup.restore(checkpoint=checkpoint)
                    key = "restore-ckpt" if checkpoint else "restore-full"
                    res[key].append(m["restore_seconds"])
                    res[key + "-wall"].append(elapsed)
                    res[key + "-replayed"].append(m["restored"])
                    note(f"round {r + 1} {key}: {m['restore_seconds']:.2f} s")

    table = Table()
    plural = "s" if rounds > 1 else ""
    if only & {"wordcount", "twoproc", "floor", "driver"}:
        table.section(
            f"1. Word count: {n_lines:,} lines of {WORDS_PER_LINE} words ({words:,} words, "
            f"{VOCABULARY:,}-word Zipf vocabulary), words/s, median of {rounds} round{plural}"
        )
    alo = median(res["at_least_once"]) if res["at_least_once"] else None
    if "wordcount" in only:
        assert alo is not None
        table.row(
            "1  real run, at_least_once",
            f"{alo:,.0f}/s",
            spread(res["at_least_once"]),
            f"{words / alo:.2f} s start..close (commit interval 30 s: one commit, on close)",
            f">= {TARGETS['alo_words_s']:,}/s",
            status(alo >= TARGETS["alo_words_s"]),
        )
        eos = median(res["exactly_once"])
        table.row(
            "1  real run, exactly_once",
            f"{eos:,.0f}/s",
            spread(res["exactly_once"]),
            f"{words / eos:.2f} s; {median(res['exactly_once-commits']):.0f} commits before close "
            "(100 ms interval; 4 tasks: a transaction each per commit)",
        )
        ratios = [e / a for e, a in zip(res["exactly_once"], res["at_least_once"])]
        table.row(
            "1  ratio exactly_once / at_least_once",
            f"{median(ratios):.2f}x",
            spread(ratios, ".2f"),
            "per round",
            f">= {TARGETS['eos_ratio']}x",
            status(median(ratios) >= TARGETS["eos_ratio"]),
        )
    if "twoproc" in only:
        two = median(res["twoproc"])
        table.row(
            "1  2 instances in 2 processes, at_least_once",
            f"{two:,.0f}/s",
            spread(res["twoproc"]),
            f"{words / two:.2f} s until the committed offsets reach the ends (commit every "
            "200 ms); 2 tasks each" + (f"; {two / alo:.2f}x one instance" if alo else ""),
        )
    if "driver" in only:
        drv = median(res["driver"])
        table.row(
            "1  TestDriver (no threads, no I/O)",
            f"{drv:,.0f}/s",
            spread(res["driver"]),
            f"{n_driver:,} lines piped"
            + (f"; {drv / alo:.2f}x the at-least-once run" if alo else ""),
        )
    if "floor" in only:
        floor = median(res["floor"])
        table.row(
            "1  floor: consumer + Counter, one loop",
            f"{floor:,.0f}/s",
            spread(res["floor"]),
            "no repartition, no output, no state"
            + (f"; the at-least-once run is {alo / floor:.2f}x of it" if alo else ""),
        )
    if "windowed" in only:
        table.section("2. Windowed count (tumbling 1 s windows of record time), real run")
        win = median(res["windowed"])
        table.row(
            "2  real run, at_least_once",
            f"{win:,.0f}/s",
            spread(res["windowed"]),
            f"{n_lines // 1000:,} windows; {words / win:.2f} s"
            + (f"; {win / alo:.2f}x the plain word count" if alo else ""),
        )
    if "restore" in only:
        tail = n_keys // 10
        table.section(
            f"3. Restore of a key-value store of {n_keys:,} keys (1 partition; seconds in the "
            f"restore, median of {rounds} round{plural}); {detail['fill']}"
        )
        ck = median(res["restore-ckpt"])
        table.row(
            f"3  checkpoint + {tail:,}-record tail",
            f"{ck:.2f} s",
            spread(res["restore-ckpt"], ".2f"),
            f"start() to running {median(res['restore-ckpt-wall']):.2f} s; "
            f"{median(res['restore-ckpt-replayed']):,.0f} records replayed",
            f"<= {TARGETS['restore_s']} s" if n_keys >= 1_000_000 else "report",
            status(ck <= TARGETS["restore_s"]) if n_keys >= 1_000_000 else "",
        )
        full = median(res["restore-full"])
        table.row(
            "3  whole changelog (no checkpoint)",
            f"{full:.2f} s",
            spread(res["restore-full"], ".2f"),
            f"start() to running {median(res['restore-full-wall']):.2f} s; "
            f"{median(res['restore-full-replayed']):,.0f} records replayed; "
            f"{full / ck:.1f}x the checkpoint's time",
        )
    write_report(
        "streamlog stream-processing benchmark",
        table,
        source_at_start,
        t_start,
        load_at_start,
        out_path,
    )
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
