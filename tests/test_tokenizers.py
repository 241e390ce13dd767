"""Tokenisation: every mode and option, on gensim's real Lee corpus where it matters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gensim.test.utils import datapath
from gensim.utils import PAT_ALPHABETIC, simple_preprocess
from gensim.utils import tokenize as gensim_tokenize
from pydantic import ValidationError

from incremental_w2v.ingest.tokenize import ALPHABETIC, TokenizeSettings, make_tokenizer


@pytest.fixture(scope="module")
def lee() -> list[str]:
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [line for line in handle if line.strip()][:150]


def tok(text: str, **settings: object) -> list[str]:
    return make_tokenizer(TokenizeSettings.model_validate(settings))(text)


def test_alphabetic_class_is_gensims_pattern_on_every_code_point() -> None:
    # The fast class must accept exactly the characters gensim's lookahead pattern does.
    chars = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    gensim_runs = [m.group() for m in PAT_ALPHABETIC.finditer(chars)]
    assert ALPHABETIC.findall(chars) == gensim_runs
    assert len(gensim_runs) > 500  # the set is split into many runs by digits and symbols


# Digits of other scripts (Arabic-Indic, Devanagari, fullwidth), superscripts and
# fractions (\w but not \d), underscores, combining marks, letters with special
# lower-casing (Turkish dotted I, final sigma, German sharp s), tokens just over and
# under the length limits, CJK, emoji.
AWKWARD = [
    "abc\u0661\u0662def x\u0967y \uff11\uff12ab \u00b2\u00bdhalf \u2167roman",
    "_under __init__ a_b snake_case_name _x x_",
    "cafe\u0301 nai\u0308ve \u0130STANBUL \u039f\u0394\u039f\u03a3 STRASSE stra\u00dfe",
    "abcdefghijklmno abcdefghijklmnop a b ab \u6771\u4eac\u90fd \U0001F600smile",
    "x86_64 ARM64v8 3d 2nd 10th \u00e9t\u00e9 \u0152uvre",
]


@pytest.mark.parametrize("deacc", [False, True])
@pytest.mark.parametrize("bounds", [(2, 15), (1, 100), (3, 5)])
def test_simple_is_gensims_simple_preprocess(lee: list[str], deacc: bool,
                                            bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    tokenize = make_tokenizer(TokenizeSettings(deaccent=deacc, min_len=lo, max_len=hi))
    seen = 0
    for line in [*lee, *AWKWARD]:
        expected = simple_preprocess(line, deacc=deacc, min_len=lo, max_len=hi)
        assert tokenize(line) == expected, line
        seen += len(expected)
    assert seen > 1000


@pytest.mark.parametrize("deacc", [False, True])
def test_simple_cased_is_gensims_tokenize(lee: list[str], deacc: bool) -> None:
    tokenize = make_tokenizer(TokenizeSettings(lowercase=False, deaccent=deacc))
    for line in [*lee, *AWKWARD]:
        expected = [t for t in gensim_tokenize(line, lower=False, deacc=deacc)
                    if 2 <= len(t) <= 15 and not t.startswith("_")]
        assert tokenize(line) == expected, line


def test_making_a_tokenizer_does_not_import_gensim() -> None:
    # The pass runs while gensim is imported in the background: it must not need it.
    code = ("import sys; from incremental_w2v.ingest.tokenize import TokenizeSettings, "
            "make_tokenizer\n"
            "for mode in ('simple', 'whitespace'):\n"
            "    make_tokenizer(TokenizeSettings(mode=mode))('Some text here')\n"
            "assert not [m for m in sys.modules if m.startswith('gensim')], 'gensim imported'\n"
            "make_tokenizer(TokenizeSettings(deaccent=True))\n"
            "assert 'gensim.utils' in sys.modules\n")
    # The package from this checkout, whether or not it is installed.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_simple_keeps_case_when_asked() -> None:
    assert tok("Paris is in France, not in Texas", lowercase=False) == [
        "Paris", "is", "in", "France", "not", "in", "Texas"
    ]
    assert tok("Paris is in France") == ["paris", "is", "in", "france"]


def test_min_and_max_len_bound_every_mode() -> None:
    text = "a bb ccc dddd eeeee ffffff"
    for mode, extra in (("simple", {}), ("whitespace", {}), ("regex", {"pattern": r"\w+"})):
        tokens = tok(text, mode=mode, min_len=3, max_len=5, **extra)
        assert tokens == ["ccc", "dddd", "eeeee"], mode


def test_deaccent() -> None:
    text = "Café naïve Ångström"
    assert tok(text, deaccent=True) == ["cafe", "naive", "angstrom"]
    assert tok(text) == ["café", "naïve", "ångström"]
    assert tok(text, mode="whitespace", deaccent=True) == ["cafe", "naive", "angstrom"]
    assert tok(text, mode="regex", pattern=r"\w+", deaccent=True) == ["cafe", "naive", "angstrom"]


def test_whitespace_mode_keeps_punctuation_and_splits_on_any_whitespace() -> None:
    text = "Don't\tstop\u00a0the  C++ code.\n"
    assert tok(text, mode="whitespace", min_len=1) == ["don't", "stop", "the", "c++", "code."]
    assert tok(text, mode="whitespace", lowercase=False, min_len=1, max_len=10_000) == [
        "Don't", "stop", "the", "C++", "code."
    ]


def test_regex_pattern_with_groups_yields_whole_matches() -> None:
    # findall would return the groups (tuples here); the token is the whole match.
    tokens = tok("x86_64 and arm64 cpus", mode="regex", pattern=r"([a-z]+)(\d+)?", min_len=1)
    assert tokens == ["x86", "and", "arm64", "cpus"]


def test_regex_matches_spanning_whitespace_are_split() -> None:
    tokens = tok("new york is big", mode="regex", pattern=r"[a-z]+ [a-z]+", min_len=1)
    assert tokens == ["new", "york", "is", "big"]
    tokens = tok("tab\there\nline\u2003em", mode="regex", pattern=r".+", min_len=1, max_len=100)
    assert tokens == ["tab", "here", "line", "em"]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"lowercase": False},
        {"deaccent": True},
        {"mode": "whitespace", "min_len": 1, "max_len": 10_000, "lowercase": False},
        {"mode": "whitespace", "deaccent": True},
        {"mode": "regex", "pattern": r"\S+", "min_len": 1, "max_len": 100},
        {"mode": "regex", "pattern": r"[^.,;]+", "min_len": 1, "max_len": 100},
    ],
)
def test_no_token_is_empty_or_contains_whitespace(lee: list[str], settings: dict[str, object]
                                                  ) -> None:
    tokenize = make_tokenizer(TokenizeSettings.model_validate(settings))
    odd = "tabs\there, no-break\u00a0space, em\u2003space, line\u2028sep and \r\n ends"
    seen = 0
    for line in [*lee, odd]:
        for token in tokenize(line):
            seen += 1
            assert token and not re.search(r"\s", token), (settings, token)
            assert token.split() == [token]
    assert seen > 1000


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="needs a 'pattern'"):
        TokenizeSettings(mode="regex")
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        TokenizeSettings(mode="regex", pattern="([a-z")
    with pytest.raises(ValidationError, match="only used with mode 'regex'"):
        TokenizeSettings(pattern=r"\w+")
    with pytest.raises(ValidationError, match="max_len must be at least min_len"):
        TokenizeSettings(min_len=5, max_len=3)
    with pytest.raises(ValidationError):
        TokenizeSettings.model_validate({"mode": "simple", "lowercase": True, "stem": True})
