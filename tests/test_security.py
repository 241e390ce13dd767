"""Security: safe YAML, no unverified pickle, no leaked secret, no path out of the store."""

from __future__ import annotations

import bz2
import json
import os
import pickle
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faults import check_store, leftovers, tree_hashes
from helpers import ROOT, Result, run_subprocess, s3_credentials, version_model
from incremental_w2v.errors import DataError
from incremental_w2v.store.store import Store
from test_crash_sweep import TINY_MODEL, write_workspace

SECRET = "FAKE-secret-Sentinel-91d3e7"
PACKAGE = ROOT / "incremental_w2v"


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def sources() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text() for p in PACKAGE.rglob("*.py")}


# --- YAML and pickle ------------------------------------------------------------------


def test_yaml_is_only_read_through_the_safe_loader() -> None:
    unsafe = re.compile(r"yaml\.(load|unsafe_load|full_load|load_all)\(|"
                        r"yaml\.(Loader|UnsafeLoader|FullLoader)\b")
    offenders = {name for name, text in sources().items() if unsafe.search(text)}
    assert offenders == set()
    assert "yaml.compose(text, Loader=yaml.SafeLoader)" in sources()["config/strict_yaml.py"]


def test_nothing_is_unpickled_but_through_the_restricted_machine() -> None:
    """No module hands a file to pickle, to gensim's loaders or to numpy with allow_pickle;
    the one unpickler is safe_pickle's, which checks every opcode that resolves or calls."""
    forbidden = re.compile(
        r"(SaveLoad|Word2Vec|KeyedVectors|FastText|cls|pickle|utils)\.(loads?|unpickle)\(|"
        r"\bunpickle\(fname|allow_pickle=True|\bpickle\.Unpickler\(")
    offenders = {name for name, text in sources().items() if forbidden.search(text)}
    assert offenders == set()
    assert "_Restricted(handle).load()" in sources()["vectors/safe_pickle.py"]


def test_a_hostile_base_model_is_never_unpickled(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / "evil.model").write_bytes(pickle.dumps(Evil(marker)))
    config = tmp_path / "c.yaml"
    config.write_text(f"store: store\n{TINY_MODEL}base: {{model: evil.model}}\n")
    result = cli("add-corpus", config)
    assert result.code == 65, result.err
    assert "which could run code when loaded; it was not loaded" in result.err
    assert "posix.system" in result.err
    assert not marker.exists()
    assert Store(tmp_path / "store").read_manifest().versions == []


def test_a_hostile_vectors_file_is_never_unpickled(tmp_path: Path) -> None:
    from incremental_w2v.vectors.io import load_vectors

    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.kv"
    path.write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(DataError, match="could run code"):
        load_vectors(str(path))
    assert not marker.exists()


def test_a_real_gensim_model_passes_the_scan(tmp_path: Path, cli: Callable[..., Result]
                                             ) -> None:
    from gensim.models import Word2Vec

    from helpers import lee_lines

    model = Word2Vec([line.split() for line in lee_lines()[:80]], vector_size=8,
                     min_count=2, negative=2, epochs=1, workers=1, seed=1)
    model.save(str(tmp_path / "full.model"))
    config = tmp_path / "c.yaml"
    config.write_text(
        f"store: store\n{TINY_MODEL}base: {{model: full.model}}\n".replace(
            "window: 2", "window: 5"))
    result = cli("add-corpus", config)
    assert result.code == 0, result.err


@pytest.mark.parametrize("model_format", [None, 1])
def test_a_hostile_pickle_with_a_forged_hash_is_still_refused(
    tmp_path: Path, cli: Callable[..., Result], model_format: int | None
) -> None:
    """Someone who can rewrite meta.json can make the hash match, and even say the model is
    a pickle (format 1): a version's model is JSON, and a pickle goes through the restricted
    machine; either way nothing runs."""
    import hashlib

    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    assert cli("add-corpus", folder / "config.yaml").code == 0
    version = folder / "store" / "versions" / "v0002"
    marker = tmp_path / "PWNED"
    evil = pickle.dumps(Evil(marker))
    (version / "model").write_bytes(evil)
    meta = json.loads((version / "meta.json").read_text())
    assert meta["model_format"] == 2
    meta["files"]["model"] = hashlib.sha256(evil).hexdigest()
    if model_format is not None:
        meta["model_format"] = model_format
    (version / "meta.json").write_text(json.dumps(meta))
    result = cli("export", folder / "config.yaml", "--format", "word2vec-text",
                 "--output", tmp_path / "out.txt")
    assert result.code == 65, result.err
    if model_format == 1:
        assert "could run code" in result.err and "posix.system" in result.err
    else:
        assert "is not a model saved by incw2v" in result.err
    assert not marker.exists()


