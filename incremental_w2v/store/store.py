"""The versioned store: immutable version folders and one manifest.

Layout::

    store/
      manifest.json        the single source of truth, replaced atomically
      versions/v0001/      immutable once committed
        model, model.*.npy gensim full model and its side arrays
        ledger.tsv.gz      cumulative vocabulary counts
        meta.json          lineage, params, scores, sha256 of every file
        COMMITTED          written last, before the rename
      versions/v0002/      a pruned version: meta.json and COMMITTED only (the manifest
                           marks it pruned; its lineage record stays)
      .staging-*/          a version being written (swept at the next run)
      .work-*/             working files of a run (swept at the next run)
      .lock, .lock.info    one run at a time

Commit protocol: write the version into a staging folder inside the store,
fsync every file, write the marker, rename the folder into ``versions/``,
fsync ``versions/``, then replace ``manifest.json`` (temp file, fsync,
``os.replace``, fsync). The manifest replace is the one commit point: a
version folder that the manifest does not list is a leftover and is swept.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from incremental_w2v.errors import DataError, InputMissingError, UsageError
from incremental_w2v.fsutil import (
    TMP_MARK,
    atomic_write_bytes,
    fsync_dir,
    fsync_file,
    os_error,
    remove_tree,
    sha256_file,
)
from incremental_w2v.store import pins
from incremental_w2v.store.manifest import (
    VERSION_RE,
    Event,
    Manifest,
    VersionEntry,
    VersionMeta,
    now_iso,
    version_name,
)
from incremental_w2v.vectors.model_file import load_model, save_model

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERSIONS = "versions"
META = "meta.json"
MARKER = "COMMITTED"
MODEL = "model"
STAGING_PREFIX = ".staging-"
WORK_PREFIX = ".work-"
TRASH_PREFIX = ".trash-"


class Staging:
    """A version being written; nothing here is visible until ``Store.commit``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save_model(self, model: Any) -> None:
        save_model(model, self.path / MODEL)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.swept: list[str] = []  # what the last sweep removed

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, create: bool = False) -> Store:
        if create:
            try:
                (root / VERSIONS).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise os_error(exc, f"creating the store at {root}") from None
        elif not (root / MANIFEST).exists():
            raise InputMissingError(
                f"no store at {root} (no {MANIFEST})",
                hint="run 'incw2v add-corpus CONFIG' first to create it, or fix 'store:' "
                "in the config",
            )
        return cls(root)

    @property
    def versions_dir(self) -> Path:
        path = self.root / VERSIONS
        if path.is_symlink():
            raise DataError(
                f"{path} is a symbolic link; a store's versions must live inside the store",
                hint="move the versions folder back into the store (and remove the link)",
            )
        return path

    def version_dir(self, version: str) -> Path:
        if not VERSION_RE.match(version):
            raise UsageError(f"{version!r} is not a version name (expected e.g. v0003)")
        return self.versions_dir / version

    # -- reading -------------------------------------------------------------

    def read_manifest(self) -> Manifest:
        path = self.root / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise os_error(exc, f"reading {path}") from None
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataError(
                f"the store's manifest {path} is damaged or was edited by hand: "
                f"{where}: {first['msg']}",
                hint="restore manifest.json from a backup; the version folders under "
                "versions/ are intact and untouched",
            ) from None
        if manifest.current is not None and manifest.entry(manifest.current) is None:
            raise DataError(
                f"the store's manifest {path} names current version {manifest.current} "
                "that it does not list",
                hint="restore manifest.json from a backup",
            )
        return manifest

    def read_meta(self, version: str) -> VersionMeta:
        folder = self.version_dir(version)
        path = folder / META
        # A symlink planted for a version folder or its files would lead outside the store.
        if folder.is_symlink() or not (folder / MARKER).is_file() or path.is_symlink():
            raise DataError(
                f"version {version} is missing or incomplete in {self.versions_dir} "
                "(deleted or damaged by hand?)",
                hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
            )
        try:
            meta = VersionMeta.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise DataError(
                f"version {version}'s {META} cannot be read: {str(exc).splitlines()[0]}",
                hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
            ) from None
        if meta.version != version:
            raise DataError(f"version folder {version} holds metadata of {meta.version}")
        return meta

    def current_meta(self, manifest: Manifest | None = None) -> VersionMeta | None:
        manifest = manifest or self.read_manifest()
        return self.read_meta(manifest.current) if manifest.current else None

    def is_pruned(self, version: str) -> bool:
        entry = self.read_manifest().entry(version)
        return entry is not None and entry.pruned_at is not None

    def require_arrays(self, version: str, manifest: Manifest | None = None) -> None:
        """Refuse a version whose arrays prune or retention deleted."""
        entry = (manifest or self.read_manifest()).entry(version)
        if entry is not None and entry.pruned_at is not None:
            raise InputMissingError(
                f"version {version} was pruned on {entry.pruned_at}: its arrays are deleted "
                "(its lineage record stays in the history), so it cannot be loaded, "
                "exported or made current",
                hint="choose a version that is not pruned ('incw2v history CONFIG' marks "
                "them), or 'incw2v rebuild CONFIG' to retrain from the corpora",
            )

    def verify(self, version: str) -> VersionMeta:
        """Check every file of ``version`` against its recorded sha256."""
        self.require_arrays(version)
        meta = self.read_meta(version)
        folder = self.version_dir(version)
        for name, expected in meta.files.items():
            path = folder / name
            if "/" in name or name.startswith(".") or path.is_symlink() or not path.is_file():
                raise DataError(
                    f"version {version}: file {name!r} is missing or not a plain file",
                    hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
                )
            actual = sha256_file(path)
            if actual != expected:
                raise DataError(
                    f"version {version}: {name} does not match its recorded sha256 "
                    f"(expected {expected[:12]}…, found {actual[:12]}…); it was changed or "
                    "damaged, and will not be loaded",
                    hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
                )
        return meta

    def load_model(self, version: str, mmap: str | None = None) -> Any:
        """The verified model of ``version``. Never unpickles an unverified file.

        ``mmap='r'`` is for read-only use only: training a read-only mapped
        model crashes gensim.
        """
        meta = self.verify(version)
        try:
            return load_model(self.version_dir(version) / MODEL, meta.params.get("type"), mmap,
                              meta.model_format)
        except OSError as exc:
            raise os_error(exc, f"loading version {version}") from None

    def committed_versions(self, manifest: Manifest) -> list[str]:
        return [v.version for v in manifest.versions]

    def resolve(self, ref: str | None) -> str:
        """The version ``ref`` names (``v0003``, ``v3``, ``3``), or the current one for None."""
        manifest = self.read_manifest()
        if ref is None:
            if manifest.current is None:
                raise InputMissingError(
                    f"store {self.root} has no current version",
                    hint="run 'incw2v add-corpus' first",
                )
            return manifest.current
        version = version_name(ref)
        if manifest.entry(version) is None:
            known = ", ".join(v.version for v in manifest.versions) or "none"
            raise UsageError(
                f"version {version} is not in the store (versions: {known})",
                hint="see 'incw2v history CONFIG'",
            )
        return version

    @contextmanager
    def pinned(self, ref: str | None) -> Iterator[str]:
        """Resolve ``ref`` and hold the version so that ``prune`` cannot delete it meanwhile."""
        name = self.resolve(ref)
        with pins.reading(self.root, name):
            self.resolve(name)  # still listed now that we hold it
            yield name

    def ancestors(self, version: str) -> list[VersionMeta]:
        """``version`` and its parents, newest first, as far back as the store holds them."""
        listed = {v.version for v in self.read_manifest().versions}
        chain, seen = [], set()
        name: str | None = version
        while name is not None and name not in seen and name in listed:  # pruned: stop there
            seen.add(name)
            meta = self.read_meta(name)
            chain.append(meta)
            name = meta.parent
        return chain

    def last_rebuild(self, version: str) -> str | None:
        """The newest rebuild among ``version`` and its ancestors."""
        return next((m.version for m in self.ancestors(version) if m.kind == "rebuild"), None)

    def updates_since_rebuild(self, version: str) -> int:
        """Updates applied since the last rebuild (or since the base)."""
        n = 0
        for meta in self.ancestors(version):
            if meta.kind != "update":
                break
            n += 1
        return n

    # -- writing -------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Remove leftovers of interrupted runs (call with the lock held)."""
        removed: list[str] = []
        for child in self.root.iterdir():
            if child.name.startswith((STAGING_PREFIX, WORK_PREFIX, TRASH_PREFIX)):
                remove_tree(child)
                removed.append(child.name)
            elif child.name.startswith(TMP_MARK) and child.is_file():
                child.unlink(missing_ok=True)
                removed.append(child.name)
        manifest = self.read_manifest()
        listed = {v.version for v in manifest.versions}
        for entry in manifest.versions:
            if entry.pruned_at is not None:
                # A prune interrupted after its manifest replace: finish deleting.
                removed += [f"{VERSIONS}/{entry.version}/{name}"
                            for name in self._drop_arrays(entry.version)]
        if self.versions_dir.is_dir():
            for child in self.versions_dir.iterdir():
                if child.name not in listed:
                    # Renamed into place but never committed by the manifest.
                    remove_tree(child)
                    removed.append(f"{VERSIONS}/{child.name}")
        if removed:
            fsync_dir(self.root)
            logger.info("swept leftovers of an interrupted run: %s", ", ".join(sorted(removed)))
        return removed

    @contextmanager
    def staging(self) -> Iterator[Staging]:
        """A staging folder, removed unless committed."""
        path = self.root / f"{STAGING_PREFIX}{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except OSError as exc:
            raise os_error(exc, "creating a staging folder in the store") from None
        try:
            yield Staging(path)
        finally:
            if path.exists():
                remove_tree(path)

    @contextmanager
    def workdir(self) -> Iterator[Path]:
        """A scratch folder for working files, removed on exit whatever happens."""
        path = self.root / f"{WORK_PREFIX}{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except OSError as exc:
            raise os_error(exc, "creating a working folder in the store") from None
        try:
            yield path
        finally:
            remove_tree(path)

    def commit(
        self, staging: Staging, meta_fields: dict[str, Any], make_current: bool = True
    ) -> VersionMeta:
        """Seal ``staging`` as the next version and make it current (the atomic step)."""
        try:
            return self._commit(staging, meta_fields, make_current)
        except OSError as exc:
            raise os_error(exc, "committing a new version") from None

    def _commit(
        self, staging: Staging, meta_fields: dict[str, Any], make_current: bool
    ) -> VersionMeta:
        manifest = self.read_manifest()
        taken = {p.name for p in self.versions_dir.iterdir()}
        version = manifest.next_version({t for t in taken if VERSION_RE.match(t)})
        files = {}
        for path in sorted(staging.path.iterdir()):
            fsync_file(path)
            files[path.name] = sha256_file(path)
        meta = VersionMeta(version=version, created_at=now_iso(), files=files, **meta_fields)
        (staging.path / META).write_text(meta.model_dump_json(indent=2))
        fsync_file(staging.path / META)
        (staging.path / MARKER).write_text(f"{version}\n")
        fsync_file(staging.path / MARKER)
        fsync_dir(staging.path)
        target = self.versions_dir / version
        os.rename(staging.path, target)
        try:
            fsync_dir(self.versions_dir)
            self._commit_manifest(manifest, meta, make_current)
        except BaseException:
            # The manifest does not list it, so it is not committed: take it back out,
            # leaving the store as it was (a folder we fail to remove is swept next run).
            # A signal (SIGTERM, Ctrl-C) can also land just after the manifest replace:
            # then it is committed, and must stay.
            if not self._listed(version):
                self._discard(target)
            raise
        return meta

    def _listed(self, version: str) -> bool:
        try:
            return self.read_manifest().entry(version) is not None
        except (OSError, DataError):
            return False

    def _commit_manifest(self, manifest: Manifest, meta: VersionMeta, make_current: bool
                         ) -> None:
        version = meta.version
        status = "committed" if make_current else "candidate"
        manifest.versions.append(
            VersionEntry(
                version=version,
                created_at=meta.created_at,
                parent=meta.parent,
                kind=meta.kind,
                status=status,
                added=meta.added,
            )
        )
        if make_current:
            manifest.current = version
        manifest.events.append(Event(at=meta.created_at, action=f"commit-{meta.kind}",
                                     version=version, detail=", ".join(meta.added)))
        self.write_manifest(manifest)

    def _discard(self, folder: Path) -> None:
        """Rename ``folder`` out of the way, then remove it; a leftover is swept later."""
        trash = self.root / f"{TRASH_PREFIX}{folder.name}-{secrets.token_hex(3)}"
        try:
            os.rename(folder, trash)
        except OSError:
            return
        remove_tree(trash)

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest: the one commit point. Committed once this returns."""
        record = manifest.model_dump(mode="json")
        # Keys of later features only once used: a store that never pruned or excluded
        # anything stays readable by the versions of incw2v before them.
        if not record["exclusions"]:
            del record["exclusions"]
        for entry in record["versions"]:
            if entry["pruned_at"] is None:
                del entry["pruned_at"]
        data = json.dumps(record, indent=2).encode()
        try:
            atomic_write_bytes(self.root / MANIFEST, data, sync_dir=False)
        except OSError as exc:
            raise os_error(exc, "writing the manifest") from None
        try:
            fsync_dir(self.root)
        except OSError as exc:
            # Past the commit point: the new manifest is in place and readers see it.
            # Failing now would report a committed change as failed; if the machine
            # crashed before the disk caught up, the store would come back as it was
            # before, which a re-run repairs.
            logger.warning(
                "the store's new manifest is in place, but flushing %s to disk failed (%s); "
                "check the disk", self.root, exc.strerror,
            )

    def set_current(self, version: str, action: str, detail: str = "") -> Manifest:
        manifest = self.read_manifest()
        entry = manifest.entry(version)
        if entry is None:
            known = ", ".join(self.committed_versions(manifest)) or "none"
            raise UsageError(
                f"version {version} is not in the store (versions: {known})",
                hint="see 'incw2v history CONFIG' for the versions you can choose",
            )
        self.require_arrays(version, manifest)
        self.verify(version)
        manifest.current = version
        entry.status = "committed"
        manifest.events.append(Event(at=now_iso(), action=action, version=version, detail=detail))
        self.write_manifest(manifest)
        return manifest

    def prune_versions(self, versions: list[str]) -> None:
        """Delete the arrays of ``versions``, keeping their lineage records.

        The manifest marks them pruned first (the commit point); then every file
        but ``meta.json`` and the marker is deleted. A crash in between leaves
        files that the next sweep deletes.
        """
        manifest = self.read_manifest()
        doomed = set(versions)
        if manifest.current in doomed:
            raise UsageError(f"refusing to prune the current version {manifest.current}")
        at = now_iso()
        for entry in manifest.versions:
            if entry.version in doomed:
                entry.pruned_at = at
        manifest.events.append(Event(at=at, action="prune", detail=", ".join(sorted(doomed))))
        self.write_manifest(manifest)
        for version in sorted(doomed):
            self._drop_arrays(version)
            fsync_dir(self.version_dir(version))

    def _drop_arrays(self, version: str) -> list[str]:
        """Delete every file of a pruned version but its record; the names deleted."""
        folder = self.version_dir(version)
        if folder.is_symlink() or not folder.is_dir():
            return []
        gone = [c for c in folder.iterdir() if c.name not in (META, MARKER)]
        for child in gone:
            remove_tree(child)
        return [c.name for c in gone]
