"""``streamlog perf produce|consume``: kafka-producer-perf-test.sh and
kafka-consumer-perf-test.sh."""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

import streamlog
from streamlog import TopicPartition

from ._common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    open_log,
    parse_properties,
    property_value,
    write_line,
)

MIB = 1024 * 1024
REPORT_INTERVAL = 5.0  # seconds between progress lines (on a terminal)
MAX_SAMPLES = 500_000  # latencies kept for the percentiles, as Kafka's Stats


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "perf",
        parents=[common],
        help="measure producer or consumer throughput (kafka-*-perf-test)",
        description="Measure throughput and latency, as kafka-producer-perf-test.sh and "
        "kafka-consumer-perf-test.sh do. The topic is created (with --partitions) if missing.",
    )
    which = p.add_subparsers(dest="perf", metavar="{produce,consume}")
    which.required = True
    _add_produce(which, common)
    _add_consume(which, common)


def _add_produce(which: Any, common: argparse.ArgumentParser) -> None:
    prod = which.add_parser(
        "produce",
        parents=[common],
        help="send N records of S bytes and report throughput and latency",
        description="Send --records records of --record-size random A-Z bytes; print Kafka's "
        "summary line. Progress lines every 5 s go to stderr when it is a terminal.",
    )
    prod.add_argument("--topic", required=True)
    prod.add_argument(
        "--records",
        "--num-records",
        dest="records",
        type=int,
        required=True,
        metavar="N",
        help="how many records to send",
    )
    prod.add_argument("--record-size", type=int, required=True, metavar="BYTES")
    prod.add_argument(
        "--throughput",
        type=float,
        default=-1,
        metavar="RECORDS_PER_SEC",
        help="throttle to this rate; -1 (default): as fast as possible",
    )
    prod.add_argument(
        "--acks",
        default="1",
        choices=["0", "1", "-1", "all"],
        help="acknowledgement level (default 1, the producer's default)",
    )
    prod.add_argument("--batch-size", type=int, default=16384, metavar="BYTES")
    prod.add_argument("--linger-ms", type=int, default=0, metavar="MS")
    prod.add_argument("--compression-codec", default="none", choices=["none", "zstd"])
    prod.add_argument(
        "--producer-props",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="other producer settings by Kafka name",
    )
    prod.add_argument(
        "--partitions",
        type=int,
        default=1,
        metavar="N",
        help="partitions of the topic if it is created (default 1)",
    )
    prod.set_defaults(run=run_produce)


def _add_consume(which: Any, common: argparse.ArgumentParser) -> None:
    cons = which.add_parser(
        "consume",
        parents=[common],
        help="read N records and report throughput",
        description="Read --messages records from the beginning (without --group: every "
        "partition, no commits); print Kafka's consumer-perf header and row.",
    )
    cons.add_argument("--topic", required=True)
    cons.add_argument("--messages", type=int, required=True, metavar="N")
    cons.add_argument(
        "--timeout-ms",
        "--timeout",
        dest="timeout_ms",
        type=int,
        default=10000,
        metavar="MS",
        help="stop when no record came for MS ms (default 10000)",
    )
    cons.add_argument("--group", help="join this consumer group (and commit)")
    cons.add_argument(
        "--from-latest", action="store_true", help="start at the end instead of the beginning"
    )
    cons.add_argument("--hide-header", action="store_true", help="print only the row")
    cons.add_argument(
        "--partitions",
        type=int,
        default=1,
        metavar="N",
        help="partitions of the topic if it is created (default 1)",
    )
    cons.set_defaults(run=run_consume)


def _ensure_topic(log: streamlog.Log, topic: str, partitions: int) -> None:
    try:
        log.create_topic(topic, partitions=partitions)
    except streamlog.TopicExistsError:
        pass


