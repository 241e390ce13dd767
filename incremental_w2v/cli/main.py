"""``incw2v``: parse the arguments, make one library call, print, map errors to exit codes.

Nothing here does work of its own: every command is one call of the public
facade (``incremental_w2v.lineage``), rendered by ``render`` as text or
printed as JSON; ``exit_codes.EXIT_CODES`` is the one table from exceptions
to exit codes.
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
from typing import Any

from incremental_w2v.cli import render
from incremental_w2v.cli.exit_codes import (
    EX_CANTCREAT,
    EX_INTERRUPTED,
    EX_IOERR,
    EX_OK,
    EX_SOFTWARE,
    exit_code,
)
from incremental_w2v.cli.parser import VECTOR_COMMANDS, build_parser
from incremental_w2v.config.needs import missing_module
from incremental_w2v.config.schema import Config
from incremental_w2v.errors import GateFailedError, IncW2VError, OutputError
from incremental_w2v.fsutil import os_error
from incremental_w2v.lineage import Lineage, align, init, merge

logger = logging.getLogger(__name__)


def _not_a_summary(record: logging.LogRecord) -> bool:
    # The summary goes to stdout; on stderr it would be said twice.
    return not getattr(record, "summary", False)


def setup_logging(args: argparse.Namespace, config: Config | None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_incw2v", False):
            root.removeHandler(handler)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter("incw2v: %(message)s"))
    handlers[0].addFilter(_not_a_summary)
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


def _vectors_command(args: argparse.Namespace) -> int:
    from incremental_w2v.align.mapping import AlignOptions

    options = AlignOptions(
        method=args.method, anchors_file=args.anchors, band=args.anchor_band,
        min_count=args.anchor_min_count, holdout=args.holdout, center=args.center,
        refine=args.refine, seed=args.seed,
    )
    if args.command == "align":
        result = align(args.source, args.target, args.output, options, args.format)
    else:
        result = merge(args.source, args.target, args.output, options, args.prefer, args.format)
    _emit(args, result.to_dict(), render.align_summary(result))
    return EX_OK


def _commands(args: argparse.Namespace, lineage: Lineage) -> dict[str, Callable[[], Any]]:
    """Each command: one call of the facade, and how its result reads as text."""
    a = args
    return {
        "validate": lambda: (lineage.validate(), render.validated),
        "exclude": lambda: (lineage.exclude(a.targets, a.reason, a.wait), render.excluded),
        "unexclude": lambda: (lineage.unexclude(a.targets, a.wait), render.unexcluded),
        "publish": lambda: (lineage.publish(a.wait), render.published),
        "add-corpus": lambda: (
            lineage.add_corpus(a.uris, a.wait, a.allow_tokenize_change), render.added),
        "status": lambda: (lineage.status(), render.status),
        "history": lambda: (lineage.history(), render.history),
        "rollback": lambda: (
            lineage.rollback(a.version, a.wait, a.exclude_rolled_back), render.rolled_back),
        "export": lambda: (
            lineage.export(a.format, a.output, a.version_name, a.force), render.exported),
        "prune": lambda: (lineage.prune(a.keep, a.wait), render.pruned),
        "evaluate": lambda: (lineage.evaluate(a.version_name), render.evaluated),
        "compare": lambda: (lineage.compare(a.a, a.b), render.compared),
        "promote": lambda: (lineage.promote(a.version, a.wait), render.promoted),
        "reject": lambda: (lineage.reject(a.version, a.wait), render.rejected),
        "rebuild": lambda: (lineage.rebuild(a.wait), render.rebuilt),
        "report": lambda: (lineage.report(a.output), render.reported),
    }


# Commands whose output is only for the reader: the log file keeps what changed.
READ_ONLY = ("validate", "status", "history", "evaluate", "compare")


def _run(args: argparse.Namespace) -> int:
    if args.command in VECTOR_COMMANDS:
        return _vectors_command(args)
    if args.command == "init":
        written = init(args.config, args.force)
        _emit(args, written.to_dict(), render.initialised(written))
        return EX_OK
    lineage = Lineage(args.config)
    setup_logging(args, lineage.config)
    try:
        result, text = _commands(args, lineage)[args.command]()
    except GateFailedError as exc:
        partial = getattr(exc, "result", None)
        if partial is not None and getattr(args, "json", False):
            _emit(args, partial.to_dict(), "")
        raise
    payload = result.to_dict()
    summary = text(result)
    # history's JSON is the list of versions, as it always was.
    _emit(args, payload["versions"] if args.command == "history" else payload, summary)
    if args.command not in READ_ONLY:
        logger.info("%s", summary, extra={"summary": True})  # for the log file
    return EX_OK


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
        return exit_code(exc)
    except ModuleNotFoundError as exc:  # every need is checked up front; this is the net
        if args.debug:
            traceback.print_exc()
        print(f"incw2v: error: {missing_module(exc)}", file=sys.stderr)
        return exit_code(missing_module(exc))
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
