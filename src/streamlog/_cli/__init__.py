"""The ``streamlog`` command line: Kafka's tools over a data directory (docs/cli.md).

A thin layer over the public API (``dump`` alone reads segment files through the
storage codec). Importing ``streamlog`` never imports this package.

Exit codes: 0 success, 1 an error (one line on stderr; ``--debug`` adds the
traceback) or damage found by ``check``/``dump``, 2 a usage error (argparse),
130/143 a consumer stopped by SIGINT/SIGTERM (as Kafka's JVM tools end).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from streamlog.errors import StreamlogError, UnknownGroupError

from . import _check, _consume, _dump, _groups, _perf, _produce, _topics, _transactions
from ._common import (
    DATA_ENV,
    DEFAULT_DATA,
    EXIT_ERROR,
    EXIT_SIGINT,
    SERVER_FLAGS,
    CliError,
    silence_stdout,
)

__all__ = ["build_parser", "main"]


def _common_options(*, top: bool) -> argparse.ArgumentParser:
    """``--data`` and ``--debug``, accepted before or after the verb."""
    parent = argparse.ArgumentParser(add_help=False)
    # Defaults only on the top parser, so a sub-parser does not overwrite a value
    # given before the verb.
    parent.add_argument(
        "--data",
        metavar="DIR",
        default=None if top else argparse.SUPPRESS,
        help=f"data directory (default: ${DATA_ENV}, else ./{DEFAULT_DATA})",
    )
    parent.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    # Kafka's tools take the cluster's address; commands copied from Kafka's docs keep
    # working: accepted and ignored (a note on stderr), or a data directory given as
    # streamlog:///path (see _common.data_path)
    for flag in SERVER_FLAGS:
        parent.add_argument(
            flag,
            metavar="HOST:PORT",
            dest=flag.lstrip("-").replace("-", "_"),
            default=None if top else argparse.SUPPRESS,
            help=argparse.SUPPRESS if flag != "--bootstrap-server" else
            "accepted for Kafka's commands and ignored (there is no server); "
            "streamlog:///PATH names the data directory",
        )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamlog",
        description="Kafka's command line tools over a streamlog data directory.",
        parents=[_common_options(top=True)],
    )
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True
    common = _common_options(top=False)
    for module in (_topics, _produce, _consume, _groups, _transactions, _dump, _check, _perf):
        module.add_parser(verbs, common)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def _message(args: argparse.Namespace, error: BaseException) -> str:
    prefix: str = getattr(args, "error_prefix", "Error: ")
    if isinstance(error, UnknownGroupError) and getattr(args, "group", None):
        return f"{prefix}Consumer group '{args.group}' does not exist."
    return prefix + _one_line(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        code: int = args.run(args)
    except CliError as e:
        if debug:
            traceback.print_exc()
        print(_message(args, e), file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except BrokenPipeError:
        # the reader of stdout went away (``| head``): stop quietly, as ``cat`` does
        silence_stdout()
        return EXIT_ERROR
    except (StreamlogError, ValueError, TypeError, OSError) as e:
        if debug:
            traceback.print_exc()
        print(_message(args, e), file=sys.stderr)
        return EXIT_ERROR
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
        except ValueError:  # stdout closed
            pass
    return code
