"""Training: the base model, and updates that close gensim's update traps.

An update admits words by their *cumulative* count (the ledger), then makes
every word's count, downsampling threshold (``sample_int``) and the
negative-sampling table agree with the ledger, exactly as a from-scratch
``build_vocab`` over the total would. Training runs in ``corpus_file`` mode
on the pass's working file, with explicit word counts, epochs and learning
rate; ``alpha``, ``min_alpha`` and ``epochs`` are restored afterwards.

Freezing (``update.freeze_epochs``): for the update's first N epochs the
input vectors of the words the model had before the update are held fixed
through gensim's lock factors (``wv.vectors_lockf``; for FastText
``vectors_vocab_lockf`` and, since n-gram buckets are shared by old and new
words, every n-gram bucket too). gensim's ``corpus_file`` training honours
them (``word2vec_corpusfile.pyx`` takes them from ``init_w2v_config``), so
the frozen phase is one more ``train()`` call on the same file; the
learning rate runs on linearly across both calls. The output weights
(``syn1neg``) keep training, which is what lets new words fit around the
frozen ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from incremental_w2v.config.schema import FASTTEXT_ONLY, ModelParams, UpdateSettings
from incremental_w2v.errors import ConfigError, DataError, TrainingError
from incremental_w2v.progress import Progress
from incremental_w2v.train.ledger import Ledger
from incremental_w2v.train.rehearsal import EpochFile
from incremental_w2v.train.watch import TrainingWatch
from incremental_w2v.vectors.cum_table import cum_table, vectorised_cum_table

if TYPE_CHECKING:  # gensim (with scipy) costs ~0.6 s to import: only when training
    from gensim.models import Word2Vec

logger = logging.getLogger(__name__)

# Parameters that cannot change within one lineage: they shape the arrays or
# what the weights mean.
STRUCTURAL = ("vector_size", "sg", "type", "min_n", "max_n", "bucket")
# What gensim's C training loop reads from the model (min_count, say, it does not).
TRAINING_VALUES = ("vector_size", "window", "sample", "sg", "negative", "ns_exponent",
                   "cbow_mean", "alpha", "min_alpha", "epochs")


@dataclass
class TrainReport:
    words_added: int = 0
    top_new_words: list[str] = field(default_factory=list)
    vocab_size: int = 0
    sentences: int = 0
    tokens: int = 0
    epochs: int = 0
    alpha: tuple[float, float] = (0.0, 0.0)
    frozen_epochs: int = 0
    frozen_words: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "words_added": self.words_added,
            "top_new_words": self.top_new_words,
            "vocab_size": self.vocab_size,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "epochs": self.epochs,
            "alpha": list(self.alpha),
            "frozen_epochs": self.frozen_epochs,
            "frozen_words": self.frozen_words,
            "seconds": round(self.seconds, 3),
        }


def _is_fasttext(model: Any) -> bool:
    from gensim.models import FastText  # loaded already whenever a model exists

    return isinstance(model, FastText)


def check_trainable(model: Any, source: str) -> None:
    """Refuse models gensim cannot update correctly, with the reason."""
    from gensim.models import Doc2Vec, KeyedVectors, Word2Vec

    if isinstance(model, KeyedVectors):
        raise ConfigError(
            f"{source} holds only word vectors (KeyedVectors), not a full Word2Vec model: "
            "it has no training state (syn1neg, vocabulary counts) to continue from",
            hint="give the full model saved with Word2Vec.save(), or train a base from a corpus",
        )
    if isinstance(model, Doc2Vec):
        raise ConfigError(
            f"{source} is a Doc2Vec model; gensim cannot update Doc2Vec vocabularies correctly "
            "(gensim issue #1019)",
            hint="use a Word2Vec model",
        )
    if not isinstance(model, Word2Vec):  # FastText is a Word2Vec subclass
        raise ConfigError(
            f"{source} is a {type(model).__name__}, not a gensim Word2Vec or FastText model"
        )
    if getattr(model, "hs", 0):
        raise ConfigError(
            f"{source} was trained with hierarchical softmax (hs=1): gensim rebuilds the "
            "Huffman tree on update and silently corrupts syn1",
            hint="continue only models trained with negative sampling (hs=0, negative>0)",
        )
    if not getattr(model, "negative", 0) or getattr(model, "syn1neg", None) is None:
        raise ConfigError(
            f"{source} has no negative-sampling weights (negative=0 or syn1neg missing)",
            hint="continue only models trained with negative sampling (hs=0, negative>0)",
        )
    check_arrays(model, source)
    check_training_values(model, source)


def check_training_values(model: Any, source: str) -> None:
    """Refuse values gensim's C code crashes or hangs on, whatever the model's origin.

    A config's values are checked by its schema; a model brings its own
    (``window``, ``sample``, ``ns_exponent``, …) and an imported or damaged one
    may hold anything: they are checked against the same schema before every
    training call.
    """
    from pydantic import ValidationError

    params = params_of_model(model)
    values = {k: params[k] for k in (*TRAINING_VALUES, *FASTTEXT_ONLY, "type") if k in params}
    values["seed"] = int(model.seed)
    try:
        ModelParams.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(
            f"{source} cannot be trained: it holds values gensim cannot train with",
            [f"model.{'.'.join(map(str, e['loc']))} = {e['input']!r}: {e['msg']}"
             for e in exc.errors(include_url=False)],
            hint="continue from a model trained with sensible parameters (see the README's "
            "'model:' keys), or train a base from a corpus",
        ) from None
    table = getattr(model, "cum_table", None)
    if table is not None and len(table) and not int(table[-1]) > 0:
        raise ConfigError(
            f"{source} cannot be trained: its negative-sampling table is empty or damaged",
            hint="check model.ns_exponent and the vocabulary counts",
        )


def check_arrays(model: Word2Vec, source: str) -> None:
    """The arrays of a model must agree in length; gensim does not check."""
    n = len(model.wv)
    lengths = {
        "len(wv)": n,
        "wv.vectors": model.wv.vectors.shape[0],
        "syn1neg": model.syn1neg.shape[0],
    }
    lockf = getattr(model.wv, "vectors_lockf", None)
    if lockf is not None and len(lockf) not in (1, n):
        lengths["wv.vectors_lockf"] = len(lockf)
    counts = model.wv.expandos.get("count")
    if counts is not None:
        lengths["counts"] = len(counts)
    if _is_fasttext(model):
        lengths["wv.vectors_vocab"] = model.wv.vectors_vocab.shape[0]
        vlockf = getattr(model.wv, "vectors_vocab_lockf", None)
        if vlockf is not None and len(vlockf) not in (1, n):
            lengths["wv.vectors_vocab_lockf"] = len(vlockf)
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise DataError(
            f"{source} is inconsistent: its arrays disagree in length ({shown})",
            hint="the model is damaged; roll back to an earlier version or rebuild",
        )


def new_model(params: ModelParams) -> Word2Vec:
    from gensim.models import FastText, Word2Vec

    if params.type == "fasttext":
        return FastText(**params.gensim_kwargs())
    return Word2Vec(**params.gensim_kwargs())


def update_alpha(update: UpdateSettings, update_index: int) -> tuple[float, float]:
    """Start and end learning rate of the lineage's ``update_index``-th update (from 0)."""
    start = update.alpha * update.alpha_decay**update_index
    return start, min(update.min_alpha, start)


