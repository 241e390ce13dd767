"""One variant: cached base -> update 1 (reference) -> update 2 (literature) -> evaluation.

    python run_variant.py [--work DIR] [--data DIR] '<json config>'

Needs the cache of setup_cache.py in the work folder; appends one row to its results.jsonl.

Config keys (defaults in DEFAULT):
  name         label
  mode         "recipe" | "plain_cf" | "plain_iter"
  buffer       replay buffer token budget (int), null = all earlier data, 0 = no replay
  share        replayed tokens per epoch = share x new tokens (capped by the buffer)
  resample     true: a different replay sample each epoch (one train() per epoch)
  epochs       update epochs over the new corpus
  alpha        [a0, a1] start/end of the update, or "scaled" (a0 = 0.025 x new/cumulative)
  lockf        null or {"floor": f, "power": p}: old word factor max(f, (new/cum)^p), new words 1
  lockf_epochs apply lockf only during the first N epochs (null: all)
  consolidate  null or {"tokens": x (x new tokens), "new_share": s (part of those from new
               data), "alpha": [a0, a1]}
  ramp         replay share per epoch grows linearly (same total), e.g. 0 .. 2*share
  keep         keep the final model on disk
"""
import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
from lib import (
    ALPHA,
    MIN_ALPHA,
    PARAMS,
    PATHS,
    TokenReservoir,
    add_path_args,
    append_result,
    configure,
    corpus_lines,
    grow_and_reconcile,
    ledger_upto,
    loadavg,
    patch_cum_table,
    read_pass,
    restore,
    train_file,
    write_lines,
    write_mixed,
)

patch_cum_table()

DEFAULT = dict(name="?", mode="recipe", buffer=None, share=0.0, resample=True, epochs=5,
               alpha=[ALPHA, MIN_ALPHA], lockf=None, lockf_epochs=None, consolidate=None,
               ramp=False, keep=False, seed=1, updates=["reference", "literature"],
               eval_each=False)


def lockf_array(model, old_size, new_counts, ledger, cfg, replay_fraction=0.0):
    """Per-word lock factors for the update.

    mode "newshare" (issue's idea): old word -> max(floor, (new/cum)^power), new words 1.
    mode "compensate" (importance weighting of the replay): each epoch replays a fraction
    f of all earlier tokens, so an old word gets (f*old + new) updates where a retrain
    would give it (old + new): scale its input-vector updates by (old+new)/(f*old+new),
    capped at ``cap``. New words (admitted now) get 1 (their old count is < min_count).
    """
    f = cfg["lockf"]
    wv = model.wv
    lock = np.ones(len(wv), dtype=np.float32)
    cum = wv.expandos["count"].astype(np.float64)
    newc = np.array([new_counts.get(w, 0) for w in wv.index_to_key], dtype=np.float64)
    if f.get("mode", "newshare") == "compensate":
        oldc = cum - newc
        factor = cum / np.maximum(replay_fraction * oldc + newc, 1e-9)
        lock[:] = np.clip(factor, 1.0, f.get("cap", 3.0))
        lock[old_size:] = 1.0
        return lock
    if f.get("mode") == "match":
        # Replay re-applies a fraction f of each old word's earlier occurrences per epoch, on
        # top of training it already had; a retrain would only add its new occurrences.
        # Scale old words so the update adds ~ new / (new + f * old) of what it applies.
        oldc = (cum - newc)[:old_size]
        share = newc[:old_size] / np.maximum(newc[:old_size] + replay_fraction * oldc, 1e-9)
        lock[:old_size] = np.maximum(f.get("floor", 0.0), share ** f.get("power", 1.0))
        return lock
    if f.get("mode") == "const":  # every old word the same factor, new words 1
        lock[:old_size] = f["value"]
        return lock
    share = np.where(cum > 0, newc / np.maximum(cum, 1), 1.0)[:old_size]
    lock[:old_size] = np.maximum(f.get("floor", 0.0), share ** f.get("power", 1.0))
    return lock


