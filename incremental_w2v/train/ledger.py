"""The vocabulary ledger: cumulative raw counts of every token ever seen.

gensim's ``build_vocab(update=True)`` applies ``min_count`` to the new batch
only, so a word seen 3 times in each of 10 dumps never enters with
``min_count=5``. The ledger keeps the total, including words still below the
threshold, and is stored with each version so that rollback restores it.

Memory bound (``ledger.max_size``): when the ledger holds more distinct
tokens than that after a corpus is folded in, tokens with count <= 1 that
are not in the model are dropped, then count <= 2, and so on (a rising
threshold, like gensim's ``max_vocab_size`` pruning) until it fits. Words
in the model's vocabulary are never dropped. A pruned token that shows up
again starts counting from zero, so it can enter later than it would have.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incremental_w2v.errors import DataError

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

    def prune(self, max_size: int | None, protected: Container[str]) -> PruneReport:
        """Bound the number of distinct tokens (see the module doc); never drops ``protected``."""
        report = PruneReport()
        if max_size is None or len(self.counts) <= max_size:
            return report
        threshold = 0
        while len(self.counts) > max_size:
            threshold += 1
            doomed = [w for w, n in self.counts.items() if n <= threshold and w not in protected]
            for word in doomed:
                report.tokens += self.counts.pop(word)
            report.types += len(doomed)
            if all(w in protected for w in self.counts):
                break  # only the model's words are left: they are never dropped
        report.threshold = threshold
        report.remaining = len(self.counts)
        return report

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
            with gzip.open(path, "rb") as handle:
                for number, text in enumerate(_line_blocks(handle)):
                    if number == 0:
                        first, _, rest = text.partition("\n")
                        word, _, n = first.rpartition("\t")
                        if word == "#sentences":
                            sentences, text = int(n), rest
                    counts.update(_rows(text))
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise DataError(
                f"vocabulary ledger {path} is damaged: {exc}",
                hint="roll back to an earlier version ('incw2v rollback'), whose ledger is intact",
            ) from None
        return cls(counts=counts, sentences=sentences)


_NO_TAB = re.compile(r"^[^\t\n]*$", re.MULTILINE)


def _rows(text: str) -> Iterable[tuple[str, int]]:
    """``(word, count)`` of whole ``word TAB count`` lines (each ending in a newline).

    Every update reads the whole ledger: when each line has exactly one tab
    (always, for tokens), one split of the block does it without a tuple per
    line; otherwise each line is split at its last tab, and a line without a
    tab or count fails as it always did.
    """
    if text.count("\t") == text.count("\n") and not _NO_TAB.search(text, 0, len(text) - 1):
        parts = text.replace("\t", "\n").split("\n")
        parts.pop()
        return zip(parts[0::2], map(int, parts[1::2]), strict=True)
    rows = [line.rpartition("\t") for line in text.split("\n")[:-1]]
    return ((word, int(n)) for word, _, n in rows)


def _line_blocks(handle: gzip.GzipFile, size: int = 4 << 20) -> Iterator[str]:
    """The file's text in blocks of whole lines (a last line gets its newline added)."""
    rest = b""
    while block := handle.read(size):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if cut:  # no UTF-8 sequence contains a newline byte: each block decodes alone
            yield block[:cut].decode("utf-8")
    if rest:
        yield rest.decode("utf-8") + "\n"


@dataclass
class PruneReport:
    """What one pruning dropped: distinct tokens, their summed count, the final threshold."""

    types: int = 0
    tokens: int = 0
    threshold: int = 0
    remaining: int = 0

    def note(self, max_size: int) -> str:
        return (
            f"ledger pruned to {self.remaining} of max_size {max_size} distinct tokens: dropped "
            f"{self.types} tokens with cumulative count <= {self.threshold} "
            f"({self.tokens} occurrences), none of them in the model"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"types": self.types, "tokens": self.tokens, "threshold": self.threshold,
                "remaining": self.remaining}


def count_tokens(sentences: Iterable[list[str]]) -> Counter[str]:
    counter: Counter[str] = Counter()
    for tokens in sentences:
        counter.update(tokens)
    return counter