def train_base(
    params: ModelParams, ledger: Ledger, workfile: Path, sentences: int, tokens: int
) -> tuple[Word2Vec, TrainReport]:
    """A model trained from scratch on the working file, vocabulary from the ledger."""
    started = time.perf_counter()
    model = new_model(params)
    with vectorised_cum_table():
        model.build_vocab_from_freq(dict(ledger.counts), corpus_count=sentences)
    if len(model.wv) == 0:
        raise DataError(
            f"no word reaches min_count={params.min_count} in the base corpus",
            hint="lower model.min_count or use a larger base corpus",
        )
    with training_progress(tokens * params.epochs) as progress:
        _train(model, workfile, sentences, tokens, params.epochs, params.alpha,
               params.min_alpha, progress)
    _restore(model, params)
    report = TrainReport(
        words_added=len(model.wv),
        top_new_words=list(model.wv.index_to_key[:20]),
        vocab_size=len(model.wv),
        sentences=sentences,
        tokens=tokens,
        epochs=params.epochs,
        alpha=(params.alpha, params.min_alpha),
        seconds=time.perf_counter() - started,
    )
    return model, report


def apply_update(
    model: Word2Vec,
    params: ModelParams,
    update: UpdateSettings,
    ledger: Ledger,
    epoch_file: Callable[[int], EpochFile],
    corpus_sentences: int,
    epochs: int,
    update_index: int = 0,
    consolidation: tuple[Callable[[], EpochFile], float] | None = None,
    planned_tokens: int | None = None,
) -> TrainReport:
    """Grow the vocabulary from the (already updated) ledger and continue training.

    ``epoch_file(e)`` writes and describes what epoch ``e`` trains on (the new
    corpus, with that epoch's replayed sentences); ``corpus_sentences`` is the
    new corpus alone; ``epochs``: how many this update trains. The learning rate
    runs linearly from the update's start to its end across all epochs, one
    ``train()`` call per epoch. ``consolidation``: what a last pass trains on, and
    its start learning rate (down to the update's end). ``planned_tokens``: what all the
    epochs will train, for the progress (default: the first epoch's, ``epochs`` times).
    """
    started = time.perf_counter()
    old_size = len(model.wv)
    new_words = admit_new_words(model, ledger, params)
    if new_words:
        with vectorised_cum_table():
            model.build_vocab_from_freq(
                {w: ledger.counts[w] for w in new_words},
                corpus_count=corpus_sentences,
                update=True,
                trim_rule=_keep_all,
            )
    reconcile_vocab(model, ledger, params)
    model.workers = params.gensim_kwargs()["workers"]
    start, end = update_alpha(update, update_index)
    frozen = min(update.freeze_epochs, epochs) if old_size else 0
    sentences = tokens = 0
    with ExitStack() as stack:
        progress: Progress | None = None
        for epoch in range(epochs):
            fed = epoch_file(epoch)
            if progress is None:
                progress = stack.enter_context(
                    training_progress(planned_tokens or fed.tokens * epochs))
            a0 = start + (end - start) * epoch / epochs
            a1 = start + (end - start) * (epoch + 1) / epochs
            with freeze_old_words(model, old_size) if epoch < frozen else nullcontext():
                _train(model, fed.path, fed.sentences, fed.tokens, 1, a0, a1, progress,
                       first_epoch=epoch, total_epochs=epochs, done_before=tokens)
            sentences += fed.sentences
            tokens += fed.tokens
        if consolidation is not None and old_size:
            fed, alpha = consolidation[0](), consolidation[1]
            if fed.tokens:
                _train(model, fed.path, fed.sentences, fed.tokens, 1, max(alpha, end), end,
                       stack.enter_context(training_progress(fed.tokens)))
                sentences += fed.sentences
                tokens += fed.tokens
    _restore(model, params)
    check_arrays(model, "the updated model")
    return TrainReport(
        words_added=len(new_words),
        top_new_words=new_words[:20],
        vocab_size=len(model.wv),
        sentences=sentences,
        tokens=tokens,
        epochs=epochs,
        alpha=(start, end),
        frozen_epochs=frozen,
        frozen_words=old_size if frozen else 0,
        seconds=time.perf_counter() - started,
    )


