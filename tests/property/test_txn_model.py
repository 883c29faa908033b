"""Transactions against a model: a plain producer and two transactional producers
interleave sends, begins, commits, aborts and flushes on a topic of 1-2 partitions;
read_uncommitted and read_committed consumers read back exactly what the model says.

Producers linger "forever", so a record reaches the log only at a flush (or at the
commit/abort of its transaction, which flushes first): the offsets are then known
without waiting on each send, and the model can place every record and marker.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import streamlog
from streamlog import TopicPartition

TOPIC = "t"
LINGER = 600_000  # ms: never written by the linger timer within an example
TXNS = ("a", "b")

PLAIN = "plain"
DATA = "txn"
MARKER = "marker"


@dataclass
class Entry:
    """One offset of the modelled partition."""

    offset: int
    value: bytes | None
    kind: str  # PLAIN, DATA or MARKER
    txn: tuple[str, int] | None = None  # (transactional id, its transaction number)


@dataclass
class TxnModel:
    name: str
    number: int = 0  # of the current (or last) transaction
    open: bool = False
    partitions: set[int] = field(default_factory=set)  # with data in the open transaction
    # records sent, not yet flushed: partition -> values
    pending: dict[int, list[bytes]] = field(default_factory=dict)


class TransactionsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="txnmodel")
        self.log: streamlog.Log | None = None
        self.n = 1
        self.entries: list[list[Entry]] = []
        self.outcome: dict[tuple[str, int], str] = {}  # "committed" / "aborted"
        self.txns = {name: TxnModel(name) for name in TXNS}
        self.plain_pending: dict[int, list[bytes]] = {}
        self.counter = 0
        self.producers: dict[str, streamlog.Producer] = {}

    # ------------------------------------------------------------------ setup
    @initialize(partitions=st.sampled_from([1, 2]), idempotent=st.booleans())
    def setup(self, partitions: int, idempotent: bool) -> None:
        self.n = partitions
        self.entries = [[] for _ in range(partitions)]
        self.log = streamlog.open(self.dir)
        self.log.create_topic(TOPIC, partitions)
        plain_config = {"enable_idempotence": True} if idempotent else {"acks": 1}
        self.producers[PLAIN] = self.log.producer(linger_ms=LINGER, **plain_config)
        for name in TXNS:
            p = self.log.producer(transactional_id=name, linger_ms=LINGER)
            p.init_transactions()
            self.producers[name] = p

    def teardown(self) -> None:
        try:
            if self.log is not None:
                self.check()
                # closing aborts whatever is still open: then everything is stable
                for name in TXNS:
                    self.producers[name].close()
                    self._flushed(name)
                    self._ended(name, commit=False)
                self.producers[PLAIN].close()
                self._flushed(PLAIN)
                self.check()
        finally:
            for p in self.producers.values():
                p.close()
            if self.log is not None:
                self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ model steps
    def _value(self) -> bytes:
        self.counter += 1
        return b"v%d" % self.counter

    def _append(self, partition: int, value: bytes | None, kind: str,
                txn: tuple[str, int] | None) -> None:
        part = self.entries[partition]
        part.append(Entry(len(part), value, kind, txn))

    def _flushed(self, who: str) -> None:
        """``who``'s pending records reached the log, each partition's in send order."""
        if who == PLAIN:
            for partition, values in sorted(self.plain_pending.items()):
                for v in values:
                    self._append(partition, v, PLAIN, None)
            self.plain_pending = {}
            return
        t = self.txns[who]
        for partition, values in sorted(t.pending.items()):
            for v in values:
                self._append(partition, v, DATA, (who, t.number))
            t.partitions.add(partition)
        t.pending = {}

    def _ended(self, name: str, *, commit: bool) -> None:
        t = self.txns[name]
        if not t.open:
            return
        for partition in sorted(t.partitions):
            self._append(partition, None, MARKER, (name, t.number))
        self.outcome[(name, t.number)] = "committed" if commit else "aborted"
        t.open = False
        t.partitions = set()

    # ------------------------------------------------------------------ rules
    @rule(data=st.data())
    def plain_send(self, data: st.DataObject) -> None:
        partition = data.draw(st.integers(0, self.n - 1), label="partition")
        for _ in range(data.draw(st.integers(1, 3), label="records")):
            v = self._value()
            self.producers[PLAIN].send(TOPIC, v, partition=partition)
            self.plain_pending.setdefault(partition, []).append(v)

    def _closed_txns(self) -> list[str]:
        return [name for name in TXNS if not self.txns[name].open]

    def _open_txns(self) -> list[str]:
        return [name for name in TXNS if self.txns[name].open]

    @precondition(lambda self: self._closed_txns())
    @rule(data=st.data())
    def begin(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self._closed_txns()), label="begin")
        t = self.txns[name]
        self.producers[name].begin_transaction()
        t.number += 1
        t.open = True

    @precondition(lambda self: self._open_txns())
    @rule(data=st.data())
    def txn_send(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self._open_txns()), label="send in")
        partition = data.draw(st.integers(0, self.n - 1), label="partition")
        for _ in range(data.draw(st.integers(1, 3), label="records")):
            v = self._value()
            self.producers[name].send(TOPIC, v, partition=partition)
            self.txns[name].pending.setdefault(partition, []).append(v)

    @precondition(lambda self: self._open_txns())
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self._open_txns()), label="commit")
        self.producers[name].commit_transaction()
        self._flushed(name)
        self._ended(name, commit=True)

    @precondition(lambda self: self._open_txns())
    @rule(data=st.data())
    def abort(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self._open_txns()), label="abort")
        self.producers[name].abort_transaction()
        self._flushed(name)
        self._ended(name, commit=False)

    @rule(who=st.sampled_from((PLAIN, *TXNS)))
    def flush(self, who: str) -> None:
        self.producers[who].flush()
        self._flushed(who)

    @precondition(lambda self: self.log is not None)
    @rule()
    def read_back(self) -> None:
        self.check()

    @precondition(lambda self: self.log is not None)
    @invariant()
    def end_offsets_match(self) -> None:
        assert self.log is not None
        for partition in range(self.n):
            assert self.log.partition(TOPIC, partition).end_offset == len(
                self.entries[partition]
            )

    # ------------------------------------------------------------------ checking
    def expected(self, read_committed: bool) -> tuple[dict[int, list[tuple[int, bytes]]],
                                                       dict[int, int]]:
        """Per partition, ``(offset, value)`` a consumer returns, and where it ends."""
        records: dict[int, list[tuple[int, bytes]]] = {}
        ends: dict[int, int] = {}
        for partition, part in enumerate(self.entries):
            end = len(part)
            if read_committed:
                for e in part:
                    if e.kind == DATA and e.txn not in self.outcome:
                        end = e.offset  # the first offset of the earliest open transaction
                        break
            got = []
            for e in part[:end]:
                if e.kind == MARKER:
                    continue
                if read_committed and e.kind == DATA and self.outcome[e.txn] != "committed":  # type: ignore[index]
                    continue
                assert e.value is not None
                got.append((e.offset, e.value))
            records[partition] = got
            ends[partition] = end
        return records, ends

    def read(
        self, isolation: str, **config: int
    ) -> tuple[dict[int, list[tuple[int, bytes]]], dict[int, int]]:
        assert self.log is not None
        tps = [TopicPartition(TOPIC, p) for p in range(self.n)]
        c = self.log.consumer(isolation_level=isolation, auto_offset_reset="earliest", **config)
        try:
            c.assign(tps)
            ends = c.end_offsets(tps)
            got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(self.n)}
            deadline = time.monotonic() + 10
            while any(c.position(tp) < ends[tp] for tp in tps):
                assert time.monotonic() < deadline, "consumer never reached the end"
                for tp, recs in c.poll(timeout_ms=5).items():
                    got[tp.partition].extend((r.offset, r.value) for r in recs)
            # nothing more past the end (offsets of the LSO or the end stay unread)
            for tp, recs in c.poll(timeout_ms=0).items():
                got[tp.partition].extend((r.offset, r.value) for r in recs)
            return got, {tp.partition: c.position(tp) for tp in tps}
        finally:
            c.close()

    def check(self) -> None:
        for isolation in ("read_uncommitted", "read_committed"):
            want, want_ends = self.expected(isolation == "read_committed")
            # whole fetches, and a batch per fetch (an aborted transaction split over reads)
            for config in ({}, {"max_partition_fetch_bytes": 1, "max_poll_records": 2}):
                got, positions = self.read(isolation, **config)
                assert got == want, (isolation, config)
                assert positions == want_ends, (isolation, config)


TransactionsMachine.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_transactions_match_the_model = TransactionsMachine.TestCase
