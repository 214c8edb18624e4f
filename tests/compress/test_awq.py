"""AWQ: folded scales leave the model's function unchanged, and scaling lowers the rounding error."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.compress.awq import (ALPHAS, apply_scales, awq_model, grid_quantize, output_error, search_clipping,
                                       search_scales)
from tinygrad_llm.compress.gptq import rtn, rtn_model

CONFIG = GPTConfig(vocab_size=64, context_length=16, d_model=32, n_layer=2, n_head=2)


def salient_inputs(rng, n=800, d=64, salient=(3, 17, 40)):
    """Activations where a few channels are far larger than the rest, as in trained transformers."""
    x = rng.normal(size=(n, d))
    x[:, list(salient)] *= 25.0
    return x


def test_grid_quantize_without_clipping_is_round_to_nearest():
    W = np.random.default_rng(0).normal(size=(8, 32))
    assert np.array_equal(grid_quantize(W, 4, 16).dequantize(), rtn(W, 4, 16).dequantize())


def test_alpha_is_searched_over_twenty_points_and_zero_means_no_scaling():
    rng = np.random.default_rng(1)
    x, W = salient_inputs(rng), rng.normal(size=(16, 64))
    s, alpha, errors = search_scales(x, W, 4, 16)
    assert len(errors) == 20 == len(ALPHAS) and alpha in errors
    assert errors[0.0] == pytest.approx(output_error(x, W, rtn(W, 4, 16).dequantize(np.float64)))
    assert errors[alpha] == min(errors.values())


def test_scaling_the_salient_channels_lowers_the_output_error_well_below_rounding():
    rng = np.random.default_rng(2)
    x, W = salient_inputs(rng), rng.normal(size=(16, 64))
    s, alpha, errors = search_scales(x, W, 4, 16)
    assert alpha > 0 and errors[alpha] < 0.8 * errors[0.0]
    assert s[[3, 17, 40]].min() > np.median(s)   # the salient channels get the largest scales


def test_clipping_never_raises_a_groups_error():
    rng = np.random.default_rng(3)
    x, W = salient_inputs(rng), rng.standard_t(3, size=(16, 64))   # heavy-tailed weights
    ratios = search_clipping(x, W, 3, 16)
    assert ratios.shape == (16, 4) and (ratios <= 1.0).all() and (ratios < 1.0).any()
    assert output_error(x, W, grid_quantize(W, 3, 16, ratios).dequantize(np.float64)) <= \
        output_error(x, W, grid_quantize(W, 3, 16).dequantize(np.float64))


@pytest.mark.parametrize("name", ["attn.qkv", "attn.proj", "mlp.up"])
def test_folded_scales_leave_the_model_function_unchanged(name):
    model = GPT(CONFIG, rng=np.random.default_rng(0), dtype=np.float64).eval()
    model.blocks[0].norm1.bias.data[...] = np.random.default_rng(9).normal(size=32)
    model.blocks[0].norm2.bias.data[...] = np.random.default_rng(8).normal(size=32)
    ids = np.random.default_rng(4).integers(0, 64, (2, 16))
    before = model(ids).data
    size = model.get_submodule(f"blocks.0.{name}").weight.shape[1]
    apply_scales(model, "blocks.0", name, np.random.default_rng(5).uniform(0.3, 3.0, size))
    np.testing.assert_allclose(model(ids).data, before, rtol=1e-10, atol=1e-12)


def test_no_scale_folds_through_gelu():
    model = GPT(CONFIG)
    with pytest.raises(ValueError, match="mlp.down"):
        apply_scales(model, "blocks.0", "mlp.down", np.ones(128))


def test_awq_model_rounds_every_linear_and_records_its_scales():
    rng = np.random.default_rng(6)
    batches = [rng.integers(0, 64, (8, 16)) for _ in range(3)]
    model = GPT(CONFIG, rng=np.random.default_rng(0))
    done = awq_model(model, batches, bits=4, group_size=16, clip=True)
    assert len(done) == 8
    assert done["blocks.0.mlp.down"].scales is None and done["blocks.0.attn.qkv"].alpha is not None
    for name, layer in done.items():
        assert np.array_equal(model.get_submodule(name).weight.data, layer.grid.dequantize())
    assert model.training


def test_awq_model_beats_rounding_on_a_model_with_salient_channels():
    rng = np.random.default_rng(7)
    batches = [rng.integers(0, 64, (8, 16)) for _ in range(3)]

    def salient_model():
        m = GPT(CONFIG, rng=np.random.default_rng(0))
        for block in m.blocks:   # a few LayerNorm channels far louder than the rest
            block.norm1.weight.data[[2, 9]] = 12.0
            block.norm2.weight.data[[5, 30]] = 12.0
        return m.eval()

    reference = salient_model()(batches[0]).data
    rounded, scaled = salient_model(), salient_model()
    rtn_model(rounded, bits=3, group_size=16)
    awq_model(scaled, batches, bits=3, group_size=16)
    err_rtn = np.abs(rounded.eval()(batches[0]).data - reference).mean()
    err_awq = np.abs(scaled.eval()(batches[0]).data - reference).mean()
    assert err_awq < err_rtn
