"""``report``: one self-contained HTML page about a lineage's quality.

Everything comes from the versions' recorded meta (scores, drift, watch
neighbours), so the page costs no model loading, and pruned versions (whose
arrays are gone) keep their place in every plot and table. Plots are matplotlib
PNGs embedded as base64 ``data:`` URIs, as wide as the page; the page loads
nothing from the network. A lineage is a tree, not a line: after a rollback the
next version's parent is an older one, so every line is drawn from a version to
its parent, and versions off the current lineage are drawn hollow and dotted.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from incremental_w2v.config.needs import REPORT, require
from incremental_w2v.config.schema import Config
from incremental_w2v.errors import UsageError
from incremental_w2v.fsutil import atomic_outputs, check_output_folder
from incremental_w2v.store.manifest import VersionMeta, now_iso
from incremental_w2v.store.ops import existing_store

logger = logging.getLogger(__name__)

_CSS = """
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0} .candidate{color:#b00} .rejected{color:#888} .pruned{color:#777}
img{width:100%;height:auto;border:1px solid #eee} .note{color:#555;font-style:italic}
"""
_WIDTH = 16  # inches: the PNGs are drawn wide and shown at the page's width


def _pyplot() -> Any:
    require(features=[REPORT])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt



class Tree:
    """The versions as the lineage tree they are: x positions, parents, current lineage."""

    def __init__(self, metas: list[VersionMeta], current: str | None,
                 pruned: set[str], rollbacks: dict[str, str] | None = None) -> None:
        self.metas = metas
        self.x = {m.version: i for i, m in enumerate(metas)}
        by_name = {m.version: m for m in metas}
        self.on_current: set[str] = set()
        name = current
        while name is not None and name in by_name and name not in self.on_current:
            self.on_current.add(name)
            name = by_name[name].parent
        self.pruned = pruned
        # A version whose parent is not the version before it starts a branch (a rollback,
        # or a candidate's sibling); a rebuild replaces its parent, it does not branch.
        self.branches = {m.version: m.parent for i, m in enumerate(metas)
                         if m.parent and i and metas[i - 1].version != m.parent}
        # version rolled back from -> the version made current instead
        self.rollbacks = {v: to for v, to in (rollbacks or {}).items() if v in self.x}

    def labels(self) -> list[str]:
        return [m.version + ("\n(pruned)" if m.version in self.pruned else "")
                for m in self.metas]

    def axis(self, ax: Any, ylabel: str) -> None:
        ax.set_xticks(range(len(self.metas)), self.labels(), rotation=45, fontsize=8)
        ax.set_xlim(-0.5, len(self.metas) - 0.5)
        ax.set_xlabel("version (in order of creation)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)

    def plot(self, ax: Any, values: dict[str, float | None], label: str, **style: Any) -> None:
        """``values`` along the tree: each version joined to its parent."""
        line = ax.plot([], [], label=label, **style)[0]
        color = line.get_color()
        for m in self.metas:
            y, parent_y = values.get(m.version), values.get(m.parent or "")
            if y is None or parent_y is None or m.parent not in self.x:
                continue
            on = m.version in self.on_current
            ax.plot([self.x[m.parent], self.x[m.version]], [parent_y, y], color=color,
                    linestyle="-" if on else ":", alpha=1.0 if on else 0.6)
        for on in (True, False):
            pts = [(self.x[v], y) for v, y in values.items()
                   if y is not None and v in self.x and (v in self.on_current) == on]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none",
                        marker=style.get("marker", "o"), color=color,
                        markerfacecolor=color if on else "white")

    def mark_branches(self, ax: Any) -> None:
        for version, to in self.rollbacks.items():
            ax.annotate(f"rolled back to {to}", (self.x[version], 0.0),
                        xycoords=("data", "axes fraction"), fontsize=9, color="#a50",
                        ha="center", va="bottom")
        for version, parent in self.branches.items():
            ax.annotate(f"branch from {parent}", (self.x[version], 1.0),
                        xycoords=("data", "axes fraction"), fontsize=9, color="#a50",
                        ha="center", va="bottom")
        for m in self.metas:
            if m.kind == "rebuild":
                ax.axvline(self.x[m.version], color="#999", linestyle=":", linewidth=1)


_KEY = ("Lines join each version to its parent: solid on the current lineage, dotted on a "
        "branch it left (e.g. after a rollback); hollow markers are versions off the current "
        "lineage; grey dotted verticals are rebuilds.")


def _drift_plot(plt: Any, tree: Tree, rows: dict[str, dict[str, Any]],
                labels: tuple[str, str], title: str) -> Plot:
    """Drift and 1 - neighbour overlap of the versions in ``rows``, as an embedded PNG."""
    fig, ax = plt.subplots(figsize=(_WIDTH, 4))
    tree.plot(ax, {v: d.get("drift") for v, d in rows.items()}, labels[0], marker="o")
    tree.plot(ax, {v: 1 - ((d.get("overlap") or {}).get("mean") or 0) for v, d in rows.items()},
              labels[1], marker="s")
    tree.axis(ax, "distance (0 = identical, 1 = unrelated)")
    tree.mark_branches(ax)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, pad=14)
    return _png(fig)

Plot = tuple[str, dict[str, Any]]  # the PNG (base64), and what it shows


def _png(fig: Any) -> Plot:
    """The figure as an embedded PNG, and what it shows (axes' labels, legends, segments),
    which ``report --json`` lists so that a test or a reader can check it without pixels."""
    axes = []
    for ax in fig.get_axes():
        legend = ax.get_legend()
        axes.append({
            # A panel above another shares its x axis, labelled once, below.
            "title": ax.get_title(), "xlabel": ax.get_xlabel() or next(
                (s.get_xlabel() for s in ax.get_shared_x_axes().get_siblings(ax)
                 if s.get_xlabel()), ""),
            "ylabel": ax.get_ylabel(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "segments": [[float(x) for x in line.get_xdata()] for line in ax.get_lines()
                         if len(line.get_xdata()) == 2],
        })
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    fig.clf()
    return base64.b64encode(buf.getvalue()).decode("ascii"), {"axes": axes}


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
    pruned = {e.version for e in entries if e.pruned_at is not None}
    rollbacks = {e.detail.removeprefix("from "): e.version for e in manifest.events
                 if e.action == "rollback" and e.version and e.detail.startswith("from v")}
    tree = Tree(metas, manifest.current, pruned, rollbacks)
    plots: list[tuple[str, str, Plot]] = []  # (title, alt, the plot)

    metrics = list(dict.fromkeys(k for m in metas for k in m.scores))
    if metrics:
        plots.append(("Scores across versions", "scores per version",
                      _scores_plot(plt, tree, metas, metrics, status)))

    fig, ax = plt.subplots(figsize=(_WIDTH, 3.5))
    ax.bar(range(len(metas)), [m.vocab_size for m in metas],
           color=["#c66" if m.kind == "rebuild" else "#69c" for m in metas],
           hatch=["//" if m.version in pruned else "" for m in metas])
    tree.axis(ax, "vocabulary (words)")
    ax.set_title("vocabulary size per version (red: rebuilds; hatched: pruned)")
    plots.append(("Vocabulary growth", "vocabulary size per version", _png(fig)))

    drift_rows = {m.version: d for m in metas if isinstance(d := m.drift.get("parent"), dict)}
    if drift_rows:
        plots.append(("Drift per update", "drift per update", _drift_plot(
            plt, tree, drift_rows, ("drift: 1 - median aligned cosine",
                                    "1 - neighbour overlap@k"),
            "drift of each version against its parent")))
    gaps_known = {m.version: g for m in metas if (g := _gap(m)) is not None}
    if gaps_known:
        plots.append(("Gap to the last rebuild", "gap to the last rebuild", _drift_plot(
            plt, tree, gaps_known, ("drift against the last rebuild",
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
        _version_table(metas, status, metrics, manifest.current, tree),
    ]
    for title, alt, (data, _) in plots:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>")
        if title != "Vocabulary growth":
            parts.append(f"<p class='note'>{html.escape(_KEY)}</p>")
    parts.append(_rebuild_table(metas, metrics))
    if not gaps_known:
        parts.append("<h2>Gap to the last rebuild</h2><p class='note'>No rebuild in this "
                     "store yet: run <code>incw2v rebuild CONFIG</code> to measure how far the "
                     "incremental lineage is from a full retrain.</p>")
    parts.append(_watch_section(metas))
    parts.append("</body></html>")
    page = "\n".join(parts)
    return page, {"versions": len(metas), "plots": len(plots),
                  "figures": [{"title": t, "x": [m.version for m in metas], **d}
                              for t, _, (_, d) in plots],
                  "metrics": metrics, "watch": sorted({w for m in metas
                                                      for w in m.watch.get("neighbours", {})})}


def _scores_plot(plt: Any, tree: Tree, metas: list[VersionMeta], metrics: list[str],
                 status: dict[str, str]) -> Plot:
    """Each score along the tree, and below it the share of its set the score covers."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(_WIDTH, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.4]})
    for metric in metrics:
        latest: dict[str, Any] = next((m.scores[metric] for m in reversed(metas)
                       if isinstance(m.scores.get(metric), dict)), {})
        cov = latest.get("coverage")
        label = metric + ("" if cov is None else f" (coverage now {100 * cov:.0f}%)")
        tree.plot(top, {m.version: _value(m, metric) for m in metas}, label)
        tree.plot(bottom, {m.version: _coverage(m, metric) for m in metas}, metric)
    for m in metas:
        if status[m.version] != "committed":
            top.annotate(status[m.version], (tree.x[m.version], 0), xycoords=(
                "data", "axes fraction"), fontsize=7, color="#b00", ha="center", va="bottom")
    tree.axis(top, "score (Spearman rho, or accuracy)")
    top.set_xlabel("")
    tree.mark_branches(top)
    top.legend(fontsize=8, loc="upper left")
    top.set_title("scores per version", pad=14)
    tree.axis(bottom, "coverage of the set (%)")
    bottom.set_ylim(0, 105)
    bottom.set_title("coverage: the share of each set's pairs or questions the vocabulary "
                     "covers (scores on different coverage do not compare)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _coverage(meta: VersionMeta, metric: str) -> float | None:
    c = (meta.scores.get(metric) or {}).get("coverage")
    return 100 * float(c) if c is not None else None


def _version_table(
    metas: list[VersionMeta], status: dict[str, str], metrics: list[str], current: str | None,
    tree: Tree,
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
        st = status[m.version] + (", pruned" if m.version in tree.pruned else "")
        if m.version in tree.rollbacks:
            st += f", rolled back to {tree.rollbacks[m.version]}"
        mark = " (current)" if m.version == current else ""
        parent = m.parent or ""
        if m.version in tree.branches:
            parent += " (branch)"
        css = "pruned" if m.version in tree.pruned else st.split()[0].rstrip(",")
        rows.append(
            f"<tr class='{css}'><td>{m.version}{mark}</td><td>{m.kind}</td><td>{st}</td>"
            f"<td>{parent}</td>"
            f"<td>{html.escape(', '.join(m.added))}</td><td>{m.vocab_size}</td>{''.join(cells)}"
            f"<td>{'' if d is None else f'{d:.4f}'}</td><td>{html.escape(gate)}</td></tr>"
        )
    return (
        "<h2>Versions</h2><table><tr><th>version</th><th>kind</th><th>status</th>"
        "<th>parent</th><th>added</th>"
        f"<th>vocabulary</th>{head}<th>drift vs parent</th><th>gate failures</th></tr>"
        + "".join(rows) + "</table><p class='note'>Scores with their coverage in brackets: "
        "a score on 20% of a set is not comparable with one on 90%. A pruned version's arrays "
        "were deleted by prune or retention; its record (corpora, scores, drift) stays. "
        "(branch): its parent is not the version before it, e.g. after a rollback.</p>"
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
    figures: list[dict[str, Any]]  # each plot: its axes' labels, legends and line segments

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
