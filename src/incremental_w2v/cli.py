"""The ``incw2v`` command line: parse arguments, call one library function, map errors.

Nothing here does work of its own; every command is one call into the
library, and ``EXIT_CODES`` is the one table from exceptions to exit codes.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .config import Config, load_config
from .errors import (
    ConfigError,
    DataError,
    GateFailedError,
    IncW2VError,
    InputMissingError,
    LockedError,
    OutputError,
    StoreIOError,
    UsageError,
)
from .fsutil import os_error

# BSD sysexits, so cron wrappers and monitoring can tell cases apart.
EX_OK = 0
EX_GATE = 3  # a quality gate kept the new version as a candidate
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_CONFIG = 78
EX_INTERRUPTED = 130

EXIT_CODES: dict[type[IncW2VError], int] = {
    UsageError: EX_USAGE,
    DataError: EX_DATAERR,
    InputMissingError: EX_NOINPUT,
    OutputError: EX_CANTCREAT,
    StoreIOError: EX_IOERR,
    LockedError: EX_TEMPFAIL,
    ConfigError: EX_CONFIG,
    GateFailedError: EX_GATE,
}

logger = logging.getLogger("incremental_w2v")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="incw2v",
        description="Keep gensim Word2Vec models current as new corpora arrive: "
        "versioned, crash-safe, measured.",
        epilog="Exit codes: 0 done or nothing to do, 3 quality gate kept the version as a "
        "candidate, 64 usage, 65 bad input data, 66 input missing, 73 cannot create output, "
        "74 I/O error, 75 another run holds the lock, 78 configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"incw2v {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    common.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str, json_flag: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.add_argument("config", metavar="CONFIG", type=Path, help="the YAML config file")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON for machines")
        return p

    command("validate", "check the config and print every problem at once")
    p = command(
        "add-corpus",
        "train the base if needed, then apply every pending corpus (one version each)",
        json_flag=True,
    )
    p.add_argument(
        "uris", metavar="URI", nargs="*",
        help="extra corpora, applied after the queue and recorded like queued ones",
    )
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to SECONDS for another run's lock (default: fail at once)")
    p.add_argument("--allow-tokenize-change", action="store_true",
                   help="accept tokenize settings that differ from the lineage's")
    command("status", "show the current version and the pending corpora", json_flag=True)
    command("history", "list every version with its lineage", json_flag=True)
    p = command("rollback", "make an older committed version current")
    p.add_argument("version", metavar="VERSION", help="e.g. v0002 (or v2, or 2)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    p = command("export", "write a version's vectors or model for use elsewhere")
    p.add_argument("--format", required=True,
                   choices=["word2vec-text", "word2vec-binary", "keyedvectors", "model"])
    p.add_argument("--output", required=True, type=Path, metavar="PATH")
    p.add_argument("--version", dest="version_name", metavar="VERSION",
                   help="default: the current version")
    p = command("prune", "delete old versions, keeping the newest N, the current one, and any "
                "a reader (export, evaluate) holds open")
    p.add_argument("--keep", type=int, required=True, metavar="N")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    _quality_commands(command)
    _add_vector_commands(sub, common)
    return parser


def _quality_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("evaluate", "score a version on the configured evaluation sets (read-only)",
                json_flag=True)
    p.add_argument("--version", dest="version_name", metavar="VERSION",
                   help="default: the current version")
    p = command("compare", "scores, vocabulary change and drift from A to B", json_flag=True)
    p.add_argument("a", metavar="A", help="a version (v0002) or a model/vectors file")
    p.add_argument("b", metavar="B", help="a version (v0003) or a model/vectors file")
    p = command("promote", "make a candidate that failed a gate current (a recorded override)")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    p = command("reject", "drop a candidate: later runs skip the corpus it added")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    p = command("rebuild", "retrain from scratch on every corpus of the current lineage and "
                "compare with the version it replaces", json_flag=True)
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    p = command("report", "write one self-contained HTML page with the lineage's quality")
    p.add_argument("--output", required=True, type=Path, metavar="PATH")



# Commands over two sets of vectors: they take SOURCE and TARGET, not a CONFIG.
VECTOR_COMMANDS = ("align", "merge")


def _band(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FROM:TO (e.g. 0:10000)") from None
    return lo, hi


def _add_vector_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    from .align_verdict import describe_thresholds

    vectors_help = ("a full gensim model, a KeyedVectors file, a word2vec text/binary file, "
                    "or CONFIG@VERSION (a version of a store)")
    texts = {
        "align": "map SOURCE's vectors into TARGET's space on anchor words and write them, "
                 "with diagnostics of how well the map holds",
        "merge": "write the union of SOURCE's and TARGET's vocabularies in TARGET's space "
                 "(SOURCE-only words mapped), with the same diagnostics",
    }
    for name, help_text in texts.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common],
                           epilog=f"Verdict on the held-out anchors: {describe_thresholds()}. "
                           "Details: docs/alignment.md.")
        p.add_argument("source", metavar="SOURCE", help=vectors_help)
        p.add_argument("target", metavar="TARGET", help=vectors_help)
        p.add_argument("--output", required=True, type=Path, metavar="PATH",
                       help="where to write; diagnostics go to PATH.meta.json")
        p.add_argument("--format", default="keyedvectors",
                       choices=["keyedvectors", "word2vec-text", "word2vec-binary"],
                       help="default: keyedvectors")
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
        p.add_argument("--anchor-min-count", type=int, metavar="N",
                       help="anchors must occur at least N times in both models (needs counts)")
        p.add_argument("--holdout", type=float, default=0.1, metavar="FRACTION",
                       help="fraction of anchors never used for fitting, to measure the map "
                       "(default 0.1)")
        p.add_argument("--center", action="store_true",
                       help="mean-centre the anchor vectors before fitting")
        p.add_argument("--refine", type=int, default=0, metavar="N",
                       help="re-fit N times on CSLS mutual nearest neighbours (as in MUSE)")
        p.add_argument("--seed", type=int, default=1, help="seed of the held-out split")
        p.add_argument("--json", action="store_true", help="print JSON for machines")


def _run_vectors(args: argparse.Namespace) -> int:
    from .alignment import AlignOptions, align, merge

    options = AlignOptions(
        method=args.method, anchors_file=args.anchors, band=args.anchor_band,
        min_count=args.anchor_min_count, holdout=args.holdout, center=args.center,
        refine=args.refine, seed=args.seed,
    )
    if args.command == "align":
        result = align(args.source, args.target, args.output, options, args.format)
    else:
        result = merge(args.source, args.target, args.output, options, args.prefer, args.format)
    _emit(args, result.to_dict(), result.summary())
    return EX_OK


def setup_logging(args: argparse.Namespace, config: Config | None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_incw2v", False):
            root.removeHandler(handler)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter("incw2v: %(message)s"))
    if config is not None and config.log_path is not None:
        file_handler = logging.FileHandler(config.log_path, encoding="utf-8")
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
        )
        handlers.append(file_handler)
    for handler in handlers:
        handler._incw2v = True  # type: ignore[attr-defined]
        handler.setLevel(level)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("incremental_w2v").setLevel(level)
    # gensim narrates every epoch at INFO; keep its warnings.
    for noisy in ("gensim", "smart_open", "botocore", "boto3", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.WARNING)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, ensure_ascii=True))
    else:
        print(text)


def _run(args: argparse.Namespace) -> int:
    from . import lineage
    from .add_corpus import add_corpus

    if args.command in VECTOR_COMMANDS:
        return _run_vectors(args)
    config = load_config(args.config)
    setup_logging(args, config)
    handlers: dict[str, Callable[[], int]] = {}

    def validate() -> int:
        print(f"{args.config}: OK (store {config.store_path}, {len(config.queue)} queue entries)")
        return EX_OK

    def add() -> int:
        try:
            result = add_corpus(config, tuple(args.uris), args.wait, args.allow_tokenize_change)
        except GateFailedError as exc:
            if getattr(exc, "result", None) is not None and args.json:
                _emit(args, exc.result.to_dict(), "")  # type: ignore[attr-defined]
            raise
        _emit(args, result.to_dict(), result.summary())
        return EX_OK

    def status() -> int:
        info = lineage.status(config)
        pending = ", ".join(p["name"] for p in info["pending"]) or "none"
        held = ", ".join(info.get("candidates", []))
        _emit(args, info, f"current: {info['current'] or 'none'} "
              f"(vocabulary {info['vocab_size']}, {info['versions']} versions); pending: {pending}"
              + (f"; candidates awaiting review: {held}" if held else ""))
        return EX_OK

    def what(row: dict[str, Any]) -> str:
        if row["added"]:
            return "+" + ", ".join(row["added"])
        # A rebuild adds no corpus: it retrains on all of its parent's.
        return f"all {len(row['corpora'])} corpora of {row['parent']}" if row["parent"] else ""

    def history() -> int:
        rows = lineage.history(config)
        lines = [
            f"{'*' if r['current'] else ' '} {r['version']}  {r['created_at']}  {r['kind']:<7} "
            f"{r['status']:<9} vocab {r['vocab_size']:>8}  {what(r)}"
            + "".join(f"  [{e['action']} {e['at']}]" for e in r.get("events", [])
                      if e["action"] in ("promote", "reject"))
            for r in rows
        ]
        _emit(args, rows, "\n".join(lines) or "no versions yet")
        return EX_OK

    def rollback() -> int:
        info = lineage.rollback(config, args.version, args.wait)
        print(f"current version is now {info['current']} (was {info['previous']})")
        return EX_OK

    def export() -> int:
        info = lineage.export(config, args.format, args.output, args.version_name)
        print(f"exported {info['version']} as {info['format']}: {', '.join(info['files'])}")
        return EX_OK

    def prune() -> int:
        info = lineage.prune(config, args.keep, args.wait)
        deleted = ", ".join(info["deleted"]) or "nothing"
        held = f" ({', '.join(info['held'])} held open by a reader)" if info["held"] else ""
        print(f"deleted {deleted}; kept {', '.join(info['kept'])}{held}")
        return EX_OK

    handlers.update({
        "validate": validate, "add-corpus": add, "status": status, "history": history,
        "rollback": rollback, "export": export, "prune": prune,
    })
    handlers.update(_quality_handlers(args, config))
    return handlers[args.command]()


def _quality_handlers(args: argparse.Namespace, config: Config) -> dict[str, Callable[[], int]]:
    from . import quality

    def evaluate() -> int:
        from .evaluation import format_scores

        info = quality.evaluate(config, args.version_name)
        _emit(args, info, "\n".join([f"{info['version']} (vocabulary {info['vocab_size']})",
                                     *format_scores(info["scores"])]))
        return EX_OK

    def compare() -> int:
        info = quality.compare(config, args.a, args.b)
        _emit(args, info, quality.format_compare(info))
        return EX_OK

    def promote() -> int:
        info = quality.promote(config, args.version, args.wait)
        print(f"current version is now {info['version']} (was {info['previous']}); "
              f"override recorded in the lineage")
        return EX_OK

    def reject() -> int:
        info = quality.reject(config, args.version, args.wait)
        print(f"rejected {info['version']}; later runs skip "
              f"{', '.join(info['skipped_from_now_on']) or 'nothing'}")
        return EX_OK

    def rebuild() -> int:
        from .rebuild import rebuild as run_rebuild

        info = run_rebuild(config, args.wait)
        _emit(args, info, quality.format_rebuild(info))
        return EX_OK

    def report() -> int:
        from .report import write_report

        info = write_report(config, args.output)
        print(f"wrote {info['output']} ({info['versions']} versions, {info['plots']} plots)")
        return EX_OK

    return {"evaluate": evaluate, "compare": compare, "promote": promote, "reject": reject,
            "rebuild": rebuild, "report": report}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args, None)
    try:
        return _run(args)
    except IncW2VError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"incw2v: error: {exc}", file=sys.stderr)
        return EXIT_CODES.get(type(exc), next(
            (code for cls, code in EXIT_CODES.items() if isinstance(exc, cls)), EX_SOFTWARE
        ))
    except KeyboardInterrupt:
        print("incw2v: interrupted; committed versions are intact", file=sys.stderr)
        return EX_INTERRUPTED
    except OSError as exc:  # one the library did not expect; still say what kind it is
        if args.debug:
            traceback.print_exc()
        error = os_error(exc, f"running {args.command}")
        print(f"incw2v: error: {error}", file=sys.stderr)
        return EX_CANTCREAT if isinstance(error, OutputError) else EX_IOERR
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if args.debug:
            traceback.print_exc()
        print(
            f"incw2v: internal error: {type(exc).__name__}: {exc}\n"
            "  hint: re-run with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return EX_SOFTWARE


def entry_point() -> None:
    code = main()
    if "gensim" in sys.modules:
        # Tearing down gensim, scipy and a model takes about 0.2 s, and nothing in it
        # is output: run the exit handlers, flush and close, then leave at once.
        atexit._run_exitfuncs()
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # e.g. a closed pipe or a full disk: as Python's own exit says
                code = code or 120
        os._exit(code)
    sys.exit(code)
