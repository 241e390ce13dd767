"""Progress while a run works: log lines without a terminal (cron), a bar on one.

Real subprocesses, real training on a corpus big enough to take a few seconds per
epoch; the heartbeat interval is shortened through INCW2V_PROGRESS_SECONDS so that the
test sees many beats in a short run.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from helpers import lee_lines, package_env, write_config

INTERVAL = 0.2


def workspace(folder: Path, copies: int = 40, epochs: int = 4, publish: bool = False) -> Path:
    text = "".join(lee_lines())
    (folder / "big.txt").write_text(text * copies, encoding="utf-8")
    (folder / "more.txt").write_text(text[: len(text) // 2] * 2, encoding="utf-8")
    published = "publish: [{to: served, formats: [word2vec-binary]}]" if publish else ""
    return write_config(folder, f"""
        store: store
        model: {{vector_size: 32, min_count: 3, epochs: {epochs}, workers: 2, seed: 3}}
        update: {{epochs: 2}}
        base: {{corpus: big.txt}}
        queue: [{{uri: more.txt}}]
        {published}
        """)


def timed_lines(proc: subprocess.Popen[str]) -> list[tuple[float, str]]:
    """Every stderr line of ``proc`` with the moment it arrived."""
    assert proc.stderr is not None
    out = []
    for line in proc.stderr:
        out.append((time.monotonic(), line.rstrip("\n")))
    return out


def test_without_a_terminal_a_line_per_epoch_and_a_heartbeat(tmp_path: Path) -> None:
    config = workspace(tmp_path, publish=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "incremental_w2v", "add-corpus", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=package_env(INCW2V_PROGRESS_SECONDS=str(INTERVAL)),
    )
    lines = timed_lines(proc)
    out = proc.stdout.read() if proc.stdout else ""
    assert proc.wait(timeout=300) == 0, "\n".join(t for _, t in lines)
    text = [t for _, t in lines]
    # One line per epoch, for the base (4 epochs) and the update (2), with rate and ETA.
    done = [t for t in text if re.search(r"training: epoch \d/\d done in", t)]
    assert [re.search(r"epoch (\d/\d)", t).group(1) for t in done] == [  # type: ignore[union-attr]
        "1/4", "2/4", "3/4", "4/4", "1/2", "2/2"]
    assert all("words/s" in t for t in done) and "ETA" in done[0], done
    # Inside an epoch: the share of the epoch done, the rate and the ETA.
    inside = [t for t in text if t.startswith("incw2v: training [epoch")]
    assert len(inside) >= 3, text
    percents = [int(re.search(r": (\d+)% \(", t).group(1)) for t in inside]  # type: ignore[union-attr]
    # Seen inside an epoch, not only at its ends (each of the 4 epochs is 25%).
    assert any(p % 25 for p in percents), inside
    assert percents == sorted(percents)  # never goes back
    assert all("words/s" in t and "ETA" in t for t, p in zip(inside, percents, strict=True)
               if p > 0)
    # Life at least every interval while training (generous slack for a loaded machine).
    start = next(i for i, t in enumerate(text) if "reading big.txt" in t)
    end = max(i for i, t in enumerate(text) if "training: epoch 4/4 done" in t)
    gaps = [b[0] - a[0] for a, b in zip(lines[start:end], lines[start + 1:end + 1],
                                          strict=True)]
    assert max(gaps) < INTERVAL + 3.0, (max(gaps), text[start:end + 1])
    # Scoring, the commit and the publish are steps of their own: each says when it starts
    # (a cron log must not fall silent until the next heartbeat), for each version in turn.
    steps = [m.group(1) for t in text  # the start of each step, not its heartbeat lines
             if (m := re.match(r"incw2v: (reading \S+ \(|scoring: started|committing: started|"
                               r"publishing v\d+ to)", t))]
    assert steps == ["reading big.txt (", "scoring: started", "committing: started",
                     "reading more.txt (", "scoring: started", "committing: started",
                     "publishing v0002 to"], steps
    assert any(re.match(r"incw2v: published v0002 to .*served", t) for t in text), text
    # The summary is on stdout only, once.
    assert "applied 2 corpus(es)" in out and out.count("applied 2 corpus(es)") == 1
    assert not any("applied 2 corpus(es)" in t for t in text)
    assert not any("\r" in t or "it/s" in t for t in text)  # no bar without a terminal


def test_on_a_terminal_a_bar(tmp_path: Path) -> None:
    config = workspace(tmp_path, copies=6, epochs=2)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "incremental_w2v", "add-corpus", str(config)],
        stdout=subprocess.PIPE, stderr=slave, text=True, cwd=tmp_path, env=package_env(),
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its side
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=300) == 0, seen[-2000:]
    screen = seen.decode("utf-8", "replace")
    # tqdm redraws the bar in place: percentage, rate and ETA, for each step.
    assert re.search(r"training: +\d+%\|", screen), screen[-2000:]
    assert "words/s" in screen and "epoch 2/2" in screen
    assert "reading big.txt" in screen and "committing" in screen and "scoring" in screen
    assert "\r" in screen
    assert proc.stdout is not None and "applied 2 corpus(es)" in proc.stdout.read()


@pytest.mark.parametrize("value", ["0.5", "junk", "-3"])
def test_the_interval_setting(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from incremental_w2v.progress import DEFAULT_INTERVAL, INTERVAL_ENV, interval

    monkeypatch.setenv(INTERVAL_ENV, value)
    assert interval() == (0.5 if value == "0.5" else DEFAULT_INTERVAL)
