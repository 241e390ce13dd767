"""Reading and writing word vectors in the formats users exchange them in.

``load_vectors`` accepts a full gensim model, a ``KeyedVectors`` file, or a
word2vec text or binary file, and tells which it found (a version of a store,
``CONFIG@VERSION``, is read by ``store.ops.load_vectors_ref``). ``write_vectors``
writes ``KeyedVectors`` as word2vec text, word2vec binary or gensim
``KeyedVectors``, atomically: a reader sees the old output or the new one,
never a torn file.
"""

from __future__ import annotations

import json
import logging
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import smart_open
from gensim.models import KeyedVectors

from incremental_w2v.config.schema import VectorFormat
from incremental_w2v.errors import DataError, IncW2VError, InputMissingError, UsageError
from incremental_w2v.fsutil import atomic_outputs
from incremental_w2v.uris import redact, resolve_local
from incremental_w2v.vectors.formats import VECTOR_FORMATS
from incremental_w2v.vectors.model_file import load_saved
from incremental_w2v.vectors.ranking import counts_of

logger = logging.getLogger(__name__)

VectorKind = Literal["model", "keyedvectors", "word2vec-text", "word2vec-binary", "store-version"]


_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
_TEXT_EXTENSIONS = (".txt", ".vec")
_BINARY_EXTENSIONS = (".bin",)
_SNIFF_BYTES = 1 << 16
# First int32 of a native fastText .bin file (Facebook's format).
_FASTTEXT_MAGIC = 793712314


@dataclass
class LoadedVectors:
    """Word vectors and what is known about where they came from."""

    kv: KeyedVectors
    counts: dict[str, int] | None
    kind: VectorKind
    ref: str = ""  # redacted, for reports and metadata
    scores: dict[str, Any] | None = None  # recorded scores of a store version


