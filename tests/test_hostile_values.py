"""Values that validate and then crash or hang: every one is refused by ``validate`` (78)
before any work, and a training thread that fails anyway fails the run instead of hanging it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import ROOT, Result, package_env
from test_crash_sweep import TINY_MODEL, write_workspace

# (key path as the error names it, YAML that sets it). Each is written into an otherwise
# valid config; gensim would segfault, raise SIGFPE, hang, or fail with an internal error.
BAD_VALUES = [
    ("model.alpha", "model: {alpha: .inf}"),
    ("model.alpha", "model: {alpha: -.inf}"),
    ("model.alpha", "model: {alpha: .nan}"),
    ("model.alpha", "model: {alpha: 1.0e+300}"),
    ("model.min_alpha", "model: {min_alpha: .nan}"),
    ("model.min_alpha", "model: {min_alpha: .inf}"),
    ("model.ns_exponent", "model: {ns_exponent: .nan}"),
    ("model.ns_exponent", "model: {ns_exponent: .inf}"),
    ("model.ns_exponent", "model: {ns_exponent: 1.0e+308}"),
    ("model.window", "model: {window: 2147483648}"),
    ("model.window", "model: {window: 9223372036854775808}"),
    ("model.window", "model: {window: 0}"),
    ("model.window", "model: {window: 5.5}"),
    ("model.seed", "model: {seed: -1}"),
    ("model.seed", "model: {seed: 4294967296}"),
    ("model.seed", "model: {seed: true}"),
    ("model.sample", "model: {sample: .inf}"),
    ("model.sample", "model: {sample: .nan}"),
    ("model.sample", "model: {sample: -0.5}"),
    ("model.vector_size", "model: {vector_size: true}"),
    ("model.vector_size", "model: {vector_size: false}"),
    ("model.vector_size", "model: {vector_size: '100'}"),
    ("model.vector_size", "model: {vector_size: 16.0}"),
    ("model.epochs", "model: {epochs: true}"),
    ("model.epochs", "model: {epochs: 1000000000}"),
    ("model.workers", "model: {workers: -1}"),
    ("model.workers", "model: {workers: 100000000}"),
    ("model.negative", "model: {negative: true}"),
    ("model.negative", "model: {negative: 2147483648}"),
    ("model.sg", "model: {sg: true}"),
    ("model.cbow_mean", "model: {cbow_mean: false}"),
    ("model.bucket", "model: {type: fasttext, bucket: 4294967296}"),
    ("model.max_final_vocab", "model: {max_final_vocab: .inf}"),
    ("update.alpha", "update: {alpha: .inf}"),
    ("update.alpha_decay", "update: {alpha_decay: .nan}"),
    ("update.epochs", "update: {epochs: true}"),
    ("rehearsal.share", "rehearsal: {share: .inf}"),
    ("rehearsal.buffer_tokens", "rehearsal: {buffer_tokens: true}"),
    # numpy's SeedSequence refuses a negative seed mid-run; gensim's RandomState takes 32 bits.
    ("rehearsal.seed", "rehearsal: {seed: -1}"),
    ("rehearsal.seed", "rehearsal: {seed: -9223372036854775809}"),
    ("rehearsal.seed", "rehearsal: {seed: 4294967296}"),
    ("rehearsal.seed", "rehearsal: {seed: true}"),
    ("rehearsal.seed", "rehearsal: {seed: 1.5}"),
    ("rehearsal.seed", "rehearsal: {seed: .nan}"),
    ("rehearsal.seed", "rehearsal: {seed: '7'}"),
    ("model.seed", "model: {seed: 18446744073709551616}"),
    ("model.seed", "model: {seed: -.inf}"),
    # Counts and ranks beyond any vocabulary: numpy would hold them as Python objects.
    ("drift.bands", "drift: {bands: [1000, 100000000000000000000]}"),
    ("drift.bands", "drift: {bands: [-1, 10]}"),
    ("drift.anchors", "drift: {anchors: 100000000000000000000}"),
    ("drift.anchors", "drift: {anchors: -5}"),
    ("drift.sample", "drift: {sample: 100000000000000000000}"),
    ("drift.sample", "drift: {sample: true}"),
    ("drift.neighbour_vocab", "drift: {neighbour_vocab: 100000000000000000000}"),
    ("drift.moved", "drift: {moved: -1}"),
    ("drift.moved_from", "drift: {moved_from: 100000000000000000000}"),
    ("evaluation.restrict_vocab", "evaluation: {restrict_vocab: 100000000000000000000}"),
    ("retention.keep", "retention: {keep: 100000000000000000000}"),
    ("rebuild.every", "rebuild: {every: 100000000000000000000}"),
    ("ledger.max_size", "ledger: {max_size: .inf}"),
    ("gates.wordsim353.min", "gates: {wordsim353: {min: .nan}}"),
    ("gates.wordsim353.max_drop", "gates: {wordsim353: {max_drop: .inf}}"),
    ("rebuild.max_drift", "rebuild: {max_drift: .nan}"),
    ("rebuild.every", "rebuild: {every: true}"),
    ("drift.top_k", "drift: {top_k: true}"),
    ("drift.anchors", "drift: {anchors: true}"),
    ("evaluation.restrict_vocab", "evaluation: {restrict_vocab: true}"),
    ("tokenize.min_len", "tokenize: {min_len: true}"),
    ("queue[0].format.namespaces[0]",
     "queue: [{uri: b.txt, format: {type: wikipedia, namespaces: [true]}}]"),
    # Strings that reach a path, a log or a JSON file.
    ("store", 'store: "st\\0ore"'),
    ("store", 'store: "st\\udc80ore"'),
    ("log_file", 'log_file: "run\\0.log"'),
    ("log_file", 'log_file: "run\\ud800.log"'),
    ("queue[0].name", 'queue: [{uri: b.txt, name: "b\\udfff"}]'),
    ("queue[0].name", 'queue: [{uri: b.txt, name: "b\\0"}]'),
    ("queue[0].uri", 'queue: [{uri: "b\\0.txt"}]'),
    ("queue[0].uri", 'queue: [{uri: "b\\ud83d.txt"}]'),
    ("watch", 'watch: [ok, "bad\\ud800"]'),
    ("evaluation.word_pairs[0].path", 'evaluation: {word_pairs: [{name: mine, path: "p\\0.tsv"}]}'),
    ("drift.anchors", 'drift: {anchors: "w\\udc00.txt"}'),
    ("sources.s3_endpoint_url", 'sources: {s3_endpoint_url: "http://h\\0"}'),
    ("gates", 'gates: {"wordsim\\0": {min: 0.1}}'),
]


def config_with(folder: Path, snippet: str) -> Path:
    """The workspace's config with ``snippet``'s keys merged in (a later key would repeat)."""
    write_workspace(folder, ())
    body = f"{TINY_MODEL}base: {{corpus: a.txt}}\n"
    section = snippet.split(":", 1)[0]
    if section == "model":
        body = body.replace(TINY_MODEL.splitlines()[0] + "\n", "")
        inner = snippet[len("model: {"):-1]
        snippet = ("model: {vector_size: 8, min_count: 2, negative: 2, epochs: 1, workers: 1, "
                   + inner + "}")
        if "window" not in inner:
            snippet = snippet[:-1] + ", window: 2}"
    if section == "update":
        body = body.replace("update: {epochs: 1}\n", "")
    text = f"{snippet}\n{body}" if section == "store" else f"store: store\n{body}{snippet}\n"
    path = folder / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("key", "snippet"), BAD_VALUES,
                         ids=[f"{k}={s.split(':', 1)[1].strip()}" for k, s in BAD_VALUES])
def test_validate_refuses_values_that_would_crash_later(
    tmp_path: Path, cli: Callable[..., Result], key: str, snippet: str
) -> None:
    config = config_with(tmp_path / "ws", snippet)
    result = cli("validate", config)
    assert result.code == 78, (result.code, result.err)
    assert f"- {key} (line" in result.err or f"- {key}:" in result.err, result.err
    assert "internal error" not in result.err
    # add-corpus refuses it the same way, before any work: no store is created.
    again = cli("add-corpus", config)
    assert again.code == 78, again.err
    assert not (config.parent / "store").exists()
    assert not (config.parent / "run.log").exists()


def test_every_problem_is_listed_at_once(tmp_path: Path, cli: Callable[..., Result]) -> None:
    config = config_with(tmp_path / "ws", "model: {alpha: .inf, window: 2147483648, seed: -1, "
                                          "vector_size: true, sg: true}")
    result = cli("validate", config)
    assert result.code == 78
    for key in ("alpha", "window", "seed", "vector_size", "sg"):
        assert f"model.{key} (line" in result.err, result.err
    assert "5 problem(s)" in result.err


@pytest.mark.parametrize("good", [
    "model: {alpha: 1, min_alpha: 0}",  # an int where a float is expected is fine
    "model: {seed: 4294967295, window: 10000}",
    "model: {ns_exponent: -0.5}",
    "model: {shrink_windows: false}",
    "evaluation: {case_insensitive: false}",
    'queue: [{uri: b.txt, name: "caf\\u00e9 \\u2603"}]',
])
def test_sensible_values_still_validate(tmp_path: Path, cli: Callable[..., Result],
                                        good: str) -> None:
    result = cli("validate", config_with(tmp_path / "ws", good))
    assert result.code == 0, result.err


@pytest.mark.parametrize("wait", ["-5", "nan", "inf", "-inf", "1e400", "soon", "-0.001"])
def test_wait_must_be_finite_and_not_negative(tmp_path: Path, cli: Callable[..., Result],
                                              wait: str, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    config = config_with(tmp_path / "ws", "watch: []")
    for command in ("add-corpus", "rollback", "prune", "rebuild"):
        extra = {"rollback": ["v1"], "prune": ["--keep", "1"]}.get(command, [])
        with pytest.raises(SystemExit) as info:
            cli(command, config, *extra, "--wait", wait)
        assert info.value.code == 64
        assert "--wait" in capsys.readouterr().err
    assert not (config.parent / "store").exists()


@pytest.mark.parametrize(("option", "value"), [("--seed", "-1"), ("--seed", "4294967296"),
                                               ("--refine", "-1"), ("--refine", "1000000000"),
                                               ("--anchor-min-count", "0")])
def test_align_options_out_of_range_are_usage_errors(
    tmp_path: Path, cli: Callable[..., Result], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as info:
        cli("align", "a.kv", "b.kv", "--output", tmp_path / "o.kv", option, value)
    assert info.value.code == 64


# --- a model file that brings its own values ---------------------------------------------


@pytest.mark.parametrize(("attribute", "value", "named"), [
    ("window", 2**31, "window"),
    ("alpha", float("inf"), "alpha"),
    ("min_alpha", float("nan"), "min_alpha"),
    ("ns_exponent", float("nan"), "ns_exponent"),
    ("sample", float("inf"), "sample"),
    ("seed", -1, "seed"),
    ("negative", 2**40, "negative"),
])
def test_a_base_model_with_crashing_values_is_refused(
    tmp_path: Path, attribute: str, value: float, named: str
) -> None:
    """A real gensim model whose own attributes would crash or hang gensim's C code."""
    from gensim.models import Word2Vec

    from helpers import lee_lines

    model = Word2Vec([line.split() for line in lee_lines()[:80]], vector_size=8, window=2,
                     min_count=2, negative=2, epochs=1, workers=1, seed=1)
    setattr(model, attribute, value)
    model.save(str(tmp_path / "base.model"))
    (tmp_path / "new.txt").write_text("".join(lee_lines()[80:120]))
    (tmp_path / "c.yaml").write_text(
        f"store: store\n{TINY_MODEL}base: {{model: base.model}}\nqueue: [{{uri: new.txt}}]\n")
    # In a real process with a deadline: a hang is a failure, not a stuck test run.
    run = subprocess.run([sys.executable, "-m", "incremental_w2v", "add-corpus",
                          str(tmp_path / "c.yaml")], capture_output=True, text=True,
                         timeout=120, env=package_env(), cwd=tmp_path)
    assert run.returncode == 78, run.stderr
    # gensim's own load recomputes the sampling table, and a NaN exponent fails there.
    loading = "cannot be loaded as a gensim model" in run.stderr and named == "ns_exponent"
    assert loading or (f"model.{named} = " in run.stderr and "cannot be trained" in run.stderr)
    assert "internal error" not in run.stderr


