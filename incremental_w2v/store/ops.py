"""Looking at and steering a lineage: history, rollback, exclude, prune, export, promote, reject.

Read-only commands take no lock: the manifest is replaced atomically and
committed versions never change, so a reader always sees a consistent store;
a reader pins the version it reads so that ``prune`` cannot delete it. The
commands that change the manifest hold the store's lock. Every command
returns a dataclass whose ``to_dict`` is its ``--json`` output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from incremental_w2v.config.needs import require
from incremental_w2v.config.schema import Config, load_config
from incremental_w2v.errors import DataError, InputMissingError, OutputError, UsageError
from incremental_w2v.fsutil import atomic_outputs, check_output_folder
from incremental_w2v.store.location import open_store
from incremental_w2v.store.locking import locked
from incremental_w2v.store.manifest import (
    VERSION_REF,
    CorpusRecord,
    Event,
    Exclusion,
    Manifest,
    VersionEntry,
    VersionMeta,
    now_iso,
)
from incremental_w2v.store.publish import publish_current
from incremental_w2v.store.store import Store
from incremental_w2v.uris import COMMAND_LINE, check_uri, corpus_key, expand, redact, scheme_of
from incremental_w2v.vectors.formats import EXPORT_FORMATS
from incremental_w2v.vectors.io import LoadedVectors, load_vectors, write_vectors
from incremental_w2v.vectors.model_file import save_gensim_model
from incremental_w2v.vectors.ranking import counts_of

logger = logging.getLogger(__name__)



def existing_store(config: Config) -> Store:
    return open_store(config)


# -- history ----------------------------------------------------------------------------


@dataclass
class VersionRow:
    """One version of ``history``, with its whole lineage record."""

    version: str
    created_at: str
    current: bool
    status: str
    kind: str
    parent: str | None
    added: list[str]
    corpora: list[dict[str, Any]]
    vocab_size: int
    words_added: int
    top_new_words: list[str]
    params: dict[str, Any]
    update_params: dict[str, Any]
    tokenize: dict[str, Any]
    scores: dict[str, Any]
    gate: dict[str, Any]
    drift: dict[str, Any]
    watch: dict[str, Any]
    timings: dict[str, float]
    notes: list[str]
    events: list[dict[str, str]] = field(default_factory=list)
    pruned_at: str | None = None  # its arrays were deleted; this record stays

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    """``history``: every version, oldest first; and the corpora excluded from the lineage."""

    versions: list[VersionRow]
    exclusions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"versions": [row.to_dict() for row in self.versions],
                "exclusions": self.exclusions}


def history(config: Config) -> History:
    """Every version, oldest first, with its lineage (pruned ones too, marked)."""
    store = existing_store(config)
    manifest = store.read_manifest()
    rows = []
    for entry in manifest.versions:
        row = _row(store.read_meta(entry.version), entry.status, manifest.current)
        row.pruned_at = entry.pruned_at
        # Overrides (promote, reject, rollback, exclude) are part of a version's story.
        row.events = [
            {"at": e.at, "action": e.action, "detail": e.detail}
            for e in manifest.events
            if e.version == entry.version and not e.action.startswith("commit-")
        ]
        rows.append(row)
    return History(rows, [x.model_dump() for x in manifest.exclusions])


def _row(meta: VersionMeta, status: str, current: str | None) -> VersionRow:
    return VersionRow(
        version=meta.version,
        created_at=meta.created_at,
        current=meta.version == current,
        status=status,
        kind=meta.kind,
        parent=meta.parent,
        added=meta.added,
        corpora=[
            {
                "name": c.name,
                "uri": c.uri,
                "fingerprint": c.fingerprint.sha256,
                "size": c.fingerprint.size,
                "sentences": c.sentences,
                "tokens": c.tokens,
                "applied_in": c.applied_in,
            }
            for c in meta.corpora
        ],
        vocab_size=meta.vocab_size,
        words_added=meta.words_added,
        top_new_words=meta.top_new_words,
        params=meta.params,
        update_params=meta.update_params,
        tokenize=meta.tokenize,
        scores=meta.scores,
        gate=meta.gate,
        drift=meta.drift,
        watch=meta.watch,
        timings=meta.timings,
        notes=meta.notes,
    )


# -- changing which version is current --------------------------------------------------


@dataclass
class Moved:
    """``rollback`` and ``promote``: which version is current now, and which was."""

    current: str
    previous: str | None
    overrode: list[str] = field(default_factory=list)  # promote: the gate failures overridden
    rolled_back: list[str] = field(default_factory=list)  # rollback: corpora taken out (URIs)
    excluded: list[str] = field(default_factory=list)  # ... and excluded (--exclude-rolled-back)
    published: list[str] = field(default_factory=list)  # publish targets written

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollback(config: Config, version: str, wait: float = 0.0,
             exclude_rolled_back: bool = False) -> Moved:
    """Make another committed version current (older or newer); the corpora it has not
    applied become pending again, unless ``exclude_rolled_back`` excludes them."""
    require(config.publish_locations())  # before the current version moves
    with locked(config, "rollback", wait) as store:
        version = store.resolve(version)
        manifest = store.read_manifest()
        before = manifest.current
        entry = manifest.entry(version)
        if entry is not None and entry.status != "committed":
            # Making a refused version current is an override: it has its own command.
            raise UsageError(
                f"{version} is a {entry.status} version (it failed a quality gate)",
                hint=f"'incw2v promote CONFIG {version}' makes it current and records the "
                "override",
            )
        target = store.read_meta(version)
        taken_out = _rolled_back(config, store.read_meta(before), target) if before else []
        if before == version:
            store.verify(version)  # already current: nothing to write, re-runs are no-ops
        else:
            store.set_current(version, "rollback", f"from {before}")
        moved = Moved(current=version, previous=before, rolled_back=[r.uri for r in taken_out])
        if exclude_rolled_back and taken_out:
            reason = f"rolled back from {before} to {version}"
            added = _exclude(store, [_exclusion(config, r, reason) for r in taken_out])
            moved.excluded = [x.uri for x in added]
        moved.published = publish_current(store, config)
    return moved


def _rolled_back(config: Config, before: VersionMeta, after: VersionMeta) -> list[CorpusRecord]:
    """The corpora of ``before``'s lineage that ``after``'s does not hold."""
    kept = {corpus_key(r.uri, config.base_dir) for r in after.corpora}
    return [r for r in before.corpora if corpus_key(r.uri, config.base_dir) not in kept]


# -- exclusions -------------------------------------------------------------------------


@dataclass
class Excluded:
    """``exclude`` / ``unexclude``: what changed, and every exclusion now in force."""

    changed: list[dict[str, Any]]
    exclusions: list[dict[str, Any]]
    in_current: list[str] = field(default_factory=list)  # excluded, yet applied by current

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _exclusion(config: Config, rec: CorpusRecord, reason: str) -> Exclusion:
    return Exclusion(key=corpus_key(rec.uri, config.base_dir), uri=rec.uri, name=rec.name,
                     reason=reason, at=now_iso(), version=rec.applied_in)


def _targets(config: Config, store: Store, targets: Sequence[str], reason: str
             ) -> list[Exclusion]:
    """What each target names: every corpus a version applied, or a URI (resolved against
    the current folder, as every URI given to a command is)."""
    manifest = store.read_manifest()
    found: list[Exclusion] = []
    for target in targets:
        if VERSION_REF.match(target) and not Path(target).exists():
            version = store.resolve(target)
            meta = store.read_meta(version)
            found += [_exclusion(config, r, reason) for r in meta.corpora
                      if r.applied_in == version]
            continue
        check_uri(target)
        try:
            uris = expand(target, Path.cwd(), COMMAND_LINE) or [target]
        except InputMissingError:
            uris = [target]  # a dump that has not arrived yet may be excluded in advance
        for uri in uris:
            key = corpus_key(uri, Path.cwd())
            applied = _applied_in(store, manifest, config, key)
            found.append(Exclusion(key=key, uri=redact(uri), name=None, reason=reason,
                                   at=now_iso(), version=applied))
    return found


def _applied_in(store: Store, manifest: Manifest, config: Config, key: str) -> str | None:
    """The version that applied the corpus ``key`` in the current lineage, if any."""
    current = store.current_meta(manifest)
    for rec in current.corpora if current else []:
        if corpus_key(rec.uri, config.base_dir) == key:
            return rec.applied_in
    return None


def _exclude(store: Store, new: list[Exclusion]) -> list[Exclusion]:
    """Record ``new`` exclusions (those not in force already) and their events."""
    manifest = store.read_manifest()
    have = {x.key for x in manifest.exclusions}
    added = []
    for item in new:
        if item.key in have:
            continue
        have.add(item.key)
        added.append(item)
        manifest.exclusions.append(item)
        manifest.events.append(Event(at=item.at, action="exclude", version=item.version,
                                     detail=f"{item.uri}" + (f": {item.reason}"
                                                              if item.reason else "")))
    if added:
        store.write_manifest(manifest)
    return added


def exclude(config: Config, targets: Sequence[str], reason: str = "", wait: float = 0.0
            ) -> Excluded:
    """Keep corpora out of the lineage: the planner skips them until they are unexcluded."""
    with locked(config, "exclude", wait) as store:
        added = _exclude(store, _targets(config, store, targets, reason))
        manifest = store.read_manifest()
        current = store.current_meta(manifest)
        applied = {corpus_key(r.uri, config.base_dir): r for r in
                   (current.corpora if current else [])}
    in_current = [x.uri for x in manifest.exclusions if x.key in applied]
    if in_current:
        logger.warning(
            "the current version %s already holds %s; excluding stops later runs from "
            "applying them again, and 'incw2v rollback CONFIG VERSION' to a version before "
            "them takes them out", manifest.current, ", ".join(in_current))
    return Excluded(changed=[x.model_dump() for x in added],
                    exclusions=[x.model_dump() for x in manifest.exclusions],
                    in_current=in_current)


def unexclude(config: Config, targets: Sequence[str], wait: float = 0.0) -> Excluded:
    """Undo exclusions: later runs apply those corpora again (if the queue names them)."""
    with locked(config, "unexclude", wait) as store:
        manifest = store.read_manifest()
        keys = set()
        for target in targets:
            if VERSION_REF.match(target) and not Path(target).exists():
                version = store.resolve(target)
                keys |= {x.key for x in manifest.exclusions if x.version == version}
            else:
                keys |= {x.key for x in _targets(config, store, [target], "")}
        gone = [x for x in manifest.exclusions if x.key in keys]
        if not gone:
            known = ", ".join(x.uri for x in manifest.exclusions) or "none"
            raise UsageError(f"no exclusion matches {', '.join(targets)} (excluded: {known})",
                             hint="see 'incw2v status CONFIG' for the exclusions in force")
        manifest.exclusions = [x for x in manifest.exclusions if x.key not in keys]
        for x in gone:
            manifest.events.append(Event(at=now_iso(), action="unexclude", version=x.version,
                                         detail=x.uri))
        store.write_manifest(manifest)
    return Excluded(changed=[x.model_dump() for x in gone],
                    exclusions=[x.model_dump() for x in manifest.exclusions])


@contextmanager
def _locked_entry(config: Config, ref: str, command: str, wait: float
                  ) -> Iterator[tuple[Store, Manifest, VersionEntry]]:
    """Under the store's lock: the store, its manifest and the entry ``ref`` names."""
    with locked(config, command, wait) as store:
        version = store.resolve(ref)
        manifest = store.read_manifest()
        entry = manifest.entry(version)
        assert entry is not None
        yield store, manifest, entry


