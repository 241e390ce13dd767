"""``format: stackexchange``: the ``Posts.xml`` of a StackExchange data dump.

Each ``<row>`` is one post; its ``Body`` attribute holds escaped HTML. A
record is a question's title and the text of its body, or an answer's body;
HTML is stripped with the standard library's ``html.parser`` and code blocks
(``<pre>``) are left out unless ``include_code: true``. Rows are streamed
(see ``xml_stream``); the ``.7z`` archives the dumps are published as are
opened by ``sources.open_source``.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import IO, Literal

from pydantic import BaseModel, Field

from incremental_w2v.config.base import Strict
from incremental_w2v.ingest.formats.registry import ReadStats, register
from incremental_w2v.ingest.formats.xml_stream import iter_records

QUESTION, ANSWER = "1", "2"


class StackExchangeFormat(Strict):
    """``format: {type: stackexchange, include_code: false}``."""

    type: Literal["stackexchange"] = "stackexchange"
    include_titles: bool = Field(True, description="put each question's title before its body")
    include_answers: bool = Field(True, description="read answers too, not only questions")
    include_code: bool = Field(False, description="keep the text of <pre> code blocks")


# Tags after which words must not run together ("<p>a</p><p>b</p>" is "a b", not "ab").
_BREAKS = frozenset({
    "p", "div", "br", "hr", "li", "ul", "ol", "pre", "blockquote", "table", "tr", "td", "th",
    "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
})


class HtmlText(HTMLParser):
    """The text of an HTML fragment, with or without its ``<pre>`` blocks."""

    def __init__(self, include_code: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.include_code = include_code
        self._parts: list[str] = []
        self._in_pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self._in_pre += 1
        if tag in _BREAKS:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = max(0, self._in_pre - 1)
        if tag in _BREAKS:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.include_code or not self._in_pre:
            self._parts.append(data)

    def text(self, html: str) -> str:
        self.reset()  # a post with unclosed tags must not affect the next one
        self._parts, self._in_pre = [], 0
        self.feed(html)
        self.close()
        return "".join(self._parts).strip()


@register("stackexchange")
def read_stackexchange(
    stream: IO[bytes], uri: str, fmt: BaseModel, encoding_errors: str, stats: ReadStats
) -> Iterator[str]:
    assert isinstance(fmt, StackExchangeFormat)
    html = HtmlText(fmt.include_code)
    for row in iter_records(stream, uri, encoding_errors, stats, record="row", root="posts"):
        kind = row.get("PostTypeId")
        if kind == ANSWER and not fmt.include_answers:
            stats.note("answers")
            continue
        if kind not in (QUESTION, ANSWER):
            stats.note("other_post_types")  # tag wikis, moderator nominations, …
            continue
        body = html.text(row.get("Body", ""))
        title = (row.get("Title") or "").strip() if fmt.include_titles else ""
        text = f"{title}\n{body}" if title and body else (title or body)
        if not text:
            stats.note("empty")
            continue
        stats.records += 1
        yield text
