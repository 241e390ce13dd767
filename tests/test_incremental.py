"""Updates that do not wreck old words: ledger bound, learning-rate decay, rehearsal,
freezing, and FastText as a second model type, all with real gensim training."""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gensim.models import FastText, Word2Vec

from helpers import Result, committed, version_model, write_config
from incremental_w2v.config.schema import ModelParams, UpdateSettings, load_config
from incremental_w2v.progress import Progress
from incremental_w2v.train.ledger import Ledger, count_tokens
from incremental_w2v.train.model import apply_update, freeze_old_words, train_base
from incremental_w2v.train.rehearsal import (
    EpochFile,
    ReplayBuffer,
    replay_targets,
    write_epoch,
)
from test_training import tokens_of


def load(config: Path, version: str, cls: type[Word2Vec] = Word2Vec) -> Word2Vec:
    model = version_model(config.parent / "store", version)
    assert isinstance(model, cls)
    return model


def history(cli: Callable[..., Result], config: Path) -> list[dict[str, Any]]:
    out = cli("history", config, "--json")
    assert out.code == 0, out.err
    rows: list[dict[str, Any]] = out.json()
    return rows


def as_epochs(path: Path, sentences: int, tokens: int) -> Callable[[int], EpochFile]:
    """Every epoch trains on the same file, without replay."""
    return lambda epoch: EpochFile(path, sentences, tokens, 0, 0)


def workfile_of(path: Path, dest: Path) -> tuple[Path, int, int, Ledger]:
    sentences = tokens_of(path)
    dest.write_text("".join(" ".join(s) + "\n" for s in sentences))
    ledger = Ledger()
    ledger.add(count_tokens(sentences), len(sentences))
    return dest, len(sentences), sum(map(len, sentences)), ledger


# -- ledger memory bound --------------------------------------------------------------


def test_prune_drops_rarest_first_and_never_model_words(corpora: dict[str, Path]) -> None:
    ledger = Ledger()
    ledger.add(count_tokens(tokens_of(corpora["a"])), 1)
    ones = [w for w, n in ledger.counts.items() if n == 1]
    twos = [w for w, n in ledger.counts.items() if n == 2]
    protected = set(ones[:5])
    size = len(ledger.counts) - len(ones) - len(twos) // 2
    report = ledger.prune(size, protected)
    assert len(ledger.counts) <= size
    assert report.threshold == 2  # count 1 was not enough, so the threshold rose to 2
    assert protected <= set(ledger.counts)
    assert all(n >= 3 for w, n in ledger.counts.items() if w not in protected)
    assert report.types == len(ones) + len(twos) - len(protected)
    assert report.tokens == len(ones) - len(protected) + 2 * len(twos)
    # Under the bound nothing happens.
    assert ledger.prune(len(ledger.counts), set()).types == 0


