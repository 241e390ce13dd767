"""The versioned store: immutable versions and one manifest, on any backend.

A store lives in a local folder (``store.local``) or under an object-store
prefix (``store.s3``); ``Store`` is the one interface the layers above use,
and holds the protocol, whatever the backend:

- **Recognised before touched.** A store carries a marker written by incw2v
  at creation. A place without it is used only if it is new or empty (then
  it is created) or is a store of an earlier incw2v (a valid manifest; the
  marker is added at its first locked run). Anything else is refused (78),
  and a store whose manifest is missing while versions are there is refused
  as damaged (65) until ``repair`` rebuilds the manifest.
- **Commit protocol.** A version is written into a private staging folder,
  every file fsynced and hashed, ``meta.json`` (with the hashes) and the
  ``COMMITTED`` marker written last; the backend publishes it (renamed into
  ``versions/``, or uploaded in full under its own prefix); then the manifest
  is replaced: the one commit point. A published version the manifest does not
  list is a leftover, invisible to readers, and swept.
- **Verified before loaded.** Every file of a version is checked against its
  recorded sha256 before a model is read (on an object store: in the local
  cache it was downloaded to).
- **Pruned, not forgotten.** ``prune`` and retention delete a version's
  arrays but keep its ``meta.json`` and marker: the manifest marks it pruned
  (and lists it under ``discarding`` until its files are gone, so a run that
  finds a prune interrupted finishes it), and its lineage record stays.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from incremental_w2v.errors import (
    ConfigError,
    DataError,
    IncW2VError,
    InputMissingError,
    UsageError,
)
from incremental_w2v.fsutil import (
    STORE_MARKER,
    fsync_dir,
    fsync_file,
    os_error,
    sha256_file,
    write_new,
)
from incremental_w2v.store.backend import (
    MANIFEST,
    MARKER,
    META,
    MODEL,
    STAGING_PREFIX,
    TRASH_PREFIX,
    VERSIONS,
    WORK_PREFIX,
    Backend,
    CommitOutcomeUnknown,
)
from incremental_w2v.store.local import LocalBackend
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

__all__ = ["MANIFEST", "MARKER", "META", "MODEL", "STAGING_PREFIX", "TRASH_PREFIX", "VERSIONS",
           "WORK_PREFIX", "CommitOutcomeUnknown", "Staging", "Store"]

logger = logging.getLogger(__name__)

ROLL_BACK = "roll back to another version with 'incw2v rollback CONFIG VERSION'"
REPAIR = "'incw2v repair CONFIG' rebuilds the manifest from the versions' meta.json"


class Staging:
    """A version being written; nothing here is visible until ``Store.commit``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save_model(self, model: Any) -> None:
        save_model(model, self.path / MODEL)


