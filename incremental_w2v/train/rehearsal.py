"""Rehearsal: a replay buffer of earlier sentences, mixed into each update.

An update that trains only on the new corpus moves the whole space while
old words absent from it stay put, so they drift apart from their
neighbours. Replaying a sample of earlier data with the new data is the
known remedy short of a full retrain.

The buffer is a fixed-size uniform sample of every sentence applied so far
(reservoir sampling, Algorithm R), seeded so a lineage is reproducible. It
is stored in each version folder (``replay.txt.gz``, hashed with the rest of
the version), so rollback restores it and updates never need the old corpora.

One local pass over the finished working file does both jobs: it writes the
mixed training file (the new sentences with the replayed ones spread evenly
between them) and folds the new sentences into the reservoir.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incremental_w2v.errors import DataError

logger = logging.getLogger(__name__)

REPLAY_FILE = "replay.txt.gz"


@dataclass
class ReplayBuffer:
    """Up to ``size`` sentences (working-file lines), a uniform sample of ``seen``."""

    size: int
    seed: int = 1
    seen: int = 0
    lines: list[str] = field(default_factory=list)

    def resize(self, size: int) -> str | None:
        """Adopt a new configured size; returns a note when it changes anything."""
        if size == self.size:
            return None
        old = self.size
        self.size = size
        if len(self.lines) > size:
            # A uniform subset of a uniform sample is still uniform.
            rng = random.Random(f"{self.seed}:resize:{self.seen}")
            self.lines = rng.sample(self.lines, size)
            return f"replay buffer shrunk from {old} to {size} sentences"
        if size > old and self.seen > len(self.lines):
            return (
                f"replay buffer grown from {old} to {size} sentences: until it fills, it "
                "over-represents corpora applied from now on"
            )
        return None

    def absorb(self, line: str, rng: random.Random) -> None:
        """Algorithm R: the t-th sentence (0-based) replaces a slot with prob. size/(t+1)."""
        t = self.seen
        self.seen = t + 1
        if t < self.size:
            self.lines.append(line)
            return
        j = int(rng.random() * (t + 1))
        if j < self.size:
            self.lines[j] = line

    def draw(self, count: int) -> list[str]:
        """``count`` replayed sentences: without replacement while the buffer suffices."""
        if not self.lines or count <= 0:
            return []
        rng = random.Random(f"{self.seed}:draw:{self.seen}")
        whole, rest = divmod(count, len(self.lines))
        picks = self.lines * whole + rng.sample(self.lines, rest)
        rng.shuffle(picks)
        return picks

    # -- files -----------------------------------------------------------------

    def save(self, path: Path) -> None:
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1, newline="\n") as out:
            out.write(f"#replay\tseen={self.seen}\tsize={self.size}\tseed={self.seed}\n")
            for line in self.lines:
                out.write(line)
                out.write("\n")

    @classmethod
    def load(cls, path: Path, size: int, seed: int) -> ReplayBuffer:
        """The buffer stored at ``path``; an empty one if the version has none."""
        if not path.exists():
            return cls(size=size, seed=seed)
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
                header = handle.readline().rstrip("\n").split("\t")
                if header[0] != "#replay":
                    raise ValueError("no '#replay' header line")
                fields = dict(item.split("=", 1) for item in header[1:])
                lines = [line.rstrip("\n") for line in handle]
            buffer = cls(size=int(fields["size"]), seed=int(fields["seed"]),
                         seen=int(fields["seen"]), lines=lines)
        except (OSError, EOFError, ValueError, KeyError) as exc:
            raise DataError(
                f"replay buffer {path} is damaged: {exc}",
                hint="roll back to an earlier version ('incw2v rollback'), whose buffer is intact",
            ) from None
        buffer.seed = seed
        return buffer


@dataclass
class MixReport:
    """What one mixing pass fed to training."""

    sentences: int = 0  # total in the mixed file
    tokens: int = 0
    replayed_sentences: int = 0
    replayed_tokens: int = 0
    buffer_seen: int = 0
    buffer_lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "replayed_sentences": self.replayed_sentences,
            "replayed_tokens": self.replayed_tokens,
            "trained_sentences": self.sentences,
            "trained_tokens": self.tokens,
            "buffer_sentences": self.buffer_lines,
            "buffer_seen": self.buffer_seen,
        }


def absorb_file(buffer: ReplayBuffer, workfile: Path) -> None:
    """Fold every line of ``workfile`` into the reservoir (the base version's pass)."""
    rng = random.Random(f"{buffer.seed}:absorb:{buffer.seen}")
    with open(workfile, encoding="utf-8", newline="\n") as handle:
        for line in handle:
            buffer.absorb(line.rstrip("\n"), rng)


def mix_and_absorb(
    buffer: ReplayBuffer,
    workfile: Path,
    sentences: int,
    tokens: int,
    share: float,
) -> MixReport:
    """Replace ``workfile`` by the new sentences interleaved with replayed ones.

    ``round(share * sentences)`` sentences are drawn from the buffer as it
    was *before* this corpus (so only earlier data is replayed) and spread
    evenly between the new ones; the new sentences then enter the reservoir.
    """
    picks = buffer.draw(round(share * sentences))
    report = MixReport(replayed_sentences=len(picks))
    rng = random.Random(f"{buffer.seed}:absorb:{buffer.seen}")
    mixed = workfile.with_name(workfile.name + ".mixed")
    total = max(sentences, 1)
    emitted = 0
    replayed_tokens = 0
    new_lines = 0
    with open(workfile, encoding="utf-8", newline="\n") as src, open(
        mixed, "w", encoding="utf-8", newline="\n"
    ) as out:
        for line in src:
            out.write(line)
            new_lines += 1
            buffer.absorb(line.rstrip("\n"), rng)
            due = len(picks) * new_lines // total
            while emitted < due:
                out.write(picks[emitted])
                out.write("\n")
                replayed_tokens += len(picks[emitted].split())
                emitted += 1
        for pick in picks[emitted:]:  # only if the file had fewer lines than announced
            out.write(pick)
            out.write("\n")
            replayed_tokens += len(pick.split())
    os.replace(mixed, workfile)
    report.replayed_tokens = replayed_tokens
    report.sentences = new_lines + len(picks)
    report.tokens = tokens + replayed_tokens
    report.buffer_seen = buffer.seen
    report.buffer_lines = len(buffer.lines)
    logger.info(
        "rehearsal: replayed %d sentences (%d tokens) among %d new; buffer holds %d of %d seen",
        len(picks), replayed_tokens, new_lines, len(buffer.lines), buffer.seen,
    )
    return report
