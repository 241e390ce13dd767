"""Quality: scores with coverage at every commit, evaluate, compare and watch words.

Real lineages on gensim's Lee corpus cut in three (the ``corpora`` fixture)
with the small model of ``conftest``; the bundled evaluation sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from helpers import Result, committed
from incremental_w2v.config.schema import load_config
from incremental_w2v.quality.evaluation import (
    bundled_path,
    rank_order,
    read_pairs,
    read_questions,
    score_analogies,
    score_pairs,
)
from incremental_w2v.store.store import Store
from incremental_w2v.vectors.ranking import counts_of


def lineage(make_config: Callable[..., Path], corpora: dict[str, Path], cli: Callable[..., Result],
            extra: str = "") -> Path:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]], extra=extra)
    if "drift:" in extra:  # replaces the small model's own drift section
        text = config.read_text().replace("drift:\n  sample: 200\n", "", 1)
        config.write_text(text)
    done = cli("add-corpus", config)
    assert done.code == 0, done.err
    return config


def model_of(config: Path, version: str) -> KeyedVectors:
    return Store(load_config(config).store_path).load_model(version, mmap="r").wv


def test_every_version_has_scores_with_coverage(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = lineage(make_config, corpora, cli)
    rows = cli("history", config, "--json").json()
    assert [r["version"] for r in rows] == ["v0001", "v0002", "v0003"]
    for row in rows:
        scores = row["scores"]
        assert set(scores) == {"wordsim353", "simlex999", "analogies"}
        assert scores["wordsim353"]["total"] == 353 and scores["simlex999"]["total"] == 999
        assert scores["analogies"]["total"] == 19544
        for s in scores.values():
            assert 0 < s["covered"] <= s["total"]
            assert s["coverage"] == round(s["covered"] / s["total"], 4)
        assert -1 <= scores["wordsim353"]["value"] <= 1
        assert row["timings"]["evaluate"] >= 0
    # More corpora, more of each set in the vocabulary.
    covered = [r["scores"]["simlex999"]["covered"] for r in rows]
    assert covered == sorted(covered) and covered[0] < covered[-1]

    before = (config.parent / "store" / "manifest.json").read_bytes()
    meta_before = (config.parent / "store/versions/v0003/meta.json").read_bytes()
    now = cli("evaluate", config, "--json")
    assert now.code == 0, now.err
    assert now.json()["version"] == "v0003"
    assert now.json()["scores"] == rows[-1]["scores"]  # recomputed read-only: same figures
    old = cli("evaluate", config, "--version", "v0001")
    assert old.code == 0 and "v0001" in old.out
    assert f"coverage {rows[0]['scores']['wordsim353']['covered']}/353" in old.out
    assert cli("evaluate", config, "--version", "v0009").code == 64
    # Read-only: nothing in the store changed.
    assert (config.parent / "store" / "manifest.json").read_bytes() == before
    assert (config.parent / "store/versions/v0003/meta.json").read_bytes() == meta_before


def test_pair_scores_match_gensim(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = lineage(make_config, corpora, cli)
    kv = model_of(config, "v0003")
    order = rank_order(kv, counts_of(kv))
    for name in ("wordsim353", "simlex999"):
        ours = score_pairs(kv, order, read_pairs(bundled_path(name)))
        pearson, spearman, oov = kv.evaluate_word_pairs(bundled_path(name))
        assert ours["value"] == pytest.approx(spearman.statistic, abs=1e-3)
        assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-3)
        assert ours["coverage"] == pytest.approx(1 - oov / 100, abs=1e-3)


def test_analogy_accuracy_matches_gensim_on_answerable_questions(tmp_path: Path) -> None:
    """Vectors made so that some analogies hold exactly: our 3CosAdd agrees with gensim's."""
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(60)]
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    questions = []
    for q in range(10):
        a, b, c, d = 4 * q, 4 * q + 1, 4 * q + 2, 4 * q + 3
        if q < 6:  # d = b - a + c: answerable
            vectors[d] = vectors[b] - vectors[a] + vectors[c]
        questions.append(" ".join(words[i] for i in (a, b, c, d)))
    kv = KeyedVectors(8)
    kv.add_vectors(words, vectors)
    path = tmp_path / "q.txt"
    path.write_text(": made\n" + "\n".join(questions) + "\n")
    ours = score_analogies(kv, np.arange(60), read_questions(path), None)
    _, sections = kv.evaluate_word_analogies(str(path), restrict_vocab=60)
    total = sections[-1]
    assert ours["covered"] == len(total["correct"]) + len(total["incorrect"]) == 10
    assert ours["correct"] == len(total["correct"])
    assert ours["correct"] >= 6


