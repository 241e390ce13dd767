"""What a version is measured on at commit: scores, watch words, drift, gate verdict.

``assess`` is called by ``train.versions.commit_version`` on the in-memory
model *before* the version is sealed, so a failing evaluation writes nothing.
A version that fails a gate (``gates``) is committed as a ``candidate``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from incremental_w2v.config.schema import Config
from incremental_w2v.progress import Progress
from incremental_w2v.quality.gates import check_gates
from incremental_w2v.store.store import Store
from incremental_w2v.vectors.ranking import counts_of

if TYPE_CHECKING:
    from incremental_w2v.quality.drift import Space

# drift and evaluation pull in scipy (and gensim's test data): they are imported inside
# the functions that score, so a no-op cron run never pays for them.

logger = logging.getLogger(__name__)


@dataclass
class Assessment:
    fields: dict[str, Any] = field(default_factory=dict)
    passed: bool = True
    seconds: float = 0.0


def preflight(config: Config) -> None:
    """Read the user's evaluation files now, so a bad one fails before any training."""
    from incremental_w2v.quality.evaluation import read_pairs, read_questions, resolve_path

    if not config.evaluation.enabled:
        return
    for f in config.evaluation.word_pairs:
        read_pairs(resolve_path(f.path, config.base_dir))
    for f in config.evaluation.analogy_files:
        read_questions(resolve_path(f.path, config.base_dir))


# -- at commit ---------------------------------------------------------------------------


def assess(
    store: Store, config: Config, model: Any, parent: str | None, kind: str
) -> Assessment:
    """Scores, watch neighbours, drift and gate verdict of a version about to be committed."""
    from incremental_w2v.quality.drift import watch_neighbours
    from incremental_w2v.quality.evaluation import evaluate_vectors

    started = time.perf_counter()
    kv = model.wv
    counts = counts_of(kv)
    out: dict[str, Any] = {}
    steps = [config.evaluation.enabled, bool(config.watch),
             parent is not None and config.drift.record, parent is not None and bool(config.gates)]
    names = [n for n, on in zip(("evaluation sets", "watch words", "drift", "gates"), steps,
                                strict=True) if on]
    with Progress("scoring", total=sum(steps), unit="steps") as progress:
        if names:  # a cron log shows each step begin, not only its heartbeat 60 s later
            progress.milestone(f"started ({', '.join(names)})")
        if config.evaluation.enabled:
            progress.set_note("evaluation sets")
            out["scores"] = evaluate_vectors(kv, counts, config.evaluation, config.base_dir)
            progress.update(1)
        if config.watch:
            progress.set_note("watch words")
            out["watch"] = {
                "k": config.drift.top_k,
                "neighbours": watch_neighbours(
                    kv, counts, config.watch, config.drift.top_k, config.drift.neighbour_vocab
                ),
            }
            progress.update(1)
        if parent is not None and config.drift.record:
            progress.set_note("drift")
            out["drift"] = _drift_record(store, config, kv, counts, parent, kind)
            progress.update(1)
        passed = True
        if parent is not None and config.gates:
            progress.set_note("gates")
            reference = _reference_scores(store, config, parent, out.get("scores", {}))
            out["gate"] = check_gates(config.gates, out.get("scores", {}), reference, parent)
            passed = bool(out["gate"]["passed"])
            progress.update(1)
    return Assessment(fields=out, passed=passed, seconds=time.perf_counter() - started)


def _reference_scores(
    store: Store, config: Config, parent: str, scores: dict[str, Any]
) -> dict[str, Any]:
    """The parent's scores, re-measured if it was scored differently (e.g. another set)."""
    from incremental_w2v.quality.evaluation import evaluate_vectors

    recorded: dict[str, Any] = store.read_meta(parent).scores

    def same(a: Any, b: Any) -> bool:
        keys = ("kind", "total", "restrict_vocab")
        return isinstance(a, dict) and isinstance(b, dict) and all(
            a.get(k) == b.get(k) for k in keys)

    if all(same(recorded.get(n), scores.get(n)) for n in config.gates):
        return recorded
    logger.info("re-scoring %s with the current evaluation settings for the gates", parent)
    model = store.load_model(parent, mmap="r")
    fresh = evaluate_vectors(model.wv, counts_of(model.wv), config.evaluation, config.base_dir)
    return {**recorded, **fresh}


def _drift_record(
    store: Store, config: Config, kv: Any, counts: dict[str, int] | None, parent: str, kind: str
) -> dict[str, Any]:
    from incremental_w2v.quality.drift import Space, compare_spaces, summary

    new = Space(kv, counts, config.drift.neighbour_vocab)
    record: dict[str, Any] = {}
    parent_space = _space_of(store, parent, config)
    record["parent"] = {
        "against": parent,
        **summary(compare_spaces(parent_space, new, config.drift, config.base_dir, detail=False)),
    }
    rebuild = store.last_rebuild(parent)
    if rebuild is not None and store.is_pruned(rebuild):
        # Prune keeps the current version's last rebuild; this one went with another branch.
        logger.info("no drift against the last rebuild %s: it was pruned", rebuild)
        rebuild = None
    if kind != "rebuild" and rebuild is not None:
        if rebuild == parent:
            record["rebuild"] = record["parent"]
        else:
            space = _space_of(store, rebuild, config)
            record["rebuild"] = {
                "against": rebuild,
                **summary(compare_spaces(space, new, config.drift, config.base_dir, detail=False)),
            }
    return record


def _space_of(store: Store, version: str, config: Config) -> Space:
    from incremental_w2v.quality.drift import Space

    model = store.load_model(version, mmap="r")
    return Space(model.wv, counts_of(model.wv), config.drift.neighbour_vocab)
