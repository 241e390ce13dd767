"""Bring a separately trained model into another's space, and merge the two.

Two word2vec runs land in arbitrary orientations, so their vectors are not
comparable as they are. Using anchor words (shared words in a frequency band,
or an explicit pair file) a linear map from SOURCE's space to TARGET's is
fitted: orthogonal Procrustes by default (an isometry: cosines inside the
mapped space are kept), or the unconstrained least squares of gensim's
``TranslationMatrix`` (``lstsq``: fits the anchors more closely, distorts
everything else). A held-out part of the anchors is never used for fitting
and measures how well the map holds (precision@1/@10 with cosine and with
CSLS retrieval, mean cosine); every run reports these figures and says
plainly when the map is too poor to trust and a joint retrain would serve
better. ``align`` writes SOURCE's vectors mapped; ``merge`` writes the union
vocabulary in TARGET's space.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from incremental_w2v import __version__
from incremental_w2v.align.fit import fit_alignment
from incremental_w2v.align.mapping import PREFERENCES, AlignOptions
from incremental_w2v.align.output import aligned_vectors, merged_vectors
from incremental_w2v.errors import UsageError
from incremental_w2v.fsutil import check_output_folder
from incremental_w2v.store.ops import load_vectors_ref
from incremental_w2v.vectors.formats import VECTOR_FORMATS
from incremental_w2v.vectors.io import write_vectors


@dataclass
class AlignResult:
    """What ``align`` or ``merge`` did, for the CLI's text and ``--json``."""

    command: str
    source: str
    target: str
    output: str
    format: str
    files: list[str]
    vocab_size: int
    source_vocab: int
    target_vocab: int
    diagnostics: dict[str, Any]
    options: dict[str, Any]
    merge: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def align(
    source: str,
    target: str,
    output: Path,
    options: AlignOptions | None = None,
    fmt: str = "keyedvectors",
    base_dir: Path | None = None,
) -> AlignResult:
    """Write SOURCE's vectors mapped into TARGET's space to ``output``, diagnostics beside it."""
    return _run("align", source, target, output, options or AlignOptions(), fmt, base_dir, None)


def merge(
    source: str,
    target: str,
    output: Path,
    options: AlignOptions | None = None,
    prefer: str = "target",
    fmt: str = "keyedvectors",
    base_dir: Path | None = None,
) -> AlignResult:
    """Write the union vocabulary in TARGET's space to ``output``, diagnostics beside it."""
    if prefer not in PREFERENCES:
        raise UsageError(
            f"unknown --prefer {prefer!r}", hint=f"use one of: {', '.join(PREFERENCES)}"
        )
    return _run("merge", source, target, output, options or AlignOptions(), fmt, base_dir, prefer)


def _run(command: str, source_ref: str, target_ref: str, output: Path, options: AlignOptions,
         fmt: str, base_dir: Path | None, prefer: str | None) -> AlignResult:
    start = time.monotonic()
    options.check()
    if fmt not in VECTOR_FORMATS:
        raise UsageError(
            f"unknown vectors format {fmt!r}",
            hint=f"use one of: {', '.join(VECTOR_FORMATS)} (a full model cannot be made from "
            "mapped vectors: there are no trained output weights for them)",
        )
    output = Path(output)
    check_output_folder(output)
    source = load_vectors_ref(source_ref, base_dir=base_dir)
    target = load_vectors_ref(target_ref, base_dir=base_dir)
    alignment = fit_alignment(source, target, options)
    merge_info: dict[str, Any] | None = None
    if prefer is None:
        kv = aligned_vectors(alignment, source)
    else:
        kv, merge_info = merged_vectors(alignment, source, target, prefer)  # type: ignore[arg-type]
    metadata = {
        "incw2v_version": __version__,
        "command": command,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"ref": source.ref, "kind": source.kind, "vocab_size": len(source.kv)},
        "target": {"ref": target.ref, "kind": target.kind, "vocab_size": len(target.kv)},
        "space": "target",
        "options": options.to_dict(),
        "diagnostics": alignment.diagnostics,
        "merge": merge_info,
        "vocab_size": len(kv),
    }
    files = write_vectors(kv, fmt, output, metadata)  # type: ignore[arg-type]
    return AlignResult(
        command=command, source=source.ref, target=target.ref, output=str(output), format=fmt,
        files=[str(p) for p in files], vocab_size=len(kv), source_vocab=len(source.kv),
        target_vocab=len(target.kv), diagnostics=alignment.diagnostics,
        options=options.to_dict(), merge=merge_info, seconds=round(time.monotonic() - start, 3),
    )
