"""The ``add-corpus`` flow: train the base if needed, then apply every pending corpus.

Under the store's lock: sweep leftovers, plan (queue minus applied, by
fingerprint), then for each corpus in queue order one streaming pass
(validate, count, write the working file), vocabulary update from the
cumulative ledger, training, and an atomic commit of a new version. A
failure at any point leaves every committed version as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from incremental_w2v.config.needs import require
from incremental_w2v.config.schema import Config
from incremental_w2v.errors import ConfigError, GateFailedError, IncW2VError
from incremental_w2v.quality.assess import preflight
from incremental_w2v.quality.gates import gate_error
from incremental_w2v.quality.summary import score_values
from incremental_w2v.store.locking import locked
from incremental_w2v.store.manifest import VersionMeta
from incremental_w2v.store.publish import publish_current
from incremental_w2v.store.store import Store
from incremental_w2v.train.background import Background
from incremental_w2v.train.model import structural_mismatch
from incremental_w2v.train.plan import Held, PendingCorpus, plan_run
from incremental_w2v.train.rebuild import rebuild_due, rebuild_locked
from incremental_w2v.train.versions import Parent, apply_one, create_base, load_parent
from incremental_w2v.uris import command_line_uri

logger = logging.getLogger(__name__)


@dataclass
class AddResult:
    """What one run did; ``to_dict`` is the ``--json`` output."""

    applied: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    current: str | None = None
    swept: list[str] = field(default_factory=list)
    seconds: float = 0.0
    gate_failed: VersionMeta | None = None
    pruned: list[str] = field(default_factory=list)  # retention: versions whose arrays went
    published: list[str] = field(default_factory=list)  # publish targets written

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "skipped": self.skipped,
            "current": self.current,
            "swept": self.swept,
            "seconds": round(self.seconds, 3),
            "gate_failed": self.gate_failed.gate if self.gate_failed else None,
            "pruned": self.pruned,
            "published": self.published,
        }


def add_corpus(
    config: Config,
    extra_uris: tuple[str, ...] = (),
    wait: float = 0.0,
    allow_tokenize_change: bool = False,
) -> AddResult:
    """Apply every pending corpus of ``config`` (and ``extra_uris``) to its store."""
    started = time.perf_counter()
    extra_uris = tuple(command_line_uri(uri) for uri in extra_uris)
    preflight(config)
    result = AddResult()
    with locked(config, "add-corpus", wait, create=True) as store:
        result.swept = store.swept
        current = store.current_meta()
        if current is not None:
            check_compatible(config, current, allow_tokenize_change)
        plan = plan_run(store, config, current, extra_uris)
        result.skipped = plan.skipped
        if plan.held is not None:
            raise _awaiting_review(plan.held, current)
        # A module missing for a later corpus must stop the run now, not after the base.
        require([*(p.spec.uri for p in [*plan.base, *plan.pending]),
                 *config.publish_locations()])
        try:
            current = _apply_all(store, config, current, plan.base, plan.pending, result)
        except IncW2VError:
            if result.applied:  # what was committed before the failure is current: publish
                _publish_quietly(store, config)
            raise
        result.current = current.version
        result.published = publish_current(store, config)
    result.seconds = time.perf_counter() - started
    logger.debug("run finished in %.1fs: %d version(s) committed, current version %s",
                result.seconds, len(result.applied), result.current)
    if result.gate_failed is not None:
        raise gate_error(result.gate_failed, result.current, result)
    return result


def _apply_all(store: Store, config: Config, current: VersionMeta | None,
               base: list[PendingCorpus], pending: list[PendingCorpus], result: AddResult
               ) -> VersionMeta:
    """The base if there is none, then every pending corpus; retention after each commit."""
    if current is None:
        current = create_base(store, config, base)
        result.applied.append(_applied(store, current))
        _retain(store, config, result)
    parent: Background[Parent] | None = None
    for item in pending:
        if parent is None:
            # Loaded (and gensim imported) while the first pass reads its corpus.
            parent = Background(partial(load_parent, store, config, current.version),
                                "load-parent", imports=("gensim",))
        meta = apply_one(store, config, current, parent, item)
        result.applied.append(_applied(store, meta))
        if not meta.gate.get("passed", True):
            # Later corpora wait: they must not be trained on top of a refused version.
            result.gate_failed = meta
            break
        current = meta
        _retain(store, config, result)
    if result.applied and result.gate_failed is None:
        current = _maybe_rebuild(store, config, current, result)
    return current


def _retain(store: Store, config: Config, result: AddResult) -> None:
    """The config's ``retention:``, applied after each commit."""
    if config.retention.keep is not None:
        from incremental_w2v.store.ops import prune_locked  # reads vectors: not for a no-op

        result.pruned += prune_locked(store, config.retention.keep).deleted


