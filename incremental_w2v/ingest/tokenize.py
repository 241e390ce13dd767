"""Turning text into tokens, as the config's ``tokenize`` section says.

The settings used are recorded in every version's lineage: mixing
tokenisations in one lineage silently splits the vocabulary (``Don't`` vs
``don``/``t``), so changing them is refused unless the user says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from incremental_w2v.config.base import Strict

Tokenizer = Callable[[str], list[str]]


class TokenizeSettings(Strict):
    """The ``tokenize`` section of a config (or of one queue entry)."""


    mode: Literal["simple", "whitespace", "regex"] = "simple"
    pattern: str | None = Field(
        default=None,
        description="regular expression matching one token (mode: regex); a match that "
        "contains whitespace is split there",
    )
    lowercase: bool = True
    deaccent: bool = False
    min_len: int = Field(default=2, ge=1)
    max_len: int = Field(default=15, ge=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TokenizeSettings:
        if self.mode == "regex" and not self.pattern:
            raise ValueError("mode 'regex' needs a 'pattern'")
        if self.mode != "regex" and self.pattern is not None:
            raise ValueError("'pattern' is only used with mode 'regex'")
        if self.max_len < self.min_len:
            raise ValueError("max_len must be at least min_len")
        return self


# gensim's PAT_ALPHABETIC, ``(((?![\d])\w)+)``, as one character class: "a word
# character that is not a digit" is the same set, and a class is matched about
# three times faster than a lookahead per character (tests/test_tokenizers.py
# checks the two agree on every code point and that ``simple`` equals
# simple_preprocess).
ALPHABETIC = re.compile(r"[^\W\d]+")


def _deaccent() -> Callable[[str], str]:
    # Imported only when asked for: the pass must not pay for importing gensim.
    from gensim.utils import deaccent

    return deaccent  # type: ignore[no-any-return]


def make_tokenizer(settings: TokenizeSettings) -> Tokenizer:
    """A picklable-by-settings function from text to tokens."""
    lo, hi = settings.min_len, settings.max_len
    deaccent = _deaccent() if settings.deaccent else None
    findall = ALPHABETIC.findall

    if settings.mode == "simple":
        # gensim's simple_preprocess (lower-case, then deaccent, then the alphabetic runs
        # between min_len and max_len that do not start with "_"), token for token.
        lowercase = settings.lowercase

        def simple(text: str) -> list[str]:
            if lowercase:
                text = text.lower()
            if deaccent is not None:
                text = deaccent(text)
            return [t for t in findall(text) if lo <= len(t) <= hi and t[0] != "_"]

        return simple

    if settings.mode == "whitespace":
        # Already-tokenised text: the fastest path, so only do work that was asked for.
        plain = not settings.lowercase and not settings.deaccent
        if plain and lo <= 1 and hi >= 10_000:
            return str.split

        def whitespace(text: str) -> list[str]:
            if settings.lowercase:
                text = text.lower()
            if deaccent is not None:
                text = deaccent(text)
            return [t for t in text.split() if lo <= len(t) <= hi]

        return whitespace

    compiled = re.compile(settings.pattern or "")

    def regex(text: str) -> list[str]:
        if settings.lowercase:
            text = text.lower()
        if deaccent is not None:
            text = deaccent(text)
        # The whole match is the token (groups in the pattern do not change that), and a
        # match that spans whitespace is split: tokens go to a whitespace-separated file.
        return [
            token
            for match in compiled.finditer(text)
            for token in match.group(0).split()
            if lo <= len(token) <= hi
        ]

    return regex
