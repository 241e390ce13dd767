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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import __version__, quality
from .background import Background
from .config import Config, ModelParams
from .corpus import Corpus, PassResult, stream_once
from .corpus import require_tokens as _require_tokens
from .diskspace import ensure_room, expansion, folder_bytes
from .errors import ConfigError, InputMissingError
from .fsutil import os_error, sha256_file
from .ledger import Ledger
from .locking import store_lock
from .manifest import CorpusRecord, Fingerprint, VersionMeta
from .pending import PendingCorpus, plan_run, source_options
from .rehearsal import REPLAY_FILE, ReplayBuffer, absorb_file, mix_and_absorb
from .safe_pickle import check_pickle
from .store import Staging, Store
from .tokenize_pool import choose_processes
from .training import (
    TrainReport,
    apply_update,
    check_trainable,
    params_of_model,
    structural_mismatch,
    train_base,
)
from .uris import check_uri, redact

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "skipped": self.skipped,
            "current": self.current,
            "swept": self.swept,
            "seconds": round(self.seconds, 3),
            "gate_failed": self.gate_failed.gate if self.gate_failed else None,
        }

    def summary(self) -> str:
        if not self.applied:
            return f"nothing to do: current version {self.current}, {len(self.skipped)} corpora " \
                "already applied"
        done = ", ".join(f"{a['version']} ({a['name']})" for a in self.applied)
        return f"applied {len(self.applied)} corpus(es): {done}; current version {self.current}"


def add_corpus(
    config: Config,
    extra_uris: tuple[str, ...] = (),
    wait: float = 0.0,
    allow_tokenize_change: bool = False,
) -> AddResult:
    """Apply every pending corpus of ``config`` (and ``extra_uris``) to its store."""
    started = time.perf_counter()
    for uri in extra_uris:
        check_uri(uri)
    quality.preflight(config)
    store = Store.open(config.store_path, create=True)
    result = AddResult()
    with store_lock(store.root, "add-corpus", wait):
        result.swept = store.sweep()
        manifest = store.read_manifest()
        current = store.current_meta(manifest)
        if current is not None:
            check_compatible(config, current, allow_tokenize_change)
        plan = plan_run(config, current, extra_uris)
        result.skipped = plan.skipped
        plan.pending = quality.screen_pending(store, manifest, plan.pending, result.skipped)
        if current is None:
            current = create_base(store, config, plan.base)
            result.applied.append(_applied(current))
        parent: Background[Parent] | None = None
        for item in plan.pending:
            if parent is None:
                # Loaded (and gensim imported) while the first pass reads its corpus.
                parent = Background(partial(load_parent, store, config, current.version),
                                    "load-parent")
            meta = apply_one(store, config, current, parent, item)
            result.applied.append(_applied(meta))
            if not meta.gate.get("passed", True):
                # Later corpora wait: they must not be trained on top of a refused version.
                result.gate_failed = meta
                break
            current = meta
        if result.applied and result.gate_failed is None:
            current = _maybe_rebuild(store, config, current, result)
        result.current = current.version
    result.seconds = time.perf_counter() - started
    logger.info("%s (%.1fs)", result.summary(), result.seconds)
    if result.gate_failed is not None:
        raise quality.gate_error(result.gate_failed, result.current, result)
    return result


def _maybe_rebuild(
    store: Store, config: Config, current: VersionMeta, result: AddResult
) -> VersionMeta:
    """The config's ``rebuild:`` trigger (every N updates, or drift past a threshold)."""
    from .rebuild import rebuild_due, rebuild_locked

    reason = rebuild_due(store, config, current)
    if reason is None:
        return current
    logger.info("rebuilding from scratch: %s", reason)
    meta, info = rebuild_locked(store, config, current)
    result.applied.append({**_applied(meta), "name": f"rebuild of {current.version}",
                           "reason": reason, "drift": info["compare"]["drift"]})
    if not meta.gate.get("passed", True):
        result.gate_failed = meta
        return current
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
            f"the config does not match the lineage in {config.store_path} "
            f"(current version {current.version})",
            problems,
            hint="restore the lineage's settings in the config; mixing tokenisations splits "
            "the vocabulary (pass --allow-tokenize-change if you mean it), and vector_size/sg "
            "cannot change within a lineage ('incw2v rebuild' or a new store can)",
        )


