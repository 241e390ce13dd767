"""RESULTS.md = results_head.md + reference rows + one table per batch (from results.jsonl).

    python make_table.py [--results DIR]

The hand-written parts (results_head.md, results_summary.md, results_tail.md) are read from
this script's folder; the tables from DIR/results*.jsonl; DIR/RESULTS.md is (re)written.
"""
import statistics as st

from lib import HERE, read_jsonl, results_dir


def rows(path):
    return read_jsonl(path) if path.exists() else []


HDR = ("| variant | vocab | WS353 | SimLex | analogies | semantic | overlap@10 | aligned cos "
       "| tokens trained / (new x 5), u1 / u2 | wall s u1 / u2 | wall vs plain iterable u1 / u2 "
       "| wall vs plain corpus_file u1 / u2 | CPU s u1 / u2 | CPU vs plain iterable u1 / u2 "
       "| load avg 1/5/15 at start of u1; u2 |")
SEP = "|" + "---|" * 15


def main():
    root, _ = results_dir(__doc__)
    res = rows(root / "results.jsonl")
    ref = {r["name"]: r for r in rows(root / "results_ref.jsonl")}

    def mean_plain(mode, key):
        c = [r for r in res if r["cfg"]["mode"] == mode and key in r["updates"][0]]
        return [st.mean(r["updates"][i][key] for r in c) for i in (0, 1)]

    all_iter, all_cf = mean_plain("plain_iter", "seconds"), mean_plain("plain_cf", "seconds")
    cpu_iter = mean_plain("plain_iter", "cpu_seconds")

    def batch_plain(batch, mode, key):
        c = [r for r in res if r["cfg"]["mode"] == mode and r["cfg"].get("batch") == batch
             and key in r["updates"][0]]
        return [st.mean(r["updates"][i][key] for r in c) for i in (0, 1)] if c else None

    out = [(HERE / "results_head.md").read_text()]
    if (HERE / "results_summary.md").exists():
        out.append((HERE / "results_summary.md").read_text())
    out.append("\n## Reference models (computed once)\n")
    out += [HDR, SEP]
    for n in ["full1", "full2", "base", "base_iter"]:
        r = ref[n]
        out.append(f"| {n} | {r['vocab']:,} | {r['ws353']:.3f} | {r['simlex']:.3f} | "
                   f"{100*r['analogies']:.1f}% | {100*r['semantic']:.1f}% | {r['overlap10']:.3f} | "
                   f"{r['aligned_cos']:.3f} | — | {r['seconds']:.0f} (whole model) | "
                   "— | — | — | — | "
                   f"{r['load']} |")
    out.append("\nRatios: against the plain rows of the same batch when the batch has them; "
               "otherwise (marked *) against the mean of all plain runs of the session (iterable "
               f"{all_iter[0]:.1f} / {all_iter[1]:.1f} s, "
               f"corpus_file {all_cf[0]:.1f} / {all_cf[1]:.1f} s, "
               f"iterable CPU {cpu_iter[0]:.1f} / {cpu_iter[1]:.1f} s).")
    batches = []
    for r in res:
        b = r["cfg"].get("batch", "0")
        if b not in batches:
            batches.append(b)
    for b in batches:
        out.append(f"\n## Batch {b}\n")
        out += [HDR, SEP]
        bi = batch_plain(b, "plain_iter", "seconds")
        bc = batch_plain(b, "plain_cf", "seconds")
        bcpu = batch_plain(b, "plain_iter", "cpu_seconds")
        for r in res:
            if r["cfg"].get("batch", "0") != b:
                continue
            m, u = r["metrics"], r["updates"]
            ratio = " / ".join(f"{x['ratio']:.2f}" for x in u)
            wall = " / ".join(f"{x['seconds']:.1f}" for x in u)

            def rat(base, key, star, u=u):
                if base is None:
                    return "?"
                return " / ".join(f"{x.get(key, float('nan')) / y:.2f}"
                                  for x, y in zip(u, base, strict=False)) + star
            vi = rat(bi or all_iter, "seconds", "" if bi else "*")
            vc = rat(bc or all_cf, "seconds", "" if bc else "*")
            cpu = " / ".join(f"{x.get('cpu_seconds', float('nan')):.1f}" for x in u)
            cvi = rat(bcpu or cpu_iter, "cpu_seconds", "" if bcpu else "*")
            load = "; ".join(x["load_start"] for x in u)
            out.append(
                f"| {r['name']} | {m['vocab']:,} | {m['ws353']:.3f} | {m['simlex']:.3f} | "
                f"{100*m['analogies']:.1f}% | {100*m['semantic']:.1f}% | {m['overlap10']:.3f} | "
                f"{m['aligned_cos']:.3f} | {ratio} | {wall} | {vi} | {vc} | {cpu} | {cvi} | "
                f"{load} |")
    tail = HERE / "results_tail.md"
    if tail.exists():
        out.append(tail.read_text())
    (root / "RESULTS.md").write_text("\n".join(out) + "\n")
    print("\n".join(out[1:]))


if __name__ == "__main__":
    main()
