"""Event sourcing with streamlog: a bank account aggregate, two writer processes racing on
one account (optimistic concurrency, retry on conflict), a SQLite balance projection, a
snapshot, and a rebuild of the projection.

    python examples/event_sourcing.py [DATA_DIR]
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
import sys
import tempfile
from typing import Any

import streamlog

DEPOSITS = 50  # per writer


def balance_of(events: list[streamlog.RecordedEvent], start: int = 0) -> int:
    """The aggregate: fold the account's events into its balance."""
    for e in events:
        body = json.loads(e.data)
        start += body["amount"] if body["type"] == "Deposited" else -body["amount"]
    return start


def writer(path: str, name: str, go: Any) -> None:
    """Deposit DEPOSITS times into acc-1: read, decide, append with the revision read."""
    conflicts = 0
    with streamlog.open(path) as log:
        store = log.event_store("bank")
        go.wait()  # both writers start together: they will collide
        for _ in range(DEPOSITS):
            while True:
                revision = store.revision("acc-1")
                event = json.dumps({"type": "Deposited", "amount": 10, "by": name}).encode()
                try:
                    store.append("acc-1", event, expected_revision=revision)
                    break
                except streamlog.WrongExpectedVersionError:
                    conflicts += 1  # the other process got there first: read again, retry
        store.close()
    print(f"{name}: {DEPOSITS} deposits, {conflicts} conflicts retried", flush=True)


def project(conn: sqlite3.Connection, event: streamlog.RecordedEvent) -> None:
    body = json.loads(event.data)
    amount = body["amount"] if body["type"] == "Deposited" else -body["amount"]
    conn.execute("INSERT INTO balances VALUES (?, ?) ON CONFLICT(account) "
                 "DO UPDATE SET balance = balance + excluded.balance", (event.stream, amount))


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-es-")
    with streamlog.open(path) as log:
        store = log.event_store("bank")
        store.append("acc-1", json.dumps({"type": "Opened", "amount": 0}).encode(),
                     expected_revision=streamlog.NO_STREAM)
        ctx = mp.get_context("spawn")
        go = ctx.Event()
        procs = [ctx.Process(target=writer, args=(path, n, go)) for n in ("writer-A", "writer-B")]
        for p in procs:
            p.start()
        go.set()
        for p in procs:
            p.join()
            assert p.exitcode == 0
        events = store.read("acc-1")
        revision = store.revision("acc-1")
        print(f"acc-1: {len(events)} events, revision {revision}, balance {balance_of(events)}")

        # snapshot the aggregate, then load it back and fold only the newer events
        store.save_snapshot("acc-1", revision or 0, json.dumps(balance_of(events)).encode())
        store.append("acc-1", json.dumps({"type": "Withdrawn", "amount": 30}).encode(),
                     expected_revision=revision)
        snap = store.load_snapshot("acc-1")
        assert snap is not None
        newer = store.read("acc-1", snap.revision + 1)
        print(f"from snapshot at revision {snap.revision} + {len(newer)} newer event(s): "
              f"balance {balance_of(newer, json.loads(snap.state))}")

        db = os.path.join(path, "read-model.sqlite")
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INT)")
        conn.commit()
        conn.close()
        with streamlog.SqliteProjection(db, store, project) as projection:
            applied = projection.run()
            row = projection.conn.execute("SELECT balance FROM balances").fetchone()
            print(f"projection applied {applied} events: balance {row[0]}")
            rebuilt = projection.rebuild(reset=lambda c: c.execute("DELETE FROM balances"))
            row = projection.conn.execute("SELECT balance FROM balances").fetchone()
            print(f"projection rebuilt from the beginning ({rebuilt} events): balance {row[0]}")
        store.close()


if __name__ == "__main__":
    main()
