"""The YAML config: schema, loading and validation.

Validation collects every problem and reports each with its key path and
line; unknown and duplicate keys are errors. Relative paths (``store``,
``log_file``, local corpus paths) resolve against the config file's folder.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from incremental_w2v.config.base import INT32_MAX, UINT32_MAX, Strict
from incremental_w2v.config.quality import (
    DriftSettings,
    EvaluationSettings,
    Gate,
    RebuildSettings,
    gate_problems,
)
from incremental_w2v.config.store import StoreOptions, is_remote_store, store_problem
from incremental_w2v.config.strict_yaml import LoadedYaml, dotted, load_file, load_text
from incremental_w2v.errors import ConfigError, IncW2VError, UsageError
from incremental_w2v.ingest.fingerprint import STALL_TIMEOUT
from incremental_w2v.ingest.formats.catalog import FormatSettings, TextFormat
from incremental_w2v.ingest.tokenize import TokenizeSettings
from incremental_w2v.uris import (
    credential_problem,
    expand,
    malformed_problem,
    redact,
    uri_problem,
)

logger = logging.getLogger(__name__)

EncodingErrors = Literal["strict", "replace"]
# gensim cuts longer sentences (MAX_WORDS_IN_BATCH): no window can be wider.
MAX_SENTENCE_WORDS = 10_000


class ModelParams(Strict):
    """gensim ``Word2Vec`` parameters (``model:``).

    The bounds are those gensim's C code and numpy accept (a window past 2^31
    kills a training thread, a negative seed is refused by numpy's
    RandomState, a non-finite learning rate segfaults), tightened to what can
    make sense: gensim trains on sentences of at most 10,000 words, so a
    wider window changes nothing.
    """

    type: Literal["word2vec", "fasttext"] = "word2vec"
    vector_size: int = Field(100, ge=1, le=10_000)
    window: int = Field(5, ge=1, le=MAX_SENTENCE_WORDS)
    min_count: int = Field(5, ge=1, le=INT32_MAX)
    sample: float = Field(1e-3, ge=0, le=1e12)
    sg: Literal[0, 1] = 0
    hs: Literal[0, 1] = 0
    negative: int = Field(5, ge=0, le=1000)
    ns_exponent: float = Field(0.75, ge=-10, le=10, description="negative-sampling exponent")
    cbow_mean: Literal[0, 1] = 1
    alpha: float = Field(0.025, gt=0, le=1)
    min_alpha: float = Field(0.0001, ge=0, le=1)
    epochs: int = Field(5, ge=1, le=10_000)
    seed: int = Field(1, ge=0, le=UINT32_MAX)
    workers: int = Field(0, ge=0, le=1024, description="training threads; 0 means one per core")
    max_final_vocab: int | None = Field(None, ge=1, le=INT32_MAX)
    shrink_windows: bool = True
    # FastText only (model.type: fasttext); ignored for word2vec.
    min_n: int = Field(3, ge=1, le=100, description="fasttext: shortest character n-gram")
    max_n: int = Field(6, ge=0, le=100, description="fasttext: longest character n-gram (0: none)")
    bucket: int = Field(2_000_000, ge=1, le=INT32_MAX,
                        description="fasttext: n-gram hash buckets")

    @field_validator("hs")
    @classmethod
    def _no_hs(cls, value: int) -> int:
        if value:
            raise ValueError(
                "hs=1 (hierarchical softmax) cannot be updated safely: gensim rebuilds the "
                "Huffman tree on every vocabulary update and silently corrupts the trained "
                "syn1 weights; use hs: 0 with negative sampling (negative: 5)"
            )
        return value

    @field_validator("negative")
    @classmethod
    def _needs_negative(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(
                "negative must be > 0: incremental updates need negative sampling "
                "(hs=1 cannot be updated safely)"
            )
        return value

    def gensim_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gensim.models.Word2Vec``."""
        exclude = {"type"} if self.type == "fasttext" else {"type", *FASTTEXT_ONLY}
        kwargs = self.model_dump(exclude=exclude)
        kwargs["workers"] = self.workers or (os.cpu_count() or 1)
        return kwargs


FASTTEXT_ONLY = ("min_n", "max_n", "bucket")


