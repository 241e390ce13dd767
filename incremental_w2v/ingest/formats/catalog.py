"""Every corpus format, the config's ``format:`` union, and reading the records of a source.

A reader turns a decompressed byte stream into texts (one sentence,
paragraph, article or post each) and counts what it skipped. Tokenisation is
not its business. Each format's settings are a pydantic model in
``FORMATS``; the config names one with ``format:``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from incremental_w2v.errors import IncW2VError
from incremental_w2v.ingest.formats.jsonl import JsonlFormat
from incremental_w2v.ingest.formats.registry import Reader, ReadStats, registered
from incremental_w2v.ingest.formats.stackexchange import StackExchangeFormat
from incremental_w2v.ingest.formats.text import TextFormat
from incremental_w2v.ingest.formats.wikipedia import WikipediaFormat
from incremental_w2v.ingest.sources import (
    OpenSource,
    decompression_error,
    is_decompression_error,
    remote_error,
)


def _format_shorthand(value: Any) -> Any:
    """``format: text`` is short for ``format: {type: text}``."""
    return {"type": value} if isinstance(value, str) else value


# Discriminated on ``type``, so an error names the one format it is about.
FormatSettings = Annotated[
    TextFormat | JsonlFormat | WikipediaFormat | StackExchangeFormat,
    Field(discriminator="type"),
    BeforeValidator(_format_shorthand),
]


def reader_for(fmt: BaseModel) -> Reader:
    return registered(str(getattr(fmt, "type", "")))


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
    "FormatSettings",
    "JsonlFormat",
    "ReadStats",
    "Reader",
    "StackExchangeFormat",
    "TextFormat",
    "WikipediaFormat",
    "iterate_records",
    "reader_for",
]
