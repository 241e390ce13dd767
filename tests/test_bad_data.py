"""Bad data through the readers: truncated and damaged archives, bad UTF-8, binary files.

Every file here is real: compressed by the real codecs, then cut or damaged.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from backports import zstd
from gensim.test.utils import datapath
from pydantic import BaseModel

from incremental_w2v.errors import DataError, InputMissingError
from incremental_w2v.ingest.formats.catalog import (
    JsonlFormat,
    ReadStats,
    StackExchangeFormat,
    TextFormat,
    WikipediaFormat,
    iterate_records,
    reader_for,
)
from incremental_w2v.ingest.sources import open_source

CODECS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": zstd.compress,
}


TEXT = TextFormat()


def read_all(path: Path, fmt: BaseModel = TEXT,
             encoding_errors: str = "strict") -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    with open_source(str(path), path.parent) as src:
        records = list(iterate_records(src, reader_for(fmt), fmt, encoding_errors, stats))
    return records, stats


@pytest.fixture(scope="module")
def lee_bytes() -> bytes:
    with open(datapath("lee_background.cor"), "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_every_codec_reads_like_the_plain_file(tmp_path: Path, lee_bytes: bytes,
                                               suffix: str) -> None:
    plain = tmp_path / "lee.txt"
    plain.write_bytes(lee_bytes)
    packed = tmp_path / f"lee.txt{suffix}"
    packed.write_bytes(CODECS[suffix](lee_bytes))
    expected, _ = read_all(plain)
    records, stats = read_all(packed)
    assert records == expected and stats.records == len(expected) > 250


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_truncated_archives_are_data_errors(tmp_path: Path, lee_bytes: bytes,
                                            suffix: str) -> None:
    packed = CODECS[suffix](lee_bytes)
    path = tmp_path / f"cut.txt{suffix}"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.raises(DataError) as info:
        read_all(path)
    message = str(info.value)
    assert f"cut.txt{suffix} is truncated" in message
    offset = int(re.search(r"after (\d+) compressed bytes", message).group(1))  # type: ignore[union-attr]
    assert 0 < offset <= path.stat().st_size
    assert "nothing was committed" in message


@pytest.mark.parametrize("suffix", [".bz2", ".xz", ".gz"])
def test_damaged_archives_are_data_errors(tmp_path: Path, lee_bytes: bytes, suffix: str) -> None:
    packed = bytearray(CODECS[suffix](lee_bytes))
    middle = len(packed) // 2
    packed[middle:middle + 32] = bytes(b ^ 0x5A for b in packed[middle:middle + 32])
    path = tmp_path / f"damaged.txt{suffix}"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=rf"damaged.txt{re.escape(suffix)} is damaged"):
        read_all(path)


def test_a_plain_file_named_gz(tmp_path: Path, lee_bytes: bytes) -> None:
    path = tmp_path / "not-really.txt.gz"
    path.write_bytes(lee_bytes)
    with pytest.raises(DataError, match=r"not-really.txt.gz is damaged: Not a gzipped file"):
        read_all(path)


def test_truncated_compressed_jsonl_and_xml(tmp_path: Path) -> None:
    rows = b"".join(b'{"text": "record number %d"}\n' % i for i in range(20000))
    packed = gzip.compress(rows)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"cut.jsonl.gz is truncated"):
        read_all(path, JsonlFormat())
    with open(datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"),
              "rb") as handle:
        wiki = handle.read()
    path = tmp_path / "cut-wiki.xml.bz2"
    path.write_bytes(wiki[: len(wiki) // 2])
    with pytest.raises(DataError, match=r"cut-wiki.xml.bz2 is truncated"):
        read_all(path, WikipediaFormat())


def test_invalid_utf8_names_line_and_byte_offset(tmp_path: Path) -> None:
    lines = [b"first line is fine\n", b"second line too\n", b"third has a bad \xff byte\n",
             b"fourth\n"]
    path = tmp_path / "latin.txt"
    path.write_bytes(b"".join(lines))
    offset = len(lines[0]) + len(lines[1]) + lines[2].index(b"\xff")
    with pytest.raises(DataError) as info:
        read_all(path)
    assert f"latin.txt is not valid UTF-8: line 3, byte offset {offset}" in str(info.value)
    assert "encoding_errors: replace" in str(info.value)


def test_invalid_utf8_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    # Two bad sequences, one real U+FFFD that must not be counted.
    path.write_bytes("caf\xe9 ok\n".encode("latin-1") + "real \ufffd here\n".encode()
                     + b"bad \xc3\x28 pair\n")
    records, stats = read_all(path, encoding_errors="replace")
    assert records == ["caf\ufffd ok\n", "real \ufffd here\n", "bad \ufffd( pair\n"]
    assert stats.replacements == 2


def test_utf8_cut_inside_a_character(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_bytes("ends with é".encode()[:-1])
    with pytest.raises(DataError, match=r"ends inside a multi-byte character"):
        read_all(path)


def test_invalid_utf8_in_xml(tmp_path: Path) -> None:
    text = ('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
            '  <row Id="1" PostTypeId="1" Title="Fine" Body="&lt;p&gt;ok&lt;/p&gt;" />\n'
            '  <row Id="2" PostTypeId="1" Title="Caf\xe9" Body="&lt;p&gt;latin-1&lt;/p&gt;" />\n'
            '</posts>\n')
    data = text.encode("latin-1")
    path = tmp_path / "Posts.xml"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_all(path, StackExchangeFormat())
    bad = data.index(b"\xe9")
    assert f"line 4, byte offset {bad}" in str(info.value)
    records, stats = read_all(path, StackExchangeFormat(), encoding_errors="replace")
    assert records == ["Fine\nok", "Caf\ufffd\nlatin-1"] and stats.replacements == 1


def test_invalid_utf8_across_xml_chunks(tmp_path: Path) -> None:
    # A bad byte far past the first 64 KB chunk: the offset must still be exact.
    filler = "".join(f'  <row Id="{i}" PostTypeId="1" Title="t{i}" Body="b" />\n'
                     for i in range(3000)).encode()
    head = b'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + filler
    data = head + b'  <row Id="x" PostTypeId="1" Title="\x80" Body="b" />\n</posts>\n'
    path = tmp_path / "Posts.xml"
    path.write_bytes(data)
    assert len(head) > 100_000
    with pytest.raises(DataError) as info:
        read_all(path, StackExchangeFormat())
    bad = data.index(b"\x80")
    assert f"line 3003, byte offset {bad}" in str(info.value)


@pytest.mark.parametrize("fmt", [TextFormat(), JsonlFormat(), WikipediaFormat(),
                                 StackExchangeFormat()])
def test_binary_files_are_refused(tmp_path: Path, lee_bytes: bytes, fmt: BaseModel) -> None:
    # A real binary file: a gzip stream saved under a text name.
    path = tmp_path / "lee.txt"
    path.write_bytes(gzip.compress(lee_bytes, mtime=0))
    with pytest.raises(DataError, match=r"lee.txt looks binary"):
        read_all(path, fmt)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError, match=r"nope\.txt does not exist"):
        read_all(tmp_path / "nope.txt")
