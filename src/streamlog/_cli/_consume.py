"""``streamlog consume``: kafka-console-consumer.sh with Kafka's ``DefaultMessageFormatter``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, BinaryIO

import streamlog
from streamlog import ConsumerRecord, TopicPartition

from ._common import (
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    CliError,
    check_properties,
    encode,
    is_true,
    open_log,
    parse_properties,
    silence_stdout,
)

FORMATTER_PROPERTIES = (
    "print.timestamp",
    "print.key",
    "print.partition",
    "print.offset",
    "print.headers",
    "print.value",
    "key.separator",
    "line.separator",
    "headers.separator",
    "null.literal",
)
_POLL_MS = 100  # longest wait inside one poll: how soon a signal or --timeout-ms is noticed


class MessageFormatter:
    """Kafka's ``DefaultMessageFormatter``: the fields a record prints, in Kafka's order."""

    def __init__(self, props: dict[str, str]) -> None:
        check_properties(props, FORMATTER_PROPERTIES, "formatter property")
        self.print_timestamp = is_true(props.get("print.timestamp"))
        self.print_key = is_true(props.get("print.key"))
        self.print_partition = is_true(props.get("print.partition"))
        self.print_offset = is_true(props.get("print.offset"))
        self.print_headers = is_true(props.get("print.headers"))
        self.print_value = is_true(props.get("print.value", "true"))
        self.key_separator = encode(props.get("key.separator", "\t"))
        self.line_separator = encode(props.get("line.separator", "\n"))
        self.headers_separator = encode(props.get("headers.separator", ","))
        self.null_literal = encode(props.get("null.literal", "null"))

    def _data(self, data: bytes | None) -> bytes:
        return self.null_literal if data is None else data

    def format(self, record: ConsumerRecord, timestamp_type: str) -> bytes:
        out: list[bytes] = []
        rest = [
            self.print_partition,
            self.print_offset,
            self.print_headers,
            self.print_key,
            self.print_value,
        ]

        def separator(i: int) -> None:
            # after a field: the column separator if any later field prints, else the line end
            out.append(self.key_separator if any(rest[i:]) else self.line_separator)

        if self.print_timestamp:
            out.append(f"{timestamp_type}:{record.timestamp}".encode())
            separator(0)
        if self.print_partition:
            out.append(f"Partition:{record.partition}".encode())
            separator(1)
        if self.print_offset:
            out.append(f"Offset:{record.offset}".encode())
            separator(2)
        if self.print_headers:
            if record.headers:
                out.append(
                    self.headers_separator.join(
                        k.encode("utf-8", "surrogateescape") + b":" + self._data(v)
                        for k, v in record.headers
                    )
                )
            else:
                out.append(b"NO_HEADERS")
            separator(3)
        if self.print_key:
            out.append(self._data(record.key))
            separator(4)
        if self.print_value:
            out.append(self._data(record.value))
            out.append(self.line_separator)
        return b"".join(out)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def format_json(record: ConsumerRecord) -> bytes:
    """One JSON object per record; bytes decoded as UTF-8 (invalid bytes become U+FFFD)."""
    obj = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _text(record.key),
        "value": _text(record.value),
        "headers": [[k, _text(v)] for k, v in record.headers],
    }
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n"


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "consume",
        parents=[common],
        help="print records to stdout (kafka-console-consumer)",
        description="Print records to stdout, as kafka-console-consumer.sh does. Formatter "
        "properties: " + ", ".join(FORMATTER_PROPERTIES),
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", help="the topic to read")
    which.add_argument("--include", metavar="REGEX", help="read every topic matching REGEX")
    p.add_argument("--group", help="consumer group: join it, commit its progress")
    p.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the earliest record when there is no committed offset",
    )
    p.add_argument("--partition", type=int, metavar="P", help="read only this partition")
    p.add_argument(
        "--offset",
        metavar="OFFSET",
        help="with --partition: a non-negative offset, 'earliest' or 'latest' (default)",
    )
    p.add_argument("--max-messages", type=int, metavar="N", help="stop after N records")
    p.add_argument(
        "--timeout-ms", type=int, metavar="MS", help="stop when no record came for MS milliseconds"
    )
    p.add_argument(
        "--property",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="formatter properties, e.g. print.key=true print.offset=true",
    )
    p.add_argument(
        "--isolation-level",
        choices=["read_uncommitted", "read_committed"],
        default="read_uncommitted",
        help="read_committed: only committed transactional records, up to the last stable "
        "offset; read_uncommitted (default): every record",
    )
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text (Kafka's formatter, default) or json (one object per line)",
    )
    p.set_defaults(run=run, parser=p)


def _check_args(args: argparse.Namespace) -> int | str | None:
    """Kafka's option rules; returns the parsed --offset."""
    parser: argparse.ArgumentParser = args.parser
    offset: int | str | None = None
    if args.partition is not None:
        if args.group is not None:
            parser.error("Options group and partition cannot be specified together.")
        if args.include is not None:
            parser.error("--partition needs --topic")
        if args.partition < 0:
            parser.error("--partition must be >= 0")
    if args.offset is not None:
        if args.partition is None:
            parser.error("The partition is required when offset is specified.")
        if args.from_beginning:
            parser.error("Options from-beginning and offset cannot be specified together.")
        if args.offset in ("earliest", "latest"):
            offset = args.offset
        else:
            try:
                offset = int(args.offset)
            except ValueError:
                offset = -1
            if offset < 0:
                parser.error(
                    f"The provided offset value '{args.offset}' is incorrect. Valid values are "
                    "'earliest', 'latest', or a non-negative long."
                )
    if args.max_messages is not None and args.max_messages < 1:
        parser.error("--max-messages must be >= 1")
    if args.timeout_ms is not None and args.timeout_ms < 0:
        parser.error("--timeout-ms must be >= 0")
    return offset


