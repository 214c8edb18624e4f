"""Quantization: schemes and error bounds, int4 packing, quantized layers and models (tied
embedding/head included), int8 activations with exact integer accumulation, size accounting,
quantized checkpoints and their errors, calibration, fake quantization with a straight-through
gradient (gradchecks in float64) and QLoRA on a frozen quantized base."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from tinygrad_llm import GPT, AdamW, GPTConfig, Linear, Tensor, gradcheck, no_grad
from tinygrad_llm.compress import quantize as quantize_module
from tinygrad_llm import functional as F
from tinygrad_llm.scale.memory import finetune_memory, trainable_parameters
from tinygrad_llm.model.state import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.model.nn import Embedding, Module
from tinygrad_llm.finetune.lora import apply_lora, base_fingerprint, load_lora, merge_lora, save_lora, unload_lora
from tinygrad_llm.compress.qat import QATEmbedding, QATLinear, convert_qat, fake_quantize, prepare_qat
from tinygrad_llm.compress.qlora import apply_qlora
from tinygrad_llm.compress.calibration import calibrate
from tinygrad_llm.compress.quantize import (QuantizedEmbedding, QuantizedLinear, QuantScheme, dequantize, model_bytes,
                                   pack_int4, quantize, quantize_model, unpack_int4, weight_bytes)
from tinygrad_llm.compress.quantized_state import load_quantized, save_quantized

CONFIG = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=2, n_head=2)
TINY64 = GPTConfig(vocab_size=11, context_length=6, d_model=8, n_layer=1, n_head=2)  # gradchecks

SCHEMES = [QuantScheme(bits, granularity, symmetric, group_size)
           for bits in (8, 4) for symmetric in (True, False)
           for granularity, group_size in (("tensor", None), ("channel", None), ("group", 4))]


def make_gpt(config: GPTConfig = CONFIG, seed: int = 0, dtype=np.float32) -> GPT:
    return GPT(config, rng=np.random.default_rng(seed), dtype=dtype).eval()


def tokens(config: GPTConfig, shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, config.vocab_size, shape)


def step_per_entry(qt) -> np.ndarray:
    """The scale that applies to each entry of the float tensor."""
    if qt.scheme.granularity == "tensor":
        return np.broadcast_to(qt.scale, qt.shape)
    if qt.scheme.granularity == "channel":
        return np.broadcast_to(qt.scale[:, None], qt.shape)
    return np.repeat(qt.scale, qt.scheme.group_size, axis=1)


def logits(model, idx) -> np.ndarray:
    with no_grad():
        return model(idx).data


@pytest.mark.parametrize("module", [quantize_module])
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0


# ----------------------------------------------------------------------------------------------
# Schemes and arrays


def test_scheme_errors_are_clear():
    for bits in (3, 16, True, 8.0):
        with pytest.raises(ValueError, match="bits must be 8 or 4"):
            QuantScheme(bits=bits)
    with pytest.raises(ValueError, match="granularity must be one of"):
        QuantScheme(granularity="row")
    for size in (None, 0, -4, 2.5):
        with pytest.raises(ValueError, match="needs a positive integer group_size"):
            QuantScheme(granularity="group", group_size=size)
    with pytest.raises(ValueError, match="group_size is only used with granularity='group'"):
        QuantScheme(granularity="channel", group_size=32)


def test_scheme_names_and_code_ranges():
    assert QuantScheme(8, "channel").name == "int8 per-channel"
    assert QuantScheme(4, "group", False, 64).name == "int4 group-64 asym"
    assert QuantScheme(8).code_range == (-127, 127) and QuantScheme(8, symmetric=False).code_range == (-128, 127)
    assert QuantScheme(4).code_range == (-7, 7) and QuantScheme(4, symmetric=False).code_range == (-8, 7)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_round_trip_error_is_at_most_half_a_step(scheme):
    w = np.random.default_rng(0).normal(0, 0.5, (6, 12)).astype(np.float32)
    w[2, 3] = 4.0  # an outlier
    qt = quantize(w, scheme)
    error = np.abs(dequantize(qt) - w)
    assert np.all(error <= step_per_entry(qt) / 2 * (1 + 1e-5) + 1e-7)
    codes = qt.int_codes()
    low, high = scheme.code_range
    assert codes.dtype == np.int8 and codes.min() >= low and codes.max() <= high
    assert qt.scale.dtype == np.float32 and np.all(qt.scale > 0)
    expected_scales = {"tensor": (), "channel": (6,), "group": (6, 3)}[scheme.granularity]
    assert qt.scale.shape == expected_scales
    assert (qt.zero_point is None) == scheme.symmetric
    assert qt.codes.dtype == (np.uint8 if scheme.bits == 4 else np.int8)
    assert qt.codes.nbytes == (w.size // 2 if scheme.bits == 4 else w.size)


def test_per_channel_scales_and_codes_are_exact_on_known_inputs():
    w = np.array([[63.5, -32.0, 0.5], [12.7, 5.0, -1.0]], dtype=np.float32)
    qt = quantize(w, QuantScheme(8, "channel"))
    np.testing.assert_array_equal(qt.scale, np.array([0.5, np.float64(np.float32(12.7)) / 127], dtype=np.float32))
    np.testing.assert_array_equal(qt.int_codes(), [[127, -64, 1], [127, 50, -10]])
    np.testing.assert_array_equal(quantize(w, QuantScheme(8, "tensor")).scale, np.float32(0.5))


def test_more_scales_mean_smaller_error():
    w = np.random.default_rng(1).normal(0, 1, (32, 64)) * np.random.default_rng(2).uniform(0.1, 3, (32, 1))
    errors = {}
    for scheme in (QuantScheme(4, "tensor"), QuantScheme(4, "channel"), QuantScheme(4, "group", group_size=16)):
        errors[scheme.granularity] = np.sqrt(np.mean((dequantize(quantize(w, scheme), np.float64) - w) ** 2))
    assert errors["group"] < errors["channel"] < errors["tensor"]


def test_asymmetric_handles_all_positive_and_all_negative_tensors():
    rng = np.random.default_rng(3)
    positive = rng.uniform(1.0, 2.0, (4, 16)).astype(np.float32)
    asym = quantize(positive, QuantScheme(8, "channel", symmetric=False))
    sym = quantize(positive, QuantScheme(8, "channel"))
    assert np.all(asym.zero_point == -128)              # the range [0, max] starts at the lowest code
    np.testing.assert_allclose(asym.scale, positive.max(axis=1) / 255, rtol=1e-6)
    asym_error = np.abs(dequantize(asym) - positive)
    assert np.all(asym_error <= asym.scale[:, None] / 2 * (1 + 1e-5))
    assert asym_error.mean() < 0.6 * np.abs(dequantize(sym) - positive).mean()   # twice the levels
    negative = -positive
    qt = quantize(negative, QuantScheme(4, "tensor", symmetric=False))
    assert qt.zero_point == 7 and np.all(dequantize(qt) <= 0)
    mixed = np.array([[0.0, 0.3, 1.7, -0.2]], dtype=np.float32)
    assert dequantize(quantize(mixed, QuantScheme(8, "tensor", symmetric=False)))[0, 0] == 0.0  # 0 is exact


def test_all_zero_blocks_get_unit_scale_and_exact_zeros():
    w = np.zeros((3, 8), dtype=np.float32)
    w[1] = np.linspace(-1, 1, 8)
    for scheme in (QuantScheme(8, "channel"), QuantScheme(4, "group", False, 4)):
        qt = quantize(w, scheme)
        np.testing.assert_array_equal(dequantize(qt)[[0, 2]], 0.0)
        assert np.all(qt.scale[0] == 1.0)


def test_quantize_input_errors_are_clear():
    with pytest.raises(TypeError, match="floating point array"):
        quantize(np.ones((2, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="inf or NaN"):
        quantize(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="needs a 2-D weight"):
        quantize(np.ones((2, 3, 4)), QuantScheme(8, "channel"))
    with pytest.raises(ValueError, match="group size 5 does not divide the row length 12"):
        quantize(np.ones((2, 12)), QuantScheme(4, "group", group_size=5))
    quantize(np.ones((2, 3, 4)), QuantScheme(8, "tensor"))  # per tensor takes any shape


@pytest.mark.parametrize("count", [1, 2, 15, 16, 33])
def test_int4_packing_round_trip(count):
    codes = (np.arange(count) % 16 - 8).astype(np.int8)    # every code -8..7
    packed = pack_int4(codes)
    assert packed.dtype == np.uint8 and packed.size == (count + 1) // 2
    np.testing.assert_array_equal(unpack_int4(packed, count), codes)


def test_int4_packing_layout_and_errors():
    np.testing.assert_array_equal(pack_int4(np.array([-8, 7], dtype=np.int8)), [0xF0])  # low nibble first
    with pytest.raises(ValueError, match="codes in -8..7"):
        pack_int4(np.array([8]))
    with pytest.raises(ValueError, match="codes in -8..7"):
        pack_int4(np.array([0.5]))
    with pytest.raises(ValueError, match="1-D uint8 array of 2 bytes for 3 codes"):
        unpack_int4(np.zeros(3, dtype=np.uint8), 3)
    with pytest.raises(ValueError, match="uint8"):
        unpack_int4(np.zeros(2, dtype=np.int8), 3)


# ----------------------------------------------------------------------------------------------
# Layers


def make_linear(in_features: int = 12, out_features: int = 5, dtype=np.float32, seed: int = 0) -> Linear:
    layer = Linear(in_features, out_features, rng=np.random.default_rng(seed), dtype=dtype, std=0.3)
    layer.bias.data[...] = np.random.default_rng(seed + 1).normal(0, 0.1, out_features)
    return layer


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_quantized_linear_computes_with_the_dequantized_weight(scheme):
    linear = make_linear()
    layer = QuantizedLinear.from_linear(linear, scheme)
    x = Tensor(np.random.default_rng(2).normal(size=(2, 3, 12)), dtype=np.float32)
    w_hat = dequantize(quantize(linear.weight.data, scheme))
    np.testing.assert_array_equal(layer(x).data, F.linear(x, Tensor(w_hat), linear.bias).data)
    assert not layer.bias.requires_grad and layer.num_parameters(trainable_only=True) == 0
    if scheme.bits == 8:
        np.testing.assert_allclose(layer(x).data, linear(x).data, atol=0.02)


def int_reference(x: np.ndarray, layer: QuantizedLinear, rescale_dtype) -> np.ndarray:
    """Per-token int8 inputs times int8 weights with an int64 accumulator (what int8 hardware
    does), rescaled in ``rescale_dtype``, the precision of the layer's float accumulator."""
    absmax = np.abs(x).max(axis=1, keepdims=True)
    sx = (absmax / 127).astype(np.float32)
    qx = np.clip(np.rint(x / sx.astype(np.float64)), -127, 127).astype(np.int64)
    acc = qx @ layer.quantized.int_codes().astype(np.int64).T
    y = acc.astype(rescale_dtype) * sx * layer.scale + layer.bias.data
    return y.astype(np.float32)


