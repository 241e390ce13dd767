"""Every config error is reported at once, with key path and line, exit 78."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Result, write_config
from incremental_w2v.config.schema import parse_config
from incremental_w2v.errors import ConfigError


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


def test_valid_config_resolves_paths_against_config_folder(tmp_path: Path) -> None:
    config = parse_config("store: st\nbase: {corpus: a.txt}\n", tmp_path / "c.yaml")
    assert config.store_path == tmp_path / "st"
    assert config.model.negative == 5 and config.model.hs == 0


def test_all_problems_reported_together_with_lines() -> None:
    text = (
        "store: s\n"            # 1
        "model:\n"              # 2
        "  vector_size: big\n"  # 3
        "  negtive: 3\n"        # 4
        "  window: 5\n"         # 5
        "  window: 6\n"         # 6
        "base: {corpus: a}\n"   # 7
        "queue:\n"              # 8
        "  - name: x\n"         # 9
    )
    message = problems(text)
    assert "model.vector_size (line 3)" in message
    assert "model.negtive (line 4): unknown key" in message
    assert "model.window (line 6): duplicate key (first defined on line 5)" in message
    assert "queue[0].uri (line 9): required key is missing" in message
    assert "4 problem(s)" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("store: s\nmodel: {hs: 1}\nbase: {corpus: a}\n", "hs=1 (hierarchical softmax)"),
        ("store: s\nmodel: {negative: 0}\nbase: {corpus: a}\n", "negative must be > 0"),
        ("store: s\nbase: {corpus: a, model: m}\n", "exactly one of 'corpus'"),
        ("store: s\nbase: {}\n", "exactly one of 'corpus'"),
        ("base: {corpus: a}\n", "- store: required key is missing"),
        ("store: s\nbase: {corpus: a}\nfoo: 1\n", "foo (line 3): unknown key"),
        ("store: s\nbase: {corpus: 'https://u:secret@h/x.txt'}\n", "carries credentials"),
        ("store: s\nbase: {corpus: a}\nqueue: [{uri: 's3://b/k?X-Amz-Signature=abc'}]\n",
         "secret in its query parameter"),
        ("store: s\nbase: {corpus: a}\nqueue: [{uri: b, format: csv}]\n", "queue[0].format"),
        ("store: s\nbase: {corpus: a}\ntokenize: {mode: regex}\n", "needs a 'pattern'"),
        ("store: s\nbase: {corpus: a}\ntokenize: {mode: regex, pattern: '('}\n",
         "not a valid regular expression"),
        ("store: s\nbase: !!python/object/apply:os.system ['true']\n", "is not allowed"),
        ("store: [unclosed\n", "YAML syntax error at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("store: s\nbase: {corpus: a}\nencoding_errors: ignore\n", "encoding_errors"),
    ],
)
def test_config_error_cases(text: str, fragment: str) -> None:
    assert fragment in problems(text)


def test_secret_is_not_echoed() -> None:
    message = problems("store: s\nbase: {corpus: 'https://user:hunter2@h/x'}\n")
    assert "hunter2" not in message


def test_alias_bomb_fails_fast() -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    message = problems("\n".join(rows) + "\n")
    assert "too large or too deeply nested" in message


def test_validate_command_exit_codes(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    good = write_config(tmp_path, "store: s\nbase: {corpus: a.txt}\n", "good.yaml")
    assert cli("validate", good).code == 0
    bad = write_config(tmp_path, "store: s\nbase: {corpus: a.txt}\nextra: 1\n", "bad.yaml")
    result = cli("validate", bad)
    assert result.code == 78
    assert "extra (line 3): unknown key" in result.err
    assert "Traceback" not in result.err
    missing = cli("validate", tmp_path / "nope.yaml")
    assert missing.code == 66
    assert "does not exist" in missing.err
