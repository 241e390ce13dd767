"""Measure the corpus readers on real inputs: records, tokens, seconds.

Usage (from the repository root):

    python benchmarks/readers.py --make-samples /tmp/samples
    ENWIKI=enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2
    python benchmarks/readers.py wikipedia:gensim-test:$ENWIKI \\
        stackexchange:/tmp/samples/Posts.7z jsonl,field=body.text:/tmp/samples/lee.jsonl \\
        text:DATA/reference.txt.gz

Each argument is FORMAT[,KEY=VALUE...][@TOKENIZER]:URI, e.g.
``jsonl,field=body.text:lee.jsonl`` or ``wikipedia,unit=paragraph:dump.xml.bz2``;
TOKENIZER is ``whitespace`` or ``regex=PATTERN`` (default ``simple``). One pass per
argument: open, decompress, parse, tokenise, count; nothing is kept. The
table goes to stdout as Markdown.

``--make-samples DIR`` writes the generated inputs: ``lee.jsonl`` (gensim's
Lee background corpus, one JSON object per document) and a StackExchange dump
``Posts.xml`` / ``Posts.xml.bz2`` / ``Posts.7z`` of a few thousand posts made
from the sentences of gensim's bundled real texts, in the published format.
"""

from __future__ import annotations

import argparse
import bz2
import json
import random
import re
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from gensim.test.utils import datapath

from incremental_w2v.ingest.formats.catalog import FORMATS, ReadStats, iterate_records, reader_for
from incremental_w2v.ingest.sources import open_source
from incremental_w2v.ingest.tokenize import TokenizeSettings, make_tokenizer


def sentences() -> list[str]:
    texts = []
    for name in ("lee_background.cor", "crime-and-punishment.txt"):
        with open(datapath(name), encoding="utf-8") as handle:
            texts.append(handle.read())
    found = re.split(r"(?<=[.!?])\s+", " ".join(" ".join(texts).split()))
    return [s for s in found if 20 < len(s) < 400]


def make_samples(folder: Path, posts: int) -> None:
    import py7zr

    folder.mkdir(parents=True, exist_ok=True)
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle, \
            (folder / "lee.jsonl").open("w", encoding="utf-8") as out:
        for i, line in enumerate(handle):
            out.write(json.dumps({"id": i, "body": {"text": line.strip()}}) + "\n")
    rng = random.Random(7)
    pool = sentences()
    rows, question = [], 0
    for post_id in range(1, posts + 1):
        paragraphs = [
            " ".join(rng.sample(pool, rng.randint(1, 4))) for _ in range(rng.randint(1, 4))
        ]
        body = "".join(f"<p>{escape(p)}</p>\n" for p in paragraphs)
        if rng.random() < 0.3:
            body += "<pre><code>for x in range(10):\n    print(x &amp; 1)\n</code></pre>\n"
        attrs = {"Id": str(post_id), "CreationDate": "2015-03-01T10:00:00.000", "Score": "1"}
        if question == 0 or rng.random() < 0.35:
            question = post_id
            attrs |= {"PostTypeId": "1", "Title": rng.choice(pool)[:150], "Tags": "<python>"}
        else:
            attrs |= {"PostTypeId": "2", "ParentId": str(question)}
        attrs["Body"] = body
        rows.append("  <row " + " ".join(
            f"{k}={quoteattr(v, {chr(10): '&#xA;'})}" for k, v in attrs.items()) + " />")
    xml = '<?xml version="1.0" encoding="utf-8"?>\r\n<posts>\r\n' + "\r\n".join(rows) \
        + "\r\n</posts>\r\n"
    (folder / "Posts.xml").write_text(xml, encoding="utf-8")
    (folder / "Posts.xml.bz2").write_bytes(bz2.compress(xml.encode()))
    with py7zr.SevenZipFile(folder / "Posts.7z", "w") as archive:
        archive.write(folder / "Posts.xml", "Posts.xml")
    print(f"wrote {folder}/lee.jsonl, Posts.xml, Posts.xml.bz2, Posts.7z ({posts} posts)")


def measure(spec: str) -> dict[str, object]:
    name, _, uri = spec.partition(":")
    name, _, tok = name.partition("@")
    name, *options = name.split(",")
    settings = TokenizeSettings()
    if tok == "whitespace":
        settings = TokenizeSettings(mode="whitespace")
    elif tok.startswith("regex="):
        settings = TokenizeSettings(mode="regex", pattern=tok[len("regex="):])
    model = next(f for f in FORMATS if f.model_fields["type"].default == name)
    fmt = model.model_validate(dict(option.split("=", 1) for option in options))
    tokenize = make_tokenizer(settings)
    stats = ReadStats()
    records = tokens = 0
    started = time.perf_counter()
    with open_source(uri, Path.cwd()) as src:
        for text in iterate_records(src, reader_for(fmt), fmt, "strict", stats):
            found = tokenize(text)
            if found:
                records += 1
                tokens += len(found)
        raw_bytes = src.raw.bytes_read
    seconds = time.perf_counter() - started
    return {
        "format": ",".join([name, *options]), "tokenize": settings.mode,
        "input": Path(uri.split(":")[-1]).name,
        "MB": raw_bytes / 1e6, "records": stats.records, "skipped": stats.skipped,
        "sentences": records, "tokens": tokens, "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help="FORMAT[@TOKENIZER]:URI")
    parser.add_argument("--make-samples", type=Path, metavar="DIR")
    parser.add_argument("--posts", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.make_samples:
        make_samples(args.make_samples, args.posts)
    if not args.inputs:
        return 0
    print("| format | tokenize | input | stored MB | records | skipped | sentences | tokens "
          "| seconds | k tokens/s |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for spec in args.inputs:
        row = measure(spec)
        print(f"| {row['format']} | {row['tokenize']} | {row['input']} | {row['MB']:.1f} "
              f"| {row['records']:,} | {row['skipped']:,} | {row['sentences']:,} "
              f"| {row['tokens']:,} | {row['seconds']:.1f} "
              f"| {row['tokens'] / row['seconds'] / 1000:,.0f} |", flush=True)  # type: ignore[operator]
    return 0


if __name__ == "__main__":
    sys.exit(main())
