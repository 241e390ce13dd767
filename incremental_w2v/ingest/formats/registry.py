"""The table of corpus readers and what a reader reports.

Kept apart from ``readers.py`` so that format modules (``wiki_reader``,
``stackexchange_reader``) can register themselves without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from pydantic import BaseModel


@dataclass
class ReadStats:
    """What a reader saw in one pass."""

    records: int = 0
    skipped: int = 0
    replacements: int = 0  # undecodable bytes replaced (encoding_errors: replace)
    notes: dict[str, int] = field(default_factory=dict)

    def note(self, why: str, n: int = 1) -> None:
        """Count ``n`` skipped records under ``why`` (e.g. 'redirects', 'malformed')."""
        self.skipped += n
        self.notes[why] = self.notes.get(why, 0) + n


# A reader gets the stream, the URI (for messages), the format's settings,
# the encoding error policy and the stats to fill in.
Reader = Callable[[IO[bytes], str, BaseModel, str, ReadStats], Iterator[str]]

_READERS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        _READERS[name] = fn
        return fn

    return wrap


def registered(name: str) -> Reader:
    return _READERS[name]
