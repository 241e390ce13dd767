"""Config for where the store lives: ``store:`` (a folder or ``s3://bucket/prefix``) and
``store_options:`` (an object store's endpoint, local cache, lease and leftovers).

Credentials never appear here: an object store is reached with the
environment's or the SDK's credentials (``AWS_ACCESS_KEY_ID``, a profile, an
instance role), never with a key in the URI.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from incremental_w2v.config.base import Strict
from incremental_w2v.uris import credential_problem, malformed_problem, redact, scheme_of

S3_SCHEME = "s3"
# S3's rules for bucket names (lower case, digits, dots and hyphens; 3-63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_remote_store(value: str) -> bool:
    return scheme_of(value) == S3_SCHEME


def split_s3(value: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix`` (the prefix without slashes at its ends)."""
    parts = urlsplit(value)
    return parts.netloc, parts.path.strip("/")


def store_problem(value: str) -> str | None:
    """Why ``value`` cannot be a store's place, or None."""
    if not value.strip():
        return "must not be empty"
    if _CONTROL.search(value):
        return "must not contain control characters"
    scheme = scheme_of(value)
    if scheme in ("", "file"):
        malformed = malformed_problem(value)  # 's3:/bucket' would be a local folder 's3:'
        return f"{redact(value)} is refused: {malformed}" if malformed else None
    if scheme != S3_SCHEME:
        return (f"{redact(value)}: a store is a local folder or s3://bucket/prefix "
                f"({scheme}:// is not supported for stores)")
    problem = credential_problem(value)
    if problem:
        return (f"{redact(value)} is refused: {problem}; give credentials through the "
                "environment or your SDK's configuration, never in the URI")
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        return f"{redact(value)}: a store URI takes no query or fragment"
    bucket, prefix = split_s3(value)
    if not _BUCKET.match(bucket):
        return f"{redact(value)}: {bucket!r} is not a valid S3 bucket name"
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        return f"{redact(value)}: the prefix must not hold empty, '.' or '..' parts"
    return None


class StoreOptions(Strict):
    """``store_options:``: settings of a store on S3 (or MinIO, Ceph, any S3-compatible server)."""

    endpoint_url: str | None = Field(
        None, description="the S3-compatible server of the store and of publish targets on "
        "S3 (default: sources.s3_endpoint_url, else the SDK's own, i.e. AWS)")
    cache_dir: str | None = Field(
        None, description="local cache of downloaded versions (default: $INCW2V_CACHE_DIR, "
        "else $XDG_CACHE_HOME/incw2v or ~/.cache/incw2v); working files go there too")
    cache_max_bytes: int = Field(
        10 << 30, ge=1 << 20, description="the cache keeps the most recently used versions up "
        "to this size (the version in use is kept whatever its size)")
    lease_seconds: float = Field(
        60.0, ge=1.0, le=86_400.0, allow_inf_nan=False,
        description="how long the store's lease lasts unless renewed (its holder renews it "
        "every third of this while it works)")
    leftover_grace_seconds: float = Field(
        900.0, ge=2.0, le=30 * 86_400.0, allow_inf_nan=False,
        description="uploads that never became visible are removed once they are this old "
        "(must be longer than the lease)")

    @model_validator(mode="after")
    def _grace_outlasts_the_lease(self) -> StoreOptions:
        if self.leftover_grace_seconds <= self.lease_seconds:
            raise ValueError(
                f"leftover_grace_seconds ({self.leftover_grace_seconds:g}) must be longer than "
                f"lease_seconds ({self.lease_seconds:g}): an upload younger than a lease may "
                "still belong to a run that holds it")
        if self.endpoint_url is not None:
            problem = credential_problem(self.endpoint_url)
            if problem or scheme_of(self.endpoint_url) not in ("http", "https"):
                why = f": {problem}" if problem else ""
                raise ValueError(f"endpoint_url {redact(self.endpoint_url)} must be an "
                                 f"http(s) URL without credentials{why}")
        return self
