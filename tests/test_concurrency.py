"""Many runs at once on one store: one works, the others say who holds the lock or wait.

Every process here is real (forked from the fault driver, or a plain
subprocess), and so are the locks and the signals.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gensim.test.utils import datapath

from faults import Driver, Run, check_store, leftovers, lineage, readers_during
from helpers import ROOT
from test_crash_sweep import write_workspace
from test_lock_and_crash import holder_pid, wait_for

# Crash sweeps, kills, full disks and races: the slow fault tests (see README).
pytestmark = pytest.mark.faults

ROUNDS = 2


def new_corpus(folder: Path, i: int) -> Path:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    path = folder / f"new-{i:02d}.txt"
    path.write_text("".join(lines[110 + 8 * i: 118 + 8 * i]), encoding="utf-8")
    return path


def start_all(driver: Driver, n: int, argv: list[object]) -> list[Run]:
    started = [driver.start([str(a) for a in argv]) for _ in range(n)]
    return [driver.wait(pid, out) for pid, out in started]


@pytest.mark.parametrize("n", [2, 8])
def test_simultaneous_runs_one_trains_the_others_exit_75(
    driver: Driver, fast_tmp: Path, n: int
) -> None:
    folder = fast_tmp / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    assert driver.run(["add-corpus", config]).status == 0
    for round_ in range(ROUNDS):
        corpus = new_corpus(folder, round_)
        runs = start_all(driver, n, ["add-corpus", config, corpus, "--json"])
        pids = {r.pid for r in runs}
        winners = [r for r in runs if r.status == 0 and r.json()["applied"]]
        assert len(winners) == 1, [(r.status, r.stderr[-200:]) for r in runs]
        assert [a["name"] for a in winners[0].json()["applied"]] == [corpus.name]
        for run in runs:
            if run is winners[0]:
                continue
            if run.status == 0:  # came after the winner had finished: nothing left to do
                assert run.json()["applied"] == []
                continue
            assert run.status == 75, run.stderr
            named = re.search(r"locked by pid (\d+)", run.stderr)
            assert named and int(named.group(1)) in pids - {run.pid}, run.stderr
            assert "--wait" in run.stderr
        assert check_store(folder / "store", {}) == []
    versions = [r["version"] for r in lineage(folder / "store")]
    assert versions == [f"v{i:04d}" for i in range(1, ROUNDS + 2)]
    assert leftovers(folder / "store") == []


def test_simultaneous_runs_with_wait_all_succeed(driver: Driver, fast_tmp: Path) -> None:
    folder = fast_tmp / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    for round_ in range(ROUNDS):
        corpus = new_corpus(folder, round_)
        runs = start_all(driver, 8, ["add-corpus", config, corpus, "--json", "--wait", "120"])
        assert [r.status for r in runs] == [0] * 8, [r.stderr[-200:] for r in runs]
        applied = [a for r in runs for a in r.json()["applied"]]
        # The base (first round only) and the new corpus, each trained by exactly one run.
        assert sorted(a["name"] for a in applied) == sorted(
            ["a.txt", corpus.name] if round_ == 0 else [corpus.name])
    assert len(lineage(folder / "store")) == ROUNDS + 1


def test_lock_is_free_at_once_after_its_holder_is_killed(
    driver: Driver, fast_tmp: Path
) -> None:
    folder = fast_tmp / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    store = folder / "store"
    assert driver.run(["add-corpus", config]).status == 0
    fifo = folder / "incoming.txt"
    os.mkfifo(fifo)
    pid, out = driver.start(["add-corpus", str(config), str(fifo)])
    wait_for(lambda: holder_pid(store) == pid
             and any(p.name.startswith(".work-") for p in store.iterdir()))
    # Seven runs at once while it holds the lock: all refused at once, naming it.
    refused = start_all(driver, 7, ["add-corpus", config])
    assert [r.status for r in refused] == [75] * 7
    assert all(f"locked by pid {pid} " in r.stderr for r in refused)
    driver.kill(pid)
    assert driver.wait(pid, out).status == -9
    fifo.unlink()
    new_corpus(folder, 0).rename(fifo)
    after = driver.run(["add-corpus", str(config), str(fifo), "--json"])  # no --wait
    assert after.status == 0, after.stderr
    assert [a["version"] for a in after.json()["applied"]] == ["v0002"]
    assert leftovers(store) == []


READER = """
import contextlib, io, sys
from pathlib import Path
from gensim.models import KeyedVectors
from incremental_w2v.cli.main import main
config, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ok = failed = 0
while not stop.exists():
    for command in (["export", config, "--format", "word2vec-text", "--output", str(out),
                     "--force", "-q"],
                    ["status", config, "--json", "-q"],
                    ["evaluate", config, "--json", "-q"]):
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(command)
        if code != 0:
            failed += 1
            print("FAILED", command[0], code, file=sys.stderr, flush=True)
            continue
        if command[0] == "export":
            kv = KeyedVectors.load_word2vec_format(str(out))
            assert len(kv) > 100 and kv.vector_size == 8
        ok += 1
        if ok == 2:
            print("READY", flush=True)
print("RESULT", ok, failed)
"""


def test_readers_never_fail_during_20_updates_and_prunes(
    driver: Driver, fast_tmp: Path
) -> None:
    folder = fast_tmp / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    assert driver.run(["add-corpus", config]).status == 0
    stop = folder / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(config), str(folder / f"out-{i}.txt"), str(stop)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for i in range(2)
    ]
    readers_during(readers, stop,
                   lambda i: driver.run(["add-corpus", config, new_corpus(folder, i), "--json"]),
                   lambda: driver.run(["prune", config, "--keep", "2"]))
    store = folder / "store"
    assert check_store(store, {}) == [] and leftovers(store) == []
    assert json.loads(driver.run(["status", config, "--json"]).stdout)["current"] == "v0021"
