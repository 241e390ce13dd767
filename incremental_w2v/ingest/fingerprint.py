"""Cheap fingerprints of sources (local stat, HTTP or S3 HEAD), without reading them.

A fingerprint (size, mtime, ETag) is what tells an applied corpus from a
changed one at no cost; only when it differs is the content hashed. The one
rule for "this object does not exist" lives here too, and goes by status or
error code only, never by the text of an error message.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incremental_w2v.errors import ConfigError, InputMissingError, StoreIOError
from incremental_w2v.uris import ascii_url, redact, resolve_local, scheme_of, scrub

# Error codes of S3 and S3-compatible stores that mean "no such object".
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion"})


@dataclass(frozen=True)
class SourceStat:
    """What can be learnt about a source without reading it (the cheap fingerprint)."""

    size: int | None
    mtime_ns: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    # False for a pipe or device: it can be read once, never re-read to check a hash.
    rereadable: bool = True


# Seconds a source may go without sending a byte before the read fails (sources.stall_timeout).
STALL_TIMEOUT = 300.0


@dataclass
class SourceOptions:
    """Settings that reach the transport (an S3-compatible endpoint, the stall timeout)."""

    s3_endpoint_url: str | None = None
    stall_timeout: float = STALL_TIMEOUT

    def s3_client(self) -> Any:
        """An S3 client that gives up on a silent connection after ``stall_timeout``."""
        import boto3
        from botocore.config import Config as BotoConfig

        timeout = self.stall_timeout
        return boto3.client("s3", endpoint_url=self.s3_endpoint_url, config=BotoConfig(
            connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3}))

    def transport_params(self, uri: str) -> dict[str, Any]:
        scheme = scheme_of(uri)
        if scheme in ("s3", "s3a", "s3n", "s3u"):
            return {"client": self.s3_client()}
        if scheme in ("http", "https"):
            return {"timeout": self.stall_timeout}  # requests: seconds without a byte
        if scheme == "azure":
            # smart_open needs a client for Azure; build it from the SDK's usual variable.
            connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            if not connection:
                raise ConfigError(
                    f"corpus {redact(uri)}: reading azure:// needs the environment variable "
                    "AZURE_STORAGE_CONNECTION_STRING",
                    hint="export AZURE_STORAGE_CONNECTION_STRING (never put it in the config)",
                )
            from azure.storage.blob import BlobServiceClient  # type: ignore[import-not-found]

            return {"client": BlobServiceClient.from_connection_string(connection)}
        return {}


def stat(uri: str, base_dir: Path, options: SourceOptions | None = None) -> SourceStat:
    """The cheap fingerprint of ``uri``; raises InputMissingError when it does not exist."""
    local = resolve_local(uri, base_dir)
    if local is not None:
        try:
            st = local.stat()
        except FileNotFoundError:
            raise InputMissingError(
                f"corpus {redact(uri)} does not exist", hint="check the path in the config"
            ) from None
        except OSError as exc:
            raise StoreIOError(f"cannot stat corpus {redact(uri)}: {exc.strerror}") from None
        import stat as stat_module

        return SourceStat(
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            rereadable=stat_module.S_ISREG(st.st_mode),
        )
    return remote_stat(uri, options or SourceOptions())


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the object does not exist, by its code."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, FileNotFoundError):
            return True
        if isinstance(current, urllib.error.HTTPError) and current.code in (404, 410):
            return True
        response = getattr(current, "response", None)
        if getattr(response, "status_code", None) in (404, 410):  # requests
            return True
        if isinstance(response, dict):  # botocore's ClientError
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _MISSING_CODES or status == 404:
                return True
        current = current.__cause__ or current.__context__
    return False


def remote_stat(uri: str, options: SourceOptions) -> SourceStat:
    """Size, ETag and Last-Modified of a remote object (HEAD request)."""
    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        request = urllib.request.Request(ascii_url(uri), method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=options.stall_timeout) as response:
                headers = response.headers
        except urllib.error.HTTPError as exc:
            if is_not_found(exc):
                raise InputMissingError(
                    f"corpus {redact(uri)} does not exist (HTTP {exc.code})") from None
            raise StoreIOError(f"cannot reach corpus {redact(uri)}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = scrub(str(getattr(exc, "reason", exc)), uri)
            raise StoreIOError(
                f"cannot reach corpus {redact(uri)}: {reason}",
                hint="check the network and the URL, then re-run",
            ) from None
        length = headers.get("Content-Length")
        return SourceStat(
            size=int(length) if length and length.isdigit() else None,
            etag=headers.get("ETag"),
            last_modified=headers.get("Last-Modified"),
        )
    if scheme in ("s3", "s3a", "s3n", "s3u"):
        return _s3_stat(uri, options)
    # Other schemes: no cheap check; the content hash decides.
    return SourceStat(size=None)


def _s3_stat(uri: str, options: SourceOptions) -> SourceStat:
    import botocore.exceptions

    bucket, _, key = uri.split("://", 1)[1].partition("/")
    client = options.s3_client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if is_not_found(exc):
            raise InputMissingError(f"corpus {redact(uri)} does not exist") from None
        raise StoreIOError(
            f"cannot read corpus {redact(uri)}: S3 error {code}",
            hint="check the bucket, the endpoint and your credentials",
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise StoreIOError(
            f"cannot reach corpus {redact(uri)}: {type(exc).__name__}",
            hint="check the endpoint URL and the network, then re-run",
        ) from None
    modified = head.get("LastModified")
    return SourceStat(
        size=int(head["ContentLength"]),
        etag=str(head.get("ETag", "")).strip('"') or None,
        last_modified=modified.isoformat() if modified is not None else None,
    )
