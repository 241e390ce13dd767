"""The one table from exceptions to exit codes (BSD sysexits, so cron can tell cases apart)."""

from __future__ import annotations

from incremental_w2v.errors import (
    ConfigError,
    DataError,
    GateFailedError,
    IncW2VError,
    InputMissingError,
    LockedError,
    OutputError,
    StoreIOError,
    TrainingError,
    UsageError,
)

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
EX_HANGUP = 129  # 128 + SIGHUP: stopped cleanly
EX_INTERRUPTED = 130
EX_PIPE = 141  # 128 + SIGPIPE, as a shell reports a tool whose reader went away
EX_TERMINATED = 143  # 128 + SIGTERM: stopped cleanly


class StdoutClosed(IncW2VError):
    """The reader of stdout went away (``incw2v history | head -1``): the CLI stops quietly,
    as Unix tools do. Only the CLI's own output raises it; a broken pipe anywhere else
    (a socket to S3, say) is an I/O error like any other."""

EXIT_CODES: dict[type[IncW2VError], int] = {
    UsageError: EX_USAGE,
    DataError: EX_DATAERR,
    InputMissingError: EX_NOINPUT,
    OutputError: EX_CANTCREAT,
    StoreIOError: EX_IOERR,
    LockedError: EX_TEMPFAIL,
    ConfigError: EX_CONFIG,
    GateFailedError: EX_GATE,
    TrainingError: EX_SOFTWARE,
    StdoutClosed: EX_PIPE,
}

MEANINGS: dict[int, str] = {
    EX_OK: "done or nothing to do",
    EX_GATE: "a quality gate kept the new version as a candidate",
    EX_USAGE: "usage",
    EX_DATAERR: "bad input data",
    EX_NOINPUT: "input missing",
    EX_SOFTWARE: "internal error",
    EX_CANTCREAT: "cannot create output",
    EX_IOERR: "I/O error",
    EX_TEMPFAIL: "another run holds the lock",
    EX_CONFIG: "configuration error",
    EX_HANGUP: "stopped by SIGHUP",
    EX_INTERRUPTED: "interrupted",
    EX_PIPE: "stdout closed by its reader (e.g. | head)",
    EX_TERMINATED: "stopped by SIGTERM",
}


def exit_code(exc: IncW2VError) -> int:
    """The code of ``exc``'s class, or of the nearest class it derives from."""
    code = EXIT_CODES.get(type(exc))
    if code is not None:
        return code
    return next((c for cls, c in EXIT_CODES.items() if isinstance(exc, cls)), EX_SOFTWARE)


def epilog() -> str:
    return "Exit codes: " + ", ".join(f"{code} {text}" for code, text in MEANINGS.items()) + "."
