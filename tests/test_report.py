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
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,3000", out.as_uri())
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[:2] == (3000, 1200)
    ink = (pixels[..., :3] < 0.5).any(axis=2)  # dark pixels: text, lines, bars
    rows_with_ink = ink.any(axis=1).nonzero()[0]
    assert rows_with_ink.max() > 1500  # the page really extends down through the plots
