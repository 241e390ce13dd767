"""incw2v: keep gensim Word2Vec models current as new corpora arrive.

The public API, imported on first use (a no-op cron run stays fast)::

    from incremental_w2v import Lineage, load_config, align, merge
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AlignOptions", "Lineage", "__version__", "align", "load_config", "merge"]

if TYPE_CHECKING:
    from incremental_w2v.align.mapping import AlignOptions
    from incremental_w2v.config.schema import load_config
    from incremental_w2v.lineage import Lineage, align, merge


def __getattr__(name: str) -> Any:
    if name in ("Lineage", "align", "merge"):
        from incremental_w2v import lineage

        return getattr(lineage, name)
    if name == "load_config":
        from incremental_w2v.config.schema import load_config

        return load_config
    if name == "AlignOptions":
        from incremental_w2v.align.mapping import AlignOptions

        return AlignOptions
    raise AttributeError(f"module 'incremental_w2v' has no attribute {name!r}")
