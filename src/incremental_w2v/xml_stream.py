"""Streaming XML for the dump formats: bounded memory, positions in errors.

Dumps are tens of gigabytes, so the document is never built whole: it is
decoded in chunks, fed to an ``XMLPullParser``, and every finished record
element is cleared (and dropped from the root) as soon as the caller has
seen it. Decoding is done here rather than by expat so that invalid UTF-8
gets the same treatment as in the line formats: a DataError with line and
byte offset, or replacement and a count under ``encoding_errors: replace``.
"""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO, Any

from .errors import DataError
from .reader_registry import ReadStats
from .uris import redact

CHUNK = 1 << 16
_BINARY_SNIFF = 8192
_REPLACEMENT_UTF8 = "\ufffd".encode()


def local_name(tag: str) -> str:
    """``{http://www.mediawiki.org/xml/export-0.10/}page`` -> ``page``."""
    return tag.rsplit("}", 1)[-1]


def decoded_chunks(
    stream: IO[bytes], uri: str, encoding_errors: str, stats: ReadStats
) -> Iterator[str]:
    """The stream as text, chunk by chunk, decoded as UTF-8 with clear errors."""
    strict = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes of the stream consumed before this chunk
    line = 1  # line number at the start of this chunk
    while True:
        raw = stream.read(CHUNK)
        if not raw:
            break
        if offset < _BINARY_SNIFF and b"\x00" in raw[: _BINARY_SNIFF - offset]:
            at = offset + raw.index(b"\x00")
            raise DataError(
                f"corpus {redact(uri)} looks binary (NUL byte at byte offset {at}), "
                "not an XML dump",
                hint="check the file and its 'format' setting",
            )
        pending = len(strict.getstate()[0])
        try:
            text = strict.decode(raw)
        except UnicodeDecodeError as exc:
            if encoding_errors != "replace":
                within = max(exc.start - pending, 0)
                at_line = line + raw[:within].count(b"\n")
                raise DataError(
                    f"corpus {redact(uri)} is not valid UTF-8: line {at_line}, "
                    f"byte offset {offset + within} ({exc.reason})",
                    hint="convert the file to UTF-8, or set 'encoding_errors: replace' to "
                    "replace undecodable bytes and count them",
                ) from None
            # Re-decode this chunk leniently, keeping an incomplete tail for the next one.
            data = strict.getstate()[0] + raw
            lenient = codecs.getincrementaldecoder("utf-8")("replace")
            text = lenient.decode(data)
            stats.replacements += text.count("\ufffd") - data.count(_REPLACEMENT_UTF8)
            strict.setstate(lenient.getstate())
        offset += len(raw)
        line += raw.count(b"\n")
        yield text
    try:
        tail = strict.decode(b"", final=True)
    except UnicodeDecodeError:
        if encoding_errors != "replace":
            raise DataError(
                f"corpus {redact(uri)} is not valid UTF-8: it ends inside a multi-byte character",
                hint="the file may be truncated; re-create it",
            ) from None
        stats.replacements += 1
        tail = "\ufffd"
    if tail:
        yield tail


def _xml_error(uri: str, exc: ET.ParseError) -> DataError:
    line, column = exc.position
    what = str(exc).split(":", 1)[0]
    return DataError(
        f"corpus {redact(uri)} is not well-formed XML: {what} at line {line}, column {column + 1}",
        hint="the dump may be damaged or truncated: re-download it; nothing was committed",
    )


def iter_records(
    stream: IO[bytes],
    uri: str,
    encoding_errors: str,
    stats: ReadStats,
    record: str,
    root: str,
) -> Iterator[ET.Element]:
    """Each finished ``record`` element below the root, cleared after the caller is done.

    ``root`` is the expected name of the document element: a dump of the
    wrong kind fails at once instead of yielding nothing.
    """
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    top: ET.Element | None = None
    depth = 0
    chunks = decoded_chunks(stream, uri, encoding_errors, stats)
    events: list[tuple[Any, ...]] = []
    while True:
        chunk = next(chunks, None)
        try:
            if chunk is None:
                parser.close()
            else:
                parser.feed(chunk)
            # XMLPullParser queues syntax errors; read_events raises them.
            events = list(parser.read_events())
        except ET.ParseError as exc:
            if chunk is None and str(exc).startswith(("no element found", "unclosed token")):
                line, column = exc.position
                raise DataError(
                    f"corpus {redact(uri)} ends before its XML document is complete "
                    f"(line {line}, column {column + 1}): it is truncated",
                    hint="re-download or re-create the dump; nothing was committed",
                ) from None
            raise _xml_error(uri, exc) from None
        for item in events:
            event, elem = item[0], item[-1]
            if not isinstance(elem, ET.Element):  # only start/end were asked for
                continue
            if event == "start":
                if top is None:
                    top = elem
                    if local_name(elem.tag) != root:
                        raise DataError(
                            f"corpus {redact(uri)} is not the expected dump: its root element "
                            f"is <{local_name(elem.tag)}>, expected <{root}>",
                            hint="check the entry's 'format' (and, for an archive, its member)",
                        )
                depth += 1
                continue
            depth -= 1
            if local_name(elem.tag) == record:
                yield elem
                elem.clear()
            if depth == 1 and top is not None:
                top.clear()  # drop finished children so memory stays flat
        if chunk is None:
            return