def _applied(meta: VersionMeta) -> dict[str, Any]:
    return {
        "version": meta.version,
        "kind": meta.kind,
        "name": ", ".join(meta.added),
        "corpora": [c.model_dump() for c in meta.corpora if c.applied_in == meta.version],
        "vocab_size": meta.vocab_size,
        "words_added": meta.words_added,
        "seconds": round(sum(meta.timings.values()), 3),
    }


def _record(item: PendingCorpus, result: PassResult, version: str) -> CorpusRecord:
    spec = item.spec
    return CorpusRecord(
        name=spec.name,
        uri=redact(spec.uri),
        fingerprint=Fingerprint(
            size=item.stat.size,
            mtime_ns=item.stat.mtime_ns,
            etag=item.stat.etag,
            last_modified=item.stat.last_modified,
            sha256=result.sha256,
        ),
        format=spec.format.model_dump(),
        tokenize=spec.tokenize.model_dump(),
        sentences=result.sentences,
        tokens=result.tokens,
        skipped=result.stats.skipped,
        replacements=result.stats.replacements,
        applied_in=version,
        read_seconds=round(result.seconds, 3),
    )


def _read_into(
    store: Store, config: Config, items: list[PendingCorpus], workfile: Path, version: str,
    on_started: Callable[[], None] | None = None,
) -> tuple[list[CorpusRecord], list[PassResult]]:
    """One streaming pass over each corpus, appending to ``workfile``.

    ``on_started``: see :func:`stream_once` (only for a single corpus: each
    pass forks its own workers).
    """
    assert on_started is None or len(items) == 1
    records, results = [], []
    options = source_options(config)
    current = store.read_manifest().current
    ensure_room(store.root, [(i.spec.uri, i.stat) for i in items],
                folder_bytes(store.version_dir(current) if current else None))
    try:
        with open(workfile, "w", encoding="utf-8", newline="\n") as out:
            for item in items:
                logger.info("reading %s (%s)", item.spec.name, redact(item.spec.uri))
                # A pipe's size (0) says nothing; a compressed file's says a quarter of it.
                size = item.stat.size if item.stat.rereadable else None
                text_size = None if size is None else int(size * expansion(item.spec.uri))
                result = stream_once(
                    Corpus(item.spec, config.base_dir, options), out, item.stat.size,
                    choose_processes(item.spec.tokenize, text_size, config.model.workers),
                    on_started=on_started,
                )
                _require_tokens(item.spec, result)
                records.append(_record(item, result, version))
                results.append(result)
    except OSError as exc:
        if exc.filename is None or str(workfile) in str(exc.filename):
            raise os_error(exc, "writing the working file") from None
        raise
    return records, results


@dataclass
class Parent:
    """The version an update trains on, in memory (the next update continues from it)."""

    model: Any
    ledger: Ledger
    replay: ReplayBuffer


def load_parent(store: Store, config: Config, version: str) -> Parent:
    model = store.load_model(version)
    check_trainable(model, f"version {version}")
    return Parent(model, store.load_ledger(version), load_replay(store, config, version))


def load_replay(store: Store, config: Config, version: str) -> ReplayBuffer:
    """The replay buffer of ``version`` (verified with the model), at the configured size."""
    rehearsal = config.rehearsal
    replay = ReplayBuffer.load(
        store.version_dir(version) / REPLAY_FILE, rehearsal.buffer_size, rehearsal.seed
    )
    note = replay.resize(rehearsal.buffer_size)
    if note:
        logger.warning("%s", note)
    return replay


def _prune_ledger(config: Config, ledger: Ledger, model: Any, notes: list[str]) -> dict[str, Any]:
    report = ledger.prune(config.ledger.max_size, model.wv.key_to_index)
    if report.types:
        assert config.ledger.max_size is not None
        note = report.note(config.ledger.max_size)
        logger.warning("%s", note)
        notes.append(note)
    return {**report.to_dict(), "max_size": config.ledger.max_size}


def _update_index(current: VersionMeta) -> int:
    """How many updates the lineage applied before the next one (for alpha_decay)."""
    if current.kind != "update":
        return 0
    return int(current.update_params.get("update_index", 0)) + 1


