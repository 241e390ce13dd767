"""``format: text``: one sentence or paragraph per line (blank lines are skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Literal

from pydantic import BaseModel

from incremental_w2v.config.base import Strict
from incremental_w2v.ingest.decode import decoded_lines
from incremental_w2v.ingest.formats.registry import ReadStats, register


class TextFormat(Strict):
    """``format: text``: one sentence or paragraph per line (blank lines are skipped)."""

    type: Literal["text"] = "text"


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