def test_ledger_bound_through_add_corpus_is_reported(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(corpora["a"], [corpora["b"]], extra="ledger: {max_size: 3000}")
    with caplog.at_level(logging.WARNING):
        assert cli("add-corpus", config).code == 0
    rows = history(cli, config)
    for row, version in zip(rows, ("v0001", "v0002"), strict=True):
        model = load(config, version)
        with gzip.open(config.parent / "store" / "versions" / version / "ledger.tsv.gz",
                       "rt") as handle:
            stored = {line.split("\t")[0] for line in handle if not line.startswith("#")}
        assert len(stored) <= 3000
        assert set(model.wv.index_to_key) <= stored  # model words are never pruned
        pruned = row["update_params"]["ledger_pruned"]
        assert pruned["types"] > 0 and pruned["remaining"] == len(stored)
        assert any("ledger pruned" in note for note in row["notes"])
    assert "ledger pruned" in caplog.text


# -- learning rate across updates ------------------------------------------------------


def test_alpha_decays_per_update_and_restarts_after_rollback(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    config.write_text(config.read_text().replace(
        "update:\n  epochs: 2", "update:\n  epochs: 2\n  alpha: 0.02\n  alpha_decay: 0.5"))
    assert cli("add-corpus", config).code == 0
    rows = history(cli, config)
    assert [r["update_params"].get("start_alpha") for r in rows] == [None, 0.02, 0.01]
    assert [r["update_params"].get("update_index") for r in rows] == [None, 0, 1]
    model = load(config, "v0003")
    assert (model.alpha, model.min_alpha, model.epochs) == (0.025, 0.0001, 2)
    # Rolled back to v0002, the re-applied corpus is again the lineage's second update.
    assert cli("rollback", config, "v0002").code == 0
    assert cli("add-corpus", config).code == 0
    assert history(cli, config)[-1]["update_params"]["start_alpha"] == 0.01


def test_decayed_alpha_really_trains_less(corpora: dict[str, Path], tmp_path: Path) -> None:
    """The recorded rate is the one used: a smaller start alpha moves old words less."""
    params = ModelParams(vector_size=16, min_count=3, negative=3, epochs=2, workers=1)
    work, n, tokens, ledger = workfile_of(corpora["a"], tmp_path / "a.txt")
    base, _ = train_base(params, ledger, work, n, tokens)
    base.save(str(tmp_path / "base.model"))
    work_b, n_b, tokens_b, ledger_b = workfile_of(corpora["b"], tmp_path / "b.txt")
    moved = []
    for index in (0, 3):
        model = Word2Vec.load(str(tmp_path / "base.model"))
        old = model.wv.vectors.copy()
        total = Ledger(dict(ledger.counts), ledger.sentences)
        total.add(ledger_b.counts, n_b)
        update = UpdateSettings(alpha=0.0125, alpha_decay=0.25)
        report = apply_update(model, params, update, total, as_epochs(work_b, n_b, tokens_b),
                              n_b, params.epochs, update_index=index)
        assert report.alpha[0] == pytest.approx(0.0125 * 0.25**index)
        moved.append(float(np.abs(model.wv.vectors[: len(old)] - old).mean()))
    assert moved[1] < moved[0] / 5


# -- rehearsal -------------------------------------------------------------------------


def numbered(count: int, seed: int = 0) -> list[str]:
    """``count`` sentences 'i w w ...' of 1 to 40 tokens: the first token says which one."""
    rng = random.Random(seed)
    return [" ".join([str(i)] + ["w"] * rng.randrange(0, 40)) for i in range(count)]


def test_buffer_is_a_uniform_sample_within_its_token_budget() -> None:
    lines = numbered(20_000)
    sizes = {int(line.split()[0]): len(line.split()) for line in lines}

    def fill(seed: int, chunks: int = 1) -> ReplayBuffer:
        buffer = ReplayBuffer(budget=20_000, seed=seed)
        step = len(lines) // chunks
        for start in range(0, len(lines), step):  # corpora folded in one by one
            buffer.absorb(lines[start:start + step])
        return buffer

    one, again, other, chunked = fill(1), fill(1), fill(2), fill(1, chunks=4)
    assert one.lines == again.lines == chunked.lines and one.lines != other.lines
    assert one.seen == 20_000
    held = sum(len(line.split()) for line in one.lines)
    assert held == one.tokens and 20_000 - 40 < held <= 20_000
    picked = np.array([int(line.split()[0]) for line in one.lines])
    assert len(set(picked)) == len(picked)
    # Uniform over positions: each quarter of the stream holds about a quarter.
    quarters = np.bincount(picked // 5000, minlength=4)
    assert all(abs(q / len(picked) - 0.25) < 0.05 for q in quarters), quarters
    # Long and short sentences alike: the sample's mean length is the stream's.
    assert abs(np.mean([sizes[i] for i in picked]) - np.mean(list(sizes.values()))) < 1.5
    # The buffer is what sampling everything at once gives: a prefix of the key order.
    assert one.cutoff < 1.0 and all(-k < one.cutoff for k, _, _ in one._heap)


def test_buffer_survives_its_file_and_a_smaller_budget(tmp_path: Path) -> None:
    buffer = ReplayBuffer(budget=5_000, seed=3)
    buffer.absorb(numbered(2_000))
    buffer.save(tmp_path / "replay.txt.gz")
    back = ReplayBuffer.load(tmp_path / "replay.txt.gz", 5_000, 3)
    assert back.lines == buffer.lines and back.seen == 2_000 and back.cutoff == buffer.cutoff
    assert back.resize(2_000) is not None and back.tokens <= 2_000
    assert back.lines == buffer.lines[: len(back.lines)]  # the smallest keys stay


def test_replay_is_counted_in_tokens_and_never_twice_in_an_epoch(tmp_path: Path) -> None:
    """Old sentences ten times longer than the new: the replay is still a token budget, and
    an epoch replays each buffered sentence at most once, however large the share."""
    old = [" ".join([f"old{i}"] + ["x"] * 49) for i in range(400)]  # 50 tokens each
    new = [" ".join([f"new{i}"] + ["y"] * 4) for i in range(1_000)]  # 5 tokens each
    work = tmp_path / "new.txt"
    work.write_text("".join(line + "\n" for line in new))
    new_tokens = 5 * len(new)
    buffer = ReplayBuffer(budget=10_000, seed=5)
    buffer.absorb(old)
    assert buffer.tokens == 10_000 and len(buffer) == 200

    # share 0.5: 2,500 tokens (50 long sentences) per epoch, a new part of the buffer each time.
    epochs = buffer.plan([round(0.5 * new_tokens)] * 4)
    for drawn in epochs:
        assert len(drawn) == len(set(drawn)) == 50
        assert sum(len(line.split()) for line in drawn) == 2_500
    assert len({line for drawn in epochs for line in drawn}) == 200  # the whole buffer, once

    # share 5: 25,000 tokens wanted, but an epoch replays the buffer's 10,000 at most.
    epochs = buffer.plan([round(5 * new_tokens)] * 3)
    for drawn in epochs:
        assert sorted(drawn) == sorted(buffer.lines)

    fed = write_epoch(work, epochs[0], tmp_path / "epoch.txt", len(new), new_tokens)
    mixed = (tmp_path / "epoch.txt").read_text().splitlines()
    assert fed.tokens == sum(len(line.split()) for line in mixed) == new_tokens + 10_000
    assert fed.sentences == len(mixed) == len(new) + 200 and fed.replayed_tokens == 10_000
    assert [line for line in mixed if line.startswith("new")] == new
    # Spread evenly: about five new sentences between two replayed ones, none at the end.
    replayed_at = [i for i, line in enumerate(mixed) if line.startswith("old")]
    assert max(np.diff(replayed_at)) <= 7 and replayed_at[0] <= 6


def test_rehearsal_through_add_corpus_records_tokens_trained(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The base's sentences are ten of Lee's paragraphs each: ten times longer than the new.
    lines = corpora["a"].read_text().splitlines()
    long = tmp_path / "long.txt"
    long.write_text("".join(" ".join(lines[i:i + 10]) + "\n" for i in range(0, len(lines), 10)))
    short = tmp_path / "short.txt"
    short.write_text("".join(" ".join(line.split()[:8]) + "\n" for line in
                             corpora["b"].read_text().splitlines()))
    config = make_config(long, [short], extra="rehearsal: {buffer_tokens: 4000, share: 0.5}")
    fed: list[tuple[int, int, list[str]]] = []
    real_train = Word2Vec.train

    def recording_train(self: Word2Vec, *args: Any, **kwargs: Any) -> Any:
        text = Path(kwargs["corpus_file"]).read_text().splitlines()
        assert kwargs["total_examples"] == len(text)  # gensim does not check in this mode
        assert kwargs["total_words"] == sum(len(line.split()) for line in text)
        fed.append((kwargs["total_words"], kwargs["epochs"], text))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(Word2Vec, "train", recording_train)
    assert cli("add-corpus", config).code == 0
    monkeypatch.undo()
    rows = history(cli, config)
    reh = rows[1]["update_params"]["rehearsal"]
    new_tokens = rows[1]["corpora"][1]["tokens"]
    update_calls = fed[1:]  # the base trained in one call
    assert len(update_calls) == 2 and all(epochs == 1 for _, epochs, _ in update_calls)
    new_lines = [" ".join(s) for s in tokens_of(short)]
    longest = max(map(len, tokens_of(long)))
    for tokens, _, text in update_calls:
        assert [line for line in text if line in set(new_lines)] == new_lines
        replayed = [line for line in text if line not in set(new_lines)]
        assert len(replayed) == len(set(replayed))  # never twice in an epoch
        replayed_tokens = sum(len(line.split()) for line in replayed)
        assert 0.5 * new_tokens <= replayed_tokens < 0.5 * new_tokens + longest
        assert tokens == new_tokens + replayed_tokens
    assert reh["trained_tokens"] == sum(tokens for tokens, _, _ in update_calls)
    assert reh["replayed_tokens"] == reh["trained_tokens"] - 2 * new_tokens
    assert reh["trained_tokens"] <= 2 * (1.5 * new_tokens + longest)


def test_a_ramp_replays_more_in_later_epochs_and_the_same_in_all() -> None:
    flat = replay_targets(0.4, 10_000, 5, "flat")
    ramp = replay_targets(0.4, 10_000, 5, "ramp")
    assert flat == [4_000] * 5
    assert ramp == sorted(ramp) and ramp[0] < flat[0] < ramp[-1]
    assert sum(ramp) == sum(flat)


def test_ramp_and_consolidation_through_add_corpus(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(corpora["a"], [corpora["b"]], extra=(
        "rehearsal: {buffer_tokens: 8000, share: 0.3, schedule: ramp, consolidate: 0.2, "
        "consolidate_alpha: 0.004}"))
    calls: list[tuple[float, float, list[str]]] = []
    real_train = Word2Vec.train

    def recording_train(self: Word2Vec, *args: Any, **kwargs: Any) -> Any:
        text = Path(kwargs["corpus_file"]).read_text().splitlines()
        calls.append((kwargs["start_alpha"], kwargs["end_alpha"], text))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(Word2Vec, "train", recording_train)
    assert cli("add-corpus", config).code == 0
    monkeypatch.undo()
    update = calls[1:]  # the base trained in one call
    assert len(update) == 2 + 1  # two epochs, then the consolidation pass
    new_lines = {" ".join(s) for s in tokens_of(corpora["b"])}
    old_lines = {" ".join(s) for s in tokens_of(corpora["a"])}
    replayed = [sum(len(line.split()) for line in text if line not in new_lines)
                for _, _, text in update]
    assert replayed[0] < replayed[1]  # the ramp
    start, end, last = update[-1]
    assert start == 0.004 and end == 0.0001 and update[1][1] == pytest.approx(0.0001)
    assert last and all(line in old_lines for line in last)  # earlier data only
    reh = history(cli, config)[1]["update_params"]["rehearsal"]
    new_tokens = history(cli, config)[1]["corpora"][1]["tokens"]
    assert reh["schedule"] == "ramp"
    assert reh["consolidation_tokens"] == replayed[2] >= 0.2 * new_tokens
    assert reh["replayed_tokens"] == sum(replayed)
    assert reh["trained_tokens"] == 2 * new_tokens + sum(replayed)


def test_rehearsal_end_to_end_without_old_corpora_and_reproducible_after_rollback(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]],
                         extra="rehearsal: {buffer_tokens: 9000, share: 0.5, schedule: flat, "
                               "seed: 4}")
    text = config.read_text()
    config.write_text(text.replace(f"  - uri: {corpora['c']}\n", ""))
    assert cli("add-corpus", config).code == 0
    # The old corpora are gone: the buffer alone feeds the replay.
    work_lines = {n: {" ".join(s) for s in tokens_of(corpora[n])} for n in "abc"}
    corpora["a"].unlink()
    corpora["b"].unlink()
    text = text.replace(f"  - uri: {corpora['b']}\n", "")
    config.write_text(text)
    assert cli("add-corpus", config).code == 0
    rows = history(cli, config)
    reh = rows[2]["update_params"]["rehearsal"]
    new = rows[2]["corpora"][2]
    # Half the new tokens is more than the buffer holds: each epoch replays all of it, once.
    assert 0.5 * new["tokens"] > reh["buffer_held_tokens"]
    assert reh["replayed_tokens"] == 2 * reh["buffer_held_tokens"]
    assert reh["trained_tokens"] == 2 * new["tokens"] + reh["replayed_tokens"]
    assert reh["trained_sentences"] == 2 * new["sentences"] + reh["replayed_sentences"]
    versions = config.parent / "store" / "versions"
    meta = json.loads((versions / "v0003" / "meta.json").read_text())
    assert "replay.txt.gz" in meta["files"]
    v3 = ReplayBuffer.load(versions / "v0003" / "replay.txt.gz", 9000, 4)
    assert 8800 < v3.tokens <= 9000
    assert v3.seen == sum(c["sentences"] for c in rows[2]["corpora"])
    # A sample of every corpus so far (each is about a third of the sentences seen).
    for name in "abc":
        share = sum(line in work_lines[name] for line in v3.lines) / len(v3)
        assert 0.15 < share < 0.5, (name, share)
    # Rollback restores v0002's buffer; re-applying c gives the very same buffer again.
    assert cli("rollback", config, "v0002").code == 0
    assert cli("add-corpus", config).code == 0
    v4 = (versions / "v0004" / "replay.txt.gz").read_bytes()
    assert gzip.decompress(v4) == gzip.decompress((versions / "v0003" / "replay.txt.gz")
                                                  .read_bytes())
    assert history(cli, config)[-1]["update_params"]["rehearsal"] == reh


def test_replay_buffer_is_hashed_with_the_version(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]])
    assert cli("add-corpus", config).code == 0
    replay = config.parent / "store" / "versions" / "v0003" / "replay.txt.gz"
    replay.write_bytes(gzip.compress(b"#replay-tokens\tseen=1\tbudget=9\tseed=1\tcutoff=1.0\n"
                                      b"0.5\t0\tforged line\n"))
    fourth = corpora["a"].with_name("d.txt")
    fourth.write_text("".join(reversed(corpora["a"].read_text().splitlines(keepends=True))))
    other = make_config(corpora["a"], [corpora["b"], corpora["c"], fourth])
    result = cli("add-corpus", other)
    assert result.code == 65 and "replay.txt.gz does not match" in result.err


# -- freezing --------------------------------------------------------------------------


def test_frozen_phase_keeps_old_vectors_bit_identical_and_new_words_move(
    corpora: dict[str, Path], tmp_path: Path
) -> None:
    params = ModelParams(vector_size=16, min_count=3, negative=3, epochs=2, workers=2)
    work, n, tokens, ledger = workfile_of(corpora["a"], tmp_path / "a.txt")
    model, _ = train_base(params, ledger, work, n, tokens)
    old_n = len(model.wv)
    work_b, n_b, tokens_b, ledger_b = workfile_of(corpora["b"], tmp_path / "b.txt")
    ledger.add(ledger_b.counts, n_b)
    fresh = [w for w in ledger.admitted(3) if w not in model.wv.key_to_index]
    model.build_vocab_from_freq({w: ledger.counts[w] for w in fresh}, update=True,
                                trim_rule=lambda *a: 2)
    before = model.wv.vectors.copy()
    syn1 = model.syn1neg.copy()
    with freeze_old_words(model, old_n):
        assert len(model.wv.vectors_lockf) == len(model.wv)
        model.train(corpus_file=str(work_b), total_examples=n_b, total_words=tokens_b,
                    epochs=1, start_alpha=0.02, end_alpha=0.01)
    # corpus_file training honours the lock factors: not one bit of an old vector moved.
    assert np.array_equal(model.wv.vectors[:old_n], before[:old_n])
    moved = np.abs(model.wv.vectors[old_n:] - before[old_n:]).sum(axis=1) > 0
    assert moved.mean() > 0.9
    assert not np.array_equal(model.syn1neg, syn1)
    assert len(model.wv.vectors_lockf) == 1  # restored: nothing stays frozen


def test_freeze_through_add_corpus_then_unfrozen_update(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    config = make_config(corpora["a"], [corpora["b"]], extra="rehearsal: {share: 0.3}")
    config.write_text(config.read_text().replace(
        "update:\n  epochs: 2", "update:\n  epochs: 2\n  freeze_epochs: 5"))
    assert cli("add-corpus", config).code == 0
    v1, v2 = load(config, "v0001"), load(config, "v0002")
    assert np.array_equal(v2.wv.vectors[: len(v1.wv)], v1.wv.vectors)
    assert len(v2.wv) > len(v1.wv)
    row = history(cli, config)[1]["update_params"]
    assert row["frozen_epochs"] == 2 and row["frozen_words"] == len(v1.wv)
    # Partly frozen (1 of 2 epochs): old words move in the second epoch.
    config.write_text(config.read_text().replace("freeze_epochs: 5", "freeze_epochs: 1")
                      .replace(f"  - uri: {corpora['b']}\n",
                               f"  - uri: {corpora['b']}\n  - uri: {corpora['c']}\n"))
    assert cli("add-corpus", config).code == 0
    v3 = load(config, "v0003")
    assert not np.array_equal(v3.wv.vectors[: len(v2.wv)], v2.wv.vectors)
    assert len(v3.wv.vectors_lockf) in (1, len(v3.wv)) and v3.wv.vectors_lockf.min() == 1.0


def test_full_length_lock_array_is_resized_so_new_words_are_not_frozen(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """A user's model with its own full-length lockf (e.g. pretrained words pinned)."""
    base = Word2Vec(tokens_of(corpora["a"]), vector_size=16, min_count=3, negative=3,
                    workers=1, epochs=1, seed=3)
    base.wv.vectors_lockf = np.zeros(len(base.wv), dtype=np.float32)  # all pinned
    base.save(str(tmp_path / "pinned.model"))
    config = tmp_path / "c.yaml"
    config.write_text(
        "store: store\nmodel: {vector_size: 16, negative: 3, epochs: 1, min_count: 3, "
        f"workers: 1}}\nbase: {{model: {tmp_path / 'pinned.model'}}}\n"
        f"queue: [{{uri: {corpora['b']}}}]\n"
    )
    assert cli("add-corpus", config).code == 0
    updated = load(config, "v0002")
    n = len(base.wv)
    assert len(updated.wv.vectors_lockf) == len(updated.wv)
    assert updated.wv.vectors_lockf[:n].max() == 0 and updated.wv.vectors_lockf[n:].min() == 1
    assert np.array_equal(updated.wv.vectors[:n], base.wv.vectors)


# -- FastText --------------------------------------------------------------------------

FASTTEXT = "model: {type: fasttext, vector_size: 16, window: 3, min_count: 3, negative: 3, " \
    "epochs: 2, workers: 2, seed: 7, bucket: 5000, min_n: 3, max_n: 4}\n"


def fasttext_config(tmp_path: Path, base: Path, queue: list[Path], extra: str = "") -> Path:
    config = tmp_path / "ft.yaml"
    config.write_text(
        f"store: store\n{FASTTEXT}update: {{epochs: 2}}\n{extra}base: {{corpus: {base}}}\n"
        + "queue:\n" + "".join(f"  - uri: {q}\n" for q in queue)
    )
    return config


def test_fasttext_lineage_vocabulary_equals_full_build(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    config = fasttext_config(tmp_path, corpora["a"], [corpora["b"], corpora["c"]],
                             "rehearsal: {share: 0.3}\n")
    result = cli("add-corpus", config)
    assert result.code == 0, result.err
    assert cli("status", config).code == 0
    lineage = load(config, "v0003", FastText)
    assert isinstance(lineage, FastText)
    full = FastText(vector_size=16, min_count=3, negative=3, workers=1, bucket=5000,
                    min_n=3, max_n=4)
    full.build_vocab([s for n in "abc" for s in tokens_of(corpora[n])])
    assert set(lineage.wv.index_to_key) == set(full.wv.index_to_key)
    for word in full.wv.index_to_key:
        for attr in ("count", "sample_int"):
            assert lineage.wv.get_vecattr(word, attr) == full.wv.get_vecattr(word, attr), word
    assert lineage.wv.vectors_vocab.shape == (len(lineage.wv), 16)
    assert lineage.wv.vectors_ngrams.shape == (5000, 16)
    assert lineage.wv["zzzunseenword"].shape == (16,)  # n-grams still give OOV vectors
    # The export path loads the right class too.
    out = tmp_path / "ft.kv"
    assert cli("export", config, "--format", "keyedvectors", "--output", out).code == 0


def test_fasttext_freeze_keeps_old_words_and_structure_is_fixed(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    config = fasttext_config(tmp_path, corpora["a"], [corpora["b"]],
                             "rehearsal: {share: 0.3}\n")
    config.write_text(config.read_text().replace("update: {epochs: 2}",
                                                 "update: {epochs: 2, freeze_epochs: 2}"))
    assert cli("add-corpus", config).code == 0, "first run"
    v1, v2 = load(config, "v0001", FastText), load(config, "v0002", FastText)
    n = len(v1.wv)
    assert np.array_equal(v2.wv.vectors_vocab[:n], v1.wv.vectors_vocab)
    assert np.array_equal(v2.wv.vectors_ngrams, v1.wv.vectors_ngrams)
    assert np.array_equal(v2.wv.vectors[:n], v1.wv.vectors)
    # New words trained: their rows differ from the ones the vocabulary growth initialised.
    grown = load(config, "v0001", FastText)
    new_words = v2.wv.index_to_key[n:]
    grown.build_vocab_from_freq({w: int(v2.wv.get_vecattr(w, "count")) for w in new_words},
                                update=True, trim_rule=lambda *a: 2)
    assert grown.wv.index_to_key == v2.wv.index_to_key
    assert np.array_equal(grown.wv.vectors_vocab[:n], v2.wv.vectors_vocab[:n])
    changed = np.abs(grown.wv.vectors_vocab[n:] - v2.wv.vectors_vocab[n:]).sum(axis=1) > 0
    assert changed.mean() > 0.9
    # bucket shapes the arrays: it cannot change within a lineage.
    config.write_text(config.read_text().replace("bucket: 5000", "bucket: 6000")
                      + f"  - uri: {corpora['c']}\n")
    changed = cli("add-corpus", config)
    assert changed.code == 78 and "model.bucket" in changed.err


def test_fasttext_hs_base_is_refused(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    hs = FastText(tokens_of(corpora["a"]), vector_size=16, min_count=3, hs=1, negative=0,
                  workers=1, epochs=1, bucket=1000)
    hs.save(str(tmp_path / "hs.model"))
    config = tmp_path / "c.yaml"
    config.write_text(
        f"store: store\n{FASTTEXT.replace('bucket: 5000', 'bucket: 1000')}"
        f"base: {{model: {tmp_path / 'hs.model'}}}\nqueue: [{{uri: {corpora['b']}}}]\n"
    )
    result = cli("add-corpus", config)
    assert result.code == 78 and "hierarchical softmax" in result.err


def test_fasttext_with_arrays_of_unequal_length_is_refused(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    broken = FastText(tokens_of(corpora["a"]), vector_size=16, min_count=3, negative=3,
                      workers=1, epochs=1, bucket=5000, min_n=3, max_n=4)
    # A lock array of the wrong length: gensim would wrap indices onto the wrong words.
    broken.wv.vectors_vocab_lockf = np.ones(len(broken.wv) - 3, dtype=np.float32)
    broken.save(str(tmp_path / "broken.model"))
    config = tmp_path / "c.yaml"
    config.write_text(f"store: store\n{FASTTEXT}base: {{model: {tmp_path / 'broken.model'}}}\n"
                      f"queue: [{{uri: {corpora['b']}}}]\n")
    result = cli("add-corpus", config)
    assert result.code == 65 and "wv.vectors_vocab_lockf=" in result.err, result.err
    assert committed(tmp_path / "store") == []


def test_existing_fasttext_model_as_base(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result]
) -> None:
    mine = FastText(tokens_of(corpora["a"]), vector_size=16, min_count=3, negative=3,
                    workers=1, epochs=1, bucket=5000, min_n=3, max_n=4)
    mine.save(str(tmp_path / "ft.model"))
    body = f"base: {{model: {tmp_path / 'ft.model'}}}\nqueue: [{{uri: {corpora['b']}}}]\n"
    wrong = tmp_path / "w2v.yaml"
    wrong.write_text("store: store-w\nmodel: {vector_size: 16, negative: 3, min_count: 3}\n"
                     + body)
    refused = cli("add-corpus", wrong)
    assert refused.code == 78 and "model.type" in refused.err
    config = tmp_path / "ft.yaml"
    config.write_text(f"store: store\n{FASTTEXT}" + body)
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    assert [a["kind"] for a in result.json()["applied"]] == ["import", "update"]
    updated = load(config, "v0002", FastText)
    assert isinstance(updated, FastText) and len(updated.wv) > len(mine.wv)
    assert np.array_equal(updated.wv.vectors_vocab.shape, (len(updated.wv), 16))


# -- config ----------------------------------------------------------------------------


def test_an_old_sentence_buffer_size_is_read_as_tokens_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from incremental_w2v.config.schema import TOKENS_PER_SENTENCE, parse_config

    with caplog.at_level(logging.WARNING):
        config = parse_config("store: s\nbase: {corpus: a}\nrehearsal: {buffer_size: 50}\n")
    assert config.rehearsal.buffer_tokens == 50 * TOKENS_PER_SENTENCE
    assert "rehearsal.buffer_size is deprecated" in caplog.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("rehearsal: {shar: 0.2}\n", "rehearsal.shar (line 3): unknown key"),
        ("rehearsal: {share: -1}\n", "rehearsal.share (line 3)"),
        ("rehearsal: {buffer_tokens: -5}\n", "rehearsal.buffer_tokens (line 3)"),
        ("rehearsal: {buffer_size: 5, buffer_tokens: 9}\n", "give buffer_tokens only"),
        ("update: {alpha_decay: 1.5}\n", "update.alpha_decay (line 3)"),
        ("update: {freeze_epochs: -1}\n", "update.freeze_epochs (line 3)"),
        ("ledger: {max_size: 0}\n", "ledger.max_size (line 3)"),
        ("model: {type: doc2vec}\n", "model.type (line 3)"),
    ],
)
def test_new_keys_are_validated(body: str, fragment: str) -> None:
    from incremental_w2v.config.schema import parse_config
    from incremental_w2v.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config("store: s\nbase: {corpus: a}\n" + body)
    assert fragment in str(info.value)


def test_default_epochs_keep_an_update_within_its_token_budget(
    corpora: dict[str, Path], tmp_path: Path, cli: Callable[..., Result],
) -> None:
    """The defaults train fewer epochs, with replay, for at most 1.5 x a plain update's tokens."""
    body = f"""
        store: store
        model: {{vector_size: 16, min_count: 3, negative: 3, epochs: 5, workers: 1, seed: 2}}
        base: {{corpus: {corpora['a']}}}
        queue: [{{uri: {corpora['b']}}}]
        """
    config = write_config(tmp_path, body)
    assert cli("add-corpus", config).code == 0
    row = history(cli, config)[1]
    params, new = row["update_params"], row["corpora"][1]["tokens"]
    reh = params["rehearsal"]
    assert params["epochs"] == 4 and reh["schedule"] == "ramp" and reh["share"] == 0.875
    assert reh["replayed_tokens"] > 0
    assert reh["trained_tokens"] == 4 * new + reh["replayed_tokens"]
    assert reh["trained_tokens"] <= 1.5 * 5 * new
    # Explicit epochs win over the budget; without replay an update keeps model.epochs.
    for extra, epochs in (("update: {epochs: 2}", 2), ("rehearsal: {buffer_tokens: 0}", 5),
                          ("rehearsal: {share: 0}", 5), ("update: {budget: 3.0}", 5),
                          ("rehearsal: {share: 2.0}", 2), ("update: {budget: 0.1}", 1)):
        other = write_config(tmp_path, body.rstrip(" ") + "        " + extra + "\n",
                             name="other.yaml")
        assert load_config(other).update_epochs == epochs, extra


def test_training_progress_counts_epochs_of_different_sizes(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a ramp the update's epochs grow; the progress still ends at its total, not 2x."""
    config = make_config(corpora["a"], [corpora["b"]],
                         extra="rehearsal: {share: 1.0, schedule: ramp}\nupdate: {epochs: 3}")
    text = config.read_text().replace("update:\n  epochs: 2\n", "")  # the fixture's own
    config.write_text(text)
    ended: list[tuple[float, float | None]] = []
    real_close = Progress.close

    def recording_close(self: Progress) -> None:
        if self.desc == "training":
            ended.append((self.n, self.total))
        real_close(self)

    monkeypatch.setattr(Progress, "close", recording_close)
    assert cli("add-corpus", config).code == 0
    monkeypatch.undo()
    reh = history(cli, config)[1]["update_params"]["rehearsal"]
    base, update = ended
    assert base[0] == base[1]
    # The update's progress reached what it trained; its planned total is that, but for
    # the whole sentences that make each epoch's replay reach its target.
    longest = max(len(line.split()) for line in corpora["a"].read_text().splitlines())
    assert update[0] == reh["trained_tokens"], (update, reh)
    assert update[1] is not None and abs(update[1] - update[0]) <= 3 * longest, (update, reh)