@contextmanager
def freeze_old_words(model: Word2Vec, count: int) -> Iterator[None]:
    """Hold the input vectors of the first ``count`` words fixed; restore the lock factors.

    The lock arrays are full length (one factor per word), so a word admitted
    by this update (index >= count) is never frozen.
    """
    wv = model.wv
    names = ["vectors_lockf"]
    if _is_fasttext(model):
        names = ["vectors_vocab_lockf", "vectors_ngrams_lockf"]
    saved = {name: getattr(wv, name) for name in names}
    try:
        for name in names:
            old = saved[name]
            if name == "vectors_ngrams_lockf":
                # Shared by old and new words: an old word's vector is its own row
                # plus its n-grams, so every bucket must hold still too.
                lock = np.zeros(len(wv.vectors_ngrams), dtype=np.float32)
            else:
                lock = np.ones(len(wv), dtype=np.float32)
                if len(old) == len(wv):
                    lock[:] = old
                lock[:count] = 0.0
            setattr(wv, name, lock)
        yield
    finally:
        for name, old in saved.items():
            setattr(wv, name, old)


def admit_new_words(model: Word2Vec, ledger: Ledger, params: ModelParams) -> list[str]:
    """Words whose cumulative count now reaches min_count, most frequent first.

    ``max_final_vocab`` caps the total: once the model holds that many words,
    no more are admitted (old words are never removed from a lineage).
    """
    known = model.wv.key_to_index
    fresh = [w for w in ledger.admitted(params.min_count) if w not in known]
    fresh.sort(key=lambda w: -ledger.counts[w])  # stable: ties keep first-seen order
    if params.max_final_vocab is not None:
        room = max(params.max_final_vocab - len(known), 0)
        fresh = fresh[:room]
    return fresh


