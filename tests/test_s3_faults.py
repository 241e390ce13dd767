"""A store on S3 under crashes, races, stopped holders and a failing network.

Every process is real (forked from the fault driver, or a plain subprocess), and
so are the signals and the S3-compatible server (moto, on 127.0.0.1). Each run
plays another "host": its own ``INCW2V_HOST`` and its own cache folder.

- Crash sweep: an ``add-corpus`` is SIGKILLed just before and just after each S3
  request that writes; after each kill the store is consistent, and the next run
  from another host (queueing with ``--wait`` until the dead run's lease expires)
  gives exactly the uninterrupted lineage; once the grace period has passed, a
  later run leaves no leftover, and one more changes nothing.
- Races: 2 and 8 hosts apply the same corpus at once: exactly one version.
- A holder stopped (SIGSTOP) past its lease, then resumed: refused, invisible.
- A holder busy for five lease periods renews its lease: another host is refused (75)
  half way through, and the holder commits; without renewals the same test fails.
- The server gone in the middle of an upload, and reset connections: exit 74,
  the store unchanged, the next run succeeds.
- Readers export and query during 20 updates and 4 prunes without one failure, and a
  consumer polling an S3 publish target never accepts a torn or mixed set of files.

The deliberately broken variants (patched in by the fault driver, never in the
package) must fail the same checks, or the checks prove nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faults import Driver, Run, S3View, check_s3_store, readers_during
from helpers import (
    FlakyProxy,
    finish_publish_reader,
    host_env,
    package_env,
    s3_store_config,
    start_publish_reader,
)
from incremental_w2v.errors import IncW2VError
from test_concurrency import READER, new_corpus
from test_crash_sweep import write_workspace

pytestmark = pytest.mark.faults

LEASE, GRACE = 2.0, 4.0
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Place:
    """A bucket on the test server, and a workspace (corpora, configs) for it."""

    endpoint: str
    bucket: str
    folder: Path

    def config(self, prefix: str, endpoint: str | None = None) -> Path:
        path = self.folder / f"{prefix.replace('/', '-')}.yaml"
        path.write_text((self.folder / "config.yaml").read_text())
        return s3_store_config(path, endpoint or self.endpoint, self.bucket, prefix,
                               lease=LEASE, grace=GRACE)

    def view(self, prefix: str) -> S3View:
        return S3View(self.endpoint, self.bucket, prefix, self.folder / f"check-{prefix}")

    def env(self, host: str) -> dict[str, str]:
        return {**CREDENTIALS, **host_env(self.folder, host)}

    def copy(self, source: str, target: str) -> None:
        """A fresh store at ``target``: every object of ``source``, copied on the server."""
        view = self.view(source)
        for key in view.objects():
            view.client.copy_object(Bucket=self.bucket, Key=f"{target}/{key}",
                                    CopySource={"Bucket": self.bucket, "Key": f"{source}/{key}"})


@pytest.fixture
def place(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[S3Place]:
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = f"faults-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    yield S3Place(moto_endpoint, bucket, folder)


def visible(view: S3View) -> dict[str, Any]:
    """What readers can see: the manifest and the objects of the versions it lists."""
    return {"manifest": view.manifest(), "versions": view.version_objects()}


# -- the crash sweep ---------------------------------------------------------------------


def key_class(key: str) -> str:
    """Which kind of object a write is to (the default sweep takes one point per kind)."""
    name = key.rsplit("/", 1)[-1]
    if "/uploads/" in key:
        return "upload record"
    if "/versions/" in key:
        return name if name in ("meta.json", "COMMITTED") else "version file"
    return name


class S3Sweep:
    """A reference run, and the crash points of ``add-corpus`` on a prepared store."""

    def __init__(self, driver: Driver, place: S3Place, prepare: bool, variant: str | None = None
                 ) -> None:
        self.driver, self.place, self.variant = driver, place, variant
        self.copies = 0
        if prepare:
            base = place.folder / "base.yaml"
            s3_store_config(base, place.endpoint, place.bucket, "template", LEASE, GRACE)
            run = driver.run(["add-corpus", str(base)], env=place.env("prep"))
            assert run.status == 0, run.stderr
        self.prepared = prepare
        prefix = self.fresh()
        reference = self.run(prefix, "reference")
        assert reference.status == 0, reference.stderr
        self.writes = reference.s3_writes
        self.lineage = place.view(prefix).lineage()
        self.kept = {row["version"] for row in self.lineage}

    def fresh(self) -> str:
        self.copies += 1
        prefix = f"copy-{self.copies}"
        if self.prepared:
            self.place.copy("template", prefix)
        return prefix

    def run(self, prefix: str, host: str, fault: dict[str, Any] | None = None,
            wait: bool = False) -> Run:
        argv = ["add-corpus", str(self.place.config(prefix)), "--json"]
        if wait:
            argv += ["--wait", "60"]
        return self.driver.run(argv, fault=fault, env=self.place.env(host),
                               variant=self.variant)

    def points(self, every: bool) -> list[tuple[int, str]]:
        chosen, seen = [], set()
        for n, (op, key) in enumerate(self.writes, start=1):
            kind = (op, key_class(key))
            if every or kind not in seen or n == len(self.writes):  # (the last: the release)
                chosen += [(n, "kill-before"), (n, "kill-after")]
            seen.add(kind)
        return chosen

    def crash_at(self, n: int, kind: str) -> list[str]:
        prefix = self.fresh()
        view = self.place.view(prefix)
        before = {v: o for v, o in view.version_objects().items() if v in self.kept}
        crashed_at = time.monotonic()
        crashed = self.run(prefix, "alpha", {"s3": True, "at": n, "kind": kind})
        where = f"{kind} #{n} {self.writes[n - 1]}"
        problems = [f"{where}: {p}" for p in check_s3_store(view, before)]
        if crashed.status != -9:
            problems.append(f"{where}: expected SIGKILL, got status {crashed.status}")
        rerun = self.run(prefix, "beta", wait=True)  # another host: waits out alpha's lease
        if rerun.status != 0:
            return [*problems, f"{where}: re-run exited {rerun.status}: {rerun.stderr[-300:]}"]
        problems += [f"{where}: after re-run: {p}" for p in check_s3_store(view, before)]
        if (got := view.lineage()) != self.lineage:
            problems.append(f"{where}: lineage differs from an uninterrupted run: "
                            f"{json.dumps(got)[:300]}")
        # Once the grace period is over, a later run removes what never became visible.
        time.sleep(max(0.0, crashed_at + GRACE + 1.5 - time.monotonic()))
        later = self.run(prefix, "gamma", wait=True)
        left = view.leftovers()
        if later.status != 0 or left:
            problems.append(f"{where}: later run {later.status}: {later.stderr[-200:]}, "
                            f"leftovers {left}")
        settled = visible(view)
        again = self.run(prefix, "delta", wait=True)
        if again.status != 0 or visible(view) != settled:
            problems.append(f"{where}: one more run changed the store (status {again.status})")
        return problems


def sweep(driver: Driver, place: S3Place, prepare: bool, every: bool) -> tuple[int, list[str]]:
    s3 = S3Sweep(driver, place, prepare)
    assert len(s3.writes) >= 8, s3.writes
    points = s3.points(every)
    problems = []
    for n, kind in points:
        problems += s3.crash_at(n, kind)
    print(f"S3 crash sweep ({'base and update' if not prepare else 'update'}): "
          f"{len(s3.writes)} writing requests, {len(points)} kills, {len(problems)} violations")
    return len(points), problems


def test_s3_crash_at_each_kind_of_write(driver: Driver, place: S3Place) -> None:
    """An update on a prepared base, killed before and after the first write to each kind of
    object (lease, upload record, version files, meta.json, COMMITTED, manifest)."""
    kills, problems = sweep(driver, place, prepare=True, every=False)
    assert kills >= 16
    assert problems == []


@pytest.mark.slow
def test_s3_crash_at_every_write(driver: Driver, place: S3Place) -> None:
    """The store created, its base and an update: killed before and after every write."""
    _, problems = sweep(driver, place, prepare=False, every=True)
    assert problems == []


def test_an_unfinished_multipart_upload_is_aborted_later(driver: Driver, place: S3Place
                                                         ) -> None:
    config = place.config("parts")
    view = place.view("parts")
    assert driver.run(["add-corpus", str(config)], env=place.env("first")).status == 0
    crashed = driver.run(["add-corpus", str(config), str(place.folder / "c.txt")],
                         fault={"s3": True, "at": 2, "kind": "kill-after",
                                "key": "model.syn1neg.npy"},
                         env=place.env("alpha"), variant="small-parts")
    assert crashed.status == -9  # killed after its first part went up
    unfinished = view.client.list_multipart_uploads(Bucket=place.bucket, Prefix="parts/")
    assert len(unfinished.get("Uploads", [])) == 1
    time.sleep(GRACE + 1.5)
    later = driver.run(["add-corpus", str(config), "--json", "--wait", "60"],
                       env=place.env("beta"))
    assert later.status == 0, later.stderr
    assert any("versions/v0003/" in s for s in later.json()["swept"])
    unfinished = view.client.list_multipart_uploads(Bucket=place.bucket, Prefix="parts/")
    assert unfinished.get("Uploads", []) == []
    assert view.leftovers() == [] and check_s3_store(view, {}) == []


# -- races ---------------------------------------------------------------------------------


def race(driver: Driver, place: S3Place, n: int, rounds: int, variant: str | None = None,
         wait: bool = False) -> list[str]:
    """``n`` hosts apply the same new corpus at once, ``rounds`` times; the violations."""
    config = place.config("race")
    view = place.view("race")
    first = driver.run(["add-corpus", str(config)], env=place.env("first"))
    assert first.status == 0, first.stderr
    problems: list[str] = []
    for round_ in range(rounds):
        corpus = new_corpus(place.folder, round_)
        argv = ["add-corpus", str(config), str(corpus), "--json"]
        if wait:
            argv += ["--wait", "120"]
        started = [driver.start(argv, env=place.env(f"host{i}"), variant=variant)
                   for i in range(n)]
        runs = [driver.wait(pid, out) for pid, out in started]
        applied = [r for r in runs if r.status == 0 and r.json()["applied"]]
        if len(applied) != 1:
            problems.append(f"round {round_}: {len(applied)} runs applied {corpus.name}")
        for run in runs:
            if run.status not in (0, 75):
                problems.append(f"round {round_}: a run exited {run.status}: "
                                f"{run.stderr[-200:]}")
            if run.status == 75 and "locked by pid" not in run.stderr and (
                    "changed since this run read it" not in run.stderr):
                problems.append(f"round {round_}: a refusal does not say why: {run.stderr}")
        rows = view.lineage()
        with_it = [r["version"] for r in rows if corpus.name in r["added"]]
        if len(with_it) != 1:
            problems.append(f"round {round_}: {corpus.name} is in versions {with_it}")
        problems += [f"round {round_}: {p}" for p in check_s3_store(view, {})]
    versions = [r["version"] for r in view.lineage()]
    if versions != [f"v{i:04d}" for i in range(1, len(versions) + 1)] or (
            len(versions) != rounds + 2):
        problems.append(f"versions {versions}")
    return problems


@pytest.mark.parametrize("n", [2, 8])
def test_hosts_racing_on_one_s3_store(driver: Driver, place: S3Place, n: int) -> None:
    assert race(driver, place, n, rounds=2) == []


def test_hosts_racing_with_wait_all_succeed(driver: Driver, place: S3Place) -> None:
    assert race(driver, place, 8, rounds=2, wait=True) == []


def test_the_race_catches_unconditional_writes(driver: Driver, place: S3Place) -> None:
    """Without If-None-Match/If-Match, hosts both take the lease and both commit."""
    problems = race(driver, place, 8, rounds=3, variant="unconditional-writes")
    print(f"unconditional writes: {problems[:3]}")
    assert any("runs applied" in p or "is in versions" in p for p in problems), problems


# -- a holder stopped past its lease ---------------------------------------------------------


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def stopped_holder(driver: Driver, place: S3Place, key: str, variant: str | None = None
                   ) -> tuple[Run, Run, S3View, dict[str, Any]]:
    """Host alpha stops (SIGSTOP) just before its first write to ``key``; beta applies the
    same corpus meanwhile; then alpha goes on. Returns alpha's and beta's runs."""
    config = place.config("stop")
    view = place.view("stop")
    assert driver.run(["add-corpus", str(config)], env=place.env("first")).status == 0
    before = visible(view)
    corpus = place.folder / "c.txt"
    argv = ["add-corpus", str(config), str(corpus), "--json"]
    pid, out = driver.start(argv, fault={"s3": True, "at": 1, "kind": "stop-before",
                                         "key": key},
                            env=place.env("alpha"), variant=variant)
    deadline = time.monotonic() + 120
    while not stopped(pid):
        assert time.monotonic() < deadline, "alpha never reached the write"
        time.sleep(0.05)
    beta = driver.run([*argv, "--wait", "60"], env=place.env("beta"))
    assert beta.status == 0, beta.stderr
    os.kill(pid, signal.SIGCONT)
    alpha = driver.wait(pid, out)
    return alpha, beta, view, before


def stale_holder_problems(alpha: Run, beta: Run, view: S3View) -> list[str]:
    """What must hold once the stopped holder went on: the violations, as sentences."""
    problems = []
    if alpha.status != 75 or not ("changed since this run read it" in alpha.stderr
                                  or "lost its lease" in alpha.stderr):
        problems.append(f"the stale holder exited {alpha.status}: {alpha.stderr[-200:]}")
    if [a["version"] for a in beta.json()["applied"]] != ["v0003"]:
        problems.append(f"beta applied {beta.json()['applied']}")
    try:
        versions = [r["version"] for r in view.lineage()]
    except IncW2VError as exc:
        versions = [f"unreadable: {exc.message}"]
    if versions != ["v0001", "v0002", "v0003"]:
        problems.append(f"versions {versions}")
    events = (view.manifest() or {"events": []})["events"]
    broken = [e for e in events if e["action"] == "lease-broken"]
    if len(broken) != 1 or f"pid {alpha.pid} on host alpha" not in broken[0]["detail"]:
        problems.append("beta's commit (with its record of the broken lease) is not the "
                        "manifest any more: the stale holder's write replaced it")
    if view.leftovers():  # alpha took back what it had uploaded (or uploaded nothing)
        problems.append(f"leftovers {view.leftovers()}")
    return problems + check_s3_store(view, {})


@pytest.mark.parametrize("key", ["manifest.json", "uploads/"],
                         ids=["stopped-before-the-commit", "stopped-before-uploading"])
def test_a_stopped_holder_loses_its_lease_and_nothing_it_wrote_shows(
    driver: Driver, place: S3Place, key: str
) -> None:
    alpha, beta, view, _ = stopped_holder(driver, place, key)
    assert stale_holder_problems(alpha, beta, view) == []


def test_the_stopped_holder_test_catches_an_unconditional_manifest(
    driver: Driver, place: S3Place
) -> None:
    """A manifest written without If-Match lets the stale holder overwrite beta's commit."""
    alpha, beta, view, _ = stopped_holder(driver, place, "manifest.json",
                                          variant="unconditional-manifest")
    problems = stale_holder_problems(alpha, beta, view)
    print(f"unconditional manifest: {problems}")
    assert any("exited 0" in p for p in problems)  # the stale commit went through ...
    assert any("is not the manifest any more" in p for p in problems)  # ... over beta's


