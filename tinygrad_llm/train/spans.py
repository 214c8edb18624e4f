"""Span-corruption pretraining with the one Trainer (lesson 22).

Unlike ``mlm``'s ``MaskedWindows``, which keeps every position and asks for the masked ones in
place, ``SpanCorruptedWindows`` turns each random window of the token array into a source and a
target of different lengths (``text.spans.span_corrupt``): the source is the window with each
hidden span replaced by a sentinel, the target lists the sentinels and their spans. The decoder
is fed the target shifted right behind a start token (teacher forcing) and predicts it token by
token. For a fixed window length the noise and span counts are fixed, so every source and every
target of a batch has the same length and no padding is needed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.checks import check_positive_int
from ..core.tensor import Tensor
from ..model.nn import Module
from ..text.spans import span_corrupt
from .batches import FreshDraws, check_generator


class SpanCorruptedWindows(FreshDraws):
    """``(source, decoder_inputs, targets)`` batches from windows of ``window`` tokens at random
    starts; ``start_id`` opens every decoder input."""

    def __init__(self, tokens: np.ndarray, window: int, rng: np.random.Generator, *, sentinels: Sequence[int],
                 start_id: int, noise_density: float = 0.15, mean_span_length: float = 3.0):
        self.tokens = np.asarray(tokens)
        self.window = check_positive_int("window", window)
        if len(self.tokens) < self.window:
            raise ValueError(f"the token array has {len(self.tokens)} tokens, fewer than one window of {window}")
        self.rng = check_generator(rng)
        self.sentinels, self.start_id = list(sentinels), start_id
        self.noise = dict(noise_density=noise_density, mean_span_length=mean_span_length)
        span_corrupt(self.tokens[:self.window], np.random.default_rng(0), self.sentinels, **self.noise)  # checks

    def corrupt(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch of the windows at ``starts`` (drawing the spans from this source's generator)."""
        pairs = [span_corrupt(self.tokens[s:s + self.window], self.rng, self.sentinels, **self.noise) for s in starts]
        source = np.stack([p[0] for p in pairs])                                     # (B, S)
        targets = np.stack([p[1] for p in pairs])                                    # (B, U)
        decoder_inputs = np.concatenate([np.full((len(starts), 1), self.start_id), targets[:, :-1]], axis=1)
        return source, decoder_inputs, targets

    def next_batch(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.corrupt(self.rng.integers(0, len(self.tokens) - self.window + 1, size=n))


def seq2seq_loss(model: Module, batch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Tensor:
    """The objective: the decoder's cross-entropy on the targets, given the source."""
    source, decoder_inputs, targets = batch
    return model(source, decoder_inputs, targets)[1]


def seq2seq_accuracy(model: Module, batches) -> dict[str, float]:
    """``span_loss`` and ``span_accuracy`` (teacher forced: the fraction of target tokens that are
    the decoder's most likely next token) over fixed batches, in eval mode without a graph."""
    losses, correct, total = [], 0, 0
    with model.inference():
        for source, decoder_inputs, targets in batches:
            logits, loss = model(source, decoder_inputs, targets)
            correct += int((logits.data.argmax(axis=-1) == targets).sum())
            total += targets.size
            losses.append(loss.item() * targets.size)
    return {"span_loss": float(np.sum(losses) / total), "span_accuracy": correct / total}