# --- credentials ----------------------------------------------------------------------


@pytest.fixture
def s3_with_secret(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[tuple[str, object]]:
    boto3 = pytest.importorskip("boto3")
    s3_credentials(monkeypatch, SECRET)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket="dumps")
    yield moto_endpoint, client


def everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_secrets_in_the_environment_never_leak(
    tmp_path: Path, s3_with_secret: tuple[str, object], cli: Callable[..., Result]
) -> None:

    endpoint, client = s3_with_secret
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    body = bz2.compress((folder / "b.txt").read_bytes())
    client.put_object(Bucket="dumps", Key="2024/b.txt.bz2", Body=body)  # type: ignore[attr-defined]
    config = folder / "config.yaml"
    config.write_text(config.read_text() + f"log_file: run.log\nsources:\n"
                      f"  s3_endpoint_url: {endpoint}\nqueue:\n"
                      "  - uri: s3://dumps/2024/b.txt.bz2\n")
    outputs = []
    for args in (["add-corpus", config, "--json", "--debug"],  # real processes, debug logs
                 ["add-corpus", config, "s3://dumps/2024/missing.txt", "--debug"]):
        result = run_subprocess(*args)
        outputs += [result.stdout, result.stderr]
    for args in (["history", config, "--json"], ["status", config, "--json"]):
        shown = cli(*args)
        outputs += [shown.out, shown.err]
    assert "s3://dumps/2024/missing.txt" in outputs[3]  # the failing run did report
    store = folder / "store"
    assert json.loads(outputs[0])["current"] == "v0002"
    model = version_model(store, "v0002")
    events = json.dumps(model.lifecycle_events, default=str)
    haystack = "\n".join(outputs) + events
    assert SECRET not in haystack
    assert SECRET.encode() not in everything_under(folder)  # store, log file, everything


# --- paths out of the store -----------------------------------------------------------


@pytest.fixture
def committed(tmp_path: Path, cli: Callable[..., Result]) -> Path:
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    assert cli("add-corpus", folder / "config.yaml").code == 0
    return folder


@pytest.mark.parametrize("version", ["../../etc", "/etc/passwd", "v0001/../../x", "..", "v9",
                                     "v0001x"])
def test_version_names_from_the_command_line_stay_in_the_store(
    committed: Path, cli: Callable[..., Result], version: str
) -> None:
    config = committed / "config.yaml"
    before = tree_hashes(committed / "store")
    for args in (["rollback", config, version],
                 ["export", config, "--version", version, "--format", "word2vec-text",
                  "--output", committed / "out.txt"]):
        result = cli(*args)
        assert result.code == 64, result.err
        assert "not in the store" in result.err or "not a version name" in result.err
    assert tree_hashes(committed / "store") == before


@pytest.mark.parametrize("prefix", [".staging-0badc0de", ".work-0badc0de", ".trash-v0003-0badc0",
                                    "versions/v0099"])
def test_a_sweep_never_follows_a_planted_symlink(
    committed: Path, cli: Callable[..., Result], prefix: str
) -> None:
    outside = committed / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    link = committed / "store" / prefix
    link.symlink_to(outside, target_is_directory=True)
    result = cli("add-corpus", committed / "config.yaml", "--json")
    assert result.code == 0, result.err
    assert prefix in result.json()["swept"]
    assert not link.is_symlink() and not link.exists()
    assert (outside / "precious.txt").read_text() == "keep me"
    assert leftovers(committed / "store") == []
    assert check_store(committed / "store", {}) == []


def test_a_symlinked_versions_folder_is_refused(
    committed: Path, cli: Callable[..., Result]
) -> None:
    store = committed / "store"
    shutil.move(store / "versions", committed / "elsewhere")
    (store / "versions").symlink_to(committed / "elsewhere")
    result = cli("add-corpus", committed / "config.yaml")
    assert result.code == 65 and "versions must live inside the store" in result.err


def test_a_symlinked_reader_lock_is_refused(committed: Path, cli: Callable[..., Result]
                                            ) -> None:
    target = committed / "target.txt"
    target.write_text("not a lock")
    readers = committed / "store" / ".readers"
    readers.mkdir(exist_ok=True)
    (readers / "v0002.lock").symlink_to(target)
    result = cli("export", committed / "config.yaml", "--format", "word2vec-text",
                 "--output", committed / "out.txt")
    assert result.code == 65 and "is a symbolic link" in result.err
    assert target.read_text() == "not a lock"
