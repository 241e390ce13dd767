"""Metrics of issue 17, as defined there.

- WS353 / SimLex-999: Spearman between cosine and human score over covered pairs.
- analogies: 3CosAdd on questions-words.txt among the 30,000 most frequent words of the
  model ranked by the *cumulative count over the concatenation* (ties: first-seen order);
  overall, and semantic = first five sections.
- overlap@10: for the seed-1 full retrain's 10,000 most frequent words, share of the 10
  nearest neighbours in common (neighbours searched within the vocabulary shared by
  both models, the word itself excluded), mean.
- aligned cosine: base-vocabulary words, unit rows, orthogonal Procrustes fitted on all of
  them (model -> full retrain), mean cosine.
"""
from __future__ import annotations

import numpy as np
from lib import PATHS, ledger_upto
from scipy.linalg import orthogonal_procrustes
from scipy.stats import spearmanr

_LEDGER_RANK = None
_Q = None
_PAIRS = {}
_REF = None
_BASE_WORDS = None


def ledger_rank() -> dict[str, int]:
    global _LEDGER_RANK
    if _LEDGER_RANK is None:
        led = ledger_upto(3)
        words = list(led)
        order = sorted(range(len(words)), key=lambda i: (-led[words[i]], i))
        _LEDGER_RANK = {words[i]: r for r, i in enumerate(order)}
    return _LEDGER_RANK


def unit(m):
    m = np.asarray(m, dtype=np.float32)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    n[n == 0] = 1
    return m / n


def questions():
    global _Q
    if _Q is None:
        from gensim.test.utils import datapath
        qs, sec, s = [], [], -1
        with open(datapath("questions-words.txt"), encoding="utf-8") as f:
            for line in f:
                if line.startswith(":"):
                    s += 1
                    continue
                p = line.lower().split()
                if len(p) == 4:
                    qs.append(p)
                    sec.append(s)
        _Q = (qs, np.array(sec))
    return _Q


def pairs(name):
    if name not in _PAIRS:
        from gensim.test.utils import datapath
        out = []
        with open(datapath(name), encoding="utf-8") as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                a, b, s = line.rstrip("\n").split("\t")
                out.append((a.lower(), b.lower(), float(s)))
        _PAIRS[name] = out
    return _PAIRS[name]


def model_order(kv) -> np.ndarray:
    rank = ledger_rank()
    big = 10**9
    r = np.array([rank.get(w, big) for w in kv.index_to_key], dtype=np.int64)
    return np.argsort(r, kind="stable")


def score_pairs(kv, name):
    k2i = kv.key_to_index
    a, b, h = [], [], []
    for x, y, s in pairs(name):
        if x in k2i and y in k2i:
            a.append(k2i[x])
            b.append(k2i[y])
            h.append(s)
    va, vb = unit(kv.vectors[a]), unit(kv.vectors[b])
    sims = (va * vb).sum(1)
    return float(spearmanr(sims, h).statistic), len(h)


def score_analogies(kv, order, restrict=30000):
    qs, sec = questions()
    allowed = order[:restrict]
    pos = {kv.index_to_key[r]: i for i, r in enumerate(allowed.tolist())}
    idx, secs = [], []
    for q, s in zip(qs, sec.tolist(), strict=False):
        p = [pos.get(w, -1) for w in q]
        if min(p) >= 0:
            idx.append(p)
            secs.append(s)
    idx = np.array(idx)
    secs = np.array(secs)
    space = unit(kv.vectors[allowed])
    correct = np.zeros(len(idx), dtype=bool)
    for st in range(0, len(idx), 512):
        bt = idx[st:st + 512]
        q = space[bt[:, 1]] - space[bt[:, 0]] + space[bt[:, 2]]
        sims = q @ space.T
        h = np.arange(len(bt))
        for c in range(3):
            sims[h, bt[:, c]] = -np.inf
        correct[st:st + 512] = np.argmax(sims, axis=1) == bt[:, 3]
    sem = secs < 5
    return dict(analogies=float(correct.mean()), analogies_n=len(idx),
                semantic=float(correct[sem].mean()), semantic_n=int(sem.sum()),
                syntactic=float(correct[~sem].mean()))


def neighbours(kv, query_words, shared_words, k=10):
    """Top-k neighbour ids (positions in shared_words) of each query word, itself excluded."""
    k2i = kv.key_to_index
    S = unit(kv.vectors[[k2i[w] for w in shared_words]])
    spos = {w: i for i, w in enumerate(shared_words)}
    qpos = np.array([spos[w] for w in query_words])
    out = np.zeros((len(query_words), k), dtype=np.int64)
    for st in range(0, len(qpos), 500):
        qp = qpos[st:st + 500]
        sims = S[qp] @ S.T
        sims[np.arange(len(qp)), qp] = -np.inf
        top = np.argpartition(sims, -k, axis=1)[:, -k:]
        out[st:st + 500] = top
    return out


def reference():
    """Seed-1 full retrain's kv and its neighbour lists over the full vocabulary (cached)."""
    global _REF
    if _REF is None:
        from gensim.models import Word2Vec
        m = Word2Vec.load(str(PATHS.models / "full1" / "full1.model"))
        kv = m.wv
        order = model_order(kv)
        top = [kv.index_to_key[i] for i in order[:10000].tolist()]
        _REF = dict(kv=kv, top=top, nb={})
    return _REF


def base_words():
    global _BASE_WORDS
    if _BASE_WORDS is None:
        led = ledger_upto(1)
        _BASE_WORDS = [w for w, n in led.items() if n >= 5]
    return _BASE_WORDS


def overlap_and_cosine(kv):
    ref = reference()
    fk = ref["kv"]
    if len(kv) == len(fk) and set(kv.key_to_index) == set(fk.key_to_index):
        shared = fk.index_to_key
        key = "full"
    else:
        s = kv.key_to_index
        shared = [w for w in fk.index_to_key if w in s]
        key = len(shared)
    q = [w for w in ref["top"] if w in kv.key_to_index]
    if key not in ref["nb"]:
        ref["nb"][key] = neighbours(fk, q, shared)
    nb_f = ref["nb"][key]
    nb_m = neighbours(kv, q, shared)
    common = (nb_m[:, :, None] == nb_f[:, None, :]).any(axis=2).sum(axis=1) / 10.0
    bw = [w for w in base_words() if w in kv.key_to_index]
    X = unit(kv.vectors[[kv.key_to_index[w] for w in bw]]).astype(np.float64)
    Y = unit(fk.vectors[[fk.key_to_index[w] for w in bw]]).astype(np.float64)
    W, _ = orthogonal_procrustes(X, Y)
    cos = (unit(X @ W) * Y).sum(1)
    return dict(overlap10=float(common.mean()), overlap_words=len(q),
                aligned_cos=float(cos.mean()), aligned_cos_median=float(np.median(cos)),
                base_words=len(bw))


def evaluate(kv, with_ref=True):
    order = model_order(kv)
    out = {"vocab": len(kv)}
    out["ws353"], out["ws353_n"] = score_pairs(kv, "wordsim353.tsv")
    out["simlex"], out["simlex_n"] = score_pairs(kv, "simlex999.txt")
    out.update(score_analogies(kv, order))
    if with_ref:
        out.update(overlap_and_cosine(kv))
    return out
