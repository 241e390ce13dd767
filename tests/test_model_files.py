"""No code runs from a model file.

A store version's model is JSON and plain ``.npy`` arrays, read without pickle; it
round-trips every attribute gensim needs to continue training. A model the user brings
(``base.model``, files for ``align``/``merge``/``compare``, versions written by 0.1.0) is
a pickle, read by a restricted machine: every pickle gensim would load, the main file and
every side file, is checked first, only the classes a Word2Vec, FastText or KeyedVectors
model holds are made, and none of them is called.
"""

from __future__ import annotations

import copyreg
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gensim.models import FastText, KeyedVectors, Word2Vec
from gensim.test.utils import datapath

from helpers import Result, committed, lee_lines, package_env, version_model
from incremental_w2v.errors import DataError
from incremental_w2v.vectors.io import load_vectors
from incremental_w2v.vectors.model_file import MODEL_FORMAT, load_model, load_saved, save_model
from test_crash_sweep import TINY_MODEL, write_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "store-0.1.0"


def sentences(start: int = 0, stop: int = 150) -> list[list[str]]:
    return [line.split() for line in lee_lines()[start:stop]]


def small(cls: type = Word2Vec) -> Any:
    extra = {"bucket": 500} if cls is FastText else {}
    return cls(sentences(), vector_size=8, window=2, min_count=2, negative=2, epochs=1,
               workers=1, seed=3, **extra)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and np.array_equal(a, b)
    if isinstance(a, np.random.RandomState):
        return all(same(x, y) for x, y in zip(a.get_state(), b.get_state(), strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (Word2Vec, KeyedVectors)):
        return type(a) is type(b) and same(vars(a), vars(b))
    return bool(a == b) and type(a) is type(b)


# --- the store's own format --------------------------------------------------------------


@pytest.mark.parametrize("cls", [Word2Vec, FastText])
def test_every_attribute_survives_the_pickle_free_format(tmp_path: Path, cls: type) -> None:
    model = small(cls)
    save_model(model, tmp_path / "model")
    assert (tmp_path / "model").read_bytes()[:1] == b"{"  # JSON, not a pickle
    loaded = load_model(tmp_path / "model", "fasttext" if cls is FastText else "word2vec",
                        None, MODEL_FORMAT)
    events = loaded.lifecycle_events
    assert events[-1]["event"] == "loaded" and events[-2]["event"] == "saved"
    mine, theirs = dict(vars(model)), dict(vars(loaded))
    assert mine.keys() == theirs.keys()
    for name in mine:
        if name not in ("lifecycle_events", "wv"):
            assert same(mine[name], theirs[name]), name
    assert same(model.lifecycle_events, events[:len(model.lifecycle_events)])
    assert vars(model.wv).keys() == vars(loaded.wv).keys()
    for name, value in vars(model.wv).items():
        if name == "buckets_word":  # recomputed by gensim on load, as from its own files
            assert all(np.array_equal(x, y) for x, y in zip(value, loaded.wv.buckets_word,
                                                            strict=True))
        elif name != "norms":
            assert same(value, vars(loaded.wv)[name]), name


@pytest.mark.parametrize("cls", [Word2Vec, FastText])
def test_training_continues_exactly_as_from_gensims_own_file(tmp_path: Path, cls: type) -> None:
    model = small(cls)
    model.save(str(tmp_path / "gensim.model"))
    save_model(model, tmp_path / "model")
    theirs = cls.load(str(tmp_path / "gensim.model"))
    ours = load_model(tmp_path / "model", "fasttext" if cls is FastText else "word2vec",
                      None, MODEL_FORMAT)
    more = sentences(150, 250)
    for m in (theirs, ours):
        m.build_vocab(more, update=True)
        m.train(more, total_examples=len(more), epochs=2)
    assert len(ours.wv) == len(theirs.wv) > len(model.wv)
    np.testing.assert_array_equal(ours.wv.vectors, theirs.wv.vectors)
    np.testing.assert_array_equal(ours.syn1neg, theirs.syn1neg)
    np.testing.assert_array_equal(ours.cum_table, theirs.cum_table)


def test_a_read_only_mapping_maps_the_arrays(tmp_path: Path) -> None:
    save_model(small(), tmp_path / "model")
    loaded = load_model(tmp_path / "model", "word2vec", "r", MODEL_FORMAT)
    assert isinstance(loaded.wv.vectors, np.memmap) and not loaded.wv.vectors.flags.writeable


def test_versions_are_written_without_pickle(tmp_path: Path, cli: Callable[..., Result]) -> None:
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    assert cli("add-corpus", folder / "config.yaml").code == 0
    for version in ("v0001", "v0002"):
        meta = json.loads((folder / "store" / "versions" / version / "meta.json").read_text())
        assert meta["model_format"] == MODEL_FORMAT
        for name in meta["files"]:
            data = (folder / "store" / "versions" / version / name).read_bytes()
            assert data[:1] != b"\x80", name  # no file of a version is a pickle
            if name.endswith(".npy"):
                assert not np.load(folder / "store" / "versions" / version / name,
                                   allow_pickle=False).dtype.hasobject


# --- a store written by the previous release --------------------------------------------


@pytest.mark.parametrize("kind", ["word2vec", "fasttext"])
def test_a_store_written_by_0_1_0_loads_and_continues(
    tmp_path: Path, cli: Callable[..., Result], kind: str
) -> None:
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES, folder)
    config = folder / f"{kind}.yaml"
    store = folder / f"store-{kind}"
    old_meta = json.loads((store / "versions" / "v0002" / "meta.json").read_text())
    assert "model_format" not in old_meta  # as 0.1.0 wrote it: a gensim pickle
    assert (store / "versions" / "v0002" / "model").read_bytes()[:1] == b"\x80"
    assert cli("evaluate", config, "--version", "v2", "--json").code == 0
    config.write_text(config.read_text().replace("queue: [{uri: b.txt}]",
                                                 "queue: [{uri: b.txt}, {uri: c.txt}]"))
    run = cli("add-corpus", config, "--json")
    assert run.code == 0, run.err
    assert [a["version"] for a in run.json()["applied"]] == ["v0003"]
    new_meta = json.loads((store / "versions" / "v0003" / "meta.json").read_text())
    assert new_meta["model_format"] == MODEL_FORMAT
    old, new = version_model(store, "v0002"), version_model(store, "v0003")
    assert len(new.wv) >= len(old.wv) and type(new) is type(old)
    for args in (["compare", config, "v2", "v3"], ["history", config],
                 ["export", config, "--version", "v2", "--format", "model",
                  "--output", tmp_path / "v2.model"],
                 ["rollback", config, "v2"], ["add-corpus", config]):
        result = cli(*args)
        assert result.code == 0, (args, result.err)
    exported = (FastText if kind == "fasttext" else Word2Vec).load(str(tmp_path / "v2.model"))
    assert len(exported.wv) == len(old.wv)


