"""Measuring a language model: perplexity over a text of any length (lessons 07 and 09).

Perplexity is exp(mean negative log-likelihood per token): the number of equally likely choices
the model is, on average, hesitating between. A model that has learned nothing over a vocabulary
of V tokens has perplexity V.

A text longer than the context is scored with a sliding window: windows of ``context_length``
tokens start every ``stride`` tokens, and each window scores only the tokens that no earlier
window scored, so every token is predicted exactly once. A smaller stride gives each scored
token more context (a better, fairer estimate) at the cost of more forward passes.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import functional as F
from ..core.checks import check_finite_array, check_int, check_positive_int
from ..model.nn import check_token_ids

IGNORE = -100


def sliding_windows(n_tokens: int, context_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored) per window: inputs are tokens[begin:end], targets
    tokens[begin+1:end+1], and targets at indices < first_scored were scored by an earlier window.

    >>> sliding_windows(10, 4, 2)
    [(0, 4, 1), (2, 6, 5), (4, 8, 7), (6, 9, 9)]
    """
    if n_tokens < 2:
        raise ValueError(f"perplexity needs at least 2 tokens, got {n_tokens}")
    check_int("stride", stride)
    if not 0 < stride <= context_length:
        raise ValueError(f"stride must be in 1..context_length ({context_length}), got {stride}")
    windows, scored_up_to, begin = [], 0, 0  # targets 1..scored_up_to are done
    while scored_up_to < n_tokens - 1:
        end = min(begin + context_length, n_tokens - 1)
        windows.append((begin, end, scored_up_to + 1))
        scored_up_to = end
        begin += stride
    return windows


def token_nll(model, tokens: np.ndarray, stride: int | None = None, batch_size: int = 8) -> tuple[float, int]:
    """(sum of negative log-likelihoods, number of tokens scored) of ``tokens[1:]`` under ``model``."""
    tokens = check_token_ids(tokens, model.config.vocab_size)   # careful: floats are refused, never cut
    if tokens.ndim != 1:
        raise ValueError(f"perplexity scores one text: tokens must have shape (N,), got {tokens.shape}")
    tokens = tokens.astype(np.int64)
    check_positive_int("batch_size", batch_size)
    T = model.config.context_length
    windows = sliding_windows(len(tokens), T, T if stride is None else stride)
    total, count = 0.0, 0
    with model.inference():
        # windows of one length are batched together (only the last one can be shorter)
        for length in sorted({end - begin for begin, end, _ in windows}, reverse=True):
            group = [w for w in windows if w[1] - w[0] == length]
            for i in range(0, len(group), batch_size):
                chunk = group[i:i + batch_size]
                inputs = np.stack([tokens[b:e] for b, e, _ in chunk])
                targets = np.stack([tokens[b + 1:e + 1] for b, e, _ in chunk])
                positions = np.stack([np.arange(b + 1, e + 1) for b, e, _ in chunk])
                firsts = np.array([first for _, _, first in chunk])[:, None]
                targets = np.where(positions >= firsts, targets, IGNORE)
                logits = model(inputs)
                # careful: one NaN logit makes the loss NaN and "perplexity nan" looks like a result
                check_finite_array("the model's output (logits)", logits.data)
                loss = F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="sum")
                total += float(loss.item())
                count += int((targets != IGNORE).sum())
    return total, count


def perplexity(model, tokens: np.ndarray, stride: int | None = None, batch_size: int = 8) -> float:
    """exp(mean negative log-likelihood) of ``tokens[1:]``, with a sliding window of the model's
    context length moved by ``stride`` (default: the context length, i.e. no overlap)."""
    total, count = token_nll(model, tokens, stride, batch_size)
    return math.exp(total / count)

