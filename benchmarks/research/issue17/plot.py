"""Quality vs cost: overlap@10, aligned cosine and analogies against tokens trained per update.

    python plot.py [--results DIR]     (reads DIR/results*.jsonl, writes DIR/frontier.png)

Needs matplotlib (not a dependency of the package: pip install matplotlib).
"""
import matplotlib
from lib import read_jsonl, results_dir

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen


def main() -> None:
    root, _ = results_dir(__doc__)
    rows = read_jsonl(root / "results.jsonl")
    ref = {r["name"]: r for r in read_jsonl(root / "results_ref.jsonl")}
    fig, ax = plt.subplots(1, 3, figsize=(16, 5))
    for r in rows:
        x = sum(u["trained"] for u in r["updates"]) / sum(5 * u["new_tokens"] for u in r["updates"])
        m = r["metrics"]
        mode = r["cfg"]["mode"]
        c = "red" if mode != "recipe" else ("green" if r["cfg"].get("share", 0) else "orange")
        if r["cfg"].get("lockf"):
            c = "purple"
        for a, key, scale in [(ax[0], "overlap10", 1), (ax[1], "aligned_cos", 1),
                              (ax[2], "analogies", 100)]:
            rec = r["name"].startswith("REC4") or r["name"] == "all, 0.875 ramp, 4 ep"
            a.scatter(x, m[key] * scale, c=c, s=90 if rec else 18, marker="*" if rec else "o",
                      edgecolors="k" if rec else "none")
    for a, key, scale, tgt, lab in [
            (ax[0], "overlap10", 1, 0.60, "overlap@10 with full retrain"),
            (ax[1], "aligned_cos", 1, 0.85, "aligned cosine of base words"),
            (ax[2], "analogies", 100, 36.7 - 0.5, "analogies top-30k (%)")]:
        a.axhline(tgt, ls="--", c="k", lw=0.8, label="target")
        a.axhline(ref["full2"][key] * scale, ls=":", c="b", lw=0.8, label="full retrain seed 2")
        a.axvline(1.5, ls="--", c="gray", lw=0.8)
        a.axvline(0.55, ls=":", c="gray", lw=0.8)
        a.set_xlabel("tokens trained per update / (new tokens x 5)")
        a.set_title(lab)
        a.legend(fontsize=8)
    fig.suptitle("issue 17: red = plain gensim, orange = no replay, green = token rehearsal, "
                 "purple = + lock factors;\nstars = recommended REC4 (3 seeds); "
                 "dashed grey = 1.5x token target, dotted grey ~ 0.6x-wall target")
    fig.tight_layout()
    fig.savefig(root / "frontier.png", dpi=90)


if __name__ == "__main__":
    main()
