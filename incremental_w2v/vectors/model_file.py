"""A full gensim model on disk: how a version's model is saved and loaded.

The store keeps a version's files and checks their hashes; what a model file
is, which gensim class reads it, and how to load it quickly is decided here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from incremental_w2v.vectors.cum_table import vectorised_cum_table
from incremental_w2v.vectors.safe_pickle import check_pickle


def save_model(model: Any, path: Path) -> None:
    """Save ``model`` with every array in its own ``.npy`` side file.

    ``sep_limit=0``: small and large models take the same path through the
    commit protocol (the crash tests on tiny models cover big ones), and
    ``mmap='r'`` reads work for all of them. The path recorded in gensim's
    ``lifecycle_events`` is this local path: no URI, no secret.
    """
    model.save(str(path), sep_limit=0)


def load_model(path: Path, model_type: str | None, mmap: str | None = None) -> Any:
    """The model at ``path``, read as ``model_type`` ('word2vec' or 'fasttext').

    ``mmap='r'`` is for read-only use only: training a read-only mapped model
    crashes gensim.
    """
    from gensim.models import FastText, Word2Vec

    # Defence in depth: whoever can rewrite meta.json can make a hash match.
    check_pickle(path)
    cls = FastText if model_type == "fasttext" else Word2Vec
    with vectorised_cum_table():  # gensim rebuilds the table at every load
        return cls.load(str(path), mmap=mmap)