# --- the project's own exports are accepted ---------------------------------------------


@pytest.mark.parametrize("fmt", ["keyedvectors", "model", "word2vec-text", "word2vec-binary"])
def test_own_exports_are_accepted_by_align_merge_and_compare(
    tmp_path: Path, cli: Callable[..., Result], fmt: str
) -> None:
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt", "c.txt"))
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    outs = []
    for version in ("v1", "v3"):
        out = tmp_path / f"{version}.{fmt}"
        assert cli("export", config, "--version", version, "--format", fmt,
                   "--output", out).code == 0
        outs.append(out)
    for args in (["align", *outs, "--output", tmp_path / "aligned.kv", "--anchor-band", "0:300",
                  "--holdout", "0.2"],
                 ["merge", *outs, "--output", tmp_path / "merged.kv", "--anchor-band", "0:300",
                  "--holdout", "0.2"],
                 ["compare", config, *outs]):
        result = cli(*args)
        assert result.code == 0, (args, result.err)
        assert "could run code" not in result.err
    if fmt == "model":
        assert len(Word2Vec.load(str(outs[0])).wv) > 0  # gensim's own format
    if fmt == "keyedvectors":
        assert len(KeyedVectors.load(str(outs[0]))) > 0
        assert load_vectors(str(tmp_path / "aligned.kv")).kind == "keyedvectors"


# --- hostile pickles: the main file ------------------------------------------------------


