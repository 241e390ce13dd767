"""ALL_VARIANTS.md: one compact table of every variant run (same numbers as RESULTS.md).

    python compact_table.py [--results DIR]

Reads DIR/results.jsonl, writes DIR/ALL_VARIANTS.md.
"""
import statistics as st

from lib import read_jsonl, results_dir

HDR = ("| # | batch | variant | WS353 | SimLex | analog. | sem. | ovl@10 | al.cos | tokens u1/u2 "
       "| wall s u1/u2 | vs iter | vs cf | load u1; u2 |")


def main() -> None:
    root, _ = results_dir(__doc__)
    res = read_jsonl(root / "results.jsonl")

    def mp(mode, key):
        c = [r for r in res if r['cfg']['mode'] == mode and key in r['updates'][0]]
        return [st.mean(r['updates'][i][key] for r in c) for i in (0, 1)]

    ai, ac = mp('plain_iter', 'seconds'), mp('plain_cf', 'seconds')

    def bp(b, mode):
        c = [r for r in res if r['cfg']['mode'] == mode and r['cfg']['batch'] == b]
        return [st.mean(r['updates'][i]['seconds'] for r in c) for i in (0, 1)] if c else None

    out = [HDR, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(res, 1):
        m, u, b = r['metrics'], r['updates'], r['cfg']['batch']
        bi, bc = bp(b, 'plain_iter'), bp(b, 'plain_cf')

        def f(base, star, u=u):
            return "/".join(f"{x['seconds']/y:.2f}"
                            for x, y in zip(u, base, strict=False)) + star

        out.append(
            f"| {i} | {b} | {r['name']} | {m['ws353']:.3f} | {m['simlex']:.3f} | "
            f"{100*m['analogies']:.1f} | {100*m['semantic']:.1f} | {m['overlap10']:.3f} | "
            f"{m['aligned_cos']:.3f} | {u[0]['ratio']:.2f}/{u[1]['ratio']:.2f} | "
            f"{u[0]['seconds']:.0f}/{u[1]['seconds']:.0f} | {f(bi or ai, '' if bi else '*')} | "
            f"{f(bc or ac, '' if bc else '*')} | "
            f"{u[0]['load_start'].split('/')[0]}; {u[1]['load_start'].split('/')[0]} |")
    note = ("\n`*` = batch without plain rows: ratio against the mean of all plain runs of the "
            f"session (iterable {ai[0]:.1f}/{ai[1]:.1f} s, corpus_file {ac[0]:.1f}/{ac[1]:.1f} s). "
            "Loads 4-7 make single wall times unreliable; the paired batches 8, 10, 12 are the "
            "timing evidence.\n")
    (root / "ALL_VARIANTS.md").write_text(
        "# Every variant, full size\n\n" + "\n".join(out) + "\n" + note)


if __name__ == "__main__":
    main()
