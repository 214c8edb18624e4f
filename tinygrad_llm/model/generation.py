"""Turning next-token distributions into text: greedy decoding, sampling, beam search (lessons 07-08).

At each step the model gives logits for the next token; a decoding strategy turns them into one
token id, which is appended and fed back in. The sampling strategies compose in this order:

    logits -> repetition penalty -> / temperature -> top-k cut -> top-p cut -> softmax -> sample

Temperature 0 means greedy (always the most likely token). Sampling draws from a seeded
``np.random.Generator``, so the same seed gives the same text.

Beam search looks further than one token: it keeps the ``num_beams`` most likely sequences so
far, extends each by every token, and keeps the best ``num_beams`` of the extensions, scored by
their summed log-probabilities. Finished sequences (ending with a stop token) are ranked by

    score = sum of log p(new tokens) / (number of new tokens) ** length_penalty

as in Hugging Face's ``transformers``, so that short sequences do not win just for being short.

Both reuse past keys and values through a ``KVCache`` unless ``use_cache=False``; the output is
the same either way (to float rounding), only faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .gpt import KVCache
from .nn import check_token_ids
from ..core.checks import (check_finite_array, check_float, check_fraction, check_int, check_non_negative,
                           check_positive, check_positive_int)

# ----------------------------------------------------------------------------------------------
# Checking the settings


def _check_settings(temperature: float, top_k: int | None, top_p: float | None,
                    repetition_penalty: float) -> None:
    check_non_negative("temperature", temperature)   # 0 means greedy
    if top_k is not None:
        check_positive_int("top_k", top_k)
    if top_p is not None:
        check_fraction("top_p", top_p, low_open=True)
    check_positive("repetition_penalty", repetition_penalty)   # 1 = off


def _finite_logits(logits: np.ndarray) -> np.ndarray:
    """``logits`` (..., V) unchanged, or a FloatingPointError if any is NaN or +inf, or a row is all
    -inf. (-inf itself is fine: it is how a token is ruled out.)

    careful: argmax of a NaN row is 0 and a NaN distribution samples token 0, so a broken model
    would otherwise quietly emit token 0 forever."""
    logits = np.asarray(logits)
    # -inf -> 0 leaves exactly the entries that make no sense for check_finite_array to count
    check_finite_array("the model's output (next-token logits)", np.where(logits == -np.inf, 0.0, logits))
    if logits.size and np.any(np.all(logits == -np.inf, axis=-1)):
        raise FloatingPointError("the model's next-token logits rule out every token (all -inf)")
    return logits


def _prompt_tokens(idx, vocab_size: int) -> np.ndarray:
    """The prompt as an int64 array (B, T) with T >= 1 and every id in the vocabulary."""
    ids = check_token_ids(idx, vocab_size)  # integer dtype, ids in 0 .. vocab_size - 1
    tokens = ids[None, :] if ids.ndim == 1 else ids
    if tokens.ndim != 2 or tokens.shape[1] == 0 or tokens.shape[0] == 0:
        raise ValueError(f"the prompt must hold at least one token, shape (T,) or (B, T); "
                         f"got shape {ids.shape}")
    return tokens.astype(np.int64)  # careful: a uint8 prompt would overflow on token 256


def _stop_tokens(stop_tokens: Iterable[int], vocab_size: int) -> np.ndarray:
    stop = np.array(sorted({int(t) for t in stop_tokens}), dtype=np.int64)
    return check_token_ids(stop, vocab_size)


# ----------------------------------------------------------------------------------------------
# From logits to a distribution


def next_token_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> np.ndarray:
    """Probabilities (..., V), in float64, after temperature, top-k and top-p (nucleus) filtering.

    p_i = exp(z_i / temperature) / sum_j exp(z_j / temperature) over the tokens that survive:
    top-k keeps the k largest logits (tokens tied with the k-th are all kept); top-p then keeps
    the smallest set of most likely tokens whose probability adds up to at least p. What is kept
    is renormalised to sum to 1. Temperature 0 puts all the mass on the argmax (the first one on
    a tie).

    >>> next_token_distribution(np.log([0.5, 0.3, 0.2]), top_p=0.7).round(3)
    array([0.625, 0.375, 0.   ])
    """
    _check_settings(temperature, top_k, top_p, 1.0)
    logits = _finite_logits(np.asarray(logits, dtype=np.float64))
    if temperature == 0:
        probs = np.zeros_like(logits)
        np.put_along_axis(probs, logits.argmax(axis=-1)[..., None], 1.0, axis=-1)
        return probs
    # shift first, so that scaled <= 0: exp cannot overflow, and a tiny temperature sends the
    # other logits to -inf instead of making inf - inf = nan
    scaled = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -top_k, axis=-1)[..., -top_k][..., None]  # the k-th largest
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled)
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")  # most likely first; ties by token id
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        before = np.cumsum(sorted_probs, axis=-1)
        before = np.concatenate([np.zeros_like(before[..., :1]), before[..., :-1]], axis=-1)
        keep_sorted = before < top_p  # the mass ranked above is still short of p; the top token always
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    return probs


def apply_repetition_penalty(logits: np.ndarray, previous: np.ndarray, penalty: float) -> np.ndarray:
    """Make tokens already in ``previous`` (B, T) less likely, in a copy of ``logits`` (B, V):
    a positive logit is divided by ``penalty``, a negative one multiplied by it (the rule of
    the CTRL paper), so with penalty > 1 both move down. Each token counts once, however often
    it occurred.

    >>> apply_repetition_penalty(np.array([[2.0, -1.0, 3.0]]), np.array([[0, 1, 1]]), 2.0)
    array([[ 1., -2.,  3.]])
    """
    check_positive("repetition_penalty", penalty)
    if penalty == 1.0:
        return logits
    logits = np.array(logits)
    for row, seen in zip(logits, previous):
        ids = np.unique(seen)
        values = row[ids]
        row[ids] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def sample_from(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token id per row of ``probs`` (B, V), drawn by inverse-CDF sampling: with one uniform
    u per row, the first token whose cumulative probability exceeds u. A token of probability
    0 is never drawn."""
    probs = check_finite_array("the token probabilities", probs)
    total = probs.sum(axis=-1)
    if np.any(probs < 0) or not np.all(total > 0):
        raise ValueError("the token probabilities must be >= 0 with a positive sum in every row")
    cdf = np.cumsum(probs, axis=-1)
    cdf /= cdf[:, -1:]  # exactly 1 at the end, so no u in [0, 1) can run past the last token
    u = rng.random((probs.shape[0], 1))
    return (cdf <= u).sum(axis=-1)


