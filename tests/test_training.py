"""Updates close gensim's traps: the lineage's vocabulary, counts and downsampling
equal one model built on the concatenation; unsafe models are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gensim.models import Doc2Vec, Word2Vec
from gensim.models.doc2vec import TaggedDocument
from gensim.utils import simple_preprocess

from helpers import Result, committed, lee_lines, version_model


def tokens_of(path: Path) -> list[list[str]]:
    return [t for t in (simple_preprocess(line) for line in path.open()) if t]


def test_lineage_vocabulary_equals_full_build(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    lineage = version_model(config.parent / "store", "v0003")

    sentences = [s for name in "abc" for s in tokens_of(corpora[name])]
    full = Word2Vec(vector_size=16, min_count=3, sample=1e-3, negative=3, workers=1)
    full.build_vocab(sentences)

    assert set(lineage.wv.index_to_key) == set(full.wv.index_to_key)
    for word in full.wv.index_to_key:
        assert lineage.wv.get_vecattr(word, "count") == full.wv.get_vecattr(word, "count"), word
        assert lineage.wv.get_vecattr(word, "sample_int") == full.wv.get_vecattr(
            word, "sample_int"), word
    # The negative-sampling table is built from the same counts.
    order = [full.wv.key_to_index[w] for w in lineage.wv.index_to_key]
    assert np.array_equal(
        np.array([full.wv.get_vecattr(full.wv.index_to_key[i], "count") for i in order]),
        lineage.wv.expandos["count"],
    )
    assert lineage.cum_table[-1] == lineage.cum_table.max()
    assert len(lineage.cum_table) == len(lineage.wv)


def test_plain_gensim_update_loses_words_the_ledger_keeps(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    """The trap itself, measured: gensim's update applies min_count per batch."""
    parts = [tokens_of(corpora[n]) for n in "abc"]
    naive = Word2Vec(vector_size=16, min_count=3, negative=3, workers=1, epochs=1)
    naive.build_vocab(parts[0])
    for part in parts[1:]:
        naive.build_vocab(part, update=True)
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    ours = version_model(config.parent / "store", "v0003")
    assert len(ours.wv) > len(naive.wv)
    assert set(naive.wv.index_to_key) <= set(ours.wv.index_to_key)


def test_word_three_times_per_corpus_enters_after_the_second(
    tmp_path: Path, make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    lines = lee_lines()
    third = len(lines) // 3
    paths = []
    for i in range(3):
        chunk = lines[i * third : (i + 1) * third]
        chunk = [*chunk[:10], *["the zyzzyva sings\n"] * 3, *chunk[10:]]
        path = tmp_path / f"part{i}.txt"
        path.write_text("".join(chunk))
        paths.append(path)
    config = make_config(paths[0], paths[1:])
    config.write_text(config.read_text().replace("min_count: 3", "min_count: 5"))
    assert cli("add-corpus", config).code == 0
    versions = config.parent / "store" / "versions"
    v1 = version_model(versions.parent, "v0001")
    v2 = version_model(versions.parent, "v0002")
    v3 = version_model(versions.parent, "v0003")
    assert "zyzzyva" not in v1.wv
    assert v2.wv.get_vecattr("zyzzyva", "count") == 6
    assert v3.wv.get_vecattr("zyzzyva", "count") == 9
    history = cli("history", config, "--json").json()
    entered = set(v2.wv.index_to_key) - set(v1.wv.index_to_key)
    assert "zyzzyva" in entered
    assert history[1]["words_added"] == len(entered)
    assert set(history[1]["top_new_words"]) <= entered


def test_update_restores_alpha_and_epochs(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]])
    config.write_text(config.read_text().replace(
        "update:\n  epochs: 2", "update:\n  epochs: 3\n  alpha: 0.01\n  min_alpha: 0.001"))
    assert cli("add-corpus", config).code == 0
    model = version_model(config.parent / "store", "v0002")
    assert (model.alpha, model.min_alpha, model.epochs) == (0.025, 0.0001, 2)
    row = cli("history", config, "--json").json()[1]
    assert row["update_params"]["epochs"] == 3 and row["update_params"]["alpha"] == 0.01


def write_base_config(tmp_path: Path, model_path: Path, queue: Path, size: int = 16) -> Path:
    config = tmp_path / "import.yaml"
    config.write_text(
        f"store: store-import\nmodel: {{vector_size: {size}, negative: 3, epochs: 1, "
        f"min_count: 3, workers: 1}}\nbase:\n  model: {model_path}\nqueue:\n  - uri: {queue}\n"
    )
    return config


def test_existing_full_model_as_base(
    tmp_path: Path, corpora: dict[str, Path], cli: Callable[..., Result]
) -> None:
    base = Word2Vec(tokens_of(corpora["a"]), vector_size=16, min_count=3, negative=3,
                    workers=1, epochs=1, seed=3)
    base.save(str(tmp_path / "mine.model"))
    config = write_base_config(tmp_path, tmp_path / "mine.model", corpora["b"])
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    out = result.json()
    assert [a["kind"] for a in out["applied"]] == ["import", "update"]
    updated = version_model(tmp_path / "store-import", "v0002")
    assert len(updated.wv) > len(base.wv)
    word = base.wv.index_to_key[0]
    assert updated.wv.get_vecattr(word, "count") > base.wv.get_vecattr(word, "count")
    wrong = write_base_config(tmp_path, tmp_path / "mine.model", corpora["b"], size=32)
    (tmp_path / "store-import").rename(tmp_path / "old-store")
    mismatch = cli("add-corpus", wrong)
    assert mismatch.code == 78
    assert "model.vector_size" in mismatch.err


def test_keyedvectors_hs_and_doc2vec_bases_are_refused(
    tmp_path: Path, corpora: dict[str, Path], cli: Callable[..., Result]
) -> None:
    sentences = tokens_of(corpora["a"])
    model = Word2Vec(sentences, vector_size=16, min_count=3, negative=3, workers=1, epochs=1)
    model.wv.save(str(tmp_path / "vectors.kv"))
    hs = Word2Vec(sentences, vector_size=16, min_count=3, hs=1, negative=0, workers=1, epochs=1)
    hs.save(str(tmp_path / "hs.model"))
    d2v = Doc2Vec([TaggedDocument(s, [i]) for i, s in enumerate(sentences)],
                  vector_size=16, min_count=3, workers=1, epochs=1)
    d2v.save(str(tmp_path / "d2v.model"))
    cases = {
        "vectors.kv": "only word vectors (KeyedVectors)",
        "hs.model": "hierarchical softmax",
        "d2v.model": "Doc2Vec",
    }
    for name, fragment in cases.items():
        config = write_base_config(tmp_path, tmp_path / name, corpora["b"])
        result = cli("add-corpus", config)
        assert result.code == 78, (name, result.err)
        assert fragment in result.err, (name, result.err)
        assert committed(tmp_path / "store-import") == []
    missing = write_base_config(tmp_path, tmp_path / "absent.model", corpora["b"])
    assert cli("add-corpus", missing).code == 66
