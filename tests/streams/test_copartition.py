"""Repartitioned keys land where user topics keep the same keys, so an aggregation
joins a table read from a topic with several partitions (a real run)."""

from __future__ import annotations

import time
from typing import Any

import streamlog
from streamlog.streams import StreamsApp


def test_aggregate_joined_with_a_user_table_across_partitions(tmp_path: Any) -> None:
    with streamlog.open(tmp_path / "d") as log:
        for topic in ("purchases", "users", "out"):
            log.create_topic(topic, partitions=3)
        names = {f"u{i}": f"name-{i}" for i in range(30)}
        with log.producer() as p:
            for user, name in names.items():
                p.send("users", name.encode(), key=user.encode())  # murmur2 of the str key
            for i in range(90):
                # keyed by purchase id: the re-key by user must land where "users" has it
                p.send("purchases", f"u{i % 30}".encode(), key=f"p{i}".encode())
        app = StreamsApp(log, application_id="cp", default_key_serde="str",
                         default_value_serde="str", commit_interval_ms=50)
        totals = app.stream("purchases").group_by(lambda k, user: user).count()
        users = app.table("users")
        totals.join(users, lambda n, name: f"{name}:{n}").to_stream().to("out")
        app.start()
        try:
            got: dict[str, str] = {}
            consumer = log.consumer("out", auto_offset_reset="earliest")
            deadline = time.monotonic() + 30
            while len(got) < 30 or any(not v.endswith(":3") for v in got.values()):
                assert time.monotonic() < deadline, (len(got), app.exception)
                for records in consumer.poll(timeout_ms=100).values():
                    got.update((r.key.decode(), r.value.decode()) for r in records)
            consumer.close()
        finally:
            app.close()
        assert got == {u: f"{n}:3" for u, n in names.items()}


def test_foreign_key_join_to_an_aggregated_table_sizes_internal_topics_alike(
    tmp_path: Any,
) -> None:
    """The right table of a foreign-key join comes from an aggregation (its repartition
    topic sized by a 2-partition input) while subscriptions come from a 3-partition
    table: both internal topics are read by one sub-topology, so they get one size."""
    with streamlog.open(tmp_path / "d") as log:
        log.create_topic("orders", partitions=3)
        log.create_topic("prices", partitions=2)
        log.create_topic("out", partitions=1)
        with log.producer() as p:
            for i in range(12):
                p.send("prices", f'{{"product": "p{i}", "price": {i}}}'.encode(),
                       key=f"x{i}".encode())
            for i in range(24):
                p.send("orders", f'{{"product": "p{i % 12}"}}'.encode(), key=f"o{i}".encode())
        app = StreamsApp(log, application_id="fk", default_key_serde="str",
                         default_value_serde="json", commit_interval_ms=50)
        prices = app.stream("prices").group_by(lambda k, v: v["product"]).reduce(
            lambda old, new: new
        )
        orders = app.table("orders")
        orders.join(prices, lambda o: o["product"], lambda o, p: p["price"]).to_stream().to("out")
        app.start()
        try:
            got: dict[str, int] = {}
            consumer = log.consumer("out", auto_offset_reset="earliest")
            deadline = time.monotonic() + 30
            while len(got) < 24:
                assert time.monotonic() < deadline, (sorted(got), app.exception)
                for records in consumer.poll(timeout_ms=100).values():
                    got.update((r.key.decode(), int(r.value)) for r in records)
            consumer.close()
        finally:
            app.close()
        assert got == {f"o{i}": i % 12 for i in range(24)}
        counts = {t: len(log.partitions_for(t)) for t in log.topics() if t.endswith("partition")}
        assert set(counts.values()) == {3}, counts
