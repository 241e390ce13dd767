"""A store in a local folder: version folders renamed into place, an OS file lock.

Layout::

    store/
      .incw2v-store        the marker: written at creation, before anything else
      manifest.json        the single source of truth, replaced atomically
      versions/v0001/      immutable once committed
      .staging-XXXXXXXX/   a version being written (swept at the next run)
      .work-XXXXXXXX/      working files of a run (swept at the next run)
      .trash-vNNNN-XXXXXX/ a version folder being deleted (swept at the next run)
      .lock, .lock.info    one run at a time, and who holds it
      .readers/            shared locks of readers (see ``pins``)

Publishing renames the sealed staging folder into ``versions/`` and fsyncs
``versions/``; the manifest replace (temp file, fsync, ``os.replace``) is the
commit. No write here follows a symlink: new files are created with
``O_EXCL | O_NOFOLLOW`` and renamed over the old name (a planted link or hard
link is replaced, its target untouched); the lock file is opened with
``O_NOFOLLOW`` and never truncated or written; staging and working folders
are created new, with unguessable names and mode 0700, so nobody can plant
a link inside them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from incremental_w2v import __version__
from incremental_w2v.errors import ConfigError, DataError, IncW2VError, LockedError
from incremental_w2v.fsutil import (
    STORE_MARKER,
    atomic_write_bytes,
    fsync_dir,
    open_nofollow,
    os_error,
    remove_tree,
)
from incremental_w2v.ingest.diskspace import folder_bytes
from incremental_w2v.store import pins
from incremental_w2v.store.backend import (
    MANIFEST,
    MARKER,
    META,
    STAGING_PREFIX,
    STAGING_RE,
    TMP_RE,
    TRASH_PREFIX,
    TRASH_RE,
    VERSIONS,
    WORK_PREFIX,
    WORK_RE,
    Backend,
    OnDisk,
    PruneLocks,
)
from incremental_w2v.store.holder import alive_here, describe, holder_info
from incremental_w2v.store.manifest import VERSION_RE, now_iso

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
INFO_NAME = ".lock.info"
POLL_SECONDS = 0.1


def _symlink_error(path: Path, what: str) -> DataError:
    return DataError(
        f"{path} is a symbolic link; {what} must be a plain file inside the store, and "
        "incw2v never writes through a link",
        hint=f"remove the link {path} (incw2v recreates what it needs)",
    )


def read_plain(path: Path, what: str) -> bytes:
    """The bytes of a store file that must not be a link (FileNotFoundError if missing)."""
    try:
        fd = open_nofollow(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _symlink_error(path, what) from None
        if exc.errno == errno.EINVAL:
            raise DataError(f"{path} is not a plain file; {what} must be one",
                            hint=f"move {path} out of the store") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


class LocalBackend(Backend):
    """A store in a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self.scratch = root

    # -- recognising ----------------------------------------------------------------------

    def is_new(self) -> bool:
        if not self.root.exists():
            return True
        if not self.root.is_dir():
            raise ConfigError(f"store {self.root} exists and is not a folder",
                              hint="point 'store:' at a folder of its own")
        # A creation interrupted before the marker was in place leaves only its temp file.
        return all(self._creation_leftover(p) for p in self.root.iterdir())

    @staticmethod
    def _creation_leftover(path: Path) -> bool:
        return bool(TMP_RE.match(path.name)) and path.name.endswith(f"-{STORE_MARKER}")

    def has_marker(self) -> bool:
        return (self.root / STORE_MARKER).is_file() and not (
            self.root / STORE_MARKER).is_symlink()

    def has_versions(self) -> bool:
        versions = self.root / VERSIONS
        if not versions.is_dir() or versions.is_symlink():
            return False
        return any(VERSION_RE.match(p.name) and (p / MARKER).is_file()
                   for p in versions.iterdir())

    def create(self, manifest: bytes) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for path in self.root.iterdir():
                if self._creation_leftover(path):
                    path.unlink()
            self.mark()
            (self.root / VERSIONS).mkdir(exist_ok=True)
        except OSError as exc:
            raise os_error(exc, f"creating the store at {self.root}") from None
        self.write_manifest_bytes(manifest)

    def mark(self) -> None:
        marker = {"incw2v_store": 1, "created_at": now_iso(), "tool_version": __version__}
        atomic_write_bytes(self.root / STORE_MARKER, json.dumps(marker).encode() + b"\n",
                           store=self.root)

    # -- the manifest ---------------------------------------------------------------------------

    def read_manifest_bytes(self, fresh: bool = False) -> bytes | None:
        path = self.root / MANIFEST
        try:
            return read_plain(path, "the manifest")
        except DataError as exc:
            raise DataError(f"{exc.message}: the store is damaged",
                            hint=f"{exc.hint}; or 'incw2v repair CONFIG' rebuilds the manifest "
                            "from the versions' meta.json") from None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise os_error(exc, f"reading {path}") from None

    def write_manifest_bytes(self, data: bytes, upload: str | None = None) -> None:
        try:
            atomic_write_bytes(self.root / MANIFEST, data, sync_dir=False, store=self.root)
        except OSError as exc:
            raise os_error(exc, "writing the manifest") from None
        try:
            fsync_dir(self.root)
        except OSError as exc:
            # Past the commit point: the new manifest is in place and readers see it.
            # Failing now would report a committed change as failed; if the machine
            # crashed before the disk caught up, the store would come back as it was
            # before, which a re-run repairs.
            logger.warning(
                "the store's new manifest is in place, but flushing %s to disk failed (%s); "
                "check the disk", self.root, exc.strerror,
            )

    def set_aside_manifest(self) -> str | None:
        path = self.root / MANIFEST
        if not path.exists() and not path.is_symlink():
            return None
        aside = self.root / f"{MANIFEST}.damaged-{now_iso().replace(':', '')}"
        os.rename(path, aside)
        fsync_dir(self.root)
        return aside.name

    # -- versions -------------------------------------------------------------------------------

    @property
    def versions_dir(self) -> Path:
        path = self.root / VERSIONS
        if path.is_symlink():
            raise DataError(
                f"{path} is a symbolic link; a store's versions must live inside the store",
                hint="move the versions folder back into the store (and remove the link)",
            )
        return path

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / version

    def read_meta_bytes(self, version: str, upload: str | None) -> bytes:
        folder = self.version_dir(version)
        # A symlink planted for a version folder or its files would lead outside the store.
        marker = folder / MARKER
        if folder.is_symlink() or marker.is_symlink() or not marker.is_file():
            raise DataError(
                f"version {version} is missing or incomplete in {self.versions_dir} "
                "(deleted or damaged by hand?)",
                hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
            )
        try:
            return read_plain(folder / META, f"version {version}'s {META}")
        except OSError as exc:
            raise DataError(
                f"version {version}'s {META} cannot be read: {exc.strerror}",
                hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
            ) from None

    def files_dir(self, version: str, upload: str | None, files: dict[str, str]) -> Path:
        return self.version_dir(version)

    def version_bytes(self, version: str, upload: str | None) -> int:
        return folder_bytes(self.version_dir(version))

    def taken(self) -> set[str]:
        if not self.versions_dir.is_dir():
            return set()
        return {p.name for p in self.versions_dir.iterdir() if VERSION_RE.match(p.name)}

    def _private_folder(self, prefix: str, doing: str) -> Path:
        path = self.root / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o700)
        except OSError as exc:
            raise os_error(exc, doing) from None
        return path

    @contextmanager
    def staging(self) -> Iterator[Path]:
        path = self._private_folder(STAGING_PREFIX, "creating a staging folder in the store")
        try:
            yield path
        finally:
            if path.exists():
                remove_tree(path)

    @contextmanager
    def workdir(self) -> Iterator[Path]:
        path = self._private_folder(WORK_PREFIX, "creating a working folder in the store")
        try:
            yield path
        finally:
            remove_tree(path)

    def publish(self, staging: Path, version: str) -> str | None:
        self.versions_dir.mkdir(exist_ok=True)
        target = self.versions_dir / version
        os.chmod(staging, 0o755)  # private while written; readable like any version once sealed
        os.rename(staging, target)
        try:
            fsync_dir(self.versions_dir)
        except BaseException:
            self.unpublish(version, None)
            raise
        return None

    def unpublish(self, version: str, upload: str | None) -> None:
        self._discard(self.versions_dir / version)

    def discard(self, version: str, upload: str | None, keep: tuple[str, ...] = ()) -> None:
        folder = self.version_dir(version)
        if keep:
            for path in folder.iterdir():
                if path.name not in keep:
                    path.unlink(missing_ok=True)
            fsync_dir(folder)
            return
        self._discard(folder, tolerate=FileNotFoundError)
        fsync_dir(self.root)

    def _discard(self, folder: Path, tolerate: type[OSError] = OSError) -> None:
        """Rename ``folder`` out of the way, then remove it; a leftover is swept later.

        ``tolerate``: the rename errors that just mean "leave it" (a caller that has
        already committed may want to hear of anything but a folder already gone).
        """
        trash = self.root / f"{TRASH_PREFIX}{folder.name}-{secrets.token_hex(3)}"
        try:
            os.rename(folder, trash)
        except tolerate:
            return
        remove_tree(trash)

    def on_disk(self) -> Iterator[OnDisk]:
        versions = self.versions_dir
        if not versions.is_dir():
            return
        for folder in sorted(versions.iterdir()):
            if not VERSION_RE.match(folder.name):
                continue
            try:
                yield OnDisk(folder.name, None, self.read_meta_bytes(folder.name, None),
                             frozenset(child.name for child in folder.iterdir()))
            except DataError as exc:
                logger.warning("%s", exc.message)

    # -- the lock, leftovers and readers ------------------------------------------------------

    @contextmanager
    def lock(self, command: str, wait: float) -> Iterator[None]:
        fd = self._open_lock()
        try:
            deadline = time.monotonic() + max(wait, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        waited = f" after waiting {wait:g}s" if wait > 0 else ""
                        raise LockedError(
                            f"store {self.root} is locked by {self.holder()}{waited}",
                            hint="another incw2v run is working on this store; let it finish, "
                            "or re-run with --wait SECONDS to queue behind it",
                        ) from None
                    time.sleep(POLL_SECONDS)
            try:
                data = json.dumps(holder_info(command)).encode()
                atomic_write_bytes(self.root / INFO_NAME, data, sync_dir=False,
                                   store=self.root)
            except (OSError, IncW2VError) as exc:  # holder info is a courtesy; the lock matters
                logger.debug("cannot write lock info: %s", exc)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _open_lock(self) -> int:
        path = self.root / LOCK_NAME
        try:
            # Read-only and never truncated: a planted hard link's target stays as it was.
            return open_nofollow(path, os.O_RDONLY | os.O_CREAT)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _symlink_error(path, "the lock file") from None
            raise os_error(exc, f"taking the lock of store {self.root}") from None

    def holder(self) -> str:
        """Who holds the lock, from ``.lock.info`` (briefly re-read: it may lag)."""
        for _ in range(20):
            try:
                info = json.loads(read_plain(self.root / INFO_NAME, "the lock info"))
                if isinstance(info, dict) and alive_here(info):
                    return describe(info)
            except (OSError, ValueError, DataError):
                pass
            time.sleep(0.05)
        return "another process (no holder information)"

    def sweep(self, listed: dict[str, str | None] | None) -> list[str]:
        removed: list[str] = []
        for child in self.root.iterdir():
            name = child.name
            if STAGING_RE.match(name) or WORK_RE.match(name) or TRASH_RE.match(name):
                remove_tree(child)
                removed.append(name)
            elif TMP_RE.match(name) and (child.is_symlink() or child.is_file()):
                child.unlink(missing_ok=True)
                removed.append(name)
        versions = self.versions_dir
        if listed is not None and versions.is_dir():
            for child in versions.iterdir():
                if not VERSION_RE.match(child.name) or child.name in listed:
                    continue
                # Renamed into place but never committed by the manifest. A folder that
                # is not a sealed version (no marker) was not written by incw2v: keep it.
                if child.is_symlink() or (child / MARKER).is_file():
                    remove_tree(child)
                    removed.append(f"{VERSIONS}/{child.name}")
                else:
                    logger.warning("left %s alone: it is not a version incw2v wrote", child)
        if removed:
            fsync_dir(self.root)
        return removed

    def pin(self, version: str) -> AbstractContextManager[None]:
        return pins.reading(self.root, version)

    def exclusive(self, versions: list[str]) -> AbstractContextManager[PruneLocks]:
        return pins.exclusive(self.root, versions)
