"""Helpers the tests share (fixtures live in conftest.py): paths, configs, the CLI in a
subprocess, S3 credentials, and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gensim.test.utils import datapath

# The checkout's root: subprocesses find the package here whether or not it is installed.
ROOT = Path(__file__).resolve().parents[1]


def lee_lines() -> list[str]:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def write_config(folder: Path, body: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


def committed(store: Path) -> list[str]:
    """The versions a local store's manifest lists ([] without a manifest)."""
    path = store / "manifest.json"
    if not path.exists():
        return []
    return [v["version"] for v in json.loads(path.read_text())["versions"]]


def s3_credentials(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    """S3 credentials in the environment only, as a cron job would have them."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


_ATOMIC = threading.Lock()


def atomic_conditional_writes() -> None:
    """Make moto's PutObject and DeleteObject check-and-write under one lock (see the
    ``moto_endpoint`` fixture): what S3 guarantees for conditional writes."""
    from moto.s3.responses import S3Response

    for name in ("put_object", "delete_object"):
        original = getattr(S3Response, name)
        if getattr(original, "_incw2v_atomic", False):
            continue

        def serialised(self: Any, *args: Any, __original: Any = original, **kw: Any) -> Any:
            with _ATOMIC:
                return __original(self, *args, **kw)

        serialised._incw2v_atomic = True  # type: ignore[attr-defined]
        setattr(S3Response, name, serialised)


def package_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that runs this checkout's package."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def run_subprocess(*args: str | os.PathLike[str], timeout: float = 120, **kw: Any
                   ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "incremental_w2v", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=kw.pop("env", package_env()), **kw,
    )


def popen(*args: str | os.PathLike[str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "incremental_w2v", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=kw.pop("env", package_env()), **kw,
    )


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder without logging every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler] | None = None,
                root: Path | None = None) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (serving ``root``, or with ``handler``); its base URL."""
    if handler is None:
        assert root is not None
        factory: Any = partial(QuietHandler, directory=str(root))
    else:
        factory = handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def version_model(store: Path, version: str) -> Any:
    """A store version's model, verified and loaded as incw2v loads it (no pickle)."""
    from incremental_w2v.store.store import Store

    return Store(store).load_model(version)


def s3_store_config(config: Path, endpoint: str, bucket: str, prefix: str = "lineage",
                    lease: float = 60, grace: float = 900) -> Path:
    """Point a workspace's ``config.yaml`` (``store: store``) at ``s3://bucket/prefix``."""
    text = config.read_text().replace(
        "store: store\n",
        f"store: s3://{bucket}/{prefix}\nstore_options:\n  endpoint_url: {endpoint}\n"
        f"  lease_seconds: {lease}\n  leftover_grace_seconds: {grace}\n", 1)
    config.write_text(text)
    return config


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# A publish target's consumer, as docs/publish.md says to read one: poll the pointer; on a
# new one, load every file, then accept the load only if each file still hashes as the
# pointer says and the pointer is the same. Argv: SOURCE (a folder or s3://bucket/prefix)
# STOP-FILE [ENDPOINT TMP-FOLDER for S3]; it prints READY once it loaded a version, and
# stops once it loaded the version named in STOP-FILE.
PUBLISH_READER = r"""
import hashlib, json, sys, time
from pathlib import Path
from gensim.models import KeyedVectors

source, stop = sys.argv[1], Path(sys.argv[2])
if source.startswith("s3://"):
    import boto3
    bucket, _, prefix = source[5:].partition("/")
    client = boto3.client("s3", endpoint_url=sys.argv[3])
    tmp = Path(sys.argv[4])
    def get(name):
        return client.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()
    def fetch(pointer):
        for name in pointer["files"]:
            (tmp / name).write_bytes(get(name))
        return tmp
    def missing(exc):
        return type(exc).__name__ == "NoSuchKey"
else:
    folder = Path(source)
    def get(name):
        return (folder / name).read_bytes()
    def fetch(pointer):
        return folder
    def missing(exc):
        return isinstance(exc, FileNotFoundError)

def sha(data):
    return hashlib.sha256(data).hexdigest()

def done():
    # Told to stop once it has loaded the version named in the stop file.
    return stop.exists() and bool(seen) and seen[-1] == stop.read_text()

seen, retries, failures = [], 0, 0
last = None
deadline = time.monotonic() + 900
while not done() and time.monotonic() < deadline:
    try:
        raw = get("current.json")
    except Exception as exc:
        if missing(exc):
            time.sleep(0.01)
            continue
        raise
    pointer = json.loads(raw)  # a torn pointer would fail here, and fail the test
    if pointer == last:
        time.sleep(0.01)
        continue
    where = fetch(pointer)
    error = None
    try:
        loaded = [KeyedVectors.load(str(where / "vectors.kv"), mmap="r"),
                  KeyedVectors.load_word2vec_format(str(where / "vectors.bin"), binary=True),
                  KeyedVectors.load_word2vec_format(str(where / "vectors.txt"))]
    except Exception as exc:  # files of two versions: the check below must catch it
        error = exc
    same = all(sha((where / n).read_bytes()) == f["sha256"] for n, f in pointer["files"].items())
    if not same or json.loads(get("current.json")) != pointer:
        retries += 1
        continue
    if error is not None or {len(kv) for kv in loaded} != {pointer["vocab_size"]}:
        failures += 1
        print("FAILED", pointer["version"], error, file=sys.stderr, flush=True)
        continue
    last = pointer
    seen.append(pointer["version"])
    if len(seen) == 1:
        print("READY", flush=True)
print("RESULT " + json.dumps({"seen": seen, "retries": retries, "failures": failures}))
"""


