"""The vectorised negative-sampling table is gensim's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import FastText, Word2Vec
from gensim.models.word2vec import LineSentence
from gensim.test.utils import common_texts, datapath

from incremental_w2v.vectors.cum_table import cum_table, vectorised_cum_table


def gensims_table(model: Word2Vec) -> np.ndarray:
    Word2Vec.__dict__["make_cum_table"](model)
    return np.array(model.cum_table, copy=True)


@pytest.fixture(scope="module")
def lee_model() -> Word2Vec:
    return Word2Vec(LineSentence(datapath("lee_background.cor")), vector_size=8, min_count=1,
                    epochs=1, workers=1, seed=1)


@pytest.mark.parametrize("exponent", [0.75, 0.5, 1.0, 0.0, -0.5, 0.123456789])
def test_same_table_as_gensim_on_a_real_vocabulary(lee_model: Word2Vec, exponent: float
                                                   ) -> None:
    lee_model.ns_exponent = exponent
    expected = gensims_table(lee_model)
    counts = lee_model.wv.expandos["count"]
    assert len(expected) > 5000
    np.testing.assert_array_equal(cum_table(counts, exponent), expected)


def test_same_table_on_a_large_zipf_vocabulary() -> None:
    rng = np.random.default_rng(3)
    counts = np.maximum(1, (1e9 / np.arange(1, 200_001) ** 1.07).astype(np.int64))
    counts = counts[rng.permutation(len(counts))]  # no order to lean on
    model = Word2Vec(vector_size=4, min_count=1, workers=1)
    model.build_vocab_from_freq({f"w{i}": int(c) for i, c in enumerate(counts)})
    expected = gensims_table(model)
    np.testing.assert_array_equal(cum_table(model.wv.expandos["count"], 0.75), expected)


def test_zero_counts_follow_numpy_like_gensim() -> None:
    model = Word2Vec(vector_size=4, min_count=1, workers=1)
    model.build_vocab_from_freq({"a": 5, "b": 3, "c": 1})
    model.wv.expandos["count"][2] = 0
    np.testing.assert_array_equal(cum_table(model.wv.expandos["count"], 0.75),
                                  gensims_table(model))


def test_gensim_uses_it_inside_the_context_only(lee_model: Word2Vec, tmp_path) -> None:
    original = Word2Vec.make_cum_table
    with vectorised_cum_table(), vectorised_cum_table():  # re-entrant
        assert Word2Vec.make_cum_table is not original
        model = Word2Vec(common_texts, vector_size=4, min_count=1, epochs=1, workers=1)
        inside = np.array(model.cum_table, copy=True)
        lee_model.save(str(tmp_path / "m"))
        loaded = Word2Vec.load(str(tmp_path / "m"))
        fasttext = FastText(common_texts, vector_size=4, min_count=1, epochs=1, workers=1)
    assert Word2Vec.make_cum_table is original
    np.testing.assert_array_equal(inside, gensims_table(model))
    np.testing.assert_array_equal(loaded.cum_table, gensims_table(loaded))
    np.testing.assert_array_equal(fasttext.cum_table, gensims_table(fasttext))