@pytest.mark.parametrize("in_features", [12, 1100])   # 1100 > 1040: the float64 accumulator
def test_dynamic_int8_activations_match_integer_accumulation_exactly(in_features):
    layer = QuantizedLinear.from_linear(make_linear(in_features, 6), QuantScheme(8, "channel"), activations="dynamic")
    x = np.random.default_rng(4).normal(size=(5, in_features)).astype(np.float32)
    out = layer(Tensor(x)).data
    np.testing.assert_array_equal(out, int_reference(x, layer, np.float32 if in_features <= 1040 else np.float64))
    reference = x @ layer.weight.data.T + layer.bias.data
    assert np.abs(out - reference).max() < 0.02 * np.abs(reference).max()


def test_int8_activations_with_group_weights_and_static_scale():
    linear = make_linear()
    x = np.random.default_rng(5).normal(size=(4, 12)).astype(np.float32)
    grouped = QuantizedLinear.from_linear(linear, QuantScheme(4, "group", group_size=4), activations="dynamic")
    np.testing.assert_allclose(grouped(Tensor(x)).data, x @ grouped.weight.data.T + linear.bias.data, atol=0.05)
    static = QuantizedLinear.from_linear(linear, QuantScheme(8, "channel"), activations="static", input_absmax=1.0)
    assert static.input_scale == np.float32(1 / 127)
    clipped = np.clip(x, -1.0, 1.0)   # the static range clips what lies beyond it
    np.testing.assert_allclose(static(Tensor(x)).data, clipped @ static.weight.data.T + linear.bias.data, atol=0.03)
    with pytest.raises(ValueError, match="positive input_absmax"):
        QuantizedLinear.from_linear(linear, QuantScheme(8), activations="static")
    with pytest.raises(ValueError, match="activations must be one of"):
        QuantizedLinear(3, 4, activations="int4")


