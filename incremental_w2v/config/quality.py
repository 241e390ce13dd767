"""Config sections for quality: ``evaluation``, ``watch``, ``drift``, ``gates``, ``rebuild``.

Kept apart from ``config.py`` so that the quality modules own their schema;
``Config`` only names these sections.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from incremental_w2v.config.base import INT32_MAX, Strict

BUNDLED_PAIRS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
BUNDLED_ANALOGIES = {"analogies": "questions-words.txt"}
BUNDLED = (*BUNDLED_PAIRS, *BUNDLED_ANALOGIES)
BundledName = Literal["wordsim353", "simlex999", "analogies"]



class EvalFile(Strict):
    """A user's evaluation file, in the format of the bundled set of its kind."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str


class EvaluationSettings(Strict):
    """``evaluation:``: what is scored after every commit (and by ``incw2v evaluate``)."""

    enabled: bool = True
    sets: list[BundledName] = Field(default_factory=lambda: list(BUNDLED))  # type: ignore[arg-type]
    restrict_vocab: int | None = Field(
        30000, ge=1, le=INT32_MAX,
        description="analogies: only the N most frequent words by cumulative count",
    )
    case_insensitive: bool = True
    word_pairs: list[EvalFile] = Field(default_factory=list)
    analogy_files: list[EvalFile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> EvaluationSettings:
        names = [*self.sets, *(f.name for f in self.word_pairs),
                 *(f.name for f in self.analogy_files)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(dupes)}")
        return self

    def metric_names(self) -> list[str]:
        return [*self.sets, *(f.name for f in self.word_pairs),
                *(f.name for f in self.analogy_files)]


class DriftSettings(Strict):
    """``drift:``: how ``compare`` (and the drift recorded per version) is measured."""

    anchors: int | str = Field(
        10000,
        description="the N most frequent shared words, or the path of a word list file",
    )
    top_k: int = Field(10, ge=1, le=100)
    center: bool = Field(True, description="subtract each side's mean vector before aligning")
    bands: list[int] = Field(
        default_factory=lambda: [1000, 10000, 100000],
        description="frequency-rank band edges for the summaries",
    )
    sample: int = Field(1000, ge=10, le=INT32_MAX,
                        description="shared words whose neighbours are compared")
    neighbour_vocab: int = Field(
        50000, ge=10, le=INT32_MAX,
        description="neighbours are searched among the N most frequent words"
    )
    moved: int = Field(10, ge=0, le=INT32_MAX, description="how many most-moved words to list")
    moved_from: int = Field(
        10000, ge=1, le=INT32_MAX,
        description="most-moved words are picked among the N most frequent"
    )
    record: bool = Field(True, description="record drift against the parent in every version")

    @field_validator("bands")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= 0 for b in value) or value != sorted(set(value)):
            raise ValueError("band edges must be positive and strictly increasing")
        if any(b > INT32_MAX for b in value):  # numpy would hold them as Python objects
            raise ValueError(f"band edges must be at most {INT32_MAX} (more than any vocabulary)")
        return value

    @field_validator("anchors")
    @classmethod
    def _anchors(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 2 <= value <= INT32_MAX:
            raise ValueError(f"need at least 2 anchor words, and at most {INT32_MAX}")
        return value


class Gate(Strict):
    """One metric's gate: a minimum absolute score and/or a maximum drop."""

    min: float | None = None
    max_drop: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _something(self) -> Gate:
        if self.min is None and self.max_drop is None:
            raise ValueError("give 'min' and/or 'max_drop'")
        return self


class RebuildSettings(Strict):
    """``rebuild:``: when ``add-corpus`` retrains from scratch on its own."""

    every: int | None = Field(None, ge=1, le=INT32_MAX,
                              description="after every N updates since the last rebuild (or "
                              "the base)")
    max_drift: float | None = Field(
        None, gt=0, le=2,
        description="when 1 - median aligned cosine against the last rebuild exceeds this",
    )
    min_overlap: float | None = Field(
        None, gt=0, le=1,
        description="when the mean top-k neighbour overlap with the last rebuild falls below",
    )


def gate_problems(gates: dict[str, Gate], evaluation: EvaluationSettings) -> list[str]:
    if gates and not evaluation.enabled:
        return ["gates: need 'evaluation.enabled: true' (a gate has nothing to judge)"]
    known = evaluation.metric_names()
    return [
        f"gates.{name}: no such metric; evaluation gives {', '.join(known) or 'none'}"
        for name in gates
        if name not in known
    ]
