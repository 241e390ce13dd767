"""align and merge on real small models: recovery of a known rotation, same corpus vs
different corpora, the lstsq path against gensim's TranslationMatrix, pair files,
outputs with their metadata, and bad inputs with their exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors, TranslationMatrix, Word2Vec
from gensim.test.utils import datapath
from scipy.stats import ortho_group

from helpers import Result
from incremental_w2v.align.anchors import ranks
from incremental_w2v.align.diagnose import mutual_neighbours
from incremental_w2v.align.fit import fit_alignment
from incremental_w2v.align.mapping import AlignOptions
from incremental_w2v.align.output import merged_vectors
from incremental_w2v.align.verdict import POOR_P1
from incremental_w2v.errors import DataError
from incremental_w2v.vectors.io import LoadedVectors
from incremental_w2v.vectors.procrustes import unit_rows
from incremental_w2v.vectors.ranking import counts_of

EN = "EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"
IT = "IT.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt"
PAIRS = "OPUS_en_it_europarl_train_one2ten.txt"


def sentences(name: str, lines: int | None = None) -> list[list[str]]:
    with open(datapath(name), encoding="utf-8") as handle:
        out = [line.lower().split() for line in handle if line.strip()]
    return out[:lines] if lines else out


def train(corpus: list[list[str]], seed: int) -> Word2Vec:
    # Enough epochs that the small model's neighbourhoods mean something (fewer leave
    # every vector near one common direction, and any alignment looks poor).
    return Word2Vec(corpus, vector_size=32, window=5, min_count=5, negative=5, epochs=30,
                    workers=2, seed=seed)


def loaded(model: Word2Vec, ref: str) -> LoadedVectors:
    return LoadedVectors(kv=model.wv, counts=counts_of(model.wv), kind="model", ref=ref)


@pytest.fixture(scope="module")
def lee1() -> Word2Vec:
    return train(sentences("lee_background.cor"), seed=1)


@pytest.fixture(scope="module")
def lee2() -> Word2Vec:
    return train(sentences("lee_background.cor"), seed=2)


@pytest.fixture(scope="module")
def wiki() -> Word2Vec:
    # Stemmed Wikipedia text: another domain and another tokenisation, about Lee's size.
    return train(sentences("head500.noblanks.cor", lines=50), seed=1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, lee1: Word2Vec, lee2: Word2Vec,
          wiki: Word2Vec) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = {"lee1": folder / "lee1.model", "lee2": folder / "lee2.model",
             "wiki": folder / "wiki.model", "lee2_txt": folder / "lee2.txt"}
    lee1.save(str(paths["lee1"]))
    lee2.save(str(paths["lee2"]))
    wiki.save(str(paths["wiki"]))
    lee2.wv.save_word2vec_format(str(paths["lee2_txt"]))
    return paths


def rotated_copy(kv: KeyedVectors, seed: int, noise: float) -> tuple[KeyedVectors, np.ndarray]:
    dims = kv.vector_size
    q = ortho_group.rvs(dims, random_state=seed)
    rng = np.random.default_rng(seed)
    scale = float(np.abs(kv.vectors).mean())
    vectors = kv.vectors @ q + noise * scale * rng.standard_normal(kv.vectors.shape)
    out = KeyedVectors(dims, count=0)
    out.add_vectors(list(kv.index_to_key), vectors.astype(np.float32))
    return out, q


# --- the method ----------------------------------------------------------------------------


def test_procrustes_recovers_a_random_rotation(lee1: Word2Vec) -> None:
    rotated, q = rotated_copy(lee1.wv, seed=11, noise=0.05)
    source = LoadedVectors(rotated, None, "keyedvectors", "rotated")
    alignment = fit_alignment(source, loaded(lee1, "lee1"), AlignOptions(seed=3))
    held = alignment.diagnostics["held_out"]
    assert held["queries"] >= 150
    assert held["p_at_1_cosine"] >= 0.99
    assert held["p_at_1_csls"] >= 0.99
    # The map found is the inverse rotation, and an isometry keeps every cosine.
    assert np.abs(alignment.mapping.w - q.T).max() < 0.05
    assert alignment.diagnostics["distortion"]["mean_abs_cosine_change"] < 1e-4
    assert alignment.diagnostics["verdict"] == "good"


def test_held_out_anchors_are_never_fitted_and_the_split_is_seeded(
    lee1: Word2Vec, lee2: Word2Vec
) -> None:
    alignment = fit_alignment(loaded(lee2, "b"), loaded(lee1, "a"), AlignOptions(seed=5))
    first = alignment.anchors
    again = fit_alignment(loaded(lee2, "b"), loaded(lee1, "a"), AlignOptions(seed=5)).anchors
    other = fit_alignment(loaded(lee2, "b"), loaded(lee1, "a"), AlignOptions(seed=6)).anchors
    assert not set(first.fit_s.tolist()) & set(first.held_s.tolist())
    assert np.array_equal(first.held_s, again.held_s)
    assert not np.array_equal(first.held_s, other.held_s)
    assert len(first.held_s) == round(0.1 * (len(first.held_s) + len(first.fit_s)))
    # Refinement's dictionary leaves the held-out words out on both sides too.
    s_rank, t_rank = ranks(loaded(lee2, "b")), ranks(loaded(lee1, "a"))
    pairs_s, pairs_t = mutual_neighbours(alignment.mapping, lee2.wv, lee1.wv, s_rank, t_rank,
                                          alignment.anchors, alignment.options)
    held_t = set().union(*alignment.anchors.held_gold)
    assert len(pairs_s) > 500
    assert not set(pairs_s.tolist()) & set(alignment.anchors.held_s.tolist())
    assert not set(pairs_t.tolist()) & held_t


def test_same_corpus_aligns_well_and_different_corpora_are_flagged(
    lee1: Word2Vec, lee2: Word2Vec, wiki: Word2Vec
) -> None:
    same = fit_alignment(loaded(lee2, "lee2"), loaded(lee1, "lee1")).diagnostics
    other = fit_alignment(loaded(wiki, "wiki"), loaded(lee1, "lee1")).diagnostics
    assert same["held_out"]["p_at_1_csls"] >= 0.9
    assert same["verdict"] == "good"
    assert not [w for w in same["warnings"] if "poor" in w]
    assert other["held_out"]["p_at_1_csls"] < POOR_P1
    assert other["held_out"]["p_at_1_csls"] < same["held_out"]["p_at_1_csls"] - 0.5
    assert other["held_out"]["mean_cosine"] < same["held_out"]["mean_cosine"]
    assert other["verdict"] == "poor"
    assert any("joined corpora" in w for w in other["warnings"])
    # Without any map, the models agree on the neighbours of a word only in the first case.
    assert same["held_out"]["neighbour_overlap"] > 0.3 > other["held_out"]["neighbour_overlap"]
    assert same["held_out"]["cosine_margin"] > other["held_out"]["cosine_margin"] + 0.2


def test_refinement_and_centring(lee1: Word2Vec, lee2: Word2Vec) -> None:
    d = fit_alignment(loaded(lee2, "b"), loaded(lee1, "a"), AlignOptions(refine=2)).diagnostics
    assert [step["step"] for step in d["refinement"]] == [1, 2]
    assert all(step["identical_words"] > 0.95 for step in d["refinement"])
    assert d["held_out"]["p_at_1_csls"] >= 0.9
    centred = fit_alignment(loaded(lee2, "b"), loaded(lee1, "a"), AlignOptions(center=True))
    assert centred.diagnostics["held_out"]["p_at_1_csls"] >= 0.9
    # The map is affine then (the means are moved), so cosines change a little.
    assert 0 < centred.diagnostics["distortion"]["mean_abs_cosine_change"] < 0.25
    mapped = centred.mapping.vectors(lee2.wv.vectors[:50])
    cos = np.sum(unit_rows(mapped) * unit_rows(lee1.wv[lee2.wv.index_to_key[:50]]), axis=1)
    assert cos.mean() > 0.8


def test_lstsq_is_gensims_translation_matrix_and_distorts_cosines(
    lee1: Word2Vec, lee2: Word2Vec
) -> None:
    source, target = loaded(lee2, "b"), loaded(lee1, "a")
    lstsq = fit_alignment(source, target, AlignOptions(method="lstsq"))
    pairs = [(lee2.wv.index_to_key[s], lee1.wv.index_to_key[t])
             for s, t in zip(lstsq.anchors.fit_s, lstsq.anchors.fit_t, strict=True)]
    gensim_tm = TranslationMatrix(lee2.wv, lee1.wv, word_pairs=pairs)
    assert np.allclose(lstsq.mapping.w, gensim_tm.translation_matrix, atol=1e-4)
    procrustes = fit_alignment(source, target, AlignOptions(method="procrustes"))
    # Least squares fits the anchors at least as closely, but is no isometry.
    assert lstsq.diagnostics["fit_mean_cosine"] >= procrustes.diagnostics["fit_mean_cosine"]
    assert lstsq.diagnostics["distortion"]["mean_abs_cosine_change"] > 0.01
    assert procrustes.diagnostics["distortion"]["mean_abs_cosine_change"] < 1e-4
    assert any("not an isometry" in w for w in lstsq.diagnostics["warnings"])
    w = lstsq.mapping.w
    assert np.abs(w.T @ w - np.eye(w.shape[0])).max() > 0.01


def test_pair_file_between_languages_matches_gensim(tmp_path: Path) -> None:
    en = KeyedVectors.load_word2vec_format(datapath(EN))
    it = KeyedVectors.load_word2vec_format(datapath(IT))
    options = AlignOptions(method="lstsq", anchors_file=Path(datapath(PAIRS)), holdout=0.0)
    alignment = fit_alignment(LoadedVectors(en, None, "word2vec-text", "en"),
                              LoadedVectors(it, None, "word2vec-text", "it"), options)
    pairs = [tuple(line.split()) for line in Path(datapath(PAIRS)).read_text().splitlines()]
    gensim_tm = TranslationMatrix(en, it, word_pairs=pairs)
    assert np.allclose(alignment.mapping.w, gensim_tm.translation_matrix, atol=1e-4)
    d = alignment.diagnostics
    assert d["anchors"]["pairs_in_file"] == 20 and d["anchors"]["fit"] == 20
    assert d["verdict"] == "unknown"  # nothing held out: the figures say so
    assert any("under-determined" in w for w in d["warnings"])
    assert any("cannot be judged" in w for w in d["warnings"])


# --- merge ----------------------------------------------------------------------------------


def test_merge_fills_missing_words_close_to_their_true_vectors(
    lee1: Word2Vec, lee2: Word2Vec
) -> None:
    # TARGET lacks 150 of its words; SOURCE (another seed) has them. Mapped in, they
    # should land near where TARGET's own training had put them.
    full = lee1.wv
    dropped = set(full.index_to_key[200:350])
    keep = [w for w in full.index_to_key if w not in dropped]
    target_kv = KeyedVectors(full.vector_size, count=0)
    target_kv.add_vectors(keep, np.asarray([full[w] for w in keep]))
    target_counts = {w: int(full.get_vecattr(w, "count")) for w in keep}
    target = LoadedVectors(target_kv, target_counts, "keyedvectors", "lee1-partial")
    source = loaded(lee2, "lee2")
    alignment = fit_alignment(source, target)
    merged, info = merged_vectors(alignment, source, target, "target")
    assert len(merged) == len(full)
    assert info["from_source"] == len(dropped) and info["shared"] == len(keep)
    shared_word = keep[0]
    assert np.array_equal(merged[shared_word], target_kv[shared_word])
    words = sorted(dropped)
    cos = np.sum(unit_rows(np.asarray([merged[w] for w in words])) *
                 unit_rows(np.asarray([full[w] for w in words])), axis=1)
    assert cos.mean() > 0.8
    counts = [merged.get_vecattr(w, "count") for w in merged.index_to_key]
    assert counts == sorted(counts, reverse=True)  # restrict_vocab=N means the N most frequent
    assert merged.get_vecattr(shared_word, "count") == (
        target_counts[shared_word] + lee2.wv.get_vecattr(shared_word, "count"))
    assert merged.get_vecattr(words[0], "count") == lee2.wv.get_vecattr(words[0], "count")
    # Norms of mapped vectors follow TARGET's scale, not SOURCE's.
    ratio = np.median(np.linalg.norm([merged[w] for w in words], axis=1)) / np.median(
        np.linalg.norm([full[w] for w in words], axis=1))
    assert 0.7 < ratio < 1.4

    averaged, info = merged_vectors(alignment, source, target, "average")
    assert info["weighting"] == "counts"
    c_t, c_s = target_counts[shared_word], lee2.wv.get_vecattr(shared_word, "count")
    mapped = alignment.mapping.vectors(lee2.wv[shared_word][None, :])[0]
    expected = (c_t * target_kv[shared_word] + c_s * mapped) / (c_t + c_s)
    assert np.allclose(averaged[shared_word], expected, atol=1e-5)


# --- the commands ---------------------------------------------------------------------------


def test_align_cli_writes_mapped_vectors_with_diagnostics(
    saved: dict[str, Path], tmp_path: Path, cli: Callable[..., Result], lee1: Word2Vec
) -> None:
    out = tmp_path / "mapped.kv"
    result = cli("align", saved["lee2"], saved["lee1"], "--output", out, "--json")
    assert result.code == 0, result.err
    report = result.json()
    d = report["diagnostics"]
    for key in ("p_at_1_cosine", "p_at_10_cosine", "p_at_1_csls", "p_at_10_csls", "mean_cosine"):
        assert 0.0 <= d["held_out"][key] <= 1.0
    assert d["anchors"]["fit"] > 1000 and d["anchors"]["held_out"] > 100
    meta = json.loads((tmp_path / "mapped.kv.meta.json").read_text())
    assert meta["diagnostics"] == d
    assert meta["command"] == "align" and meta["source"]["kind"] == "model"
    kv = KeyedVectors.load(str(out))
    assert len(kv) == report["source_vocab"]
    frequent = lee1.wv.index_to_key[:100]
    cos = np.sum(unit_rows(np.asarray([kv[w] for w in frequent])) *
                 unit_rows(np.asarray([lee1.wv[w] for w in frequent])), axis=1)
    assert cos.mean() > 0.8  # now comparable with TARGET's vectors

    text = cli("align", saved["lee2_txt"], saved["lee1"], "--output", tmp_path / "m.txt",
               "--format", "word2vec-text", "--method", "lstsq")
    assert text.code == 0, text.err
    assert "held-out P@1" in text.out and "verdict" in text.out
    assert len(KeyedVectors.load_word2vec_format(str(tmp_path / "m.txt"))) == len(kv)


def test_merge_cli_and_different_corpora_warning(
    saved: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    out = tmp_path / "merged.bin"
    result = cli("merge", saved["wiki"], saved["lee1"], "--output", out,
                 "--format", "word2vec-binary", "--prefer", "average", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["diagnostics"]["verdict"] == "poor"
    assert "joined corpora" in result.err  # the warning is logged, not only in the JSON
    merged = KeyedVectors.load_word2vec_format(str(out), binary=True)
    assert len(merged) == report["vocab_size"] == (
        report["target_vocab"] + report["merge"]["from_source"])
    meta = json.loads((tmp_path / "merged.bin.meta.json").read_text())
    assert meta["merge"]["prefer"] == "average"


def test_store_versions_can_be_aligned(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
    tmp_path: Path,
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0
    result = cli("merge", f"{config}@v0001", f"{config}@v0002", "--output",
                 tmp_path / "m.kv", "--json", "--holdout", "0.2", "--anchor-min-count", "3")
    assert result.code == 0, result.err
    meta = json.loads((tmp_path / "m.kv.meta.json").read_text())
    assert meta["source"]["kind"] == "store-version"
    assert meta["source"]["ref"].endswith("@v0001")
    assert meta["diagnostics"]["anchors"]["ranked_by"] == "counts"


# --- bad inputs -----------------------------------------------------------------------------


@pytest.fixture
def en_it(tmp_path: Path) -> dict[str, Path]:
    return {"en": Path(datapath(EN)), "it": Path(datapath(IT))}


def test_dimension_mismatch_is_bad_data(
    saved: dict[str, Path], en_it: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    result = cli("align", en_it["en"], saved["lee1"], "--output", tmp_path / "x.kv")
    assert result.code == 65
    assert "300 dimensions" in result.err and "32" in result.err and "hint:" in result.err
    assert not (tmp_path / "x.kv").exists()


def test_no_shared_words_is_bad_data(
    en_it: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    # The two files share 'banana' and 'mango'; without them nothing is shared.
    it = KeyedVectors.load_word2vec_format(str(en_it["it"]))
    words = [w for w in it.index_to_key if w not in {"banana", "mango"}]
    only_italian = KeyedVectors(it.vector_size, count=0)
    only_italian.add_vectors(words, np.asarray([it[w] for w in words]))
    only_italian.save_word2vec_format(str(tmp_path / "it.txt"))
    result = cli("merge", en_it["en"], tmp_path / "it.txt", "--output", tmp_path / "x.kv")
    assert result.code == 65
    assert "no word in common" in result.err and "--anchors" in result.err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"one uno\ntwo due\nthree tre extra\n", ":3: expected 'SOURCE_WORD TARGET_WORD'"),
        (b"# comment\none uno\ntw\xe9 due\n", ":3: not valid UTF-8"),
        (b"\n# only a comment\n", "contains no pairs"),
        (b"uno one\ndue two\n", "only 0 of its 2 pairs"),
    ],
)
def test_bad_anchor_file_names_file_and_line(
    en_it: dict[str, Path], tmp_path: Path, cli: Callable[..., Result], content: bytes,
    expected: str,
) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(content)
    result = cli("align", en_it["en"], en_it["it"], "--output", tmp_path / "x.kv",
                 "--anchors", pairs)
    assert result.code == 65, result.err
    assert str(pairs) in result.err and expected in result.err


def test_missing_inputs_and_bad_options(
    saved: dict[str, Path], en_it: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    out = tmp_path / "x.kv"
    assert cli("align", en_it["en"], en_it["it"], "--output", out,
               "--anchors", tmp_path / "none.txt").code == 66
    assert cli("align", tmp_path / "none.model", saved["lee1"], "--output", out).code == 66
    assert cli("align", saved["lee2"], saved["lee1"],
               "--output", tmp_path / "no" / "x.kv").code == 73
    with pytest.raises(SystemExit) as info:
        cli("align", saved["lee2"], saved["lee1"], "--output", out, "--anchor-band", "x")
    assert info.value.code == 64
    assert cli("align", saved["lee2"], saved["lee1"], "--output", out,
               "--holdout", "1.5").code == 64
    counts = cli("align", saved["lee2_txt"], saved["lee1"], "--output", out,
                 "--anchor-min-count", "5")
    assert counts.code == 64 and "--anchor-band" in counts.err
    band = cli("align", saved["lee2"], saved["lee1"], "--output", out,
               "--anchor-band", "50000:60000")
    assert band.code == 65 and "anchor band 50000:60000" in band.err
    both = cli("align", en_it["en"], en_it["it"], "--output", out, "--anchors",
               datapath(PAIRS), "--anchor-band", "0:100")
    assert both.code == 64 and "do not apply" in both.err
    assert not out.exists()


def test_library_error_for_too_few_pairs_is_data_error(tmp_path: Path) -> None:
    en = KeyedVectors.load_word2vec_format(datapath(EN))
    it = KeyedVectors.load_word2vec_format(datapath(IT))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("one uno\nnotaword due\n", encoding="utf-8")
    with pytest.raises(DataError, match="only 1 of its 2 pairs"):
        fit_alignment(LoadedVectors(en, None, "word2vec-text", "en"),
                      LoadedVectors(it, None, "word2vec-text", "it"),
                      AlignOptions(anchors_file=pairs))
