"""Tokenising in worker processes during the one streaming pass.

The reader stays in the calling process (it owns the byte stream, the hash,
and the file/line numbers of bad-data errors); batches of its raw texts go to
a pool of processes, and the results come back *in submission order*, so the
working file, the counts (including their first-seen order, which gensim
uses to break ties) and the totals are exactly those of the serial pass.
At most ``2 x processes`` batches are in flight, so memory stays bounded
whatever the corpus length.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from incremental_w2v.ingest.tokenize import Tokenizer, TokenizeSettings, make_tokenizer

# A batch is cut at this many characters of raw text: large enough that the
# counter merge in the parent stays small (a batch's distinct words grow more
# slowly than its length: 4 MiB batches cut the parent's CPU in the pass by a
# fifth against 1 MiB), small enough that the batches in flight cost tens of MB.
BATCH_CHARS = 4 << 20
# Below this many bytes of text (a compressed source's estimated size) a pool's
# start-up costs more than it saves.
MIN_PARALLEL_BYTES = 4 << 20


@dataclass
class Batch:
    """The tokenised form of one batch of records, in working-file format."""

    text: str  # one sentence per line, tokens separated by single spaces
    counts: Counter[str]
    sentences: int
    tokens: int


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_processes(
    settings: TokenizeSettings, size_hint: int | None, workers: int = 0
) -> int:
    """How many tokenising processes pay for this corpus (0: tokenise inline).

    Plain whitespace splitting (``str.split``) is cheaper than shipping the
    text to another process and the result back, so it stays inline; so do
    small corpora and one-core machines. ``workers`` (the config's
    ``model.workers``; 0 = every core) caps the processes, so a user who
    limits training to one core also gets one core for the pass.
    """
    cores = available_cores() if not workers else min(workers, available_cores())
    if cores < 2 or make_tokenizer(settings) is str.split:
        return 0
    if size_hint is not None and size_hint < MIN_PARALLEL_BYTES:
        return 0
    return cores


def tokenize_batch(tokenize: Tokenizer, texts: list[str]) -> Batch:
    counts: Counter[str] = Counter()
    lines: list[str] = []
    for text in texts:
        tokens = tokenize(text)
        if tokens:
            counts.update(tokens)
            lines.append(" ".join(tokens))
    body = "\n".join(lines) + "\n" if lines else ""
    return Batch(body, counts, len(lines), sum(counts.values()))


def tokenized_batches(
    texts: Iterable[str], settings: TokenizeSettings, processes: int,
    batch_chars: int = BATCH_CHARS, on_started: Callable[[], None] | None = None,
) -> Generator[Batch, None, None]:
    """``texts`` tokenised by ``processes`` worker processes, batch by batch, in order.

    ``on_started`` is called once every worker has been forked (with the first
    batch: a fork-context pool starts all its processes then, and never again).
    """
    context = _context()
    pool = ProcessPoolExecutor(
        max_workers=processes, mp_context=context,
        initializer=_init_worker, initargs=(settings, os.getpid()),
    )
    in_flight: deque[Future[Batch]] = deque()
    try:
        for chunk in _chunks(texts, batch_chars):
            in_flight.append(pool.submit(_work, chunk))
            if on_started is not None:
                on_started()
                on_started = None
            if len(in_flight) >= 2 * processes:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        # On an error (bad data found by the reader) the pending batches are dropped.
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(texts: Iterable[str], batch_chars: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for text in texts:
        chunk.append(text)
        size += len(text)
        if size >= batch_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _context() -> multiprocessing.context.BaseContext:
    # fork: the workers start in milliseconds with everything imported; spawn
    # would import gensim again in each one (about half a second of CPU).
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


_tokenizer: Tokenizer | None = None


def _init_worker(settings: TokenizeSettings, parent: int) -> None:
    global _tokenizer
    # Ctrl-C (and a closed terminal's SIGHUP) go to the whole process group: only the
    # parent reports and cleans up; a worker dies with it (below).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent(parent)
    _tokenizer = make_tokenizer(settings)


def _die_with_parent(parent: int) -> None:
    """A killed run must not leave workers behind (they hold the store lock's fd)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _work(texts: list[str]) -> Batch:
    assert _tokenizer is not None
    return tokenize_batch(_tokenizer, texts)
