"""Read-only looks at versions: ``evaluate`` one, ``compare`` two.

A side of a comparison is a version of the store, a version of another
store (``CONFIG@VERSION``) or a vectors file, resolved by
``store.ops.load_vectors_ref``. A store version brings its recorded scores;
anything else is scored now with the config's evaluation sets.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from incremental_w2v.config.schema import Config
from incremental_w2v.quality.drift import Space, compare_spaces
from incremental_w2v.quality.evaluation import evaluate_vectors
from incremental_w2v.store.ops import existing_store, load_vectors_ref, version_vectors
from incremental_w2v.vectors.io import LoadedVectors


@dataclass
class Evaluation:
    """``evaluate``: a version's scores computed now."""

    version: str
    vocab_size: int
    scores: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(config: Config, version: str | None = None) -> Evaluation:
    """Scores of a version (default current) computed now with the config's sets."""
    loaded = version_vectors(existing_store(config), version)
    started = time.perf_counter()
    scores = evaluate_vectors(loaded.kv, loaded.counts, config.evaluation, config.base_dir)
    return Evaluation(version=loaded.ref, vocab_size=len(loaded.kv), scores=scores,
                      seconds=round(time.perf_counter() - started, 3))


@dataclass
class Comparison:
    """``compare``: scores side by side, vocabulary change, and drift from A to B."""

    a: str
    b: str
    scores: dict[str, dict[str, Any]]
    details: dict[str, Any]  # vocabulary, anchors, cosine, drift, overlap, bands, moved

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "scores": self.scores, **self.details}


def compare(config: Config, ref_a: str, ref_b: str) -> Comparison:
    """Scores side by side, vocabulary change, and drift from A to B."""
    a = load_vectors_ref(ref_a, config)
    b = load_vectors_ref(ref_b, config)
    return compare_sides(config, a, b)


def compare_sides(config: Config, a: LoadedVectors, b: LoadedVectors) -> Comparison:
    sa = a.scores or evaluate_vectors(a.kv, a.counts, config.evaluation, config.base_dir)
    sb = b.scores or evaluate_vectors(b.kv, b.counts, config.evaluation, config.base_dir)
    scores = {
        name: {"a": (sa.get(name) or {}).get("value"), "b": (sb.get(name) or {}).get("value"),
               "coverage_a": (sa.get(name) or {}).get("coverage"),
               "coverage_b": (sb.get(name) or {}).get("coverage")}
        for name in dict.fromkeys([*sa, *sb])
    }
    result = compare_spaces(
        Space(a.kv, a.counts, config.drift.neighbour_vocab),
        Space(b.kv, b.counts, config.drift.neighbour_vocab),
        config.drift, config.base_dir,
    )
    return Comparison(a=a.ref, b=b.ref, scores=scores, details=result)
