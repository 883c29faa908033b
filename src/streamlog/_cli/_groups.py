"""``streamlog groups``: kafka-consumer-groups.sh (--list, --describe, --reset-offsets,
--delete)."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

import streamlog
from streamlog import TopicPartition

from ._common import EXIT_OK, CliError, open_log, write_line

PREFIX = "Error: "
DRY_RUN_WARNING = (
    "WARN: No action will be performed as the --execute option is missing. "
    "Add --dry-run to do a dry run without this warning, or --execute to reset the offsets."
)


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "groups",
        parents=[common],
        help="list, describe, reset and delete consumer groups (kafka-consumer-groups)",
        description="List, describe, reset and delete consumer groups, as "
        "kafka-consumer-groups.sh does.",
    )
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="list group ids")
    action.add_argument("--describe", action="store_true", help="describe a group")
    action.add_argument("--reset-offsets", action="store_true", help="reset committed offsets")
    action.add_argument("--delete", action="store_true", help="delete a group and its offsets")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--group", metavar="GROUP", help="the consumer group")
    scope.add_argument("--all-groups", action="store_true", help="describe: every group")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--members", action="store_true", help="describe: the members")
    view.add_argument("--state", action="store_true", help="describe: the group's state")
    view.add_argument(
        "--offsets", action="store_true", help="describe: offsets and lag (the default)"
    )
    p.add_argument("--verbose", action="store_true", help="with --members: the assignment")
    topics = p.add_mutually_exclusive_group()
    topics.add_argument(
        "--topic",
        metavar="TOPIC[:P,P]",
        action="append",
        help="reset-offsets: a topic, optionally with partitions (orders:0,2); repeatable",
    )
    topics.add_argument(
        "--all-topics", action="store_true", help="reset-offsets: every topic with offsets"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--to-earliest", action="store_true", help="the log start offset")
    mode.add_argument("--to-latest", action="store_true", help="the log end offset")
    mode.add_argument("--to-offset", type=int, metavar="N", help="offset N (clamped)")
    mode.add_argument(
        "--to-datetime",
        metavar="ISO",
        help="the first record at or after YYYY-MM-DDTHH:mm:SS[.sss][zone] (UTC without zone)",
    )
    mode.add_argument(
        "--shift-by", type=int, metavar="N", help="the committed offset plus N (may be < 0)"
    )
    run_mode = p.add_mutually_exclusive_group()
    run_mode.add_argument("--dry-run", action="store_true", help="show the new offsets only")
    run_mode.add_argument("--execute", action="store_true", help="write the new offsets")
    p.set_defaults(run=run, error_prefix=PREFIX, parser=p)


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if not args.list and not args.group and not (args.describe and args.all_groups):
        parser.error("--group is required (or --all-groups with --describe)")
    if args.all_groups and not args.describe:
        parser.error("--all-groups is only valid with --describe")
    with open_log(args) as log:
        if args.list:
            for group in log.list_groups():
                write_line(group)
        elif args.describe:
            groups = log.list_groups() if args.all_groups else [args.group]
            for group in groups:
                _describe(log, args, group)
        elif args.reset_offsets:
            _reset(log, args)
        else:
            try:
                log.delete_group(args.group)
            except streamlog.GroupNotEmptyError:
                raise CliError(
                    f"Deletion of consumer group '{args.group}' failed: the group is not "
                    "empty (stop its consumers first)"
                ) from None
            write_line(f"Deletion of requested consumer groups ('{args.group}') was successful.")
    return EXIT_OK


def _width(values: list[str], minimum: int = 15) -> int:
    return max([minimum, *map(len, values)])


def _print_table(rows: list[list[str]], widths: list[int]) -> None:
    # Kafka's %-Ns columns, the last one unpadded; a blank line first, as Kafka prints
    write_line()
    for row in rows:
        cells = [f"{cell:<{w}}" for cell, w in zip(row[:-1], widths, strict=False)]
        write_line(" ".join([*cells, row[-1]]))


def _describe(log: streamlog.Log, args: argparse.Namespace, group: str) -> None:
    d = log.describe_group(group)
    if d.state == "Dead":
        raise CliError(f"Consumer group '{group}' does not exist.")
    if d.state == "Empty" and not d.members:
        print(f"Consumer group '{group}' has no active members.", file=sys.stderr)
    elif d.state in ("PreparingRebalance", "CompletingRebalance"):
        print(f"Warning: Consumer group '{group}' is rebalancing.", file=sys.stderr)
    if args.state:
        header = ["GROUP", "ASSIGNMENT-STRATEGY", "STATE", "GENERATION", "#MEMBERS"]
        row = [group, d.protocol or "-", d.state, str(d.generation), str(len(d.members))]
        _print_table([header, row], [_width([group]), 20, 20, 11])
    elif args.members:
        _describe_members(d, verbose=args.verbose)
    else:
        _describe_offsets(d)


def _assignment(tps: frozenset[TopicPartition]) -> str:
    if not tps:
        return "-"
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(tps):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return ",".join(f"{t}({','.join(map(str, ps))})" for t, ps in by_topic.items())


def _describe_members(d: streamlog.GroupDescription, *, verbose: bool) -> None:
    instances = any(m.group_instance_id for m in d.members)
    header = ["GROUP", "CONSUMER-ID"]
    if instances:
        header.append("GROUP-INSTANCE-ID")
    header += ["CLIENT-ID", "#PARTITIONS"]
    if verbose:
        header.append("ASSIGNMENT")
    rows = [header]
    for m in sorted(d.members, key=lambda m: m.member_id):
        row = [d.group_id, m.member_id]
        if instances:
            row.append(m.group_instance_id or "-")
        row += [m.client_id, str(len(m.assignment))]
        if verbose:
            row.append(_assignment(m.assignment))
        rows.append(row)
    widths = [_width([r[i] for r in rows]) for i in range(len(header) - 1)]
    if not verbose:
        widths[-1] = 15
    _print_table(rows, widths)


def _describe_offsets(d: streamlog.GroupDescription) -> None:
    owner: dict[TopicPartition, streamlog.MemberDescription] = {}
    for m in d.members:
        for tp in m.assignment:
            owner[tp] = m
    header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "CLIENT-ID",
    ]
    rows = [header]
    for tp in sorted(d.offsets):
        lag = d.offsets[tp]
        member = owner.get(tp)
        rows.append(
            [
                d.group_id,
                tp.topic,
                str(tp.partition),
                "-" if lag.committed is None else str(lag.committed),
                str(lag.end_offset),
                "-" if lag.lag is None else str(lag.lag),
                "-" if member is None else member.member_id,
                "-" if member is None else member.client_id,
            ]
        )
    for m in sorted(d.members, key=lambda m: m.member_id):
        if not m.assignment:  # a member without partitions still shows, as in Kafka
            rows.append([d.group_id, "-", "-", "-", "-", "-", m.member_id, m.client_id])
    widths = [
        _width([r[0] for r in rows]),
        _width([r[1] for r in rows]),
        10,
        15,
        15,
        15,
        _width([r[6] for r in rows]),
    ]
    _print_table(rows, widths)


def _parse_topic(spec: str) -> tuple[str, list[int] | None]:
    topic, sep, parts = spec.partition(":")
    if not sep:
        return topic, None
    try:
        return topic, [int(p) for p in parts.split(",") if p.strip()]
    except ValueError:
        raise CliError(f"invalid --topic {spec!r}: expected TOPIC or TOPIC:P,P,...") from None


def _parse_datetime(text: str) -> datetime.datetime:
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        return datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise CliError(
            f"invalid --to-datetime {text!r}: expected YYYY-MM-DDTHH:mm:SS.sss, "
            "optionally with a zone (+01:00 or Z)"
        ) from None


def _reset(log: streamlog.Log, args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.parser
    kwargs: dict[str, Any] = {}
    if args.to_earliest:
        kwargs["to"] = "earliest"
    elif args.to_latest:
        kwargs["to"] = "latest"
    elif args.to_offset is not None:
        if args.to_offset < 0:
            parser.error("--to-offset must be >= 0")
        kwargs["to"] = args.to_offset
    elif args.to_datetime is not None:
        kwargs["to_datetime"] = _parse_datetime(args.to_datetime)
    elif args.shift_by is not None:
        kwargs["shift_by"] = args.shift_by
    else:
        parser.error(
            "--reset-offsets needs one of --to-earliest, --to-latest, --to-offset, "
            "--to-datetime, --shift-by"
        )
    if args.all_topics:
        committed = log.describe_group(args.group).offsets
        specs: list[tuple[str, list[int] | None]] = [
            (t, None) for t in sorted({tp.topic for tp in committed})
        ]
    elif args.topic:
        specs = [_parse_topic(t) for t in args.topic]
    else:
        parser.error("--reset-offsets needs --topic or --all-topics")
    if not args.dry_run and not args.execute:
        print(DRY_RUN_WARNING, file=sys.stderr)
    dry_run = not args.execute
    new: dict[TopicPartition, int] = {}
    for topic, partitions in specs:
        new.update(
            log.reset_offsets(args.group, topic, partitions=partitions, dry_run=dry_run, **kwargs)
        )
    rows = [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]]
    for tp in sorted(new):
        rows.append([args.group, tp.topic, str(tp.partition), str(new[tp])])
    _print_table(rows, [30, 30, 10])
