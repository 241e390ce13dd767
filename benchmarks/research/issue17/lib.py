"""Issue 17 experiments: shared code (adapted from the incremental_w2v package, not imported).

Everything here is research code: one process runs one variant (base -> update 1 ->
update 2 -> evaluation) and appends a JSON line to the work folder's results.jsonl.

Paths: every script takes ``--work`` (the study's folder: data/, models/, work/, logs/,
results.jsonl, results_ref.jsonl) and ``--data`` (the folder holding tech.txt.gz,
reference.txt.gz and literature.txt.gz), defaulting to $ISSUE17_WORK and $ISSUE17_DATA.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import pickle
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK_ENV = "ISSUE17_WORK"
DATA_ENV = "ISSUE17_DATA"
CORPORA = ["tech", "reference", "literature"]


class Paths:
    """Where the study lives; set once per process by ``configure``."""

    def __init__(self) -> None:
        self._work: Path | None = None
        self._shared: Path | None = None

    @property
    def work(self) -> Path:
        if self._work is None:
            raise RuntimeError(f"no work folder: pass --work or set ${WORK_ENV}")
        return self._work

    @property
    def shared(self) -> Path:
        if self._shared is None:
            raise RuntimeError(f"no data folder: pass --data or set ${DATA_ENV}")
        return self._shared

    @property
    def data(self) -> Path:
        """Plain (decompressed) copies of the corpora, made by setup_cache.py."""
        return self.work / "data"

    @property
    def models(self) -> Path:
        return self.work / "models"

    def set(self, work: Path | None, shared: Path | None) -> None:
        self._work = work
        self._shared = shared


PATHS = Paths()


def add_path_args(parser: argparse.ArgumentParser, data: bool = True) -> None:
    """--work (and --data) with their environment-variable defaults."""
    parser.add_argument(
        "--work", type=Path, default=os.environ.get(WORK_ENV),
        help=f"the study's work folder (created if missing): data/ (plain copies of the "
             f"corpora), models/, work/, logs/, results.jsonl, results_ref.jsonl "
             f"(default: ${WORK_ENV})")
    if data:
        parser.add_argument(
            "--data", type=Path, default=os.environ.get(DATA_ENV),
            help=f"folder holding tech.txt.gz, reference.txt.gz and literature.txt.gz "
                 f"(default: ${DATA_ENV})")


def configure(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the path arguments and point PATHS at them."""
    if args.work is None:
        parser.error(f"the work folder is required: --work DIR or ${WORK_ENV}")
    shared = getattr(args, "data", None)
    if "data" in args and shared is None:
        parser.error(f"the data folder is required: --data DIR or ${DATA_ENV}")
    if shared is not None:
        missing = [c for c in CORPORA if not (Path(shared) / f"{c}.txt.gz").is_file()]
        if missing:
            parser.error(f"{shared} lacks {', '.join(c + '.txt.gz' for c in missing)}")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    PATHS.set(Path(args.work).resolve(), Path(shared).resolve() if shared else None)


