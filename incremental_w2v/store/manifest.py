"""The store's records: the manifest (single source of truth) and each version's meta.

Both are pydantic models written as JSON. A version's ``meta.json`` holds its
whole lineage (every corpus applied since the base, with fingerprints), so
that finding what is pending needs one small file, never a model.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, field_validator

from incremental_w2v.config.base import StrictRecord

FORMAT_VERSION = 1
VERSION_RE = re.compile(r"^v\d{4,}$")
# What a user may type for a version: v0003, v3 and 3 all name v0003.
VERSION_REF = re.compile(r"^v?\d+$")
# An upload of a version to an object store: its own prefix, so attempts never mix.
UPLOAD_RE = re.compile(r"^[0-9a-f]{16}$")


def version_name(ref: str) -> str:
    """``v3``, ``3`` and ``v0003`` all name v0003; anything else is returned as it is."""
    return f"v{int(ref.lstrip('v')):04d}" if VERSION_REF.match(ref) else ref


def checked_version(value: str) -> str:
    """``value`` if it is a version name (names become paths: nothing like '../x' or
    '/etc' may get through); else ValueError."""
    if not VERSION_RE.match(value):
        raise ValueError(f"not a version name: {value!r}")
    return value


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Fingerprint(StrictRecord):
    """How a corpus is recognised: a cheap check (stat) and the content hash."""

    size: int | None = None
    mtime_ns: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str


class CorpusRecord(StrictRecord):
    """One corpus applied to a lineage."""

    name: str
    uri: str  # redacted, as written in the config (relative paths stay relative)
    fingerprint: Fingerprint
    format: dict[str, Any] = Field(default_factory=dict)
    tokenize: dict[str, Any] = Field(default_factory=dict)
    sentences: int
    tokens: int
    skipped: int = 0
    replacements: int = 0
    applied_in: str
    read_seconds: float = 0.0


class VersionMeta(StrictRecord):
    """``versions/vNNNN/meta.json``: everything known about one version."""

    format_version: int = FORMAT_VERSION
    version: str
    created_at: str
    parent: str | None
    kind: Literal["base", "update", "rebuild", "import"]
    # What the lineage started from, as the config named it: {"corpus": key} or
    # {"model": key, "sha256": ...}; a config naming another base is refused. Empty in
    # versions written before it was recorded (their base corpora tell).
    base: dict[str, str] = Field(default_factory=dict)
    corpora: list[CorpusRecord]  # the whole lineage, base first
    added: list[str]  # names of the corpora this version applied
    params: dict[str, Any]
    update_params: dict[str, Any] = Field(default_factory=dict)
    tokenize: dict[str, Any] = Field(default_factory=dict)
    vocab_size: int
    words_added: int = 0
    top_new_words: list[str] = Field(default_factory=list)
    files: dict[str, str]  # file name -> sha256, checked before the model is read
    # How the model is saved (vectors.model_file): 1, gensim's pickle (versions written
    # before 0.2); 2, JSON and .npy arrays, read without pickle.
    model_format: int = 1
    timings: dict[str, float] = Field(default_factory=dict)
    scores: dict[str, Any] = Field(default_factory=dict)
    watch: dict[str, Any] = Field(default_factory=dict)  # neighbours of the config's watch words
    drift: dict[str, Any] = Field(default_factory=dict)  # against the parent and the last rebuild
    gate: dict[str, Any] = Field(default_factory=dict)  # the gates' verdict at commit
    notes: list[str] = Field(default_factory=list)
    tool_version: str = ""

    @field_validator("version", "parent")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        return None if value is None else checked_version(value)


class VersionEntry(StrictRecord):
    version: str
    created_at: str
    parent: str | None = None
    kind: str
    status: Literal["committed", "candidate", "rejected"] = "committed"
    added: list[str] = Field(default_factory=list)
    # When prune or retention deleted the version's arrays; its meta.json (the lineage
    # record: corpora, fingerprints, scores, drift) stays, so the history stays whole.
    pruned_at: str | None = None
    # Object stores only: the upload (``versions/VERSION/UPLOAD/``) this entry commits.
    upload: str | None = None

    @field_validator("version")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return checked_version(value)

    @field_validator("upload")
    @classmethod
    def _safe_upload(cls, value: str | None) -> str | None:
        if value is not None and not UPLOAD_RE.match(value):
            raise ValueError(f"not an upload id: {value!r}")
        return value


class Event(StrictRecord):
    at: str
    action: str
    version: str | None = None
    detail: str = ""


class Exclusion(StrictRecord):
    """A corpus kept out of the lineage: the planner skips it until the exclusion is undone."""

    key: str  # uris.corpus_key: a local file's absolute path, or a remote URI (redacted)
    uri: str  # as the user or the lineage wrote it (redacted)
    name: str | None = None
    reason: str = ""
    at: str
    version: str | None = None  # the version that applied it, when known


class Manifest(StrictRecord):
    format_version: int = FORMAT_VERSION
    current: str | None = None
    versions: list[VersionEntry] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    exclusions: list[Exclusion] = Field(default_factory=list)
    # Versions whose arrays a prune is deleting: set by the prune's manifest write (the
    # commit point), cleared once the files are gone; a run that finds it set finishes.
    discarding: list[str] = Field(default_factory=list)

    def entry(self, version: str) -> VersionEntry | None:
        return next((v for v in self.versions if v.version == version), None)

    def to_json(self) -> bytes:
        """The manifest as written. Keys of later features are left out until used (a
        local store never uses ``upload``; pruning, exclusions only once asked for), so
        that a store that uses none of them stays readable by earlier versions of incw2v."""
        data = self.model_dump(mode="json")
        for key in ("exclusions", "discarding"):
            if not data[key]:
                del data[key]
        for entry in data["versions"]:
            for key in ("upload", "pruned_at"):
                if entry.get(key) is None:
                    entry.pop(key, None)
        return json.dumps(data, indent=2).encode()

    def next_version(self, taken: set[str]) -> str:
        numbers = [int(v.version[1:]) for v in self.versions] + [int(t[1:]) for t in taken]
        return f"v{(max(numbers) + 1) if numbers else 1:04d}"
