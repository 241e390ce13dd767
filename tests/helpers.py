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
from contextlib import contextmanager
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


def s3_credentials(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    """S3 credentials in the environment only, as a cron job would have them."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


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
