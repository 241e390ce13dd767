"""Looking at and steering a lineage: history, rollback, prune, export, promote, reject.

Read-only commands take no lock: the manifest is replaced atomically and
committed versions never change, so a reader always sees a consistent store;
a reader pins the version it reads so that ``prune`` cannot delete it. The
commands that change the manifest hold the store's lock. Every command
returns a dataclass whose ``to_dict`` is its ``--json`` output.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from incremental_w2v.config.schema import Config, load_config
from incremental_w2v.errors import DataError, UsageError
from incremental_w2v.fsutil import atomic_outputs, check_output_folder
from incremental_w2v.store.location import open_store
from incremental_w2v.store.locking import locked
from incremental_w2v.store.manifest import (
    VERSION_REF,
    Event,
    Manifest,
    VersionEntry,
    VersionMeta,
    now_iso,
)
from incremental_w2v.store.store import MODEL, Store
from incremental_w2v.uris import redact, scheme_of
from incremental_w2v.vectors.formats import EXPORT_FORMATS
from incremental_w2v.vectors.io import LoadedVectors, load_vectors, write_vectors
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    """``history``: every version, oldest first."""

    versions: list[VersionRow]

    def to_dict(self) -> dict[str, Any]:
        return {"versions": [row.to_dict() for row in self.versions]}


def history(config: Config) -> History:
    """Every version, oldest first, with its lineage."""
    store = existing_store(config)
    manifest = store.read_manifest()
    rows = []
    for entry in manifest.versions:
        row = _row(store.read_meta(entry.version), entry.status, manifest.current)
        # Overrides (promote, reject, rollback) are part of a version's story.
        row.events = [
            {"at": e.at, "action": e.action, "detail": e.detail}
            for e in manifest.events
            if e.version == entry.version and not e.action.startswith("commit-")
        ]
        rows.append(row)
    return History(rows)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollback(config: Config, version: str, wait: float = 0.0) -> Moved:
    """Make another committed version current; what it had not applied becomes pending."""
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
        if before == version:
            store.verify(version)  # already current: nothing to write, re-runs are no-ops
        else:
            store.set_current(version, "rollback", f"from {before}")
    return Moved(current=version, previous=before)


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
    logger.info("promoted %s over its gate verdict (%s)", version, failures)
    return Moved(current=version, previous=before, overrode=meta.gate.get("failures", []))


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
    """``prune``: what was deleted, and what was kept and why."""

    deleted: list[str]
    held: list[str]  # kept this time: a reader has them open
    kept: list[str]
    current: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune(config: Config, keep: int, wait: float = 0.0) -> Pruned:
    """Delete all but the ``keep`` newest versions; never the current one."""
    if keep < 1:
        raise UsageError("--keep must be at least 1")
    with locked(config, "prune", wait) as store:
        manifest = store.read_manifest()
        names = [v.version for v in manifest.versions]
        kept = set(names[-keep:])
        if manifest.current:
            kept.add(manifest.current)
        doomed = [v for v in names if v not in kept]
        # A version a reader holds open is kept this time (see pins).
        deleted, held = store.delete_versions(doomed) if doomed else ([], [])
        if held:
            logger.warning("kept %s: a reader has it open; prune again later", ", ".join(held))
    return Pruned(deleted=deleted, held=held, kept=sorted(kept | set(held)),
                  current=manifest.current)


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


def export(config: Config, fmt: str, output: Path, version: str | None = None) -> Exported:
    """Write a version's vectors (or full model) to ``output`` atomically."""
    if fmt not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise UsageError(f"unknown export format {fmt!r}; choose one of {choices}")
    check_output_folder(output)  # before anything is read (or a reader lock is taken)
    store = existing_store(config)
    with store.pinned(version) as name:
        if fmt == "model":
            written = _copy_model(store, name, output)
        else:
            model = store.load_model(name, mmap="r")
            written = write_vectors(model.wv, fmt, output)  # type: ignore[arg-type]
    return Exported(version=name, format=fmt, files=[str(p) for p in written])


def _copy_model(store: Store, version: str, output: Path) -> list[Path]:
    """A full model is exported as verified copies of the version's files."""
    meta = store.verify(version)
    folder = store.files(version)
    pairs = [
        (folder / name, output.with_name(output.name + name[len(MODEL):]))
        for name in sorted(meta.files)
        if name == MODEL or name.startswith(MODEL + ".")
    ]
    with atomic_outputs(output) as outputs:
        for src, dst in pairs:
            shutil.copyfile(src, outputs.temp(dst))
    return [dst for _, dst in pairs]
