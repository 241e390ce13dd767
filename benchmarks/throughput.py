"""Throughput of an update: incw2v against plain gensim, side by side.

    python benchmarks/throughput.py CORPUS.gz [--base BASE.gz] [--epochs 5] [--tokens N]

Every case runs in its own subprocess, one after the other, on the same
corpus and parameters. Wall time is from process start to exit; CPU is the
child's (and its waited-for workers') user+system time from ``wait4``; peak
RSS is the largest sum of PSS over the child's process tree (polled from
/proc every 0.1 s: PSS, so pages a forked worker shares with its parent
count once) and ``ru_maxrss`` of the largest single process.

Cases (the issue's numbering):
  read  one read of the .gz: smart_open + simple_preprocess, no training
  1     the obvious script: re-iterable class streaming the .gz with
        smart_open, yielding simple_preprocess(line); Word2Vec build_vocab +
        train in iterable mode (a fresh model)
  2     gensim corpus_file= on an already tokenised local copy: the base
        model, build_vocab(corpus_file, update=True) + train(corpus_file)
        (making the copy is not counted)
  3     incw2v add-corpus applying the corpus as an update to the base (CLI,
        process start to exit)
  4     the same update with build_vocab(update=True) + train() in iterable
        mode over the class of (1)
  5     the same update over gensim's LineSentence (whitespace split, no Python
        tokenising): the fastest plain iterable update of an already tokenised dump
  3mc1  (3) with min_count 1 (so that repeating the text admits no more words)
  3x4   3mc1 with the corpus made 4x longer by repeating its text
  upd10 incw2v: an update with a corpus of 10% of the lineage's tokens
  full  incw2v rebuild of that lineage (base + that 10%), from scratch
Cases 3, 3mc1, 3x4, upd10 and full do the same training work as plain gensim
(no rehearsal, no scoring or drift at the commit); 3d is case 3 with the
package's defaults (replay and its epochs, scores and drift recorded).
Then load/commit times of synthetic 100k x 100 and 1M x 300 models through
the store, and the no-op run time of a store with 100 versions.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from incremental_w2v import Lineage

HERE = Path(__file__).resolve().parent
SRC = HERE.parent


# --------------------------------------------------------------------------- children


class Obvious:
    """The obvious re-iterable corpus: stream the .gz, simple_preprocess each line."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __iter__(self) -> Any:
        import smart_open
        from gensim.utils import simple_preprocess

        with smart_open.open(self.path, encoding="utf-8") as handle:
            for line in handle:
                tokens = simple_preprocess(line)
                if tokens:
                    yield tokens