def test_restrict_vocab_ranks_by_count_not_index(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    """After updates the first N rows are not the N most frequent words (DESIGN.md §3)."""
    config = lineage(make_config, corpora, cli)
    kv = model_of(config, "v0003")
    counts = counts_of(kv)
    assert counts is not None
    n = 1500
    by_count = [w for w, _ in sorted(counts.items(), key=lambda x: -x[1])][:n]
    first_rows = kv.index_to_key[:n]
    assert len(set(first_rows) & set(by_count)) < n * 0.95  # the index is not frequency order

    questions = read_questions(bundled_path("analogies"))
    ours = score_analogies(kv, rank_order(kv, counts), questions, n)
    index_order = score_analogies(kv, np.arange(len(kv)), questions, n)
    # gensim's restrict_vocab means "first N rows": our index-order variant reproduces it ...
    _, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=n)
    total = sections[-1]
    assert index_order["covered"] == len(total["correct"]) + len(total["incorrect"])
    # ... and ranking by count covers exactly the questions within the top-N words.
    top = {w.lower() for w in by_count}
    expected = sum(all(w.lower() in top for w in q) for q in questions)
    assert ours["covered"] == expected
    assert ours["covered"] != index_order["covered"]
    # What add-corpus recorded is the count-ranked figure.
    meta = Store(load_config(config).store_path).read_meta("v0003")
    recorded = meta.scores["analogies"]
    assert recorded["restrict_vocab"] == 30000
    assert recorded["covered"] == score_analogies(
        kv, rank_order(kv, counts), questions, 30000)["covered"]


def test_user_evaluation_files(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# mine\ngovernment\tminister\t8\nfire\tbushfires\t9\npolice\tpeople\t3\n"
                     "the\tof\t1\nnotaword\tgovernment\t5\n")
    analogies = tmp_path / "an.txt"
    analogies.write_text(": mine\nsydney australia melbourne australia\nfoo bar baz qux\n")
    extra = f"""
    evaluation:
      sets: [wordsim353]
      word_pairs: [{{name: mypairs, path: {pairs.name}}}]
      analogy_files: [{{name: myanalogies, path: {analogies}}}]
    """
    config = make_config(corpora["a"], extra=extra)
    done = cli("add-corpus", config)
    assert done.code == 0, done.err
    scores = cli("history", config, "--json").json()[0]["scores"]
    assert set(scores) == {"wordsim353", "mypairs", "myanalogies"}
    vocab = set(model_of(config, "v0001").index_to_key)
    in_vocab = sum(a in vocab and b in vocab for a, b, _ in read_pairs(pairs))
    assert 3 <= in_vocab < 5  # 'notaword' is not, most others are
    assert (scores["mypairs"]["covered"], scores["mypairs"]["total"]) == (in_vocab, 5)
    assert scores["myanalogies"]["total"] == 2 and scores["myanalogies"]["covered"] <= 1

    # A bad line is refused before anything is trained, naming file and line.
    pairs.write_text("government\tminister\t8\ngovernment minister 8\n")
    config2 = make_config(corpora["b"], extra=extra, store="store2")
    bad = cli("add-corpus", config2)
    assert bad.code == 65
    assert "pairs.tsv, line 2" in bad.err
    assert committed(tmp_path / "store2") == []
    analogies.unlink()
    pairs.write_text("a\tb\t1\n")
    missing = cli("add-corpus", config2)
    assert missing.code == 66 and "an.txt" in missing.err


def test_gates_must_name_metrics(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], extra="gates:\n  wordsim: {min: 0.5}\n")
    bad = cli("validate", config)
    assert bad.code == 78
    assert "gates.wordsim: no such metric" in bad.err
    config = make_config(corpora["a"], extra="gates:\n  analogies: {}\n")
    assert "give 'min' and/or 'max_drop'" in cli("validate", config).err
    config = make_config(corpora["a"], extra="evaluation: {enabled: false}\n"
                         "gates:\n  analogies: {max_drop: 0.1}\n")
    assert "evaluation.enabled" in cli("validate", config).err


def test_evaluation_can_be_switched_off(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]], extra="evaluation: {enabled: false}\n")
    assert cli("add-corpus", config).code == 0
    rows = cli("history", config, "--json").json()
    assert [r["scores"] for r in rows] == [{}, {}]
    assert rows[1]["drift"]["parent"]["against"] == "v0001"  # drift is still recorded


