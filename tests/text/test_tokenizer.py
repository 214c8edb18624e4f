"""Byte-level BPE: training against a naive reference, encoding, special tokens, files, interop.

The naive trainer below recounts every pair of every pre-token occurrence at every step, the
definition of BPE training written as plainly as possible; the library's incremental trainer
must produce exactly its merges. ``benchmarks/bench_tokenizer.py`` times it too.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter

import numpy as np
import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_llm.text.bpe import BPETokenizer, _merge_long, _merge_short, count_pretokens, merge_by_rank
from tinygrad_llm.text.patterns import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, resolve_pattern
from tinygrad_llm.text.formats import FORMAT_VERSION, bytes_to_unicode

EOT = "<|endoftext|>"
VALID_CHARACTERS = st.characters(exclude_categories=["Cs"])    # every code point but lone surrogates
FEW_EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# GPT-2's own pattern as released (encoder.py); ours groups the contractions, which must not matter
ORIGINAL_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Strings that break careless tokenizers: multi-byte UTF-8, combining marks, joiners, RTL text,
# control characters, whitespace runs, the empty string.
TRICKY = [
    "",
    " ",
    "   \n\n\t  \r\n",
    "hello world",
    "Zürich naïve café",
    "e\u0301 vs é (combining acute vs precomposed)",
    "👋🏽 family: 👨\u200d👩\u200d👧, flag: 🇫🇷",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "مرحبا بالعالم עברית",
    "tab\there\x00null\x1bescape\x7fdel",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "I'm you'LL we've THEY'RE don't",
    "numbers 1234567 and 3.14159, 2024-01-01",
    "    def f(x):\n        return x ** 2\n",
]


# --- the naive reference trainer -------------------------------------------------------------------

def pretokenize(text: str, pattern: str | None, special_tokens=(EOT,)) -> list[str]:
    """Every pre-token occurrence, in order (no counting, no dedupe)."""
    chunks = re.split("|".join(re.escape(s) for s in special_tokens), text) if special_tokens else [text]
    if pattern is None:
        return [chunk for chunk in chunks if chunk]
    return [piece for chunk in chunks for piece in regex.findall(resolve_pattern(pattern), chunk)]


def merge_word(word: list[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def naive_pair_counts(words: list[list[int]]) -> Counter:
    """Pair counts as merging applies them: a pair equal to the one just counted overlaps it
    (the run "aaa" holds one mergeable (a, a), not two), so it is skipped."""
    counts: Counter = Counter()
    for word in words:
        last = None
        for pair in zip(word, word[1:]):
            if pair == last:
                last = None
                continue
            counts[pair] += 1
            last = pair
    return counts


def naive_train(text: str, vocab_size: int, pattern: str | None = "gpt4",
                special_tokens=(EOT,)) -> list[tuple[int, int]]:
    """Recount everything at every step; ties go to the smallest pair."""
    words = [list(piece.encode("utf-8")) for piece in pretokenize(text, pattern, special_tokens)]
    merges: list[tuple[int, int]] = []
    while 256 + len(merges) + len(special_tokens) < vocab_size:
        counts = naive_pair_counts(words)
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        new = 256 + len(merges)
        merges.append(pair)
        words = [merge_word(word, pair, new) for word in words]
    return merges


def trained_pairs(tokenizer: BPETokenizer) -> list[tuple[int, int]]:
    return [pair for pair, _ in tokenizer.merges]


def train_quietly(*args, **kwargs) -> BPETokenizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small texts run out of pairs; that is tested separately
        return BPETokenizer.train(*args, **kwargs)


# --- fixtures ----------------------------------------------------------------------------------

def corpus_text(limit: int | None = None) -> str:
    from pydoc_data.topics import topics
    text = EOT.join(topics[key] for key in sorted(topics))
    return text if limit is None else text[:limit]


@pytest.fixture(scope="module")
def corpus() -> str:
    return corpus_text()


@pytest.fixture(scope="module", params=["gpt4", "gpt2", None])
def tokenizer(request, corpus) -> BPETokenizer:
    # a slice of real prose plus the tricky strings, so multi-byte characters get merges too
    text = corpus[:60_000] + EOT + EOT.join(TRICKY * 3)
    return BPETokenizer.train(text, 700, pattern=request.param)


# --- training ----------------------------------------------------------------------------------

@st.composite
def words_with_runs(draw):
    return draw(st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=12))


@FEW_EXAMPLES
@given(st.lists(words_with_runs(), max_size=5))
def test_pair_counts_equal_how_often_the_merge_fires(words):
    counts = naive_pair_counts(words)
    for pair in {p for w in words for p in zip(w, w[1:])}:
        fired = sum(len(w) - len(merge_word(w, pair, 99)) for w in words)
        assert counts[pair] == fired


@pytest.mark.parametrize("text", ["aaabdaaabac", "aaaa", "aaa aaaa aaaaa", "hello hello world",
                                  "ababababab", "🙂🙂🙂 🙂🙂", "", "x", *TRICKY])
@pytest.mark.parametrize("pattern", ["gpt4", "gpt2", None])
def test_train_matches_naive_trainer_on_small_inputs(text, pattern):
    vocab_size = 256 + 1 + 30
    assert trained_pairs(train_quietly(text, vocab_size, pattern=pattern)) == naive_train(text, vocab_size, pattern)


@FEW_EXAMPLES
@given(text=st.text(alphabet=st.sampled_from("aab b c\n é🙂'1") | VALID_CHARACTERS, max_size=80),
       extra_merges=st.integers(1, 40), pattern=st.sampled_from(["gpt4", "gpt2", None]))
def test_train_matches_naive_trainer_on_random_texts(text, extra_merges, pattern):
    vocab_size = 256 + 1 + extra_merges
    assert trained_pairs(train_quietly(text, vocab_size, pattern=pattern)) == naive_train(text, vocab_size, pattern)


@FEW_EXAMPLES
@given(documents=st.lists(st.text(alphabet="ab <|>endoftx", max_size=30), min_size=1, max_size=4))
def test_train_matches_naive_trainer_across_special_tokens(documents):
    text = EOT.join(documents)
    assert trained_pairs(train_quietly(text, 290)) == naive_train(text, 290)


def test_train_matches_naive_trainer_on_real_prose(corpus):
    text = corpus[:6_000]
    assert trained_pairs(BPETokenizer.train(text, 400)) == naive_train(text, 400)


def test_overlapping_pairs_are_counted_as_merges_apply():
    # "aaa" holds (a, a) three ways overlapping but merging fires once; (b, c) fires twice
    tokenizer = BPETokenizer.train("aaabcbc", 257, pattern=None, special_tokens=())
    assert trained_pairs(tokenizer) == [(ord("b"), ord("c"))]


def test_ties_go_to_the_smallest_pair_and_training_is_deterministic():
    # (a, a) and (a, b) both occur twice; the smaller pair (97, 97) < (97, 98) wins
    tokenizer = BPETokenizer.train("aaabdaaabac", 259, pattern=None, special_tokens=())
    assert trained_pairs(tokenizer) == [(97, 97), (97, 98), (256, 257)]
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    again = [trained_pairs(BPETokenizer.train(corpus_text(20_000), 500)) for _ in range(2)]
    assert again[0] == again[1]


def test_vocab_size_counts_bytes_merges_and_special_tokens(corpus):
    tokenizer = BPETokenizer.train(corpus[:30_000], 300, special_tokens=(EOT, "<|pad|>"))
    assert tokenizer.vocab_size == 300
    assert len(tokenizer.merges) == 300 - 256 - 2
    assert tokenizer.special_tokens == {EOT: 298, "<|pad|>": 299}
    assert tokenizer.eot_id == 298 and tokenizer.special_token_id("<|pad|>") == 299


def test_special_tokens_are_never_merged_into_ordinary_tokens():
    # the separator is by far the most frequent string here, yet none of its pairs is learned
    text = EOT.join(["ab cd"] * 50)
    tokenizer = BPETokenizer.train(text, 260)
    assert len(tokenizer.merges) == 3
    learned = [tokenizer.token_bytes(new) for _, new in tokenizer.merges]
    assert not any(b"<" in token or b"|" in token for token in learned)


def test_vocab_size_too_small_raises():
    with pytest.raises(ValueError, match="too small.*257"):
        BPETokenizer.train("hello", 256)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        BPETokenizer.train("hello", 300.0)


def test_training_stops_early_with_a_warning_when_pairs_run_out():
    with pytest.warns(UserWarning, match="only enough pairs for 2 merges"):
        tokenizer = BPETokenizer.train("abc", 400, pattern=None)
    assert tokenizer.vocab_size == 256 + 2 + 1


def test_bad_patterns_and_special_tokens_raise():
    with pytest.raises(ValueError, match="not a valid regex"):
        BPETokenizer.train("x", 300, pattern="([")
    with pytest.raises(ValueError, match="duplicates"):
        BPETokenizer.train("x", 300, special_tokens=(EOT, EOT))
    with pytest.raises(ValueError, match="non-empty strings"):
        BPETokenizer.train("x", 300, special_tokens=("",))
    with pytest.raises(TypeError, match="sequence of names"):
        BPETokenizer.train("x", 300, special_tokens=EOT)


def test_count_pretokens_cuts_special_tokens_then_splits():
    counts = count_pretokens(f"the cat{EOT}the  cat", "gpt2", [EOT])
    assert counts == Counter({"the": 2, " cat": 2, " ": 1})


# --- encoding and decoding ------------------------------------------------------------------------

def test_merge_rules_agree_on_random_pieces(tokenizer):
    rng = np.random.default_rng(0)
    common = [tokenizer.token_bytes(new) for _, new in tokenizer.merges]
    for _ in range(300):
        # glue a few learned tokens and random bytes together so many merges apply
        parts = [common[i] for i in rng.integers(0, len(common), size=rng.integers(1, 30))]
        data = b"".join(parts) + bytes(rng.integers(0, 256, size=rng.integers(0, 5)).tolist())
        ids = list(data)
        reference = merge_by_rank(list(ids), tokenizer._ranks, tokenizer._merges)
        assert _merge_short(list(ids), tokenizer._ranks, tokenizer._merges) == reference
        assert _merge_long(list(ids), tokenizer._ranks, tokenizer._merges) == reference


def test_encoding_reproduces_the_training_segmentation():
    # BPE encodes a training word exactly the way training left it
    tokenizer = BPETokenizer.train("low lower lowest newer newest " * 5, 270, pattern="gpt2")
    assert tokenizer.decode_bytes(tokenizer.encode(" lowest")) == b" lowest"
    assert len(tokenizer.encode(" lowest")) == 1


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_tricky_strings(tokenizer, text):
    ids = tokenizer.encode(text)
    assert all(isinstance(i, int) and 0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode_bytes(ids) == text.encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=VALID_CHARACTERS | st.sampled_from(list(" \n\t\r\u0301\u200d\u05d0🙂日é")),
                   max_size=200))
def test_round_trip_any_valid_unicode(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text, disallowed_special=())) == text


def test_round_trip_long_pieces_without_split():
    tokenizer = BPETokenizer.train("ab" * 500 + " aaaa" * 300, 280, pattern=None)
    text = "ab" * 3000 + "a" * 2001
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert ids == merge_by_rank(list(text.encode()), tokenizer._ranks, tokenizer._merges)


def test_encoding_is_the_same_with_a_warm_cache(tokenizer, corpus):
    text = corpus[100_000:130_000].replace(EOT, " ")
    first = tokenizer.encode(text)
    assert tokenizer.encode(text) == first


def test_lone_surrogates_raise_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 at index 3"):
        tokenizer.encode("abc\ud800def")
    with pytest.raises(ValueError, match="lone surrogate"):
        BPETokenizer.train("x\udfff", 300)


def test_a_pattern_that_skips_characters_raises():
    tokenizer = BPETokenizer.train("hello world", 260, pattern=r"\w+")
    with pytest.raises(ValueError, match="does not match every character"):
        tokenizer.encode("hello world")


def test_gpt2_pattern_splits_like_gpt2s_original():
    texts = TRICKY + [corpus_text(50_000)]
    for text in texts:
        assert regex.findall(GPT2_SPLIT_PATTERN, text) == regex.findall(ORIGINAL_GPT2_PATTERN, text)


def test_gpt4_pattern_splits_numbers_in_threes_and_keeps_case_insensitive_contractions():
    assert regex.findall(GPT4_SPLIT_PATTERN, "In 2024567 THEY'RE") == ["In", " ", "202", "456", "7", " THEY", "'RE"]
    assert regex.findall(GPT2_SPLIT_PATTERN, "In 2024567 THEY'RE") == ["In", " 2024567", " THEY", "'", "RE"]


def test_decode_replaces_broken_utf8_unless_strict(tokenizer):
    ids = tokenizer.encode("é")                 # two bytes, maybe one token, maybe two
    data = b"".join(tokenizer.token_bytes(i) for i in ids)
    assert data == "é".encode()
    byte_ids = [tokenizer.byte_ids[b] for b in "é".encode()]
    assert tokenizer.decode(byte_ids[:1]) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        tokenizer.decode(byte_ids[:1], errors="strict")
    assert tokenizer.decode_bytes(byte_ids[:1]) == b"\xc3"


def test_decode_accepts_arrays_and_rejects_unknown_ids(tokenizer):
    ids = tokenizer.encode("hello there")
    assert tokenizer.decode(np.array(ids, dtype=np.int64)) == "hello there"
    for bad in (-1, tokenizer.vocab_size, 10**9):
        with pytest.raises(ValueError, match=f"token id {bad} is not in the vocabulary"):
            tokenizer.decode([*ids, bad])
    with pytest.raises(ValueError, match="1-D"):
        tokenizer.decode(np.zeros((2, 2), dtype=np.int64))


# --- special tokens -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_specials(corpus) -> BPETokenizer:
    return BPETokenizer.train(corpus[:20_000], 400, special_tokens=(EOT, "<|pad|>"))


def test_special_token_in_user_text_raises_by_default(two_specials):
    with pytest.raises(ValueError, match=re.escape("special token '<|endoftext|>' at index 5")):
        two_specials.encode("hello<|endoftext|>")


def test_allowed_special_all_or_a_set_gives_special_ids(two_specials):
    tok = two_specials
    eot, pad = tok.special_tokens[EOT], tok.special_tokens["<|pad|>"]
    ids = tok.encode("a<|endoftext|>b<|pad|>", allowed_special="all")
    assert ids == tok.encode("a") + [eot] + tok.encode("b") + [pad]
    assert tok.encode("a<|endoftext|>", allowed_special={EOT}) == tok.encode("a") + [eot]
    # allowed {EOT} leaves <|pad|> disallowed, which raises
    with pytest.raises(ValueError, match=re.escape("'<|pad|>'")):
        tok.encode("a<|endoftext|><|pad|>", allowed_special={EOT})
    assert tok.decode(ids) == "a<|endoftext|>b<|pad|>"


def test_disallowed_special_empty_encodes_them_as_plain_text(two_specials):
    tok = two_specials
    ids = tok.encode("a<|endoftext|>", disallowed_special=())
    assert ids == tok.encode_ordinary("a<|endoftext|>")
    assert tok.special_tokens[EOT] not in ids
    assert tok.encode("a<|endoftext|>", allowed_special="none") == ids
    assert tok.decode(ids) == "a<|endoftext|>"


def test_bad_special_arguments_raise(two_specials):
    with pytest.raises(ValueError, match="unknown special tokens"):
        two_specials.encode("x", allowed_special={"<|nope|>"})
    with pytest.raises(ValueError, match="allowed_special must be"):
        two_specials.encode("x", allowed_special="everything")
    with pytest.raises(KeyError, match="no special token"):
        two_specials.special_token_id("<|nope|>")
    with pytest.raises(TypeError, match="must be a str"):
        two_specials.encode(b"bytes")


# --- encode_batch ------------------------------------------------------------------------------

def test_encode_batch_pads_to_the_longest_with_a_mask(two_specials):
    tok = two_specials
    texts = ["hello there, general", "hi", ""]
    batch = tok.encode_batch(texts)
    rows = [tok.encode(t) for t in texts]
    length = max(map(len, rows))
    assert batch.ids.shape == batch.attention_mask.shape == (3, length)
    assert batch.ids.dtype == np.int64 and batch.attention_mask.dtype == np.int64
    for k, row in enumerate(rows):
        assert batch.ids[k, :len(row)].tolist() == row
        assert (batch.ids[k, len(row):] == tok.eot_id).all()
        assert batch.attention_mask[k].tolist() == [1] * len(row) + [0] * (length - len(row))


def test_encode_batch_max_length_and_truncation(two_specials):
    tok = two_specials
    texts = ["one two three four five six seven", "one"]
    full = tok.encode(texts[0])
    batch = tok.encode_batch(texts, max_length=3)
    assert batch.ids.shape == (2, 3) and batch.ids[0].tolist() == full[:3]
    padded = tok.encode_batch(texts, max_length=len(full) + 4, padding="max_length", pad_token="<|pad|>")
    assert padded.ids.shape == (2, len(full) + 4)
    assert padded.ids[0, -1] == tok.special_tokens["<|pad|>"] and padded.attention_mask[0].sum() == len(full)
    with pytest.raises(ValueError, match="more than max_length=3"):
        tok.encode_batch(texts, max_length=3, truncation=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"padding": "left"}, "padding must be"),
    ({"padding": "max_length"}, "needs max_length"),
    ({"max_length": 0}, "positive int"),
    ({"pad_token": "<|nope|>"}, "not a special token"),
    ({"pad_token": -1}, "pad_token must be"),
])
def test_encode_batch_bad_arguments_raise(two_specials, kwargs, message):
    with pytest.raises(ValueError, match=message):
        two_specials.encode_batch(["a", "b"], **kwargs)


def test_encode_batch_rejects_a_single_string_and_an_empty_batch(two_specials):
    with pytest.raises(TypeError, match="list of strings"):
        two_specials.encode_batch("hello")
    with pytest.raises(ValueError, match="empty"):
        two_specials.encode_batch([])


# --- our file format ------------------------------------------------------------------------------

def test_save_load_round_trip(tokenizer, tmp_path, corpus):
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tokenizer.merges and loaded.special_tokens == tokenizer.special_tokens
    assert loaded.pattern == tokenizer.pattern and loaded.vocab_size == tokenizer.vocab_size
    sample = corpus[200_000:220_000].replace(EOT, "") + "".join(TRICKY)
    assert loaded.encode(sample) == tokenizer.encode(sample)
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]    # no temporary file left behind
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == FORMAT_VERSION
    assert data["merges"][0][3] == tokenizer.token_bytes(tokenizer.merges[0][1]).decode("utf-8", "backslashreplace")


def test_load_truncated_file_raises_naming_it(tokenizer, tmp_path):
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*truncated or corrupt"):
        BPETokenizer.load(path)


def test_load_corrupt_merge_raises(tokenizer, tmp_path):
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    left = data["merges"][5][0]
    data["merges"][5][0] = 120 if left != 120 else 121     # still a valid id, but the wrong one
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*says it makes.*the file is corrupt"):
        BPETokenizer.load(path)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(version=FORMAT_VERSION + 1), "format version"),
    (lambda d: d.update(format="something else"), "not a tokenizer file"),
    (lambda d: d.pop("merges"), "missing fields"),
    (lambda d: d["merges"].append([1, 2]), "expected \\[left id"),
    (lambda d: d.update(special_tokens={EOT: 3}), "already taken"),
])
def test_load_wrong_or_damaged_content_raises(tokenizer, tmp_path, change, message):
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + message):
        BPETokenizer.load(path)


def test_load_missing_or_binary_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        BPETokenizer.load(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="bin.json"):
        BPETokenizer.load(tmp_path / "bin.json")


# --- tiktoken ranks ------------------------------------------------------------------------------

def test_tiktoken_ranks_round_trip(tokenizer, corpus):
    ranks = tokenizer.to_tiktoken_ranks()
    assert len(ranks) == 256 + len(tokenizer.merges)
    assert all(ranks[tokenizer.token_bytes(i)] == i for i in range(256 + len(tokenizer.merges)))
    rebuilt = BPETokenizer.from_tiktoken_ranks(ranks, tokenizer.pattern, tokenizer.special_tokens)
    assert rebuilt.merges == tokenizer.merges
    sample = corpus[300_000:310_000].replace(EOT, "")
    assert rebuilt.encode(sample) == tokenizer.encode(sample)


def test_from_tiktoken_ranks_rejects_incomplete_vocabularies():
    ranks = {bytes([b]): b for b in range(255)}
    with pytest.raises(ValueError, match="lack the single bytes \\[255\\]"):
        BPETokenizer.from_tiktoken_ranks(ranks)
    ranks = {bytes([b]): b for b in range(256)} | {b"abc": 256}
    with pytest.raises(ValueError, match="not the merge of two lower-ranked tokens"):
        BPETokenizer.from_tiktoken_ranks(ranks)


@pytest.mark.parametrize("pattern", ["gpt4", "gpt2"])
def test_encodes_like_tiktoken_on_hundreds_of_kilobytes(pattern, corpus):
    tiktoken = pytest.importorskip("tiktoken")
    ours = BPETokenizer.train(corpus[:200_000], 1024, pattern=pattern)
    theirs = tiktoken.Encoding(name=f"ours_{pattern}", pat_str=ours.pattern,
                               mergeable_ranks=ours.to_tiktoken_ranks(), special_tokens=ours.special_tokens)
    text = corpus + EOT + EOT.join(TRICKY)         # ~470 KB, most of it unseen in training
    assert ours.encode(text, allowed_special="all") == theirs.encode(text, allowed_special="all")


# --- GPT-2 files --------------------------------------------------------------------------------

def gpt2_reference_encode(text: str, vocab: dict[str, int], merges_txt: str) -> list[int]:
    """GPT-2's encoder, restated: pre-tokenize, show bytes as printable characters, repeatedly
    merge the lowest-ranked bigram (all its occurrences), look the symbols up in vocab.json."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in printable]
    byte_char = {b: chr(b) for b in printable} | {b: chr(256 + k) for k, b in enumerate(others)}
    lines = [line for line in merges_txt.split("\n")[1:] if line]
    rank = {tuple(line.split(" ")): k for k, line in enumerate(lines)}
    ids = []
    for piece in regex.findall(ORIGINAL_GPT2_PATTERN, text):
        word = [byte_char[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            bigram = min(zip(word, word[1:]), key=lambda pair: rank.get(pair, float("inf")))
            if bigram not in rank:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == bigram:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids.extend(vocab[symbol] for symbol in word)
    return ids


@pytest.fixture(scope="module")
def gpt2_style(corpus) -> BPETokenizer:
    return BPETokenizer.train(corpus[:100_000], 800, pattern="gpt2")


def test_gpt2_files_round_trip(gpt2_style, tmp_path, corpus):
    gpt2_style.save_gpt2(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    merges_txt = (tmp_path / "merges.txt").read_text(encoding="utf-8")
    assert merges_txt.startswith("#version: 0.2\n") and len(vocab) == gpt2_style.vocab_size
    assert vocab["Ġ"] == ord(" ") and vocab[EOT] == gpt2_style.eot_id
    loaded = BPETokenizer.from_gpt2(tmp_path)
    same = BPETokenizer.from_gpt2((tmp_path / "vocab.json", tmp_path / "merges.txt"))
    assert loaded.merges == gpt2_style.merges == same.merges and loaded.special_tokens == {EOT: gpt2_style.eot_id}
    text = corpus[150_000:200_000].replace(EOT, "\n") + "".join(TRICKY)
    assert loaded.encode(text) == gpt2_style.encode(text)


def test_gpt2_loader_encodes_like_gpt2s_algorithm_with_gpt2s_id_layout(gpt2_style, tmp_path, corpus):
    # GPT-2's real vocab.json numbers the 256 byte characters in table order ('!' is 0, 'Ġ' is
    # 220), not by byte value. Rewrite our files that way, then check against the restated encoder.
    gpt2_style.save_gpt2(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    table = bytes_to_unicode()
    order = sorted(range(256), key=lambda b: ord(table[b]))
    vocab.update({table[b]: k for k, b in enumerate(order)})
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    assert vocab["!"] == 0 and vocab["Ġ"] == 220
    loaded = BPETokenizer.from_gpt2(tmp_path)
    merges_txt = (tmp_path / "merges.txt").read_text(encoding="utf-8")
    text = corpus[250_000:300_000].replace(EOT, "\n") + "".join(TRICKY)
    ids = loaded.encode(text)
    assert ids == gpt2_reference_encode(text, vocab, merges_txt)
    assert loaded.decode(ids) == text


def test_gpt2_files_encode_like_hugging_face(gpt2_style, tmp_path, corpus):
    tokenizers = pytest.importorskip("tokenizers")
    gpt2_style.save_gpt2(tmp_path)
    hf = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(tmp_path / "vocab.json"),
                                                               str(tmp_path / "merges.txt")))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    text = corpus[350_000:380_000].replace(EOT, "\n") + "".join(TRICKY)
    assert BPETokenizer.from_gpt2(tmp_path).encode(text) == hf.encode(text).ids


def test_gpt2_loader_errors_name_the_file(gpt2_style, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither vocab.json"):
        BPETokenizer.from_gpt2(tmp_path)
    gpt2_style.save_gpt2(tmp_path)
    merges = tmp_path / "merges.txt"
    merges.write_text("#version: 0.2\nĠ t\nthis line has three\n", encoding="utf-8")
    with pytest.raises(ValueError, match="merges.txt, line 3: expected two tokens"):
        BPETokenizer.from_gpt2(tmp_path)
    merges.write_text("#version: 0.2\nĠ zzzz\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: 'zzzz' is not in vocab.json"):
        BPETokenizer.from_gpt2(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 1', encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.json: not valid JSON"):
        BPETokenizer.from_gpt2(tmp_path)


def test_tokens_with_equal_bytes_cannot_be_exported():
    # two merges that spell the same bytes ("a"+"bc" and "ab"+"c") are fine for encoding
    merges = [(97, 98, 256), (98, 99, 257), (256, 99, 258), (97, 257, 259)]
    tokenizer = BPETokenizer(merges, {EOT: 260}, pattern="gpt2")
    assert tokenizer.decode(tokenizer.encode("abc abcabc")) == "abc abcabc"
    with pytest.raises(ValueError, match="both b'abc'"):
        tokenizer.to_tiktoken_ranks()
