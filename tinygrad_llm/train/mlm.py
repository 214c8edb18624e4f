"""Masked language modelling with the one Trainer (lesson 21): a batch source and an objective.

Unlike ``batches``' ``RandomWindows``, whose targets are the inputs shifted by one, ``MaskedWindows``
wraps random windows of the token array as ``[CLS] tokens [SEP]`` and masks them with
``text.masking.mask_tokens`` (15 %, then 80 / 10 / 10): the inputs carry ``[MASK]`` and random
tokens, the labels the original tokens at the chosen positions and ``IGNORE`` elsewhere. A fresh
masking every step, so the model never sees the same question twice. ``masked_lm_loss`` is the
objective (cross-entropy over the chosen positions only) and ``masked_accuracy`` measures how often
the most likely token at a chosen position is the original, on fixed held-out windows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.checks import check_positive_int
from ..core.tensor import Tensor
from ..model.nn import Module
from ..text.masking import IGNORE, mask_tokens
from .batches import FreshDraws, check_generator


class MaskedWindows(FreshDraws):
    """``(inputs, labels)`` batches of ``context_length`` tokens: ``[CLS]``, ``context_length - 2``
    tokens from a random start, ``[SEP]``; masked by ``mask_tokens`` with ``rate``."""

    def __init__(self, tokens: np.ndarray, context_length: int, rng: np.random.Generator, *,
                 cls_id: int, sep_id: int, mask_id: int, vocab_size: int, special_ids: Sequence[int],
                 rate: float = 0.15):
        self.tokens = np.asarray(tokens)
        self.context_length = check_positive_int("context_length", context_length)
        if self.context_length < 3:
            raise ValueError(f"a window of {context_length} tokens has no room between [CLS] and [SEP]")
        if len(self.tokens) < self.context_length - 2:
            raise ValueError(f"the token array has {len(self.tokens)} tokens, fewer than one window of "
                             f"{self.context_length - 2}")
        self.rng = check_generator(rng)
        self.cls_id, self.sep_id = cls_id, sep_id
        self.masking = dict(mask_id=mask_id, vocab_size=vocab_size, special_ids=tuple(special_ids), rate=rate)
        if not 0.0 < rate < 1.0:
            raise ValueError(f"the masking rate must be between 0 and 1 (exclusive), got {rate}")

    def windows(self, starts: np.ndarray) -> np.ndarray:
        """``[CLS] tokens[s : s + T - 2] [SEP]`` for every start s: (B, T) int64."""
        n = len(starts)
        body = self.tokens[starts[:, None] + np.arange(self.context_length - 2)].astype(np.int64)
        return np.concatenate([np.full((n, 1), self.cls_id), body, np.full((n, 1), self.sep_id)], axis=1)

    def next_batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        starts = self.rng.integers(0, len(self.tokens) - self.context_length + 3, size=n)
        return mask_tokens(self.windows(starts), self.rng, **self.masking)


def masked_lm_loss(model: Module, batch: tuple[np.ndarray, np.ndarray]) -> Tensor:
    """The objective: cross-entropy at the masked (chosen) positions only."""
    inputs, labels = batch
    return model(inputs, labels)[1]


def masked_accuracy(model: Module, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """``mlm_loss`` and ``mlm_accuracy`` (the fraction of chosen positions whose most likely token
    is the original) over fixed ``(inputs, labels)`` batches, in eval mode and without a graph."""
    losses, correct, total = [], 0, 0
    with model.inference():
        for inputs, labels in batches:
            logits, loss = model(inputs, labels)
            chosen = labels != IGNORE
            correct += int((logits.data.argmax(axis=-1) == labels)[chosen].sum())
            total += int(chosen.sum())
            losses.append(loss.item() * chosen.sum())
    return {"mlm_loss": float(np.sum(losses) / total), "mlm_accuracy": correct / total}
