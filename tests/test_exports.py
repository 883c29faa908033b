"""The public surface: what ``streamlog`` exports, the exception tree, and the package layering."""

from __future__ import annotations
import __future__

import ast
import builtins
import inspect
import pickle
import re
import types
from pathlib import Path

import pytest

import streamlog
import streamlog.errors

SRC = Path(streamlog.__file__).resolve().parent
# The contract lives beside the repository: ../shared/API.md from its root.
API_MD = Path(__file__).resolve().parents[1].parent / "shared" / "API.md"

# The errors API.md promises ("At least: ..."), kept here so the test runs without the file.
API_ERRORS = [
    "ConfigError", "ClosedError", "InvalidTopicError", "TopicExistsError", "UnknownTopicError",
    "UnknownPartitionError", "RecordTooLargeError", "OffsetOutOfRangeError",
    "NoOffsetForPartitionError", "IllegalStateError", "CommitFailedError", "WakeupError",
    "CorruptRecordError", "MetadataCorruptError", "UnsupportedFormatError", "LockTimeoutError",
    "ProducerFencedError", "KafkaTimeoutError",
]
API_STRUCTS = [
    "TopicPartition", "OffsetAndMetadata", "OffsetAndTimestamp", "RecordMetadata",
    "ConsumerRecord",
]


def _public_names() -> set[str]:
    names = set()
    for name, obj in vars(streamlog).items():
        if name.startswith("_"):
            continue
        if isinstance(obj, types.ModuleType):  # subpackages: errors, storage, coordination
            continue
        if isinstance(obj, __future__._Feature):  # ``from __future__ import annotations``
            continue
        names.add(name)
    return names


# ---------------------------------------------------------------- __all__


def test_all_is_sorted_and_unique() -> None:
    assert isinstance(streamlog.__all__, list)
    assert streamlog.__all__ == sorted(streamlog.__all__)
    assert len(set(streamlog.__all__)) == len(streamlog.__all__)


def test_all_equals_public_names() -> None:
    assert set(streamlog.__all__) == _public_names()


