"""``rebuild``: one model trained from scratch on every corpus of the current lineage.

Full retraining on the mixed corpus is usually the better model; the rebuild
is the yardstick for how far the incremental lineage has drifted. Corpora are
re-read from their recorded URIs in lineage order with their recorded format
and tokenisation, and each must still hash to its recorded sha256 (a rebuild
on other bytes would lie about what it is). The new version's lineage is the
same corpora; its kind is ``rebuild`` and its parent the version it replaces.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import TypeAdapter

from incremental_w2v.config.needs import require
from incremental_w2v.config.schema import Config
from incremental_w2v.errors import DataError, InputMissingError, UsageError
from incremental_w2v.ingest.corpus import CorpusSpec
from incremental_w2v.ingest.fingerprint import stat
from incremental_w2v.ingest.formats.catalog import FormatSettings
from incremental_w2v.ingest.tokenize import TokenizeSettings
from incremental_w2v.quality.gates import gate_error
from incremental_w2v.store.locking import locked
from incremental_w2v.store.manifest import CorpusRecord, VersionMeta
from incremental_w2v.store.publish import publish_current
from incremental_w2v.store.store import Store
from incremental_w2v.train.plan import (
    PendingCorpus,
    check_same_base,
    lineage_base,
    source_options,
    specs_for,
)
from incremental_w2v.train.versions import Draft, commit_version, read_into, train_new
from incremental_w2v.uris import corpus_key
from incremental_w2v.vectors.ranking import counts_of

logger = logging.getLogger(__name__)

_FORMAT = TypeAdapter(FormatSettings)


@dataclass
class Rebuilt:
    """``rebuild``: the new version, the one it replaces, and how far apart they are."""

    version: str
    replaces: str
    status: str  # committed, or candidate when a gate refused it
    vocab_size: int
    seconds: float
    timings: dict[str, float]
    compare: dict[str, Any]  # quality.compare.Comparison.to_dict()
    published: list[str] = field(default_factory=list)  # publish targets written

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rebuild(config: Config, wait: float = 0.0, seed: int | None = None) -> Rebuilt:
    """Rebuild the current version's lineage from scratch (``seed`` overrides model.seed)."""
    with locked(config, "rebuild", wait) as store:
        current = store.current_meta()
        if current is None:
            raise InputMissingError(f"store {store.location} has no current version",
                                    hint="run 'incw2v add-corpus CONFIG' first")
        meta, info = rebuild_locked(store, config, current, seed)
        if meta.gate.get("passed", True):
            if config.retention.keep is not None:
                from incremental_w2v.store.ops import prune_locked  # add-corpus imports us

                prune_locked(store, config.retention.keep)
            info.published = publish_current(store, config)
    if not meta.gate.get("passed", True):
        raise gate_error(meta, current.version, info)
    return info


