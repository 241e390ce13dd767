"""Opening corpus sources: local files and any smart_open URI.

A source is opened raw (compression disabled) so that the sha256 recorded
for it is the hash of the bytes as stored, the figure ``sha256sum`` shows;
decompression is layered on top by smart_open, inferred from the name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import select
import stat as stat_module
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from incremental_w2v.config.needs import missing_module
from incremental_w2v.errors import (
    ConfigError,
    DataError,
    IncW2VError,
    InputMissingError,
    StoreIOError,
)
from incremental_w2v.ingest.fingerprint import SourceOptions, is_not_found
from incremental_w2v.uris import is_remote, redact, resolve_local, scheme_of, scrub


class HashingReader(io.RawIOBase):
    """A raw stream that hashes and counts every byte read through it."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw = raw
        self.name = name  # compression_wrapper infers the codec from it
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes_read += n
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class StalledError(StoreIOError):
    """A source sent nothing for ``sources.stall_timeout`` seconds."""


def stalled(uri: str, timeout: float | None, what: str = "sent no data") -> StalledError:
    waited = f" for {timeout:g} seconds" if timeout is not None else ""
    return StalledError(
        f"corpus {redact(uri)} {what}{waited} (sources.stall_timeout); nothing was committed",
        hint="check what feeds it (a named pipe needs a writer, a server may be down); if it "
        "is only slow, raise 'sources.stall_timeout' in the config",
    )


class PollingReader(io.RawIOBase):
    """A named pipe or a device, read with a stall timeout instead of blocking for good.

    Opened without blocking (a pipe's ``open`` would wait for a writer forever);
    each read waits at most ``timeout`` seconds for data. On Linux a pipe that no
    writer has opened yet reports nothing, so "no writer" is a stall too.
    """

    def __init__(self, path: Path, uri: str, timeout: float) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLPRI | select.POLLHUP)
        self._uri, self._timeout, self._started = uri, timeout, False
        self.name = path.name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if not self._poll.poll(int(self._timeout * 1000)):
                what = "sent no data" if self._started else "had no writer and sent no data"
                raise stalled(self._uri, self._timeout, what)
            try:
                data = os.read(self._fd, len(buffer))
            except BlockingIOError:  # woken without data after all
                continue
            self._started = True
            buffer[: len(data)] = data
            return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _open_local(local: Path, uri: str, timeout: float) -> IO[bytes] | None:
    """A pipe or device as a :class:`PollingReader`; None for a plain file (smart_open's)."""
    try:
        mode = local.stat().st_mode
    except OSError:
        return None  # smart_open reports it
    if stat_module.S_ISFIFO(mode) or stat_module.S_ISCHR(mode):
        return io.BufferedReader(PollingReader(local, uri, timeout), 1 << 20)
    return None


@dataclass
class OpenSource:
    """An open source: ``stream`` yields decompressed bytes, ``raw`` counts and hashes."""

    uri: str
    stream: IO[bytes]
    raw: HashingReader