def start_publish_reader(source: str, stop: Path, *extra: str) -> subprocess.Popen[str]:
    """A ``PUBLISH_READER`` process, returned once it loaded a first version."""
    reader = subprocess.Popen([sys.executable, "-c", PUBLISH_READER, source, str(stop), *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=package_env())
    assert reader.stdout is not None
    assert reader.stdout.readline() == "READY\n", reader.stderr.read() if reader.stderr else ""
    return reader


def finish_publish_reader(reader: subprocess.Popen[str], stop: Path, final: str
                          ) -> dict[str, Any]:
    """Stop the reader once it loaded ``final``; its result (``seen``, ``retries``,
    ``failures``), after checking that it never accepted a torn or mixed set."""
    stop.write_text(final)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out.rsplit("RESULT ", 1)[1])
    assert result["failures"] == 0, err[-3000:]
    return result


def host_env(folder: Path, host: str) -> dict[str, str]:
    """The environment of another "host": its own name and its own cache folder."""
    return {"INCW2V_HOST": host, "INCW2V_CACHE_DIR": str(folder / f"cache-{host}")}


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of a server, that can cut it off mid-request.

    ``arm("reset", n)``: the next ``n`` requests that upload a version's file
    (``PUT .../versions/...``) are cut with a TCP reset once ``cut_after`` bytes of
    them went through. ``arm("down")``: at the first such cut the server is gone:
    every connection is reset, and new ones too, until :meth:`up`. ``cuts``
    counts what was cut.
    """

    def __init__(self, upstream: str, cut_after: int = 16 << 10) -> None:
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.cut_after = cut_after
        self.mode = "pass"
        self.left = 0
        self.down = False
        self.cuts = 0
        self.lock = threading.Lock()
        self.conns: list[Any] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode: str, times: int = 1) -> None:
        with self.lock:
            self.mode, self.left = mode, times

    def up(self) -> None:
        with self.lock:
            self.down, self.mode = False, "pass"

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self._reset_all()

    @staticmethod
    def _reset(sock: Any) -> None:
        import socket
        import struct

        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def _reset_all(self) -> None:
        with self.lock:
            conns, self.conns = self.conns, []
        for sock in conns:
            self._reset(sock)

    def _accept(self) -> None:
        import socket

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                self._reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: Any, dst: Any, from_client: bool) -> None:
        counting = -1  # bytes of the current upload seen so far, -1: not in an upload
        try:
            while data := src.recv(65536):
                if from_client:
                    start = data.find(b"PUT /")
                    if start >= 0 and b"/versions/" in data[start:data.find(b"\r\n", start)]:
                        counting = 0
                    if counting >= 0:
                        counting += len(data)
                        if counting > self.cut_after and self._cut():
                            self._reset(src)
                            self._reset(dst)
                            return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.close()

    def _cut(self) -> bool:
        with self.lock:
            if self.mode == "pass" or self.left <= 0:
                return False
            self.left -= 1
            self.cuts += 1
            if self.mode == "down":
                self.down = True
        if self.down:
            self._reset_all()
        return True
