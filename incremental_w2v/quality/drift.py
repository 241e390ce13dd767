"""Drift between two sets of word vectors of the same words.

Two trainings of one model differ by an arbitrary rotation, so raw cosines
between their vectors mean nothing. We first learn the orthogonal map
(Procrustes, ``procrustes.orthogonal_map``) on anchor words, then measure for
every shared word the cosine between its mapped vector in A and its vector
in B, and for a sample of words the overlap of their top-k neighbour sets
(rotation-free). Both are summarised by frequency band, since rare words
move far more than frequent ones, and the words that moved most are listed
with the neighbours they gained and lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from incremental_w2v.config.quality import DriftSettings
from incremental_w2v.errors import UsageError
from incremental_w2v.ingest.small_files import read_lines
from incremental_w2v.vectors.procrustes import orthogonal_map
from incremental_w2v.vectors.ranking import rank_order

_BATCH = 256


def _unit32(matrix: NDArray[Any]) -> NDArray[np.float32]:
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(out / norms, dtype=np.float32)


class Space:
    """One side of a comparison: vectors, counts and a neighbour index."""

    def __init__(self, kv: Any, counts: dict[str, int] | None, neighbour_vocab: int) -> None:
        self.kv = kv
        self.counts = counts
        self.order = rank_order(kv, counts)
        top = self.order[:neighbour_vocab]
        self.index_words = [kv.index_to_key[r] for r in top.tolist()]
        self.index_pos = {w: i for i, w in enumerate(self.index_words)}
        self.index_space = _unit32(kv.vectors[top])

    def neighbour_ids(self, words: list[str], k: int) -> NDArray[np.int64]:
        """Positions (in ``index_words``) of each word's top-k neighbours, nearest first."""
        k = min(k, max(len(self.index_words) - 1, 0))
        out = np.zeros((len(words), k), dtype=np.int64)
        if k == 0:
            return out
        for start in range(0, len(words), _BATCH):
            batch = words[start : start + _BATCH]
            rows = [self.kv.key_to_index[w] for w in batch]
            sims = _unit32(self.kv.vectors[rows]) @ self.index_space.T
            own = [(i, self.index_pos[w]) for i, w in enumerate(batch) if w in self.index_pos]
            if own:
                r, c = zip(*own, strict=True)
                sims[list(r), list(c)] = -np.inf
            top = np.argpartition(sims, -k, axis=1)[:, -k:]
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
            out[start : start + len(batch)] = np.take_along_axis(top, order, axis=1)
        return out

    def neighbours(self, words: list[str], k: int) -> dict[str, list[tuple[str, float]]]:
        """Top-k cosine neighbours of each word (itself excluded) among the indexed words."""
        ids = self.neighbour_ids(words, k)
        out: dict[str, list[tuple[str, float]]] = {}
        for w, row in zip(words, ids, strict=True):
            vec = _unit32(self.kv.vectors[[self.kv.key_to_index[w]]])[0]
            sims = self.index_space[row] @ vec
            out[w] = [(self.index_words[j], round(float(x), 4))
                      for j, x in zip(row.tolist(), sims.tolist(), strict=True)]
        return out


def watch_neighbours(
    kv: Any, counts: dict[str, int] | None, words: list[str], k: int, neighbour_vocab: int
) -> dict[str, list[list[Any]] | None]:
    """Neighbours of each watched word (None when the word is not in the vocabulary)."""
    if not words:
        return {}
    space = Space(kv, counts, neighbour_vocab)
    present = [w for w in words if w in kv.key_to_index]
    found = space.neighbours(present, k)
    return {w: [[n, s] for n, s in found[w]] if w in found else None for w in words}


def band_labels(edges: list[int]) -> list[str]:
    labels, low = [], 1
    for edge in edges:
        labels.append(f"{low}-{edge}")
        low = edge + 1
    labels.append(f"{low}+")
    return labels


