"""Progress of long steps: a tqdm bar on stderr on a terminal, log lines everywhere else.

On a terminal each step (the pass, training, scoring, the commit) shows a bar with its
percentage, rate and ETA. Without one (cron, systemd, a pipe) there is no bar; instead a
step logs a line when it starts and when it reaches a milestone (an epoch) (both with
``milestone``), and a heartbeat line at least
every ``interval()`` seconds (60 by default; ``INCW2V_PROGRESS_SECONDS`` sets it), so a
cron log always shows that the run is alive and how far it is.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import TracebackType
from typing import Any

from tqdm import tqdm

logger = logging.getLogger(__name__)

INTERVAL_ENV = "INCW2V_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 60.0


def progress_enabled() -> bool:
    return sys.stderr.isatty()


def interval() -> float:
    """Seconds between heartbeat lines without a terminal."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if 0.05 <= value <= 86_400 else DEFAULT_INTERVAL


def human(n: float, unit: str) -> str:
    """1234567 words -> '1.23M words'; bytes as B, kB, MB, …"""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            if unit == "B":
                return f"{n / scale:.1f} {prefix}B"
            return f"{n / scale:.2f}{prefix} {unit}"
    return f"{n:.0f} {unit}"


def duration(seconds: float) -> str:
    h, rest = divmod(max(0, round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """One long step. ``update``/``advance_to`` move it; ``milestone`` logs a line now."""

    def __init__(self, desc: str, total: float | None = None, unit: str = "B",
                 enabled: bool | None = None) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.n = 0.0
        self.note = ""
        self.started = self.last_line = time.monotonic()
        self.tty = progress_enabled() if enabled is None else enabled
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: tqdm[Any] | None = None
        self._beat: threading.Thread | None = None
        if self.tty:
            try:  # a terminal that reports no size (some containers) gets a fixed width
                sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except (OSError, ValueError):
                sized = False
            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}" if unit != "B" else unit,
                             unit_scale=True, file=sys.stderr, leave=False,
                             dynamic_ncols=sized, ncols=None if sized else 100)
        else:
            self._beat = threading.Thread(target=self._heartbeat, name="progress", daemon=True)
            self._beat.start()

    # -- moving ----------------------------------------------------------------------------

    def update(self, n: float) -> None:
        with self._lock:
            self.n += n
            if self._bar is not None:
                self._bar.update(n)

    def advance_to(self, n: float) -> None:
        """Set the count (it never goes back)."""
        with self._lock:
            delta = n - self.n
        if delta > 0:
            self.update(delta)

    def set_note(self, note: str) -> None:
        """A short state shown after the figures (``epoch 3/5``)."""
        self.note = note
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)

    def milestone(self, text: str) -> None:
        """Log ``text`` now (without a terminal; on one, the bar says it)."""
        if not self.tty:
            logger.info("%s: %s", self.desc, text)
            self.last_line = time.monotonic()

    # -- saying it ---------------------------------------------------------------------------

    def rate(self) -> float:
        return self.n / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        note = f" [{self.note}]" if self.note else ""
        if self.unit == "steps":  # a few unequal steps: which one, not a rate
            return (f"{self.desc}{note}: step {min(int(self.n) + 1, int(self.total or 1))} of "
                    f"{int(self.total or 1)}, {duration(elapsed)} elapsed")
        parts = []
        if self.total:
            parts.append(f"{100 * self.n / self.total:.0f}% ({human(self.n, self.unit)} of "
                         f"{human(self.total, self.unit)})")
        elif self.n:
            parts.append(human(self.n, self.unit))
        if self.n:
            parts.append(f"{human(self.rate(), self.unit)}/s")
        if self.total and self.n:
            parts.append(f"ETA {duration((self.total - self.n) / self.rate())}")
        parts.append(f"{duration(elapsed)} elapsed")
        return f"{self.desc}{note}: {', '.join(parts)}"

    def _heartbeat(self) -> None:
        every = interval()
        while not self._stop.wait(min(every, 1.0) / 2):
            if time.monotonic() - self.last_line >= every:
                logger.info("%s", self.line())
                self.last_line = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def bar(total: int | None, desc: str, unit: str = "B", enabled: bool | None = None) -> Progress:
    """A step measured in ``unit`` (bytes by default) out of ``total`` (None: unknown)."""
    return Progress(desc, total, unit, enabled)
