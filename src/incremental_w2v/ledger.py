"""The vocabulary ledger: cumulative raw counts of every token ever seen.

gensim's ``build_vocab(update=True)`` applies ``min_count`` to the new batch
only, so a word seen 3 times in each of 10 dumps never enters with
``min_count=5``. The ledger keeps the total, including words still below the
threshold, and is stored with each version so that rollback restores it.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

LEDGER_FILE = "ledger.tsv.gz"


@dataclass
class Ledger:
    counts: dict[str, int] = field(default_factory=dict)
    sentences: int = 0

    @property
    def tokens(self) -> int:
        return sum(self.counts.values())

    def add(self, counts: Mapping[str, int], sentences: int) -> None:
        """Fold one corpus's counts in, keeping first-seen order (gensim's tie order)."""
        mine = self.counts
        for word, n in counts.items():
            mine[word] = mine.get(word, 0) + n
        self.sentences += sentences

    def admitted(self, min_count: int) -> list[str]:
        return [w for w, n in self.counts.items() if n >= min_count]

    @classmethod
    def from_counts(cls, counts: Iterable[tuple[str, int]], sentences: int) -> Ledger:
        return cls(counts=dict(counts), sentences=sentences)

    def save(self, path: Path) -> None:
        # Level 1: the ledger is rewritten every version; speed beats a few percent of size.
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1, newline="\n") as out:
            out.write(f"#sentences\t{self.sentences}\n")
            buf = io.StringIO()
            for word, n in self.counts.items():
                buf.write(f"{word}\t{n}\n")
            out.write(buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> Ledger:
        counts: dict[str, int] = {}
        sentences = 0
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
                for number, line in enumerate(handle, start=1):
                    word, _, n = line.rstrip("\n").rpartition("\t")
                    if number == 1 and word == "#sentences":
                        sentences = int(n)
                        continue
                    counts[word] = int(n)
        except (OSError, EOFError, ValueError) as exc:
            raise DataError(
                f"vocabulary ledger {path} is damaged: {exc}",
                hint="roll back to an earlier version ('incw2v rollback'), whose ledger is intact",
            ) from None
        return cls(counts=counts, sentences=sentences)


def count_tokens(sentences: Iterable[list[str]]) -> Counter[str]:
    counter: Counter[str] = Counter()
    for tokens in sentences:
        counter.update(tokens)
    return counter
