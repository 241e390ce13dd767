"""A store is what incw2v made: it is recognised by its marker, and nothing else is
written to or deleted (issue 13, item 2).

- A folder that is neither new, empty, nor a store is refused (78) by every
  command, and not one byte in it changes (not even a lock file appears).
- ``store: /``, the home folder and a folder inside another store (or inside a
  remote store's cache) do not pass ``validate``.
- Versions without a manifest are a damaged store (65), never an empty one:
  nothing is swept, and ``repair`` rebuilds the manifest from their meta.json.
- The sweep removes exactly the names incw2v creates, and nothing that only
  looks like them.
- A store made before markers existed keeps working, and gets its marker.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from faults import check_store, leftovers, tree_hashes
from helpers import Result, committed
from incremental_w2v.fsutil import STORE_MARKER
from test_crash_sweep import write_workspace


def workspace(tmp_path: Path, store: str = "store", queue: tuple[str, ...] = ("b.txt",)
              ) -> Path:
    folder = tmp_path / "ws"
    write_workspace(folder, queue)
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("store: store", f"store: '{store}'"))
    return config


def every_file(folder: Path) -> dict[str, str]:
    return tree_hashes(folder, skip=set())


# -- folders that are not stores -------------------------------------------------------------


def _files(folder: Path) -> None:
    (folder / "thesis.tex").write_text("years of work")


def _versions(folder: Path) -> None:
    (folder / "versions").mkdir()
    (folder / "versions" / "v0001").mkdir()  # named like a version, but not one incw2v wrote
    (folder / "versions" / "v0001" / "photo.jpg").write_bytes(b"\xff\xd8 not ours")
    (folder / "versions" / "notes.txt").write_text("mine")


def _lookalikes(folder: Path) -> None:
    for name in (".staging-0123abcd", ".work-89abcdef", ".trash-v0001-abcdef"):
        (folder / name).mkdir()
        (folder / name / "data.bin").write_bytes(b"precious")
    (folder / ".incw2v-tmp-0123abcd-manifest.json").write_text("{}")


def _foreign_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"name": "my web app", "icons": []}')
    (folder / "versions").mkdir()
    (folder / "versions" / "1.0.0").mkdir()


def _empty_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text("{}")  # parses as a manifest with defaults


def _manifest_without_versions(folder: Path) -> None:
    (folder / "manifest.json").write_text(
        '{"format_version": 1, "current": null, "versions": [], "events": []}')
    (folder / "versions").mkdir()
    (folder / "notes.txt").write_text("mine")


def _manifest_with_some_keys(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"format_version": 1, "events": []}')
    (folder / "data.csv").write_text("a,b\n")


def _manifest_naming_a_missing_current(folder: Path) -> None:
    (folder / "manifest.json").write_text(json.dumps({
        "format_version": 1, "current": "v0009", "events": [], "versions": [
            {"version": "v0001", "created_at": "2026-01-01T00:00:00+00:00", "parent": None,
             "kind": "base", "status": "committed", "added": ["a.txt"]}]}))


def _manifest_of_an_empty_list(folder: Path) -> None:
    (folder / "manifest.json").write_text("[]")
    (folder / "versions").mkdir()


def _lock_only(folder: Path) -> None:
    (folder / ".lock").write_text("")  # a lock file alone does not make a store


FOREIGN = {"user files": _files, "a versions folder": _versions,
           "names incw2v uses": _lookalikes, "another tool's manifest.json": _foreign_manifest,
           "a lock file": _lock_only, "an empty manifest.json": _empty_manifest,
           "a manifest without versions": _manifest_without_versions,
           "a manifest with some keys": _manifest_with_some_keys,
           "a manifest whose current is not listed": _manifest_naming_a_missing_current,
           "a manifest that is a list": _manifest_of_an_empty_list}


@pytest.mark.parametrize("fill", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_folder_that_is_not_a_store_is_refused_and_left_as_it_was(
    tmp_path: Path, cli: Callable[..., Result], fill: Callable[[Path], None]
) -> None:
    config = workspace(tmp_path)
    store = config.parent / "store"
    store.mkdir()
    fill(store)
    before = every_file(store)
    for command in (["add-corpus", config], ["status", config], ["history", config],
                    ["rollback", config, "1"], ["prune", config, "--keep", "1"],
                    ["rebuild", config], ["repair", config], ["validate", config],
                    ["export", config, "--format", "word2vec-text", "--output",
                     tmp_path / "out.txt"]):
        result = cli(*command)
        assert result.code == 78, (command[0], result.err)
        assert "is not an incw2v store" in result.err and "hint:" in result.err
        assert every_file(store) == before, command[0]


def test_the_configs_own_folder_is_not_a_store(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    config = workspace(tmp_path, store=".")
    before = every_file(config.parent)
    result = cli("add-corpus", config)
    assert result.code == 78 and "is not an incw2v store" in result.err, result.err
    assert every_file(config.parent) == before


@pytest.mark.parametrize("place", ["new/deeper/store", "empty"])
def test_a_new_or_empty_folder_becomes_a_store(
    tmp_path: Path, cli: Callable[..., Result], place: str
) -> None:
    config = workspace(tmp_path, store=place)
    (config.parent / "empty").mkdir()
    result = cli("add-corpus", config)
    assert result.code == 0, result.err
    store = config.parent / place
    assert json.loads((store / STORE_MARKER).read_text())["incw2v_store"] == 1
    assert committed(store) == ["v0001", "v0002"]


def test_an_interrupted_creation_is_still_new(tmp_path: Path, cli: Callable[..., Result]
                                              ) -> None:
    config = workspace(tmp_path)
    store = config.parent / "store"
    store.mkdir()
    (store / f".incw2v-tmp-0badc0de-{STORE_MARKER}").write_text("")  # killed mid-marker
    assert cli("add-corpus", config).code == 0
    assert leftovers(store) == []


# -- places that can never be a store ------------------------------------------------------


@pytest.mark.parametrize("store", ["/", "~", "other/versions/v0001/x", "other/sub",
                                   "cache/store"])
def test_places_that_can_never_be_a_store_fail_validate(
    tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    other = workspace(tmp_path / "o")
    assert cli("add-corpus", other).code == 0
    config = workspace(tmp_path, store=store)
    shutil.copytree(other.parent / "store", config.parent / "other")
    from incremental_w2v.store.cache import Cache

    Cache(config.parent / "cache", 1 << 30, "s3://bucket/x")  # a remote store's local cache
    before = every_file(config.parent / "other")
    for command in ("validate", "add-corpus", "status"):
        result = cli(command, config)
        assert result.code == 78, (command, result.err)
        assert any(s in result.err for s in ("root of the file system", "home folder",
                                             "would be inside the incw2v store",
                                             "is not an incw2v store")), result.err
    assert every_file(config.parent / "other") == before


# -- a lost manifest ---------------------------------------------------------------------------


def _delete(path: Path) -> None:
    path.unlink()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_text("{not json")


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _no_marker_either(path: Path) -> None:
    path.unlink()
    (path.parent / STORE_MARKER).unlink()


LOSSES = {"deleted": _delete, "emptied": _empty, "garbled": _garbage,
          "replaced by a folder": _folder, "deleted, marker too": _no_marker_either}


@pytest.mark.parametrize("lose", LOSSES.values(), ids=LOSSES.keys())
def test_versions_without_a_manifest_are_damaged_never_swept_and_can_be_repaired(
    tmp_path: Path, cli: Callable[..., Result], lose: Callable[[Path], None]
) -> None:
    config = workspace(tmp_path)
    store = config.parent / "store"
    assert cli("add-corpus", config).code == 0
    versions = tree_hashes(store / "versions")
    lose(store / "manifest.json")
    before = every_file(store)
    for command in (["add-corpus", config], ["status", config], ["history", config],
                    ["prune", config, "--keep", "1"], ["rollback", config, "1"],
                    ["export", config, "--format", "model", "--output", tmp_path / "m"]):
        result = cli(*command)
        assert result.code == 65, (command[0], result.err)
        assert "damaged" in result.err and "incw2v repair" in result.err, result.err
        assert every_file(store) == before, command[0]  # nothing swept, nothing written
    repaired = cli("repair", config, "--json")
    assert repaired.code == 0, repaired.err
    info = repaired.json()
    assert info["rebuilt"] is True and info["versions"] == ["v0001", "v0002"]
    assert info["current"] == "v0002"
    assert tree_hashes(store / "versions") == versions
    assert cli("add-corpus", config, "--json").json()["applied"] == []  # carries on
    assert cli("add-corpus", config, config.parent / "c.txt").code == 0
    assert check_store(store, {}) == [] and leftovers(store) == []
    assert cli("repair", config, "--json").json()["rebuilt"] is False  # intact: left alone


def test_repair_keeps_the_damaged_manifest_and_knows_candidates(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    config = workspace(tmp_path)
    store = config.parent / "store"
    # A gate no update can pass: v0002 becomes a candidate, v0001 stays current.
    config.write_text(config.read_text() + "gates:\n  wordsim353: {min: 0.99}\n")
    assert cli("add-corpus", config).code == 3
    (store / "manifest.json").write_text("{damaged")
    repaired = cli("repair", config, "--json")
    assert repaired.code == 0, repaired.err
    info = repaired.json()
    assert info["current"] == "v0001" and info["candidates"] == ["v0002"]
    assert (store / info["damaged_manifest"]).read_text() == "{damaged"
    assert cli("status", config, "--json").json()["candidates"] == ["v0002"]


# -- the sweep ---------------------------------------------------------------------------------


def test_the_sweep_removes_exactly_what_incw2v_creates(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    config = workspace(tmp_path)
    store = config.parent / "store"
    assert cli("add-corpus", config).code == 0
    # Look-alikes: near misses of every pattern, files where folders are expected, ...
    mine = {
        ".staging-notes": "dir", ".staging-0123abc": "dir", ".staging-0123ABCD": "dir",
        ".work-in-progress.txt": "file", ".work-89abcdef.bak": "file", ".trash-can": "dir",
        ".trash-v0001-abcdefg": "dir", ".incw2v-tmp-mine": "file", "incw2v-tmp-0123abcd-x": "file",
        "versions/v0099": "dir", "versions/README": "file", "versions/v0002.bak": "dir",
        "versions/v12": "dir", "notes.txt": "file",
    }
    for name, kind in mine.items():
        path = store / name
        if kind == "dir":
            path.mkdir()
            (path / "keep.txt").write_text(name)
        else:
            path.write_text(name)
    # ... and exactly what a killed run leaves.
    ours = [".staging-0123abcd", ".work-89abcdef", ".trash-v0002-abcdef"]
    for name in ours:
        (store / name).mkdir()
        (store / name / "corpus.txt").write_text("half-written")
    (store / ".incw2v-tmp-0123abcd-manifest.json").write_text("{")
    shutil.copytree(store / "versions" / "v0002", store / "versions" / "v0077")
    theirs = {name: every_file(store / name) if (store / name).is_dir()
              else (store / name).read_text() for name in mine}
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    assert sorted(result.json()["swept"]) == sorted(
        [*ours, ".incw2v-tmp-0123abcd-manifest.json", "versions/v0077"])
    for name in mine:
        path = store / name
        assert (every_file(path) if path.is_dir() else path.read_text()) == theirs[name], name
    assert check_store(store, {}) == []


# -- stores made before markers ----------------------------------------------------------------


def test_a_store_from_before_markers_keeps_working_and_gets_one(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    config = workspace(tmp_path)
    store = config.parent / "store"
    assert cli("add-corpus", config).code == 0
    (store / STORE_MARKER).unlink()
    manifest = json.loads((store / "manifest.json").read_text())
    assert all("upload" not in v for v in manifest["versions"])  # the format as before
    assert cli("status", config).code == 0
    assert cli("history", config).code == 0
    assert not (store / STORE_MARKER).exists()  # read-only commands write nothing
    assert cli("add-corpus", config, config.parent / "c.txt").code == 0
    assert (store / STORE_MARKER).is_file()
    assert committed(store) == ["v0001", "v0002", "v0003"]


@pytest.mark.parametrize("manifest", ["{}", '{"format_version": 1}',
                                      '{"format_version": 1, "current": null, "versions": [], '
                                      '"events": []}'])
def test_versions_beside_a_manifest_that_lists_none_are_damaged_not_adopted(
    tmp_path: Path, cli: Callable[..., Result], manifest: str
) -> None:
    """A store whose marker is gone and whose manifest.json parses but is no 0.1.x manifest:
    not adopted (and never marked), refused as damaged; repair brings the versions back."""
    config = workspace(tmp_path)
    store = config.parent / "store"
    assert cli("add-corpus", config).code == 0
    (store / STORE_MARKER).unlink()
    (store / "manifest.json").write_text(manifest)
    before = every_file(store)
    for command in (["add-corpus", config], ["status", config], ["history", config],
                    ["prune", config, "--keep", "1"]):
        result = cli(*command)
        assert result.code == 65, (command[0], result.err)
        assert "damaged" in result.err and "repair" in result.err, result.err
        assert every_file(store) == before, command[0]
    assert cli("repair", config).code == 0
    assert committed(store) == ["v0001", "v0002"]
    assert cli("status", config).code == 0


# -- a remote store's cache -----------------------------------------------------------------


@pytest.mark.parametrize("cache", [
    "other",  # a store itself
    "other/versions/v0001",
    "other/cache",
    "link/cache",  # through a symbolic link to a store
    "old/sub",  # a store from before markers
    "caches/0123456789abcdef/x",  # inside another store's cache
    "env:other/c",  # $INCW2V_CACHE_DIR
    "env:link",
])
def test_a_cache_inside_a_store_fails_validate(
    tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """The local cache of a remote store never goes inside a store (or another cache)."""
    monkeypatch.delenv("INCW2V_CACHE_DIR", raising=False)
    other = workspace(tmp_path / "o")
    assert cli("add-corpus", other).code == 0
    config = workspace(tmp_path, store="s3://bucket/lineage")
    folder = config.parent
    shutil.copytree(other.parent / "store", folder / "other")
    shutil.copytree(other.parent / "store", folder / "old")
    (folder / "old" / STORE_MARKER).unlink()
    (folder / "link").symlink_to(folder / "other")
    from incremental_w2v.store.cache import Cache

    Cache(folder / "caches" / "0123456789abcdef", 1 << 30, "s3://bucket/x")
    if cache.startswith("env:"):
        monkeypatch.setenv("INCW2V_CACHE_DIR", str(folder / cache[len("env:"):]))
    else:
        config.write_text(config.read_text() + f"store_options: {{cache_dir: '{cache}'}}\n")
    before = {name: every_file(folder / name) for name in ("other", "old", "caches")}
    for command in ("validate", "status", "add-corpus"):
        result = cli(command, config)
        assert result.code == 78, (command, result.err)
        assert "would be inside the incw2v store" in result.err and "hint:" in result.err
    assert {name: every_file(folder / name) for name in before} == before


def test_a_cache_outside_every_store_passes_validate(
    tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INCW2V_CACHE_DIR", raising=False)
    config = workspace(tmp_path, store="s3://bucket/lineage")
    config.write_text(config.read_text() + "store_options: {cache_dir: cache}\n")
    result = cli("validate", config)
    assert result.code == 0, result.err
