"""Topics deleted and created again by other processes (issue 11, items 5 and 6).

A topic created again under the same name is another topic (a new topic id,
docs/format.md): clients that cached the old one must notice, as Kafka's
clients do, and a deleted topic reads as ``UnknownTopicError`` (or a reset),
never as a failing disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

import streamlog
from streamlog import TopicPartition

pytestmark = pytest.mark.multiprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _in_other_process(data: str, body: str) -> None:
    code = "import streamlog\n" + f"log = streamlog.open({data!r})\n" + textwrap.dedent(body)
    code += "log.close()\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr


def _poll_values(consumer: streamlog.Consumer, want: int, timeout: float = 10) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(100).values():
            got.extend(r.value for r in records)
    return got


@pytest.mark.parametrize("group_id", [None, "g"])
def test_a_consumer_follows_a_topic_created_again(data_dir: str, group_id: str | None) -> None:
    """Before: a consumer at offset 100 stayed at 100 of the new topic and delivered none
    of its records (it kept reading the deleted files)."""
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        with log.producer() as p:
            for i in range(100):
                p.send("t", b"old-%d" % i)
        consumer = log.consumer("t", group_id=group_id, auto_offset_reset="earliest")
        assert len(_poll_values(consumer, 100)) == 100
        assert consumer.position(TopicPartition("t", 0)) == 100
        _in_other_process(
            data_dir,
            """
            log.delete_topic("t")
            log.create_topic("t")
            with log.producer() as p:
                for i in range(5):
                    p.send("t", b"new-%d" % i)
            """,
        )
        got = _poll_values(consumer, 5)
        assert got == [b"new-%d" % i for i in range(5)]
        assert consumer.position(TopicPartition("t", 0)) == 5
        consumer.close()


def test_a_consumer_of_a_deleted_topic_waits_for_it(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        with log.producer() as p:
            p.send("t", b"old").result(10)
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([TopicPartition("t", 0)])
        assert _poll_values(consumer, 1) == [b"old"]
        _in_other_process(data_dir, 'log.delete_topic("t")\n')
        deadline = time.monotonic() + 2.5  # past the metadata refresh: nothing, no error
        while time.monotonic() < deadline:
            assert consumer.poll(100) == {}
        _in_other_process(
            data_dir,
            """
            log.create_topic("t")
            with log.producer() as p:
                p.send("t", b"again").result(10)
            """,
        )
        assert _poll_values(consumer, 1) == [b"again"]
        consumer.close()


def test_a_producer_writes_to_the_topic_created_again(data_dir: str) -> None:
    with streamlog.open(data_dir) as log:
        log.create_topic("t")
        with log.producer() as p:
            assert p.send("t", b"old").result(10).offset == 0
            _in_other_process(data_dir, 'log.delete_topic("t")\nlog.create_topic("t")\n')
            assert p.send("t", b"new").result(10).offset == 0
        with log.consumer("t", auto_offset_reset="earliest") as c:
            assert _poll_values(c, 1) == [b"new"]


def test_delete_and_create_races_read_as_unknown_topic(data_dir: str) -> None:
    """Before: while another process deleted and re-created a topic in a loop, ~25 sends
    per run failed with ``StorageIOError`` (ENOENT on an index; "partition failed ...
    reopen to recover") and consumers got it too. A deleted topic is
    ``UnknownTopicError`` (or a reset), never a failing disk."""
    with streamlog.open(data_dir) as log:
        log.create_topic("t", 2, {"segment.bytes": 4096})
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import streamlog
                with streamlog.open({data_dir!r}) as log:
                    for i in range(60):
                        try:
                            log.delete_topic("t")
                        except streamlog.UnknownTopicError:
                            pass
                        log.create_topic("t", 2, {{"segment.bytes": 4096}})
                """
            ),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    ) as churn:  # waited for and its pipe closed, whatever happens
        errors: dict[str, int] = {}
        unexpected: list[str] = []
        sent = delivered = 0
        with streamlog.open(data_dir) as log:
            producer = log.producer(linger_ms=1)
            consumer = log.consumer("t", auto_offset_reset="earliest")
            while churn.poll() is None:
                futures = [producer.send("t", b"x" * 300) for _ in range(50)]
                for f in futures:
                    try:
                        f.result(10)
                        sent += 1
                    except streamlog.StreamlogError as e:
                        errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                        if not isinstance(e, streamlog.UnknownTopicError):
                            unexpected.append(repr(e))
                try:
                    delivered += sum(len(v) for v in consumer.poll(5).values())
                except streamlog.StreamlogError as e:
                    errors["poll " + type(e).__name__] = (
                        errors.get("poll " + type(e).__name__, 0) + 1
                    )
                    if not isinstance(e, streamlog.UnknownTopicError):
                        unexpected.append(repr(e))
            producer.close()
            consumer.close()
        _out, err = churn.communicate()  # also closes the pipe
        assert churn.returncode == 0, err
    print(f"\nraces: {sent} sent, {delivered} delivered, errors {errors}")
    assert set(errors) <= {"UnknownTopicError", "poll UnknownTopicError"}, unexpected[:5]
    assert sent > 0
