"""Fitting an alignment: anchors, the map (refined on mutual neighbours if asked), diagnostics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from incremental_w2v.align.anchors import Anchors, pair_file_anchors, ranks, shared_word_anchors
from incremental_w2v.align.diagnose import diagnose, mutual_neighbours
from incremental_w2v.align.mapping import AlignOptions, LinearMap, fit_map
from incremental_w2v.errors import DataError
from incremental_w2v.vectors.io import LoadedVectors

logger = logging.getLogger(__name__)


@dataclass
class Alignment:
    """A fitted map with the anchors it used and its diagnostics."""

    mapping: LinearMap
    anchors: Anchors
    diagnostics: dict[str, Any]
    options: AlignOptions


def fit_alignment(source: LoadedVectors, target: LoadedVectors,
                  options: AlignOptions | None = None) -> Alignment:
    """Choose anchors, fit the map (refining if asked), and measure it on the held-out anchors."""
    options = options or AlignOptions()
    options.check()
    s_dims, t_dims = source.kv.vector_size, target.kv.vector_size
    if s_dims != t_dims:
        raise DataError(
            f"SOURCE {source.ref} has {s_dims} dimensions, TARGET {target.ref} has {t_dims}",
            hint="a linear map between spaces needs equal sizes: retrain one model with "
            f"vector_size={t_dims}",
        )
    s_rank, t_rank = ranks(source), ranks(target)
    if options.anchors_file is not None:
        anchors = pair_file_anchors(options.anchors_file, source.kv, target.kv, options)
    else:
        anchors = shared_word_anchors(source, target, s_rank, t_rank, options)
    s_vecs, t_vecs = source.kv.vectors, target.kv.vectors
    mapping = fit_map(s_vecs[anchors.fit_s], t_vecs[anchors.fit_t], options.method, options.center)
    refinement: list[dict[str, Any]] = []
    for step in range(options.refine):
        pairs_s, pairs_t = mutual_neighbours(mapping, source.kv, target.kv, s_rank, t_rank,
                                              anchors, options)
        if len(pairs_s) < 2:
            logger.warning("refinement step %d found %d mutual neighbours; stopping",
                           step + 1, len(pairs_s))
            break
        mapping = fit_map(s_vecs[pairs_s], t_vecs[pairs_t], options.method, options.center)
        agree = float(np.mean(np.asarray([source.kv.index_to_key[i] == target.kv.index_to_key[j]
                                          for i, j in zip(pairs_s, pairs_t, strict=True)])))
        refinement.append({"step": step + 1, "pairs": len(pairs_s), "identical_words": agree})
        logger.info("refinement step %d: %d mutual-neighbour pairs", step + 1, len(pairs_s))
    diagnostics = diagnose(mapping, source, target, t_rank, s_rank, anchors, options)
    diagnostics["refinement"] = refinement
    for warning in diagnostics["warnings"]:
        logger.warning("%s", warning)
    return Alignment(mapping, anchors, diagnostics, options)
