"""Durable file-system steps: fsync, the one atomic output writer, hashing, removal.

Every write the store makes, and every output a command writes (exports, the
report, aligned vectors), goes through these few functions, so the commit
protocol and the outputs' durability can be read (and crash-tested) in one place.

Two rules live here and nowhere else:

- **No output inside a store.** :func:`check_output_folder` (which
  :func:`atomic_outputs` calls) refuses an output whose folder, after every
  symlink is resolved, is a store or lies inside one: a folder holding the
  store marker (``.incw2v-store``), an old store without one (``manifest.json``
  beside ``versions/``), or a store's local cache (``.incw2v-cache``). Only the
  store itself writes there, naming itself with ``store=``.
- **No write follows a symlink.** New files are created with ``O_EXCL |
  O_NOFOLLOW`` (:func:`create_new`), existing files are replaced by a rename
  (which replaces a planted link or hard link, never what it points to), and
  :func:`open_nofollow` opens a file that must be a plain file of its own.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from incremental_w2v.errors import OutputError, StoreIOError

HASH_CHUNK = 1 << 22
TMP_MARK = ".incw2v-tmp-"
# Written by the tool into every store it creates, and into every local cache of a
# remote store: a folder is only treated (and swept) as a store when it holds one.
STORE_MARKER = ".incw2v-store"
CACHE_MARKER = ".incw2v-cache"
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def create_new(path: Path, mode: int = 0o644) -> int:
    """A descriptor of a new file at ``path``: never an existing file, never through a link."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (see :func:`create_new`) and fsync it."""
    fd = create_new(path)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
        os.fsync(fd)
    finally:
        os.close(fd)


def open_nofollow(path: Path, flags: int = os.O_RDONLY) -> int:
    """Open ``path`` without following a symlink; it must be a plain file with one link.

    Raises OSError(ELOOP) for a symlink and OSError(EMLINK) for a hard-linked
    file (whose other name may be outside the store).
    """
    fd = os.open(path, flags | _NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a plain file", str(path))
        if st.st_nlink > 1 and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EMLINK, "a hard-linked file (it has another name)", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def store_root_of(path: Path, roots: tuple[Path, ...] = ()) -> Path | None:
    """The store (or store cache) that ``path`` is in, after resolving symlinks, or None.

    ``path`` is inside a store when it or one of its folders holds the store
    marker, the cache marker, or is an older store (a ``manifest.json`` beside a
    ``versions/`` folder). ``roots``: stores that count even before they exist
    (the config's own store, which a log file must not be written into).
    """
    real = Path(os.path.realpath(path))
    resolved_roots = [Path(os.path.realpath(r)) for r in roots]
    for folder in (real, *real.parents):
        if folder in resolved_roots:
            return folder
        try:
            if (folder / STORE_MARKER).exists() or (folder / CACHE_MARKER).exists():
                return folder
            if (folder / "manifest.json").is_file() and (folder / "versions").is_dir():
                return folder
        except OSError:  # a folder we may not look into is no store of ours
            continue
    return None



def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
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


def check_output_folder(output: Path, store: Path | None = None,
                        avoid: tuple[Path, ...] = ()) -> None:
    """Raise OutputError unless ``output`` can be created in an existing, writable folder.

    An output is never written inside a store (see the module's docstring);
    ``store``: the store writing its own file, which must then be inside it;
    ``avoid``: stores that count even before they exist (a config's own store).
    """
    folder = output.parent
    # A store replaces its own files by a rename (a link there is replaced, not followed):
    # only its folder is resolved. Any other output is resolved to the end.
    inside = (store_root_of(output.parent, roots=(store,)) if store is not None
              else store_root_of(output, roots=avoid))
    if store is not None:
        if inside is None or inside != Path(os.path.realpath(store)):
            raise OutputError(f"refusing to write {output}: it is not inside the store {store}")
    elif inside is not None:
        raise OutputError(
            f"refusing to write {output}: it is inside the incw2v store (or its cache) {inside}, "
            "whose files only incw2v itself may write",
            hint="choose an --output (or log_file) outside the store and outside its cache",
        )
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
def atomic_outputs(output: Path, sync_dir: bool = True, store: Path | None = None,
                   replace: bool = True) -> Iterator[Outputs]:
    """Write ``output`` (and any files beside it) so that a reader sees old or new, never torn.

    The caller writes each file at ``outputs.temp(final)``; a library that adds
    side files of its own (gensim's ``NAME.vectors.npy``) names them after the
    temporary main file, and they are found by their prefix. On success every
    file is fsynced and renamed into place, side files first and ``output``
    last, then the folder is fsynced (unless ``sync_dir`` is False: the caller
    fsyncs it, to tell a failure after the rename from one before). On any
    failure the temporary files are removed and an OSError becomes OutputError
    or StoreIOError; what was at the final names is untouched. ``store``: see
    :func:`check_output_folder`. ``replace=False``: a file already at any final
    name (the main file or a side file a library added) is refused with an
    OutputError naming it, before anything is renamed.
    """
    output = Path(output)
    check_output_folder(output, store)
    outputs = Outputs(output.parent, output)
    try:
        yield outputs
        parts = sorted(outputs.written(), key=lambda p: p.name == outputs.temp(output).name)
        if not replace:
            # Only now are the side files' names known (gensim picks them as it saves).
            _refuse_existing([outputs.folder / p.name[len(outputs.prefix):] for p in parts])
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


def _refuse_existing(finals: list[Path]) -> None:
    taken = [p for p in finals if p.exists() or p.is_symlink()]
    if taken:
        raise OutputError(
            f"{', '.join(map(str, taken))} already exist{'s' if len(taken) == 1 else ''}; "
            "nothing was written (an existing file is replaced only when told to)",
            hint="pass --force to replace them, or choose another --output",
        )


def atomic_write_bytes(path: Path, data: bytes, sync_dir: bool = True,
                       store: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see :func:`atomic_outputs`).

    The temporary file is created new (never through a planted link) and renamed
    over ``path``: a symlink or hard link at ``path`` is replaced, its target untouched.
    """
    with atomic_outputs(path, sync_dir=sync_dir, store=store) as outputs:
        fd = create_new(outputs.temp(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


def sha256_file(path: Path, follow: bool = True) -> str:
    """The sha256 of ``path``; ``follow=False`` (a store's own files): a symlink is refused
    with ELOOP, never followed."""
    digest = hashlib.sha256()
    with (open(path, "rb") if follow else os.fdopen(open_nofollow(path), "rb")) as handle:
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
