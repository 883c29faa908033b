"""Stream processing in-process: Kafka Streams' DSL over a streamlog data directory.

::

    from streamlog.streams import StreamsApp, TimeWindows, TestDriver

    app = StreamsApp("data", application_id="wc", default_key_serde="str",
                     default_value_serde="str")
    words = app.stream("text").flat_map_values(str.split).group_by(lambda k, w: w)
    words.count().to_stream().to("counts", value_serde="int")
    app.start()   # or: TestDriver(app) in tests

See ``docs/streams.md`` for the semantics (windows, grace, joins, stores,
exactly-once) and the differences from Kafka Streams.
"""

from __future__ import annotations

from ._app import StreamsApp
from ._driver import TestDriver, TestInputTopic, TestOutputTopic, TestRecord
from ._dsl import (
    BranchedKStream,
    GlobalKTable,
    KGroupedStream,
    KGroupedTable,
    KStream,
    KTable,
    SessionWindowedKStream,
    TimeWindowedKStream,
)
from ._processor import Change, Processor, ProcessorContext, PunctuationType, Record
from ._serdes import Serde
from ._stores import KeyValueStore, SessionStore, StateStore, WindowStore
from ._task import DroppedRecord
from ._windows import JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Windowed

__all__ = [
    "BranchedKStream",
    "Change",
    "DroppedRecord",
    "GlobalKTable",
    "JoinWindows",
    "KGroupedStream",
    "KGroupedTable",
    "KStream",
    "KTable",
    "KeyValueStore",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Record",
    "Serde",
    "SessionStore",
    "SessionWindowedKStream",
    "SessionWindows",
    "SlidingWindows",
    "StateStore",
    "StreamsApp",
    "TestDriver",
    "TestInputTopic",
    "TestOutputTopic",
    "TestRecord",
    "TimeWindowedKStream",
    "TimeWindows",
    "WindowStore",
    "Windowed",
]
