"""SIGTERM and SIGHUP stop a run as Ctrl-C does: a message, the working files removed, the
lock released, committed versions intact, and the exit code 128 + the signal.

Real processes and real signals. A queued corpus that is a named pipe holds the run at a
known point with its lock and working folder; the writer decides how far the run gets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import committed, popen, run_subprocess
from test_lock_and_crash import holder_pid, wait_for

pytestmark = pytest.mark.faults

CODES = {signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGINT: 130}
NAMES = {signal.SIGTERM: "stopped by SIGTERM", signal.SIGHUP: "stopped by SIGHUP",
         signal.SIGINT: "interrupted"}


def working_files(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir()
                  if p.name.startswith((".work-", ".staging-", ".trash-", ".incw2v-tmp-")))


def blocked_run(tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path]
                ) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A run with its base committed, holding the lock, waiting on a pipe (in its own
    session, so that a signal to its process group reaches its workers only)."""
    fifo = tmp_path / "incoming.txt"
    os.mkfifo(fifo)
    config = make_config(corpora["a"], [fifo])
    proc = popen("add-corpus", config, start_new_session=True)
    store = config.parent / "store"
    # A store has a manifest from its creation on: wait for the base to be committed.
    wait_for(lambda: holder_pid(store) == proc.pid and committed(store) == ["v0001"])
    wait_for(lambda: any(p.name.startswith(".work-") for p in store.iterdir()))
    return config, fifo, proc


def check_stopped_cleanly(proc: subprocess.Popen[str], sig: int, store: Path,
                          manifest: bytes, config: Path) -> None:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == CODES[sig], err
    assert f"incw2v: {NAMES[sig]}" in err
    assert "committed versions are intact" in err
    assert "Traceback" not in err and "internal error" not in err
    assert working_files(store) == []
    assert (store / "manifest.json").read_bytes() == manifest
    # The lock died with the run: the next one takes it at once.
    again = run_subprocess("status", config, "--json")
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_a_signal_while_waiting_for_the_corpus_stops_cleanly(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    sig: int, group: bool
) -> None:
    config, _fifo, proc = blocked_run(tmp_path, corpora, make_config)
    store = config.parent / "store"
    manifest = (store / "manifest.json").read_bytes()
    (os.killpg if group else os.kill)(proc.pid, sig)
    check_stopped_cleanly(proc, sig, store, manifest, config)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_in_the_middle_of_the_pass_stops_cleanly(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path], sig: int
) -> None:
    """Half the corpus written, the pipe still open: the pass is reading and tokenising."""
    config, fifo, proc = blocked_run(tmp_path, corpora, make_config)
    store = config.parent / "store"
    manifest = (store / "manifest.json").read_bytes()
    text = corpora["b"].read_text()
    with open(fifo, "w") as pipe:
        pipe.write(text[: len(text) // 2])
        pipe.flush()
        work = next(p for p in store.iterdir() if p.name.startswith(".work-"))
        wait_for(lambda: (work / "corpus.txt").exists())
        time.sleep(0.3)
        os.killpg(proc.pid, sig)
        check_stopped_cleanly(proc, sig, store, manifest, config)
    # Nothing half-applied: the whole corpus is applied by the next run.
    fifo.unlink()
    fifo.write_text(text)
    rerun = run_subprocess("add-corpus", config, "--json")
    assert rerun.returncode == 0, rerun.stderr


def test_sigterm_during_training_stops_cleanly(tmp_path: Path, corpora: dict[str, Path],
                                               make_config: Callable[..., Path]) -> None:
    """A base trained for many epochs: SIGTERM once training is under way."""
    config = make_config(corpora["a"], extra="evaluation: {enabled: false}")
    config.write_text(config.read_text().replace("  epochs: 2\n", "  epochs: 400\n", 1))
    proc = popen("add-corpus", config, "--debug", start_new_session=True)
    store = config.parent / "store"
    wait_for(lambda: holder_pid(store) == proc.pid)
    wait_for(lambda: any((p / "corpus.txt").exists() for p in store.iterdir()
                         if p.name.startswith(".work-")))
    time.sleep(1.0)  # the pass of a few hundred KB is over: gensim is training
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err
    assert working_files(store) == []
    assert not list((store / "versions").iterdir())
