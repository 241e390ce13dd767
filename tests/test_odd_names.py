"""Odd names and odd spellings: control characters in any name are escaped wherever they are
printed or logged; the same file queued under several URIs is applied once; a second config
with another base on the same store is refused (78).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import py7zr
import pytest

from faults import tree_hashes
from helpers import Result
from incremental_w2v.uris import printable
from test_crash_sweep import TINY_MODEL, write_workspace

# Names that could forge a line of ours, clear the screen, or reorder what follows.
HOSTILE = ["x\nincw2v: error: forged", "y\x1b[2J\x1b[31m", "z\rincw2v: done", "bell\x07",
           "u\u2028incw2v: error: ls", "bidi\u202etxt.exe", "del\x7f", "c1\x85next", "t\tab"]
FORGED = re.compile(r"^(incw2v: error: forged|incw2v: done|incw2v: error: ls)", re.MULTILINE)


def assert_clean(text: str) -> None:
    """No raw control character but newlines, and no line that is not one of ours."""
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", text), \
        repr(text[:500])
    assert not FORGED.search(text), text


def test_printable_escapes_every_control_character() -> None:
    for code in [*range(0x20), *range(0x7f, 0xa0), 0x2028, 0x2029, 0x202e, 0x2066]:
        shown = printable(f"a{chr(code)}b")
        assert chr(code) not in shown and shown.startswith("a\\") and shown.endswith("b")
    assert printable("a\udcffb") == "a\\udcffb"  # a file name that is not UTF-8
    assert printable("café ☃ 日本") == "café ☃ 日本"  # ordinary text is left alone
    assert printable(printable("x\ny")) == printable("x\ny")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    return folder


def run_all(cli: Callable[..., Result], config: Path, *extra: str) -> tuple[Result, str]:
    """add-corpus, then every read-only command; all of their output."""
    first = cli("add-corpus", config, *extra)
    texts = [first.out, first.err]
    for args in (["status", config], ["history", config], ["add-corpus", config],
                 ["status", config, "--json"], ["history", config, "--json"]):
        shown = cli(*args)
        texts += [shown.out, shown.err]
    return first, "\n".join(texts)


def test_names_from_the_config_are_escaped(workspace: Path, cli: Callable[..., Result]
                                           ) -> None:
    config = workspace / "config.yaml"
    names = "".join(f"  - uri: {n}\n    name: {json.dumps(h)}\n"
                    for n, h in (("b.txt", HOSTILE[0]), ("c.txt", HOSTILE[1])))
    config.write_text(config.read_text() + "log_file: run.log\nqueue:\n" + names)
    first, text = run_all(cli, config)
    assert first.code == 0, first.err
    assert_clean(text)
    assert_clean((workspace / "run.log").read_text())
    assert "x\\nincw2v: error: forged" in text  # shown, escaped, not dropped


def test_file_names_in_a_queued_folder_are_escaped(workspace: Path, cli: Callable[..., Result]
                                                   ) -> None:
    incoming = workspace / "incoming"
    incoming.mkdir()
    lines = (workspace / "b.txt").read_text().splitlines(keepends=True)
    raw_names = [os.fsencode(f"{h}.txt") for h in HOSTILE] + [b"not-utf8-\xff\xfe.txt"]
    for i, raw in enumerate(raw_names):
        with open(os.path.join(os.fsencode(incoming), raw), "w") as out:
            out.write("".join(lines[i * 3:(i + 1) * 3]) or "some words here again\n")
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + "log_file: run.log\nqueue:\n  - uri: incoming\n")
    first, text = run_all(cli, config, "--debug")
    assert first.code == 0, first.err
    assert_clean(text)
    assert_clean((workspace / "run.log").read_text())
    assert "not-utf8-\\udcff\\udcfe.txt" in text
    history = json.loads(cli("history", config, "--json").out)
    assert len(history) == 1 + len(raw_names)  # each applied once; the re-run applied none
    for path in (workspace / "store").glob("versions/*/meta.json"):
        json.loads(path.read_text(encoding="utf-8"))  # valid UTF-8 JSON, whatever the names


def test_uris_and_members_in_errors_are_escaped(workspace: Path, cli: Callable[..., Result]
                                                ) -> None:
    config = workspace / "config.yaml"
    missing = cli("add-corpus", config, f"{HOSTILE[0]}.txt", f"{HOSTILE[1]}.txt")
    assert missing.code == 66
    assert_clean(missing.err)
    archive = workspace / "two.7z"
    with py7zr.SevenZipFile(archive, "w") as out:
        for name in HOSTILE[:3]:
            out.writestr(b"some words", name)  # type: ignore[arg-type]
    config.write_text(config.read_text() + "queue: [{uri: two.7z}]\n")
    listed = cli("add-corpus", config)
    assert listed.code == 65, listed.err
    assert "holds 3 files" in listed.err
    assert_clean(listed.err)
    bad_key = workspace / "bad.yaml"
    bad_key.write_text(f"store: store\n{TINY_MODEL}base: {{corpus: a.txt}}\n"
                       f"{json.dumps(HOSTILE[0])}: 1\n")
    refused = cli("validate", bad_key)
    assert refused.code == 78 and "unknown key" in refused.err
    assert_clean(refused.err)


# --- the same file under several URIs ----------------------------------------------------


def spellings(folder: Path) -> list[str]:
    absolute = str(folder / "c.txt")
    return ["c.txt", "./c.txt", absolute, f"file://{absolute}", "sub/../c.txt",
            f"{folder}//./c.txt", f"file://{folder}/%63.txt", f"file://localhost{absolute}"]


def test_the_same_file_under_several_uris_is_applied_once(
    workspace: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    (workspace / "sub").mkdir()
    config = workspace / "config.yaml"
    queue = "".join(f"  - uri: '{u}'\n" for u in spellings(workspace))
    config.write_text(config.read_text() + "queue:\n" + queue)
    first = cli("add-corpus", config, "--json")
    assert first.code == 0, first.err
    applied = first.json()["applied"]
    assert [a["name"] for a in applied] == ["a.txt", "c.txt"]
    skipped = first.json()["skipped"]
    assert skipped and all("the same file as c.txt" in s["reason"] for s in skipped)
    # Later runs, and the same file given on the command line in each spelling: nothing
    # (a relative path on the command line is relative to the current folder).
    monkeypatch.chdir(workspace)
    again = cli("add-corpus", config, *spellings(workspace), "--json")
    assert again.code == 0 and again.json()["applied"] == [], again.err
    status = cli("status", config, "--json").json()
    assert status["pending"] == [] and status["applied"] == 2


def test_the_same_content_under_another_name_is_skipped_and_said(
    workspace: Path, cli: Callable[..., Result]
) -> None:
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + "queue: [{uri: c.txt}]\n")
    assert cli("add-corpus", config).code == 0
    shutil.copy(workspace / "c.txt", workspace / "copy.txt")
    os.link(workspace / "c.txt", workspace / "hard.txt")
    (workspace / "sym.txt").symlink_to(workspace / "c.txt")
    (workspace / "later").mkdir()
    shutil.copy(workspace / "c.txt", workspace / "later" / "again.txt")
    shutil.copy(workspace / "b.txt", workspace / "later" / "new.txt")
    config.write_text(config.read_text().replace(
        "queue: [{uri: c.txt}]", "queue: [{uri: c.txt}, {uri: copy.txt}, {uri: hard.txt}, "
        "{uri: sym.txt}, {uri: later}]"))
    run = cli("add-corpus", config, "--json")
    assert run.code == 0, run.err
    assert [a["name"] for a in run.json()["applied"]] == ["new.txt"]
    reasons = {s["name"]: s["reason"] for s in run.json()["skipped"]}
    for name in ("copy.txt", "hard.txt", "sym.txt", "again.txt"):
        assert reasons[name].startswith("same content as c.txt"), reasons
    assert "same content as c.txt" in run.err


def test_two_new_files_with_the_same_content_are_applied_once(
    workspace: Path, cli: Callable[..., Result]
) -> None:
    shutil.copy(workspace / "c.txt", workspace / "d.txt")
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + "queue: [{uri: c.txt}, {uri: d.txt}]\n")
    run = cli("add-corpus", config, "--json")
    assert run.code == 0, run.err
    assert [a["name"] for a in run.json()["applied"]] == ["a.txt", "c.txt"]
    assert run.json()["skipped"][0]["reason"].startswith("same content as c.txt")


# --- a second config with another base on the same store ---------------------------------


def other_config(workspace: Path, base: str, name: str = "other.yaml") -> Path:
    path = workspace / name
    path.write_text(f"store: store\n{TINY_MODEL}base: {base}\nqueue: [{{uri: c.txt}}]\n")
    return path


@pytest.mark.parametrize("base", ["{corpus: b.txt}", "{corpus: '*.txt'}", "{corpus: sub}",
                                  "{model: full.model}"])
@pytest.mark.parametrize("recorded", [True, False], ids=["new-store", "older-store"])
def test_a_second_config_with_another_base_is_refused(
    workspace: Path, cli: Callable[..., Result], base: str, recorded: bool
) -> None:
    from gensim.models import Word2Vec

    assert cli("add-corpus", workspace / "config.yaml").code == 0
    store = workspace / "store"
    if not recorded:  # as a store written before the base was recorded
        for meta in store.glob("versions/*/meta.json"):
            data = json.loads(meta.read_text())
            data.pop("base")
            meta.write_text(json.dumps(data))
    (workspace / "sub").mkdir()
    shutil.copy(workspace / "b.txt", workspace / "sub" / "b.txt")
    Word2Vec([["some", "words"]] * 5, vector_size=8, window=2, min_count=1,
             workers=1).save(str(workspace / "full.model"))
    before = tree_hashes(store)
    other = other_config(workspace, base)
    for command in ("add-corpus", "status", "rebuild"):
        result = cli(command, other)
        assert result.code == 78, (command, result.err)
        assert "started from another base" in result.err
    assert tree_hashes(store) == before


@pytest.mark.parametrize("base", ["{corpus: ./a.txt}", "{corpus: 'ABS/a.txt'}",
                                  "{corpus: 'file://ABS/a.txt'}", "{corpus: sub/../a.txt}"])
def test_the_same_base_spelt_otherwise_is_accepted(
    workspace: Path, cli: Callable[..., Result], base: str
) -> None:
    assert cli("add-corpus", workspace / "config.yaml").code == 0
    (workspace / "sub").mkdir()
    other = other_config(workspace, base.replace("ABS", str(workspace)))
    result = cli("add-corpus", other, "--json")
    assert result.code == 0, result.err
    assert [a["name"] for a in result.json()["applied"]] == ["c.txt"]


def test_a_moved_project_keeps_its_base(workspace: Path, cli: Callable[..., Result]) -> None:
    assert cli("add-corpus", workspace / "config.yaml").code == 0
    moved = workspace.parent / "moved"
    shutil.move(workspace, moved)
    result = cli("add-corpus", moved / "config.yaml")
    assert result.code == 0, result.err


def test_an_imported_model_that_moved_is_the_same_base(
    workspace: Path, cli: Callable[..., Result]
) -> None:
    from gensim.models import Word2Vec

    from helpers import lee_lines

    Word2Vec([line.split() for line in lee_lines()[:80]], vector_size=8, window=2,
             min_count=2, negative=2, epochs=1, workers=1).save(str(workspace / "m.model"))
    first = other_config(workspace, "{model: m.model}", "imported.yaml")
    assert cli("add-corpus", first).code == 0
    (workspace / "models").mkdir()
    shutil.copy(workspace / "m.model", workspace / "models" / "m.model")
    moved = other_config(workspace, "{model: models/m.model}", "imported.yaml")
    assert cli("add-corpus", moved).code == 0
    Word2Vec([line.split() for line in lee_lines()[80:160]], vector_size=8, window=2,
             min_count=2, negative=2, epochs=1, workers=1).save(str(workspace / "x.model"))
    other = other_config(workspace, "{model: x.model}", "imported.yaml")
    assert cli("add-corpus", other).code == 78


def test_reasons_event_details_and_corpus_names_are_escaped_in_every_text_output(
    workspace: Path, cli: Callable[..., Result]
) -> None:
    # history used to print --reason and event details raw, while status escaped them.
    config = workspace / "config.yaml"
    config.write_text(config.read_text() + "queue:\n  - uri: b.txt\n"
                      f"    name: {json.dumps(HOSTILE[1] + HOSTILE[0])}\n")
    assert cli("add-corpus", config).code == 0
    reason = "bad dump \x1b]0;owned\x07" + HOSTILE[0] + HOSTILE[2]
    outputs = [cli("exclude", config, "v0002", "--reason", reason),
               cli("rollback", config, "v0001"), cli("history", config),
               cli("status", config), cli("unexclude", config, "v0002"),
               cli("history", config)]
    for result in outputs:
        assert result.code == 0, result.err
        assert_clean(result.out)
        assert_clean(result.err)
    history = outputs[2].out
    assert "bad dump \\x1b]0;owned\\x07x\\nincw2v: error: forged" in history  # the reason
    assert "y\\x1b[2J\\x1b[31mx\\nincw2v: error: forged" in history  # the corpus name
    assert "x\\nincw2v: error: forged" in outputs[3].out
