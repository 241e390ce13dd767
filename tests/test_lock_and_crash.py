"""One run at a time, and a SIGKILLed run loses nothing (real processes, real signals).

A queued corpus that is a named pipe makes the first run hold the lock, with
its working files open, until the test decides: that is how these tests get
a deterministic point to start a second run or to kill the first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import committed, popen, run_subprocess

# Crash sweeps, kills, full disks and races: the slow fault tests (see README).
pytestmark = pytest.mark.faults


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def holder_pid(store: Path) -> int | None:
    try:
        return int(json.loads((store / ".lock.info").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def start_blocked_run(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path]
) -> tuple[Path, Path, object]:
    fifo = tmp_path / "incoming.txt"
    os.mkfifo(fifo)
    config = make_config(corpora["a"], [fifo])
    proc = popen("add-corpus", config)
    store = config.parent / "store"
    # Base committed and the run is now blocked opening the pipe, lock held.
    wait_for(lambda: holder_pid(store) == proc.pid and committed(store) == ["v0001"])
    wait_for(lambda: any(p.name.startswith(".work-") for p in store.iterdir()))
    return config, fifo, proc


def test_second_run_exits_75_naming_the_holder(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path]
) -> None:
    config, fifo, proc = start_blocked_run(tmp_path, corpora, make_config)
    try:
        started = time.monotonic()
        second = run_subprocess("add-corpus", config)
        assert second.returncode == 75, second.stderr
        assert time.monotonic() - started < 30
        assert f"pid {proc.pid}" in second.stderr  # type: ignore[attr-defined]
        assert "--wait" in second.stderr
    finally:
        with open(fifo, "w") as pipe:
            pipe.write(corpora["b"].read_text())
        assert proc.wait(timeout=120) == 0  # type: ignore[attr-defined]


def test_wait_queues_behind_the_holder(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path]
) -> None:
    config, fifo, proc = start_blocked_run(tmp_path, corpora, make_config)
    waiter = popen("add-corpus", config, "--wait", "120", "--json")
    time.sleep(1.0)
    assert waiter.poll() is None  # still waiting for the lock
    with open(fifo, "w") as pipe:
        pipe.write(corpora["b"].read_text())
    assert proc.wait(timeout=120) == 0  # type: ignore[attr-defined]
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert json.loads(out)["applied"] == []  # the holder already applied everything


def test_sigkill_mid_run_then_rerun_completes(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path]
) -> None:
    config, fifo, proc = start_blocked_run(tmp_path, corpora, make_config)
    store = config.parent / "store"
    before = (store / "manifest.json").read_bytes()
    model_bytes = (store / "versions" / "v0001" / "model").read_bytes()
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    proc.wait(timeout=30)  # type: ignore[attr-defined]
    assert (store / "manifest.json").read_bytes() == before
    assert any(p.name.startswith(".work-") for p in store.iterdir())  # left behind

    # The lock died with its holder; the next run sweeps and carries on.
    fifo.unlink()
    shutil.copy(corpora["b"], fifo)
    rerun = run_subprocess("add-corpus", config, "--json")
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert [a["version"] for a in out["applied"]] == ["v0002"]
    assert any(s.startswith(".work-") for s in out["swept"])
    assert not [p for p in store.iterdir() if p.name.startswith((".work-", ".staging-"))]
    assert (store / "versions" / "v0001" / "model").read_bytes() == model_bytes
    again = run_subprocess("add-corpus", config, "--json")
    assert json.loads(again.stdout)["applied"] == []
