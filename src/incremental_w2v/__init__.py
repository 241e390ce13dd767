"""incw2v: keep gensim Word2Vec models current as new corpora arrive."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
