"""Bring a separately trained model into another's space, and merge the two.

Two word2vec runs land in arbitrary orientations, so their vectors are not
comparable as they are. Using anchor words (shared words in a frequency band,
or an explicit pair file) a linear map from SOURCE's space to TARGET's is
fitted: orthogonal Procrustes by default (an isometry: cosines inside the
mapped space are kept), or the unconstrained least squares of gensim's
``TranslationMatrix`` (``lstsq``: fits the anchors more closely, distorts
everything else). A held-out part of the anchors is never used for fitting
and measures how well the map holds (precision@1/@10 with cosine and with
CSLS retrieval, mean cosine); every run reports these figures and says
plainly when the map is too poor to trust and a joint retrain would serve
better. ``align`` writes SOURCE's vectors mapped; ``merge`` writes the union
vocabulary in TARGET's space.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from gensim.models import KeyedVectors
from numpy.typing import NDArray

from . import __version__
from .align_verdict import GOOD_MARGIN, GOOD_P1, POOR_MARGIN, POOR_P1, describe_thresholds
from .errors import DataError, InputMissingError, OutputError, UsageError
from .procrustes import least_squares_map, orthogonal_map, unit_rows
from .vectors_io import EXPORT_FORMATS, LoadedVectors, load_vectors, write_vectors

logger = logging.getLogger(__name__)

Method = Literal["procrustes", "lstsq"]
Prefer = Literal["target", "average"]
METHODS: tuple[str, ...] = get_args(Method)
PREFERENCES: tuple[str, ...] = get_args(Prefer)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

DEFAULT_BAND = (0, 10_000)
MIN_HELD_OUT = 50  # fewer held-out anchors than this: the figures are too noisy to judge
_DISTORTION_PAIRS = 2000
_CHUNK = 2048


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
        if self.refine < 0 or self.csls_k < 1 or self.search_size < 1 or self.refine_size < 1:
            raise UsageError("--refine must be >= 0 (and the search sizes >= 1)")
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


@dataclass
class Anchors:
    """Anchor pairs as row indices: ``fit`` for fitting, ``held_out`` never used for it."""

    fit_s: I64
    fit_t: I64
    held_s: I64  # unique source rows
    held_gold: list[set[int]]  # acceptable target rows for each held-out source row
    origin: str  # "shared-words" or the pair file's path
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Alignment:
    """A fitted map with the anchors it used and its diagnostics."""

    mapping: LinearMap
    anchors: Anchors
    diagnostics: dict[str, Any]
    options: AlignOptions


@dataclass
class AlignResult:
    """What ``align`` or ``merge`` did, for the CLI's text and ``--json``."""

    command: str
    source: str
    target: str
    output: str
    format: str
    files: list[str]
    vocab_size: int
    source_vocab: int
    target_vocab: int
    diagnostics: dict[str, Any]
    options: dict[str, Any]
    merge: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        d = self.diagnostics
        h = d["held_out"]
        anchors = d["anchors"]
        lines = []
        if self.command == "align":
            lines.append(
                f"mapped {self.source_vocab} words of {self.source} into the space of "
                f"{self.target} ({d['method']}, {anchors['fit']} anchors, "
                f"{anchors['held_out']} held out)"
            )
        else:
            m = self.merge or {}
            lines.append(
                f"merged {self.source} into {self.target}: {self.vocab_size} words "
                f"({m.get('shared', 0)} shared, {m.get('from_source', 0)} mapped from SOURCE; "
                f"{d['method']}, {anchors['fit']} anchors, {anchors['held_out']} held out)"
            )
        if h["p_at_1_csls"] is not None:
            lines.append(
                f"held-out P@1 {h['p_at_1_cosine']:.3f} cosine / {h['p_at_1_csls']:.3f} CSLS, "
                f"P@10 {h['p_at_10_cosine']:.3f} / {h['p_at_10_csls']:.3f}, "
                f"mean cosine {h['mean_cosine']:.3f} (random pairs {h['mean_cosine_random']:.3f}); "
                f"distortion "
                f"{d['distortion']['mean_abs_cosine_change']:.3f}; verdict: {d['verdict']}"
            )
        if d["warnings"]:
            lines.append(f"{len(d['warnings'])} warning(s), logged above and in the metadata")
        lines.append(f"wrote {self.output} ({self.format})")
        return "\n".join(lines)


