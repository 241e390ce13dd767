"""Everything the README advertises works after the README's install (``pip install -e .``),
and a module that is missing anyway stops a run up front with 78, never mid-run with 70.

Missing modules are real: a ``sitecustomize`` in the subprocess's path removes them from
the import system, as an install without them would.
"""

from __future__ import annotations

import bz2
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from helpers import ROOT, committed, lee_lines, package_env, write_config
from incremental_w2v.config.needs import REPORT, S3, SEVENZIP, ZSTD, installed

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def core_closure() -> set[str]:
    """Every distribution the core install brings in (dependencies of dependencies, with
    the extras asked for), by normalised name. The project's own requirements are read
    from its installed metadata, which pip made from pyproject.toml."""
    todo = [Requirement(r) for r in md.requires("incremental_w2v") or []]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-").replace(".", "-")
        key = name + "".join(sorted(f"[{e}]" for e in req.extras))
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        for sub in md.requires(req.name) or []:
            child = Requirement(sub)
            if child.marker is None or any(
                child.marker.evaluate({"extra": e}) for e in ["", *req.extras]
            ):
                child.marker = None
                todo.append(child)
    return seen


def test_the_core_install_provides_every_advertised_format_and_feature() -> None:
    closure = core_closure()
    providers = md.packages_distributions()
    for need in (ZSTD, SEVENZIP, REPORT, S3):
        tops = {m.split(".")[0] for m in need.modules}
        dists = {d.lower().replace("_", "-").replace(".", "-")
                 for top in tops for d in providers.get(top, [])}
        # backports.zstd lives in the 'backports' namespace, shared with other packages.
        if need is ZSTD:
            dists = {d for d in dists if "zstd" in d} or dists
        assert dists & closure, f"{need.feature}: {sorted(dists)} not in the core install"
    assert installed("backports.zstd") or installed("compression.zstd")


def run(argv: list[str], cwd: Path, blocked: list[str]) -> subprocess.CompletedProcess[str]:
    site = cwd / "site-blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked))
    env = package_env()
    env["PYTHONPATH"] = f"{site}{os.pathsep}{env['PYTHONPATH']}"
    return subprocess.run([sys.executable, "-m", "incremental_w2v", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def zst_corpus(path: Path) -> None:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd
    path.write_bytes(zstd.compress("".join(lee_lines()[100:200]).encode()))


def zst_lineage(folder: Path) -> Path:
    """A config whose base is plain text and whose queue holds a .zst dump."""
    (folder / "base.txt").write_text("".join(lee_lines()[:100]), encoding="utf-8")
    zst_corpus(folder / "dump.txt.zst")
    return write_config(folder, """
        store: store
        model: {vector_size: 8, min_count: 2, epochs: 1, workers: 1}
        base: {corpus: base.txt}
        queue: [{uri: dump.txt.zst}]
        """)


def test_a_missing_module_stops_the_run_before_anything_is_committed(tmp_path: Path) -> None:
    config = zst_lineage(tmp_path)
    blocked = ["backports.zstd", "compression"]
    checked = run(["validate", str(config)], tmp_path, blocked)
    assert checked.returncode == 78, checked.stderr
    assert ".zst decompression needs the module backports.zstd" in checked.stderr
    assert "dump.txt.zst" in checked.stderr and "hint: reinstall incw2v" in checked.stderr
    added = run(["add-corpus", str(config)], tmp_path, blocked)
    assert added.returncode == 78, added.stderr
    assert "nothing was done" in added.stderr and "internal error" not in added.stderr
    assert committed(tmp_path / "store") == []  # not even the base
    # With the module there, the same config runs through (the README's install has it).
    done = run(["add-corpus", str(config), "--json"], tmp_path, [])
    assert done.returncode == 0, done.stderr
    report = run(["report", str(config), "--output", str(tmp_path / "r.html")], tmp_path,
                 ["matplotlib"])
    assert report.returncode == 78 and "the HTML report needs the module matplotlib" in \
        report.stderr
    assert run(["report", str(config), "--output", str(tmp_path / "r.html")], tmp_path,
               []).returncode == 0


def test_a_module_missing_where_nothing_checked_is_still_78_not_70(tmp_path: Path) -> None:
    from gensim.test.utils import datapath

    (tmp_path / "base.txt").write_text("".join(lee_lines()[:100]), encoding="utf-8")
    dump = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    shutil.copy(datapath(dump), tmp_path / "wiki.xml.bz2")
    assert bz2.BZ2File(tmp_path / "wiki.xml.bz2").read(10)
    config = write_config(tmp_path, """
        store: store
        model: {vector_size: 8, min_count: 2, epochs: 1, workers: 1}
        base: {corpus: base.txt}
        queue: [{uri: wiki.xml.bz2, format: wikipedia}]
        """)
    failed = run(["add-corpus", str(config)], tmp_path, ["gensim.corpora.wikicorpus"])
    assert failed.returncode == 78, failed.stderr
    assert "the module gensim.corpora.wikicorpus is not installed" in failed.stderr
    assert "committed versions are intact" in failed.stderr


@pytest.mark.slow
def test_readme_install_in_a_fresh_venv_reads_zst_and_writes_the_report(tmp_path: Path) -> None:
    """The README's own install, in a new venv without the test extras (minutes)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(ROOT)],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    config = zst_lineage(tmp_path)
    incw2v = str(venv / "bin" / "incw2v")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for argv in (["validate", str(config)], ["add-corpus", str(config)],
                 ["report", str(config), "--output", str(tmp_path / "r.html")]):
        done = subprocess.run([incw2v, *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=600)
        assert done.returncode == 0, (argv, done.stderr)


def test_every_command_that_publishes_checks_its_targets_modules_before_changing_anything(
    tmp_path: Path, corpora: dict[str, Path], make_config: Any, cli: Any
) -> None:
    # Without boto3, rollback, promote and rebuild used to move the current version (or
    # commit a rebuild) and only then fail to publish to an s3:// target.
    config = make_config(corpora["a"], [corpora["b"]])
    assert cli("add-corpus", config).code == 0  # v0001, v0002
    config.write_text(config.read_text() + "gates: {wordsim353: {min: 0.99}}\n")
    assert cli("add-corpus", config, corpora["c"]).code == 3  # v0003: a candidate
    config.write_text(config.read_text() + "sources: {s3_endpoint_url: 'http://127.0.0.1:9'}\n"
                      "publish: [{to: 's3://models/news'}]\n")
    manifest = (tmp_path / "store" / "manifest.json").read_bytes()
    for argv in (["rollback", "v0001"], ["promote", "v0003"], ["rebuild"], ["publish"]):
        refused = run([argv[0], str(config), *argv[1:]], tmp_path, ["boto3"])
        assert refused.returncode == 78, (argv, refused.stderr)
        assert "nothing was done" in refused.stderr, (argv, refused.stderr)
        assert "s3:// URIs needs the module boto3" in refused.stderr
        assert "s3://models/news" in refused.stderr
        assert (tmp_path / "store" / "manifest.json").read_bytes() == manifest, argv
    assert committed(tmp_path / "store") == ["v0001", "v0002", "v0003"]
