"""``format: wikipedia``: a MediaWiki XML dump (``*-pages-articles*.xml.bz2``).

Pages are streamed one at a time (see ``xml_stream``), so a dump of any size
reads in flat memory. Markup is stripped with gensim's ``filter_wiki``, the
same cleaning gensim's ``WikiCorpus`` applies. Redirects and pages outside
the wanted namespaces (talk, user, template, … pages) are skipped and
counted.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO, Literal

from pydantic import BaseModel, Field, StrictInt

from incremental_w2v.config.base import Strict
from incremental_w2v.ingest.formats.registry import ReadStats, register
from incremental_w2v.ingest.formats.xml_stream import iter_records, local_name


class WikipediaFormat(Strict):
    """``format: {type: wikipedia, unit: article}``."""

    type: Literal["wikipedia"] = "wikipedia"
    unit: Literal["article", "paragraph"] = Field(
        "article", description="one record per article, or per paragraph of an article"
    )
    # A YAML list becomes the tuple (strict mode alone would want a tuple); items stay strict.
    namespaces: tuple[StrictInt, ...] = Field(
        (0,), min_length=1, strict=False, description="namespaces to read; 0 is the articles"
    )


# Old dumps mark redirects only in the text.
_REDIRECT_TEXT = re.compile(r"\s*#redirect", re.IGNORECASE)
_HEADING = re.compile(r"^[ \t]*=+[ \t]*(.*?)[ \t]*=+[ \t]*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\w")
_EMPHASIS = re.compile(r"'{2,}")  # ''italic'' and '''bold''' survive filter_wiki


def _page_fields(page: ET.Element) -> tuple[str, int | None, bool, str]:
    """Title, namespace (None in dumps without <ns>), redirect flag, text of the last revision."""
    title, ns, redirect, text = "", None, False, ""
    for child in page:
        name = local_name(child.tag)
        if name == "title":
            title = child.text or ""
        elif name == "ns" and child.text and child.text.strip().lstrip("-").isdigit():
            ns = int(child.text)
        elif name == "redirect":
            redirect = True
        elif name == "revision":  # history dumps hold several; the last is the newest
            for part in child:
                if local_name(part.tag) == "text":
                    text = part.text or ""
    return title, ns, redirect, text


def _paragraphs(plain: str) -> Iterator[str]:
    """Paragraphs of stripped wiki text; headings are boundaries, not paragraphs."""
    for block in _PARAGRAPH_BREAK.split(_HEADING.sub("\n\n", plain)):
        block = block.strip()
        if _WORD.search(block):
            yield block


@register("wikipedia")
def read_wikipedia(
    stream: IO[bytes], uri: str, fmt: BaseModel, encoding_errors: str, stats: ReadStats
) -> Iterator[str]:
    assert isinstance(fmt, WikipediaFormat)
    # Imported here: importing gensim.corpora costs ~0.6 s, which every command would pay.
    from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, filter_wiki

    ignored_prefixes = frozenset(IGNORED_NAMESPACES)
    wanted = set(fmt.namespaces)
    for page in iter_records(stream, uri, encoding_errors, stats, record="page", root="mediawiki"):
        title, ns, redirect, text = _page_fields(page)
        if ns is None:
            ns = -1 if title.split(":", 1)[0] in ignored_prefixes and ":" in title else 0
        if ns not in wanted:
            stats.note("other_namespaces")
            continue
        if redirect or _REDIRECT_TEXT.match(text):
            stats.note("redirects")
            continue
        plain = _EMPHASIS.sub("", filter_wiki(text))
        if fmt.unit == "article":
            plain = _HEADING.sub(r"\1", plain).strip()
            if not _WORD.search(plain):
                stats.note("empty")
                continue
            stats.records += 1
            yield plain
            continue
        found = False
        for paragraph in _paragraphs(plain):
            found = True
            stats.records += 1
            yield paragraph
        if not found:
            stats.note("empty")
