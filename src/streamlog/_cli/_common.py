"""What every verb shares: opening the data directory, ``k=v`` properties, errors, output."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping

import streamlog

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "CliError",
    "check_properties",
    "data_path",
    "encode",
    "is_true",
    "open_log",
    "parse_properties",
    "silence_stdout",
    "write_line",
]

EXIT_OK = 0
EXIT_ERROR = 1
# Kafka's tools run in a JVM, which ends with 128 + the signal number after its shutdown
# hooks ran (java.lang.Terminator); the console consumer prints its summary in such a hook.
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

DEFAULT_DATA = "streamlog-data"
DATA_ENV = "STREAMLOG_DATA"
FORMAT_FILE = "streamlog.json"  # docs/format.md: marks a data directory


class CliError(Exception):
    """A user error: printed as one line on stderr, the command exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# Kafka's tools' cluster address flags (the last two from before Kafka 2.x/3.x)
SERVER_FLAGS = ("--bootstrap-server", "--broker-list", "--zookeeper")
SERVER_URL = "streamlog://"


def data_path(args: argparse.Namespace) -> str:
    """The data directory: ``--data``, else a ``--bootstrap-server streamlog:///path``,
    else ``$STREAMLOG_DATA``, else ``./streamlog-data``. Any other server address is
    ignored, with one note on stderr."""
    given: str | None = getattr(args, "data", None)
    servers = [
        v for f in SERVER_FLAGS if (v := getattr(args, f.lstrip("-").replace("-", "_"), None))
    ]
    for server in servers:
        if server.startswith(SERVER_URL):
            if not given:
                given = server[len(SERVER_URL):] or None
        elif not getattr(args, "server_noted", False):
            args.server_noted = True
            print(
                f"note: {server} ignored: streamlog has no server; the data directory is "
                f"--data, {DATA_ENV} or --bootstrap-server streamlog:///PATH",
                file=sys.stderr,
            )
    if given:
        return given
    return os.environ.get(DATA_ENV) or DEFAULT_DATA


def open_log(args: argparse.Namespace, *, create: bool = False) -> streamlog.Log:
    """Open the data directory. Only commands that create something may create it."""
    path = data_path(args)
    if not create:
        if not os.path.isdir(path):
            raise CliError(f"no data directory at {path} (give --data DIR or set {DATA_ENV})")
        if not os.path.exists(os.path.join(path, FORMAT_FILE)):
            raise CliError(f"{path} is not a streamlog data directory (no {FORMAT_FILE})")
    return streamlog.open(path)


def property_value(value: str) -> object:
    """A ``key=value`` client property as the client expects it: an int when it is one
    (no more than 20 digits: a longer one stays text, and the config check refuses it
    with a ConfigError naming the key, instead of Python's digit-limit error)."""
    digits = value[1:] if value.startswith("-") else value
    return int(value) if digits.isdigit() and len(digits) <= 20 else value


def parse_properties(items: Iterable[str] | None, what: str = "property") -> dict[str, str]:
    """``["k=v", ...]`` to a dict, split at the first ``=`` (as Kafka's tools do)."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"invalid {what} {item!r}: expected key=value")
        out[key] = value
    return out


def check_properties(props: Mapping[str, str], known: Iterable[str], what: str) -> None:
    unknown = sorted(set(props) - set(known))
    if unknown:
        raise CliError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def is_true(value: str | None) -> bool:
    """Kafka's reading of a boolean property: ``true`` in any case, anything else is false."""
    return value is not None and value.strip().lower() == "true"


def encode(text: str) -> bytes:
    """A separator or literal given on the command line, as the bytes to write."""
    return text.encode("utf-8", "surrogateescape")


def write_line(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def silence_stdout() -> None:
    """Point stdout at /dev/null (its reader went away) so the final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
