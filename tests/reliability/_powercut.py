"""Simulated power loss (reliability plan T3): what a crash of the machine may leave on disk.

``PowerModel`` wraps the I/O facade ``streamlog._fs.fs`` and keeps, for every
file and directory under ``top``, what is *durable*:

- a file's content as of its last ``fdatasync``/``fsync``/``msync`` (the bytes
  read just *before* the sync call: whatever was written while the call ran
  is not counted as synced; data written through a map is durable only
  after such a sync, so mmap writes are modelled conservatively);
- a directory's entries as of its last ``fsync`` (``sync_dir``): a file created,
  renamed or unlinked since is not durable in that directory, and a
  directory's own fsync does not make its entry in its parent durable.

Files are identified by inode while they exist (a rename keeps the identity,
``unlink`` and a rename over a file end one), so a directory entry can name
a file that has since been unlinked or replaced; its content at that moment
is kept.

The cut: at the ``cut_at``-th facade call (in any thread) the model captures
the current tree and raises ``PowerCut`` (a ``StorageIOError``, EIO) from that
call and from every later one, and from a call that was in progress, so no
acknowledgement can follow the cut. ``build`` then chooses, at random, what
survived (the ALICE/LevelDB fault-injection model):

- each directory: its durable entries (every change since its last fsync
  undone: new files gone, unlinks and renames undone), its current entries,
  or a per-name mix of the two (a rename stays atomic per name);
- each file: its synced content, its current content, a random prefix of
  the changes (write-back in order), or a page-by-page (4 KiB, sometimes
  512-byte sector) mix of synced and current content; where the file grew
  past its synced size, the part not kept is zeros or random garbage (the
  size is updated before the data). Bytes that are equal in the synced and
  the current content are never changed (a write does not damage bytes
  outside its range: SQLite's "powersafe overwrite").

``mode="ordered"`` keeps only the gentler outcomes (whole directories, prefix
or whole-file choices), for the stateful model test.

``materialize`` writes the chosen image over ``top``; the test then reopens
the data directory in the same process.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import stat
import threading
from collections.abc import Callable
from typing import Any

from streamlog.errors import StorageIOError

from ._faults import restore_facade, wrap_facade  # (the facade methods: METHODS)

PAGE = 4096
SECTOR = 512


class PowerCut(StorageIOError):
    """The simulated machine lost power: this call (and every later one) never returned."""

    def __init__(self) -> None:
        super().__init__(errno.EIO, "simulated power cut", None)


Image = dict[str, bytes | None]  # relative path -> file content, or None for a directory


def _read_path(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class PowerModel:
    """Tracks durability through ``fs`` and builds what a power cut may leave (module doc)."""

    def __init__(self, top: str, *, mode: str = "pessimistic") -> None:
        assert mode in ("pessimistic", "ordered")
        self.top = os.path.abspath(top)
        self.mode = mode
        self._lock = threading.RLock()
        self._ids: dict[tuple[int, int], int] = {}
        self._next_id = 0
        self.kind: dict[int, str] = {}
        self.durable_data: dict[int, bytes] = {}
        self.durable_dirs: dict[int, dict[str, int]] = {}
        self.removed: dict[int, bytes] = {}
        self.calls = 0
        self.cut_at: int | None = None
        self.dead = False
        self.passthrough = False
        self.cut_in: str | None = None  # the facade method the cut happened in
        self._cur_dirs: dict[int, dict[str, int]] = {}
        self._cur_data: dict[int, bytes] = {}
        self._root_id = -1
        self._saved: dict[str, Any] = {}
        self.baseline()

    # ------------------------------------------------------------------ identities
    def _new_id(self, key: tuple[int, int], kind: str) -> int:
        self._next_id += 1
        self._ids[key] = self._next_id
        self.kind[self._next_id] = kind
        return self._next_id

    def _id_of(self, path: str) -> int | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        return self._id_of_stat(st)

    def _id_of_stat(self, st: os.stat_result) -> int | None:
        if stat.S_ISDIR(st.st_mode):
            kind = "dir"
        elif stat.S_ISREG(st.st_mode):
            kind = "file"
        else:
            return None  # symlinks, sockets: not part of the model
        key = (st.st_dev, st.st_ino)
        found = self._ids.get(key)
        if found is not None and self.kind[found] == kind:
            return found
        return self._new_id(key, kind)

    def _forget(self, st: os.stat_result) -> None:
        self._ids.pop((st.st_dev, st.st_ino), None)

    def _listing(self, path: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in os.listdir(path):
            i = self._id_of(os.path.join(path, name))
            if i is not None:
                out[name] = i
        return out

    def baseline(self) -> None:
        """Everything that exists now is durable (as after a clean shutdown and a sync)."""
        with self._lock:
            os.makedirs(self.top, exist_ok=True)
            rid = self._id_of(self.top)
            assert rid is not None
            self._root_id = rid
            for dirpath, dirnames, filenames in os.walk(self.top):
                did = self._id_of(dirpath)
                assert did is not None
                self.durable_dirs[did] = self._listing(dirpath)
                for name in filenames:
                    full = os.path.join(dirpath, name)
                    fid = self._id_of(full)
                    if fid is not None and self.kind[fid] == "file":
                        self.durable_data[fid] = _read_path(full)
                dirnames.sort()

    # ------------------------------------------------------------------ install
    def install(self) -> None:
        self._saved = wrap_facade(self._wrap)

    def uninstall(self) -> None:
        restore_facade(self._saved)
        self._saved = {}

    def revive(self) -> None:
        """After the cut: let calls through untracked, so the dead handles can be closed."""
        with self._lock:
            self.passthrough = True

    def cut_now(self) -> None:
        """Cut the power now (if it has not been cut yet)."""
        with self._lock:
            if not self.dead:
                self._capture()
                self.dead = True
                self.cut_in = "end"

    def _wrap(self, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
        pre = getattr(self, f"_pre_{name}", None)
        post = getattr(self, f"_post_{name}", None)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self.passthrough:
                    return orig(*args, **kwargs)
                if not self.dead:
                    self.calls += 1
                    if self.cut_at is not None and self.calls >= self.cut_at:
                        self._capture()
                        self.dead = True
                        self.cut_in = name
                if self.dead:
                    if name == "close":  # (the test process must not run out of them)
                        try:
                            orig(*args, **kwargs)
                        except OSError:
                            pass
                    raise PowerCut
                try:
                    state = pre(*args, **kwargs) if pre is not None else None
                    hooked = True
                except OSError:  # (a closed descriptor): the real call reports it
                    state, hooked = None, False
                result = orig(*args, **kwargs)
                if self.dead:  # the cut happened (in another thread) while this ran
                    raise PowerCut
                if post is not None and hooked:
                    post(state, result, *args, **kwargs)
                return result

        return wrapper

    # ------------------------------------------------------------------ hooks
    def _pre_open(self, path: str, **kw: Any) -> bool:
        return os.path.lexists(path)

    def _post_open(self, existed: bool, fd: int, path: str, **kw: Any) -> None:
        st = os.fstat(fd)
        if kw.get("create") and not existed:
            self._new_id((st.st_dev, st.st_ino), "file")
        else:
            self._id_of_stat(st)

    def _pre_sync(self, fd: int, path: str | None = None) -> bytes:
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def _post_sync(self, content: bytes, _r: None, fd: int, path: str | None = None) -> None:
        fid = self._id_of_stat(os.fstat(fd))
        if fid is not None:
            self.durable_data[fid] = content

    _pre_fsync = _pre_sync
    _post_fsync = _post_sync

    def _pre_msync(self, mm: Any, path: str | None = None) -> bytes:
        assert path is not None
        return _read_path(path)

    def _post_msync(self, content: bytes, _r: None, mm: Any, path: str | None = None) -> None:
        assert path is not None
        fid = self._id_of(path)
        if fid is not None:
            self.durable_data[fid] = content

    def _pre_sync_dir(self, path: str) -> dict[str, int]:
        return self._listing(path)

    def _post_sync_dir(self, listing: dict[str, int], _r: None, path: str) -> None:
        did = self._id_of(path)
        if did is not None:
            self.durable_dirs[did] = listing

    def _pre_unlink(self, path: str) -> os.stat_result | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        fid = self._id_of_stat(st)
        if fid is not None and self.kind[fid] == "file":
            self.removed[fid] = _read_path(path)
        return st

    def _post_unlink(self, st: os.stat_result | None, _r: None, path: str) -> None:
        if st is not None:
            self._forget(st)

    def _pre_replace(self, src: str, dst: str) -> os.stat_result | None:
        self._id_of(src)
        try:
            st = os.lstat(dst)
        except FileNotFoundError:
            return None
        fid = self._id_of_stat(st)
        if fid is not None and self.kind[fid] == "file":
            self.removed[fid] = _read_path(dst)
        return st

    def _post_replace(self, st: os.stat_result | None, _r: None, src: str, dst: str) -> None:
        if st is not None:
            self._forget(st)
        self._id_of(dst)

    # ------------------------------------------------------------------ the cut
    def _capture(self) -> None:
        """Record the current tree (what the page cache holds at the moment of the cut)."""
        self._cur_dirs = {}
        self._cur_data = {}
        for dirpath, dirnames, filenames in os.walk(self.top):
            did = self._id_of(dirpath)
            assert did is not None
            self._cur_dirs[did] = self._listing(dirpath)
            for name in filenames:
                full = os.path.join(dirpath, name)
                fid = self._id_of(full)
                if fid is not None and self.kind[fid] == "file":
                    self._cur_data[fid] = _read_path(full)
            dirnames.sort()

    def build(self, rng: random.Random, *, worst: bool = False) -> Image:
        """Choose at random what survived the cut (module docstring).

        With ``worst``, nothing that was not synced survives: every directory
        has its durable entries and every file its synced content.
        """
        assert self.dead, "cut the power first"
        image: Image = {}

        def visit(did: int, rel: str, depth: int) -> None:
            assert depth < 50
            durable = self.durable_dirs.get(did, {})
            current = self._cur_dirs.get(did, durable)
            r = 0.0 if worst else rng.random()
            if durable == current or r < 0.5:
                listing = durable
            elif r < 0.75 or self.mode == "ordered":
                listing = current
            else:
                listing = {}
                for name in sorted(set(durable) | set(current)):
                    pick = durable.get(name) if rng.random() < 0.5 else current.get(name)
                    if pick is not None:
                        listing[name] = pick
            for name, cid in sorted(listing.items()):
                path = os.path.join(rel, name) if rel else name
                if self.kind[cid] == "dir":
                    image[path] = None
                    visit(cid, path, depth + 1)
                else:
                    image[path] = self._content(cid, rng, worst)

        visit(self._root_id, "", 0)
        return image

    def _content(self, fid: int, rng: random.Random, worst: bool = False) -> bytes:
        synced = self.durable_data.get(fid, b"")
        current = self._cur_data.get(fid, self.removed.get(fid, synced))
        if synced == current:
            return current
        r = 0.0 if worst else rng.random()
        if r < 0.25:
            return synced
        if r < 0.4:
            return current
        size = len(current) if rng.random() < 0.6 else len(synced)
        if r < 0.65 or self.mode == "ordered":
            # written back in order up to a random sector
            n = max(len(synced), len(current))
            diffs = [
                o for o in range(0, n, SECTOR) if synced[o : o + SECTOR] != current[o : o + SECTOR]
            ]
            k = rng.randint(0, len(diffs))
            done = set(diffs[:k])
            return self._mix(synced, current, SECTOR, size, done.__contains__, rng)
        # pages (or sectors) written back in any order
        unit = PAGE if rng.random() < 0.7 else SECTOR
        return self._mix(synced, current, unit, size, lambda _o: rng.random() < 0.5, rng)

    def _mix(
        self,
        synced: bytes,
        current: bytes,
        unit: int,
        size: int,
        is_new: Callable[[int], bool],
        rng: random.Random,
    ) -> bytes:
        """``size`` bytes, each ``unit`` from the current or the synced content; what lies
        past the end of the chosen version was never written (zeros or garbage)."""
        out = bytearray()
        for o in range(0, size, unit):
            e = min(size, o + unit)
            chunk = current[o:e] if is_new(o) else synced[o:e]
            if len(chunk) < e - o:
                chunk += self._tail_fill(e - o - len(chunk), rng)
            out += chunk
        return bytes(out)

    @staticmethod
    def _tail_fill(n: int, rng: random.Random) -> bytes:
        """What a block past the synced size holds when its data was not written."""
        if rng.random() < 0.7:
            return bytes(n)
        return rng.randbytes(n)


def materialize(image: Image, top: str) -> None:
    """Replace everything under ``top`` by ``image``."""
    for name in os.listdir(top):
        full = os.path.join(top, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)
    for rel in sorted(image, key=lambda p: p.count(os.sep)):
        full = os.path.join(top, rel)
        content = image[rel]
        if content is None:
            os.makedirs(full, mode=0o700, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), mode=0o700, exist_ok=True)
            with open(full, "wb") as f:
                f.write(content)
            os.chmod(full, 0o600)
