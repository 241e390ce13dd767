"""Scores of one set of word vectors: word-pair similarity and analogies, with coverage.

Bundled sets come from gensim's installed test data (no download):
WordSim353 and SimLex-999 (Spearman between cosine and human ratings) and
Google's analogies (3CosAdd accuracy). User files use the same formats.

Every score carries its coverage (pairs or questions whose words are all in
the vocabulary, out of the set), since a score on 20% of a set says little
next to one on 90%. ``restrict_vocab`` ranks words by their (cumulative)
count, not by index: after updates gensim's index is no longer frequency
order, and its own ``restrict_vocab=N`` silently means "the first N rows".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from incremental_w2v.config.quality import BUNDLED_ANALOGIES, BUNDLED_PAIRS, EvaluationSettings
from incremental_w2v.errors import DataError, InputMissingError
from incremental_w2v.ingest.small_files import read_lines
from incremental_w2v.vectors.ranking import rank_order

logger = logging.getLogger(__name__)

Pair = tuple[str, str, float]
Question = tuple[str, str, str, str]
_BATCH = 512


# -- reading sets ------------------------------------------------------------------------


def bundled_path(name: str) -> Path:
    from gensim.test.utils import datapath

    file = BUNDLED_PAIRS.get(name) or BUNDLED_ANALOGIES[name]
    return Path(datapath(file))


def read_pairs(path: Path) -> list[Pair]:
    st = _stat(path)
    return _read_pairs(str(path), st.st_mtime_ns, st.st_size)


def read_questions(path: Path) -> list[Question]:
    st = _stat(path)
    return _read_questions(str(path), st.st_mtime_ns, st.st_size)


def _stat(path: Path) -> Any:
    try:
        return path.stat()
    except FileNotFoundError:
        raise InputMissingError(
            f"evaluation file {path} does not exist",
            hint="check the paths under 'evaluation:' in the config",
        ) from None


def _lines(path: str) -> list[str]:
    # A regular file within bounds: /dev/zero or a pipe must not hold the run (and the lock).
    return read_lines(Path(path), "evaluation file",
                      hint="check the paths under 'evaluation:' in the config")


@lru_cache(maxsize=16)
def _read_pairs(path: str, mtime_ns: int, size: int) -> list[Pair]:
    pairs: list[Pair] = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            if len(parts) != 3:
                raise ValueError
            score = float(parts[2])
            if not math.isfinite(score):
                raise ValueError
        except ValueError:
            raise DataError(
                f"{path}, line {number}: expected 'word1<TAB>word2<TAB>score', got {line[:60]!r}",
                hint="use the format of gensim's wordsim353.tsv: '#' comments, three "
                "tab-separated fields",
            ) from None
        pairs.append((parts[0].strip(), parts[1].strip(), score))
    if not pairs:
        raise DataError(f"word-pair file {path} holds no pairs",
                        hint="one 'word1<TAB>word2<TAB>score' per line")
    return pairs


@lru_cache(maxsize=16)
def _read_questions(path: str, mtime_ns: int, size: int) -> list[Question]:
    questions: list[Question] = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip() or line.startswith(":"):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DataError(
                f"{path}, line {number}: expected four words 'a b c d', got {line[:60]!r}",
                hint="use the format of gensim's questions-words.txt: ': section' lines and "
                "one analogy 'a b c d' (a is to b as c is to d) per line",
            )
        questions.append((parts[0], parts[1], parts[2], parts[3]))
    if not questions:
        raise DataError(f"analogy file {path} holds no questions",
                        hint="one 'a b c d' analogy per line")
    return questions


# -- scoring -----------------------------------------------------------------------------


def _lookup(kv: Any, order: NDArray[np.int64], case_insensitive: bool) -> dict[str, int]:
    """Word -> position in ``order``; case-folded, the most frequent spelling wins."""
    words = kv.index_to_key
    table: dict[str, int] = {}
    for pos, row in enumerate(order.tolist()):
        key = words[row].lower() if case_insensitive else words[row]
        table.setdefault(key, pos)
    return table


def _folder(case_insensitive: bool) -> Callable[[str], str]:
    return str.lower if case_insensitive else str


def _unit(matrix: NDArray[Any]) -> NDArray[np.float32]:
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(out / norms, dtype=np.float32)


def _coverage(covered: int, total: int) -> float:
    return round(covered / total, 4) if total else 0.0


def score_pairs(
    kv: Any, order: NDArray[np.int64], pairs: list[Pair], case_insensitive: bool = True
) -> dict[str, Any]:
    """Spearman (and Pearson) between cosine similarity and the human ratings."""
    from scipy.stats import pearsonr, spearmanr  # scipy is slow to import: only when scoring

    fold = _folder(case_insensitive)
    lookup = _lookup(kv, order, case_insensitive)
    a_idx, b_idx, human = [], [], []
    for a, b, score in pairs:
        ia, ib = lookup.get(fold(a)), lookup.get(fold(b))
        if ia is not None and ib is not None:
            a_idx.append(int(order[ia]))
            b_idx.append(int(order[ib]))
            human.append(score)
    out: dict[str, Any] = {
        "kind": "spearman", "value": None, "covered": len(human), "total": len(pairs),
        "coverage": _coverage(len(human), len(pairs)),
    }
    if len(human) >= 3:
        va, vb = _unit(kv.vectors[a_idx]), _unit(kv.vectors[b_idx])
        sims = np.sum(va * vb, axis=1).astype(np.float64)
        if np.ptp(sims) > 0 and np.ptp(human) > 0:
            out["value"] = round(float(spearmanr(sims, human).statistic), 4)
            out["pearson"] = round(float(pearsonr(sims, human).statistic), 4)
    return out


_ENCODED: dict[tuple[int, bool], tuple[list[Question], list[str], NDArray[np.int64]]] = {}


def _encoded(questions: list[Question], case_insensitive: bool) -> tuple[list[str],
                                                                        NDArray[np.int64]]:
    """The set's distinct (folded) words and each question as 4 indices into them."""
    key = (id(questions), case_insensitive)
    hit = _ENCODED.get(key)
    if hit is not None and hit[0] is questions:
        return hit[1], hit[2]
    fold = _folder(case_insensitive)
    ids: dict[str, int] = {}
    inverse = np.array(
        [[ids.setdefault(fold(w), len(ids)) for w in q] for q in questions], dtype=np.int64
    ).reshape(-1, 4)
    if len(_ENCODED) > 16:
        _ENCODED.clear()
    _ENCODED[key] = (questions, list(ids), inverse)
    return list(ids), inverse


