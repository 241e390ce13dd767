"""``report``: one self-contained HTML page about a lineage's quality.

Everything comes from the versions' recorded meta (scores, drift, watch
neighbours), so the page costs no model loading. Plots are matplotlib PNGs
embedded as base64 ``data:`` URIs; the page loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from incremental_w2v.config.schema import Config
from incremental_w2v.errors import UsageError
from incremental_w2v.fsutil import atomic_outputs, check_output_folder
from incremental_w2v.store.manifest import VersionMeta, now_iso
from incremental_w2v.store.ops import existing_store

logger = logging.getLogger(__name__)

_CSS = """
body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0} .candidate{color:#b00} .rejected{color:#888}
img{max-width:100%;border:1px solid #eee} .note{color:#555;font-style:italic}
"""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "the HTML report needs matplotlib",
            hint="pip install 'incremental_w2v[extras]'",
        ) from None
    return plt



def _drift_plot(plt: Any, x: list[int], names: list[str], rows: list[tuple[int, dict[str, Any]]],
                labels: tuple[str, str], title: str) -> str:
    """Drift and 1 - neighbour overlap of the versions in ``rows``, as an embedded PNG."""
    fig, ax = plt.subplots(figsize=(9, 3))
    xs = [i for i, _ in rows]
    ax.plot(xs, [d.get("drift") for _, d in rows], marker="o", label=labels[0])
    ax.plot(xs, [1 - (d.get("overlap", {}).get("mean") or 0) for _, d in rows],
            marker="s", label=labels[1])
    ax.set_xticks(x, names, rotation=45, fontsize=8)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _png(fig)

def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    fig.clf()
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _value(meta: VersionMeta, metric: str) -> float | None:
    v = (meta.scores.get(metric) or {}).get("value")
    return float(v) if v is not None else None


def _gap(meta: VersionMeta) -> dict[str, Any] | None:
    """Drift against the last rebuild; for a rebuild, against the version it replaced."""
    gap = meta.drift.get("parent") if meta.kind == "rebuild" else meta.drift.get("rebuild")
    return gap if isinstance(gap, dict) else None


def build_report(config: Config) -> tuple[str, dict[str, Any]]:
    plt = _pyplot()
    store = existing_store(config)
    manifest = store.read_manifest()
    entries = manifest.versions
    if not entries:
        raise UsageError(f"store {store.location} has no versions yet",
                         hint="run 'incw2v add-corpus CONFIG' first")
    metas = [store.read_meta(e.version) for e in entries]
    status: dict[str, str] = {e.version: e.status for e in entries}
    for event in manifest.events:  # an override stays visible
        if event.action == "promote" and event.version in status:
            status[event.version] = "committed (promoted)"
    names = [m.version for m in metas]
    x = list(range(len(metas)))
    plots: list[tuple[str, str, str]] = []  # (title, alt, base64)

    metrics = list(dict.fromkeys(k for m in metas for k in m.scores))
    if metrics:
        fig, ax = plt.subplots(figsize=(9, 3.6))
        for metric in metrics:
            ys = [_value(m, metric) for m in metas]
            ax.plot(x, [float("nan") if y is None else y for y in ys], marker="o", label=metric)
        for i, m in enumerate(metas):
            if m.kind == "rebuild":
                ax.axvline(i, color="#999", linestyle=":", linewidth=1)
            if status[m.version] != "committed":
                ax.annotate(status[m.version], (i, 0), fontsize=7, color="#b00")
        ax.set_xticks(x, names, rotation=45, fontsize=8)
        ax.set_ylabel("score")
        ax.legend(fontsize=8)
        ax.set_title("scores per version (dotted: rebuilds)")
        plots.append(("Scores across versions", "scores per version", _png(fig)))

    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(x, [m.vocab_size for m in metas],
           color=["#c66" if m.kind == "rebuild" else "#69c" for m in metas])
    ax.set_xticks(x, names, rotation=45, fontsize=8)
    ax.set_ylabel("words")
    ax.set_title("vocabulary size per version (red: rebuilds)")
    plots.append(("Vocabulary growth", "vocabulary size per version", _png(fig)))

    drift_rows = [(i, d) for i, m in enumerate(metas)
                  if isinstance(d := m.drift.get("parent"), dict)]
    if drift_rows:
        plots.append(("Drift per update", "drift per update", _drift_plot(
            plt, x, names, drift_rows, ("drift: 1 - median aligned cosine",
                                        "1 - neighbour overlap@k"),
            "drift of each version against its parent")))
    gaps_known = [(i, g) for i, m in enumerate(metas) if (g := _gap(m)) is not None]
    if gaps_known:
        plots.append(("Gap to the last rebuild", "gap to the last rebuild", _drift_plot(
            plt, x, names, gaps_known, ("drift against the last rebuild",
                                        "1 - neighbour overlap@k with it"),
            "gap to the last rebuild (at a rebuild: the incremental version it replaced)")))
    plt.close("all")

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>incw2v report: {html.escape(store.location)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>incw2v quality report</h1>",
        f"<p>Store <code>{html.escape(store.location)}</code>; current version "
        f"<b>{html.escape(manifest.current or 'none')}</b>; {len(metas)} versions; "
        f"generated {now_iso()}.</p>",
        _version_table(metas, status, metrics, manifest.current),
    ]
    for title, alt, data in plots:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>")
    parts.append(_rebuild_table(metas, metrics))
    if not gaps_known:
        parts.append("<h2>Gap to the last rebuild</h2><p class='note'>No rebuild in this "
                     "store yet: run <code>incw2v rebuild CONFIG</code> to measure how far the "
                     "incremental lineage is from a full retrain.</p>")
    parts.append(_watch_section(metas))
    parts.append("</body></html>")
    page = "\n".join(parts)
    return page, {"versions": len(metas), "plots": len(plots),
                  "metrics": metrics, "watch": sorted({w for m in metas
                                                      for w in m.watch.get("neighbours", {})})}


def _version_table(
    metas: list[VersionMeta], status: dict[str, str], metrics: list[str], current: str | None
) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    rows = []
    for m in metas:
        cells = []
        for metric in metrics:
            s = m.scores.get(metric) or {}
            v = s.get("value")
            cov = s.get("coverage")
            cells.append(f"<td>{'n/a' if v is None else f'{v:.4f}'}"
                         f"{'' if cov is None else f' ({100 * cov:.0f}%)'}</td>")
        d = (m.drift.get("parent") or {}).get("drift")
        gate = "; ".join(m.gate.get("failures", [])) if m.gate else ""
        st = status[m.version]
        mark = " (current)" if m.version == current else ""
        rows.append(
            f"<tr class='{st.split()[0]}'><td>{m.version}{mark}</td><td>{m.kind}</td><td>{st}</td>"
            f"<td>{html.escape(', '.join(m.added))}</td><td>{m.vocab_size}</td>{''.join(cells)}"
            f"<td>{'' if d is None else f'{d:.4f}'}</td><td>{html.escape(gate)}</td></tr>"
        )
    return (
        "<h2>Versions</h2><table><tr><th>version</th><th>kind</th><th>status</th><th>added</th>"
        f"<th>vocabulary</th>{head}<th>drift vs parent</th><th>gate failures</th></tr>"
        + "".join(rows) + "</table><p class='note'>Scores with their coverage in brackets: "
        "a score on 20% of a set is not comparable with one on 90%.</p>"
    )


def _rebuild_table(metas: list[VersionMeta], metrics: list[str]) -> str:
    """Each rebuild against the incremental version it replaced: scores and drift."""
    by_name = {m.version: m for m in metas}
    rows = []
    for m in metas:
        old = by_name.get(m.parent or "")
        if m.kind != "rebuild" or old is None:
            continue
        cells = []
        for metric in metrics:
            a, b = _value(old, metric), _value(m, metric)
            cells.append("<td>n/a</td>" if a is None or b is None else
                         f"<td>{a:.4f} → {b:.4f} ({b - a:+.4f})</td>")
        gap = m.drift.get("parent") or {}
        overlap = (gap.get("overlap") or {}).get("mean")
        drift = gap.get("drift")
        rows.append(
            f"<tr><td>{m.version}</td><td>{old.version}</td>{''.join(cells)}"
            f"<td>{'' if drift is None else f'{drift:.4f}'}</td>"
            f"<td>{'' if overlap is None else f'{overlap:.3f}'}</td></tr>"
        )
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(x)}: incremental → rebuild</th>" for x in metrics)
    return ("<table><tr><th>rebuild</th><th>replaced</th>" + head +
            "<th>median drift</th><th>neighbour overlap</th></tr>" + "".join(rows) + "</table>")


def _watch_section(metas: list[VersionMeta]) -> str:
    words = list(dict.fromkeys(w for m in metas for w in m.watch.get("neighbours", {})))
    if not words:
        return ("<h2>Watch words</h2><p class='note'>No <code>watch:</code> words in the config "
                "when these versions were made.</p>")
    out = ["<h2>Watch words: neighbours per version</h2>"]
    for word in words:
        out.append(f"<h3>{html.escape(word)}</h3><table><tr><th>version</th>"
                   "<th>nearest neighbours (cosine)</th></tr>")
        for m in metas:
            found = m.watch.get("neighbours", {})
            if word not in found:
                continue
            nbrs = found[word]
            text = ("not in the vocabulary" if nbrs is None else
                    ", ".join(f"{html.escape(str(n))} ({s:.2f})" for n, s in nbrs))
            out.append(f"<tr><td>{m.version}</td><td>{text}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


@dataclass
class Reported:
    """``report``: the page written, with how many versions and plots it shows."""

    output: str
    versions: int
    plots: int
    metrics: list[str]
    watch: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_report(config: Config, output: Path) -> Reported:
    """Write the report to ``output`` atomically."""
    check_output_folder(output)
    page, info = build_report(config)
    with atomic_outputs(output) as outputs:
        outputs.temp(output).write_text(page, encoding="utf-8")
    logger.info("wrote %s (%d bytes)", output, len(page))
    return Reported(output=str(output), **info)
