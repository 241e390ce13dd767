"""Loading and atomically writing word vectors, with real gensim files."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gensim.models import FastText, KeyedVectors, Word2Vec
from gensim.test.utils import datapath
from gensim.utils import SaveLoad

from helpers import ROOT
from incremental_w2v.errors import DataError, InputMissingError, OutputError, UsageError
from incremental_w2v.vectors.io import (
    VECTOR_FORMATS,
    counts_of,
    load_vectors,
    write_vectors,
)


class LeeSentences:
    """Re-iterable token lists of gensim's Lee background corpus."""

    def __iter__(self) -> Iterator[list[str]]:
        with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
            for line in handle:
                yield line.lower().split()


@pytest.fixture(scope="module")
def model() -> Word2Vec:
    return Word2Vec(
        LeeSentences(), vector_size=24, min_count=3, epochs=2, workers=1, seed=3, hs=0, negative=5
    )


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if "incw2v-tmp" in p.name]


@pytest.mark.parametrize("fmt", VECTOR_FORMATS)
def test_round_trip_through_gensims_own_loaders(model: Word2Vec, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "vectors.out"  # a name that says nothing: the content decides
    written = write_vectors(model.wv, fmt, out)  # type: ignore[arg-type]
    side = [tmp_path / "vectors.out.vectors.npy"] if fmt == "keyedvectors" else []
    assert sorted(written) == sorted([out, *side])
    if fmt == "keyedvectors":
        back = KeyedVectors.load(str(out))
    else:
        back = KeyedVectors.load_word2vec_format(str(out), binary=fmt == "word2vec-binary")
    assert set(back.index_to_key) == set(model.wv.index_to_key)
    for word in ("the", "australia", "police"):
        np.testing.assert_allclose(back[word], model.wv[word], rtol=1e-5, atol=1e-6)
    loaded = load_vectors(str(out))
    assert loaded.kind == fmt
    np.testing.assert_allclose(loaded.kv["australia"], model.wv["australia"], rtol=1e-5, atol=1e-6)
    assert _no_temp_files(tmp_path)


def test_counts_survive_keyedvectors_but_not_word2vec_format(
    model: Word2Vec, tmp_path: Path
) -> None:
    kv_path = tmp_path / "v.kv"
    txt_path = tmp_path / "v.txt"
    write_vectors(model.wv, "keyedvectors", kv_path)
    write_vectors(model.wv, "word2vec-text", txt_path)
    from_kv = load_vectors(str(kv_path))
    assert from_kv.counts is not None
    assert from_kv.counts["the"] == model.wv.get_vecattr("the", "count")
    from_txt = load_vectors(str(txt_path))
    # gensim invents descending counts for word2vec files; they must not pass as real ones
    assert from_txt.counts is None
    assert counts_of(from_txt.kv) is None


def test_full_model_is_loaded_read_only_with_its_counts(model: Word2Vec, tmp_path: Path) -> None:
    path = tmp_path / "full.model"
    model.save(str(path))
    loaded = load_vectors("full.model", base_dir=tmp_path)
    assert loaded.kind == "model"
    assert loaded.counts is not None and loaded.counts["the"] > 100
    np.testing.assert_array_equal(loaded.kv["police"], model.wv["police"])


def test_keyedvectors_side_files_are_renamed_and_mmapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kv = KeyedVectors(vector_size=20)
    words = [f"w{i}" for i in range(30_000)]
    kv.add_vectors(words, rng.standard_normal((len(words), 20)).astype(np.float32))
    out = tmp_path / "big.kv"
    written = write_vectors(kv, "keyedvectors", out, metadata={"note": "test"})
    names = sorted(p.name for p in written)
    assert names == ["big.kv", "big.kv.meta.json", "big.kv.vectors.npy"]
    assert _no_temp_files(tmp_path)
    back = KeyedVectors.load(str(out), mmap="r")
    assert isinstance(back.vectors, np.memmap)
    np.testing.assert_array_equal(back["w12345"], kv["w12345"])
    loaded = load_vectors(str(out))
    assert loaded.kind == "keyedvectors"
    assert not loaded.kv.vectors.flags.writeable  # read-only mapping


def test_metadata_is_written_beside_the_output(model: Word2Vec, tmp_path: Path) -> None:
    import json

    out = tmp_path / "v.bin"
    written = write_vectors(model.wv, "word2vec-binary", out, metadata={"p_at_1": 0.5, "n": 3})
    assert tmp_path / "v.bin.meta.json" in written
    assert json.loads((tmp_path / "v.bin.meta.json").read_text()) == {"n": 3, "p_at_1": 0.5}


def test_compressed_word2vec_text_is_detected(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "v.txt.gz"
    write_vectors(model.wv, "word2vec-text", out)
    with gzip.open(out, "rb") as handle:
        assert handle.readline().split()[1] == b"24"
    loaded = load_vectors(str(out))
    assert loaded.kind == "word2vec-text"
    assert len(loaded.kv) == len(model.wv)


def test_content_wins_over_a_misleading_extension(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "really-text.bin"
    write_vectors(model.wv, "word2vec-text", out)
    assert load_vectors(str(out)).kind == "word2vec-text"


def test_file_name_with_at_sign_is_a_file_not_a_version(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "vectors@v2.txt"
    write_vectors(model.wv, "word2vec-text", out)
    assert load_vectors(str(out)).kind == "word2vec-text"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("old_keyedvectors_320.dat", "keyedvectors"),  # gensim 3.2 pickle
        ("model-from-gensim-3.8.0.w2v", "model"),
        ("lee_fasttext.vec", "word2vec-text"),
        ("euclidean_vectors.bin", "word2vec-binary"),
        ("high_precision.kv.txt", "word2vec-text"),
    ],
)
def test_gensims_own_fixture_files(name: str, kind: str) -> None:
    loaded = load_vectors(f"gensim-test:{name}")
    assert loaded.kind == kind
    assert len(loaded.kv) > 0
    word = loaded.kv.index_to_key[0]
    assert loaded.kv[word].shape == (loaded.kv.vector_size,)


@pytest.mark.parametrize(
    ("name", "refusal", "says"),
    [
        # gensim 3's fastText wrapper, gone from gensim 4: refused before anything is built
        ("lee_fasttext", "holds a gensim.models.wrappers", "not word vectors"),
        # old hashing; gensim says how to convert
        ("ft_kv_3.6.0.model.gz", "cannot be loaded as a gensim object", "gensim-3.8.3"),
    ],
)
def test_old_gensim_pickles_that_gensim_4_refuses(name: str, refusal: str, says: str) -> None:
    with pytest.raises(DataError, match=refusal) as info:
        load_vectors(f"gensim-test:{name}")
    assert says in str(info.value)


def test_gzipped_keyedvectors_load_without_mmap(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "v.kv.gz"
    written = write_vectors(model.wv, "keyedvectors", out)
    assert sorted(p.name for p in written) == ["v.kv.gz", "v.kv.gz.vectors.npz"]
    loaded = load_vectors(str(out))
    assert loaded.kind == "keyedvectors"
    np.testing.assert_array_equal(loaded.kv["police"], model.wv["police"])


def test_fasttext_model_vectors_come_from_its_wv(tmp_path: Path) -> None:
    ft = FastText(vector_size=12, min_count=3, epochs=1, workers=1)
    ft.build_vocab(LeeSentences())
    ft.train(LeeSentences(), total_examples=ft.corpus_count, epochs=1)
    ft.save(str(tmp_path / "ft.model"))
    loaded = load_vectors(str(tmp_path / "ft.model"))
    assert loaded.kind == "model"
    np.testing.assert_allclose(loaded.kv["police"], ft.wv["police"])


# --- bad input ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError, match="does not exist"):
        load_vectors(str(tmp_path / "nope.kv"))


def test_remote_uri_is_refused_without_showing_its_secret() -> None:
    with pytest.raises(UsageError) as info:
        load_vectors("https://user:hunter2@example.com/v.bin")
    assert "hunter2" not in str(info.value)


def test_truncated_word2vec_text(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "v.txt"
    write_vectors(model.wv, "word2vec-text", out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged word2vec text") as info:
        load_vectors(str(out))
    assert info.value.hint


def test_truncated_word2vec_binary(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "v.bin"
    write_vectors(model.wv, "word2vec-binary", out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 1000])
    with pytest.raises(DataError, match="damaged word2vec binary"):
        load_vectors(str(out))


def test_mis_encoded_word(tmp_path: Path) -> None:
    out = tmp_path / "v.txt"
    out.write_bytes(b"2 3\nword 0.1 0.2 0.3\ncaf\xe9 0.1 0.2 0.3\n")  # latin-1, not UTF-8
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_vectors(str(out))


def test_truncated_pickle(model: Word2Vec, tmp_path: Path) -> None:
    out = tmp_path / "v.kv"
    write_vectors(model.wv, "keyedvectors", out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot be loaded as a gensim object"):
        load_vectors(str(out))


def test_missing_side_file(tmp_path: Path) -> None:
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors([f"w{i}" for i in range(100)], np.ones((100, 4), dtype=np.float32))
    out = tmp_path / "big.kv"
    write_vectors(kv, "keyedvectors", out)
    (tmp_path / "big.kv.vectors.npy").unlink()
    with pytest.raises(DataError, match="side file"):
        load_vectors(str(out))


def test_not_vectors_at_all(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello world\nthis is not a vectors file\n")
    with pytest.raises(DataError, match="first line"):
        load_vectors(str(junk))


def test_pickle_of_something_else(tmp_path: Path) -> None:
    from gensim.corpora import Dictionary

    path = tmp_path / "dict.pkl"
    Dictionary([["a", "b"]]).save(str(path))
    with pytest.raises(DataError, match="not word vectors"):
        load_vectors(str(path))


def test_native_fasttext_bin_is_named() -> None:
    with pytest.raises(DataError, match="native fastText"):
        load_vectors("gensim-test:crime-and-punishment.bin")


def test_old_style_pickle_without_side_file_loads(tmp_path: Path) -> None:
    # a KeyedVectors saved into one file (no side files) is still a KeyedVectors file
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(["a", "b"], np.eye(2, 4, dtype=np.float32))
    with open(tmp_path / "one.kv", "wb") as handle:
        SaveLoad.save(kv, handle)
    assert load_vectors(str(tmp_path / "one.kv")).kind == "keyedvectors"


# --- unwritable output ------------------------------------------------------------------


def test_missing_output_folder(model: Word2Vec, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist") as info:
        write_vectors(model.wv, "word2vec-text", tmp_path / "absent" / "v.txt")
    assert "mkdir" in (info.value.hint or "")


def test_output_folder_is_a_file(model: Word2Vec, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_vectors(model.wv, "word2vec-text", tmp_path / "file" / "v.txt")


def test_unknown_format(model: Word2Vec, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown vectors format"):
        write_vectors(model.wv, "glove", tmp_path / "v")  # type: ignore[arg-type]


def _make_unwritable(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    # root ignores permission bits; the immutable flag stops root too
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a folder unwritable")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i not supported here: {done.stderr.decode().strip()}")


def _make_writable(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o755)
    elif shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)


def test_unwritable_folder_leaves_previous_output(model: Word2Vec, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "v.txt"
    write_vectors(model.wv, "word2vec-text", out)
    before = out.read_bytes()
    _make_unwritable(folder)
    try:
        with pytest.raises(OutputError, match="cannot write") as info:
            write_vectors(model.wv, "word2vec-binary", out)
        assert info.value.hint
        assert out.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["v.txt"]
    finally:
        _make_writable(folder)


def test_disk_full_midway_leaves_no_temp_file_and_old_output(tmp_path: Path) -> None:
    """A write that hits the file-size limit (as a full disk would) fails cleanly."""
    out = tmp_path / "v.kv"
    out.write_bytes(b"previous output")
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        import numpy as np
        from gensim.models import KeyedVectors
        sys.path.insert(0, {str(ROOT)!r})
        from incremental_w2v.errors import OutputError
        from incremental_w2v.vectors.io import write_vectors

        kv = KeyedVectors(vector_size=100)
        kv.add_vectors([f"w{{i}}" for i in range(30000)], np.ones((30000, 100), dtype=np.float32))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            write_vectors(kv, "keyedvectors", {str(out)!r})
        except OutputError as exc:
            print("OUTPUT-ERROR", exc.message, "|", exc.hint)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert "OUTPUT-ERROR" in done.stdout, done.stderr
    assert "no space left" in done.stdout
    assert out.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.kv"]
