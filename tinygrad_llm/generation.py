"""Turning next-token distributions into text: greedy decoding and sampling (lessons 07-08).

At each step the model gives logits for the next token; a decoding strategy turns them into one
token id, which is appended and fed back in. The strategies here compose in this order:

    logits -> repetition penalty -> / temperature -> top-k cut -> top-p cut -> softmax -> sample

Temperature 0 means greedy (always the most likely token). Sampling draws from a seeded
``np.random.Generator``, so the same seed gives the same text.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .tensor import no_grad


def _check_settings(temperature: float, top_k: int | None, top_p: float | None,
                    repetition_penalty: float) -> None:
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if repetition_penalty <= 0:
        raise ValueError(f"repetition_penalty must be positive (1 = off), got {repetition_penalty}")


def next_token_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> np.ndarray:
    """Probabilities (..., V) after temperature, top-k and top-p (nucleus) filtering.

    top-k keeps the k most likely tokens; top-p keeps the smallest set of most likely tokens
    whose probability adds up to at least p. Both renormalise what they keep. With temperature
    0 the distribution puts all its mass on the argmax.
    """
    _check_settings(temperature, top_k, top_p, 1.0)
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        probs = np.zeros_like(logits)
        np.put_along_axis(probs, logits.argmax(axis=-1)[..., None], 1.0, axis=-1)
        return probs
    scaled = logits / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -top_k, axis=-1)[..., -top_k][..., None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    probs = np.exp(scaled)
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the tokens ranked above
        keep_sorted = before < top_p  # the top token is always kept (before = 0)
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    return probs


def apply_repetition_penalty(logits: np.ndarray, previous: np.ndarray, penalty: float) -> np.ndarray:
    """Make tokens already in ``previous`` (B, T) less likely: their positive logits are divided
    by ``penalty`` and negative ones multiplied by it (the CTRL paper's rule)."""
    if penalty == 1.0:
        return logits
    logits = logits.copy()
    for row, seen in zip(logits, previous):
        ids = np.unique(seen)
        values = row[ids]
        row[ids] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def generate(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, repetition_penalty: float = 1.0,
             stop_tokens: Iterable[int] = (), rng: np.random.Generator | None = None,
             use_cache: bool = True) -> np.ndarray:
    """Extend the token ids ``idx`` ((T,) or (B, T)) by up to ``max_new_tokens`` tokens.

    Returns the prompt followed by the new tokens, in the shape it came in ((T + n,) or (B, T + n)).
    Generation stops early once every sequence has produced one of ``stop_tokens`` (which is kept);
    a sequence that stopped is padded with its stop token while the others continue. When the
    sequence grows past the model's context length, the model sees the last ``context_length``
    tokens (a sliding window). Runs without recording a graph, in eval mode.

    With ``use_cache`` the keys and values of past positions are kept (``KVCache``), so each new
    token costs one position's work. careful: with absolute positions, sliding the window moves
    every token to a new position, which invalidates the cache; past the context length each step
    therefore re-encodes the window, exactly what recomputation does.
    """
    _check_settings(temperature, top_k, top_p, repetition_penalty)
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"token ids must be integers, got {idx.dtype}")
    single = idx.ndim == 1
    tokens = idx[None, :] if single else idx
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"the prompt must hold at least one token, got shape {idx.shape}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError("sampling needs rng=np.random.default_rng(seed) (or temperature=0 for greedy)")
    from .gpt import KVCache

    stop = np.array(sorted(set(int(t) for t in stop_tokens)), dtype=np.int64)
    context = model.config.context_length
    finished = np.zeros(tokens.shape[0], dtype=bool)
    finished_with = np.zeros(tokens.shape[0], dtype=np.int64)
    cache = KVCache(model.config, tokens.shape[0], model.output_weight().dtype) if use_cache else None
    pending = tokens[:, -context:]  # what the model has not seen yet (the whole prompt at first)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for _ in range(max_new_tokens):
                if cache is None:
                    logits = model(tokens[:, -context:]).data[:, -1, :]  # (B, V) for the last position
                else:
                    if cache.length + pending.shape[1] > context:
                        cache.reset()  # the window slid: re-encode it at its new positions
                        pending = tokens[:, -context:]
                    logits = model(pending, cache=cache).data[:, -1, :]
                logits = apply_repetition_penalty(logits, tokens, repetition_penalty)
                probs = next_token_distribution(logits, temperature, top_k, top_p)
                if temperature == 0:
                    chosen = probs.argmax(axis=-1)
                else:
                    # inverse-CDF sampling, one uniform number per row
                    u = rng.random((probs.shape[0], 1))
                    chosen = np.minimum((probs.cumsum(axis=-1) < u).sum(axis=-1), probs.shape[-1] - 1)
                chosen = np.where(finished, finished_with, chosen)
                pending = chosen[:, None].astype(tokens.dtype)
                tokens = np.concatenate([tokens, pending], axis=1)
                if stop.size:
                    newly = ~finished & np.isin(chosen, stop)
                    finished_with[newly] = chosen[newly]
                    finished |= newly
                    if finished.all():
                        break
    finally:
        model.train(was_training)
    return tokens[0] if single else tokens
