"""The parent version is loaded while the pass reads: in the right order, errors intact.

Real runs (in-process CLI and a real tokenising pool): the loading thread must
start only after the pool has forked its workers, its errors (a damaged
model) must reach the user as before, and a failed pass must not leave it
running once the store's lock is released.
"""

from __future__ import annotations

import gzip
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Result, lee_lines, write_config
from incremental_w2v.ingest.pool import BATCH_CHARS, tokenized_batches
from incremental_w2v.ingest.tokenize import TokenizeSettings
from incremental_w2v.train.background import Background


def test_result_waits_and_reraises_the_threads_error() -> None:
    gate = threading.Event()

    def slow() -> int:
        gate.wait(5)
        return 42

    job = Background(slow, "test")
    job.start()
    job.start()  # a second start does nothing
    gate.set()
    assert job.result() == 42

    def broken() -> int:
        raise ValueError("damaged")

    failing = Background(broken, "test")
    failing.start()
    failing.wait()
    with pytest.raises(ValueError, match="damaged"):
        failing.result()


def test_a_job_never_started_runs_in_the_caller() -> None:
    seen: list[str] = []
    job = Background(lambda: seen.append(threading.current_thread().name) or 1, "test")
    assert job.result() == 1
    assert seen == [threading.main_thread().name]
    assert job.result() == 1  # computed once
    assert len(seen) == 1


def test_on_started_comes_after_every_worker_is_forked() -> None:
    texts = [line for line in lee_lines() for _ in range(3)]
    alive: list[int] = []

    def on_started() -> None:
        alive.append(len(multiprocessing.active_children()))

    before = len(multiprocessing.active_children())
    batches = list(tokenized_batches(texts, TokenizeSettings(), 2, batch_chars=4096,
                                     on_started=on_started))
    assert len(batches) > 10
    assert alive == [before + 2]  # called once, with both workers already running


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "load-parent"]


def big_gz(tmp_path: Path, name: str, repeat: int = 8) -> Path:
    # Large enough (by its estimated text size) for the pass to use the pool.
    path = tmp_path / name
    path.write_bytes(gzip.compress("".join(lee_lines() * repeat).encode(), 1))
    return path


def test_a_damaged_parent_is_still_refused_and_nothing_committed(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"])
    assert cli("add-corpus", config).code == 0
    model = tmp_path / "store" / "versions" / "v0001" / "model.wv.vectors.npy"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    before = (tmp_path / "store" / "manifest.json").read_bytes()
    result = cli("add-corpus", config, big_gz(tmp_path, "new.txt.gz"))
    assert result.code == 65, result.err  # as before the load moved into the pass
    assert "does not match its recorded sha256" in result.err
    assert (tmp_path / "store" / "manifest.json").read_bytes() == before
    assert not loader_threads()


def test_a_failed_pass_waits_for_the_loader(tmp_path: Path, cli: Callable[..., Result]) -> None:
    # A parent that takes a while to verify and load (100k words x 100, about 80 MB),
    # and a corpus that fails early in its pass: without the wait the loader would
    # still be running when add-corpus returns.
    from gensim.models import Word2Vec

    big = Word2Vec(vector_size=100, min_count=1, workers=1)
    big.build_vocab_from_freq({f"w{i}": 10 + i % 7 for i in range(100_000)})
    big.save(str(tmp_path / "big.model"))
    del big
    config = write_config(tmp_path, f"""
        store: store
        model: {{vector_size: 100, min_count: 1, epochs: 1, workers: 2}}
        base: {{model: {tmp_path / 'big.model'}}}
        """)
    assert cli("add-corpus", config).code == 0
    bad = big_gz(tmp_path, "bad.txt.gz", repeat=24)  # several batches
    raw = gzip.decompress(bad.read_bytes())
    cut = 3 * BATCH_CHARS // 2  # after the first batch: the pool has started, and the loader
    bad.write_bytes(gzip.compress(raw[:cut] + b"\xff\xfe" + raw[cut:], 1))
    result = cli("add-corpus", config, bad)
    assert result.code == 65, result.err
    assert "bad.txt.gz" in result.err
    assert not loader_threads()  # joined before the lock was released
