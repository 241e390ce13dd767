"""No command writes an output inside a store, after resolving symlinks (issue 13, item 3).

The rule lives in one place, ``fsutil.check_output_folder`` (which every output
goes through, via ``atomic_outputs``); these tests try it from every command
that writes an output, at many places in and around a store, through links,
in a store without a marker, and in a remote store's local cache. Each time
the command exits 73, says why, and the store is byte for byte as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from faults import tree_hashes
from helpers import Result
from incremental_w2v.fsutil import STORE_MARKER
from test_crash_sweep import write_workspace


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from incremental_w2v.cli.main import main

    folder = tmp_path_factory.mktemp("outputs") / "ws"
    write_workspace(folder, ("b.txt",))
    assert main(["add-corpus", str(folder / "config.yaml"), "-q"]) == 0
    return folder


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "ws"
    shutil.copytree(template, folder, symlinks=True)
    (folder / "out").mkdir()
    # Links from outside into the store: a folder link and file links.
    (folder / "out" / "to-store").symlink_to(folder / "store", target_is_directory=True)
    (folder / "out" / "to-version").symlink_to(folder / "store" / "versions" / "v0002",
                                               target_is_directory=True)
    (folder / "out" / "manifest-link").symlink_to(folder / "store" / "manifest.json")
    (folder / "out" / "dangling-into-store").symlink_to(folder / "store" / "new.txt")
    return folder


TARGETS = [
    "store/manifest.json", "store/versions/v0002/model", "store/versions/v0002/meta.json",
    "store/versions/v0001/new.bin", "store/.lock", "store/report.html", "store/versions/x",
    "store/.readers/v0002.lock", f"store/{STORE_MARKER}", "out/to-store/manifest.json",
    "out/to-version/model", "out/to-store/versions/../manifest.json", "out/manifest-link",
    "out/dangling-into-store", "store/../store/manifest.json",
]


def commands(config: Path, output: Path) -> dict[str, list[object]]:
    version = f"{config}@v0002"
    return {
        "export word2vec-text": ["export", config, "--format", "word2vec-text",
                                 "--output", output],
        "export model": ["export", config, "--format", "model", "--output", output],
        "export keyedvectors": ["export", config, "--format", "keyedvectors",
                                "--output", output],
        "report": ["report", config, "--output", output],
        "align": ["align", version, version, "--output", output],
        "merge": ["merge", version, version, "--output", output],
    }


@pytest.mark.parametrize("target", TARGETS)
def test_no_command_writes_its_output_inside_the_store(
    ws: Path, cli: Callable[..., Result], target: str
) -> None:
    config = ws / "config.yaml"
    store = ws / "store"
    (store / ".readers").mkdir(exist_ok=True)
    before = tree_hashes(store, skip=set())
    for name, argv in commands(config, ws / target).items():
        result = cli(*argv)
        assert result.code == 73, (name, target, result.err)
        assert "inside the incw2v store" in result.err and "hint:" in result.err, result.err
        assert tree_hashes(store, skip=set()) == before, (name, target)
    # The same outputs beside the store are fine.
    assert cli(*commands(config, ws / "out" / "v.txt")["export word2vec-text"]).code == 0


def test_a_store_without_a_marker_is_protected_too(ws: Path, cli: Callable[..., Result]
                                                   ) -> None:
    (ws / "store" / STORE_MARKER).unlink()  # a store made by an earlier incw2v
    before = tree_hashes(ws / "store", skip=set())
    result = cli("export", ws / "config.yaml", "--format", "word2vec-text",
                 "--output", ws / "store" / "manifest.json")
    assert result.code == 73 and "inside the incw2v store" in result.err
    assert tree_hashes(ws / "store", skip=set()) == before


def test_a_remote_stores_cache_is_protected_too(ws: Path, cli: Callable[..., Result]) -> None:
    from incremental_w2v.store.cache import Cache

    cache = Cache(ws / "cache" / "0123456789abcdef", 1 << 30, "s3://bucket/lineage")
    copy = cache.versions / "v0002-0123456789abcdef"
    copy.mkdir()
    (copy / "model").write_bytes(b"a verified copy")
    result = cli("export", ws / "config.yaml", "--format", "model", "--output", copy / "model")
    assert result.code == 73 and "inside the incw2v store (or its cache)" in result.err
    assert (copy / "model").read_bytes() == b"a verified copy"


@pytest.mark.parametrize("log_file", ["store/manifest.json", "store/run.log",
                                      "out/to-store/run.log", "new-store/run.log"])
def test_a_log_file_is_never_written_inside_a_store(
    ws: Path, cli: Callable[..., Result], log_file: str
) -> None:
    config = ws / "config.yaml"
    text = config.read_text()
    if log_file.startswith("new-store"):  # the store does not exist yet: still refused
        text = text.replace("store: store", "store: new-store")
    config.write_text(text + f"log_file: {log_file}\n")
    before = tree_hashes(ws / "store", skip=set())
    for command in ("validate", "status", "add-corpus"):
        result = cli(command, config)
        assert result.code == 73, (command, result.err)
        assert "inside the incw2v store" in result.err
    assert tree_hashes(ws / "store", skip=set()) == before
    assert not (ws / "new-store").exists()
    config.write_text(text + "log_file: out/run.log\n")
    assert cli("status", config).code == 0 and os.path.getsize(ws / "out" / "run.log") == 0
