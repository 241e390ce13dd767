"""Hostile and broken inputs, one table: each gets its exit code and message, and the
store stays byte for byte as it was (every file hashed before and after).

The store starts with two committed versions (base a.txt, update b.txt); each
case breaks one thing and runs ``add-corpus`` with a new corpus pending, so a
run that did not stop would write.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from faults import tree_hashes
from helpers import Result
from test_crash_sweep import TINY_MODEL, write_workspace

GOOD = f"store: store\n{TINY_MODEL}base: {{corpus: a.txt}}\nqueue:\n  - uri: b.txt\n"
MARKER = "pwned-marker"


class Evil:
    """Unpickling this runs a shell command: proof that a file was never unpickled."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {MARKER}",))


@dataclass
class Case:
    name: str
    code: int
    fragment: str
    config: str | None = None  # replaces config.yaml
    setup: Callable[[Path], None] | None = None  # breaks something in the workspace


def config(text: str) -> str:
    return text


def write(rel: str, data: bytes) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return apply


def queue_extra(rel: str, data: bytes | None) -> Callable[[Path], None]:
    """Queue ``rel`` after b.txt, with ``data`` as its content (None: do not create it)."""
    def apply(folder: Path) -> None:
        if data is not None:
            write(rel, data)(folder)
        (folder / "config.yaml").write_text(GOOD + f"  - uri: {rel}\n")
    return apply