def test_int8_activations_refuse_to_train():
    layer = QuantizedLinear.from_linear(make_linear(), activations="dynamic")
    x = Tensor(np.ones((2, 12)), dtype=np.float32, requires_grad=True)
    with pytest.raises(RuntimeError, match="int8 activations are for inference"):
        layer(x)
    with no_grad():
        layer(x)


def test_gradcheck_quantized_linear_input_and_bias_float64():
    layer = QuantizedLinear.from_linear(make_linear(dtype=np.float64), QuantScheme(4, "group", group_size=4))
    layer.bias.requires_grad_(True)
    x = Tensor(np.random.default_rng(6).normal(size=(2, 3, 12)), requires_grad=True)
    assert layer.weight.dtype == np.float64
    assert gradcheck(lambda x, b: layer(x), x, layer.bias)


def test_quantized_embedding_lookups_are_rows_of_the_table():
    embedding = Embedding(10, 8, rng=np.random.default_rng(0))
    for scheme in (QuantScheme(8, "channel"), QuantScheme(4, "group", False, 4), QuantScheme(8, "tensor")):
        layer = QuantizedEmbedding.from_embedding(embedding, scheme)
        ids = np.array([[3, 3, 9], [0, 1, 2]])
        np.testing.assert_array_equal(layer(ids).data, layer.weight.data[ids])
        np.testing.assert_array_equal(layer.weight.data, dequantize(quantize(embedding.weight.data, scheme)))
    with pytest.raises(IndexError, match="token id 10 is out of range"):
        layer(np.array([10]))


