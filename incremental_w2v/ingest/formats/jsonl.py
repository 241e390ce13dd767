"""``format: jsonl``: JSON Lines, one record per line, the text at a dotted path."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import IO, Any, Literal

from pydantic import BaseModel, Field, field_validator

from incremental_w2v.config.base import Strict
from incremental_w2v.errors import DataError
from incremental_w2v.ingest.decode import decoded_lines
from incremental_w2v.ingest.formats.registry import ReadStats, register
from incremental_w2v.uris import redact

log = logging.getLogger(__name__)


class JsonlFormat(Strict):
    """``format: {type: jsonl, field: body.text}``: JSON Lines, one record per line."""

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
