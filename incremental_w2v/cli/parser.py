"""The ``incw2v`` argument parser: every command, its options and their help.

Options that several commands share (``--json``, ``--wait``, ``--debug``,
``-q``) are declared once, as parent parsers.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from incremental_w2v import __version__
from incremental_w2v.align.verdict import describe_thresholds
from incremental_w2v.cli.exit_codes import EX_USAGE, epilog
from incremental_w2v.vectors.formats import EXPORT_FORMATS, VECTOR_FORMATS

# Commands over two sets of vectors: they take SOURCE and TARGET, not a CONFIG.
VECTOR_COMMANDS = ("align", "merge")

class _Formatter(argparse.HelpFormatter):
    """Descriptions and epilogs wrapped to the terminal line by line (argparse's default
    joins every line into one paragraph; RawDescriptionHelpFormatter wraps none). A line
    is a paragraph; an indented one (an entry of a list of formats) keeps its indent and
    wraps under its text."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if not line.strip():
                lines.append("")
                continue
            hanging = re.match(r"\s+\S+\s+", line) if line[:1].isspace() else None
            lead = line[:len(line) - len(line.lstrip())]
            lines.append(textwrap.fill(
                line.strip(), width, initial_indent=indent + lead,
                subsequent_indent=indent + " " * (hanging.end() if hanging else 0),
                break_on_hyphens=False))
        return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    """``--wait``: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds >= 0 (0 fails at once if the store is locked)")
    return value


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def _choices_help(choices: dict[str, str]) -> str:
    return "; ".join(f"{name}: {text}" for name, text in choices.items())


def _flag(parent: _Parser, *names: str, **kw: Any) -> _Parser:
    parent.add_argument(*names, **kw)
    return parent


def _formats_list(formats: dict[str, str]) -> str:
    """One line per format, for an epilog (the help of a choice option runs them together)."""
    return "formats:\n" + "\n".join(f"  {name:<16} {text}" for name, text in formats.items())


def _global_options(parser: _Parser, default: Any) -> None:
    # Given before the command (incw2v --debug status) or after it (incw2v status --debug):
    # the command's copy defaults to SUPPRESS so that it never resets the global one.
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="log warnings and errors only")


def _parents() -> dict[str, _Parser]:
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    return {
        "common": common,
        "json": _flag(_Parser(add_help=False), "--json", action="store_true",
                      help="print JSON for machines instead of text"),
        "wait": _flag(_Parser(add_help=False), "--wait", type=_seconds, default=0.0,
                      metavar="SECONDS",
                      help="wait up to SECONDS for another run's lock (default: fail at once "
                      "with exit code 75)"),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="incw2v", formatter_class=_Formatter,
        description="Keep gensim Word2Vec models current as new corpora arrive: "
        "versioned, crash-safe, measured.",
        epilog=epilog(),
    )
    parser.add_argument("--version", action="version", version=f"incw2v {__version__}",
                        help="print incw2v's version and exit")
    _global_options(parser, False)
    parents = _parents()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                help="what to do (incw2v COMMAND --help says more)")
    sub.required = True

    def command(name: str, help_text: str, *extra: str, epilog: str | None = None,
                config: bool = True) -> argparse.ArgumentParser:
        chosen: list[_Parser] = [parents["common"], *(parents[e] for e in extra)]
        p = sub.add_parser(name, help=help_text, description=help_text, parents=chosen,
                           epilog=epilog, formatter_class=_Formatter)
        if config:
            p.add_argument("config", metavar="CONFIG", type=Path, help="the YAML config file")
        return p

    p = command("init", "write a commented starter config (required keys marked) to CONFIG",
                "json", config=False)
    p.add_argument("config", metavar="CONFIG", type=Path, nargs="?", default=Path("config.yaml"),
                   help="where to write it (default: config.yaml in the current folder)")
    p.add_argument("--force", action="store_true", help="replace CONFIG if it exists")
    command("validate", "check the config, and that every module it needs is installed; "
            "print every problem at once", "json")
    p = command("add-corpus",
                "train the base if needed, then apply every pending corpus (one version each)",
                "json", "wait")
    p.add_argument("uris", metavar="URI", nargs="*",
                   help="extra corpora, applied after the queue and recorded like queued ones "
                   "(a relative path resolves against the current folder)")
    p.add_argument("--allow-tokenize-change", action="store_true",
                   help="accept tokenize settings that differ from the lineage's")
    command("status", "show the current version and the pending corpora", "json")
    command("history", "list every version with its lineage", "json")
    p = command("rollback",
                "make VERSION the current version: an older one (undo updates) or a newer one "
                "(redo after an earlier rollback). Corpora that VERSION has not applied become "
                "pending again, so the next add-corpus re-applies them unless they are "
                "excluded (--exclude-rolled-back, or the exclude command)", "json", "wait")
    p.add_argument("version", metavar="VERSION", help="e.g. v0002 (or v2, or 2)")
    p.add_argument("--exclude-rolled-back", action="store_true",
                   help="also exclude the corpora the rollback takes out of the lineage, so "
                   "that later runs do not re-apply them (undo with 'incw2v unexclude')")
    excl_help = ("corpora to exclude: a URI (a relative path resolves against the current "
                 "folder) or a version (every corpus that version applied)")
    p = command("exclude", "keep corpora out of the lineage: later runs skip them (recorded "
                "in the history; undo with 'incw2v unexclude')", "json", "wait")
    p.add_argument("targets", metavar="URI_OR_VERSION", nargs="+", help=excl_help)
    p.add_argument("--reason", default="", metavar="TEXT",
                   help="why, recorded with the exclusion (e.g. 'truncated dump')")
    p = command("unexclude", "undo an exclusion: later runs apply those corpora again",
                "json", "wait")
    p.add_argument("targets", metavar="URI_OR_VERSION", nargs="+",
                   help="excluded corpora: a URI, or the version whose corpora were excluded")
    p = command("export", "write a version's vectors or model for use elsewhere", "json",
                epilog=_formats_list(EXPORT_FORMATS))
    p.add_argument("--format", required=True, metavar="FORMAT", choices=list(EXPORT_FORMATS),
                   help="one of " + ", ".join(EXPORT_FORMATS) + " (each explained below)")
    p.add_argument("--output", required=True, type=Path, metavar="PATH",
                   help="the file to write (side files go beside it); a relative path "
                   "resolves against the current folder")
    p.add_argument("--version", dest="version_name", metavar="VERSION",
                   help="the version to export (default: the current version)")
    p.add_argument("--force", action="store_true",
                   help="replace PATH (and its side files) if it exists")
    p = command("prune", "delete the arrays of old versions, keeping the newest N, the "
                "current one, the last rebuild, candidates awaiting review, and any a reader "
                "holds open; every version's lineage record stays in the history", "json",
                "wait")
    p.add_argument("--keep", type=int, required=True, metavar="N",
                   help="how many of the newest versions to keep whole")
    command("publish", "write the current version to the config's publish: targets now (add-"
            "corpus, rollback, promote and rebuild do it after every change)", "json", "wait")
    command("repair", "rebuild a missing or damaged manifest from the versions' meta.json "
            "(an intact manifest is left alone)", "json", "wait")
    p = command("evaluate", "score a version on the configured evaluation sets (read-only)",
                "json")
    p.add_argument("--version", dest="version_name", metavar="VERSION",
                   help="default: the current version")
    p = command("compare", "scores, vocabulary change and drift from A to B", "json")
    p.add_argument("a", metavar="A", help="a version (v0002) or a model/vectors file")
    p.add_argument("b", metavar="B", help="a version (v0003) or a model/vectors file")
    p = command("promote", "make a candidate that failed a gate current (a recorded override)",
                "json", "wait")
    p.add_argument("version", metavar="VERSION", help="the candidate, e.g. v0004")
    p = command("reject", "drop a candidate: later runs skip the corpus it added", "json",
                "wait")
    p.add_argument("version", metavar="VERSION", help="the candidate, e.g. v0004")
    command("rebuild", "retrain from scratch on every corpus of the current lineage and "
            "compare with the version it replaces", "json", "wait")
    p = command("report", "write one self-contained HTML page with the lineage's quality",
                "json")
    p.add_argument("--output", required=True, type=Path, metavar="PATH",
                   help="the HTML file to write (replaced if it exists)")
    _vector_commands(sub, parents)
    return parser


def _band(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FROM:TO (e.g. 0:10000)") from None
    return lo, hi


def _vector_commands(sub: Any, parents: dict[str, _Parser]) -> None:
    vectors_help = ("a full gensim model, a KeyedVectors file, a word2vec text/binary file, "
                    "or CONFIG@VERSION (a version of a store)")
    texts = {
        "align": "map SOURCE's vectors into TARGET's space on anchor words and write them, "
                 "with diagnostics of how well the map holds",
        "merge": "write the union of SOURCE's and TARGET's vocabularies in TARGET's space "
                 "(SOURCE-only words mapped), with the same diagnostics",
    }
    for name, help_text in texts.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           parents=[parents["common"], parents["json"]],
                           formatter_class=_Formatter,
                           epilog=f"Verdict on the held-out anchors: {describe_thresholds()}. "
                           "Details: docs/alignment.md.\n\n" + _formats_list(VECTOR_FORMATS))
        p.add_argument("source", metavar="SOURCE", help=vectors_help)
        p.add_argument("target", metavar="TARGET", help=vectors_help)
        p.add_argument("--output", required=True, type=Path, metavar="PATH",
                       help="where to write; diagnostics go to PATH.meta.json")
        p.add_argument("--format", default="keyedvectors", choices=list(VECTOR_FORMATS),
                       metavar="FORMAT", help="one of " + ", ".join(VECTOR_FORMATS)
                       + " (default: keyedvectors; each explained below)")
        if name == "merge":
            p.add_argument("--prefer", choices=["target", "average"], default="target",
                           help="shared words: TARGET's vector (default) or the count-weighted "
                           "average of TARGET's and the mapped SOURCE vector")
        p.add_argument("--method", choices=["procrustes", "lstsq"], default="procrustes",
                       help="orthogonal Procrustes (default, keeps cosines) or the unconstrained "
                       "least squares of gensim's TranslationMatrix (distorts cosines)")
        p.add_argument("--anchors", type=Path, metavar="FILE",
                       help="pairs 'source_word target_word', one per line, instead of the "
                       "shared words")
        p.add_argument("--anchor-band", type=_band, metavar="FROM:TO",
                       help="shared words ranked by frequency (counts when known, else file "
                       "order; the rarer side counts) used as anchors (default 0:10000)")
        p.add_argument("--anchor-min-count", type=_bounded_int(1, 2**62), metavar="N",
                       help="anchors must occur at least N times in both models (needs counts)")
        p.add_argument("--holdout", type=float, default=0.1, metavar="FRACTION",
                       help="fraction of anchors never used for fitting, to measure the map "
                       "(default 0.1)")
        p.add_argument("--center", action="store_true",
                       help="mean-centre the anchor vectors before fitting")
        p.add_argument("--refine", type=_bounded_int(0, 100), default=0, metavar="N",
                       help="re-fit N times on CSLS mutual nearest neighbours (as in MUSE)")
        p.add_argument("--seed", type=_bounded_int(0, 2**32 - 1), default=1,
                       help="seed of the held-out split")
