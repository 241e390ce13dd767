"""Streaming XML for the dump formats: bounded memory, positions in errors.

Dumps are tens of gigabytes, so the document is never built whole: it is
decoded in chunks, fed to an ``XMLPullParser``, and every finished record
element is cleared (and dropped from the root) as soon as the caller has
seen it. Decoding is done by ``ingest.decode`` rather than by expat so that invalid
UTF-8 gets the same treatment as in the line formats: a DataError with line
and byte offset, or replacement and a count under ``encoding_errors: replace``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO, Any

from incremental_w2v.errors import DataError
from incremental_w2v.ingest.decode import decoded_chunks
from incremental_w2v.ingest.formats.registry import ReadStats
from incremental_w2v.uris import redact


def local_name(tag: str) -> str:
    """``{http://www.mediawiki.org/xml/export-0.10/}page`` -> ``page``."""
    return tag.rsplit("}", 1)[-1]


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