# -- a lease renewed while its holder works ----------------------------------------------------


def renewed_holder(driver: Driver, place: S3Place, variant: str | None = None
                   ) -> tuple[list[str], int]:
    """Host alpha applies a corpus that arrives slowly through a named pipe, so its run
    lasts about five lease periods; half way through (the lease long expired unless
    renewed), beta tries to run. Returns the violations, as sentences, and how many times
    the lease object was rewritten by alpha meanwhile."""
    import threading

    config = place.config("renew")
    view = place.view("renew")
    assert driver.run(["add-corpus", str(config)], env=place.env("first")).status == 0
    fifo = place.folder / "slow.txt"
    os.mkfifo(fifo)
    pid, out = driver.start(["add-corpus", str(config), str(fifo), "--json"],
                            env=place.env("alpha"), variant=variant)
    held = view.wait_for_holder(pid)
    seen: list[tuple[str, dict[str, Any]]] = []  # (ETag, lease) while alpha worked
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            got = view.client.get_object(Bucket=view.bucket, Key="renew/lease.json")
            seen.append((got["ETag"], json.loads(got["Body"].read())))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lines = (place.folder / "c.txt").read_text().splitlines(keepends=True)
    half = len(lines) // 2
    started = time.monotonic()
    with open(fifo, "w") as pipe:
        for i, line in enumerate(lines):
            if i == half:  # ~2.5 lease periods in: without renewals it expired long ago
                time.sleep(max(0.0, 2.5 * LEASE - (time.monotonic() - started)))
                beta = driver.run(["add-corpus", str(config), "--json"], env=place.env("beta"))
            pipe.write(line)
            pipe.flush()
            time.sleep(5 * LEASE / len(lines))
    alpha = driver.wait(pid, out)
    lasted = time.monotonic() - started
    done.set()
    watcher.join()
    problems = []
    if lasted < 4 * LEASE:
        problems.append(f"alpha's run lasted only {lasted:.1f}s")
    if beta.status != 75 or f"pid {pid} on host alpha" not in beta.stderr:
        problems.append(f"beta exited {beta.status} instead of being refused: "
                        f"{beta.stderr[-300:]}")
    if alpha.status != 0:
        problems.append(f"alpha exited {alpha.status}: {alpha.stderr[-300:]}")
    mine = [(etag, lease) for etag, lease in seen if lease.get("state") == "held"
            and lease.get("token") == held["token"]]
    if len(mine) != len([1 for _, lease in seen if lease.get("state") == "held"]):
        problems.append("another run held the lease while alpha worked")
    renewals = len({etag for etag, _ in mine}) - 1
    if renewals < 4:
        problems.append(f"the lease was renewed {renewals} times in {lasted:.1f}s")
    if any(lease["fence"] != held["fence"] for _, lease in mine):
        problems.append("the fencing number changed under alpha")
    try:
        rows = view.lineage()
    except IncW2VError as exc:
        return [*problems, f"unreadable store: {exc.message}"], renewals
    if [r["version"] for r in rows] != ["v0001", "v0002", "v0003"] or \
            rows[-1]["added"] != [fifo.name]:
        problems.append(f"versions {[(r['version'], r['added']) for r in rows]}")
    events = (view.manifest() or {"events": []})["events"]
    if any(e["action"] == "lease-broken" for e in events):
        problems.append("alpha's lease was broken")
    final = view.lease()
    if final["state"] != "released" or final["fence"] != held["fence"]:
        problems.append(f"the lease ended {final['state']} at fence {final['fence']}")
    return problems + check_s3_store(view, {}), renewals


