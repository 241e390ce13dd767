"""No write inside the store follows a link (issue 13, item 4).

A symbolic link (to a file outside, or dangling), or a hard link to a file
outside, is planted at each name the store reads or writes; then every
command that takes the lock or reads a version runs, a no-op first. After
each run the file outside is byte for byte as it was and a dangling link's
target was not created. A run either refuses (65, naming the link) or goes on
without writing through it (a name that is replaced by a rename, like
``.lock.info``, gets a plain file of its own).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from faults import check_store
from helpers import Result
from test_crash_sweep import write_workspace

PRECIOUS = b"precious, outside the store\n"

# Names inside the store, each with a command that must refuse (65) a symlink there.
PLANTED = {
    ".lock": "add-corpus",
    ".lock.info": None,  # replaced by a rename: the link goes, its target stays
    "manifest.json": "status",
    ".incw2v-store": None,
    ".readers": "export",
    ".readers/v0002.lock": "export",
    "versions": "history",
    "versions/v0002/meta.json": "history",
    "versions/v0002/COMMITTED": "history",
    "versions/v0002/model": "export",
    "versions/v0002/ledger.tsv.gz": "export",
}
REFUSALS = ("symbolic link", "not a plain file", "missing or incomplete")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from incremental_w2v.cli.main import main

    folder = tmp_path_factory.mktemp("links") / "ws"
    write_workspace(folder, ("b.txt",))
    assert main(["add-corpus", str(folder / "config.yaml"), "-q"]) == 0
    (folder / "store" / ".readers").mkdir(exist_ok=True)
    (folder / "store" / ".readers" / "v0002.lock").touch()
    return folder


def runs(config: Path, folder: Path) -> list[list[object]]:
    return [
        ["add-corpus", config],  # a no-op
        ["status", config], ["history", config],
        ["export", config, "--format", "word2vec-text", "--output", folder / "out.txt"],
        ["rollback", config, "1"], ["rollback", config, "2"],
        ["add-corpus", config, folder / "c.txt"],  # a commit
        ["prune", config, "--keep", "1"], ["repair", config],
    ]


def plant(store: Path, name: str, how: str, outside: Path) -> Path:
    """Replace ``store/name`` with a link of kind ``how``; returns the file outside."""
    path = store / name
    target = outside / f"{name.replace('/', '_')}.target"
    if path.is_dir() and not path.is_symlink():
        moved = outside / f"{name.replace('/', '_')}.dir"
        shutil.move(path, moved)
        if how == "dangling":
            shutil.rmtree(moved)
        path.symlink_to(moved, target_is_directory=True)
        return moved
    existed = path.exists()
    if how == "hard":  # the store's file gets a second name outside (or the reverse)
        if existed:
            os.link(path, target)
        else:
            target.write_bytes(PRECIOUS)
            os.link(target, path)
    elif how == "symlink":
        target.write_bytes(path.read_bytes() if existed else PRECIOUS)
        path.unlink(missing_ok=True)
        path.symlink_to(target)
    else:  # dangling
        path.unlink(missing_ok=True)
        path.symlink_to(target)
    return target


@pytest.mark.parametrize("how", ["symlink", "dangling", "hard"])
@pytest.mark.parametrize("name", list(PLANTED))
def test_no_store_write_follows_a_planted_link(
    template: Path, tmp_path: Path, cli: Callable[..., Result], name: str, how: str
) -> None:
    if how == "hard" and (name in (".readers", "versions")):
        pytest.skip("folders cannot be hard-linked")
    folder = tmp_path / "ws"
    shutil.copytree(template, folder, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = plant(folder / "store", name, how, outside)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    config = folder / "config.yaml"
    for argv in runs(config, folder):
        result = cli(*argv)
        after = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
        assert after == before, (argv[0], "wrote through the link")
        if how == "dangling":
            assert not target.exists(), (argv[0], "created the link's target")
        assert result.code in (0, 65), (argv[0], result.code, result.err)
        if result.code == 65 and how != "hard":
            assert any(r in result.err for r in REFUSALS), result.err


@pytest.mark.parametrize("name", [n for n, command in PLANTED.items() if command])
def test_a_link_where_the_store_keeps_its_state_is_refused(
    template: Path, tmp_path: Path, cli: Callable[..., Result], name: str
) -> None:
    folder = tmp_path / "ws"
    shutil.copytree(template, folder, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    plant(folder / "store", name, "symlink", outside)
    config = folder / "config.yaml"
    argv = {"add-corpus": ["add-corpus", config], "status": ["status", config],
            "history": ["history", config],
            "export": ["export", config, "--format", "word2vec-text", "--output",
                       folder / "out.txt"]}[PLANTED[name] or ""]
    result = cli(*argv)
    assert result.code == 65, result.err
    assert any(r in result.err for r in REFUSALS), result.err


def linked(template: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A copy of the store with ``name`` a symlink to a file outside: (workspace, file)."""
    folder = tmp_path / "ws"
    shutil.copytree(template, folder, symlinks=True)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(PRECIOUS)
    link = folder / "store" / name
    link.unlink(missing_ok=True)
    link.symlink_to(victim)
    return folder, victim


def test_a_lock_info_link_is_replaced_not_followed(
    template: Path, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """The issue's case: even a no-op run must not overwrite the link's target."""
    folder, victim = linked(template, tmp_path, ".lock.info")
    info = folder / "store" / ".lock.info"
    result = cli("add-corpus", folder / "config.yaml", "--json")
    assert result.code == 0 and result.json()["applied"] == [], result.err
    assert victim.read_bytes() == PRECIOUS
    assert not info.is_symlink() and b'"pid"' in info.read_bytes()
    assert check_store(folder / "store", {}) == []


def test_a_lock_link_is_refused_by_every_locking_command(
    template: Path, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    folder, victim = linked(template, tmp_path, ".lock")
    config = folder / "config.yaml"
    for argv in (["add-corpus", config], ["rollback", config, "1"],
                 ["prune", config, "--keep", "1"], ["rebuild", config], ["repair", config],
                 ["reject", config, "2"], ["promote", config, "2"]):
        result = cli(*argv)
        assert result.code == 65 and ".lock is a symbolic link" in result.err, result.err
    assert victim.read_bytes() == PRECIOUS