def test_compare_versions_and_files(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = lineage(make_config, corpora, cli,
                     extra="drift: {anchors: 500, bands: [100, 1000], sample: 300, top_k: 5}")
    same = cli("compare", config, "v0003", "3", "--json")
    assert same.code == 0, same.err
    info = same.json()
    assert info["vocab"]["added"] == info["vocab"]["removed"] == 0
    assert info["cosine"]["median"] == pytest.approx(1.0, abs=1e-4)
    assert info["overlap"]["mean"] == 1.0 and info["drift"] == pytest.approx(0.0, abs=1e-4)

    out = cli("compare", config, "v0001", "v0003", "--json")
    assert out.code == 0, out.err
    info = out.json()
    a, b = model_of(config, "v0001"), model_of(config, "v0003")
    assert info["vocab"]["a"] == len(a) and info["vocab"]["b"] == len(b)
    shared = set(a.index_to_key) & set(b.index_to_key)
    assert info["vocab"]["shared"] == len(shared)
    assert info["vocab"]["added"] == len(set(b.index_to_key) - shared)
    assert set(info["vocab"]["added_top"]) <= set(b.index_to_key) - shared
    assert info["anchors"]["count"] == 500
    assert [band["band"] for band in info["bands"]] == ["1-100", "101-1000", "1001+"]
    assert sum(band["words"] for band in info["bands"]) == len(shared)
    assert sum(band["sampled"] for band in info["bands"]) == info["overlap"]["words"] == 300
    assert 0 <= info["overlap"]["mean"] < 1 and info["drift"] > 0
    assert set(info["scores"]) == {"wordsim353", "simlex999", "analogies"}
    moved = info["moved"]
    assert len(moved) == 10
    cosines = [m["cosine"] for m in moved]
    assert cosines == sorted(cosines) and cosines[-1] <= info["cosine"]["median"]
    for m in moved:
        assert set(m["gained"]) == set(m["neighbours_b"]) - set(m["neighbours_a"])
        assert set(m["lost"]) == set(m["neighbours_a"]) - set(m["neighbours_b"])
        assert len(m["neighbours_a"]) == 5
    text = cli("compare", config, "v0001", "v0003")
    assert "moved most" in text.out and "band (rank)" in text.out

    # A word list as the anchor set: only its words shared by both sides are used.
    from incremental_w2v.config.quality import DriftSettings
    from incremental_w2v.quality.drift import compare_vectors

    listed = [*list(a.index_to_key)[:40], "notaword", "alsonot"]
    (tmp_path / "anchors.txt").write_text("\n".join(listed) + "\n")
    by_list = compare_vectors(a, counts_of(a), b, counts_of(b),
                              DriftSettings(anchors="anchors.txt", sample=100), tmp_path)
    assert by_list["anchors"]["count"] == 40
    assert by_list["anchors"]["source"] == "40 of 42 words of anchors.txt"
    assert by_list["cosine"]["median"] != info["cosine"]["median"]

    # A file with the same vectors turned by a random rotation: Procrustes undoes it.
    rot, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(16, 16)))
    turned = KeyedVectors(16)
    turned.add_vectors(list(b.index_to_key), (b.vectors @ rot).astype(np.float32))
    turned.save(str(tmp_path / "turned.kv"))
    raw = np.sum(b.vectors[:50] * turned.vectors[:50], axis=1) / (
        np.linalg.norm(b.vectors[:50], axis=1) * np.linalg.norm(turned.vectors[:50], axis=1))
    assert np.median(raw) < 0.9  # the rotation really moves every vector
    rotated = cli("compare", config, "v0003", tmp_path / "turned.kv", "--json")
    assert rotated.code == 0, rotated.err
    info = rotated.json()
    assert info["cosine"]["median"] == pytest.approx(1.0, abs=1e-3)
    # float32 rounding of the rotated vectors can swap two neighbours whose cosines tie.
    assert info["overlap"]["mean"] == pytest.approx(1.0, abs=5e-3)
    assert cli("compare", config, "v0003", tmp_path / "nope.kv").code == 66
    # CONFIG@VERSION names a version of any store.
    other = cli("compare", config, f"{config}@v0001", "v0003", "--json")
    assert other.code == 0, other.err
    assert other.json()["vocab"]["a"] == len(a)


def test_watch_words_neighbours_in_every_version(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = lineage(make_config, corpora, cli, extra="watch: [government, fire, notaword]")
    rows = cli("history", config, "--json").json()
    lists = []
    for row in rows:
        watch = row["watch"]["neighbours"]
        assert watch["notaword"] is None
        assert len(watch["government"]) == 10
        names = [n for n, _ in watch["government"]]
        assert "government" not in names
        sims = [s for _, s in watch["government"]]
        assert sims == sorted(sims, reverse=True)
        lists.append(names)
    kv = model_of(config, "v0003")
    expected = [w for w, _ in kv.most_similar("government", topn=10)]
    assert lists[-1] == expected
    assert lists[0] != lists[-1]
    meta = json.loads((config.parent / "store/versions/v0002/meta.json").read_text())
    assert meta["watch"]["neighbours"]["fire"][0][0]


def test_documented_quality_config_is_valid(tmp_path: Path) -> None:
    from incremental_w2v.config.schema import parse_config

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "quality.md").read_text()
    block = doc.split("## Config reference")[1].split("```yaml")[1].split("```")[0]
    config = parse_config("store: s\nbase: {corpus: a.txt}\n" + block, tmp_path / "c.yaml")
    assert config.watch == ["python", "rust", "kernel"]
    assert config.evaluation.metric_names() == [
        "wordsim353", "simlex999", "analogies", "support_pairs", "support_analogies"]
    reference = (root / "docs" / "config.md").read_text()
    block = reference.split("## Every key, with its default")[1].split("```yaml")[1].split("```")[0]
    full = parse_config(block, tmp_path / "c.yaml")
    assert full.evaluation.enabled and full.publish and full.retention.keep is None
