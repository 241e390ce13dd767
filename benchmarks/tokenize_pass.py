"""One streaming pass per tokenize mode, inline and in a pool: the table behind the pool's rules.

    python benchmarks/tokenize_pass.py CORPUS.gz [--lines 60000]

Cuts the first ``--lines`` lines of CORPUS into a gzipped sample, then runs
``stream_once`` over it (read, decompress, tokenise, count, write a working
file) for each mode, inline and with 2 worker processes, side by side in
this process; and, for comparison, gensim's own ``simple_preprocess`` over
the same lines. Prints a Markdown table of wall seconds (best of 3).
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from incremental_w2v.ingest.corpus import Corpus, CorpusSpec, stream_once
from incremental_w2v.ingest.formats.catalog import TextFormat
from incremental_w2v.ingest.tokenize import TokenizeSettings

MODES = {
    "`simple`": TokenizeSettings(),
    "`regex` (`\\w+`)": TokenizeSettings(mode="regex", pattern=r"\w+"),
    "`whitespace` with `lowercase`": TokenizeSettings(mode="whitespace"),
    "`whitespace`, no lowercase, no length limits (`str.split`)": TokenizeSettings(
        mode="whitespace", lowercase=False, min_len=1, max_len=100_000),
}


def best(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--lines", type=int, default=60_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample.txt.gz"
        with gzip.open(args.corpus, "rt", encoding="utf-8") as src:
            lines = [line for _, line in zip(range(args.lines), src, strict=False)]
        sample.write_bytes(gzip.compress("".join(lines).encode()))
        out = Path(tmp) / "corpus.txt"

        def run(settings: TokenizeSettings, processes: int) -> None:
            spec = CorpusSpec(uri=str(sample), name="sample", format=TextFormat(),
                              tokenize=settings)
            with open(out, "w", encoding="utf-8") as work:
                stream_once(Corpus(spec, Path(tmp)), work, None, processes=processes)

        from gensim.utils import simple_preprocess

        tokens = sum(len(simple_preprocess(line)) for line in lines)
        print(f"{args.lines:,} lines of {args.corpus.name}, {tokens:,} tokens (simple), "
              f"load average {os.getloadavg()[0]:.1f}")
        print()
        print("| tokenize | inline | 2 processes |")
        print("|---|---:|---:|")
        gensim_s = best(lambda: [simple_preprocess(line) for line in lines])
        print(f"| gensim `simple_preprocess` alone, no reading or writing | {gensim_s:.2f} s | |")
        for label, settings in MODES.items():
            inline = best(partial(run, settings, 0))
            pooled = best(partial(run, settings, 2))
            print(f"| {label} | {inline:.2f} s | {pooled:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