# --- the two commands ---------------------------------------------------------------------------


def align(
    source: str,
    target: str,
    output: Path,
    options: AlignOptions | None = None,
    fmt: str = "keyedvectors",
    base_dir: Path | None = None,
) -> AlignResult:
    """Write SOURCE's vectors mapped into TARGET's space to ``output``, diagnostics beside it."""
    return _run("align", source, target, output, options or AlignOptions(), fmt, base_dir, None)


def merge(
    source: str,
    target: str,
    output: Path,
    options: AlignOptions | None = None,
    prefer: str = "target",
    fmt: str = "keyedvectors",
    base_dir: Path | None = None,
) -> AlignResult:
    """Write the union vocabulary in TARGET's space to ``output``, diagnostics beside it."""
    if prefer not in PREFERENCES:
        raise UsageError(
            f"unknown --prefer {prefer!r}", hint=f"use one of: {', '.join(PREFERENCES)}"
        )
    return _run("merge", source, target, output, options or AlignOptions(), fmt, base_dir, prefer)


def _run(command: str, source_ref: str, target_ref: str, output: Path, options: AlignOptions,
         fmt: str, base_dir: Path | None, prefer: str | None) -> AlignResult:
    start = time.monotonic()
    options.check()
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown vectors format {fmt!r}",
            hint=f"use one of: {', '.join(EXPORT_FORMATS)} (a full model cannot be made from "
            "mapped vectors: there are no trained output weights for them)",
        )
    output = Path(output)
    if not output.parent.is_dir():
        raise OutputError(
            f"cannot write {output}: folder {output.parent} does not exist",
            hint=f"create it first (mkdir -p {output.parent}) or choose another --output",
        )
    source = load_vectors(source_ref, base_dir)
    target = load_vectors(target_ref, base_dir)
    alignment = fit_alignment(source, target, options)
    merge_info: dict[str, Any] | None = None
    if prefer is None:
        kv = aligned_vectors(alignment, source)
    else:
        kv, merge_info = merged_vectors(alignment, source, target, prefer)  # type: ignore[arg-type]
    metadata = {
        "incw2v_version": __version__,
        "command": command,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"ref": source.ref, "kind": source.kind, "vocab_size": len(source.kv)},
        "target": {"ref": target.ref, "kind": target.kind, "vocab_size": len(target.kv)},
        "space": "target",
        "options": options.to_dict(),
        "diagnostics": alignment.diagnostics,
        "merge": merge_info,
        "vocab_size": len(kv),
    }
    files = write_vectors(kv, fmt, output, metadata)  # type: ignore[arg-type]
    return AlignResult(
        command=command, source=source.ref, target=target.ref, output=str(output), format=fmt,
        files=[str(p) for p in files], vocab_size=len(kv), source_vocab=len(source.kv),
        target_vocab=len(target.kv), diagnostics=alignment.diagnostics,
        options=options.to_dict(), merge=merge_info, seconds=round(time.monotonic() - start, 3),
    )


# --- fitting --------------------------------------------------------------------------------------


