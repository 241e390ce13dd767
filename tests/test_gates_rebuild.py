"""Gates (candidates, exit 3, promote, reject), rebuild and automatic rebuilds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gensim.test.utils import datapath

from helpers import Result
from incremental_w2v.config.quality import Gate
from incremental_w2v.config.schema import load_config
from incremental_w2v.quality.gates import check_gates
from incremental_w2v.store.store import Store
from incremental_w2v.train.rehearsal import REPLAY_FILE, ReplayBuffer
from incremental_w2v.vectors.ranking import counts_of


def manifest(config: Path) -> dict:
    return json.loads((config.parent / "store" / "manifest.json").read_text())


def test_failing_gate_keeps_a_candidate_then_promote_and_reject(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]],
                         extra="gates:\n  wordsim353: {min: 0.99}\n  analogies: {max_drop: 1}")
    run = cli("add-corpus", config, "--json")
    assert run.code == 3, run.err
    assert "v0002 (b.txt) failed the quality gate" in run.err
    assert "wordsim353:" in run.err and "is below min 0.99 by" in run.err
    assert "current stays v0001" in run.err and "incw2v promote CONFIG v0002" in run.err
    out = run.json()
    assert out["current"] == "v0001"
    assert [a["version"] for a in out["applied"]] == ["v0001", "v0002"]  # c waits
    assert out["gate_failed"]["passed"] is False
    m = manifest(config)
    assert m["current"] == "v0001"
    assert [(v["version"], v["status"]) for v in m["versions"]] == [
        ("v0001", "committed"), ("v0002", "candidate")]
    meta = Store(load_config(config).store_path).read_meta("v0002")
    by_rule = {(c["metric"], c["rule"]): c for c in meta.gate["checks"]}
    ws = by_rule[("wordsim353", "min")]
    assert not ws["ok"] and ws["value"] == meta.scores["wordsim353"]["value"]
    assert by_rule[("analogies", "max_drop")]["ok"]
    status = cli("status", config, "--json").json()
    assert status["current"] == "v0001" and status["candidates"] == ["v0002"]
    assert "candidates awaiting review: v0002" in cli("status", config).out

    # The next cron run does not re-train the refused corpus, and says why.
    again = cli("add-corpus", config)
    assert again.code == 3
    assert "b.txt is awaiting review in candidate v0002" in again.err
    assert "nothing was trained" in again.err and "1 later corpus(es) wait" in again.err
    assert len(manifest(config)["versions"]) == 2

    refused = cli("rollback", config, "v0002")
    assert refused.code == 64 and "incw2v promote CONFIG v0002" in refused.err
    promoted = cli("promote", config, "v2")  # short names work too
    assert promoted.code == 0, promoted.err
    m = manifest(config)
    assert m["current"] == "v0002" and m["versions"][1]["status"] == "committed"
    event = m["events"][-1]
    assert event["action"] == "promote" and event["version"] == "v0002"
    assert "wordsim353" in event["detail"] and "current was v0001" in event["detail"]
    rows = cli("history", config, "--json").json()
    assert [e["action"] for e in rows[1]["events"]] == ["promote"]
    assert "[promote " in cli("history", config).out
    assert cli("report", config, "--output", config.parent / "r.html").code == 0
    assert "<td>committed (promoted)</td>" in (config.parent / "r.html").read_text()
    assert cli("promote", config, "v0002").code == 64  # not a candidate any more

    # c is tried on top of v0002, fails the same gate; rejecting it drops it for good.
    third = cli("add-corpus", config)
    assert third.code == 3 and "v0003 (c.txt)" in third.err
    assert cli("reject", config, "v0003").code == 0
    assert manifest(config)["versions"][2]["status"] == "rejected"
    quiet = cli("add-corpus", config, "--json")
    assert quiet.code == 0, quiet.err
    skipped = {s["name"]: s["reason"] for s in quiet.json()["skipped"]}
    assert skipped["c.txt"] == "rejected in v0003"
    assert quiet.json()["applied"] == [] and quiet.json()["current"] == "v0002"
    assert cli("reject", config, "v0001").code == 64


def test_passing_gates_move_current(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]],
                         extra="gates:\n  simlex999: {min: -1, max_drop: 2}")
    assert cli("add-corpus", config).code == 0
    meta = Store(load_config(config).store_path).read_meta("v0002")
    assert meta.gate["passed"] is True and meta.gate["against"] == "v0001"
    assert len(meta.gate["checks"]) == 2
    assert manifest(config)["current"] == "v0002"


def test_check_gates_drop_arithmetic() -> None:
    gates = {"analogies": Gate(max_drop=0.03), "wordsim353": Gate(min=0.5, max_drop=0.02)}
    ref = {"analogies": {"value": 0.40}, "wordsim353": {"value": 0.60}}
    now = {"analogies": {"value": 0.36}, "wordsim353": {"value": 0.59}}
    verdict = check_gates(gates, now, ref, "v0007")
    assert verdict["passed"] is False
    assert verdict["failures"] == [
        "analogies: 0.4000 (v0007) -> 0.3600, drop 0.0400 exceeds max_drop 0.03 by 0.0100"
    ]
    assert check_gates(gates, {"analogies": {"value": 0.38}, "wordsim353": {"value": 0.7}},
                       ref, "v0007")["passed"]
    unmeasured = check_gates(gates, {"analogies": {"value": None}}, ref, "v0007")
    assert len(unmeasured["failures"]) == 3  # no score: every gate on it fails


def test_rebuild_retrains_the_lineage_and_compares(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    run = cli("rebuild", config, "--json")
    assert run.code == 0, run.err
    info = run.json()
    assert info["version"] == "v0004" and info["replaces"] == "v0003"
    assert info["status"] == "committed"
    comp = info["compare"]
    assert comp["a"] == "v0003" and comp["b"] == "v0004"
    assert comp["vocab"]["added"] == comp["vocab"]["removed"] == 0
    assert 0 < comp["drift"] < 1 and comp["moved"]
    store = Store(load_config(config).store_path)
    old, new = store.read_meta("v0003"), store.read_meta("v0004")
    assert new.kind == "rebuild" and new.parent == "v0003" and new.added == []
    assert [c.model_dump() for c in new.corpora] == [c.model_dump() for c in old.corpora]
    assert new.drift["parent"]["against"] == "v0003"
    assert new.drift["parent"]["drift"] == comp["drift"]
    # From scratch on the same corpora: the same words with the same cumulative counts.
    a = store.load_model("v0003", mmap="r").wv
    b = store.load_model("v0004", mmap="r").wv
    assert counts_of(a) == counts_of(b)
    assert list(b.index_to_key) != list(a.index_to_key)  # but frequency-sorted again
    # The rebuild's replay buffer is a sample of every corpus, as the incremental one is.
    size, seed = load_config(config).rehearsal.buffer_tokens, load_config(config).rehearsal.seed
    replays = [ReplayBuffer.load(store.version_dir(v) / REPLAY_FILE, size, seed)
               for v in ("v0003", "v0004")]
    assert replays[1].seen == replays[0].seen == sum(c.sentences for c in new.corpora)
    # Keyed by position in the lineage: read again in the same order, the same sample.
    assert replays[1].lines == replays[0].lines and len(replays[1]) > 0
    rows = cli("history", config, "--json").json()
    assert rows[-1]["kind"] == "rebuild" and rows[-1]["current"]
    assert cli("add-corpus", config, "--json").json()["applied"] == []  # nothing pending
    text = cli("rebuild", config)
    assert text.code == 0 and "rebuilt the lineage of v0004 from scratch as v0005" in text.out
    lines = cli("history", config).out.splitlines()
    rebuilt_line = next(line for line in lines if " v0005 " in line)
    assert rebuilt_line.rstrip().endswith("all 3 corpora of v0004"), rebuilt_line  # not a "+"
    update_line = next(line for line in lines if " v0002 " in line)
    assert update_line.rstrip().endswith(f"+{corpora['b'].name}"), update_line


def test_rebuild_needs_every_corpus_unchanged(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    original = corpora["b"].read_bytes()
    corpora["b"].unlink()
    gone = cli("rebuild", config)
    assert gone.code == 66 and "b.txt" in gone.err and "is gone" in gone.err
    corpora["b"].write_bytes(original.replace(b"the ", b"a ", 5))
    changed = cli("rebuild", config)
    assert changed.code == 65 and "no longer has the content applied in v0002" in changed.err
    assert [v["version"] for v in manifest(config)["versions"]] == ["v0001", "v0002"]


def test_rebuild_every_n_updates_and_on_drift(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]],
                         extra="rebuild: {every: 2}")
    run = cli("add-corpus", config, "--json")
    assert run.code == 0, run.err
    applied = run.json()["applied"]
    assert [(a["version"], a["kind"]) for a in applied] == [
        ("v0001", "base"), ("v0002", "update"), ("v0003", "update"), ("v0004", "rebuild")]
    assert "2 updates since the last rebuild" in applied[-1]["reason"]
    assert applied[-1]["name"] == "rebuild of v0003"
    assert run.json()["current"] == "v0004"

    # Drift trigger: the next update measures itself against v0004 and passes the threshold.
    extra = tmp_path / "d.txt"
    extra.write_text(Path(datapath("lee.cor")).read_text(encoding="latin-1"), encoding="utf-8")
    text = config.read_text().replace("rebuild: {every: 2}",
                                      "rebuild: {max_drift: 0.5, min_overlap: 0.95}")
    config.write_text(text)
    run = cli("add-corpus", config, extra, "--json")
    assert run.code == 0, run.err
    applied = run.json()["applied"]
    assert [a["kind"] for a in applied] == ["update", "rebuild"]
    meta = Store(load_config(config).store_path).read_meta("v0005")
    assert meta.drift["rebuild"]["against"] == "v0004"
    assert meta.drift["rebuild"]["drift"] < 0.5  # old words barely move ...
    assert meta.drift["rebuild"]["overlap"]["mean"] < 0.95  # ... their neighbourhoods do
    assert "is below rebuild.min_overlap 0.95" in applied[-1]["reason"]


@pytest.mark.parametrize("kind", ["import"])
def test_imported_lineage_cannot_be_rebuilt(
    kind: str, tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    from gensim.models import Word2Vec

    from helpers import lee_lines

    model = Word2Vec([line.split() for line in lee_lines()], vector_size=16, min_count=3,
                     epochs=1, workers=1, seed=1)
    model.save(str(tmp_path / "full.model"))
    config = make_config(corpora["a"])
    config.write_text(config.read_text().replace(f"  corpus: {corpora['a']}",
                                                 "  model: full.model"))
    assert cli("add-corpus", config).code == 0
    refused = cli("rebuild", config)
    assert refused.code == 64 and "imported model" in refused.err


def test_prune_keeps_the_last_rebuild_and_a_pruned_one_does_not_break_commits(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    assert cli("rebuild", config).code == 0  # v0003
    assert cli("add-corpus", config, corpora["c"]).code == 0  # v0004, drift vs v0003
    store = Store(load_config(config).store_path)
    assert store.read_meta("v0004").drift["rebuild"]["against"] == "v0003"
    pruned = cli("prune", config, "--keep", "1", "--json").json()
    # The current version's last rebuild keeps its arrays: the gap is still measured.
    assert pruned["deleted"] == ["v0001", "v0002"] and pruned["kept"] == ["v0003", "v0004"]
    extra = tmp_path / "d.txt"
    extra.write_text(corpora["a"].read_text()[:20000])
    assert cli("add-corpus", config, extra).code == 0
    meta = store.read_meta("v0005")
    assert meta.drift["parent"]["against"] == "v0004"
    assert meta.drift["rebuild"]["against"] == "v0003"
    # On another branch the rebuild can go: then there is no gap to measure, and no crash.
    assert cli("rollback", config, "v0004").code == 0
    assert cli("prune", config, "--keep", "1").code == 0  # v0003 stays: v0004's last rebuild
    assert not store.is_pruned("v0003")
    manifest = store.read_manifest()
    assert store.last_rebuild("v0004") == "v0003"
    # Prune it by hand through the store, as retention on a former branch would.
    store.prune_versions(["v0003"])
    assert store.is_pruned("v0003") and manifest.current == "v0004"
    more = tmp_path / "e.txt"
    more.write_text(corpora["b"].read_text()[:20000])
    run = cli("add-corpus", config, more)
    assert run.code == 0, run.err
    latest = store.read_meta(store.read_manifest().current or "")
    assert latest.drift["parent"]["against"] == "v0004" and "rebuild" not in latest.drift


def test_gate_rescores_a_parent_measured_differently(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    """A gate added with a new metric compares like with like: the parent is re-scored."""
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config, "--json").json()["current"] == "v0002"
    pairs = tmp_path / "mine.tsv"
    pairs.write_text("government\tminister\t8\nfire\tbushfires\t9\npolice\tpeople\t3\n"
                     "the\tof\t1\nsaid\ttold\t7\n")
    config.write_text(config.read_text() + "evaluation:\n  word_pairs: [{name: mine, path: "
                      "mine.tsv}]\ngates:\n  mine: {max_drop: 2}\n")
    store = Store(load_config(config).store_path)
    assert "mine" not in store.read_meta("v0002").scores
    fresh = cli("evaluate", config, "--json").json()["scores"]["mine"]["value"]
    assert cli("add-corpus", config, corpora["c"]).code == 0
    check = store.read_meta("v0003").gate["checks"][0]
    assert check["metric"] == "mine" and check["reference"] == fresh is not None