class Evil:
    """A pickle that runs a shell command when loaded by pickle (or gensim)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class Reducing:
    """Pickles as a call of ``func(*args)``."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def main_pickle(tmp_path: Path, marker: Path, name: str) -> bytes:
    """A main file that does something the moment it is unpickled."""
    import importlib

    from gensim.similarities.docsim import Similarity
    from numpy.random import _pickle as random_pickle

    prefix = str(tmp_path / "planted")
    multiarray = importlib.import_module("numpy._core.multiarray" if np.__version__ >= "2"
                                         else "numpy.core.multiarray")
    made: dict[str, Callable[[], bytes]] = {
        "os.system": lambda: pickle.dumps(Evil(marker)),
        # gensim's Similarity writes index files when it is built
        "Similarity(...)": lambda: pickle.dumps(Reducing(
            Similarity, prefix, [[(0, 1.0)], [(1, 1.0)]], 3, None, 256, 1)),
        # a model class called: Word2Vec(corpus_file=...) would read, build and train
        "Word2Vec(...)": lambda: pickle.dumps(Reducing(Word2Vec, None, datapath("lee.cor"))),
        # numpy.memmap opens (here: creates) a file when called
        "np.memmap(...)": lambda: pickle.dumps(
            Reducing(np.memmap, prefix + ".map", np.uint8, "w+", 0, (16,))),
        # copyreg's reconstructor calls base.__init__: here Word2Vec's
        "_reconstructor": lambda: pickle.dumps(Reducing(
            copyreg._reconstructor, Word2Vec, Word2Vec, None)),  # type: ignore[attr-defined]
        # the oldest protocol: INST calls the class with its arguments
        "INST": lambda: b"(S'" + prefix.encode() + b"'\nigensim.models.word2vec\nWord2Vec\n.",
        # an "array" whose subtype is not one: _reconstruct would build it
        "_reconstruct": lambda: pickle.dumps(Reducing(
            multiarray._reconstruct, Similarity, (0,), b"b")),
        "eval": lambda: pickle.dumps(Reducing(eval, f"open({str(marker)!r}, 'w')")),
        "getattr": lambda: pickle.dumps(Reducing(getattr, Reducing(__import__, "os"), "system")),
        "persistent id": lambda: b"\x80\x02P0\n.",
        # numpy's random-state constructor calls what it is given: here a model class
        "random ctor": lambda: pickle.dumps(Reducing(
            random_pickle.__randomstate_ctor, "MT19937", FastText)),
        "bit generator ctor": lambda: pickle.dumps(Reducing(
            random_pickle.__bit_generator_ctor, Word2Vec)),
        "defaultdict of a model": lambda: pickle.dumps(Reducing(
            __import__("collections").defaultdict, Word2Vec)),
    }
    return made[name]()


@pytest.mark.parametrize("name", ["os.system", "Similarity(...)", "Word2Vec(...)",
                                  "np.memmap(...)", "_reconstructor", "INST", "_reconstruct",
                                  "eval", "getattr", "persistent id", "random ctor",
                                  "bit generator ctor", "defaultdict of a model"])
def test_a_main_pickle_that_acts_when_loaded_is_refused(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.model"
    path.write_bytes(main_pickle(tmp_path, marker, name))
    with pytest.raises(DataError) as info:
        load_saved(path)
    assert "it was not loaded" in str(info.value) or "never loaded" in str(info.value)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.model"]  # nothing created


@pytest.mark.parametrize(("name", "leaves"), [("os.system", "PWNED"),
                                               ("Similarity(...)", "planted.0"),
                                               ("np.memmap(...)", "planted.map")])
def test_the_main_pickle_attacks_are_real(tmp_path: Path, name: str, leaves: str) -> None:
    """Counter-check: plain pickle (as gensim's loader uses it) does act on these files."""
    path = tmp_path / "evil.model"
    path.write_bytes(main_pickle(tmp_path, tmp_path / "PWNED", name))
    script = f"import pickle\npickle.loads(open({str(path)!r}, 'rb').read())\n"
    subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                   env=package_env(), cwd=tmp_path)
    assert any(p.name.startswith(leaves) for p in tmp_path.iterdir()), sorted(tmp_path.iterdir())


# --- hostile pickles: the side files gensim loads after the main file --------------------


def tamper(path: Path, change: Callable[[Any], None]) -> None:
    """Rewrite the main pickle of a real gensim file (the test trusts its own pickle)."""
    obj = pickle.loads(path.read_bytes())
    change(obj)
    path.write_bytes(pickle.dumps(obj, protocol=4))


