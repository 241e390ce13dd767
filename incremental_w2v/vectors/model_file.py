"""A full gensim model on disk: how a version's model is saved and loaded, without pickle.

A version's model (``model_format`` 2 in its ``meta.json``) is gensim's own
layout with the pickle taken out: gensim's ``_save_specials`` writes every
array attribute to ``model.<attribute>.npy`` exactly as ``save()`` does, and
the rest of the object (hyper-parameters, vocabulary, counts, the random
state, ``lifecycle_events``) goes to ``model`` as JSON instead of a pickle;
arrays inside it (the per-word counts of ``wv.expandos``) go to
``model.array-N.npy``. Loading builds the objects from a fixed table of
classes (:data:`safe_pickle._MODEL_CLASS_NAMES`) with ``__new__`` and their
saved attributes, exactly as unpickling does but without running anything
named by the file, then lets gensim's ``_load_specials`` read the arrays
(``allow_pickle=False``) and run its usual fix-ups (the negative-sampling
table, FastText's n-gram buckets).

A file that is a pickle (a model the user brings, a version written before
format 2) is read by :func:`load_saved`, the same steps with the restricted
unpickler of :mod:`safe_pickle` in place of the JSON.
"""

from __future__ import annotations

import importlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from incremental_w2v.errors import DataError
from incremental_w2v.vectors.cum_table import vectorised_cum_table
from incremental_w2v.vectors.safe_pickle import (
    _MODEL_CLASS_NAMES,
    check_array_file,
    check_side_files,
    model_classes,
    refused,
    unpickle,
)

# meta.json's model_format: 1 = gensim's pickle (written before 0.2), 2 = JSON and .npy.
PICKLE_FORMAT = 1
MODEL_FORMAT = 2
_MAGIC = "incw2v-model"
_FUNCTIONS = {"hash": hash}
_PLAIN = (str, int, float, bool, type(None))  # JSON's own values: kept as they are


def save_model(model: Any, path: Path) -> None:
    """Save ``model`` as ``path`` (JSON) and its arrays as ``path.*.npy``; no pickle.

    The path recorded in gensim's ``lifecycle_events`` is this local path:
    no URI, no secret.
    """
    from gensim.utils import SaveLoad

    fname = str(path)
    model.add_lifecycle_event("saved", fname_or_handle=fname, separately=None)
    compress, subname = SaveLoad._adapt_by_suffix(fname)
    # sep_limit=0: every array in its own file, so small and large models take the same
    # path and mmap='r' reads work for all of them.
    restores = model._save_specials(fname, None, 0, [], 4, compress, subname)
    try:
        encoder = _Encoder(path)
        document = {"format": _MAGIC, "version": MODEL_FORMAT, "object": encoder.encode(model)}
        text = json.dumps(document, ensure_ascii=True, allow_nan=True)
    finally:
        for obj, asides in restores:
            for attrib, value in asides.items():
                setattr(obj, attrib, value)
    with open(path, "w", encoding="ascii") as out:
        out.write(text)


def save_gensim_model(model: Any, path: Path) -> None:
    """``model`` as gensim's own ``save`` writes it (a pickle and ``.npy`` arrays), for use
    elsewhere: ``Word2Vec.load`` or ``FastText.load`` read it. Every array goes to a side
    file, so none is pickled as a memory map."""
    model.save(str(path), sep_limit=0)


def load_model(path: Path, model_type: str | None, mmap: str | None = None,
               model_format: int = PICKLE_FORMAT) -> Any:
    """The model at ``path``, a Word2Vec or a FastText as ``model_type`` says.

    ``model_format`` is what the version's meta says it was saved as.
    ``mmap='r'`` is for read-only use only: training a read-only mapped model
    crashes gensim.
    """
    from gensim.models import FastText, Word2Vec

    model = load_json_model(path, mmap) if model_format == MODEL_FORMAT else load_saved(path, mmap)
    expected = FastText if model_type == "fasttext" else Word2Vec
    if not isinstance(model, expected):
        raise DataError(f"{path} holds a {type(model).__name__}, not a {expected.__name__}",
                        hint="roll back to another version with 'incw2v rollback CONFIG VERSION'")
    return model


def load_saved(path: Path, mmap: str | None = None) -> Any:
    """What gensim's ``SaveLoad.load`` gives for ``path``, but nothing in it can run code."""
    return _finish(unpickle(path), path, mmap)


