"""Durable file-system steps: fsync, the one atomic output writer, hashing, removal.

Every write the store makes, and every output a command writes (exports, the
report, aligned vectors), goes through these few functions, so the commit
protocol and the outputs' durability can be read (and crash-tested) in one place.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from incremental_w2v.errors import OutputError, StoreIOError

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


TMP_MARK = ".incw2v-tmp-"


class Outputs:
    """Files being written under temporary names in one folder (see :func:`atomic_outputs`)."""

    def __init__(self, folder: Path, main: Path) -> None:
        self.folder = folder
        self.main = main
        self.prefix = f"{TMP_MARK}{secrets.token_hex(4)}-"

    def temp(self, final: Path) -> Path:
        """The temporary name of ``final`` (which must be in this folder)."""
        return self.folder / f"{self.prefix}{final.name}"

    def written(self) -> list[Path]:
        """Every temporary file written so far (a library may add side files of its own)."""
        return [p for p in self.folder.iterdir() if p.name.startswith(self.prefix)]


def check_output_folder(output: Path) -> None:
    """Raise OutputError unless ``output`` can be created in an existing, writable folder."""
    folder = output.parent
    if not folder.exists():
        raise OutputError(
            f"cannot write {output}: folder {folder} does not exist",
            hint=f"create it first (mkdir -p {folder}) or choose another --output",
        )
    if not folder.is_dir():
        raise OutputError(
            f"cannot write {output}: {folder} is not a folder",
            hint="choose an --output inside an existing folder",
        )
    if output.is_dir():
        raise OutputError(
            f"cannot write {output}: it is a folder",
            hint="give a file name for --output, e.g. OUTPUT/vectors.kv",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {output}: folder {folder} is not writable by this user",
            hint="choose another --output or fix the folder's permissions",
        )


@contextmanager
def atomic_outputs(output: Path, sync_dir: bool = True) -> Iterator[Outputs]:
    """Write ``output`` (and any files beside it) so that a reader sees old or new, never torn.

    The caller writes each file at ``outputs.temp(final)``; a library that adds
    side files of its own (gensim's ``NAME.vectors.npy``) names them after the
    temporary main file, and they are found by their prefix. On success every
    file is fsynced and renamed into place, side files first and ``output``
    last, then the folder is fsynced (unless ``sync_dir`` is False: the caller
    fsyncs it, to tell a failure after the rename from one before). On any
    failure the temporary files are removed and an OSError becomes OutputError
    or StoreIOError; what was at the final names is untouched.
    """
    output = Path(output)
    check_output_folder(output)
    outputs = Outputs(output.parent, output)
    try:
        yield outputs
        parts = sorted(outputs.written(), key=lambda p: p.name == outputs.temp(output).name)
        for part in parts:
            fsync_file(part)
        for part in parts:
            os.replace(part, outputs.folder / part.name[len(outputs.prefix):])
    except BaseException as exc:
        for leftover in outputs.written():
            with contextlib.suppress(OSError):
                leftover.unlink()
        if isinstance(exc, OSError):
            raise os_error(exc, f"writing {output}") from None
        raise
    if sync_dir:
        fsync_dir(outputs.folder)


def atomic_write_bytes(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see :func:`atomic_outputs`)."""
    with atomic_outputs(path, sync_dir=sync_dir) as outputs, open(
        outputs.temp(path), "wb"
    ) as handle:
        os.fchmod(handle.fileno(), 0o644)
        handle.write(data)


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
    # numpy reports a short write without an errno ("N requested and M written")
    short_write = exc.errno is None and "requested and" in str(exc)
    if short_write or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
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
