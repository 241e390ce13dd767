"""Run a list of variant configs (JSON lines file) one at a time; skip names already done.

    python batch.py [--work DIR] [--data DIR] BATCH.jsonl

Each config runs in its own process (run_variant.py) and appends one row to
WORK/results.jsonl; after each, make_table.py rewrites WORK/RESULTS.md. A name already in
WORK/results.jsonl is skipped, so an interrupted batch resumes where it stopped.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from lib import HERE, PATHS, add_path_args, configure, path_args


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_path_args(parser)
    parser.add_argument("batch", type=Path, help="JSON-lines file of configs (e.g. b12.jsonl)")
    args = parser.parse_args()
    configure(parser, args)
    results = PATHS.work / "results.jsonl"
    done = set()
    if results.exists():
        with open(results) as f:
            done = {json.loads(line)["name"] for line in f}
    with open(args.batch) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cfg = json.loads(line)
            if cfg["name"] in done:
                continue
            print("RUN", cfg["name"], flush=True)
            subprocess.run([sys.executable, str(HERE / "run_variant.py"), *path_args(),
                            json.dumps(cfg)], check=False)
            subprocess.run([sys.executable, str(HERE / "make_table.py"),
                            "--results", str(PATHS.work)], stdout=subprocess.DEVNULL,
                           check=False)
    print("BATCH DONE", flush=True)


if __name__ == "__main__":
    main()
