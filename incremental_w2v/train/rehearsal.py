"""Rehearsal: each update replays a sample of earlier data, measured in tokens.

An update that trains only on the new corpus moves the whole space while
old words absent from it stay put, so they drift apart from their
neighbours. Replaying earlier data with the new data is the known remedy
short of a full retrain (see docs/incremental.md for what it buys, measured).

The buffer (:class:`ReplayBuffer`) is a uniform sample of every sentence
applied so far, under a token budget (``rehearsal.buffer_tokens``). Every
sentence gets a seeded random key; the buffer holds the sentences with the
smallest keys, in key order, for as long as their tokens fit the budget
(priority sampling with equal weights). Folding corpora in one by one gives
exactly the buffer that sampling all the data at once would give, so the
buffer is reproducible and the same after a rollback and a re-run. It is stored in
each version folder (``replay.txt.gz``, hashed with the version), so
updates never need the old corpora.

The replay (:meth:`ReplayBuffer.plan`) is counted in tokens: the epochs of
an update replay ``rehearsal.share`` times the new corpus's tokens on
average (:func:`replay_targets`: the same every epoch, or rising across the
update), drawn from the buffer as it was before this corpus, and a final
consolidation pass at a low learning rate replays ``rehearsal.consolidate``
times the new tokens of earlier data alone. Within an epoch no buffered
sentence is replayed twice, so the replay is capped by what the buffer
holds; successive epochs walk on through one seeded shuffle of the buffer,
so an update sees as much of it as it can. :func:`write_epoch` writes an
epoch's training file: the new sentences with the replayed ones spread
evenly between them.
"""

from __future__ import annotations

import gzip
import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from incremental_w2v.errors import DataError

logger = logging.getLogger(__name__)

REPLAY_FILE = "replay.txt.gz"
_HEADER = "#replay-tokens"
_LEGACY_HEADER = "#replay"  # the sentence-count buffer of earlier releases
_KEY_BLOCK = 65536


@dataclass
class ReplayBuffer:
    """A uniform sample of the ``seen`` sentences applied so far, within ``budget`` tokens."""

    budget: int
    seed: int = 1
    seen: int = 0
    # A max-heap on the key (keys negated): the sentence with the largest key leaves first.
    _heap: list[tuple[float, int, str]] = field(default_factory=list)
    tokens: int = 0
    # Every sentence with a key below the cutoff is in the buffer, and none above it: the
    # buffer is the longest run of the key order that fits, whatever order corpora came in.
    cutoff: float = 1.0

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def lines(self) -> list[str]:
        """The buffered sentences, in key order (a uniformly shuffled order)."""
        return [line for _, _, line in sorted(self._heap, reverse=True)]

    def absorb(self, lines: Iterable[str]) -> None:
        """Fold ``lines`` (the sentences of a corpus, in order) into the sample."""
        if self.budget <= 0:
            for _ in lines:
                self.seen += 1
            return
        block, keys = -1, np.empty(0)
        for line in lines:
            # A key depends only on the seed and the sentence's position in the lineage.
            if self.seen // _KEY_BLOCK != block:
                block = self.seen // _KEY_BLOCK
                keys = np.random.default_rng([self.seed, block]).random(_KEY_BLOCK)
            self._offer(float(keys[self.seen % _KEY_BLOCK]), self.seen, line)
            self.seen += 1

    def _offer(self, key: float, index: int, line: str) -> None:
        if key >= self.cutoff:
            return
        size = len(line.split())
        heap = self._heap
        if self.tokens + size > self.budget and (not heap or key > -heap[0][0]):
            self.cutoff = key  # it would be the first to leave again
            return
        heapq.heappush(heap, (-key, index, line))
        self.tokens += size
        self._fit()

    def _fit(self) -> None:
        while self.tokens > self.budget and self._heap:
            neg_key, _, gone = heapq.heappop(self._heap)
            self.tokens -= len(gone.split())
            self.cutoff = -neg_key

    def resize(self, budget: int) -> str | None:
        """Adopt a new configured budget; returns a note when it changes anything."""
        if budget == self.budget:
            return None
        old, self.budget = self.budget, budget
        self._fit()
        if budget < old:
            return f"replay buffer shrunk from {old:,} to {budget:,} tokens"
        return (f"replay buffer grown from {old:,} to {budget:,} tokens: until it fills, it "
                "over-represents corpora applied from now on")

    def plan(self, targets: list[int]) -> list[list[str]]:
        """The replayed sentences of each epoch: about ``targets[e]`` tokens in epoch ``e``.

        One seeded shuffle of the buffer is walked through, epoch after epoch;
        an epoch never takes a sentence twice, so it replays at most the whole
        buffer.
        """
        lines = self.lines
        if not lines:
            return [[] for _ in targets]
        order = np.random.default_rng([self.seed, self.seen, 1]).permutation(len(lines))
        sizes = np.array([len(line.split()) for line in lines], dtype=np.int64)
        out: list[list[str]] = []
        start = 0
        for target in targets:
            taken: list[str] = []
            total = 0
            for step in range(len(lines)):
                if total >= target:
                    break
                i = int(order[(start + step) % len(lines)])
                taken.append(lines[i])
                total += int(sizes[i])
            start = (start + len(taken)) % len(lines)
            out.append(taken)
        return out

    # -- files -----------------------------------------------------------------

    def save(self, path: Path) -> None:
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1, newline="\n") as out:
            out.write(f"{_HEADER}\tseen={self.seen}\tbudget={self.budget}\tseed={self.seed}"
                      f"\tcutoff={self.cutoff!r}\n")
            for neg_key, index, line in sorted(self._heap, reverse=True):
                out.write(f"{-neg_key!r}\t{index}\t{line}\n")

    @classmethod
    def load(cls, path: Path, budget: int, seed: int) -> ReplayBuffer:
        """The buffer stored at ``path``; an empty one if the version has none."""
        if not path.exists():
            return cls(budget=budget, seed=seed)
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
                header = handle.readline().rstrip("\n").split("\t")
                fields = dict(item.split("=", 1) for item in header[1:])
                if header[0] == _HEADER:
                    buffer = cls(budget=int(fields["budget"]), seed=int(fields["seed"]),
                                 seen=int(fields["seen"]), cutoff=float(fields["cutoff"]))
                    for line in handle:
                        key, index, text = line.rstrip("\n").split("\t", 2)
                        buffer._heap.append((-float(key), int(index), text))
                        buffer.tokens += len(text.split())
                    heapq.heapify(buffer._heap)
                elif header[0] == _LEGACY_HEADER:
                    buffer = cls._from_legacy(handle, int(fields["seen"]), budget, seed)
                else:
                    raise ValueError(f"unknown header {header[0]!r}")
        except (OSError, EOFError, ValueError, KeyError) as exc:
            raise DataError(
                f"replay buffer {path} is damaged: {exc}",
                hint="roll back to an earlier version ('incw2v rollback'), whose buffer is intact",
            ) from None
        buffer.seed = seed
        return buffer

    @classmethod
    def _from_legacy(cls, handle: Iterable[str], seen: int, budget: int, seed: int
                     ) -> ReplayBuffer:
        # A uniform sample of a uniform sample is uniform: key the old buffer's sentences
        # afresh and keep what fits the budget.
        buffer = cls(budget=budget, seed=seed)
        buffer.absorb(line.rstrip("\n") for line in handle)
        buffer.seen = seen
        return buffer


