"""How well separately trained models align and merge, next to a joint retrain.

Usage (from the repository root):

    python benchmarks/align.py DATA/tech.txt.gz DATA/reference.txt.gz \\
        DATA/literature.txt.gz --tokens 2000000

Trains (gensim Word2Vec, CBOW, corpus_file mode) on the first N tokens of each
corpus: TECH twice with different seeds, the next N tokens of TECH ("more tech",
the same domain's next dump), REFERENCE, LITERATURE, and the joined corpora
TECH+more, TECH+REFERENCE and TECH+LITERATURE (lines interleaved). Then, with
TECH (seed 1) as TARGET:

1. the alignment diagnostics of incw2v for each pair (same corpus / different
   seed, tech vs more tech, tech vs reference, tech vs literature) and method (procrustes,
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

from incremental_w2v.align.fit import fit_alignment
from incremental_w2v.align.mapping import AlignOptions
from incremental_w2v.align.output import merged_vectors
from incremental_w2v.vectors.io import LoadedVectors
from incremental_w2v.vectors.procrustes import unit_rows
from incremental_w2v.vectors.ranking import counts_of

ANALOGY_VOCAB = 30_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def head_lines(path: Path, tokens: int, parts: int = 1) -> list[list[str]]:
    """``parts`` consecutive slices of ``path``'s lines, each holding about ``tokens`` tokens."""
    slices: list[list[str]] = [[]]
    seen = 0
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            n = len(line.split())
            if not n:
                continue
            slices[-1].append(line if line.endswith("\n") else line + "\n")
            seen += n
            if seen >= tokens:
                if len(slices) == parts:
                    break
                slices.append([])
                seen = 0
    return slices


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


