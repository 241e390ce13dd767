"""Publishing the current version where consumers read it (the config's ``publish:``).

After every change of the current version (add-corpus, rollback, promote,
rebuild) each target gets the current version's vectors at fixed names
(``vectors.txt``, ``vectors.bin``, ``vectors.kv`` and its ``.npy``), then a
small pointer, ``current.json``, written last::

    {"version": "v0004", "created_at": ..., "published_at": ..., "vocab_size": ...,
     "vector_size": ..., "files": {"vectors.bin": {"format": ..., "sha256": ..., "bytes": ...}}}

Every file is replaced atomically (a local rename; on S3 a PUT, which is
atomic), so a reader never sees a half-written file. A serving process polls
the pointer; when its version changes it reads the files it lists and checks
their sha256: a mismatch means a newer publish is under way, and it reads the
pointer again (docs/publish.md). A target whose pointer already names the
current version, and whose files are the pointer's, is left alone, so a no-op
run reads one small file and checks each file's identity per target, and writes
nothing; a publish that failed is retried by the next run.

The files are checked because a publish killed half-way leaves newer files
under an older pointer: if the current version is then moved back to the one
the pointer names (a rollback), the pointer alone would say "up to date" and
the mix would stay. Hashing every file on every cron run would read gigabytes
for a large model, so each file's identity is recorded in the pointer when it
is written and compared instead: locally its size and mtime (``mtime_ns``; a
publish replaces a file by a rename of a newly written one, which changes
them), on S3 the sha256 the object carries in its metadata (one HEAD per file).
A pointer written before these were recorded is published once more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from incremental_w2v.config.schema import Config, PublishTarget
from incremental_w2v.errors import ConfigError, IncW2VError, StoreIOError
from incremental_w2v.fsutil import atomic_write_bytes, os_error, sha256_file, store_root_of
from incremental_w2v.store.bucket import scrubbed
from incremental_w2v.store.manifest import VersionMeta, now_iso
from incremental_w2v.store.store import Store
from incremental_w2v.uris import redact

logger = logging.getLogger(__name__)
T = TypeVar("T")

POINTER = "current.json"
FILE_NAMES = {"word2vec-text": "vectors.txt", "word2vec-binary": "vectors.bin",
              "keyedvectors": "vectors.kv"}


class Target(Protocol):
    """Where one ``publish:`` entry writes: a local folder or an S3 prefix."""

    shown: str
    staged: bool  # files are written to the store's working folder, then uploaded

    def read_pointer(self) -> dict[str, Any] | None: ...

    def put(self, name: str, path: Path, sha256: str) -> dict[str, Any]:
        """Store ``path`` as ``name``; what to record in the pointer to know it again."""

    def holds(self, name: str, info: dict[str, Any]) -> bool:
        """Whether the file ``name`` is still the one the pointer's ``info`` describes."""

    def put_pointer(self, data: bytes) -> None: ...

    @contextmanager
    def files(self, store: Store) -> Iterator[Path]: ...


class LocalTarget:
    """A folder: the vectors are written in place by ``write_vectors`` (atomically)."""

    staged = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.shown = str(folder)

    def read_pointer(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.folder / POINTER).read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @contextmanager
    def files(self, store: Store) -> Iterator[Path]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, f"creating the publish folder {self.folder}") from None
        yield self.folder

    def put(self, name: str, path: Path, sha256: str) -> dict[str, Any]:
        # Written in place already (renamed into its final name): record what it is now.
        return {"mtime_ns": path.stat().st_mtime_ns}

    def holds(self, name: str, info: dict[str, Any]) -> bool:
        try:
            found = (self.folder / name).stat()
        except OSError:
            return False
        return found.st_size == info.get("bytes") and found.st_mtime_ns == info.get("mtime_ns")

    def put_pointer(self, data: bytes) -> None:
        atomic_write_bytes(self.folder / POINTER, data)


