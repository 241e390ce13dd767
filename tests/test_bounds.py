"""Inputs without bounds: files read whole must be regular files within a size and a line
cap, and every source read gives up after ``sources.stall_timeout`` seconds of silence.
Each case runs in a real process with a deadline: a hang fails the test instead of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from faults import leftovers, tree_hashes
from helpers import http_server, run_subprocess
from incremental_w2v.errors import DataError, InputMissingError
from incremental_w2v.ingest.small_files import MAX_BYTES, MAX_LINES, read_lines
from test_crash_sweep import TINY_MODEL, write_workspace

DEADLINE = 90  # seconds: far above what any of these runs needs


def run(*args: object, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    return run_subprocess(*args, timeout=timeout)  # type: ignore[arg-type]


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Files that are not small regular files, each behind a plain-looking name."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    made = {}
    (folder / "zero.tsv").symlink_to("/dev/zero")
    made["dev-zero"] = folder / "zero.tsv"
    (folder / "random.tsv").symlink_to("/dev/urandom")
    made["dev-urandom"] = folder / "random.tsv"
    os.mkfifo(folder / "fifo.tsv")
    made["fifo-no-writer"] = folder / "fifo.tsv"
    (folder / "dir.tsv").mkdir()
    made["folder"] = folder / "dir.tsv"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.tsv"))
    made["socket"] = folder / "sock.tsv"
    with open(folder / "huge.tsv", "wb") as handle:  # sparse: costs nothing on disk
        handle.truncate(MAX_BYTES + 1)
    made["too-large"] = folder / "huge.tsv"
    (folder / "lines.tsv").write_text("#\n" * (MAX_LINES + 1))
    made["too-many-lines"] = folder / "lines.tsv"
    try:
        yield made
    finally:
        sock.close()


KINDS = ["dev-zero", "dev-urandom", "fifo-no-writer", "folder", "socket", "too-large",
         "too-many-lines"]


@pytest.mark.parametrize("kind", KINDS)
def test_read_lines_refuses_what_is_not_a_small_regular_file(
    hostile: dict[str, Path], kind: str
) -> None:
    started = time.monotonic()
    with pytest.raises(DataError):
        read_lines(hostile[kind], "evaluation file", hint="")
    assert time.monotonic() - started < 10
    with pytest.raises(InputMissingError):
        read_lines(hostile[kind].with_name("missing.tsv"), "evaluation file", hint="")


@pytest.mark.parametrize(("key", "kind"), [
    *(("word_pairs", kind) for kind in KINDS),
    ("analogy_files", "dev-zero"), ("analogy_files", "fifo-no-writer")])
def test_an_evaluation_file_that_is_not_a_small_regular_file_is_refused(
    tmp_path: Path, hostile: dict[str, Path], kind: str, key: str
) -> None:
    workspace = tmp_path / "ws"
    write_workspace(workspace, ())
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + "evaluation:\n  sets: []\n"
                      f"  {key}: [{{name: mine, path: '{hostile[kind]}'}}]\n")
    result = run("add-corpus", config)
    assert result.returncode == 65, result.stderr
    assert "evaluation file" in result.stderr
    assert not (workspace / "store" / "manifest.json").exists()


def test_a_fifo_evaluation_file_is_refused_even_with_a_writer(tmp_path: Path) -> None:
    """A pipe is refused for what it is, not for being empty: a writer changes nothing."""
    workspace = tmp_path / "ws"
    write_workspace(workspace, ())
    fifo = workspace / "pairs.tsv"
    os.mkfifo(fifo)
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + "evaluation:\n  sets: []\n"
                      "  word_pairs: [{name: mine, path: pairs.tsv}]\n")

    def write() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # waits for the reader, which may never come
        with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "w") as pipe:
            pipe.write("a\tb\t1.0\n" * 10)  # the reader refuses the pipe and closes it

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    result = run("add-corpus", config)
    assert result.returncode == 65 and "not a regular file" in result.stderr


@pytest.mark.parametrize("kind", ["dev-zero", "fifo-no-writer", "too-large"])
def test_the_drift_anchor_list_and_the_alignment_pairs_are_bounded(
    tmp_path: Path, hostile: dict[str, Path], kind: str
) -> None:
    from gensim.models import Word2Vec

    from helpers import lee_lines

    workspace = tmp_path / "ws"
    write_workspace(workspace, ("b.txt",))
    assert run("add-corpus", workspace / "config.yaml").returncode == 0
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + f"drift: {{anchors: '{hostile[kind]}'}}\n")
    compared = run("compare", config, "v1", "v2")
    assert compared.returncode == 65, compared.stderr
    assert "anchor word list" in compared.stderr
    model = workspace / "m.model"
    Word2Vec([line.split() for line in lee_lines()[:80]], vector_size=8, min_count=2,
             workers=1).save(str(model))
    aligned = run("align", model, model, "--output", workspace / "out.kv",
                  "--anchors", hostile[kind])
    assert aligned.returncode == 65, aligned.stderr
    assert "anchor file" in aligned.stderr


def test_a_config_that_never_ends_is_refused(tmp_path: Path) -> None:
    for path in ("/dev/zero", "/dev/urandom"):
        result = run("validate", path)
        assert result.returncode == 78 and "larger than" in result.stderr, result.stderr


# --- sources that stall ------------------------------------------------------------------


def stalling_config(workspace: Path, queue: str, timeout: float = 2) -> Path:
    write_workspace(workspace, ())
    config = workspace / "config.yaml"
    config.write_text(f"store: store\n{TINY_MODEL}base: {{corpus: a.txt}}\n"
                      f"sources: {{stall_timeout: {timeout}}}\nqueue: [{{uri: '{queue}'}}]\n")
    assert run("add-corpus", config.with_name("base.yaml")).returncode == 0
    return config


def assert_stalls(config: Path, what: str) -> None:
    """add-corpus fails with 74 in time, naming the setting; the store is as it was."""
    store = config.parent / "store"
    skip = {".lock", ".lock.info", ".readers"}
    before = tree_hashes(store, skip)
    started = time.monotonic()
    result = run("add-corpus", config)
    assert result.returncode == 74, result.stderr
    assert what in result.stderr and "sources.stall_timeout" in result.stderr
    assert time.monotonic() - started < 60
    assert tree_hashes(store, skip) == before
    assert leftovers(store) == []


def test_a_queued_fifo_with_no_writer_fails_after_the_stall_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "incoming.txt"
    os.mkfifo(fifo)
    config = stalling_config(tmp_path / "ws", str(fifo))
    assert_stalls(config, "had no writer")
    # The lock was released with the failure: the next run is not refused.
    assert run("status", config).returncode == 0


def test_a_fifo_whose_writer_goes_silent_fails_after_the_stall_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "incoming.txt"
    os.mkfifo(fifo)
    config = stalling_config(tmp_path / "ws", str(fifo))
    done = threading.Event()

    def write_then_hang() -> None:
        with open(fifo, "w") as pipe:
            pipe.write("some words of a corpus that stops halfway\n" * 100)
            pipe.flush()
            done.wait(DEADLINE)

    threading.Thread(target=write_then_hang, daemon=True).start()
    try:
        assert_stalls(config, "sent no data")
    finally:
        done.set()


class Silent(BaseHTTPRequestHandler):
    """Answers HEAD; on GET sends the headers and part of the body, then nothing."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()

    def do_GET(self) -> None:
        self.do_HEAD()
        self.wfile.write(b"some words of a corpus\n" * 100)
        self.wfile.flush()
        time.sleep(DEADLINE)