class _State:
    """Records printed so far, and the exit code a signal asked for (SIGINT/SIGTERM set
    it; the poll loop looks at it at least every ``_POLL_MS``)."""

    def __init__(self) -> None:
        self.count = 0
        self.code: int | None = None


@contextmanager
def _stop_on_signals(stop: _State) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.code = EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _make_consumer(
    log: streamlog.Log, args: argparse.Namespace, offset: int | str | None
) -> streamlog.Consumer:
    reset = "earliest" if args.from_beginning else "latest"
    isolation: str = args.isolation_level
    if args.topic is not None:
        partitions = log.partitions_for(args.topic)  # an unknown topic fails here
        if args.partition is not None and args.partition not in partitions:
            raise CliError(
                f"topic '{args.topic}' has {len(partitions)} partition(s); "
                f"no partition {args.partition}"
            )
    if args.group is not None:
        consumer = log.consumer(
            group_id=args.group,
            auto_offset_reset=reset,
            enable_auto_commit=True,
            client_id="console-consumer",
            isolation_level=isolation,
        )
    else:
        consumer = log.consumer(
            auto_offset_reset=reset, client_id="console-consumer", isolation_level=isolation
        )
    if args.partition is not None:
        tp = TopicPartition(args.topic, args.partition)
        consumer.assign([tp])
        if isinstance(offset, int):
            consumer.seek(tp, offset)
        elif offset == "earliest" or (offset is None and args.from_beginning):
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek_to_end(tp)
    elif args.topic is not None:
        consumer.subscribe([args.topic])
    else:
        consumer.subscribe(pattern=args.include)
    return consumer


def run(args: argparse.Namespace) -> int:
    offset = _check_args(args)
    props = parse_properties(args.property)
    formatter = MessageFormatter(props)
    out: BinaryIO = sys.stdout.buffer
    state = _State()
    timestamp_types: dict[str, str] = {}
    with open_log(args) as log, _stop_on_signals(state):

        def timestamp_type(topic: str) -> str:
            found = timestamp_types.get(topic)
            if found is None:
                try:
                    kind = log.describe_topic(topic).config.get("message.timestamp.type")
                except streamlog.UnknownTopicError:
                    kind = None
                found = timestamp_types[topic] = str(kind or "CreateTime")
            return found

        consumer = _make_consumer(log, args, offset)
        try:
            _loop(consumer, args, formatter, out, state, timestamp_type)
        finally:
            try:
                consumer.close()  # with a group: commits the positions, leaves the group
            finally:
                print(f"Processed a total of {state.count} messages", file=sys.stderr, flush=True)
    return state.code if state.code is not None else EXIT_OK


def _loop(
    consumer: streamlog.Consumer,
    args: argparse.Namespace,
    formatter: MessageFormatter,
    out: BinaryIO,
    state: _State,
    timestamp_type: Callable[[str], str],
) -> None:
    limit: int | None = args.max_messages
    idle_ms: int | None = args.timeout_ms
    last = time.monotonic()
    as_json = args.format == "json"
    while state.code is None and (limit is None or state.count < limit):
        wait = _POLL_MS
        if idle_ms is not None:
            left = idle_ms / 1000 - (time.monotonic() - last)
            if left <= 0:
                break
            wait = max(0, min(wait, int(left * 1000) + 1))
        # at most the records still wanted, so positions (and commits) never pass
        # a record that was not printed
        wanted = 500 if limit is None else min(500, limit - state.count)
        batches = consumer.poll(timeout_ms=wait, max_records=wanted)
        if not batches:
            continue
        chunks: list[bytes] = []
        for records in batches.values():
            for record in records:
                if as_json:
                    chunks.append(format_json(record))
                else:
                    chunks.append(formatter.format(record, timestamp_type(record.topic)))
        try:
            out.write(b"".join(chunks))
            out.flush()
        except BrokenPipeError:
            print("Unable to write to standard out, closing consumer.", file=sys.stderr)
            silence_stdout()
            state.count += len(chunks)
            return
        state.count += len(chunks)
        last = time.monotonic()