def reconcile_vocab(model: Word2Vec, ledger: Ledger, params: ModelParams) -> None:
    """Counts, sample_int and cum_table as a from-scratch build over the ledger gives."""
    wv = model.wv
    counts = np.array([ledger.counts.get(w, 0) for w in wv.index_to_key], dtype=np.int64)
    wv.allocate_vecattrs(attrs=["count", "sample_int"], types=[np.int64, np.uint32])
    wv.expandos["count"][:] = counts
    wv.expandos["sample_int"][:] = sample_ints(counts, params.sample)
    model.cum_table = cum_table(counts, model.ns_exponent)
    for name in ("vectors_lockf", "vectors_vocab_lockf"):
        lockf = getattr(wv, name, None)
        if lockf is not None and len(lockf) not in (1, len(wv)):
            # A full-length lock array is not resized by gensim: new words would be
            # frozen or unfrozen by whichever old word their index wraps onto.
            grown = np.ones(len(wv), dtype=lockf.dtype)
            grown[: len(lockf)] = lockf
            setattr(wv, name, grown)
    model.corpus_total_words = int(counts.sum())


def sample_ints(counts: np.ndarray, sample: float) -> np.ndarray:
    """gensim's downsampling thresholds (Word2Vec.prepare_vocab), vectorised."""
    retain_total = float(counts.sum())
    if not sample:
        threshold = retain_total
    elif sample < 1.0:
        threshold = sample * retain_total
    else:
        threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        v = counts.astype(np.float64)
        prob = (np.sqrt(v / threshold) + 1) * (threshold / v)
    prob = np.where((v > 0) & (prob < 1.0), prob, 1.0)
    # Same truncating float->uint32 conversion as gensim's np.uint32(p * (2**32 - 1)).
    return (prob * (2**32 - 1)).astype(np.uint32)


def _keep_all(word: str, count: int, min_count: int) -> int:
    from gensim.utils import RULE_KEEP

    return int(RULE_KEEP)


def training_progress(total_tokens: int) -> Progress:
    """One progress for all of a version's training: ``total_tokens`` in all epochs."""
    return Progress("training", total=total_tokens, unit="words")


