"""A corpus: one source read with one format and one tokenisation.

``Corpus`` is re-iterable (each iteration re-opens the source), for code
that wants sentences. The add-corpus flow instead makes exactly one
streaming pass (:func:`stream_once`): read, decompress, parse, tokenise,
count, hash the raw bytes, and write the tokens to a local working file that
gensim then trains on in ``corpus_file`` mode, without the GIL.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from incremental_w2v.errors import DataError
from incremental_w2v.ingest.fingerprint import SourceOptions
from incremental_w2v.ingest.formats.catalog import ReadStats, iterate_records, reader_for
from incremental_w2v.ingest.pool import BATCH_CHARS, choose_processes, tokenized_batches
from incremental_w2v.ingest.sources import open_source
from incremental_w2v.ingest.tokenize import TokenizeSettings, make_tokenizer
from incremental_w2v.progress import bar
from incremental_w2v.uris import redact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusSpec:
    """Everything needed to read one concrete corpus."""

    uri: str
    name: str
    format: BaseModel
    tokenize: TokenizeSettings
    encoding_errors: str = "strict"


class Corpus:
    """Sentences (token lists) of one corpus; iterate as often as you like."""

    def __init__(self, spec: CorpusSpec, base_dir: Path, options: SourceOptions | None = None):
        self.spec = spec
        self.base_dir = base_dir
        self.options = options or SourceOptions()
        self.stats = ReadStats()

    def __iter__(self) -> Iterator[list[str]]:
        tokenize = make_tokenizer(self.spec.tokenize)
        self.stats = ReadStats()
        with open_source(self.spec.uri, self.base_dir, self.options) as src:
            reader = reader_for(self.spec.format)
            for text in iterate_records(
                src, reader, self.spec.format, self.spec.encoding_errors, self.stats
            ):
                tokens = tokenize(text)
                if tokens:
                    yield tokens


@dataclass
class PassResult:
    """What one streaming pass learnt about a corpus."""

    sentences: int = 0
    tokens: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    sha256: str = ""
    raw_bytes: int = 0
    stats: ReadStats = field(default_factory=ReadStats)
    seconds: float = 0.0


class TextSink(Protocol):
    """Where the pass writes its sentences (a file, or one that watches the free space)."""

    def write(self, text: str, /) -> int: ...


def stream_once(
    corpus: Corpus,
    workfile: TextSink | None,
    size_hint: int | None = None,
    processes: int | None = None,
    batch_chars: int = BATCH_CHARS,
    on_started: Callable[[], None] | None = None,
) -> PassResult:
    """Read ``corpus`` once; count tokens and append its sentences to ``workfile``.

    ``processes``: tokenise in that many worker processes (0: inline; None:
    as many as pay, see ``tokenize_pool.choose_processes``), ``batch_chars``
    of raw text per batch. The result is the same either way, byte for byte.
    ``on_started`` is called once the pass will fork no more processes (at
    once when tokenising inline; not at all for an empty corpus in a pool), so
    that other threads may then start.

    Raises DataError (and writes nothing further) on bad data; the caller
    owns the working file and removes it on failure.
    """
    spec = corpus.spec
    if processes is None:
        processes = choose_processes(spec.tokenize, size_hint)
    tokenize = make_tokenizer(spec.tokenize)
    result = PassResult()
    counts = result.counts
    started = time.perf_counter()
    with open_source(spec.uri, corpus.base_dir, corpus.options) as src, bar(
        size_hint, f"reading {spec.name}"
    ) as progress:
        reader = reader_for(spec.format)
        last = 0
        write = workfile.write if workfile is not None else None
        records = iterate_records(src, reader, spec.format, spec.encoding_errors, result.stats)
        if processes > 0:
            logger.debug("tokenising %s in %d processes", spec.name, processes)
            # closing(): on an error (e.g. a full disk) the pool stops here and now,
            # whatever still refers to the generator.
            with closing(tokenized_batches(records, spec.tokenize, processes,
                                           batch_chars, on_started)) as batches:
                for batch in batches:
                    result.sentences += batch.sentences
                    result.tokens += batch.tokens
                    counts.update(batch.counts)
                    if write is not None:
                        write(batch.text)
                    progress.update(src.raw.bytes_read - last)
                    last = src.raw.bytes_read
        if processes <= 0 and on_started is not None:
            on_started()
        for text in records if processes <= 0 else ():
            tokens = tokenize(text)
            if not tokens:
                continue
            result.sentences += 1
            result.tokens += len(tokens)
            counts.update(tokens)
            if write is not None:
                write(" ".join(tokens))
                write("\n")
            if src.raw.bytes_read - last > 1 << 20:
                progress.update(src.raw.bytes_read - last)
                last = src.raw.bytes_read
        # Hash to the very end, even if the reader stopped early (e.g. XML trailer).
        while src.raw.read(1 << 20):
            pass
        result.sha256 = src.raw.sha256.hexdigest()
        result.raw_bytes = src.raw.bytes_read
    result.seconds = time.perf_counter() - started
    if result.stats.replacements:
        logger.warning(
            "%s: replaced %d undecodable byte sequence(s) (encoding_errors: replace)",
            redact(spec.uri), result.stats.replacements,
        )
    return result


def content_sha256(uri: str, base_dir: Path, options: SourceOptions | None = None) -> str:
    """The sha256 of a source's raw bytes, without parsing it."""
    with open_source(uri, base_dir, options) as src:
        while src.raw.read(1 << 20):
            pass
        return src.raw.sha256.hexdigest()


def require_tokens(spec: CorpusSpec, result: PassResult) -> None:
    if result.tokens == 0:
        raise DataError(
            f"corpus {redact(spec.uri)} ({spec.name}) has no tokens "
            f"({result.stats.records} records, {result.raw_bytes} bytes)",
            hint="nothing was committed; remove the empty file from the queue or fill it, "
            "and check its 'format' and 'tokenize' settings",
        )