def test_a_lease_is_renewed_while_its_holder_works(driver: Driver, place: S3Place) -> None:
    problems, renewals = renewed_holder(driver, place)
    print(f"lease of {LEASE:g}s: renewed {renewals} times during the run")
    assert problems == []


def test_the_renewal_test_catches_a_lease_never_renewed(driver: Driver, place: S3Place
                                                         ) -> None:
    problems, renewals = renewed_holder(driver, place, variant="no-renewal")
    print(f"never renewed: {problems}")
    assert renewals == 0
    assert any("beta exited 0" in p for p in problems)  # it broke the expired lease ...
    assert any("alpha exited 75" in p for p in problems)  # ... and alpha's commit failed


# -- the network -------------------------------------------------------------------------------


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(moto_endpoint)
    yield flaky
    flaky.close()


@pytest.mark.parametrize(("mode", "times", "code"), [
    ("down", 1, 74),     # the server is gone from the middle of an upload on
    ("reset", 100, 74),  # every upload's connection is reset, retries included
    ("reset", 1, 0),     # one reset: the request is retried and the run succeeds
], ids=["server-down-mid-upload", "resets-persist", "one-reset"])
def test_a_failing_network_leaves_the_store_as_it_was(
    driver: Driver, place: S3Place, proxy: FlakyProxy, mode: str, times: int, code: int
) -> None:
    config = place.config("net", endpoint=proxy.url)
    view = place.view("net")
    assert driver.run(["add-corpus", str(config)], env=place.env("first")).status == 0
    before = visible(view)
    proxy.arm(mode, times)
    run = driver.run(["add-corpus", str(config), str(place.folder / "c.txt"), "--json"],
                     env=place.env("alpha"))
    assert proxy.cuts >= 1
    assert run.status == code, run.stderr
    proxy.up()
    if code == 74:
        assert "cannot reach the S3 server" in run.stderr and "hint:" in run.stderr, run.stderr
        assert visible(view) == before  # unchanged: nothing became visible
        again = driver.run(["add-corpus", str(config), "--json", "--wait", "60"],
                           env=place.env("beta"))
        assert again.status == 0, again.stderr
        assert [a["version"] for a in again.json()["applied"]] == []  # c.txt was an extra URI
        after = driver.run(["add-corpus", str(config), str(place.folder / "c.txt"), "--json"],
                           env=place.env("beta"))
        assert after.status == 0, after.stderr
    rows = view.lineage()
    assert [r["version"] for r in rows] == ["v0001", "v0002", "v0003"]
    assert sum("c.txt" in r["added"] for r in rows) == 1
    assert check_s3_store(view, before["versions"]) == []


