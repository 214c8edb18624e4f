"""The warm-up tokenizers of lesson 02: characters and words."""

from __future__ import annotations

import pytest

from tinygrad_llm.text.simple import ENDOFTEXT, UNK, CharTokenizer, WordTokenizer

CORPUS = "The cat sat on the mat. The dog sat on the log!"


def test_char_tokenizer_round_trips_the_characters_it_knows():
    tok = CharTokenizer.from_text(CORPUS)
    assert tok.vocab == sorted(set(CORPUS)) and tok.vocab_size == len(set(CORPUS))
    ids = tok.encode("the cat!")
    assert len(ids) == len("the cat!") and tok.decode(ids) == "the cat!"


def test_char_tokenizer_cannot_encode_an_unseen_character():
    tok = CharTokenizer.from_text(CORPUS)
    with pytest.raises(ValueError, match=r"'🙂' \(U\+1F642\) is not in the vocabulary"):
        tok.encode("the 🙂")


def test_char_tokenizer_rejects_a_bad_vocabulary():
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match="duplicate"):
        CharTokenizer(["a", "a"])


def test_word_split_keeps_punctuation_and_special_tokens_whole():
    assert WordTokenizer.split("Hi--there, you.<|endoftext|>Next") == \
        ["Hi", "--", "there", ",", "you", ".", ENDOFTEXT, "Next"]


def test_word_tokenizer_vocabulary_and_unknown_words():
    tok = WordTokenizer.from_text(CORPUS)
    words = sorted(set(WordTokenizer.split(CORPUS)))
    assert tok.vocab == [*words, ENDOFTEXT, UNK]
    ids = tok.encode("The cow sat.")
    assert ids == [tok.vocab.index("The"), tok.unk_id, tok.vocab.index("sat"), tok.vocab.index(".")]
    assert tok.decode(ids) == "The <|unk|> sat."


def test_word_tokenizer_documents_are_separated_by_endoftext():
    tok = WordTokenizer.from_text([CORPUS, "A bird."])
    ids = tok.encode_documents(["The cat sat.", "A bird."])
    assert ids.count(tok.eot_id) == 1
    assert tok.decode(ids) == "The cat sat. <|endoftext|> A bird."
    assert tok.encode("sat.<|endoftext|>A") == [tok.vocab.index("sat"), tok.vocab.index("."), tok.eot_id,
                                                tok.vocab.index("A")]


def test_word_tokenizer_min_count_turns_rare_words_into_unknowns():
    tok = WordTokenizer.from_text(CORPUS, min_count=2)
    assert "sat" in tok.vocab and "cat" not in tok.vocab
    assert tok.encode("cat") == [tok.unk_id]


def test_word_tokenizer_loses_spacing():
    tok = WordTokenizer.from_text("a  b\n\nc")
    assert tok.decode(tok.encode("a  b\n\nc")) == "a b c"


def test_word_tokenizer_needs_its_special_tokens():
    with pytest.raises(ValueError, match="must contain"):
        WordTokenizer(["a", ENDOFTEXT])