def promote(config: Config, version: str, wait: float = 0.0) -> Moved:
    """Make a candidate (or rejected) version current against its gate verdict."""
    require(config.publish_locations())  # before the current version moves
    with _locked_entry(config, version, "promote", wait) as (store, manifest, entry):
        version = entry.version
        if entry.status == "committed":
            raise UsageError(
                f"{version} is not a candidate (it passed its gates or was promoted already)",
                hint="'incw2v rollback CONFIG VERSION' makes any committed version current",
            )
        meta = store.read_meta(version)
        failures = "; ".join(meta.gate.get("failures", [])) or "no gate verdict"
        before = manifest.current
        store.set_current(version, "promote", f"was {entry.status}, current was {before}; "
                          f"overrides: {failures}")
        published = publish_current(store, config)
    logger.info("promoted %s over its gate verdict (%s)", version, failures)
    return Moved(current=version, previous=before, overrode=meta.gate.get("failures", []),
                 published=published)


@dataclass
class Rejected:
    """``reject``: the candidate refused, and the corpora later runs skip."""

    version: str
    skipped_from_now_on: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reject(config: Config, version: str, wait: float = 0.0) -> Rejected:
    """Mark a candidate rejected: later runs skip the corpora it added."""
    with _locked_entry(config, version, "reject", wait) as (store, manifest, entry):
        version = entry.version
        if entry.status != "candidate":
            raise UsageError(f"{version} is not a candidate (status {entry.status})",
                             hint="only a version a gate refused can be rejected")
        entry.status = "rejected"
        manifest.events.append(Event(at=now_iso(), action="reject", version=version,
                                     detail=", ".join(entry.added)))
        store.write_manifest(manifest)
    return Rejected(version=version, skipped_from_now_on=entry.added)


