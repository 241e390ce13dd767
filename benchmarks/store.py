"""The same update against a local store and a store on S3 (moto's server on loopback).

    python benchmarks/store.py [--base BASE] [--update UPDATE] [--tokens N]
                              [--vector-size 100] [--epochs 5] [--versions 100] [--json]

Without corpora, gensim's ``lee_background.cor`` is split in two (base, update).
For each store: the base is committed, then each measured run is its own
``incw2v`` process (as cron runs it), timed from process start to exit:

- ``update``: ``add-corpus`` applying UPDATE as one new version;
- ``no-op``: ``add-corpus`` with nothing new (from a host whose cache already has
  the current version's meta.json, and from a new host with an empty cache);
- ``no-op, N versions``: the same on a store of N versions (N-1 small updates).

No-op times are the median of ``--repeat`` runs (default 5).

In each child, botocore's event system counts the S3 requests (by operation),
the bytes sent in request bodies and the bytes received (Content-Length of the
replies), in total and for the commit itself (``Store.commit``: the upload of
the version and the manifest's conditional write). The S3 server runs in this
process, on 127.0.0.1: the figures are the protocol's cost without a network's
latency (each request to real S3 adds a round trip of some 10-50 ms).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent

CHILD = r"""
import json, sys, time
started = time.perf_counter()
import botocore.session
from incremental_w2v.store import store as store_module

counts = {"total": {}, "commit": {}}
sent = {"total": 0, "commit": 0}
received = {"total": 0, "commit": 0}
phase = ["total"]

def before(params, model, **_):
    for p in {"total", phase[0]}:
        counts[p][model.name] = counts[p].get(model.name, 0) + 1

def sending(request, **_):  # every attempt, as prepared: what goes on the wire
    size = int(request.headers.get("Content-Length") or 0)
    for p in {"total", phase[0]}:
        sent[p] += size

def after(http_response, **_):
    size = int(http_response.headers.get("content-length") or 0)
    for p in {"total", phase[0]}:
        received[p] += size

original = botocore.session.Session.create_client
def create_client(session, *args, **kw):
    client = original(session, *args, **kw)
    client.meta.events.register("before-call.s3", before)
    client.meta.events.register("before-send.s3", sending)
    client.meta.events.register("after-call.s3", after)
    return client
botocore.session.Session.create_client = create_client

commit = store_module.Store.commit
def timed_commit(self, *args, **kw):
    phase[0] = "commit"
    t0 = time.perf_counter()
    try:
        return commit(self, *args, **kw)
    finally:
        phase[0] = "total"
        sent["commit_seconds"] = time.perf_counter() - t0
store_module.Store.commit = timed_commit

import atexit
def report():
    print(json.dumps({"in_process_s": time.perf_counter() - started,
                      "requests": counts, "sent": sent, "received": received}), flush=True)
atexit.register(report)
from incremental_w2v.cli.main import entry_point
sys.argv = ["incw2v", *sys.argv[1:]]
entry_point()  # as the installed command runs: exit code, fast exit and all
"""


def env_for(host: str, cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "INCW2V_HOST": host,
            "INCW2V_CACHE_DIR": str(cache), "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "OPENBLAS_NUM_THREADS": "1"}


def measured(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time, with every run's time."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return {**ordered[len(ordered) // 2], "all_s": [round(r["wall_s"], 3) for r in runs]}


def corpora(args: argparse.Namespace, folder: Path) -> tuple[Path, Path]:
    def lines_of(path: Path) -> list[str]:
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            lines, tokens = [], 0
            for line in handle:
                lines.append(line)
                tokens += len(line.split())
                if args.tokens and tokens >= args.tokens:
                    break
        return lines

    if args.base and args.update:
        base, update = lines_of(args.base), lines_of(args.update)
    else:
        from gensim.test.utils import datapath

        lee = lines_of(Path(datapath("lee_background.cor")))
        base, update = lee[: 2 * len(lee) // 3], lee[2 * len(lee) // 3:]
    (folder / "base.txt").write_text("".join(base), encoding="utf-8")
    (folder / "update.txt").write_text("".join(update), encoding="utf-8")
    return folder / "base.txt", folder / "update.txt"


def config(folder: Path, store: str, endpoint: str, base: Path, args: argparse.Namespace,
           name: str, model: str | None = None) -> Path:
    options = (f"store_options: {{endpoint_url: {endpoint}}}\n"
               if store.startswith("s3://") else "")
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        store: {store}
        {options.strip()}
        model: {model or f"{{vector_size: {args.vector_size}, epochs: {args.epochs}, "
                          "min_count: 5, workers: 2}"}
        update: {{epochs: {args.epochs}}}
        base: {{corpus: {base}}}
        """))
    return path


