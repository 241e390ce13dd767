"""One member of a ``.7z`` archive as a stream of decompressed bytes.

StackExchange dumps are published as ``.7z``, which smart_open cannot
decompress. A 7z archive keeps its index at the end, so it must be a local,
seekable file: a local archive is read in place, a remote one is first
downloaded to a temporary file (``TMPDIR``). The member itself is never
written out: py7zr only *pushes* decompressed data to a writer, so it runs in
a background thread that hands chunks through a small bounded queue, and
``read()`` pulls them. Closing the stream early stops the thread.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Protocol

from incremental_w2v.errors import DataError, OutputError
from incremental_w2v.uris import printable, redact

log = logging.getLogger(__name__)

DEFAULT_MEMBER = "Posts.xml"
_BLOCK = 1 << 20
# py7zr writes whole decompressed blocks (up to 128 MB); they are handed over in
# pieces of _BLOCK and the writer waits while the queue is full, so memory stays
# at about one block plus this many pieces.
_QUEUE_PIECES = 4


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


class _Cancelled(Exception):
    """Raised inside py7zr's extraction when the reader closed the stream."""


class _Done:
    """End-of-member marker put on the queue by the producer."""


class SevenZipMember(io.RawIOBase):
    """A readable stream of one archive member, decompressed by a background thread."""

    def __init__(self, archive: Path, member: str, uri: str) -> None:
        super().__init__()
        self.name = member
        self._uri = uri
        self._queue: queue.Queue[bytes | BaseException | _Done] = queue.Queue(_QUEUE_PIECES)
        self._cancel = threading.Event()
        self._chunk = memoryview(b"")
        self._eof = False
        self.bytes_out = 0
        self._thread = threading.Thread(
            target=self._produce, args=(archive, member), name="incw2v-7z", daemon=True
        )
        self._thread.start()

    def _put(self, item: bytes | BaseException | _Done) -> None:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Cancelled

    def _produce(self, archive: Path, member: str) -> None:
        import py7zr
        from py7zr.io import Py7zIO, WriterFactory

        put = self._put

        class Sink(Py7zIO):
            def write(self, s: bytes | bytearray) -> int:
                view = memoryview(s)
                for start in range(0, len(view), _BLOCK):
                    put(bytes(view[start:start + _BLOCK]))
                return len(s)

            def read(self, size: int | None = None) -> bytes:
                return b""

            def seek(self, offset: int, whence: int = 0) -> int:
                return 0

            def seekable(self) -> bool:  # py7zr then does not rewind us on close
                return False

            def flush(self) -> None:
                pass

            def size(self) -> int:
                return 0

        class Factory(WriterFactory):
            def create(self, filename: str) -> Py7zIO:
                return Sink()

        try:
            with py7zr.SevenZipFile(archive, "r") as archive_file:
                archive_file.extract(targets=[member], factory=Factory())
            put(_Done())
        except _Cancelled:
            pass
        except Exception as exc:  # handed to the reader, which raises it as DataError
            with suppress(_Cancelled):
                put(exc)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._chunk and not self._eof:
            item = self._queue.get()
            if isinstance(item, _Done):
                self._eof = True
            elif isinstance(item, BaseException):
                self._eof = True
                raise DataError(
                    f"archive {redact(self._uri)} is damaged: member {printable(self.name)} "
                    f"fails after {self.bytes_out} decompressed bytes "
                    f"({type(item).__name__}: {item})",
                    hint="re-download the archive; nothing was committed",
                ) from None
            else:
                self._chunk = memoryview(item)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        self.bytes_out += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._cancel.set()
            while self._thread.is_alive():  # unblock a producer waiting on a full queue
                with suppress(queue.Empty):
                    self._queue.get(timeout=0.1)
            self._thread.join()
        super().close()


def choose_member(names: list[str], uri: str, wanted: str | None = None) -> str:
    """The member to read: ``wanted``, the only file, or ``Posts.xml``."""
    if wanted is not None:
        if wanted in names:
            return wanted
        raise DataError(
            f"archive {redact(uri)} has no member {printable(wanted)!r} "
            f"(it holds: {_listing(names)})",
            hint="check the archive's contents",
        )
    if len(names) == 1:
        return names[0]
    posts = [n for n in names if os.path.basename(n).lower() == DEFAULT_MEMBER.lower()]
    if len(posts) == 1:
        return posts[0]
    raise DataError(
        f"archive {redact(uri)} holds {len(names)} files and no single {DEFAULT_MEMBER}: "
        f"{_listing(names)}",
        hint="point the entry at an archive that holds one file, or a StackExchange dump",
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(map(printable, names[:10])) or "nothing"
    return shown + (f", … ({len(names) - 10} more)" if len(names) > 10 else "")


def _spool(raw: Readable, uri: str) -> Path:
    """Download ``raw`` to a temporary file; read errors (the transport's) propagate."""
    handle, name = tempfile.mkstemp(prefix="incw2v-", suffix=".7z")
    log.info("downloading %s to %s (a 7z archive cannot be streamed)", redact(uri), name)
    try:
        with os.fdopen(handle, "wb") as out:
            while block := raw.read(_BLOCK):
                try:
                    out.write(block)
                except OSError as exc:
                    raise OutputError(
                        f"cannot download archive {redact(uri)} to {name}: "
                        f"{exc.strerror or exc}",
                        hint="set TMPDIR to a folder on a disk with room for the archive",
                    ) from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


@contextmanager
def open_member(
    raw: Readable, local: Path | None, uri: str, member: str | None = None
) -> Iterator[IO[bytes]]:
    """The decompressed member of the archive that ``raw`` reads.

    All of ``raw`` is read first, so that its hash covers the archive as
    stored: for a local archive that is one extra sequential read, for a
    remote one it is the download to a temporary file.
    """
    import py7zr
    from py7zr.exceptions import ArchiveError

    spool: Path | None = None
    try:
        if local is not None:
            archive = local
            while raw.read(_BLOCK):
                pass
        else:
            spool = archive = _spool(raw, uri)
        try:
            with py7zr.SevenZipFile(archive, "r") as archive_file:
                if archive_file.needs_password():
                    raise DataError(
                        f"archive {redact(uri)} is encrypted",
                        hint="decrypt it first; incw2v reads unencrypted archives",
                    )
                names = [f.filename for f in archive_file.list() if not f.is_directory]
        except (ArchiveError, EOFError, OSError, ValueError) as exc:
            raise DataError(
                f"archive {redact(uri)} is not a readable .7z archive: "
                f"{type(exc).__name__}: {exc}",
                hint="it may be truncated or damaged: re-download it; nothing was committed",
            ) from None
        chosen = choose_member(names, uri, member)
        stream = SevenZipMember(archive, chosen, uri)
        try:
            yield io.BufferedReader(stream, _BLOCK)
        finally:
            stream.close()
    finally:
        if spool is not None:
            spool.unlink(missing_ok=True)
