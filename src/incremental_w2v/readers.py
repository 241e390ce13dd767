"""Corpus formats: how the records (texts) of a source are found.

A reader turns a decompressed byte stream into texts (one sentence,
paragraph, article or post each) and counts what it skipped. Tokenisation is
not its business. Each format's settings are a pydantic model in
``FORMATS``; the config names one with ``format:``.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Iterator
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import DataError, IncW2VError
from .reader_registry import Reader, ReadStats, register, registered
from .sources import OpenSource, decompression_error, is_decompression_error, remote_error
from .stackexchange_reader import StackExchangeFormat
from .uris import redact
from .wiki_reader import WikipediaFormat

log = logging.getLogger(__name__)


class TextFormat(BaseModel):
    """``format: text``: one sentence or paragraph per line (blank lines are skipped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["text"] = "text"


class JsonlFormat(BaseModel):
    """``format: {type: jsonl, field: body.text}``: JSON Lines, one record per line."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["jsonl"] = "jsonl"
    field: str = Field("text", description="dotted path of the text in each object")
    on_error: Literal["fail", "skip"] = Field(
        "fail", description="what a malformed line does: fail the run, or count and skip it"
    )

    @field_validator("field")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not value or any(not part for part in value.split(".")):
            raise ValueError("must be a dotted path such as 'text' or 'body.text'")
        return value


def reader_for(fmt: BaseModel) -> Reader:
    return registered(str(getattr(fmt, "type", "")))


_BINARY_SNIFF = 8192
MAX_LINE_BYTES = 64 << 20


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
    # A line is read with a cap: a file without newlines (binary, or one huge
    # record) must fail, not be read whole into memory.
    lines = iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b"")
    for number, raw in enumerate(lines, start=1):
        if offset < _BINARY_SNIFF and b"\x00" in raw:
            at = offset + raw.index(b"\x00")
            raise DataError(
                f"corpus {redact(uri)} looks binary (NUL byte on line {number}, "
                f"byte offset {at})",
                hint="point the queue at text files, or name the right 'format' for this entry",
            )
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(
                f"corpus {redact(uri)} has a line longer than {MAX_LINE_BYTES >> 20} MiB "
                f"(line {number}, byte offset {offset}): not one text per line",
                hint="check the file and its 'format' (a dump needs its XML format, not text)",
            )
        try:
            # No UTF-8 sequence contains a newline byte, so a whole line decodes on its
            # own (in C); only a last line without one goes through the incremental
            # decoder, which keeps a character cut by the end of the file for the check
            # below.
            text = raw.decode("utf-8") if raw.endswith(b"\n") else decoder.decode(raw)
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


_MISSING = object()
_SURROGATES = re.compile("[\ud800-\udfff]")


def _lookup(obj: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(obj, dict):
            obj = obj.get(part, _MISSING)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return _MISSING
    return obj


@register("jsonl")
def read_jsonl(
    stream: IO[bytes], uri: str, fmt: BaseModel, encoding_errors: str, stats: ReadStats
) -> Iterator[str]:
    assert isinstance(fmt, JsonlFormat)
    path = fmt.field.split(".")
    first_bad: int | None = None
    for number, line in decoded_lines(stream, uri, encoding_errors, stats):
        if not line.strip():
            stats.skipped += 1
            continue
        try:
            obj = json.loads(line.rstrip("\r\n"))
        except (ValueError, RecursionError) as exc:
            if fmt.on_error == "skip":
                stats.note("malformed")
                first_bad = first_bad or number
                continue
            where = f", column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            reason = (
                exc.msg.removesuffix(" at")  # "Unterminated string starting at"
                if isinstance(exc, json.JSONDecodeError)
                else "nested too deeply"
            )
            raise DataError(
                f"corpus {redact(uri)} has malformed JSON on line {number}{where}: {reason}",
                hint="fix or remove the line, or set 'on_error: skip' in the entry's format "
                "to count and skip malformed lines",
            ) from None
        value = _lookup(obj, path)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = "\n".join(value)
        if value is _MISSING or value is None:
            stats.note("missing_field")
            continue
        if not isinstance(value, str):
            stats.note("not_text")
            continue
        if not value.strip():
            stats.note("empty")
            continue
        # "\ud800" escapes decode to lone surrogates, which cannot be written as UTF-8.
        if _SURROGATES.search(value):
            value, n = _SURROGATES.subn("\ufffd", value)
            stats.replacements += n
        stats.records += 1
        yield value
    if first_bad is not None:
        log.warning(
            "%s: skipped %d malformed JSON line(s), the first on line %d",
            redact(uri), stats.notes["malformed"], first_bad,
        )


def iterate_records(
    open_source: OpenSource,
    reader: Reader,
    fmt: BaseModel,
    encoding_errors: str,
    stats: ReadStats,
) -> Iterator[str]:
    """The records ``reader`` finds in an opened source, with clear errors.

    Decompression fails lazily, while the stream is read, so a truncated or
    damaged ``.gz``/``.bz2``/``.xz``/``.zst`` surfaces here: it becomes a
    DataError naming the source and the compressed byte offset. A transport
    failure halfway through a remote object becomes StoreIOError.
    """
    uri = open_source.uri
    try:
        yield from reader(open_source.stream, uri, fmt, encoding_errors, stats)
    except IncW2VError:
        raise
    except Exception as exc:
        if is_decompression_error(exc):
            raise decompression_error(uri, exc, open_source.raw.bytes_read) from None
        if isinstance(exc, OSError) or _is_transport_error(exc):
            raise remote_error(uri, exc) from None
        raise


def _is_transport_error(exc: BaseException) -> bool:
    """requests' errors are OSErrors; boto's and urllib3's are not."""
    module = type(exc).__module__.split(".", 1)[0]
    return module in ("botocore", "boto3", "urllib3", "requests", "google", "azure")


FORMATS: tuple[type[BaseModel], ...] = (
    TextFormat,
    JsonlFormat,
    WikipediaFormat,
    StackExchangeFormat,
)

__all__ = [
    "FORMATS",
    "JsonlFormat",
    "ReadStats",
    "Reader",
    "StackExchangeFormat",
    "TextFormat",
    "WikipediaFormat",
    "decoded_lines",
    "iterate_records",
    "reader_for",
    "register",
]
