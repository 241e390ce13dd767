"""A store on S3 (or MinIO, Ceph, any S3-compatible server), with the local store's promises.

Layout under ``s3://bucket/prefix/``::

    .incw2v-store                      the marker, created with If-None-Match
    manifest.json                      the one commit point (If-Match / If-None-Match)
    lease.json                         the lock (see ``store.lease``)
    versions/vNNNN/UPLOAD/...          one upload of a version: model, arrays, ledger,
                                       replay, meta.json, COMMITTED (immutable)
    uploads/UPLOAD.json                an upload (or a deletion) in progress
    readers/vNNNN/HOST-PID-XXXX.json   a reader's pin (prune keeps the version)

**Publishing** writes ``uploads/UPLOAD.json`` first, then every file of the
version under its own fresh prefix (``COMMITTED`` last). **Committing** replaces
``manifest.json`` with ``If-Match`` on the ETag this run read after taking the
lease (``If-None-Match: *`` if there was none): a run that lost its lease, or
whose manifest changed under it, fails with 75 and nothing it wrote is
visible. Readers only ever follow the manifest to a complete upload.
**Leftovers**: an ``uploads/`` record whose upload the manifest does not list
is removed, with its objects, by a later run once it is older than
``leftover_grace_seconds`` (longer than any lease, so no live run owns it).
A no-op run reads the lease, the manifest, the current version's meta.json
(from the cache after the first time) and the (normally empty) ``uploads/``
listing: a handful of requests, whatever the number of versions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incremental_w2v import __version__
from incremental_w2v.errors import ConfigError, DataError, IncW2VError, LockedError, UsageError
from incremental_w2v.fsutil import STORE_MARKER, create_new
from incremental_w2v.store.backend import (
    MANIFEST,
    MARKER,
    META,
    VERSIONS,
    Backend,
    CommitOutcomeUnknown,
    OnDisk,
    PruneLocks,
)
from incremental_w2v.store.bucket import Bucket, PreconditionFailed
from incremental_w2v.store.cache import Cache
from incremental_w2v.store.holder import holder_info, host_name
from incremental_w2v.store.lease import Lease
from incremental_w2v.store.manifest import UPLOAD_RE, VERSION_RE, Event, Manifest, now_iso

if TYPE_CHECKING:
    from incremental_w2v.config.schema import Config

logger = logging.getLogger(__name__)

UPLOADS = "uploads"
READERS = "readers"
CACHE_ENV = "INCW2V_CACHE_DIR"
_UPLOAD_KEY = re.compile(r"^uploads/([0-9a-f]{16})\.json$")


def cache_root(config: Config) -> Path:
    """Where the local caches of remote stores go (see ``store_options.cache_dir``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if config.store_options.cache_dir:
        return config._resolve(config.store_options.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "incw2v"


@dataclass
class _Read:
    """The manifest as this run last read or wrote it, with its ETag (None: absent)."""

    body: bytes | None
    etag: str | None


class S3Backend(Backend):
    """A store under an S3 prefix (see the module's docstring)."""

    remote = True

    def __init__(self, bucket: Bucket, cache: Cache, lease_seconds: float,
                 grace_seconds: float) -> None:
        self.bucket = bucket
        self.cache = cache
        self.location = bucket.location
        self.scratch = cache.scratch
        self.lease_seconds = lease_seconds
        self.grace = timedelta(seconds=grace_seconds)
        self.lease: Lease | None = None
        self._read: _Read | None = None

    @classmethod
    def for_config(cls, config: Config) -> S3Backend:
        from incremental_w2v.config.store import split_s3

        bucket_name, prefix = split_s3(config.store)
        location = f"s3://{bucket_name}/{prefix}" if prefix else f"s3://{bucket_name}"
        options = config.store_options
        endpoint = config.s3_endpoint
        ident = hashlib.sha256(f"{endpoint or 'aws'}|{bucket_name}|{prefix}".encode())
        root = cache_root(config) / ident.hexdigest()[:16]
        try:
            cache = Cache(root, options.cache_max_bytes, location)
        except OSError as exc:
            raise ConfigError(f"cannot use the cache folder {root}: {exc.strerror}",
                              hint=f"set {CACHE_ENV} or store_options.cache_dir to a writable "
                              "folder") from None
        return cls(Bucket(bucket_name, prefix, endpoint, location), cache,
                   options.lease_seconds, options.leftover_grace_seconds)

    # -- recognising ----------------------------------------------------------------------

    def is_new(self) -> bool:
        found, _ = self.bucket.listing("", limit=1)
        return not found

    def has_marker(self) -> bool:
        return self.bucket.exists(STORE_MARKER)

    def has_versions(self) -> bool:
        found, _ = self.bucket.listing(f"{VERSIONS}/", limit=1)
        return bool(found)

    def create(self, manifest: bytes) -> None:
        self.mark()
        # The one promise everything rests on: does this server honour If-None-Match?
        try:
            self.bucket.put(STORE_MARKER, self._marker(), if_none_match=True)
        except PreconditionFailed:
            pass
        else:
            raise ConfigError(
                f"the S3 server of {self.location} ignores conditional writes "
                "(If-None-Match): two hosts could both commit, so incw2v will not keep a "
                "store there",
                hint="use a server that supports conditional writes (AWS S3 since 2024, "
                "recent MinIO or Ceph)",
            )
        with suppress(PreconditionFailed):  # another host created it first: as good
            self.bucket.put(MANIFEST, manifest, if_none_match=True)

    @staticmethod
    def _marker() -> bytes:
        return json.dumps({"incw2v_store": 1, "created_at": now_iso(),
                           "tool_version": __version__}).encode()

    def mark(self) -> None:
        with suppress(PreconditionFailed):
            self.bucket.put(STORE_MARKER, self._marker(), if_none_match=True)

    # -- the manifest ---------------------------------------------------------------------

    def read_manifest_bytes(self, fresh: bool = False) -> bytes | None:
        if self._read is not None and self.lease is not None and not fresh:
            return self._read.body  # under the lease nobody else writes it
        found = self.bucket.get(MANIFEST)
        self._read = _Read(found.body, found.etag) if found else _Read(None, None)
        return self._read.body

    def write_manifest_bytes(self, data: bytes, upload: str | None = None) -> None:
        if self.lease is None:
            raise UsageError(f"internal: writing the manifest of {self.location} without "
                             "holding its lease")
        if self._read is None:
            self.read_manifest_bytes(fresh=True)
        assert self._read is not None
        self.lease.check()
        etag = self._read.etag
        try:
            new = (self.bucket.put(MANIFEST, data, if_none_match=True) if etag is None
                   else self.bucket.put(MANIFEST, data, if_match=etag))
        except PreconditionFailed:
            found = self.bucket.get(MANIFEST)
            if found is None or found.body != data:
                raise LockedError(
                    f"the manifest of {self.location} changed since this run read it: "
                    "another run committed or took the store over (this run's lease had "
                    "expired); nothing this run wrote became visible",
                    hint="re-run: it starts from the new manifest",
                ) from None
            new = found.etag  # our own write, retried after a lost reply: it landed
        except IncW2VError as exc:
            raise CommitOutcomeUnknown(
                f"{exc.message}; whether the manifest was replaced is not known",
                hint="re-run once the server is reachable: it finds out (a version that "
                "did become visible is kept, one that did not is removed later)",
            ) from None
        self._read = _Read(data, new)
        if upload is not None:
            try:  # committed: the record of the upload in progress has done its job
                self.bucket.delete(f"{UPLOADS}/{upload}.json")
            except IncW2VError as exc:
                logger.debug("the upload record stays (swept later): %s", exc)

    def set_aside_manifest(self) -> str | None:
        found = self.bucket.get(MANIFEST)
        self._read = _Read(found.body, found.etag) if found else _Read(None, None)
        if found is None:
            return None
        name = f"{MANIFEST}.damaged-{now_iso().replace(':', '')}"
        self.bucket.put(name, found.body)
        return name

    # -- versions -------------------------------------------------------------------------

    @staticmethod
    def _prefix(version: str, upload: str | None) -> str:
        if not VERSION_RE.match(version) or upload is None or not UPLOAD_RE.match(upload):
            raise DataError(f"version {version} has no valid upload in the manifest",
                            hint="restore the manifest, or 'incw2v repair CONFIG'")
        return f"{VERSIONS}/{version}/{upload}/"

    def read_meta_bytes(self, version: str, upload: str | None) -> bytes:
        prefix = self._prefix(version, upload)

        def fetch() -> bytes:
            found = self.bucket.get(prefix + META)
            if found is None:
                raise DataError(
                    f"version {version} is missing or incomplete in {self.location} "
                    f"(no {prefix}{META}; deleted by hand?)",
                    hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
                )
            return found.body

        return self.cache.meta(f"{version}-{upload}", fetch)

    def files_dir(self, version: str, upload: str | None, files: dict[str, str]) -> Path:
        prefix = self._prefix(version, upload)

        def fetch(name: str, path: Path) -> None:
            fd = create_new(path)
            with os.fdopen(fd, "wb") as out:
                actual = self.bucket.download(prefix + name, out)
            if actual != files[name]:
                raise DataError(
                    f"version {version}: {name} in {self.location} does not match its recorded "
                    f"sha256 (expected {files[name][:12]}…, found {actual[:12]}…); it was "
                    "changed or damaged, and will not be loaded",
                    hint="roll back to another version with 'incw2v rollback CONFIG VERSION'",
                )

        for name in files:
            if "/" in name or name.startswith(".") or name in (META, MARKER):
                raise DataError(f"version {version}: {name!r} is not a file name a version has",
                                hint="roll back to another version")
        return self.cache.copy_of(f"{version}-{upload}", sorted(files), fetch)

    def forget(self, version: str, upload: str | None) -> None:
        self.cache.forget(f"{version}-{upload}")

    def version_bytes(self, version: str, upload: str | None) -> int:
        return self.cache.size_of(f"{version}-{upload}")

    def taken(self) -> set[str]:
        return set()  # every upload has its own prefix: no name is ever in the way

    def staging(self) -> AbstractContextManager[Path]:
        return self.cache.private(self.scratch, ".staging-")

    def workdir(self) -> AbstractContextManager[Path]:
        return self.cache.private(self.scratch, ".work-")

    def _intent(self, upload: str, version: str, reason: str) -> None:
        body = {"version": version, "upload": upload, "reason": reason,
                **holder_info(reason), "fence": self.lease.fence if self.lease else None}
        body.pop("acquired_monotonic", None)
        self.bucket.put(f"{UPLOADS}/{upload}.json", json.dumps(body).encode(),
                        if_none_match=True)

    def publish(self, staging: Path, version: str) -> str | None:
        if self.lease is None:
            raise UsageError("internal: publishing without the lease")
        upload = secrets.token_hex(8)
        prefix = self._prefix(version, upload)
        self.lease.check()
        self._intent(upload, version, "upload")
        names = sorted(p.name for p in staging.iterdir() if p.name not in (META, MARKER))
        try:
            for name in [*names, META, MARKER]:
                self.lease.check()  # a run that lost its lease stops writing at once
                self.bucket.upload(prefix + name, staging / name)
        except BaseException:
            try:  # nobody can see it; take it back now rather than after the grace period
                self._delete_upload(version, upload)
            except Exception as exc:
                logger.debug("the partial upload stays until a later run sweeps it: %s", exc)
            raise
        # What we uploaded, we have: the next run on this host downloads none of it.
        self.cache.keep_meta(f"{version}-{upload}", (staging / META).read_bytes())
        self.cache.adopt(f"{version}-{upload}", staging)
        return upload

    def _delete_upload(self, version: str, upload: str) -> None:
        prefix = self._prefix(version, upload)
        found, _ = self.bucket.listing(prefix)
        list(self.bucket.abort_uploads(prefix))
        self.bucket.delete_many([f.key for f in found])
        self.bucket.delete(f"{UPLOADS}/{upload}.json")

    def unpublish(self, version: str, upload: str | None) -> None:
        if upload is not None:
            self._delete_upload(version, upload)

    def discard(self, version: str, upload: str | None, keep: tuple[str, ...] = ()) -> None:
        prefix = self._prefix(version, upload)
        if self._live_pins(version):
            return  # a reader pinned it since: the sweep deletes it after the grace period
        found, _ = self.bucket.listing(prefix)
        self.bucket.delete_many([f.key for f in found if f.key[len(prefix):] not in keep])
        self.bucket.delete(f"{UPLOADS}/{upload}.json")
        self.cache.forget(f"{version}-{upload}")

    def on_disk(self) -> Iterator[OnDisk]:
        found, _ = self.bucket.listing(f"{VERSIONS}/")
        complete: dict[str, list[str]] = {}
        for item in found:
            parts = item.key.split("/")
            if (len(parts) == 4 and parts[3] == MARKER and VERSION_RE.match(parts[1])
                    and UPLOAD_RE.match(parts[2])):
                complete.setdefault(parts[1], []).append(parts[2])
        pending = {m.group(1) for m in (_UPLOAD_KEY.match(f.key) for f in
                                        self.bucket.listing(f"{UPLOADS}/")[0]) if m}
        for version in sorted(complete):
            uploads = sorted(complete[version], key=lambda u: (u in pending, u))
            if len(uploads) > 1:
                logger.warning("%s has %d complete uploads; using %s (not a leftover of an "
                               "interrupted run)", version, len(uploads), uploads[0])
            prefix = f"{VERSIONS}/{version}/{uploads[0]}/"
            meta = self.bucket.get(f"{prefix}{META}")
            if meta is not None:
                names = frozenset(i.key[len(prefix):] for i in found if i.key.startswith(prefix))
                yield OnDisk(version, uploads[0], meta.body, names)

    # -- the lock, leftovers and readers --------------------------------------------------

    @contextmanager
    def lock(self, command: str, wait: float) -> Iterator[None]:
        lease = Lease(self.bucket, self.lease_seconds, command, self._record_break)
        lease.acquire(wait)
        self.lease, self._read = lease, None  # read the manifest afresh under the lease
        lease.start_renewing()
        try:
            yield
        finally:
            self.lease = None
            lease.release()

    def _record_break(self, state: dict[str, Any], fence: int) -> bool:
        """Write the break of an expired lease into the manifest, before taking the lease.

        From this write on, the old holder's commit (conditional on the manifest it
        read) can only fail. False if the manifest changed meanwhile (try again).
        """
        found = self.bucket.get(MANIFEST)
        try:
            manifest = Manifest.model_validate_json(found.body) if found else Manifest()
        except ValueError:
            manifest = None
        holder = state.get("holder") or {}
        detail = (f"lease of pid {holder.get('pid')} on host {holder.get('host')} "
                  f"({holder.get('command')}, fence {state.get('fence')}) broken: "
                  f"{state.get('why')}; taken over by pid {os.getpid()} on host "
                  f"{host_name()}, fence {fence}")
        if manifest is None:  # a damaged manifest: leave it for repair, just take the lease
            logger.warning("%s", detail)
            return True
        manifest.events.append(Event(at=now_iso(), action="lease-broken", detail=detail))
        try:
            if found is None:
                self.bucket.put(MANIFEST, manifest.to_json(), if_none_match=True)
            else:
                self.bucket.put(MANIFEST, manifest.to_json(), if_match=found.etag)
        except PreconditionFailed:
            return False
        logger.warning("%s", detail)
        return True

    def sweep(self, listed: dict[str, str | None] | None) -> list[str]:
        removed = [f"cache {name}" for name in self.cache.sweep()]
        if listed is None:
            return removed  # no manifest: nothing can be told to be a leftover
        found, server_now = self.bucket.listing(f"{UPLOADS}/")
        for item in found:
            match = _UPLOAD_KEY.match(item.key)
            if match is None:
                continue  # not a name incw2v writes: left alone
            upload = match.group(1)
            record = self.bucket.get(item.key)
            try:
                intent = json.loads(record.body) if record else {}
                version = str(intent["version"])
            except (ValueError, KeyError, TypeError):
                version = ""
            if not VERSION_RE.match(version):
                continue
            if listed.get(version) == upload:
                # Committed (or a deletion that never happened): only the record goes.
                self.bucket.delete(item.key)
                continue
            if server_now - item.last_modified < self.grace or self._live_pins(version):
                continue  # young: it may belong to a run that still holds a lease
            self._delete_upload(version, upload)
            removed.append(f"{VERSIONS}/{version}/{upload}")
        return removed

    def _live_pins(self, version: str) -> list[str]:
        found, server_now = self.bucket.listing(f"{READERS}/{version}/")
        live = []
        for item in found:
            if server_now - item.last_modified < self.grace:
                live.append(item.key)
            else:
                try:
                    self.bucket.delete(item.key)  # a reader that died: its pin is stale
                except IncW2VError as exc:
                    logger.debug("cannot delete a stale pin: %s", exc)
        return live

    @contextmanager
    def pin(self, version: str) -> Iterator[None]:
        name = f"{READERS}/{version}/{host_name()}-{os.getpid()}-{secrets.token_hex(3)}.json"
        try:
            self.bucket.put(name, json.dumps(holder_info("read")).encode())
        except IncW2VError as exc:  # read-only credentials: nothing can prune, either
            logger.debug("no reader pin for %s: %s", version, exc)
            name = ""
        try:
            yield
        finally:
            if name:
                try:
                    self.bucket.delete(name)
                except IncW2VError as exc:
                    logger.debug("cannot remove the reader pin %s: %s", name, exc)

    @contextmanager
    def exclusive(self, versions: list[str]) -> Iterator[PruneLocks]:
        locks = PruneLocks()
        uploads = self._listed_uploads()
        for version in versions:
            if self._live_pins(version):
                locks.held.append(version)
                continue
            upload = uploads.get(version)
            if upload is not None:
                # Recorded before the manifest forgets it: a crash later leaves a leftover
                # that a later sweep can find and remove.
                with suppress(PreconditionFailed):  # a record of it is there already
                    self._intent(upload, version, "delete")
            locks.free.append(version)
        yield locks

    def _listed_uploads(self) -> dict[str, str]:
        body = self.read_manifest_bytes()
        if body is None:
            return {}
        return {v.version: v.upload for v in Manifest.model_validate_json(body).versions
                if v.upload is not None}

