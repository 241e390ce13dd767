"""A store on S3 (moto's server on 127.0.0.1): every command, the cache, the marker, the
lease, and what a no-op costs. Crashes and races on S3 are in test_s3_faults.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faults import S3View, check_s3_store
from helpers import (
    Result,
    closed_port,
    host_env,
    lee_lines,
    package_env,
    run_subprocess,
    s3_credentials,
    s3_store_config,
)
from test_crash_sweep import write_workspace

SECRET = "FAKE-s3-store-Sentinel-4e71aa"


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
           ) -> Iterator[tuple[str, str]]:
    """A new bucket; credentials only in the environment; this process's own cache."""
    import boto3

    s3_credentials(monkeypatch, SECRET)
    for name, value in host_env(tmp_path, "here").items():
        monkeypatch.setenv(name, value)
    name = f"models-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    yield moto_endpoint, name


@pytest.fixture
def workspace(tmp_path: Path, bucket: tuple[str, str]) -> tuple[Path, S3View]:
    """Corpora a, b, c, and a config whose store is s3://BUCKET/lineage (queue: b)."""
    endpoint, name = bucket
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    s3_store_config(folder / "config.yaml", endpoint, name)
    return folder, S3View(endpoint, name, "lineage", tmp_path / "checker-cache")


def test_every_command_works_on_an_s3_store(
    workspace: tuple[Path, S3View], cli: Callable[..., Result], tmp_path: Path
) -> None:
    from gensim.models import KeyedVectors, Word2Vec

    folder, view = workspace
    config = folder / "config.yaml"
    first = cli("add-corpus", config, "--json")
    assert first.code == 0, first.err
    assert [a["version"] for a in first.json()["applied"]] == ["v0001", "v0002"]
    assert cli("add-corpus", config, "--json").json()["applied"] == []  # a no-op
    status = cli("status", config, "--json").json()
    assert status["store"] == f"s3://{view.bucket}/lineage" and status["current"] == "v0002"
    assert [r["version"] for r in cli("history", config, "--json").json()] == ["v0001", "v0002"]
    out = tmp_path / "out"
    out.mkdir()
    exported = cli("export", config, "--format", "word2vec-text", "--output", out / "v.txt")
    assert exported.code == 0, exported.err
    assert len(KeyedVectors.load_word2vec_format(str(out / "v.txt"))) > 1000
    assert cli("export", config, "--format", "model", "--output", out / "m.model").code == 0
    assert len(Word2Vec.load(str(out / "m.model")).wv) > 1000
    assert cli("rollback", config, "1").code == 0
    assert cli("status", config, "--json").json()["current"] == "v0001"
    assert cli("rollback", config, "2").code == 0
    extra = cli("add-corpus", config, folder / "c.txt", "--json")
    assert [a["version"] for a in extra.json()["applied"]] == ["v0003"], extra.err
    compared = cli("compare", config, "v0002", "v0003", "--json")
    assert compared.code == 0 and compared.json()["vocab"]["added"] > 0, compared.err
    assert cli("evaluate", config, "--json").code == 0
    assert cli("report", config, "--output", out / "r.html").code == 0
    assert "v0003" in (out / "r.html").read_text()
    rebuilt = cli("rebuild", config, "--json")
    assert rebuilt.code == 0 and rebuilt.json()["version"] == "v0004", rebuilt.err
    pruned = cli("prune", config, "--keep", "2")
    assert pruned.code == 0, pruned.err
    # Pruned versions keep their lineage record: their meta.json and marker, nothing else.
    rows = cli("history", config, "--json").json()
    assert [r["version"] for r in rows] == ["v0001", "v0002", "v0003", "v0004"]
    assert [r["version"] for r in rows if r["pruned_at"]] == ["v0001", "v0002"]
    assert cli("repair", config, "--json").json()["rebuilt"] is False
    # Only what the manifest lists is in the bucket; the lease was released.
    assert view.leftovers() == []
    objects = view.version_objects()
    assert set(objects) == {"v0001", "v0002", "v0003", "v0004"}
    assert set(objects["v0001"]) == set(objects["v0002"]) == {"meta.json", "COMMITTED"}
    lease = view.lease()
    assert lease["state"] == "released" and lease["fence"] == 8  # one per locked command
    assert check_s3_store(view, {}) == []