def test_a_silent_server_fails_after_the_stall_timeout(tmp_path: Path) -> None:
    with http_server(Silent) as base:
        assert_stalls(stalling_config(tmp_path / "ws", f"{base}/corpus.txt"), "timed out")


@pytest.mark.parametrize("timeout", ["0", "-1", ".inf", ".nan", "true", "1e9"])
def test_the_stall_timeout_is_a_sensible_number(tmp_path: Path, timeout: str) -> None:
    workspace = tmp_path / "ws"
    write_workspace(workspace, ())
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + f"sources: {{stall_timeout: {timeout}}}\n")
    result = run("validate", config)
    assert result.returncode == 78 and "sources.stall_timeout" in result.stderr


@pytest.mark.parametrize("uri", ["http://h.example/a file.txt", "https://h.example/a\tb.txt",
                                 "http://h.example/a\x7fb.txt", "https://h.example/x.txt?q=a b",
                                 "http://h ost.example/x.txt"])
def test_an_http_uri_with_a_space_or_control_character_is_refused(
    tmp_path: Path, uri: str
) -> None:
    """http.client refuses such URLs with InvalidURL: that was an internal error (70)."""
    workspace = tmp_path / "ws"
    write_workspace(workspace, ())
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + f"queue: [{{uri: {uri!r}}}]\n".replace("'", '"')
                      .replace("\\x7f", "\\u007f"))
    result = run("validate", config)
    assert result.returncode == 78, result.stderr
    assert "%20" in result.stderr
    extra = run("add-corpus", workspace / "base.yaml", uri)
    assert extra.returncode == 78, extra.stderr


def test_an_http_uri_with_non_ascii_characters_is_read(
    tmp_path: Path, http_root: tuple[str, Path]
) -> None:
    base_url, root = http_root
    workspace = tmp_path / "ws"
    write_workspace(workspace, ())
    (root / "données été.txt").write_bytes((workspace / "b.txt").read_bytes())
    result = run("add-corpus", workspace / "config.yaml", f"{base_url}/données%20été.txt",
                 "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"][0]["words_added"] > 0
