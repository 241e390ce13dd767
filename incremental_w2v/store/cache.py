"""The local cache of a remote store: verified copies of versions, and local scratch space.

Layout (one folder per store, under the cache root)::

    <cache root>/<store id>/
      .incw2v-cache              the marker: outputs are never written in here
      versions/vNNNN-UPLOAD/     a complete copy of one upload of a version
      versions/vNNNN-UPLOAD.lock shared while a process uses the copy (eviction skips it)
      meta/vNNNN-UPLOAD.json     the version's meta.json (immutable, like the upload)
      incoming/.dl-XXXXXXXX/     a download in progress (renamed into versions/ when whole)
      scratch/.work-XXXXXXXX/    working files of a run; .staging-XXXXXXXX/: a version
                                 being written before it is uploaded

Every file is checked against its sha256 as it is downloaded, and the store
checks it again before a model is unpickled. A copy appears in ``versions/``
only complete (a rename), so a killed download leaves only ``incoming/``
leftovers, which the next run on the host sweeps (each in-progress folder is
held with a lock, so a running process's folders are never swept). Beyond
``max_bytes`` the least recently used copies are evicted, never one in use.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from incremental_w2v.errors import DataError
from incremental_w2v.fsutil import (
    CACHE_MARKER,
    atomic_write_bytes,
    create_new,
    open_nofollow,
    remove_tree,
)

logger = logging.getLogger(__name__)

_LOCK_SUFFIX = ".lock"


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        with suppress(OSError):
            os.close(fd)
    fds.clear()


def _lock(path: Path, exclusive: bool, wait: bool = True) -> int | None:
    """A flock on ``path`` (created if needed); None if ``wait`` is False and it is busy."""
    fd = open_nofollow(path, os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                    | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Cache:
    """The local cache folder of one remote store."""

    def __init__(self, root: Path, max_bytes: int, label: str) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.versions = root / "versions"
        self.meta_dir = root / "meta"
        self.incoming = root / "incoming"
        self.scratch = root / "scratch"
        self._held: dict[str, int] = {}  # copies this process uses: their shared locks
        # Released with this object (a library user may open many stores in one process).
        weakref.finalize(self, _close_all, self._held)
        for folder in (root, self.versions, self.meta_dir, self.incoming, self.scratch):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = root / CACHE_MARKER
        if not marker.exists():
            atomic_write_bytes(marker, json.dumps({"incw2v_cache_of": label}).encode(),
                               store=root)

    # -- private folders ----------------------------------------------------------------

    @contextmanager
    def private(self, parent: Path, prefix: str) -> Iterator[Path]:
        """A new folder only this process uses (its lock says so), removed on exit."""
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        lock = _lock(parent / f"{path.name}{_LOCK_SUFFIX}", exclusive=True)
        assert lock is not None
        try:
            path.mkdir(mode=0o700)
            yield path
        finally:
            remove_tree(path)
            with suppress(OSError):
                (parent / f"{path.name}{_LOCK_SUFFIX}").unlink()
            os.close(lock)

    def sweep(self) -> list[str]:
        """Remove folders left by killed processes of this host (none in use is touched)."""
        removed = []
        for parent in (self.scratch, self.incoming):
            for path in parent.iterdir():
                if path.name.endswith(_LOCK_SUFFIX) or not path.name.startswith(
                        (".work-", ".staging-", ".dl-")):
                    continue
                lock_path = parent / f"{path.name}{_LOCK_SUFFIX}"
                fd = _lock(lock_path, exclusive=True, wait=False)
                if fd is None:
                    continue  # a live process's folder
                try:
                    remove_tree(path)
                    with suppress(OSError):
                        lock_path.unlink()
                finally:
                    os.close(fd)
                removed.append(f"{parent.name}/{path.name}")
        for path in self.meta_dir.iterdir():
            if path.name.startswith(".v"):  # a meta.json being cached when its run was killed
                with suppress(OSError):
                    path.unlink()
        return removed

    # -- versions -------------------------------------------------------------------------

    def copy_of(self, key: str, names: list[str],
                fetch: Callable[[str, Path], None]) -> Path:
        """The folder of the complete copy ``key``; ``fetch(name, path)`` downloads a file."""
        folder = self.versions / key
        if key not in self._held:
            fd = _lock(self.versions / f"{key}{_LOCK_SUFFIX}", exclusive=False)
            assert fd is not None
            self._held[key] = fd
        os.utime(self.versions / f"{key}{_LOCK_SUFFIX}")  # used now: the LRU clock
        if folder.is_dir() and not folder.is_symlink() and all(
                (folder / n).is_file() for n in names):
            return folder
        with self.private(self.incoming, ".dl-") as download:
            for name in names:
                fetch(name, download / name)
            remove_tree(folder)  # an incomplete copy (damaged by hand)
            try:
                os.rename(download, folder)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # Another process of this host finished the same download first.
        self.evict()
        return folder

    def forget(self, key: str) -> None:
        remove_tree(self.versions / key)

    def size_of(self, key: str) -> int:
        folder = self.versions / key
        if not folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())

    def evict(self) -> list[str]:
        """Drop least recently used copies until the cache fits; never a copy in use."""
        entries = []
        for folder in self.versions.iterdir():
            if folder.is_dir() and not folder.name.endswith(_LOCK_SUFFIX):
                lock_path = self.versions / f"{folder.name}{_LOCK_SUFFIX}"
                used = lock_path.stat().st_mtime if lock_path.exists() else 0.0
                entries.append((used, folder, self.size_of(folder.name)))
        total = sum(size for _, _, size in entries)
        evicted = []
        for _, folder, size in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if folder.name in self._held:
                continue
            fd = _lock(self.versions / f"{folder.name}{_LOCK_SUFFIX}", exclusive=True,
                       wait=False)
            if fd is None:
                continue  # another process of this host uses it
            try:
                remove_tree(folder)
            finally:
                os.close(fd)
            total -= size
            evicted.append(folder.name)
        if evicted:
            logger.info("cache: evicted %s (limit %d bytes)", ", ".join(evicted), self.max_bytes)
        if total > self.max_bytes:
            logger.warning("cache %s holds %d bytes, over its limit of %d: the versions in use "
                           "are larger than the limit", self.root, total, self.max_bytes)
        return evicted

    def adopt(self, key: str, folder: Path) -> None:
        """Keep a sealed staging folder as the copy ``key`` (what we uploaded, we have)."""
        target = self.versions / key
        if target.exists():
            return
        try:
            os.rename(folder, target)
        except OSError as exc:
            logger.debug("could not keep %s in the cache: %s", key, exc)
            return
        self.evict()

    # -- meta -----------------------------------------------------------------------------

    def meta(self, key: str, fetch: Callable[[], bytes]) -> bytes:
        """A version's meta.json, from the cache or fetched (and kept: uploads never change)."""
        path = self.meta_dir / f"{key}.json"
        try:
            with os.fdopen(open_nofollow(path), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DataError(f"the cached {path} cannot be read: {exc.strerror}",
                            hint=f"delete {path}; it is fetched again") from None
        data = fetch()
        self.keep_meta(key, data)
        return data

    def keep_meta(self, key: str, data: bytes) -> None:
        with suppress(OSError):
            tmp = self.meta_dir / f".{key}.{secrets.token_hex(4)}"
            fd = create_new(tmp)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self.meta_dir / f"{key}.json")
