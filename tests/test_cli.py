"""The CLI surface: help for every command, every command documented, exit-code table."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from conftest import run_subprocess
from incremental_w2v.cli import EXIT_CODES, build_parser, main

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