def side_file_attacks(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Real gensim files whose main pickle names a side file that runs code."""
    found = {}
    evil = pickle.dumps(Evil(marker))

    model = tmp_path / "scipys.model"
    small().save(str(model), sep_limit=0)
    tamper(model, lambda o: vars(o).__setitem__("__scipys", ["extra"]))
    (tmp_path / "scipys.model.extra.npy").write_bytes(evil)
    found["__scipys on the model"] = model

    nested = tmp_path / "nested.model"
    small().save(str(nested), sep_limit=0)
    tamper(nested, lambda o: vars(o.wv).__setitem__("__scipys", ["extra"]))
    (tmp_path / "nested.model.wv.extra.npy").write_bytes(evil)
    found["__scipys on its wv"] = nested

    kv = tmp_path / "vectors.kv"
    small().wv.save(str(kv), separately=["vectors"])
    tamper(kv, lambda o: vars(o).__setitem__("__scipys", ["vectors_lockf"]))
    (tmp_path / "vectors.kv.vectors_lockf.npy").write_bytes(evil)
    found["__scipys on KeyedVectors"] = kv

    objects = tmp_path / "objects.model"
    small().save(str(objects), sep_limit=0)
    np.save(tmp_path / "objects.model.syn1neg.npy",
            np.array([Evil(marker), 1], dtype=object), allow_pickle=True)
    found["an object array in __numpys"] = objects

    traversal = tmp_path / "traversal.model"
    small().save(str(traversal), sep_limit=0)
    tamper(traversal, lambda o: vars(o).__setitem__("__numpys", ["../../etc/passwd"]))
    found["a path in __numpys"] = traversal

    recursive = tmp_path / "recursive.model"
    small().save(str(recursive), sep_limit=0)

    def not_a_model_part(o: Any) -> None:
        o.extra = {"__scipys": ["x"]}
        vars(o)["__recursive_saveloads"] = ["wv", "extra"]

    tamper(recursive, not_a_model_part)
    found["a dict in __recursive_saveloads"] = recursive
    return found


ATTACKS = ["__scipys on the model", "__scipys on its wv", "__scipys on KeyedVectors",
           "an object array in __numpys", "a path in __numpys", "a dict in __recursive_saveloads"]


def test_the_side_file_attacks_are_real(tmp_path: Path) -> None:
    """Counter-check: gensim's own loader runs the planted command (in a child process)."""
    marker = tmp_path / "PWNED"
    path = side_file_attacks(tmp_path, marker)["__scipys on the model"]
    script = f"from gensim.models import Word2Vec\nWord2Vec.load({str(path)!r})\n"
    subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                   env=package_env())
    assert marker.exists()


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_side_file_that_would_run_code_is_refused_everywhere(
    tmp_path: Path, cli: Callable[..., Result], attack: str
) -> None:
    marker = tmp_path / "PWNED"
    path = side_file_attacks(tmp_path, marker)[attack]
    # align / merge / compare read vectors files with load_vectors
    with pytest.raises(DataError):
        load_vectors(str(path))
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    good = tmp_path / "good.kv"  # the project's own export, on the other side
    assert cli("export", config, "--version", "v1", "--format", "keyedvectors",
               "--output", good).code == 0
    for args in (["align", path, path, "--output", tmp_path / "o.kv"],
                 ["merge", path, path, "--output", tmp_path / "m.kv"],
                 ["merge", good, path, "--output", tmp_path / "m.kv"],
                 ["merge", path, good, "--output", tmp_path / "m.kv"],
                 ["compare", config, path, "v1"]):
        result = cli(*args)
        assert result.code == 65, (args, result.err)
        assert not (tmp_path / "m.kv").exists() and not (tmp_path / "o.kv").exists()
    if attack != "__scipys on KeyedVectors":  # a base model is a full model
        (folder / "base.yaml").write_text(
            f"store: store2\n{TINY_MODEL}base: {{model: '{path}'}}\n".replace("window: 2",
                                                                          "window: 5"))
        result = cli("add-corpus", folder / "base.yaml")
        assert result.code == 65, result.err
        assert committed(folder / "store2") == []
    assert not marker.exists()


# --- a forged version: its hash recorded, its meta.json rewritten -------------------------


