"""Corpus formats on real files: jsonl, MediaWiki dumps and StackExchange dumps (.xml/.bz2/.7z)."""

from __future__ import annotations

import bz2
import hashlib
import json
import logging
import re
import threading
import tracemalloc
from pathlib import Path
from xml.sax.saxutils import quoteattr

import py7zr
import pytest
from gensim.corpora.wikicorpus import extract_pages
from gensim.test.utils import datapath
from pydantic import BaseModel

from incremental_w2v.config.schema import parse_config
from incremental_w2v.errors import ConfigError, DataError
from incremental_w2v.ingest.formats.catalog import (
    FORMATS,
    JsonlFormat,
    ReadStats,
    StackExchangeFormat,
    TextFormat,
    WikipediaFormat,
    iterate_records,
    reader_for,
)
from incremental_w2v.ingest.sources import open_source

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def read_all(uri: str | Path, fmt: BaseModel, base: Path = Path("."),
             encoding_errors: str = "strict") -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    with open_source(str(uri), base) as src:
        records = list(iterate_records(src, reader_for(fmt), fmt, encoding_errors, stats))
    return records, stats


def lee_lines() -> list[str]:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


# ---------------------------------------------------------------- config


def test_every_format_is_in_the_config_union() -> None:
    base = "store: s\nbase: {corpus: a.txt}\nqueue:\n"
    for model in FORMATS:
        name = model.model_fields["type"].default
        config = parse_config(base + f"  - {{uri: b, format: {name}}}\n")
        assert type(config.queue[0].format) is model
    config = parse_config(base + "  - {uri: b, format: {type: jsonl, field: body.text}}\n")
    assert config.queue[0].format == JsonlFormat(field="body.text")
    config = parse_config("store: s\nbase: {corpus: w.bz2, format: {type: wikipedia, "
                          "unit: paragraph}}\n")
    assert config.base.as_entry().format == WikipediaFormat(unit="paragraph")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{type: jsonl, feild: x}", r"queue\[0\]\.format\.feild \(line 4\): unknown key"),
        ("{type: csv}", r"queue\[0\]\.format \(line 4\).*'csv'"),
        ("{type: wikipedia, unit: section}", r"format\.unit \(line 4\).*'article' or 'paragraph'"),
        ("{type: jsonl, field: 'a..b'}", r"format\.field \(line 4\): must be a dotted path"),
        ("{type: stackexchange, include_code: maybe}", r"format\.include_code \(line 4\)"),
    ],
)
def test_bad_format_settings_name_the_key(entry: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"store: s\nbase: {{corpus: a.txt}}\nqueue:\n"
                     f"  - {{uri: b, format: {entry}}}\n")
    assert re.search(problem, str(info.value)), str(info.value)


# ---------------------------------------------------------------- jsonl


def test_jsonl_reads_a_dotted_field_from_lee(tmp_path: Path) -> None:
    lines = lee_lines()
    path = tmp_path / "lee.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i, line in enumerate(lines):
            out.write(json.dumps({"id": i, "body": {"text": line, "lang": "en"}}) + "\n")
    records, stats = read_all(path, JsonlFormat(field="body.text"))
    assert records == lines
    assert stats.records == len(lines) and stats.skipped == 0


