"""Corpus formats: how the records (texts) of a source are found.

A reader turns a decompressed byte stream into texts (one sentence,
paragraph, article or post each) and counts what it skipped. Tokenisation is
not its business. Each format's settings are a pydantic model in
``FORMATS``; the config names one with ``format:``.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict

from .errors import DataError
from .sources import DECOMPRESSION_ERRORS, OpenSource, decompression_error
from .uris import redact


@dataclass
class ReadStats:
    """What a reader saw in one pass."""

    records: int = 0
    skipped: int = 0
    replacements: int = 0  # undecodable bytes replaced (encoding_errors: replace)
    notes: dict[str, int] = field(default_factory=dict)


class TextFormat(BaseModel):
    """``format: text``: one sentence or paragraph per line (blank lines are skipped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["text"] = "text"


# A reader gets the stream, the URI (for messages), the format's settings,
# the encoding error policy and the stats to fill in.
Reader = Callable[[IO[bytes], str, BaseModel, str, ReadStats], Iterator[str]]

_READERS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        _READERS[name] = fn
        return fn

    return wrap


def reader_for(fmt: BaseModel) -> Reader:
    return _READERS[str(fmt.model_dump()["type"])]


_BINARY_SNIFF = 8192


def decoded_lines(
    stream: IO[bytes], uri: str, encoding_errors: str, stats: ReadStats
) -> Iterator[tuple[int, str]]:
    """Lines of a UTF-8 stream as ``(line_number, text)``, with clear errors.

    Raises DataError naming the line and byte offset for invalid UTF-8 (unless
    ``encoding_errors`` is 'replace', which counts replacements) and for data
    that looks binary (NUL bytes).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    for number, raw in enumerate(stream, start=1):
        if offset < _BINARY_SNIFF and b"\x00" in raw:
            at = offset + raw.index(b"\x00")
            raise DataError(
                f"corpus {redact(uri)} looks binary (NUL byte on line {number}, "
                f"byte offset {at})",
                hint="point the queue at text files, or name the right 'format' for this entry",
            )
        try:
            text = decoder.decode(raw)
        except UnicodeDecodeError as exc:
            if encoding_errors != "replace":
                raise DataError(
                    f"corpus {redact(uri)} is not valid UTF-8: line {number}, "
                    f"byte offset {offset + exc.start} ({exc.reason})",
                    hint="convert the file to UTF-8, or set 'encoding_errors: replace' to "
                    "replace undecodable bytes and count them",
                ) from None
            text = raw.decode("utf-8", "replace")
            stats.replacements += text.count("\ufffd") - raw.count("\ufffd".encode())
            decoder.reset()
        offset += len(raw)
        yield number, text
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        if encoding_errors != "replace":
            raise DataError(
                f"corpus {redact(uri)} is not valid UTF-8: it ends inside a multi-byte character",
                hint="the file may be truncated; re-create it",
            ) from None
        stats.replacements += 1


@register("text")
def read_text(
    stream: IO[bytes], uri: str, fmt: BaseModel, encoding_errors: str, stats: ReadStats
) -> Iterator[str]:
    for _, line in decoded_lines(stream, uri, encoding_errors, stats):
        if line.strip():
            stats.records += 1
            yield line
        else:
            stats.skipped += 1


FORMATS: tuple[type[BaseModel], ...] = (TextFormat,)


def iterate_records(
    source: OpenSource, reader: Reader, fmt: BaseModel, encoding_errors: str, stats: ReadStats
) -> Iterator[str]:
    """Records of an open source, with decompression failures turned into DataError."""
    try:
        yield from reader(source.stream, source.uri, fmt, encoding_errors, stats)
    except DECOMPRESSION_ERRORS as exc:
        raise decompression_error(source.uri, exc, source.raw.bytes_read) from None
    except OSError as exc:
        text = str(exc)
        if "Invalid data stream" in text or "Not a gzipped file" in text or "Error -3" in text:
            raise decompression_error(source.uri, exc, source.raw.bytes_read) from None
        raise
