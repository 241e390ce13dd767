"""Compute once and cache: plain copies of the corpora, counts, base model (corpus_file,
ledger vocab), iterable base (the obvious user script), full retrains seed 1 and 2 on the
concatenation, and their evaluations (WORK/results_ref.jsonl).

    python setup_cache.py [--work DIR] [--data DIR]

Every step is skipped when its output exists, so a second run only evaluates what is missing.
"""
import argparse
import json
import logging
import time

from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
from lib import (
    PARAMS,
    PATHS,
    add_path_args,
    append_result,
    configure,
    corpus_counts,
    ledger_upto,
    loadavg,
    patch_cum_table,
    prepare_data,
)

patch_cum_table()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path_args(parser)
    configure(parser, parser.parse_args())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    prepare_data()
    for c in ["tech", "reference", "literature"]:
        corpus_counts(c)
    t_tok = {c: sum(corpus_counts(c).values()) for c in ["tech", "reference", "literature"]}
    print("tokens", t_tok, flush=True)

    # full retrains
    for seed in (1, 2):
        d = PATHS.models / f"full{seed}"
        if (d / f"full{seed}.model").exists():
            continue
        d.mkdir(parents=True, exist_ok=True)
        la = loadavg()
        t = time.perf_counter()
        m = Word2Vec(corpus_file=str(PATHS.data / "all.txt"), **{**PARAMS, "seed": seed})
        dt = time.perf_counter() - t
        m.save(str(d / f"full{seed}.model"))
        (d / "time.json").write_text(json.dumps({"seconds": dt, "load": la, "load_end": loadavg()}))
        print(f"full{seed} {dt:.1f}s vocab {len(m.wv)}", flush=True)

    # check vocabulary = ledger admitted
    led = ledger_upto(3)
    full = Word2Vec.load(str(PATHS.models / "full1" / "full1.model"))
    adm = {w for w, n in led.items() if n >= 5}
    assert adm == set(full.wv.key_to_index), (len(adm), len(full.wv))
    bad = sum(1 for w in full.wv.index_to_key if full.wv.get_vecattr(w, "count") != led[w])
    print("full vocab == ledger admitted; count mismatches:", bad, flush=True)

    # base (corpus_file, vocab from the ledger, as training.train_base)
    d = PATHS.models / "base"
    if not (d / "base.model").exists():
        d.mkdir(parents=True, exist_ok=True)
        la = loadavg()
        t = time.perf_counter()
        lt = ledger_upto(1)
        m = Word2Vec(**PARAMS)
        with open(PATHS.data / "tech.txt") as f:
            sentences = sum(1 for _ in f)
        m.build_vocab_from_freq(lt, corpus_count=sentences)
        m.train(corpus_file=str(PATHS.data / "tech.txt"), total_examples=m.corpus_count,
                total_words=sum(lt.values()), epochs=PARAMS["epochs"])
        dt = time.perf_counter() - t
        m.save(str(d / "base.model"))
        (d / "time.json").write_text(json.dumps({"seconds": dt, "load": la}))
        print(f"base {dt:.1f}s vocab {len(m.wv)}", flush=True)

    # iterable base (the obvious script: LineSentence over the .gz)
    d = PATHS.models / "base_iter"
    if not (d / "base_iter.model").exists():
        d.mkdir(parents=True, exist_ok=True)
        la = loadavg()
        t = time.perf_counter()
        m = Word2Vec(LineSentence(str(PATHS.shared / "tech.txt.gz")), **PARAMS)
        dt = time.perf_counter() - t
        m.save(str(d / "base_iter.model"))
        (d / "time.json").write_text(json.dumps({"seconds": dt, "load": la}))
        print(f"base_iter {dt:.1f}s vocab {len(m.wv)}", flush=True)

    import evalm
    for name in ["full1", "full2", "base", "base_iter"]:
        f = PATHS.work / "results_ref.jsonl"
        done = []
        if f.exists():
            with open(f) as rows:
                done = [json.loads(line)["name"] for line in rows]
        if name in done:
            continue
        m = Word2Vec.load(str(PATHS.models / name / f"{name}.model"))
        t = time.perf_counter()
        r = evalm.evaluate(m.wv)
        r["eval_seconds"] = time.perf_counter() - t
        r["name"] = name
        r.update(json.loads((PATHS.models / name / "time.json").read_text()))
        print(name, r, flush=True)
        append_result(r, f)


if __name__ == "__main__":
    main()
