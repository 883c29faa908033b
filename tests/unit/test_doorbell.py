"""The doorbell (coordination/_doorbell.py) in one process: the sleeper count, the
writer's no-system-call path, in-process wake-ups through the bell, dead bells, and
the fallback to polling when no bell can be made."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import streamlog
from streamlog import TopicPartition, _layout
from streamlog._fs import fs
from streamlog.coordination._doorbell import Doorbell
from streamlog.storage import prepare_batch

TP = TopicPartition("t", 0)


@pytest.fixture
def log(log: streamlog.Log) -> Iterator[streamlog.Log]:
    log.create_topic("t", 1)
    yield log


def _doorbell(log: streamlog.Log) -> Doorbell:
    doorbell = log._manager.signal.doorbell
    assert doorbell is not None
    return doorbell


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls: dict[str, int] = {}
    for name in ("send_datagram", "listdir", "flock", "bind_socket", "unlink"):
        orig = getattr(fs, name)

        def counted(*a: Any, _n: str = name, _o: Any = orig, **kw: Any) -> Any:
            # flock: only the board's (an append takes its partition's lock)
            if _n != "flock" or any(str(x).endswith("board") for x in a):
                calls[_n] = calls.get(_n, 0) + 1
            return _o(*a, **kw)

        monkeypatch.setattr(fs, name, counted)
    return calls


def test_the_board_and_bells_are_named_by_layout(log: streamlog.Log) -> None:
    doorbell = _doorbell(log)
    assert os.path.isfile(_layout.doorbell_board(log.path))
    bell = doorbell.arm()
    assert bell is not None
    try:
        assert os.path.dirname(bell.path) == _layout.doorbells_dir(log.path)
        assert _layout.bell_pid(bell.name) == os.getpid()
        assert doorbell.sleepers() == 1
    finally:
        doorbell.disarm(bell)
    assert doorbell.sleepers() == 0
    again = doorbell.arm()  # the bell is reused, not bound again
    assert again is bell
    doorbell.disarm(again)


def test_an_append_makes_no_system_call_when_nobody_sleeps(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = log.partition("t", 0)
    part.append(prepare_batch([b"warm"]))
    assert _doorbell(log).sleepers() == 0
    calls = _count_calls(monkeypatch)
    for _ in range(50):
        part.append(prepare_batch([b"x"]))
    assert calls == {}


def test_a_sleeper_of_another_process_is_rung(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bell named for another pid stands for another process's sleeper."""
    doorbell = _doorbell(log)
    path = _layout.bell_path(log.path, _layout.bell_name(os.getpid() + 1_000_000, "x"))
    sock = fs.bind_socket(path)
    try:
        own = doorbell.arm()  # counts one sleeper; its own bell is rung through the signal
        assert own is not None
        calls = _count_calls(monkeypatch)
        log.partition("t", 0).append(prepare_batch([b"x"]))
        assert calls.get("send_datagram") == 1
        assert sock.recv(8) == b"\x01"
        doorbell.disarm(own)
    finally:
        sock.close()
        fs.unlink(path)


def test_a_dead_bell_is_unlinked_by_the_writer(log: streamlog.Log) -> None:
    doorbell = _doorbell(log)
    path = _layout.bell_path(log.path, _layout.bell_name(os.getpid() + 1_000_000, "dead"))
    fs.bind_socket(path).close()  # the file stays; nobody receives: ECONNREFUSED
    own = doorbell.arm()
    assert own is not None
    try:
        log.partition("t", 0).append(prepare_batch([b"x"]))
        assert not os.path.exists(path)
    finally:
        doorbell.disarm(own)


def test_a_dead_bell_is_unlinked_by_the_next_reader(log: streamlog.Log) -> None:
    path = _layout.bell_path(log.path, _layout.bell_name(os.getpid() + 1_000_000, "dead"))
    fs.bind_socket(path).close()
    with streamlog.open(log.path) as other:
        bell = _doorbell(other).arm()  # a new bell: sweeps the dead ones
        assert bell is not None
        _doorbell(other).disarm(bell)
    assert not os.path.exists(path)


def test_poll_sleeps_on_the_bell_and_appends_wake_it(log: streamlog.Log) -> None:
    c = log.consumer()
    c.assign([TP])
    woke: list[float] = []

    def appender() -> None:
        time.sleep(0.2)
        woke.append(time.monotonic())
        log.partition("t", 0).append(prepare_batch([b"x"]))

    t = threading.Thread(target=appender)
    t.start()
    got = c.poll(timeout_ms=10_000)
    done = time.monotonic()
    t.join()
    assert [r.value for r in got[TP]] == [b"x"]
    assert done - woke[0] < 0.05
    # the bell stays armed (parked) between polls, and close() disarms it
    assert _doorbell(log).sleepers() == 1
    c.close()
    assert _doorbell(log).sleepers() == 0