def score_analogies(
    kv: Any,
    order: NDArray[np.int64],
    questions: list[Question],
    restrict_vocab: int | None,
    case_insensitive: bool = True,
) -> dict[str, Any]:
    """3CosAdd accuracy among the ``restrict_vocab`` most frequent words (by ``order``).

    As in gensim's ``evaluate_word_analogies``: a question counts only if all four
    words are among the allowed words, and the three given words are never answers.
    """
    allowed = order if restrict_vocab is None else order[:restrict_vocab]
    lookup = _lookup(kv, allowed, case_insensitive)
    words, inverse = _encoded(questions, case_insensitive)
    pos = np.array([lookup.get(w, -1) for w in words], dtype=np.int64)[inverse]
    rows = pos[(pos >= 0).all(axis=1)]
    out: dict[str, Any] = {
        "kind": "accuracy", "value": None, "covered": len(rows), "total": len(questions),
        "coverage": _coverage(len(rows), len(questions)), "restrict_vocab": restrict_vocab,
    }
    if len(rows) == 0:
        return out
    space = _unit(kv.vectors[allowed])
    correct = 0
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        query = space[batch[:, 1]] - space[batch[:, 0]] + space[batch[:, 2]]
        sims = query @ space.T
        hit = np.arange(len(batch))
        for col in range(3):
            sims[hit, batch[:, col]] = -np.inf
        correct += int(np.sum(np.argmax(sims, axis=1) == batch[:, 3]))
    out["correct"] = correct
    out["value"] = round(correct / len(rows), 4)
    return out


def evaluate_vectors(
    kv: Any,
    counts: dict[str, int] | None,
    settings: EvaluationSettings,
    base_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Every configured score of ``kv``, keyed by metric name (as gates name them)."""
    started = time.perf_counter()
    order = rank_order(kv, counts)
    scores: dict[str, dict[str, Any]] = {}
    for name in settings.sets:
        path = bundled_path(name)
        if name in BUNDLED_PAIRS:
            scores[name] = score_pairs(kv, order, read_pairs(path), settings.case_insensitive)
        else:
            scores[name] = score_analogies(
                kv, order, read_questions(path), settings.restrict_vocab,
                settings.case_insensitive,
            )
    for f in settings.word_pairs:
        scores[f.name] = score_pairs(
            kv, order, read_pairs(resolve_path(f.path, base_dir)), settings.case_insensitive
        )
    for f in settings.analogy_files:
        scores[f.name] = score_analogies(
            kv, order, read_questions(resolve_path(f.path, base_dir)), settings.restrict_vocab,
            settings.case_insensitive,
        )
    logger.debug("evaluated %d metric(s) in %.2fs", len(scores), time.perf_counter() - started)
    return scores


def resolve_path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path