class _ProducerStats:
    """Kafka's ``ProducerPerformance.Stats``: totals, a sample of latencies, windows."""

    def __init__(self, records: int, size: int, *, report: bool) -> None:
        self.size = size
        self.start = time.monotonic()
        self.sampling = max(1, records // min(records, MAX_SAMPLES)) if records else 1
        self.latencies: list[float] = []
        self.count = 0
        self.total_latency = 0.0
        self.max_latency = 0.0
        self.errors = 0
        self.first_error: BaseException | None = None
        self.report = report
        self._window_start = self.start
        self._window_count = 0
        self._window_latency = 0.0
        self._window_max = 0.0
        self._lock = threading.Lock()  # callbacks run on the sender thread; `at once` ones here

    def callback(self, iteration: int, sent: float) -> Any:
        def done(future: Future[Any]) -> None:
            now = time.monotonic()
            error = future.exception()
            with self._lock:
                if error is not None:
                    self.errors += 1
                    if self.first_error is None:
                        self.first_error = error
                    return
                self._record(iteration, (now - sent) * 1000, now)

        return done

    def _record(self, iteration: int, latency: float, now: float) -> None:
        self.count += 1
        self.total_latency += latency
        self.max_latency = max(self.max_latency, latency)
        if iteration % self.sampling == 0:
            self.latencies.append(latency)
        if not self.report:
            return
        self._window_count += 1
        self._window_latency += latency
        self._window_max = max(self._window_max, latency)
        if now - self._window_start >= REPORT_INTERVAL:
            elapsed = now - self._window_start
            n = self._window_count
            print(
                f"{n} records sent, {n / elapsed:.1f} records/sec "
                f"({n * self.size / elapsed / MIB:.2f} MB/sec), "
                f"{self._window_latency / n:.1f} ms avg latency, "
                f"{self._window_max:.1f} ms max latency.",
                file=sys.stderr,
                flush=True,
            )
            self._window_start = now
            self._window_count = 0
            self._window_latency = 0.0
            self._window_max = 0.0

    def total(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        count = self.count
        ordered = sorted(self.latencies)

        def pct(p: float) -> int:
            return int(ordered[min(int(p * len(ordered)), len(ordered) - 1)]) if ordered else 0

        return (
            f"{count} records sent, {count / elapsed:f} records/sec "
            f"({count * self.size / elapsed / MIB:.2f} MB/sec), "
            f"{self.total_latency / count if count else 0.0:.2f} ms avg latency, "
            f"{self.max_latency:.2f} ms max latency, {pct(0.5)} ms 50th, {pct(0.95)} ms 95th, "
            f"{pct(0.99)} ms 99th, {pct(0.999)} ms 99.9th."
        )


def _producer_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {
        "acks": "all" if args.acks in ("-1", "all") else int(args.acks),
        "linger_ms": args.linger_ms,
        "batch_size": args.batch_size,
        "compression_type": None if args.compression_codec == "none" else args.compression_codec,
        "client_id": "perf-producer-client",
    }
    for key, value in parse_properties(args.producer_props, "producer property").items():
        config[key.replace(".", "_")] = property_value(value)
    return config


def run_produce(args: argparse.Namespace) -> int:
    if args.records < 1:
        raise CliError("--records must be >= 1")
    if args.record_size < 0:
        raise CliError("--record-size must be >= 0")
    rng = random.Random()
    payload = bytes(rng.randrange(65, 91) for _ in range(args.record_size))  # A-Z, as Kafka
    with open_log(args, create=True) as log:
        _ensure_topic(log, args.topic, args.partitions)
        producer = log.producer(**_producer_config(args))
        stats = _ProducerStats(args.records, args.record_size, report=sys.stderr.isatty())
        rate: float = args.throughput
        try:
            send = producer.send
            topic = args.topic
            clock = time.monotonic
            for i in range(args.records):
                sent = clock()
                send(topic, payload).add_done_callback(stats.callback(i, sent))
                if rate > 0:
                    ahead = (i + 1) / rate - (clock() - stats.start)
                    if ahead > 0.002:
                        time.sleep(ahead)
            producer.flush()
        finally:
            producer.close()
    write_line(stats.total())
    if stats.errors:
        message = " ".join(str(stats.first_error).split())
        print(f"Error: {stats.errors} record(s) failed: {message}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _date(epoch: float) -> str:
    t = datetime.datetime.fromtimestamp(epoch)
    return t.strftime("%Y-%m-%d %H:%M:%S:") + f"{t.microsecond // 1000:03d}"


class _Joined(streamlog.ConsumerRebalanceListener):
    """Measures the time spent joining the group (Kafka's rebalance.time.ms)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.joined: float | None = None

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.joined is None:
            self.joined = time.monotonic()


def run_consume(args: argparse.Namespace) -> int:
    if args.messages < 1:
        raise CliError("--messages must be >= 1")
    reset = "latest" if args.from_latest else "earliest"
    report = sys.stderr.isatty()
    with open_log(args, create=True) as log:
        _ensure_topic(log, args.topic, args.partitions)
        start_wall = time.time()
        start = time.monotonic()
        listener = _Joined(start)
        if args.group is not None:
            consumer = log.consumer(
                group_id=args.group, auto_offset_reset=reset, client_id="perf-consumer-client"
            )
            consumer.subscribe([args.topic], listener=listener)
        else:
            consumer = log.consumer(auto_offset_reset=reset, client_id="perf-consumer-client")
            consumer.subscribe([args.topic])
            listener.joined = start
        count = 0
        nbytes = 0
        last = start
        window = (start, 0, 0)
        timed_out = False
        try:
            while count < args.messages:
                now = time.monotonic()
                if now - last > args.timeout_ms / 1000:
                    timed_out = True
                    break
                wanted = min(5000, args.messages - count)
                batches = consumer.poll(timeout_ms=100, max_records=wanted)
                for records in batches.values():
                    for r in records:
                        nbytes += (len(r.key) if r.key else 0) + (len(r.value) if r.value else 0)
                    count += len(records)
                if batches:
                    last = time.monotonic()
                if report and last - window[0] >= REPORT_INTERVAL:
                    elapsed = last - window[0]
                    print(
                        f"{_date(start_wall + last - start)}, 0, {nbytes / MIB:.4f}, "
                        f"{(nbytes - window[2]) / MIB / elapsed:.4f}, {count}, "
                        f"{(count - window[1]) / elapsed:.4f}",
                        file=sys.stderr,
                        flush=True,
                    )
                    window = (last, count, nbytes)
        finally:
            consumer.close()
    end = last if (timed_out or count) else time.monotonic()
    elapsed = end - start
    joined = listener.joined if listener.joined is not None else end
    rebalance_ms = int((joined - start) * 1000)
    fetch_ms = int(elapsed * 1000) - rebalance_ms
    mb = nbytes / MIB

    def per_sec(amount: float, seconds: float) -> float:
        return amount / seconds if seconds > 0 else 0.0

    if timed_out:
        print(
            "WARNING: Exiting before consuming the expected number of messages: timeout "
            f"({args.timeout_ms} ms) exceeded. You can use the --timeout-ms option to increase "
            "the timeout.",
            file=sys.stderr,
        )
    if not args.hide_header:
        write_line(
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
            "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
        )
    write_line(
        f"{_date(start_wall)}, {_date(start_wall + elapsed)}, {mb:.4f}, "
        f"{per_sec(mb, elapsed):.4f}, {count}, {per_sec(count, elapsed):.4f}, "
        f"{rebalance_ms}, {fetch_ms}, {per_sec(mb, fetch_ms / 1000):.4f}, "
        f"{per_sec(count, fetch_ms / 1000):.4f}"
    )
    return EXIT_OK
