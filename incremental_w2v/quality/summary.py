"""One line on a version's quality: its scores, their change against the parent, and the
drift from the parent. The commit's log line, ``add-corpus``'s summary and the text
``history`` all say it this way (no heavy imports: the CLI renders it)."""

from __future__ import annotations

from typing import Any


def score_values(scores: dict[str, Any]) -> dict[str, float | None]:
    """metric -> value, from a version's recorded ``scores`` (or from such values)."""
    out: dict[str, float | None] = {}
    for name, s in scores.items():
        value = s.get("value") if isinstance(s, dict) else s
        out[name] = None if value is None else float(value)
    return out


def quality_line(scores: dict[str, Any], parent_scores: dict[str, Any] | None,
                 drift: dict[str, Any] | None) -> str:
    """``wordsim353 0.4120 (+0.0130), ...; drift vs v0002 0.1234, overlap@10 0.81``."""
    now = score_values(scores)
    before = score_values(parent_scores or {})
    parts = []
    for name, value in now.items():
        if value is None:
            parts.append(f"{name} n/a")
            continue
        old = before.get(name)
        change = "" if old is None else f" ({value - old:+.4f})"
        parts.append(f"{name} {value:.4f}{change}")
    text = ", ".join(parts) or "no scores"
    if drift and drift.get("drift") is not None:
        overlap = (drift.get("overlap") or {}).get("mean")
        k = (drift.get("overlap") or {}).get("k", 10)
        text += f"; drift vs {drift.get('against', 'parent')} {drift['drift']:.4f}"
        if overlap is not None:
            text += f", overlap@{k} {overlap:.2f}"
    return text
