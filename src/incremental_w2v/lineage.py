"""Looking at and steering a lineage: status, history, rollback, prune, export.

Read-only commands take no lock: the manifest is replaced atomically and
committed versions never change, so a reader always sees a consistent store.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from . import version_lock
from .config import Config, load_config
from .errors import InputMissingError, OutputError, UsageError
from .fsutil import fsync_file, os_error
from .locking import store_lock
from .manifest import Manifest, VersionMeta, version_name
from .pending import plan_run
from .store import MODEL, Store

logger = logging.getLogger(__name__)

ExportFormat = Literal["word2vec-text", "word2vec-binary", "keyedvectors", "model"]
EXPORT_FORMATS: tuple[str, ...] = ("word2vec-text", "word2vec-binary", "keyedvectors", "model")


def _existing_store(config: Config) -> Store:
    return Store.open(config.store_path, create=False)


def status(config: Config) -> dict[str, Any]:
    """The current version and what a run would apply now."""
    root = config.store_path
    manifest = Store(root).read_manifest() if (root / "manifest.json").exists() else Manifest()
    store = Store(root)
    current = store.current_meta(manifest)
    plan = plan_run(config, current)
    pending = [
        {"name": p.spec.name, "uri": p.spec.uri, "base": True} for p in plan.base
    ] + [{"name": p.spec.name, "uri": p.spec.uri, "base": False} for p in plan.pending]
    return {
        "store": str(root),
        "current": current.version if current else None,
        "vocab_size": current.vocab_size if current else None,
        "versions": len(manifest.versions),
        "candidates": [v.version for v in manifest.versions if v.status == "candidate"],
        "applied": len(current.corpora) if current else 0,
        "pending": pending,
    }


def history(config: Config) -> list[dict[str, Any]]:
    """Every version, oldest first, with its lineage."""
    store = _existing_store(config)
    manifest = store.read_manifest()
    out = []
    for entry in manifest.versions:
        meta = store.read_meta(entry.version)
        row = _history_row(meta, entry.status, manifest.current)
        # Overrides (promote, reject, rollback) are part of a version's story.
        row["events"] = [
            {"at": e.at, "action": e.action, "detail": e.detail}
            for e in manifest.events
            if e.version == entry.version and not e.action.startswith("commit-")
        ]
        out.append(row)
    return out


def _history_row(meta: VersionMeta, status: str, current: str | None) -> dict[str, Any]:
    return {
        "version": meta.version,
        "created_at": meta.created_at,
        "current": meta.version == current,
        "status": status,
        "kind": meta.kind,
        "parent": meta.parent,
        "added": meta.added,
        "corpora": [
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
        "vocab_size": meta.vocab_size,
        "words_added": meta.words_added,
        "top_new_words": meta.top_new_words,
        "params": meta.params,
        "update_params": meta.update_params,
        "tokenize": meta.tokenize,
        "scores": meta.scores,
        "gate": meta.gate,
        "drift": meta.drift,
        "watch": meta.watch,
        "timings": meta.timings,
        "notes": meta.notes,
    }


def rollback(config: Config, version: str, wait: float = 0.0) -> dict[str, Any]:
    """Make an older committed version current; what it had not applied becomes pending."""
    version = version_name(version)
    store = _existing_store(config)
    with store_lock(store.root, "rollback", wait):
        store.sweep()  # a killed rollback may have left a manifest temp file
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
    return {"previous": before, "current": version}


def prune(config: Config, keep: int, wait: float = 0.0) -> dict[str, Any]:
    """Delete all but the ``keep`` newest versions; never the current one."""
    if keep < 1:
        raise UsageError("--keep must be at least 1")
    store = _existing_store(config)
    with store_lock(store.root, "prune", wait):
        store.sweep()
        manifest = store.read_manifest()
        names = [v.version for v in manifest.versions]
        kept = set(names[-keep:])
        if manifest.current:
            kept.add(manifest.current)
        doomed = [v for v in names if v not in kept]
        # A version a reader holds open is kept this time (see version_lock).
        with version_lock.exclusive(store.root, doomed) as locks:
            if locks.free:
                store.delete_versions(locks.free)
        if locks.held:
            logger.warning("kept %s: a reader has it open; prune again later",
                           ", ".join(locks.held))
    return {"deleted": locks.free, "held": locks.held, "kept": sorted(kept | set(locks.held)),
            "current": manifest.current}


def resolve_version(store: Store, version: str | None) -> str:
    manifest = store.read_manifest()
    if version is None:
        if manifest.current is None:
            raise InputMissingError(
                f"store {store.root} has no current version", hint="run 'incw2v add-corpus' first"
            )
        return manifest.current
    version = version_name(version)
    if manifest.entry(version) is None:
        known = ", ".join(v.version for v in manifest.versions) or "none"
        raise UsageError(
            f"version {version} is not in the store (versions: {known})",
            hint="see 'incw2v history CONFIG'",
        )
    return version


def version_vectors(config_path: Path, version: str | None) -> Any:
    """A store version's vectors (read-only, memory-mapped) as ``vectors_io.LoadedVectors``."""
    from .vectors_io import LoadedVectors

    config = load_config(config_path)
    store = _existing_store(config)
    name = resolve_version(store, version)
    with version_lock.reading(store.root, name):
        resolve_version(store, name)  # still listed now that we hold it
        model = store.load_model(name, mmap="r")
    counts = {w: int(model.wv.get_vecattr(w, "count")) for w in model.wv.index_to_key}
    return LoadedVectors(kv=model.wv, counts=counts, kind="store-version")


def export(
    config: Config, fmt: str, output: Path, version: str | None = None
) -> dict[str, Any]:
    """Write a version's vectors (or full model) to ``output`` atomically."""
    if fmt not in EXPORT_FORMATS:
        choices = ", ".join(EXPORT_FORMATS)
        raise UsageError(f"unknown export format {fmt!r}; choose one of {choices}")
    store = _existing_store(config)
    name = resolve_version(store, version)
    if not output.parent.is_dir():
        raise OutputError(
            f"cannot write {output}: folder {output.parent} does not exist",
            hint="create the folder first or choose another --output",
        )
    with version_lock.reading(store.root, name):
        resolve_version(store, name)  # still listed now that we hold it
        if fmt == "model":
            written = _copy_model(store, name, output)
        else:
            from .vectors_io import write_vectors

            model = store.load_model(name, mmap="r")
            written = write_vectors(model.wv, fmt, output)  # type: ignore[arg-type]
    return {"version": name, "format": fmt, "files": [str(p) for p in written]}


def _copy_model(store: Store, version: str, output: Path) -> list[Path]:
    """A full model is exported as verified copies of the version's files."""
    meta = store.verify(version)
    folder = store.version_dir(version)
    pairs = [
        (folder / name, output.with_name(output.name + name[len(MODEL):]))
        for name in sorted(meta.files)
        if name == MODEL or name.startswith(MODEL + ".")
    ]
    temps: list[Path] = []
    try:
        for src, dst in pairs:
            tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
            shutil.copyfile(src, tmp)
            fsync_file(tmp)
            temps.append(tmp)
        for (_, dst), tmp in zip(pairs, temps, strict=True):
            os.replace(tmp, dst)
    except OSError as exc:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise os_error(exc, f"exporting to {output}") from None
    return [dst for _, dst in pairs]
