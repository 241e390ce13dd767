"""How close does a lineage of updates get to a full retrain? One table.

    python benchmarks/update_quality.py TECH REFERENCE LITERATURE [--tokens N] [...]

Applies the three corpora as a lineage (first = base, then the two updates)
in several ways, trains one model on all three (full retrain, same
parameters), and prints for each: vocabulary size, WordSim353 and
SimLex-999 Spearman, Google analogy accuracy (gensim's bundled files) and
wall time of the whole lineage (reading, training, saving). One more column
says how well *old* words kept their meaning: for the 1,000 most frequent
words of the base corpus, the share of their 10 nearest neighbours (among its
10,000 most frequent words) that are the same as in a model trained on the
base corpus alone. The OOV column is the share of WordSim353/SimLex pairs not
covered (a smaller vocabulary is scored on fewer pairs). A second full
retrain with another seed shows how much of a difference is noise.

Scores are restricted to the ``--restrict`` most frequent words ranked by the
*true cumulative count* over the three corpora, never by index order: after
updates the index is no longer frequency order (DESIGN.md section 3).

Variants: ``naive`` is plain gensim (``build_vocab(update=True)`` + ``train()``
with the model's own alpha, per-batch ``min_count``); the others run
``incw2v add-corpus`` with rehearsal/freezing/learning-rate settings.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.test.utils import datapath

from incremental_w2v import Lineage
from incremental_w2v.config.schema import parse_config
from incremental_w2v.store.store import Store

A0125 = {"alpha": 0.0125}
VARIANTS: dict[str, dict[str, Any]] = {
    # name: overrides of the config (rehearsal off unless named; update alpha 0.025 unless
    # named: every setting is explicit so that changing a default does not change a row)
    "cumulative vocab, update alpha 0.0125": {"update": A0125},
    "cumulative vocab, update alpha 0.025": {},
    "+ alpha_decay 0.7": {"update": {"alpha_decay": 0.7}},
    "+ rehearsal 0.25": {"rehearsal": {"share": 0.25}},
    "+ rehearsal 0.5": {"rehearsal": {"share": 0.5}},
    "+ rehearsal 1.0": {"rehearsal": {"share": 1.0}},
    # Control: as much training per update as rehearsal 0.5, without replay.
    "+ 8 update epochs, no rehearsal": {"update": {"epochs": 8}},
    "+ rehearsal 0.5, alpha 0.0125": {"rehearsal": {"share": 0.5}, "update": A0125},
    "+ freeze 2 of 5 epochs": {"update": {"freeze_epochs": 2}},
    "+ freeze all epochs": {"update": {"freeze_epochs": 99}},
    "+ rehearsal 0.5 + freeze 2": {"rehearsal": {"share": 0.5}, "update": {"freeze_epochs": 2}},
}


def cap_corpus(src: Path, dest: Path, tokens: int | None) -> Counter[str]:
    """The first ``tokens`` tokens of ``src`` (whole lines), as plain text; their counts."""
    counts: Counter[str] = Counter()
    taken = 0
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8") as handle, open(dest, "w", encoding="utf-8") as out:
        for line in handle:
            words = line.split()
            if not words:
                continue
            out.write(" ".join(words) + "\n")
            counts.update(words)
            taken += len(words)
            if tokens is not None and taken >= tokens:
                break
    return counts


def ranked_vectors(wv: KeyedVectors, counts: Counter[str], limit: int) -> KeyedVectors:
    """The model's ``limit`` most frequent words by true count, most frequent first."""
    words = sorted((w for w in wv.index_to_key), key=lambda w: (-counts[w], w))[:limit]
    out = KeyedVectors(wv.vector_size)
    out.add_vectors(words, np.stack([wv[w] for w in words]))
    return out


def evaluate(wv: KeyedVectors, counts: Counter[str], limit: int) -> dict[str, float]:
    top = ranked_vectors(wv, counts, limit)
    _, ws, ws_oov = top.evaluate_word_pairs(datapath("wordsim353.tsv"))
    _, sl, sl_oov = top.evaluate_word_pairs(datapath("simlex999.txt"))
    analogy = top.evaluate_word_analogies(datapath("questions-words.txt"))[0]
    return {"ws353": float(ws[0]), "simlex": float(sl[0]), "analogy": float(analogy),
            "ws_oov": float(ws_oov), "sl_oov": float(sl_oov)}


def neighbours(wv: KeyedVectors, words: list[str], pool: list[str], k: int) -> list[set[str]]:
    """Each word's k nearest neighbours (cosine) among ``pool``."""
    vecs = np.stack([wv[w] for w in pool]).astype(np.float64)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
    index = {w: i for i, w in enumerate(pool)}
    sims = vecs[[index[w] for w in words]] @ vecs.T
    for row, word in enumerate(words):
        sims[row, index[word]] = -np.inf
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return [{pool[j] for j in row} for row in top]


def old_word_overlap(base: KeyedVectors, final: KeyedVectors, base_counts: Counter[str],
                     n_words: int = 1000, n_pool: int = 10_000, k: int = 10) -> float:
    """How much of the base corpus's neighbourhoods survived: for its ``n_words`` most
    frequent words, the mean share of their k nearest neighbours (among its ``n_pool``
    most frequent words) that are the same in ``final`` as in the base model."""
    ranked = [w for w, _ in base_counts.most_common() if w in base and w in final]
    pool = ranked[:n_pool]
    words = pool[:n_words]
    before = neighbours(base, words, pool, k)
    after = neighbours(final, words, pool, k)
    return float(np.mean([len(a & b) / k for a, b in zip(before, after, strict=True)]))


