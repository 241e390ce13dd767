"""How close is an incremental lineage to a full retrain, and at what cost? One table.

Usage, at full size (about half an hour on 2 cores; ``--tokens N`` is a quick mode that
caps each corpus at its first N tokens):

    python benchmarks/fidelity.py DATA/tech.txt.gz DATA/reference.txt.gz \\
        DATA/literature.txt.gz [--plot docs/fidelity.png] [--only NAME ...]

The first corpus is the base, the other two are updates. Every row starts from the
same base and applies the same two updates:

- **incw2v defaults**: ``incw2v add-corpus`` with the package's defaults, as a user
  runs it (``Lineage.add_corpus``), timed per update from the start of the run to the
  commit (reading, training, scoring and saving included);
- **variants**: the same with one or two settings changed (``VARIANTS``);
- **plain gensim updates**: what a user writes without incw2v: ``LineSentence`` over
  the compressed corpus, ``build_vocab(update=True)`` and
  ``train(total_examples=model.corpus_count, epochs=model.epochs)``, from a base
  trained the same way; timed per update;
- **full retrains** on the concatenation (``incw2v rebuild``: ``corpus_file`` mode),
  seed 1 (the reference) and seed 2 (the noise floor: two retrains differ this much).

Metrics (as issue #17 defines them): WS353 and SimLex-999 (Spearman); analogies:
gensim's questions-words among the 30,000 most frequent words of the concatenation
(ranked by its counts, the same for every row), overall and semantic (the first five
sections); overlap@10: mean share of the 10 nearest neighbours in common with the
seed-1 retrain, for its 10,000 most frequent words, neighbours searched within the
shared vocabulary; aligned cosine: mean cosine between each base-vocabulary word's
vector and its vector in the seed-1 retrain, after orthogonal Procrustes on those
words. Cost: tokens trained per update (new and replayed, all epochs) as a multiple of
the new tokens times the epochs (what plain gensim trains), and wall time per update,
also as a ratio to plain gensim's update of the same corpus, measured in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.stats import spearmanr

from incremental_w2v import Lineage
from incremental_w2v.store.store import Store

# Each variant: a name and the config keys it changes (merged into the defaults).
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("no rehearsal (5 epochs)", {"rehearsal": {"buffer_tokens": 0}}),
    ("flat replay, not ramped", {"rehearsal": {"schedule": "flat"}}),
    ("replay share 0.4 (5 epochs)", {"rehearsal": {"share": 0.4}}),
    ("share 0.4 + consolidation pass 0.5", {"rehearsal": {"share": 0.4, "consolidate": 0.5}}),
    ("buffer 2M tokens", {"rehearsal": {"buffer_tokens": 2_000_000}}),
    ("share 1.0, 5 epochs (2x tokens)", {"rehearsal": {"share": 1.0}, "update": {"epochs": 5}}),
    ("3 epochs per update", {"update": {"epochs": 3}}),
    ("alpha decay 0.5 across updates", {"update": {"alpha_decay": 0.5}}),
    ("old words frozen for 1 epoch", {"update": {"freeze_epochs": 1}}),
]

TOTAL_TOKENS = [0]  # tokens of all three corpora, for the retrains' cost in the plot
MODEL = {"vector_size": 100, "window": 5, "min_count": 5, "negative": 5, "sample": 0.001,
         "epochs": 5, "workers": 2, "seed": 1}


# -- corpora ---------------------------------------------------------------------------


def capped_copy(src: Path, dst: Path, tokens: int) -> None:
    """The first ``tokens`` tokens of ``src`` (whole lines), gzip-compressed like the input."""
    n = 0
    with gzip.open(src, "rt", encoding="utf-8") as inp, gzip.open(
        dst, "wt", encoding="utf-8", compresslevel=1
    ) as out:
        for line in inp:
            if n >= tokens:
                break
            n += len(line.split())
            out.write(line)


def count_tokens(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return sum(len(line.split()) for line in handle)


# -- metrics ---------------------------------------------------------------------------


def unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


@dataclass
class Reference:
    """The seed-1 full retrain and what every row is measured against."""

    kv: Any
    rank: dict[str, int]  # frequency rank in the concatenation (0 = most frequent)
    base_words: list[str]
    top: list[str] = field(default_factory=list)
    _neighbours: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.top = sorted(self.kv.index_to_key, key=self.rank.__getitem__)[:10_000]


def read_datapath(name: str) -> list[str]:
    from gensim.test.utils import datapath

    with open(datapath(name), encoding="utf-8") as handle:
        return handle.read().splitlines()


def score_pairs(kv: Any, name: str) -> float:
    rows = [line.split("\t") for line in read_datapath(name)
            if line.strip() and not line.startswith("#")]
    pairs = [(a.lower(), b.lower(), float(s)) for a, b, s in rows
             if a.lower() in kv.key_to_index and b.lower() in kv.key_to_index]
    va = unit(kv.vectors[[kv.key_to_index[a] for a, _, _ in pairs]])
    vb = unit(kv.vectors[[kv.key_to_index[b] for _, b, _ in pairs]])
    return float(spearmanr((va * vb).sum(1), [s for _, _, s in pairs]).statistic)


def score_analogies(kv: Any, rank: dict[str, int], restrict: int = 30_000
                    ) -> tuple[float, float]:
    """Accuracy overall and on the semantic sections, among the ``restrict`` most frequent."""
    allowed = sorted((w for w in kv.index_to_key if w in rank), key=rank.__getitem__)[:restrict]
    pos = {w: i for i, w in enumerate(allowed)}
    questions, sections, section = [], [], -1
    for line in read_datapath("questions-words.txt"):
        if line.startswith(":"):
            section += 1
            continue
        words = line.lower().split()
        if len(words) == 4 and all(w in pos for w in words):
            questions.append([pos[w] for w in words])
            sections.append(section)
    q, sec = np.array(questions), np.array(sections)
    space = unit(kv.vectors[[kv.key_to_index[w] for w in allowed]]).astype(np.float32)
    correct = np.zeros(len(q), dtype=bool)
    for start in range(0, len(q), 512):
        batch = q[start:start + 512]
        sims = (space[batch[:, 1]] - space[batch[:, 0]] + space[batch[:, 2]]) @ space.T
        rows = np.arange(len(batch))
        for c in range(3):
            sims[rows, batch[:, c]] = -np.inf
        correct[start:start + 512] = np.argmax(sims, axis=1) == batch[:, 3]
    return float(correct.mean()), float(correct[sec < 5].mean())


def neighbour_ids(kv: Any, queries: list[str], shared: list[str], k: int = 10) -> np.ndarray:
    """The ``k`` nearest neighbours (positions in ``shared``) of each query word."""
    space = unit(kv.vectors[[kv.key_to_index[w] for w in shared]]).astype(np.float32)
    where = {w: i for i, w in enumerate(shared)}
    rows = np.array([where[w] for w in queries])
    out = np.zeros((len(rows), k), dtype=np.int64)
    for start in range(0, len(rows), 500):
        part = rows[start:start + 500]
        sims = space[part] @ space.T
        sims[np.arange(len(part)), part] = -np.inf
        out[start:start + 500] = np.argpartition(sims, -k, axis=1)[:, -k:]
    return out


def overlap_and_cosine(kv: Any, ref: Reference) -> tuple[float, float]:
    shared = [w for w in ref.kv.index_to_key if w in kv.key_to_index]
    queries = [w for w in ref.top if w in kv.key_to_index]
    key = len(shared)
    if key not in ref._neighbours:
        ref._neighbours[key] = neighbour_ids(ref.kv, queries, shared)
    mine = neighbour_ids(kv, queries, shared)
    theirs = ref._neighbours[key]
    overlap = (mine[:, :, None] == theirs[:, None, :]).any(axis=2).sum(axis=1) / 10.0
    words = [w for w in ref.base_words if w in kv.key_to_index]
    x = unit(kv.vectors[[kv.key_to_index[w] for w in words]])
    y = unit(ref.kv.vectors[[ref.kv.key_to_index[w] for w in words]])
    w, _ = orthogonal_procrustes(x, y)
    return float(overlap.mean()), float((unit(x @ w) * y).sum(1).mean())


# -- rows ------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    kv: Any
    updates: list[dict[str, float]] = field(default_factory=list)  # per update: tokens, s
    note: str = ""
    scores: dict[str, float] = field(default_factory=dict)


@contextmanager
def quiet() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def config_text(corpora: list[Path], overrides: dict[str, Any]) -> str:
    sections: dict[str, dict[str, Any]] = {"model": dict(MODEL), "tokenize": {"mode": "whitespace"}}
    for key, value in overrides.items():
        sections.setdefault(key, {}).update(value)
    lines = ["store: store"] + [f"{k}: {json.dumps(v)}" for k, v in sections.items()]
    lines.append(f"base: {{corpus: {json.dumps(str(corpora[0]))}}}")
    lines.append(f"queue: {json.dumps([{'uri': str(c)} for c in corpora[1:]])}")
    return "\n".join(lines) + "\n"


def run_lineage(name: str, corpora: list[Path], overrides: dict[str, Any], work: Path,
                base_store: Path | None) -> tuple[Row, Lineage]:
    """Base (copied from ``base_store`` when given), then each update in its own run."""
    folder = work / name.replace(" ", "-").replace("/", "-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if base_store is not None:
        shutil.copytree(base_store, folder / "store")
    row = Row(name, None)
    lineage: Lineage | None = None
    for upto in range(1, len(corpora) + 1):
        (folder / "config.yaml").write_text(config_text(corpora[:upto], overrides))
        lineage = Lineage(folder / "config.yaml")
        started = time.perf_counter()
        with quiet():
            result = lineage.add_corpus()
        seconds = time.perf_counter() - started
        if upto == 1 or not result.applied:
            continue
        meta = Store(lineage.config.store_path).read_meta(result.current or "")
        new = meta.corpora[-1].tokens
        rehearsal = meta.update_params.get("rehearsal", {})
        trained = rehearsal.get("trained_tokens") or new * meta.update_params["epochs"]
        row.updates.append({"new": new, "trained": trained, "seconds": seconds,
                            "ratio": trained / (new * MODEL["epochs"])})
    assert lineage is not None
    store = Store(lineage.config.store_path)
    row.kv = store.load_model(store.read_manifest().current or "", mmap="r").wv
    return row, lineage


def plain_gensim(corpora: list[Path]) -> Row:
    """What a user writes without incw2v: LineSentence, build_vocab(update=True), train."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    row = Row("plain gensim updates", None)
    with quiet():
        model = Word2Vec(LineSentence(str(corpora[0])), **MODEL)
        for path in corpora[1:]:
            started = time.perf_counter()
            sentences = LineSentence(str(path))
            model.build_vocab(sentences, update=True)
            model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
            seconds = time.perf_counter() - started
            new = count_tokens(path)
            row.updates.append({"new": new, "trained": new * model.epochs, "seconds": seconds,
                                "ratio": 1.0})
    row.kv = model.wv
    return row


