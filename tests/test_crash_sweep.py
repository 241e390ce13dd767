"""Crash the writer at every write point, and prove nothing is lost.

Each phase below is a command run on a prepared store. An uninterrupted run
counts its write operations (W); then for every N in 1..W the command is
SIGKILLed just before and just after its N-th write, and after each kill:

- the manifest parses, every version it lists verifies (sha256) and the
  current one loads with arrays as long as its recorded vocabulary;
- every version committed before the run is still listed, byte for byte;
- a re-run exits 0 and leaves no temporary file or unlisted version folder,
  and the lineage equals the uninterrupted run's (no corpus skipped or
  applied twice);
- a second re-run changes nothing.

The same sweep over deliberately broken variants (patched in by the driver,
never in the package) must find violations, or the harness proves nothing.

To add a command (``evaluate``, ``rebuild``, ``promote`` …) add a ``Phase``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gensim.test.utils import datapath

from faults import Driver, Run, check_store, leftovers, lineage, tree_hashes, version_files

# Crash sweeps, kills, full disks and races: the slow fault tests (see README).
pytestmark = pytest.mark.faults

TINY_MODEL = """\
model: {vector_size: 8, window: 2, min_count: 2, negative: 2, epochs: 1, workers: 1, seed: 1}
update: {epochs: 1}
"""
# After an fsync or chmod the visible state is the one the next write point starts
# from, so "kill after" is swept only where the operation itself changes what is seen.
CHANGES_STATE = {"open", "rename", "remove", "mkdir", "rmdir", "rmtree", "truncate",
                 "symlink", "link"}


@dataclass
class Phase:
    """A command under test: ``prepare`` builds the store it starts from."""

    name: str
    argvs: list[list[str]]
    prepare: list[list[str]] = field(default_factory=list)
    queue: tuple[str, ...] = ("b.txt",)
    slow: bool = False  # only with --slow (covered in CI by a shorter phase)


PHASES = [
    Phase("base-and-update", [["add-corpus", "{config}", "--json"]]),
    Phase("updates", [["add-corpus", "{config}", "--json"]], queue=("b.txt", "c.txt"),
          prepare=[["add-corpus", "{base_config}"]], slow=True),
    Phase("prune", [["prune", "{config}", "--keep", "1"]], queue=("b.txt", "c.txt"),
          prepare=[["add-corpus", "{config}"]]),
    Phase("rollback", [["rollback", "{config}", "v0001"]],
          prepare=[["add-corpus", "{config}"]]),
]


def write_workspace(folder: Path, queue: tuple[str, ...]) -> None:
    folder.mkdir(parents=True)
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    for name, chunk in (("a", lines[:60]), ("b", lines[60:90]), ("c", lines[90:110])):
        (folder / f"{name}.txt").write_text("".join(chunk), encoding="utf-8")
    queue_yaml = "queue:\n" + "".join(f"  - uri: {q}\n" for q in queue) if queue else ""
    (folder / "config.yaml").write_text(
        f"store: store\n{TINY_MODEL}base: {{corpus: a.txt}}\n{queue_yaml}")
    (folder / "base.yaml").write_text(f"store: store\n{TINY_MODEL}base: {{corpus: a.txt}}\n")


def argv(template: list[str], folder: Path) -> list[str]:
    return [a.format(config=folder / "config.yaml", base_config=folder / "base.yaml")
            for a in template]


class Sweep:
    """Prepared template, reference run, and the checks for one phase."""

    def __init__(self, driver: Driver, phase: Phase, root: Path, variant: str | None = None):
        self.driver, self.phase, self.root, self.variant = driver, phase, root, variant
        self.template = root / "template"
        write_workspace(self.template, phase.queue)
        for step in phase.prepare:
            run = driver.run(argv(step, self.template))
            assert run.status == 0, run.stderr
        self.copies = 0
        reference = self.fresh()
        run = self.run(reference)
        assert run.status == 0, run.stderr
        self.writes = run.writes
        self.lineage = lineage(reference / "store")
        # Versions the command keeps: those must survive any crash byte for byte.
        self.kept = {row["version"] for row in self.lineage}

    def fresh(self) -> Path:
        self.copies += 1
        folder = self.root / f"copy-{self.copies}"
        shutil.copytree(self.template, folder, symlinks=True)
        return folder

    def run(self, folder: Path, fault: dict[str, object] | None = None) -> Run:
        return self.driver.run(*(argv(a, folder) for a in self.phase.argvs), fault=fault,
                               variant=self.variant)

    def crash_at(self, n: int, kind: str) -> list[str]:
        """Kill at write ``n``; return every violation seen, as sentences."""
        folder = self.fresh()
        store = folder / "store"
        before = {v: f for v, f in version_files(store).items() if v in self.kept}
        crashed = self.run(folder, {"at": n, "kind": kind})
        where = f"{self.phase.name} {kind} #{n} {self.writes[n - 1]}"
        problems = [f"{where}: {p}" for p in check_store(store, before)]
        if crashed.status != -9:
            problems.append(f"{where}: expected SIGKILL, got status {crashed.status}")
        rerun = self.run(folder)
        if rerun.status != 0:
            problems.append(f"{where}: re-run exited {rerun.status}: {rerun.stderr[-300:]}")
            return problems
        problems += [f"{where}: after re-run: {p}" for p in check_store(store, before)]
        if left := leftovers(store):
            problems.append(f"{where}: leftovers after re-run: {left}")
        try:
            got = lineage(store)
        except Exception as exc:
            problems.append(f"{where}: lineage unreadable after re-run: {exc}")
            return problems
        if got != self.lineage:
            problems.append(f"{where}: lineage differs from an uninterrupted run: "
                            f"{json.dumps(got)[:300]}")
        settled = tree_hashes(store)
        again = self.run(folder)
        if again.status != 0 or tree_hashes(store) != settled:
            problems.append(f"{where}: a second re-run changed the store "
                            f"(status {again.status})")
        shutil.rmtree(folder)
        return problems

    def points(self) -> list[tuple[int, str]]:
        out = []
        for n, (op, _) in enumerate(self.writes, start=1):
            out.append((n, "kill-before"))
            if op in CHANGES_STATE:
                out.append((n, "kill-after"))
        return out

    def sweep(self, stop_at: str | None = None, last_first: bool = False
              ) -> tuple[int, list[str]]:
        """Crash at every point; with ``stop_at``, stop at the first violation matching it."""
        problems: list[str] = []
        kills = 0
        points = self.points()
        for n, kind in reversed(points) if last_first else points:
            kills += 1
            problems += self.crash_at(n, kind)
            if stop_at and any(stop_at in p for p in problems):
                break
        return kills, problems


@pytest.mark.parametrize(
    "phase",
    [pytest.param(p, marks=[pytest.mark.slow] if p.slow else []) for p in PHASES],
    ids=[p.name for p in PHASES],
)
def test_crash_at_every_write_point(driver: Driver, phase: Phase, fast_tmp: Path) -> None:
    sweep = Sweep(driver, phase, fast_tmp)
    assert len(sweep.writes) >= 3, sweep.writes  # the run really writes
    # Exhaustive: a fault planted one past the last write point is never reached.
    beyond = sweep.run(sweep.fresh(), {"at": len(sweep.writes) + 1, "kind": "kill-before"})
    assert beyond.status == 0, beyond.stderr
    kills, problems = sweep.sweep()
    print(f"{phase.name}: {len(sweep.writes)} write points, {kills} kills, "
          f"{len(problems)} violations")
    assert problems == []


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("naive-manifest", "manifest does not parse"),
        ("in-place", "does not verify"),
    ],
)
def test_the_harness_catches_naive_variants(
    driver: Driver, fast_tmp: Path, variant: str, expected: str
) -> None:
    sweep = Sweep(driver, PHASES[0], fast_tmp, variant=variant)
    kills, problems = sweep.sweep(stop_at=expected, last_first=True)
    print(f"{variant}: violation found after {kills} kills: {problems[-1]}")
    assert any(expected in p for p in problems), problems[:5]
