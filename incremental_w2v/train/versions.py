"""How one version is made: read, train (or import), score, and commit.

Each kind of version has one function: :func:`create_base` (from the base
corpus, or :func:`import_base_model`), :func:`apply_one` (an update), and
``rebuild`` (in its own module) built from the same parts. Every one of them
fills in a :class:`Draft`, the typed record of what the version will say
about itself, and hands it to :func:`commit_version`, which scores the model
in memory, writes its files into a staging folder and lets the store commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incremental_w2v import __version__
from incremental_w2v.config.schema import Config, ModelParams
from incremental_w2v.errors import ConfigError, IncW2VError, InputMissingError
from incremental_w2v.fsutil import os_error, sha256_file
from incremental_w2v.ingest.corpus import Corpus, PassResult, require_tokens, stream_once
from incremental_w2v.ingest.diskspace import (
    WithinReserve,
    ensure_room,
    expansion,
)
from incremental_w2v.ingest.pool import choose_processes
from incremental_w2v.progress import Progress
from incremental_w2v.quality.assess import assess
from incremental_w2v.quality.summary import quality_line
from incremental_w2v.store.manifest import CorpusRecord, Fingerprint, VersionMeta
from incremental_w2v.store.store import Staging, Store
from incremental_w2v.train.background import Background
from incremental_w2v.train.ledger import LEDGER_FILE, Ledger
from incremental_w2v.train.model import (
    TrainReport,
    apply_update,
    check_trainable,
    params_of_model,
    structural_mismatch,
    train_base,
)
from incremental_w2v.train.plan import (
    PendingCorpus,
    base_record,
    lineage_base,
    source_options,
)
from incremental_w2v.train.rehearsal import (
    REPLAY_FILE,
    EpochFile,
    ReplayBuffer,
    ReplayReport,
    absorb_file,
    replay_targets,
    write_epoch,
    write_lines,
)
from incremental_w2v.uris import printable, redact
from incremental_w2v.vectors.model_file import MODEL_FORMAT, load_saved
from incremental_w2v.vectors.safe_pickle import NotWordVectors

logger = logging.getLogger(__name__)


@dataclass
class Draft:
    """What a version will record about itself, before the store names it."""

    kind: str  # base, import, update, rebuild
    parent: str | None
    corpora: list[CorpusRecord]
    added: list[str]
    vocab_size: int
    words_added: int
    top_new_words: list[str]
    params: dict[str, Any]
    tokenize: dict[str, Any]
    update_params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    base: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of the version's ``VersionMeta``, but its name and files."""
        return {
            "kind": self.kind, "parent": self.parent, "base": self.base, "corpora": self.corpora,
            "added": self.added, "vocab_size": self.vocab_size, "words_added": self.words_added,
            "top_new_words": self.top_new_words, "params": self.params,
            "tokenize": self.tokenize, "update_params": self.update_params,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": self.notes, "tool_version": __version__, "model_format": MODEL_FORMAT,
        }


# -- reading --------------------------------------------------------------------------


def corpus_record(item: PendingCorpus, result: PassResult, version: str) -> CorpusRecord:
    """The lineage's record of one corpus read in a pass."""
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