def forged_documents(model_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def with_attr(name: str, value: Any) -> dict[str, Any]:
        doc = json.loads(json.dumps(model_json))
        doc["object"]["attrs"][name] = value
        return doc

    other = json.loads(json.dumps(model_json))
    other["object"]["__object__"] = "gensim.similarities.docsim.Similarity"
    return {
        "another class": other,
        "a function": with_attr("hashfxn", {"__function__": "eval"}),
        "an array outside": with_attr("extra", {"__array__": "../../../etc/passwd"}),
        "__scipys": with_attr("__scipys", ["syn1neg"]),
        "a nested object": with_attr("extra", {"__object__": "os.system", "attrs": {}}),
        "an unknown marker": with_attr("extra", {"__reduce__": ["os.system", ["id"]]}),
    }


def two_versions(tmp_path: Path, cli: Callable[..., Result]) -> tuple[Path, Path]:
    """A workspace's config, after a base and an update, and the update's version folder."""
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    return config, folder / "store" / "versions" / "v0002"


@pytest.mark.parametrize("forgery", ["another class", "a function", "an array outside",
                                     "__scipys", "a nested object", "an unknown marker"])
def test_a_forged_json_model_is_refused(tmp_path: Path, cli: Callable[..., Result],
                                        forgery: str) -> None:
    import hashlib

    config, version = two_versions(tmp_path, cli)
    document = forged_documents(json.loads((version / "model").read_text()))[forgery]
    data = json.dumps(document).encode()
    (version / "model").write_bytes(data)
    meta = json.loads((version / "meta.json").read_text())
    meta["files"]["model"] = hashlib.sha256(data).hexdigest()
    (version / "meta.json").write_text(json.dumps(meta))
    for args in (["export", config, "--format", "word2vec-text", "--output", tmp_path / "o"],
                 ["evaluate", config], ["add-corpus", config, config.parent / "c.txt"]):
        result = cli(*args)
        assert result.code == 65, (args, result.err)


def test_an_object_array_in_a_version_is_refused(tmp_path: Path,
                                                 cli: Callable[..., Result]) -> None:
    import hashlib

    config, version = two_versions(tmp_path, cli)
    marker = tmp_path / "PWNED"
    for name in ("model.array-0.npy", "model.syn1neg.npy"):
        backup = (version / name).read_bytes()
        np.save(version / name, np.array([Evil(marker)], dtype=object), allow_pickle=True)
        meta = json.loads((version / "meta.json").read_text())
        meta["files"][name] = hashlib.sha256((version / name).read_bytes()).hexdigest()
        (version / "meta.json").write_text(json.dumps(meta))
        result = cli("evaluate", config)
        assert result.code == 65, result.err
        assert not marker.exists()
        (version / name).write_bytes(backup)
        meta["files"][name] = hashlib.sha256(backup).hexdigest()
        (version / "meta.json").write_text(json.dumps(meta))
    assert cli("evaluate", config).code == 0


def test_a_legitimate_gensim_3_model_still_loads() -> None:
    """gensim 3.x pickles (Vocab records, Word2VecTrainables) are models gensim 4 converts."""
    for name in ("model-from-gensim-3.8.0.w2v", "old_keyedvectors_320.dat", "word2vec_old"):
        loaded = load_vectors(f"gensim-test:{name}")
        assert len(loaded.kv) > 0


# --- hostile pickles: a state (BUILD) given to something the file did not make -----------


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    return b"X" + len(text).to_bytes(4, "little") + text.encode()


_PWN = b"}" + _str("pwned") + b"K\x01s"  # {"pwned": 1}
_SLOTS = b"N" + _PWN + b"\x86b"  # (None, {"pwned": 1}): setattr for each item
_DICT_AND_SLOTS = b"}" + _PWN + b"\x86b"  # ({}, {"pwned": 1})

BUILD_ATTACKS: dict[str, bytes] = {
    # 53 bytes: Word2Vec.pwned = 1 for the whole process
    "slots on Word2Vec": _global("gensim.models.word2vec", "Word2Vec") + _SLOTS,
    "dict and slots on Word2Vec": _global("gensim.models.word2vec", "Word2Vec")
    + _DICT_AND_SLOTS,
    "a memo'd Word2Vec": _global("gensim.models.word2vec", "Word2Vec") + b"q\x00h\x00"
    + _SLOTS + b"0",
    "slots on KeyedVectors": _global("gensim.models.keyedvectors", "KeyedVectors") + _SLOTS,
    "slots on an alias": _global("gensim.models.keyedvectors", "Word2VecKeyedVectors")
    + _DICT_AND_SLOTS,
    "slots on FastText": _global("gensim.models.fasttext", "FastText") + _SLOTS,
    "a gensim 3 part": _global("gensim.models.word2vec", "Word2VecTrainables") + _SLOTS,
    # numpy.memmap's inherited __setstate__, called on the class itself
    "state on numpy.memmap": _global("numpy", "memmap")
    + b"(K\x01K\x01\x85" + _global("numpy", "dtype") + b"X\x02\x00\x00\x00f8\x89\x88\x87R"
    + b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89C\x08"
    + b"\x00" * 8 + b"tb",
    "slots on numpy.ndarray": _global("numpy", "ndarray") + _SLOTS,
    "dict on a function": _global("copyreg", "_reconstructor") + _PWN + b"b",
    "dict on gensim's call_on_class_only": _global("gensim.utils", "call_on_class_only")
    + _PWN + b"b",
    "dict on numpy's random ctor": _global("numpy.random._pickle", "__randomstate_ctor")
    + _PWN + b"b",
    "slots on object": _global("builtins", "object") + _SLOTS,
    "slots on dict": _global("builtins", "dict") + _SLOTS,
    # numpy's shared float64 dtype (copy=False), given a big-endian state
    "numpy's shared dtype": _global("numpy", "dtype") + b"X\x02\x00\x00\x00f8\x89\x89\x87R"
    + b"(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
    # a model made here, but its state changes its class or how the next state applies
    "__class__ in the slots of a new Word2Vec": _global("gensim.models.word2vec", "Word2Vec")
    + b")\x81N}" + _str("__class__") + _global("gensim.models.fasttext", "FastText")
    + b"s\x86b",
    "__setstate__ in the dict of a new Word2Vec": _global("gensim.models.word2vec",
                                                          "Word2Vec")
    + b")\x81}" + _str("__setstate__") + _global("numpy", "memmap") + b"sb",
    "a second state for one object": _global("gensim.models.word2vec", "Word2Vec")
    + b")\x81" + _PWN + b"b" + _PWN + b"b",
}


def _globals_now() -> list[Any]:
    import copyreg as copyreg_module

    from gensim.models.word2vec import Word2VecTrainables
    from gensim.utils import call_on_class_only
    from numpy.random import _pickle as random_pickle

    holders = [Word2Vec, KeyedVectors, FastText, Word2VecTrainables, np.memmap, np.ndarray]
    functions = [copyreg_module._reconstructor, call_on_class_only,  # type: ignore[attr-defined]
                 random_pickle.__randomstate_ctor]
    return [*(dict(vars(c)) for c in holders), *(dict(vars(f)) for f in functions),
            np.dtype("f8").str, np.dtype(np.float64).byteorder, hasattr(object, "pwned")]


@pytest.mark.parametrize("name", list(BUILD_ATTACKS))
def test_a_state_for_a_class_or_a_global_is_refused(tmp_path: Path, name: str) -> None:
    before = _globals_now()
    path = tmp_path / "evil.model"
    path.write_bytes(b"\x80\x02" + BUILD_ATTACKS[name] + b".")
    try:
        with pytest.raises(DataError) as info:
            load_saved(path)
        assert "it was not loaded" in str(info.value)
        assert _globals_now() == before
        assert not hasattr(Word2Vec, "pwned")
    finally:
        for cls in (Word2Vec, KeyedVectors, FastText):  # never leak into the other tests
            if "pwned" in vars(cls):
                delattr(cls, "pwned")


def test_the_state_attack_is_real(tmp_path: Path) -> None:
    """Counter-check: plain pickle sets Word2Vec.pwned for the whole process."""
    data = b"\x80\x02" + BUILD_ATTACKS["slots on Word2Vec"] + b"."
    script = ("import pickle\nfrom gensim.models import Word2Vec\n"
              f"pickle.loads({data!r})\nprint(Word2Vec.pwned)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=package_env())
    assert done.stdout.strip() == "1", done.stderr


# --- side files the model does not need --------------------------------------------------


def unneeded_side_files(tmp_path: Path) -> dict[str, Path]:
    """Real gensim files naming a plain-array side file (or a part) their class never has."""
    from gensim.models.word2vec import Word2VecTrainables

    plain = np.arange(6, dtype=np.float32)
    tmp_path.mkdir(exist_ok=True)
    found = {}

    def model_with(name: str, change: Callable[[Any], None], *arrays: str,
                   kv: bool = False) -> None:
        path = tmp_path / f"{name.replace(' ', '_')}.{'kv' if kv else 'model'}"
        if kv:
            small().wv.save(str(path), sep_limit=0)
        else:
            small().save(str(path), sep_limit=0)
        tamper(path, change)
        for array in arrays:
            np.save(f"{path}.{array}.npy", plain, allow_pickle=False)
        found[name] = path

    def add(key: str, attr: str, on_wv: bool = False) -> Callable[[Any], None]:
        def change(o: Any) -> None:
            target = vars(o.wv if on_wv else o)
            target[key] = [*target.get(key, []), attr]
        return change

    model_with("an extra array on the model", add("__numpys", "extra"), "extra")
    model_with("a vectors array on the model", add("__numpys", "vectors"), "vectors")
    model_with("a model array on KeyedVectors", add("__numpys", "syn1neg"), "syn1neg", kv=True)
    model_with("an extra array on KeyedVectors", add("__numpys", "index_to_key"),
               "index_to_key", kv=True)
    model_with("an extra array on its wv", add("__numpys", "key_to_index", on_wv=True),
               "wv.key_to_index")
    model_with("an extra ignored name", add("__ignoreds", "random"))
    model_with("an extra ignored name on its wv", add("__ignoreds", "index_to_key", on_wv=True))

    def wv_is_a_model(o: Any) -> None:
        o.wv = small()

    model_with("a wv that is a whole model", wv_is_a_model)

    def trainables_on_kv(o: Any) -> None:
        o.trainables = Word2VecTrainables.__new__(Word2VecTrainables)
        vars(o)["__recursive_saveloads"] = ["trainables"]

    model_with("a part on KeyedVectors", trainables_on_kv, kv=True)
    model_with("an extra part on the model", add("__recursive_saveloads", "extra"))
    return found


UNNEEDED = ["an extra array on the model", "a vectors array on the model",
            "a model array on KeyedVectors", "an extra array on KeyedVectors",
            "an extra array on its wv", "an extra ignored name", "an extra ignored name on its wv",
            "a wv that is a whole model", "a part on KeyedVectors", "an extra part on the model"]


@pytest.mark.parametrize("name", UNNEEDED)
def test_a_side_file_the_model_does_not_need_is_refused(tmp_path: Path, name: str) -> None:
    path = unneeded_side_files(tmp_path)[name]
    for load in (lambda: load_vectors(str(path)), lambda: load_saved(path)):
        with pytest.raises(DataError) as info:
            load()
        assert "it was not loaded" in str(info.value), str(info.value)


def test_unneeded_side_files_are_refused_by_align_merge_and_compare(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    folder = tmp_path / "ws"
    write_workspace(folder, ("b.txt",))
    config = folder / "config.yaml"
    assert cli("add-corpus", config).code == 0
    good = tmp_path / "good.kv"
    assert cli("export", config, "--version", "v1", "--format", "keyedvectors",
               "--output", good).code == 0
    for name, path in unneeded_side_files(tmp_path / "files").items():
        for args in (["align", path, good, "--output", tmp_path / "o.kv"],
                     ["merge", good, path, "--output", tmp_path / "m.kv"],
                     ["compare", config, path, "v1"]):
            result = cli(*args)
            assert result.code == 65, (name, args[0], result.err)
            assert "does not have" in result.err or "not loaded" in result.err, result.err
        assert not (tmp_path / "m.kv").exists() and not (tmp_path / "o.kv").exists()


def test_the_unneeded_side_file_is_read_by_gensim(tmp_path: Path) -> None:
    """Counter-check: gensim's own loader sets the attribute from the planted array."""
    path = unneeded_side_files(tmp_path)["an extra array on KeyedVectors"]
    assert isinstance(KeyedVectors.load(str(path)).index_to_key, np.ndarray)


def test_a_version_naming_an_extra_array_is_refused(tmp_path: Path,
                                                    cli: Callable[..., Result]) -> None:
    import hashlib

    config, version = two_versions(tmp_path, cli)
    document = json.loads((version / "model").read_text())
    document["object"]["attrs"]["__numpys"].append("extra")
    data = json.dumps(document).encode()
    (version / "model").write_bytes(data)
    np.save(version / "model.extra.npy", np.zeros(3), allow_pickle=False)
    meta = json.loads((version / "meta.json").read_text())
    meta["files"]["model"] = hashlib.sha256(data).hexdigest()
    meta["files"]["model.extra.npy"] = hashlib.sha256(
        (version / "model.extra.npy").read_bytes()).hexdigest()
    (version / "meta.json").write_text(json.dumps(meta))
    result = cli("evaluate", config)
    assert result.code == 65, result.err
    assert "extra" in result.err
