"""Where a store keeps its bytes: the one interface of a store's backends.

``store.store.Store`` holds the protocol (what a version is, the manifest as
the one commit point, what is verified before anything is unpickled); a
backend holds the bytes and the lock: a local folder (``store.local``) or an
object-store prefix (``store.s3``). The layers above the store talk to
``Store`` only, so they work unchanged on either.

A version is *published* (all of its files, ``meta.json`` and ``COMMITTED``
made durable where readers could find them) and only then *committed*, by
the manifest write. A backend never lets a published version become visible
by itself: readers go through the manifest. Names a backend creates for its
own work (staging folders, uploads in progress) are swept only by the
backend, only inside a recognised store, and only by their exact pattern.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from incremental_w2v.errors import StoreIOError

# The names inside a store (local folder or object prefix).
MANIFEST = "manifest.json"
VERSIONS = "versions"
META = "meta.json"
MARKER = "COMMITTED"
MODEL = "model"
STAGING_PREFIX = ".staging-"
WORK_PREFIX = ".work-"
TRASH_PREFIX = ".trash-"
# What the tool creates, exactly: the sweep removes nothing else.
STAGING_RE = re.compile(r"^\.staging-[0-9a-f]{8}$")
WORK_RE = re.compile(r"^\.work-[0-9a-f]{8}$")
TRASH_RE = re.compile(r"^\.trash-v\d{4,}-[0-9a-f]{6}$")
TMP_RE = re.compile(r"^\.incw2v-tmp-[0-9a-f]{8}-")


class CommitOutcomeUnknown(StoreIOError):
    """The manifest write was sent but its outcome could not be learned (the store is
    unreachable): the version may be committed or not, so its files must stay."""


@dataclass
class PruneLocks:
    """The versions prune may delete now, and those a reader holds open (kept this time)."""

    free: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    fds: dict[str, int] = field(default_factory=dict)


@dataclass
class OnDisk:
    """A complete version found in the backend (for ``repair``): its name and upload."""

    version: str
    upload: str | None
    meta: bytes
    names: frozenset[str] = frozenset()  # the version's files present (a pruned one: its record)


class Backend(ABC):
    """The bytes and the lock of one store."""

    #: how messages name the store (ASCII-safe, no credential)
    location: str
    #: the local folder for working files and staging (free space is checked there)
    scratch: Path
    #: True when versions live elsewhere and are fetched into a local cache
    remote: bool = False

    # -- recognising ----------------------------------------------------------------------

    @abstractmethod
    def is_new(self) -> bool:
        """True if there is nothing at the store's place yet (no folder, or an empty one)."""

    @abstractmethod
    def has_marker(self) -> bool:
        """True if the store marker the tool writes at creation is there."""

    @abstractmethod
    def has_versions(self) -> bool:
        """True if complete version data is there (whatever the manifest says)."""

    @abstractmethod
    def create(self, manifest: bytes) -> None:
        """Make a new store: its marker first, then the (empty) ``manifest``.

        A store always has a manifest once it has a version, so a missing one
        can only mean damage, never an interrupted first commit.
        """

    @abstractmethod
    def mark(self) -> None:
        """Add the marker to a store made by an earlier incw2v (it has a valid manifest)."""

    # -- the manifest: the one commit point -----------------------------------------------

    @abstractmethod
    def read_manifest_bytes(self, fresh: bool = False) -> bytes | None:
        """The manifest as stored, or None if there is none.

        Under the lock a backend may answer from what it last read or wrote
        (nobody else writes meanwhile); ``fresh`` reads it again regardless.
        """

    @abstractmethod
    def write_manifest_bytes(self, data: bytes, upload: str | None = None) -> None:
        """Replace the manifest (the commit point); committed once this returns.

        ``upload``: the upload this write commits, so that a retried write
        whose first attempt did land can be told from a lost race.
        """

    @abstractmethod
    def set_aside_manifest(self) -> str | None:
        """Move a damaged manifest out of the way (``repair``); its new name, or None."""

    # -- versions ----------------------------------------------------------------------------

    @abstractmethod
    def read_meta_bytes(self, version: str, upload: str | None) -> bytes:
        """``meta.json`` of a published version (DataError if it is missing or incomplete)."""

    @abstractmethod
    def files_dir(self, version: str, upload: str | None, files: dict[str, str]) -> Path:
        """A local folder holding the version's ``files`` (name -> sha256).

        A remote backend downloads them into its cache, checking each against its
        sha256 on the way; the caller still verifies before it unpickles.
        """

    def forget(self, version: str, upload: str | None) -> None:
        """Drop a local copy of the version's files that failed verification (a remote
        backend fetches it again next time; a local store has no other copy)."""
        return None

    @abstractmethod
    def version_bytes(self, version: str, upload: str | None) -> int:
        """About how many bytes the version takes locally (0 when unknown)."""

    @abstractmethod
    def taken(self) -> set[str]:
        """Version names that are in use by something the manifest does not list."""

    @abstractmethod
    def staging(self) -> AbstractContextManager[Path]:
        """A new, private local folder for a version being written; removed on exit."""

    @abstractmethod
    def workdir(self) -> AbstractContextManager[Path]:
        """A new, private local folder for working files; removed on exit."""

    @abstractmethod
    def publish(self, staging: Path, version: str) -> str | None:
        """Make the sealed ``staging`` folder durable as ``version``; returns its upload id.

        Published is not committed: nobody reads it until the manifest lists it.
        """

    @abstractmethod
    def unpublish(self, version: str, upload: str | None) -> None:
        """Take back a version published but never committed (best effort; swept later)."""

    @abstractmethod
    def discard(self, version: str, upload: str | None, keep: tuple[str, ...] = ()) -> None:
        """Delete the files of a version the manifest no longer needs, except ``keep``.

        ``keep=(META, MARKER)`` deletes the arrays but keeps the version's record.
        """

    @abstractmethod
    def on_disk(self) -> Iterator[OnDisk]:
        """Every complete version the backend holds, listed or not (for ``repair``)."""

    # -- the lock, leftovers and readers ------------------------------------------------------

    @abstractmethod
    def lock(self, command: str, wait: float) -> AbstractContextManager[None]:
        """One writer at a time; LockedError (75) if another holds it after ``wait`` seconds."""

    @abstractmethod
    def sweep(self, listed: dict[str, str | None] | None) -> list[str]:
        """Remove leftovers of interrupted runs (with the lock held); what was removed.

        ``listed``: version -> upload of the manifest, or None when there is no
        manifest (then no version data may be removed).
        """

    @abstractmethod
    def pin(self, version: str) -> AbstractContextManager[None]:
        """Hold ``version`` while reading it, so that ``prune`` keeps it."""

    @abstractmethod
    def exclusive(self, versions: list[str]) -> AbstractContextManager[PruneLocks]:
        """Claim ``versions`` for deletion; those a reader holds go to ``held``."""
