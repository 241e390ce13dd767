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
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any

from incremental_w2v.cli import render
from incremental_w2v.cli.exit_codes import (
    EX_CANTCREAT,
    EX_INTERRUPTED,
    EX_IOERR,
    EX_OK,
    EX_SOFTWARE,
    StdoutClosed,
    exit_code,
)
from incremental_w2v.cli.parser import VECTOR_COMMANDS, build_parser
from incremental_w2v.config.needs import missing_module
from incremental_w2v.config.schema import Config
from incremental_w2v.errors import GateFailedError, IncW2VError, OutputError
from incremental_w2v.fsutil import check_output_folder, os_error
from incremental_w2v.lineage import Lineage, align, init, merge
from incremental_w2v.uris import (
    MIN_SECRET_CHARS,
    environment_secrets,
    printable,
    scrub,
    secrets_of,
)

logger = logging.getLogger(__name__)


def _not_a_summary(record: logging.LogRecord) -> bool:
    # The summary goes to stdout; on stderr it would be said twice.
    return not getattr(record, "summary", False)


class Sanitizer(logging.Filter):
    """Every record the CLI's handlers write: names escaped, no secret left.

    The values a message is formatted with (names from configs, folders and
    archives; URIs; words) are escaped one by one with ``uris.printable``, so
    none can forge a log line; then every URL in the text is redacted and every
    known secret (of the config's URIs, and of the environment: a library such
    as botocore may log its endpoint or proxy with credentials at debug level)
    is masked. The records of libraries pass through it too.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_incw2v_clean", False):
            return True
        if record.args and not getattr(record, "summary", False):  # a summary is rendered
            if isinstance(record.args, dict):  # logging's "%(name)s" form
                record.args = {k: _escaped(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_escaped(a) for a in record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a library's malformed format: show it as it is
            message = f"{record.msg} {record.args}"
        # A traceback a library logs (botocore's retries, at debug level) is part of the
        # text: its exception names the URL it could not reach, user-info and all.
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.stack_info:
            message += "\n" + record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.msg, record.args = self.clean(message), None
        record._incw2v_clean = True  # the file handler sees the same record
        return True

    def clean(self, text: str) -> str:
        return render.safe(scrub(text, extra=self.secrets))


def _escaped(value: Any) -> Any:
    if isinstance(value, (str, PurePath)):
        return printable(str(value))
    return value


def secrets_to_hide(config: Config | None, uris: Sequence[str] = ()) -> list[str]:
    """What no output may show: the environment's secrets and those of every URI given."""
    given = list(uris)
    if config is not None:
        given += [e.uri for e in config.queue]
        given += [v for v in (config.base.corpus, config.sources.s3_endpoint_url) if v]
    found = set(environment_secrets())
    for uri in given:
        found.update(v for v in secrets_of(uri) if len(v) >= MIN_SECRET_CHARS)
    return sorted(found, key=len, reverse=True)


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
        # A log file is an output like any other: never inside a store (not even its own
        # store before that exists), whose files only incw2v writes.
        check_output_folder(config.log_path, avoid=() if config.store_is_remote
                            else (config.store_path,))
        file_handler = logging.FileHandler(config.log_path, encoding="utf-8")
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
        )
        handlers.append(file_handler)
    sanitizer = Sanitizer(secrets_to_hide(config, _given_uris(args)))
    for handler in handlers:
        handler._incw2v = True  # type: ignore[attr-defined]
        handler.setLevel(level)
        handler.addFilter(sanitizer)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("incremental_w2v").setLevel(level)
    # gensim narrates every epoch at INFO; keep its warnings.
    for noisy in ("gensim", "smart_open", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.WARNING)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    output = json.dumps(payload, indent=2, ensure_ascii=True) if getattr(args, "json", False) \
        else text
    try:
        print(output, flush=True)  # flushed here, so that a closed pipe is met here
    except BrokenPipeError:
        # The reader went away (| head). SIGPIPE stays ignored (Python's default: a
        # default SIGPIPE would kill a run writing to an S3 or HTTP socket); what is left
        # unwritten goes to /dev/null, so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise StdoutClosed("stdout was closed before all output was written") from None


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
        "repair": lambda: (lineage.repair(a.wait), render.repaired),
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
    if args.command not in READ_ONLY:  # logged first: the log file keeps it even if | head
        logger.info("%s", summary, extra={"summary": True})  # closes stdout
    # history's JSON is the list of versions, as it always was.
    _emit(args, payload["versions"] if args.command == "history" else payload, summary)
    return EX_OK


def _given_uris(args: argparse.Namespace) -> list[str]:
    return [*getattr(args, "uris", []), *(str(getattr(args, k)) for k in ("source", "target")
                                          if getattr(args, k, None))]


def _say(args: argparse.Namespace, text: str) -> None:
    """An error on stderr (with the traceback under --debug): escaped, and no secret in it."""
    root = logging.getLogger()
    sanitizer = next((f for h in root.handlers if getattr(h, "_incw2v", False)
                      for f in h.filters if isinstance(f, Sanitizer)), None)
    clean = sanitizer.clean if sanitizer is not None else Sanitizer(
        secrets_to_hide(None, _given_uris(args))).clean
    if args.debug:
        print(clean(traceback.format_exc()), file=sys.stderr)
    print(clean(text), file=sys.stderr)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so every clean-up on the way runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# A service manager stops with SIGTERM, a closed terminal sends SIGHUP: both stop the run
# as Ctrl-C does (the working files and staging folder are removed on the way out).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While open (on the main thread), SIGTERM and SIGHUP raise :class:`Stopped`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def stop(signum: int, frame: object) -> None:
        if fired:  # a second signal must not cut the clean-up of the first short
            return
        fired.append(signum)
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args, None)
    with stop_on_signals():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except Stopped as exc:
        name = signal.Signals(exc.signum).name
        print(f"incw2v: stopped by {name}; committed versions are intact and this run's "
              "working files were removed", file=sys.stderr)
        return 128 + exc.signum
    except StdoutClosed as exc:  # nothing to say: nobody reads it, and it is no failure
        return exit_code(exc)
    except IncW2VError as exc:
        _say(args, f"incw2v: error: {render.error(exc)}")
        return exit_code(exc)
    except ModuleNotFoundError as exc:  # every need is checked up front; this is the net
        _say(args, f"incw2v: error: {render.error(missing_module(exc))}")
        return exit_code(missing_module(exc))
    except KeyboardInterrupt:
        print("incw2v: interrupted; committed versions are intact", file=sys.stderr)
        return EX_INTERRUPTED
    except OSError as exc:  # one the library did not expect; still say what kind it is
        error = os_error(exc, f"running {args.command}")
        _say(args, f"incw2v: error: {error}")
        return EX_CANTCREAT if isinstance(error, OutputError) else EX_IOERR
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        _say(args, f"incw2v: internal error: {type(exc).__name__}: {printable(str(exc))}\n"
             "  hint: re-run with --debug for the traceback and report it")
        return EX_SOFTWARE


def entry_point() -> None:
    code = main()
    if "gensim" in sys.modules or "botocore" in sys.modules:
        # Tearing down gensim, scipy and a model takes about 0.2 s, botocore's client
        # about 0.14 s (a third of a no-op on S3), and nothing in it is output: run the
        # exit handlers, flush and close, then leave at once.
        atexit._run_exitfuncs()
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # e.g. a closed pipe or a full disk: as Python's own exit says
                code = code or 120
        os._exit(code)
    sys.exit(code)