# -- prune ------------------------------------------------------------------------------


@dataclass
class Pruned:
    """``prune`` (and retention): whose arrays were deleted, and what was kept and why."""

    deleted: list[str]  # their arrays are gone; their lineage records stay
    held: list[str]  # kept this time: a reader has them open
    kept: list[str]
    current: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune(config: Config, keep: int, wait: float = 0.0) -> Pruned:
    """Delete the arrays of all but the ``keep`` newest versions (never the current one,
    the last rebuild or a candidate awaiting review); every lineage record stays."""
    if keep < 1:
        raise UsageError("--keep must be at least 1")
    with locked(config, "prune", wait) as store:
        return prune_locked(store, keep)


def prune_locked(store: Store, keep: int) -> Pruned:
    """``prune`` under the store's lock: also the config's ``retention:`` after a commit."""
    manifest = store.read_manifest()
    names = [v.version for v in manifest.versions]
    kept = set(names[-keep:])
    if manifest.current:
        kept.add(manifest.current)
        # The gap to the last rebuild is measured against its arrays at every commit.
        kept.add(store.last_rebuild(manifest.current) or manifest.current)
        kept |= {v.version for v in manifest.versions
                 if v.status == "candidate" and v.parent == manifest.current}
    doomed = [v.version for v in manifest.versions
              if v.version not in kept and v.pruned_at is None]
    # A version a reader holds open is kept this time (see pins).
    pruned, held = store.prune_versions(doomed) if doomed else ([], [])
    if held:
        logger.warning("kept %s: a reader has it open; prune again later", ", ".join(held))
    if pruned:
        logger.info("pruned %s: arrays deleted, lineage records kept", ", ".join(pruned))
    return Pruned(deleted=pruned, held=held, kept=sorted(kept | set(held)),
                  current=manifest.current)


