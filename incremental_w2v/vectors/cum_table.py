"""gensim's negative-sampling table, computed with numpy instead of a Python loop.

``Word2Vec.make_cum_table`` walks the vocabulary twice in Python, calling
``get_vecattr`` per word: 0.17 s for 45k words, seconds for a million. gensim
runs it on every load and every ``build_vocab``, and an update then needs it
once more for the reconciled counts, so a large model paid it three times
per update. :func:`cum_table` gives the identical table (the same ``pow``
per word, the same left-to-right float sums, the same round-half-even:
``tests/test_cum_table.py`` compares them bit for bit), and
:func:`vectorised_cum_table` lets gensim's own loads and vocabulary builds
use it while the context is open.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

DOMAIN = 2**31 - 1


def cum_table(counts: np.ndarray, ns_exponent: float, domain: int = DOMAIN) -> np.ndarray:
    """``Word2Vec.make_cum_table`` for these counts, as a uint32 array."""
    exponent = float(ns_exponent)
    with np.errstate(divide="ignore"):
        zero = float(np.float64(0.0) ** exponent)  # numpy's answer, where Python's raises
    # Python's float pow (C pow) per word, as gensim's scalar ``count**exponent``;
    # numpy's vectorised power may round differently in the last bit.
    powers = np.array([c**exponent if c else zero for c in counts.tolist()], dtype=np.float64)
    # cumsum adds left to right, as gensim's loop; its last element is gensim's total.
    cumulative = np.cumsum(powers)
    if not len(cumulative):
        return np.zeros(0, dtype=np.uint32)
    table: np.ndarray = np.rint(cumulative / cumulative[-1] * domain).astype(np.uint32)
    return table


def _make_cum_table(self: Any, domain: int = DOMAIN) -> None:
    size = len(self.wv.index_to_key)
    counts = self.wv.expandos["count"][:size] if size else np.zeros(0, dtype=np.int64)
    self.cum_table = cum_table(counts, self.ns_exponent, domain)


_lock = threading.Lock()
_depth = 0
_original: Any = None


@contextmanager
def vectorised_cum_table() -> Iterator[None]:
    """While open, gensim's Word2Vec (and FastText) build the table with :func:`cum_table`.

    Re-entrant and safe across threads (the replacement computes the same
    table, and the original comes back when the last user leaves).
    """
    global _depth, _original
    from gensim.models.word2vec import Word2Vec

    with _lock:
        if _depth == 0:
            _original = Word2Vec.__dict__["make_cum_table"]
            Word2Vec.make_cum_table = _make_cum_table
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                Word2Vec.make_cum_table = _original