@dataclass
class EpochFile:
    """One epoch's training file: what it holds, for ``train()``'s totals."""

    path: Path
    sentences: int
    tokens: int
    replayed_sentences: int
    replayed_tokens: int


def write_epoch(workfile: Path, replay: list[str], out: Path, sentences: int,
                tokens: int) -> EpochFile:
    """``out``: the sentences of ``workfile`` with ``replay`` spread evenly between them.

    ``sentences`` and ``tokens`` are what ``workfile`` holds (from the pass).
    """
    total = max(sentences, 1)
    emitted = 0
    replayed_tokens = 0
    with open(workfile, encoding="utf-8", newline="\n") as src, open(
        out, "w", encoding="utf-8", newline="\n"
    ) as dst:
        for number, line in enumerate(src, start=1):
            dst.write(line)
            due = len(replay) * number // total
            while emitted < due:
                dst.write(replay[emitted])
                dst.write("\n")
                replayed_tokens += len(replay[emitted].split())
                emitted += 1
        for pick in replay[emitted:]:  # only if the file had fewer lines than announced
            dst.write(pick)
            dst.write("\n")
            replayed_tokens += len(pick.split())
    return EpochFile(out, sentences + len(replay), tokens + replayed_tokens, len(replay),
                     replayed_tokens)


def replay_targets(share: float, new_tokens: int, epochs: int, schedule: str) -> list[int]:
    """Tokens to replay in each epoch: ``share`` x the new tokens on average.

    ``flat``: the same every epoch. ``ramp``: rising linearly across the update
    (from ``share/epochs`` to ``2 share``), so the first epochs fit the new data
    and the last ones, at low learning rate, settle it among the old.
    """
    if schedule == "ramp":
        return [round(share * new_tokens * 2 * (e + 0.5) / epochs) for e in range(epochs)]
    return [round(share * new_tokens)] * epochs


def write_lines(lines: list[str], out: Path) -> EpochFile:
    """``out``: just ``lines`` (a consolidation pass over earlier data)."""
    tokens = 0
    with open(out, "w", encoding="utf-8", newline="\n") as dst:
        for line in lines:
            dst.write(line)
            dst.write("\n")
            tokens += len(line.split())
    return EpochFile(out, len(lines), tokens, len(lines), tokens)


def absorb_file(buffer: ReplayBuffer, workfile: Path) -> None:
    """Fold every sentence of ``workfile`` into the buffer."""
    with open(workfile, encoding="utf-8", newline="\n") as handle:
        buffer.absorb(line.rstrip("\n") for line in handle)


@dataclass
class ReplayReport:
    """What an update replayed, summed over its epochs."""

    share: float
    buffer_tokens: int  # the configured budget
    schedule: str = "flat"
    replayed_sentences: int = 0
    replayed_tokens: int = 0  # in the epochs and the consolidation pass
    consolidation_tokens: int = 0
    trained_sentences: int = 0
    trained_tokens: int = 0
    buffer_sentences: int = 0  # what the buffer held when the update drew from it
    buffer_held_tokens: int = 0
    buffer_seen: int = 0

    def add(self, epoch: EpochFile) -> None:
        self.replayed_sentences += epoch.replayed_sentences
        self.replayed_tokens += epoch.replayed_tokens
        self.trained_sentences += epoch.sentences
        self.trained_tokens += epoch.tokens

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