# -- publish ----------------------------------------------------------------------------


@dataclass
class Published:
    """``publish``: the version written, and the targets it was written to."""

    version: str | None
    targets: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def publish(config: Config, wait: float = 0.0) -> Published:
    """Write the current version to every ``publish:`` target now, even if up to date."""
    if not config.publish:
        raise UsageError("the config has no 'publish:' targets",
                         hint="add e.g. 'publish: [{to: /srv/models/news, formats: "
                         "[word2vec-binary]}]' (docs/publish.md)")
    require(config.publish_locations())
    with locked(config, "publish", wait) as store:
        written = publish_current(store, config, force=True)
        current = store.read_manifest().current
    if current is None:
        raise InputMissingError(f"store {store.location} has no current version",
                                hint="run 'incw2v add-corpus CONFIG' first")
    return Published(version=current, targets=written)


# -- repair -----------------------------------------------------------------------------


@dataclass
class Repaired:
    """``repair``: the manifest rebuilt from the versions' meta.json (or found intact)."""

    rebuilt: bool
    versions: list[str]
    current: str | None
    candidates: list[str]
    left_out: list[str]
    damaged_manifest: str | None  # the name the damaged manifest was kept under

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def repair(config: Config, wait: float = 0.0) -> Repaired:
    """Rebuild a missing or damaged manifest from the committed versions' ``meta.json``.

    An intact manifest is left as it is. Events (rollbacks, promotions) lived only
    in the lost manifest: the newest version that passed its gates becomes current.
    """
    with locked(config, "repair", wait, repairing=True) as store:
        try:
            manifest: Manifest | None = store.read_manifest(fresh=True)
        except DataError:  # damaged: rebuilt below
            manifest = None
        if manifest is not None and (manifest.versions or not store.backend.has_versions()):
            return Repaired(rebuilt=False, versions=[v.version for v in manifest.versions],
                            current=manifest.current, candidates=[], left_out=[],
                            damaged_manifest=None)
        manifest, left_out, aside = store.rebuild_manifest()
    logger.warning("rebuilt the manifest of %s from %d version(s); current is %s",
                   store.location, len(manifest.versions), manifest.current)
    return Repaired(rebuilt=True, versions=[v.version for v in manifest.versions],
                    current=manifest.current,
                    candidates=[v.version for v in manifest.versions if v.status != "committed"],
                    left_out=left_out, damaged_manifest=aside)