def child(case: str, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if case == "read":
        tokens = sum(len(s) for s in Obvious(spec["gz"]))
        return {"tokens": tokens}
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    params = spec["params"]
    epochs = spec["epochs"]
    if case == "1":
        corpus = Obvious(spec["gz"])
        model = Word2Vec(**params)
        t = time.perf_counter()
        model.build_vocab(corpus)
        out["vocab_s"] = time.perf_counter() - t
        train_kwargs: dict[str, Any] = {"corpus_iterable": corpus,
                                        "total_examples": model.corpus_count}
    else:
        model = Word2Vec.load(spec["base_model"])
        model.workers = params["workers"]
        t = time.perf_counter()
        if case == "2":
            model.build_vocab(corpus_file=spec["txt"], update=True)
            train_kwargs = {"corpus_file": spec["txt"],
                            "total_words": model.corpus_total_words}
        else:
            corpus = Obvious(spec["gz"]) if case == "4" else LineSentence(spec["gz"])
            model.build_vocab(corpus, update=True)
            train_kwargs = {"corpus_iterable": corpus, "total_examples": model.corpus_count}
        out["vocab_s"] = time.perf_counter() - t
    wall, cpu = time.perf_counter(), time.process_time()
    model.train(epochs=epochs, **train_kwargs)
    out["train_s"] = time.perf_counter() - wall
    out["train_cores"] = (time.process_time() - cpu) / out["train_s"]
    return out


def child_models(spec: dict[str, Any]) -> dict[str, Any]:
    """Commit and load a synthetic model through the store."""
    import numpy as np
    from gensim.models import Word2Vec

    from incremental_w2v.store.store import Store
    from incremental_w2v.train.ledger import LEDGER_FILE, Ledger
    from incremental_w2v.vectors.model_file import MODEL_FORMAT

    n, dim = spec["words"], spec["dim"]
    counts = {f"w{i}": int(c) for i, c in enumerate(
        np.maximum(5, (1e7 / np.arange(1, n + 1)).astype(np.int64)))}
    model = Word2Vec(vector_size=dim, min_count=1, workers=1)
    model.build_vocab_from_freq(counts)
    store = Store.open(Path(spec["store"]), create=True)
    t = time.perf_counter()
    with store.staging() as staging:
        staging.save_model(model)
        Ledger(counts=counts, sentences=n).save(staging.path / LEDGER_FILE)
        meta = store.commit(staging, {"parent": None, "kind": "base", "corpora": [],
                                      "added": ["synthetic"], "params": {},
                                      "vocab_size": n, "model_format": MODEL_FORMAT})
    commit_s = time.perf_counter() - t
    del model
    t = time.perf_counter()
    loaded = store.load_model(meta.version)  # hash check + plain load (for training)
    load_s = time.perf_counter() - t
    assert len(loaded.wv) == n
    del loaded
    t = time.perf_counter()
    mapped = store.load_model(meta.version, mmap="r")  # read-only commands
    mmap_s = time.perf_counter() - t
    del mapped
    size = sum(p.stat().st_size for p in store.version_dir(meta.version).iterdir())
    return {"commit_s": commit_s, "load_s": load_s, "load_mmap_s": mmap_s, "bytes": size}


# --------------------------------------------------------------------------- measuring


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall, CPU (user+sys incl. waited-for children), peak tree PSS."""
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(_pss_kb(p) for p in _tree(proc.pid)))
            done.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    # Read the pipes in threads so a chatty child never blocks on a full pipe.
    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda n=n, s=s: chunks.__setitem__(n, s.read()))
               for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                         f"{chunks.get('err', b'').decode()[-3000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_pss_mb": peak[0] / 1024,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "stdout": chunks.get("out", b"").decode(),
    }


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_child(case: str, spec: dict[str, Any]) -> dict[str, Any]:
    res = run_measured([sys.executable, __file__, "--child", case, json.dumps(spec)], _env())
    res.update(json.loads(res.pop("stdout").strip().splitlines()[-1]))
    return res


def run_incw2v(config: Path, command: str = "add-corpus") -> dict[str, Any]:
    res = run_measured([sys.executable, "-m", "incremental_w2v", command, str(config),
                        "--json"], _env())
    res["result"] = json.loads(res.pop("stdout"))
    log = (config.parent / "incw2v.log").read_text()
    trained = [line for line in log.splitlines() if " cores busy" in line]
    if trained:  # "... trained E epochs on T tokens in Xs: W words/s, C cores busy"
        last = trained[-1]
        res["train_s"] = float(last.split(" tokens in ")[1].split("s:")[0])
        res["train_cores"] = float(last.rsplit(", ", 1)[1].split()[0])
    return res


# --------------------------------------------------------------------------- setting up


def cap_corpus(src: Path, dest: Path, tokens: int | None, skip_tokens: int = 0,
               repeat: int = 1) -> int:
    """Lines of ``src`` after ``skip_tokens`` tokens, up to ``tokens``; gzip, ``repeat`` times."""
    lines, seen, kept = [], 0, 0
    with gzip.open(src, "rt", encoding="utf-8") as handle:
        for line in handle:
            n = len(line.split())
            seen += n
            if seen <= skip_tokens:
                continue
            lines.append(line)
            kept += n
            if tokens is not None and kept >= tokens:
                break
    with gzip.open(dest, "wt", encoding="utf-8", compresslevel=6) as out:
        for _ in range(repeat):
            out.writelines(lines)
    return kept * repeat


def tokenised_copy(src: Path, dest: Path) -> None:
    with open(dest, "w", encoding="utf-8") as out:
        for tokens in Obvious(str(src)):
            out.write(" ".join(tokens) + "\n")


# The same training work as plain gensim's update: no replayed sentences, no scoring and
# no drift record at the commit. Case "3d" measures the defaults, which do all three.
LEAN = """\
rehearsal: {buffer_tokens: 0}
evaluation: {enabled: false}
drift: {record: false}
"""


def config_text(store: Path, base: str, queue: list[str], args: argparse.Namespace,
                lean: bool = True) -> str:
    q = "".join(f"\n  - uri: {u}" for u in queue)
    # The lean cases train as plain gensim does; the defaults pick their own epochs.
    update = f"update: {{epochs: {args.epochs}}}\n        " if lean else ""
    return (LEAN if lean else "") + textwrap.dedent(f"""\
        store: {store}
        log_file: incw2v.log
        model:
          vector_size: {args.vector_size}
          window: 5
          min_count: {args.min_count}
          negative: 5
          epochs: {args.epochs}
          workers: {args.workers}
          seed: 1
        {update}tokenize:
          mode: simple
        base:
          corpus: {base}
        """) + (f"queue:{q}\n" if queue else "")


def make_store(folder: Path, base: str, queue: list[str], args: argparse.Namespace,
               lean: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(config_text(folder / "store", base, queue, args, lean))
    return config


def updated_config(template: Path, folder: Path, base: str, queue: list[str],
                   args: argparse.Namespace, lean: bool = True) -> Path:
    """A copy of the template store, with ``queue`` to apply."""
    folder.mkdir(parents=True)
    shutil.copytree(template, folder / "store")
    config = folder / "config.yaml"
    config.write_text(config_text(folder / "store", base, queue, args, lean))
    return config


def noop_store(folder: Path, versions: int) -> Path:
    data = folder / "dumps"
    data.mkdir(parents=True)
    from gensim.test.utils import datapath

    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    for i in range(versions):
        (data / f"dump{i:04d}.txt").write_text("".join(lines[(i * 3) % 290:(i * 3) % 290 + 10]))
    config = folder / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        store: {folder / 'store'}
        model: {{vector_size: 8, min_count: 1, epochs: 1, workers: 1}}
        base: {{corpus: {data / 'dump0000.txt'}}}
        queue:
          - uri: {data}/
        """))
    subprocess.run([sys.executable, "-m", "incremental_w2v", "add-corpus", "-q", str(config)],
                   env=_env(), check=True, stdout=subprocess.DEVNULL)
    return config


