"""How well a map holds: held-out retrieval (cosine and CSLS), overlap, distortion, verdict.

The held-out anchors are never used for fitting; the verdict thresholds live in
``verdict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gensim.models import KeyedVectors
from numpy.typing import NDArray

from incremental_w2v.align.anchors import Anchors
from incremental_w2v.align.mapping import F32, I64, MIN_HELD_OUT, AlignOptions, LinearMap
from incremental_w2v.align.verdict import (
    GOOD_MARGIN,
    GOOD_P1,
    POOR_MARGIN,
    POOR_P1,
)
from incremental_w2v.vectors.io import LoadedVectors
from incremental_w2v.vectors.procrustes import unit_rows

_DISTORTION_PAIRS = 2000
_CHUNK = 2048


def _top_rows(rank: I64, size: int, exclude: set[int] | None = None) -> I64:
    order = np.argsort(rank, kind="stable")
    if exclude:
        order = order[~np.isin(order, np.fromiter(exclude, dtype=np.int64))]
    return np.asarray(order[:size], dtype=np.int64)


def _mean_topk(a: F32, b: F32, k: int) -> F32:
    """Mean of the ``k`` largest cosines of each row of ``a`` against the rows of ``b``."""
    k = min(k, len(b))
    out = np.empty(len(a), dtype=np.float32)
    for lo in range(0, len(a), _CHUNK):
        sims = a[lo:lo + _CHUNK] @ b.T
        out[lo:lo + _CHUNK] = np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
    return out


def _csls_best(a: F32, b: F32, r_b: F32) -> I64:
    """For each row of ``a``, the row of ``b`` with the best CSLS (r_a is constant per row)."""
    best = np.empty(len(a), dtype=np.int64)
    for lo in range(0, len(a), _CHUNK):
        best[lo:lo + _CHUNK] = np.argmax(2 * (a[lo:lo + _CHUNK] @ b.T) - r_b, axis=1)
    return best


def mutual_neighbours(mapping: LinearMap, source: KeyedVectors, target: KeyedVectors,
                       s_rank: I64, t_rank: I64, anchors: Anchors,
                       options: AlignOptions) -> tuple[I64, I64]:
    """CSLS mutual nearest neighbours among frequent words, held-out words left out."""
    held_t = set().union(*anchors.held_gold) if anchors.held_gold else set()
    s_rows = _top_rows(s_rank, options.refine_size, {int(i) for i in anchors.held_s})
    t_rows = _top_rows(t_rank, options.refine_size, held_t)
    s_map = mapping.directions(source.vectors[s_rows])
    t_unit = unit_rows(target.vectors[t_rows]).astype(np.float32)
    r_s = _mean_topk(s_map, t_unit, options.csls_k)  # density around each mapped source word
    r_t = _mean_topk(t_unit, s_map, options.csls_k)
    s_to_t = _csls_best(s_map, t_unit, r_t)
    t_to_s = _csls_best(t_unit, s_map, r_s)
    mutual = np.nonzero(t_to_s[s_to_t] == np.arange(len(s_rows)))[0]
    return s_rows[mutual], t_rows[s_to_t[mutual]]


def diagnose(mapping: LinearMap, source: LoadedVectors, target: LoadedVectors, t_rank: I64,
              s_rank: I64, anchors: Anchors, options: AlignOptions) -> dict[str, Any]:
    s_vecs, t_vecs = source.kv.vectors, target.kv.vectors
    fit_map_dirs = mapping.directions(s_vecs[anchors.fit_s])
    fit_cos = float(np.mean(np.sum(fit_map_dirs * unit_rows(t_vecs[anchors.fit_t]), axis=1)))
    held = _held_out_figures(mapping, source.kv, target.kv, s_rank, t_rank, anchors, options)
    distortion = _distortion(mapping, s_vecs, s_rank, options)
    warnings, verdict = _verdict(held, anchors, source.kv.vector_size, options)
    stats = dict(anchors.stats)
    stats.setdefault("fit", len(anchors.fit_s))
    stats.setdefault("held_out", len(anchors.held_s))
    return {
        "method": options.method,
        "center": options.center,
        "anchors": {"origin": anchors.origin, **stats},
        "fit_mean_cosine": round(fit_cos, 4),
        "held_out": held,
        "distortion": distortion,
        "verdict": verdict,
        "warnings": warnings,
        "thresholds": {"good": {"p_at_1_csls": GOOD_P1, "cosine_margin": GOOD_MARGIN},
                       "poor": {"p_at_1_csls": POOR_P1, "cosine_margin": POOR_MARGIN},
                       "min_held_out": MIN_HELD_OUT},
    }


def _held_out_figures(mapping: LinearMap, source: KeyedVectors, target: KeyedVectors,
                      s_rank: I64, t_rank: I64, anchors: Anchors,
                      options: AlignOptions) -> dict[str, Any]:
    empty: dict[str, Any] = {"queries": 0, "candidates": 0, "p_at_1_cosine": None,
                             "p_at_10_cosine": None, "p_at_1_csls": None, "p_at_10_csls": None,
                             "mean_cosine": None, "mean_cosine_random": None,
                             "cosine_margin": None, "neighbour_overlap": None}
    if len(anchors.held_s) == 0:
        return empty
    gold_rows = set().union(*anchors.held_gold)
    cand = np.union1d(_top_rows(t_rank, options.search_size),
                      np.fromiter(gold_rows, dtype=np.int64))
    position = {int(row): k for k, row in enumerate(cand)}
    gold = [{position[g] for g in golds} for golds in anchors.held_gold]
    queries = mapping.directions(source.vectors[anchors.held_s])
    cand_unit = unit_rows(target.vectors[cand]).astype(np.float32)
    density_rows = _top_rows(s_rank, options.search_size)
    s_density = mapping.directions(source.vectors[density_rows])
    r_t = _mean_topk(cand_unit, s_density, options.csls_k)
    r_q = _mean_topk(queries, cand_unit, options.csls_k)
    hits = {"p_at_1_cosine": 0, "p_at_10_cosine": 0, "p_at_1_csls": 0, "p_at_10_csls": 0}
    cosines = []
    for lo in range(0, len(queries), _CHUNK):
        sims = queries[lo:lo + _CHUNK] @ cand_unit.T
        csls = 2 * sims - r_q[lo:lo + _CHUNK, None] - r_t[None, :]
        for name, scores in (("cosine", sims), ("csls", csls)):
            top = np.argsort(-scores, axis=1)[:, :10]
            for row, golds in zip(top, gold[lo:lo + _CHUNK], strict=True):
                hits[f"p_at_1_{name}"] += int(row[0]) in golds
                hits[f"p_at_10_{name}"] += bool(golds.intersection(row.tolist()))
        for k, golds in enumerate(gold[lo:lo + _CHUNK]):
            cosines.append(max(float(sims[k, g]) for g in golds))
    n = len(queries)
    out: dict[str, Any] = {"queries": n, "candidates": len(cand)}
    out.update({name: round(count / n, 4) for name, count in hits.items()})
    out["mean_cosine"] = round(float(np.mean(cosines)), 4)
    # What the mean cosine is worth: the same figure against random target words.
    random_rows = np.random.default_rng(options.seed + 2).integers(0, len(cand), n)
    baseline = np.sum(queries * cand_unit[random_rows], axis=1)
    out["mean_cosine_random"] = round(float(baseline.mean()), 4)
    out["cosine_margin"] = round(out["mean_cosine"] - out["mean_cosine_random"], 4)
    out["neighbour_overlap"] = _neighbour_overlap(source, target, anchors)
    return out


def _neighbour_overlap(source: KeyedVectors, target: KeyedVectors, anchors: Anchors,
                       k: int = 10) -> float:
    """How many of each held-out word's k nearest fit anchors the two models agree on.

    Needs no map: it says whether *any* map could succeed. Near 1 when both models
    use the words alike; near 0 when the shared words mean different things.
    """
    k = min(k, len(anchors.fit_s))
    s_anchor = unit_rows(source.vectors[anchors.fit_s]).astype(np.float32)
    t_anchor = unit_rows(target.vectors[anchors.fit_t]).astype(np.float32)
    s_query = unit_rows(source.vectors[anchors.held_s]).astype(np.float32)
    t_query = unit_rows(target.vectors[[min(g) for g in anchors.held_gold]]).astype(np.float32)
    shared = 0
    for lo in range(0, len(s_query), _CHUNK):
        near_s = np.argpartition(-(s_query[lo:lo + _CHUNK] @ s_anchor.T), k - 1, axis=1)[:, :k]
        near_t = np.argpartition(-(t_query[lo:lo + _CHUNK] @ t_anchor.T), k - 1, axis=1)[:, :k]
        shared += sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(near_s, near_t,
                                                                              strict=True))
    return round(shared / (k * len(s_query)), 4)


def _distortion(mapping: LinearMap, s_vecs: NDArray[np.floating], s_rank: I64,
                options: AlignOptions) -> dict[str, Any]:
    """How much cosines between pairs of SOURCE words change under the map."""
    rows = _top_rows(s_rank, options.search_size)
    if len(rows) < 2:
        return {"pairs": 0, "mean_abs_cosine_change": 0.0, "max_abs_cosine_change": 0.0}
    rng = np.random.default_rng(options.seed + 1)
    a = rng.choice(rows, _DISTORTION_PAIRS)
    b = rng.choice(rows, _DISTORTION_PAIRS)
    keep = a != b
    a, b = a[keep], b[keep]
    before = np.sum(unit_rows(s_vecs[a]) * unit_rows(s_vecs[b]), axis=1)
    after = np.sum(mapping.directions(s_vecs[a]) * mapping.directions(s_vecs[b]), axis=1)
    change = np.abs(after - before)
    return {"pairs": len(a), "mean_abs_cosine_change": round(float(change.mean()), 4),
            "max_abs_cosine_change": round(float(change.max()), 4)}


def _verdict(held: dict[str, Any], anchors: Anchors, dims: int,
             options: AlignOptions) -> tuple[list[str], str]:
    warnings = []
    fit = len(anchors.fit_s)
    if fit < dims:
        warnings.append(
            f"only {fit} anchors for {dims} dimensions: the map is under-determined and "
            "fits the anchors by construction; widen the band or give more pairs"
        )
    if held["p_at_1_csls"] is None:
        warnings.append(
            "no held-out anchors, so the mapping cannot be judged; use --holdout > 0"
        )
        return warnings, "unknown"
    p1, cos, margin = held["p_at_1_csls"], held["mean_cosine"], held["cosine_margin"]
    figures = (f"held-out P@1 with CSLS {p1:.2f}, mean cosine {cos:.2f} against "
               f"{held['mean_cosine_random']:.2f} for random pairs, neighbour overlap "
               f"{held['neighbour_overlap']:.2f}")
    if p1 < POOR_P1 or margin < POOR_MARGIN:
        verdict = "poor"
        warnings.append(
            f"the mapping is poor ({figures}; P@1 below {POOR_P1:.2f} or a cosine margin "
            f"below {POOR_MARGIN:.2f} means the two models do not use their shared words "
            "alike): mapped vectors will be unreliable, and a model trained on the joined "
            "corpora would serve better"
        )
    elif p1 >= GOOD_P1 and margin >= GOOD_MARGIN:
        verdict = "good"
    else:
        verdict = "fair"
        warnings.append(
            f"the mapping is only fair ({figures}; good is P@1 >= {GOOD_P1:.2f} and a cosine "
            f"margin >= {GOOD_MARGIN:.2f}): check mapped words before relying on them; "
            "a model trained on the joined corpora is the safer choice"
        )
    if held["queries"] < MIN_HELD_OUT:
        warnings.append(
            f"only {held['queries']} held-out anchors: the figures are noisy; "
            "raise --holdout or widen the band"
        )
        if verdict == "good":
            verdict = "fair"
    if options.method == "lstsq":
        warnings.append(
            "lstsq is not an isometry: cosines between mapped words differ from SOURCE's "
            "(see distortion); use procrustes unless you need gensim TranslationMatrix results"
        )
    return warnings, verdict