# ----------------------------------------------------------------------------------------------
# Whole models


def test_quantized_gpt_is_close_to_the_float_gpt():
    model, idx = make_gpt(), tokens(CONFIG, (2, 8))
    expected = logits(model, idx)
    names = quantize_model(model, QuantScheme(8, "channel"))
    assert names[:2] == ["token_embedding", "position_embedding"] and len(names) == 2 + 4 * CONFIG.n_layer
    out = logits(model, idx)
    assert np.abs(out - expected).max() < 0.02 * np.abs(expected).max()
    assert model.num_parameters(trainable_only=True) == sum(
        p.size for n, p in model.named_parameters() if "norm" in n)  # only LayerNorms stay trainable


def test_tied_head_reads_the_one_quantized_table():
    model = make_gpt()
    quantize_model(model, QuantScheme(4, "group", group_size=8))
    table = model.token_embedding(np.arange(CONFIG.vocab_size)).data
    np.testing.assert_array_equal(model.output_weight().data, table)
    hidden = model.hidden_states(tokens(CONFIG, (1, 5)))
    np.testing.assert_array_equal(logits(model, tokens(CONFIG, (1, 5))), F.linear(hidden, Tensor(table)).data)
    counted = sum(a.nbytes for m in model.modules() if isinstance(m, QuantizedEmbedding)
                  for a in (m.qweight, m.scale))
    linear_bytes = sum(m.qweight.nbytes + m.scale.nbytes for m in model.modules() if isinstance(m, QuantizedLinear))
    assert weight_bytes(model) == counted + linear_bytes   # the head adds nothing: it is the table


def test_untied_head_is_quantized_as_a_linear():
    config = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=1, n_head=2, tie_weights=False)
    model = make_gpt(config)
    assert "head" in quantize_model(model, QuantScheme(8))
    assert isinstance(model.head, QuantizedLinear)


def test_shared_weights_are_quantized_once_and_counted_once():
    class Shared(Module):
        def __init__(self):
            self.embed = Embedding(6, 4, rng=np.random.default_rng(0))
            self.out = Linear(4, 6, bias=False, rng=np.random.default_rng(1))
            self.out.weight = self.embed.weight

    model = Shared()
    float_bytes = weight_bytes(model)
    assert float_bytes == 6 * 4 * 4
    quantize_model(model, QuantScheme(8, "channel"))
    assert model.out.qweight is model.embed.qweight and model.out.scale is model.embed.scale
    assert weight_bytes(model) == 6 * 4 + 6 * 4
    model = Shared()
    with pytest.raises(ValueError, match="shares its weight with another layer quantized with a different scheme"):
        quantize_model(model, QuantScheme(8, "channel"), embedding_scheme=QuantScheme(8, "tensor"))


def test_weight_bytes_follow_the_formula():
    model = make_gpt()
    n = sum(p.size for n_, p in model.named_parameters() if p.ndim == 2)
    rows = sum(p.shape[0] for n_, p in model.named_parameters() if p.ndim == 2)
    assert weight_bytes(model) == 4 * n
    total = model_bytes(model)
    assert total == 4 * model.num_parameters()
    quantize_model(model, QuantScheme(8, "channel", symmetric=False))
    assert weight_bytes(model) == n + 4 * rows + rows     # codes, float32 scales, int8 zero points
    assert model_bytes(model) == total - 4 * n + weight_bytes(model)
    model = make_gpt()
    quantize_model(model, QuantScheme(4, "group", group_size=8))
    assert weight_bytes(model) == n // 2 + 4 * (n // 8)