def published(view: S3View, prefix: str = "published") -> dict[str, Any]:
    """The pointer of a publish target in the store's bucket, its files checked by sha256."""
    import hashlib

    def get(name: str) -> bytes:
        body: bytes = view.client.get_object(Bucket=view.bucket,
                                             Key=f"{prefix}/{name}")["Body"].read()
        return body

    pointer: dict[str, Any] = json.loads(get("current.json"))
    for name, info in pointer["files"].items():
        assert hashlib.sha256(get(name)).hexdigest() == info["sha256"], name
    return pointer


def test_gates_retention_and_publish_on_an_s3_store(
    workspace: tuple[Path, S3View], cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    # The SDK's own default server is a dead one: a publish target on S3 must go to the
    # store's server (store_options.endpoint_url), as docs/publish.md says.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port()}")
    config.write_text(config.read_text() + textwrap.dedent(f"""\
        gates:
          wordsim353: {{min: 0.99}}
        retention: {{keep: 1}}
        publish:
          - to: s3://{view.bucket}/published
        """))
    first = cli("add-corpus", config, "--json")
    assert first.code == 3, first.err  # b's version failed the gate: a candidate
    assert first.json()["current"] == "v0001"
    assert first.json()["published"] == [f"s3://{view.bucket}/published"]
    assert published(view)["version"] == "v0001"
    assert cli("status", config, "--json").json()["candidates"] == ["v0002"]

    promoted = cli("promote", config, "v0002")
    assert promoted.code == 0, promoted.err
    manifest = view.manifest()
    assert manifest is not None and manifest["current"] == "v0002"
    assert manifest["events"][-1]["action"] == "promote"
    assert published(view)["version"] == "v0002"

    # c on top of v0002 fails the same gate; rejecting it drops it for good.
    third = cli("add-corpus", config, folder / "c.txt", "--json")
    assert third.code == 3 and "v0003 (c.txt)" in third.err, third.err
    assert third.json()["pruned"] == []  # v0001 is old, but a refused commit prunes nothing
    rejected = cli("reject", config, "v0003")
    assert rejected.code == 0, rejected.err
    manifest = view.manifest()
    assert manifest is not None and manifest["current"] == "v0002"
    assert [v["status"] for v in manifest["versions"]] == ["committed", "committed",
                                                            "rejected"]
    assert published(view)["version"] == "v0002"

    # Without the gate, the next commit becomes current and applies retention (keep 1):
    # every other version keeps its lineage record only, the rejected one included.
    config.write_text(config.read_text().replace("gates:\n  wordsim353: {min: 0.99}\n", ""))
    extra = folder / "d.txt"
    extra.write_text("".join(lee_lines()[200:240]), encoding="utf-8")
    fourth = cli("add-corpus", config, extra, "--json")
    assert fourth.code == 0, fourth.err
    assert fourth.json()["pruned"] == ["v0001", "v0002", "v0003"]
    objects = view.version_objects()
    for version in ("v0001", "v0002", "v0003"):
        assert set(objects[version]) == {"meta.json", "COMMITTED"}, version
    assert "model" in objects["v0004"]
    manifest = view.manifest()
    assert manifest is not None and manifest["current"] == "v0004"
    assert [bool(v.get("pruned_at")) for v in manifest["versions"]] == [True] * 3 + [False]
    assert published(view)["version"] == "v0004"
    assert view.leftovers() == [] and view.lease()["state"] == "released"
    assert check_s3_store(view, {}) == []


def test_an_s3_publish_target_inside_the_store_is_refused(
    workspace: tuple[Path, S3View], cli: Callable[..., Result]
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    base = config.read_text()
    for to in ("lineage/published", "lineage", "lineage/versions/v0001"):
        config.write_text(base + f"publish: [{{to: 's3://{view.bucket}/{to}'}}]\n")
        run = cli("validate", config)
        assert run.code == 78, (to, run.err)
        assert "publish[0].to:" in run.err and f"is inside the store s3://{view.bucket}/" \
            "lineage" in run.err, run.err
        # Every command refuses before it writes: not even a lease, nor the marker.
        refused = cli("add-corpus", config)
        assert refused.code == 78 and "publish[0].to:" in refused.err, refused.err
        assert view.objects() == {}
    # A sibling prefix that merely starts with the same letters, another bucket: fine.
    for to in (f"{view.bucket}/lineage-served", f"{view.bucket}/served", "elsewhere/lineage"):
        config.write_text(base + f"publish: [{{to: 's3://{to}'}}]\n")
        assert cli("validate", config).code == 0, to
    # A store at the bucket's root: every key of the bucket is inside it.
    config.write_text(base.replace(f"s3://{view.bucket}/lineage", f"s3://{view.bucket}")
                      + f"publish: [{{to: 's3://{view.bucket}/served'}}]\n")
    run = cli("validate", config)
    assert run.code == 78 and "publish[0].to:" in run.err, run.err


def test_the_endpoint_of_sources_serves_the_store_too(
    tmp_path: Path, bucket: tuple[str, str], cli: Callable[..., Result]
) -> None:
    endpoint, name = bucket
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace(
        "store: store", f"store: s3://{name}/x/y\nsources:\n  s3_endpoint_url: {endpoint}"))
    result = cli("add-corpus", config, "--json")
    assert result.code == 0, result.err
    assert S3View(endpoint, name, "x/y", tmp_path / "c").listed().keys() == {"v0001"}


@pytest.mark.parametrize(("store", "fragment"), [
    ("s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/x", "user-info"),
    ("s3://bucket/x?X-Amz-Signature=abc", "query"),
    ("s3://Not_A_Bucket/x", "not a valid S3 bucket name"),
    ("s3://bucket/a/../b", "'..'"),
    ("gs://bucket/x", "gs:// is not supported for stores"),
])
def test_a_store_uri_that_cannot_be_a_store_is_refused_by_validate(
    tmp_path: Path, cli: Callable[..., Result], store: str, fragment: str
) -> None:
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("store: store", f"store: '{store}'"))
    result = cli("validate", config)
    assert result.code == 78 and fragment in result.err, result.err
    assert "wJalrXUtnFEMI" not in result.err