class Store:
    """One lineage's versions and manifest (``Store(path)``: a local folder)."""

    def __init__(self, where: Path | Backend) -> None:
        self.backend = where if isinstance(where, Backend) else LocalBackend(Path(where))
        self.swept: list[str] = []  # what the last sweep removed
        self._uploads: dict[str, str | None] = {}

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, where: Path | Backend, create: bool = False, repairing: bool = False
             ) -> Store:
        """The store at ``where``, recognised (see the module's docstring).

        ``create``: make it if the place is new or empty (only ``add-corpus``).
        ``repairing``: accept a store whose manifest is missing or damaged.
        """
        store = cls(where)
        store.recognise(create, repairing)
        return store

    def recognise(self, create: bool = False, repairing: bool = False) -> None:
        backend = self.backend
        try:
            data = backend.read_manifest_bytes(fresh=True)
        except DataError:
            if repairing:
                return  # (a manifest that cannot even be read is what repair is for)
            raise
        if data is not None:
            try:
                manifest = self._parse_manifest(data)
            except DataError:
                if not backend.has_marker() and not backend.has_versions():
                    raise self._foreign() from None
                if not repairing:
                    raise
                return
            # A manifest.json that merely parses ('{}', another tool's) is no store. The
            # marker is asked only then: on S3 it is a request, and a no-op makes few.
            if not _written_by_0_1(data, manifest) and not backend.has_marker():
                if not backend.has_versions():
                    raise self._foreign()
                if not repairing:
                    raise DataError(
                        f"store {self.location} has versions, but its {MANIFEST} lists none "
                        f"of them and there is no {STORE_MARKER} marker: it is damaged; "
                        "nothing was changed", hint=f"recovery is possible: {REPAIR}")
            return
        if backend.has_marker():
            if backend.has_versions() and not repairing:
                raise DataError(
                    f"store {self.location} has versions but no {MANIFEST}: it is damaged "
                    "(the manifest was deleted or lost); nothing was changed",
                    hint=f"recovery is possible: {REPAIR}",
                )
            return
        if backend.is_new():
            if create:
                backend.create(Manifest().to_json())
                return
            raise InputMissingError(
                f"no store at {self.location} (no {MANIFEST})",
                hint="run 'incw2v add-corpus CONFIG' first to create it, or fix 'store:' "
                "in the config",
            )
        if backend.has_versions():
            if repairing:
                return
            raise DataError(
                f"store {self.location} has versions but no {MANIFEST} (and no "
                f"{STORE_MARKER} marker): it is damaged; nothing was changed",
                hint=f"recovery is possible: {REPAIR}",
            )
        raise self._foreign()

    def _foreign(self) -> ConfigError:
        return ConfigError(
            f"{self.location} is not an incw2v store: it is not empty and has no "
            f"{STORE_MARKER} marker, so incw2v will neither write nor delete anything there",
            hint="point 'store:' at a new or empty folder (incw2v creates the store there), "
            "or at an existing incw2v store",
        )

    def complete(self) -> None:
        """Finish a store whose creation was interrupted, or that an earlier incw2v made
        (call with the lock held, after ``recognise``): the manifest, then the marker."""
        if self.backend.read_manifest_bytes() is None:
            # Recognised without versions: its creation stopped before the manifest.
            self.write_manifest(Manifest())
            return
        if self.backend.remote or self.backend.has_marker():
            return  # (stores on S3 have had their marker from the start)
        try:
            self.backend.mark()
            logger.info("marked %s as an incw2v store (%s)", self.location, STORE_MARKER)
        except (OSError, IncW2VError) as exc:  # e.g. a read-only store: it is still ours
            logger.debug("cannot add the store marker: %s", exc)

    @property
    def location(self) -> str:
        """How messages name the store (ASCII-safe, without credentials)."""
        return self.backend.location

    @property
    def root(self) -> Path:
        """The folder of a local store."""
        if not isinstance(self.backend, LocalBackend):
            raise UsageError(f"store {self.location} is not a local folder")
        return self.backend.root

    @property
    def scratch(self) -> Path:
        """The local folder where working files go (and free space is checked)."""
        return self.backend.scratch

    @property
    def versions_dir(self) -> Path:
        if not isinstance(self.backend, LocalBackend):
            raise UsageError(f"store {self.location} is not a local folder")
        return self.backend.versions_dir

    def version_dir(self, version: str) -> Path:
        """The folder of a version of a local store."""
        self._check_name(version)
        return self.versions_dir / version

    @staticmethod
    def _check_name(version: str) -> None:
        if not VERSION_RE.match(version):
            raise UsageError(f"{version!r} is not a version name (expected e.g. v0003)")

    # -- reading -------------------------------------------------------------------------

    def read_manifest(self, fresh: bool = False) -> Manifest:
        """The manifest (an empty one if there is none yet)."""
        data = self.backend.read_manifest_bytes(fresh)
        manifest = Manifest() if data is None else self._parse_manifest(data)
        self._uploads = {v.version: v.upload for v in manifest.versions}
        return manifest

    def _parse_manifest(self, raw: bytes) -> Manifest:
        where_ = f"{self.location}/{MANIFEST}"
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataError(
                f"the store's manifest {where_} is damaged or was edited by hand: "
                f"{where}: {first['msg']}",
                hint="restore manifest.json from a backup (the version folders under "
                f"versions/ are intact and untouched), or {REPAIR}",
            ) from None
        if manifest.current is not None and manifest.entry(manifest.current) is None:
            raise DataError(
                f"the store's manifest {where_} names current version {manifest.current} "
                "that it does not list",
                hint=f"restore manifest.json from a backup, or {REPAIR}",
            )
        return manifest

    def _upload_of(self, version: str) -> str | None:
        if not self.backend.remote:
            return None
        if version not in self._uploads:
            self.read_manifest()
        if self._uploads.get(version) is None:
            raise DataError(f"version {version} is not listed in the manifest of {self.location}",
                            hint=ROLL_BACK)
        return self._uploads[version]

    def read_meta(self, version: str) -> VersionMeta:
        self._check_name(version)
        raw = self.backend.read_meta_bytes(version, self._upload_of(version))
        try:
            meta = VersionMeta.model_validate_json(raw)
        except ValidationError as exc:
            raise DataError(
                f"version {version}'s {META} cannot be read: {str(exc).splitlines()[0]}",
                hint=ROLL_BACK,
            ) from None
        if meta.version != version:
            raise DataError(f"version folder {version} holds metadata of {meta.version}")
        return meta

    def current_meta(self, manifest: Manifest | None = None) -> VersionMeta | None:
        manifest = manifest or self.read_manifest()
        return self.read_meta(manifest.current) if manifest.current else None

    def files(self, version: str) -> Path:
        """The local folder of ``version``'s files (fetched if remote; not re-hashed here)."""
        meta = self.read_meta(version)
        return self._files_dir(version, meta)

    def _files_dir(self, version: str, meta: VersionMeta) -> Path:
        try:
            return self.backend.files_dir(version, self._upload_of(version), meta.files)
        except OSError as exc:
            raise os_error(exc, f"fetching version {version}") from None

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
        return self._verified(version)[0]

    def _verified(self, version: str) -> tuple[VersionMeta, Path]:
        self.require_arrays(version)
        meta = self.read_meta(version)
        folder = self._files_dir(version, meta)
        problem = self._check_files(version, meta, folder)
        if problem is not None and self.backend.remote:
            # Only the local copy may be bad: drop it and fetch (and check) it again.
            logger.warning("%s (in the local cache); fetching it again", problem.message)
            self.backend.forget(version, self._upload_of(version))
            folder = self._files_dir(version, meta)
            problem = self._check_files(version, meta, folder)
        if problem is not None:
            raise problem
        return meta, folder

    @staticmethod
    def _check_files(version: str, meta: VersionMeta, folder: Path) -> DataError | None:
        for name, expected in meta.files.items():
            path = folder / name
            actual = None
            if not ("/" in name or name.startswith(".") or path.is_symlink()
                    or not path.is_file()):
                with suppress(OSError):
                    actual = sha256_file(path, follow=False)
            if actual is None:
                return DataError(
                    f"version {version}: file {name!r} is missing or not a plain file",
                    hint=ROLL_BACK,
                )
            if actual != expected:
                return DataError(
                    f"version {version}: {name} does not match its recorded sha256 "
                    f"(expected {expected[:12]}…, found {actual[:12]}…); it was changed or "
                    "damaged, and will not be loaded",
                    hint=ROLL_BACK,
                )
        return None

    def load_model(self, version: str, mmap: str | None = None) -> Any:
        """The verified model of ``version``. Never unpickles an unverified file.

        ``mmap='r'`` is for read-only use only: training a read-only mapped
        model crashes gensim.
        """
        meta, folder = self._verified(version)
        try:
            return load_model(folder / MODEL, meta.params.get("type"), mmap, meta.model_format)
        except OSError as exc:
            raise os_error(exc, f"loading version {version}") from None

    def version_bytes(self, version: str | None) -> int:
        """About how large ``version`` is locally (0 for None, or when not known yet)."""
        if version is None:
            return 0
        return self.backend.version_bytes(version, self._upload_of(version))

    def committed_versions(self, manifest: Manifest) -> list[str]:
        return [v.version for v in manifest.versions]

    def resolve(self, ref: str | None, fresh: bool = False) -> str:
        """The version ``ref`` names (``v0003``, ``v3``, ``3``), or the current one for None."""
        manifest = self.read_manifest(fresh)
        if ref is None:
            if manifest.current is None:
                raise InputMissingError(
                    f"store {self.location} has no current version",
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
        with self.backend.pin(name):
            self.resolve(name, fresh=True)  # still listed now that we hold it
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

    # -- writing -------------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Remove leftovers of interrupted runs (call with the lock held).

        Only names incw2v creates, and version data only when a manifest says
        what is committed (a store without one is damaged, not empty).
        """
        data = self.backend.read_manifest_bytes()
        manifest = None if data is None else self._parse_manifest(data)
        listed = None if manifest is None else {v.version: v.upload for v in manifest.versions}
        try:
            removed = self.backend.sweep(listed)
        except OSError as exc:
            raise os_error(exc, "removing the leftovers of an interrupted run") from None
        if manifest is not None and manifest.discarding:
            # A prune interrupted after its manifest write: finish deleting the arrays.
            removed += [f"{VERSIONS}/{v} (arrays of a pruned version)"
                        for v in manifest.discarding]
            self._discard_arrays(manifest)
        if removed:
            logger.info("swept leftovers of an interrupted run: %s", ", ".join(sorted(removed)))
        return removed

    @contextmanager
    def staging(self) -> Iterator[Staging]:
        """A private staging folder, removed unless committed."""
        with self.backend.staging() as path:
            yield Staging(path)

    @contextmanager
    def workdir(self) -> Iterator[Path]:
        """A private scratch folder for working files, removed on exit whatever happens."""
        with self.backend.workdir() as path:
            yield path

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
        version = manifest.next_version(self.backend.taken())
        files = {}
        for path in sorted(staging.path.iterdir()):
            fsync_file(path)
            files[path.name] = sha256_file(path, follow=False)
        meta = VersionMeta(version=version, created_at=now_iso(), files=files, **meta_fields)
        write_new(staging.path / META, meta.model_dump_json(indent=2).encode())
        write_new(staging.path / MARKER, f"{version}\n".encode())
        fsync_dir(staging.path)
        upload = self.backend.publish(staging.path, version)
        try:
            self._commit_manifest(manifest, meta, make_current, upload)
        except CommitOutcomeUnknown:
            raise  # it may be committed: its files must stay (the sweep decides later)
        except BaseException:
            # The manifest does not list it, so it is not committed: take it back out,
            # leaving the store as it was (what we fail to remove is swept later).
            self._take_back(version, upload)
            raise
        return meta

    def _take_back(self, version: str, upload: str | None) -> None:
        try:
            entry = self.read_manifest(fresh=True).entry(version)
        except Exception:  # cannot tell whether it landed: leave it to the sweep
            return
        if entry is not None and entry.upload == upload:
            return  # the manifest write did land after all (interrupted after the commit)
        try:
            self.backend.unpublish(version, upload)
        except Exception as exc:
            logger.debug("could not take back %s now (swept later): %s", version, exc)

    def _commit_manifest(self, manifest: Manifest, meta: VersionMeta, make_current: bool,
                         upload: str | None) -> None:
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
                upload=upload,
            )
        )
        if make_current:
            manifest.current = version
        manifest.events.append(Event(at=meta.created_at, action=f"commit-{meta.kind}",
                                     version=version, detail=", ".join(meta.added)))
        self.write_manifest(manifest, upload)

    def write_manifest(self, manifest: Manifest, upload: str | None = None) -> None:
        """Replace the manifest: the one commit point. Committed once this returns."""
        self.backend.write_manifest_bytes(manifest.to_json(), upload)
        self._uploads = {v.version: v.upload for v in manifest.versions}

    def set_current(self, version: str, action: str, detail: str = "") -> Manifest:
        manifest = self.read_manifest()
        entry = manifest.entry(version)
        if entry is None:
            known = ", ".join(self.committed_versions(manifest)) or "none"
            raise UsageError(
                f"version {version} is not in the store (versions: {known})",
                hint="see 'incw2v history CONFIG' for the versions you can choose",
            )
        self.verify(version)
        manifest.current = version
        entry.status = "committed"
        manifest.events.append(Event(at=now_iso(), action=action, version=version, detail=detail))
        self.write_manifest(manifest)
        return manifest

    def prune_versions(self, versions: list[str]) -> tuple[list[str], list[str]]:
        """Delete the arrays of ``versions``, keeping their lineage records, except those a
        reader holds: (pruned, held).

        The manifest marks them pruned, and lists them under ``discarding``, first (the
        commit point); then every file but ``meta.json`` and the marker is deleted, and
        the manifest forgets the ``discarding``. A crash in between is finished by the
        next run's sweep.
        """
        manifest = self.read_manifest()
        if manifest.current in versions:
            raise UsageError(f"refusing to prune the current version {manifest.current}")
        with self.backend.exclusive(versions) as locks:
            doomed = sorted(set(locks.free))
            if doomed:
                at = now_iso()
                for entry in manifest.versions:
                    if entry.version in doomed:
                        entry.pruned_at = at
                manifest.discarding = sorted({*manifest.discarding, *doomed})
                manifest.events.append(Event(at=at, action="prune", detail=", ".join(doomed)))
                self.write_manifest(manifest)
                self._discard_arrays(manifest)
        return doomed, locks.held

    def _discard_arrays(self, manifest: Manifest) -> None:
        """Delete the arrays of the versions ``manifest`` is discarding, then say so."""
        try:
            for version in manifest.discarding:
                self.backend.discard(version, self._uploads.get(version), keep=(META, MARKER))
        except OSError as exc:
            raise os_error(exc, "deleting the arrays of pruned versions") from None
        manifest.discarding = []
        self.write_manifest(manifest)

    # -- repair --------------------------------------------------------------------------

    def rebuild_manifest(self) -> tuple[Manifest, list[str], str | None]:
        """A new manifest from the complete versions' ``meta.json`` (call with the lock held).

        Returns the manifest written, the versions left out (unreadable meta),
        and the name the damaged manifest was set aside under (None if missing).
        A version is committed unless its recorded gate verdict failed (then it is
        a candidate); the newest committed version becomes current.
        """
        aside = self.backend.set_aside_manifest()
        entries: list[VersionEntry] = []
        skipped: list[str] = []
        for found in self.backend.on_disk():
            try:
                meta = VersionMeta.model_validate_json(found.meta)
            except ValidationError:
                skipped.append(found.version)
                continue
            if meta.version != found.version:
                skipped.append(found.version)
                continue
            # A version whose arrays are gone was pruned: its record stays, marked so.
            pruned = not set(meta.files) <= found.names
            entries.append(VersionEntry(
                version=meta.version, created_at=meta.created_at, parent=meta.parent,
                kind=meta.kind, added=meta.added, upload=found.upload,
                status="committed" if meta.gate.get("passed", True) else "candidate",
                pruned_at=now_iso() if pruned else None,
            ))
        entries.sort(key=lambda e: int(e.version[1:]))
        current = next((e.version for e in reversed(entries)
                        if e.status == "committed" and e.pruned_at is None), None)
        manifest = Manifest(current=current, versions=entries, events=[Event(
            at=now_iso(), action="repair", version=current,
            detail=f"manifest rebuilt from the meta.json of {len(entries)} version(s)"
            + (f"; the damaged one kept as {aside}" if aside else "")
            + (f"; left out (unreadable meta.json): {', '.join(skipped)}" if skipped else ""),
        )])
        self.write_manifest(manifest)
        return manifest, skipped, aside


# The keys every manifest incw2v 0.1.x wrote has (tests/fixtures/store-0.1.0).
_0_1_KEYS = frozenset({"format_version", "current", "versions", "events"})


def _written_by_0_1(raw: bytes, manifest: Manifest) -> bool:
    """Whether a manifest without the store marker is one incw2v 0.1.x wrote (it wrote no
    marker): all its keys, at least one version, and no current version outside them.
    0.1.x wrote its manifest with the first version, so it never left one without."""
    try:
        document = json.loads(raw)
    except ValueError:
        return False
    return (isinstance(document, dict) and document.keys() >= _0_1_KEYS
            and bool(manifest.versions)
            and (manifest.current is None or manifest.entry(manifest.current) is not None))

