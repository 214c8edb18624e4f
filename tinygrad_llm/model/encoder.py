"""A BERT-style encoder (lesson 21): the GPT's blocks with bidirectional attention.

Unlike ``gpt``, where position t sees only positions 0..t (the causal mask), every position of an
encoder sees every other, before and after it. That makes it useless for generating text left to
right, since it would see the answer, and good at representing text that is already there: each
output vector is a *contextual* embedding of its token, shaped by the whole sequence. It is
trained by masked language modelling (``text.masking``): some tokens are hidden and the model must
recover them from both sides.

Everything else is the GPT, reused, not copied: the same ``GPTConfig``, embeddings, pre-norm
blocks, final norm and tied output head; ``Encoder`` only builds its blocks with ``causal=False``,
adds a padding mask (no position attends to ``[PAD]`` keys) and computes the loss only where a
label is given (``IGNORE`` elsewhere).

    >>> model = Encoder(GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layer=1, n_head=2), pad_id=29)
    >>> model(np.array([[1, 2, 3, 29]])).shape
    (1, 4, 30)
"""

from __future__ import annotations

import numpy as np

from ..core import functional as F
from ..core.tensor import Tensor
from .gpt import GPT, GPTConfig, KVCache

IGNORE = -100   # a label the loss skips (as ``text.masking`` writes it)


class Encoder(GPT):
    """A bidirectional transformer over ``config``; ``pad_id``: the token whose positions other
    positions may not attend to (None: no padding)."""

    causal = False

    def __init__(self, config: GPTConfig, pad_id: int | None = None, rng: np.random.Generator | None = None,
                 dtype=np.float32):
        if pad_id is not None and not 0 <= pad_id < config.vocab_size:
            raise ValueError(f"pad_id {pad_id} is not a token id of a vocabulary of {config.vocab_size}")
        super().__init__(config, rng, dtype)
        self.pad_id = pad_id

    def padding_mask(self, idx: np.ndarray) -> np.ndarray | None:
        """(B, 1, 1, T) booleans, True at the keys holding ``[PAD]`` (broadcast over heads and queries)."""
        if self.pad_id is None:
            return None
        pad = np.asarray(idx) == self.pad_id
        return pad[:, None, None, :] if pad.any() else None

    def hidden_states(self, idx: np.ndarray, mask: np.ndarray | None = None,
                      cache: KVCache | None = None) -> Tensor:
        """The contextual embedding of every position, (B, T, C); ``[PAD]`` keys are masked."""
        if cache is not None:
            raise ValueError("an encoder reads the whole sequence at once: it has no KV cache")
        padding = self.padding_mask(idx)
        if padding is not None:
            mask = padding if mask is None else (np.asarray(mask, dtype=bool) | padding)
        return super().hidden_states(idx, mask)

    def forward(self, idx: np.ndarray, targets: np.ndarray | None = None, cache: KVCache | None = None):
        """Logits (B, T, V) for the token at every position; with ``targets`` (labels, ``IGNORE``
        where there is nothing to predict) also the mean cross-entropy over the labelled positions."""
        logits = F.linear(self.hidden_states(idx, cache=cache), self.output_weight())   # (B, T, V)
        if targets is None:
            return logits
        targets = np.asarray(targets)
        if not (targets != IGNORE).any():
            raise ValueError("the batch has no labelled position: every target is IGNORE")
        return logits, F.cross_entropy(logits, targets, ignore_index=IGNORE)
