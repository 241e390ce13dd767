"""``status`` and ``add-corpus`` ask the same planner, so they agree on every corpus's state.

States: applied (skipped by a run), pending (applied by a run), rejected (skipped, and said
so), awaiting review in a candidate (the run stops there, later corpora wait behind it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import Result

GATE = "gates:\n  wordsim353: {min: 0.99}"


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [Path(r["uri"]).name for r in rows]


def states(status: dict[str, Any]) -> dict[str, str]:
    out = {name: "pending" for name in names(status["pending"])}
    out.update({name: "rejected" for name in names(status["skipped"])})
    held = status["awaiting_review"]
    if held is not None:
        out[Path(held["uri"]).name] = f"awaiting review in {held['version']}"
    return out


def test_status_and_add_corpus_agree_on_every_state(
    corpora: dict[str, Path], make_config: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    d = corpora["c"].with_name("d.txt")
    # Other bytes than a's (the same content would be skipped as a's copy).
    d.write_text("".join(reversed(corpora["a"].read_text().splitlines(keepends=True))))
    config = make_config(corpora["a"], [corpora["b"], corpora["c"], d], extra=GATE)

    before = cli("status", config, "--json").json()
    assert names(before["pending"]) == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert before["pending"][0]["base"] is True

    # b fails the gate: a candidate; c and d wait behind it.
    assert cli("add-corpus", config).code == 3
    status = cli("status", config, "--json").json()
    assert states(status) == {"b.txt": "awaiting review in v0002"}
    assert status["awaiting_review"]["waiting"] == 2
    run = cli("add-corpus", config, "--json")
    assert run.code == 3 and "b.txt is awaiting review in candidate v0002" in run.err
    assert "2 later corpus(es) wait behind it" in run.err

    # Rejected: skipped by both, and said so; the next corpus is tried (and held) in turn.
    assert cli("reject", config, "v0002").code == 0
    status = cli("status", config, "--json").json()
    assert states(status) == {"b.txt": "rejected", "c.txt": "pending", "d.txt": "pending"}
    run = cli("add-corpus", config, "--json")
    assert run.code == 3
    out = run.json()
    assert [s["reason"] for s in out["skipped"] if s["uri"].endswith("b.txt")] == [
        "rejected in v0002"]
    assert [a["name"] for a in out["applied"]] == ["c.txt"]  # tried: what status said first
    status = cli("status", config, "--json").json()
    assert states(status) == {"b.txt": "rejected", "c.txt": "awaiting review in v0003"}

    # Promoted: c is applied; d is what both now call pending, and the run applies just it.
    assert cli("promote", config, "v0003").code == 0
    status = cli("status", config, "--json").json()
    assert states(status) == {"b.txt": "rejected", "d.txt": "pending"}
    config.write_text(config.read_text().replace(GATE, ""))
    run = cli("add-corpus", config, "--json")
    assert run.code == 0, run.err
    assert [a["name"] for a in run.json()["applied"]] == ["d.txt"]
    status = cli("status", config, "--json").json()
    assert states(status) == {"b.txt": "rejected"}
    again = cli("add-corpus", config, "--json").json()
    assert again["applied"] == []
    assert sorted(s["reason"].split(" in ")[0] for s in again["skipped"]) == [
        "applied", "applied", "rejected"]
