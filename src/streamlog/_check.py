"""``streamlog.check(path)``: report what recovery would find, without changing anything.

Opens every file read-only and takes no lock, so it is safe while other
processes use the directory (a batch being written at that moment may show
as a torn tail; run it again). Intended for tests and post-mortems, like
diskcache's ``Cache.check``.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from . import _layout
from ._config import TopicConfig
from ._fs import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TEMP_SUFFIXES,
    TIMEINDEX_SUFFIX,
    fs,
    name_to_offset,
    offset_to_name,
)
from ._keyindex import INDEX_FILE, verify_index
from .coordination._catalog import TopicCatalog
from .errors import (
    DataDirectoryError,
    MetadataCorruptError,
    StorageError,
    StorageIOError,
    UnsupportedFormatError,
)
from .storage._cleaner import superseded
from .storage._codec import RecordBatch
from .storage._datadir import FORMAT_FILE, DataDir, read_json
from .storage._partition import PartitionLog
from .storage._segment import Segment

__all__ = ["CheckReport", "Problem", "check"]


@dataclass(frozen=True)
class Problem:
    """One finding. ``kind`` is one of: ``corrupt`` (a bad batch with data after it),
    ``torn-tail`` (a bad batch ending the data; recovery truncates it),
    ``index`` (an index disagrees with its log; recovery rebuilds it),
    ``missing-index``, ``orphan`` (an index without a log), ``temporary`` (a
    leftover temporary file; also a ``.cleaned`` or ``.swap`` file of an
    interrupted compaction, which the next cleaning of the partition or the next
    recovery completes or drops, or seen harmlessly while a cleaner is at work;
    and a segment, or an index file, that a merged rewrite supersedes: its
    range is inside that of a segment the cleaner wrote, whose seal skips it),
    ``gap`` (a segment that does not continue where
    the previous one ended), ``unsealed`` (a segment that is not the last but
    has no seal), ``metadata`` (an unreadable metadata file), ``format``,
    ``compacted-batch`` (a
    batch the cleaner shrank whose record offsets are not increasing within the
    batch's range), ``key-index`` (an event store's key index disagrees with its
    log; the store rebuilds it when it notices).

    Compacted segments are otherwise ordinary: gaps between batches and inside
    them (fewer records than offsets) are not problems."""

    kind: str
    path: str
    position: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f" at byte {self.position}" if self.position is not None else ""
        return f"{self.kind}: {self.path}{where}{': ' + self.detail if self.detail else ''}"


@dataclass
class CheckReport:
    """The result of ``check``: counts, and every problem found."""

    path: str
    topics: int = 0
    partitions: int = 0
    segments: int = 0
    batches: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs repair (a torn tail or stale file counts as a problem)."""
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"{self.path}: {self.topics} topics, {self.partitions} partitions, "
            f"{self.segments} segments, {self.batches} batches, {self.records} records"
        )
        if self.ok:
            return head + ": ok"
        return "\n".join([f"{head}: {len(self.problems)} problem(s)", *map(str, self.problems)])


def check(path: str | os.PathLike[str]) -> CheckReport:
    """Check a data directory read-only and report every problem found.

    :raises DataDirectoryError: ``path`` is not a data directory.
    """
    root = os.path.abspath(os.fspath(path))
    report = CheckReport(root)
    if not os.path.isdir(root) or not os.path.exists(os.path.join(root, FORMAT_FILE)):
        raise DataDirectoryError("not a streamlog data directory", path=root)
    try:
        DataDir._check_format(os.path.join(root, FORMAT_FILE))
    except (MetadataCorruptError, UnsupportedFormatError) as e:
        report.problems.append(Problem("format", os.path.join(root, FORMAT_FILE), None, str(e)))
        return report
    meta_dir = _layout.catalog_dir(root)
    topics_dir = _layout.topics_dir(root)
    configs: dict[str, tuple[TopicConfig, int]] = {}
    for fname in sorted(_listdir(meta_dir)):
        full = os.path.join(meta_dir, fname)
        if fname.endswith(".tmp"):
            report.problems.append(Problem("temporary", full))
            continue
        if not fname.endswith(".json"):
            continue
        try:
            # the catalog's own validation, so check flags exactly what the handle refuses
            meta = TopicCatalog._parse(full, fname[:-5], read_json(full))
        except (StorageError, ValueError) as e:
            report.problems.append(Problem("metadata", full, None, str(e)))
            continue
        if meta is not None:
            configs[meta.name] = (meta.config, meta.partitions)
    report.topics = len(configs)
    for topic, (config, parts) in sorted(configs.items()):
        for p in range(parts):
            pdir = os.path.join(topics_dir, topic, str(p))
            if os.path.isdir(pdir):
                report.partitions += 1
                _check_partition(pdir, config, report)
    return report


def _listdir(path: str) -> list[str]:
    try:
        return fs.listdir(path)
    except StorageIOError as e:
        if e.errno == errno.ENOENT:
            return []
        raise