def test_star_import() -> None:
    namespace: dict[str, object] = {}
    exec("from streamlog import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(streamlog.__all__)


def test_errors_all_matches_module() -> None:
    errors = streamlog.errors
    assert errors.__all__ == sorted(errors.__all__)
    classes = {
        n for n, o in vars(errors).items()
        if inspect.isclass(o) and issubclass(o, BaseException)
        and o.__module__ in ("streamlog", "streamlog.errors")
    }
    assert set(errors.__all__) == classes
    for name in errors.__all__:
        assert name in streamlog.__all__, f"{name} is not re-exported from streamlog"
        assert getattr(streamlog, name) is getattr(errors, name)


def test_api_names_exist() -> None:
    for name in ["open", "Log", "check", *API_STRUCTS, *API_ERRORS]:
        assert name in streamlog.__all__, name


def test_api_md_errors_are_all_exported() -> None:
    """Every name in API.md's errors paragraph exists and derives from StreamlogError."""
    if not API_MD.exists():
        pytest.skip("API.md not available")
    text = API_MD.read_text()
    section = text[text.index("## Errors"):]
    section = section[: section.find("\n# ")] if "\n# " in section else section  # v1 only
    named = {n for n in re.findall(r"`([A-Z][A-Za-z]+Error)`", section)
             if not hasattr(builtins, n)}  # "(also a `ValueError`)"
    assert set(API_ERRORS) <= named | {"StreamlogError"}
    assert len(named) >= len(API_ERRORS)
    for name in named:
        cls = getattr(streamlog, name)
        assert issubclass(cls, streamlog.StreamlogError), name


@pytest.mark.parametrize("name", API_ERRORS)
def test_api_errors_derive_from_streamlog_error(name: str) -> None:
    cls = getattr(streamlog, name)
    assert inspect.isclass(cls)
    assert issubclass(cls, streamlog.StreamlogError)
    assert issubclass(cls, Exception)


def test_builtin_bases() -> None:
    assert issubclass(streamlog.ConfigError, ValueError)
    assert issubclass(streamlog.KafkaTimeoutError, TimeoutError)
    assert issubclass(streamlog.LockTimeoutError, TimeoutError)
    assert issubclass(streamlog.InvalidTopicError, ValueError)
    assert issubclass(streamlog.RecordTooLargeError, ValueError)
    assert issubclass(streamlog.StorageIOError, OSError)
    with pytest.raises(ValueError):
        raise streamlog.ConfigError("x")
    with pytest.raises(TimeoutError):
        raise streamlog.KafkaTimeoutError("x")


@pytest.mark.parametrize("name", sorted(set(streamlog.__all__)))
def test_exported_objects_report_module_streamlog(name: str) -> None:
    obj = getattr(streamlog, name)
    assert getattr(obj, "__module__", None) == "streamlog", (name, obj)


def test_structs_pickle_and_repr() -> None:
    tp = streamlog.TopicPartition("orders", 3)
    assert repr(tp) == "TopicPartition(topic='orders', partition=3)"
    assert pickle.loads(pickle.dumps(tp)) == tp
    assert {tp: 1}[streamlog.TopicPartition("orders", 3)] == 1
    with pytest.raises(AttributeError):
        tp.partition = 4  # type: ignore[misc]


# ---------------------------------------------------------------- the error tree

_TREE_LINE = re.compile(r"^(?P<indent>(?:[│ ] {3})*)(?:[├└]── )?(?P<name>[A-Z]\w+)(?P<rest>.*)$")


def _parse_tree(doc: str) -> list[tuple[str, str | None, list[str], bool, list[str]]]:
    """``(name, parent, also-bases, retriable, attributes)`` for each line of the tree."""
    lines = doc.split("The tree::", 1)[1].strip("\n").split("\n")
    block = []
    for line in lines:
        if not line.strip():
            if block:
                break
            continue
        block.append(line[4:])  # the literal block is indented by four spaces
    out = []
    stack: list[str] = []
    for line in block:
        m = _TREE_LINE.match(line)
        assert m, f"cannot parse tree line {line!r}"
        depth = len(m["indent"]) // 4 + (1 if "──" in line else 0)
        name, rest = m["name"], m["rest"]
        del stack[depth:]
        parent = stack[-1] if stack else None
        assert len(stack) == depth, f"bad indentation at {line!r}"
        stack.append(name)
        also = re.findall(r"also (\w+)", rest)
        retriable = "retriable" in rest
        attrs = re.findall(r"\.(\w+)", rest)
        out.append((name, parent, also, retriable, attrs))
    return out


TREE = _parse_tree(streamlog.errors.__doc__ or "")


def test_tree_parsed() -> None:
    names = [n for n, *_ in TREE]
    assert names[0] == "StreamlogError"
    assert len(names) == len(set(names))
    assert len(names) > 20


def test_tree_lists_exactly_the_error_classes() -> None:
    assert {n for n, *_ in TREE} == set(streamlog.errors.__all__)


@pytest.mark.parametrize(("name", "parent", "also", "retriable", "attrs"), TREE,
                         ids=[t[0] for t in TREE])
def test_tree_matches_hierarchy(
    name: str, parent: str | None, also: list[str], retriable: bool, attrs: list[str]
) -> None:
    cls = getattr(streamlog.errors, name)
    own_bases = [b for b in cls.__bases__ if b.__module__ == "streamlog"]
    foreign_bases = [b for b in cls.__bases__ if b.__module__ != "streamlog"]
    if parent is None:
        assert own_bases == []
        assert foreign_bases == [Exception]
    else:
        assert own_bases == [getattr(streamlog.errors, parent)]
        assert [b.__name__ for b in foreign_bases] == also
        for base in also:
            assert issubclass(cls, getattr(builtins, base))
    assert cls.retriable is retriable
    if attrs:
        err = _instance(cls)
        for attr in attrs:
            assert hasattr(err, attr), (name, attr)


def _instance(cls: type[BaseException]) -> BaseException:
    try:
        params = inspect.signature(cls).parameters
    except ValueError:  # no __init__ of its own: BaseException's (*args)
        params = {}  # type: ignore[assignment]
    if "errno" in params:
        return cls(28, "No space left on device", "/x/y")
    kwargs = {}
    if "path" in params:
        kwargs["path"] = "/data/file"
    if "position" in params:
        kwargs["position"] = 12
    return cls("message", **kwargs)


def _error_examples() -> list[BaseException]:
    return [_instance(getattr(streamlog.errors, n)) for n in streamlog.errors.__all__]


@pytest.mark.parametrize("err", _error_examples(), ids=lambda e: type(e).__name__)
def test_errors_pickle(err: BaseException) -> None:
    """Errors cross process boundaries (multiprocessing, concurrent.futures) intact."""
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert copy.args == err.args
    for attr in ("path", "position", "errno", "filename", "strerror", "offset"):
        assert getattr(copy, attr, None) == getattr(err, attr, None), attr


def test_path_errors_name_the_path() -> None:
    for cls in (streamlog.MetadataCorruptError, streamlog.UnsupportedFormatError,
                streamlog.DataDirectoryError):
        err = cls("bad", path="/d/meta/topics/t.json")
        assert err.path == "/d/meta/topics/t.json"
        assert str(err) == "bad: /d/meta/topics/t.json"
    err2 = streamlog.CorruptRecordError("bad batch", path="/d/x.log", position=7)
    assert (err2.path, err2.position) == ("/d/x.log", 7)
    assert "/d/x.log" in str(err2) and "7" in str(err2)
    err3 = streamlog.StorageIOError(28, "No space left on device", "/d/x.log")
    assert (err3.errno, err3.filename) == (28, "/d/x.log")
    assert str(err3) == "[Errno 28] No space left on device: /d/x.log"


# ---------------------------------------------------------------- layering


def _imports(path: Path) -> set[str]:
    """Absolute names of the ``streamlog`` modules that ``path`` imports (any depth)."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    package = parts if path.name == "__init__.py" else parts[:-1]
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if node.module:  # ``from .. import x`` is a submodule x, checked by its name
                found.add(mod)
            # ``from . import x`` may import the submodule x
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m == "streamlog" or m.startswith("streamlog.")}


def _modules(sub: str) -> list[Path]:
    return sorted((SRC / sub).rglob("*.py"))


def _within(mod: str, package: str) -> bool:
    return mod == package or mod.startswith(package + ".")


def test_import_parser_sees_relative_imports() -> None:
    found = _imports(SRC / "coordination" / "_manager.py")
    assert "streamlog.coordination._catalog" in found
    assert "streamlog.storage._datadir" in found
    assert "streamlog._names" in found
    assert "streamlog._layout" in _imports(SRC / "storage" / "_datadir.py")  # ``from .. import x``


@pytest.mark.parametrize("path", _modules("clients"), ids=lambda p: p.name)
def test_clients_do_not_import_the_handle(path: Path) -> None:
    """Clients receive the ``LogManager``; the public handle sits above them."""
    for mod in _imports(path):
        assert not _within(mod, "streamlog._log"), f"{path.name} imports {mod}"
        assert not _within(mod, "streamlog._check"), f"{path.name} imports {mod}"


_GROUP_FILES = re.compile(
    r"""["'](groups|members|state\.json|offsets\.log|offsets\.lock|group\.lock)["']"""
    r"|_layout\.(group|offsets)"
)


@pytest.mark.parametrize("path", _modules("storage"), ids=lambda p: p.name)
def test_storage_does_not_know_group_files(path: Path) -> None:
    """What lives under meta/groups belongs to coordination (see ``_layout``)."""
    found = _GROUP_FILES.findall(path.read_text())
    assert not found, f"{path.name} names group files: {found}"


def test_layout_is_the_only_namer_of_directories() -> None:
    """The data directory's paths are spelled in ``_layout`` alone."""
    spelled = re.compile(r"""["'](meta|topics|trash|groups|catalog\.lock|clean-shutdown)["']""")
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "_layout.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "os.path.join" in line and spelled.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("path", _modules("storage"), ids=lambda p: p.name)
def test_storage_imports_no_upper_layer(path: Path) -> None:
    for mod in _imports(path):
        for upper in ("streamlog.coordination", "streamlog._log", "streamlog.clients",
                      "streamlog._check"):
            assert not _within(mod, upper), f"{path.name} imports {mod}"
        # only the package's base modules and the storage layer itself
        allowed = ("streamlog.storage", "streamlog.errors", "streamlog._config", "streamlog._fs",
                   "streamlog._names", "streamlog._structs", "streamlog._layout")
        assert any(_within(mod, a) for a in allowed), f"{path.name} imports {mod}"


@pytest.mark.parametrize("path", _modules("coordination"), ids=lambda p: p.name)
def test_coordination_does_not_import_log_or_clients(path: Path) -> None:
    for mod in _imports(path):
        assert not _within(mod, "streamlog._log"), f"{path.name} imports {mod}"
        assert not _within(mod, "streamlog.clients"), f"{path.name} imports {mod}"
        assert not _within(mod, "streamlog._check"), f"{path.name} imports {mod}"


def test_base_modules_import_no_layer() -> None:
    for name in ("errors.py", "_structs.py", "_config.py", "_names.py", "_fs.py", "_layout.py"):
        for mod in _imports(SRC / name):
            for layer in ("streamlog.storage", "streamlog.coordination", "streamlog.clients",
                          "streamlog._log"):
                assert not _within(mod, layer), f"{name} imports {mod}"


def test_layers_exist() -> None:
    assert _modules("storage") and _modules("coordination")


_BELOW_STREAMS = [
    *_modules("storage"), *_modules("coordination"), *_modules("clients"), *_modules("aio"),
    SRC / "_log.py", SRC / "_eventstore.py", SRC / "_table.py",
]


@pytest.mark.parametrize("path", _BELOW_STREAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nothing_below_streams_imports_it(path: Path) -> None:
    """Stream processing sits above the handle and the clients; the shims and the pytest
    plugin above it."""
    for mod in _imports(path):
        for upper in ("streamlog.streams", "streamlog.compat", "streamlog.testing"):
            assert not _within(mod, upper), f"{path.name} imports {mod}"


@pytest.mark.parametrize("path", _modules("streams"), ids=lambda p: p.name)
def test_streams_do_not_import_the_shims_or_the_cli(path: Path) -> None:
    for mod in _imports(path):
        for upper in ("streamlog.compat", "streamlog.testing", "streamlog._cli",
                      "streamlog.aio"):
            assert not _within(mod, upper), f"{path.name} imports {mod}"