def _publish_quietly(store: Store, config: Config) -> None:
    try:
        publish_current(store, config)
    except IncW2VError as exc:  # the run's own error is the one to report
        logger.warning("%s", exc)


def _awaiting_review(held: Held, current: VersionMeta | None) -> GateFailedError:
    return GateFailedError(
        f"{held.corpus.spec.name} is awaiting review in candidate {held.version} "
        f"({held.failures}); nothing was trained, current stays "
        f"{current.version if current else None}"
        + (f", and {held.waiting} later corpus(es) wait behind it" if held.waiting else ""),
        hint=f"accept it with 'incw2v promote CONFIG {held.version}', or drop the corpus with "
        f"'incw2v reject CONFIG {held.version}'; then run add-corpus again",
    )


def _maybe_rebuild(
    store: Store, config: Config, current: VersionMeta, result: AddResult
) -> VersionMeta:
    """The config's ``rebuild:`` trigger (every N updates, or drift past a threshold)."""
    reason = rebuild_due(store, config, current)
    if reason is None:
        return current
    logger.info("rebuilding from scratch: %s", reason)
    meta, info = rebuild_locked(store, config, current)
    result.applied.append({**_applied(store, meta), "name": f"rebuild of {current.version}",
                           "reason": reason, "drift": info.compare["drift"]})
    if not meta.gate.get("passed", True):
        result.gate_failed = meta
        return current
    _retain(store, config, result)
    return meta


def check_compatible(config: Config, current: VersionMeta, allow_tokenize_change: bool) -> None:
    problems = structural_mismatch(current.params, config.model)
    if current.tokenize and current.tokenize != config.tokenize.model_dump() and not (
        allow_tokenize_change
    ):
        problems.append(
            f"tokenize: lineage has {current.tokenize}, config has {config.tokenize.model_dump()}"
        )
    if problems:
        raise ConfigError(
            f"the config does not match the lineage in {config.store_location} "
            f"(current version {current.version})",
            problems,
            hint="restore the lineage's settings in the config; mixing tokenisations splits "
            "the vocabulary (pass --allow-tokenize-change if you mean it), and vector_size/sg "
            "cannot change within a lineage ('incw2v rebuild' or a new store can)",
        )


def _applied(store: Store, meta: VersionMeta) -> dict[str, Any]:
    parent = store.read_meta(meta.parent) if meta.parent else None
    drift = meta.drift.get("parent") or {}
    return {
        "version": meta.version,
        "kind": meta.kind,
        "parent": meta.parent,
        "name": ", ".join(meta.added),
        "corpora": [c.model_dump() for c in meta.corpora if c.applied_in == meta.version],
        "vocab_size": meta.vocab_size,
        "words_added": meta.words_added,
        "seconds": round(sum(meta.timings.values()), 3),
        "scores": score_values(meta.scores),
        "parent_scores": score_values(parent.scores) if parent else {},
        "drift_vs_parent": {"against": drift.get("against"), "drift": drift.get("drift"),
                            "overlap": drift.get("overlap")} if drift else None,
    }