GUARD = textwrap.dedent("""
    import sys, time
    from gensim.models import FastText, Word2Vec
    from gensim.test.utils import datapath
    from incremental_w2v.errors import TrainingError
    from incremental_w2v.train.model import failing_workers_fail_the_run

    cls = FastText if sys.argv[1] == "fasttext" else Word2Vec
    corpus = datapath("lee_background.cor")
    model = cls(vector_size=8, min_count=2, workers=2, epochs=3, negative=2)
    model.build_vocab(corpus_file=corpus)
    model.window = 2**31  # past C's int: the training threads die on it
    kwargs = dict(total_examples=model.corpus_count, total_words=model.corpus_total_words,
                  epochs=3)
    if sys.argv[2] == "file":
        kwargs["corpus_file"] = corpus
    else:
        kwargs["corpus_iterable"] = [line.split() for line in open(corpus)] * 2
    try:
        with failing_workers_fail_the_run(model):
            model.train(**kwargs)
    except TrainingError as exc:
        assert "OverflowError" in str(exc), exc
        assert "_worker_loop_corpusfile" not in vars(model)  # nothing left to pickle
        print("failed cleanly")
""")


@pytest.mark.parametrize("kind", ["word2vec", "fasttext"])
@pytest.mark.parametrize("mode", ["file", "iterable"])
def test_a_failing_training_thread_fails_the_run_instead_of_hanging(kind: str, mode: str
                                                                    ) -> None:
    """Without the guard gensim's train() waits forever for the dead thread's report."""
    run = subprocess.run([sys.executable, "-c", GUARD, kind, mode], capture_output=True,
                         text=True, timeout=120, env=package_env(), cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "failed cleanly" in run.stdout
