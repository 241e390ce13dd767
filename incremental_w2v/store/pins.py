"""Readers pin the version they read, so ``prune`` never deletes it under them.

A reader (``export``, a version's vectors, evaluation) holds a *shared*
``flock`` on ``store/.readers/<version>.lock`` while it opens the version's
files. ``prune`` takes the *exclusive* lock of each version it means to delete
without waiting: if a reader holds it, that version is kept this time and
reported as held. The reader re-checks that its version is still listed once
it has the lock, so a prune that slipped in between resolving the name and
locking is reported, never read half-deleted.

A store on a read-only filesystem cannot hold lock files, and needs none:
nothing can prune it. The locks are advisory POSIX ``flock`` locks, released
by the kernel when their holder dies.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from incremental_w2v.errors import DataError, UsageError
from incremental_w2v.store.backend import PruneLocks
from incremental_w2v.store.manifest import VERSION_RE

logger = logging.getLogger(__name__)

READERS = ".readers"
_NO_LOCK_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def _lock_path(root: Path, version: str) -> Path:
    if not VERSION_RE.match(version):
        raise UsageError(f"{version!r} is not a version name (expected e.g. v0003)")
    return root / READERS / f"{version}.lock"


def _open_lock(root: Path, version: str) -> int | None:
    """The lock file's descriptor, or None where no lock can be (or need be) taken."""
    folder = root / READERS
    if folder.is_symlink():
        raise DataError(
            f"{folder} is a symbolic link; the store's lock folder must be a real folder",
            hint=f"remove the link {folder} (incw2v recreates the folder)",
        )
    try:
        folder.mkdir(exist_ok=True)
        return os.open(
            _lock_path(root, version),
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
        )
    except OSError as exc:
        if exc.errno in _NO_LOCK_ERRNOS:
            logger.debug("no reader lock for %s (%s): read-only store", version, exc.strerror)
            return None
        if exc.errno == errno.ELOOP:
            raise DataError(
                f"the reader lock of {version} in {folder} is a symbolic link",
                hint=f"remove {folder / (version + '.lock')}",
            ) from None
        raise


@contextmanager
def reading(root: Path, version: str) -> Iterator[None]:
    """Hold a shared lock on ``version`` while reading it.

    The caller must check, inside the block, that the version is still listed.
    """
    fd = _open_lock(root, version)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextmanager
def exclusive(root: Path, versions: list[str]) -> Iterator[PruneLocks]:
    """Lock each of ``versions`` exclusively without waiting; the busy ones go to ``held``."""
    locks = PruneLocks()
    try:
        for version in versions:
            fd = _open_lock(root, version)
            if fd is None:
                locks.free.append(version)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                locks.held.append(version)
                continue
            locks.fds[version] = fd
            locks.free.append(version)
        yield locks
    finally:
        for version, fd in locks.fds.items():
            if not (root / "versions" / version).exists():
                # Deleted: drop its lock file while still holding it, so no reader
                # can take a lock on it and find the version still there.
                with suppress(OSError):
                    os.unlink(_lock_path(root, version))
            os.close(fd)
