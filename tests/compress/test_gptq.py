"""GPTQ: each step against a plain reference, and the output error it promises."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.compress.gptq import (HessianAccumulator, gptq, gptq_model, minmax_grid, output_error, rtn,
                                        rtn_model)
from tinygrad_llm.compress.quantize import QuantScheme, quantize


def correlated_inputs(rng, n=600, d=64):
    """Inputs whose channels have different scales and are correlated, as real activations are."""
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    return (rng.normal(size=(n, d)) @ mix) * np.geomspace(0.2, 4.0, d)


def gptq_by_hand(W, H, bits, group_size, damp=0.01):
    """The algorithm as written in the paper: one column at a time, the inverse Hessian of the
    remaining columns updated after each (no Cholesky, no blocks)."""
    W = W.astype(np.float64).copy()
    rows, cols = W.shape
    Hd = H.copy()
    Hd[np.diag_indices_from(Hd)] += damp * np.mean(np.diag(H))
    Hinv = np.linalg.inv(Hd)
    Q = np.zeros_like(W)
    for i in range(cols):
        if i % group_size == 0:
            scale, zero = minmax_grid(W[:, i:i + group_size], bits)
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        Q[:, i] = scale * (np.clip(np.rint(W[:, i] / scale) + zero, lo, hi) - zero)
        error = (W[:, i] - Q[:, i]) / Hinv[i, i]
        W[:, i:] -= np.outer(error, Hinv[i, i:])
        # remove column i from the inverse: the Schur complement of the remaining columns
        Hinv = Hinv - np.outer(Hinv[:, i], Hinv[i, :]) / Hinv[i, i]
    return Q


def test_the_running_hessian_is_2_over_n_sum_x_xT():
    x = np.random.default_rng(0).normal(size=(90, 8))
    acc = HessianAccumulator(8)
    for part in np.array_split(x, 4):
        acc.add(part)
    np.testing.assert_allclose(acc.H, 2 / 90 * x.T @ x, atol=1e-12)


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_round_to_nearest_is_the_same_grid_as_quantize(bits):
    W = np.random.default_rng(1).normal(size=(8, 32)).astype(np.float32)
    grid = rtn(W, bits, 16)
    if bits in (4, 8):
        ours = quantize(W, QuantScheme(bits, "group", symmetric=False, group_size=16))
        assert np.array_equal(grid.dequantize(), ours.dequantize())
        assert np.array_equal(grid.to_quantized_tensor().dequantize(), ours.dequantize())
    assert np.abs(grid.dequantize() - W).max() <= grid.scale.max() / 2 + 1e-6


def test_gptq_equals_the_column_by_column_algorithm_of_the_paper():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(12, 48))
    x = correlated_inputs(rng, d=48)
    H = 2 / len(x) * x.T @ x
    ours = gptq(W, H, bits=4, group_size=16, block_size=48).dequantize(np.float64)
    np.testing.assert_allclose(ours, gptq_by_hand(W, H, 4, 16), atol=1e-6)


@pytest.mark.parametrize("act_order", [False, True])
def test_lazy_block_updates_give_the_same_weights_as_one_column_at_a_time(act_order):
    rng = np.random.default_rng(3)
    x = correlated_inputs(rng)
    H = 2 / len(x) * x.T @ x
    W = rng.normal(size=(16, 64))
    blocked = gptq(W, H, 4, 16, block_size=32, act_order=act_order)
    one_by_one = gptq(W, H, 4, 16, block_size=1, act_order=act_order)
    assert np.array_equal(blocked.codes, one_by_one.codes)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bits, group_size", [(4, 16), (3, 32), (4, 64)])
def test_gptq_output_error_is_never_above_rounding_to_nearest(seed, bits, group_size):
    rng = np.random.default_rng(seed)
    x = correlated_inputs(rng)
    H = 2 / len(x) * x.T @ x
    W = rng.normal(size=(24, 64))
    nearest = output_error(W, rtn(W, bits, group_size).dequantize(np.float64), H)
    for act_order in (False, True):
        assert output_error(W, gptq(W, H, bits, group_size, act_order=act_order).dequantize(np.float64), H) < nearest


def test_dead_inputs_get_zero_weight_columns():
    rng = np.random.default_rng(4)
    x = correlated_inputs(rng, d=16)
    x[:, 3] = 0.0
    grid = gptq(rng.normal(size=(4, 16)), 2 / len(x) * x.T @ x, 4, 8)
    assert np.all(grid.dequantize()[:, 3] == 0.0)


def test_gptq_model_quantizes_every_block_and_beats_rounding_on_the_logits():
    config = GPTConfig(vocab_size=64, context_length=16, d_model=32, n_layer=2, n_head=2)
    rng = np.random.default_rng(5)
    batches = [rng.integers(0, 64, (8, 16)) for _ in range(4)]
    reference = GPT(config, rng=np.random.default_rng(0)).eval()
    target = reference(batches[0]).data
    quantized = GPT(config, rng=np.random.default_rng(0))
    grids = gptq_model(quantized, batches, bits=3, group_size=16)
    rounded = GPT(config, rng=np.random.default_rng(0))
    rtn_model(rounded, bits=3, group_size=16)
    assert len(grids) == 8 and all(g.bits == 3 for g in grids.values())
    assert quantized.training, "the model's mode is restored"
    for name, grid in grids.items():
        assert np.array_equal(quantized.get_submodule(name).weight.data, grid.dequantize())
    err_gptq = np.abs(quantized.eval()(batches[0]).data - target).mean()
    err_rtn = np.abs(rounded.eval()(batches[0]).data - target).mean()
    assert err_gptq < err_rtn


@pytest.mark.parametrize("call, fragment", [
    (lambda: rtn(np.ones((4, 10)), 4, 4), "does not divide"),
    (lambda: rtn(np.ones((4, 8)), 9, 4), "bits"),
    (lambda: rtn(np.ones(8), 4, 4), "shape"),
    (lambda: gptq(np.ones((4, 8)), np.eye(4), 4, 4), "H must be"),
    (lambda: gptq(np.ones((4, 8)), np.eye(8), 4, 4, damp=0.0), "damp"),
    (lambda: gptq_model(GPT(GPTConfig(vocab_size=8, context_length=4, d_model=8, n_layer=1, n_head=2)), []), "calibration batch"),
])
def test_bad_settings_are_refused(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