def test_quantize_model_checks_every_layer_before_changing_any():
    model = make_gpt()
    before = logits(model, tokens(CONFIG, (1, 4)))
    with pytest.raises(ValueError, match=r"cannot quantize blocks.0.attn.qkv \(int4 group-32\): group size 32 "
                                         r"does not divide the row length 16"):
        quantize_model(model, QuantScheme(4, "group", group_size=32), embedding_scheme=QuantScheme(8))
    assert not any(isinstance(m, (QuantizedLinear, QuantizedEmbedding)) for m in model.modules())
    np.testing.assert_array_equal(logits(model, tokens(CONFIG, (1, 4))), before)
    with pytest.raises(ValueError, match="static activations need calibrate"):
        quantize_model(model, activations="static")
    with pytest.raises(ValueError, match="no Linear or Embedding layer"):
        quantize_model(model, skip=("token_embedding", "position_embedding", "qkv", "proj", "up", "down"))
    names = quantize_model(model, skip=("position_embedding", "blocks.1.mlp.down"))
    assert "position_embedding" not in names and isinstance(model.blocks[1].mlp.down, Linear)


def test_calibrate_records_the_inputs_and_restores_the_model():
    model = make_gpt()
    batches = [tokens(CONFIG, (2, 6), seed=s) for s in (1, 2)]
    modules = dict(model.named_modules())
    stats = calibrate(model, batches)
    assert list(stats) == [n for n, m in modules.items() if isinstance(m, Linear)]
    assert dict(model.named_modules()).keys() == modules.keys()
    assert all(model.get_submodule(n) is m for n, m in modules.items() if n)
    # the first qkv reads norm1 of the embeddings: compute it by hand
    seen = []
    for idx in batches:
        with no_grad():
            x = model.token_embedding(idx) + model.positions(idx.shape[1])
            seen.append(model.blocks[0].norm1(x).data.reshape(-1, CONFIG.d_model))
    seen = np.abs(np.concatenate(seen))
    first = stats["blocks.0.attn.qkv"]
    np.testing.assert_array_equal(first.channel_absmax, seen.max(axis=0))
    assert first.absmax == seen.max() and first.tokens == 24
    assert first.outlier_ratio >= 1.0
    with pytest.raises(ValueError, match="no batch was given"):
        calibrate(model, [])


def test_static_activation_model_uses_calibrated_scales():
    model, idx = make_gpt(), tokens(CONFIG, (2, 8))
    expected = logits(model, idx)
    stats = calibrate(model, [idx])
    quantize_model(model, QuantScheme(8, "channel"), activations="static", calibration=stats)
    assert model.blocks[0].mlp.up.input_scale == np.float32(stats["blocks.0.mlp.up"].absmax / 127)
    out = logits(model, idx)
    assert np.abs(out - expected).max() < 0.05 * np.abs(expected).max()


# ----------------------------------------------------------------------------------------------
# Files


@pytest.mark.parametrize("scheme, activations", [(QuantScheme(8, "channel"), None),
                                                 (QuantScheme(4, "group", False, 8), None),
                                                 (QuantScheme(8, "tensor"), "static")])