def measure_store(kind: str, folder: Path, endpoint: str, base: Path, update: Path,
                  args: argparse.Namespace) -> dict[str, Any]:
    store = f"s3://bench/{kind}" if kind == "s3" else str(folder / f"{kind}-store")
    cfg = config(folder, store, endpoint, base, args, kind)
    cache = folder / f"cache-{kind}"
    writer = env_for("writer", cache)
    rows: dict[str, Any] = {}
    measured(["add-corpus", str(cfg), "-q"], writer)  # the base (not measured)
    rows["update"] = measured(["add-corpus", str(cfg), str(update), "-q"], writer)
    rows["no-op"] = median([measured(["add-corpus", str(cfg), "-q"], writer)
                            for _ in range(args.repeat)])
    rows["no-op, new host"] = median([
        measured(["add-corpus", str(cfg), "-q"], env_for(f"newcomer{i}", folder / f"new-{i}"))
        for i in range(args.repeat)])
    # A store of N versions: N-1 small updates in one run, then the no-op.
    dumps = folder / f"dumps-{kind}"
    dumps.mkdir()
    lines = base.read_text(encoding="utf-8").splitlines(keepends=True)
    step = max(len(lines) - 10, 1)
    for i in range(args.versions):
        (dumps / f"d{i:04d}.txt").write_text("".join(lines[(i * 3) % step:][:10]))
    store_n = f"s3://bench/{kind}-many" if kind == "s3" else str(folder / f"{kind}-many")
    cfg_n = config(folder, store_n, endpoint, dumps / "d0000.txt", args, f"{kind}-many",
                   model="{vector_size: 8, min_count: 1, epochs: 1, workers: 1}")
    cfg_n.write_text(cfg_n.read_text() + f"queue:\n  - uri: {dumps}/\n"
                     "rehearsal: {buffer_size: 0}\nevaluation: {enabled: false}\n"
                     "drift: {record: false}\n")
    measured(["add-corpus", str(cfg_n), "-q"], writer)
    rows[f"no-op, {args.versions} versions"] = median([
        measured(["add-corpus", str(cfg_n), "-q"], writer) for _ in range(args.repeat)])
    size = 0
    if kind == "local":
        version = max((folder / f"{kind}-store" / "versions").iterdir())
        size = sum(p.stat().st_size for p in version.iterdir())
    else:
        size = rows["update"]["sent"]["commit"]
    rows["version_bytes"] = size
    return rows


def fmt_requests(counts: dict[str, int]) -> str:
    if not counts:
        return "0"
    short = {"GetObject": "GET", "PutObject": "PUT", "HeadObject": "HEAD",
             "ListObjectsV2": "LIST", "DeleteObject": "DELETE", "DeleteObjects": "DELETE*"}
    parts = ", ".join(f"{n} {short.get(op, op)}" for op, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({parts})"


def table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    lines = ["| store | run | wall (process) | S3 requests | sent | received |",
             "|---|---|---:|---|---:|---:|"]
    for kind, rows in results.items():
        for run in ("update", "no-op", "no-op, new host", f"no-op, {args.versions} versions"):
            r = rows[run]
            lines.append(
                f"| {kind} | {run} | {r['wall_s']:.2f} s | {fmt_requests(r['requests']['total'])}"
                f" | {r['sent']['total'] / 1024:,.0f} KiB | {r['received']['total'] / 1024:,.0f}"
                " KiB |")
        commit = rows["update"]
        lines.append(
            f"| {kind} | ... of which the commit | {commit['sent'].get('commit_seconds', 0):.2f} s"
            f" | {fmt_requests(commit['requests']['commit'])} | "
            f"{commit['sent']['commit'] / 1024:,.0f} KiB | "
            f"{commit['received']['commit'] / 1024:,.0f} KiB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path)
    parser.add_argument("--update", type=Path)
    parser.add_argument("--tokens", type=int, help="cap each corpus at N tokens")
    parser.add_argument("--vector-size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="no-op runs, median reported")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    os.environ.update({k: v for k, v in env_for("x", Path()).items() if k.startswith("AWS")})
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    try:
        with tempfile.TemporaryDirectory(prefix="incw2v-store-bench-") as tmp:
            folder = Path(tmp)
            base, update = corpora(args, folder)
            sizes = (update.stat().st_size, base.stat().st_size)
            results = {kind: measure_store(kind, folder, endpoint, base, update, args)
                       for kind in ("local", "s3")}
    finally:
        server.stop()
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    print(f"update: {sizes[0] / 2**20:.1f} MiB of text onto a base of "
          f"{sizes[1] / 2**20:.1f} MiB; vector_size {args.vector_size}, "
          f"{args.epochs} epochs; the new version is "
          f"{results['local']['version_bytes'] / 2**20:.1f} MiB; load average {load}")
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
