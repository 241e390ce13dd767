"""Turning text into tokens, as the config's ``tokenize`` section says.

The settings used are recorded in every version's lineage: mixing
tokenisations in one lineage silently splits the vocabulary (``Don't`` vs
``don``/``t``), so changing them is refused unless the user says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Tokenizer = Callable[[str], list[str]]


class TokenizeSettings(BaseModel):
    """The ``tokenize`` section of a config (or of one queue entry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def make_tokenizer(settings: TokenizeSettings) -> Tokenizer:
    """A picklable-by-settings function from text to tokens."""
    # Imported here: config loading (and a no-op run) must not pay for importing gensim.
    from gensim.utils import deaccent as gensim_deaccent
    from gensim.utils import simple_preprocess

    lo, hi = settings.min_len, settings.max_len

    if settings.mode == "simple":
        # simple_preprocess always lower-cases; keep its exact behaviour as the default.
        if settings.lowercase:
            def simple(text: str) -> list[str]:
                tokens: list[str] = simple_preprocess(
                    text, deacc=settings.deaccent, min_len=lo, max_len=hi
                )
                return tokens

            return simple
        from gensim.utils import tokenize as gensim_tokenize

        def simple_cased(text: str) -> list[str]:
            return [
                t for t in gensim_tokenize(text, lower=False, deacc=settings.deaccent)
                if lo <= len(t) <= hi and not t.startswith("_")
            ]

        return simple_cased

    if settings.mode == "whitespace":
        # Already-tokenised text: the fastest path, so only do work that was asked for.
        plain = not settings.lowercase and not settings.deaccent
        if plain and lo <= 1 and hi >= 10_000:
            return str.split

        def whitespace(text: str) -> list[str]:
            if settings.lowercase:
                text = text.lower()
            if settings.deaccent:
                text = gensim_deaccent(text)
            return [t for t in text.split() if lo <= len(t) <= hi]

        return whitespace

    compiled = re.compile(settings.pattern or "")

    def regex(text: str) -> list[str]:
        if settings.lowercase:
            text = text.lower()
        if settings.deaccent:
            text = gensim_deaccent(text)
        # The whole match is the token (groups in the pattern do not change that), and a
        # match that spans whitespace is split: tokens go to a whitespace-separated file.
        return [
            token
            for match in compiled.finditer(text)
            for token in match.group(0).split()
            if lo <= len(token) <= hi
        ]

    return regex