# ----------------------------------------------------------------------------------------------
# The model, one step at a time


class _NextTokenLogits:
    """Logits (B, V) for the token after ``tokens`` (B, T): with a cache, the model sees only the
    tokens it has not seen yet; without one, the whole (cropped) sequence every step.

    careful: with absolute positions, sliding the window moves every token to a new position,
    which invalidates the cache; once the sequence is longer than the context, each step
    therefore re-encodes the last ``context_length`` tokens, exactly what recomputation does.
    """

    def __init__(self, model, batch_size: int, use_cache: bool):
        self.model = model
        self.context = model.config.context_length
        dtype = model.output_weight().dtype
        self.cache = KVCache(model.config, batch_size, dtype) if use_cache else None

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        T = tokens.shape[1]
        if self.cache is None or T > self.context:
            if self.cache is not None:
                self.cache.reset()
            return self.model(tokens[:, -self.context:]).data[:, -1, :]
        pending = tokens[:, self.cache.length:]  # (B, T - cached), one column after the first step
        return self.model(pending, cache=self.cache).data[:, -1, :]

    def reorder(self, origins: np.ndarray) -> None:
        if self.cache is not None:
            self.cache.reorder(origins)


# ----------------------------------------------------------------------------------------------
# Greedy decoding and sampling


def generate(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, repetition_penalty: float = 1.0,
             stop_tokens: Iterable[int] = (), rng: np.random.Generator | None = None,
             use_cache: bool = True) -> np.ndarray:
    """Extend the token ids ``idx`` ((T,) or (B, T)) by up to ``max_new_tokens`` tokens.

    Returns the prompt followed by the new tokens (int64), in the shape it came in ((T + n,) or
    (B, T + n)). Generation stops early once every sequence has produced one of ``stop_tokens``
    (which is kept); a sequence that stopped is padded with its stop token while the others
    continue. When the sequence grows past the model's context length, the model sees the last
    ``context_length`` tokens (a sliding window). Runs without recording a graph, in eval mode,
    and leaves the model in the mode it found it in.

    ``temperature`` 0 is greedy decoding and needs no ``rng``; above 0, tokens are drawn from
    ``next_token_distribution`` (after ``apply_repetition_penalty``) with ``rng``. With
    ``use_cache`` the keys and values of past positions are kept (``KVCache``), so each new token
    costs one position's work instead of the whole sequence's.
    """
    _check_settings(temperature, top_k, top_p, repetition_penalty)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    if temperature > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError("sampling needs rng=np.random.default_rng(seed) (or temperature=0 for greedy)")
    vocab_size = model.config.vocab_size
    single = np.ndim(idx) == 1
    prompt = _prompt_tokens(idx, vocab_size)
    stop = _stop_tokens(stop_tokens, vocab_size)

    B, T = prompt.shape
    tokens = np.empty((B, T + max_new_tokens), dtype=np.int64)  # filled column by column
    tokens[:, :T] = prompt
    length = T
    finished = np.zeros(B, dtype=bool)
    finished_with = np.zeros(B, dtype=np.int64)
    next_logits = _NextTokenLogits(model, B, use_cache)
    with model.inference():
        for _ in range(max_new_tokens):
            logits = _finite_logits(next_logits(tokens[:, :length]))                # (B, V)
            logits = apply_repetition_penalty(logits, tokens[:, :length], repetition_penalty)
            if temperature == 0:
                chosen = logits.argmax(axis=-1)  # the distribution would be one-hot there anyway
            else:
                chosen = sample_from(next_token_distribution(logits, temperature, top_k, top_p), rng)
            chosen = np.where(finished, finished_with, chosen)
            tokens[:, length] = chosen
            length += 1
            if stop.size:
                newly = ~finished & np.isin(chosen, stop)
                finished_with[newly] = chosen[newly]
                finished |= newly
                if finished.all():
                    break
    tokens = tokens[:, :length]
    return tokens[0] if single else tokens


