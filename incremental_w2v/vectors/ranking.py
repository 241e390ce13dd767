"""Which words are frequent: counts stored in a model, and rows ranked by them.

After updates gensim's index is no longer frequency order (new words are
appended), so every "the N most frequent words" in this package ranks rows
by their (cumulative) count, through :func:`rank_order`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def counts_of(kv: Any) -> dict[str, int] | None:
    """The word counts gensim stored in ``kv``, or None when it has none worth the name.

    Vectors loaded from the word2vec format carry made-up counts (N, N-1, …, 1)
    that only restate the file order; those are reported as None.
    """
    stored = getattr(kv, "expandos", {}).get("count")
    if stored is None or len(stored) != len(kv.index_to_key) or len(stored) == 0:
        return None
    values = np.asarray(stored, dtype=np.int64)
    if not values.any() or np.array_equal(values, np.arange(len(values), 0, -1)):
        return None
    return {word: int(c) for word, c in zip(kv.index_to_key, values.tolist(), strict=True)}


def rank_order(kv: Any, counts: dict[str, int] | None) -> NDArray[np.int64]:
    """Model rows sorted by count, most frequent first (ties keep index order).

    Without counts (plain word2vec files) the file order is the only ranking there is.
    """
    n = len(kv.index_to_key)
    if counts is None:
        return np.arange(n, dtype=np.int64)
    values = np.fromiter((counts.get(w, 0) for w in kv.index_to_key), dtype=np.int64, count=n)
    return np.argsort(-values, kind="stable").astype(np.int64)
