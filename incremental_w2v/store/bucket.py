"""The few S3 calls a store makes, on one bucket and prefix, with our errors.

Conditional writes are S3's own (since 2024, and in MinIO, Ceph and moto):
``If-None-Match: *`` creates an object only if it is absent, ``If-Match:
ETAG`` replaces only the version that was read; a refused condition raises
:class:`PreconditionFailed`. Credentials come from the environment or the
SDK's chain and never appear in a message: errors are rewritten here, with
every credential value masked (:func:`scrubbed`, which publish targets use too).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO

from incremental_w2v.errors import ConfigError, IncW2VError, OutputError, StoreIOError
from incremental_w2v.uris import environment_secrets, scrub

logger = logging.getLogger(__name__)

# Files up to this size go up in one PutObject; larger ones as a multipart upload.
MULTIPART_BYTES = 256 << 20
CHUNK = 1 << 20
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                     "InvalidToken", "TokenRefreshRequired"}
_PRECONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}


class PreconditionFailed(Exception):
    """A conditional write was refused: the object is not (or no longer) as expected."""


@dataclass
class Obj:
    """An object as read: its bytes, ETag, Last-Modified and the server's clock then."""

    body: bytes
    etag: str
    last_modified: datetime
    server_now: datetime


@dataclass
class Listed:
    key: str  # relative to the store's prefix
    last_modified: datetime
    size: int


def scrubbed(text: str, session: Any = None) -> str:
    """An SDK's error text fit to show: every URL redacted (botocore names the endpoint it
    could not reach, user-info included, e.g. one from ``AWS_ENDPOINT_URL_S3``), the
    session's credentials and the environment's secrets masked, ASCII only."""
    secrets = environment_secrets()
    if session is not None:
        try:
            creds = session.get_credentials()
        except Exception:  # no credentials at all: nothing more to mask
            creds = None
        if creds is not None:
            secrets += [s for s in (creds.access_key, creds.secret_key, creds.token) if s]
    return scrub(text, extra=secrets).encode("ascii", "backslashreplace").decode("ascii")


def _server_now(response: dict[str, Any]) -> datetime:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else datetime.now(timezone.utc)
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)


