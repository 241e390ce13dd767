"""A linear map from SOURCE's space to TARGET's: the options that choose it, and the fit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from incremental_w2v.errors import UsageError
from incremental_w2v.vectors.procrustes import least_squares_map, orthogonal_map, unit_rows

Method = Literal["procrustes", "lstsq"]
Prefer = Literal["target", "average"]
METHODS: tuple[str, ...] = get_args(Method)
PREFERENCES: tuple[str, ...] = get_args(Prefer)
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
DEFAULT_BAND = (0, 10_000)
MIN_HELD_OUT = 50  # fewer held-out anchors than this: the figures are too noisy to judge


@dataclass(frozen=True)
class AlignOptions:
    """How anchors are chosen and the map is fitted; defaults are what the CLI uses."""

    method: Method = "procrustes"
    anchors_file: Path | None = None  # 'source_word target_word' per line
    band: tuple[int, int] | None = None  # frequency ranks of shared anchors; None: DEFAULT_BAND
    min_count: int | None = None  # anchors must occur at least this often in both models
    holdout: float = 0.1  # fraction of anchors never used for fitting (seeded)
    center: bool = False  # mean-centre anchor vectors before fitting
    refine: int = 0  # re-fits on CSLS mutual nearest neighbours (MUSE's refinement)
    seed: int = 1
    csls_k: int = 10
    search_size: int = 20_000  # most frequent target words searched by retrieval
    refine_size: int = 15_000  # most frequent words on each side considered by refinement

    @property
    def anchor_band(self) -> tuple[int, int]:
        return self.band if self.band is not None else DEFAULT_BAND

    def check(self) -> None:
        if self.anchors_file is not None and (self.band is not None or self.min_count is not None):
            raise UsageError(
                "--anchor-band and --anchor-min-count choose among the shared words; "
                "they do not apply to the pairs of --anchors FILE",
                hint="give either --anchors FILE or the band options",
            )
        if self.method not in METHODS:
            raise UsageError(
                f"unknown method {self.method!r}", hint=f"use one of: {', '.join(METHODS)}"
            )
        lo, hi = self.anchor_band
        if lo < 0 or hi <= lo:
            raise UsageError(
                f"anchor band {lo}:{hi} is empty",
                hint="give FROM:TO with 0 <= FROM < TO, e.g. --anchor-band 0:10000",
            )
        if not 0.0 <= self.holdout < 1.0:
            raise UsageError(
                f"--holdout {self.holdout} is outside [0, 1)",
                hint="give the fraction of anchors kept for testing, e.g. 0.1",
            )
        if not 0 <= self.refine <= 100 or self.csls_k < 1 or self.search_size < 1 or (
            self.refine_size < 1
        ):
            raise UsageError("--refine must be in 0..100 (and the search sizes >= 1)")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"--seed {self.seed} is outside 0..{2**32 - 1}")
        if self.min_count is not None and self.min_count < 1:
            raise UsageError("--anchor-min-count must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["anchors_file"] = str(self.anchors_file) if self.anchors_file else None
        out["band"] = list(self.anchor_band)
        return out


@dataclass
class LinearMap:
    """x -> unit(x) [centred] @ w [de-centred], then scaled to TARGET's norms for output."""

    method: str
    w: F64
    center: bool
    mu_s: F64
    mu_t: F64
    r_t: float  # mean length of centred target anchors, to undo the centring
    scale: float  # TARGET/SOURCE ratio of median vector lengths

    def directions(self, vectors: NDArray[np.floating]) -> F32:
        """Unit-length directions in TARGET's space of the SOURCE ``vectors``."""
        x = unit_rows(np.asarray(vectors, dtype=np.float64))
        if self.center:
            x = unit_rows(x - self.mu_s)
        y = x @ self.w
        if self.center:
            y = self.r_t * y + self.mu_t
        return unit_rows(y).astype(np.float32)

    def vectors(self, vectors: NDArray[np.floating]) -> F32:
        """SOURCE ``vectors`` mapped, keeping each one's length relative to TARGET's lengths."""
        norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1, keepdims=True)
        out: F32 = (self.directions(vectors) * (norms * self.scale)).astype(np.float32)
        return out


def fit_map(source: NDArray[np.floating], target: NDArray[np.floating], method: Method,
            center: bool = False) -> LinearMap:
    """Fit the map on paired anchor rows (raw vectors of SOURCE and TARGET)."""
    a, b = unit_rows(source), unit_rows(target)
    w = orthogonal_map(a, b, center) if method == "procrustes" else least_squares_map(a, b, center)
    dims = a.shape[1]
    mu_s = a.mean(axis=0) if center else np.zeros(dims)
    mu_t = b.mean(axis=0) if center else np.zeros(dims)
    r_t = float(np.linalg.norm(b - mu_t, axis=1).mean()) if center else 1.0
    s_norm = float(np.median(np.linalg.norm(source, axis=1)))
    t_norm = float(np.median(np.linalg.norm(target, axis=1)))
    scale = t_norm / s_norm if s_norm > 0 else 1.0
    return LinearMap(method, np.asarray(w, dtype=np.float64), center, mu_s, mu_t, r_t, scale)
