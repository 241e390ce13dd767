"""Test-side half of the fault harness: talk to ``fault_driver.py`` and judge a store.

``Driver`` runs commands in forked children of one preloaded process.
``check_store`` states what must hold after any crash, whatever the moment;
each violation is returned as a sentence so a sweep can report all of them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import package_env
from incremental_w2v.errors import IncW2VError
from incremental_w2v.store.backend import STAGING_RE, TMP_RE, TRASH_RE, WORK_RE
from incremental_w2v.store.manifest import Manifest
from incremental_w2v.store.store import MARKER, META, Store

DRIVER = Path(__file__).with_name("fault_driver.py")
LOCK_FILES = {".lock", ".lock.info"}
# What a run creates for itself: the patterns the sweep removes, and nothing else.
TEMP_PATTERNS = (STAGING_RE, WORK_RE, TRASH_RE, TMP_RE)


@dataclass
class Run:
    status: int  # exit code, or -signal
    codes: list[int] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(default_factory=list)
    s3_writes: list[tuple[str, str]] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    pid: int = 0

    @property
    def killed(self) -> bool:
        return self.status < 0

    def json(self) -> Any:
        return json.loads(self.stdout)


class Driver:
    """One fault_driver.py process; every command runs in a fresh fork of it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.counter = itertools.count()
        env = package_env()
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env,
        )

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fault driver died")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def start(self, *argvs: list[str], fault: dict[str, Any] | None = None,
              variant: str | None = None, kill_after: float | None = None,
              env: dict[str, str] | None = None) -> tuple[int, Path]:
        out = self.workdir / f"run-{next(self.counter)}"
        reply = self._ask({
            "op": "start", "argvs": [[str(a) for a in argv] for argv in argvs],
            "out": str(out), "fault": fault, "variant": variant,
            "kill_after_seconds": kill_after, "env": env,
        })
        return int(reply["pid"]), out

    def wait(self, pid: int, out: Path, timeout: float = 300) -> Run:
        status = int(self._ask({"op": "wait", "pid": pid, "timeout": timeout})["status"])
        return self.collect(status, out, pid)

    def run(self, *argvs: list[str], **kw: Any) -> Run:
        pid, out = self.start(*argvs, **kw)
        return self.wait(pid, out)

    def kill(self, pid: int) -> None:
        self._ask({"op": "kill", "pid": pid})

    @staticmethod
    def collect(status: int, out: Path, pid: int) -> Run:
        run = Run(status=status, pid=pid)
        run.stdout = Path(f"{out}.stdout").read_text(errors="replace")
        run.stderr = Path(f"{out}.stderr").read_text(errors="replace")
        report = Path(f"{out}.json")
        if report.exists():
            data = json.loads(report.read_text())
            run.codes, run.writes = data["codes"], [tuple(w) for w in data["writes"]]
            run.s3_writes = [tuple(w) for w in data.get("s3_writes", [])]
        return run

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


# -- judging a store ---------------------------------------------------------------------