def fit_alignment(source: LoadedVectors, target: LoadedVectors,
                  options: AlignOptions | None = None) -> Alignment:
    """Choose anchors, fit the map (refining if asked), and measure it on the held-out anchors."""
    options = options or AlignOptions()
    options.check()
    s_dims, t_dims = source.kv.vector_size, target.kv.vector_size
    if s_dims != t_dims:
        raise DataError(
            f"SOURCE {source.ref} has {s_dims} dimensions, TARGET {target.ref} has {t_dims}",
            hint="a linear map between spaces needs equal sizes: retrain one model with "
            f"vector_size={t_dims}",
        )
    s_rank, t_rank = _ranks(source), _ranks(target)
    if options.anchors_file is not None:
        anchors = pair_file_anchors(options.anchors_file, source.kv, target.kv, options)
    else:
        anchors = shared_word_anchors(source, target, s_rank, t_rank, options)
    s_vecs, t_vecs = source.kv.vectors, target.kv.vectors
    mapping = fit_map(s_vecs[anchors.fit_s], t_vecs[anchors.fit_t], options.method, options.center)
    refinement: list[dict[str, Any]] = []
    for step in range(options.refine):
        pairs_s, pairs_t = _mutual_neighbours(mapping, source.kv, target.kv, s_rank, t_rank,
                                              anchors, options)
        if len(pairs_s) < 2:
            logger.warning("refinement step %d found %d mutual neighbours; stopping",
                           step + 1, len(pairs_s))
            break
        mapping = fit_map(s_vecs[pairs_s], t_vecs[pairs_t], options.method, options.center)
        agree = float(np.mean(np.asarray([source.kv.index_to_key[i] == target.kv.index_to_key[j]
                                          for i, j in zip(pairs_s, pairs_t, strict=True)])))
        refinement.append({"step": step + 1, "pairs": len(pairs_s), "identical_words": agree})
        logger.info("refinement step %d: %d mutual-neighbour pairs", step + 1, len(pairs_s))
    diagnostics = _diagnose(mapping, source, target, t_rank, s_rank, anchors, options)
    diagnostics["refinement"] = refinement
    for warning in diagnostics["warnings"]:
        logger.warning("%s", warning)
    return Alignment(mapping, anchors, diagnostics, options)


def _ranks(loaded: LoadedVectors) -> I64:
    """Frequency rank of every row: by counts when known, else the file's order."""
    n = len(loaded.kv.index_to_key)
    if loaded.counts is None:
        return np.arange(n, dtype=np.int64)
    counts = np.asarray([loaded.counts.get(w, 0) for w in loaded.kv.index_to_key], dtype=np.int64)
    order = np.argsort(-counts, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n, dtype=np.int64)
    return ranks


def _split_held_out(n: int, fraction: float, seed: int) -> tuple[I64, I64]:
    """(fit positions, held-out positions) of ``n`` items, the held-out part seeded."""
    held = round(n * fraction)
    if fraction > 0 and held == 0 and n >= 3:
        held = 1
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[held:]), np.sort(perm[:held])


def shared_word_anchors(source: LoadedVectors, target: LoadedVectors, s_rank: I64, t_rank: I64,
                        options: AlignOptions) -> Anchors:
    """Shared words inside the frequency band, ranked by the rarer of their two ranks."""
    t_index = target.kv.key_to_index
    shared_s = [i for i, w in enumerate(source.kv.index_to_key) if w in t_index]
    if not shared_s:
        raise DataError(
            f"SOURCE {source.ref} and TARGET {target.ref} have no word in common",
            hint="check that both were tokenised alike (case, stemming); for models of "
            "different languages give known translations with --anchors FILE",
        )
    s_idx = np.asarray(shared_s, dtype=np.int64)
    t_idx = np.asarray([t_index[source.kv.index_to_key[i]] for i in shared_s], dtype=np.int64)
    order = np.argsort(np.maximum(s_rank[s_idx], t_rank[t_idx]), kind="stable")
    s_idx, t_idx = s_idx[order], t_idx[order]
    stats: dict[str, Any] = {"shared_words": len(shared_s), "ranked_by": (
        "counts" if source.counts is not None and target.counts is not None else
        "counts and file order" if source.counts is not None or target.counts is not None
        else "file order")}
    if options.min_count is not None:
        if source.counts is None or target.counts is None:
            missing = source.ref if source.counts is None else target.ref
            raise UsageError(
                f"--anchor-min-count needs word counts, and {missing} has none "
                "(word2vec-format files do not store them)",
                hint="use --anchor-band FROM:TO (frequency ranks) instead",
            )
        s_c, t_c = source.counts, target.counts
        keep = [k for k, (i, j) in enumerate(zip(s_idx, t_idx, strict=True))
                if min(s_c[source.kv.index_to_key[i]], t_c[target.kv.index_to_key[j]])
                >= options.min_count]
        s_idx, t_idx = s_idx[keep], t_idx[keep]
    lo, hi = options.anchor_band
    s_idx, t_idx = s_idx[lo:hi], t_idx[lo:hi]
    if len(s_idx) < 2:
        raise DataError(
            f"only {len(s_idx)} shared word(s) fall in the anchor band {lo}:{hi} "
            f"({len(shared_s)} shared words in all)",
            hint="widen --anchor-band (or lower --anchor-min-count), or give --anchors FILE",
        )
    fit, held = _split_held_out(len(s_idx), options.holdout, options.seed)
    stats.update({"in_band": len(s_idx), "fit": len(fit), "held_out": len(held)})
    return Anchors(
        fit_s=s_idx[fit], fit_t=t_idx[fit], held_s=s_idx[held],
        held_gold=[{int(t)} for t in t_idx[held]], origin="shared-words", stats=stats,
    )


