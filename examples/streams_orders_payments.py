"""Orders joined with payments (a windowed stream-stream join) and customers (a table).

Run: python examples/streams_orders_payments.py [DATA_DIR]   (default: a fresh temporary directory)

Orders and payments are two streams keyed by order id. A payment belongs to
an order when it arrives within 10 minutes after it (JoinWindows, 1 minute of
grace for late records). The left join reports each order as paid, or, once
its window has closed with no payment, as unpaid: unmatched results are only
emitted after the window and grace have passed (Kafka 3.1+ semantics), never
eagerly. Each result is then enriched from the customers table (a
stream-table join: the table as it is when the result is processed).
Runs exactly-once.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import streamlog
from streamlog.streams import JoinWindows, StreamsApp

MIN = 60_000
CUSTOMERS = {"c1": "Ada", "c2": "Grace"}
ORDERS = [("o1", "c1", 25, 0), ("o2", "c2", 40, 1), ("o3", "c1", 15, 2), ("o4", "c2", 99, 30)]
PAYMENTS = [("o1", 25, 3), ("o3", 15, 14), ("o2", 40, 9)]  # o3 pays too late (12 min)
LAST = ("o5", "c1", 1, 60)  # pushes stream time past every window: unpaid orders are reported


def main(path: str) -> None:
    with streamlog.open(path) as log:
        # stream time is kept per task (per partition): with one partition each, the last
        # order closes every window; with more, each partition's windows close on its own
        log.create_topic("orders", partitions=1)
        log.create_topic("payments", partitions=1)
        log.create_topic("customers", partitions=2)
        log.create_topic("order-status", partitions=2)
        with log.producer(acks="all") as producer:
            for cid, name in CUSTOMERS.items():
                producer.send("customers", name.encode(), key=cid.encode())
            events = [(m, "orders", oid, {"customer": c, "amount": a}) for oid, c, a, m in ORDERS]
            events += [(m, "payments", oid, {"amount": a}) for oid, a, m in PAYMENTS]
            for minute, topic, key, value in sorted(events, key=lambda e: e[0]):
                producer.send(topic, json.dumps(value).encode(), key=key.encode(),
                              timestamp_ms=minute * MIN)

        app = StreamsApp(log, application_id="order-status", default_key_serde="str",
                         default_value_serde="json", processing_guarantee="exactly_once")
        orders = app.stream("orders")
        payments = app.stream("payments")
        customers = app.table("customers", value_serde="str")
        status = orders.left_join(
            payments,
            lambda order, payment: {**order, "paid": payment is not None},
            JoinWindows.of(10 * MIN, grace_ms=MIN).before(0),
        )
        (
            status.select_key(lambda order_id, s: s["customer"])
            .join(customers, lambda s, name: {**s, "name": name})
            .to("order-status")
        )
        app.start()

        with log.producer() as producer:  # a later order moves stream time on
            oid, c, a, m = LAST
            producer.send("orders", json.dumps({"customer": c, "amount": a}).encode(),
                          key=oid.encode(), timestamp_ms=m * MIN)
        consumer = log.consumer("order-status", auto_offset_reset="earliest",
                                isolation_level="read_committed")
        got: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while len(got) < 4 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(json.loads(r.value) for r in records)
        consumer.close()
        app.close()
    for s in sorted(got, key=lambda s: (s["name"], s["amount"])):  # type: ignore[arg-type, return-value]
        print(f"{s['name']}: order of {s['amount']} {'paid' if s['paid'] else 'UNPAID'}")
    paid = sorted(s["amount"] for s in got if s["paid"])  # type: ignore[type-var]
    unpaid = sorted(s["amount"] for s in got if not s["paid"])  # type: ignore[type-var]
    assert paid == [25, 40] and unpaid == [15, 99], got
    print("o5 is still inside its window: not reported yet")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-orders-"))
