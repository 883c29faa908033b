"""The per-key index of an event store's partition: stream -> the offsets of its events.

Derived data, rebuilt from the log whenever it is missing, damaged or behind; the
log is the only truth. Two halves:

- on disk, ``<partition>/eventstore.sqlite`` (SQLite, stdlib): rows
  ``(stream, revision, offset)`` with primary key ``(stream, revision)``, and
  ``high_water``: every keyed record below that offset has its row, none at or
  above it. A B-tree answers "the offsets of revisions a..b of stream s" in
  O(log n + b - a) without loading the index into memory, so reading a stream
  costs the same in a log of 1e4 or 1e7 events; SQLite's transactions and file
  locks let any process extend it safely, and its journal (WAL) makes a crash
  mid-update leave the previous state, which is merely behind. A hand-rolled
  file would need all of that written and fsynced by hand.
- in memory, per process (``_KeyIndex``): ``cursor``, the offset up to which this
  process has followed the log (like ``ProducerStateTracker``: by reading the
  frames other processes appended since), ``base`` <= ``cursor``, the offset the
  process last synchronised with the file at, ``delta``: the offsets of each
  stream in ``[base, cursor)``, and ``counts``: a cache of the number of events
  of a stream below ``base``. A stream's revision count is ``counts + len(delta)``
  with no I/O once cached; ``flush`` writes ``delta`` into the file (every
  ``FLUSH_EVERY`` offsets, on reads and on close) so a reopen replays only the
  tail past ``high_water``.

Memory: the delta (bounded by ``FLUSH_EVERY`` offsets) and one count per stream
this process looked up. Thread-safe: ``lock`` guards all state; conditional
appends hold it from the check under the partition's append lock until their
offsets are applied (lock order: append lock, then ``lock``, then SQLite's).
Process-safe through the log (each process follows it) and SQLite's locking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Iterator

from ._fs import fs
from .errors import OffsetOutOfRangeError
from .storage._partition import PartitionLog

__all__ = ["FLUSH_EVERY", "INDEX_FILE", "KeyIndex", "scan_keys", "verify_index"]

INDEX_FILE = "eventstore.sqlite"
FLUSH_EVERY = 20_000  # offsets followed between writes to the file
_READ_BYTES = 1 << 20
_logger = logging.getLogger("streamlog.eventstore")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    stream BLOB NOT NULL, revision INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (stream, revision)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('high_water', 0);
"""


