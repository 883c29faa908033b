"""Word count with streamlog.streams: the "hello world" of stream processing.

Run: python examples/streams_word_count.py [DATA_DIR]   (a fresh temporary directory by default)

Lines of text go to the topic ``text`` (2 partitions). The application splits
them into words, re-keys each word by itself (through an internal repartition
topic, so equal words meet in one task), counts them in a state store backed
by a compacted changelog, and writes every updated count to ``word-counts``.
While it runs, the counts are read straight from the store (an interactive
query); the script then stops the app, starts a new instance, and shows that
the state was restored and the counting continues where it left off.
"""

from __future__ import annotations

import sys
import tempfile
import time

import streamlog
from streamlog.streams import StreamsApp

LINES = [
    "the quick brown fox jumps over the lazy dog",
    "the dog barks",
    "a fox is quick and the dog is lazy",
] * 200


def build(log: streamlog.Log) -> StreamsApp:
    app = StreamsApp(
        log,
        application_id="word-count",
        default_key_serde="str",
        default_value_serde="str",
        commit_interval_ms=200,
    )
    (
        app.stream("text")
        .flat_map_values(lambda line: line.lower().split())
        .group_by(lambda key, word: word)
        .count(materialized_as="counts")
        .to_stream()
        .to("word-counts", value_serde="int")
    )
    return app


def wait_for_total(app: StreamsApp, total: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    counts = app.store("counts")
    while sum(v for _, v in counts.items()) < total:
        if app.state == "ERROR":
            raise RuntimeError(f"the app failed: {app.exception!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the word count did not finish")
        time.sleep(0.05)


def main(path: str) -> None:
    words = sum(len(line.split()) for line in LINES)
    with streamlog.open(path) as log:
        log.create_topic("text", partitions=2)
        log.create_topic("word-counts", partitions=2)
        with log.producer(linger_ms=5) as producer:
            for i, line in enumerate(LINES):
                producer.send("text", line.encode(), key=str(i).encode())
        print(f"{len(LINES)} lines, {words} words written to 'text'")

        app = build(log)
        app.start()
        wait_for_total(app, words)
        counts = dict(app.store("counts").items())
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
        print("top words (interactive query):", ", ".join(f"{w}={n}" for w, n in top))
        app.close()

        # the output topic holds every update; its latest value per word is the count
        consumer = log.consumer("word-counts", auto_offset_reset="earliest",
                                consumer_timeout_ms=500)
        latest = {r.key.decode(): int.from_bytes(r.value, "big", signed=True) for r in consumer}
        consumer.close()
        assert latest == counts, (latest, counts)
        print(f"'word-counts' agrees: {len(latest)} distinct words, the={latest['the']}")

        # a new instance restores the store from its checkpoint and continues
        with log.producer() as producer:
            producer.send("text", b"the end", key=b"last")
        app = build(log)
        app.start()
        wait_for_total(app, words + 2)
        print(f"after a restart and one more line: the={app.store('counts').get('the')}, "
              f"end={app.store('counts').get('end')}")
        app.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-wc-"))