def rebuild_locked(
    store: Store, config: Config, current: VersionMeta, seed: int | None = None
) -> tuple[VersionMeta, Rebuilt]:
    """The rebuild itself; the caller holds the store's lock."""
    # Comparing needs gensim and scipy; imported here so that a no-op run never pays.
    from incremental_w2v.quality.compare import compare_sides
    from incremental_w2v.vectors.io import LoadedVectors

    check_same_base(config, current)
    if any(rec.uri.startswith("model:") for rec in current.corpora):
        raise UsageError(
            f"the lineage of {current.version} starts from an imported model, whose training "
            "corpus is unknown: it cannot be rebuilt",
            hint="start a new store with 'base: {corpus: ...}' to get a lineage that can be "
            "rebuilt",
        )
    params = config.model if seed is None else config.model.model_copy(update={"seed": seed})
    items = [_pending(config, rec) for rec in current.corpora]
    # The publish that follows too: a missing boto3 must not surface after the rebuild.
    require([*(item.spec.uri for item in items), *config.publish_locations()])
    version = store.read_manifest().next_version(set())
    since = store.updates_since_rebuild(current.version)
    started = time.perf_counter()
    with store.workdir() as work, store.staging() as staging:
        workfile = work / "corpus.txt"
        t0 = time.perf_counter()
        _, results = read_into(store, config, items, workfile, version)
        for rec, res in zip(current.corpora, results, strict=True):
            if res.sha256 != rec.fingerprint.sha256:
                raise DataError(
                    f"corpus {rec.uri} ({rec.name}) no longer has the content applied in "
                    f"{rec.applied_in} (sha256 {rec.fingerprint.sha256[:12]}… -> "
                    f"{res.sha256[:12]}…): a rebuild on other bytes would misstate its lineage",
                    hint="restore the original file, or start a new lineage",
                )
        t1 = time.perf_counter()
        # A rebuild has seen every corpus again: its replay buffer is drawn from all of them.
        trained = train_new(config, params, results, workfile)
        model = trained.model
        draft = Draft(
            kind="rebuild", parent=current.version, corpora=current.corpora, added=[],
            vocab_size=trained.report.vocab_size,
            words_added=max(trained.report.vocab_size - current.vocab_size, 0),
            top_new_words=[], params=params.model_dump(), tokenize=config.tokenize.model_dump(),
            timings={"read": t1 - t0, **trained.seconds}, base=lineage_base(config, current),
            notes=[
                f"rebuild from scratch of the lineage of {current.version} "
                f"({len(current.corpora)} corpora, {since} "
                "updates since the last rebuild or base)"
                + (f"; seed {seed}" if seed is not None else "")
            ],
        )
        meta = commit_version(store, staging, config, model, trained.ledger, draft,
                              trained.replay)
        replaced = store.load_model(current.version, mmap="r")
        comparison = compare_sides(
            config,
            LoadedVectors(replaced.wv, counts_of(replaced.wv), "store-version",
                          current.version, current.scores or None),
            LoadedVectors(model.wv, counts_of(model.wv), "store-version", meta.version,
                          meta.scores or None),
        )
    info = Rebuilt(
        version=meta.version,
        replaces=current.version,
        status="committed" if meta.gate.get("passed", True) else "candidate",
        vocab_size=meta.vocab_size,
        seconds=round(time.perf_counter() - started, 3),
        timings=meta.timings,
        compare=comparison.to_dict(),
    )
    logger.info("rebuilt %s as %s in %.1fs", current.version, meta.version, info.seconds)
    return meta, info


def _pending(config: Config, rec: CorpusRecord) -> PendingCorpus:
    """How to re-read a recorded corpus: its recorded format and tokenisation."""
    encoding: str = config.encoding_errors
    key, uri = corpus_key(rec.uri, config.base_dir), rec.uri
    for entry in [*([config.base.as_entry()] if config.base.corpus else []), *config.queue]:
        try:
            specs = specs_for(config, entry, required=False)
        except InputMissingError:
            continue
        match = next((s for s in specs if corpus_key(s.uri, config.base_dir) == key), None)
        if match is not None:
            # Read from the URI the config gives: the recorded one is redacted.
            uri, encoding = match.uri, match.encoding_errors
            break
    spec = CorpusSpec(
        uri=uri,
        name=rec.name,
        format=_FORMAT.validate_python(rec.format) if rec.format else _FORMAT.validate_python(
            {"type": "text"}
        ),
        tokenize=TokenizeSettings(**rec.tokenize) if rec.tokenize else config.tokenize,
        encoding_errors=encoding,
    )
    try:
        now = stat(uri, config.base_dir, source_options(config))
    except InputMissingError:
        raise InputMissingError(
            f"corpus {rec.uri} ({rec.name}, applied in {rec.applied_in}) is gone: a rebuild "
            "needs every corpus of the lineage",
            hint="restore the file (its sha256 is in 'incw2v history --json'), or keep using "
            "the incremental lineage",
        ) from None
    return PendingCorpus(spec, now)


def rebuild_due(store: Store, config: Config, current: VersionMeta) -> str | None:
    """Why ``add-corpus`` should rebuild now (config ``rebuild:``), or None."""
    settings = config.rebuild
    if current.kind == "rebuild":
        return None
    if settings.every is not None:
        n = store.updates_since_rebuild(current.version)
        if n >= settings.every:
            return f"{n} updates since the last rebuild (rebuild.every: {settings.every})"
    gap = current.drift.get("rebuild") or {}
    drift = gap.get("drift")
    if settings.max_drift is not None and drift is not None and drift > settings.max_drift:
        return (f"drift {drift:.4f} against the last rebuild {gap['against']} exceeds "
                f"rebuild.max_drift {settings.max_drift}")
    overlap = (gap.get("overlap") or {}).get("mean")
    if settings.min_overlap is not None and overlap is not None and (
        overlap < settings.min_overlap
    ):
        return (f"neighbour overlap {overlap:.4f} with the last rebuild {gap['against']} is "
                f"below rebuild.min_overlap {settings.min_overlap}")
    return None
