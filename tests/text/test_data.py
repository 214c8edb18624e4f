"""The data pipeline: documents, windows, loaders, the split, and prepared (cached) token arrays."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tinygrad_llm.course import course_corpus, prepare_with_defaults
from tinygrad_llm import (DataLoader, Document, SlidingWindowDataset, corpus_text, course_tokenizer,
                          load_documents, prepare_corpus, random_batch, train_val_split)
from tinygrad_llm.text.corpus import ENDOFTEXT, split_documents
from tinygrad_llm.text.data import token_dtype

ROOT = Path(__file__).resolve().parents[2]
TINY_CORPUS = ROOT / "data" / "tiny_corpus.txt"
TINY_TITLES = ["The Keeper of the North Light", "How to Bake a Loaf Without a Recipe",
               "A Short Field Guide to Mosses", "Counting in Other Bases", "The Night Train to the Coast",
               "Letters from a Cold Spring", "Why the Sky Changes Colour"]
SMALL_VOCAB = 300   # 256 bytes + a few merges + <|endoftext|>: trains in a blink


# --- documents ------------------------------------------------------------------------------------

def test_embedded_corpus_is_the_documentation_topics_in_sorted_order():
    from pydoc_data.topics import topics

    documents = load_documents()
    assert [d.name for d in documents] == sorted(topics)
    assert len(documents) >= 50
    assert 300_000 < sum(len(d.text) for d in documents) < 800_000
    by_name = {d.name: d for d in documents}
    assert by_name["for"].title == 'The "for" statement'
    assert all(d.text and d.text == d.text.strip() and ENDOFTEXT not in d.text for d in documents)


def test_embedded_sections_have_titles_levels_and_text():
    by_name = {d.name: d for d in load_documents()}
    sections = by_name["async"].sections()
    assert sections[0].title == "Coroutines" and sections[0].level == 1
    assert any(s.title == 'The "async for" statement' and s.level == 2 for s in sections)
    assert all(s.text for s in sections[1:])


def test_sections_follow_restructuredtext_headings():
    text = ("Page\n****\n\nIntro line.\n\nFirst\n=====\n\nAlpha.\n   x ::= y\n\nDeeper\n------\nBeta.\n\n"
            "Second\n======\nGamma.\n")
    sections = Document("d", text).sections()
    assert [(s.title, s.level, s.text) for s in sections] == [
        ("Page", 1, "Intro line."), ("First", 2, "Alpha.\n   x ::= y"), ("Deeper", 3, "Beta."),
        ("Second", 2, "Gamma.")]
    assert Document("d", "no headings\nhere").sections() == []
    # an underline of a different length is not a heading (it could be a table border)
    assert Document("d", "Title\n===\nbody").sections() == []


def test_file_documents_are_split_at_endoftext():
    documents = load_documents(TINY_CORPUS)
    assert [d.title for d in documents] == TINY_TITLES
    assert [d.name for d in documents] == [f"tiny_corpus:{i}" for i in range(len(TINY_TITLES))]
    text = corpus_text(documents)
    assert any(ord(c) > 0xFFFF for c in text), "the tiny corpus should contain an emoji"
    assert 10_000 < len(text.encode("utf-8")) < 20_000


def test_file_without_separator_is_one_document(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("\n  One document.\nTwo lines, café ☕.\n\n", encoding="utf-8")
    assert load_documents(path) == [Document("notes", "One document.\nTwo lines, café ☕.")]


def test_separators_strip_whitespace_and_skip_empty_pieces(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(f"{ENDOFTEXT}\n first \n{ENDOFTEXT}\n\n{ENDOFTEXT}second{ENDOFTEXT}", encoding="utf-8")
    assert [d.text for d in load_documents(path)] == ["first", "second"]


def test_folder_reads_txt_files_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("bee", encoding="utf-8")
    (tmp_path / "a.txt").write_text("ant", encoding="utf-8")
    (tmp_path / "c.md").write_text("not a text file", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.txt").write_text("nested files are not read", encoding="utf-8")
    (tmp_path / "e.txt").write_text(f"elk{ENDOFTEXT}emu", encoding="utf-8")
    documents = load_documents(tmp_path)
    assert [(d.name, d.text) for d in documents] == [("a", "ant"), ("b", "bee"), ("e:0", "elk"), ("e:1", "emu")]


def test_byte_order_mark_is_not_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello")
    assert load_documents(path)[0].text == "hello"


def test_invalid_utf8_names_the_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("abc".encode() + "é".encode("latin-1") + b" more")
    with pytest.raises(ValueError, match=r"latin1\.txt: not valid UTF-8 at byte offset 3"):
        load_documents(path)
    (tmp_path / "good.txt").write_text("fine", encoding="utf-8")
    with pytest.raises(ValueError, match=r"latin1\.txt.*byte offset 3"):
        load_documents(tmp_path)   # the folder names the bad file too


@pytest.mark.parametrize("content", ["", " \n\t\n", f"{ENDOFTEXT}\n{ENDOFTEXT}"])
def test_empty_corpus_raises(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="corpus is empty"):
        load_documents(path)


def test_missing_path_and_folder_without_text_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus not found"):
        load_documents(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="no .txt files"):
        load_documents(tmp_path)


def test_corpus_text_puts_the_separator_between_documents_and_round_trips():
    documents = load_documents(TINY_CORPUS)
    text = corpus_text(documents)
    assert text.count(ENDOFTEXT) == len(documents) - 1
    assert not text.endswith(ENDOFTEXT)
    assert [d.text for d in split_documents(text, "x")] == [d.text for d in documents]
    assert corpus_text(["a", "b"], separator="\n\n") == "a\n\nb"


def test_corpus_text_rejects_a_separator_inside_a_document():
    with pytest.raises(ValueError, match="document 1 contains the separator"):
        corpus_text(["fine", f"one{ENDOFTEXT}two"])


# --- the sliding window ---------------------------------------------------------------------------

@pytest.mark.parametrize("n, max_length, stride, expected", [
    (10, 4, 2, 3), (10, 4, 4, 2), (10, 4, 1, 6), (5, 4, 3, 1), (9, 4, 4, 2), (100, 8, 3, 31)])
def test_number_of_windows(n, max_length, stride, expected):
    dataset = SlidingWindowDataset(np.arange(n), max_length, stride)
    assert len(dataset) == expected == (n - max_length - 1) // stride + 1
    # the last window's target is still inside the array, and one more window would not be
    last_start = (len(dataset) - 1) * stride
    assert last_start + max_length < n <= last_start + stride + max_length


def test_targets_are_inputs_shifted_by_one():
    tokens = np.random.default_rng(0).integers(0, 500, size=200).astype(np.uint16)
    dataset = SlidingWindowDataset(tokens, max_length=16, stride=5)
    for i in range(len(dataset)):
        inputs, targets = dataset[i]
        assert inputs.dtype == targets.dtype == np.int64 and inputs.shape == targets.shape == (16,)
        np.testing.assert_array_equal(inputs, tokens[5 * i:5 * i + 16])
        np.testing.assert_array_equal(targets, tokens[5 * i + 1:5 * i + 17])


@pytest.mark.parametrize("stride", [1, 3, 8, 11])
def test_stride_sets_the_overlap_of_neighbouring_windows(stride):
    max_length = 8
    dataset = SlidingWindowDataset(np.arange(100), max_length, stride)
    first, second = dataset[0][0], dataset[1][0]
    shared = np.intersect1d(first, second).size
    assert shared == max(0, max_length - stride)
    assert second[0] - first[0] == stride


def test_stride_defaults_to_max_length_and_tiles_the_targets():
    dataset = SlidingWindowDataset(np.arange(41), max_length=10)
    assert dataset.stride == 10 and len(dataset) == 4
    targets = np.concatenate([dataset[i][1] for i in range(len(dataset))])
    np.testing.assert_array_equal(targets, np.arange(1, 41))   # each token a target exactly once


def test_negative_indices_and_batches_match_single_windows():
    dataset = SlidingWindowDataset(np.arange(50), max_length=6, stride=4)
    np.testing.assert_array_equal(dataset[-1][0], dataset[len(dataset) - 1][0])
    inputs, targets = dataset.batch(np.array([3, 0, -1]))
    assert inputs.shape == (3, 6)
    for row, i in enumerate([3, 0, -1]):
        np.testing.assert_array_equal(inputs[row], dataset[i][0])
        np.testing.assert_array_equal(targets[row], dataset[i][1])
    inputs[0, 0] = -7   # the arrays are independent copies, not views of each other or of tokens
    assert dataset[3][0][0] == 12 and targets[0, 0] == 13


def test_window_index_errors():
    dataset = SlidingWindowDataset(np.arange(20), max_length=4, stride=4)
    with pytest.raises(IndexError):
        dataset[len(dataset)]
    with pytest.raises(IndexError):
        dataset[-len(dataset) - 1]
    with pytest.raises(TypeError):
        dataset[1.0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(tokens=np.arange(8), max_length=8, stride=1), "fewer than one window"),
    (dict(tokens=np.arange(8), max_length=0, stride=1), "max_length must be an integer"),
    (dict(tokens=np.arange(8), max_length=-3, stride=1), "max_length must be an integer"),
    (dict(tokens=np.arange(8), max_length=4, stride=0), "stride must be an integer"),
    (dict(tokens=np.arange(8), max_length=4, stride=-2), "stride must be an integer"),
    (dict(tokens=np.arange(8), max_length=4.0, stride=2), "max_length must be an integer"),
    (dict(tokens=np.arange(8), max_length=True, stride=2), "max_length must be an integer"),
    (dict(tokens=np.zeros((4, 4), dtype=np.int64), max_length=2, stride=1), "1-D array of integer ids"),
    (dict(tokens=np.linspace(0, 1, 9), max_length=2, stride=1), "1-D array of integer ids"),
])
def test_sliding_window_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):   # TypeError: 4.0 and True are not integers
        SlidingWindowDataset(**kwargs)


# --- the loader -----------------------------------------------------------------------------------

def test_loader_without_shuffle_visits_windows_in_order():
    dataset = SlidingWindowDataset(np.arange(101), max_length=4, stride=4)   # 25 windows
    loader = DataLoader(dataset, batch_size=5)
    batches = list(loader)
    assert len(loader) == len(batches) == 5
    inputs = np.concatenate([x for x, _ in batches])
    targets = np.concatenate([y for _, y in batches])
    assert inputs.shape == (25, 4) and inputs.dtype == np.int64
    np.testing.assert_array_equal(inputs[:, 0], np.arange(0, 100, 4))
    np.testing.assert_array_equal(targets, inputs + 1)


@pytest.mark.parametrize("drop_last, n_batches, last_rows", [(True, 3, 7), (False, 4, 2)])
def test_drop_last(drop_last, n_batches, last_rows):
    dataset = SlidingWindowDataset(np.arange(24), max_length=1, stride=1)   # 23 windows
    loader = DataLoader(dataset, batch_size=7, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == n_batches
    assert batches[-1][0].shape == (last_rows, 1)


def test_shuffle_is_reproducible_and_each_epoch_is_a_permutation():
    dataset = SlidingWindowDataset(np.arange(61), max_length=2, stride=2)    # 30 windows
    def epochs(seed):
        loader = DataLoader(dataset, batch_size=10, shuffle=True, rng=np.random.default_rng(seed))
        return [np.concatenate([x[:, 0] // 2 for x, _ in loader]) for _ in range(2)]
    first, second = epochs(7)
    again = epochs(7)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])
    assert sorted(first) == sorted(second) == list(range(30))
    assert not np.array_equal(first, second), "a new epoch draws a new order"
    assert not np.array_equal(first, epochs(8)[0])


def test_loader_stacks_a_dataset_without_a_batch_method():
    items = [(np.arange(i, i + 3), np.arange(i + 1, i + 4)) for i in range(5)]
    inputs, targets = next(iter(DataLoader(items, batch_size=4)))
    assert inputs.shape == (4, 3) and inputs.dtype == np.int64
    np.testing.assert_array_equal(targets, inputs + 1)


def test_loader_errors():
    dataset = SlidingWindowDataset(np.arange(20), max_length=4, stride=4)   # 4 windows
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        DataLoader(dataset, batch_size=0)
    with pytest.raises(ValueError, match="shuffle=True needs rng"):
        DataLoader(dataset, batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="fewer than batch_size 5"):
        DataLoader(dataset, batch_size=5)
    assert len(DataLoader(dataset, batch_size=5, drop_last=False)) == 1


# --- random windows and the split -----------------------------------------------------------------

def test_random_batch_shapes_shift_and_range():
    tokens = np.arange(40, dtype=np.uint16)
    inputs, targets = random_batch(tokens, batch_size=500, context_length=7, rng=np.random.default_rng(0))
    assert inputs.shape == targets.shape == (500, 7) and inputs.dtype == np.int64
    np.testing.assert_array_equal(targets, inputs + 1)
    np.testing.assert_array_equal(inputs - inputs[:, :1], np.broadcast_to(np.arange(7), (500, 7)))
    starts = inputs[:, 0]
    assert starts.min() == 0 and starts.max() == 40 - 7 - 1   # every legal start, no illegal one
    again, _ = random_batch(tokens, batch_size=500, context_length=7, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(inputs, again)


def test_random_batch_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fewer than one window"):
        random_batch(np.arange(8), 2, 8, rng)
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        random_batch(np.arange(20), 0, 8, rng)
    with pytest.raises(ValueError, match="context_length must be an integer"):
        random_batch(np.arange(20), 2, -1, rng)
    with pytest.raises(TypeError, match="np.random.Generator"):
        random_batch(np.arange(20), 2, 4, 0)


def test_split_holds_out_a_contiguous_tail():
    tokens = np.arange(1000, dtype=np.uint16)
    train, val = train_val_split(tokens, 0.1)
    assert (len(train), len(val)) == (900, 100)
    np.testing.assert_array_equal(np.concatenate([train, val]), tokens)
    assert np.shares_memory(train, tokens) and train.dtype == np.uint16
    assert [len(part) for part in train_val_split(np.arange(7), 0.3)] == [5, 2]


@pytest.mark.parametrize("n, fraction", [(100, 0.0), (100, 1.0), (100, -0.1), (5, 0.05), (3, 0.9)])
def test_split_errors(n, fraction):
    with pytest.raises(ValueError):
        train_val_split(np.arange(n), fraction)


def test_token_dtype_is_the_smallest_that_fits():
    assert token_dtype(256) is np.uint16 and token_dtype(2**16) is np.uint16
    assert token_dtype(2**16 + 1) is np.uint32 and token_dtype(100_277) is np.uint32


# --- prepared corpora -----------------------------------------------------------------------------

def test_prepare_corpus_encodes_splits_and_reports_statistics(tmp_path):
    prepared = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, val_fraction=0.2, out_dir=tmp_path)
    tokenizer, stats = prepared.tokenizer, prepared.stats
    text = corpus_text(load_documents(TINY_CORPUS))
    tokens = np.concatenate([prepared.train, prepared.val])
    assert not prepared.cached and prepared.folder.parent == tmp_path
    assert prepared.train.dtype == prepared.val.dtype == np.uint16
    # the arrays are the whole corpus, encoded with the separator as one special token
    assert tokens.tolist() == tokenizer.encode(text, allowed_special="all")
    assert tokenizer.decode(tokens.tolist()) == text
    assert int((tokens == tokenizer.special_tokens[ENDOFTEXT]).sum()) == len(TINY_TITLES) - 1
    assert stats["documents"] == len(TINY_TITLES)
    assert stats["characters"] == len(text) and stats["bytes"] == len(text.encode("utf-8"))
    assert stats["tokens"] == len(tokens) == stats["train_tokens"] + stats["val_tokens"]
    assert stats["val_tokens"] == round(0.2 * len(tokens))
    assert stats["bytes_per_token"] == pytest.approx(stats["bytes"] / stats["tokens"])
    assert 1.0 < stats["bytes_per_token"] < 4.0
    assert stats["vocab_size"] == tokenizer.vocab_size
    assert stats["vocab_coverage"] == pytest.approx(np.unique(tokens).size / tokenizer.vocab_size)
    # the files on disk hold the same arrays, and need no pickle to read
    np.testing.assert_array_equal(np.load(prepared.train_path, allow_pickle=False), prepared.train)
    np.testing.assert_array_equal(np.load(prepared.val_path, allow_pickle=False), prepared.val)
    meta = json.loads((prepared.folder / "meta.json").read_text(encoding="utf-8"))
    assert meta["stats"]["tokens"] == stats["tokens"]
    assert sorted(p.name for p in prepared.folder.iterdir()) == ["meta.json", "tokenizer.json",
                                                                 "train.npy", "val.npy"]


def test_prepare_corpus_is_cached_by_text_and_settings(tmp_path):
    first = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, out_dir=tmp_path)
    second = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, out_dir=tmp_path)
    assert second.cached and second.folder == first.folder
    np.testing.assert_array_equal(second.train, first.train)
    np.testing.assert_array_equal(second.val, first.val)
    assert second.tokenizer.encode("Zürich 🚂") == first.tokenizer.encode("Zürich 🚂")
    assert not prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, out_dir=tmp_path, force=True).cached
    # another setting, or another text, is another preparation
    other = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, val_fraction=0.25, out_dir=tmp_path)
    assert not other.cached and other.folder != first.folder
    edited = tmp_path / "tiny_corpus.txt"
    edited.write_text(TINY_CORPUS.read_text(encoding="utf-8") + " One more sentence.", encoding="utf-8")
    assert prepare_corpus(edited, vocab_size=SMALL_VOCAB, out_dir=tmp_path).folder != first.folder


def test_a_damaged_cache_is_rebuilt(tmp_path):
    first = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, out_dir=tmp_path)
    first.train_path.write_bytes(b"not an array")
    again = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, out_dir=tmp_path)
    assert not again.cached
    np.testing.assert_array_equal(again.train, first.train)


def test_prepare_corpus_with_a_given_tokenizer(tmp_path):
    tokenizer = prepare_corpus(TINY_CORPUS, vocab_size=SMALL_VOCAB, out_dir=tmp_path / "a").tokenizer
    prepared = prepare_corpus(TINY_CORPUS, tokenizer=tokenizer, out_dir=tmp_path / "b")
    assert prepared.tokenizer is tokenizer
    assert prepare_corpus(TINY_CORPUS, tokenizer=tokenizer, out_dir=tmp_path / "b").cached
    with pytest.raises(ValueError, match="disagrees"):
        prepare_corpus(TINY_CORPUS, tokenizer=tokenizer, vocab_size=SMALL_VOCAB + 1, out_dir=tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    (dict(vocab_size=100), "vocab_size must be an integer above 256"),
    (dict(vocab_size=SMALL_VOCAB, val_fraction=1.5), "val_fraction must be between 0 and 1"),
])
def test_prepare_corpus_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare_corpus(TINY_CORPUS, out_dir=tmp_path, **kwargs)


def test_course_tokenizer_is_trained_once_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_LLM_OUT", str(tmp_path))
    tokenizer = course_tokenizer(quick=True)
    path = tmp_path / "tokenizer" / "course_tokenizer_quick.json"
    assert path.exists() and tokenizer.special_tokens.keys() == {ENDOFTEXT}
    saved = path.read_bytes()
    loaded = course_tokenizer(quick=True)
    assert path.read_bytes() == saved, "the second call loads, it does not retrain"
    sample = 'for x in range(10):\n    print(f"{x!r}")  # naïve ✓'
    assert loaded.encode(sample) == tokenizer.encode(sample) and loaded.decode(loaded.encode(sample)) == sample
    # the embedded corpus at the quick vocabulary uses this same tokenizer, by name or by default
    prepared = course_corpus(quick=True)
    assert prepare_with_defaults(quick=True).folder == prepared.folder
    assert prepared.folder.parent == tmp_path / "data"
    assert prepared.tokenizer.encode(sample) == tokenizer.encode(sample)
    assert prepared.stats["documents"] == len(load_documents())


# --- the command line -----------------------------------------------------------------------------

def _prepare_script():
    spec = importlib.util.spec_from_file_location("prepare_script", ROOT / "data" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_script_writes_arrays_and_prints_statistics(tmp_path, capsys):
    script = _prepare_script()
    args = ["--input", str(TINY_CORPUS), "--vocab-size", str(SMALL_VOCAB), "--out", str(tmp_path)]
    assert script.main(args) == 0
    assert "computed" in capsys.readouterr().out
    (folder,) = tmp_path.iterdir()
    assert (folder / "train.npy").exists() and (folder / "val.npy").exists()
    assert script.main(args) == 0
    assert "loaded from cache" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--input", "no/such/file.txt"], "corpus not found"),
    (["--val-fraction", "2"], "val_fraction must be between 0 and 1"),
])
def test_prepare_script_reports_errors_in_one_line(tmp_path, capsys, args, message):
    assert _prepare_script().main(args + ["--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
