"""Print one line per variant: metrics, then (tokens ratio, wall s, CPU s, load) per update.

    python show.py [--results DIR] [BATCH ...]     (only the given batches, e.g. 8 10 12)
"""
from lib import read_jsonl, results_dir


def main() -> None:
    root, args = results_dir(
        __doc__, lambda p: p.add_argument("batches", nargs="*", metavar="BATCH"))
    b = args.batches
    for r in read_jsonl(root / "results.jsonl"):
        if b and r['cfg']['batch'] not in b:
            continue
        m = r['metrics']
        print(r['name'][:62].ljust(62),
              f"{m['ws353']:.3f} {m['simlex']:.3f} {m['overlap10']:.3f} {m['aligned_cos']:.3f} "
              f"{100*m['analogies']:.1f} {100*m['semantic']:.1f}",
              [(round(u['ratio'], 2), round(u['seconds'], 1), round(u.get('cpu_seconds', 0), 1),
                u['load_start'][:4]) for u in r['updates']])


if __name__ == "__main__":
    main()
