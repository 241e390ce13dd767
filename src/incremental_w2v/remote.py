"""Cheap fingerprints of remote objects (HTTP, S3) without reading them."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from .errors import InputMissingError, StoreIOError
from .uris import redact, scheme_of, scrub

if TYPE_CHECKING:
    from .sources import SourceOptions, SourceStat


def remote_stat(uri: str, options: SourceOptions) -> SourceStat:
    """Size, ETag and Last-Modified of a remote object (HEAD request)."""
    from .sources import SourceStat

    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        request = urllib.request.Request(uri, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                headers = response.headers
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise InputMissingError(f"corpus {redact(uri)} does not exist (HTTP 404)") from None
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
    if scheme == "s3":
        return _s3_stat(uri, options)
    # Other schemes: no cheap check; the content hash decides.
    return SourceStat(size=None)


def _s3_stat(uri: str, options: SourceOptions) -> SourceStat:
    import boto3
    import botocore.exceptions

    from .sources import SourceStat

    bucket, _, key = uri[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=options.s3_endpoint_url)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
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
