"""SIGKILL at random moments of a cron-like script, and prune under readers.

The script trains a base, applies updates, prunes, applies an extra corpus and
prunes again. Each run is killed at a random time within the script's
uninterrupted duration; then the store must be consistent (``check_store``),
and running the whole script again must give the uninterrupted lineage with no
leftovers. 50 runs in CI; ``--random-kills N`` for more.

To add a command (``evaluate`` …) append it to ``SCRIPT``.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faults import Driver, check_store, leftovers, lineage
from helpers import ROOT
from test_crash_sweep import write_workspace

# Crash sweeps, kills, full disks and races: the slow fault tests (see README).
pytestmark = pytest.mark.faults

SCRIPT = [
    ["add-corpus", "{config}"],
    ["evaluate", "{config}"],
    ["prune", "{config}", "--keep", "2"],
    ["add-corpus", "{config}", "{folder}/d.txt"],
    ["prune", "{config}", "--keep", "2"],
]


def script(folder: Path) -> list[list[str]]:
    return [[a.format(config=folder / "config.yaml", folder=folder) for a in step]
            for step in SCRIPT]


def test_random_sigkill_during_base_updates_and_prune(
    driver: Driver, fast_tmp: Path, request: pytest.FixtureRequest
) -> None:
    runs = int(request.config.getoption("--random-kills"))
    template = fast_tmp / "template"
    write_workspace(template, ("b.txt", "c.txt"))
    (template / "d.txt").write_text((template / "b.txt").read_text()[::-1].lower())
    durations = []
    for attempt in range(3):  # the first run of a fresh driver is the slowest
        reference = fast_tmp / f"reference-{attempt}"
        shutil.copytree(template, reference)
        started = time.monotonic()
        done = driver.run(*script(reference))
        durations.append(time.monotonic() - started)
        assert done.status == 0, done.stderr
    duration = min(durations)
    expected = lineage(reference / "store")
    # Every version stays listed; prune deleted the arrays of the two oldest.
    assert [(r["version"], r["pruned"]) for r in expected] == [
        ("v0001", True), ("v0002", True), ("v0003", False), ("v0004", False)]

    rng = random.Random(20261201)
    problems: list[str] = []
    killed = 0
    for i in range(runs):
        folder = fast_tmp / f"run-{i}"
        shutil.copytree(template, folder)
        store = folder / "store"
        delay = rng.uniform(0.0, duration)
        crashed = driver.run(*script(folder), kill_after=delay)
        killed += crashed.status == -9
        where = f"run {i} (killed at {delay:.3f}s of {duration:.3f}s)"
        problems += [f"{where}: {p}" for p in check_store(store, {})]
        recovered = driver.run(*script(folder))
        if recovered.status != 0:
            problems.append(f"{where}: re-run exited {recovered.status}: "
                            f"{recovered.stderr[-300:]}")
            continue
        problems += [f"{where}: after re-run: {p}" for p in check_store(store, {})]
        if left := leftovers(store):
            problems.append(f"{where}: leftovers: {left}")
        if (got := lineage(store)) != expected:
            problems.append(f"{where}: lineage differs: {json.dumps(got)[:300]}")
        shutil.rmtree(folder)
    print(f"random kills: {runs} runs, {killed} killed mid-script, {len(problems)} violations")
    assert problems == []
    assert killed >= runs // 3  # the kills really land inside the script (load varies)


HOLDER = """
import sys
from pathlib import Path
from incremental_w2v.store import pins as version_lock
with version_lock.reading(Path(sys.argv[1]), sys.argv[2]):
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_prune_keeps_a_version_a_reader_holds(driver: Driver, fast_tmp: Path) -> None:
    folder = fast_tmp / "ws"
    write_workspace(folder, ("b.txt", "c.txt"))
    config = folder / "config.yaml"
    assert driver.run(["add-corpus", config]).status == 0
    store = folder / "store"
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store), "v0001"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)},
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "holding\n"
        pruned = driver.run(["prune", config, "--keep", "1"])
        assert pruned.status == 0, pruned.stderr
        assert "pruned v0002 (arrays deleted" in pruned.stdout
        assert "v0001 held open by a reader" in pruned.stdout
        assert (store / "versions" / "v0001" / "model").is_file()
        exported = driver.run(["export", config, "--version", "v0001", "--format",
                               "word2vec-text", "--output", folder / "v1.txt"])
        assert exported.status == 0, exported.stderr  # shared locks do not exclude
    finally:
        assert reader.stdin is not None
        reader.stdin.close()
        reader.wait(timeout=30)
    pruned = driver.run(["prune", config, "--keep", "1"])
    assert pruned.status == 0 and "pruned v0001 (arrays deleted" in pruned.stdout, pruned.stderr
    # Its arrays are gone; its lineage record stays.
    assert sorted(p.name for p in (store / "versions" / "v0001").iterdir()) == [
        "COMMITTED", "meta.json"]
    assert check_store(store, {}) == []
    gone = driver.run(["export", config, "--version", "v0001", "--format",
                       "word2vec-text", "--output", folder / "v1b.txt"])
    assert gone.status == 66 and "v0001 was pruned" in gone.stderr
