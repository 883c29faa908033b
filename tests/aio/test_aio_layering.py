"""``streamlog.aio`` sits at the clients' level: it imports the layers below it (and the
event store and table), nothing below imports it, and it exports what docs/asyncio.md
lists."""

from __future__ import annotations

from pathlib import Path

import pytest

import streamlog
import streamlog.aio

from ..test_exports import SRC, _imports, _modules, _within

ALLOWED = (
    "streamlog.aio",
    "streamlog.clients",
    "streamlog.coordination",
    "streamlog.storage",
    "streamlog._eventstore",
    "streamlog._table",
    "streamlog._structs",
    "streamlog._config",
    "streamlog.errors",
)


@pytest.mark.parametrize("path", _modules("aio"), ids=lambda p: p.name)
def test_aio_imports_only_its_layer_and_below(path: Path) -> None:
    for mod in _imports(path):
        assert any(_within(mod, a) for a in ALLOWED), f"{path.name} imports {mod}"


def test_nothing_below_imports_aio() -> None:
    below = [*_modules("clients"), *_modules("coordination"), *_modules("storage")]
    below += [SRC / "_eventstore.py", SRC / "_table.py", SRC / "_log.py"]
    for path in below:
        for mod in _imports(path):
            assert not _within(mod, "streamlog.aio"), f"{path} imports {mod}"


def test_exports() -> None:
    assert streamlog.aio.__all__ == sorted(streamlog.aio.__all__)
    for name in streamlog.aio.__all__:
        assert getattr(streamlog.aio, name) is not None
    assert streamlog.aio.AIOProducer is streamlog.aio._producer.AIOProducer
    assert "aio" not in streamlog.__all__  # a subpackage, as errors
