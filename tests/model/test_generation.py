"""Decoding: the next-token distribution (temperature, top-k, top-p), the repetition penalty,
sampling, greedy decoding and stop tokens, the KV cache against full recomputation (past the
context length too), beam search against brute-force enumeration, and clear errors."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, Module, Tensor, is_grad_enabled, no_grad
from tinygrad_llm.model.generation import (Beam, apply_repetition_penalty, beam_search, generate,
                                     next_token_distribution, sample_from)
from tinygrad_llm.model.gpt import KVCache

TINY = GPTConfig(vocab_size=11, context_length=12, d_model=16, n_layer=2, n_head=2)


def spread_model(config: GPTConfig = TINY, seed: int = 0, dtype=np.float32, std: float = 0.5) -> GPT:
    """A GPT with weights of std ``std`` instead of 0.02, so that its next-token distributions are
    far from uniform and greedy choices are not near-ties decided by rounding."""
    model = GPT(config, np.random.default_rng(seed), dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape) * std
    return model


class TableModel(Module):
    """A stand-in for a GPT whose next-token logits depend only on the last token: row a of
    ``table`` holds the logits after token a. Hand-made tables make expected results exact."""

    def __init__(self, table, context_length: int = 32):
        self.table = np.asarray(table, dtype=np.float64)
        V = self.table.shape[0]
        self.config = GPTConfig(vocab_size=V, context_length=context_length, d_model=2, n_layer=1, n_head=1)
        self.calls = 0

    def output_weight(self) -> Tensor:
        return Tensor(self.table)  # generation reads only its dtype (for the cache)

    def forward(self, idx, cache: KVCache | None = None) -> Tensor:
        self.calls += 1
        if cache is not None:
            cache.length += idx.shape[1]
        return Tensor(self.table[idx])  # (B, T, V)


def log_table(rows) -> np.ndarray:
    """Logits whose softmax is the given probability rows (a probability 0 becomes -inf)."""
    rows = np.asarray(rows, dtype=np.float64)
    return np.where(rows > 0, np.log(np.where(rows > 0, rows, 1.0)), -np.inf)


def full_log_prob(model: GPT, prompt: np.ndarray, new: tuple) -> float:
    """log p(new | prompt) by one forward pass over the whole sequence (no cache, no search)."""
    sequence = np.concatenate([prompt, np.array(new, dtype=np.int64)])
    with no_grad():
        logits = model(sequence[None, :-1]).data[0].astype(np.float64)  # (T + n - 1, V)
    peak = logits.max(axis=-1, keepdims=True)
    log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True))
    return float(sum(log_probs[len(prompt) - 1 + i, token] for i, token in enumerate(new)))


# ----------------------------------------------------------------------------------------------
# The next-token distribution


def test_temperature_divides_the_logits_before_the_softmax():
    logits = np.array([[1.0, 2.0, 0.5, -1.0]])
    for temperature in (0.25, 1.0, 3.0):
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        np.testing.assert_allclose(next_token_distribution(logits, temperature), expected, rtol=1e-12)


def test_temperature_zero_puts_all_the_mass_on_the_first_argmax():
    probs = next_token_distribution(np.array([[0.1, 3.0, 3.0, -2.0], [5.0, 1.0, 0.0, 0.0]]), 0.0)
    np.testing.assert_array_equal(probs, [[0, 1, 0, 0], [1, 0, 0, 0]])


def test_a_tiny_temperature_is_greedy_not_nan():
    probs = next_token_distribution(np.array([[1.0, 3.0, 2.0]]), 1e-300)
    np.testing.assert_array_equal(probs, [[0.0, 1.0, 0.0]])


def test_top_k_keeps_exactly_the_k_largest_and_renormalises():
    logits = np.log(np.array([0.1, 0.4, 0.05, 0.3, 0.15]))
    probs = next_token_distribution(logits, top_k=3)
    np.testing.assert_allclose(probs, np.array([0.0, 0.4, 0.0, 0.3, 0.15]) / 0.85, rtol=1e-12)
    np.testing.assert_allclose(next_token_distribution(logits, top_k=1), [0, 1, 0, 0, 0])
    np.testing.assert_allclose(next_token_distribution(logits, top_k=5), np.exp(logits), rtol=1e-12)
    np.testing.assert_allclose(next_token_distribution(logits, top_k=50), np.exp(logits), rtol=1e-12)


def test_top_k_keeps_every_token_tied_with_the_kth():
    probs = next_token_distribution(np.array([2.0, 1.0, 1.0, 0.0]), top_k=2)
    assert np.flatnonzero(probs).tolist() == [0, 1, 2]


def test_top_k_works_row_by_row():
    logits = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    probs = next_token_distribution(logits, top_k=2)
    assert [np.flatnonzero(row).tolist() for row in probs] == [[0, 1], [2, 3]]


# Ranked, the probabilities below are 0.5 (token 1), 0.25 (3), 0.125 (0), 0.0625 (2), 0.0625 (4);
# the running sums 0.5, 0.75, 0.875, 0.9375, 1. (No p sits on a running sum: there, rounding in
# the softmax decides.)
@pytest.mark.parametrize("top_p, kept", [
    (0.1, [1]),          # the top token alone already holds 0.5 >= 0.1
    (0.45, [1]),
    (0.55, [1, 3]),      # 0.5 is short of 0.55; 0.75 is not
    (0.7, [1, 3]),
    (0.8, [1, 3, 0]),
    (0.9, [1, 3, 0, 2]),  # ties (2 and 4) go by token id
    (0.95, [1, 3, 0, 2, 4]),
    (1.0, [1, 3, 0, 2, 4]),
])
def test_top_p_keeps_the_smallest_set_reaching_p_and_renormalises(top_p, kept):
    p = np.array([0.125, 0.5, 0.0625, 0.25, 0.0625])
    probs = next_token_distribution(np.log(p), top_p=top_p)
    assert set(np.flatnonzero(probs)) == set(kept)
    np.testing.assert_allclose(probs[kept], p[kept] / p[kept].sum(), rtol=1e-12)
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)


def test_top_p_breaks_ties_by_token_id():
    probs = next_token_distribution(np.log([0.25, 0.25, 0.25, 0.25]), top_p=0.5)
    np.testing.assert_allclose(probs, [0.5, 0.5, 0.0, 0.0])


def test_top_k_then_top_p_applies_p_to_the_renormalised_top_k():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    # top-3 renormalises to 4/9, 3/9, 2/9, and its first two already hold 7/9 >= 0.75; on the
    # full distribution the first two hold only 0.7, so top-p alone keeps three
    probs = next_token_distribution(np.log(p), top_k=3, top_p=0.75)
    np.testing.assert_allclose(probs, [4 / 7, 3 / 7, 0, 0], rtol=1e-12)
    probs_p_only = next_token_distribution(np.log(p), top_p=0.75)
    np.testing.assert_allclose(probs_p_only, [4 / 9, 3 / 9, 2 / 9, 0], rtol=1e-12)


def test_temperature_is_applied_before_the_top_p_cut():
    logits = np.log(np.array([0.6, 0.3, 0.1]))
    assert np.count_nonzero(next_token_distribution(logits, 1.0, top_p=0.8)) == 2
    assert np.count_nonzero(next_token_distribution(logits, 0.2, top_p=0.8)) == 1  # sharper


# ----------------------------------------------------------------------------------------------
# Repetition penalty and sampling


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    logits = np.array([[2.0, -1.0, 3.0, -4.0, 0.5], [2.0, -1.0, 3.0, -4.0, 0.5]])
    previous = np.array([[0, 1, 1, 1], [4, 3, 3, 3]])  # a token counts once, however often seen
    out = apply_repetition_penalty(logits, previous, 2.0)
    np.testing.assert_array_equal(out, [[1.0, -2.0, 3.0, -4.0, 0.5], [2.0, -1.0, 3.0, -8.0, 0.25]])
    assert logits[0, 0] == 2.0  # the input is not modified
    assert apply_repetition_penalty(logits, previous, 1.0) is logits  # 1 is off


def test_repetition_penalty_breaks_a_greedy_loop():
    table = log_table([[0.05, 0.6, 0.35], [0.05, 0.6, 0.35], [0.4, 0.5, 0.1]])  # 1 -> 1 -> 1 ...
    model = TableModel(table)
    assert generate(model, np.array([0]), 4, temperature=0).tolist() == [0, 1, 1, 1, 1]
    # once 1 has been seen, its logit log 0.6 = -0.51 becomes -1.53 < log 0.35: token 2 wins
    assert generate(model, np.array([0]), 2, temperature=0, repetition_penalty=3.0).tolist() == [0, 1, 2]


def test_sampling_frequencies_match_the_distribution():
    p = np.array([0.5, 0.2, 0.15, 0.1, 0.05, 0.0])
    draws = 20_000
    model = TableModel(np.tile(log_table(p), (6, 1)))
    out = generate(model, np.zeros((draws, 1), dtype=np.int64), 1, rng=np.random.default_rng(0))
    counts = np.bincount(out[:, 1], minlength=6)
    assert counts[5] == 0  # probability 0 is never drawn
    expected = draws * p[:5]
    chi_square = ((counts[:5] - expected) ** 2 / expected).sum()
    assert chi_square < 18.5  # the 0.1% critical value for 4 degrees of freedom


def test_sample_from_never_draws_a_zero_probability_token_at_the_edges():
    probs = np.array([[0.0, 0.5, 0.5, 0.0]] * 1000)
    drawn = sample_from(probs, np.random.default_rng(1))
    assert set(drawn.tolist()) == {1, 2}
    # u = 0 and u just below 1 land on the first and the last token with mass
    class Edge:
        def __init__(self, u):
            self.u = u

        def random(self, shape):
            return np.full(shape, self.u)
    assert sample_from(probs[:1], Edge(0.0)).tolist() == [1]
    assert sample_from(probs[:1], Edge(np.nextafter(1.0, 0.0))).tolist() == [2]


# ----------------------------------------------------------------------------------------------
# generate


def test_greedy_generation_is_the_argmax_of_full_recomputation_every_step():
    model = spread_model()
    prompt = np.array([3, 1, 4])
    out = generate(model, prompt, 15, temperature=0)  # 18 tokens: past the context of 12
    ids = prompt.copy()
    with no_grad():
        for _ in range(15):
            next_id = model(ids[None, -TINY.context_length:]).data[0, -1].argmax()
            ids = np.append(ids, next_id)
    np.testing.assert_array_equal(out, ids)
    assert out.dtype == np.int64 and out.shape == (18,)


def test_same_seed_same_text_and_another_seed_other_text():
    model = spread_model(std=0.2)
    prompt = np.array([[1, 2], [3, 4]])
    kwargs = dict(temperature=1.0, top_k=8, top_p=0.95)
    first = generate(model, prompt, 20, rng=np.random.default_rng(7), **kwargs)
    again = generate(model, prompt, 20, rng=np.random.default_rng(7), **kwargs)
    other = generate(model, prompt, 20, rng=np.random.default_rng(8), **kwargs)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (2, 22)
    assert not np.array_equal(first, other)


def test_cached_and_uncached_sampling_give_the_same_text():
    model = spread_model(std=0.2)
    prompt = np.array([[1, 2, 3], [3, 4, 5]])
    texts = [generate(model, prompt, 25, rng=np.random.default_rng(3), use_cache=use_cache)
             for use_cache in (True, False)]
    np.testing.assert_array_equal(texts[0], texts[1])


def test_a_stopped_sequence_is_padded_with_its_stop_token_while_others_continue():
    # greedy paths: 1 -> 4 (stop); 2 -> 3 -> 5 (stop); 0 -> 1 -> 4; after a stop, 0
    rows = np.full((6, 6), 0.01)
    for a, b in [(0, 1), (1, 4), (2, 3), (3, 5), (4, 0), (5, 0)]:
        rows[a, b] = 0.9
    model = TableModel(np.log(rows))
    out = generate(model, np.array([[1], [2], [0]]), 10, temperature=0, stop_tokens=[4, 5])
    np.testing.assert_array_equal(out, [[1, 4, 4], [2, 3, 5], [0, 1, 4]])  # ends when all stopped
    # without stop tokens it runs the full length
    assert generate(model, np.array([[1], [2]]), 10, temperature=0).shape == (2, 11)
    assert generate(model, np.array([0]), 10, temperature=0, stop_tokens=[4]).tolist() == [0, 1, 4]


def test_generate_restores_training_and_evaluation_mode():
    model = GPT(dataclasses.replace(TINY, dropout=0.3))
    model.train()
    generate(model, np.array([1, 2]), 3, temperature=0)
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    generate(model, np.array([1, 2]), 3, temperature=0)
    assert not model.training

    class Broken(TableModel):
        def forward(self, idx, cache=None):
            raise RuntimeError("boom")
    broken = Broken(np.zeros((3, 3)))
    broken.train()
    with pytest.raises(RuntimeError, match="boom"):
        generate(broken, np.array([1]), 3, temperature=0)
    assert broken.training


def test_generate_runs_the_model_in_eval_mode_without_a_graph():
    class Watched(TableModel):
        def forward(self, idx, cache=None):
            self.seen = (self.training, is_grad_enabled())
            return super().forward(idx, cache)
    model = Watched(np.zeros((3, 3)))
    model.train()
    generate(model, np.array([1]), 2, temperature=0)
    assert model.seen == (False, False)
    assert model.training and is_grad_enabled()


def test_zero_new_tokens_returns_the_prompt():
    model = TableModel(np.zeros((4, 4)))
    assert generate(model, np.array([1, 2]), 0, temperature=0).tolist() == [1, 2]
    assert model.calls == 0


# ----------------------------------------------------------------------------------------------
# The KV cache


class Recorder(Module):
    """Wraps a model and keeps the last-position logits of every call."""

    def __init__(self, model: GPT):
        self.model = model
        self.config = model.config
        self.logits: list[np.ndarray] = []

    def output_weight(self) -> Tensor:
        return self.model.output_weight()

    def forward(self, idx, cache=None) -> Tensor:
        out = self.model(idx, cache=cache)
        self.logits.append(out.data[:, -1].copy())
        return out


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_cached_logits_equal_full_recomputation_for_50_steps_past_the_context(position):
    config = dataclasses.replace(TINY, position=position, context_length=16)
    model = spread_model(config, std=0.3)
    recorder = Recorder(model)
    prompt = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [0, 0, 1, 1, 2]])  # batch 3
    out = generate(recorder, prompt, 50, rng=np.random.default_rng(0))  # 55 tokens > 16
    assert out.shape == (3, 55) and len(recorder.logits) == 50
    with no_grad():
        for step, cached in enumerate(recorder.logits):
            seen = out[:, :5 + step][:, -config.context_length:]
            full = model(seen).data[:, -1]
            np.testing.assert_allclose(cached, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_feeding_one_token_at_a_time_into_the_cache_gives_the_full_logits(position):
    config = dataclasses.replace(TINY, position=position)
    model = spread_model(config, std=0.3)
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (2, config.context_length))
    cache = KVCache(config, 2)
    with no_grad():
        full = model(ids).data
        pieces = [model(ids[:, :4], cache=cache).data]  # a 4-token prompt, then one at a time
        pieces += [model(ids[:, t:t + 1], cache=cache).data for t in range(4, config.context_length)]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == config.context_length
    with pytest.raises(ValueError, match="longer than the context length"), no_grad():
        model(ids[:, :1], cache=cache)


def test_reordering_the_cache_follows_the_rows():
    model = spread_model(std=0.3)
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    cache = KVCache(TINY, 2)
    with no_grad():
        model(ids[:, :3], cache=cache)
        cache.reorder(np.array([1, 1, 0]))  # row 1 twice, then row 0: batch size 3
        step = model(ids[[1, 1, 0], 3:], cache=cache).data[:, -1]
        full = model(ids[[1, 1, 0]]).data[:, -1]
    np.testing.assert_allclose(step, full, rtol=1e-5, atol=1e-5)
    assert cache.keys.shape[1] == 3
    with pytest.raises(IndexError, match="out of range"):
        cache.reorder(np.array([0, 3]))
    with pytest.raises(ValueError, match="1-D array of row numbers"):
        cache.reorder(np.array([], dtype=np.int64))


# ----------------------------------------------------------------------------------------------
# Beam search


def test_one_beam_is_greedy_decoding():
    model = spread_model(seed=2)
    prompt = np.array([1, 5])
    greedy = generate(model, prompt, 14, temperature=0)  # past the context of 12
    (beam,) = beam_search(model, prompt, 14, num_beams=1)
    np.testing.assert_array_equal(beam.tokens, greedy)
    assert beam.num_new == 14 and not beam.finished
    short = beam_search(model, prompt, 8, num_beams=1)[0]  # within the context: one forward pass scores it
    assert short.log_prob == pytest.approx(full_log_prob(model, prompt, tuple(short.tokens[2:])), abs=1e-4)


@pytest.mark.parametrize("length", [2, 3])
def test_enough_beams_find_the_true_best_sequences(length):
    config = GPTConfig(vocab_size=4, context_length=8, d_model=16, n_layer=2, n_head=2)
    model = spread_model(config, seed=4, dtype=np.float64)
    prompt = np.array([2, 0])
    every = {new: full_log_prob(model, prompt, new) for new in itertools.product(range(4), repeat=length)}
    ranked = sorted(every, key=every.get, reverse=True)
    num_beams = 4 ** (length - 1)  # every prefix survives until the last step
    beams = beam_search(model, prompt, length, num_beams=num_beams)
    assert [tuple(b.tokens[2:]) for b in beams] == ranked[:num_beams]
    for b in beams:
        assert b.log_prob == pytest.approx(every[tuple(b.tokens[2:])], abs=1e-10)
        assert b.score == pytest.approx(b.log_prob / length)


def test_beam_search_can_beat_greedy_on_a_table():
    # greedy takes 1 (0.6) and then has 0.5 at best; 2 (0.4) leads to a sure 3 (0.4 > 0.3)
    table = log_table([[0.001, 0.6, 0.398, 0.001], [0.25, 0.25, 0.25, 0.25],
                       [0.001, 0.001, 0.001, 0.997], [0.25, 0.25, 0.25, 0.25]])
    model = TableModel(table)
    assert generate(model, np.array([0]), 2, temperature=0).tolist() == [0, 1, 0]
    best = beam_search(model, np.array([0]), 2, num_beams=2)[0]
    assert best.tokens.tolist() == [0, 2, 3]
    assert best.log_prob == pytest.approx(np.log(0.398 * 0.997))


def test_cached_and_uncached_beam_search_agree():
    model = spread_model(seed=5, std=0.3)
    prompt = np.array([3, 3, 7])
    kwargs = dict(num_beams=3, stop_tokens=[0], length_penalty=0.7)
    cached = beam_search(model, prompt, 14, use_cache=True, **kwargs)  # slides past the context
    plain = beam_search(model, prompt, 14, use_cache=False, **kwargs)
    assert len(cached) == len(plain) == 3
    for a, b in zip(cached, plain):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        assert a.log_prob == pytest.approx(b.log_prob, abs=1e-4) and a.finished == b.finished


# 0 is the prompt, 4 the stop token. From 0: stop 0.4, 1 0.35, 2 0.25. From 1: stop 0.9.
# From 2 and 3: 3 with 0.98, so 0 2 3 3 3 ... keeps a high probability per token.
STOP_TABLE = log_table([[0.0005, 0.35, 0.249, 0.0005, 0.4],
                        [0.025, 0.025, 0.025, 0.025, 0.9],
                        [0.005, 0.005, 0.005, 0.98, 0.005],
                        [0.005, 0.005, 0.005, 0.98, 0.005],
                        [0.2, 0.2, 0.2, 0.2, 0.2]])


def test_early_stopping_ends_as_soon_as_num_beams_hypotheses_have_finished():
    model = TableModel(STOP_TABLE)
    beams = beam_search(model, np.array([0]), 10, num_beams=2, early_stopping=True, stop_tokens=[4])
    # step 1 finishes [4] (log 0.4, 1 token); step 2 finishes [1, 4] (log 0.315, 2 tokens)
    assert [b.tokens.tolist() for b in beams] == [[0, 1, 4], [0, 4]]
    assert all(b.finished for b in beams)
    assert [b.num_new for b in beams] == [2, 1]
    assert beams[0].score == pytest.approx(np.log(0.35 * 0.9) / 2)
    assert beams[1].score == pytest.approx(np.log(0.4))
    assert model.calls == 2  # it stopped after two steps


def test_a_stop_token_finishes_a_beam_only_if_it_ranks_among_the_best_num_beams():
    # from 0: 1 (0.4), stop 3 (0.3), stop 4 (0.2), 2 (0.1); with 2 beams, [0, 4] ranks third
    model = TableModel(log_table([[0.0, 0.4, 0.1, 0.3, 0.2]] * 5))
    beams = beam_search(model, np.array([0]), 1, num_beams=2, early_stopping=True, stop_tokens=[3, 4])
    assert [b.tokens.tolist() for b in beams] == [[0, 1], [0, 3]]
    assert [b.finished for b in beams] == [False, True]


def test_without_early_stopping_a_running_beam_that_can_still_win_continues():
    model = TableModel(STOP_TABLE)
    beams = beam_search(model, np.array([0]), 6, num_beams=2, early_stopping=False, stop_tokens=[4])
    best = beams[0]
    assert best.tokens.tolist() == [0, 2, 3, 3, 3, 3, 3] and not best.finished
    assert best.log_prob == pytest.approx(np.log(0.249 * 0.98 ** 5))
    assert best.score == pytest.approx(best.log_prob / 6) and best.score > np.log(0.315) / 2
    # a length penalty of 0 ranks by log-probability alone, and then the short [4] wins
    ranked = beam_search(model, np.array([0]), 6, num_beams=2, length_penalty=0.0, stop_tokens=[4])
    assert ranked[0].tokens.tolist() == [0, 4] and ranked[0].score == pytest.approx(np.log(0.4))


def test_beams_are_sorted_by_their_length_normalised_score():
    model = spread_model(seed=6, std=0.4)
    for length_penalty in (0.0, 1.0, 2.0):
        beams = beam_search(model, np.array([1, 2]), 6, num_beams=4, stop_tokens=[3, 4],
                            length_penalty=length_penalty)
        assert all(isinstance(b, Beam) for b in beams) and len(beams) == 4
        scores = [b.score for b in beams]
        assert scores == sorted(scores, reverse=True)
        for b in beams:
            assert b.score == pytest.approx(b.log_prob / b.num_new ** length_penalty)
            assert b.finished == (b.tokens[-1] in (3, 4))
            assert len(b.tokens) == 2 + b.num_new


# ----------------------------------------------------------------------------------------------
# Clear errors


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(temperature=-0.5), ValueError, "temperature must be a finite number >= 0"),
    (dict(temperature=float("nan")), ValueError, "temperature must be a finite number >= 0, got nan"),
    (dict(temperature=float("inf")), ValueError, "temperature must be a finite number >= 0, got inf"),
    (dict(top_p=0.0), ValueError, r"top_p must be a finite number in \(0, 1\]"),
    (dict(top_p=1.5), ValueError, r"top_p must be a finite number in \(0, 1\]"),
    (dict(top_p=float("nan")), ValueError, r"top_p must be a finite number in \(0, 1\]"),
    (dict(top_k=0), ValueError, "top_k must be an integer >= 1"),
    (dict(top_k=2.5), TypeError, "top_k must be an integer, got 2.5"),
    (dict(repetition_penalty=0.0), ValueError, "repetition_penalty must be a finite number > 0"),
    (dict(repetition_penalty=float("nan")), ValueError, "repetition_penalty must be a finite number > 0, got nan"),
    (dict(max_new_tokens=-1), ValueError, "max_new_tokens must be an integer >= 0"),
    (dict(rng=None), TypeError, "sampling needs rng"),
    (dict(stop_tokens=[11]), IndexError, "token id 11 is out of range for a vocabulary of 11"),
])
def test_generate_rejects_bad_settings_clearly(kwargs, error, message):
    settings = dict(max_new_tokens=3, temperature=1.0, rng=np.random.default_rng(0)) | kwargs
    with pytest.raises(error, match=message):
        generate(GPT(TINY), np.array([1, 2]), **settings)


@pytest.mark.parametrize("prompt, error, message", [
    (np.array([], dtype=np.int64), ValueError, "at least one token"),
    (np.zeros((2, 0), dtype=np.int64), ValueError, "at least one token"),
    (np.array([1, 11]), IndexError, "token id 11 is out of range"),
    (np.array([-1, 2]), IndexError, "token id -1 is out of range"),
    (np.array([1.0, 2.0]), TypeError, "token ids must be integers"),
])
def test_generate_rejects_bad_prompts_before_running_the_model(prompt, error, message):
    model = TableModel(np.zeros((11, 11)))
    with pytest.raises(error, match=message):
        generate(model, prompt, 0, temperature=0)  # checked even when nothing is generated
    assert model.calls == 0


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(num_beams=0), ValueError, "num_beams must be an integer >= 1"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens must be an integer >= 1"),
    (dict(length_penalty=float("inf")), ValueError, "length_penalty must be a finite number"),
    (dict(stop_tokens=[-2]), IndexError, "token id -2 is out of range"),
    (dict(idx=np.array([[1, 2], [3, 4]])), ValueError, r"one prompt of shape \(T,\)"),
    (dict(idx=np.array([], dtype=np.int64)), ValueError, "at least one token"),
    (dict(idx=np.array([99])), IndexError, "token id 99 is out of range"),
])
def test_beam_search_rejects_bad_settings_clearly(kwargs, error, message):
    settings = dict(idx=np.array([1, 2]), max_new_tokens=3, num_beams=2) | kwargs
    with pytest.raises(error, match=message):
        beam_search(GPT(TINY), **settings)


# ----------------------------------------------------------------------------------------------
# Documentation


def test_the_docstring_examples_run():
    import doctest

    from tinygrad_llm.model import generation

    result = doctest.testmod(generation)
    assert result.attempted >= 2 and result.failed == 0
