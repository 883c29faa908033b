"""``streamlog produce``: kafka-console-producer.sh, with Kafka's ``LineMessageReader``.

A line is ``h1:v1,h2:v2<headers.delimiter>key<key.separator>value``: headers
only with ``parse.headers=true``, the key only with ``parse.key=true``; each
part ends at the first occurrence of its delimiter, so later ones stay in the
value. ``headers.separator`` is a regular expression (Kafka compiles it too).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import threading
from concurrent.futures import Future
from typing import Any, NamedTuple

from ._common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    check_properties,
    is_true,
    open_log,
    parse_properties,
    property_value,
)

READER_PROPERTIES = (
    "parse.key",
    "key.separator",
    "parse.headers",
    "headers.delimiter",
    "headers.separator",
    "headers.key.separator",
    "ignore.error",
    "null.marker",
)


class LineFormatError(ValueError):
    """A line (or the reader's configuration) breaks the format; Kafka's KafkaException."""


class ParsedRecord(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _bytes(text: str) -> bytes:
    # stdin is decoded with surrogateescape: bytes that are not UTF-8 come back unchanged
    return text.encode("utf-8", "surrogateescape")


def _header_key(text: str) -> str:
    # header keys are stored as str: make undecodable input bytes valid text
    return _bytes(text).decode("utf-8", "replace")


class LineMessageReader:
    """Kafka's ``LineMessageReader``: turns one line of text into a record."""

    def __init__(self, props: dict[str, str]) -> None:
        check_properties(props, READER_PROPERTIES, "producer property")
        self.parse_key = is_true(props.get("parse.key"))
        self.key_separator = props.get("key.separator", "\t")
        self.parse_headers = is_true(props.get("parse.headers"))
        self.headers_delimiter = props.get("headers.delimiter", "\t")
        self.headers_separator = props.get("headers.separator", ",")
        self.headers_key_separator = props.get("headers.key.separator", ":")
        self.ignore_error = is_true(props.get("ignore.error"))
        self.null_marker: str | None = props.get("null.marker")
        try:
            self._headers_pattern = re.compile(self.headers_separator)
        except re.error as e:
            raise LineFormatError(f"invalid headers.separator: {e}") from None
        if self.headers_delimiter == self.headers_separator:
            raise LineFormatError("headers.delimiter and headers.separator may not be equal")
        if self.headers_delimiter == self.headers_key_separator:
            raise LineFormatError("headers.delimiter and headers.key.separator may not be equal")
        if self.headers_separator == self.headers_key_separator:
            raise LineFormatError("headers.separator and headers.key.separator may not be equal")
        marker = self.null_marker
        if marker is not None:
            for name, value in (
                ("key.separator", self.key_separator),
                ("headers.separator", self.headers_separator),
                ("headers.delimiter", self.headers_delimiter),
                ("headers.key.separator", self.headers_key_separator),
            ):
                if value == marker:
                    raise LineFormatError(f"null.marker and {name} may not be equal")

    def _part(
        self, enabled: bool, line: str, start: int, mark: str, name: str, number: int
    ) -> str | None:
        if not enabled:
            return None
        index = line.find(mark, start)
        if index == -1:
            if self.ignore_error:
                return None
            raise LineFormatError(f"No {name} found on line number {number}: '{line}'")
        return line[start:index]

    def parse(self, line: str, number: int) -> ParsedRecord:
        """The record of ``line`` (without its line ending); ``number`` counts from 1."""
        headers = self._part(
            self.parse_headers, line, 0, self.headers_delimiter, "headers delimiter", number
        )
        header_end = 0 if headers is None else len(headers) + len(self.headers_delimiter)
        key = self._part(
            self.parse_key, line, header_end, self.key_separator, "key separator", number
        )
        key_end = 0 if key is None else len(key) + len(self.key_separator)
        value = line[header_end + key_end :]
        marker = self.null_marker
        parsed_headers: list[tuple[str, bytes | None]] = []
        if headers is not None and headers != marker:
            parsed_headers = self._split_headers(headers, number)
        return ParsedRecord(
            None if key is None or key == marker else _bytes(key),
            None if value == marker else _bytes(value),
            parsed_headers,
        )

    def _split_headers(self, headers: str, number: int) -> list[tuple[str, bytes | None]]:
        pairs = self._headers_pattern.split(headers)
        if len(pairs) > 1:  # as Java's Pattern.split: trailing empty strings are dropped
            while pairs and pairs[-1] == "":
                pairs.pop()
        out: list[tuple[str, bytes | None]] = []
        for pair in pairs:
            i = pair.find(self.headers_key_separator)
            if i == -1:
                if self.ignore_error:
                    out.append((_header_key(pair), None))
                    continue
                raise LineFormatError(
                    f"No header key separator found in pair '{pair}' on line number {number}"
                )
            key = pair[:i]
            if key == self.null_marker:
                raise LineFormatError(
                    f"Header keys should not be equal to the null marker '{self.null_marker}' "
                    "as they can't be null"
                )
            value = pair[i + len(self.headers_key_separator) :]
            out.append((_header_key(key), None if value == self.null_marker else _bytes(value)))
        return out


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "produce",
        parents=[common],
        help="send lines of stdin as records (kafka-console-producer)",
        description="Read lines from stdin and send each as a record, as "
        "kafka-console-producer.sh does. Reader properties: " + ", ".join(READER_PROPERTIES),
    )
    p.add_argument("--topic", required=True, help="the topic to write to (must exist)")
    p.add_argument(
        "--property",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="line reader properties, e.g. parse.key=true key.separator=:",
    )
    p.add_argument(
        "--acks",
        "--request-required-acks",
        dest="acks",
        default="-1",
        choices=["0", "1", "-1", "all"],
        help="acknowledgement level (default -1 = all: fsync, as the console producer)",
    )
    p.add_argument(
        "--linger-ms",
        "--timeout",
        dest="linger_ms",
        type=int,
        default=1000,
        metavar="MS",
        help="how long a batch waits for more records (default 1000, as the console producer)",
    )
    p.add_argument("--batch-size", type=int, default=16384, metavar="BYTES", help="default 16384")
    p.add_argument(
        "--compression-codec",
        nargs="?",
        const="zstd",
        default="none",
        choices=["none", "zstd"],
        help="none (default) or zstd (also when the flag has no value)",
    )
    p.add_argument("--sync", action="store_true", help="wait for each record to be acknowledged")
    p.add_argument(
        "--producer-property",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="other producer settings by Kafka name, e.g. partitioner=round_robin",
    )
    p.set_defaults(run=run)


