"""Memory of the pass is bounded: it does not grow with the corpus's length.

A corpus made four times longer by repeating its text (same vocabulary) must
not raise the pass's peak of Python allocations; a file without newlines
must fail instead of being read into memory whole.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest
from gensim.test.utils import datapath

from incremental_w2v.errors import DataError
from incremental_w2v.ingest.corpus import Corpus, CorpusSpec, stream_once
from incremental_w2v.ingest.decode import MAX_LINE_BYTES
from incremental_w2v.ingest.formats.catalog import TextFormat
from incremental_w2v.ingest.tokenize import TokenizeSettings


class Sink(io.TextIOBase):
    """A working file that keeps nothing (its own size must not count)."""

    def write(self, s: str) -> int:
        return len(s)


def peak_of_pass(path: Path, processes: int) -> int:
    spec = CorpusSpec(uri=str(path), name=path.name, format=TextFormat(),
                      tokenize=TokenizeSettings())
    stream_once(Corpus(spec, path.parent), Sink(), None, processes=processes,
                batch_chars=1 << 16)  # warm up: imports and caches are not the pass's
    tracemalloc.start()
    try:
        stream_once(Corpus(spec, path.parent), Sink(), None, processes=processes,
                    batch_chars=1 << 16)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("processes", [0, 2])
def test_pass_memory_does_not_grow_with_corpus_length(tmp_path: Path, processes: int) -> None:
    text = Path(datapath("lee_background.cor")).read_bytes()
    once, four = tmp_path / "once.txt", tmp_path / "four.txt"
    once.write_bytes(text * 2)
    four.write_bytes(text * 8)
    small, large = peak_of_pass(once, processes), peak_of_pass(four, processes)
    # The counts (same vocabulary) and the bounded buffers; nothing per line.
    assert large < small * 1.1 + (256 << 10), (small, large)


def test_a_file_without_newlines_fails_instead_of_filling_memory(tmp_path: Path) -> None:
    path = tmp_path / "one-line.txt"
    with open(path, "wb") as out:
        chunk = b"word " * (1 << 18)
        for _ in range(MAX_LINE_BYTES // len(chunk) + 2):
            out.write(chunk)
    spec = CorpusSpec(uri=str(path), name=path.name, format=TextFormat(),
                      tokenize=TokenizeSettings())
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"line longer than 64 MiB \(line 1,"):
            stream_once(Corpus(spec, tmp_path), Sink(), None, processes=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_LINE_BYTES