def similarity_items(name: str) -> list[tuple[str, str, float]]:
    items = []
    with open(datapath(name), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            a, b, score = line.strip().split("\t")[:3]
            items.append((a.lower(), b.lower(), float(score)))
    return items


def analogy_items() -> list[tuple[str, ...]]:
    with open(datapath("questions-words.txt"), encoding="utf-8") as handle:
        return [tuple(line.lower().split()) for line in handle if not line.startswith(":")]


def word_pairs(kv: KeyedVectors, items: list[tuple[str, str, float]],
               only: set[int] | None = None) -> tuple[float, set[int]]:
    """(Spearman, items covered) on a similarity set; pairs with unknown words skipped."""
    covered = {k for k, (a, b, _) in enumerate(items)
               if a in kv.key_to_index and b in kv.key_to_index and (only is None or k in only)}
    gold = [items[k][2] for k in sorted(covered)]
    pred = [float(kv.similarity(items[k][0], items[k][1])) for k in sorted(covered)]
    rho = float(spearmanr(gold, pred).statistic) if len(gold) > 2 else float("nan")
    return rho, covered


def analogies(kv: KeyedVectors, items: list[tuple[str, ...]], only: set[int] | None = None,
              restrict: int = ANALOGY_VOCAB) -> tuple[float, set[int]]:
    """3CosAdd accuracy among the ``restrict`` most frequent words, as gensim scores it.

    Batched (gensim asks one question at a time): questions with a word outside
    the restricted vocabulary are skipped; the three question words are excluded.
    """
    order = np.argsort(-np.asarray(kv.expandos["count"]), kind="stable") if "count" in \
        kv.expandos else np.arange(len(kv))
    rows = order[:restrict]
    index = {kv.index_to_key[i]: k for k, i in enumerate(rows)}
    unit = unit_rows(kv.vectors[rows]).astype(np.float32)
    answered = {k for k, q in enumerate(items)
                if len(q) == 4 and all(w in index for w in q) and (only is None or k in only)}
    if not answered:
        return float("nan"), answered
    qs = np.asarray([[index[w] for w in items[k]] for k in sorted(answered)])
    correct = 0
    for lo in range(0, len(qs), 1024):
        chunk = qs[lo:lo + 1024]
        query = unit[chunk[:, 1]] - unit[chunk[:, 0]] + unit[chunk[:, 2]]
        sims = query @ unit.T
        for col in range(3):
            sims[np.arange(len(chunk)), chunk[:, col]] = -np.inf
        correct += int(np.sum(np.argmax(sims, axis=1) == chunk[:, 3]))
    return correct / len(qs), answered


def score_group(models: list[tuple[str, KeyedVectors]]) -> list[dict[str, Any]]:
    """Scores of each model on everything it covers, and on the items that every merged
    model and the joint retrain cover (the single models are not part of that set)."""
    sets = {"ws353": similarity_items("wordsim353.tsv"),
            "simlex": similarity_items("simlex999.txt"), "analogy": analogy_items()}
    raw: dict[str, dict[str, tuple[float, set[int]]]] = {}
    for label, kv in models:
        raw[label] = {name: (analogies if name == "analogy" else word_pairs)(kv, items)
                      for name, items in sets.items()}  # type: ignore[operator]
    compared = [label for label, _ in models if "alone" not in label]
    common = {name: set.intersection(*(raw[label][name][1] for label in compared))
              for name in sets}
    rows = []
    for label, kv in models:
        row: dict[str, Any] = {"model": label, "vocab": len(kv)}
        for name, items in sets.items():
            scorer = analogies if name == "analogy" else word_pairs
            row[name] = raw[label][name][0]
            row[f"{name}_covered"] = len(raw[label][name][1])
            covers = common[name] <= raw[label][name][1]
            row[f"{name}_common"] = (scorer(kv, items, common[name])[0]  # type: ignore[operator]
                                     if covers else float("nan"))
            row[f"{name}_common_n"] = len(common[name])
            row[f"{name}_total"] = len(items)
        rows.append(row)
    return rows


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
        texts = {name: head_lines(getattr(args, name), args.tokens)[0]
                 for name in ("reference", "literature")}
        texts["tech"], texts["tech-more"] = head_lines(args.tech, args.tokens, parts=2)
        files = {}
        for name, lines in texts.items():
            files[name] = folder / f"{name}.txt"
            files[name].write_text("".join(lines), encoding="utf-8")
        for other in ("tech-more", "reference", "literature"):
            joined = folder / f"tech+{other}.txt"
            joined.write_text("".join(interleave(texts["tech"], texts[other])), encoding="utf-8")
            files[f"tech+{other}"] = joined
        log(f"corpora capped at {args.tokens} tokens each, written to {folder}")

        models: dict[str, LoadedVectors] = {}
        train_seconds: dict[str, float] = {}
        plan = [("tech", "tech", 1), ("tech#2", "tech", 2), ("reference", "reference", 1),
                ("tech-more", "tech-more", 1), ("literature", "literature", 1),
                ("tech+tech-more", "tech+tech-more", 1), ("tech+reference", "tech+reference", 1),
                ("tech+literature", "tech+literature", 1)]
        for key, corpus, seed in plan:
            models[key], train_seconds[key] = train(files[corpus], seed, args)

    target = models["tech"]
    pairs = [("same corpus, other seed", "tech#2", "tech"),
             ("tech vs more tech", "tech-more", "tech+tech-more"),
             ("tech vs reference", "reference", "tech+reference"),
             ("tech vs literature", "literature", "tech+literature")]
    methods = [("procrustes", AlignOptions()), ("procrustes+refine", AlignOptions(refine=1)),
               ("lstsq", AlignOptions(method="lstsq"))]
    align_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    for pair_label, source_key, joint_key in pairs:
        source = models[source_key]
        group: list[tuple[str, KeyedVectors]] = [("TARGET alone (tech)", target.kv),
                                                 (f"SOURCE alone ({source_key})", source.kv)]
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
                group.append((f"merge {method_label}, prefer {prefer}", kv))
        group.append((f"joint retrain ({joint_key})", models[joint_key].kv))
        eval_rows += [{"pair": pair_label, **row} for row in score_group(group)]

    print(f"Corpora capped at {args.tokens:,} tokens each; CBOW, vector_size {args.size}, "
          f"window 5, min_count 5, negative 5, {args.epochs} epochs, {args.workers} workers. "
          f"TARGET = tech (seed 1). Total {time.monotonic() - started:.0f}s.\n")
    print("| pair | method | anchors fit / held out | P@1 cos | P@1 CSLS | P@10 cos | P@10 CSLS "
          "| mean cos (random) | nbr overlap | cosine change | verdict | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in align_rows:
        h = r["held_out"]
        print(f"| {r['pair']} | {r['method']} | {r['anchors']['fit']} / {r['anchors']['held_out']} "
              f"| {h['p_at_1_cosine']:.3f} | {h['p_at_1_csls']:.3f} | {h['p_at_10_cosine']:.3f} "
              f"| {h['p_at_10_csls']:.3f} | {h['mean_cosine']:.3f} ({h['mean_cosine_random']:.3f}) "
              f"| {h['neighbour_overlap']:.2f} "
              f"| {r['distortion']['mean_abs_cosine_change']:.3f} | {r['verdict']} "
              f"| {r['seconds']:.1f} |")
    print()
    print("Scores on everything each model covers (items covered in brackets), and on the "
          "items every merged model and the joint retrain of the pair cover (common; nan: "
          "the model does not cover them all).\n")
    print("| pair | model | vocab | WS353 ρ (pairs) | WS353 common | SimLex ρ (pairs) "
          "| SimLex common | analogy (questions) | analogy common |")
    print("|---|---|---|---|---|---|---|---|---|")
    last = None
    for r in eval_rows:
        if r["pair"] != last:
            n = {k: r[f"{k}_common_n"] for k in ("ws353", "simlex", "analogy")}
            print(f"| **{r['pair']}** | *common items* | | | {n['ws353']} | | {n['simlex']} "
                  f"| | {n['analogy']} |")
            last = r["pair"]
        print(f"| | {r['model']} | {r['vocab']:,} | {r['ws353']:.3f} ({r['ws353_covered']}) "
              f"| {r['ws353_common']:.3f} | {r['simlex']:.3f} ({r['simlex_covered']}) "
              f"| {r['simlex_common']:.3f} | {r['analogy']:.3f} ({r['analogy_covered']}) "
              f"| {r['analogy_common']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"align": align_rows, "evaluation": eval_rows,
                                         "train_seconds": train_seconds}, indent=2, default=str))


if __name__ == "__main__":
    main()