def recipe_update(model, name, idx, ledger, buf: TokenReservoir, cfg, work: Path):
    la0 = loadavg()
    c0 = time.process_time()
    t0 = time.perf_counter()
    wfile = work / f"{name}.work.txt"
    counts, lines, ntok, tokens = read_pass(name, wfile)
    t_read = time.perf_counter() - t0
    for w, n in counts.items():
        ledger[w] = ledger.get(w, 0) + n
    old_size = len(model.wv)
    fresh = grow_and_reconcile(model, ledger, len(lines))
    E = cfg["epochs"]
    if cfg["alpha"] == "scaled":
        a0, a1 = ALPHA * tokens / sum(ledger.values()), MIN_ALPHA
    else:
        a0, a1 = cfg["alpha"]
    rng = np.random.default_rng([cfg["seed"], idx, 7])
    replay_budget = cfg["share"] * tokens if (cfg["buffer"] != 0) else 0
    old_tokens = sum(ledger.values()) - tokens
    frac = min(1.0, min(replay_budget, buf.tokens) / max(old_tokens, 1))
    lock = lockf_array(model, old_size, counts, ledger, cfg, frac) if cfg["lockf"] else None
    replayed = 0
    trained = 0
    t_train = 0.0
    per_epoch = []
    if replay_budget > 0 and cfg["resample"]:
        if cfg["ramp"]:
            # epoch e replays share * w_e x new tokens, w_e ~ ((e + 0.5) / E)^p, mean w = 1
            pw = cfg.get("ramp_power", 1.0)
            w = [((e + 0.5) / E) ** pw for e in range(E)]
            shares = [cfg["share"] * x * E / sum(w) for x in w]
        else:
            shares = [cfg["share"]] * E
        for e in range(E):
            picks = buf.draw(int(shares[e] * tokens), rng)
            mfile = work / f"{name}.mixed.txt"
            s, tk = write_mixed(mfile, lines, picks)
            ea0 = a0 + (a1 - a0) * e / E
            ea1 = a0 + (a1 - a0) * (e + 1) / E
            if lock is not None and (cfg["lockf_epochs"] is None or e < cfg["lockf_epochs"]):
                model.wv.vectors_lockf = lock
            else:
                model.wv.vectors_lockf = np.ones(1, dtype=np.float32)
            t_train += train_file(model, mfile, s, tk, 1, ea0, ea1)
            replayed += tk - tokens
            trained += tk
            per_epoch.append(tk - tokens)
    else:
        if replay_budget > 0:
            picks = buf.draw(int(replay_budget), rng)
            mfile = work / f"{name}.mixed.txt"
            s, tk = write_mixed(mfile, lines, picks)
        else:
            mfile, s, tk = wfile, len(lines), tokens
        le = cfg["lockf_epochs"] if lock is not None else None
        if lock is not None and le is not None and le < E:
            mid = a0 + (a1 - a0) * le / E
            model.wv.vectors_lockf = lock
            t_train += train_file(model, mfile, s, tk, le, a0, mid)
            model.wv.vectors_lockf = np.ones(1, dtype=np.float32)
            t_train += train_file(model, mfile, s, tk, E - le, mid, a1)
        else:
            if lock is not None:
                model.wv.vectors_lockf = lock
            t_train += train_file(model, mfile, s, tk, E, a0, a1)
        replayed += (tk - tokens) * E
        trained += tk * E
    model.wv.vectors_lockf = np.ones(1, dtype=np.float32)
    cons_tokens = 0
    c = cfg["consolidate"]
    if c:
        total = int(c["tokens"] * tokens)
        n_new = int(c.get("new_share", 0.0) * total)
        picks = buf.draw(total - n_new, rng) if buf.lines else []
        if n_new:
            perm = rng.permutation(len(lines))
            cs = np.cumsum(np.asarray(ntok)[perm])
            k = int(np.searchsorted(cs, n_new)) + 1
            newpick = [lines[i] for i in perm[:k].tolist()]
            # old and new shuffled together
            allp = picks + newpick
            order = rng.permutation(len(allp))
            picks = [allp[i] for i in order.tolist()]
        cfile = work / f"{name}.cons.txt"
        s, tk = write_lines(cfile, picks)
        ca0, ca1 = c.get("alpha", [0.005, MIN_ALPHA])
        if c.get("lockf") and lock is not None:
            model.wv.vectors_lockf = lock
        t_train += train_file(model, cfile, s, tk, c.get("epochs", 1), ca0, ca1)
        model.wv.vectors_lockf = np.ones(1, dtype=np.float32)
        cons_tokens = tk * c.get("epochs", 1)
        trained += cons_tokens
    restore(model)
    # fold the new sentences into the buffer (after drawing: only earlier data is replayed)
    if cfg["buffer"] != 0:
        buf.absorb(lines, ntok)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    for p in work.glob(f"{name}.*"):
        p.unlink()
    return dict(corpus=name, new_tokens=tokens, new_words=len(fresh), replayed=replayed,
                consolidation=cons_tokens, trained=trained,
                ratio=trained / (tokens * PARAMS["epochs"]),
                per_epoch_ratio=(trained / E) / tokens, seconds=seconds, read_seconds=t_read,
                train_seconds=t_train, cpu_seconds=cpu, load_start=la0, load_end=loadavg(),
                buffer_tokens=buf.tokens, start_alpha=a0, replay_per_epoch=per_epoch)