def test_wakeup_and_close_ring_a_sleeping_poll(log: streamlog.Log) -> None:
    c = log.consumer()
    c.assign([TP])
    threading.Timer(0.2, c.wakeup).start()
    t0 = time.monotonic()
    with pytest.raises(streamlog.WakeupError):
        c.poll(timeout_ms=10_000)
    assert time.monotonic() - t0 < 1.0
    threading.Timer(0.2, c.close).start()
    t0 = time.monotonic()
    assert c.poll(timeout_ms=10_000) == {}
    assert time.monotonic() - t0 < 1.0
    assert _doorbell(log).sleepers() == 0


def test_closing_the_handle_unregisters_its_bells(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(os.fspath(tmp_path), "d")
    with streamlog.open(root) as log:
        log.create_topic("t", 1)
        with log.consumer() as c:
            c.assign([TP])
            c.poll(timeout_ms=20)
        bells = [n for n in os.listdir(_layout.doorbells_dir(root)) if n.endswith(".sock")]
        assert len(bells) == 1
    assert [n for n in os.listdir(_layout.doorbells_dir(root)) if n.endswith(".sock")] == []


def test_a_path_too_long_for_a_socket_falls_back_to_polling(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(os.fspath(tmp_path), "d" * 100)
    with streamlog.open(root) as log:
        log.create_topic("t", 1)
        assert log._manager.signal.sleeper() is None
        c = log.consumer()
        c.assign([TP])
        threading.Timer(0.1, lambda: log.partition("t", 0).append(prepare_batch([b"x"]))).start()
        got = c.poll(timeout_ms=5_000)
        assert [r.value for r in got[TP]] == [b"x"]
        c.close()


def test_the_board_is_reset_by_the_first_opener(tmp_path: os.PathLike[str]) -> None:
    """A reader killed while armed leaves the count high until the directory is opened
    by a process alone."""
    root = os.path.join(os.fspath(tmp_path), "d")
    with streamlog.open(root) as log:
        doorbell = _doorbell(log)
        bell = doorbell.arm()
        assert bell is not None
        doorbell._armed = 0  # forget it, as a killed process would
        assert doorbell.sleepers() == 1
    bell.sock.close()
    with streamlog.open(root) as log:
        assert _doorbell(log).sleepers() == 0


def test_fs_socket_methods_convert_errors(tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(os.fspath(tmp_path), "missing", "x.sock")
    with pytest.raises(streamlog.StorageIOError):
        fs.bind_socket(missing)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        with pytest.raises(streamlog.StorageIOError):
            fs.send_datagram(sender, missing)
    finally:
        sender.close()


def _wait_results(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each ``Bell.wait`` returned: True when rung, False when its timeout ran out."""
    from streamlog.coordination import _doorbell

    results: list[bool] = []
    real = _doorbell.Bell.wait

    def wait(self: _doorbell.Bell, timeout: float | None) -> bool:
        rung = real(self, timeout)
        results.append(rung)
        return rung

    monkeypatch.setattr(_doorbell.Bell, "wait", wait)
    return results


def test_a_send_rings_a_sleeping_poll_before_its_nap_ends(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = _wait_results(monkeypatch)
    c = log.consumer()
    c.assign([TP])
    with log.producer() as producer:

        def send_when_asleep() -> None:
            deadline = time.monotonic() + 10
            while _doorbell(log).sleepers() != 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            producer.send("t", b"x")

        t = threading.Thread(target=send_when_asleep)
        t.start()
        got = c.poll(timeout_ms=60_000)
        t.join()
    assert [r.value for r in got[TP]] == [b"x"]
    assert results and results[-1] is True  # woken by the ring, not by its nap's end
    c.close()


def test_the_bell_stays_armed_between_polls_until_close(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    doorbell = _doorbell(log)
    arms: list[object] = []
    real_arm = doorbell.arm
    monkeypatch.setattr(doorbell, "arm", lambda: arms.append(1) or real_arm())
    c = log.consumer()
    c.assign([TP])
    with log.producer() as producer:
        for i in range(3):
            t = threading.Timer(0.05, lambda: producer.send("t", b"x"))
            t.start()
            assert [r.offset for r in c.poll(timeout_ms=60_000)[TP]] == [i]
            t.join()
            assert doorbell.sleepers() == 1  # parked, not disarmed
    assert len(arms) == 1  # armed once, reused by the later polls
    c.close()
    assert doorbell.sleepers() == 0


def test_an_unclosed_consumer_disarms_its_bell_when_collected(log: streamlog.Log) -> None:
    import gc

    c = log.consumer()
    c.assign([TP])
    threading.Timer(0.05, lambda: log.partition("t", 0).append(prepare_batch([b"x"]))).start()
    assert c.poll(timeout_ms=60_000)
    assert _doorbell(log).sleepers() == 1
    del c
    gc.collect()
    assert _doorbell(log).sleepers() == 0


def test_a_consumer_that_stops_sleeping_disarms_its_bell(
    log: streamlog.Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlog.clients import _consumer

    monkeypatch.setattr(_consumer, "_BELL_KEEP", 0.0)  # "a while" without sleeping: now
    c = log.consumer()
    c.assign([TP])
    threading.Timer(0.05, lambda: log.partition("t", 0).append(prepare_batch([b"x"]))).start()
    assert c.poll(timeout_ms=60_000)
    assert _doorbell(log).sleepers() == 0
    c.close()
