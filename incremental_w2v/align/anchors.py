"""Anchor words: shared words in a frequency band, or an explicit pair file; a held-out part."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import KeyedVectors

from incremental_w2v.align.mapping import I64, AlignOptions
from incremental_w2v.errors import DataError, UsageError
from incremental_w2v.ingest.small_files import read_lines
from incremental_w2v.vectors.io import LoadedVectors

logger = logging.getLogger(__name__)


@dataclass
class Anchors:
    """Anchor pairs as row indices: ``fit`` for fitting, ``held_out`` never used for it."""

    fit_s: I64
    fit_t: I64
    held_s: I64  # unique source rows
    held_gold: list[set[int]]  # acceptable target rows for each held-out source row
    origin: str  # "shared-words" or the pair file's path
    stats: dict[str, Any] = field(default_factory=dict)


def ranks(loaded: LoadedVectors) -> I64:
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
    pairs = []
    for number, line in enumerate(read_lines(path, "anchor file", hint="check --anchors"),
                                  start=1):
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
