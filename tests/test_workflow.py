"""add-corpus end to end on small real corpora: first run, re-run, new files,
changed corpora, rollback, prune, export, status and history."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gensim.models import KeyedVectors, Word2Vec

from helpers import Result, version_model


def manifest(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text())


def test_first_run_then_nothing_to_do(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    first = cli("add-corpus", config, "--json")
    assert first.code == 0, first.err
    out = first.json()
    assert [a["version"] for a in out["applied"]] == ["v0001", "v0002", "v0003"]
    assert out["current"] == "v0003"
    assert out["skipped"] == []

    again = cli("add-corpus", config, "--json")
    assert again.code == 0
    assert again.json()["applied"] == []
    reasons = {s["reason"] for s in again.json()["skipped"]}
    assert reasons == {"applied in v0002", "applied in v0003"}
    assert again.json()["current"] == "v0003"
    assert len(manifest(tmp_store(config))["versions"]) == 3


def tmp_store(config: Path) -> Path:
    return config.parent / "store"


def test_history_and_status_json(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    status0 = cli("status", config, "--json").json()
    assert status0["current"] is None
    assert [p["base"] for p in status0["pending"]] == [True, False]
    assert cli("add-corpus", config).code == 0
    rows = cli("history", config, "--json").json()
    assert [r["version"] for r in rows] == ["v0001", "v0002"]
    assert [r["current"] for r in rows] == [False, True]
    assert rows[1]["parent"] == "v0001"
    last = rows[1]
    for key in ("version", "created_at", "current", "parent", "corpora", "vocab_size", "params"):
        assert key in last
    corpus = last["corpora"][1]
    assert set(corpus) >= {"name", "uri", "fingerprint", "sentences", "tokens"}
    assert corpus["sentences"] > 0 and corpus["tokens"] > corpus["sentences"]
    assert len(corpus["fingerprint"]) == 64
    # The recorded hash is the sha256 of the file's bytes.
    import hashlib

    assert corpus["fingerprint"] == hashlib.sha256(corpora["b"].read_bytes()).hexdigest()
    status = cli("status", config, "--json").json()
    assert status["current"] == "v0002" and status["pending"] == []
    text = cli("history", config)
    assert "* v0002" in text.out


def test_new_file_in_queued_folder_is_applied_next_run(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    shutil.copy(corpora["b"], drops / "2024-01.txt")
    config = make_config(corpora["a"], [str(drops)])
    out = cli("add-corpus", config, "--json").json()
    assert [a["name"] for a in out["applied"]] == [corpora["a"].name, "2024-01.txt"]

    shutil.copy(corpora["c"], drops / "2024-02.txt.gz")
    with gzip.open(drops / "2024-02.txt.gz", "wb") as handle:
        handle.write(corpora["c"].read_bytes())
    (drops / ".partial-upload").write_text("hidden files are ignored")
    out = cli("add-corpus", config, "--json").json()
    assert [a["name"] for a in out["applied"]] == ["2024-02.txt.gz"]
    assert out["current"] == "v0003"
    assert cli("add-corpus", config, "--json").json()["applied"] == []


def test_glob_matching_nothing_means_nothing_pending(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [str(tmp_path / "later" / "*.txt")])
    out = cli("add-corpus", config, "--json")
    assert out.code == 0
    assert out.json()["current"] == "v0001"


def test_base_glob_matching_nothing_is_input_missing(
    tmp_path: Path, make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(str(tmp_path / "none" / "*.txt"))
    result = cli("add-corpus", config)
    assert result.code == 66
    assert "matches no file" in result.err


def test_changed_corpus_stops_with_65_and_keeps_store(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    before = (tmp_store(config) / "manifest.json").read_bytes()
    with corpora["b"].open("a") as handle:
        handle.write("a brand new line that changes the dump\n")
    result = cli("add-corpus", config)
    assert result.code == 65
    assert "changed since it was applied in v0002" in result.err
    assert "rollback" in result.err
    assert (tmp_store(config) / "manifest.json").read_bytes() == before
    # status is read-only: it reports the problem and still shows the state (exit 0).
    shown = cli("status", config)
    assert shown.code == 0, shown.err
    assert shown.out.startswith("current: v0002 (vocabulary ")
    assert "problem: the next run would stop: corpus" in shown.out
    assert "changed since it was applied in v0002" in shown.out and "hint: " in shown.out
    data = cli("status", config, "--json").json()
    assert data["current"] == "v0002" and data["applied"] == 2
    assert [p["kind"] for p in data["problems"]] == ["DataError"]
    # A queued file that is missing is reported the same way (a run would exit 66).
    config.write_text(config.read_text() + "  - uri: nowhere.txt\n")
    missing = cli("status", config, "--json")
    assert missing.code == 0
    assert [p["kind"] for p in missing.json()["problems"]] == ["DataError", "InputMissingError"]
    assert "config's folder" in missing.json()["problems"][1]["hint"]


def test_touched_but_identical_corpus_is_still_applied(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    os.utime(corpora["b"], ns=(1, 1))
    result = cli("add-corpus", config, "--json")
    assert result.code == 0
    assert result.json()["applied"] == []


def test_extra_uris_are_applied_after_queue_and_recorded(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    out = cli("add-corpus", config, corpora["c"], "--json").json()
    assert [a["name"] for a in out["applied"]][-1] == "c.txt"
    # Recorded like queued ones: the next run (without the URI) has nothing to do,
    # and naming it again skips it.
    assert cli("add-corpus", config, corpora["c"], "--json").json()["applied"] == []


def test_rollback_makes_later_corpora_pending_again(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    result = cli("rollback", config, "v0002")
    assert result.code == 0, result.err
    status = cli("status", config, "--json").json()
    assert status["current"] == "v0002"
    assert [p["name"] for p in status["pending"]] == ["c.txt"]
    out = cli("add-corpus", config, "--json").json()
    assert out["applied"][0]["version"] == "v0004"
    rows = cli("history", config, "--json").json()
    assert rows[-1]["parent"] == "v0002"
    assert cli("rollback", config, "v0099").code == 64


def test_every_command_takes_a_version_as_v2_2_or_v0002(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    exported = []
    for name in ("v2", "2", "v0002"):
        out = tmp_path / f"export-{name}.txt"
        result = cli("export", config, "--version", name, "--format", "word2vec-text",
                     "--output", out)
        assert result.code == 0, result.err
        exported.append(out.read_bytes())
        scored = cli("evaluate", config, "--version", name, "--json")
        assert scored.code == 0 and scored.json()["version"] == "v0002", scored.err
    assert exported[0] == exported[1] == exported[2]
    assert cli("rollback", config, "v2").code == 0
    assert cli("status", config, "--json").json()["current"] == "v0002"
    assert cli("rollback", config, "3").code == 0
    assert cli("status", config, "--json").json()["current"] == "v0003"


def test_prune_never_deletes_current(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    assert cli("rollback", config, "v0001").code == 0
    result = cli("prune", config, "--keep", "1")
    assert result.code == 0, result.err
    listed = manifest(tmp_store(config))["versions"]
    # Every version stays listed (its lineage record is kept); v0002's arrays are gone.
    assert [(v["version"], v.get("pruned_at") is not None) for v in listed] == [
        ("v0001", False), ("v0002", True), ("v0003", False)]
    assert sorted(p.name for p in (tmp_store(config) / "versions" / "v0002").iterdir()) == [
        "COMMITTED", "meta.json"]
    assert cli("status", config, "--json").json()["current"] == "v0001"
    assert cli("prune", config, "--keep", "0").code == 64


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary", "keyedvectors", "model"])
def test_export_loads_back_with_gensim(
    fmt: str, tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    out = tmp_path / "exported"
    result = cli("export", config, "--format", fmt, "--output", out)
    assert result.code == 0, result.err
    reference = version_model(tmp_store(config), "v0002").wv
    if fmt == "word2vec-text":
        kv = KeyedVectors.load_word2vec_format(str(out), binary=False)
    elif fmt == "word2vec-binary":
        kv = KeyedVectors.load_word2vec_format(str(out), binary=True)
    elif fmt == "keyedvectors":
        kv = KeyedVectors.load(str(out))
    else:
        kv = Word2Vec.load(str(out)).wv
    if fmt.startswith("word2vec-"):
        # Sorted by cumulative count, so that load_word2vec_format(limit=N) keeps the N most
        # frequent words, which after updates is not the index order.
        assert set(kv.index_to_key) == set(reference.index_to_key)
        by_count = sorted(reference.index_to_key, key=lambda w: -reference.get_vecattr(w, "count"))
        assert [reference.get_vecattr(w, "count") for w in kv.index_to_key] == [
            reference.get_vecattr(w, "count") for w in by_count
        ]
    else:
        assert kv.index_to_key == reference.index_to_key
    word = reference.index_to_key[-5]
    assert kv[word] == pytest.approx(reference[word], abs=1e-5)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_export_older_version_and_bad_output(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    out = tmp_path / "v1.txt"
    assert cli("export", config, "--format", "word2vec-text", "--output", out,
               "--version", "v0001").code == 0
    v1 = version_model(tmp_store(config), "v0001").wv
    assert len(KeyedVectors.load_word2vec_format(str(out))) == len(v1)
    bad = cli("export", config, "--format", "word2vec-text", "--output",
              tmp_path / "no" / "such" / "dir" / "x.txt")
    assert bad.code == 73
    # An existing file is replaced only with --force.
    before = out.read_bytes()
    again = cli("export", config, "--format", "word2vec-text", "--output", out)
    assert again.code == 73 and "exists" in again.err and "--force" in again.err
    assert out.read_bytes() == before
    forced = cli("export", config, "--format", "word2vec-text", "--output", out, "--force",
                 "--json")
    assert forced.code == 0 and forced.json()["version"] == "v0002"
    assert out.read_bytes() != before


def test_commands_on_a_store_that_does_not_exist(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"])
    for args in (("history",), ("rollback", "v0001"), ("prune", "--keep", "1"),
                 ("export", "--format", "model", "--output", config.parent / "m")):
        result = cli(args[0], config, *args[1:])
        assert result.code == 66, (args, result.err)
        assert "run 'incw2v add-corpus CONFIG' first" in result.err


def test_empty_corpus_is_refused_and_nothing_committed(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n")
    config = make_config(corpora["a"], [empty, corpora["b"]])
    result = cli("add-corpus", config)
    assert result.code == 65
    assert "has no tokens" in result.err
    assert manifest(tmp_store(config))["current"] == "v0001"
    assert not [p for p in tmp_store(config).iterdir() if p.name.startswith((".work", ".staging"))]


def test_tokenize_change_is_refused_unless_allowed(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    config.write_text(config.read_text() + f"  - uri: {corpora['c']}\n"
                      "tokenize: {mode: whitespace}\n")
    refused = cli("add-corpus", config)
    assert refused.code == 78
    assert "tokenize: lineage has" in refused.err and "--allow-tokenize-change" in refused.err
    assert cli("status", config, "--json").json()["current"] == "v0002"
    allowed = cli("add-corpus", config, "--allow-tokenize-change", "--json")
    assert allowed.code == 0, allowed.err
    row = cli("history", config, "--json").json()[-1]
    assert row["tokenize"]["mode"] == "whitespace"
    assert row["corpora"][-1]["name"] == "c.txt"


def test_applied_corpus_deleted_from_disk_stays_applied(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    # Old dumps get deleted or archived once applied; the queue may still name them.
    config = make_config("data/a.txt", ["data/b.txt", str(corpora["c"])])
    assert cli("add-corpus", config).code == 0
    corpora["b"].unlink()
    corpora["c"].unlink()
    again = cli("add-corpus", config, "--json")
    assert again.code == 0, again.err
    assert again.json()["applied"] == []
    assert {s["reason"] for s in again.json()["skipped"]} == {"applied in v0002",
                                                              "applied in v0003"}
    assert cli("status", config, "--json").json()["pending"] == []
    # A file that was never applied and is missing is still an error.
    missing = make_config("data/a.txt", ["data/b.txt", "data/never.txt"])
    refused = cli("add-corpus", missing)
    assert refused.code == 66 and "never.txt does not exist" in refused.err


def test_commit_line_summary_and_history_show_scores_drift_and_parents(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import re

    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    with caplog.at_level(logging.INFO, logger="incremental_w2v"):
        run = cli("add-corpus", config)
    assert run.code == 0, run.err
    rows = cli("history", config, "--json").json()
    v1, v2 = rows[0]["scores"], rows[1]["scores"]
    drift = rows[1]["drift"]["parent"]["drift"]
    ws_change = v2["wordsim353"]["value"] - v1["wordsim353"]["value"]
    expected = (f"wordsim353 {v2['wordsim353']['value']:.4f} ({ws_change:+.4f})")
    # The commit's log line: scores, their change against the parent, drift from it.
    commit = next(r.getMessage() for r in caplog.records
                  if r.getMessage().startswith("committed v0002"))
    assert expected in commit and f"drift vs v0001 {drift:.4f}" in commit, commit
    # The run's summary says the same per version, once, on stdout.
    assert "  v0002 update on v0001 (b.txt): " in run.out and expected in run.out
    assert run.out.count("v0002 update on v0001") == 1
    # Text history: each version's parent, scores and drift; a rollback's branch is visible.
    assert cli("rollback", config, "v0001").code == 0
    assert cli("add-corpus", config, "--json").json()["applied"][0]["parent"] == "v0001"
    text = cli("history", config).out
    assert re.search(r"v0002 .* parent v0001  vocab", text)
    assert re.search(r"v0004 .* parent v0001 \(branch\)", text), text
    assert expected in text and f"drift vs v0001 {drift:.4f}" in text
    assert "[rollback " in text


def test_a_store_that_never_pruned_or_excluded_writes_no_new_manifest_keys(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
) -> None:
    # So that it stays readable by the incw2v versions from before those features.
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    data = manifest(tmp_store(config))
    assert "exclusions" not in data and all("pruned_at" not in v for v in data["versions"])
    assert cli("exclude", config, "v0002").code == 0
    assert cli("prune", config, "--keep", "1").code == 0
    data = manifest(tmp_store(config))
    assert len(data["exclusions"]) == 1 and data["versions"][0]["pruned_at"]


def test_export_refuses_to_replace_a_side_file_without_force(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"])
    assert cli("add-corpus", config).code == 0
    out = tmp_path / "out.kv"
    side = tmp_path / "out.kv.vectors.npy"  # what a keyedvectors export writes beside PATH
    side.write_bytes(b"someone else's array")
    refused = cli("export", config, "--format", "keyedvectors", "--output", out)
    assert refused.code == 73, refused.err
    assert str(side) in refused.err and "--force" in refused.err
    assert side.read_bytes() == b"someone else's array"
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "incw2v-tmp" in p.name]
    forced = cli("export", config, "--format", "keyedvectors", "--output", out, "--force")
    assert forced.code == 0, forced.err
    kv = KeyedVectors.load(str(out), mmap="r")
    assert len(kv) == len(version_model(tmp_store(config), "v0001").wv)
