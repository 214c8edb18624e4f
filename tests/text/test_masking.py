"""The masking rule of masked language modelling: proportions over many draws, specials never chosen."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm.text import masking
from tinygrad_llm.text.bpe import BPETokenizer
from tinygrad_llm.text.masking import ENCODER_SPECIALS, IGNORE, add_special_tokens, mask_tokens

V, MASK, SPECIALS = 50, 49, (46, 47, 48, 49)


def test_docstring_examples_run():
    assert doctest.testmod(masking).failed == 0


def _draw(rows=4000, T=40, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 46, (rows, T))
    ids[:, 0], ids[:, -1] = 46, 47                       # [CLS] ... [SEP]
    ids[::3, 5] = 48                                     # some other special inside
    inputs, labels = mask_tokens(ids, rng, mask_id=MASK, vocab_size=V, special_ids=SPECIALS)
    return ids, inputs, labels


def test_proportions_over_many_draws_are_the_rule_within_four_standard_errors():
    ids, inputs, labels = _draw()
    maskable = ~np.isin(ids, SPECIALS)
    chosen = labels != IGNORE
    p = chosen.sum() / maskable.sum()
    assert abs(p - 0.15) < 4 * np.sqrt(0.15 * 0.85 / maskable.sum())
    n = chosen.sum()
    masked = (inputs[chosen] == MASK).mean()
    kept = (inputs[chosen] == ids[chosen]).mean()
    changed = ((inputs[chosen] != MASK) & (inputs[chosen] != ids[chosen])).mean()
    # a random replacement equals the original with probability 1/46: it then counts as kept
    expected_random = 0.1 * (1 - 1 / 46)
    for got, expected in ((masked, 0.8), (changed, expected_random), (kept, 1 - 0.8 - expected_random)):
        assert abs(got - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def test_each_row_chooses_its_share_rounded_up_or_down():
    ids, _, labels = _draw(rows=500)
    n = (~np.isin(ids, SPECIALS)).sum(axis=1)
    k = (labels != IGNORE).sum(axis=1)
    assert np.all((k == np.floor(0.15 * n)) | (k == np.ceil(0.15 * n)))


def test_special_tokens_are_never_chosen_nor_drawn_as_random_tokens():
    ids, inputs, labels = _draw()
    special = np.isin(ids, SPECIALS)
    assert np.all(labels[special] == IGNORE) and np.array_equal(inputs[special], ids[special])
    replaced = (labels != IGNORE) & (inputs != MASK)
    assert not np.isin(inputs[replaced], SPECIALS).any()


def test_labels_hold_the_original_tokens_at_the_chosen_positions_only():
    ids, inputs, labels = _draw(rows=50)
    chosen = labels != IGNORE
    assert np.array_equal(labels[chosen], ids[chosen])
    assert np.array_equal(inputs[~chosen], ids[~chosen])


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_a_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ValueError, match="masking rate"):
        mask_tokens(np.zeros((1, 4), dtype=np.int64), np.random.default_rng(0), mask_id=MASK, vocab_size=V, rate=rate)


def test_a_row_of_special_tokens_only_is_refused():
    ids = np.array([[1, 2, 3], [46, 47, 47]])
    with pytest.raises(ValueError, match="row 1 has no maskable token"):
        mask_tokens(ids, np.random.default_rng(0), mask_id=MASK, vocab_size=V, special_ids=SPECIALS)


def test_added_special_tokens_leave_every_existing_id_alone():
    tokenizer = BPETokenizer.train("the river bank and the bank account " * 20, vocab_size=270, pattern="gpt4")
    bigger = add_special_tokens(tokenizer)
    text = "the bank of the river<|endoftext|>an account"
    assert bigger.encode(text, allowed_special="all") == tokenizer.encode(text, allowed_special="all")
    ids = [bigger.special_token_id(name) for name in ENCODER_SPECIALS]
    assert ids == list(range(tokenizer.vocab_size, tokenizer.vocab_size + 4))
    assert bigger.vocab_size == tokenizer.vocab_size + 4
    assert bigger.decode([ids[2]]) == "[MASK]"
    with pytest.raises(ValueError, match="already has"):
        add_special_tokens(bigger)
