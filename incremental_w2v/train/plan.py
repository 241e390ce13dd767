"""The one planner: which corpora a run applies, skips or holds, and ``status``.

Pending is the queue minus what the current lineage applied, minus the
corpora of rejected candidates and the corpora excluded from the lineage
(both skipped, and said so), up to the first corpus a candidate of the
current version holds for review (the run stops there). ``add-corpus`` and
``status`` both ask :func:`plan_run`, so they never disagree; ``status``
collects the problems that would stop a run instead of stopping on them.

A corpus is recognised by its URI (as written in the config) and its
fingerprint. Size and mtime (ETag and size for remote objects) are the cheap
check: when they match, nothing is read. When they differ, the content hash
decides: the same bytes (a ``touch``) are still applied; different bytes
under an applied URI stop the run, since silently training on a changed dump
would make the lineage lie.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from incremental_w2v.config.schema import Config, CorpusEntry
from incremental_w2v.errors import ConfigError, DataError, IncW2VError, InputMissingError
from incremental_w2v.fsutil import sha256_file
from incremental_w2v.ingest.corpus import CorpusSpec, content_sha256
from incremental_w2v.ingest.fingerprint import SourceOptions, SourceStat, stat
from incremental_w2v.store.location import open_store
from incremental_w2v.store.manifest import CorpusRecord, Manifest, VersionMeta
from incremental_w2v.store.store import Store
from incremental_w2v.uris import as_recorded, corpus_key, expand, printable, redact

logger = logging.getLogger(__name__)


@dataclass
class PendingCorpus:
    spec: CorpusSpec
    stat: SourceStat


@dataclass
class Held:
    """A corpus that a candidate of the current version added: it awaits review."""

    corpus: PendingCorpus
    version: str
    failures: str
    waiting: int  # later pending corpora that wait behind it


@dataclass
class Plan:
    base: list[PendingCorpus] = field(default_factory=list)  # only when there is no version yet
    pending: list[PendingCorpus] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    held: Held | None = None
    # With ``collect``: what would stop a run (a changed or missing corpus), as errors.
    problems: list[IncW2VError] = field(default_factory=list)


def source_options(config: Config) -> SourceOptions:
    return SourceOptions(s3_endpoint_url=config.sources.s3_endpoint_url,
                         stall_timeout=config.sources.stall_timeout)


def specs_for(
    config: Config, entry: CorpusEntry, required: bool, applied: Collection[str] = ()
) -> list[CorpusSpec]:
    """The concrete corpora a config entry stands for (globs and folders expanded).

    A plain file named in ``applied`` (the lineage's recorded URIs) may be gone:
    old dumps are deleted or archived once applied, and their record stays.
    """
    try:
        uris = expand(entry.uri, config.base_dir)
    except InputMissingError:
        gone = as_recorded(entry.uri, config.base_dir)
        if corpus_key(gone, config.base_dir) not in applied:
            raise
        uris = [gone]
    if not uris and required:
        raise InputMissingError(
            f"the base corpus {redact(entry.uri)} matches no file",
            hint="check the path or glob in 'base.corpus'",
        )
    if not uris:
        logger.info("queue entry %s matches no file yet", redact(entry.uri))
    single = len(uris) == 1 and uris[0] == entry.uri
    return [
        CorpusSpec(
            uri=uri,
            # A label only, shown and recorded: escaped once here (a file name in a queued
            # folder may hold a newline, or bytes that are not UTF-8).
            name=printable(entry.name if single and entry.name else _label(entry, uri)),
            format=entry.format,
            tokenize=config.tokenize_for(entry),
            encoding_errors=config.encoding_errors_for(entry),
        )
        for uri in uris
    ]


def _label(entry: CorpusEntry, uri: str) -> str:
    leaf = PurePosixPath(uri.split("?", 1)[0]).name or uri
    return f"{entry.name}/{leaf}" if entry.name else leaf


def plan_run(
    store: Store, config: Config, current: VersionMeta | None, extra_uris: tuple[str, ...] = (),
    collect: bool = False,
) -> Plan:
    """What a run would do now, for the lineage whose current version is ``current``.

    ``collect``: record in ``plan.problems`` what would stop the run (a changed applied
    corpus, a missing one) and go on, as ``status`` must; a run raises the first.
    """
    plan = Plan()
    options = source_options(config)
    key = partial(corpus_key, base_dir=config.base_dir)
    if current is not None:
        check_same_base(config, current)
    applied = {key(rec.uri): rec for rec in current.corpora} if current else {}

    @contextmanager
    def noted() -> Iterator[None]:
        try:
            yield
        except (DataError, InputMissingError) as exc:
            if not collect:
                raise
            plan.problems.append(exc)

    if current is None and config.base.corpus is not None:
        with noted():
            for spec in specs_for(config, config.base.as_entry(), required=True):
                plan.base.append(PendingCorpus(spec, stat(spec.uri, config.base_dir, options)))
    elif current is not None and current.corpora:
        for rec in base_records(current):  # the base corpora are not in the queue; check them
            with noted():
                _check_unchanged(config, rec, options)
    entries = [*config.queue, *(CorpusEntry(uri=u) for u in extra_uris)]
    listed: set[str] = set()
    seen: dict[str, str] = {key(p.spec.uri): p.spec.uri for p in plan.base}
    for entry in entries:
        specs: list[CorpusSpec] = []
        with noted():
            specs = specs_for(config, entry, required=False, applied=applied)
        for spec in specs:
            first = seen.setdefault(key(spec.uri), spec.uri)
            if first != spec.uri:  # the same file under another spelling: said, not read
                plan.skipped.append({"name": spec.name, "uri": redact(spec.uri),
                                     "reason": f"the same file as {redact(first)}"})
            if first != spec.uri or spec.uri in listed:
                continue
            listed.add(spec.uri)
            done = applied.get(key(spec.uri))
            with noted():
                if done is not None:
                    _check_unchanged(config, done, options, spec.uri)
                    plan.skipped.append({"name": done.name, "uri": done.uri,
                                         "reason": f"applied in {done.applied_in}"})
                    continue
                plan.pending.append(
                    PendingCorpus(spec, stat(spec.uri, config.base_dir, options)))
    with noted():
        _skip_same_content(config, plan, current.corpora if current else [], options)
    _screen(store, config, plan)
    return plan


def _skip_same_content(config: Config, plan: Plan, applied: list[CorpusRecord],
                       options: SourceOptions) -> None:
    """A pending corpus with the bytes of one already applied (a copy, a hard or symbolic
    link, another URL of the same object) is skipped, and said so: training twice on the
    same text would weigh it double. Only a size that matches another's is hashed."""
    sizes = Counter(p.stat.size for p in plan.pending if p.stat.size and p.stat.rereadable)
    by_size: dict[int, list[CorpusRecord]] = {}
    for rec in applied:
        if rec.fingerprint.size:
            by_size.setdefault(rec.fingerprint.size, []).append(rec)
    first_of: dict[str, str] = {}  # sha256 -> the pending corpus that has it
    kept: list[PendingCorpus] = []
    for item in plan.pending:
        size = item.stat.size
        if not size or not item.stat.rereadable or (size not in by_size and sizes[size] < 2):
            kept.append(item)
            continue
        sha = content_sha256(item.spec.uri, config.base_dir, options)
        same = next((r for r in by_size.get(size, []) if r.fingerprint.sha256 == sha), None)
        if same is not None:
            reason = f"same content as {same.uri} ({same.name}), applied in {same.applied_in}"
        elif sha in first_of:
            reason = f"same content as {first_of[sha]}, pending in this run"
        else:
            first_of[sha] = redact(item.spec.uri)
            kept.append(item)
            continue
        logger.warning("skipping %s: %s (remove it from the queue)", redact(item.spec.uri),
                       reason)
        plan.skipped.append({"name": item.spec.name, "uri": redact(item.spec.uri),
                             "reason": reason})
    plan.pending = kept


# -- the base of a lineage ------------------------------------------------------------


def base_records(current: VersionMeta) -> list[CorpusRecord]:
    """The corpora (or the imported model) a lineage started from."""
    if not current.corpora:
        return []
    first = current.corpora[0].applied_in
    return [rec for rec in current.corpora if rec.applied_in == first]


def base_record(config: Config, model_sha256: str | None = None) -> dict[str, str]:
    """What a new lineage records as its base (see ``VersionMeta.base``)."""
    if config.base.model is not None:
        found = {"model": corpus_key(str(config._resolve(config.base.model)), config.base_dir)}
        return {**found, "sha256": model_sha256} if model_sha256 else found
    assert config.base.corpus is not None
    return {"corpus": corpus_key(config.base.corpus, config.base_dir)}


def lineage_base(config: Config, current: VersionMeta) -> dict[str, str]:
    """The base a new version of ``current``'s lineage records: its parent's."""
    if current.base:
        return dict(current.base)
    records = base_records(current)  # written before the base was recorded
    if records and records[0].uri.startswith("model:"):
        path = config._resolve(records[0].uri[len("model:"):])
        return {"model": corpus_key(str(path), config.base_dir),
                "sha256": records[0].fingerprint.sha256}
    return {}


def check_same_base(config: Config, current: VersionMeta) -> None:
    """Raise ConfigError (78) when ``config`` names another base than the store's lineage:
    its runs would silently continue someone else's lineage."""
    problem = _base_problem(config, current)
    if problem is None:
        return
    raise ConfigError(
        f"the store {config.store_location} holds a lineage started from another base: "
        f"{problem}",
        hint="a config with another base needs its own store (change 'store:'); if the base "
        "file only moved, restore 'base:' as it was, or point it at the same bytes",
    )


def _base_problem(config: Config, current: VersionMeta) -> str | None:
    records = base_records(current)
    recorded = current.base
    imported = recorded.get("model") is not None or bool(
        records and records[0].uri.startswith("model:"))
    if imported:
        if config.base.model is None:
            return (f"the lineage imported a model, the config names the corpus "
                    f"{redact(config.base.corpus or '')}")
        path = config._resolve(config.base.model)
        if recorded.get("model") == corpus_key(str(path), config.base_dir):
            return None
        sha = recorded.get("sha256") or (records[0].fingerprint.sha256 if records else "")
        if sha and path.is_file() and sha256_file(path) == sha:
            return None  # the same model, moved
        return (f"the lineage imported {recorded.get('model') or records[0].uri}, the config "
                f"names the model {redact(str(path))}")
    if config.base.corpus is None:
        return (f"the lineage started from the corpus {recorded.get('corpus') or ''}, the "
                f"config names the model {redact(config.base.model or '')}")
    if recorded.get("corpus") == corpus_key(config.base.corpus, config.base_dir):
        return None
    # Spelt otherwise, or the project moved: the base corpora must still be the config's.
    return _old_base_problem(config, records) if records else None


def _old_base_problem(config: Config, records: list[CorpusRecord]) -> str | None:
    """A lineage that did not record its base: its base corpora must be the config's."""
    shown = ", ".join(r.uri for r in records[:3])
    if config.base.corpus is None:
        return f"the lineage started from the corpora {shown}, the config names a model"
    key = partial(corpus_key, base_dir=config.base_dir)
    try:
        named = {key(s.uri) for s in specs_for(config, config.base.as_entry(), required=False)}
    except InputMissingError:
        named = set()
    if not named:  # the base files were deleted once applied: their recorded names
        named.add(key(as_recorded(config.base.corpus, config.base_dir)))
    started = {key(r.uri) for r in records}
    # The same files (some may have been deleted since), and none that the lineage lacks.
    if named & started and not named - started:
        return None
    return f"the lineage started from {shown}, the config names {redact(config.base.corpus)}"


def held_corpora(store: Store, manifest: Manifest, base_dir: Path
                 ) -> dict[str, tuple[str, str]]:
    """Key -> (version, status) of corpora added by candidates of ``current`` and rejects."""
    held: dict[str, tuple[str, str]] = {}
    for entry in manifest.versions:
        blocking = entry.status == "candidate" and entry.parent == manifest.current
        if not (blocking or entry.status == "rejected") or entry.kind != "update":
            continue
        meta = store.read_meta(entry.version)
        for rec in meta.corpora:
            if rec.applied_in == entry.version:
                held.setdefault(corpus_key(rec.uri, base_dir), (entry.version, entry.status))
    return held


def _screen(store: Store, config: Config, plan: Plan) -> None:
    """Skip excluded and rejected corpora; stop at a corpus awaiting review."""
    manifest = store.read_manifest()
    held = held_corpora(store, manifest, config.base_dir)
    excluded = {x.key: x for x in manifest.exclusions}
    kept: list[PendingCorpus] = []
    for index, item in enumerate(plan.pending):
        key = corpus_key(item.spec.uri, config.base_dir)
        exclusion = excluded.get(key)
        if exclusion is not None:
            why = f": {exclusion.reason}" if exclusion.reason else ""
            plan.skipped.append({"name": item.spec.name, "uri": redact(item.spec.uri),
                                 "reason": f"excluded on {exclusion.at}{why}"})
            continue
        version_status = held.get(key)
        if version_status is None:
            kept.append(item)
            continue
        version, state = version_status
        if state == "rejected":
            plan.skipped.append({"name": item.spec.name, "uri": redact(item.spec.uri),
                                 "reason": f"rejected in {version}"})
            continue
        meta = store.read_meta(version)
        failures = "; ".join(meta.gate.get("failures", [])) or "failed the quality gate"
        plan.held = Held(item, version, failures, len(plan.pending) - index - 1)
        break
    plan.pending = kept


@dataclass
class Status:
    """``status``: the current version and what a run would do now.

    ``problems`` are what would stop the next run (a changed or missing corpus), each
    with its hint: status still shows the state, and exits 0 (it is read-only).
    """

    store: str
    current: str | None
    vocab_size: int | None
    versions: int
    candidates: list[str]
    applied: int
    pending: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    awaiting_review: dict[str, Any] | None
    excluded: list[dict[str, Any]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(config: Config) -> Status:
    """The current version and what ``add-corpus`` would apply, skip or hold now."""
    store = open_store(config, must_exist=False)
    manifest = store.read_manifest()
    current = store.current_meta(manifest)
    plan = plan_run(store, config, current, collect=True)
    in_lineage = {corpus_key(r.uri, config.base_dir) for r in (current.corpora if current else [])}
    pending = [
        {"name": p.spec.name, "uri": redact(p.spec.uri), "base": True} for p in plan.base
    ] + [{"name": p.spec.name, "uri": redact(p.spec.uri), "base": False} for p in plan.pending]
    held = plan.held
    return Status(
        store=store.location,
        current=current.version if current else None,
        vocab_size=current.vocab_size if current else None,
        versions=len(manifest.versions),
        candidates=[v.version for v in manifest.versions if v.status == "candidate"],
        applied=len(current.corpora) if current else 0,
        pending=pending,
        skipped=[s for s in plan.skipped if s["reason"].startswith(("rejected", "excluded"))],
        awaiting_review=None if held is None else {
            "name": held.corpus.spec.name, "uri": redact(held.corpus.spec.uri),
            "version": held.version, "failures": held.failures, "waiting": held.waiting,
        },
        excluded=[{**x.model_dump(), "in_current": x.key in in_lineage}
                  for x in manifest.exclusions],
        pruned=[v.version for v in manifest.versions if v.pruned_at is not None],
        problems=[{"error": e.message, "hint": e.hint or "", "kind": type(e).__name__}
                  for e in plan.problems],
    )


def fingerprint_matches(rec: CorpusRecord, now: SourceStat) -> bool:
    """The cheap check: do size and mtime (or ETag) still match?"""
    fp = rec.fingerprint
    if fp.size is not None and now.size is not None and fp.size != now.size:
        return False
    if fp.etag is not None and now.etag is not None:
        return fp.etag == now.etag
    if fp.mtime_ns is not None and now.mtime_ns is not None:
        return fp.mtime_ns == now.mtime_ns
    return False


def _check_unchanged(config: Config, rec: CorpusRecord, options: SourceOptions,
                     uri: str | None = None) -> None:
    """``uri``: where the config says the corpus is (the recorded URI is redacted)."""
    if rec.uri.startswith("model:"):
        return
    if uri is None:
        if redact(rec.uri) != rec.uri or "***" in rec.uri:
            return  # masked: not a URI that can be read; the queue's own entry is checked
        uri = rec.uri
    try:
        now = stat(uri, config.base_dir, options)
    except InputMissingError:
        # Old dumps may be deleted or archived once applied; the lineage keeps their record.
        return
    if fingerprint_matches(rec, now):
        return
    if not now.rereadable:
        logger.warning("%s is a pipe or device: it cannot be re-read to check that it is "
                       "unchanged; treating it as applied in %s", rec.uri, rec.applied_in)
        return
    sha = content_sha256(uri, config.base_dir, options)
    if sha == rec.fingerprint.sha256:
        logger.info("%s was touched but its content is unchanged", rec.uri)
        return
    was = rec.fingerprint
    raise DataError(
        f"corpus {rec.uri} ({rec.name}) changed since it was applied in {rec.applied_in}: "
        f"size {was.size} -> {now.size}, sha256 {was.sha256[:12]}… -> {sha[:12]}…",
        hint="a new dump should arrive under a new file name; to apply the new content "
        f"instead, roll back to the version before {rec.applied_in} "
        "('incw2v rollback CONFIG VERSION') and re-run, or 'incw2v rebuild'",
    )

