"""Hostile inputs to evaluation (lessons 07 and 09): perplexity of tokens that are not one
sequence of integer ids, of a model whose output is not finite; metrics of no examples."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.evaluate.metrics import macro_f1, precision_recall_f1
from tinygrad_llm.evaluate.perplexity import token_nll

NAN, INF = float("nan"), float("inf")
CONFIG = tl.GPTConfig(vocab_size=20, context_length=8, d_model=8, n_layer=1, n_head=2)
MODEL = tl.GPT(CONFIG, rng=np.random.default_rng(0))
TOKENS = np.arange(30) % 20

PERPLEXITY_CASES = [
    (dict(tokens=TOKENS.astype(np.float64)), TypeError, "token ids must be integers, got float64"),
    (dict(tokens=TOKENS + 0.7), TypeError, "token ids must be integers"),
    (dict(tokens=TOKENS.reshape(2, 15)), ValueError, r"tokens must have shape \(N,\), got \(2, 15\)"),
    (dict(tokens=TOKENS, batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    (dict(tokens=TOKENS, batch_size=2.0), TypeError, "batch_size must be an integer"),
    (dict(tokens=TOKENS, stride=0), ValueError, "stride must be in 1..context_length"),
    (dict(tokens=TOKENS, stride=2.5), TypeError, "stride must be an integer"),
    (dict(tokens=TOKENS, stride=9), ValueError, r"stride must be in 1..context_length \(8\)"),
    (dict(tokens=np.array([3])), ValueError, "at least 2 tokens"),
    (dict(tokens=np.array([3, 25])), IndexError, "token id 25 is out of range"),
]


@pytest.mark.parametrize("kwargs, error, message", PERPLEXITY_CASES)
def test_perplexity_refuses_bad_tokens_and_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        tl.perplexity(MODEL, **kwargs)


@pytest.mark.parametrize("value, message", [(NAN, "non-finite value"), (INF, "non-finite value")])
def test_perplexity_of_a_model_with_non_finite_output_is_an_error_not_nan(value, message):
    broken = tl.GPT(CONFIG, rng=np.random.default_rng(0))
    broken.final_norm.bias.data[0] = value
    with pytest.raises(FloatingPointError, match=f"the model's output \\(logits\\) has .*{message}"):
        token_nll(broken, TOKENS)


def test_perplexity_of_integer_tokens_of_any_width_is_the_same():
    reference = tl.perplexity(MODEL, TOKENS)
    assert np.isfinite(reference)
    for dtype in (np.uint8, np.uint16, np.int32):
        assert tl.perplexity(MODEL, TOKENS.astype(dtype)) == pytest.approx(reference)


METRIC_CASES = [
    (lambda: macro_f1(np.zeros((3, 3), int)), ValueError, "needs at least one example"),
    (lambda: macro_f1(np.zeros((0, 0), int)), ValueError, "needs at least one example"),
    (lambda: precision_recall_f1(np.zeros((2, 3))), ValueError, "a confusion matrix is square"),
]


@pytest.mark.parametrize("call, error, message", METRIC_CASES)
def test_metrics_of_nothing_raise_instead_of_returning_nan(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_macro_f1_with_one_class_present_is_still_a_score():
    assert macro_f1(np.array([[3, 0], [0, 0]])) == 1.0