def load_vectors(ref: str, base_dir: Path | None = None) -> LoadedVectors:
    """Load the vectors ``ref`` names; relative paths resolve against ``base_dir`` (default: cwd).

    Pickled files (full models, KeyedVectors) are loaded read-only with
    ``mmap='r'`` where gensim stored the arrays in side files. Raises
    InputMissingError when the file is missing, DataError when it is not a
    readable vectors file, UsageError for remote URIs.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    path = _local_path(ref, base)
    kind = _sniff(path)
    shown = redact(ref)
    logger.info("loading %s (%s)", shown, kind)
    if kind != "pickle":
        kv = _load_word2vec(path, binary=kind == "word2vec-binary")
        return LoadedVectors(kv=kv, counts=None, kind=kind, ref=shown)

    obj = _unpickle(path)
    if isinstance(obj, KeyedVectors):
        return LoadedVectors(kv=obj, counts=counts_of(obj), kind="keyedvectors", ref=shown)
    wv = getattr(obj, "wv", None)
    if isinstance(wv, KeyedVectors):
        return LoadedVectors(kv=wv, counts=counts_of(wv), kind="model", ref=shown)
    raise DataError(
        f"{path}: holds a gensim {type(obj).__name__}, not word vectors",
        hint="give a Word2Vec/FastText model, a KeyedVectors file or a word2vec-format file",
    )


def _sniff(path: Path) -> Literal["pickle", "word2vec-text", "word2vec-binary"]:
    """What kind of file ``path`` is, from its first bytes (and its name when unsure)."""
    head = _read_head(path)
    if head[:1] == b"\x80":  # pickle protocol >= 2: what gensim's save() writes
        return "pickle"
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] == _FASTTEXT_MAGIC:
        raise DataError(
            f"{path}: is a native fastText .bin file, which is not supported here",
            hint="load it with gensim.models.fasttext.load_facebook_vectors() and save the "
            "KeyedVectors, or export it from fastText as a .vec text file",
        )
    newline = head.find(b"\n")
    header = head[:newline] if newline >= 0 else head
    try:
        count, dims = (int(x) for x in header.decode("ascii").split())
    except (UnicodeDecodeError, ValueError):
        raise DataError(
            f"{path}: is neither a gensim model/KeyedVectors pickle nor a word2vec file "
            f"(its first line is not 'VOCAB_SIZE DIMENSIONS')",
            hint="check the path; word2vec files without a header line (GloVe) must be "
            "converted first (gensim.scripts.glove2word2vec)",
        ) from None
    by_name = _kind_by_extension(path)
    by_content = _text_or_binary(head[newline + 1:], dims) if count and newline >= 0 else None
    if by_content and by_name and by_content != by_name:
        logger.warning(
            "%s: its name says %s but its content is %s; reading it as %s",
            path, by_name, by_content, by_content,
        )
    return by_content or by_name or "word2vec-binary"


def write_vectors(
    kv: KeyedVectors,
    fmt: VectorFormat,
    output: Path,
    metadata: dict[str, Any] | None = None,
    store: Path | None = None,
    replace: bool = True,
) -> list[Path]:
    """Write ``kv`` to ``output`` in ``fmt`` atomically; returns every file written.

    ``store``: a store writing into its own working folder (``fsutil.atomic_outputs``);
    any other output is refused inside a store. ``replace=False``: an existing file at
    any name written (``output`` or a side file) is refused and nothing is replaced.

    Each file is written under a temporary name in the output's folder,
    fsynced, then renamed into place (side files first, the main file last),
    and the folder is fsynced. ``metadata``, if given, goes to
    ``OUTPUT.meta.json``. An ``output`` ending in .gz/.bz2 is compressed by
    gensim. Raises OutputError when the folder is missing or not writable or
    the disk fills up; no temporary file is left behind.
    """
    if fmt not in VECTOR_FORMATS:
        raise UsageError(
            f"unknown vectors format {fmt!r}",
            hint=f"use one of: {', '.join(VECTOR_FORMATS)}",
        )
    output = Path(output)
    with atomic_outputs(output, store=store, replace=replace) as outputs:
        tmp_main = outputs.temp(output)
        if fmt == "keyedvectors":
            # Vectors always in a side file, so readers can mmap them whatever their size.
            kv.save(str(tmp_main), separately=["vectors"] if type(kv) is KeyedVectors else None)
        else:
            kv.save_word2vec_format(str(tmp_main), binary=fmt == "word2vec-binary")
        if metadata is not None:
            meta_path = output.with_name(f"{output.name}.meta.json")
            outputs.temp(meta_path).write_text(
                json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
            )
        # gensim names side files after the main file (NAME.vectors.npy); keep the pairing.
        finals = sorted(output.with_name(p.name[len(outputs.prefix):]) for p in outputs.written())
    logger.info("wrote %s as %s (%d file(s))", output, fmt, len(finals))
    return finals


# --- loading helpers ------------------------------------------------------------------------


def _local_path(ref: str, base: Path) -> Path:
    local = resolve_local(ref, base)
    if local is None:
        raise UsageError(
            f"{redact(ref)}: vectors can only be read from local files",
            hint="download the file first (credentials stay in your environment), "
            "then pass the local path",
        )
    if not local.exists():
        raise InputMissingError(
            f"vectors file {local} does not exist",
            hint="check the path; a store version is written CONFIG@VERSION",
        )
    if local.is_dir():
        raise DataError(
            f"{local}: is a folder, not a vectors file",
            hint="give the model file inside it (e.g. versions/v0003/model) or CONFIG@VERSION",
        )
    return local


def _read_head(path: Path) -> bytes:
    try:
        with smart_open.open(str(path), "rb") as handle:  # decompresses .gz/.bz2/…
            data: bytes = handle.read(_SNIFF_BYTES)
            return data
    except OSError as exc:
        raise DataError(
            f"{path}: cannot be read ({exc})",
            hint="check the file's permissions, and that a compressed file is complete",
        ) from exc
    except EOFError as exc:
        raise DataError(
            f"{path}: the compressed file ends early (truncated)",
            hint="copy or download the file again",
        ) from exc


def _bare_suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    return Path(name).suffix


def _kind_by_extension(path: Path) -> Literal["word2vec-text", "word2vec-binary"] | None:
    suffix = _bare_suffix(path)
    if suffix in _TEXT_EXTENSIONS:
        return "word2vec-text"
    if suffix in _BINARY_EXTENSIONS:
        return "word2vec-binary"
    return None


def _text_or_binary(body: bytes, dims: int) -> Literal["word2vec-text", "word2vec-binary"] | None:
    """Text if the first vector line is 'word' plus ``dims`` numbers; None when undecidable."""
    newline = body.find(b"\n")
    if newline < 0:
        return None
    try:
        fields = body[:newline].decode("utf-8").split()
        if len(fields) == dims + 1:
            for value in fields[1:]:
                float(value)
            return "word2vec-text"
    except (UnicodeDecodeError, ValueError):
        pass
    return "word2vec-binary"


def _load_word2vec(path: Path, binary: bool) -> KeyedVectors:
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: a word is not valid UTF-8 (byte {exc.start} of the word's bytes)",
            hint="re-export the vectors as UTF-8; word2vec.c output cut mid-character needs "
            "gensim's unicode_errors='ignore'",
        ) from exc
    except (EOFError, ValueError, struct.error) as exc:
        fmt = "binary" if binary else "text"
        raise DataError(
            f"{path}: damaged word2vec {fmt} file ({exc})",
            hint="the file is truncated or its header's counts are wrong; export it again",
        ) from exc
    return kv


def _unpickle(path: Path) -> Any:
    # The user asked for this file; still, never let anything write through the mapping.
    mmap = None if path.name.lower().endswith(_COMPRESSED) else "r"
    try:
        return load_saved(path, mmap=mmap)  # nothing in the file can run code
    except IncW2VError:
        raise
    except FileNotFoundError as exc:
        raise DataError(
            f"{path}: a side file gensim saved with it is missing ({exc.filename})",
            hint="copy the .npy files that sit beside the model (NAME.*.npy) along with it",
        ) from exc
    except (
        EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError, TypeError
    ) as exc:
        raise DataError(
            f"{path}: cannot be loaded as a gensim object ({type(exc).__name__}: {exc})",
            hint="the file is truncated or was saved by an incompatible gensim; "
            "re-save it with gensim 4",
        ) from exc