def test_jsonl_counts_what_it_skips(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    rows = [
        '{"text": "first record"}',
        '{"title": "no text field"}',
        '{"text": null}',
        '{"text": 42}',
        "",
        '{"text": "   "}',
        '{"text": ["a list", "of strings"]}',
        '[1, 2, 3]',
        '{"text": "last record"}',
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    records, stats = read_all(path, JsonlFormat())
    assert records == ["first record", "a list\nof strings", "last record"]
    assert stats.notes == {"missing_field": 3, "not_text": 1, "empty": 1}
    assert stats.skipped == 6  # the blank line too


def test_jsonl_list_index_in_path(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"items": [{"t": "zero"}, {"t": "one"}]}\n{"items": []}\n')
    records, stats = read_all(path, JsonlFormat(field="items.1.t"))
    assert records == ["one"]
    assert stats.notes == {"missing_field": 1}


def test_jsonl_malformed_line_fails_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "fine"}\n{"text": "broken\n{"text": "after"}\n')
    with pytest.raises(DataError) as info:
        read_all(path, JsonlFormat())
    message = str(info.value)
    assert "bad.jsonl" in message and "line 3, column 10" in message
    assert "on_error: skip" in message  # the hint says how to go on


def test_jsonl_malformed_lines_skipped_on_request(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "broken\n{oops}\n{"text": "after"}\n')
    with caplog.at_level(logging.WARNING, logger="incremental_w2v"):
        records, stats = read_all(path, JsonlFormat(on_error="skip"))
    assert records == ["ok", "after"]
    assert stats.notes == {"malformed": 2}
    assert "first on line 2" in caplog.text


def test_jsonl_lone_surrogate_escapes_are_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "surrogates.jsonl"
    path.write_text('{"text": "broken \\ud83d emoji"}\n{"text": "real \\ud83d\\ude00 pair"}\n')
    records, stats = read_all(path, JsonlFormat())
    assert records == ["broken \ufffd emoji", "real \U0001f600 pair"]
    assert stats.replacements == 1
    for record in records:
        record.encode("utf-8")  # what the working file needs


# ---------------------------------------------------------------- wikipedia


@pytest.fixture(scope="module")
def enwiki_articles() -> tuple[list[str], ReadStats]:
    return read_all(f"gensim-test:{ENWIKI}", WikipediaFormat())


def test_wikipedia_real_dump_articles(enwiki_articles: tuple[list[str], ReadStats]) -> None:
    records, stats = enwiki_articles
    # Independent figures: gensim's own page extraction and the raw <redirect> marks.
    with bz2.open(datapath(ENWIKI)) as handle:
        pages = list(extract_pages(handle, filter_namespaces=("0",)))
    with bz2.open(datapath(ENWIKI)) as handle:
        raw = handle.read().decode("utf-8")
    in_ns0 = [p for p in pages if p[1]]
    redirects = sum(1 for _, text, _ in in_ns0 if text.lstrip().lower().startswith("#redirect"))
    assert redirects > 50 and raw.count("<redirect ") >= redirects
    assert stats.notes["redirects"] == redirects
    assert stats.notes["other_namespaces"] == len(pages) - len(in_ns0)
    assert stats.records == len(records) == len(in_ns0) - redirects - stats.notes.get("empty", 0)
    assert len(records) > 100
    anarchism = records[0]
    assert anarchism.startswith("Anarchism is a political philosophy")
    for record in records:
        assert not re.search(r"\[\[|\]\]|\{\{|<ref|'''|^==", record, re.MULTILINE), record[:200]


def test_wikipedia_paragraphs_cover_the_articles(
    enwiki_articles: tuple[list[str], ReadStats],
) -> None:
    articles, _ = enwiki_articles
    paragraphs, stats = read_all(f"gensim-test:{ENWIKI}", WikipediaFormat(unit="paragraph"))
    assert len(paragraphs) > 20 * len(articles)
    assert stats.records == len(paragraphs)
    assert all("\n\n" not in p and p.strip() == p for p in paragraphs)
    # Paragraph mode drops only the headings: nearly every word is still there.
    words_a = sum(len(a.split()) for a in articles)
    words_p = sum(len(p.split()) for p in paragraphs)
    assert 0.97 * words_a < words_p <= words_a


MEDIAWIKI = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">
  <siteinfo><sitename>Test</sitename></siteinfo>
  <page><title>Alpha</title><ns>0</ns><id>1</id>
    <revision><id>1</id><text>Old text of alpha.</text></revision>
    <revision><id>2</id><text>'''Alpha''' is the [[Greek alphabet|first letter]].{{cite|x}}

== History ==
It came from [[Phoenicia]].&lt;ref&gt;A source&lt;/ref&gt;</text></revision>
  </page>
  <page><title>Talk:Alpha</title><ns>1</ns><id>2</id>
    <revision><id>3</id><text>Is this right?</text></revision></page>
  <page><title>Beta</title><ns>0</ns><id>3</id><redirect title="Alpha" />
    <revision><id>4</id><text>#REDIRECT [[Alpha]]</text></revision></page>
  <page><title>Gamma</title><ns>0</ns><id>4</id>
    <revision><id>5</id><text>#redirect [[Alpha]]</text></revision></page>
  <page><title>Delta</title><ns>0</ns><id>5</id>
    <revision><id>6</id><text>{{stub}}</text></revision></page>
</mediawiki>
"""


def test_wikipedia_skips_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "wiki.xml"
    path.write_text(MEDIAWIKI, encoding="utf-8")
    records, stats = read_all(path, WikipediaFormat())
    assert records == ["Alpha is the first letter.\n\nHistory\nIt came from Phoenicia."]
    assert stats.notes == {"other_namespaces": 1, "redirects": 2, "empty": 1}
    records, stats = read_all(path, WikipediaFormat(unit="paragraph"))
    assert records == ["Alpha is the first letter.", "It came from Phoenicia."]
    records, stats = read_all(path, WikipediaFormat(namespaces=(0, 1)))
    assert records[1] == "Is this right?"


def test_wikipedia_dump_without_ns_elements(tmp_path: Path) -> None:
    old = re.sub(r"<ns>\d+</ns>", "", MEDIAWIKI)
    path = tmp_path / "old.xml.bz2"
    path.write_bytes(bz2.compress(old.encode()))
    records, stats = read_all(path, WikipediaFormat())
    assert len(records) == 1 and stats.notes["other_namespaces"] == 1


def test_wikipedia_malformed_xml_names_line_and_column(tmp_path: Path) -> None:
    broken = MEDIAWIKI.replace("<title>Delta</title>", "<title>Delta</titel>")
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "</titel>" in x)) + 1
    path = tmp_path / "broken.xml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_all(path, WikipediaFormat())
    message = str(info.value)
    assert f"mismatched tag at line {line}, column" in message and "broken.xml" in message


def test_wikipedia_truncated_dump(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_text(MEDIAWIKI[: MEDIAWIKI.index("<page><title>Gamma")], encoding="utf-8")
    with pytest.raises(DataError, match="is truncated"):
        read_all(path, WikipediaFormat())


def test_wikipedia_refuses_another_kind_of_xml(tmp_path: Path) -> None:
    path = tmp_path / "Posts.xml"
    write_posts(path, POSTS)
    with pytest.raises(DataError, match=r"root element is <posts>, expected <mediawiki>"):
        read_all(path, WikipediaFormat())


def test_xml_is_streamed_in_flat_memory(tmp_path: Path) -> None:
    page = ("<page><title>P{i}</title><ns>0</ns><id>{i}</id><revision><text>"
            + "Some words of text here. " * 60 + "</text></revision></page>\n")
    fmt = WikipediaFormat()

    def peak(pages: int) -> int:
        path = tmp_path / f"w{pages}.xml"
        path.write_text("<mediawiki>" + "".join(page.format(i=i) for i in range(pages))
                        + "</mediawiki>")
        tracemalloc.start()
        try:
            with open_source(str(path), tmp_path) as src:
                count = sum(1 for _ in iterate_records(src, reader_for(fmt), fmt, "strict",
                                                       ReadStats()))
            assert count == pages
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # 300 more pages of 1.5 KB: kept, they would add about 0.7 MB.
    small, large = peak(100), peak(400)
    assert large - small < 150_000, (small, large)


# ---------------------------------------------------------------- stackexchange

POSTS = [
    {"Id": "1", "PostTypeId": "1", "Title": "How do I reverse a list in Python?",
     "Body": "<p>I have a list of numbers &amp; want it reversed.</p>\n"
             "<pre><code>xs = [1, 2, 3]\nprint(xs)\n</code></pre>\n"
             "<p>Is there a built-in like <code>reversed</code>?</p>\n",
     "Tags": "<python><list>", "AcceptedAnswerId": "2"},
    {"Id": "2", "PostTypeId": "2", "ParentId": "1",
     "Body": "<p>Use slicing:</p><pre><code>xs[::-1]</code></pre><p>or <a href=\"https://docs."
             "python.org\">the docs</a>.</p><ul><li>one</li><li>two</li></ul>"},
    {"Id": "3", "PostTypeId": "4", "Body": "<p>Python is a language.</p>"},
    {"Id": "4", "PostTypeId": "5", "Body": "<p>Tag wiki body.</p>"},
    {"Id": "5", "PostTypeId": "1", "Title": "Déjà vu: Unicode «quotes» in titles?",
     "Body": "<blockquote><p>quoted</p></blockquote><p>naïve text&nbsp;here</p>"},
    {"Id": "6", "PostTypeId": "2", "ParentId": "5", "Body": "<pre><code>only code</code></pre>"},
]


def write_posts(path: Path, posts: list[dict[str, str]]) -> None:
    """Posts.xml as the dumps publish it: one <row/> per line, newlines as &#xA;."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
    for post in posts:
        row = {"CreationDate": "2010-07-28T19:04:21.300", "Score": "3", **post}
        attrs = " ".join(
            f"{k}={quoteattr(v, {chr(10): '&#xA;', chr(13): '&#xD;'})}" for k, v in row.items()
        )
        lines.append(f"  <row {attrs} />")
    lines.append("</posts>")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def write_7z(path: Path, members: dict[str, Path]) -> None:
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, source in members.items():
            archive.write(source, name)


def test_stackexchange_titles_bodies_no_code(tmp_path: Path) -> None:
    path = tmp_path / "Posts.xml"
    write_posts(path, POSTS)
    records, stats = read_all(path, StackExchangeFormat())
    assert stats.notes == {"other_post_types": 2, "empty": 1}  # the code-only answer is empty
    assert len(records) == stats.records == 3
    question, answer, unicode_q = (" ".join(r.split()) for r in records)
    assert question == ("How do I reverse a list in Python? I have a list of numbers & want it "
                        "reversed. Is there a built-in like reversed?")
    assert answer == "Use slicing: or the docs. one two"
    assert unicode_q == "Déjà vu: Unicode «quotes» in titles? quoted naïve text here"
    assert "<" not in "".join(records) and "&amp;" not in "".join(records)


def test_stackexchange_settings(tmp_path: Path) -> None:
    path = tmp_path / "Posts.xml"
    write_posts(path, POSTS)
    records, _ = read_all(path, StackExchangeFormat(include_code=True))
    assert "xs = [1, 2, 3]" in records[0] and "xs[::-1]" in records[1]
    assert records[-1] == "only code"
    records, stats = read_all(path, StackExchangeFormat(include_answers=False))
    assert len(records) == 2 and stats.notes["answers"] == 2
    records, _ = read_all(path, StackExchangeFormat(include_titles=False))
    assert records[0].startswith("I have a list")


def test_stackexchange_unclosed_tags_do_not_leak_into_the_next_post(tmp_path: Path) -> None:
    path = tmp_path / "Posts.xml"
    write_posts(path, [
        {"Id": "1", "PostTypeId": "1", "Title": "T", "Body": "<p>text <pre><code>never closed"},
        {"Id": "2", "PostTypeId": "2", "Body": "<p>next answer</p>"},
    ])
    records, _ = read_all(path, StackExchangeFormat())
    assert [" ".join(r.split()) for r in records] == ["T text", "next answer"]


@pytest.fixture
def dump(tmp_path: Path) -> dict[str, Path]:
    """One StackExchange dump as plain XML, .bz2, and the published .7z (with other members)."""
    posts = tmp_path / "Posts.xml"
    write_posts(posts, POSTS * 50)
    users = tmp_path / "Users.xml"
    users.write_text('<?xml version="1.0" encoding="utf-8"?>\n<users>\n</users>\n')
    compressed = tmp_path / "Posts.xml.bz2"
    compressed.write_bytes(bz2.compress(posts.read_bytes()))
    archive = tmp_path / "site.stackexchange.com.7z"
    write_7z(archive, {"Posts.xml": posts, "Users.xml": users})
    return {"xml": posts, "bz2": compressed, "7z": archive}


def test_stackexchange_plain_bz2_and_7z_agree(dump: dict[str, Path]) -> None:
    expected, expected_stats = read_all(dump["xml"], StackExchangeFormat())
    assert len(expected) == 150
    for kind in ("bz2", "7z"):
        stats = ReadStats()
        with open_source(str(dump[kind]), Path(".")) as src:
            fmt = StackExchangeFormat()
            records = list(iterate_records(src, reader_for(fmt), fmt, "strict", stats))
            raw_sha = src.raw.sha256.hexdigest()
            raw_bytes = src.raw.bytes_read
        assert records == expected, kind
        assert stats == expected_stats
        # The recorded hash is of the bytes as stored, like sha256sum's.
        assert raw_sha == hashlib.sha256(dump[kind].read_bytes()).hexdigest()
        assert raw_bytes == dump[kind].stat().st_size


def test_7z_member_choice(tmp_path: Path, dump: dict[str, Path]) -> None:
    single = tmp_path / "only.7z"
    text = tmp_path / "notes.txt"
    text.write_text("one line\nanother line\n")
    write_7z(single, {"notes.txt": text})
    assert read_all(single, TextFormat())[0] == ["one line\n", "another line\n"]
    with open_source(str(dump["7z"]), Path("."), archive_member="Users.xml") as src:
        assert b"<users>" in src.stream.read()
    several = tmp_path / "several.7z"
    write_7z(several, {"a.txt": text, "b.txt": text})
    with pytest.raises(DataError, match=r"holds 2 files and no single Posts.xml: a.txt, b.txt"):
        read_all(several, TextFormat())


def test_7z_stops_its_thread_when_reading_stops_early(tmp_path: Path) -> None:
    posts = tmp_path / "Posts.xml"
    write_posts(posts, POSTS * 4000)  # several MB, more than the queue holds
    archive = tmp_path / "big.7z"
    write_7z(archive, {"Posts.xml": posts})
    fmt = StackExchangeFormat()
    with open_source(str(archive), tmp_path) as src:
        records = iterate_records(src, reader_for(fmt), fmt, "strict", ReadStats())
        first = next(records)
        producers = [t for t in threading.enumerate() if t.name == "incw2v-7z"]
        assert producers and producers[0].is_alive()  # still waiting to hand over more
        records.close()
    assert first.startswith("How do I reverse")
    assert not [t for t in threading.enumerate() if t.name == "incw2v-7z"]


def test_damaged_7z_archives(tmp_path: Path, dump: dict[str, Path]) -> None:
    data = dump["7z"].read_bytes()
    cut = tmp_path / "cut.7z"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut.7z is not a readable .7z archive"):
        read_all(cut, StackExchangeFormat())
    flipped = tmp_path / "flipped.7z"
    middle = len(data) // 3
    flipped.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                        + data[middle + 64:])
    with pytest.raises(DataError, match=r"flipped.7z"):
        read_all(flipped, StackExchangeFormat())
    assert not [t for t in threading.enumerate() if t.name == "incw2v-7z"]
