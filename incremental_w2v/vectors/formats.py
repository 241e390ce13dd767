"""The formats word vectors are written in, and what each is for (the CLI's help shows it).

Kept apart from ``io`` (which imports gensim) so that the command line can
list them without loading gensim.
"""

from __future__ import annotations

from typing import get_args

from incremental_w2v.config.schema import VectorFormat

VECTOR_FORMATS: dict[str, str] = {
    "word2vec-text": "word2vec text (.txt, .vec): a header line, then one word and its numbers "
    "per line; read by almost every tool",
    "word2vec-binary": "word2vec binary (.bin), as the original word2vec C tool writes it",
    "keyedvectors": "gensim KeyedVectors (vectors in a memory-mappable .npy side file); "
    "load with gensim's KeyedVectors.load",
}
assert set(VECTOR_FORMATS) == set(get_args(VectorFormat))

# ``export --format``: the vector formats, or the full model (for further training).
EXPORT_FORMATS: dict[str, str] = {
    **VECTOR_FORMATS,
    "model": "the full gensim model (Word2Vec/FastText.load), to train further elsewhere",
}
