"""A cron run with nothing new is cheap: it loads no model, hashes no corpus
whose size and mtime are unchanged, reads only the current version's meta,
and does not import gensim at all.

Each behaviour is checked from outside: a damaged model, a corpus whose
content changed behind an unchanged size+mtime, a damaged meta.json of an
older version, all go unnoticed by a no-op run, and would not by a run that
read them (the counter-checks show that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import ROOT


def lineage(corpora: dict[str, Path], make_config: Callable[..., Path],
            cli: Callable[..., Any]) -> Path:
    config = make_config(str(corpora["a"]), [str(corpora["b"]), str(corpora["c"])])
    assert cli("add-corpus", config).code == 0
    return config


def test_noop_does_not_load_the_model(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Any],
) -> None:
    config = lineage(corpora, make_config, cli)
    model = tmp_path / "store" / "versions" / "v0003" / "model"
    model.write_bytes(model.read_bytes()[:-100] + b"\0" * 100)  # same size, damaged
    res = cli("add-corpus", config, "--json")
    assert res.code == 0, res.err
    assert res.json()["applied"] == [] and res.json()["current"] == "v0003"
    # Counter-check: a run that has to load the model notices the damage.
    extra = tmp_path / "d.txt"
    extra.write_text("".join(reversed(corpora["a"].read_text().splitlines(keepends=True))))
    res = cli("add-corpus", config, str(extra))
    assert res.code == 65 and "does not match its recorded sha256" in res.err


def test_noop_does_not_hash_unchanged_corpora(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Any],
) -> None:
    config = lineage(corpora, make_config, cli)
    for name in ("a", "b"):  # a base corpus and a queued one
        path = corpora[name]
        st = path.stat()
        data = path.read_bytes()
        path.write_bytes(data[::-1])  # other bytes, same size ...
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the same mtime
    res = cli("add-corpus", config, "--json")
    assert res.code == 0, res.err
    assert res.json()["applied"] == []
    # Counter-check: once the mtime differs, the content is hashed and the change found.
    os.utime(corpora["b"])
    res = cli("add-corpus", config)
    assert res.code == 65 and "changed since it was applied" in res.err


def test_noop_reads_only_the_current_versions_meta(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Any],
) -> None:
    config = lineage(corpora, make_config, cli)
    for old in ("v0001", "v0002"):
        (tmp_path / "store" / "versions" / old / "meta.json").write_text("{damaged")
    res = cli("add-corpus", config, "--json")
    assert res.code == 0, res.err
    assert res.json()["current"] == "v0003"
    assert cli("history", config).code == 65  # counter-check: reading them fails


NOOP_PROBE = """
import json, sys
from incremental_w2v.cli.main import main
code = main(["add-corpus", sys.argv[1], "-q"])
print(json.dumps({"code": code, "loaded": sorted(m for m in ("gensim", "scipy", "smart_open")
                                                  if m in sys.modules)}))
"""


def test_noop_does_not_import_gensim(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Any],
) -> None:
    config = lineage(corpora, make_config, cli)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", NOOP_PROBE, str(config)], capture_output=True,
                          text=True, env=env, timeout=60)
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert probe == {"code": 0, "loaded": []}, proc.stderr
