"""Every format and source end to end through ``incw2v add-corpus``.

Real files and real local servers; checks exit codes, what each version
records, and that a bad corpus leaves the store exactly as it was.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import boto3
import py7zr
import pytest
from gensim.test.utils import datapath

from helpers import s3_credentials
from incremental_w2v.ingest.formats.catalog import (
    JsonlFormat,
    ReadStats,
    StackExchangeFormat,
    iterate_records,
    reader_for,
)
from incremental_w2v.ingest.sources import open_source
from incremental_w2v.ingest.tokenize import TokenizeSettings, make_tokenizer

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
SECRET = "FAKE-secret-e2e-7d1a"
SMALL_MODEL = """
model: {vector_size: 16, window: 3, min_count: 3, negative: 3, epochs: 2, workers: 2, seed: 7}
update: {epochs: 2}
"""
Result = Any  # conftest's Result: .code, .out, .err, .json()


def lee_lines() -> list[str]:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def write_config(folder: Path, queue: str, extra: str = "") -> Path:
    path = folder / "config.yaml"
    path.write_text(
        "store: store\n" + SMALL_MODEL.strip() + "\n"
        + "base:\n  corpus: base.txt\n"
        + "queue:\n" + textwrap.indent(textwrap.dedent(queue).strip(), "  ") + "\n"
        + textwrap.dedent(extra)
    )
    return path


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "store" / "manifest.json").read_text())


def store_files(folder: Path) -> dict[str, bytes]:
    store = folder / "store"
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and not p.name.startswith(".lock")}  # the lock notes who ran last


def counted(path: Path, fmt: Any) -> tuple[int, int]:
    """Sentences and tokens of a corpus, read by the library directly."""
    tokenize = make_tokenizer(TokenizeSettings())
    sentences = tokens = 0
    with open_source(str(path), path.parent) as src:
        for text in iterate_records(src, reader_for(fmt), fmt, "strict", ReadStats()):
            found = tokenize(text)
            if found:
                sentences += 1
                tokens += len(found)
    return sentences, tokens


def write_posts(path: Path, bodies: list[str]) -> None:
    rows = []
    for i, body in enumerate(bodies, start=1):
        kind = {"PostTypeId": "1", "Title": body.split(".")[0][:80]} if i % 3 == 1 \
            else {"PostTypeId": "2", "ParentId": str(i - i % 3 + 1)}
        attrs = {"Id": str(i), **kind,
                 "Body": f"<p>{body}</p>\n<pre><code>print('x')</code></pre>"}
        rows.append("  <row " + " ".join(
            f"{k}={quoteattr(v, {chr(10): '&#xA;'})}" for k, v in attrs.items()) + " />")
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows)
                    + "\n</posts>\n", encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    lines = lee_lines()
    (tmp_path / "base.txt").write_text("".join(lines[:100]), encoding="utf-8")
    with (tmp_path / "part.jsonl").open("w", encoding="utf-8") as out:
        for i, line in enumerate(lines[100:200]):
            out.write(json.dumps({"id": i, "body": {"text": line.strip()}}) + "\n")
    posts = tmp_path / "Posts.xml"
    write_posts(posts, [line.strip() for line in lines[200:]])
    with py7zr.SevenZipFile(tmp_path / "site.stackexchange.com.7z", "w") as archive:
        archive.write(posts, "Posts.xml")
    posts.unlink()
    return tmp_path


def test_every_format_through_add_corpus(
    folder: Path, http_root: tuple[str, Path], cli: Callable[..., Result]
) -> None:
    base_url, root = http_root
    news = "".join(lee_lines()[::7])
    (root / "news.txt.gz").write_bytes(gzip.compress(news.encode()))
    config = write_config(folder, f"""
        - uri: part.jsonl
          format: {{type: jsonl, field: body.text}}
        - uri: gensim-test:{ENWIKI}
          format: wikipedia
        - uri: site.stackexchange.com.7z
          format: {{type: stackexchange, include_code: false}}
        - uri: {base_url}/news.txt.gz
    """)
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    assert [a["version"] for a in result.json()["applied"]] == [f"v000{i}" for i in range(1, 6)]
    history = cli("history", config, "--json").json()
    recorded = history[-1]["corpora"]
    expected = [
        (folder / "part.jsonl", JsonlFormat(field="body.text")),
        (Path(datapath(ENWIKI)), None),
        (folder / "site.stackexchange.com.7z", StackExchangeFormat()),
    ]
    for record, (path, fmt) in zip(recorded[1:4], expected, strict=True):
        assert record["fingerprint"] == hashlib.sha256(path.read_bytes()).hexdigest()
        if fmt is not None:
            assert (record["sentences"], record["tokens"]) == counted(path, fmt)
        assert record["tokens"] > 10_000
    assert recorded[4]["fingerprint"] == hashlib.sha256(
        (root / "news.txt.gz").read_bytes()).hexdigest()
    assert recorded[4]["sentences"] == len([x for x in news.splitlines() if x.strip()])
    with_code = counted(folder / "site.stackexchange.com.7z",
                        StackExchangeFormat(include_code=True))
    assert with_code[1] > recorded[3]["tokens"]  # code blocks were left out
    again = cli("add-corpus", config, "--json")
    assert again.code == 0 and again.json()["applied"] == []


@pytest.mark.parametrize(
    ("name", "content", "fmt", "code", "says"),
    [
        ("cut.txt.gz", None, "text", 65, r"cut.txt.gz is truncated"),
        ("cut.xml.bz2", None, "wikipedia", 65, r"cut.xml.bz2 is truncated"),
        ("bad.jsonl", b'{"text": "fine words"}\n{"text": broken}\n', "jsonl", 65,
         r"malformed JSON on line 2, column 10"),
        ("latin.txt", "fine words here\ncaf\xe9 au lait\n".encode("latin-1"), "text", 65,
         r"not valid UTF-8: line 2, byte offset 19"),
        ("blob.txt", gzip.compress(b"x" * 1000, mtime=0), "text", 65, r"looks binary"),
        ("gone.txt", None, "text", 66, r"gone.txt does not exist"),
    ],
)
def test_bad_corpus_exits_with_its_code_and_keeps_the_store(
    folder: Path, cli: Callable[..., Result], name: str, content: bytes | None, fmt: str,
    code: int, says: str,
) -> None:
    config = write_config(folder, "- uri: part.jsonl\n  format: {type: jsonl, field: body.text}")
    assert cli("add-corpus", config).code == 0
    before = store_files(folder)
    if name == "cut.xml.bz2":
        content = Path(datapath(ENWIKI)).read_bytes()[:400_000]
    elif name == "cut.txt.gz":
        content = gzip.compress("".join(lee_lines()).encode())[:50_000]
    if content is not None:
        (folder / name).write_bytes(content)
    config = write_config(folder, f"""
        - uri: part.jsonl
          format: {{type: jsonl, field: body.text}}
        - uri: {name}
          format: {fmt}
    """)
    result = cli("add-corpus", config)
    assert result.code == code, result.err
    assert re.search(says, result.err), result.err
    assert "hint:" in result.err
    assert store_files(folder) == before


def test_lenient_settings_let_bad_records_through(folder: Path, cli: Callable[..., Result]
                                                  ) -> None:
    (folder / "bad.jsonl").write_bytes(
        b"".join(b'{"text": "words of record %d"}\n' % i for i in range(50)) + b"{oops\n")
    (folder / "latin.txt").write_bytes("fine words here\ncaf\xe9 au lait\n".encode("latin-1"))
    config = write_config(folder, """
        - uri: bad.jsonl
          format: {type: jsonl, on_error: skip}
        - uri: latin.txt
          encoding_errors: replace
    """)
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    recorded = cli("history", config, "--json").json()[-1]["corpora"]
    assert recorded[1]["sentences"] == 50 and recorded[2]["sentences"] == 2


def test_s3_source_through_add_corpus(folder: Path, cli: Callable[..., Result],
                                      monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
                                      ) -> None:
    s3_credentials(monkeypatch, SECRET)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket="dumps")
    body = bz2.compress("".join(lee_lines()[100:]).encode())
    client.put_object(Bucket="dumps", Key="2024/lee.txt.bz2", Body=body)
    config = write_config(folder, "- uri: s3://dumps/2024/lee.txt.bz2",
                          f"sources:\n  s3_endpoint_url: {moto_endpoint}\n")
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    recorded = cli("history", config, "--json").json()[-1]["corpora"][1]
    assert recorded["fingerprint"] == hashlib.sha256(body).hexdigest()
    missing = write_config(folder, "- uri: s3://dumps/2025/nothing.txt",
                           f"sources:\n  s3_endpoint_url: {moto_endpoint}\n")
    result = cli("add-corpus", missing)
    assert result.code == 66, result.err
    everything = result.out + result.err + json.dumps(manifest(folder))
    assert SECRET not in everything


# An update whose reader imports part of gensim on the main thread while the parent model
# (and gensim) load in the background thread: a fresh process, so nothing is imported yet.
# One worker tokenises inline, which starts the thread before the first record is read.
@pytest.mark.parametrize(("entry", "workers"), [
    ("{uri: enwiki.xml.bz2, format: wikipedia}", 1),
    ("{uri: enwiki.xml.bz2, format: wikipedia}", 2),
    ("{uri: enwiki.xml.bz2, format: {type: wikipedia, unit: paragraph}}", 1),
    ("{uri: news.txt, tokenize: {deaccent: true}}", 1),  # gensim.utils.deaccent
])
def test_a_dump_queued_as_an_update_in_a_fresh_process(
    tmp_path: Path, entry: str, workers: int
) -> None:
    from helpers import run_subprocess

    (tmp_path / "enwiki.xml.bz2").write_bytes(Path(datapath(ENWIKI)).read_bytes())
    (tmp_path / "base.txt").write_text("".join(lee_lines()[:150]), encoding="utf-8")
    (tmp_path / "news.txt").write_text("".join(lee_lines()[150:]), encoding="utf-8")
    model = SMALL_MODEL.strip().replace("workers: 2", f"workers: {workers}")
    head = f"store: store\n{model}\nbase: {{corpus: base.txt}}\n"
    (tmp_path / "base.yaml").write_text(head)
    (tmp_path / "config.yaml").write_text(head + f"queue:\n  - {entry}\n")
    base = run_subprocess("add-corpus", tmp_path / "base.yaml")
    assert base.returncode == 0, base.stderr
    update = run_subprocess("add-corpus", tmp_path / "config.yaml", "--json")
    assert update.returncode == 0, update.stderr
    applied = json.loads(update.stdout)["applied"]
    assert [(a["version"], a["kind"]) for a in applied] == [("v0002", "update")]
    assert applied[0]["words_added"] > 0