def results_dir(description: str, extra=None) -> tuple[Path, argparse.Namespace]:
    """--results DIR for the table and plot scripts (they read and write only there).

    Defaults to $ISSUE17_WORK, else this folder: the committed record of the study.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--results", type=Path, default=Path(os.environ.get(WORK_ENV) or HERE),
        help=f"folder holding results.jsonl and results_ref.jsonl; output is written there "
             f"too (default: ${WORK_ENV}, else {HERE.name}/ itself, the committed record)")
    if extra:
        extra(parser)
    args = parser.parse_args()
    return args.results, args


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def path_args() -> list[str]:
    """The path arguments of this process, to pass on to a child script."""
    out = ["--work", str(PATHS.work)]
    if PATHS._shared is not None:
        out += ["--data", str(PATHS._shared)]
    return out


def prepare_data() -> None:
    """Plain copies of the corpora and their concatenation (all.txt) in the work folder.

    The measured study made them with ``zcat X.txt.gz > data/X.txt`` and
    ``cat tech.txt reference.txt literature.txt > data/all.txt``; this does the same.
    """
    PATHS.data.mkdir(parents=True, exist_ok=True)
    for name in CORPORA:
        out = PATHS.data / f"{name}.txt"
        if out.exists():
            continue
        tmp = out.with_suffix(".tmp")
        with gzip.open(PATHS.shared / f"{name}.txt.gz", "rb") as inp, open(tmp, "wb") as w:
            shutil.copyfileobj(inp, w, 1 << 20)
        tmp.replace(out)
    out = PATHS.data / "all.txt"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as w:
            for name in CORPORA:
                with open(PATHS.data / f"{name}.txt", "rb") as inp:
                    shutil.copyfileobj(inp, w, 1 << 20)
        tmp.replace(out)


PARAMS = dict(vector_size=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=5,
              workers=2, seed=1, sg=0, hs=0)
ALPHA, MIN_ALPHA = 0.025, 0.0001

log = logging.getLogger("exp17")


# ----------------------------------------------------------------------------- cum_table
DOMAIN = 2**31 - 1


def cum_table(counts: np.ndarray, ns_exponent: float, domain: int = DOMAIN) -> np.ndarray:
    exponent = float(ns_exponent)
    powers = np.array([c**exponent if c else 0.0 for c in counts.tolist()], dtype=np.float64)
    cumulative = np.cumsum(powers)
    return np.rint(cumulative / cumulative[-1] * domain).astype(np.uint32)


def _make_cum_table(self, domain: int = DOMAIN) -> None:
    size = len(self.wv.index_to_key)
    counts = self.wv.expandos["count"][:size]
    self.cum_table = cum_table(counts, self.ns_exponent, domain)


def patch_cum_table():
    from gensim.models.word2vec import Word2Vec
    Word2Vec.make_cum_table = _make_cum_table


def sample_ints(counts: np.ndarray, sample: float) -> np.ndarray:
    retain_total = float(counts.sum())
    threshold = sample * retain_total
    with np.errstate(divide="ignore", invalid="ignore"):
        v = counts.astype(np.float64)
        prob = (np.sqrt(v / threshold) + 1) * (threshold / v)
    prob = np.where((v > 0) & (prob < 1.0), prob, 1.0)
    return (prob * (2**32 - 1)).astype(np.uint32)


# ----------------------------------------------------------------------------- corpora
def read_pass(name: str, out: Path) -> tuple[Counter, list[str], list[int], int]:
    """The update's one streaming pass over the .gz: counts + local plain working file.

    Also returns the lines and their token counts (kept in memory for the replay
    buffer in this research code; the package keeps only the buffer's sample).
    """
    counts: Counter = Counter()
    lines: list[str] = []
    ntok: list[int] = []
    with gzip.open(PATHS.shared / f"{name}.txt.gz", "rt", encoding="utf-8") as inp, \
            open(out, "w", encoding="utf-8") as w:
        for line in inp:
            line = line.rstrip("\n")
            toks = line.split()
            counts.update(toks)
            lines.append(line)
            ntok.append(len(toks))
            w.write(line)
            w.write("\n")
    return counts, lines, ntok, sum(ntok)


def corpus_lines(name: str) -> tuple[list[str], list[int]]:
    lines = (PATHS.data / f"{name}.txt").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, [len(line.split()) for line in lines]


def corpus_counts(name: str) -> Counter:
    cache = PATHS.data / f"{name}.counts.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    c: Counter = Counter()
    with open(PATHS.data / f"{name}.txt", encoding="utf-8") as f:
        for line in f:
            c.update(line.split())
    cache.write_bytes(pickle.dumps(c))
    return c


def ledger_upto(k: int) -> dict[str, int]:
    """Cumulative counts of the first k corpora, first-seen order."""
    led: dict[str, int] = {}
    for name in CORPORA[:k]:
        for w, n in corpus_counts(name).items():
            led[w] = led.get(w, 0) + n
    return led


# ----------------------------------------------------------------------------- vocab
def _keep_all(word, count, min_count):
    from gensim.utils import RULE_KEEP
    return RULE_KEEP


def grow_and_reconcile(model, ledger: dict[str, int], sentences: int) -> list[str]:
    """Admit words whose cumulative count reaches min_count; counts/sample_int/cum_table exact."""
    known = model.wv.key_to_index
    fresh = [w for w, n in ledger.items() if n >= model.min_count and w not in known]
    fresh.sort(key=lambda w: -ledger[w])
    if fresh:
        model.build_vocab_from_freq({w: ledger[w] for w in fresh}, corpus_count=sentences,
                                    update=True, trim_rule=_keep_all)
    wv = model.wv
    counts = np.array([ledger.get(w, 0) for w in wv.index_to_key], dtype=np.int64)
    wv.allocate_vecattrs(attrs=["count", "sample_int"], types=[np.int64, np.uint32])
    wv.expandos["count"][:] = counts
    wv.expandos["sample_int"][:] = sample_ints(counts, model.sample)
    model.cum_table = cum_table(counts, model.ns_exponent)
    model.corpus_total_words = int(counts.sum())
    return fresh


# ----------------------------------------------------------------------------- buffer
class TokenReservoir:
    """Uniform sample of earlier sentences under a TOKEN budget (priority sampling).

    Every sentence ever seen gets a key u ~ U(0,1) (seeded); the buffer is the set
    of sentences with the smallest keys, taken in key order while the running token
    sum stays <= budget (stop at the first that does not fit). Merging a new corpus
    = merge by key and cut again: identical to computing it over all data at once,
    and streaming-friendly (only the kept sentences and their keys are stored).
    budget=None keeps everything (upper bound "all earlier data").
    """

    def __init__(self, budget: int | None, seed: int = 1):
        self.budget = budget
        self.seed = seed
        self.keys = np.zeros(0)
        self.lines: list[str] = []
        self.ntok = np.zeros(0, dtype=np.int64)
        self.seen_sentences = 0

    @property
    def tokens(self) -> int:
        return int(self.ntok.sum())

    def absorb(self, lines: list[str], ntok: list[int]):
        rng = np.random.default_rng([self.seed, self.seen_sentences])
        keys = rng.random(len(lines))
        self.seen_sentences += len(lines)
        allk = np.concatenate([self.keys, keys])
        allt = np.concatenate([self.ntok, np.asarray(ntok, dtype=np.int64)])
        alll = self.lines + lines
        order = np.argsort(allk, kind="stable")
        if self.budget is not None:
            cs = np.cumsum(allt[order])
            keep = int(np.searchsorted(cs, self.budget, side="right"))
            order = order[:keep]
        self.keys = allk[order]
        self.ntok = allt[order]
        self.lines = [alll[i] for i in order.tolist()]

    def draw(self, tokens: int, rng: np.random.Generator) -> list[str]:
        """About ``tokens`` tokens of buffered sentences, each at most once (capped by buffer)."""
        if tokens <= 0 or not self.lines:
            return []
        perm = rng.permutation(len(self.lines))
        cs = np.cumsum(self.ntok[perm])
        n = int(np.searchsorted(cs, tokens, side="left")) + 1
        n = min(n, len(perm))
        return [self.lines[i] for i in perm[:n].tolist()]


def write_mixed(path: Path, new_lines: list[str], replay: list[str]) -> tuple[int, int]:
    """New sentences with replayed ones spread evenly between them. Returns (sentences, tokens)."""
    total = max(len(new_lines), 1)
    emitted = 0
    ntok = 0
    with open(path, "w", encoding="utf-8") as out:
        buf = []
        for i, line in enumerate(new_lines, 1):
            buf.append(line)
            due = len(replay) * i // total
            while emitted < due:
                buf.append(replay[emitted])
                emitted += 1
            if len(buf) > 20000:
                out.write("\n".join(buf))
                out.write("\n")
                buf = []
        buf.extend(replay[emitted:])
        if buf:
            out.write("\n".join(buf))
            out.write("\n")
    ntok = sum(len(x.split()) for x in new_lines) + sum(len(x.split()) for x in replay)
    return len(new_lines) + len(replay), ntok


def write_lines(path: Path, lines: list[str]) -> tuple[int, int]:
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
        out.write("\n")
    return len(lines), sum(len(line.split()) for line in lines)


# ----------------------------------------------------------------------------- training
def train_file(model, path: Path, sentences: int, tokens: int, epochs: int, a0: float, a1: float):
    model.min_alpha_yet_reached = a0
    t = time.perf_counter()
    model.train(corpus_file=str(path), total_examples=sentences, total_words=tokens,
                epochs=epochs, start_alpha=a0, end_alpha=a1)
    return time.perf_counter() - t


def restore(model):
    model.alpha = ALPHA
    model.min_alpha = MIN_ALPHA
    model.epochs = PARAMS["epochs"]
    model.min_alpha_yet_reached = MIN_ALPHA
    model.wv.vectors_lockf = np.ones(1, dtype=np.float32)


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def append_result(row: dict, path: Path | None = None):
    with open(path or PATHS.work / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
