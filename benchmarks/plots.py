"""Draw the plots of docs/benchmarks.md from the committed results in benchmarks/results/.

    .venv/bin/python benchmarks/plots.py                 # writes docs/img/bench-*.png
    .venv/bin/python benchmarks/plots.py --out /tmp/img  # somewhere else

Needs matplotlib (the ``docs`` extra: ``pip install ".[docs]"``); it does not import
streamlog and runs nothing: it only reads the result files the benchmark scripts wrote.
Each plot comes from the newest full run of its script (by the date in the file's header;
``--quick`` runs are left out), and names the file it was drawn from.

- ``bench-throughput.png``: send / durable / consume records per second, streamlog and
  its baselines (``bench_table.py``, ``table-*.txt``).
- ``bench-latency.png``: end-to-end latency p50 and p99, in one process and across
  processes (the same run).
- ``bench-event-store.png``: ``EventStore.read`` of a 100-event stream against the number
  of events in the store, one line per run (``bench_event_store.py``,
  ``event_store-*.txt``): flat is the target.
- ``bench-transactions.png``: transactional throughput as a share of plain ``acks="all"``
  by transaction size, 1 and 3 partitions (``bench_transactions.py``,
  ``transactions-*.txt``).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
OUT = os.path.join(ROOT, "docs", "img")

STREAMLOG_COLOR = "#d9480f"
OTHER_COLORS = ["#1c7ed6", "#37b24d", "#ae3ec9", "#868e96", "#f59f00", "#495057"]
# PNGs without a timestamp or version in their metadata: regenerating unchanged results
# gives the same bytes (as far as matplotlib's rendering is stable)
PNG_METADATA = {"Software": None}


def _number(cell: str) -> float | None:
    cell = cell.strip().replace(",", "")
    try:
        return float(cell)
    except ValueError:
        return None


def _pair(cell: str) -> tuple[float, float] | None:
    parts = cell.split("/")
    if len(parts) != 2:
        return None
    a, b = _number(parts[0]), _number(parts[1])
    return None if a is None or b is None else (a, b)


def _header_date(text: str) -> str:
    """The ISO date-time (or date) a result file was written, from its header lines."""
    m = re.search(r"\b(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2})?)\b", text[:2000])
    return m.group(1) if m else ""


def _newest(pattern: str, results: str) -> tuple[str, str]:
    """(path, text) of the newest full run among ``results/pattern``."""
    runs = []
    for path in glob.glob(os.path.join(results, pattern)):
        if "quick" in os.path.basename(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        runs.append((_header_date(text), os.path.basename(path), path, text))
    if not runs:
        raise SystemExit(f"no result file {pattern} in {results}")
    runs.sort()
    return runs[-1][2], runs[-1][3]


@dataclass
class SystemRow:
    name: str
    send: float | None
    durable: float | None
    consume: float | None
    latency_one: tuple[float, float] | None  # p50, p99 in us
    latency_procs: tuple[float, float] | None
    random_read: float | None


def parse_table(text: str) -> list[SystemRow]:
    """The systems table of a ``bench_table.py`` result (the first markdown table)."""
    rows: list[SystemRow] = []
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            if in_table:
                break
            continue
        in_table = True
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 7 or not cells[0] or set(cells[1]) <= set("-: "):
            continue  # the header and the separator
        rows.append(SystemRow(
            cells[0], _number(cells[1]), _number(cells[2]), _number(cells[3]),
            _pair(cells[4]), _pair(cells[5]), _number(cells[6]),
        ))
    if not rows:
        raise ValueError("no systems table found")
    return rows


def parse_event_store(text: str) -> list[tuple[int, float]]:
    """(events in the store, read p50 in ms) of a ``bench_event_store.py`` result."""
    found = re.findall(r"p50 at\s+([\d,]+) events: ([\d.]+) ms", text)
    return [(int(n.replace(",", "")), float(ms)) for n, ms in found]


def parse_transactions(text: str) -> dict[int, list[tuple[int, float]]]:
    """{partitions: [(records per transaction, txn / plain ratio)]}."""
    out: dict[int, list[tuple[int, float]]] = {}
    for n, parts, ratio in re.findall(
        r"^1\s+ratio\s+N=([\d,]+), (\d+) partitions?\s+([\d.]+)x", text, re.M
    ):
        out.setdefault(int(parts), []).append((int(n.replace(",", "")), float(ratio)))
    return out


def _color(name: str, i: int) -> str:
    return STREAMLOG_COLOR if name == "streamlog" else OTHER_COLORS[i % len(OTHER_COLORS)]


def _source_note(fig, path: str, extra: str = "") -> None:
    rel = os.path.relpath(path, ROOT)
    fig.text(0.01, 0.01, f"from {rel}{extra}", fontsize=7, color="#666666")


def plot_throughput(plt, path: str, text: str, out: str) -> str:
    rows = [r for r in parse_table(text) if r.send or r.durable or r.consume]
    metrics = [("send()\nacks=1", "send"), ("durable\nacks=all", "durable"),
               ("consume", "consume")]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        xs, ys = [], []
        for j, (_, attr) in enumerate(metrics):
            value = getattr(row, attr)
            if value is not None:
                xs.append(j + (i - (len(rows) - 1) / 2) * width)
                ys.append(value / 1e6)
        bars = ax.bar(xs, ys, width * 0.95, label=row.name, color=_color(row.name, i))
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(metrics)), [m[0] for m in metrics])
    ax.set_ylabel("million records/s (higher is better)")
    ax.set_title("Throughput: streamlog and its baselines (bench_table.py)")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    _source_note(fig, path, f", run of {_header_date(text)}")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    target = os.path.join(out, "bench-throughput.png")
    fig.savefig(target, metadata=PNG_METADATA)
    plt.close(fig)
    return target


def plot_latency(plt, path: str, text: str, out: str) -> str:
    rows = [r for r in parse_table(text) if r.latency_one or r.latency_procs]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=100, sharey=True)
    for ax, attr, title in ((axes[0], "latency_one", "in one process"),
                            (axes[1], "latency_procs", "across processes")):
        shown = [r for r in rows if getattr(r, attr) is not None]
        ys = range(len(shown))
        p50 = [getattr(r, attr)[0] for r in shown]
        p99 = [getattr(r, attr)[1] for r in shown]
        ax.barh([y + 0.2 for y in ys], p99, 0.4, color="#ced4da", label="p99")
        ax.barh([y - 0.2 for y in ys], p50, 0.4,
                color=[_color(r.name, i) for i, r in enumerate(shown)], label="p50")
        for y, a, b in zip(ys, p50, p99, strict=True):
            ax.text(a, y - 0.2, f" {a:g}", va="center", fontsize=7)
            ax.text(b, y + 0.2, f" {b:g}", va="center", fontsize=7, color="#666666")
        ax.set_yticks(list(ys), [r.name for r in shown])
        ax.set_xlabel("µs from send() to poll() (lower is better)")
        ax.set_title(f"Latency {title}, p50 / p99")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].invert_yaxis()  # once: the axes share y
    axes[1].legend(fontsize=8, frameon=False, loc="lower right")
    _source_note(fig, path, f", run of {_header_date(text)}; one record per ms")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    target = os.path.join(out, "bench-latency.png")
    fig.savefig(target, metadata=PNG_METADATA)
    plt.close(fig)
    return target


def plot_event_store(plt, results: str, out: str) -> str:
    paths = sorted(p for p in glob.glob(os.path.join(results, "event_store-*.txt"))
                   if "quick" not in os.path.basename(p))
    if not paths:
        raise SystemExit(f"no result file event_store-*.txt in {results}")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    lowest = None
    for i, path in enumerate(paths):
        with open(path, encoding="utf-8") as f:
            points = parse_event_store(f.read())
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", color=OTHER_COLORS[i % len(OTHER_COLORS)],
                label=os.path.basename(path))
        for x, y in points:
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
        lowest = min(ys) if lowest is None else min(lowest, min(ys))
    if lowest is not None:
        ax.axhline(lowest * 1.5, color=STREAMLOG_COLOR, linestyle="--", linewidth=1,
                   label="target: within 1.5x of the fastest size")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("events in the store (log scale)")
    ax.set_ylabel("read(stream) p50, ms (100-event stream)")
    ax.set_title("Event store: reading a stream costs what the stream costs")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    target = os.path.join(out, "bench-event-store.png")
    fig.savefig(target, metadata=PNG_METADATA)
    plt.close(fig)
    return target


def plot_transactions(plt, path: str, text: str, out: str) -> str:
    series = parse_transactions(text)
    if not series:
        raise ValueError(f"no throughput ratios in {path}")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.set_xscale("log")
    for i, (parts, points) in enumerate(sorted(series.items())):
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", color=OTHER_COLORS[i % len(OTHER_COLORS)],
                label=f"{parts} partition{'s' if parts > 1 else ''}")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.2f}x", (x, y), textcoords="offset points",
                        xytext=(4, 6 if i == 0 else -12), fontsize=7)
        ax.set_xticks(list(xs), [f"{x:,}" for x in xs])
    ax.axhline(0.7, color=STREAMLOG_COLOR, linestyle="--", linewidth=1,
               label="target at 1,000 records: 0.7x")
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel("records per transaction (log scale)")
    ax.set_ylabel("records/s, transactional / plain acks=all")
    ax.set_title("Transactions: throughput against a plain durable producer")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    _source_note(fig, path, f", run of {_header_date(text)}")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    target = os.path.join(out, "bench-transactions.png")
    fig.savefig(target, metadata=PNG_METADATA)
    plt.close(fig)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", default=RESULTS, help="result files (benchmarks/results)")
    parser.add_argument("--out", default=OUT, help="where the PNGs go (docs/img)")
    args = parser.parse_args(argv)

    import matplotlib  # an optional dependency: the docs extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9})
    os.makedirs(args.out, exist_ok=True)
    table_path, table_text = _newest("table-*.txt", args.results)
    txn_path, txn_text = _newest("transactions-*.txt", args.results)
    written = [
        plot_throughput(plt, table_path, table_text, args.out),
        plot_latency(plt, table_path, table_text, args.out),
        plot_event_store(plt, args.results, args.out),
        plot_transactions(plt, txn_path, txn_text, args.out),
    ]
    for path in written:
        print(os.path.relpath(path, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