def read_pair_file(path: Path) -> list[tuple[int, str, str]]:
    """(line number, source word, target word) for every pair line of ``path``.

    One pair per line, two fields separated by white space; blank lines and
    lines starting with '#' are skipped. Raises DataError naming the line.
    """
    if not path.exists():
        raise InputMissingError(f"anchor file {path} does not exist", hint="check --anchors")
    if path.is_dir():
        raise DataError(f"anchor file {path} is a folder", hint="give the pair file inside it")
    pairs = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{number}: not valid UTF-8 (byte {exc.start} of the line)",
                    hint="save the pair file as UTF-8",
                ) from None
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split()
            if len(fields) != 2:
                raise DataError(
                    f"{path}:{number}: expected 'SOURCE_WORD TARGET_WORD', found "
                    f"{len(fields)} field(s): {text[:80]!r}",
                    hint="write one pair per line, the two words separated by a space or tab",
                )
            pairs.append((number, fields[0], fields[1]))
    if not pairs:
        raise DataError(f"{path}: contains no pairs", hint="write 'source_word target_word' lines")
    return pairs


def pair_file_anchors(path: Path, source: KeyedVectors, target: KeyedVectors,
                      options: AlignOptions) -> Anchors:
    """Anchors from an explicit pair file; held-out pairs are grouped by source word."""
    pairs = read_pair_file(path)
    s_index, t_index = source.key_to_index, target.key_to_index
    usable = [(n, s, t) for n, s, t in pairs if s in s_index and t in t_index]
    skipped = [(n, s, t) for n, s, t in pairs if not (s in s_index and t in t_index)]
    if skipped:
        shown = ", ".join(f"line {n} ({s} {t})" for n, s, t in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        logger.warning("%s: %d pair(s) name a word a model lacks, skipped: %s%s",
                       path, len(skipped), shown, more)
    if len(usable) < 2:
        raise DataError(
            f"{path}: only {len(usable)} of its {len(pairs)} pairs have both words in the "
            "models (SOURCE word first, TARGET word second)",
            hint="check the column order, and that the words are tokenised like the "
            "models' vocabularies",
        )
    by_source: dict[int, set[int]] = {}
    for _, s, t in usable:
        by_source.setdefault(s_index[s], set()).add(t_index[t])
    sources = sorted(by_source)
    fit, held = _split_held_out(len(sources), options.holdout, options.seed)
    fit_s: list[int] = []
    fit_t: list[int] = []
    for k in fit:
        for row in sorted(by_source[sources[k]]):
            fit_s.append(sources[k])
            fit_t.append(row)
    return Anchors(
        fit_s=np.asarray(fit_s, dtype=np.int64), fit_t=np.asarray(fit_t, dtype=np.int64),
        held_s=np.asarray([sources[k] for k in held], dtype=np.int64),
        held_gold=[by_source[sources[k]] for k in held], origin=str(path),
        stats={"pairs_in_file": len(pairs), "skipped_pairs": len(skipped),
               "skipped_lines": [n for n, _, _ in skipped[:20]], "fit": len(fit_s),
               "held_out": len(held)},
    )


# --- retrieval ------------------------------------------------------------------------------------


def _top_rows(rank: I64, size: int, exclude: set[int] | None = None) -> I64:
    order = np.argsort(rank, kind="stable")
    if exclude:
        order = order[~np.isin(order, np.fromiter(exclude, dtype=np.int64))]
    return np.asarray(order[:size], dtype=np.int64)


def _mean_topk(a: F32, b: F32, k: int) -> F32:
    """Mean of the ``k`` largest cosines of each row of ``a`` against the rows of ``b``."""
    k = min(k, len(b))
    out = np.empty(len(a), dtype=np.float32)
    for lo in range(0, len(a), _CHUNK):
        sims = a[lo:lo + _CHUNK] @ b.T
        out[lo:lo + _CHUNK] = np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
    return out


def _csls_best(a: F32, b: F32, r_b: F32) -> I64:
    """For each row of ``a``, the row of ``b`` with the best CSLS (r_a is constant per row)."""
    best = np.empty(len(a), dtype=np.int64)
    for lo in range(0, len(a), _CHUNK):
        best[lo:lo + _CHUNK] = np.argmax(2 * (a[lo:lo + _CHUNK] @ b.T) - r_b, axis=1)
    return best


def _mutual_neighbours(mapping: LinearMap, source: KeyedVectors, target: KeyedVectors,
                       s_rank: I64, t_rank: I64, anchors: Anchors,
                       options: AlignOptions) -> tuple[I64, I64]:
    """CSLS mutual nearest neighbours among frequent words, held-out words left out."""
    held_t = set().union(*anchors.held_gold) if anchors.held_gold else set()
    s_rows = _top_rows(s_rank, options.refine_size, {int(i) for i in anchors.held_s})
    t_rows = _top_rows(t_rank, options.refine_size, held_t)
    s_map = mapping.directions(source.vectors[s_rows])
    t_unit = unit_rows(target.vectors[t_rows]).astype(np.float32)
    r_s = _mean_topk(s_map, t_unit, options.csls_k)  # density around each mapped source word
    r_t = _mean_topk(t_unit, s_map, options.csls_k)
    s_to_t = _csls_best(s_map, t_unit, r_t)
    t_to_s = _csls_best(t_unit, s_map, r_s)
    mutual = np.nonzero(t_to_s[s_to_t] == np.arange(len(s_rows)))[0]
    return s_rows[mutual], t_rows[s_to_t[mutual]]


def _diagnose(mapping: LinearMap, source: LoadedVectors, target: LoadedVectors, t_rank: I64,
              s_rank: I64, anchors: Anchors, options: AlignOptions) -> dict[str, Any]:
    s_vecs, t_vecs = source.kv.vectors, target.kv.vectors
    fit_map_dirs = mapping.directions(s_vecs[anchors.fit_s])
    fit_cos = float(np.mean(np.sum(fit_map_dirs * unit_rows(t_vecs[anchors.fit_t]), axis=1)))
    held = _held_out_figures(mapping, source.kv, target.kv, s_rank, t_rank, anchors, options)
    distortion = _distortion(mapping, s_vecs, s_rank, options)
    warnings, verdict = _verdict(held, anchors, source.kv.vector_size, options)
    stats = dict(anchors.stats)
    stats.setdefault("fit", len(anchors.fit_s))
    stats.setdefault("held_out", len(anchors.held_s))
    return {
        "method": options.method,
        "center": options.center,
        "anchors": {"origin": anchors.origin, **stats},
        "fit_mean_cosine": round(fit_cos, 4),
        "held_out": held,
        "distortion": distortion,
        "verdict": verdict,
        "warnings": warnings,
        "thresholds": {"good": {"p_at_1_csls": GOOD_P1, "cosine_margin": GOOD_MARGIN},
                       "poor": {"p_at_1_csls": POOR_P1, "cosine_margin": POOR_MARGIN},
                       "min_held_out": MIN_HELD_OUT},
    }


def _held_out_figures(mapping: LinearMap, source: KeyedVectors, target: KeyedVectors,
                      s_rank: I64, t_rank: I64, anchors: Anchors,
                      options: AlignOptions) -> dict[str, Any]:
    empty: dict[str, Any] = {"queries": 0, "candidates": 0, "p_at_1_cosine": None,
                             "p_at_10_cosine": None, "p_at_1_csls": None, "p_at_10_csls": None,
                             "mean_cosine": None, "mean_cosine_random": None,
                             "cosine_margin": None, "neighbour_overlap": None}
    if len(anchors.held_s) == 0:
        return empty
    gold_rows = set().union(*anchors.held_gold)
    cand = np.union1d(_top_rows(t_rank, options.search_size),
                      np.fromiter(gold_rows, dtype=np.int64))
    position = {int(row): k for k, row in enumerate(cand)}
    gold = [{position[g] for g in golds} for golds in anchors.held_gold]
    queries = mapping.directions(source.vectors[anchors.held_s])
    cand_unit = unit_rows(target.vectors[cand]).astype(np.float32)
    density_rows = _top_rows(s_rank, options.search_size)
    s_density = mapping.directions(source.vectors[density_rows])
    r_t = _mean_topk(cand_unit, s_density, options.csls_k)
    r_q = _mean_topk(queries, cand_unit, options.csls_k)
    hits = {"p_at_1_cosine": 0, "p_at_10_cosine": 0, "p_at_1_csls": 0, "p_at_10_csls": 0}
    cosines = []
    for lo in range(0, len(queries), _CHUNK):
        sims = queries[lo:lo + _CHUNK] @ cand_unit.T
        csls = 2 * sims - r_q[lo:lo + _CHUNK, None] - r_t[None, :]
        for name, scores in (("cosine", sims), ("csls", csls)):
            top = np.argsort(-scores, axis=1)[:, :10]
            for row, golds in zip(top, gold[lo:lo + _CHUNK], strict=True):
                hits[f"p_at_1_{name}"] += int(row[0]) in golds
                hits[f"p_at_10_{name}"] += bool(golds.intersection(row.tolist()))
        for k, golds in enumerate(gold[lo:lo + _CHUNK]):
            cosines.append(max(float(sims[k, g]) for g in golds))
    n = len(queries)
    out: dict[str, Any] = {"queries": n, "candidates": len(cand)}
    out.update({name: round(count / n, 4) for name, count in hits.items()})
    out["mean_cosine"] = round(float(np.mean(cosines)), 4)
    # What the mean cosine is worth: the same figure against random target words.
    random_rows = np.random.default_rng(options.seed + 2).integers(0, len(cand), n)
    baseline = np.sum(queries * cand_unit[random_rows], axis=1)
    out["mean_cosine_random"] = round(float(baseline.mean()), 4)
    out["cosine_margin"] = round(out["mean_cosine"] - out["mean_cosine_random"], 4)
    out["neighbour_overlap"] = _neighbour_overlap(source, target, anchors)
    return out


def _neighbour_overlap(source: KeyedVectors, target: KeyedVectors, anchors: Anchors,
                       k: int = 10) -> float:
    """How many of each held-out word's k nearest fit anchors the two models agree on.

    Needs no map: it says whether *any* map could succeed. Near 1 when both models
    use the words alike; near 0 when the shared words mean different things.
    """
    k = min(k, len(anchors.fit_s))
    s_anchor = unit_rows(source.vectors[anchors.fit_s]).astype(np.float32)
    t_anchor = unit_rows(target.vectors[anchors.fit_t]).astype(np.float32)
    s_query = unit_rows(source.vectors[anchors.held_s]).astype(np.float32)
    t_query = unit_rows(target.vectors[[min(g) for g in anchors.held_gold]]).astype(np.float32)
    shared = 0
    for lo in range(0, len(s_query), _CHUNK):
        near_s = np.argpartition(-(s_query[lo:lo + _CHUNK] @ s_anchor.T), k - 1, axis=1)[:, :k]
        near_t = np.argpartition(-(t_query[lo:lo + _CHUNK] @ t_anchor.T), k - 1, axis=1)[:, :k]
        shared += sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(near_s, near_t,
                                                                              strict=True))
    return round(shared / (k * len(s_query)), 4)


