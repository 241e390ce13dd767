"""Shared fixtures: small real corpora (gensim's test data) and config/CLI helpers."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faults import Driver
from helpers import Result, atomic_conditional_writes, http_server, lee_lines, write_config
from incremental_w2v.cli.main import main


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="run the long variants too")
    parser.addoption("--random-kills", type=int, default=50, metavar="N",
                     help="runs of the random-SIGKILL test (default 50)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long variant: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Driver]:
    """One fault-injection driver per test module: it imports gensim once for its children."""
    d = Driver(tmp_path_factory.mktemp("driver"))
    yield d
    d.close()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto) on 127.0.0.1, one per test module.

    moto (5.2) enforces ``If-None-Match: *`` and ``If-Match`` on PutObject and
    ``If-Match`` on DeleteObject (412), but checks the condition and then writes
    without a lock, so two conditional writes arriving at the same instant could
    both pass; S3 itself makes them atomic. ``atomic_conditional_writes`` makes
    moto keep that promise too (a server-side fix, not a change to what is tested).
    """
    from moto.server import ThreadedMotoServer

    atomic_conditional_writes()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()




@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder on tmpfs when there is one: crash sweeps fsync thousands of times."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="incw2v-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)




@pytest.fixture
def corpora(tmp_path: Path) -> dict[str, Path]:
    """Three real corpora: gensim's Lee background corpus cut in three parts."""
    lines = lee_lines()
    third = len(lines) // 3
    folder = tmp_path / "data"
    folder.mkdir()
    parts = {"a": lines[:third], "b": lines[third : 2 * third], "c": lines[2 * third :]}
    out = {}
    for name, chunk in parts.items():
        path = folder / f"{name}.txt"
        path.write_text("".join(chunk), encoding="utf-8")
        out[name] = path
    return out


SMALL_MODEL = """
model:
  vector_size: 16
  window: 3
  min_count: 3
  negative: 3
  epochs: 2
  workers: 2
  seed: 7
update:
  epochs: 2
drift:
  sample: 200
"""




@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """A config with the small model; ``base`` and ``queue`` as YAML snippets."""

    def make(base: str, queue: list[str] | None = None, extra: str = "",
             store: str = "store") -> Path:
        lines = [f"store: {store}", SMALL_MODEL.strip(), "base:", f"  corpus: {base}"]
        if queue:
            lines.append("queue:")
            lines += [f"  - uri: {q}" for q in queue]
        if extra:
            lines.append(textwrap.dedent(extra).strip())
        return write_config(tmp_path, "\n".join(lines) + "\n")

    return make





@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the CLI in-process; returns exit code, stdout and stderr."""

    def run(*args: str | os.PathLike[str]) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run






@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a temporary folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    with http_server(root=root) as base:
        yield base, root
