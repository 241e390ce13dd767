"""The vectors an alignment writes: SOURCE mapped (align), or the union (merge).

Both are in TARGET's space; ``merge`` keeps TARGET's vector (or a count-weighted
average) for shared words and maps SOURCE's for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gensim.models import KeyedVectors
from numpy.typing import NDArray

from incremental_w2v.align.fit import Alignment
from incremental_w2v.align.mapping import F32, LinearMap, Prefer
from incremental_w2v.vectors.io import LoadedVectors

_CHUNK = 2048


def _order(words: Sequence[str], counts: Sequence[int] | None) -> list[int]:
    if counts is None:
        return list(range(len(words)))
    return sorted(range(len(words)), key=lambda k: -counts[k])


def _build_kv(words: list[str], vectors: F32, counts: list[int] | None) -> KeyedVectors:
    """KeyedVectors sorted by count when counts are known (so restrict_vocab=N means top N)."""
    order = _order(words, counts)
    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors([words[k] for k in order], vectors[order])
    if counts is not None:
        kv.expandos["count"] = np.asarray([counts[k] for k in order], dtype=np.int64)
    return kv


def aligned_vectors(alignment: Alignment, source: LoadedVectors) -> KeyedVectors:
    """All of SOURCE's words, mapped into TARGET's space (counts carried when known)."""
    words = list(source.kv.index_to_key)
    vectors = _mapped_in_chunks(alignment.mapping, source.kv.vectors)
    counts = [source.counts.get(w, 0) for w in words] if source.counts is not None else None
    return _build_kv(words, vectors, counts)


def _mapped_in_chunks(mapping: LinearMap, vectors: NDArray[np.floating]) -> F32:
    out = np.empty(vectors.shape, dtype=np.float32)
    step = 8 * _CHUNK
    for lo in range(0, len(vectors), step):
        out[lo:lo + step] = mapping.vectors(vectors[lo:lo + step])
    return out


def merged_vectors(alignment: Alignment, source: LoadedVectors, target: LoadedVectors,
                   prefer: Prefer = "target") -> tuple[KeyedVectors, dict[str, Any]]:
    """Union vocabulary in TARGET's space, with what was done recorded in the returned dict.

    Shared words keep TARGET's vectors (``prefer='target'``) or get the
    count-weighted average of TARGET's and the mapped SOURCE vector
    (``'average'``; equal weights when a model has no counts). SOURCE-only
    words get mapped vectors. Counts are summed for shared words when both
    models have them; words of a model without counts get 0.
    """
    t_words = list(target.kv.index_to_key)
    t_index = target.kv.key_to_index
    s_words = list(source.kv.index_to_key)
    only_s = [i for i, w in enumerate(s_words) if w not in t_index]
    shared_s = [i for i, w in enumerate(s_words) if w in t_index]
    vectors = np.empty((len(t_words) + len(only_s), target.kv.vector_size), dtype=np.float32)
    vectors[:len(t_words)] = target.kv.vectors
    if only_s:
        vectors[len(t_words):] = _mapped_in_chunks(alignment.mapping, source.kv.vectors[only_s])
    weighting = "none"
    if prefer == "average" and shared_s:
        t_rows = np.asarray([t_index[s_words[i]] for i in shared_s], dtype=np.int64)
        mapped = _mapped_in_chunks(alignment.mapping, source.kv.vectors[shared_s])
        if source.counts is not None and target.counts is not None:
            c_s = np.asarray([source.counts[s_words[i]] for i in shared_s], dtype=np.float64)
            c_t = np.asarray([target.counts[t_words[j]] for j in t_rows], dtype=np.float64)
            total = np.maximum(c_s + c_t, 1.0)
            w_s, w_t = (c_s / total)[:, None], (c_t / total)[:, None]
            weighting = "counts"
        else:
            w_s = w_t = np.full((len(shared_s), 1), 0.5)
            weighting = "equal (a model has no counts)"
        vectors[t_rows] = (w_t * target.kv.vectors[t_rows] + w_s * mapped).astype(np.float32)
    counts: list[int] | None = None
    if source.counts is not None or target.counts is not None:
        s_c, t_c = source.counts or {}, target.counts or {}
        counts = [t_c.get(w, 0) + s_c.get(w, 0) for w in t_words]
        counts += [s_c.get(s_words[i], 0) for i in only_s]
    words = t_words + [s_words[i] for i in only_s]
    info = {
        "prefer": prefer,
        "shared": len(shared_s),
        "from_target_only": len(t_words) - len(shared_s),
        "from_source": len(only_s),
        "weighting": weighting,
        "counts": ("summed" if source.counts is not None and target.counts is not None
                   else "partial (0 for words of the model without counts)" if counts is not None
                   else "unknown"),
    }
    return _build_kv(words, vectors, counts), info