class UpdateSettings(Strict):
    """How an update trains (``update:``): gensim would silently restart the schedule."""

    # Defaults measured at full size with benchmarks/fidelity.py (docs/incremental.md).
    alpha: float = Field(0.025, gt=0, le=1, description="learning rate at the start of an update")
    min_alpha: float = Field(0.0001, ge=0, le=1,
                             description="learning rate at the end of an update")
    epochs: int | None = Field(
        None, ge=1, le=10_000,
        description="epochs per update; default: as many as keep an update's new and replayed "
        "tokens within budget x a plain update's (model.epochs x the new tokens), at most "
        "model.epochs (4 with the defaults)",
    )
    budget: float = Field(
        1.5, ge=0.1, le=100,
        description="when epochs is not given: tokens an update may train, as a multiple of a "
        "plain update's (the new corpus, model.epochs times)",
    )
    alpha_decay: float = Field(
        1.0, gt=0, le=1,
        description="the n-th update of a lineage (n = 0, 1, ...) starts at alpha * alpha_decay**n",
    )
    freeze_epochs: int = Field(
        0, ge=0, le=10_000,
        description="hold the input vectors of words the model already had fixed for the "
        "update's first N epochs (N >= epochs: the whole update); new words always train",
    )


# What an old sentence-counted buffer_size is read as, in tokens.
TOKENS_PER_SENTENCE = 20


class RehearsalSettings(Strict):
    """Replay of earlier data during updates (``rehearsal:``), counted in tokens."""

    buffer_tokens: int = Field(
        16_000_000, ge=0, le=10_000_000_000,
        description="token budget of the replay buffer (a uniform sample of every sentence "
        "applied so far, stored with each version); 0 turns rehearsal off",
    )
    share: float = Field(
        0.875, ge=0, le=10,
        description="tokens replayed per new token in an epoch of an update, on average "
        "(0.875: the epochs train on 1.875 times the new tokens); capped by what the buffer "
        "holds",
    )
    schedule: Literal["flat", "ramp"] = Field(
        "ramp",
        description="flat: the same replay every epoch; ramp: rising across the update, from "
        "share/epochs to twice the share",
    )
    consolidate: float = Field(
        0.0, ge=0, le=10,
        description="after the epochs, one pass over this many earlier tokens per new token, "
        "at a low learning rate (consolidate_alpha down to update.min_alpha); 0: none",
    )
    consolidate_alpha: float = Field(
        0.005, gt=0, le=1, description="learning rate at the start of the consolidation pass"
    )
    seed: int = Field(1, ge=0, le=UINT32_MAX,
                      description="seed of the buffer's sampling and of the replay draw")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        # Releases before 0.2 counted the buffer in sentences: still read, with a warning.
        if isinstance(data, dict) and "buffer_size" in data:
            if "buffer_tokens" in data:
                raise ValueError("give buffer_tokens only: buffer_size (sentences) is its "
                                 "deprecated, older form")
            data = dict(data)
            size = data.pop("buffer_size")
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                data["buffer_tokens"] = size * TOKENS_PER_SENTENCE
                logger.warning(
                    "rehearsal.buffer_size is deprecated: the buffer is now a token budget; "
                    "read as buffer_tokens: %d (%d sentences x %d tokens); set buffer_tokens "
                    "instead", data["buffer_tokens"], size, TOKENS_PER_SENTENCE)
            else:
                data["buffer_tokens"] = size  # let the field's own check say what is wrong
        return data


class LedgerSettings(Strict):
    """Memory bound of the vocabulary ledger (``ledger:``)."""

    max_size: int | None = Field(
        5_000_000, ge=1, le=INT32_MAX,
        description="most distinct tokens the ledger keeps; beyond it, the rarest tokens "
        "that are not in the model are pruned; null: no bound",
    )


class SourceSettings(Strict):
    """Transport settings (``sources:``)."""

    s3_endpoint_url: str | None = Field(
        None, description="endpoint of an S3-compatible store (MinIO, Ceph, …)"
    )
    stall_timeout: float = Field(
        STALL_TIMEOUT, gt=0, le=86_400,
        description="seconds a source may send nothing (a silent server, a named pipe "
        "with no writer) before the run fails with exit code 74",
    )

    @field_validator("s3_endpoint_url")
    @classmethod
    def _no_endpoint_credentials(cls, value: str | None) -> str | None:
        problem = (credential_problem(value) or malformed_problem(value)) if value else None
        if problem:
            raise ValueError(
                f"{redact(value or '')} is refused: {problem}; libraries log the endpoint at "
                "debug level, so credentials go in the environment (AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY) or an AWS profile"
            )
        return value


# The formats word vectors are written in (vectors/formats.py says what each is for).
VectorFormat = Literal["word2vec-text", "word2vec-binary", "keyedvectors"]


