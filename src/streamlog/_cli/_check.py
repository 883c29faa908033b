"""``streamlog check``: ``streamlog.check(path)`` (read-only), exit 1 when it finds damage."""

from __future__ import annotations

import argparse
from typing import Any

import streamlog

from ._common import EXIT_ERROR, EXIT_OK, data_path, write_line


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "check",
        parents=[common],
        help="check a data directory read-only; exit 1 if anything needs repair",
        description="Check every segment and index of a data directory without changing "
        "anything (safe while other processes use it). Prints the report; exits 0 when "
        "nothing needs repair, 1 when a problem was found.",
    )
    p.add_argument("dir", nargs="?", metavar="DIR", help="the data directory (default: --data)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = streamlog.check(args.dir or data_path(args))
    write_line(str(report))
    return EXIT_OK if report.ok else EXIT_ERROR