# -- readers ---------------------------------------------------------------------------------


def test_s3_readers_never_fail_during_20_updates_and_prunes(
    driver: Driver, place: S3Place
) -> None:
    config = place.config("readers")
    # A publish target on the store's server, beside the store: a consumer polls its pointer.
    config.write_text(config.read_text() + f"publish:\n  - to: s3://{place.bucket}/served\n"
                      "    formats: [word2vec-text, word2vec-binary, keyedvectors]\n")
    assert driver.run(["add-corpus", str(config)], env=place.env("writer")).status == 0
    stop = place.folder / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(config), str(place.folder / f"out-{i}.txt"),
             str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=package_env(**place.env(f"reader{i}")))
        for i in range(2)
    ]
    consumer_stop = place.folder / "consumer-stop"
    fetched = place.folder / "consumer"
    fetched.mkdir()
    consumer = start_publish_reader(f"s3://{place.bucket}/served", consumer_stop,
                                    place.endpoint, str(fetched))
    try:
        readers_during(
            readers, stop,
            lambda i: driver.run(["add-corpus", str(config), str(new_corpus(place.folder, i))],
                                 env=place.env("writer")),
            lambda: driver.run(["prune", str(config), "--keep", "2"], env=place.env("writer")))
    finally:
        consumed = finish_publish_reader(consumer, consumer_stop, "v0022")
    # The consumer accepted only whole sets, each file's sha256 the pointer's, and ended on
    # the current version; a set caught mid-publish was read again, never accepted.
    print(f"publish consumer: {len(consumed['seen'])} versions loaded, "
          f"{consumed['retries']} retries")
    assert consumed["seen"][0] == "v0002" and consumed["seen"][-1] == "v0022"
    assert consumed["seen"] == sorted(set(consumed["seen"]))  # only ever forward
    assert len(consumed["seen"]) >= 3
    view = place.view("readers")
    assert check_s3_store(view, {}) == []
    assert view.manifest()["current"] == "v0022"  # type: ignore[index]  (base, b, 20 more)
