"""Free space is checked before the pass; the working file never outlives a run.

The big corpora here are real sparse files: their size (what ``stat`` and the
check see) exceeds the disk's free space, yet they take no space. The
failure while writing is real too: a subprocess with RLIMIT_FSIZE, whose
writes past the limit fail with EFBIG as on a full disk.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import ROOT
from incremental_w2v.ingest.diskspace import EXPANSION, estimate_working_file
from incremental_w2v.ingest.fingerprint import SourceStat


def leftovers(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir() if p.name.startswith((".work-", ".staging-")))


def manifest(store: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((store / "manifest.json").read_text())
    return data


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def test_base_larger_than_the_disk_fails_early(
    tmp_path: Path, make_config: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    free = shutil.disk_usage(tmp_path).free
    big = sparse(tmp_path / "huge.txt", free + (1 << 30))
    started = time.perf_counter()
    res = cli("add-corpus", make_config(str(big)))
    assert res.code == 73, res.err
    assert "not enough free space" in res.err and "hint:" in res.err
    assert time.perf_counter() - started < 30  # it did not read the file
    store = tmp_path / "store"
    assert leftovers(store) == []
    assert not (store / "manifest.json").exists() or manifest(store)["current"] is None


def test_compressed_update_checked_by_its_expansion(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Any],
) -> None:
    free = shutil.disk_usage(tmp_path).free
    # Smaller than the free space, but not once decompressed.
    big = sparse(tmp_path / "dump.txt.gz", int(free / EXPANSION[".gz"] * 1.5))
    assert big.stat().st_size < free
    config = make_config(str(corpora["a"]), [str(corpora["b"])])
    assert cli("add-corpus", config).code == 0
    before = manifest(tmp_path / "store")
    config = make_config(str(corpora["a"]), [str(corpora["b"]), str(big)])
    res = cli("add-corpus", config)
    assert res.code == 73, res.err
    assert "not enough free space" in res.err
    assert manifest(tmp_path / "store") == before
    assert leftovers(tmp_path / "store") == []


def test_estimate() -> None:
    assert estimate_working_file([("a.txt", SourceStat(size=1000))]) == 1050
    assert estimate_working_file([("s3://b/a.txt.gz?x=1", SourceStat(size=1000)),
                                  ("b.bz2", SourceStat(size=10))]) == 4050
    assert estimate_working_file([("fifo", SourceStat(size=0, rereadable=False))]) is None
    assert estimate_working_file([("remote", SourceStat(size=None))]) is None


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_working_file_removed_when_the_disk_fills_up(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Any],
) -> None:
    config = make_config(str(corpora["a"]), [str(corpora["b"])])
    assert cli("add-corpus", config).code == 0
    store = tmp_path / "store"
    before = manifest(store)
    config = make_config(str(corpora["a"]), [str(corpora["b"]), str(corpora["c"])])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "incremental_w2v", "add-corpus", str(config)],
        capture_output=True, text=True, env=env, timeout=120,
        preexec_fn=_limit_file_size(16 << 10),  # the working file of c is ~40 KiB
    )
    assert proc.returncode == 73, proc.stderr
    assert "no space left while writing the working file" in proc.stderr
    assert leftovers(store) == []
    assert manifest(store) == before
    # And with room again, the same run goes through.
    assert cli("add-corpus", config).code == 0
    assert leftovers(store) == []


def test_working_file_removed_on_bad_data_and_after_commit(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Any],
) -> None:
    lines = corpora["c"].read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"".join(lines[:50]) + b"caf\xe9\n" + b"".join(lines[50:]))
    config = make_config(str(corpora["a"]), [str(corpora["b"]), str(bad)])
    res = cli("add-corpus", config)
    assert res.code == 65 and "line 51" in res.err
    store = tmp_path / "store"
    assert leftovers(store) == []
    assert manifest(store)["current"] == "v0002"