# -- reading a version's vectors --------------------------------------------------------


def version_vectors(store: Store, ref: str | None) -> LoadedVectors:
    """A version's vectors (read-only, memory-mapped), its counts and recorded scores."""
    with store.pinned(ref) as name:
        model = store.load_model(name, mmap="r")
        meta = store.read_meta(name)
    return LoadedVectors(kv=model.wv, counts=counts_of(model.wv), kind="store-version",
                         ref=name, scores=meta.scores or None)


def split_version_ref(ref: str, base: Path) -> tuple[Path, str] | None:
    """(config, version) when ``ref`` is CONFIG@VERSION rather than a file name with an '@'."""
    if "@" not in ref or scheme_of(ref):
        return None
    config, version = ref.rsplit("@", 1)
    config_path = Path(os.path.expanduser(config))
    if not config_path.is_absolute():
        config_path = base / config_path
    if (base / ref).exists() or Path(ref).exists():
        return None
    if not version:
        raise UsageError(
            f"{ref!r}: no version after '@'",
            hint="write CONFIG@VERSION, e.g. config.yaml@v0003 (see 'incw2v history CONFIG')",
        )
    if config_path.is_file() or config_path.suffix.lower() in (".yaml", ".yml"):
        return config_path, version
    return None


def load_vectors_ref(ref: str, config: Config | None = None,
                     base_dir: Path | None = None) -> LoadedVectors:
    """The vectors ``ref`` names, wherever they are: the one resolver of vector references.

    ``ref`` is a version of ``config``'s store (``v0003``, ``3``), a version of
    another config's store (``CONFIG@VERSION``), or a vectors file
    (``vectors.io.load_vectors``). Relative paths resolve against ``base_dir``
    (default: the current folder).
    """
    base = base_dir if base_dir is not None else Path.cwd()
    if config is not None and VERSION_REF.match(ref) and not (base / ref).exists():
        return version_vectors(existing_store(config), ref)
    split = split_version_ref(ref, base)
    if split is not None:
        config_path, version = split
        loaded = version_vectors(existing_store(load_config(config_path)), version)
        loaded.ref = redact(ref)
        return loaded
    return load_vectors(ref, base)


# -- export -----------------------------------------------------------------------------


@dataclass
class Exported:
    """``export``: which version was written, how, and to which files."""

    version: str
    format: str
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export(config: Config, fmt: str, output: Path, version: str | None = None,
           force: bool = False) -> Exported:
    """Write a version's vectors (or full model) to ``output`` atomically; an existing
    ``output``, or side file beside it that the export writes, is replaced only with
    ``force``."""
    if fmt not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise UsageError(f"unknown export format {fmt!r}; choose one of {choices}")
    check_output_folder(output)  # before anything is read (or a reader lock is taken)
    # PATH is checked now, cheaply; the side files (whose names gensim picks as it saves)
    # before anything is renamed into place.
    if not force and (output.exists() or output.is_symlink()):
        raise OutputError(
            f"{output} exists; export does not replace it unless told to",
            hint="pass --force to replace it, or choose another --output",
        )
    store = existing_store(config)
    with store.pinned(version) as name:
        if fmt == "model":
            written = _copy_model(store, name, output, replace=force)
        else:
            model = store.load_model(name, mmap="r")
            written = write_vectors(model.wv, fmt, output,  # type: ignore[arg-type]
                                    replace=force)
    return Exported(version=name, format=fmt, files=[str(p) for p in written])


def _copy_model(store: Store, version: str, output: Path, replace: bool) -> list[Path]:
    """A full model is exported as gensim saves it (``Word2Vec.load`` reads it): the
    version's verified model, written with gensim's ``save`` into the output's folder."""
    model = store.load_model(version, mmap="r")
    with atomic_outputs(output, replace=replace) as outputs:
        save_gensim_model(model, outputs.temp(output))
        finals = sorted(output.with_name(p.name[len(outputs.prefix):]) for p in outputs.written())
    return finals
