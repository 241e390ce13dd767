"""Orthogonal Procrustes between two sets of paired vectors.

Shared by alignment (mapping one model into another's space) and drift
(comparing two versions of one model after removing the arbitrary rotation).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import orthogonal_procrustes

Matrix = NDArray[np.floating]


def unit_rows(matrix: Matrix) -> Matrix:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(matrix / norms, dtype=np.float64)


def orthogonal_map(source: Matrix, target: Matrix, center: bool = False) -> Matrix:
    """The orthogonal W minimising ||normalise(source) @ W - normalise(target)||.

    Rows of ``source`` and ``target`` are paired (the same anchor word).
    Vectors are unit-normalised first (and mean-centred if ``center``), as
    cosine is what users compare; apply W to unit rows of the source space.
    """
    a, b = _prepared(source, target, center)
    w, _ = orthogonal_procrustes(a, b)
    return np.asarray(w, dtype=np.float64)


def least_squares_map(source: Matrix, target: Matrix, center: bool = False) -> Matrix:
    """The unconstrained W minimising ||unit(source) @ W - unit(target)||, as gensim fits it.

    Without ``center`` this is exactly what ``gensim.models.TranslationMatrix.train``
    computes (rows unit-normalised, ``np.linalg.lstsq(m1, m2, rcond=-1)``). W is
    not orthogonal, so cosines between mapped vectors differ from the source's.
    ``center`` prepares the rows as ``orthogonal_map`` does.
    """
    a, b = _prepared(source, target, center)
    w = np.linalg.lstsq(a, b, rcond=-1)[0]
    return np.asarray(w, dtype=np.float64)


def _prepared(source: Matrix, target: Matrix, center: bool) -> tuple[Matrix, Matrix]:
    """Paired rows, unit-normalised (and mean-centred then re-normalised if ``center``)."""
    if source.shape != target.shape:
        raise ValueError(f"paired matrices differ in shape: {source.shape} vs {target.shape}")
    a, b = unit_rows(source), unit_rows(target)
    if center:
        a = unit_rows(a - a.mean(axis=0))
        b = unit_rows(b - b.mean(axis=0))
    return a, b