def plain_update(model, name, mode):
    la0 = loadavg()
    c0 = time.process_time()
    t0 = time.perf_counter()
    if mode == "plain_cf":
        f = str(PATHS.data / f"{name}.txt")
        model.build_vocab(corpus_file=f, update=True)
        t1 = time.perf_counter()
        model.train(corpus_file=f, total_examples=model.corpus_count,
                    total_words=model.corpus_total_words, epochs=model.epochs)
    else:
        src = LineSentence(str(PATHS.shared / f"{name}.txt.gz"))
        model.build_vocab(src, update=True)
        t1 = time.perf_counter()
        model.train(src, total_examples=model.corpus_count, epochs=model.epochs)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    with open(PATHS.data / f"{name}.txt") as f:
        tokens = sum(len(line.split()) for line in f)
    return dict(corpus=name, new_tokens=tokens, replayed=0, consolidation=0,
                trained=tokens * model.epochs, ratio=1.0, per_epoch_ratio=1.0, seconds=seconds,
                read_seconds=t1 - t0, train_seconds=seconds - (t1 - t0), cpu_seconds=cpu,
                load_start=la0, load_end=loadavg())


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path_args(parser)
    parser.add_argument("config", help='JSON object, e.g. \'{"name": "x", "share": 0.5}\'')
    args = parser.parse_args()
    configure(parser, args)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    cfg = {**DEFAULT, **json.loads(args.config)}
    import evalm
    work = PATHS.work / "work" / cfg["name"].replace(" ", "_").replace("/", "_")
    work.mkdir(parents=True, exist_ok=True)
    ups = []
    evals = []
    if cfg["mode"] == "recipe":
        model = Word2Vec.load(str(PATHS.models / "base" / "base.model"))
        ledger = ledger_upto(1)
        buf = TokenReservoir(cfg["buffer"] if cfg["buffer"] else None, seed=cfg["seed"])
        if cfg["buffer"] != 0:
            lines, ntok = corpus_lines("tech")
            buf.absorb(lines, ntok)
        for i, name in enumerate(cfg["updates"]):
            u = recipe_update(model, name, i, ledger, buf, cfg, work)
            print(json.dumps(u), flush=True)
            ups.append(u)
            if cfg["eval_each"] and i < len(cfg["updates"]) - 1:
                evals.append(evalm.evaluate(model.wv))
    else:
        base = "base" if cfg["mode"] == "plain_cf" else "base_iter"
        model = Word2Vec.load(str(PATHS.models / base / f"{base}.model"))
        for name in cfg["updates"]:
            u = plain_update(model, name, cfg["mode"])
            print(json.dumps(u), flush=True)
            ups.append(u)
    t = time.perf_counter()
    r = evalm.evaluate(model.wv)
    r["eval_seconds"] = time.perf_counter() - t
    if cfg["keep"]:
        d = PATHS.models / "variants" / work.name
        d.mkdir(parents=True, exist_ok=True)
        model.save(str(d / "final.model"))
    row = dict(name=cfg["name"], cfg=cfg, updates=ups, metrics=r, mid_metrics=evals,
               load_end=loadavg(), time=time.strftime("%H:%M:%S"))
    print(json.dumps(row), flush=True)
    append_result(row)


if __name__ == "__main__":
    main()
