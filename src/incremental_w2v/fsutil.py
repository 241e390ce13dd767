"""Durable file-system steps: fsync, atomic replace, hashing, free space.

Every write the store makes goes through these few functions, so the commit
protocol can be read (and crash-tested) in one place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError, StoreIOError

HASH_CHUNK = 1 << 22


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename, fsync folder.

    With ``sync_dir=False`` the caller fsyncs the folder itself (to tell a failure
    after the replace from one before it).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp's 0600 would hide it from readers
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_tree(path: Path) -> None:
    """Remove a folder that may be half-written; missing is fine.

    A symlink is removed itself, never followed: a link planted in the store
    must not make a sweep delete what it points to.
    """
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    shutil.rmtree(path, ignore_errors=True)


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def os_error(exc: OSError, doing: str) -> Exception:
    """Our error for an OSError met while ``doing`` something to the store or an output."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return OutputError(
            f"no space left while {doing}: {exc.strerror}",
            hint="free disk space (or 'incw2v prune --keep N'), then re-run; nothing was committed",
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return OutputError(
            f"cannot write while {doing}: {exc.strerror} ({exc.filename})",
            hint="check that the store folder is writable by this user",
        )
    return StoreIOError(
        f"I/O error while {doing}: {exc.strerror} ({exc.filename})",
        hint="check the disk and the store folder, then re-run; committed versions are intact",
    )