def _distortion(mapping: LinearMap, s_vecs: NDArray[np.floating], s_rank: I64,
                options: AlignOptions) -> dict[str, Any]:
    """How much cosines between pairs of SOURCE words change under the map."""
    rows = _top_rows(s_rank, options.search_size)
    if len(rows) < 2:
        return {"pairs": 0, "mean_abs_cosine_change": 0.0, "max_abs_cosine_change": 0.0}
    rng = np.random.default_rng(options.seed + 1)
    a = rng.choice(rows, _DISTORTION_PAIRS)
    b = rng.choice(rows, _DISTORTION_PAIRS)
    keep = a != b
    a, b = a[keep], b[keep]
    before = np.sum(unit_rows(s_vecs[a]) * unit_rows(s_vecs[b]), axis=1)
    after = np.sum(mapping.directions(s_vecs[a]) * mapping.directions(s_vecs[b]), axis=1)
    change = np.abs(after - before)
    return {"pairs": len(a), "mean_abs_cosine_change": round(float(change.mean()), 4),
            "max_abs_cosine_change": round(float(change.max()), 4)}


def _verdict(held: dict[str, Any], anchors: Anchors, dims: int,
             options: AlignOptions) -> tuple[list[str], str]:
    warnings = []
    fit = len(anchors.fit_s)
    if fit < dims:
        warnings.append(
            f"only {fit} anchors for {dims} dimensions: the map is under-determined and "
            "fits the anchors by construction; widen the band or give more pairs"
        )
    if held["p_at_1_csls"] is None:
        warnings.append(
            "no held-out anchors, so the mapping cannot be judged; use --holdout > 0"
        )
        return warnings, "unknown"
    p1, cos, margin = held["p_at_1_csls"], held["mean_cosine"], held["cosine_margin"]
    figures = (f"held-out P@1 with CSLS {p1:.2f}, mean cosine {cos:.2f} against "
               f"{held['mean_cosine_random']:.2f} for random pairs, neighbour overlap "
               f"{held['neighbour_overlap']:.2f}")
    if p1 < POOR_P1 or margin < POOR_MARGIN:
        verdict = "poor"
        warnings.append(
            f"the mapping is poor ({figures}; P@1 below {POOR_P1:.2f} or a cosine margin "
            f"below {POOR_MARGIN:.2f} means the two models do not use their shared words "
            "alike): mapped vectors will be unreliable, and a model trained on the joined "
            "corpora would serve better"
        )
    elif p1 >= GOOD_P1 and margin >= GOOD_MARGIN:
        verdict = "good"
    else:
        verdict = "fair"
        warnings.append(
            f"the mapping is only fair ({figures}; good is P@1 >= {GOOD_P1:.2f} and a cosine "
            f"margin >= {GOOD_MARGIN:.2f}): check mapped words before relying on them; "
            "a model trained on the joined corpora is the safer choice"
        )
    if held["queries"] < MIN_HELD_OUT:
        warnings.append(
            f"only {held['queries']} held-out anchors: the figures are noisy; "
            "raise --holdout or widen the band"
        )
        if verdict == "good":
            verdict = "fair"
    if options.method == "lstsq":
        warnings.append(
            "lstsq is not an isometry: cosines between mapped words differ from SOURCE's "
            "(see distortion); use procrustes unless you need gensim TranslationMatrix results"
        )
    return warnings, verdict