class PublishTarget(Strict):
    """``publish:``: where the current version's vectors are written after every change."""

    to: str = Field(description="a folder (relative to the config's folder) or s3://bucket/prefix")
    formats: list[VectorFormat] = Field(
        default_factory=lambda: ["word2vec-binary"],  # type: ignore[arg-type]
        min_length=1,
        description="files written there: word2vec-text (vectors.txt), word2vec-binary "
        "(vectors.bin), keyedvectors (vectors.kv and its .npy)",
    )

    @field_validator("to")
    @classmethod
    def _where(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        problem = credential_problem(value) or malformed_problem(value)
        if problem:
            raise ValueError(f"{redact(value)} is refused: {problem}")
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in ("", "s3", "file"):
            raise ValueError(f"{redact(value)}: publish to a local folder or s3://, "
                             f"not {scheme}://")
        return value

    @field_validator("formats")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a format is listed twice")
        return value


class RetentionSettings(Strict):
    """``retention:``: prune old versions' arrays after every commit."""

    keep: int | None = Field(
        None, ge=1, le=INT32_MAX,
        description="keep the arrays of the newest N versions (and always the current "
        "version, the last rebuild and candidates awaiting review); older versions keep "
        "their lineage record only; null: keep everything",
    )


class CorpusEntry(Strict):
    """One corpus of the queue (or the base corpus)."""

    uri: str
    name: str | None = None
    format: FormatSettings = TextFormat()
    tokenize: TokenizeSettings | None = None
    encoding_errors: EncodingErrors | None = None

    @field_validator("uri")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        problem = uri_problem(value)
        if problem:
            raise ValueError(
                f"{redact(value)} is refused: {problem}; give credentials through the "
                "environment or your SDK's configuration, never in the URI"
            )
        return value


class BaseSpec(Strict):
    """``base:``: exactly one of ``corpus`` (a URI) or ``model`` (a full gensim model)."""

    corpus: str | None = None
    model: str | None = None
    name: str | None = None
    format: FormatSettings = TextFormat()
    tokenize: TokenizeSettings | None = None
    encoding_errors: EncodingErrors | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BaseSpec:
        if (self.corpus is None) == (self.model is None):
            raise ValueError(
                "give exactly one of 'corpus' (a URI) or 'model' (a full gensim model)"
            )
        for key, value in (("corpus", self.corpus), ("model", self.model)):
            problem = uri_problem(value) if value is not None else None
            if problem:
                raise ValueError(f"{key} {redact(value or '')} is refused: {problem}")
        return self

    def as_entry(self) -> CorpusEntry:
        assert self.corpus is not None
        return CorpusEntry(
            uri=self.corpus,
            name=self.name,
            format=self.format,
            tokenize=self.tokenize,
            encoding_errors=self.encoding_errors,
        )


class Config(Strict):
    """A whole config file."""

    store: str
    store_options: StoreOptions = StoreOptions()
    log_file: str | None = None
    model: ModelParams = ModelParams()
    update: UpdateSettings = UpdateSettings()
    rehearsal: RehearsalSettings = RehearsalSettings()
    ledger: LedgerSettings = LedgerSettings()
    tokenize: TokenizeSettings = TokenizeSettings()
    encoding_errors: EncodingErrors = "strict"
    sources: SourceSettings = SourceSettings()
    base: BaseSpec
    queue: list[CorpusEntry] = Field(default_factory=list)
    # Quality (docs/quality.md): scores, drift, gates and rebuilds.
    evaluation: EvaluationSettings = EvaluationSettings()
    watch: list[str] = Field(default_factory=list)
    drift: DriftSettings = DriftSettings()
    gates: dict[str, Gate] = Field(default_factory=dict)
    rebuild: RebuildSettings = RebuildSettings()
    # Keeping a lineage: old versions' arrays, and where consumers read the current one.
    retention: RetentionSettings = RetentionSettings()
    publish: list[PublishTarget] = Field(default_factory=list)

    @field_validator("store", "log_file")
    @classmethod
    def _no_location_credentials(cls, value: str | None) -> str | None:
        problem = credential_problem(value) if value else None
        if problem:
            raise ValueError(f"{redact(value or '')} is refused: {problem}; give credentials "
                             "through the environment or your SDK's configuration")
        return value

    @field_validator("store")
    @classmethod
    def _store_place(cls, value: str) -> str:
        problem = store_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _options_need_a_remote_store(self) -> Config:
        if self.store_options.model_fields_set and not is_remote_store(self.store):
            raise ValueError(
                "store_options apply to a store on S3 (store: s3://bucket/prefix); "
                f"{redact(self.store)} is a local folder")
        return self

    @model_validator(mode="after")
    def _gates_name_metrics(self) -> Config:
        problems = gate_problems(self.gates, self.evaluation)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    _path: Path = PrivateAttr(default=Path("config.yaml"))

    @property
    def path(self) -> Path:
        return self._path

    @property
    def base_dir(self) -> Path:
        return self._path.parent

    @property
    def update_epochs(self) -> int:
        """Epochs per update: ``update.epochs``, or as many as the update's budget allows."""
        if self.update.epochs:
            return self.update.epochs
        replay = self.rehearsal.share if self.rehearsal.buffer_tokens else 0.0
        # 1e-9: 1.5 x 5 / 1.875 is 4, not 3.999...
        fit = int(self.update.budget * self.model.epochs / (1 + replay) + 1e-9)
        return max(1, min(self.model.epochs, fit))

    @property
    def store_is_remote(self) -> bool:
        return is_remote_store(self.store)

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 server of the store and of ``publish:`` targets on S3:
        ``store_options.endpoint_url``, else ``sources.s3_endpoint_url``, else the SDK's
        own (AWS, or ``AWS_ENDPOINT_URL_S3``). Corpora use ``sources.s3_endpoint_url``."""
        return self.store_options.endpoint_url or self.sources.s3_endpoint_url

    @property
    def store_path(self) -> Path:
        """The folder of a local store."""
        if self.store_is_remote:
            raise UsageError(f"store {redact(self.store)} is not a local folder")
        if self.store.startswith("file://"):
            return Path(self.store[len("file://"):])
        return self._resolve(self.store)

    @property
    def store_location(self) -> str:
        """How messages name the store: its folder, or its redacted URI."""
        return redact(self.store) if self.store_is_remote else str(self.store_path)

    @property
    def log_path(self) -> Path | None:
        return self._resolve(self.log_file) if self.log_file else None

    def _resolve(self, value: str) -> Path:
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else (self.base_dir / path)

    def publish_location(self, target: PublishTarget) -> str:
        """A publish target's folder (local, resolved) or its s3:// prefix."""
        if target.to.lower().startswith("s3://"):
            return target.to.rstrip("/")
        local = target.to[len("file://"):] if target.to.lower().startswith("file://") else target.to
        return str(self._resolve(local))

    def publish_locations(self) -> list[str]:
        """Every ``publish:`` target's location (what ``needs.require`` checks modules for
        before a command that publishes changes anything)."""
        return [self.publish_location(t) for t in self.publish]

    def named_uris(self) -> list[str]:
        """Every URI the config names: its corpora (globs and folders expanded as far as
        they can be now) and its publish targets; what ``validate`` checks modules for."""
        uris: list[str] = []
        for entry in [*([self.base.as_entry()] if self.base.corpus else []), *self.queue]:
            uris.append(entry.uri)
            with suppress(IncW2VError):  # a corpus not there yet: its own URI says enough
                uris += expand(entry.uri, self.base_dir)
        return uris + self.publish_locations()

    def tokenize_for(self, entry: CorpusEntry) -> TokenizeSettings:
        return entry.tokenize or self.tokenize

    def encoding_errors_for(self, entry: CorpusEntry) -> str:
        return entry.encoding_errors or self.encoding_errors


def load_config(path: str | Path) -> Config:
    """Load and validate ``path``; raises ConfigError listing every problem."""
    path = Path(path)
    loaded = load_file(path)
    return _validate(loaded, path.resolve())


def parse_config(text: str, path: str | Path = "config.yaml") -> Config:
    """Validate a config given as text (relative paths resolve against ``path``'s folder)."""
    loaded = load_text(text, str(path))
    return _validate(loaded, Path(path).resolve())


def _validate(loaded: LoadedYaml, path: Path) -> Config:
    if not isinstance(loaded.data, dict):
        raise ConfigError(
            f"{loaded.source}: the config must be a mapping of keys (store:, model:, base:, …)"
        )
    problems = list(loaded.problems)
    try:
        config = Config.model_validate(loaded.data)
    except ValidationError as exc:
        problems += [_describe(err, loaded) for err in exc.errors(include_url=False)]
    if problems:
        raise ConfigError(
            f"{loaded.source}: {len(problems)} problem(s) in the config",
            problems,
            hint="fix every key listed above, then run 'incw2v validate' again",
        )
    config._path = path
    return config


def _describe(err: Any, loaded: LoadedYaml) -> str:
    # Drop the union-tag segments pydantic adds (e.g. 'text' in queue[0].format.text).
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    data_loc: tuple[str | int, ...] = ()
    node: Any = loaded.data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
            data_loc = (*data_loc, part)
        elif err["type"] in ("extra_forbidden", "missing") and part == loc[-1]:
            data_loc = (*data_loc, part)
    # A missing key has no line of its own: point at the mapping that lacks it.
    line = (
        loaded.line_of(data_loc[:-1]) if data_loc[:-1] else None
    ) if err["type"] == "missing" else loaded.line_of(data_loc)
    where = f"{dotted(data_loc)} (line {line})" if line else dotted(data_loc)
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling and the list of keys in docs/config.md)"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{where}: {msg}"