def _check_partition(pdir: str, config: TopicConfig, report: CheckReport) -> None:
    names = _listdir(pdir)
    bases = sorted(
        b for n in names if n.endswith(LOG_SUFFIX) and (b := name_to_offset(n)) is not None
    )
    stems = sorted(
        {
            b
            for n in names
            if n.endswith((LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX))
            and (b := name_to_offset(n)) is not None
        }
    )
    # segments (and index files) a merged rewrite supersedes: left by a group swap
    # under way or interrupted, removed by the next cleaning or recovery
    merged = superseded(pdir, stems, bases)
    for n in sorted(names):
        full = os.path.join(pdir, n)
        b = name_to_offset(n)
        if n.endswith((".cleaned", ".swap")):
            detail = "of a compaction under way or interrupted (finished or dropped next time)"
            report.problems.append(Problem("temporary", full, None, detail))
        elif n.endswith(TEMP_SUFFIXES):
            report.problems.append(Problem("temporary", full))
        elif b in merged and n.endswith((LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX)):
            detail = (
                "merged into an earlier segment by a compaction under way or interrupted "
                "(removed next time)"
            )
            report.problems.append(Problem("temporary", full, None, detail))
        elif n.endswith((INDEX_SUFFIX, TIMEINDEX_SUFFIX)) and (b is None or b not in bases):
            report.problems.append(Problem("orphan", full))
    bases = [b for b in bases if b not in merged]
    expected_base: int | None = None
    for i, base in enumerate(bases):
        report.segments += 1
        is_last = i == len(bases) - 1
        stem = os.path.join(pdir, offset_to_name(base))
        for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            if not os.path.exists(stem + suffix):
                report.problems.append(Problem("missing-index", stem + suffix))
        if expected_base is not None and base != expected_base:
            report.problems.append(
                Problem("gap", stem + LOG_SUFFIX, None, f"expected base offset {expected_base}")
            )
        try:
            seg = Segment(
                pdir,
                base,
                index_interval=config.index_interval_bytes,
                max_index_bytes=config.segment_index_bytes,
                writable=False,
            )
        except StorageIOError as e:
            report.problems.append(Problem("unreadable", stem + LOG_SUFFIX, None, str(e)))
            continue
        try:
            _check_segment(seg, is_last, report)
            expected_base = seg.next_base if seg.sealed else None
        except StorageError as e:
            report.problems.append(Problem("format", seg.path, None, str(e)))
        finally:
            seg.close()
    if INDEX_FILE in names:
        _check_key_index(pdir, config, report)


def _check_key_index(pdir: str, config: TopicConfig, report: CheckReport) -> None:
    """An event store's key index against its log: derived data (rebuilt when found
    wrong), so a difference is reported, not fatal."""
    full = os.path.join(pdir, INDEX_FILE)
    try:
        plog = PartitionLog(pdir, config, writable=False)
    except StorageError:
        return  # (the log's own problems are reported above)
    try:
        for message in verify_index(pdir, plog):
            report.problems.append(Problem("key-index", full, None, message))
    except StorageError as e:
        report.problems.append(Problem("key-index", full, None, str(e)))
    finally:
        plog.close()


def _check_segment(seg: Segment, is_last: bool, report: CheckReport) -> None:
    result = seg.scan(0, seg.base_offset)
    for pos in result.corrupt:
        report.problems.append(Problem("corrupt", seg.path, pos, "batch fails its checksum"))
    if result.damage is not None:
        kind = "torn-tail" if is_last else "corrupt"
        report.problems.append(Problem(kind, seg.path, result.damage, "bad batch ends the data"))
    if not is_last and not result.sealed:
        report.problems.append(Problem("unsealed", seg.path, result.end))
    for pos, batch in seg.batches():
        if batch is not None:
            report.batches += 1
            report.records += batch.record_count
            if batch.record_count < batch.last_offset - batch.base_offset + 1:
                _check_compacted(seg, pos, batch, report)
    if os.path.exists(seg.index_path + ".swap"):
        # A compaction swapped this segment's log in and not yet its index (reported as
        # ``temporary`` above): the live index is the old one's until it is finished.
        return
    expected = seg.expected_index_entries(result.end)
    oi = seg.offset_index
    actual = [oi.entry(i) for i in range(oi.count)]
    # Missing entries at the end are harmless (a crash between publishing a
    # batch and indexing it); a wrong entry is not.
    if actual != [(rel, pos) for rel, pos, _ts in expected][: len(actual)]:
        report.problems.append(Problem("index", seg.index_path, None, "disagrees with the log"))


def _check_compacted(seg: Segment, pos: int, batch: RecordBatch, report: CheckReport) -> None:
    """A batch the cleaner shrank: its offsets must increase within its range."""
    try:
        offsets = list(batch.decode(seg.path)[0])
    except StorageError as e:
        report.problems.append(Problem("corrupt", seg.path, pos, str(e)))
        return
    prev = batch.base_offset - 1
    for off in offsets:
        if not prev < off <= batch.last_offset:
            report.problems.append(
                Problem("compacted-batch", seg.path, pos, f"record offset {off} out of place")
            )
            return
        prev = off