def test_store_options_need_an_s3_store_and_a_grace_longer_than_the_lease(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    base = config.read_text()
    config.write_text(base + "store_options: {lease_seconds: 30}\n")
    assert "store_options apply to a store on S3" in cli("validate", config).err
    config.write_text(base.replace("store: store", "store: s3://b-1/x\nstore_options: "
                                   "{lease_seconds: 30, leftover_grace_seconds: 20}"))
    result = cli("validate", config)
    assert result.code == 78 and "must be longer than lease_seconds" in result.err


def test_a_prefix_holding_other_objects_is_not_a_store(
    workspace: tuple[Path, S3View], cli: Callable[..., Result]
) -> None:
    folder, view = workspace
    view.client.put_object(Bucket=view.bucket, Key="lineage/versions/v0001/notes.txt",
                           Body=b"someone else's")
    before = view.objects()
    result = cli("add-corpus", folder / "config.yaml")
    assert result.code == 65, result.err  # looks like versions without a manifest: damaged
    view.client.delete_object(Bucket=view.bucket, Key="lineage/versions/v0001/notes.txt")
    view.client.put_object(Bucket=view.bucket, Key="lineage/data.csv", Body=b"a,b\n")
    before = view.objects()
    result = cli("add-corpus", folder / "config.yaml")
    assert result.code == 78 and "is not an incw2v store" in result.err, result.err
    assert view.objects() == before  # not even a lease was written


def test_a_lost_manifest_is_refused_then_repaired(
    workspace: tuple[Path, S3View], cli: Callable[..., Result]
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    before = view.version_objects()
    view.client.delete_object(Bucket=view.bucket, Key="lineage/manifest.json")
    objects = view.objects()
    for command in (["add-corpus", config], ["status", config], ["history", config]):
        result = cli(*command)
        assert result.code == 65, result.err
        assert "damaged" in result.err and "incw2v repair" in result.err
    assert view.objects() == objects  # nothing swept, nothing written
    repaired = cli("repair", config, "--json")
    assert repaired.code == 0, repaired.err
    assert repaired.json()["versions"] == ["v0001", "v0002"]
    assert repaired.json()["current"] == "v0002"
    assert view.version_objects() == before
    assert cli("add-corpus", config, folder / "c.txt").code == 0
    assert check_s3_store(view, before) == []


def test_versions_are_verified_and_the_cache_refetches_a_damaged_copy(
    workspace: tuple[Path, S3View], cli: Callable[..., Result], tmp_path: Path
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    out = tmp_path / "v.txt"
    assert cli("export", config, "--format", "word2vec-text", "--output", out).code == 0
    # The local copy (here: the writer's own, kept after its upload) is damaged ...
    copies = [p for p in (tmp_path / "cache-here").glob("*/versions/v0002-*") if p.is_dir()]
    assert len(copies) == 1
    vectors = copies[0] / "model.wv.vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-8] + b"\0" * 8)
    again = cli("export", config, "--format", "word2vec-text", "--output", out, "--force")
    assert again.code == 0, again.err
    assert "fetching it again" in again.err
    # ... and the object in the bucket: refused, never unpickled.
    upload = view.listed()["v0002"]
    key = f"lineage/versions/v0002/{upload}/model.wv.vectors.npy"
    body = view.client.get_object(Bucket=view.bucket, Key=key)["Body"].read()
    view.client.put_object(Bucket=view.bucket, Key=key, Body=body[:-8] + b"\1" * 8)
    vectors.write_bytes(b"damaged again")
    refused = cli("export", config, "--format", "word2vec-text", "--output", out, "--force")
    assert refused.code == 65 and "does not match its recorded sha256" in refused.err


def test_the_cache_keeps_to_its_size(
    workspace: tuple[Path, S3View], cli: Callable[..., Result], tmp_path: Path
) -> None:
    folder, _ = workspace
    config = folder / "config.yaml"
    # Versions of about 2 MB each (128 dimensions) in a cache of 1 MiB.
    config.write_text(config.read_text().replace("  lease_seconds", "  cache_max_bytes: "
                                                 "1048576\n  lease_seconds")
                      .replace("vector_size: 8", "vector_size: 128"))
    assert cli("add-corpus", config, folder / "c.txt").code == 0
    for version in ("1", "2", "3", "1"):
        result = cli("export", config, "--version", version, "--format", "word2vec-text",
                     "--output", tmp_path / "v.txt", "--force")
        assert result.code == 0, result.err
    cache = next((tmp_path / "cache-here").glob("*/versions"))
    copies = [p for p in cache.iterdir() if p.is_dir()]
    size = sum(f.stat().st_size for p in copies for f in p.iterdir())
    assert [p.name[:5] for p in copies] == ["v0001"]  # the one used last
    assert size > 0 and "over its limit" in result.err  # one version is larger than the limit


def test_large_files_go_up_in_parts(
    workspace: tuple[Path, S3View], cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from incremental_w2v.store import bucket

    monkeypatch.setattr(bucket, "MULTIPART_BYTES", 32 << 10)  # as for files over 256 MiB
    folder, view = workspace
    assert cli("add-corpus", folder / "config.yaml").code == 0
    upload = view.listed()["v0002"]
    head = view.client.head_object(
        Bucket=view.bucket, Key=f"lineage/versions/v0002/{upload}/model.wv.vectors.npy")
    assert head["ETag"].strip('"').endswith("-1")  # a multipart upload's ETag
    assert check_s3_store(view, {}) == []  # downloaded by another host and verified


def test_a_held_lease_refuses_or_queues_and_names_its_holder(
    workspace: tuple[Path, S3View], tmp_path: Path
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    assert run_subprocess("add-corpus", config, env=package_env()).returncode == 0
    fifo = folder / "incoming.txt"
    os.mkfifo(fifo)
    holder = subprocess.Popen(
        [sys.executable, "-m", "incremental_w2v", "add-corpus", str(config), str(fifo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=package_env(**host_env(tmp_path, "alpha")))
    try:
        view.wait_for_holder(holder.pid)
        refused = run_subprocess("add-corpus", config,
                                 env=package_env(**host_env(tmp_path, "beta")))
        assert refused.returncode == 75, refused.stderr
        assert f"pid {holder.pid} on host alpha" in refused.stderr and "--wait" in refused.stderr
        waiter = subprocess.Popen(
            [sys.executable, "-m", "incremental_w2v", "add-corpus", str(config), "--wait",
             "120", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=package_env(**host_env(tmp_path, "gamma")))
        time.sleep(1.5)
        assert waiter.poll() is None  # queued behind alpha
        with open(fifo, "w") as pipe:
            pipe.write((folder / "c.txt").read_text())
        assert holder.wait(timeout=120) == 0, holder.communicate()[1]
        out, err = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, err
        assert json.loads(out)["applied"] == []
    finally:
        if holder.poll() is None:
            holder.kill()
    assert view.listed().keys() == {"v0001", "v0002", "v0003"}


NOOP_PROBE = """
import json, sys, time
started = time.perf_counter()
import botocore.session
counted = []
original = botocore.session.Session.create_client
def create_client(session, *args, **kw):
    client = original(session, *args, **kw)
    def count(params, model, **_):
        counted.append([model.name, params.get("Key") or params.get("Prefix") or ""])
    client.meta.events.register("before-parameter-build.s3", count)
    return client
botocore.session.Session.create_client = create_client
from incremental_w2v.cli.main import main
code = main(["add-corpus", sys.argv[1], "-q"])
print(json.dumps({"code": code, "seconds": time.perf_counter() - started, "requests": counted,
                  "loaded": sorted(m for m in ("gensim", "scipy") if m in sys.modules)}))
"""


def copy_versions(view: S3View, n: int) -> None:
    """Grow a store of v0001, v0002 to ``n`` versions: copies of v0002's upload, each with
    its own upload id and meta.json, listed in the manifest (a store 100 updates old)."""
    import secrets

    manifest = view.manifest()
    assert manifest is not None
    source = manifest["versions"][-1]
    head = f"lineage/versions/v0002/{source['upload']}/"
    names = [k.split("/")[-1] for k in view.objects()
             if k.startswith(f"versions/v0002/{source['upload']}/")]
    meta = json.loads(view.client.get_object(Bucket=view.bucket,
                                             Key=head + "meta.json")["Body"].read())
    for i in range(3, n + 1):
        version, upload = f"v{i:04d}", secrets.token_hex(8)
        for name in names:
            body = view.client.get_object(Bucket=view.bucket, Key=head + name)["Body"].read()
            if name == "meta.json":
                body = json.dumps({**meta, "version": version,
                                   "parent": f"v{i - 1:04d}"}).encode()
            view.client.put_object(Bucket=view.bucket,
                                   Key=f"lineage/versions/{version}/{upload}/{name}", Body=body)
        manifest["versions"].append({**source, "version": version, "upload": upload,
                                     "parent": f"v{i - 1:04d}"})
    manifest["current"] = f"v{n:04d}"
    view.client.put_object(Bucket=view.bucket, Key="lineage/manifest.json",
                           Body=json.dumps(manifest).encode())


def test_a_noop_against_100_versions_is_a_handful_of_requests(
    workspace: tuple[Path, S3View], cli: Callable[..., Result], tmp_path: Path
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    copy_versions(view, 100)
    assert cli("status", config, "--json").json()["current"] == "v0100"
    runs = []
    for host in ("first", "again"):  # a host's first no-op fetches the meta; later ones not
        env = package_env(**host_env(tmp_path, "probe"))
        proc = subprocess.run([sys.executable, "-c", NOOP_PROBE, str(config)],
                              capture_output=True, text=True, env=env, timeout=120)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        assert runs[-1]["code"] == 0, (host, proc.stderr)
    for run in runs:
        print(f"no-op on 100 versions: {run['seconds']:.2f}s, {len(run['requests'])} "
              f"requests: {run['requests']}")
        assert run["loaded"] == []  # no gensim, no scipy
        touched = [key for _, key in run["requests"] if "versions/" in key]
        assert all("v0100" in key for key in touched), touched  # no old version, no listing
        assert run["seconds"] < 1.0 + 1.0  # (interpreter start included; see the benchmark)
    # docs/store.md lists them: 7 with an empty cache, 6 once the current meta.json is cached.
    assert len(runs[0]["requests"]) == 7, runs[0]["requests"]
    assert len(runs[1]["requests"]) == 6, runs[1]["requests"]
    assert not any("versions/" in key for _, key in runs[1]["requests"])


def test_credentials_never_leak_from_an_s3_store(
    workspace: tuple[Path, S3View], tmp_path: Path
) -> None:
    from gensim.models import Word2Vec

    folder, view = workspace
    config = folder / "config.yaml"
    config.write_text(config.read_text() + "log_file: run.log\n")
    env = package_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY=SECRET,
                      **host_env(tmp_path, "leaky"))
    outputs = []
    for args in (["add-corpus", config, "--json", "--debug"], ["history", config, "--json"],
                 ["status", config, "--json", "--debug"],
                 ["export", config, "--format", "model", "--output", tmp_path / "m.model"]):
        result = run_subprocess(*args, env=env)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    config.write_text(config.read_text() + f"sources:\n  s3_endpoint_url: {view.endpoint}\n")
    bad = run_subprocess("add-corpus", config, f"s3://{view.bucket}/missing.txt", "--debug",
                         env=env)
    assert bad.returncode == 66, bad.stderr  # a failing run, with debug logs
    outputs += [bad.stdout, bad.stderr]
    model = Word2Vec.load(str(tmp_path / "m.model"))
    everything = "\n".join(outputs) + json.dumps(model.lifecycle_events, default=str)
    everything += (folder / "run.log").read_text()
    everything += "".join(
        view.client.get_object(Bucket=view.bucket, Key=f"lineage/{k}")["Body"].read().decode(
            "latin-1") for k in view.objects())
    everything += "".join(p.read_bytes().decode("latin-1")
                          for p in (tmp_path / "cache-leaky").rglob("*") if p.is_file())
    assert SECRET not in everything


def test_moto_enforces_both_conditions(bucket: tuple[str, str]) -> None:
    """What the store relies on, checked against the server the tests use."""
    import boto3
    from botocore.exceptions import ClientError

    endpoint, name = bucket
    client = boto3.client("s3", endpoint_url=endpoint)
    etag = client.put_object(Bucket=name, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=name, Key="k", Body=b"2", IfNoneMatch="*")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=name, Key="k", Body=b"2", IfMatch='"0123"')
    newer = client.put_object(Bucket=name, Key="k", Body=b"3", IfMatch=etag)["ETag"]
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=name, Key="k", Body=b"4", IfMatch=etag)  # stale
    assert client.get_object(Bucket=name, Key="k")["ETag"] == newer


def test_a_server_that_ignores_conditional_writes_gets_no_store(
    workspace: tuple[Path, S3View], cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session

    # Between client and server, the conditions are dropped: as an old server ignores them.
    original = botocore.session.Session.create_client

    def create_client(session: Any, *args: Any, **kw: Any) -> Any:
        client = original(session, *args, **kw)

        def drop(request: Any, **_: Any) -> None:
            for header in ("If-None-Match", "If-Match"):
                if header in request.headers:
                    del request.headers[header]

        client.meta.events.register("before-sign.s3.PutObject", drop)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    folder, view = workspace
    result = cli("add-corpus", folder / "config.yaml")
    assert result.code == 78 and "ignores conditional writes" in result.err, result.err
    assert "manifest.json" not in view.objects()


def test_an_expired_lease_of_a_dead_holder_is_broken_and_recorded(
    workspace: tuple[Path, S3View], cli: Callable[..., Result], tmp_path: Path
) -> None:
    folder, view = workspace
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("lease_seconds: 60", "lease_seconds: 2")
                      .replace("leftover_grace_seconds: 900", "leftover_grace_seconds: 4"))
    assert cli("add-corpus", config).code == 0
    fifo = folder / "incoming.txt"
    os.mkfifo(fifo)
    holder = subprocess.Popen(
        [sys.executable, "-m", "incremental_w2v", "add-corpus", str(config), str(fifo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=package_env(**host_env(tmp_path, "alpha")))
    lease = view.wait_for_holder(holder.pid)

    def working() -> list[Path]:  # alpha's working folders, in its own cache
        return [p for p in (tmp_path / "cache-alpha").glob("*/scratch/.work-*") if p.is_dir()]

    deadline = time.monotonic() + 60
    while not working():  # killed once it is reading the pipe (its working folder made)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    holder.kill()
    holder.wait()
    fence = lease["fence"]
    # Another host: refused while the lease lasts, takes it over once it expired.
    assert cli("add-corpus", config).code == 75
    taken = cli("add-corpus", config, folder / "c.txt", "--wait", "30", "--json")
    assert taken.code == 0, taken.err
    assert "took over the lease" in taken.err
    manifest = view.manifest()
    assert manifest is not None
    broken = [e for e in manifest["events"] if e["action"] == "lease-broken"]
    assert len(broken) == 1 and f"pid {holder.pid} on host alpha" in broken[0]["detail"]
    lease = view.lease()
    assert lease["state"] == "released" and lease["fence"] == fence + 1
    # On alpha, the dead run's working folder is swept by alpha's next run.
    assert working()
    again = run_subprocess("add-corpus", config, "--json",
                           env=package_env(**host_env(tmp_path, "alpha")))
    assert again.returncode == 0, again.stderr
    assert not working()
    assert check_s3_store(view, {}) == []
