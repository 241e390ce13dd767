"""Aligned cosine of base words (and overlap) by frequency band / by share of evidence in tech.

    python analyse.py [--work DIR] MODEL [MODEL ...]

MODEL: path of a saved model, or 'full2', 'base', 'base_iter' (the cached ones in WORK/models).
"""
import argparse

import evalm
import numpy as np
from gensim.models import Word2Vec
from lib import PATHS, add_path_args, configure, ledger_upto
from scipy.linalg import orthogonal_procrustes


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path_args(parser, data=False)
    parser.add_argument("models", nargs="+", metavar="MODEL")
    args = parser.parse_args()
    configure(parser, args)
    ref = evalm.reference()["kv"]
    tech = ledger_upto(1)
    cum = ledger_upto(3)
    bw = evalm.base_words()
    tc = np.array([tech[w] for w in bw], dtype=float)
    share = np.array([tech[w] / cum[w] for w in bw])
    Y = evalm.unit(ref.vectors[[ref.key_to_index[w] for w in bw]]).astype(np.float64)
    for arg in args.models:
        path = PATHS.models / arg / f"{arg}.model" if arg in ("full2", "base", "base_iter") else arg
        kv = Word2Vec.load(str(path)).wv
        X = evalm.unit(kv.vectors[[kv.key_to_index[w] for w in bw]]).astype(np.float64)
        W, _ = orthogonal_procrustes(X, Y)
        cos = (evalm.unit(X @ W) * Y).sum(1)
        print(arg, f"mean {cos.mean():.4f}")
        for lo, hi in [(5, 10), (10, 50), (50, 500), (500, 10**12)]:
            m = (tc >= lo) & (tc < hi)
            print(f"  tech count {lo}-{hi}: n={m.sum()} cos {cos[m].mean():.4f}")
        for lo, hi in [(0, 0.5), (0.5, 0.9), (0.9, 0.999), (0.999, 1.01)]:
            m = (share >= lo) & (share < hi)
            print(f"  tech share {lo}-{hi}: n={m.sum()} cos {cos[m].mean():.4f}")
        norms = np.linalg.norm(kv.vectors[[kv.key_to_index[w] for w in bw]], axis=1)
        rn = np.linalg.norm(ref.vectors[[ref.key_to_index[w] for w in bw]], axis=1)
        print(f"  mean norm {norms.mean():.3f} (ref {rn.mean():.3f}); "
              f"rare(5-9) {norms[tc<10].mean():.3f} (ref {rn[tc<10].mean():.3f})")


if __name__ == "__main__":
    main()