def tree_hashes(root: Path, skip: set[str] = LOCK_FILES) -> dict[str, str]:
    """Every entry under ``root`` (relative path -> sha256, 'dir' or 'link:TARGET')."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            rel = str(path.relative_to(root))
            if rel in skip:
                continue
            if path.is_symlink():
                out[rel] = f"link:{os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def version_files(root: Path) -> dict[str, dict[str, str]]:
    """The files of every version listed by the manifest (version -> tree hashes)."""
    store = Store(root)
    try:
        manifest = store.read_manifest()
    except IncW2VError:
        return {}
    return {v.version: tree_hashes(store.version_dir(v.version)) for v in manifest.versions}


def lineage(root: Path) -> list[dict[str, Any]]:
    """What a run produced, without timings or random weights: comparable across runs."""
    return lineage_of(Store(root))


def lineage_of(store: Store) -> list[dict[str, Any]]:
    """:func:`lineage` of any store (local or on S3)."""
    manifest = store.read_manifest(fresh=True)
    rows = []
    for entry in manifest.versions:
        meta = store.read_meta(entry.version)
        rows.append({
            "version": meta.version, "kind": meta.kind, "parent": meta.parent,
            "status": entry.status, "current": manifest.current == meta.version,
            "pruned": entry.pruned_at is not None,
            "added": meta.added, "vocab_size": meta.vocab_size,
            "corpora": [(c.name, c.fingerprint.sha256, c.tokens, c.applied_in)
                        for c in meta.corpora],
        })
    return rows


def leftovers(root: Path) -> list[str]:
    """Temporary files of a run, version folders the manifest does not list, and arrays
    left in a version the manifest says was pruned."""
    if not root.exists():
        return []
    found = [p.name for p in root.iterdir() if any(r.match(p.name) for r in TEMP_PATTERNS)]
    versions = root / "versions"
    if versions.is_dir():
        try:
            entries = Store(root).read_manifest().versions
        except IncW2VError:
            entries = []
        listed = {v.version for v in entries}
        found += [f"versions/{p.name}" for p in versions.iterdir() if p.name not in listed]
        for entry in entries:
            if entry.pruned_at is not None:
                found += [f"versions/{entry.version}/{p.name}"
                          for p in (versions / entry.version).iterdir()
                          if p.name not in (META, MARKER)]
    return found


def readers_during(readers: list[subprocess.Popen[str]], stop: Path, update: Any, prune: Any,
                   updates: int = 20) -> int:
    """Run ``updates`` updates (and a prune after every fifth) while ``readers`` (processes
    running ``test_concurrency.READER`` until ``stop`` exists) read; returns their
    successful reads, after checking that not one read failed."""
    try:
        for reader in readers:  # all are reading before the first update starts
            assert reader.stdout is not None and reader.stdout.readline() == "READY\n"
        for i in range(updates):
            run = update(i)
            assert run.status == 0, run.stderr
            if i % 5 == 4:
                pruned = prune()
                assert pruned.status == 0, pruned.stderr
    finally:
        stop.touch()
        results = [r.communicate(timeout=300) for r in readers]
    reads = 0
    for reader, (out, err) in zip(readers, results, strict=True):
        assert reader.returncode == 0, err[-2000:]
        ok, failed = map(int, out.rsplit("RESULT", 1)[1].split())
        assert failed == 0, err[-2000:]
        reads += ok
    print(f"readers: {reads} successful reads during {updates} updates and "
          f"{updates // 5} prunes")
    assert reads >= 4
    return reads


def check_store(root: Path, before: dict[str, dict[str, str]]) -> list[str]:
    """What must hold at any moment, even right after a SIGKILL.

    ``before`` is ``version_files`` taken before the run: every version
    committed then must still be listed and hash exactly as before.
    """
    problems: list[str] = []
    store = Store(root)
    if not (root / "manifest.json").exists():
        if before:
            problems.append("manifest.json is gone although versions were committed")
        return problems
    try:
        manifest = store.read_manifest()
    except IncW2VError as exc:
        return [f"manifest does not parse: {exc.message}"]
    for version, files in before.items():
        entry = manifest.entry(version)
        if entry is None:
            problems.append(f"previously committed {version} is no longer listed")
        elif entry.pruned_at is not None:
            # Pruned: its arrays may go, its lineage record must stay as it was.
            now = tree_hashes(store.version_dir(version))
            record = {k: v for k, v in files.items() if k in (META, MARKER)}
            if {k: now.get(k) for k in record} != record:
                problems.append(f"pruned {version} lost or changed its lineage record")
        elif tree_hashes(store.version_dir(version)) != files:
            problems.append(f"previously committed {version} changed on disk")
    return check_listed(store, manifest, problems, bool(before),
                        lambda v: (store.version_dir(v) / MARKER).is_file())


def check_listed(store: Store, manifest: Manifest, problems: list[str], before: bool,
                 sealed: Callable[[str], bool]) -> list[str]:
    """The rest of a store's check: every listed version sealed and verified, the current
    one loads (when nothing is wrong so far); ``problems`` found so far come first."""
    problems = list(problems)
    if before and manifest.current is None:
        problems.append("no current version although one was committed before")
    for entry in manifest.versions:
        if not sealed(entry.version):
            problems.append(f"listed {entry.version} has no {MARKER} marker")
            continue
        if entry.pruned_at is not None:
            try:
                store.read_meta(entry.version)
            except IncW2VError as exc:
                problems.append(f"pruned {entry.version}'s record does not read: {exc.message}")
            continue
        try:
            store.verify(entry.version)
        except IncW2VError as exc:
            problems.append(f"listed {entry.version} does not verify: {exc.message}")
    if manifest.current is not None and not problems:
        problems += check_model(store, manifest.current)
    return problems


def check_model(store: Store, version: str) -> list[str]:
    try:
        meta = store.verify(version)
        model = store.load_model(version)
    except Exception as exc:
        return [f"current {version} does not load: {type(exc).__name__}: {exc}"]
    n = meta.vocab_size
    lengths = {
        "index_to_key": len(model.wv.index_to_key),
        "vectors": model.wv.vectors.shape[0],
        "syn1neg": model.syn1neg.shape[0],
        "counts": len(model.wv.expandos["count"]),
    }
    bad = {k: v for k, v in lengths.items() if v != n}
    return [f"current {version}: arrays disagree with vocab_size {n}: {bad}"] if bad else []


# -- judging a store on S3 ---------------------------------------------------------------


class S3View:
    """A test's look at a store on S3: raw objects, and the package's own reader.

    The reader has a cache folder of its own (another "host"), so what it checks
    was downloaded from the server, not taken from a writer's cache.
    """

    def __init__(self, endpoint: str, bucket: str, prefix: str, cache: Path) -> None:
        import boto3

        from incremental_w2v.store.bucket import Bucket
        from incremental_w2v.store.cache import Cache
        from incremental_w2v.store.s3 import S3Backend

        self.client = boto3.client("s3", endpoint_url=endpoint)
        self.endpoint = endpoint
        self.bucket, self.prefix = bucket, prefix
        location = f"s3://{bucket}/{prefix}"
        self.cache = cache
        self.backend = S3Backend(Bucket(bucket, prefix, endpoint, location),
                                 Cache(cache, 1 << 40, location), 60.0, 900.0)

    def store(self) -> Store:
        return Store(self.backend)

    def objects(self) -> dict[str, str]:
        """Every object of the store (key relative to the prefix) -> its ETag."""
        out: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            for item in page.get("Contents", []):
                out[item["Key"][len(self.prefix) + 1:]] = item["ETag"]
        return out

    def manifest(self) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket,
                                          Key=f"{self.prefix}/manifest.json")["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        data: dict[str, Any] = json.loads(body)
        return data

    def listed(self) -> dict[str, str]:
        """version -> upload, as the manifest says."""
        manifest = self.manifest() or {"versions": []}
        return {v["version"]: v["upload"] for v in manifest["versions"]}

    def version_objects(self) -> dict[str, dict[str, str]]:
        """The objects of every listed version (version -> name -> ETag)."""
        objects = self.objects()
        out: dict[str, dict[str, str]] = {}
        for version, upload in self.listed().items():
            head = f"versions/{version}/{upload}/"
            out[version] = {k[len(head):]: e for k, e in objects.items() if k.startswith(head)}
        return out

    def leftovers(self) -> list[str]:
        """Objects of uploads the manifest does not list, and upload records."""
        listed = {f"versions/{v}/{u}/" for v, u in self.listed().items()}
        return sorted(k for k in self.objects() if k.startswith("uploads/") or (
            k.startswith("versions/") and not any(k.startswith(p) for p in listed)))

    def lineage(self) -> list[dict[str, Any]]:
        return lineage_of(self.store())

    def lease(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.client.get_object(
            Bucket=self.bucket, Key=f"{self.prefix}/lease.json")["Body"].read())
        return data

    def wait_for_holder(self, pid: int, timeout: float = 60) -> dict[str, Any]:
        """The lease, once process ``pid`` holds it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lease = self.lease()
            if lease["state"] == "held" and lease["holder"]["pid"] == pid:
                return lease
            time.sleep(0.1)
        raise AssertionError(f"pid {pid} never took the lease")


def check_s3_store(view: S3View, before: dict[str, dict[str, str]]) -> list[str]:
    """``check_store`` for S3: what must hold at any moment, even right after a SIGKILL."""
    problems: list[str] = []
    if view.manifest() is None:
        return ["manifest.json is gone"] if before else []
    store = view.store()
    try:
        manifest = store.read_manifest(fresh=True)
    except IncW2VError as exc:
        return [f"manifest does not parse: {exc.message}"]
    now = view.version_objects()
    for version, objects in before.items():
        if version not in now:
            problems.append(f"previously committed {version} is no longer listed")
        elif now[version] != objects:
            problems.append(f"previously committed {version} changed in the bucket")
    return check_listed(store, manifest, problems, bool(before),
                        lambda v: MARKER in now.get(v, {}))