# --------------------------------------------------------------------------- the table


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, nargs="?",
                        help="the update corpus (.gz, one text per line)")
    parser.add_argument("--base", type=Path, help="base corpus (default: the tokens of CORPUS "
                        "after the first --tokens)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tokens", type=int, help="cap the update corpus at N tokens")
    parser.add_argument("--vector-size", type=int, default=100)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip", default="", help="comma-separated cases to skip "
                        "(e.g. 1,3x4,models,noop)")
    parser.add_argument("--json", type=Path, help="also write all figures to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, spec = args.child
        sys.path.insert(0, str(SRC))
        result = child_models(json.loads(spec)) if case == "models" else child(
            case, json.loads(spec))
        print(json.dumps(result))
        return
    if args.corpus is None:
        parser.error("give the corpus")
    skip = set(filter(None, args.skip.split(",")))
    params = {"vector_size": args.vector_size, "window": 5, "min_count": args.min_count,
              "negative": 5, "workers": args.workers, "seed": 1, "epochs": args.epochs}
    work = Path(tempfile.mkdtemp(prefix="incw2v-throughput-"))
    figures: dict[str, Any] = {"load_before": _load(), "cores": os.cpu_count()}
    rows: dict[str, dict[str, Any]] = {}
    try:
        print(f"setting up in {work} (load {figures['load_before']})", file=sys.stderr)
        upd = work / "update.txt.gz"
        tokens = cap_corpus(args.corpus, upd, args.tokens)
        base = work / "base.txt.gz"
        base_tokens = (cap_corpus(args.base, base, args.tokens) if args.base
                       else cap_corpus(args.corpus, base, args.tokens, skip_tokens=tokens))
        txt = work / "update.txt"
        tokenised_copy(upd, txt)
        # With a replay buffer, so that case 3d has sentences to replay (the lean cases
        # run with buffer_tokens 0 and replay nothing).
        template_cfg = make_store(work / "template", str(base), [], args, lean=False)
        subprocess.run([sys.executable, "-m", "incremental_w2v", "add-corpus", "-q",
                        str(template_cfg)], env=_env(), check=True, stdout=subprocess.DEVNULL)
        template = work / "template" / "store"
        # The plain cases start from the same base, as the gensim model file a user has.
        base_model = str(work / "base.model")
        Lineage(template_cfg).export("model", base_model, "v0001")
        spec = {"gz": str(upd), "txt": str(txt), "base_model": base_model, "params": params,
                "epochs": args.epochs}
        figures.update(tokens=tokens, base_tokens=base_tokens, epochs=args.epochs)

        def note(name: str, res: dict[str, Any], words: int) -> None:
            res["words_per_s"] = words * (args.epochs if name != "read" else 1) / res["wall_s"]
            res["cores"] = res["cpu_s"] / res["wall_s"]
            rows[name] = res
            print(f"  {name}: {res['wall_s']:.1f}s", file=sys.stderr)

        for case in ("read", "1", "2", "4", "5"):
            if case not in skip:
                note(case, run_child(case, spec), tokens)
        if "3" not in skip:
            cfg = updated_config(template, work / "case3", str(base), [str(upd)], args)
            note("3", run_incw2v(cfg), tokens)
        if "3d" not in skip:
            cfg = updated_config(template, work / "case3d", str(base), [str(upd)], args,
                                 lean=False)
            note("3d", run_incw2v(cfg), tokens)
        if "3x4" not in skip:
            # Repeating the text keeps its words, but with min_count > 1 more of them
            # would be admitted (and the model grow): compare at min_count 1, where
            # both runs admit every word, so only the corpus length differs.
            every = argparse.Namespace(**{**vars(args), "min_count": 1})
            cfg = updated_config(template, work / "case3mc1", str(base), [str(upd)], every)
            note("3mc1", run_incw2v(cfg), tokens)
            upd4 = work / "update4.txt.gz"
            tokens4 = cap_corpus(args.corpus, upd4, args.tokens, repeat=4)
            cfg = updated_config(template, work / "case3x4", str(base), [str(upd4)], every)
            note("3x4", run_incw2v(cfg), tokens4)
        if "upd10" not in skip:
            # The lineage: the base plus an update of a tenth of the total (base/9 tokens).
            small = work / "small.txt.gz"
            small_tokens = cap_corpus(args.corpus, small, max(base_tokens // 9, 1))
            cfg = updated_config(template, work / "upd10", str(base), [str(small)], args)
            note("upd10", run_incw2v(cfg), small_tokens)
            # A full retrain of the same lineage (base + that update), end to end.
            note("full", run_incw2v(cfg, "rebuild"), base_tokens + small_tokens)
        if "models" not in skip:
            for words, dim in ((100_000, 100), (1_000_000, 300)):
                res = run_child("models", {"words": words, "dim": dim,
                                           "store": str(work / f"models-{words}")})
                rows[f"model {words // 1000}k x {dim}"] = res
                shutil.rmtree(work / f"models-{words}", ignore_errors=True)
                print(f"  model {words}x{dim}: {res}", file=sys.stderr)
        if "noop" not in skip:
            cfg = noop_store(work / "noop", 100)
            times = []
            for _ in range(5):
                res = run_measured([sys.executable, "-m", "incremental_w2v", "add-corpus",
                                    str(cfg), "--json"], _env())
                out = json.loads(res["stdout"])
                assert not out["applied"] and len(out["skipped"]) >= 99, out
                times.append(res["wall_s"])
            rows["noop"] = {"wall_s": sorted(times)[len(times) // 2], "runs": times,
                            "in_process_s": out["seconds"]}
        figures["load_after"] = _load()
        figures["rows"] = rows
        print_table(figures)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)


LABELS = {
    "read": "one read: .gz + simple_preprocess",
    "1": "(1) obvious script, iterable, fresh",
    "2": "(2) gensim corpus_file update",
    "3": "(3) incw2v add-corpus update",
    "3d": "(3) with the defaults: replay, scores, drift",
    "4": "(4) gensim iterable update",
    "5": "(5) gensim iterable update, LineSentence",
    "3mc1": "(3) at min_count 1",
    "3x4": "(3) at min_count 1, corpus 4x longer",
    "upd10": "incw2v update, 10% of lineage",
    "full": "incw2v rebuild of that lineage",
}


def print_table(f: dict[str, Any]) -> None:
    rows = f["rows"]
    print(f"corpus: {f['tokens']:,} tokens (base {f['base_tokens']:,}), epochs {f['epochs']}, "
          f"{f['cores']} cores; load average before {f['load_before']}, after "
          f"{f.get('load_after')}")
    print()
    print("| case | wall s | words/s | CPU s | CPU cores (whole run) | train s | cores in "
          "training | peak PSS MB (tree) | max RSS MB (1 proc) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in LABELS.items():
        r = rows.get(key)
        if not r:
            continue
        train = f"{r['train_s']:.1f}" if "train_s" in r else ""
        cores = f"{r['train_cores']:.2f}" if "train_cores" in r else ""
        print(f"| {label} | {r['wall_s']:.1f} | {r['words_per_s']:,.0f} | {r['cpu_s']:.1f} | "
              f"{r['cores']:.2f} | "
              f"{train} | {cores} | {r['peak_pss_mb']:.0f} | {r['maxrss_mb']:.0f} |")
    print()
    ratios = []
    if "3" in rows and "4" in rows:
        ratios.append(("(3) / (4) wall", rows["3"]["wall_s"] / rows["4"]["wall_s"], "<= 0.5"))
    if "3" in rows and "2" in rows and "read" in rows:
        limit = rows["2"]["wall_s"] + rows["read"]["wall_s"]
        ratios.append(("(3) / ((2) + one read) wall", rows["3"]["wall_s"] / limit, "<= 1.25"))
    if "3" in rows and "1" in rows:
        ratios.append(("(3) / (1) wall", rows["3"]["wall_s"] / rows["1"]["wall_s"], ""))
    if "3d" in rows:
        for key in ("4", "5", "2"):
            if key in rows:
                ratios.append((f"(3) with the defaults / ({key}) wall",
                               rows["3d"]["wall_s"] / rows[key]["wall_s"], ""))
    if "3" in rows and "4" in rows:
        # Less sensitive to other load on the machine than wall time.
        ratios.append(("(3) / (4) CPU seconds", rows["3"]["cpu_s"] / rows["4"]["cpu_s"], ""))
    if "3" in rows and "train_cores" in rows["3"]:
        ratios.append(("(3) cores busy in training", rows["3"]["train_cores"], ">= 1.8"))
    if "3mc1" in rows and "3x4" in rows:
        ratios.append(("(3) peak PSS at 4x corpus / at 1x (min_count 1)",
                       rows["3x4"]["peak_pss_mb"] / rows["3mc1"]["peak_pss_mb"], "< 1.10"))
    if "upd10" in rows and "full" in rows:
        ratios.append(("10% update / rebuild of the lineage, wall",
                       rows["upd10"]["wall_s"] / rows["full"]["wall_s"], "<= 0.15"))
    if ratios:
        print("| ratio | measured | target |")
        print("|---|---:|---|")
        for name, value, target in ratios:
            print(f"| {name} | {value:.2f} | {target} |")
        print()
    models = [(k, v) for k, v in rows.items() if k.startswith("model ")]
    if models:
        print("| model | size on disk MB | commit s | load s (verify + plain) | "
              "load s (verify + mmap='r') |")
        print("|---|---:|---:|---:|---:|")
        for k, v in models:
            print(f"| {k[6:]} | {v['bytes'] / 2**20:.0f} | {v['commit_s']:.2f} | "
                  f"{v['load_s']:.2f} | {v['load_mmap_s']:.2f} |")
        print()
    if "noop" in rows:
        n = rows["noop"]
        print(f"no-op run, store with 100 versions: {n['wall_s']:.2f}s median of "
              f"{len(n['runs'])} (process start to exit; {n['in_process_s']:.3f}s inside "
              "add_corpus)")


if __name__ == "__main__":
    main()
