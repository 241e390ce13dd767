"""``retention:`` and ``prune``: old versions lose their arrays, never their lineage record.

The newest N versions, the current one and the last rebuild keep their arrays; every
version stays in ``history`` and the report with its corpora, fingerprints, scores and
drift, marked pruned; a pruned version cannot be loaded, exported or made current.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Result
from incremental_w2v.config.schema import load_config
from incremental_w2v.store.store import Store


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_retention_after_each_commit_keeps_current_and_last_rebuild(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    d = tmp_path / "d.txt"
    d.write_bytes(corpora["a"].read_bytes()[:40000])
    config = make_config(corpora["a"], [corpora["b"], corpora["c"], d],
                         extra="retention: {keep: 2}")
    store = Store(load_config(config).store_path)
    run = cli("add-corpus", config, "--json")
    assert run.code == 0, run.err
    # Applied after each commit: v0001 went when v0003 came, v0002 when v0004 came.
    assert run.json()["pruned"] == ["v0001", "v0002"]
    manifest = store.read_manifest()
    assert [(v.version, v.pruned_at is not None) for v in manifest.versions] == [
        ("v0001", True), ("v0002", True), ("v0003", False), ("v0004", False)]
    for v in ("v0001", "v0002"):
        assert sorted(p.name for p in store.version_dir(v).iterdir()) == ["COMMITTED",
                                                                          "meta.json"]
    assert folder_bytes(store.version_dir("v0001")) < folder_bytes(store.version_dir("v0003")) / 20

    # The last rebuild keeps its arrays however old it gets.
    assert cli("rebuild", config).code == 0  # v0005: prunes v0003
    for i, name in enumerate(("e", "f")):
        extra = tmp_path / f"{name}.txt"
        extra.write_bytes(corpora["b"].read_bytes()[i * 20000:(i + 1) * 20000])
        assert cli("add-corpus", config, extra).code == 0  # v0006, v0007
    kept = [v.version for v in store.read_manifest().versions if v.pruned_at is None]
    assert kept == ["v0005", "v0006", "v0007"]  # newest two, and the last rebuild
    # The gap to the last rebuild is still measured at every commit.
    assert store.read_meta("v0007").drift["rebuild"]["against"] == "v0005"


def test_pruned_versions_stay_in_the_history_and_cannot_be_used(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    before = cli("history", config, "--json").json()
    pruned = cli("prune", config, "--keep", "1", "--json").json()
    assert pruned["deleted"] == ["v0001", "v0002"] and pruned["kept"] == ["v0003"]
    after = cli("history", config, "--json").json()
    # The whole record stays: corpora, fingerprints, scores, drift; only pruned_at is new.
    assert [r["version"] for r in after] == ["v0001", "v0002", "v0003"]
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in new.items() if k not in ("pruned_at", "events")} == {
            k: v for k, v in old.items() if k not in ("pruned_at", "events")}
    assert [r["pruned_at"] is not None for r in after] == [True, True, False]
    assert after[1]["drift"]["parent"]["against"] == "v0001" and after[1]["scores"]
    text = cli("history", config).out
    assert "committed, pruned" in text and text.count("pruned") >= 2
    status = cli("status", config, "--json").json()
    assert status["pruned"] == ["v0001", "v0002"] and status["versions"] == 3

    for argv in (("rollback", "v0002"), ("evaluate", "--version", "v0001"),
                 ("compare", "v0001", "v0003"),
                 ("export", "--version", "v0002", "--format", "word2vec-text", "--output",
                  tmp_path / "x.txt")):
        run = cli(argv[0], config, *argv[1:])
        assert run.code == 66, (argv, run.err)
        assert "was pruned" in run.err and "lineage record stays" in run.err, run.err
        assert "hint:" in run.err
    assert cli("status", config, "--json").json()["current"] == "v0003"
    # Pruning again changes nothing.
    again = cli("prune", config, "--keep", "1", "--json").json()
    assert again["deleted"] == []