def load_json_model(path: Path, mmap: str | None = None) -> Any:
    """A model saved by :func:`save_model`."""
    try:
        document = json.loads(path.read_text(encoding="ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path} is not a model saved by incw2v ({exc})",
                        hint="roll back to another version with 'incw2v rollback CONFIG VERSION'"
                        ) from None
    if not isinstance(document, dict) or document.get("format") != _MAGIC:
        raise DataError(f"{path} is not a model saved by incw2v")
    if document.get("version") != MODEL_FORMAT:
        raise DataError(f"{path} is in model format {document.get('version')!r}, which this "
                        f"incw2v does not know (it reads {MODEL_FORMAT})",
                        hint="upgrade incw2v")
    return _finish(_Decoder(path).decode(document["object"]), path, mmap)


def _finish(obj: Any, path: Path, mmap: str | None) -> Any:  # obj: a gensim SaveLoad
    """gensim's load after the unpickling: side arrays, fix-ups, the 'loaded' event."""
    from gensim.utils import SaveLoad

    if not isinstance(obj, model_classes()[:4]):  # a model or vectors, not one of their parts
        raise DataError(
            f"{path}: holds a {type(obj).__name__}, not word vectors or a model",
            hint="give a Word2Vec/FastText model, a KeyedVectors file or a word2vec-format file",
        )
    saved: Any = obj
    fname = str(path)
    compress, subname = SaveLoad._adapt_by_suffix(fname)
    if compress and mmap:
        mmap = None  # gensim cannot map a compressed array
    check_side_files(obj, fname, compress, subname, path)
    with vectorised_cum_table():  # gensim rebuilds the table at every load
        saved._load_specials(fname, mmap, compress, subname)
    saved.add_lifecycle_event("loaded", fname=fname)
    return saved


# -- the JSON encoding -------------------------------------------------------------------


def _class_key(cls: type) -> str | None:
    return next((f"{m}.{n}" for m, n in _MODEL_CLASS_NAMES
                 if getattr(importlib.import_module(m), n) is cls), None)


class _Encoder:
    """An object graph of plain values, model parts and arrays, as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arrays = 0

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return {"__scalar__": value.dtype.str, "value": value.item()}
        if isinstance(value, list):
            if all(type(v) in _PLAIN for v in value):  # the vocabulary: no walk per word
                return value
            return [self.encode(v) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, defaultdict):
            if value.default_factory is not int:
                raise TypeError(f"cannot save a defaultdict of {value.default_factory}")
            return {"__defaultdict__": "int", "items": self._pairs(value)}
        if isinstance(value, dict):
            if all(type(k) is str and type(v) in _PLAIN for k, v in value.items()):
                return {"__plain_dict__": value}  # key_to_index, at JSON's own speed
            return {"__dict__": self._pairs(value)}
        if isinstance(value, (set, frozenset)):
            return {"__set__": [self.encode(v) for v in value]}
        if isinstance(value, np.ndarray):
            return {"__array__": self._array(value)}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self.encode(value.get_state(legacy=False))}
        if isinstance(value, np.random.Generator):
            bits = value.bit_generator
            return {"__generator__": type(bits).__name__, "state": self.encode(bits.state)}
        if any(value is f for f in _FUNCTIONS.values()):
            return {"__function__": next(k for k, f in _FUNCTIONS.items() if f is value)}
        if callable(value) and getattr(value, "__name__", "") == "call_on_class_only":
            return {"__function__": "call_on_class_only"}
        key = _class_key(type(value))
        if key is not None:
            return {"__object__": key, "attrs": {k: self.encode(v) for k, v in
                                                 vars(value).items()}}
        raise TypeError(f"cannot save a {type(value).__name__} in a model file")

    def _pairs(self, mapping: dict[Any, Any]) -> list[list[Any]]:
        return [[self.encode(k), self.encode(v)] for k, v in mapping.items()]

    def _array(self, array: np.ndarray) -> str:
        if array.dtype.hasobject:
            raise TypeError("cannot save an array of Python objects")
        name = f"array-{self.arrays}"
        self.arrays += 1
        np.save(f"{self.path}.{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        return name


class _Decoder:
    """The inverse of :class:`_Encoder`: only model classes, plain values and arrays."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.classes = {f"{m}.{n}": getattr(importlib.import_module(m), n)
                        for m, n in _MODEL_CLASS_NAMES}

    def decode(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            if all(type(v) in _PLAIN for v in value):
                return value
            return [self.decode(v) for v in value]
        if not isinstance(value, dict) or len(value) not in (1, 2):
            raise self._bad(f"an unknown value {str(value)[:80]}")
        if "__scalar__" in value:
            return np.dtype(value["__scalar__"]).type(value["value"])
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if "__plain_dict__" in value:
            plain = value["__plain_dict__"]
            if not isinstance(plain, dict) or not all(type(v) in _PLAIN for v in plain.values()):
                raise self._bad("a malformed mapping")
            return plain
        if "__dict__" in value:
            return {self.decode(k): self.decode(v) for k, v in value["__dict__"]}
        if "__defaultdict__" in value:
            out: defaultdict[Any, Any] = defaultdict(int)
            out.update((self.decode(k), self.decode(v)) for k, v in value["items"])
            return out
        if "__set__" in value:
            return {self.decode(v) for v in value["__set__"]}
        if "__array__" in value:
            return self._array(value["__array__"])
        if "__random_state__" in value:
            # Seeded the legacy way, as gensim's RandomState(seed): no SeedSequence to pickle.
            state = np.random.RandomState(0)
            state.set_state(self.decode(value["__random_state__"]))
            return state
        if "__generator__" in value:
            bits = {"MT19937": np.random.MT19937, "PCG64": np.random.PCG64,
                    "PCG64DXSM": np.random.PCG64DXSM, "Philox": np.random.Philox,
                    "SFC64": np.random.SFC64}.get(value["__generator__"])
            if bits is None:
                raise self._bad(f"a random generator {value['__generator__']!r}")
            generator = bits()
            generator.state = self.decode(value["state"])
            return np.random.Generator(generator)
        if "__function__" in value:
            name = value["__function__"]
            if name == "call_on_class_only":
                from gensim.utils import call_on_class_only

                return call_on_class_only
            if name not in _FUNCTIONS:
                raise self._bad(f"a function {name!r}")
            return _FUNCTIONS[name]
        if "__object__" in value:
            cls = self.classes.get(value["__object__"])
            if cls is None:
                raise self._bad(f"an object of {value['__object__']!r}")
            obj = cls.__new__(cls)  # as unpickling makes it: no __init__ runs
            obj.__dict__.update({k: self.decode(v) for k, v in value["attrs"].items()})
            return obj
        raise self._bad(f"an unknown value {str(value)[:80]}")

    def _array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or not name.startswith("array-") or "/" in name:
            raise self._bad(f"an array named {name!r}")
        side = Path(f"{self.path}.{name}.npy")
        check_array_file(side, self.path)
        array: np.ndarray = np.load(side, allow_pickle=False)
        return array

    def _bad(self, what: str) -> DataError:
        return refused(self.path, what)