def _producer_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {
        "acks": "all" if args.acks in ("-1", "all") else int(args.acks),
        "linger_ms": args.linger_ms,
        "batch_size": args.batch_size,
        "compression_type": None if args.compression_codec == "none" else args.compression_codec,
        "client_id": "console-producer",
    }
    for key, value in parse_properties(args.producer_property, "producer property").items():
        name = key.replace(".", "_")
        config[name] = property_value(value)
    return config


class _Failures:
    """Counts failed sends and reports each as Kafka's ErrorLoggingCallback does."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.count = 0
        self._lock = threading.Lock()

    def watch(self, future: Future[Any], record: ParsedRecord) -> None:
        def done(f: Future[Any]) -> None:
            error = f.exception()
            if error is None:
                return
            with self._lock:
                self.count += 1
            key = "null" if record.key is None else f"{len(record.key)} bytes"
            value = "null" if record.value is None else f"{len(record.value)} bytes"
            message = " ".join(str(error).split())
            print(
                f"Error when sending message to topic {self.topic} with key: {key}, "
                f"value: {value} with error: {message}",
                file=sys.stderr,
                flush=True,
            )

        future.add_done_callback(done)


def run(args: argparse.Namespace) -> int:
    props = parse_properties(args.property)
    try:
        reader = LineMessageReader(props)
    except LineFormatError as e:
        raise CliError(str(e)) from None
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")
    prompt = sys.stdin.isatty() and sys.stdout.isatty()
    failures = _Failures(args.topic)
    code = EXIT_OK
    with open_log(args) as log:
        log.partitions_for(args.topic)  # an unknown topic fails here, before reading
        producer = log.producer(**_producer_config(args))
        try:
            number = 0
            while True:
                if prompt:
                    sys.stdout.write(">")
                    sys.stdout.flush()
                line = stdin.readline()
                if not line:
                    break
                number += 1
                if line.endswith("\n"):
                    line = line[:-1]
                try:
                    record = reader.parse(line, number)
                except LineFormatError as e:
                    print(f"Error: {e}", file=sys.stderr)
                    code = EXIT_ERROR
                    break
                future = producer.send(
                    args.topic, record.value, record.key, headers=record.headers or None
                )
                failures.watch(future, record)
                if args.sync:
                    try:
                        future.result()
                    except Exception:  # noqa: S110 - reported by the callback
                        pass
        finally:
            producer.close()
    if failures.count:
        code = EXIT_ERROR
    return code
