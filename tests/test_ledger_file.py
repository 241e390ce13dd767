"""The ledger file reads back exactly, fast path or not, and damage fails as it always did."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

import incremental_w2v.train.ledger as ledger_module
from helpers import lee_lines
from incremental_w2v.errors import DataError
from incremental_w2v.train.ledger import Ledger


def line_by_line(path: Path) -> tuple[dict[str, int], int]:
    """The reader as it was: one line at a time, split at the last tab."""
    counts: dict[str, int] = {}
    sentences = 0
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
        for number, line in enumerate(handle, start=1):
            word, _, n = line.rstrip("\n").rpartition("\t")
            if number == 1 and word == "#sentences":
                sentences = int(n)
                continue
            counts[word] = int(n)
    return counts, sentences


def test_a_real_ledger_round_trips_in_order(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    for line in lee_lines():
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    assert len(counts) > 5000
    saved = Ledger(counts=counts, sentences=300)
    saved.save(tmp_path / "ledger.tsv.gz")
    loaded = Ledger.load(tmp_path / "ledger.tsv.gz")
    assert list(loaded.counts.items()) == list(counts.items())  # order is gensim's tie order
    assert loaded.sentences == 300


@pytest.mark.parametrize("block", [3, 17, 4 << 20])
def test_same_result_or_same_failure_as_reading_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    # Words with tabs, lines without a tab or a count, no header, no last newline, and
    # blocks cut anywhere: the block reader must agree with the line reader every time.
    original = ledger_module._line_blocks
    monkeypatch.setattr(ledger_module, "_line_blocks", lambda h: original(h, block))
    rng = random.Random(block)
    path = tmp_path / "ledger.tsv.gz"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(400):
        lines = [f"#sentences\t{rng.randint(0, 99)}"] if rng.random() < 0.8 else []
        for _ in range(rng.randint(0, 12)):
            word = rng.choice(["a", "b\u00e9", "c\td", "x", "12", "#sentences", "", "e\t\tf"])
            count = rng.choice(["1", "23", "", "x", " 5", "7\r"])
            lines.append(word if rng.random() < 0.05 else f"{word}\t{count}")
        path.write_bytes(gzip.compress(("\n".join(lines) + rng.choice(["\n", ""])).encode()))
        try:
            expected = line_by_line(path)
        except ValueError:
            with pytest.raises(DataError, match=r"ledger\.tsv\.gz is damaged"):
                Ledger.load(path)
            outcomes["refused"] += 1
            continue
        got = Ledger.load(path)
        assert (list(got.counts.items()), got.sentences) == (list(expected[0].items()),
                                                             expected[1])
        outcomes["read"] += 1
    assert min(outcomes.values()) > 50


def test_a_truncated_ledger_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "ledger.tsv.gz"
    Ledger(counts={f"w{i}": i for i in range(1, 5000)}, sentences=9).save(path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="is damaged"):
        Ledger.load(path)