def _train(
    model: Word2Vec,
    workfile: Path,
    sentences: int,
    tokens: int,
    epochs: int,
    start_alpha: float,
    end_alpha: float,
    progress: Progress,
    first_epoch: int = 0,
    total_epochs: int | None = None,
    done_before: int | None = None,
) -> None:
    """``epochs`` epochs of training; ``first_epoch``: how many this version trained before
    and ``total_epochs`` how many it trains in all (for the progress, which counts all of
    them; default: this call's); ``done_before``: the tokens trained before this call."""
    # An update restarts the schedule on purpose; gensim would warn that alpha went up.
    model.min_alpha_yet_reached = start_alpha
    check_training_values(model, "the model")
    wall, cpu = time.perf_counter(), time.process_time()
    watch = TrainingWatch(progress, workfile, tokens, model.workers, first_epoch,
                          total_epochs or epochs, done_before)
    with watch, failing_workers_fail_the_run(model):
        model.train(
            corpus_file=str(workfile),
            total_examples=sentences,
            total_words=tokens,
            epochs=epochs,
            start_alpha=start_alpha,
            end_alpha=end_alpha,
            callbacks=watch.callbacks(),
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # corpus_file mode trains without the GIL: cores used should be close to model.workers.
    logger.info(
        "trained %d epochs on %d tokens in %.2fs: %.0f words/s, %.2f cores busy",
        epochs, tokens, wall, tokens * epochs / max(wall, 1e-9), cpu / max(wall, 1e-9),
    )


@contextmanager
def failing_workers_fail_the_run(model: Word2Vec) -> Iterator[None]:
    """An exception in one of gensim's training threads fails ``train()`` instead of hanging it.

    gensim's main loop waits on its progress queue for every worker's final
    ``None``; a worker that raises never sends it, and ``train()`` then waits
    forever (with the store's lock held). While this is open, each worker runs
    through a wrapper that, on an exception, sends the ``None`` for it, makes
    the remaining epochs' workers return at once, and keeps the error, which is
    raised once ``train()`` returns.
    """
    failures: list[BaseException] = []

    def corpus_file_worker(*args: Any, **kwargs: Any) -> None:
        progress_queue = args[4]  # (corpus_file, thread_id, offset, cython_vocab, progress_queue)
        if not failures:  # once a worker failed, the remaining epochs do no work
            try:
                original_corpus_file(*args, **kwargs)
                return
            except BaseException as exc:
                failures.append(exc)
        progress_queue.put(None)

    def iterable_worker(job_queue: Any, progress_queue: Any) -> None:
        if not failures:
            try:
                original_iterable(job_queue, progress_queue)
                return
            except BaseException as exc:
                failures.append(exc)
        while job_queue.get() is not None:  # the producer must never block on a full queue
            pass
        progress_queue.put(None)

    original_corpus_file = model._worker_loop_corpusfile
    original_iterable = model._worker_loop
    model._worker_loop_corpusfile = corpus_file_worker
    model._worker_loop = iterable_worker
    try:
        yield
    finally:
        for name in ("_worker_loop_corpusfile", "_worker_loop"):
            model.__dict__.pop(name, None)  # the class's methods again; nothing unpicklable
    if failures:
        exc = failures[0]
        raise TrainingError(
            f"a training thread failed: {type(exc).__name__}: {exc}; nothing was committed",
            hint="check the model parameters ('incw2v validate CONFIG'); if they look "
            "sensible, re-run with --debug and report it",
        ) from exc


def _restore(model: Word2Vec, params: ModelParams) -> None:
    """train() overwrites these with what one call used; keep the config's values."""
    model.alpha = params.alpha
    model.min_alpha = params.min_alpha
    model.epochs = params.epochs
    model.min_alpha_yet_reached = params.min_alpha


def structural_mismatch(recorded: dict[str, Any], params: ModelParams) -> list[str]:
    """Parameters of the config that contradict the lineage's, as readable lines."""
    now = params.model_dump()
    keys = [k for k in STRUCTURAL if params.type == "fasttext" or k not in FASTTEXT_ONLY]
    return [
        f"model.{key}: lineage has {recorded.get(key)!r}, config has {now.get(key)!r}"
        for key in keys
        if key in recorded and recorded.get(key) != now.get(key)
    ]


def params_of_model(model: Word2Vec) -> dict[str, Any]:
    """The hyper-parameters of an existing gensim model, in config terms."""
    extra: dict[str, Any] = {}
    if _is_fasttext(model):
        extra = {"min_n": int(model.wv.min_n), "max_n": int(model.wv.max_n),
                 "bucket": int(model.wv.bucket)}
    return {
        "type": "fasttext" if _is_fasttext(model) else "word2vec",
        **extra,
        "vector_size": int(model.vector_size),
        "window": int(model.window),
        "min_count": int(model.min_count),
        "sample": float(model.sample),
        "sg": int(model.sg),
        "hs": int(model.hs),
        "negative": int(model.negative),
        "ns_exponent": float(model.ns_exponent),
        "cbow_mean": int(model.cbow_mean),
        "alpha": float(model.alpha),
        "min_alpha": float(model.min_alpha),
        "epochs": int(model.epochs),
    }
