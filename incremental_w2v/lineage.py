"""The public face of incw2v: a lineage of versions, one method per command.

    from incremental_w2v import Lineage

    lineage = Lineage("config.yaml")
    result = lineage.add_corpus()        # AddResult: what was applied, skipped, current
    print(lineage.status().pending)      # what the next run would apply
    for row in lineage.history().versions:
        print(row.version, row.kind, row.scores)

Every method returns a dataclass with ``to_dict()`` (the CLI's ``--json``
output) and raises an ``incremental_w2v.errors.IncW2VError`` subclass on an
expected failure; ``cli.exit_codes.EXIT_CODES`` says which exit code each
maps to. Versions are named ``v0003``, ``v3`` or ``3`` everywhere, and a
vectors reference (``compare``, ``align``, ``merge``) may also be a vectors
file or ``CONFIG@VERSION``. The layers are imported when a method needs them,
so that a no-op ``add-corpus`` from cron never pays for gensim or scipy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incremental_w2v.config.schema import Config, load_config

if TYPE_CHECKING:
    from incremental_w2v.align.commands import AlignResult
    from incremental_w2v.align.mapping import AlignOptions
    from incremental_w2v.config.starter import Initialised
    from incremental_w2v.quality.compare import Comparison, Evaluation
    from incremental_w2v.quality.report import Reported
    from incremental_w2v.store.ops import (
        Excluded,
        Exported,
        History,
        Moved,
        Pruned,
        Published,
        Rejected,
        Repaired,
    )
    from incremental_w2v.train.add_corpus import AddResult
    from incremental_w2v.train.plan import Status
    from incremental_w2v.train.rebuild import Rebuilt


@dataclass
class Validated:
    """``validate``: the config is valid (and every module it needs is installed); where its
    store is, how long its queue, and where it publishes."""

    config: str
    store: str
    queue: int
    publish: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def init(path: str | os.PathLike[str] = "config.yaml", force: bool = False) -> Initialised:
    """Write a commented starter config to ``path`` (required keys marked); it validates."""
    from incremental_w2v.config.starter import write_starter

    return write_starter(Path(path), force)


class Lineage:
    """A model's lineage of versions, as a config file describes it."""

    def __init__(self, config: Config | str | os.PathLike[str]) -> None:
        self.config = config if isinstance(config, Config) else load_config(Path(config))

    def validate(self) -> Validated:
        """The config was checked when this object was made; check that its store's place
        is one incw2v may use and that the modules it needs are installed, and say what it
        describes."""
        from incremental_w2v.config.needs import REPORT, require
        from incremental_w2v.store.location import check_place

        check_place(self.config)
        require(self.config.named_uris(), [REPORT])
        return Validated(config=str(self.config.path), store=self.config.store_location,
                         queue=len(self.config.queue),
                         publish=[self.config.publish_location(t) for t in self.config.publish])

    def add_corpus(self, uris: Sequence[str] = (), wait: float = 0.0,
                   allow_tokenize_change: bool = False) -> AddResult:
        """Train the base if there is none, then apply every pending corpus (and ``uris``,
        whose relative paths resolve against the current folder, as on the command line)."""
        from incremental_w2v.train.add_corpus import add_corpus

        return add_corpus(self.config, tuple(uris), wait, allow_tokenize_change)

    def status(self) -> Status:
        """The current version and what a run would apply, skip or hold now."""
        from incremental_w2v.train.plan import status

        return status(self.config)

    def history(self) -> History:
        """Every version, oldest first, with its lineage."""
        from incremental_w2v.store.ops import history

        return history(self.config)

    def rollback(self, version: str, wait: float = 0.0,
                 exclude_rolled_back: bool = False) -> Moved:
        """Make another committed version current (older or newer); with
        ``exclude_rolled_back`` the corpora it takes out are excluded from the lineage."""
        from incremental_w2v.store.ops import rollback

        return rollback(self.config, version, wait, exclude_rolled_back)

    def exclude(self, targets: Sequence[str], reason: str = "", wait: float = 0.0
                ) -> Excluded:
        """Keep corpora (URIs, or every corpus a version applied) out of the lineage."""
        from incremental_w2v.store.ops import exclude

        return exclude(self.config, targets, reason, wait)

    def unexclude(self, targets: Sequence[str], wait: float = 0.0) -> Excluded:
        """Undo exclusions: later runs apply those corpora again."""
        from incremental_w2v.store.ops import unexclude

        return unexclude(self.config, targets, wait)

    def publish(self, wait: float = 0.0) -> Published:
        """Write the current version to the config's ``publish:`` targets now."""
        from incremental_w2v.store.ops import publish

        return publish(self.config, wait)

    def promote(self, version: str, wait: float = 0.0) -> Moved:
        """Make a candidate that failed a gate current anyway (a recorded override)."""
        from incremental_w2v.store.ops import promote

        return promote(self.config, version, wait)

    def reject(self, version: str, wait: float = 0.0) -> Rejected:
        """Drop a candidate: later runs skip the corpus it added."""
        from incremental_w2v.store.ops import reject

        return reject(self.config, version, wait)

    def prune(self, keep: int, wait: float = 0.0) -> Pruned:
        """Delete the arrays of all but the ``keep`` newest versions (never the current one);
        every version's lineage record stays."""
        from incremental_w2v.store.ops import prune

        return prune(self.config, keep, wait)

    def repair(self, wait: float = 0.0) -> Repaired:
        """Rebuild a missing or damaged manifest from the versions' ``meta.json``."""
        from incremental_w2v.store.ops import repair

        return repair(self.config, wait)

    def export(self, fmt: str, output: str | os.PathLike[str],
               version: str | None = None, force: bool = False) -> Exported:
        """Write a version's vectors (or full model) to ``output``, atomically; an existing
        file is replaced only with ``force``."""
        from incremental_w2v.store.ops import export

        return export(self.config, fmt, Path(output), version, force)

    def evaluate(self, version: str | None = None) -> Evaluation:
        """Score a version (default: current) on the configured evaluation sets."""
        from incremental_w2v.quality.compare import evaluate

        return evaluate(self.config, version)

    def compare(self, a: str, b: str) -> Comparison:
        """Scores, vocabulary change and drift from A to B (versions or vectors files)."""
        from incremental_w2v.quality.compare import compare

        return compare(self.config, a, b)

    def rebuild(self, wait: float = 0.0, seed: int | None = None) -> Rebuilt:
        """Retrain from scratch on every corpus of the current lineage, and compare."""
        from incremental_w2v.train.rebuild import rebuild

        return rebuild(self.config, wait, seed)

    def report(self, output: str | os.PathLike[str]) -> Reported:
        """Write one self-contained HTML page about the lineage's quality."""
        from incremental_w2v.quality.report import write_report

        return write_report(self.config, Path(output))


def align(source: str, target: str, output: str | os.PathLike[str],
          options: AlignOptions | None = None, fmt: str = "keyedvectors") -> AlignResult:
    """Map SOURCE's vectors into TARGET's space on anchor words; write them to ``output``."""
    from incremental_w2v.align.commands import align as run_align

    return run_align(source, target, Path(output), options, fmt)


def merge(source: str, target: str, output: str | os.PathLike[str],
          options: AlignOptions | None = None, prefer: str = "target",
          fmt: str = "keyedvectors") -> AlignResult:
    """Write the union of SOURCE's and TARGET's vocabularies in TARGET's space."""
    from incremental_w2v.align.commands import merge as run_merge

    return run_merge(source, target, Path(output), options, prefer, fmt)