def create_base(store: Store, config: Config, items: list[PendingCorpus]) -> VersionMeta:
    if config.base.model is not None:
        return import_base_model(store, config)
    version = store.read_manifest().next_version(set())
    with store.workdir() as work, store.staging() as staging:
        workfile = work / "corpus.txt"
        t0 = time.perf_counter()
        records, results = _read_into(store, config, items, workfile, version)
        t1 = time.perf_counter()
        model, report, ledger, replay, seconds = train_new(config, config.model, results, workfile)
        notes: list[str] = []
        pruned = _prune_ledger(config, ledger, model, notes)
        return _commit(
            store, staging, config, model, ledger,
            {
                "parent": None,
                "kind": "base",
                "corpora": records,
                "added": [r.name for r in records],
                "vocab_size": report.vocab_size,
                "words_added": report.words_added,
                "top_new_words": report.top_new_words,
                "update_params": {"ledger_pruned": pruned},
                "timings": {"read": t1 - t0, **seconds},
                "notes": notes,
            },
            replay=replay,
        )


def train_new(
    config: Config, params: ModelParams, results: list[PassResult], workfile: Path
) -> tuple[Any, TrainReport, Ledger, ReplayBuffer, dict[str, float]]:
    """A model from scratch on ``workfile`` (a base, or a rebuild), its ledger, a replay
    sample drawn from every corpus read, and the seconds of training and sampling."""
    t0 = time.perf_counter()
    ledger = Ledger()
    for res in results:
        ledger.add(res.counts, res.sentences)
    model, report = train_base(
        params, ledger, workfile, ledger.sentences, sum(r.tokens for r in results)
    )
    t1 = time.perf_counter()
    replay = ReplayBuffer(config.rehearsal.buffer_size, config.rehearsal.seed)
    if replay.size:
        absorb_file(replay, workfile)
    return model, report, ledger, replay, {"train": t1 - t0, "replay": time.perf_counter() - t1}


def import_base_model(store: Store, config: Config) -> VersionMeta:
    """Bring an existing full gensim model in as the lineage's first version."""
    from gensim.utils import SaveLoad

    assert config.base.model is not None
    path = config._resolve(config.base.model)
    if not path.is_file():
        raise InputMissingError(
            f"base model {path} does not exist", hint="check 'base.model' in the config"
        )
    t0 = time.perf_counter()
    # The user's own model file has no recorded hash: refuse one that could run code.
    check_pickle(path)
    try:
        model = SaveLoad.load(str(path), mmap=None)
    except Exception as exc:
        raise ConfigError(
            f"base model {path} cannot be loaded as a gensim model: {type(exc).__name__}: {exc}",
            hint="give a full model saved with gensim's Word2Vec.save()",
        ) from None
    check_trainable(model, f"base model {path}")
    params = params_of_model(model)
    mismatch = structural_mismatch(params, config.model)
    if mismatch:
        raise ConfigError(
            f"the config's model parameters contradict the base model {path}",
            mismatch,
            hint="set these keys under 'model:' to the base model's values",
        )
    counts = model.wv.expandos.get("count")
    ledger = Ledger.from_counts(
        (
            (w, int(counts[i]) if counts is not None else 1)
            for i, w in enumerate(model.wv.index_to_key)
        ),
        sentences=int(getattr(model, "corpus_count", 0) or 0),
    )
    st = path.stat()
    record = CorpusRecord(
        name=config.base.name or path.name,
        uri=f"model:{config.base.model}",
        fingerprint=Fingerprint(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha256_file(path)),
        sentences=ledger.sentences,
        tokens=ledger.tokens,
        applied_in=store.read_manifest().next_version(set()),
    )
    with store.staging() as staging:
        return _commit(
            store, staging, config, model, ledger,
            {
                "parent": None,
                "kind": "import",
                "corpora": [record],
                "added": [record.name],
                "vocab_size": len(model.wv),
                "words_added": len(model.wv),
                "top_new_words": list(model.wv.index_to_key[:20]),
                "timings": {"import": time.perf_counter() - t0},
                "notes": [
                    "imported from an existing model: words below its min_count were never "
                    "counted, so the ledger starts from the model's vocabulary"
                ],
            },
            params=params,
        )


