"""Remote sources end to end, against real servers on 127.0.0.1 started by the tests.

HTTP: Python's own ``http.server``. S3: moto's ``ThreadedMotoServer`` reached
through ``sources: {s3_endpoint_url: ...}``, with credentials in the
environment as a user would give them.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import py7zr
import pytest
from gensim.test.utils import datapath
from pydantic import BaseModel

from helpers import QuietHandler, http_server, s3_credentials
from incremental_w2v.errors import ConfigError, InputMissingError, StoreIOError
from incremental_w2v.ingest.fingerprint import SourceOptions, stat
from incremental_w2v.ingest.formats.catalog import (
    ReadStats,
    StackExchangeFormat,
    TextFormat,
    iterate_records,
    reader_for,
)
from incremental_w2v.ingest.sources import open_source

SECRET = "FAKE-secret-Never-Shown-4f9c2"


def lee_bytes() -> bytes:
    with open(datapath("lee_background.cor"), "rb") as handle:
        return handle.read()


TEXT = TextFormat()


def read_remote(uri: str, options: SourceOptions | None = None,
                fmt: BaseModel = TEXT) -> tuple[list[str], str, int]:
    stats = ReadStats()
    with open_source(uri, Path("."), options) as src:
        records = list(iterate_records(src, reader_for(fmt), fmt, "strict", stats))
        return records, src.raw.sha256.hexdigest(), src.raw.bytes_read


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lines_of(data: bytes) -> list[str]:
    return [line for line in data.decode().splitlines(keepends=True) if line.strip()]


# ---------------------------------------------------------------- HTTP


def test_http_plain_and_gz(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    data = lee_bytes()
    (root / "lee.txt").write_bytes(data)
    (root / "lee.txt.gz").write_bytes(gzip.compress(data))
    st = stat(f"{base}/lee.txt", Path("."))
    assert st.size == len(data) and st.last_modified
    records, sha, size = read_remote(f"{base}/lee.txt")
    assert records == lines_of(data)
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    packed = (root / "lee.txt.gz").read_bytes()
    assert stat(f"{base}/lee.txt.gz", Path(".")).size == len(packed)
    records, sha, size = read_remote(f"{base}/lee.txt.gz")
    assert records == lines_of(data)
    assert sha == hashlib.sha256(packed).hexdigest() and size == len(packed)


def test_http_404(http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    with pytest.raises(InputMissingError, match=r"missing\.txt does not exist"):
        stat(f"{base}/missing.txt", Path("."))
    with pytest.raises(InputMissingError, match=r"missing\.txt does not exist"):
        read_remote(f"{base}/missing.txt")


def test_http_secrets_in_the_uri_are_redacted(http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    uri = f"{base}/missing.txt?token={SECRET}&page=2"
    for call in (lambda: stat(uri, Path(".")), lambda: read_remote(uri)):
        with pytest.raises(InputMissingError) as info:
            call()
        assert SECRET not in str(info.value) and "token=***" in str(info.value)


def test_http_unreachable() -> None:
    uri = f"http://127.0.0.1:{closed_port()}/lee.txt"
    with pytest.raises(StoreIOError, match="cannot reach corpus"):
        stat(uri, Path("."))
    with pytest.raises(StoreIOError, match=r"cannot read corpus http://127.0.0.1:\d+/lee.txt"):
        read_remote(uri)
    # requests quotes the path and query on their own: the secret must not come through.
    uri = f"http://127.0.0.1:{closed_port()}/lee.txt?sig={SECRET}&x-amz-signature=s%2Fx%3D"
    for call in (lambda: stat(uri, Path(".")), lambda: read_remote(uri)):
        with pytest.raises(StoreIOError) as info:
            call()
        assert SECRET not in str(info.value) and "s%2Fx" not in str(info.value)
        assert "s/x=" not in str(info.value)


@pytest.mark.parametrize("name", ["lee.txt", "lee.txt.gz"])
def test_http_connection_cut_midway_is_an_io_error(name: str) -> None:
    """A server that promises more bytes than it sends: an I/O error, never a short corpus."""
    body = gzip.compress(lee_bytes()) if name.endswith(".gz") else lee_bytes()

    class Liar(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    with http_server(Liar) as base:
        expected = rf"cannot read corpus .*/{re.escape(name)}: .*Connection broken"
        with pytest.raises(StoreIOError, match=expected):
            read_remote(f"{base}/{name}")


def test_http_server_error_is_an_io_error() -> None:
    class Broken(QuietHandler):
        def do_HEAD(self) -> None:
            self.send_error(503, "try later")

        def do_GET(self) -> None:
            self.send_error(503, "try later")

    with http_server(Broken) as base:
        uri = f"{base}/lee.txt"
        with pytest.raises(StoreIOError, match=r"HTTP 503"):
            stat(uri, Path("."))
        with pytest.raises(StoreIOError, match=r"cannot read corpus .*503"):
            read_remote(uri)


@pytest.mark.parametrize("status", [503, 500, 403])
def test_not_found_is_decided_by_the_status_code_alone(status: int) -> None:
    """An error whose text says 404 or Not Found is still an I/O error unless it is a 404."""

    class Misleading(QuietHandler):
        def do_HEAD(self) -> None:
            self.send_error(status, "404 Not Found: NoSuchKey does not exist")

        do_GET = do_HEAD

    with http_server(Misleading) as base:
        uri = f"{base}/404/NotFound/lee.txt"
        with pytest.raises(StoreIOError):
            stat(uri, Path("."))
        with pytest.raises(StoreIOError):
            read_remote(uri)


def test_http_7z_archive_is_downloaded_then_streamed(
    http_root: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = http_root
    posts = tmp_path / "Posts.xml"
    posts.write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
                     '  <row Id="1" PostTypeId="1" Title="Remote title" '
                     'Body="&lt;p&gt;remote body&lt;/p&gt;" />\n</posts>\n')
    with py7zr.SevenZipFile(root / "site.7z", "w") as archive:
        archive.write(posts, "Posts.xml")
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    records, sha, _ = read_remote(f"{base}/site.7z", fmt=StackExchangeFormat())
    assert records == ["Remote title\nremote body"]
    assert sha == hashlib.sha256((root / "site.7z").read_bytes()).hexdigest()
    assert list(spool.iterdir()) == []  # the downloaded archive is gone


# ---------------------------------------------------------------- S3


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """A bucket with objects on the fake S3; credentials only in the environment."""
    s3_credentials(monkeypatch, SECRET)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = f"corpora-{time.monotonic_ns()}"
    client.create_bucket(Bucket=bucket)
    yield bucket, client


def test_s3_stat_and_read(s3: tuple[str, Any], moto_endpoint: str) -> None:
    bucket, client = s3
    data = lee_bytes()
    packed = bz2.compress(data)
    client.put_object(Bucket=bucket, Key="dumps/lee.txt", Body=data)
    client.put_object(Bucket=bucket, Key="dumps/lee.txt.bz2", Body=packed)
    options = SourceOptions(s3_endpoint_url=moto_endpoint)
    for key, body in (("dumps/lee.txt", data), ("dumps/lee.txt.bz2", packed)):
        uri = f"s3://{bucket}/{key}"
        st = stat(uri, Path("."), options)
        assert st.size == len(body)
        assert st.etag == hashlib.md5(body).hexdigest()  # a single-part upload's ETag
        assert st.last_modified
        records, sha, size = read_remote(uri, options)
        assert records == lines_of(data)
        assert sha == hashlib.sha256(body).hexdigest() and size == len(body)


def test_s3_missing_object_and_bucket(s3: tuple[str, Any], moto_endpoint: str) -> None:
    bucket, _ = s3
    options = SourceOptions(s3_endpoint_url=moto_endpoint)
    for uri in (f"s3://{bucket}/no/such.txt", f"s3://no-such-bucket-{bucket}/a.txt"):
        with pytest.raises(InputMissingError) as info:
            stat(uri, Path("."), options)
        assert "does not exist" in str(info.value) and SECRET not in str(info.value)
        with pytest.raises(InputMissingError) as info:
            read_remote(uri, options)
        assert "does not exist" in str(info.value) and SECRET not in str(info.value)


def test_s3_unreachable_endpoint(s3: tuple[str, Any]) -> None:
    bucket, _ = s3
    options = SourceOptions(s3_endpoint_url=f"http://127.0.0.1:{closed_port()}")
    uri = f"s3://{bucket}/lee.txt"
    started = time.monotonic()
    with pytest.raises(StoreIOError) as info:
        stat(uri, Path("."), options)
    assert SECRET not in str(info.value) and "testing" not in str(info.value)
    with pytest.raises(StoreIOError) as info:
        read_remote(uri, options)
    assert SECRET not in str(info.value)
    assert "check" in (info.value.hint or "")
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------- other schemes


@pytest.mark.parametrize(("uri", "extra"), [("gs://bucket/a.txt", "gcs"),
                                            ("azure://container/a.txt", "azure")])
def test_schemes_whose_sdk_is_missing_say_what_to_install(
    uri: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = "google.cloud.storage" if extra == "gcs" else "azure.storage.blob"
    try:
        __import__(sdk)
    except ImportError:
        pass
    else:
        pytest.skip(f"{sdk} is installed")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=x;AccountKey=" + SECRET)
    with pytest.raises(ConfigError) as info:
        read_remote(uri)
    assert f"pip install 'smart_open[{extra}]'" in str(info.value)
    assert SECRET not in str(info.value)
    assert stat(uri, Path(".")).size is None  # no cheap check: the content hash decides


def test_azure_needs_its_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(ConfigError, match=r"AZURE_STORAGE_CONNECTION_STRING"):
        read_remote("azure://container/a.txt")
