"""Whole responses as numbers, for the alignment lessons (lesson 25): the log-probability a model gives a
response, and the batches of preference pairs that the reward model, DPO and PPO read.

DPO and PPO need log pi(y | x) = sum_t log p(y_t | x, y_<t), the sum over the response's tokens
only. Lesson 11's ``collate`` already marks those targets (every other target is ignored), so
the sum is the negative of cross-entropy with ``reduction="none"`` summed over each row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core import functional as F
from ..core.tensor import Tensor
from ..finetune.instruction_data import IGNORE_INDEX, EncodedExample, collate
from ..train.batches import ShuffledRows
from .preferences import EncodedPair


def sequence_logprobs(model, inputs: np.ndarray, targets: np.ndarray) -> Tensor:
    """log pi(response | prompt) of each row, shape (B,): the sum of the log-probabilities of the
    targets that count (``targets != IGNORE_INDEX``), under ``model`` (a GPT)."""
    if inputs.shape != targets.shape or inputs.ndim != 2:
        raise ValueError(f"inputs and targets must both be (batch, time), got {inputs.shape} and {targets.shape}")
    if not (targets != IGNORE_INDEX).any(axis=1).all():
        raise ValueError("a row has no response token to score")
    return token_logprobs(model(inputs), targets).sum(axis=1)              # (B,)


def token_logprobs(logits: Tensor, targets: np.ndarray) -> Tensor:
    """log p(target_t | inputs_<=t) at every position of (B, L, V) logits, shape (B, L), 0 where
    the target is ignored: the per-token terms of a response's log-probability, and of PPO's
    KL penalty and ratio."""
    return -F.cross_entropy(logits, targets, reduction="none")


def pair_rows(pairs: Sequence[EncodedPair]) -> list[EncodedExample]:
    """The chosen responses of ``pairs`` followed by their rejected ones: one batch of 2B rows,
    so one forward pass scores both sides (row b and row B + b are a pair)."""
    if len(pairs) == 0:
        raise ValueError("a batch needs at least one preference pair")
    return [p.chosen for p in pairs] + [p.rejected for p in pairs]


def pair_batch(pairs: Sequence[EncodedPair], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``collate`` of ``pair_rows(pairs)``: (inputs, targets), each (2B, L)."""
    return collate(pair_rows(pairs), pad_id)


def reference_logprobs(model, pairs: Sequence[EncodedPair], pad_id: int, batch_size: int = 16) -> np.ndarray:
    """log pi_ref of (chosen, rejected) for every pair, shape (N, 2), without a graph: DPO's
    reference model is frozen, so its numbers are computed once before training."""
    out = np.empty((len(pairs), 2))
    with model.inference():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            values = sequence_logprobs(model, *pair_batch(chunk, pad_id)).data
            out[start:start + len(chunk)] = values.reshape(2, len(chunk)).T
    return out


def pair_batches(pairs: Sequence[EncodedPair], rng: np.random.Generator) -> ShuffledRows:
    """A batch source of shuffled preference pairs, ``(indices, pairs)`` per batch: every pair once
    per pass, a new order each pass (the reward model's and DPO's batches; DPO looks its
    reference numbers up by index)."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no preference pairs to train on")
    return ShuffledRows(len(pairs), lambda index: (index, [pairs[i] for i in index]), rng)