class S3Target:
    """An ``s3://bucket/prefix``: files are written locally, then each is PUT (atomic).

    It goes through the store's own :class:`~incremental_w2v.store.bucket.Bucket`, so its
    errors are scrubbed of every credential as the store's are; on the store's server
    (``Config.s3_endpoint``).
    """

    staged = True

    def __init__(self, uri: str, endpoint_url: str | None, setting: str) -> None:
        from incremental_w2v.config.store import split_s3
        from incremental_w2v.store.bucket import Bucket  # botocore only for S3 targets

        self.shown = redact(uri)
        self.bucket = Bucket(*split_s3(uri), endpoint_url, self.shown, setting=setting)

    @staticmethod
    def _io(call: Callable[[], T]) -> T:
        # A target that cannot be written (its bucket missing, the credentials refused) is
        # an I/O failure of the publish (74), whatever it would mean for the store.
        try:
            return call()
        except ConfigError as exc:
            raise StoreIOError(exc.headline, hint=exc.hint) from None

    def read_pointer(self) -> dict[str, Any] | None:
        found = self._io(lambda: self.bucket.get(POINTER))
        if found is None:
            return None
        try:
            data = json.loads(found.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @contextmanager
    def files(self, store: Store) -> Iterator[Path]:
        with store.workdir() as work:
            yield work

    def put(self, name: str, path: Path, sha256: str) -> dict[str, Any]:
        self._io(lambda: self.bucket.upload(name, path, metadata={"sha256": sha256}))
        return {}  # the object carries its sha256

    def holds(self, name: str, info: dict[str, Any]) -> bool:
        found = self._io(lambda: self.bucket.head(name))
        return bool(found is not None and found["bytes"] == info.get("bytes")
                    and found["metadata"].get("sha256") == info.get("sha256"))

    def put_pointer(self, data: bytes) -> None:
        self._io(lambda: self.bucket.put(POINTER, data, content_type="application/json"))


def target_of(config: Config, index: int) -> Target:
    entry = config.publish[index]
    where = config.publish_location(entry)
    if where.lower().startswith("s3://"):
        return S3Target(where, config.s3_endpoint, f"publish[{index}].to")
    return LocalTarget(Path(where))


def is_stale(pointer: dict[str, Any] | None, current: str, entry: PublishTarget,
             target: Target) -> bool:
    """Whether ``target`` must be published again: its pointer names another version or
    lacks a format, or one of its files is not the one the pointer names (a publish was
    killed after it replaced some files)."""
    if pointer is None or pointer.get("version") != current:
        return True
    files = pointer.get("files")
    if not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
        return True
    if not set(entry.formats) <= {f.get("format") for f in files.values()}:
        return True
    return not all(target.holds(name, info) for name, info in files.items())


def publish_current(store: Store, config: Config, force: bool = False) -> list[str]:
    """Write the current version to every stale ``publish:`` target (caller holds the lock).

    Returns the targets written. An error names what was committed: the store
    is fine, only the consumers' copy is behind (the next run retries).
    """
    if not config.publish:
        return []
    manifest = store.read_manifest()
    current = manifest.current
    if current is None:
        return []
    written: list[str] = []
    loaded: list[tuple[VersionMeta, Any]] = []  # the version's meta and model, read once
    for index, entry in enumerate(config.publish):
        target = None
        try:
            target = target_of(config, index)
            if not force and not is_stale(target.read_pointer(), current, entry, target):
                continue
            if not loaded:
                with store.pinned(current):
                    loaded.append((store.read_meta(current),
                                   store.load_model(current, mmap="r")))
            _publish(store, *loaded[0], entry, target)
        except IncW2VError as exc:
            exc.message = (f"{exc.message} (while publishing {current} to "
                           f"{target.shown if target else redact(entry.to)}; {current} is "
                           "committed and current in the store)")
            exc.hint = ((exc.hint + "; ") if exc.hint else "") + (
                "'incw2v publish CONFIG' retries, and so does the next add-corpus run")
            raise
        except Exception as exc:  # an OSError, or the SDK's own (building its client)
            raise StoreIOError(
                f"publishing {current} to {target.shown if target else redact(entry.to)} "
                f"failed: {type(exc).__name__}: {scrubbed(str(exc))[:300]}; {current} is "
                "committed and current in the store",
                hint="check the target (network, endpoint, credentials, bucket); "
                "'incw2v publish CONFIG' retries, and so does the next add-corpus run",
            ) from None
        written.append(target.shown)
    return written


def _publish(store: Store, meta: VersionMeta, model: Any, entry: PublishTarget,
             target: Target) -> None:
    from incremental_w2v.vectors.io import write_vectors  # gensim: only when writing

    files: dict[str, dict[str, Any]] = {}
    logger.info("publishing %s to %s (%s)", meta.version, target.shown, ", ".join(entry.formats))
    with target.files(store) as folder:
        for fmt in entry.formats:
            main = FILE_NAMES[fmt]
            # Side files first, the main file last, as a local publish renames them.
            # An S3 target's files are staged in the store's own working folder; a local
            # target is an output like any other, never inside a store.
            written = write_vectors(model.wv, fmt, folder / main,
                                    store=store_root_of(folder) if target.staged else None)
            for path in sorted(written, key=lambda p: p.name == main):
                digest = sha256_file(path)
                files[path.name] = {"format": fmt, "sha256": digest,
                                    "bytes": path.stat().st_size}
                files[path.name].update(target.put(path.name, path, digest))
        # Written last: a reader that sees this version finds every file already in place.
        target.put_pointer(pointer(meta, files))
    logger.info("published %s to %s (%s)", meta.version, target.shown,
                ", ".join(sorted(files)))


def pointer(meta: VersionMeta, files: dict[str, dict[str, Any]]) -> bytes:
    data = {
        "version": meta.version,
        "created_at": meta.created_at,
        "published_at": now_iso(),
        "vocab_size": meta.vocab_size,
        "vector_size": meta.params.get("vector_size"),
        "files": files,
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
