"""``streamlog topics``: kafka-topics.sh (--create, --list, --describe, --alter, --delete)."""

from __future__ import annotations

import argparse
import re
from typing import Any

import streamlog
from streamlog.errors import TopicExistsError, UnknownTopicError

from ._common import EXIT_OK, CliError, open_log, parse_properties, write_line

PREFIX = "Error while executing topic command : "


def add_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "topics",
        parents=[common],
        help="create, list, describe, alter and delete topics (kafka-topics)",
        description="Create, list, describe, alter and delete topics, as kafka-topics.sh does.",
    )
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", action="store_true", help="create a topic")
    action.add_argument("--list", action="store_true", help="list topic names")
    action.add_argument("--describe", action="store_true", help="describe topics")
    action.add_argument("--alter", action="store_true", help="add partitions or change configs")
    action.add_argument("--delete", action="store_true", help="delete a topic and its data")
    p.add_argument(
        "--topic",
        metavar="TOPIC",
        help="the topic; with --list and --describe a regular expression matching whole names",
    )
    p.add_argument("--partitions", type=int, metavar="N", help="partition count (create: 1)")
    p.add_argument(
        "--replication-factor",
        type=int,
        metavar="N",
        help="accepted for compatibility; must be 1 (one data directory, no replicas)",
    )
    p.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="KEY=VALUE",
        help="topic configuration overrides (create, alter), e.g. retention.ms=3600000",
    )
    p.add_argument(
        "--add-config",
        action="extend",
        nargs="+",
        metavar="K=V[,K=V]",
        help="as kafka-configs.sh: comma-separated overrides, a list value in brackets, "
        "e.g. cleanup.policy=[compact,delete],min.compaction.lag.ms=0",
    )
    p.add_argument("--if-not-exists", action="store_true", help="create: no error if it exists")
    p.add_argument("--if-exists", action="store_true", help="alter, delete: no error if missing")
    p.set_defaults(run=run, error_prefix=PREFIX)


def run(args: argparse.Namespace) -> int:
    if args.replication_factor is not None and args.replication_factor != 1:
        raise CliError("replication factor must be 1: a data directory has no replicas")
    if args.partitions is not None and not (args.create or args.alter):
        raise CliError("--partitions is only valid with --create or --alter")
    if args.config and not (args.create or args.alter):
        raise CliError("--config is only valid with --create or --alter")
    if (args.create or args.alter or args.delete) and not args.topic:
        raise CliError("--topic is required with --create, --alter and --delete")
    if args.add_config and not (args.create or args.alter):
        raise CliError("--add-config is only valid with --create or --alter")
    config = parse_properties(args.config, "config")
    config.update(parse_properties(_split_add_config(args.add_config), "config"))
    if args.create:
        return _create(args, config)
    with open_log(args) as log:
        if args.list:
            for name in _matching(log, args.topic):
                write_line(name)
        elif args.describe:
            names = _matching(log, args.topic)
            if args.topic and not names:
                raise CliError(f"Topic '{args.topic}' does not exist as expected")
            for name in names:
                _describe(log, name)
        elif args.alter:
            _alter(log, args, config)
        else:
            try:
                log.delete_topic(args.topic)
            except UnknownTopicError:
                if not args.if_exists:
                    raise CliError(f"Topic '{args.topic}' does not exist as expected") from None
    return EXIT_OK


def _create(args: argparse.Namespace, config: dict[str, str]) -> int:
    partitions = 1 if args.partitions is None else args.partitions
    with open_log(args, create=True) as log:
        try:
            log.create_topic(args.topic, partitions=partitions, config=config or None)
        except TopicExistsError:
            if args.if_not_exists:
                return EXIT_OK
            raise CliError(f"Topic '{args.topic}' already exists.") from None
    write_line(f"Created topic {args.topic}.")
    return EXIT_OK


def _alter(log: streamlog.Log, args: argparse.Namespace, config: dict[str, str]) -> None:
    if args.partitions is None and not config:
        raise CliError("--alter needs --partitions or --config")
    try:
        current = len(log.partitions_for(args.topic))
    except UnknownTopicError:
        if args.if_exists:
            return
        raise CliError(f"Topic '{args.topic}' does not exist as expected") from None
    if config:
        log.alter_topic_config(args.topic, config)
    if args.partitions is not None:
        if args.partitions == current:
            raise CliError(f"Topic already has {current} partition(s).")
        if args.partitions < current:
            raise CliError(
                f"The topic {args.topic} currently has {current} partition(s); "
                f"{args.partitions} would not be an increase."
            )
        log.create_partitions(args.topic, args.partitions)


def _matching(log: streamlog.Log, pattern: str | None) -> list[str]:
    names = log.topics()
    if pattern is None:
        return names
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise CliError(f"invalid topic pattern {pattern!r}: {e}") from None
    return [n for n in names if compiled.fullmatch(n)]


def _describe(log: streamlog.Log, name: str) -> None:
    try:
        d = log.describe_topic(name)
    except UnknownTopicError:  # deleted since it was listed
        return
    defaults = streamlog.TopicConfig().to_dict()
    overrides = ",".join(f"{k}={v}" for k, v in d.config.items() if defaults.get(k) != v)
    write_line(
        f"Topic: {d.name}\tTopicId: {d.topic_id}\tPartitionCount: {len(d.partitions)}"
        f"\tReplicationFactor: 1\tConfigs: {overrides}"
    )
    for p in d.partitions:
        write_line(
            f"\tTopic: {d.name}\tPartition: {p.partition}\tLeader: none"
            f"\tLogStartOffset: {p.log_start_offset}\tLogEndOffset: {p.end_offset}"
            f"\tSize: {p.size_bytes}\tSegments: {p.segments}"
        )


def _split_add_config(items: list[str] | None) -> list[str]:
    """kafka-configs.sh's ``--add-config`` syntax: ``k=v`` pairs separated by commas,
    a value that is itself a list in square brackets (``cleanup.policy=[compact,delete]``,
    passed on without the brackets)."""
    out: list[str] = []
    for item in items or ():
        depth, current = 0, list[str]()
        for ch in item:
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth = max(0, depth - 1)
            elif ch == "," and depth == 0:
                out.append("".join(current))
                current = []
            else:
                current.append(ch)
        out.append("".join(current))
    return [pair for pair in out if pair]