def apply_one(
    store: Store,
    config: Config,
    current: VersionMeta,
    parent: Background[Parent],
    item: PendingCorpus,
) -> VersionMeta:
    """Apply one corpus to ``current``; ``parent`` is started once the pass has forked."""
    version = store.read_manifest().next_version(set())
    notes: list[str] = []
    with store.workdir() as work, store.staging() as staging:
        workfile = work / "corpus.txt"
        t0 = time.perf_counter()
        try:
            records, results = _read_into(store, config, [item], workfile, version,
                                          on_started=parent.start)
        except Exception:
            parent.wait()  # nothing may still read the store once its lock is released
            raise
        t_read = time.perf_counter()
        loaded = parent.result()
        model, ledger, replay = loaded.model, loaded.ledger, loaded.replay
        waited = time.perf_counter() - t_read
        res = results[0]
        ledger.add(res.counts, res.sentences)
        t1 = time.perf_counter()
        sentences, tokens = res.sentences, res.tokens
        rehearsal: dict[str, Any] = {"share": 0.0, "buffer_size": 0}
        if replay is not None and replay.size:
            if not replay.lines and config.rehearsal.share:
                notes.append("rehearsal: the replay buffer was empty, nothing was replayed")
            mix = mix_and_absorb(replay, workfile, sentences, tokens, config.rehearsal.share)
            sentences, tokens = mix.sentences, mix.tokens
            rehearsal = {**config.rehearsal.model_dump(), **mix.to_dict()}
        t2 = time.perf_counter()
        update_index = _update_index(current)
        report = apply_update(
            model, config.model, config.update, ledger, workfile, sentences, tokens,
            update_index=update_index, corpus_sentences=res.sentences,
        )
        t3 = time.perf_counter()
        pruned = _prune_ledger(config, ledger, model, notes)
        return _commit(
            store, staging, config, model, ledger,
            {
                "parent": current.version,
                "kind": "update",
                "corpora": [*current.corpora, *records],
                "added": [r.name for r in records],
                "vocab_size": report.vocab_size,
                "words_added": report.words_added,
                "top_new_words": report.top_new_words,
                "update_params": {
                    **config.update.model_dump(),
                    "epochs": report.epochs,
                    "update_index": update_index,
                    "start_alpha": report.alpha[0],
                    "end_alpha": report.alpha[1],
                    "frozen_epochs": report.frozen_epochs,
                    "frozen_words": report.frozen_words,
                    "rehearsal": rehearsal,
                    "ledger_pruned": pruned,
                },
                # "load": waiting for the parent after the pass (it loads during it).
                "timings": {"read": t1 - t0 - waited, "load": waited, "replay": t2 - t1,
                            "train": t3 - t2},
                "notes": notes,
            },
            replay=replay,
        )


def _commit(
    store: Store,
    staging: Staging,
    config: Config,
    model: Any,
    ledger: Ledger,
    fields: dict[str, Any],
    params: dict[str, Any] | None = None,
    replay: ReplayBuffer | None = None,
) -> VersionMeta:
    fields.setdefault("params", params or config.model.model_dump())
    fields.setdefault("tokenize", config.tokenize.model_dump())
    # Scores are measured on the in-memory model before anything is written: versions are
    # immutable, and a failing evaluation then leaves nothing behind.
    assessment = quality.assess(store, config, model, fields)
    fields.update(assessment.fields)
    t0 = time.perf_counter()
    try:
        staging.save_model(model)
        staging.save_ledger(ledger)
        if replay is not None and replay.size:
            replay.save(staging.path / REPLAY_FILE)
    except OSError as exc:
        raise os_error(exc, "saving the new version") from None
    fields["timings"] = {**fields["timings"], "save": time.perf_counter() - t0,
                         "evaluate": assessment.seconds}
    fields["timings"] = {k: round(v, 3) for k, v in fields["timings"].items()}
    fields["tool_version"] = __version__
    meta = store.commit(staging, fields, make_current=assessment.passed)
    logger.info(
        "committed %s (%s: %s), vocabulary %d (+%d)",
        meta.version, meta.kind, ", ".join(meta.added), meta.vocab_size, meta.words_added,
    )
    return meta
