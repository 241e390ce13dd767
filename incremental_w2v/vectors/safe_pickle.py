"""Unpickling a gensim model a user brings, with nothing in it able to run code.

A file the user brings in (``base.model``, a vectors file for ``align``,
``merge`` or ``compare``, a store version written before models were stored
without pickle) is a pickle, and a pickle is a program. It is never handed to
:mod:`pickle` or to gensim's loader. It is read by :class:`_Restricted`, a
pickle machine that

- resolves only the names a Word2Vec, FastText or KeyedVectors model is made
  of (:data:`MODEL_CLASSES`, numpy's array, dtype and random-state
  constructors, a few builtins); anything else (``os.system``, ``eval``,
  gensim's ``Similarity``, which writes files when built) stops the load;
- calls only the constructors in :data:`_CALLABLE` and never a model class:
  those are made as unpickling always makes them, with ``__new__`` and their
  saved attributes, so no ``__init__`` runs (``Word2Vec(...)`` would train,
  reading any file it is given);
- builds no object of another class than those;
- gives a state (BUILD) only to an object it has just made, once, and never one that
  sets ``__class__``, ``__setstate__`` or another special name: a class, a function or
  any other global looked up by name is never changed (``Word2Vec.x = 1`` would hold for
  the whole process).

gensim's loader then unpickles *side files* named in the object: every name
in ``__scipys`` is read with ``pickle.load``. :func:`check_side_files` refuses
any such name (a word2vec model has no sparse matrix) and any array or part that
the object's class does not have (:data:`SIDE_FILES`), checks that every
``__numpys`` file is a plain numeric ``.npy`` (never an object array, which
numpy would unpickle) and that every ``__recursive_saveloads`` attribute is a
model part itself; only then does gensim's ``_load_specials`` read them, with
``numpy.load``'s ``allow_pickle=False``.
"""

from __future__ import annotations

import _compat_pickle
import copyreg
import importlib
import pickle
import re
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from incremental_w2v.errors import DataError

# What a Word2Vec, FastText or KeyedVectors model (of gensim 4, or of gensim 3 that
# gensim 4 converts on load) is made of: the classes are made with __new__, never called.
_MODEL_CLASS_NAMES = (
    ("gensim.models.word2vec", "Word2Vec"),
    ("gensim.models.fasttext", "FastText"),
    ("gensim.models.keyedvectors", "KeyedVectors"),
    ("gensim.models.fasttext", "FastTextKeyedVectors"),
    ("gensim.models.keyedvectors", "CompatVocab"),  # gensim 3's per-word Vocab records
    ("gensim.models.word2vec", "Word2VecVocab"),  # gensim 3.x parts, folded in on load
    ("gensim.models.word2vec", "Word2VecTrainables"),
    ("gensim.models.fasttext", "FastTextVocab"),
    ("gensim.models.fasttext", "FastTextTrainables"),
)
# Names under which older pickles refer to them (resolved, then checked to be one of them).
_MODEL_ALIASES = (
    ("gensim.models.keyedvectors", "Vocab"),
    ("gensim.models.keyedvectors", "Word2VecKeyedVectors"),
    ("gensim.models.keyedvectors", "EuclideanKeyedVectors"),
    ("gensim.models.keyedvectors", "FastTextKeyedVectors"),
)

_SAFE_TYPES: tuple[type, ...] = (
    int, float, complex, bool, str, bytes, bytearray, list, tuple, dict, set, frozenset,
    slice, range, object,
)
_BUILTIN_NAMES = {t.__name__ for t in _SAFE_TYPES} | {"hash"}


def _numpy_callables() -> dict[tuple[str, str], Any]:
    from numpy.random import _pickle as random_pickle

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")  # numpy 2
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")
    found: dict[tuple[str, str], Any] = {("numpy", "dtype"): np.dtype,
                                         ("numpy", "ndarray"): np.ndarray,
                                         ("numpy", "memmap"): np.memmap}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = multiarray._reconstruct
        found[(module, "scalar")] = multiarray.scalar
    for name in ("__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"):
        found[("numpy.random._pickle", name)] = getattr(random_pickle, name)
    found[("numpy.random", "__RandomState_ctor")] = random_pickle.__randomstate_ctor
    found[("numpy.random.mtrand", "RandomState")] = np.random.RandomState
    for name in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"):
        module = f"numpy.random._{name.lower().replace('dxsm', '')}"
        found[(module, name)] = getattr(np.random, name)
    found[("numpy.random._generator", "Generator")] = np.random.Generator
    return found


