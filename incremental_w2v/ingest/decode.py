"""The one UTF-8 decoder of corpus bytes: clear errors, or counted replacements.

Every format reads its decompressed bytes through :class:`Utf8Decoder`, line
by line (text, JSON Lines) or chunk by chunk (the XML dumps), so invalid
UTF-8 gets the same treatment everywhere: a DataError naming the line and
byte offset, or, under ``encoding_errors: replace``, a replacement character
and a count. Data that looks binary (a NUL byte near the start) is refused
before it can be mistaken for text.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO

from incremental_w2v.errors import DataError
from incremental_w2v.ingest.formats.registry import ReadStats
from incremental_w2v.uris import redact

BINARY_SNIFF = 8192
MAX_LINE_BYTES = 64 << 20
_REPLACEMENT_UTF8 = "\ufffd".encode()


class Utf8Decoder:
    """Decodes one stream piece by piece, keeping a character cut between pieces."""

    def __init__(self, uri: str, encoding_errors: str, stats: ReadStats,
                 binary_hint: str = "point the queue at text files, or name the right "
                 "'format' for this entry") -> None:
        self.uri = uri
        self.replace = encoding_errors == "replace"
        self.stats = stats
        self.binary_hint = binary_hint
        self.offset = 0  # bytes decoded before the next piece
        self.line = 1  # line number at the start of the next piece
        self._strict = codecs.getincrementaldecoder("utf-8")("strict")

    def decode(self, raw: bytes) -> str:
        if self.offset < BINARY_SNIFF and b"\x00" in raw[: BINARY_SNIFF - self.offset]:
            at = raw.index(b"\x00")
            line = self.line + raw[:at].count(b"\n")
            raise DataError(
                f"corpus {redact(self.uri)} looks binary (NUL byte on line {line}, "
                f"byte offset {self.offset + at})",
                hint=self.binary_hint,
            )
        pending = self._strict.getstate()[0]
        try:
            # No UTF-8 sequence contains a newline byte, so a whole line decodes on its
            # own, in one C call; the incremental decoder keeps a cut character otherwise.
            text = raw.decode("utf-8") if not pending and raw.endswith(b"\n") else (
                self._strict.decode(raw))
        except UnicodeDecodeError as exc:
            if not self.replace:
                within = max(exc.start - len(pending), 0)
                line = self.line + raw[:within].count(b"\n")
                raise DataError(
                    f"corpus {redact(self.uri)} is not valid UTF-8: line {line}, byte offset "
                    f"{self.offset + within} ({exc.reason})",
                    hint="convert the file to UTF-8, or set 'encoding_errors: replace' to "
                    "replace undecodable bytes and count them",
                ) from None
            # Decode this piece leniently, keeping an incomplete tail for the next one.
            data = pending + raw
            lenient = codecs.getincrementaldecoder("utf-8")("replace")
            text = lenient.decode(data)
            self.stats.replacements += text.count("\ufffd") - data.count(_REPLACEMENT_UTF8)
            self._strict.setstate(lenient.getstate())
        self.offset += len(raw)
        self.line += raw.count(b"\n")
        return text

    def finish(self) -> str:
        """What a character cut by the end of the stream becomes (or its error)."""
        try:
            return self._strict.decode(b"", final=True)
        except UnicodeDecodeError:
            if not self.replace:
                raise DataError(
                    f"corpus {redact(self.uri)} is not valid UTF-8: it ends inside a "
                    "multi-byte character",
                    hint="the file may be truncated; re-create it",
                ) from None
            self.stats.replacements += 1
            return "\ufffd"


def decoded_lines(
    stream: IO[bytes], uri: str, encoding_errors: str, stats: ReadStats
) -> Iterator[tuple[int, str]]:
    """Lines of a UTF-8 stream as ``(line_number, text)``, with clear errors."""
    decoder = Utf8Decoder(uri, encoding_errors, stats)
    # A line is read with a cap: a file without newlines (binary, or one huge
    # record) must fail, not be read whole into memory.
    lines = iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b"")
    for number, raw in enumerate(lines, start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(
                f"corpus {redact(uri)} has a line longer than {MAX_LINE_BYTES >> 20} MiB "
                f"(line {number}, byte offset {decoder.offset}): not one text per line",
                hint="check the file and its 'format' (a dump needs its XML format, not text)",
            )
        yield number, decoder.decode(raw)
    decoder.finish()  # a last line cut inside a character: its error, or one more count


def decoded_chunks(
    stream: IO[bytes], uri: str, encoding_errors: str, stats: ReadStats, chunk: int = 1 << 16
) -> Iterator[str]:
    """The stream as text, ``chunk`` bytes at a time, with clear errors."""
    decoder = Utf8Decoder(uri, encoding_errors, stats,
                          binary_hint="check the file and its 'format' setting")
    while raw := stream.read(chunk):
        yield decoder.decode(raw)
    if tail := decoder.finish():
        yield tail
