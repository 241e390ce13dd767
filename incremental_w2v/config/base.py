"""The one strict base of every schema: an unknown key is an error, never ignored.

Config sections are frozen once validated; store records (the manifest) are
rewritten in place by the commands that steer a lineage, so they are not.

Every config section also refuses what would validate and then crash later:
a boolean where a number is expected (``vector_size: true`` is not 1), a
float that is not finite (gensim's C code segfaults or raises SIGFPE on
``alpha: .inf`` or ``ns_exponent: .nan``), and a string that cannot become a
path or JSON (a NUL character, or an unpaired surrogate that no UTF-8 file
can hold). Ranges that gensim needs are stated on each field.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

# Integers the C code holds in 32 bits (gensim's windows, seeds, counts in a batch).
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1


def _admits_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    if origin in (Union, types.UnionType, typing.Annotated) or origin is None:
        return any(_admits_bool(a) for a in get_args(annotation))
    return False


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be written to a path, a log or a JSON file, or None."""
    if "\x00" in value:
        return "contains a NUL character, which no file name or file can hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        return (f"contains U+{ord(bad):04X}, an unpaired surrogate that is not valid Unicode "
                "(check the escapes in the YAML)")
    return None


def _strings_of(value: Any, mapping: bool) -> list[str]:
    """The strings directly in ``value``; a nested section (a dict) checks its own."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, dict) and mapping:
        return [v for item in value.items() for v in item if isinstance(v, str)]
    return []


class Strict(BaseModel):
    """A config section: unknown keys are refused, values are frozen, numbers are numbers."""

    # strict: no bool for a number, no "5" for 5; allow_inf_nan: every float is finite.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="wrap")
    @classmethod
    def _plain_values(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        mine = _value_problems(cls, data)
        if not mine:
            return handler(data)
        # Report these together with everything else wrong in the section (once per key).
        theirs: list[InitErrorDetails] = []
        try:
            handler(data)
        except ValidationError as exc:
            taken = {tuple(p["loc"]) for p in mine}
            for err in exc.errors(include_url=False):
                if tuple(err["loc"][:1]) not in taken:
                    # Re-raised as they read (a nested section's own types are custom ones).
                    theirs.append(InitErrorDetails(
                        type=PydanticCustomError(err["type"], err["msg"]), loc=err["loc"],
                        input=err["input"]))
        raise ValidationError.from_exception_data(cls.__name__, [*mine, *theirs])


def _value_problems(cls: type[BaseModel], data: Any) -> list[InitErrorDetails]:
    """Booleans given for numbers, and strings no path or JSON file can hold, in ``data``."""
    if not isinstance(data, dict):
        return []
    found: list[InitErrorDetails] = []
    for key, value in data.items():
        field = cls.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            continue  # an unknown key: pydantic says so
        # Literal[0, 1] takes True even in strict mode (True == 1): refuse it here.
        if isinstance(value, bool) and not _admits_bool(field.annotation):
            found.append(InitErrorDetails(
                type=PydanticCustomError("bool_not_number",
                                         "a boolean (true/false) is not a number here"),
                loc=(key,), input=value))
            continue
        for text in _strings_of(value, mapping=get_origin(field.annotation) is dict):
            problem = text_problem(text)
            if problem:
                shown = repr(text[:60]).encode("ascii", "backslashreplace").decode("ascii")
                found.append(InitErrorDetails(
                    type=PydanticCustomError("invalid_text", "{text} {problem}",
                                             {"text": shown, "problem": problem}),
                    loc=(key,), input=text))
                break
    return found


class StrictRecord(BaseModel):
    """A record the store writes and rewrites: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")
