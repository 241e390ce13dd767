"""``status`` and ``add-corpus`` ask the same planner, so they agree on every corpus's state.

States: applied (skipped by a run), pending (applied by a run), rejected and excluded
(skipped, and said so), awaiting review in a candidate (the run stops there, later corpora
wait behind it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import Result

GATE = "gates:\n  wordsim353: {min: 0.99}"


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [Path(r["uri"]).name for r in rows]


def states(status: dict[str, Any]) -> dict[str, str]:
    out = {name: "pending" for name in names(status["pending"])}
    out.update({Path(s["uri"]).name: s["reason"].split(" ")[0] for s in status["skipped"]})
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


def run_states(run: dict[str, Any]) -> dict[str, str]:
    """What a run did with each corpus, in the planner's words."""
    out = {Path(a["corpora"][0]["uri"]).name: "pending" for a in run["applied"]
           if a["kind"] == "update"}
    out.update({Path(s["uri"]).name: s["reason"].split(" ")[0] for s in run["skipped"]
                if not s["reason"].startswith("applied")})
    return out


def test_status_and_add_corpus_agree_on_excluded_corpora(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = corpora["c"].with_name("d.txt")
    d.write_bytes(corpora["a"].read_bytes()[:30000])
    config = make_config(corpora["a"], [corpora["b"], corpora["c"], d])
    assert cli("add-corpus", config).code == 0  # v0001 base, v0002 b, v0003 c, v0004 d

    # A bad dump found after the fact: roll back before it, and keep it (and d) out.
    moved = cli("rollback", config, "v0002", "--exclude-rolled-back", "--json").json()
    assert moved["current"] == "v0002" and [Path(u).name for u in moved["excluded"]] == [
        "c.txt", "d.txt"]
    status = cli("status", config, "--json").json()
    assert states(status) == {"c.txt": "excluded", "d.txt": "excluded"}
    assert [(Path(x["uri"]).name, x["version"], x["in_current"]) for x in status["excluded"]] \
        == [("c.txt", "v0003", False), ("d.txt", "v0004", False)]
    run = cli("add-corpus", config, "--json")
    assert run.code == 0 and run.json()["applied"] == []
    assert run_states(run.json()) == states(status)
    text = cli("status", config).out
    assert "excluded: " in text and "rolled back from v0004 to v0002" in text

    # Undone for d (by the version that applied it): both now call it pending, and only d
    # is applied.
    assert cli("unexclude", config, "v0004").code == 0
    status = cli("status", config, "--json").json()
    assert states(status) == {"c.txt": "excluded", "d.txt": "pending"}
    run = cli("add-corpus", config, "--json")
    assert run_states(run.json()) == states(status)
    assert [a["name"] for a in run.json()["applied"]] == ["d.txt"]

    # By URI, relative to the current folder, before the dump is even applied.
    e = corpora["c"].with_name("e.txt")
    e.write_bytes(corpora["b"].read_bytes()[:30000])
    config.write_text(config.read_text() + f"  - uri: {e}\n")
    monkeypatch.chdir(e.parent)
    excluded = cli("exclude", config, "e.txt", "--reason", "truncated upstream", "--json")
    assert excluded.code == 0, excluded.err
    assert [Path(x["uri"]).name for x in excluded.json()["changed"]] == ["e.txt"]
    status = cli("status", config, "--json").json()
    assert states(status) == {"c.txt": "excluded", "e.txt": "excluded"}
    run = cli("add-corpus", config, "--json").json()
    assert run["applied"] == [] and run_states(run) == states(status)

    # Recorded in the history, with the reason; undoing an exclusion is recorded too.
    history = cli("history", config).out
    assert "[exclude " in history and "truncated upstream" in history
    assert "[unexclude " in history and "[rollback " in history
    assert cli("unexclude", config, os.fspath(e)).code == 0
    assert cli("unexclude", config, "e.txt").code == 64  # nothing left to undo
