"""Progress of gensim's training: each epoch, and how far into it.

In ``corpus_file`` mode gensim reports nothing inside an epoch (each worker thread
reports once, when its share of the file is done), and an epoch on a real dump takes
minutes to hours. Each worker reads its share through its own file descriptor, from
``size / workers * k`` onwards, so on Linux the read positions of the working file's
descriptors (``/proc/self/fdinfo``) say how far the epoch is. gensim's epoch callbacks
mark the epochs. Elsewhere the watch falls back to whole epochs.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from incremental_w2v.progress import Progress, duration, human, interval

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
_PROC = Path("/proc/self")


def read_positions(path: str) -> dict[int, int]:
    """fd -> read position of this process's open descriptors on ``path`` (Linux only)."""
    found: dict[int, int] = {}
    try:
        fds = os.listdir(_PROC / "fd")
    except OSError:
        return found
    for fd in fds:
        try:
            if os.readlink(_PROC / "fd" / fd) != path:
                continue
            with open(_PROC / "fdinfo" / fd, encoding="ascii") as info:
                for line in info:
                    if line.startswith("pos:"):
                        found[int(fd)] = int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue  # closed meanwhile
    return found


class EpochReader:
    """The bytes of one epoch read so far by the worker threads."""

    def __init__(self, path: Path, workers: int) -> None:
        self.path = str(path.resolve())
        self.size = max(path.stat().st_size, 1)
        self.offsets = [self.size / workers * k for k in range(workers)]
        self.starts: dict[int, float] = {}
        self.reached: dict[int, int] = {}

    def fraction(self) -> float:
        for fd, pos in read_positions(self.path).items():
            if fd not in self.starts:
                # A worker starts at its offset: the nearest one below where it is now.
                self.starts[fd] = max(o for o in self.offsets if o <= pos) if pos else 0.0
            self.reached[fd] = max(pos, self.reached.get(fd, 0))
        done = sum(self.reached[fd] - self.starts[fd] for fd in self.reached)
        return min(max(done / self.size, 0.0), 1.0)


class TrainingWatch:
    """gensim callbacks and a polling thread that move one :class:`Progress`.

    ``first_epoch``/``epochs``: this ``train()`` call's place in the whole training
    (an update trains one call per epoch); ``done_before``: the tokens trained before it.
    """

    def __init__(self, progress: Progress, workfile: Path, tokens: int, workers: int,
                 first_epoch: int, epochs: int, done_before: int | None = None) -> None:
        self.progress, self.workfile, self.tokens = progress, workfile, tokens
        self.workers, self.first_epoch, self.epochs = workers, first_epoch, epochs
        # Tokens trained before this call: epochs of an update differ in size (the replay
        # rises across them), so the position is counted, not first_epoch x tokens.
        self.done_before = first_epoch * tokens if done_before is None else done_before
        self.epoch = first_epoch
        self.reader: EpochReader | None = None
        self.epoch_started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="training-watch", daemon=True)

    def callbacks(self) -> list[Any]:
        from gensim.models.callbacks import CallbackAny2Vec

        watch = self

        class Epochs(CallbackAny2Vec):  # type: ignore[misc]
            def on_epoch_begin(self, model: Any) -> None:
                watch.begin_epoch()

            def on_epoch_end(self, model: Any) -> None:
                watch.end_epoch()

        return [Epochs()]

    def begin_epoch(self) -> None:
        import time

        self.epoch_started = time.monotonic()
        try:
            self.reader = EpochReader(self.workfile, self.workers)
        except OSError:
            self.reader = None
        self.progress.set_note(f"epoch {self.epoch + 1}/{self.epochs}")

    def end_epoch(self) -> None:
        import time

        self.reader = None
        self.epoch += 1
        took = time.monotonic() - self.epoch_started
        self.progress.advance_to(self.position(0.0))
        left = (self.epochs - self.epoch) * took
        self.progress.milestone(
            f"epoch {self.epoch}/{self.epochs} done in {duration(took)}, "
            f"{human(self.tokens / max(took, 1e-9), 'words')}/s"
            + (f"; ETA {duration(left)}" if self.epoch < self.epochs else ""))

    def position(self, fraction: float) -> float:
        """Tokens trained so far, ``fraction`` of the way into the current epoch."""
        return self.done_before + (self.epoch - self.first_epoch + fraction) * self.tokens

    def _poll(self) -> None:
        # Poll faster than the heartbeat so that a short interval still sees inside epochs.
        every = min(POLL_SECONDS, interval() / 2)
        while not self._stop.wait(every):
            reader = self.reader
            if reader is not None:
                self.progress.advance_to(self.position(reader.fraction()))

    def __enter__(self) -> TrainingWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