def measure(row: Row, ref: Reference) -> None:
    row.scores["ws353"] = score_pairs(row.kv, "wordsim353.tsv")
    row.scores["simlex"] = score_pairs(row.kv, "simlex999.txt")
    row.scores["analogies"], row.scores["semantic"] = score_analogies(row.kv, ref.rank)
    if row.kv is not ref.kv:
        row.scores["overlap"], row.scores["cosine"] = overlap_and_cosine(row.kv, ref)


# -- output ----------------------------------------------------------------------------


def table(rows: list[Row], ref: Reference, plain: Row) -> str:
    full_vocab = set(ref.kv.key_to_index)
    head = ("| model | vocab = full retrain | WS353 | SimLex | analogies, top 30k | semantic | "
            "neighbour overlap@10 with full | aligned cosine of base words to full | "
            "tokens trained / (new x epochs), per update | wall s per update | "
            "wall / plain gensim's update |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        s = row.scores
        vocab = set(row.kv.key_to_index)
        same = "yes" if vocab == full_vocab else f"no ({len(full_vocab - vocab):,} words lost)"
        ov = "—" if "overlap" not in s else f"{s['overlap']:.3f}"
        cos = "—" if "cosine" not in s else f"{s['cosine']:.3f}"
        if row.updates:
            tokens = " / ".join(f"{u['ratio']:.2f}" for u in row.updates)
            wall = " / ".join(f"{u['seconds']:.0f}" for u in row.updates)
            rel = " / ".join(f"{u['seconds'] / p['seconds']:.2f}"
                             for u, p in zip(row.updates, plain.updates, strict=True))
        else:
            tokens = wall = rel = "—"
        out.append(f"| {row.name} | {same} | {s['ws353']:.3f} | {s['simlex']:.3f} | "
                   f"{100 * s['analogies']:.1f}% | {100 * s['semantic']:.1f}% | {ov} | {cos} | "
                   f"{tokens} | {wall} | {rel} |")
    return "\n".join(out)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r.updates and "overlap" in r.scores]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, metric, label in ((axes[0], "overlap", "neighbour overlap@10 with the full retrain"),
                              (axes[1], "analogies", "analogies, top 30k (accuracy)")):
        for r in points:
            cost = sum(u["trained"] for u in r.updates) / sum(
                u["new"] * MODEL["epochs"] for u in r.updates)
            ax.scatter(cost, r.scores[metric], s=40 if r.name != "incw2v defaults" else 90)
            ax.annotate(r.name, (cost, r.scores[metric]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        new = sum(u["new"] for u in points[0].updates) / len(points[0].updates)
        for r in rows:
            if r.name.startswith("full retrain") and metric in r.scores:
                # A retrain instead of an update trains on everything: all tokens / new ones.
                ax.axhline(r.scores[metric], linestyle=":", color="grey")
                ax.scatter(TOTAL_TOKENS[0] / new, r.scores[metric], marker="x", color="grey")
                ax.annotate(r.name, (TOTAL_TOKENS[0] / new, r.scores[metric]), fontsize=7,
                            color="grey", xytext=(-60, 5), textcoords="offset points")
        ax.set_xlabel("tokens trained per update / (new tokens x epochs)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle("Quality against cost of an update (full retrains dotted)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs=3, type=Path, metavar="CORPUS",
                        help="base, then two updates (e.g. tech, reference, literature)")
    parser.add_argument("--tokens", type=int, default=None, metavar="N",
                        help="quick mode: cap each corpus at its first N tokens")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the stores here (default: a temporary folder, removed)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="run only these variants (the defaults, plain gensim and the "
                        "retrains always run)")
    parser.add_argument("--plot", type=Path, default=None, help="write the quality/cost plot")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="fidelity-"))
    work.mkdir(parents=True, exist_ok=True)
    corpora = [p.resolve() for p in args.corpora]
    if args.tokens:
        capped = []
        for path in corpora:
            dst = work / f"cap-{path.name}"
            capped_copy(path, dst, args.tokens)
            capped.append(dst)
        corpora = capped
    load = os.getloadavg()
    started = time.perf_counter()

    plain = plain_gensim(corpora)
    defaults, lineage = run_lineage("incw2v defaults", corpora, {}, work, None)
    base_store = work / "base-store"
    shutil.rmtree(base_store, ignore_errors=True)
    shutil.copytree(lineage.config.store_path, base_store)
    # Keep only the base: every variant starts from it.
    store = Store(base_store)
    manifest = store.read_manifest()
    for entry in manifest.versions[1:]:
        shutil.rmtree(store.version_dir(entry.version))
    manifest.versions = manifest.versions[:1]
    manifest.current = manifest.versions[0].version
    store.write_manifest(manifest)

    with quiet():
        first = lineage.rebuild()
        second = lineage.rebuild(seed=2)
    rebuilt = Store(lineage.config.store_path)
    full1 = Row("full retrain, seed 1", rebuilt.load_model(first.version, mmap="r").wv)
    full2 = Row("full retrain, seed 2 (noise floor)",
                rebuilt.load_model(second.version, mmap="r").wv)
    counts = full1.kv.expandos["count"]
    order = np.argsort(-np.asarray(counts), kind="stable")
    rank = {full1.kv.index_to_key[i]: r for r, i in enumerate(order.tolist())}
    base_kv = rebuilt.load_model("v0001", mmap="r").wv
    ref = Reference(full1.kv, rank, list(base_kv.index_to_key))

    rows = [defaults]
    for name, overrides in VARIANTS:
        if args.only is not None and name not in args.only:
            continue
        row, _ = run_lineage(name, corpora, overrides, work, base_store)
        rows.append(row)
    rows += [plain, full1, full2]
    for row in rows:
        measure(row, ref)

    TOTAL_TOKENS[0] = sum(count_tokens(p) for p in corpora)
    sizes = ", ".join(f"{p.name} {count_tokens(p):,}" for p in corpora)
    print(f"corpora: {sizes} tokens; model {MODEL}; {os.cpu_count()} cores; load average "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f}/{os.getloadavg()[1]:.1f}/{os.getloadavg()[2]:.1f} at the "
          f"end; {time.perf_counter() - started:.0f} s in all")
    print()
    print(table(rows, ref, plain))
    if args.plot:
        plot(rows, args.plot)
        print(f"\nplot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(
            [{"name": r.name, "scores": r.scores, "updates": r.updates} for r in rows], indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