class Bucket:
    """A bucket and key prefix on an S3-compatible server."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, location: str,
                 setting: str = "store:") -> None:
        # botocore itself: boto3 would add 0.06 s to every run, a no-op's included.
        import botocore.session
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.location = location
        self.endpoint_url = endpoint_url
        self.setting = setting  # the config key that names this place, for hints
        self.session = botocore.session.get_session()
        self.client = self.session.create_client(
            "s3", endpoint_url=endpoint_url,
            config=BotoConfig(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10, read_timeout=60,
                # MinIO, Ceph and test servers answer on one host: path-style addressing.
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        )

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return scrubbed(text, self.session)

    def error(self, exc: Exception, doing: str, writing: bool = False) -> IncW2VError:
        """Our error for a failed call (the caller raises it ``from None``)."""
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        where = f"{doing} in {self.location}"
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return ConfigError(
                f"no usable S3 credentials while {where}",
                hint="provide them through the environment (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) or the SDK's usual chain",
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            message = self._scrub(str(err.get("Message", "")))
            if code == "NoSuchBucket":
                return ConfigError(f"the bucket {self.bucket} does not exist ({where})",
                                   hint=f"create the bucket, or fix '{self.setting}' in the config")
            if code in _CREDENTIAL_CODES:
                return ConfigError(f"the S3 server refused the credentials while {where}: "
                                   f"{code}", hint="check the credentials in the environment")
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                cls = OutputError if writing else StoreIOError
                return cls(f"access denied while {where}",
                           hint="the credentials need read and write access to the store's "
                           "prefix (readers need read access only)")
            return StoreIOError(f"S3 error {code} while {where}: {message}",
                                hint="check the S3 server, then re-run; committed versions are "
                                "intact")
        endpoint = self.endpoint_url or "AWS S3"
        return StoreIOError(
            f"cannot reach the S3 server ({endpoint}) while {where}: "
            f"{self._scrub(str(exc))}",
            hint="check the network and the server, then re-run; committed versions are "
            "intact, and an upload that never became visible is removed by a later run",
        )

    @staticmethod
    def _code(exc: Exception) -> str:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            return str(exc.response.get("Error", {}).get("Code", ""))
        return ""

    # -- calls ----------------------------------------------------------------------------

    def get(self, name: str) -> Obj | None:
        """The object ``name``, or None if it does not exist."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
            body = response["Body"].read()
        except Exception as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise self.error(exc, f"reading {name}") from None
        return Obj(body, response["ETag"], response["LastModified"], _server_now(response))

    def exists(self, name: str) -> bool:
        return self.head(name) is not None

    def head(self, name: str) -> dict[str, Any] | None:
        """``name``'s size and user metadata (``bytes``, ``metadata``), or None if absent."""
        try:
            found = self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self.error(exc, f"looking for {name}") from None
        return {"bytes": found.get("ContentLength"), "metadata": found.get("Metadata", {})}

    def put(self, name: str, body: bytes, if_none_match: bool = False,
            if_match: str | None = None, content_type: str | None = None) -> str:
        """Write ``name``; returns its ETag. PreconditionFailed when a condition fails."""
        extra: dict[str, str] = {"ContentType": content_type} if content_type else {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self.key(name),
                                              Body=body, **extra)
        except Exception as exc:
            if (if_none_match or if_match is not None) and \
                    self._code(exc) in _PRECONDITION_CODES | {"NoSuchKey"}:
                raise PreconditionFailed(name) from None
            raise self.error(exc, f"writing {name}", writing=True) from None
        return str(response["ETag"])

    def upload(self, name: str, path: Path, metadata: dict[str, str] | None = None) -> None:
        """Upload the local file ``path`` as ``name`` (multipart when it is large), with
        ``metadata`` as the object's user metadata."""
        extra = {"Metadata": metadata} if metadata else {}
        try:
            size = path.stat().st_size
            if size <= MULTIPART_BYTES:
                with open(path, "rb") as handle:
                    self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=handle,
                                           **extra)
            else:
                from boto3.s3.transfer import S3Transfer, TransferConfig

                S3Transfer(self.client, TransferConfig(
                    multipart_threshold=MULTIPART_BYTES, multipart_chunksize=64 << 20,
                    use_threads=False)).upload_file(str(path), self.bucket, self.key(name),
                                                    extra_args=extra or None)
        except OSError:
            raise
        except Exception as exc:
            raise self.error(exc, f"uploading {name}", writing=True) from None

    def download(self, name: str, out: BinaryIO) -> str:
        """Stream ``name`` into ``out``; returns the sha256 of what was written."""
        digest = hashlib.sha256()
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
            stream = response["Body"]
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        except OSError:
            raise
        except Exception as exc:
            raise self.error(exc, f"downloading {name}") from None
        return digest.hexdigest()

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:
            raise self.error(exc, f"deleting {name}", writing=True) from None

    def delete_many(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            batch = [{"Key": self.key(n)} for n in names[start:start + 1000]]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except Exception as exc:
                raise self.error(exc, "deleting objects", writing=True) from None
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StoreIOError(f"S3 error {first.get('Code')} while deleting "
                                   f"{first.get('Key')} in {self.location}")

    def listing(self, under: str = "", limit: int | None = None
                ) -> tuple[list[Listed], datetime]:
        """Objects whose name starts with ``under`` (at most ``limit``), and the server's clock."""
        found: list[Listed] = []
        now = datetime.now(timezone.utc)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.key(under)}
        if limit is not None:
            kwargs["MaxKeys"] = limit
        try:
            while True:
                response = self.client.list_objects_v2(**kwargs)
                now = _server_now(response)
                for item in response.get("Contents", []):
                    found.append(Listed(item["Key"][len(self.prefix):], item["LastModified"],
                                        int(item.get("Size", 0))))
                if limit is not None and len(found) >= limit:
                    return found[:limit], now
                if not response.get("IsTruncated"):
                    return found, now
                kwargs["ContinuationToken"] = response["NextContinuationToken"]
        except Exception as exc:
            raise self.error(exc, f"listing {under or 'the store'}") from None

    def abort_uploads(self, under: str) -> Iterator[str]:
        """Abort the unfinished multipart uploads under ``under``; yields their names."""
        try:
            response = self.client.list_multipart_uploads(Bucket=self.bucket,
                                                          Prefix=self.key(under))
            for upload in response.get("Uploads", []):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
                yield upload["Key"][len(self.prefix):]
        except Exception as exc:
            raise self.error(exc, f"aborting unfinished uploads under {under}",
                             writing=True) from None
