"""Disk full and I/O errors: at every write point, and on a real full filesystem.

The fault driver makes the N-th write operation of an update fail with ENOSPC
(or EIO), for every N. The run must then either complete correctly (where the
failed step was not needed, e.g. the lock's courtesy info file) or exit 73
(ENOSPC) / 74 (EIO) with a clear message, the store exactly as before, its
working files gone; and the next run must succeed.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults import Driver, check_store, leftovers, lineage, tree_hashes
from helpers import run_subprocess
from incremental_w2v.ingest.diskspace import reserve_bytes
from test_crash_sweep import argv, write_workspace

# Crash sweeps, kills, full disks and races: the slow fault tests (see README).
pytestmark = pytest.mark.faults

CLEANUP_OPS = {"remove", "rmdir", "rmtree"}  # failing to clean up leaves what the next run sweeps
SKIP = {".lock", ".lock.info"}


def prepared(driver: Driver, root: Path) -> Path:
    template = root / "template"
    write_workspace(template, ("b.txt",))
    assert driver.run(argv(["add-corpus", "{base_config}"], template)).status == 0
    return template


@pytest.mark.parametrize(("kind", "code", "fragment"), [
    ("enospc", 73, "no space left while"),
    ("eio", 74, "I/O error while"),
])
def test_failing_write_at_every_point(
    driver: Driver, fast_tmp: Path, kind: str, code: int, fragment: str
) -> None:
    template = prepared(driver, fast_tmp)
    reference = fast_tmp / "reference"
    shutil.copytree(template, reference)
    done = driver.run(argv(["add-corpus", "{config}"], reference))
    assert done.status == 0, done.stderr
    expected = lineage(reference / "store")
    problems: list[str] = []
    failed = completed = 0
    for n in range(1, len(done.writes) + 1):
        folder = fast_tmp / f"at-{n}"
        shutil.copytree(template, folder)
        store = folder / "store"
        before = tree_hashes(store, SKIP | {".readers"})
        run = driver.run(argv(["add-corpus", "{config}"], folder), fault={"at": n, "kind": kind})
        op = done.writes[n - 1]
        where = f"{kind} at #{n} {op}"
        if run.status == 0:
            completed += 1
            if lineage(store) != expected:
                problems.append(f"{where}: exit 0 but the lineage is wrong")
        else:
            failed += 1
            if run.status != code:
                problems.append(f"{where}: exit {run.status}, expected {code}: "
                                f"{run.stderr[-300:]}")
            if fragment not in run.stderr or "hint:" not in run.stderr:
                problems.append(f"{where}: unclear message: {run.stderr[-300:]}")
            if "Traceback" in run.stderr:
                problems.append(f"{where}: traceback shown without --debug")
            if tree_hashes(store, SKIP | {".readers"}) != before:
                problems.append(f"{where}: the store changed")
        if op[0] not in CLEANUP_OPS and (left := leftovers(store)):
            problems.append(f"{where}: working files left: {left}")
        problems += [f"{where}: {p}" for p in check_store(store, {})]
        rerun = driver.run(argv(["add-corpus", "{config}"], folder))
        if rerun.status != 0 or lineage(store) != expected or leftovers(store):
            problems.append(f"{where}: the next run did not recover (exit {rerun.status})")
        shutil.rmtree(folder)
    print(f"{kind}: {len(done.writes)} write points, {failed} failed cleanly, "
          f"{completed} completed, {len(problems)} violations")
    assert problems == [], "\n".join(problems)
    assert failed > len(done.writes) // 2


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}): "
                    "the injected ENOSPC test covers the same paths")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_really_full_filesystem(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    write_workspace(workspace, ("b.txt",))
    with small_filesystem(tmp_path / "small", "16m") as small:
        config = workspace / "config.yaml"
        config.write_text(config.read_text().replace("store: store", f"store: {small}/store"))
        first = run_subprocess("add-corpus", config)  # base and b.txt both fit
        assert first.returncode == 0, first.stderr
        store = small / "store"
        before = tree_hashes(store, SKIP | {".readers"})
        reserve = reserve_bytes(shutil.disk_usage(small).total)

        def fill(leave: int) -> None:
            free = shutil.disk_usage(small).free
            with open(small / "filler", "wb") as filler:
                filler.write(b"\0" * max(0, free - leave))

        # Too little room for the reserve the space check keeps: refused before writing.
        (workspace / "c.txt").write_text((workspace / "a.txt").read_text() * 3)
        fill(reserve // 2)
        early = run_subprocess("add-corpus", config, workspace / "c.txt")
        assert early.returncode == 73, early.stderr
        assert "not enough free space" in early.stderr and "nothing was written" in early.stderr
        assert tree_hashes(store, SKIP | {".readers"}) == before and leftovers(store) == []
        (small / "filler").unlink()

        # A corpus far more compressible than the estimate assumes passes the check; its
        # working file then grows until the free space reaches the reserve, and stops there.
        lines = (workspace / "a.txt").read_text().splitlines(keepends=True)[:10]
        with gzip.open(workspace / "d.txt.gz", "wt") as handle:
            handle.write("".join(lines) * 500)
        fill(reserve + (1 << 20))
        full = run_subprocess("add-corpus", config, workspace / "d.txt.gz")
        assert full.returncode == 73, full.stderr
        assert "no space left while" in full.stderr and "free disk space" in full.stderr
        assert "below the reserve" in full.stderr  # stopped by the watch, not by ENOSPC
        assert tree_hashes(store, SKIP | {".readers"}) == before
        assert leftovers(store) == []
        (small / "filler").unlink()
        again = run_subprocess("add-corpus", config, workspace / "d.txt.gz", "--json")
        assert again.returncode == 0, again.stderr
        assert check_store(store, {}) == []


@pytest.mark.parametrize("source", ["pipe", "gzip-bomb"])
def test_a_source_of_unknown_or_understated_size_stops_at_the_reserve(
    tmp_path: Path, source: str
) -> None:
    """No size to check beforehand (a pipe that never ends), or a size that says nothing
    (a gzip bomb: kilobytes that expand to far more than the disk): the working file grows
    until the free space reaches the reserve, and the run stops there with 73."""
    import os
    import threading

    workspace = tmp_path / "ws"
    write_workspace(workspace, ())
    with small_filesystem(tmp_path / "small", "24m") as small:
        config = workspace / "config.yaml"
        config.write_text(config.read_text().replace("store: store", f"store: {small}/store"))
        assert run_subprocess("add-corpus", config).returncode == 0
        store = small / "store"
        before = tree_hashes(store, SKIP | {".readers"})
        reserve = reserve_bytes(shutil.disk_usage(small).total)
        text = (workspace / "a.txt").read_bytes()
        stop = threading.Event()
        if source == "pipe":
            corpus = workspace / "endless.txt"
            os.mkfifo(corpus)

            def feed() -> None:
                with contextlib.suppress(BrokenPipeError), open(corpus, "wb") as pipe:
                    while not stop.is_set():
                        pipe.write(text)

            threading.Thread(target=feed, daemon=True).start()
        else:
            corpus = workspace / "bomb.txt.gz"
            lines = b"".join(text.splitlines(keepends=True)[:10])  # within gzip's window
            with gzip.open(corpus, "wb", compresslevel=9) as out:
                for _ in range(3000):  # ~40 MB of text in a file of some tens of KB
                    out.write(lines)
        lowest = [shutil.disk_usage(small).free]

        def watch() -> None:
            while not stop.is_set():
                lowest.append(shutil.disk_usage(small).free)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            run = run_subprocess("add-corpus", config, corpus)
        finally:
            stop.set()
            watcher.join()
        assert run.returncode == 73, run.stderr
        assert "below the reserve" in run.stderr and "free disk space" in run.stderr
        assert min(lowest) > reserve // 2  # the reserve was kept, not eaten
        assert tree_hashes(store, SKIP | {".readers"}) == before
        assert leftovers(store) == []
