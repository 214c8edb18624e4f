"""Span corruption, T5's pretraining objective (lesson 22).

Unlike ``masking``, which hides single tokens and asks for each one at its own position, span
corruption hides whole spans of consecutive tokens and replaces each span by one *sentinel* token
in the encoder's input; the decoder must write the hidden spans out, each after its sentinel:

    text:     The  quick  brown  fox  jumps  over  the  lazy  dog
    inputs:   The  <s0>          fox  jumps  <s1>             dog
    targets:  <s0> quick  brown  <s1> over   the  lazy  <s2>

The last sentinel closes the target. Sentinels are the last ids of the vocabulary, counting down
(``<s0>`` is the very last id, as T5's ``<extra_id_0>`` is), so ordinary token ids never move.

T5's noise: a fraction ``noise_density`` (0.15) of each sequence is hidden, in spans of mean length
``mean_span_length`` (3): round(L x density) noise tokens in round(noise / mean length) spans, the
noise tokens and the kept tokens each cut into that many pieces of at least one token at random
cut points, and the pieces interleaved, kept first. The inputs are shorter than the text by the
noise minus one sentinel per span, and the targets hold the noise plus one sentinel per span and
one to close: together they hold the text exactly (``restore_spans`` puts it back).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.checks import check_positive_int


def sentinel_ids(vocab_size: int, count: int) -> list[int]:
    """The ids of ``count`` sentinels: the last ids of a vocabulary of ``vocab_size``, counting down.

        >>> sentinel_ids(100, 3)
        [99, 98, 97]
    """
    check_positive_int("the number of sentinels", count)
    if count >= vocab_size:
        raise ValueError(f"{count} sentinels do not fit in a vocabulary of {vocab_size} ids")
    return [vocab_size - 1 - k for k in range(count)]


def random_segmentation(n_items: int, n_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths of ``n_segments`` pieces, each at least 1, that add up to ``n_items``: cuts at
    ``n_segments - 1`` distinct random places among the ``n_items - 1`` gaps between items.

        >>> random_segmentation(7, 3, np.random.default_rng(0)).sum()
        np.int64(7)
    """
    if not 1 <= n_segments <= n_items:
        raise ValueError(f"{n_items} items cannot be cut into {n_segments} pieces of at least one")
    cuts = np.sort(rng.choice(n_items - 1, n_segments - 1, replace=False)) + 1
    return np.diff(np.concatenate([[0], cuts, [n_items]]))


def span_counts(length: int, noise_density: float = 0.15, mean_span_length: float = 3.0) -> tuple[int, int]:
    """(noise tokens, spans) for a sequence of ``length``: T5's rounding, at least one of each and
    at least one kept token per span.

        >>> span_counts(100), span_counts(20)
        ((15, 5), (3, 1))
    """
    check_positive_int("the sequence length", length)
    if length < 2:
        raise ValueError("span corruption needs at least 2 tokens: one hidden, one kept")
    if not 0.0 < noise_density < 1.0:
        raise ValueError(f"the noise density must be between 0 and 1 (exclusive), got {noise_density}")
    if not mean_span_length >= 1.0:
        raise ValueError(f"the mean span length must be at least 1, got {mean_span_length}")
    if mean_span_length > length:
        raise ValueError(f"a mean span length of {mean_span_length} is longer than the sequence of {length} tokens")
    noise = min(max(int(round(length * noise_density)), 1), length - 1)
    spans = max(int(round(noise / mean_span_length)), 1)
    return noise, min(spans, noise, length - noise)   # a span needs a token, and a kept run before it


def span_noise_mask(length: int, rng: np.random.Generator, noise_density: float = 0.15,
                    mean_span_length: float = 3.0) -> np.ndarray:
    """Boolean (length,): True at the hidden tokens; the spans alternate with kept runs, kept first."""
    noise, spans = span_counts(length, noise_density, mean_span_length)
    noise_lengths = random_segmentation(noise, spans, rng)
    kept_lengths = random_segmentation(length - noise, spans, rng)
    mask = np.zeros(length, dtype=bool)
    position = 0
    for kept, hidden in zip(kept_lengths, noise_lengths):
        position += kept
        mask[position:position + hidden] = True
        position += hidden
    return mask


def span_corrupt(ids: Sequence[int], rng: np.random.Generator, sentinels: Sequence[int],
                 noise_density: float = 0.15, mean_span_length: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` of one token sequence: each hidden span replaced by the next sentinel in
    the inputs; the targets list every sentinel followed by its span, and one more sentinel to close.

        >>> inputs, targets = span_corrupt(np.arange(10), np.random.default_rng(1), sentinel_ids(100, 5))
        >>> inputs.tolist(), targets.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7, 99], [99, 8, 9, 98])
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"span_corrupt takes one sequence of token ids, got shape {ids.shape}")
    mask = span_noise_mask(len(ids), rng, noise_density, mean_span_length)
    starts = mask & ~np.concatenate([[False], mask[:-1]])          # the first token of every span
    n_spans = int(starts.sum())
    if n_spans + 1 > len(sentinels):
        raise ValueError(f"{n_spans} spans need {n_spans + 1} sentinels, only {len(sentinels)} were given")
    sentinel_of = np.asarray(sentinels, dtype=np.int64)
    span_number = np.cumsum(starts) - 1                             # which span each token belongs to
    inputs = np.where(starts, sentinel_of[np.maximum(span_number, 0)], ids)[~mask | starts]
    targets = []                                                    # <s_k> span_k ... <s_n>
    for k in range(n_spans):
        targets.append(int(sentinel_of[k]))
        targets.extend(ids[mask & (span_number == k)].tolist())
    targets.append(int(sentinel_of[n_spans]))
    return inputs.astype(np.int64), np.array(targets, dtype=np.int64)


def restore_spans(inputs: Sequence[int], targets: Sequence[int], sentinels: Sequence[int]) -> list[int]:
    """The original sequence from ``span_corrupt``'s inputs and targets (each sentinel of the inputs
    replaced by the tokens that follow it in the targets)."""
    sentinel_set = {int(s) for s in sentinels}
    spans: dict[int, list[int]] = {}
    current = None
    for token in targets:
        token = int(token)
        if token in sentinel_set:
            current = token
            spans[current] = []
        elif current is None:
            raise ValueError("targets must start with a sentinel")
        else:
            spans[current].append(token)
    restored = []
    for token in inputs:
        token = int(token)
        restored.extend(spans[token] if token in sentinel_set else [token])
    return restored


def show_corruption(decode, inputs: Sequence[int], targets: Sequence[int], sentinels: Sequence[int]) -> str:
    """A corrupted example in readable form: ``decode`` (a tokenizer's) for ordinary tokens and
    ``<s0>``, ``<s1>``, ... for the sentinels.

        >>> show_corruption(lambda ids: "".join(chr(97 + i) for i in ids), [0, 99, 3], [99, 1, 2, 98], [99, 98])
        'inputs:  a<s0>d\\ntargets: <s0>bc<s1>'
    """
    names = {int(s): f"<s{k}>" for k, s in enumerate(sentinels)}

    def readable(ids):
        pieces, run = [], []
        for token in ids:
            token = int(token)
            if token in names:
                if run:
                    pieces.append(decode(run))
                    run = []
                pieces.append(names[token])
            else:
                run.append(token)
        if run:
            pieces.append(decode(run))
        return "".join(pieces)

    return f"inputs:  {readable(inputs)}\ntargets: {readable(targets)}"
