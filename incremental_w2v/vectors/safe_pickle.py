"""Refuse a pickle that could run code, before gensim unpickles it.

Models in the store are only loaded once their sha256 matches the manifest's
record. A file the user brings in (``base.model``, a vectors file for
alignment) has no record, so it is first read by an unpickler that only
resolves the names a gensim model is made of: gensim's own classes, numpy's
array and random-state constructors, and a few harmless builtins. Anything
else (``os.system``, ``builtins.eval``, ``subprocess.Popen`` …) stops the load
before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import pickle
from pathlib import Path
from typing import Any

from incremental_w2v.errors import DataError

_ALLOWED: set[tuple[str, str]] = {
    *(("builtins", n) for n in (
        "int", "float", "complex", "bool", "str", "bytes", "bytearray", "list", "tuple",
        "dict", "set", "frozenset", "slice", "range", "object", "hash",
    )),
    ("collections", "defaultdict"), ("collections", "OrderedDict"), ("collections", "Counter"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random.mtrand", "RandomState"),
    ("gensim.utils", "call_on_class_only"),
}


class _Refused(Exception):
    """The pickle names a global outside the allowlist."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles (old gensim models) name __builtin__.long and the like.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith("gensim.") and "." not in name:
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type):  # gensim's classes, never its functions
                return found
        raise _Refused(f"{module}.{name}")


def check_pickle(path: Path) -> None:
    """Raise DataError unless ``path`` (as gensim would open it) only names allowed globals."""
    from smart_open import open as smart_open

    try:
        with smart_open(str(path), "rb") as handle:  # decompresses .gz/.bz2 as gensim does
            _Restricted(handle, encoding="latin1").load()
    except _Refused as exc:
        raise DataError(
            f"{path} is not a plain gensim model: its pickle refers to {exc}, which could run "
            "code when loaded; it was not loaded",
            hint="load only models you saved yourself with gensim's save(); if you trust this "
            "file, re-save it with gensim and use that copy",
        ) from None
    except Exception:
        # Not a pickle at all, truncated, …: gensim's own loader reports that better.
        return