def read_into(
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
    ensure_room(store.scratch, [(i.spec.uri, i.stat) for i in items],
                store.version_bytes(store.read_manifest().current))
    try:
        with open(workfile, "w", encoding="utf-8", newline="\n") as handle:
            out = WithinReserve(handle, workfile.parent)  # a bomb stops at the reserve
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
                require_tokens(item.spec, result)
                records.append(corpus_record(item, result, version))
                results.append(result)
    except OSError as exc:
        if exc.filename is None or str(workfile) in str(exc.filename):
            raise os_error(exc, "writing the working file") from None
        raise
    return records, results


# -- the parent of an update ----------------------------------------------------------


@dataclass
class Parent:
    """The version an update trains on, in memory (the next update continues from it)."""

    model: Any
    ledger: Ledger
    replay: ReplayBuffer


def load_parent(store: Store, config: Config, version: str) -> Parent:
    model = store.load_model(version)
    check_trainable(model, f"version {version}")
    ledger = Ledger.load(store.files(version) / LEDGER_FILE)
    return Parent(model, ledger, load_replay(store, config, version))


def load_replay(store: Store, config: Config, version: str) -> ReplayBuffer:
    """The replay buffer of ``version`` (verified with the model), at the configured size."""
    rehearsal = config.rehearsal
    replay = ReplayBuffer.load(
        store.files(version) / REPLAY_FILE, rehearsal.buffer_tokens, rehearsal.seed
    )
    note = replay.resize(rehearsal.buffer_tokens)
    if note:
        logger.warning("%s", note)
    return replay


def update_index(current: VersionMeta) -> int:
    """How many updates the lineage applied before the next one (for alpha_decay)."""
    if current.kind != "update":
        return 0
    return int(current.update_params.get("update_index", 0)) + 1


def prune_ledger(config: Config, ledger: Ledger, model: Any, notes: list[str]) -> dict[str, Any]:
    report = ledger.prune(config.ledger.max_size, model.wv.key_to_index)
    if report.types:
        assert config.ledger.max_size is not None
        note = report.note(config.ledger.max_size)
        logger.warning("%s", note)
        notes.append(note)
    return {**report.to_dict(), "max_size": config.ledger.max_size}


# -- the kinds of version -------------------------------------------------------------


@dataclass
class Trained:
    """A model trained from scratch, with everything its version stores."""

    model: Any
    report: TrainReport
    ledger: Ledger
    replay: ReplayBuffer
    seconds: dict[str, float]


def train_new(
    config: Config, params: ModelParams, results: list[PassResult], workfile: Path
) -> Trained:
    """A model from scratch on ``workfile`` (a base, or a rebuild), its ledger, and a replay
    sample drawn from every corpus read."""
    t0 = time.perf_counter()
    ledger = Ledger()
    for res in results:
        ledger.add(res.counts, res.sentences)
    model, report = train_base(
        params, ledger, workfile, ledger.sentences, sum(r.tokens for r in results)
    )
    t1 = time.perf_counter()
    replay = ReplayBuffer(config.rehearsal.buffer_tokens, config.rehearsal.seed)
    absorb_file(replay, workfile)
    return Trained(model, report, ledger, replay,
                   {"train": t1 - t0, "replay": time.perf_counter() - t1})


def create_base(store: Store, config: Config, items: list[PendingCorpus]) -> VersionMeta:
    """The lineage's first version: trained on the base corpus, or an imported model."""
    if config.base.model is not None:
        return import_base_model(store, config)
    version = store.read_manifest().next_version(set())
    with store.workdir() as work, store.staging() as staging:
        workfile = work / "corpus.txt"
        t0 = time.perf_counter()
        records, results = read_into(store, config, items, workfile, version)
        t1 = time.perf_counter()
        trained = train_new(config, config.model, results, workfile)
        notes: list[str] = []
        pruned = prune_ledger(config, trained.ledger, trained.model, notes)
        draft = Draft(
            kind="base", parent=None, corpora=records, added=[r.name for r in records],
            vocab_size=trained.report.vocab_size, words_added=trained.report.words_added,
            top_new_words=trained.report.top_new_words, params=config.model.model_dump(),
            tokenize=config.tokenize.model_dump(), update_params={"ledger_pruned": pruned},
            timings={"read": t1 - t0, **trained.seconds}, notes=notes, base=base_record(config),
        )
        return commit_version(store, staging, config, trained.model, trained.ledger, draft,
                              trained.replay)


def import_base_model(store: Store, config: Config) -> VersionMeta:
    """Bring an existing full gensim model in as the lineage's first version."""
    assert config.base.model is not None
    path = config._resolve(config.base.model)
    if not path.is_file():
        raise InputMissingError(
            f"base model {path} does not exist", hint="check 'base.model' in the config"
        )
    t0 = time.perf_counter()
    # The user's own model file has no recorded hash: nothing in it may run code.
    try:
        model = load_saved(path, mmap=None)
    except NotWordVectors as exc:
        doc2vec = exc.gensim_class == "Doc2Vec"
        raise ConfigError(
            f"base model {path} is a {exc.gensim_class}, not a gensim Word2Vec or FastText "
            "model" + ("; gensim cannot update Doc2Vec vocabularies correctly (gensim issue "
                       "#1019)" if doc2vec else ""),
            hint="use a Word2Vec or FastText model saved with gensim's save()",
        ) from None
    except IncW2VError:
        raise
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
        name=printable(config.base.name or path.name),
        uri=f"model:{config.base.model}",
        fingerprint=Fingerprint(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha256_file(path)),
        sentences=ledger.sentences,
        tokens=ledger.tokens,
        applied_in=store.read_manifest().next_version(set()),
    )
    draft = Draft(
        kind="import", parent=None, corpora=[record], added=[record.name],
        vocab_size=len(model.wv), words_added=len(model.wv),
        top_new_words=list(model.wv.index_to_key[:20]), params=params,
        tokenize=config.tokenize.model_dump(), timings={"import": time.perf_counter() - t0},
        notes=["imported from an existing model: words below its min_count were never "
               "counted, so the ledger starts from the model's vocabulary"],
        base=base_record(config, model_sha256=record.fingerprint.sha256),
    )
    with store.staging() as staging:
        return commit_version(store, staging, config, model, ledger, draft)


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
            records, results = read_into(store, config, [item], workfile, version,
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
        epochs = config.update_epochs
        settings = config.rehearsal
        report = ReplayReport(share=settings.share, buffer_tokens=settings.buffer_tokens,
                              schedule=settings.schedule,
                              buffer_sentences=len(replay), buffer_held_tokens=replay.tokens,
                              buffer_seen=replay.seen)
        if settings.buffer_tokens and settings.share and not len(replay):
            notes.append("rehearsal: the replay buffer was empty, nothing was replayed")
        # Drawn from the buffer as it was before this corpus; then the corpus joins it.
        targets = replay_targets(settings.share, res.tokens, epochs, settings.schedule)
        *drawn, consolidating = replay.plan(
            [*targets, round(settings.consolidate * res.tokens)])
        absorb_file(replay, workfile)
        t2 = time.perf_counter()

        def epoch_file(epoch: int) -> EpochFile:
            fed = (EpochFile(workfile, res.sentences, res.tokens, 0, 0) if not drawn[epoch]
                   else write_epoch(workfile, drawn[epoch], work / "epoch.txt",
                                    res.sentences, res.tokens))
            report.add(fed)
            return fed

        def consolidation_file() -> EpochFile:
            fed = write_lines(consolidating, work / "consolidate.txt")
            report.add(fed)
            report.consolidation_tokens = fed.tokens
            return fed

        index = update_index(current)
        trained = apply_update(
            model, config.model, config.update, ledger, epoch_file, res.sentences, epochs,
            update_index=index,
            consolidation=(consolidation_file, settings.consolidate_alpha)
            if consolidating else None,
            planned_tokens=sum(res.tokens + min(t, report.buffer_held_tokens) for t in targets))
        t3 = time.perf_counter()
        pruned = prune_ledger(config, ledger, model, notes)
        draft = Draft(
            kind="update", parent=current.version, corpora=[*current.corpora, *records],
            added=[r.name for r in records], vocab_size=trained.vocab_size,
            words_added=trained.words_added, top_new_words=trained.top_new_words,
            params=config.model.model_dump(), tokenize=config.tokenize.model_dump(),
            update_params={
                **config.update.model_dump(),
                "epochs": trained.epochs,
                "update_index": index,
                "start_alpha": trained.alpha[0],
                "end_alpha": trained.alpha[1],
                "frozen_epochs": trained.frozen_epochs,
                "frozen_words": trained.frozen_words,
                "rehearsal": report.to_dict(),
                "ledger_pruned": pruned,
            },
            # "load": waiting for the parent after the pass (it loads during it).
            timings={"read": t1 - t0 - waited, "load": waited, "replay": t2 - t1,
                     "train": t3 - t2},
            notes=notes, base=lineage_base(config, current),
        )
        return commit_version(store, staging, config, model, ledger, draft, replay)


# -- committing -----------------------------------------------------------------------


def commit_version(
    store: Store,
    staging: Staging,
    config: Config,
    model: Any,
    ledger: Ledger,
    draft: Draft,
    replay: ReplayBuffer | None = None,
) -> VersionMeta:
    """Score the model, write its files into ``staging`` and commit them as a version."""
    # Scores are measured on the in-memory model before anything is written: versions are
    # immutable, and a failing evaluation then leaves nothing behind.
    assessment = assess(store, config, model, draft.parent, draft.kind)
    t0 = time.perf_counter()
    with Progress("committing", total=4, unit="steps") as progress:
        progress.milestone("started (model, ledger, hashing, fsync, manifest)")
        try:
            progress.set_note("model")
            staging.save_model(model)
            progress.update(1)
            progress.set_note("ledger and replay buffer")
            ledger.save(staging.path / LEDGER_FILE)
            if replay is not None and replay.budget:
                replay.save(staging.path / REPLAY_FILE)
            progress.update(1)
        except OSError as exc:
            raise os_error(exc, "saving the new version") from None
        draft.timings.update(save=time.perf_counter() - t0, evaluate=assessment.seconds)
        progress.set_note("hashing, fsync, manifest")
        meta = store.commit(staging, {**draft.fields(), **assessment.fields},
                            make_current=assessment.passed)
        progress.update(2)
    parent_scores = store.read_meta(meta.parent).scores if meta.parent else None
    logger.info(
        "committed %s (%s: %s), vocabulary %d (+%d): %s",
        meta.version, meta.kind, ", ".join(meta.added) or f"all corpora of {meta.parent}",
        meta.vocab_size, meta.words_added,
        quality_line(meta.scores, parent_scores, meta.drift.get("parent")),
    )
    return meta