# ----------------------------------------------------------------------------------------------
# Beam search


@dataclass(frozen=True, eq=False)
class Beam:
    """One sequence found by ``beam_search``."""

    tokens: np.ndarray   # the prompt followed by the new tokens, shape (T + n,)
    log_prob: float      # sum of log p(token | everything before it) over the n new tokens
    score: float         # log_prob / n ** length_penalty: what beams are ranked by
    finished: bool       # it ended with a stop token (else it ran out of max_new_tokens)
    num_new: int         # n


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def beam_search(model, idx, max_new_tokens: int, num_beams: int = 4, length_penalty: float = 1.0,
                early_stopping: bool = False, stop_tokens: Iterable[int] = (),
                use_cache: bool = True) -> list[Beam]:
    """The ``num_beams`` best continuations of one prompt ``idx`` (T,) found by beam search, best
    first (by ``Beam.score``).

    Each step extends every running beam by every token, scores the extensions by their summed
    log-probabilities, and keeps the best ``num_beams`` (a token from ``stop_tokens`` ends its
    beam instead: it becomes a finished hypothesis if it ranks among the best ``num_beams``
    extensions). Of the finished hypotheses, the best ``num_beams`` by score are kept, with

        score = log_prob / n ** length_penalty      (n new tokens, the stop token included)

    so a length_penalty above 0 favours longer sequences and 0 ranks by log_prob alone. The
    search stops after ``max_new_tokens`` steps (the running beams then join the hypotheses) or
    earlier, as in Hugging Face's ``transformers``:

    * ``early_stopping=True``: as soon as ``num_beams`` hypotheses have finished;
    * ``early_stopping=False``: once ``num_beams`` have finished and the best running beam,
      scored at its current length, can no longer beat the worst of them (a heuristic: it
      assumes the score does not improve with length).

    With ``num_beams=1`` and no stop tokens this is greedy decoding. The KV cache, when used,
    follows the beams: each step its rows are reordered to the beams' origins.
    """
    check_positive_int("max_new_tokens", max_new_tokens)
    check_positive_int("num_beams", num_beams)
    check_float("length_penalty", length_penalty)
    if np.ndim(idx) != 1:
        raise ValueError(f"beam search takes one prompt of shape (T,), got shape {np.shape(idx)}")
    vocab_size = model.config.vocab_size
    prompt = _prompt_tokens(idx, vocab_size)  # (1, T)
    stop = _stop_tokens(stop_tokens, vocab_size)
    is_stop = np.zeros(vocab_size, dtype=bool)
    is_stop[stop] = True
    # enough candidates that num_beams of them continue even if every stop token ranks high
    n_candidates = num_beams * (1 + stop.size)

    def score(log_prob: float, n: int) -> float:
        return log_prob / n ** length_penalty

    running = prompt                       # (beams, T + step): starts as one beam, the prompt
    running_log_prob = np.zeros(1)         # (beams,)
    hypotheses: list[Beam] = []            # finished ones, at most num_beams, best first
    next_logits = _NextTokenLogits(model, 1, use_cache)
    done = False
    with model.inference():
        for step in range(1, max_new_tokens + 1):
            log_probs = _log_softmax(_finite_logits(next_logits(running)))                       # (beams, V)
            candidates = (running_log_prob[:, None] + log_probs).reshape(-1)       # (beams * V,)
            # best first; the stable sort breaks ties by (beam, token), as greedy's argmax does
            order = np.argsort(-candidates, kind="stable")[:n_candidates]
            origins, chosen, kept = [], [], []
            for rank, flat in enumerate(order):
                beam, token = divmod(int(flat), vocab_size)
                if is_stop[token]:
                    if rank < num_beams:  # a finished beam must be as good as the ones kept running
                        hypotheses.append(Beam(np.append(running[beam], token), float(candidates[flat]),
                                               score(float(candidates[flat]), step), True, step))
                    continue
                origins.append(beam)
                chosen.append(token)
                kept.append(candidates[flat])
                if len(origins) == num_beams:
                    break
            hypotheses = sorted(hypotheses, key=lambda b: -b.score)[:num_beams]
            if not origins:  # every candidate was a stop token
                done = True
                break
            origins = np.array(origins)
            running = np.concatenate([running[origins], np.array(chosen)[:, None]], axis=1)
            running_log_prob = np.array(kept)
            next_logits.reorder(origins)
            if len(hypotheses) == num_beams:
                if early_stopping or hypotheses[-1].score >= score(running_log_prob.max(), step):
                    done = True
                    break
    if not done:  # out of steps: the running beams compete with the finished ones
        for row, log_prob in zip(running, running_log_prob):
            hypotheses.append(Beam(row, float(log_prob), score(float(log_prob), max_new_tokens),
                                   False, max_new_tokens))
    return sorted(hypotheses, key=lambda b: -b.score)[:num_beams]