def in_store(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        queue_extra("c.txt", None)(folder)
        edit(folder / "store")
    return apply


def flip_byte(rel: str) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        path = store / rel
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    return apply


def alias_bomb() -> str:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(rows) + "\n"


LEE = b""  # filled by the fixture (a real corpus for the codecs to damage)

CASES = [
    # --- the config -------------------------------------------------------------------
    Case("yaml syntax error", 78, "YAML syntax error at line", config="store: [unclosed\n"),
    Case("tab indentation", 78, "YAML syntax error", config="store: s\nmodel:\n\twindow: 2\n"),
    Case("duplicate key", 78, "duplicate key (first defined on line 1)",
         config=GOOD + "store: elsewhere\n"),
    Case("unknown top-level key", 78, "colour (line 7): unknown key",
         config=GOOD + "colour: red\n"),
    Case("unknown nested key", 78, "model.negtive", config=GOOD.replace("negative", "negtive")),
    Case("wrong type", 78, "model.vector_size",
         config=GOOD.replace("vector_size: 8", "vector_size: big")),
    Case("queue is a string", 78, "queue", config=GOOD.split("queue:")[0] + "queue: b.txt\n"),
    Case("python/object tag", 78, "is not allowed",
         config=GOOD + f"notes: !!python/object/apply:os.system ['touch {MARKER}']\n"),
    Case("python/name tag", 78, "is not allowed",
         config=GOOD.replace("store: store", "store: !!python/name:os.system")),
    Case("alias bomb", 78, "too large or too deeply nested", config=alias_bomb()),
    Case("deeply nested", 78, "too large or too deeply nested",
         config="store: " + "[" * 300 + "]" * 300 + "\n"),
    Case("huge document", 78, "at most 1048576 are accepted",
         config="store: s\n" + "#" * (2 << 20) + "\n"),
    Case("not a mapping", 78, "must be a mapping", config="- a\n- b\n"),
    Case("empty config", 78, "store: required key is missing", config=""),
    Case("hs=1", 78, "hs=1 (hierarchical softmax)",
         config=GOOD.replace("negative: 2", "negative: 2, hs: 1")),
    Case("vector_size changed in the lineage", 78, "does not match the lineage",
         config=GOOD.replace("vector_size: 8", "vector_size: 9")),
    Case("config not UTF-8", 78, "UTF-8",
         setup=write("config.yaml", GOOD.encode() + "notes: caf\xe9\n".encode("latin-1"))),
    # --- the corpora ------------------------------------------------------------------
    Case("corpus missing", 66, "missing.txt does not exist",
         setup=queue_extra("missing.txt", None)),
    Case("corpus empty", 65, "empty", setup=queue_extra("c.txt", b"")),
    Case("corpus of blank lines", 65, "empty", setup=queue_extra("c.txt", b"\n \n\t\n")),
    Case("corpus truncated gzip", 65, "c.txt.gz is truncated",
         setup=lambda f: queue_extra("c.txt.gz", gzip.compress(LEE)[:3000])(f)),
    Case("corpus mis-encoded", 65, "is not valid UTF-8: line 2",
         setup=queue_extra("c.txt", b"fine line here\ncaf\xe9 au lait\n")),
    Case("corpus binary", 65, "looks binary",
         setup=lambda f: queue_extra("c.txt", gzip.compress(LEE, mtime=0))(f)),
    # A dump folder that is still empty is "nothing yet", not an error (cron runs early).
    Case("corpus an empty directory", 0, "matches no file yet",
         setup=lambda f: (queue_extra("incoming/", None)(f), (f / "incoming").mkdir())),
    Case("applied corpus changed", 65, "changed",
         setup=lambda f: (f / "b.txt").write_text((f / "b.txt").read_text() + "one more line\n")),
    # --- the store --------------------------------------------------------------------
    Case("model file not ours", 65, "does not match its recorded sha256",
         setup=in_store(lambda s: (s / "versions/v0002/model").write_bytes(pickle.dumps(Evil())))),
    Case("side array damaged", 65, "model.wv.vectors.npy does not match its recorded sha256",
         setup=in_store(flip_byte("versions/v0002/model.wv.vectors.npy"))),
    Case("ledger damaged", 65, "ledger.tsv.gz does not match its recorded sha256",
         setup=in_store(flip_byte("versions/v0002/ledger.tsv.gz"))),
    Case("manifest not JSON", 65, "damaged or was edited by hand",
         setup=in_store(lambda s: (s / "manifest.json").write_text("{not json at all"))),
    Case("manifest wrong shape", 65, "damaged or was edited by hand",
         setup=in_store(lambda s: (s / "manifest.json").write_text('{"current": 5}'))),
    Case("manifest current unlisted", 65, "that it does not list",
         setup=in_store(lambda s: (s / "manifest.json").write_text(
             (s / "manifest.json").read_text().replace('"current": "v0002"',
                                                         '"current": "v0009"')))),
    Case("manifest version '..'", 65, "not a version name",
         setup=in_store(lambda s: (s / "manifest.json").write_text(
             (s / "manifest.json").read_text().replace('"v0001"', '"../../etc"')))),
    Case("manifest absolute version", 65, "not a version name",
         setup=in_store(lambda s: (s / "manifest.json").write_text(
             (s / "manifest.json").read_text().replace('"v0002"', '"/tmp/evil"')))),
    Case("meta.json nonsense", 65, "meta.json cannot be read",
         setup=in_store(lambda s: (s / "versions/v0002/meta.json").write_text("[]"))),
    Case("version folder deleted by hand", 65, "missing or incomplete",
         setup=in_store(lambda s: shutil.rmtree(s / "versions/v0002"))),
    Case("version folder replaced by a symlink", 65, "missing or incomplete",
         setup=in_store(lambda s: (shutil.move(s / "versions/v0002", s.parent / "outside"),
                                   (s / "versions/v0002").symlink_to(s.parent / "outside")))),
    Case("version file replaced by a symlink", 65, "not a plain file",
         setup=in_store(lambda s: (shutil.move(s / "versions/v0002/model", s.parent / "m"),
                                   (s / "versions/v0002/model").symlink_to(s.parent / "m")))),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gensim.test.utils import datapath

    from incremental_w2v.cli.main import main

    global LEE
    with open(datapath("lee_background.cor"), "rb") as handle:
        LEE = handle.read()
    folder = tmp_path_factory.mktemp("bad-inputs") / "template"
    write_workspace(folder, ("b.txt",))
    assert main(["add-corpus", str(folder / "config.yaml"), "-q"]) == 0
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(template: Path, tmp_path: Path, cli: Callable[..., Result],
                   case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ws"
    shutil.copytree(template, folder, symlinks=True)
    monkeypatch.chdir(folder)  # where an unpickled Evil would leave its marker
    if case.config is not None:
        (folder / "config.yaml").write_text(case.config)
    if case.setup is not None:
        case.setup(folder)
    before = tree_hashes(folder / "store", skip={".lock", ".lock.info"})
    result = cli("add-corpus", folder / "config.yaml")
    assert result.code == case.code, result.err
    assert case.fragment in result.err
    assert "Traceback" not in result.err
    assert tree_hashes(folder / "store", skip={".lock", ".lock.info"}) == before
    assert not (folder / MARKER).exists()  # nothing hostile was ever unpickled or run


def test_matrix_is_big_enough() -> None:
    assert len(CASES) + 1 >= 25  # +1: the read-only store below


def test_read_only_store(template: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    folder = tmp_path / "ws"
    shutil.copytree(template, folder)
    queue_extra("c.txt", (folder / "a.txt").read_bytes()[::-1])(folder)
    store = folder / "store"
    before = tree_hashes(store, skip=set())
    # As root chmod does not stop writes: a read-only bind mount does.
    bind = subprocess.run(["mount", "--bind", str(store), str(store)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.decode().strip()}")
        result = cli("add-corpus", folder / "config.yaml")
        assert result.code == 73, result.err
        assert "Read-only file system" in result.err and "hint:" in result.err
        # Readers still work on a read-only store (no reader lock can or need be taken).
        exported = cli("export", folder / "config.yaml", "--format", "word2vec-text",
                       "--output", folder / "out.txt")
        assert exported.code == 0, exported.err
    finally:
        subprocess.run(["umount", str(store)], capture_output=True)
    assert tree_hashes(store, skip=set()) == before
