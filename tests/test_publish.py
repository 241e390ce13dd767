"""``publish:``: the current version where consumers read it, whatever changed it.

A real reader process polls the pointer while versions are committed, rolled back,
promoted and rebuilt, as a serving process would: it never loads a half-written or
mixed set of files that passes the pointer's check (docs/publish.md says how to read;
the reader is ``helpers.PUBLISH_READER``).
The S3 target is tested against a real S3-compatible server (moto) on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    Result,
    closed_port,
    finish_publish_reader,
    lee_lines,
    s3_credentials,
    start_publish_reader,
)

FORMATS = "[word2vec-text, word2vec-binary, keyedvectors]"



def new_corpus(folder: Path, i: int) -> Path:
    lines = lee_lines()
    path = folder / f"new-{i:02d}.txt"
    path.write_text("".join(lines[100 + 15 * i: 130 + 15 * i]), encoding="utf-8")
    return path


def check_pointer(folder: Path, version: str) -> dict[str, Any]:
    pointer: dict[str, Any] = json.loads((folder / "current.json").read_text())
    assert pointer["version"] == version
    for name, info in pointer["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == info["sha256"]
    return pointer


def test_every_change_of_the_current_version_is_published_and_readers_never_fail(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    out = tmp_path / "serving"
    config = make_config(corpora["a"], extra=f"""
        publish:
          - to: serving
            formats: {FORMATS}
        """)
    first = cli("add-corpus", config, "--json")
    assert first.code == 0, first.err
    assert first.json()["published"] == [str(out)]
    pointer = check_pointer(out, "v0001")
    assert sorted(pointer["files"]) == ["vectors.bin", "vectors.kv", "vectors.kv.vectors.npy",
                                        "vectors.txt"]
    assert {"created_at", "published_at", "vocab_size", "vector_size"} <= set(pointer)

    stop = tmp_path / "stop"
    reader = start_publish_reader(str(out), stop)
    try:
        for i in range(8):
            run = cli("add-corpus", config, new_corpus(tmp_path, i), "--json")
            assert run.code == 0 and run.json()["published"] == [str(out)], run.err
            check_pointer(out, run.json()["current"])
        rolled = cli("rollback", config, "v0003", "--json")
        assert rolled.code == 0 and rolled.json()["published"] == [str(out)]
        check_pointer(out, "v0003")
        assert cli("rollback", config, "v0009").code == 0
        check_pointer(out, "v0009")
        rebuilt = cli("rebuild", config, "--json")
        assert rebuilt.code == 0 and rebuilt.json()["published"] == [str(out)]
        check_pointer(out, "v0010")
        # A gate keeps the next version as a candidate (not published); promote publishes it.
        config.write_text(config.read_text() + "gates: {wordsim353: {min: 0.99}}\n")
        held = cli("add-corpus", config, new_corpus(tmp_path, 8), "--json")
        assert held.code == 3 and held.json()["published"] == [], held.err
        check_pointer(out, "v0010")
        promoted = cli("promote", config, "v0011", "--json")
        assert promoted.code == 0 and promoted.json()["published"] == [str(out)]
        check_pointer(out, "v0011")
    finally:
        result = finish_publish_reader(reader, stop, "v0011")
    assert len(result["seen"]) >= 3 and result["seen"][0] == "v0001"
    assert result["seen"][-1] == "v0011"  # it ends on what is current

    # A no-op run finds the pointer up to date and writes nothing.
    before = (out / "current.json").read_bytes()
    noop = cli("add-corpus", config, "--json").json()
    assert noop["applied"] == [] and noop["published"] == []
    assert (out / "current.json").read_bytes() == before
    # 'publish' writes it again on demand.
    again = cli("publish", config, "--json")
    assert again.code == 0 and again.json() == {"version": "v0011", "targets": [str(out)]}
    assert json.loads((out / "current.json").read_text())["published_at"] >= \
        json.loads(before)["published_at"]


def test_a_promoted_candidate_is_published(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    config = make_config(corpora["a"], [corpora["b"]], extra="""
        gates: {wordsim353: {min: 0.99}}
        publish: [{to: out}]
        """)
    assert cli("add-corpus", config).code == 3  # b's version is a candidate
    check_pointer(tmp_path / "out", "v0001")  # the base went live, the candidate did not
    assert cli("promote", config, "v0002").code == 0
    pointer = check_pointer(tmp_path / "out", "v0002")
    assert list(pointer["files"]) == ["vectors.bin"]  # the default format


def test_publish_to_s3_with_a_polling_reader_and_a_failed_publish_retried(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    s3_credentials(monkeypatch, "publish-secret")
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    config = make_config(corpora["a"], extra=f"""
        sources: {{s3_endpoint_url: "{moto_endpoint}"}}
        publish:
          - to: s3://models/news/current
            formats: {FORMATS}
        """)
    # The bucket does not exist yet: the version is committed, the publish fails (74),
    # and says so.
    failed = cli("add-corpus", config)
    assert failed.code == 74, failed.err
    assert "v0001 is committed and current" in failed.err and "incw2v publish" in failed.err
    assert "publish-secret" not in failed.err
    assert cli("status", config, "--json").json()["current"] == "v0001"
    client.create_bucket(Bucket="models")
    healed = cli("add-corpus", config, "--json")  # nothing to apply, but the pointer is stale
    assert healed.code == 0, healed.err
    assert healed.json()["published"] == ["s3://models/news/current"]

    stop = tmp_path / "stop"
    cache = tmp_path / "reader-cache"
    cache.mkdir()
    env_reader = start_publish_reader("s3://models/news/current", stop, moto_endpoint, str(cache))
    try:
        for i in range(4):
            run = cli("add-corpus", config, new_corpus(tmp_path, i), "--json")
            assert run.code == 0, run.err
        assert cli("rollback", config, "v0002").code == 0
    finally:
        result = finish_publish_reader(env_reader, stop, "v0002")
    assert result["seen"][0] == "v0001" and result["seen"][-1] == "v0002"
    def check_s3_pointer() -> dict[str, Any]:
        pointer: dict[str, Any] = json.loads(client.get_object(
            Bucket="models", Key="news/current/current.json")["Body"].read())
        assert pointer["version"] == "v0002"
        for name, info in pointer["files"].items():
            body = client.get_object(Bucket="models", Key=f"news/current/{name}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == info["sha256"]
        return pointer

    check_s3_pointer()
    # Up to date: a no-op run writes nothing. A file that is not the pointer's (as a killed
    # publish of another version leaves it) makes the target stale: published again.
    assert cli("add-corpus", config, "--json").json()["published"] == []
    client.put_object(Bucket="models", Key="news/current/vectors.bin", Body=b"another one")
    healed = cli("add-corpus", config, "--json")
    assert healed.json()["published"] == ["s3://models/news/current"], healed.err
    check_s3_pointer()


def test_a_rollback_to_the_version_a_killed_publish_left_in_the_pointer_republishes_it(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    # A publish of v0002 killed after it renamed some of v0002's files into place leaves
    # the pointer naming v0001 over a mix. Rolling back to v0001 used to find the pointer
    # "up to date" and leave the mix for good.
    out = tmp_path / "out"
    config = make_config(corpora["a"], [corpora["b"]],
                         extra=f"publish: [{{to: out, formats: {FORMATS}}}]")
    assert cli("add-corpus", config).code == 0
    v2_files = tmp_path / "v0002-files"
    shutil.copytree(out, v2_files)  # v0002's real files, as its publish writes them
    assert cli("rollback", config, "v0001").code == 0
    v1 = check_pointer(out, "v0001")
    # What the killed publish of v0002 did: side file and binary file renamed into place
    # (they differ from v0001's), then it died before the text file and the pointer.
    for name in ("vectors.kv.vectors.npy", "vectors.bin"):
        shutil.copy2(v2_files / name, out / f".{name}.tmp")
        os.replace(out / f".{name}.tmp", out / name)
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() != v1["files"][name][
            "sha256"]
    assert (out / "current.json").read_bytes() == (json.dumps(v1, indent=2, sort_keys=True)
                                                    + "\n").encode()
    again = cli("rollback", config, "v0001", "--json")  # already current, as the pointer says
    assert again.code == 0 and again.json()["published"] == [str(out)], again.err
    check_pointer(out, "v0001")  # every file is v0001's again
    # Once whole, a target is left alone: the same rollback again writes nothing.
    before = (out / "current.json").read_bytes()
    assert cli("rollback", config, "v0001", "--json").json()["published"] == []
    assert (out / "current.json").read_bytes() == before


def test_a_failing_s3_publish_never_shows_credentials(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from incremental_w2v.errors import StoreIOError
    from incremental_w2v.lineage import Lineage

    secret, password = "FAKE-publish-Sentinel-93c1", "Pw-publish-Sentinel-77"
    s3_credentials(monkeypatch, secret)
    # The SDK's endpoint from the environment, with credentials in it, and nothing there:
    # botocore's error names the URL it could not reach, user-info and all.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3",
                       f"http://incw2v:{password}@127.0.0.1:{closed_port()}")
    config = make_config(corpora["a"], extra="publish: [{to: 's3://models/news'}]")
    # Through the library (no CLI filter in between): the error itself is clean.
    with pytest.raises(StoreIOError) as caught:
        Lineage(config).add_corpus()
    said = f"{caught.value.message} {caught.value.hint}"
    assert password not in said and secret not in said
    assert "cannot reach the S3 server" in said and "v0001 is committed and current" in said
    assert "127.0.0.1" in said  # the URL is named, redacted
    for argv in (["publish", config], ["publish", config, "--debug"],
                 ["add-corpus", config, "--json"]):
        run = cli(*argv)
        assert run.code == 74, run.err
        assert password not in run.out + run.err and secret not in run.out + run.err


def test_a_local_publish_target_inside_a_store_is_refused(
    tmp_path: Path, corpora: dict[str, Path], make_config: Callable[..., Path],
    cli: Callable[..., Result],
) -> None:
    (tmp_path / "link").symlink_to("store", target_is_directory=True)
    # The config's own store, before it exists (directly, and through a symlink).
    for to in ("store/served", "link/served", "store"):
        config = make_config(corpora["a"], extra=f"publish: [{{to: out}}, {{to: '{to}'}}]")
        run = cli("validate", config)
        assert run.code == 78, (to, run.err)
        assert "publish[1].to:" in run.err and "inside the incw2v store" in run.err, run.err
        assert "publish[0]" not in run.err
    assert not (tmp_path / "store").exists()
    # Once it exists, every command refuses before it trains, reads or writes anything.
    config = make_config(corpora["a"])
    assert cli("add-corpus", config).code == 0
    before = (tmp_path / "store" / "manifest.json").read_bytes()
    config = make_config(corpora["a"], [corpora["b"]],
                         extra="publish: [{to: store/versions/served}]")
    for argv in (["validate", config], ["add-corpus", config], ["publish", config],
                 ["rollback", config, "v0001"]):
        run = cli(*argv)
        assert run.code == 78 and "publish[0].to:" in run.err, (argv, run.err)
    assert (tmp_path / "store" / "manifest.json").read_bytes() == before
    assert not (tmp_path / "store" / "versions" / "served").exists()
    # Another store counts too; beside the store is fine.
    other = tmp_path / "other"
    (other / "versions").mkdir(parents=True)
    (other / ".incw2v-store").write_text("{}")
    config = make_config(corpora["a"], extra=f"publish: [{{to: '{other}/served'}}]")
    assert cli("validate", config).code == 78
    config = make_config(corpora["a"], extra="publish: [{to: served}]")
    assert cli("validate", config).code == 0


def test_publish_config_is_checked(tmp_path: Path, corpora: dict[str, Path],
                                   make_config: Callable[..., Path],
                                   cli: Callable[..., Result]) -> None:
    for bad, says in (
        ("publish: [{to: 'https://example.com/x'}]", "publish to a local folder or s3://"),
        ("publish: [{to: out, formats: [model]}]", "publish[0].formats[0]"),
        ("publish: [{to: out, formats: []}]", "publish[0].formats"),
        ("publish: [{to: 's3://AKIA:hunter2pw@bucket/x'}]", "refused"),
    ):
        config = make_config(corpora["a"], extra=bad)
        run = cli("validate", config)
        assert run.code == 78 and says in run.err, (bad, run.err)
        assert "hunter2pw" not in run.err
    config = make_config(corpora["a"])
    refused = cli("publish", config)
    assert refused.code == 64 and "no 'publish:' targets" in refused.err


def consistent(folder: Path, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """After a publish of ``new`` over ``old`` was killed: every file is whole (one of the
    two versions' files), and the pointer is never ahead of the files it names."""
    try:
        pointer = json.loads((folder / "current.json").read_text())
    except ValueError:
        return ["the pointer does not parse"]
    problems = [] if pointer["version"] in (old["version"], new["version"]) else [
        f"the pointer names {pointer['version']}"]
    for name in new["files"]:
        sha = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if sha not in (old["files"][name]["sha256"], new["files"][name]["sha256"]) and not (
            # gensim records the file's (temporary) name in a KeyedVectors pickle, so its
            # bytes differ from run to run: whole means it loads.
            name == "vectors.kv" and loads(folder / name)
        ):
            problems.append(f"{name} is neither version's file: half-written?")
        elif pointer["version"] == new["version"] and sha != pointer["files"][name]["sha256"]:
            problems.append(f"the pointer names {new['version']} before {name} was written")
    return problems


def loads(path: Path) -> bool:
    import pickle

    try:
        with open(path, "rb") as handle:
            pickle.load(handle)  # the test's own file, written by gensim just now
    except Exception:
        return False
    return True


@pytest.mark.faults
def test_a_publish_killed_at_any_write_never_leaves_a_pointer_ahead_of_its_files(
    driver: Any, fast_tmp: Path,
) -> None:
    from test_crash_sweep import write_workspace

    folder = fast_tmp / "ws"
    write_workspace(folder, ("b.txt",))
    config = folder / "config.yaml"
    config.write_text(config.read_text() + f"publish: [{{to: out, formats: {FORMATS}}}]\n")
    assert driver.run(["add-corpus", str(config), "--json"]).status == 0
    assert driver.run(["rollback", str(config), "v0001"]).status == 0
    out = folder / "out"
    template = out.parent / "template-out"
    import shutil

    shutil.copytree(out, template)
    old = json.loads((out / "current.json").read_text())
    reference = driver.run(["rollback", str(config), "v0002"])
    assert reference.status == 0
    new = json.loads((out / "current.json").read_text())
    assert new["version"] == "v0002" and set(new["files"]) == set(old["files"])
    # Every write from the publish's first on (fsyncs name descriptors, not paths).
    first = next(i for i, (_, path) in enumerate(reference.writes) if "/out/" in str(path))
    points = list(range(first + 1, len(reference.writes) + 1))
    assert len(points) >= 8, reference.writes  # files, side file, renames, fsyncs, pointer
    problems = []
    for n in points:
        for kind in ("kill-before", "kill-after"):
            # Back to v0001, published, then the publish of v0002 is killed at write n.
            assert driver.run(["rollback", str(config), "v0001"]).status == 0
            shutil.rmtree(out)
            shutil.copytree(template, out)
            crashed = driver.run(["rollback", str(config), "v0002"],
                                 fault={"at": n, "kind": kind})
            problems += [f"{kind} #{n}: {p}" for p in consistent(out, old, new)]
            if crashed.status != -9:
                problems.append(f"{kind} #{n}: not killed ({crashed.status})")
            healed = driver.run(["add-corpus", str(config)])  # a no-op run publishes again
            assert healed.status == 0, healed.stderr
            if json.loads((out / "current.json").read_text())["version"] != "v0002":
                problems.append(f"{kind} #{n}: the next run did not publish v0002")
            healed_pointer = json.loads((out / "current.json").read_text())
            problems += [f"{kind} #{n} healed: {p}"
                         for p in consistent(out, old, healed_pointer)]
    assert problems == []
