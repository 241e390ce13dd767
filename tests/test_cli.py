"""The CLI surface: help for every command, every command documented, exit-code table."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import popen, run_subprocess
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


def test_a_closed_stdout_ends_quietly_with_141(
    tmp_path: Path, corpora: dict[str, Path], make_config: Any, cli: Any
) -> None:
    # incw2v history | head -1: no traceback, no "I/O error ... check the disk", exit 141.
    config = make_config(corpora["a"])
    assert cli("add-corpus", config).code == 0
    # A short history: the reader is gone before anything is written (the flush at exit
    # used to fail: exit 120).
    short = popen("history", config)
    assert short.stdout is not None and short.stderr is not None
    short.stdout.close()
    assert short.wait(timeout=120) == 141
    assert short.stderr.read() == ""
    # A history far larger than a pipe's buffer (64 KiB): the reader takes one line and
    # closes, while the command is still writing (it used to exit 74).
    dumps = [str(tmp_path / "dumps" / f"weekly-dump-{i:05d}.txt") for i in range(1500)]
    assert cli("exclude", config, *dumps).code == 0
    assert len(cli("history", config).out) > 2 * 65536
    long = popen("history", config)
    assert long.stdout is not None and long.stderr is not None
    first = long.stdout.readline()
    long.stdout.close()
    assert long.wait(timeout=120) == 141
    assert first.startswith("* v0001")
    assert long.stderr.read() == ""


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_takes_json_and_every_option_has_help() -> None:
    for name, parser in subparsers().items():
        options = {s for a in parser._actions for s in a.option_strings}
        assert "--json" in options, f"{name} has no --json"
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
    for action in build_parser()._actions:
        assert action.help, action.dest


def test_export_help_explains_every_format_and_rollback_says_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from incremental_w2v.vectors.formats import EXPORT_FORMATS

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out.split("formats:\n", 1)[1]
    for fmt, meaning in EXPORT_FORMATS.items():
        line = next(x for x in text.splitlines() if x.strip().startswith(fmt + " "))
        assert meaning.split()[0] in line, line
    with pytest.raises(SystemExit):
        main(["rollback", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "an older one (undo updates) or a newer one" in text
    assert "--exclude-rolled-back" in text


@pytest.mark.parametrize("columns", [60, 100])
def test_help_text_wraps_to_the_terminal(columns: int, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # rollback's description used to print as one line of ~300 characters.
    monkeypatch.setenv("COLUMNS", str(columns))
    for name in [*commands(), None]:
        with pytest.raises(SystemExit):
            main([name, "--help"] if name else ["--help"])
        lines = capsys.readouterr().out.splitlines()
        assert max(map(len, lines)) <= columns, (name, max(lines, key=len))
        if name == "rollback":
            start = lines.index("") + 1  # the description: after the usage
            assert lines[start].startswith("make VERSION the current version")
            assert lines[start + 1] and not lines[start + 1].startswith(" ")
        if name == "export":  # the formats keep their list: one entry a line, text under it
            listed = lines[lines.index("formats:") + 1:]
            assert [ln.split()[0] for ln in listed if not ln.startswith("    ")] == \
                ["word2vec-text", "word2vec-binary", "keyedvectors", "model"]
            assert all(ln.startswith("  ") for ln in listed)


def test_global_options_before_or_after_the_command(
    corpora: dict[str, Path], make_config: Any, cli: Any,
) -> None:
    config = make_config(corpora["a"])
    assert cli("add-corpus", config).code == 0
    for argv in (["--debug", "status", config], ["status", config, "--debug"],
                 ["--debug", "status", "--json", config]):
        run = cli(*argv)
        assert run.code == 0, (argv, run.err)
        assert "DEBUG" in run.err or "incw2v:" in run.err or run.out
    quiet = cli("-q", "history", config)
    assert quiet.code == 0 and quiet.err == ""
    # --debug before the command really turns debugging on: a failure shows its traceback.
    failed = cli("--debug", "rollback", config, "v0042")
    assert failed.code == 64 and "Traceback" in failed.err
    plain = cli("rollback", config, "v0042")
    assert plain.code == 64 and "Traceback" not in plain.err


def test_json_from_every_command(
    tmp_path: Path, corpora: dict[str, Path], make_config: Any, cli: Any,
) -> None:
    gate = "gates:\n  wordsim353: {min: 0.99}"
    config = make_config(corpora["a"], [corpora["b"]], extra=gate)
    outputs = {
        "validate": cli("validate", config, "--json"),
        "add-corpus": cli("add-corpus", config, "--json"),  # b: a candidate (exit 3)
        "reject": cli("reject", config, "v0002", "--json"),
    }
    config.write_text(config.read_text().replace(gate, ""))
    outputs["add-corpus again"] = cli("add-corpus", config, corpora["c"], "--json")
    config.write_text(config.read_text() + gate + "\n")
    d = tmp_path / "d.txt"
    d.write_bytes(corpora["a"].read_bytes()[:30000])
    outputs["candidate"] = cli("add-corpus", config, d, "--json")
    outputs["promote"] = cli("promote", config, "v0004", "--json")
    outputs["rollback"] = cli("rollback", config, "v0001", "--json")
    outputs["export"] = cli("export", config, "--format", "word2vec-text", "--output",
                            tmp_path / "v.txt", "--json")
    outputs["prune"] = cli("prune", config, "--keep", "2", "--json")
    outputs["report"] = cli("report", config, "--output", tmp_path / "r.html", "--json")
    outputs["init"] = cli("init", tmp_path / "new.yaml", "--json")
    outputs["exclude"] = cli("exclude", config, "v0003", "--json")
    outputs["unexclude"] = cli("unexclude", config, "v0003", "--json")
    for name, run in outputs.items():
        assert run.code in (0, 3), (name, run.err)
        assert isinstance(json.loads(run.out), dict), name
    assert outputs["validate"].json()["queue"] == 1
    assert outputs["promote"].json()["current"] == "v0004"
    assert outputs["rollback"].json()["previous"] == "v0004"
    assert outputs["report"].json()["versions"] == 4
    assert outputs["init"].json()["config"].endswith("new.yaml")


def test_init_writes_a_starter_that_validates(tmp_path: Path, cli: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from incremental_w2v.config.schema import Config

    monkeypatch.chdir(tmp_path)
    made = cli("init")
    assert made.code == 0, made.err
    path = tmp_path / "config.yaml"
    text = path.read_text()
    checked = cli("validate", path)
    assert checked.code == 0, checked.err
    required = [line.split(":")[0] for line in text.splitlines() if "REQUIRED" in line
                and not line.startswith("#")]
    assert required == ["store", "base"]
    # Every top-level key of the schema is in it, set or commented out.
    for key in Config.model_fields:
        assert re.search(rf"^#? ?{key}:", text, re.MULTILINE), key
    # Each REQUIRED key really is required: without it, validate names it.
    for key in required:
        lines = text.splitlines()
        i = next(n for n, line in enumerate(lines) if line.startswith(f"{key}:"))
        j = next((n for n in range(i + 1, len(lines))
                  if lines[n] and not lines[n].startswith((" ", "#"))), len(lines))
        broken = tmp_path / f"without-{key}.yaml"
        broken.write_text("\n".join(lines[:i] + lines[j:]) + "\n")
        refused = cli("validate", broken)
        assert refused.code == 78 and f"{key}: required key is missing" in refused.err
    again = cli("init", path)
    assert again.code == 73 and "--force" in again.err
    path.write_text("store: mine\n")
    assert cli("init", path, "--force").code == 0 and "REQUIRED" in path.read_text()


def test_uris_resolve_against_the_current_folder_on_the_command_line(
    tmp_path: Path, corpora: dict[str, Path], make_config: Any, cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(corpora["a"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "extra.txt").write_bytes(corpora["b"].read_bytes())
    monkeypatch.chdir(elsewhere)
    done = cli("add-corpus", config, "extra.txt", "--json")
    assert done.code == 0, done.err
    applied = done.json()["applied"][-1]["corpora"][0]["uri"]
    assert applied == str(elsewhere / "extra.txt")
    missing = cli("add-corpus", config, "nope.txt")
    assert missing.code == 66
    assert f"given on the command line resolves against the current folder ({elsewhere})" \
        in missing.err
    config.write_text(config.read_text() + "queue:\n  - uri: nope.txt\n")
    in_config = cli("add-corpus", config)
    assert in_config.code == 66
    assert f"in the config resolves against the config's folder ({config.parent})" \
        in in_config.err


def test_readme_minimal_config_validates_with_its_required_keys_marked(tmp_path: Path) -> None:
    from incremental_w2v.config.schema import parse_config

    block = README.split("## A minimal config")[1].split("```yaml\n")[1].split("```")[0]
    assert len(block.strip().splitlines()) <= 10
    config = parse_config(block, tmp_path / "config.yaml")
    assert config.retention.keep == 8 and config.publish[0].formats == ["word2vec-binary"]
    marked = [line.split(":")[0] for line in block.splitlines() if "REQUIRED" in line]
    assert marked == ["store", "base"]


def test_readme_runs_on_a_schedule_and_ci_runs_its_test_command() -> None:
    assert re.search(r"^\d+ \d+ \* \* \d+ .*incw2v add-corpus config.yaml", README, re.MULTILINE)
    assert "[Timer]" in README and "OnCalendar=" in README and "Type=oneshot" in README
    first, second = re.findall(r"```sh\n(python3 -m venv .*)\n```", README)[:2]
    assert "pip install -e . &&" in first and "add-corpus configs/example.yaml" in first
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and ".venv/bin/python -m pytest" in ci
    assert second.endswith(".venv/bin/python -m pytest")
    # The measured tables moved to docs, none lost: the README keeps one paragraph.
    assert README.count("\n| ") < 40
    assert "docs/benchmarks.md" in README
