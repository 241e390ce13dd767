"""Quality gates: does a new version's score pass, and the error when it does not.

A version that fails a gate is committed as a ``candidate``: ``current``
does not move until a person runs ``promote`` (or ``reject`` to drop its
corpus). The gates are set in the config's ``gates:`` section.
"""

from __future__ import annotations

from typing import Any

from incremental_w2v.config.quality import Gate
from incremental_w2v.errors import GateFailedError
from incremental_w2v.store.manifest import VersionMeta


def check_gates(
    gates: dict[str, Gate],
    scores: dict[str, dict[str, Any]],
    reference: dict[str, Any],
    reference_version: str,
) -> dict[str, Any]:
    """Each gate's verdict; a metric that cannot be measured fails its gate."""
    checks: list[dict[str, Any]] = []
    for name, gate in gates.items():
        value = (scores.get(name) or {}).get("value")
        ref = (reference.get(name) or {}).get("value") if isinstance(reference, dict) else None
        if gate.min is not None:
            ok = value is not None and value >= gate.min
            checks.append({
                "metric": name, "rule": "min", "limit": gate.min, "value": value, "ok": ok,
                "message": (f"{name}: {value:.4f} meets min {gate.min}" if ok else
                            f"{name}: not measurable (no coverage), min {gate.min}"
                            if value is None else
                            f"{name}: {value:.4f} is below min {gate.min} by "
                            f"{gate.min - value:.4f}"),
            })
        if gate.max_drop is not None:
            if value is None:
                ok, msg = False, f"{name}: not measurable (no coverage), max_drop {gate.max_drop}"
            elif ref is None:
                ok, msg = True, f"{name}: {reference_version} has no score to compare with"
            else:
                drop = ref - value
                ok = drop <= gate.max_drop + 1e-12
                msg = (
                    f"{name}: {ref:.4f} ({reference_version}) -> {value:.4f}, "
                    f"{'drop' if drop > 0 else 'gain'} {abs(drop):.4f}"
                    + ("" if ok else f" exceeds max_drop {gate.max_drop} by "
                       f"{drop - gate.max_drop:.4f}")
                )
            checks.append({
                "metric": name, "rule": "max_drop", "limit": gate.max_drop, "value": value,
                "reference": ref, "ok": ok, "message": msg,
            })
    failures = [c["message"] for c in checks if not c["ok"]]
    return {"passed": not failures, "against": reference_version, "checks": checks,
            "failures": failures}


def gate_error(meta: VersionMeta, current: str | None, result: Any = None) -> GateFailedError:
    failures = "; ".join(meta.gate.get("failures", []))
    err = GateFailedError(
        f"{meta.version} ({', '.join(meta.added) or meta.kind}) failed the quality gate: "
        f"{failures}. It is kept as a candidate; current stays {current}",
        hint=f"review it with 'incw2v compare CONFIG {current} {meta.version}', then accept it "
        f"with 'incw2v promote CONFIG {meta.version}' or drop its corpus with "
        f"'incw2v reject CONFIG {meta.version}'",
    )
    err.result = result  # type: ignore[attr-defined]
    return err
