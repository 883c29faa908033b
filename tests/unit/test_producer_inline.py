"""The producer's inline append (step 4 of clients/_producer.py's module doc): a lone
send after a pause appends in the caller's thread; under load, or with records pending,
sends go through the sender thread and batch. The clock the producer reads
(``_producer._time``) is replaced by one the tests move by hand, so no test depends on
how fast this machine runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import streamlog
from streamlog.clients import _producer
from streamlog.errors import KafkaTimeoutError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def pause(self) -> None:
        """Let more than the inline gap pass."""
        self.now += 10 * _producer._INLINE_GAP


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(_producer, "_time", c)
    return c


@pytest.fixture
def log(log: streamlog.Log) -> Iterator[streamlog.Log]:
    log.create_topic("t", 1)
    yield log


class Appends:
    """Records which thread made each append to ``t``-0, and how many records it had;
    ``hold`` makes appends wait until ``release`` is set (``entered`` is set meanwhile)."""

    def __init__(self, log: streamlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[threading.Thread, int]] = []
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        plog = log.partition("t", 0)
        real = plog.append_many

        def append_many(batches: Any, **kwargs: Any) -> Any:
            self.calls.append((threading.current_thread(), sum(b.record_count for b in batches)))
            if self.hold:
                self.entered.set()
                self.release.wait(10)
            return real(batches, **kwargs)

        monkeypatch.setattr(plog, "append_many", append_many)

    def threads(self) -> list[threading.Thread]:
        return [t for t, _ in self.calls]


def values(log: streamlog.Log) -> list[bytes]:
    consumer = log.consumer("t", auto_offset_reset="earliest", consumer_timeout_ms=200)
    try:
        return [r.value for r in consumer]
    finally:
        consumer.close()


def test_a_send_after_a_pause_appends_in_the_callers_thread(
    log: streamlog.Log, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    appends = Appends(log, monkeypatch)
    with log.producer() as producer:
        first = producer.send("t", b"a")
        assert first.done()  # appended before send returned: no flush needed
        clock.pause()
        second = producer.send("t", b"b")
        assert second.done()
        assert first.result(0).offset == 0 and second.result(0).offset == 1
    assert appends.threads() == [threading.current_thread()] * 2
    assert values(log) == [b"a", b"b"]


def test_a_callback_added_after_an_inline_append_runs_at_once_in_this_thread(
    log: streamlog.Log, clock: Clock
) -> None:
    ran: list[threading.Thread] = []
    with log.producer() as producer:
        producer.send("t", b"a").add_done_callback(lambda f: ran.append(threading.current_thread()))
    assert ran == [threading.current_thread()]


def test_sends_closer_than_the_gap_go_to_the_sender_and_batch(
    log: streamlog.Log, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    appends = Appends(log, monkeypatch)
    with log.producer() as producer:
        producer.send("t", b"first")  # inline: nothing was written before
        # the clock stands still: every later send comes within the gap of a write's end
        futures = [producer.send("t", b"%d" % i) for i in range(2000)]
        producer.flush()
        assert [f.result(0).offset for f in futures] == list(range(1, 2001))
    me = threading.current_thread()
    assert appends.threads()[0] is me
    assert all(t is not me for t in appends.threads()[1:])
    assert len(appends.calls) < 2001  # batched: fewer appends than records
    assert sum(n for _, n in appends.calls) == 2001


@pytest.mark.parametrize("config", [{"linger_ms": 5}, {"acks": "all"}], ids=["linger", "acks-all"])
def test_no_inline_append_with_linger_or_acks_all(
    log: streamlog.Log, clock: Clock, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> None:
    appends = Appends(log, monkeypatch)
    with log.producer(**config) as producer:
        assert producer.send("t", b"a").result(10).offset == 0
    assert threading.current_thread() not in appends.threads()


def test_no_inline_append_while_a_record_is_pending(
    log: streamlog.Log, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    appends = Appends(log, monkeypatch)
    with log.producer() as producer:
        producer.send("t", b"x").result(0)  # inline
        appends.hold = True
        a = producer.send("t", b"a")  # within the gap: to the sender, which blocks on it
        assert appends.entered.wait(10)
        clock.pause()
        b = producer.send("t", b"b")  # after a pause, but a record is pending
        assert not b.done()
        appends.release.set()
        producer.flush()
        assert (a.result(0).offset, b.result(0).offset) == (1, 2)
    assert appends.threads()[0] is threading.current_thread()
    assert threading.current_thread() not in appends.threads()[1:]
    assert values(log) == [b"x", b"a", b"b"]


def test_records_sent_during_an_inline_append_wait_for_it(
    log: streamlog.Log, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    appends = Appends(log, monkeypatch)
    appends.hold = True
    with log.producer() as producer:
        first: list[Any] = []
        sender = threading.Thread(target=lambda: first.append(producer.send("t", b"a")))
        sender.start()  # appends inline, held inside the append
        assert appends.entered.wait(10)
        second = producer.send("t", b"b")  # pending: queued for the sender thread
        with pytest.raises(KafkaTimeoutError):
            producer.flush(timeout_ms=100)  # the sender must not write "b" before "a"
        assert len(appends.calls) == 1
        appends.release.set()
        sender.join(10)
        producer.flush()
        assert first[0].result(0).offset == 0
        assert second.result(0).offset == 1
    assert appends.calls[0][0] is sender
    assert values(log) == [b"a", b"b"]


def test_an_interrupted_inline_append_leaves_the_producer_usable(
    log: streamlog.Log, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with log.producer() as producer:
        real = producer._append_and_complete

        def interrupted(batches: Any) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(producer, "_append_and_complete", interrupted)
        with pytest.raises(KeyboardInterrupt):
            producer.send("t", b"lost")
        monkeypatch.setattr(producer, "_append_and_complete", real)
        clock.pause()
        assert producer.send("t", b"a").result(10).offset == 0
        producer.flush(timeout_ms=5000)  # nothing left pending
    assert values(log) == [b"a"]
