"""The CLI surface: help for every command, every command documented, exit-code table."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import run_subprocess
from incremental_w2v.cli.exit_codes import EXIT_CODES
from incremental_w2v.cli.main import main
from incremental_w2v.cli.parser import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_command_is_documented_in_readme() -> None:
    for name in commands():
        assert f"`incw2v {name} " in README, f"command {name} is not documented in README.md"


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert "CONFIG" in capsys.readouterr().out


def test_every_exit_code_is_documented() -> None:
    for code in set(EXIT_CODES.values()):
        assert re.search(rf"^\| {code} \|", README, re.MULTILINE), code


def test_usage_errors_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 64
    with pytest.raises(SystemExit) as info:
        main(["export", "c.yaml", "--format", "csv", "--output", "x"])
    assert info.value.code == 64


def test_python_dash_m_and_version() -> None:
    result = run_subprocess("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("incw2v ")


def test_a_process_that_loaded_gensim_still_flushes_everything_and_keeps_its_code(
    tmp_path: Path, corpora: dict[str, Path], make_config: Any
) -> None:
    # The CLI skips the interpreter's teardown once gensim is loaded: the JSON, the log
    # file and the exit code must all be what a normal exit would give.
    config = make_config(corpora["a"], [corpora["b"]], extra="log_file: run.log")
    done = run_subprocess("add-corpus", config, "--json")
    assert done.returncode == 0, done.stderr
    assert [a["version"] for a in json.loads(done.stdout)["applied"]] == ["v0001", "v0002"]
    log = (tmp_path / "run.log").read_text().splitlines()
    assert "applied 2 corpus(es)" in log[-3] and log[-1].startswith("  v0002 update on v0001")

    bad = tmp_path / "bad.txt"
    bad.write_bytes(corpora["c"].read_bytes()[:5000] + b"\xff\xfe broken\n")
    failed = run_subprocess("add-corpus", config, bad)
    assert failed.returncode == 65
    assert "incw2v: error:" in failed.stderr and "bad.txt" in failed.stderr

    scored = run_subprocess("evaluate", config, "--json")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)