@contextmanager
def open_source(
    uri: str,
    base_dir: Path,
    options: SourceOptions | None = None,
    archive_member: str | None = None,
) -> Iterator[OpenSource]:
    """Open ``uri`` for reading; decompression inferred from the name.

    A ``.7z`` archive yields one member: ``archive_member``, else its only
    file, else its ``Posts.xml`` (see ``sevenzip``).
    """
    import smart_open  # not at import time: a no-op run only stats its sources
    from smart_open.compression import compression_wrapper

    options = options or SourceOptions()
    local = resolve_local(uri, base_dir)
    target = str(local) if local is not None else uri
    try:
        piped = _open_local(local, uri, options.stall_timeout) if local is not None else None
        raw = piped or smart_open.open(
            target, "rb", compression="disable", transport_params=options.transport_params(uri)
        )
    except ImportError as exc:  # gs:// and azure:// need optional packages
        extra = {"gs": "gcs", "azure": "azure"}.get(scheme_of(uri), scheme_of(uri))
        raise ConfigError(
            f"corpus {redact(uri)}: reading {scheme_of(uri)}:// URIs needs a package that is "
            f"not installed ({exc.name or exc})",
            hint=f"pip install 'smart_open[{extra}]'",
        ) from None
    except FileNotFoundError:
        raise InputMissingError(
            f"corpus {redact(uri)} does not exist", hint="check the path in the config"
        ) from None
    except IsADirectoryError:
        raise DataError(f"corpus {redact(uri)} is a directory, not a file") from None
    except PermissionError:
        raise StoreIOError(
            f"corpus {redact(uri)} cannot be read: permission denied",
            hint="check the file's permissions",
        ) from None
    except IncW2VError:
        raise
    except Exception as exc:  # smart_open transports raise their own types
        raise remote_error(uri, exc) from None
    name = os.path.basename(target.split("?", 1)[0])
    hashing = HashingReader(raw, name)
    stream: IO[bytes]
    with ExitStack() as cleanup:
        cleanup.callback(_close_quietly, hashing)
        if name.lower().endswith(".7z"):
            from incremental_w2v.ingest.sevenzip import open_member

            try:
                stream = cleanup.enter_context(open_member(hashing, local, uri, archive_member))
            except IncW2VError:
                raise
            except ModuleNotFoundError as exc:  # py7zr: checked up front; still say so
                raise missing_module(exc) from None
            except Exception as exc:  # reading the archive through the transport failed
                raise remote_error(uri, exc) from None
        else:
            stream = compression_wrapper(io.BufferedReader(hashing, 1 << 20), "rb")
            cleanup.callback(_close_quietly, stream)
        yield OpenSource(uri=uri, stream=stream, raw=hashing)


def _close_quietly(stream: IO[bytes] | io.IOBase) -> None:
    # Closing a half-read remote stream must not mask the real error.
    with suppress(Exception):
        stream.close()


def remote_error(uri: str, exc: BaseException) -> Exception:
    """Translate a transport's exception into ours, with the URI redacted."""
    text = scrub(str(exc), uri)
    shown = redact(uri)
    if is_timeout(exc):
        return stalled(uri, None, f"timed out ({type(exc).__name__})")
    if is_not_found(exc):
        return InputMissingError(
            f"corpus {shown} does not exist ({type(exc).__name__})",
            hint="check the URI, and that the object has been uploaded",
        )
    if is_remote(uri):
        return StoreIOError(
            f"cannot read corpus {shown}: {type(exc).__name__}: {text[:300]}",
            hint="check the network, the endpoint and your credentials, then re-run",
        )
    return StoreIOError(f"cannot read corpus {shown}: {type(exc).__name__}: {text[:300]}")


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a transport's timeout."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return True
        current = current.__cause__ or current.__context__
    return False


def _zstd_errors() -> tuple[type[BaseException], ...]:
    # smart_open decompresses .zst with compression.zstd (3.14+) or backports.zstd.
    try:
        from compression.zstd import ZstdError  # type: ignore[import-not-found]
    except ImportError:
        try:
            from backports.zstd import ZstdError
        except ImportError:
            return ()
    return (ZstdError,)


# Exceptions raised by decompressors on a damaged or truncated stream.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    lzma.LZMAError,
    *_zstd_errors(),
)


def is_decompression_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the compressed data is damaged (not that the transport failed)."""
    if isinstance(exc, DECOMPRESSION_ERRORS):
        return True
    # bz2 (and lzma's file layer) raise a bare OSError for data they cannot decode.
    return type(exc) is OSError and exc.errno is None and "Invalid data stream" in str(exc)


def decompression_error(uri: str, exc: BaseException, raw_offset: int) -> DataError:
    """A clear error for a truncated or damaged compressed source."""
    kind = "truncated" if isinstance(exc, EOFError) else "damaged"
    return DataError(
        f"corpus {redact(uri)} is {kind}: {exc} (after {raw_offset} compressed bytes)",
        hint="re-download or re-create the file; nothing was committed",
    )