def _stats(values: NDArray[np.float64]) -> dict[str, float | None]:
    if len(values) == 0:
        return {"median": None, "mean": None, "p10": None}
    return {
        "median": round(float(np.median(values)), 4),
        "mean": round(float(np.mean(values)), 4),
        "p10": round(float(np.percentile(values, 10)), 4),
    }


def _anchor_words(
    settings: DriftSettings, shared: list[str], base_dir: Path
) -> tuple[list[str], str]:
    if isinstance(settings.anchors, int):
        return shared[: settings.anchors], f"{settings.anchors} most frequent shared words"
    path = Path(settings.anchors).expanduser()
    path = path if path.is_absolute() else base_dir / path
    listed = [word for line in read_lines(path, "anchor word list",
                                          hint="check 'drift.anchors' in the config")
              for word in line.split()]
    known = set(shared)
    words = [w for w in dict.fromkeys(listed) if w in known]
    return words, f"{len(words)} of {len(listed)} words of {path.name}"


def compare_spaces(
    a: Space, b: Space, settings: DriftSettings, base_dir: Path, detail: bool = True
) -> dict[str, Any]:
    """Vocabulary change and drift of the shared words from A to B."""
    a_words, b_words = a.kv.key_to_index, b.kv.key_to_index
    if a.kv.vector_size != b.kv.vector_size:
        raise UsageError(
            f"the two vector sets differ in size ({a.kv.vector_size} vs {b.kv.vector_size}): "
            "drift is only defined within one lineage's geometry",
            hint="compare versions of one lineage, or map one model into the other's space "
            "first ('incw2v align')",
        )
    # Frequency rank of shared words: B's counts when known (the newer side), else A's.
    ranker = b if b.counts is not None or a.counts is None else a
    shared = [ranker.kv.index_to_key[r] for r in ranker.order.tolist()
              if ranker.kv.index_to_key[r] in a_words and ranker.kv.index_to_key[r] in b_words]
    added = [b.kv.index_to_key[r] for r in b.order.tolist() if b.kv.index_to_key[r] not in a_words]
    removed = [a.kv.index_to_key[r] for r in a.order.tolist()
               if a.kv.index_to_key[r] not in b_words]
    result: dict[str, Any] = {
        "vocab": {
            "a": len(a_words), "b": len(b_words), "shared": len(shared),
            "added": len(added), "removed": len(removed),
        },
    }
    if detail:
        result["vocab"]["added_top"] = added[:20]
        result["vocab"]["removed_top"] = removed[:20]
    if len(shared) < 2:
        raise UsageError(
            f"the two vector sets share {len(shared)} word(s): nothing to compare",
            hint="compare versions of one lineage or models of the same language",
        )
    anchors, anchor_source = _anchor_words(settings, shared, base_dir)
    if len(anchors) < 2:
        raise UsageError(f"only {len(anchors)} anchor word(s) are shared by both sides",
                         hint="give a longer anchor list in 'drift.anchors'")
    va = a.kv.vectors[[a_words[w] for w in shared]]
    vb = b.kv.vectors[[b_words[w] for w in shared]]
    # float32 throughout: a million shared words must not cost gigabytes.
    ua: NDArray[Any] = np.asarray(va, dtype=np.float32)
    ub: NDArray[Any] = np.asarray(vb, dtype=np.float32)
    if settings.center:
        # Undertrained word2vec vectors share one common direction, which makes every
        # cosine look high; drift is measured on what distinguishes words.
        ua, ub = ua - ua.mean(axis=0), ub - ub.mean(axis=0)
    ua, ub = _unit32(ua), _unit32(ub)
    pos = {w: i for i, w in enumerate(shared)}
    anchor_rows = [pos[w] for w in anchors]
    w_map = orthogonal_map(ua[anchor_rows], ub[anchor_rows]).astype(np.float32)
    cosines = np.sum(_unit32(ua @ w_map) * ub, axis=1).astype(np.float64)
    result["anchors"] = {
        "count": len(anchors), "source": anchor_source,
        "mean_cosine": round(float(np.mean(cosines[anchor_rows])), 4),
    }

    # Neighbour overlap on a seeded sample (all shared words when few), plus the most-moved.
    rng = np.random.default_rng(0)
    n_sample = min(settings.sample, len(shared))
    sample_rows = np.sort(rng.choice(len(shared), size=n_sample, replace=False))
    pool = min(settings.moved_from, len(shared))
    moved_rows: list[int] = (
        np.argsort(cosines[:pool], kind="stable")[: settings.moved].tolist() if detail else []
    )
    wanted = sorted({*sample_rows.tolist(), *moved_rows})
    words = [shared[i] for i in wanted]
    k = settings.top_k
    ia, ib = a.neighbour_ids(words, k), b.neighbour_ids(words, k)
    # Compare neighbour sets as words: map both indexes into one id space.
    gid: dict[str, int] = {}
    ga = np.array([gid.setdefault(w, len(gid)) for w in a.index_words], dtype=np.int64)
    gb = np.array([gid.setdefault(w, len(gid)) for w in b.index_words], dtype=np.int64)
    sa, sb = ga[ia], gb[ib]
    common = (sa[:, :, None] == sb[:, None, :]).any(axis=2).sum(axis=1) / max(k, 1)
    overlap = dict(zip(words, common.tolist(), strict=True))
    sampled = np.array([overlap[shared[i]] for i in sample_rows], dtype=np.float64)
    if detail:
        row_of = {w: i for i, w in enumerate(words)}
        na = {shared[i]: [a.index_words[j] for j in ia[row_of[shared[i]]]] for i in moved_rows}
        nb = {shared[i]: [b.index_words[j] for j in ib[row_of[shared[i]]]] for i in moved_rows}

    result["cosine"] = {**_stats(cosines), "words": len(shared)}
    result["overlap"] = {"k": k, **_stats(sampled), "words": int(n_sample)}
    median = result["cosine"]["median"]
    result["drift"] = round(1.0 - median, 4) if median is not None else None
    edges = settings.bands
    labels = band_labels(edges)
    bands = []
    band_of = np.searchsorted(np.array(edges), np.arange(len(shared)) + 1, side="left")
    for b_i, label in enumerate(labels):
        members = np.nonzero(band_of == b_i)[0]
        if len(members) == 0:
            continue
        in_sample = sample_rows[band_of[sample_rows] == b_i]
        bands.append({
            "band": label,
            "words": len(members),
            "median_cosine": _stats(cosines[members])["median"],
            "overlap": _stats(np.array([overlap[shared[i]] for i in in_sample]))["mean"],
            "sampled": len(in_sample),
        })
    result["bands"] = bands
    if detail:
        result["moved"] = [
            {
                "word": shared[i],
                "rank": int(i) + 1,
                "cosine": round(float(cosines[i]), 4),
                "overlap": overlap[shared[i]],
                "gained": [x for x in nb[shared[i]] if x not in set(na[shared[i]])],
                "lost": [x for x in na[shared[i]] if x not in set(nb[shared[i]])],
                "neighbours_a": na[shared[i]],
                "neighbours_b": nb[shared[i]],
            }
            for i in moved_rows
        ]
    return result


def compare_vectors(
    a_kv: Any,
    a_counts: dict[str, int] | None,
    b_kv: Any,
    b_counts: dict[str, int] | None,
    settings: DriftSettings,
    base_dir: Path,
    detail: bool = True,
) -> dict[str, Any]:
    a = Space(a_kv, a_counts, settings.neighbour_vocab)
    b = Space(b_kv, b_counts, settings.neighbour_vocab)
    return compare_spaces(a, b, settings, base_dir, detail)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a comparison worth recording in a version's meta."""
    return {k: result[k] for k in ("vocab", "cosine", "overlap", "drift", "bands") if k in result}
