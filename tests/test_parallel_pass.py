"""The streaming pass tokenised in worker processes is the serial pass, byte for byte.

Real corpora (gensim's Lee corpus as text and as gzipped JSON Lines, gensim's
shortened Wikipedia dump), every tokenize mode, batches small enough that
each corpus is cut into many of them, so the order of the results matters.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gensim.test.utils import datapath
from pydantic import BaseModel

from incremental_w2v.errors import DataError
from incremental_w2v.ingest.corpus import Corpus, CorpusSpec, PassResult, stream_once
from incremental_w2v.ingest.formats.catalog import JsonlFormat, TextFormat, WikipediaFormat
from incremental_w2v.ingest.pool import MIN_PARALLEL_BYTES, choose_processes
from incremental_w2v.ingest.tokenize import TokenizeSettings

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

MODES = {
    "simple": TokenizeSettings(),
    "simple-cased-deaccent": TokenizeSettings(lowercase=False, deaccent=True),
    "whitespace-split": TokenizeSettings(mode="whitespace", lowercase=False, min_len=1,
                                         max_len=100_000),
    "whitespace-lower": TokenizeSettings(mode="whitespace", min_len=3, max_len=12),
    "regex": TokenizeSettings(mode="regex", pattern=r"[\w']+", deaccent=True),
}


@pytest.fixture(scope="module")
def real_corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, BaseModel]]:
    folder = tmp_path_factory.mktemp("real")
    lee = Path(datapath("lee_background.cor")).read_bytes()
    (folder / "lee.txt.gz").write_bytes(gzip.compress(lee))
    jsonl = "".join(
        json.dumps({"body": {"text": line}}) + "\n"
        for line in lee.decode().splitlines()
    )
    (folder / "lee.jsonl").write_text(jsonl, encoding="utf-8")
    return {
        "text": (folder / "lee.txt.gz", TextFormat()),
        "jsonl": (folder / "lee.jsonl", JsonlFormat(field="body.text")),
        "wikipedia": (Path(datapath(ENWIKI)), WikipediaFormat(unit="paragraph")),
    }


def run_pass(path: Path, fmt: BaseModel, tokenize: TokenizeSettings, processes: int,
             batch_chars: int = 4096) -> tuple[str, PassResult]:
    spec = CorpusSpec(uri=str(path), name=path.name, format=fmt, tokenize=tokenize)
    out = io.StringIO()
    result = stream_once(Corpus(spec, path.parent), out, None, processes=processes,
                         batch_chars=batch_chars)
    return out.getvalue(), result


CASES = [
    # The Wikipedia reader is slow (gensim's filter_wiki): one mode by default, all with --slow.
    pytest.param(kind, mode, marks=[pytest.mark.slow] if kind == "wikipedia" and mode != "simple"
                 else [])
    for kind in ("text", "jsonl", "wikipedia")
    for mode in sorted(MODES)
]


@pytest.mark.parametrize(("kind", "mode"), CASES)
def test_parallel_pass_is_the_serial_pass(
    real_corpora: dict[str, tuple[Path, BaseModel]], kind: str, mode: str
) -> None:
    path, fmt = real_corpora[kind]
    serial_text, serial = run_pass(path, fmt, MODES[mode], processes=0)
    parallel_text, parallel = run_pass(path, fmt, MODES[mode], processes=2)
    assert serial.tokens > 10_000 and len(serial_text) > 10 * 4096  # many batches
    assert parallel_text.encode() == serial_text.encode()
    # Same counts in the same first-seen order: gensim breaks frequency ties by it.
    assert list(parallel.counts.items()) == list(serial.counts.items())
    assert (parallel.sentences, parallel.tokens, parallel.sha256, parallel.raw_bytes) == (
        serial.sentences, serial.tokens, serial.sha256, serial.raw_bytes)
    assert parallel.stats == serial.stats
    assert serial.sentences == serial_text.count("\n")
    assert serial.tokens == sum(len(line.split()) for line in serial_text.splitlines())


def bad_corpora(folder: Path) -> dict[str, tuple[Path, BaseModel]]:
    lines = Path(datapath("lee_background.cor")).read_bytes().splitlines(keepends=True)
    mis_encoded = folder / "latin1.txt"
    mis_encoded.write_bytes(b"".join(lines[:250]) + "caf\u00e9 na\u00efve\n".encode("latin-1")
                            + b"".join(lines[250:]))
    truncated = folder / "cut.txt.gz"
    whole = gzip.compress(b"".join(lines))
    truncated.write_bytes(whole[: len(whole) * 2 // 3])
    bad_json = folder / "bad.jsonl"
    bad_json.write_text("".join(json.dumps({"text": line.decode()}) + "\n" for line in lines[:200])
                        + '{"text": "unterminated\n', encoding="utf-8")
    wiki = bz2.decompress(Path(datapath(ENWIKI)).read_bytes())
    cut_wiki = folder / "cut-wiki.xml"
    cut_wiki.write_bytes(wiki[: len(wiki) // 2])
    return {
        "mis-encoded": (mis_encoded, TextFormat()),
        "truncated-gz": (truncated, TextFormat()),
        "malformed-jsonl": (bad_json, JsonlFormat()),
        "truncated-wiki": (cut_wiki, WikipediaFormat()),
    }


@pytest.mark.parametrize("case", ["mis-encoded", "truncated-gz", "malformed-jsonl",
                                  "truncated-wiki"])
def test_bad_data_fails_with_the_same_message_in_parallel(tmp_path: Path, case: str) -> None:
    path, fmt = bad_corpora(tmp_path)[case]
    messages = []
    for processes in (0, 2):
        with pytest.raises(DataError) as caught:
            run_pass(path, fmt, MODES["simple"], processes)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert str(path.name) in messages[0]
    if case == "mis-encoded":
        assert "line 251" in messages[0]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_pool_stops_at_once_when_writing_fails(
    real_corpora: dict[str, tuple[Path, BaseModel]]
) -> None:
    """A full disk (/dev/full: every write fails with ENOSPC) stops the workers with the pass."""
    path, fmt = real_corpora["text"]
    spec = CorpusSpec(uri=str(path), name=path.name, format=fmt, tokenize=MODES["simple"])
    full = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 (closing it fails too)
    try:
        with pytest.raises(OSError) as caught:
            stream_once(Corpus(spec, path.parent), full, None, processes=2, batch_chars=4096)
        assert caught.value.errno == errno.ENOSPC
        assert _children(os.getpid()) == []  # while the traceback still holds the frame
    finally:
        with contextlib.suppress(OSError):
            full.close()


def test_when_parallel_tokenising_pays() -> None:
    simple = MODES["simple"]
    many = MIN_PARALLEL_BYTES * 10
    assert choose_processes(MODES["whitespace-split"], many) == 0  # str.split is cheaper inline
    assert choose_processes(simple, MIN_PARALLEL_BYTES - 1) == 0  # too small for a pool
    cores = len(os.sched_getaffinity(0))
    assert choose_processes(simple, many) == (cores if cores > 1 else 0)
    assert choose_processes(simple, None) == (cores if cores > 1 else 0)  # a pipe: unknown size
    assert choose_processes(simple, many, workers=1) == 0  # the user asked for one core
    assert choose_processes(simple, many, workers=cores + 4) == (cores if cores > 1 else 0)


WORKER_SCRIPT = """
import io, sys
from pathlib import Path
from incremental_w2v.ingest.corpus import Corpus, CorpusSpec, stream_once
from incremental_w2v.ingest.formats.catalog import TextFormat
from incremental_w2v.ingest.tokenize import TokenizeSettings

spec = CorpusSpec(uri=sys.argv[1], name="fifo", format=TextFormat(), tokenize=TokenizeSettings())
stream_once(Corpus(spec, Path(".")), io.StringIO(), None, processes=2, batch_chars=10)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """Workers inherit the store lock's descriptor: they must not outlive a killed run.

    The corpus is a named pipe that the test keeps open, so the pass is still
    running (its workers started) when the parent is killed.
    """
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(fifo)], env=env)
    try:
        with open(fifo, "w", encoding="utf-8") as writer:
            deadline = time.monotonic() + 30
            workers: list[int] = []
            while len(workers) < 2 and time.monotonic() < deadline:
                # The source is read in 1 MiB blocks: write whole blocks to keep it moving.
                writer.write("some real words to tokenise in a worker\n" * 30_000)
                writer.flush()
                time.sleep(0.05)
                workers = _children(proc.pid)
            assert len(workers) >= 2, "the pool did not start"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while any(map(_alive, workers)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not [w for w in workers if _alive(w)], "workers outlived their killed parent"
    except BrokenPipeError:
        pytest.fail("the reader went away before it was killed")
    finally:
        if proc.poll() is None:
            proc.kill()
