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
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from incremental_w2v.config.schema import Config, CorpusEntry
from incremental_w2v.errors import DataError, IncW2VError, InputMissingError
from incremental_w2v.ingest.corpus import CorpusSpec, content_sha256
from incremental_w2v.ingest.fingerprint import SourceOptions, SourceStat, stat
from incremental_w2v.store.manifest import CorpusRecord, Manifest, VersionMeta
from incremental_w2v.store.store import Store
from incremental_w2v.uris import as_recorded, corpus_key, expand, redact

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
    return SourceOptions(s3_endpoint_url=config.sources.s3_endpoint_url)


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
        if redact(gone) not in applied:
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
            name=(entry.name if single and entry.name else _label(entry, uri)),
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
    applied = {rec.uri: rec for rec in current.corpora} if current else {}

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
        first = current.corpora[0].applied_in
        for rec in current.corpora:
            if rec.applied_in == first:  # the base corpora are not in the queue; check them too
                with noted():
                    _check_unchanged(config, rec, options)
    entries = [*config.queue, *(CorpusEntry(uri=u) for u in extra_uris)]
    seen: set[str] = {p.spec.uri for p in plan.base}
    for entry in entries:
        specs: list[CorpusSpec] = []
        with noted():
            specs = specs_for(config, entry, required=False, applied=applied)
        for spec in specs:
            if spec.uri in seen:
                continue
            seen.add(spec.uri)
            done = applied.get(redact(spec.uri))
            with noted():
                if done is not None:
                    _check_unchanged(config, done, options)
                    plan.skipped.append({"name": done.name, "uri": done.uri,
                                         "reason": f"applied in {done.applied_in}"})
                    continue
                plan.pending.append(
                    PendingCorpus(spec, stat(spec.uri, config.base_dir, options)))
    _screen(store, config, plan)
    return plan


def held_corpora(store: Store, manifest: Manifest) -> dict[str, tuple[str, str]]:
    """URI -> (version, status) of corpora added by candidates of ``current`` and rejects."""
    held: dict[str, tuple[str, str]] = {}
    for entry in manifest.versions:
        blocking = entry.status == "candidate" and entry.parent == manifest.current
        if not (blocking or entry.status == "rejected") or entry.kind != "update":
            continue
        meta = store.read_meta(entry.version)
        for rec in meta.corpora:
            if rec.applied_in == entry.version:
                held.setdefault(rec.uri, (entry.version, entry.status))
    return held


def _screen(store: Store, config: Config, plan: Plan) -> None:
    """Skip excluded and rejected corpora; stop at a corpus awaiting review."""
    manifest = store.read_manifest()
    held = held_corpora(store, manifest)
    excluded = {x.key: x for x in manifest.exclusions}
    kept: list[PendingCorpus] = []
    for index, item in enumerate(plan.pending):
        exclusion = excluded.get(corpus_key(item.spec.uri, config.base_dir))
        if exclusion is not None:
            why = f": {exclusion.reason}" if exclusion.reason else ""
            plan.skipped.append({"name": item.spec.name, "uri": redact(item.spec.uri),
                                 "reason": f"excluded on {exclusion.at}{why}"})
            continue
        version_status = held.get(redact(item.spec.uri))
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
    store = Store(config.store_path)
    manifest = store.read_manifest()
    current = store.current_meta(manifest)
    plan = plan_run(store, config, current, collect=True)
    in_lineage = {corpus_key(r.uri, config.base_dir) for r in (current.corpora if current else [])}
    pending = [
        {"name": p.spec.name, "uri": redact(p.spec.uri), "base": True} for p in plan.base
    ] + [{"name": p.spec.name, "uri": redact(p.spec.uri), "base": False} for p in plan.pending]
    held = plan.held
    return Status(
        store=str(store.root),
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


def _check_unchanged(config: Config, rec: CorpusRecord, options: SourceOptions) -> None:
    if rec.uri.startswith("model:"):
        return
    try:
        now = stat(rec.uri, config.base_dir, options)
    except InputMissingError:
        # Old dumps may be deleted or archived once applied; the lineage keeps their record.
        return
    if fingerprint_matches(rec, now):
        return
    if not now.rereadable:
        logger.warning("%s is a pipe or device: it cannot be re-read to check that it is "
                       "unchanged; treating it as applied in %s", rec.uri, rec.applied_in)
        return
    sha = content_sha256(rec.uri, config.base_dir, options)
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