# --- outputs --------------------------------------------------------------------------------------


def _order(words: Sequence[str], counts: Sequence[int] | None) -> list[int]:
    if counts is None:
        return list(range(len(words)))
    return sorted(range(len(words)), key=lambda k: -counts[k])


def _build_kv(words: list[str], vectors: F32, counts: list[int] | None) -> KeyedVectors:
    """KeyedVectors sorted by count when counts are known (so restrict_vocab=N means top N)."""
    order = _order(words, counts)
    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors([words[k] for k in order], vectors[order])
    if counts is not None:
        kv.expandos["count"] = np.asarray([counts[k] for k in order], dtype=np.int64)
    return kv


def aligned_vectors(alignment: Alignment, source: LoadedVectors) -> KeyedVectors:
    """All of SOURCE's words, mapped into TARGET's space (counts carried when known)."""
    words = list(source.kv.index_to_key)
    vectors = _mapped_in_chunks(alignment.mapping, source.kv.vectors)
    counts = [source.counts.get(w, 0) for w in words] if source.counts is not None else None
    return _build_kv(words, vectors, counts)


def _mapped_in_chunks(mapping: LinearMap, vectors: NDArray[np.floating]) -> F32:
    out = np.empty(vectors.shape, dtype=np.float32)
    step = 8 * _CHUNK
    for lo in range(0, len(vectors), step):
        out[lo:lo + step] = mapping.vectors(vectors[lo:lo + step])
    return out