def scan_keys(
    plog: PartitionLog, start: int, stop: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """``(offset, key)`` of every keyed, non-control record in ``[start, stop)`` (to the
    end if ``stop`` is None); starts at the log start if ``start`` is below it."""
    offset = max(start, plog.log_start_offset)
    while stop is None or offset < stop:
        try:
            batches = plog.read(offset, _READ_BYTES)
        except OffsetOutOfRangeError as e:
            if e.log_start_offset is not None and offset < e.log_start_offset:
                offset = e.log_start_offset  # deleted meanwhile: those events are gone
                continue
            raise
        if not batches:
            return
        for batch in batches:
            if batch.is_control:
                continue
            offsets, _ts, keys, _values, _headers = batch.decode(plog.path)
            if keys is None:
                continue
            for o, k in zip(offsets, keys, strict=True):
                if k is not None and o >= offset and (stop is None or o < stop):
                    yield o, k
        offset = batches[-1].next_offset


class KeyIndex:
    """One partition's stream index (see the module docstring for the protocol)."""

    def __init__(self, partition_dir: str) -> None:
        self.lock = threading.RLock()
        self._path = os.path.join(partition_dir, INDEX_FILE)
        self._db: sqlite3.Connection | None = None
        self.base = -1  # -1: not loaded yet
        self.cursor = -1
        self._delta: dict[bytes, list[int]] = {}
        self._pending = 0
        self._counts: dict[bytes, int] = {}
        self._plog: PartitionLog | None = None  # the log last followed

    # ------------------------------------------------------------------ the file
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError as e:
                # Damaged (or not SQLite at all): it is derived data, start it again.
                _logger.warning("event index %s unreadable (%s): rebuilding it", self._path, e)
                self._remove_file()
                self._db = self._connect()
        return self._db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=60, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # A power cut may lose the last transactions, never corrupt the file (WAL):
            # the index is then behind, and is caught up from the log.
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _remove_file(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            name = self._path + suffix
            if os.path.exists(name):
                fs.unlink(name)

    def _high_water(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT v FROM meta WHERE k='high_water'").fetchone()
        return int(row[0]) if row else 0

    def _reset_memory(self, at: int) -> None:
        self.base = self.cursor = at
        self._delta.clear()
        self._counts.clear()
        self._pending = 0

    def _reset_file(self) -> None:
        """Empty the file (it disagrees with the log); the next flush refills it."""
        try:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM events")
            db.execute("UPDATE meta SET v=0 WHERE k='high_water'")
            db.execute("COMMIT")
        except sqlite3.DatabaseError:
            self._remove_file()
            self._conn()

    # ------------------------------------------------------------------ following the log
    def caught_up(self, plog: PartitionLog) -> None:
        """Follow the log to its end (call with ``lock`` held)."""
        self._plog = plog
        end = plog.end_offset
        if self.base < 0:
            self._load(plog, end)
        elif self.cursor > end:
            # The log is shorter than what we followed: it is not the same log any more
            # (only recovery truncates, with exclusive use of the directory).
            self._reset_file()
            self._reset_memory(0)
        if self.cursor == end:
            return
        delta = self._delta
        n = 0
        for offset, key in scan_keys(plog, self.cursor, end):
            offs = delta.get(key)
            if offs is None:
                delta[key] = [offset]
            else:
                offs.append(offset)
            n += 1
        self._pending += n
        self.cursor = end

    def _load(self, plog: PartitionLog, end: int) -> None:
        try:
            high = self._high_water(self._conn())
        except sqlite3.DatabaseError:
            self._remove_file()
            high = self._high_water(self._conn())
        if high > end:
            _logger.warning("event index %s is ahead of its log: rebuilding it", self._path)
            self._reset_file()
            high = 0
        self._reset_memory(high)

    def applied(self, key: bytes, base_offset: int, count: int) -> None:
        """This process appended ``count`` events of ``key`` from ``base_offset``, right
        after ``caught_up`` under the same hold of the append lock and of ``lock``."""
        if self.cursor != base_offset:
            return  # (not expected; the next caught_up reads them instead)
        offs = self._delta.setdefault(key, [])
        offs.extend(range(base_offset, base_offset + count))
        self._pending += count
        self.cursor = base_offset + count

    def count(self, key: bytes) -> int:
        """Number of events of ``key`` below ``cursor`` (call with ``lock`` held)."""
        return self._count_at_base(key) + len(self._delta.get(key, ()))

    def _count_at_base(self, key: bytes) -> int:
        n = self._counts.get(key)
        if n is not None:
            return n
        db = self._conn()
        while True:
            db.execute("BEGIN")  # one snapshot for the high-water and the row
            try:
                high = self._high_water(db)
                row = None
                if high >= self.base:
                    row = db.execute(
                        "SELECT revision FROM events WHERE stream=? AND offset<? "
                        "ORDER BY revision DESC LIMIT 1", (key, self.base)).fetchone()
            finally:
                db.execute("COMMIT")
            if high >= self.base:
                break
            self.flush()  # the file is behind us (lost, or rebuilt): bring it up first
            n = self._counts.get(key)
            if n is not None:
                return n
        n = 0 if row is None else int(row[0]) + 1
        self._counts[key] = n
        return n

    # ------------------------------------------------------------------ lookups
    def offsets(self, plog: PartitionLog, key: bytes, first: int, last: int) -> list[int]:
        """Offsets of revisions ``first..last`` (inclusive, clipped) of ``key``, caught up."""
        self.caught_up(plog)
        below = self._count_at_base(key)
        out: list[int] = []
        if first < below:
            top = min(last, below - 1)
            rows = self._conn().execute(
                "SELECT offset FROM events WHERE stream=? AND revision BETWEEN ? AND ? "
                "ORDER BY revision", (key, first, top)).fetchall()
            if len(rows) != top - first + 1:
                # Emptied by another process meanwhile (it found the file damaged).
                self._counts.clear()
                return self.offsets(plog, key, first, last)
            out = [r[0] for r in rows]
        recent = self._delta.get(key, ())
        if last >= below and recent:
            out.extend(recent[max(0, first - below): last - below + 1])
        return out

    def revision_of(self, plog: PartitionLog, key: bytes, offset: int) -> int:
        """The revision of the event of ``key`` at ``offset``."""
        if offset >= self.cursor:
            self.caught_up(plog)
        recent = self._delta.get(key, ())
        if offset >= self.base:
            return self._count_at_base(key) + bisect_left(recent, offset)
        self._count_at_base(key)  # (makes sure the file reaches base)
        row = self._conn().execute(
            "SELECT revision FROM events WHERE stream=? AND offset<=? "
            "ORDER BY revision DESC LIMIT 1", (key, offset)).fetchone()
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------------ writing the file
    def maybe_flush(self) -> None:
        if self._pending >= FLUSH_EVERY:
            self.flush()

    def flush(self, plog: PartitionLog | None = None) -> None:
        """Write what this process followed into the file (call with ``lock`` held)."""
        if self.base < 0:
            if plog is None:
                return
            self.caught_up(plog)
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            high = self._high_water(db)
            if high < self.cursor:
                self._extend(db, high, plog)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        # the file now holds everything below cursor: rebase onto it
        counts = self._counts
        for key, offs in self._delta.items():
            if key in counts:
                counts[key] += len(offs)
        self._delta.clear()
        self._pending = 0
        self.base = self.cursor

    def _extend(self, db: sqlite3.Connection, high: int, plog: PartitionLog | None) -> None:
        """Insert the rows of ``[high, cursor)`` (the file is at ``high``)."""
        rows: dict[bytes, list[int]] = {}
        plog = plog or self._plog
        if high < self.base:
            assert plog is not None  # (base >= 0: caught_up ran, and set it)
            for offset, key in scan_keys(plog, high, self.base):
                rows.setdefault(key, []).append(offset)
        for key, offs in self._delta.items():
            i = bisect_left(offs, high)
            if i < len(offs):
                rows.setdefault(key, []).extend(offs[i:])
        insert: list[tuple[bytes, int, int]] = []
        for key, offs in rows.items():
            row = db.execute("SELECT revision FROM events WHERE stream=? "
                             "ORDER BY revision DESC LIMIT 1", (key,)).fetchone()
            start = 0 if row is None else int(row[0]) + 1
            insert.extend((key, start + i, o) for i, o in enumerate(offs))
        db.executemany("INSERT INTO events VALUES (?, ?, ?)", insert)
        db.execute("UPDATE meta SET v=? WHERE k='high_water'", (self.cursor,))

    def close(self) -> None:
        with self.lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None


def verify_index(partition_dir: str, plog: PartitionLog) -> list[str]:
    """Differences between the index file of a partition and its log (empty: agrees).
    Only what the file claims is checked: rows below its high-water must be exactly the
    keyed records there, numbered densely per stream."""
    path = os.path.join(partition_dir, INDEX_FILE)
    if not os.path.exists(path):
        return []
    problems: list[str] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as e:
        return [f"cannot open: {e}"]
    try:
        db.execute("BEGIN")
        row = db.execute("SELECT v FROM meta WHERE k='high_water'").fetchone()
        high = int(row[0]) if row else 0
        if high > plog.end_offset:
            return [f"high-water {high} is past the log end {plog.end_offset}"]
        expected: dict[bytes, list[int]] = {}
        for offset, key in scan_keys(plog, 0, high):
            expected.setdefault(key, []).append(offset)
        found: dict[bytes, list[int]] = {}
        for key, revision, offset in db.execute(
                "SELECT stream, revision, offset FROM events ORDER BY stream, revision"):
            offs = found.setdefault(bytes(key), [])
            if revision != len(offs):
                problems.append(f"stream {key!r}: revision {revision} where {len(offs)} expected")
            offs.append(offset)
        start = plog.log_start_offset
        for key in expected.keys() | found.keys():
            want = expected.get(key, [])
            have = [o for o in found.get(key, []) if o >= start]  # (deleted records: unreadable)
            if want != have:
                problems.append(f"stream {key!r}: index has {len(have)} events, log {len(want)}")
        db.execute("COMMIT")
    except sqlite3.Error as e:
        problems.append(f"unreadable: {e}")
    finally:
        db.close()
    return problems
