"""How well separately trained models align and merge, next to a joint retrain.

Usage (from the repository root):

    PYTHONPATH=src python benchmarks/align.py /work/shared/data/tech.txt.gz \\
        /work/shared/data/reference.txt.gz /work/shared/data/literature.txt.gz --tokens 2000000

Trains (gensim Word2Vec, CBOW, corpus_file mode) on the first N tokens of each
corpus: TECH twice with different seeds, REFERENCE, LITERATURE, and the joined
corpora TECH+REFERENCE and TECH+LITERATURE (lines interleaved). Then, with TECH
(seed 1) as TARGET:

1. the alignment diagnostics of incw2v for each pair (same corpus / different
   seed, tech vs reference, tech vs literature) and method (procrustes,
   procrustes with one refinement step, lstsq);
2. for each merged model (``merge --prefer target``, and ``--prefer average``
   for procrustes), WordSim353 and SimLex-999 (Spearman) and the analogy
   accuracy (questions-words, 3CosAdd among the 30,000 most frequent words),
   next to TARGET alone, SOURCE alone and the model trained on the joined corpora.

The evaluation files are gensim's bundled ones (``gensim.test.utils.datapath``).
Two Markdown tables go to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.test.utils import datapath
from scipy.stats import spearmanr

from incremental_w2v.alignment import AlignOptions, fit_alignment, merged_vectors
from incremental_w2v.procrustes import unit_rows
from incremental_w2v.vectors_io import LoadedVectors, counts_of

ANALOGY_VOCAB = 30_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def head_lines(path: Path, tokens: int) -> list[str]:
    """The first lines of ``path`` holding about ``tokens`` tokens."""
    lines, seen = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            n = len(line.split())
            if not n:
                continue
            lines.append(line if line.endswith("\n") else line + "\n")
            seen += n
            if seen >= tokens:
                break
    return lines


def interleave(a: list[str], b: list[str]) -> Iterator[str]:
    for x, y in zip_longest(a, b):
        if x is not None:
            yield x
        if y is not None:
            yield y


def train(corpus: Path, seed: int, args: argparse.Namespace) -> tuple[LoadedVectors, float]:
    start = time.monotonic()
    words = sum(len(line.split()) for line in corpus.open(encoding="utf-8"))
    model = Word2Vec(
        corpus_file=str(corpus), vector_size=args.size, window=5, min_count=5, sg=0,
        negative=5, epochs=args.epochs, workers=args.workers, seed=seed,
    )
    seconds = time.monotonic() - start
    log(f"trained {corpus.name} seed {seed}: {len(model.wv)} words, {words} tokens, "
        f"{seconds:.0f}s")
    return LoadedVectors(model.wv, counts_of(model.wv), "model", corpus.stem), seconds


# --- evaluation ------------------------------------------------------------------------------


def word_pairs(kv: KeyedVectors, name: str) -> tuple[float, float]:
    """(Spearman, OOV fraction) on a gensim similarity file; pairs with unknown words skipped."""
    gold, pred, total = [], [], 0
    with open(datapath(name), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.strip().split("\t")
            total += 1
            a, b, score = fields[0].lower(), fields[1].lower(), float(fields[2])
            if a in kv.key_to_index and b in kv.key_to_index:
                gold.append(score)
                pred.append(float(kv.similarity(a, b)))
    rho = float(spearmanr(gold, pred).statistic) if len(gold) > 2 else float("nan")
    return rho, 1 - len(gold) / total


def analogies(kv: KeyedVectors, restrict: int = ANALOGY_VOCAB) -> tuple[float, int]:
    """3CosAdd accuracy among the ``restrict`` most frequent words, as gensim scores it.

    Batched (gensim asks one question at a time): questions with a word outside
    the restricted vocabulary are skipped; the three question words are excluded.
    """
    order = np.argsort(-np.asarray(kv.expandos["count"]), kind="stable") if "count" in \
        kv.expandos else np.arange(len(kv))
    rows = order[:restrict]
    words = [kv.index_to_key[i] for i in rows]
    index = {w: k for k, w in enumerate(words)}
    unit = unit_rows(kv.vectors[rows]).astype(np.float32)
    questions = []
    with open(datapath("questions-words.txt"), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(":"):
                continue
            q = line.lower().split()
            if len(q) == 4 and all(w in index for w in q):
                questions.append([index[w] for w in q])
    if not questions:
        return float("nan"), 0
    qs = np.asarray(questions)
    correct = 0
    for lo in range(0, len(qs), 1024):
        chunk = qs[lo:lo + 1024]
        query = unit[chunk[:, 1]] - unit[chunk[:, 0]] + unit[chunk[:, 2]]
        sims = query @ unit.T
        for col in range(3):
            sims[np.arange(len(chunk)), chunk[:, col]] = -np.inf
        correct += int(np.sum(np.argmax(sims, axis=1) == chunk[:, 3]))
    return correct / len(qs), len(qs)


def scores(kv: KeyedVectors) -> dict[str, Any]:
    ws, ws_oov = word_pairs(kv, "wordsim353.tsv")
    sl, sl_oov = word_pairs(kv, "simlex999.txt")
    an, an_n = analogies(kv)
    return {"vocab": len(kv), "ws353": ws, "ws353_oov": ws_oov, "simlex": sl,
            "simlex_oov": sl_oov, "analogy": an, "analogy_questions": an_n}


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tech", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("literature", type=Path)
    parser.add_argument("--tokens", type=int, default=2_000_000, help="cap per corpus")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="incw2v-align-bench-") as tmp:
        folder = Path(tmp)
        texts = {name: head_lines(getattr(args, name), args.tokens)
                 for name in ("tech", "reference", "literature")}
        files = {}
        for name, lines in texts.items():
            files[name] = folder / f"{name}.txt"
            files[name].write_text("".join(lines), encoding="utf-8")
        for other in ("reference", "literature"):
            joined = folder / f"tech+{other}.txt"
            joined.write_text("".join(interleave(texts["tech"], texts[other])), encoding="utf-8")
            files[f"tech+{other}"] = joined
        log(f"corpora capped at {args.tokens} tokens each, written to {folder}")

        models: dict[str, LoadedVectors] = {}
        train_seconds: dict[str, float] = {}
        plan = [("tech", "tech", 1), ("tech#2", "tech", 2), ("reference", "reference", 1),
                ("literature", "literature", 1), ("tech+reference", "tech+reference", 1),
                ("tech+literature", "tech+literature", 1)]
        for key, corpus, seed in plan:
            models[key], train_seconds[key] = train(files[corpus], seed, args)

    target = models["tech"]
    pairs = [("same corpus, other seed", "tech#2", "tech"),
             ("tech vs reference", "reference", "tech+reference"),
             ("tech vs literature", "literature", "tech+literature")]
    methods = [("procrustes", AlignOptions()), ("procrustes+refine", AlignOptions(refine=1)),
               ("lstsq", AlignOptions(method="lstsq"))]
    align_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    evaluated: dict[str, dict[str, Any]] = {}

    def evaluate(label: str, kv: KeyedVectors) -> dict[str, Any]:
        if label not in evaluated:
            evaluated[label] = scores(kv)
        return evaluated[label]

    for pair_label, source_key, joint_key in pairs:
        source = models[source_key]
        eval_rows.append({"pair": pair_label, "model": "TARGET alone (tech)",
                          **evaluate("tech", target.kv)})
        eval_rows.append({"pair": pair_label, "model": f"SOURCE alone ({source_key})",
                          **evaluate(source_key, source.kv)})
        for method_label, options in methods:
            start = time.monotonic()
            alignment = fit_alignment(source, target, options)
            seconds = time.monotonic() - start
            d = alignment.diagnostics
            align_rows.append({"pair": pair_label, "method": method_label, "seconds": seconds,
                               **{k: d[k] for k in ("anchors", "held_out", "distortion",
                                                    "verdict", "fit_mean_cosine")}})
            log(f"{pair_label} / {method_label}: {d['held_out']} {d['verdict']}")
            prefers = ["target", "average"] if method_label == "procrustes" else ["target"]
            for prefer in prefers:
                kv, _ = merged_vectors(alignment, source, target, prefer)  # type: ignore[arg-type]
                eval_rows.append({"pair": pair_label,
                                  "model": f"merge {method_label}, prefer {prefer}",
                                  **scores(kv)})
        eval_rows.append({"pair": pair_label, "model": f"joint retrain ({joint_key})",
                          **evaluate(joint_key, models[joint_key].kv)})

    print(f"Corpora capped at {args.tokens:,} tokens each; CBOW, vector_size {args.size}, "
          f"window 5, min_count 5, negative 5, {args.epochs} epochs, {args.workers} workers. "
          f"TARGET = tech (seed 1). Total {time.monotonic() - started:.0f}s.\n")
    print("| pair | method | anchors fit / held out | P@1 cos | P@1 CSLS | P@10 cos | P@10 CSLS "
          "| mean cos (random) | cosine change | verdict | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in align_rows:
        h = r["held_out"]
        print(f"| {r['pair']} | {r['method']} | {r['anchors']['fit']} / {r['anchors']['held_out']} "
              f"| {h['p_at_1_cosine']:.3f} | {h['p_at_1_csls']:.3f} | {h['p_at_10_cosine']:.3f} "
              f"| {h['p_at_10_csls']:.3f} | {h['mean_cosine']:.3f} ({h['mean_cosine_random']:.3f}) "
              f"| {r['distortion']['mean_abs_cosine_change']:.3f} | {r['verdict']} "
              f"| {r['seconds']:.1f} |")
    print()
    print("| pair | model | vocab | WS353 ρ (OOV) | SimLex ρ (OOV) | analogy acc (questions) |")
    print("|---|---|---|---|---|---|")
    for r in eval_rows:
        print(f"| {r['pair']} | {r['model']} | {r['vocab']:,} | {r['ws353']:.3f} "
              f"({r['ws353_oov']:.0%}) | {r['simlex']:.3f} ({r['simlex_oov']:.0%}) "
              f"| {r['analogy']:.3f} ({r['analogy_questions']}) |")
    if args.json:
        args.json.write_text(json.dumps({"align": align_rows, "evaluation": eval_rows,
                                         "train_seconds": train_seconds}, indent=2, default=str))


if __name__ == "__main__":
    main()
