"""Exceptions of incw2v.

Every error the library raises on purpose is an :class:`IncW2VError` with a
message that says what went wrong and a ``hint`` that says what to do next.
The CLI maps each class to one exit code (see ``cli.EXIT_CODES``); library
code never exits.
"""

from __future__ import annotations


class IncW2VError(Exception):
    """Base class: an expected failure with an actionable message."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(IncW2VError):
    """The command was called wrongly (bad argument, unknown version)."""


class ConfigError(IncW2VError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None):
        self.headline = message  # without the problems
        self.problems = problems or []
        full = message if not self.problems else message + "\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )
        super().__init__(full, hint)


class DataError(IncW2VError):
    """Input data is malformed: truncated, mis-encoded, binary, changed since applied."""


class InputMissingError(IncW2VError):
    """An input (corpus, model file, version) does not exist."""


class OutputError(IncW2VError):
    """Output cannot be created (no space, read-only location)."""


class StoreIOError(IncW2VError):
    """An I/O error while reading or writing the store or a remote source."""


class LockedError(IncW2VError):
    """Another run holds the store's lock."""


class GateFailedError(IncW2VError):
    """A quality gate refused to promote a new version (it is kept as a candidate)."""


class TrainingError(IncW2VError):
    """Training itself failed (a training thread raised): a bug or a value no check caught."""
