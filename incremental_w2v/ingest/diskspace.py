"""Will the working file (and the new version) fit? Checked before the pass starts.

The pass writes every corpus, decompressed and tokenised, to a working file
in the store's scratch area, and the commit then writes a version about as
large as the current one. Both sizes are estimated from what is known before
reading: the source sizes (``stat``, or the remote object's size) times the
usual expansion of their compression, and the current version's files. When
the estimate plus a margin exceeds the free space, the run stops at once
(OutputError, exit 73) instead of failing an hour later with a full disk. An
estimate can be low (unusually compressible data, a pipe or a remote object
of unknown size): while the working file is written, :class:`WithinReserve`
watches the free space and stops the run (OutputError, exit 73) when it would
fall below the reserve, so a decompression bomb never fills the disk; the
working file is removed either way.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

from incremental_w2v.errors import OutputError
from incremental_w2v.ingest.fingerprint import SourceStat

logger = logging.getLogger(__name__)

# Expansion of English text by codec, rounded up from what we measured on the
# benchmark corpora (gzip -6: 2.5-2.8x; on a 13 MB sample bzip2 -9 3.8x, xz -6
# 4.0x, zstd -3 2.9x). Tokenising never lengthens text much: tokens are
# substrings of it with one space between them.
EXPANSION = {".gz": 4.0, ".bz2": 5.0, ".xz": 5.0, ".zst": 4.5, ".7z": 6.0}
PLAIN_EXPANSION = 1.05
MARGIN = 1.10  # on top of the estimate
# Never fill the disk to the last byte: keep 64 MiB free, or 5% of a small filesystem.
RESERVE = 64 << 20
RESERVE_SHARE = 0.05


def reserve_bytes(total: int) -> int:
    return min(RESERVE, int(total * RESERVE_SHARE))


def expansion(uri: str) -> float:
    suffix = PurePosixPath(uri.split("?", 1)[0]).suffix.lower()
    return EXPANSION.get(suffix, PLAIN_EXPANSION)


def estimate_working_file(sources: Iterable[tuple[str, SourceStat]]) -> int | None:
    """Bytes the working file will take, or None when a source's size is unknown (a pipe)."""
    total = 0.0
    for uri, st in sources:
        if st.size is None or not st.rereadable:
            return None
        total += st.size * expansion(uri)
    return int(total)


def folder_bytes(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def ensure_room(
    store_root: Path, sources: list[tuple[str, SourceStat]], version_bytes: int = 0
) -> None:
    """Raise OutputError when the pass and the new version cannot fit in the store's disk."""
    working = estimate_working_file(sources)
    if working is None:
        logger.info("the size of a source is unknown (a pipe?): free space is not checked")
        return
    usage = shutil.disk_usage(store_root)
    needed = int((working + version_bytes) * MARGIN) + reserve_bytes(usage.total)
    free = usage.free
    logger.debug("free space: need about %d bytes, %d free", needed, free)
    if needed > free:
        raw = sum(st.size or 0 for _, st in sources)
        raise OutputError(
            f"not enough free space in {store_root}: the working file needs about "
            f"{_mb(working)} (from {_mb(raw)} of corpus, decompressed and tokenised) and the "
            f"new version about {_mb(version_bytes)}, with margin {_mb(needed)}; "
            f"only {_mb(free)} are free",
            hint="free disk space (e.g. 'incw2v prune CONFIG --keep N') or move the store to a "
            "larger disk, then re-run; nothing was written",
        )


def _mb(n: int | float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 1024:,.0f} KiB"


class WithinReserve:
    """A text file being written that stops before the disk's free space falls below the
    reserve: every ``step`` characters written, the free space is checked."""

    def __init__(self, handle: IO[str], folder: Path) -> None:
        self._handle = handle
        self._folder = folder
        self.reserve = reserve_bytes(shutil.disk_usage(folder).total)
        # Checked often enough that one step cannot eat more than a quarter of the reserve.
        self._step = max(min(self.reserve // 4, 8 << 20), 64 << 10)
        self._since = 0
        self.written = 0

    def write(self, text: str) -> int:
        n = self._handle.write(text)
        self._since += len(text)
        self.written += len(text)
        if self._since >= self._step:
            self._since = 0
            self.check()
        return n

    def check(self) -> None:
        self._handle.flush()
        free = shutil.disk_usage(self._folder).free
        if free < self.reserve:
            raise OutputError(
                f"no space left while writing the working file: {_mb(free)} free in "
                f"{self._folder}, below the reserve of {_mb(self.reserve)} a run never uses; "
                f"stopped after {_mb(self.written)} of decompressed text",
                hint="free disk space (e.g. 'incw2v prune CONFIG --keep N') or move the store "
                "to a larger disk, then re-run; nothing was committed",
            )