@contextmanager
def quiet() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def model_yaml(args: argparse.Namespace, seed: int = 1) -> str:
    return (
        f"model: {{vector_size: {args.vector_size}, window: 5, min_count: {args.min_count}, "
        f"negative: 5, epochs: {args.epochs}, workers: {args.workers}, seed: {seed}, "
        "alpha: 0.025, min_alpha: 0.0001, sample: 0.001}\n"
    )


def run_ours(
    work: Path, name: str, base: Path, queue: list[Path], overrides: dict[str, Any],
    args: argparse.Namespace,
) -> tuple[Word2Vec, float]:
    update = {"alpha": 0.025, "min_alpha": 0.0001, "alpha_decay": 1.0, "freeze_epochs": 0,
              **overrides.get("update", {})}
    rehearsal = {"buffer_size": args.buffer_size if "rehearsal" in overrides else 0,
                 "share": 0.0, **overrides.get("rehearsal", {})}
    folder = work / name.replace(" ", "_").replace(",", "").replace("+", "p")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    text = (
        f"store: store\n{model_yaml(args, overrides.get('seed', 1))}"
        f"update: {update}\n".replace("'", "")
        + f"rehearsal: {rehearsal}\n".replace("'", "")
        + "tokenize: {mode: whitespace}\n"
        + f"base: {{corpus: {base}}}\n"
        + ("queue:\n" + "".join(f"  - uri: {q}\n" for q in queue) if queue else "")
    )
    config = parse_config(text, folder / "config.yaml")
    started = time.perf_counter()
    with quiet():
        result = Lineage(config).add_corpus()
    seconds = time.perf_counter() - started
    store = Store.open(folder / "store")
    assert result.current is not None
    model = store.load_model(result.current)
    return model, seconds


def run_naive(paths: list[Path], args: argparse.Namespace) -> tuple[Word2Vec, float]:
    started = time.perf_counter()
    with quiet():
        model = Word2Vec(vector_size=args.vector_size, window=5, min_count=args.min_count,
                         negative=5, epochs=args.epochs, workers=args.workers, seed=1)
        for i, path in enumerate(paths):
            model.build_vocab(corpus_file=str(path), update=i > 0)
            model.train(corpus_file=str(path), total_examples=model.corpus_count,
                        total_words=model.corpus_total_words, epochs=model.epochs)
    return model, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs=3, type=Path, metavar="CORPUS",
                        help="base, first update, second update (plain or .gz, tokenised)")
    parser.add_argument("--tokens", type=int, default=1_000_000,
                        help="use the first N tokens of each corpus (default 1,000,000)")
    parser.add_argument("--vector-size", type=int, default=100)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--buffer-size", type=int, default=50_000,
                        help="replay buffer size (sentences) for the rehearsal variants")
    parser.add_argument("--restrict", type=int, default=30_000,
                        help="evaluate on the N most frequent words by cumulative count")
    parser.add_argument("--only", action="append", default=None,
                        help="run only these variants (repeatable); 'naive' and 'full retrain' "
                        "are always run")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="update-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    capped, counts = [], Counter[str]()
    for src in args.corpora:
        dest = work / (src.name.split(".")[0] + ".txt")
        counts.update(cap_corpus(src, dest, args.tokens))
        capped.append(dest)
    full = work / "all.txt"
    with open(full, "w", encoding="utf-8") as out:
        for path in capped:
            out.write(path.read_text(encoding="utf-8"))
    print(f"# corpora: {', '.join(p.name for p in args.corpora)}; {args.tokens:,} tokens cap "
          f"each, {sum(counts.values()):,} tokens total; vector_size {args.vector_size}, "
          f"min_count {args.min_count}, epochs {args.epochs}, workers {args.workers}; "
          f"scores on the top {args.restrict:,} words by cumulative count", flush=True)

    base_counts = cap_corpus(capped[0], work / "base-again.txt", None)
    rows: list[tuple[str, int, dict[str, float], float]] = []
    reference: list[KeyedVectors] = []

    def report(name: str, model: Word2Vec, seconds: float) -> None:
        scores = evaluate(model.wv, counts, args.restrict)
        scores["overlap"] = old_word_overlap(reference[0], model.wv, base_counts)
        rows.append((name, len(model.wv), scores, seconds))
        print(f"# done: {name} ({seconds:.0f}s)", file=sys.stderr, flush=True)

    # The old-word reference: the base corpus alone, trained as every lineage's v0001 is.
    base_model, _ = run_ours(work, "base only", capped[0], [], {}, args)
    reference.append(base_model.wv)
    model, seconds = run_ours(work, "full retrain", full, [], {}, args)
    report("full retrain (all three)", model, seconds)
    model, seconds = run_ours(work, "full retrain seed 2", full, [], {"seed": 2}, args)
    report("full retrain, seed 2 (noise yardstick)", model, seconds)
    model, seconds = run_naive(capped, args)
    report("plain gensim updates", model, seconds)
    for name, overrides in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        model, seconds = run_ours(work, name, capped[0], capped[1:], overrides, args)
        report(name, model, seconds)

    print()
    print("| variant | vocab | WS353 ρ | SimLex ρ | analogy | OOV pairs WS/SL | old-word "
          "neighbours kept | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, vocab, s, seconds in rows:
        print(f"| {name} | {vocab:,} | {s['ws353']:.3f} | {s['simlex']:.3f} | "
              f"{s['analogy']:.1%} | {s['ws_oov']:.0f}% / {s['sl_oov']:.0f}% | "
              f"{s['overlap']:.1%} | {seconds:.0f} |")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
