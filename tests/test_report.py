"""The HTML report: self-contained, holds what it claims, renders in a real browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Result
from incremental_w2v.config.schema import load_config
from incremental_w2v.store.store import Store

PNG = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r"<img alt='([^']*)' src='data:image/png;base64,([A-Za-z0-9+/=]+)'>")


def build(make_config: Callable[..., Path], corpora: dict[str, Path], cli: Callable[..., Result],
          rebuild: bool) -> Path:
    config = make_config(corpora["a"], [corpora["b"], corpora["c"]],
                         extra="watch: [government, fire, notaword]")
    assert cli("add-corpus", config).code == 0
    if rebuild:
        assert cli("rebuild", config).code == 0
    return config


def test_report_holds_what_it_claims(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = build(make_config, corpora, cli, rebuild=True)
    out = tmp_path / "report.html"
    run = cli("report", config, "--output", out)
    assert run.code == 0, run.err
    assert "4 versions, 4 plots" in run.out
    page = out.read_text(encoding="utf-8")
    images = IMG.findall(page)
    assert [alt for alt, _ in images] == [
        "scores per version", "vocabulary size per version", "drift per update",
        "gap to the last rebuild",
    ]
    for _, data in images:
        raw = base64.b64decode(data)
        assert raw.startswith(PNG) and len(raw) > 5000
    for title in ("Scores across versions", "Vocabulary growth", "Drift per update",
                  "Gap to the last rebuild", "Watch words: neighbours per version"):
        assert f"<h2>{title}</h2>" in page
    # Self-contained: nothing fetched from anywhere.
    assert not re.search(r"<(script|link|iframe)\b", page)
    assert not re.search(r"""(src|href)=['"](?!data:)""", page)

    store = Store(load_config(config).store_path)
    for version in ("v0001", "v0002", "v0003", "v0004"):
        meta = store.read_meta(version)
        assert f"<td>{version}" in page
        assert f"{meta.scores['wordsim353']['value']:.4f}" in page
        first, sim = meta.watch["neighbours"]["government"][0]
        assert f"{first} ({sim:.2f})" in page
    assert "<h3>notaword</h3>" in page and "not in the vocabulary" in page
    assert "v0004 (current)" in page and "<td>rebuild</td>" in page
    rebuilt, replaced = store.read_meta("v0004"), store.read_meta("v0003")
    a, b = replaced.scores["simlex999"]["value"], rebuilt.scores["simlex999"]["value"]
    assert "<td>v0004</td><td>v0003</td>" in page
    assert f"{a:.4f} → {b:.4f} ({b - a:+.4f})" in page

    missing = cli("report", config, "--output", tmp_path / "nope" / "r.html")
    assert missing.code == 73


def test_report_axes_coverage_width_branches_and_pruned_versions(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = build(make_config, corpora, cli, rebuild=False)  # v0001 a, v0002 b, v0003 c
    assert cli("rollback", config, "v0002", "--exclude-rolled-back").code == 0
    d = tmp_path / "d.txt"
    d.write_bytes(corpora["a"].read_bytes()[:30000])
    assert cli("add-corpus", config, d).code == 0  # v0004, parent v0002: a branch
    assert cli("prune", config, "--keep", "1").code == 0  # v0001..v0003 keep their record
    out = tmp_path / "report.html"
    run = cli("report", config, "--output", out, "--json")
    assert run.code == 0, run.err
    figures = {f["title"]: f for f in run.json()["figures"]}
    # Every axis of every plot is labelled.
    for title, figure in figures.items():
        for axis in figure["axes"]:
            assert axis["xlabel"] and axis["ylabel"], (title, axis)
    # The score plot shows each score's coverage: in the legend, and a panel of its own.
    scores, coverage = figures["Scores across versions"]["axes"]
    assert all(re.search(r"\(coverage now \d+%\)$", label) for label in scores["legend"])
    assert len(scores["legend"]) == 3
    assert coverage["ylabel"] == "coverage of the set (%)"
    assert coverage["legend"] == [] and len(coverage["segments"]) >= 3
    # The rollback's branch is drawn as a branch: v0004 is joined to v0002, its parent,
    # and nothing joins v0003 (the abandoned version before it) to v0004.
    x = {v: float(i) for i, v in enumerate(figures["Scores across versions"]["x"])}
    segments = {tuple(s) for s in scores["segments"]}
    assert (x["v0002"], x["v0004"]) in segments
    assert (x["v0003"], x["v0004"]) not in segments
    assert (x["v0002"], x["v0003"]) in segments  # the left branch is still drawn
    page = out.read_text(encoding="utf-8")
    assert "<td>v0002 (branch)</td>" in page and "branch from v0002" not in page  # in the PNG
    assert page.count("committed, pruned") == 3 and "class='pruned'" in page
    assert "committed, pruned, rolled back to v0002" in page  # v0003, left by the rollback
    # The plots use the page's width.
    assert "img{width:100%" in page and "max-width:1100px" not in page


def test_report_without_rebuild_says_so(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = build(make_config, corpora, cli, rebuild=False)
    out = tmp_path / "r.html"
    assert cli("report", config, "--output", out).code == 0
    page = out.read_text(encoding="utf-8")
    assert len(IMG.findall(page)) == 3
    assert "No rebuild in this store yet" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=90,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(apt-get install chromium)")
def test_report_renders_in_headless_chromium(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = build(make_config, corpora, cli, rebuild=True)
    out = tmp_path / "report.html"
    assert cli("report", config, "--output", out).code == 0
    # The browser itself says how many of the page's images it decoded.
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text(encoding="utf-8").replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{const ok=[...document.images].filter("
        "i=>i.complete&&i.naturalWidth>0).length;document.body.setAttribute('data-decoded',"
        "ok+'/'+document.images.length)})</script></body>"), encoding="utf-8")
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert 'data-decoded="4/4"' in dom.stdout, dom.stderr[-2000:]
    # Each plot is as wide as the page's text.
    probe.write_text(out.read_text(encoding="utf-8").replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{const w=[...document.images].map(i=>"
        "Math.round(100*i.getBoundingClientRect().width/document.body.clientWidth));"
        "document.body.setAttribute('data-widths',w.join(','))})</script></body>"),
        encoding="utf-8")
    dom = chromium("--virtual-time-budget=5000", "--window-size=1400,1000", "--dump-dom",
                   probe.as_uri())
    widths = re.search(r'data-widths="([0-9,]+)"', dom.stdout)
    assert widths and all(int(w) >= 99 for w in widths.group(1).split(",")), dom.stdout[-500:]
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,3000", out.as_uri())
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[:2] == (3000, 1200)
    ink = (pixels[..., :3] < 0.5).any(axis=2)  # dark pixels: text, lines, bars
    rows_with_ink = ink.any(axis=1).nonzero()[0]
    assert rows_with_ink.max() > 1500  # the page really extends down through the plots
