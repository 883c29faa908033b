"""The documentation runs: every ```python block of docs/**/*.md and README.md is executed,
and the site builds with ``mkdocs build --strict`` (when the docs extra is installed).

- A page's blocks run in order, in one namespace, in a fresh temporary working directory,
  so a relative path such as ``streamlog.open("data")`` lands there. A page's blocks are a
  script: a later block may use what an earlier one defined.
- A block preceded by ``<!-- no-run: reason -->`` is not run: only for code that cannot
  run in a test (a server loop, a real Kafka cluster), each with its reason.
- ```python-console, ```text, ```sh and plain ``` blocks are not run.
- After a page, whatever it left open (logs, producers, consumers, stores, a compat
  installation) is closed, so one page cannot disturb the next.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

import streamlog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

# Pages being rewritten elsewhere right now: their blocks are skipped (the page still has
# to build with mkdocs). Empty this list once they are in.
PENDING_PAGES = [
]

RUN_LANGUAGES = {"python"}
# fence languages that look like Python but would silently not run
SUSPECT_LANGUAGES = {"py", "python3", "py3", "pycon3"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`{]*)")
_NO_RUN = re.compile(r"^\s*<!--\s*no-run:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the first code line
    language: str
    code: str
    no_run: str | None  # the reason, when marked <!-- no-run: ... -->


def parse_blocks(page: str) -> list[Block]:
    """The fenced code blocks of one Markdown page (``page`` relative to the repo root)."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line before the current one
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").lower()
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        no_run = _NO_RUN.match(previous)
        blocks.append(Block(page, i + 2, info, "\n".join(body) + "\n",
                            no_run.group("reason") if no_run else None))
        previous = ""
        i = j + 1
    return blocks


def doc_pages() -> list[str]:
    pages = sorted(
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)
    )
    return ["README.md", *pages]


def _pages_with_code() -> list[str]:
    pages = [p for p in doc_pages()
             if any(b.language in RUN_LANGUAGES for b in parse_blocks(p))]
    return sorted(set(pages) | set(PENDING_PAGES), key=lambda p: (p != "README.md", p))


def _close_leftovers(namespace: dict[str, Any]) -> None:
    """Close what a page left open: clients first, data directory handles last."""
    objects = [v for v in namespace.values()
               if type(v).__module__.startswith("streamlog") and hasattr(v, "close")]
    objects.sort(key=lambda v: isinstance(v, streamlog.Log))
    for obj in objects:
        try:
            obj.close()
        except Exception:  # closing leftovers must not hide the page's own error
            pass
    if "streamlog.compat" in sys.modules:
        compat = sys.modules["streamlog.compat"]
        try:
            compat.uninstall()
        except Exception:  # nothing was installed
            pass


def run_page(page: str) -> int:
    """Execute the page's python blocks in order in one namespace; returns how many ran.
    Tracebacks point at the page's own lines (the code is compiled under its path)."""
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    ran = 0
    try:
        for block in parse_blocks(page):
            if block.language not in RUN_LANGUAGES or block.no_run is not None:
                continue
            code = compile("\n" * (block.line - 1) + block.code,
                           os.path.join(ROOT, page), "exec")
            exec(code, namespace)
            ran += 1
    finally:
        _close_leftovers(namespace)
    return ran


@pytest.mark.parametrize("page", _pages_with_code())
def test_page_code_runs(page: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if page in PENDING_PAGES:
        pytest.skip(f"{page} is pending (PENDING_PAGES in tests/test_docs.py)")
    monkeypatch.chdir(tmp_path)
    run_page(page)


def test_no_run_blocks_are_rare_and_explained() -> None:
    marked = [b for p in doc_pages() if p not in PENDING_PAGES for b in parse_blocks(p)
              if b.no_run is not None]
    for b in marked:
        assert b.language in RUN_LANGUAGES, f"{b.page}:{b.line}: no-run on a non-python block"
        assert len(b.no_run.split()) >= 3, f"{b.page}:{b.line}: give the reason"
    assert len(marked) <= 5, [f"{b.page}:{b.line}" for b in marked]


def test_python_blocks_are_fenced_so_that_they_run() -> None:
    """```py or ```python3 would be skipped silently: only ```python runs."""
    bad = [f"{b.page}:{b.line - 1} ```{b.language}" for p in doc_pages()
           for b in parse_blocks(p) if b.language in SUSPECT_LANGUAGES]
    assert not bad


def test_parser_finds_blocks_markers_and_indented_fences(tmp_path: Any) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a real Kafka cluster -->\n"
        "```python\nserve()\n```\n\n- item\n\n    ```python\n    y = x + 1\n    ```\n\n"
        "```python-console\n>>> 1\n```\n\n````text\n```python\nno\n```\n````\n",
        encoding="utf-8",
    )
    blocks = parse_blocks(os.path.relpath(page, ROOT))
    assert [(b.language, b.no_run) for b in blocks] == [
        ("python", None), ("python", "needs a real Kafka cluster"), ("python", None),
        ("python-console", None), ("text", None),
    ]
    assert blocks[0].line == 4 and blocks[0].code == "x = 1\n"
    assert blocks[2].code == "y = x + 1\n"


def _readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def test_landing_page_and_ci_use_the_readme_commands_verbatim() -> None:
    install_and_run, install_and_test = _readme_commands()[:2]
    assert '".[test,docs]"' in install_and_test  # CI builds the docs too
    with open(os.path.join(DOCS, "index.md"), encoding="utf-8") as f:
        index = f.read()
    assert install_and_run in index and install_and_test in index
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        assert install_and_test in f.read().splitlines()


def test_every_page_is_in_the_nav() -> None:
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        config = f.read()
    not_in_nav = re.search(r"^not_in_nav: \|\n((?:  .*\n)*)", config, re.M)
    excluded = {line.strip().lstrip("/") for line in
                (not_in_nav.group(1).splitlines() if not_in_nav else [])}
    missing = [p for p in doc_pages()[1:]
               if os.path.relpath(p, "docs") not in excluded
               and not re.search(rf":\s+{re.escape(os.path.relpath(p, 'docs'))}\s*$",
                                 config, re.M)]
    assert not missing, "add these pages to the nav of mkdocs.yml"


def test_benchmark_plots_are_drawn_from_the_results(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "plots.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    drawn = sorted(os.listdir(tmp_path))
    with open(os.path.join(DOCS, "benchmarks.md"), encoding="utf-8") as f:
        shown = sorted(set(re.findall(r"\(img/(bench-[\w-]+\.png)\)", f.read())))
    assert shown == drawn  # every plot drawn is shown, and every plot shown is drawn
    for name in drawn:  # and committed
        assert os.path.exists(os.path.join(DOCS, "img", name)), name


def test_mkdocs_build_strict(tmp_path: Any) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", os.path.join(ROOT, "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert (site / "index.html").exists()
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("streamlog.open", "EventStore", "WrongExpectedVersionError"):
        assert name in api, name
