"""Masked language modelling data (lesson 21): the encoder's special tokens and the masking rule.

Unlike ``data``, whose targets are the inputs shifted by one (predict the next token), masked
language modelling hides some tokens and asks for them back, with the text on both sides in view.
BERT's rule, which ``mask_tokens`` follows:

* choose 15 % of the positions that hold ordinary tokens (special tokens are never chosen);
* of the chosen, replace 80 % by ``[MASK]``, 10 % by a random ordinary token, and keep 10 %;
* the label of a chosen position is its original token; every other label is ``IGNORE``, so the
  loss counts the chosen positions only.

Why not ``[MASK]`` everywhere: ``[MASK]`` never appears in real text, and a model that only learns
to fill in ``[MASK]`` would have nothing to do at the positions it is later asked about. The random
and kept tokens make every position a possible question, so the model must keep a good
representation of each one.

The counts are exact in expectation: each row chooses ``rate * n`` of its ``n`` maskable positions,
rounded up or down at random with the right odds, and each chosen position draws its fate (mask,
random, keep) independently with probabilities 0.8, 0.1, 0.1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.checks import check_fraction
from .bpe import BPETokenizer

ENCODER_SPECIALS = ("[CLS]", "[SEP]", "[MASK]", "[PAD]")
IGNORE = -100   # the label of a position the loss skips (``cross_entropy``'s ignore_index)


def add_special_tokens(tokenizer: BPETokenizer, names: Sequence[str] = ENCODER_SPECIALS) -> BPETokenizer:
    """A copy of ``tokenizer`` with the special tokens ``names`` added after its last id: every
    existing id, merge and special token stays as it was, so text encodes to the same ids and a
    model's embedding table only grows by ``len(names)`` rows at the end.

        >>> tok = BPETokenizer.train("aaabdaaabac", vocab_size=258, pattern=None, special_tokens=())
        >>> bigger = add_special_tokens(tok, ("[MASK]",))
        >>> bigger.encode("aaab") == tok.encode("aaab"), bigger.special_token_id("[MASK]"), bigger.vocab_size
        (True, 258, 259)
    """
    taken = [name for name in names if name in tokenizer.special_tokens]
    if taken:
        raise ValueError(f"the tokenizer already has the special tokens {taken}")
    specials = dict(tokenizer.special_tokens)
    specials.update({name: tokenizer.vocab_size + k for k, name in enumerate(names)})
    merges = [(a, b, new) for (a, b), new in tokenizer.merges]
    return BPETokenizer(merges, specials, tokenizer.pattern, tokenizer.byte_ids)


def mask_tokens(ids: np.ndarray, rng: np.random.Generator, *, mask_id: int, vocab_size: int,
                special_ids: Sequence[int] = (), rate: float = 0.15, mask_fraction: float = 0.8,
                random_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, labels)`` for masked language modelling of the token rows ``ids`` (B, T).

    ``rate`` of each row's ordinary positions are chosen (see the module docstring); a chosen one
    becomes ``mask_id`` with probability ``mask_fraction``, a random ordinary token with
    ``random_fraction``, else stays. ``labels`` hold the original tokens at the chosen positions,
    ``IGNORE`` elsewhere. Random tokens are drawn from the ids below ``vocab_size`` that are not in
    ``special_ids``.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"mask_tokens takes a (batch, time) array of token ids, got shape {ids.shape}")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"the masking rate must be between 0 and 1 (exclusive), got {rate}")
    check_fraction("mask_fraction", mask_fraction)
    check_fraction("random_fraction", random_fraction)
    if mask_fraction + random_fraction > 1.0:
        raise ValueError(f"mask_fraction {mask_fraction} + random_fraction {random_fraction} exceed 1")
    special = np.zeros(vocab_size, dtype=bool)
    special[list(special_ids)] = True
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}")
    maskable = ~special[ids]                                           # (B, T)
    n = maskable.sum(axis=1)                                           # (B,)
    if (n == 0).any():
        raise ValueError(f"row {int(np.argmax(n == 0))} has no maskable token (only special tokens)")
    wanted = rate * n
    k = np.floor(wanted).astype(np.int64) + (rng.random(len(n)) < wanted - np.floor(wanted))  # E[k] = rate n
    # a random order of each row's maskable positions (specials sort last); the first k are chosen
    scores = np.where(maskable, rng.random(ids.shape), np.inf)
    ranks = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable")
    chosen = ranks < k[:, None]                                        # (B, T)
    fate = rng.random(ids.shape)
    to_mask = chosen & (fate < mask_fraction)
    to_random = chosen & (fate >= mask_fraction) & (fate < mask_fraction + random_fraction)
    ordinary = np.flatnonzero(~special)
    inputs = ids.astype(np.int64, copy=True)
    inputs[to_mask] = mask_id
    inputs[to_random] = ordinary[rng.integers(0, len(ordinary), int(to_random.sum()))]
    labels = np.where(chosen, ids, IGNORE).astype(np.int64)
    return inputs, labels