def test_save_and_load_are_bit_exact(tmp_path, scheme, activations):
    model, idx = make_gpt(), tokens(CONFIG, (2, 7))
    stats = calibrate(model, [idx]) if activations == "static" else None
    quantize_model(model, scheme, activations=activations, calibration=stats)
    path = tmp_path / "model.safetensors"
    save_quantized(model, path, metadata={"note": "kept"})
    loaded, metadata = load_quantized(path)
    assert metadata["note"] == "kept" and not loaded.training
    for (name, a), (name_b, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == name_b and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(logits(loaded, idx), logits(model, idx))
    tensors, _ = load_safetensors(path)
    assert tensors["blocks.0.attn.qkv.qweight"].dtype == (np.uint8 if scheme.bits == 4 else np.int8)
    assert json.loads(metadata["layers"])["blocks.0.attn.qkv"]["scheme"] == scheme.to_dict()


def saved(tmp_path, scheme=QuantScheme(8, "channel")):
    model = make_gpt()
    quantize_model(model, scheme)
    path = tmp_path / "model.safetensors"
    save_quantized(model, path)
    tensors, metadata = load_safetensors(path)
    return path, {k: np.array(v) for k, v in tensors.items()}, metadata


def test_corrupt_quantized_files_are_refused(tmp_path):
    path, tensors, metadata = saved(tmp_path)
    bad = tmp_path / "bad.safetensors"
    cases = []
    codes = dict(tensors)
    codes["blocks.0.mlp.up.qweight"] = tensors["blocks.0.mlp.up.qweight"].copy()
    codes["blocks.0.mlp.up.qweight"][0, 0] = -128          # symmetric int8 never writes -128
    cases.append((codes, metadata, "codes outside -127..127"))
    widened = dict(tensors, **{"blocks.0.attn.qkv.qweight": tensors["blocks.0.attn.qkv.qweight"].astype(np.int16)})
    cases.append((widened, metadata, r"blocks.0.attn.qkv.qweight: int16 \(48, 16\) in the file, expected int8"))
    nan_scale = dict(tensors, **{"blocks.1.attn.proj.scale": np.full(16, np.nan, dtype=np.float32)})
    cases.append((nan_scale, metadata, "scales must be positive and finite"))
    missing = {k: v for k, v in tensors.items() if k != "blocks.1.mlp.down.scale"}
    cases.append((missing, metadata, "blocks.1.mlp.down.scale: missing"))
    cases.append((tensors, dict(metadata, layers="{not json"), "corrupt quantization metadata"))
    cases.append((tensors, dict(metadata, format="something else"), "not a quantized model"))
    for tensors_, metadata_, message in cases:
        save_safetensors(bad, tensors_, metadata_)
        with pytest.raises(CheckpointError, match=message):
            load_quantized(bad)
    bad.write_bytes(path.read_bytes()[:-100])               # truncated
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_quantized(bad)
    with pytest.raises(ValueError, match="no quantized layer"):
        save_quantized(make_gpt(), bad)
    qlora = make_gpt()
    apply_qlora(qlora, QuantScheme(8), r=2)
    with pytest.raises(ValueError, match=r"blocks.0.attn.qkv, blocks.0.attn.proj, blocks.1.attn.qkv, ... are LoRA "
                                         r"or QAT layers"):
        save_quantized(qlora, bad)


def test_corrupt_int4_codes_are_refused(tmp_path):
    path, tensors, metadata = saved(tmp_path, QuantScheme(4, "channel"))
    tensors["token_embedding.qweight"][0] = 0x00            # nibble 0 is code -8, unused by symmetric int4
    save_safetensors(path, tensors, metadata)
    with pytest.raises(CheckpointError, match="token_embedding.qweight: codes outside -7..7"):
        load_quantized(path)


# ----------------------------------------------------------------------------------------------
# Fake quantization and QAT


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_fake_quantize_forward_is_quantize_then_dequantize(scheme):
    w = Tensor(np.random.default_rng(7).normal(size=(4, 8)), dtype=np.float32, requires_grad=True)
    out = fake_quantize(w, scheme)
    np.testing.assert_array_equal(out.data, dequantize(quantize(w.data, scheme)))
    upstream = np.random.default_rng(8).normal(size=(4, 8))
    out.backward(upstream)
    np.testing.assert_allclose(w.grad, upstream.astype(np.float32))   # straight through


def test_fake_quantize_fixed_scale_matches_its_composed_version():
    x = Tensor(np.array([-3.0, -0.71, -0.2, 0.0, 0.33, 0.95, 2.5]), requires_grad=True)
    scheme, scale = QuantScheme(4, "tensor"), 0.125               # range [-7, 7] * 0.125 = [-0.875, 0.875]
    fused = fake_quantize(x, scheme, scale=scale)
    expected = np.clip(np.rint(x.data / scale), -7, 7) * scale
    np.testing.assert_array_equal(fused.data, expected)
    weights = np.random.default_rng(9).normal(size=7)
    (fused * weights).sum().backward()
    fused_grad, x.grad = x.grad, None
    composed = x.clip(-0.875, 0.875) + Tensor(expected - np.clip(x.data, -0.875, 0.875))  # STE by hand
    np.testing.assert_array_equal(composed.data, expected)
    (composed * weights).sum().backward()
    np.testing.assert_array_equal(fused_grad, x.grad)
    np.testing.assert_array_equal(fused_grad == 0, np.abs(x.data) > 0.875)


def test_gradcheck_straight_through_estimator_float64():
    """The STE claims to be the derivative of clip(x, lo, hi). Subtracting the constant
    fq(x) - clip(x), recomputed at every perturbed x, leaves clip(x) as the value, whose finite
    differences must equal fake_quantize's backward. Entries stay away from the clip kinks."""
    rng = np.random.default_rng(10)
    scheme = QuantScheme(8, "tensor", symmetric=False)
    scale, zero_point = 0.01, -20                                  # range [-1.08, 1.47]
    lo, hi = scale * (-128 - zero_point), scale * (127 - zero_point)
    x = Tensor(np.concatenate([rng.uniform(-1.0, 1.4, 12), [-1.6, -1.3, 1.6, 2.0]]), requires_grad=True)

    def surrogate(t):
        constant = fake_quantize(Tensor(t.data), scheme, scale, zero_point).data - np.clip(t.data, lo, hi)
        return fake_quantize(t, scheme, scale, zero_point) - Tensor(constant)

    assert gradcheck(surrogate, x)
    w = Tensor(rng.normal(size=(3, 4)), requires_grad=True)       # scales from the data: identity
    assert gradcheck(lambda t: fake_quantize(t, QuantScheme(4, "channel"))
                     - Tensor(fake_quantize(Tensor(t.data), QuantScheme(4, "channel")).data - t.data), w)


def test_fake_quantize_errors_are_clear():
    x = Tensor(np.ones((2, 4)))
    with pytest.raises(ValueError, match="needs granularity 'tensor'"):
        fake_quantize(x, QuantScheme(8, "channel"), scale=0.1)
    with pytest.raises(ValueError, match="positive and finite"):
        fake_quantize(x, QuantScheme(8, "tensor"), scale=0.0)
    with pytest.raises(ValueError, match="zero_point 3 does not fit int8 per-tensor"):
        fake_quantize(x, QuantScheme(8, "tensor"), scale=0.1, zero_point=3)


def test_gradcheck_qat_linear_input_and_bias_float64():
    layer = QATLinear(make_linear(dtype=np.float64), QuantScheme(4, "group", group_size=4))
    x = Tensor(np.random.default_rng(11).normal(size=(2, 12)), requires_grad=True)
    assert gradcheck(lambda x, b: layer(x), x, layer.bias)


def test_gradcheck_qat_embedding_lookup_float64():
    """The lookup's gradient reaches the float table through the STE (surrogate form, as above)."""
    layer = QATEmbedding(Embedding(6, 4, rng=np.random.default_rng(0), dtype=np.float64, std=0.5),
                         QuantScheme(4, "group", group_size=2))
    ids = np.array([[1, 4, 1], [0, 5, 2]])                       # token 1 twice: its gradients add up

    def surrogate(table):
        rounding = fake_quantize(Tensor(table.data), layer.scheme).data - table.data
        return layer(ids) - Tensor(rounding[ids])

    assert gradcheck(surrogate, layer.latent_weight)


def test_qat_embedding_serves_lookup_and_tied_head_with_fake_quantized_weights():
    model = make_gpt()
    keys = list(model.state_dict())
    prepare_qat(model, QuantScheme(4, "channel"))
    assert list(model.state_dict()) == keys                      # the same names
    embedding = model.token_embedding
    assert isinstance(embedding, QATEmbedding)
    assert any(p is embedding.latent_weight for p in model.parameters())
    fq = dequantize(quantize(embedding.latent_weight.data, QuantScheme(4, "channel")))
    np.testing.assert_array_equal(model.output_weight().data, fq)
    np.testing.assert_array_equal(embedding(np.array([2, 5])).data, fq[[2, 5]])
    idx, targets = tokens(CONFIG, (2, 6)), tokens(CONFIG, (2, 6), seed=2)
    _, loss = model(idx, targets)
    loss.backward()
    assert embedding.latent_weight.grad is not None and np.any(embedding.latent_weight.grad != 0)


def train_a_few_steps(model, params, idx, targets, lr: float, steps: int = 5) -> tuple[float, float]:
    """(loss before, loss after) ``steps`` AdamW steps on one batch."""
    optimizer = AdamW(params, lr=lr)
    first = model(idx, targets)[1].item()
    for _ in range(steps):
        optimizer.zero_grad()
        model(idx, targets)[1].backward()
        optimizer.step()
    return first, model(idx, targets)[1].item()


def test_qat_trains_and_converts_to_exactly_the_quantized_model():
    model = make_gpt()
    scheme = QuantScheme(4, "group", group_size=8)
    prepare_qat(model, scheme, embedding_scheme=QuantScheme(8, "channel"))
    idx, targets = tokens(CONFIG, (4, 8)), tokens(CONFIG, (4, 8), seed=2)
    first, last = train_a_few_steps(model, model.parameters(), idx, targets, lr=1e-2)
    assert last < first
    qat_logits = logits(model, idx)
    converted = convert_qat(model)
    assert sorted(converted) == sorted(n for n, m in model.named_modules() if isinstance(m, (Linear, Embedding)))
    quantize_model(model, scheme, embedding_scheme=QuantScheme(8, "channel"))
    np.testing.assert_array_equal(logits(model, idx), qat_logits)


def test_qat_errors_are_clear():
    model = make_gpt()
    with pytest.raises(ValueError, match="cannot prepare blocks.0.attn.qkv for QAT: group size 32"):
        prepare_qat(model, QuantScheme(4, "group", group_size=32), embedding_scheme=QuantScheme(8))
    assert not any(isinstance(m, (QATLinear, QATEmbedding)) for m in model.modules())
    with pytest.raises(ValueError, match="no QAT layer to convert"):
        convert_qat(model)
    with pytest.raises(TypeError, match="QATLinear wraps a Linear"):
        QATLinear(Embedding(3, 2), QuantScheme())


# ----------------------------------------------------------------------------------------------
# QLoRA


def test_qlora_trains_only_the_adapters_and_keeps_the_base_int8():
    model = make_gpt()
    names = apply_qlora(model, QuantScheme(8, "channel"), target=("attn.qkv", "mlp.down"), r=2,
                        rng=np.random.default_rng(0))
    assert names == ["blocks.0.attn.qkv", "blocks.0.mlp.down", "blocks.1.attn.qkv", "blocks.1.mlp.down"]
    frozen = {n: a.copy() for n, a in model.state_dict().items() if ".lora." not in n}
    trainable = trainable_parameters(model)
    assert trainable and all(p.ndim == 2 for p in trainable)
    idx, targets = tokens(CONFIG, (4, 8)), tokens(CONFIG, (4, 8), seed=2)
    first, last = train_a_few_steps(model, trainable, idx, targets, lr=3e-2)
    assert last < first
    with_grad = [n for n, p in model.named_parameters() if p.grad is not None]
    assert with_grad and all(".lora." in n for n in with_grad)
    for name, array in frozen.items():
        np.testing.assert_array_equal(model.state_dict()[name], array, err_msg=name)
    qkv = model.blocks[0].attn.qkv
    assert qkv.qweight.dtype == np.int8 and qkv.weight is None


def test_qlora_keeps_the_quantized_state_dict_names_and_fingerprint(tmp_path):
    model = make_gpt()
    quantize_model(model, QuantScheme(4, "group", group_size=8))
    keys, fingerprint = set(model.state_dict()), base_fingerprint(model)
    apply_lora(model, r=2, rng=np.random.default_rng(0))
    assert {k for k in model.state_dict() if ".lora." not in k} == keys
    assert base_fingerprint(model) == fingerprint
    model.blocks[0].attn.qkv.lora["default"].B.data[...] = 0.1
    path = tmp_path / "adapter.safetensors"
    save_lora(model, path)
    other = make_gpt()
    quantize_model(other, QuantScheme(4, "group", group_size=8))
    load_lora(other, path)
    idx = tokens(CONFIG, (2, 5))
    np.testing.assert_array_equal(logits(other, idx), logits(model, idx))


def test_qlora_cannot_merge_but_unloads_to_the_quantized_layers():
    model = make_gpt()
    quantize_model(model, QuantScheme(8, "channel"))
    expected = logits(model, tokens(CONFIG, (1, 5)))
    apply_lora(model, r=2, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="quantized base, which cannot take a merged update"):
        merge_lora(model)
    with pytest.raises(RuntimeError, match="the base weight is quantized"):
        model.blocks[0].attn.qkv.merge()
    with pytest.raises(RuntimeError, match="use merge=False"):
        unload_lora(model)
    unload_lora(model, merge=False)
    assert isinstance(model.blocks[0].attn.qkv, QuantizedLinear)
    np.testing.assert_array_equal(logits(model, tokens(CONFIG, (1, 5))), expected)


def test_finetune_memory_counts_the_quantized_base_and_the_adapters():
    lora, qlora = make_gpt(), make_gpt()
    apply_lora(lora, r=2, rng=np.random.default_rng(0))
    apply_qlora(qlora, QuantScheme(4, "group", group_size=8), r=2, rng=np.random.default_rng(0))
    adapters = CONFIG.n_layer * 2 * (3 * CONFIG.d_model + CONFIG.d_model + 2 * CONFIG.d_model) * 4  # r (in + out)
    for model in (lora, qlora):
        memory = finetune_memory(model)
        assert memory.trainable_bytes == memory.gradient_bytes == adapters
        assert memory.optimizer_bytes == 2 * adapters
        assert memory.frozen_bytes + memory.trainable_bytes == model_bytes(model)
        assert memory.total_bytes == memory.frozen_bytes + 4 * adapters
    assert finetune_memory(qlora).frozen_bytes < finetune_memory(lora).frozen_bytes / 3


def test_gradcheck_qlora_adapters_float64():
    model = make_gpt(TINY64, dtype=np.float64)
    for p in model.parameters():
        p.data[...] = np.random.default_rng(3).normal(0, 0.3, p.shape)
    apply_qlora(model, QuantScheme(4, "group", group_size=4), target=("attn.qkv", "mlp.up"), r=2,
                rng=np.random.default_rng(1))
    qkv, up = model.blocks[0].attn.qkv.lora["default"], model.blocks[0].mlp.up.lora["default"]
    for adapter in (qkv, up):
        adapter.B.data[...] = np.random.default_rng(2).normal(0, 0.3, adapter.B.shape)
    idx = tokens(TINY64, (2, 4))
    assert gradcheck(lambda *_: model(idx), qkv.A, qkv.B, up.A, up.B)
