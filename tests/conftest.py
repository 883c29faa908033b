"""Fixtures and options for the whole suite (layout and markers: ``tests/README.md``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import streamlog


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_dir(tmp_path: os.PathLike[str]) -> str:
    """A data directory that does not exist yet (``streamlog.open`` creates it)."""
    return os.path.join(os.fspath(tmp_path), "data")


@pytest.fixture
def log(data_dir: str) -> Iterator[streamlog.Log]:
    """An empty ``Log`` open on ``data_dir``, closed after the test.

    A module that wants it prepared (topics, records) overrides it with a fixture of
    the same name that takes this one: ``def log(log): log.create_topic(...); return log``.
    """
    with streamlog.open(data_dir) as handle:
        yield handle