class Refused(Exception):
    """The pickle asks for something a model does not hold."""

    def __init__(self, what: str, gensim_class: str | None = None) -> None:
        super().__init__(what)
        self.gensim_class = gensim_class  # e.g. Doc2Vec: a gensim object, not word vectors


class NotWordVectors(DataError):
    """A gensim object of another kind (a Doc2Vec model, a Dictionary): not loaded."""

    def __init__(self, message: str, hint: str, gensim_class: str) -> None:
        super().__init__(message, hint=hint)
        self.gensim_class = gensim_class


def model_classes() -> tuple[type, ...]:
    """The classes a model file may hold (gensim is imported on first use)."""
    return tuple(getattr(importlib.import_module(m), n) for m, n in _MODEL_CLASS_NAMES)


# The pure-Python machine: its opcodes can be overridden one by one (the C one's cannot).
_PurePython: Any = pickle._Unpickler


class _Restricted(_PurePython):  # type: ignore[misc]
    """The pure-Python pickle machine, with every opcode that calls or resolves checked."""

    dispatch: ClassVar[dict[int, Any]] = dict(_PurePython.dispatch)

    def __init__(self, handle: Any) -> None:
        super().__init__(handle, encoding="latin1")
        self._models = model_classes()
        self._names: dict[tuple[str, str], Any] = {
            **{("builtins", n): getattr(__import__("builtins"), n) for n in _BUILTIN_NAMES},
            ("collections", "defaultdict"): __import__("collections").defaultdict,
            ("collections", "OrderedDict"): __import__("collections").OrderedDict,
            ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
            ("_codecs", "encode"): __import__("_codecs").encode,
            ("gensim.utils", "call_on_class_only"): importlib.import_module(
                "gensim.utils").call_on_class_only,
            **_numpy_callables(),
        }
        # What may be called while unpickling: constructors of plain values, never a model.
        # numpy.memmap only names the kind of an array being rebuilt: called, it opens files.
        self._callable = {id(v) for v in self._names.values()
                          if v is not np.memmap and v is not self._names[
                              ("gensim.utils", "call_on_class_only")]}
        self._reconstruct = self._names[("numpy._core.multiarray", "_reconstruct")]
        self._bit_generators = {id(v) for (m, n), v in self._names.items()
                                if m.startswith("numpy.random._") and n != "__randomstate_ctor"
                                and n != "__generator_ctor"}
        self._defaultdict = self._names[("collections", "defaultdict")]
        # Objects this machine made (by id, each kept alive so no id is reused), not yet given
        # their state: BUILD applies only to them, never to a class, a function or any
        # other global that find_class hands out (a state there would change it for the
        # whole process).
        self._fresh: dict[int, Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles (gensim 3 models) name __builtin__.long and the like.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self._names.get((module, name))
        if found is not None:
            return found
        if (module, name) in (*_MODEL_CLASS_NAMES, *_MODEL_ALIASES):
            cls = getattr(importlib.import_module(module), name, None)
            if cls in self._models:
                return cls
        if module.startswith("gensim.") and "." not in name and name[:1].isupper():
            raise Refused(f"{module}.{name}", gensim_class=name)  # said as what it is
        raise Refused(f"{module}.{name}")

    def _check_call(self, func: Any, args: Any) -> None:
        if func is copyreg._reconstructor:  # type: ignore[attr-defined]
            # _reconstructor(cls, base, state) calls base.__init__: only object's is harmless.
            cls, base = (*tuple(args), None, None)[:2]
            if base is not object or not (cls in self._models or cls in _SAFE_TYPES):
                raise Refused(f"copyreg._reconstructor of {_name(cls)} on {_name(base)}")
            return
        if id(func) not in self._callable or func in self._models:
            raise Refused(f"a call of {_name(func)}")
        first = args[0] if isinstance(args, tuple) and args else None
        if func is self._reconstruct and first not in (np.ndarray, np.memmap):
            raise Refused(f"an array of {_name(first)}")
        if func is self._defaultdict and first is not None and first not in _SAFE_TYPES:
            raise Refused(f"a defaultdict of {_name(first)}")
        if func is np.dtype and not (isinstance(args, tuple) and len(args) >= 3 and args[2]):
            # dtype(..., copy=False) hands out numpy's shared dtype: BUILD would change it.
            raise Refused("a shared numpy dtype (not a copy)")
        # numpy's random-state constructors call what they are given: only bit generators.
        for arg in args if isinstance(args, tuple) else ():
            if callable(arg) and func is not self._reconstruct and not (
                func is self._defaultdict and arg in _SAFE_TYPES
            ) and id(arg) not in self._bit_generators:
                raise Refused(f"a call of {_name(func)} given {_name(arg)}")

    def _made(self) -> None:
        made = self.stack[-1]
        self._fresh[id(made)] = made

    def load_reduce(self) -> None:
        args = self.stack[-1]
        self._check_call(self.stack[-2], args)
        super().load_reduce()
        self._made()

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if self._fresh.pop(id(inst), None) is not inst or isinstance(
            inst, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
        ):
            raise Refused(f"a state given to {_name(inst)}, which this file did not make")
        dict_state, slot_state = (state if isinstance(state, tuple) and len(state) == 2
                                  else (state, None))
        for part in (dict_state, slot_state):
            if isinstance(part, dict) and any(
                not isinstance(k, str) or (k.startswith("__") and k.endswith("__"))
                for k in part
            ):
                # __class__, __setstate__, __dict__: a state that would change what the
                # object is or how the next state is applied.
                raise Refused(f"a state of {_name(type(inst))} setting special attributes")
        try:
            super().load_build()
        except (TypeError, AttributeError, ValueError, KeyError) as exc:
            raise Refused(f"a state that does not fit a {_name(type(inst))} ({exc})") from None

    dispatch[pickle.BUILD[0]] = load_build

    def _check_new(self, cls: Any) -> None:
        if not isinstance(cls, type) or not (
            cls in self._models or cls in _SAFE_TYPES or id(cls) in self._callable
        ):
            raise Refused(f"an object of {_name(cls)}")

    def load_newobj(self) -> None:
        self._check_new(self.stack[-2])
        super().load_newobj()
        self._made()

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        self._check_new(self.stack[-3])
        super().load_newobj_ex()
        self._made()

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ (protocols 0, 1)
        if klass in self._models and not args:
            self.append(klass.__new__(klass))
        else:
            self._check_call(klass, args)
            super()._instantiate(klass, args)
        self._made()

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("a persistent reference")


def _name(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else type(obj).__name__


def unpickle(path: Path) -> Any:
    """The object pickled in ``path`` (``.gz``/``.bz2`` decompressed as gensim does).

    Raises DataError naming what was refused; nothing outside the allowlist was
    resolved or called by then.
    """
    from smart_open import open as smart_open

    try:
        with smart_open(str(path), "rb") as handle:
            return _Restricted(handle).load()
    except Refused as exc:
        if exc.gensim_class:
            raise NotWordVectors(
                f"{path}: holds a {exc} (a gensim object of another kind), not word vectors "
                "or a Word2Vec, FastText or KeyedVectors model as gensim 4 saves them; it was "
                "not loaded",
                hint="give a Word2Vec/FastText model, a KeyedVectors file or a word2vec-format "
                "file", gensim_class=exc.gensim_class) from None
        raise refused(path, str(exc)) from None


def refused(path: Path, what: str) -> DataError:
    return DataError(
        f"{path} is not word vectors or a model as gensim saves them: it refers to {what}, "
        "which a Word2Vec, FastText or KeyedVectors file never holds and which could run "
        "code when loaded; it was not loaded",
        hint="load only models and vectors saved with gensim's save(); if you trust this file, "
        "load it with gensim yourself and save the model (or its KeyedVectors) again",
    )


# -- the side files gensim's loader reads after the main pickle ---------------------------

_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The arrays (``__numpys``, ``__ignoreds``) and parts (``__recursive_saveloads``) each class
# of a model keeps beside its main file, in gensim 4 and in the gensim 3 files gensim 4
# converts on load. A side file for any other attribute is not part of a model: refused.
_W2V_ARRAYS = frozenset({"syn1", "syn1neg", "cum_table", "syn0_lockf", "vectors_lockf"})
_KV_ARRAYS = frozenset({
    "vectors", "vectors_lockf", "norms", "vectors_norm", "syn0", "syn0norm", "syn0_lockf",
    "vectors_vocab", "vectors_vocab_lockf", "vectors_vocab_norm",
    "vectors_ngrams", "vectors_ngrams_lockf", "vectors_ngrams_norm", "buckets_word",
})
_TRAINABLES_ARRAYS = frozenset({"syn1", "syn1neg", "vectors_lockf", "vectors_vocab_lockf",
                                "vectors_ngrams_lockf"})
_MODEL_PARTS = frozenset({"wv", "trainables", "vocabulary"})
_PART_CLASSES = {"wv": ("KeyedVectors", "FastTextKeyedVectors"),
                 "trainables": ("Word2VecTrainables", "FastTextTrainables"),
                 "vocabulary": ("Word2VecVocab", "FastTextVocab")}
SIDE_FILES: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # class: (arrays, parts)
    "Word2Vec": (_W2V_ARRAYS, _MODEL_PARTS),
    "FastText": (_W2V_ARRAYS, _MODEL_PARTS),
    "KeyedVectors": (_KV_ARRAYS, frozenset()),
    "FastTextKeyedVectors": (_KV_ARRAYS, frozenset()),
    "Word2VecTrainables": (_TRAINABLES_ARRAYS, frozenset()),
    "FastTextTrainables": (_TRAINABLES_ARRAYS, frozenset()),
    "Word2VecVocab": (frozenset({"cum_table"}), frozenset()),
    "FastTextVocab": (frozenset({"cum_table"}), frozenset()),
    "CompatVocab": (frozenset(), frozenset()),
}


def check_side_files(obj: Any, fname: str, compress: bool, subname: Any, origin: Path) -> None:
    """Refuse any side file that gensim's ``_load_specials`` would unpickle, and any that
    is not a plain numeric array; recurse as it does."""
    models = model_classes()
    attrs = vars(obj)
    for key in ("__numpys", "__scipys", "__ignoreds", "__recursive_saveloads"):
        names = attrs.get(key, [])
        if not isinstance(names, list) or not all(
            isinstance(n, str) and _ATTRIBUTE.match(n) for n in names
        ):
            raise refused(origin, f"a malformed {key} list")
    if attrs.get("__scipys"):
        # Each would be read with pickle.load: a word2vec model has no sparse matrix.
        raise refused(origin, f"pickled side files {attrs['__scipys']} (scipy sparse matrices)")
    arrays, parts = SIDE_FILES.get(type(obj).__name__, (frozenset(), frozenset()))
    for key, known in (("__numpys", arrays), ("__ignoreds", arrays),
                       ("__recursive_saveloads", parts)):
        extra = sorted(set(attrs.get(key, [])) - known)
        if extra:
            kind = "parts" if key == "__recursive_saveloads" else "side files"
            raise refused(origin, f"{kind} {', '.join(extra)} of a {type(obj).__name__} "
                          f"({key}), which such a model does not have")
    for attrib in attrs.get("__recursive_saveloads", []):
        part = attrs.get(attrib)
        if not isinstance(part, models) or type(part).__name__ not in _PART_CLASSES[attrib]:
            raise refused(origin, f"a side object {attrib!r} of {_name(type(part))}")
        check_side_files(part, f"{fname}.{attrib}", compress, subname, origin)
    for attrib in attrs.get("__numpys", []):
        side = Path(subname(fname, attrib))
        check_array_file(side, origin, compressed=compress)


def check_array_file(path: Path, origin: Path, compressed: bool = False) -> None:
    """``path`` must be a ``.npy`` (or gensim's ``.npz``) of a plain numeric dtype."""
    if not path.is_file():
        raise DataError(
            f"{origin}: a side file gensim saved with it is missing ({path.name})",
            hint="copy the .npy files that sit beside the model (NAME.*.npy) along with it",
        )
    try:
        if compressed:
            with np.load(path, allow_pickle=False) as archive:
                dtypes = [archive[name].dtype for name in archive.files]
        else:
            with open(path, "rb") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"unknown .npy version {version}")
                dtypes = [read_header(handle)[2]]
    except ValueError as exc:  # an object array (refused by allow_pickle=False), or no .npy
        raise refused(origin, f"a side file {path.name} that is not a plain array ({exc})"
                      ) from None
    for dtype in dtypes:
        if dtype.hasobject:
            raise refused(origin, f"a side file {path.name} of Python objects")