def merged_vectors(alignment: Alignment, source: LoadedVectors, target: LoadedVectors,
                   prefer: Prefer = "target") -> tuple[KeyedVectors, dict[str, Any]]:
    """Union vocabulary in TARGET's space, with what was done recorded in the returned dict.

    Shared words keep TARGET's vectors (``prefer='target'``) or get the
    count-weighted average of TARGET's and the mapped SOURCE vector
    (``'average'``; equal weights when a model has no counts). SOURCE-only
    words get mapped vectors. Counts are summed for shared words when both
    models have them; words of a model without counts get 0.
    """
    t_words = list(target.kv.index_to_key)
    t_index = target.kv.key_to_index
    s_words = list(source.kv.index_to_key)
    only_s = [i for i, w in enumerate(s_words) if w not in t_index]
    shared_s = [i for i, w in enumerate(s_words) if w in t_index]
    vectors = np.empty((len(t_words) + len(only_s), target.kv.vector_size), dtype=np.float32)
    vectors[:len(t_words)] = target.kv.vectors
    if only_s:
        vectors[len(t_words):] = _mapped_in_chunks(alignment.mapping, source.kv.vectors[only_s])
    weighting = "none"
    if prefer == "average" and shared_s:
        t_rows = np.asarray([t_index[s_words[i]] for i in shared_s], dtype=np.int64)
        mapped = _mapped_in_chunks(alignment.mapping, source.kv.vectors[shared_s])
        if source.counts is not None and target.counts is not None:
            c_s = np.asarray([source.counts[s_words[i]] for i in shared_s], dtype=np.float64)
            c_t = np.asarray([target.counts[t_words[j]] for j in t_rows], dtype=np.float64)
            total = np.maximum(c_s + c_t, 1.0)
            w_s, w_t = (c_s / total)[:, None], (c_t / total)[:, None]
            weighting = "counts"
        else:
            w_s = w_t = np.full((len(shared_s), 1), 0.5)
            weighting = "equal (a model has no counts)"
        vectors[t_rows] = (w_t * target.kv.vectors[t_rows] + w_s * mapped).astype(np.float32)
    counts: list[int] | None = None
    if source.counts is not None or target.counts is not None:
        s_c, t_c = source.counts or {}, target.counts or {}
        counts = [t_c.get(w, 0) + s_c.get(w, 0) for w in t_words]
        counts += [s_c.get(s_words[i], 0) for i in only_s]
    words = t_words + [s_words[i] for i in only_s]
    info = {
        "prefer": prefer,
        "shared": len(shared_s),
        "from_target_only": len(t_words) - len(shared_s),
        "from_source": len(only_s),
        "weighting": weighting,
        "counts": ("summed" if source.counts is not None and target.counts is not None
                   else "partial (0 for words of the model without counts)" if counts is not None
                   else "unknown"),
    }
    return _build_kv(words, vectors, counts), info


__all__ = [
    "AlignOptions", "AlignResult", "Alignment", "LinearMap", "align", "aligned_vectors",
    "describe_thresholds", "fit_alignment", "fit_map", "merge", "merged_vectors",
    "read_pair_file",
]
