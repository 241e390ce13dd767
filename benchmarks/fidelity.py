"""How far is an incremental lineage from a full retrain? One table.

Usage (from the repository root):

    python benchmarks/fidelity.py DATA/tech.txt.gz DATA/reference.txt.gz \\
        DATA/literature.txt.gz --tokens 1000000

Builds a lineage with ``incw2v``'s library: the first corpus as the base, the
other two as updates (``add-corpus``), then a ``rebuild`` from scratch on all
three, then a second rebuild with another seed: the noise floor, i.e. how much
two full retrains on the same data differ. Prints one Markdown table: vocabulary,
WordSim353 / SimLex-999 (Spearman) and Google analogies (accuracy, restrict_vocab
30000 by cumulative count), top-10 neighbour overlap and median drift (1 - aligned
cosine after Procrustes) against the first rebuild, and wall time of each path
(reading, training, evaluation and commit included).

``--tokens N`` caps each corpus at its first N tokens (whole lines), written to a
working folder first; the copy is not timed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from incremental_w2v import Lineage
from incremental_w2v.quality.compare import compare_sides
from incremental_w2v.store.ops import version_vectors
from incremental_w2v.store.store import Store
from incremental_w2v.vectors.io import LoadedVectors


def cap_copy(src: Path, dst: Path, tokens: int | None) -> int:
    """The first ``tokens`` tokens of ``src`` (whole lines) as plain text; returns the count."""
    opener = gzip.open if src.suffix == ".gz" else open
    n = 0
    with opener(src, "rt", encoding="utf-8") as inp, open(dst, "w", encoding="utf-8") as out:
        for line in inp:
            if tokens is not None and n >= tokens:
                break
            n += len(line.split())
            out.write(line)
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs=3, type=Path, metavar="CORPUS",
                        help="base, then two updates (e.g. tech, reference, literature)")
    parser.add_argument("--tokens", type=int, default=None, metavar="N",
                        help="cap each corpus at its first N tokens")
    parser.add_argument("--vector-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--restrict", type=int, default=10000,
                        help="restrict_vocab for the count-vs-index line under the table")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the store here (default: a temporary folder, removed)")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="fidelity-"))
    work.mkdir(parents=True, exist_ok=True)
    names, sizes = [], []
    for path in args.corpora:
        name = path.name.split(".")[0]
        sizes.append(cap_copy(path, work / f"{name}.txt", args.tokens))
        names.append(name)
    config_path = work / "config.yaml"
    config_path.write_text(
        f"""store: store
model: {{vector_size: {args.vector_size}, window: 5, min_count: {args.min_count},
        negative: 5, epochs: {args.epochs}, workers: {args.workers}, seed: {args.seed}}}
update: {{epochs: {args.epochs}}}
tokenize: {{mode: whitespace}}
drift: {{sample: 2000}}
base: {{corpus: {names[0]}.txt, name: {names[0]}}}
queue:
  - {{uri: {names[1]}.txt, name: {names[1]}}}
  - {{uri: {names[2]}.txt, name: {names[2]}}}
"""
    )
    if (work / "store").exists():
        shutil.rmtree(work / "store")
    lineage = Lineage(config_path)
    config = lineage.config

    t0 = time.perf_counter()
    lineage.add_corpus()
    t_incremental = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = lineage.rebuild()
    t_rebuild = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = lineage.rebuild(seed=args.seed + 1)
    t_rebuild2 = time.perf_counter() - t0

    store = Store(config.store_path)

    def side(version: str) -> LoadedVectors:
        return version_vectors(store, version)

    reference = side(first.version)
    rows: list[tuple[str, LoadedVectors, float]] = [
        ("incremental (base + 2 updates)", side(first.replaces), t_incremental),
        ("rebuild (from scratch)", reference, t_rebuild),
        (f"rebuild, seed {args.seed + 1} (noise floor)", side(second.version), t_rebuild2),
    ]
    print(f"corpora: {', '.join(f'{n} {s:,} tokens' for n, s in zip(names, sizes, strict=True))}"
          f"; vector_size {args.vector_size}, epochs {args.epochs}, min_count {args.min_count}, "
          f"workers {args.workers}; cpu count {os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print()
    print("| model | version | vocabulary | wordsim353 | simlex999 | analogies (coverage) | "
          "overlap@10 with rebuild (top-1000 words) | median drift vs rebuild | wall time (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, s, seconds in rows:
        cmp: dict[str, Any] = compare_sides(config, reference, s).to_dict()
        sc = s.scores or {}

        def v(metric: str, sc: dict[str, Any] = sc) -> str:
            value = (sc.get(metric) or {}).get("value")
            return "n/a" if value is None else f"{value:.4f}"

        cov = (sc.get("analogies") or {}).get("coverage")
        print(f"| {label} | {s.ref} | {len(s.kv):,} | {v('wordsim353')} | {v('simlex999')} | "
              f"{v('analogies')} ({100 * (cov or 0):.0f}%) | {cmp['overlap']['mean']:.3f} "
              f"({cmp['bands'][0]['overlap']:.3f}) | "
              f"{cmp['drift']:.4f} | {seconds:.1f} |")
    inc = rows[0][1]
    print()
    print(restrict_effect(inc.kv, inc.counts, args.restrict))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def restrict_effect(kv: Any, counts: dict[str, int] | None, n: int) -> str:
    """Analogies on the incremental model restricted by count (ours) vs by index (gensim's)."""
    import numpy as np

    from incremental_w2v.quality.evaluation import (
        bundled_path,
        read_questions,
        score_analogies,
    )
    from incremental_w2v.vectors.ranking import rank_order

    questions = read_questions(bundled_path("analogies"))
    order = rank_order(kv, counts)
    by_count = score_analogies(kv, order, questions, n)
    by_index = score_analogies(kv, np.arange(len(kv)), questions, n)
    top = set(order[:n].tolist())
    share = sum(1 for i in range(min(n, len(kv))) if i in top) / min(n, len(kv))
    return (
        f"restrict_vocab={n} on the incremental model: {100 * share:.1f}% of the first {n} rows "
        f"are among the {n} most frequent words; analogies by count {by_count['value']} "
        f"({by_count['covered']} questions), by index as gensim does {by_index['value']} "
        f"({by_index['covered']} questions)"
    )


if __name__ == "__main__":
    sys.exit(main())
