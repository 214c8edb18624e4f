"""Parameter-efficient fine-tuning: LoRA layers and injection, freezing, merging, adapter files,
several adapters on one base, prompt tuning and bottleneck adapters, with gradient checks in
float64 and the cost helpers that compare the three methods."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from tinygrad_llm import GPT, AdamW, GPTConfig, Linear, Module, Parameter, Tensor, gradcheck
from tinygrad_llm.finetune import adapters, lora as peft
from tinygrad_llm import functional as F
from tinygrad_llm.finetune.adapters import (BottleneckAdapter, PromptTunedGPT, WithAdapter,
                                   apply_bottleneck_adapters, remove_bottleneck_adapters)
from tinygrad_llm.scale.memory import (finetune_cost, trainable_parameter_count, trainable_parameters,
                                      trainable_percentage)
from tinygrad_llm.model.state import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.model.generation import generate
from tinygrad_llm.finetune.lora import (LoRALinear, active_adapter, add_adapter, adapter_names, apply_lora,
                               base_fingerprint, load_lora, lora_layers, merge_lora, save_lora,
                               set_active_adapter, unload_lora, unmerge_lora)

CONFIG = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=2, n_head=2)
TINY64 = GPTConfig(vocab_size=11, context_length=6, d_model=8, n_layer=1, n_head=2)  # gradchecks


def make_gpt(config: GPTConfig = CONFIG, seed: int = 0, dtype=np.float32) -> GPT:
    return GPT(config, rng=np.random.default_rng(seed), dtype=dtype)


def tokens(config: GPTConfig, shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, config.vocab_size, shape)


def randomize(params, rng: np.random.Generator, scale: float) -> None:
    """O(scale) random values, so that a zero-initialised B or adapter ``up`` does not hide every
    gradient behind it (with B = 0 the gradient of A is exactly zero)."""
    for p in params:
        p.data[...] = rng.normal(0.0, scale, p.shape)


def lora_B(model) -> list:
    return [layer.lora[layer.active].B for _, layer in lora_layers(model)]


def train(model, idx: np.ndarray, targets: np.ndarray, steps: int = 4, lr: float = 3e-2) -> AdamW:
    optimizer = AdamW(trainable_parameters(model), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        optimizer.step()
    return optimizer


def snapshot(model) -> dict[str, np.ndarray]:
    return {name: p.data.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("module", [peft, adapters])
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0


# ----------------------------------------------------------------------------------------------
# The LoRA layer


def make_layer(dtype=np.float32, r: int = 3, alpha: float = 6.0, dropout: float = 0.0):
    base = Linear(5, 7, rng=np.random.default_rng(0), dtype=dtype)
    base.bias.data[...] = np.random.default_rng(1).normal(0.0, 0.1, 7)
    return base, LoRALinear(base, r=r, alpha=alpha, dropout=dropout, rng=np.random.default_rng(2))


def test_lora_linear_at_init_equals_base_exactly():
    base, layer = make_layer()
    x = Tensor(np.random.default_rng(3).normal(size=(2, 3, 5)), dtype=np.float32)
    expected = base(x).data
    np.testing.assert_array_equal(layer(x).data, expected)


def test_lora_linear_init_a_small_random_b_zero_and_base_frozen():
    base, layer = make_layer(r=3)
    adapter = layer.lora["default"]
    assert adapter.A.shape == (3, 5) and adapter.B.shape == (7, 3)
    assert np.all(adapter.B.data == 0)
    assert np.all(np.abs(adapter.A.data) <= 1 / np.sqrt(5)) and np.std(adapter.A.data) > 0.1
    assert layer.weight is base.weight and layer.bias is base.bias  # wrapped, not copied
    assert not layer.weight.requires_grad and not layer.bias.requires_grad
    assert adapter.A.requires_grad and adapter.B.requires_grad
    assert adapter.scale == 2.0


def test_lora_linear_forward_is_base_plus_scaled_low_rank_update():
    base, layer = make_layer(r=3, alpha=6.0)
    adapter = layer.lora["default"]
    randomize([adapter.B], np.random.default_rng(4), 0.5)
    x = np.random.default_rng(5).normal(size=(2, 3, 5)).astype(np.float32)
    W, b, A, B = base.weight.data, base.bias.data, adapter.A.data, adapter.B.data
    expected = x @ W.T + b + (x @ A.T @ B.T) * (6.0 / 3)
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


def test_lora_dropout_applies_to_the_lora_input_only():
    base, layer = make_layer(r=2, alpha=2.0, dropout=0.5)
    adapter = layer.lora["default"]
    randomize([adapter.B], np.random.default_rng(4), 0.5)
    adapter.rng = np.random.default_rng(7)
    x = np.random.default_rng(5).normal(size=(4, 5))
    keep, scale = F.dropout_mask(x.shape, 0.5, np.random.default_rng(7))  # the mask the layer will draw
    W, b, A, B = base.weight.data, base.bias.data, adapter.A.data, adapter.B.data
    expected = x @ W.T + b + (x * keep * scale) @ A.T @ B.T
    np.testing.assert_allclose(layer(Tensor(x, dtype=np.float32)).data, expected, rtol=1e-5, atol=1e-5)
    layer.eval()  # no dropout at evaluation
    np.testing.assert_allclose(layer(Tensor(x, dtype=np.float32)).data, x @ W.T + b + x @ A.T @ B.T,
                               rtol=1e-5, atol=1e-5)


def test_gradcheck_lora_linear_float64():
    base, layer = make_layer(dtype=np.float64, r=2, alpha=3.0)
    adapter = layer.lora["default"]
    randomize([adapter.B], np.random.default_rng(4), 0.5)
    x = Tensor(np.random.default_rng(5).normal(size=(2, 3, 5)), requires_grad=True)
    assert gradcheck(lambda x, *_: layer(x), x, adapter.A, adapter.B)
    assert layer.weight.grad is None and layer.bias.grad is None  # frozen: nothing computed


@pytest.mark.parametrize("r", [0, -2, 1.5, True])
def test_lora_rejects_a_rank_that_is_not_a_positive_integer(r):
    base = Linear(4, 4)
    with pytest.raises(ValueError, match="rank r must be a positive integer"):
        LoRALinear(base, r=r)
    assert base.weight.requires_grad  # the failed wrap left the layer alone


def test_lora_rejects_a_dropout_outside_zero_one():
    with pytest.raises(ValueError, match=r"LoRA dropout must be in \[0, 1\), got 1.0"):
        apply_lora(make_gpt(), dropout=1.0)


def test_lora_linear_wraps_only_a_linear():
    with pytest.raises(TypeError, match="LoRALinear wraps a Linear, got GPT"):
        LoRALinear(make_gpt())


# ----------------------------------------------------------------------------------------------
# Injection and freezing


def test_apply_lora_replaces_the_targets_and_returns_their_names():
    model = make_gpt()
    keys = set(model.state_dict())
    names = apply_lora(model, r=2)
    assert names == ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.1.attn.qkv", "blocks.1.attn.proj"]
    assert all(isinstance(model.get_submodule(n), LoRALinear) for n in names)
    assert isinstance(model.blocks[0].mlp.up, Linear)
    # the base weights keep their names; the adapters add theirs
    added = set(model.state_dict()) - keys
    assert keys <= set(model.state_dict())
    assert added == {f"{n}.lora.default.{part}" for n in names for part in "AB"}


def test_apply_lora_at_init_gives_exactly_the_base_logits():
    model = make_gpt()
    idx = tokens(CONFIG, (2, 7))
    expected = model(idx).data.copy()
    apply_lora(model, target=("attn.qkv", "attn.proj", "mlp.up", "mlp.down"), r=4)
    np.testing.assert_array_equal(model(idx).data, expected)


@pytest.mark.parametrize("target, expected", [
    (("attn.qkv",), ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]),
    (("qkv",), ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]),
    (r"mlp\.(up|down)$", ["blocks.0.mlp.up", "blocks.0.mlp.down", "blocks.1.mlp.up", "blocks.1.mlp.down"]),
    (r"^blocks\.1\.attn\.proj$", ["blocks.1.attn.proj"]),
    (("blocks.1.*.qkv", "*.mlp.up"), ["blocks.0.mlp.up", "blocks.1.attn.qkv", "blocks.1.mlp.up"]),
])
def test_apply_lora_targets_by_suffix_regex_or_glob(target, expected):
    assert apply_lora(make_gpt(), target=target, r=2) == expected


def test_apply_lora_freezes_everything_but_the_adapters():
    model = make_gpt()
    apply_lora(model, r=2)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora.default." in name for name in trainable)
    assert {id(p) for p in trainable_parameters(model)} == \
        {id(p) for name, p in model.named_parameters() if name in trainable}
    idx = tokens(CONFIG, (2, 6))
    _, loss = model(idx, tokens(CONFIG, (2, 6), seed=2))
    loss.backward()
    for name, p in model.named_parameters():
        if name in trainable:
            assert p.grad is not None, name
        else:
            assert p.grad is None, f"frozen {name} got a gradient"
    assert all(np.any(B.grad != 0) for B in lora_B(model))


def test_trainable_parameter_count_and_percentage():
    model = make_gpt()
    total = model.num_parameters()
    apply_lora(model, r=2)
    C, r = CONFIG.d_model, 2
    expected = CONFIG.n_layer * (r * (C + 3 * C) + r * (C + C))  # qkv (3C, C) and proj (C, C)
    assert trainable_parameter_count(model) == expected
    assert model.num_parameters() == total + expected
    assert trainable_percentage(model) == pytest.approx(100 * expected / (total + expected))


def test_adamw_steps_change_only_the_lora_parameters():
    model = make_gpt()
    apply_lora(model, r=2)
    idx, targets = tokens(CONFIG, (4, 8)), tokens(CONFIG, (4, 8), seed=2)
    before = snapshot(model)
    _, first_loss = model(idx, targets)
    # all parameters are handed to the optimizer: frozen ones have no gradient and are skipped,
    # weight decay included
    optimizer = AdamW(model.parameters(), lr=3e-2, weight_decay=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        if ".lora." in name:
            assert not np.array_equal(p.data, before[name]), f"{name} did not train"
        else:
            np.testing.assert_array_equal(p.data, before[name], err_msg=name)
    assert model(idx, targets)[1].item() < first_loss.item()


def test_finetune_cost_counts_adam_state_as_two_numbers_per_trainable_parameter():
    model = make_gpt()
    apply_lora(model, r=2)
    cost = finetune_cost(model)
    assert cost.trainable == trainable_parameter_count(model)
    assert cost.parameters == model.num_parameters()
    assert cost.weight_bytes == 4 * cost.parameters
    assert cost.gradient_bytes == 4 * cost.trainable
    assert cost.optimizer_bytes == 2 * 4 * cost.trainable
    optimizer = train(model, tokens(CONFIG, (2, 5)), tokens(CONFIG, (2, 5), seed=2), steps=1)
    measured = sum(slots["m"].nbytes + slots["v"].nbytes for slots in optimizer.state.values())
    assert measured == cost.optimizer_bytes


def test_apply_lora_error_when_the_target_matches_nothing():
    with pytest.raises(ValueError, match=r"matches no module of GPT; its Linear layers are: "
                                         r"blocks\.0\.attn\.qkv"):
        apply_lora(make_gpt(), target=("kv",))  # a suffix is a whole dotted part, not a substring


@pytest.mark.parametrize("target, culprit", [
    (("attn",), r"blocks\.0\.attn \(MultiHeadAttention\)"),
    (r"dropout$", r"blocks\.0\.attn\.resid_dropout \(Dropout\)"),
])
def test_apply_lora_error_when_the_target_matches_a_non_linear(target, culprit):
    model = make_gpt()
    with pytest.raises(TypeError, match="not Linear layers: .*" + culprit):
        apply_lora(model, target=target)
    assert not lora_layers(model)


@pytest.mark.parametrize("name", ["my adapter", "_hidden", "forward", "training", "2nd"])
def test_apply_lora_rejects_an_adapter_name_that_is_not_a_plain_identifier(name):
    with pytest.raises(ValueError, match="invalid adapter name"):
        apply_lora(make_gpt(), adapter_name=name)


def test_apply_lora_twice_with_one_name_is_an_error_and_changes_nothing():
    model = make_gpt()
    apply_lora(model, target=("attn.qkv",), r=2)
    with pytest.raises(ValueError, match="an adapter named 'default' already exists in blocks.0.attn.qkv"):
        apply_lora(model, target=("attn.qkv", "attn.proj"), r=2)
    assert [name for name, _ in lora_layers(model)] == ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]


# ----------------------------------------------------------------------------------------------
# Merging


def trained_lora_model(seed: int = 4):
    """A GPT with LoRA whose B is clearly nonzero, and the base logits before injection."""
    model = make_gpt()
    idx = tokens(CONFIG, (2, 8))
    base_logits = model(idx).data.copy()
    apply_lora(model, r=2)
    randomize(lora_B(model), np.random.default_rng(seed), 0.1)
    return model, idx, base_logits


def test_merged_logits_equal_unmerged_float32():
    model, idx, base_logits = trained_lora_model()
    weights = {name: layer.weight.data.copy() for name, layer in lora_layers(model)}
    unmerged = model(idx).data.copy()
    assert np.abs(unmerged - base_logits).max() > 1e-2  # the adapter matters (merging is a real test)
    assert merge_lora(model) == list(weights)
    for name, layer in lora_layers(model):
        np.testing.assert_allclose(layer.weight.data - weights[name],
                                   layer.lora["default"].delta_weight(), atol=1e-6)
    # the LoRA path is skipped once merged: counting the update twice would be far off
    np.testing.assert_allclose(model(idx).data, unmerged, atol=1e-5)


def test_unmerge_restores_the_base_weights_bit_for_bit():
    model, idx, _ = trained_lora_model()
    weights = {name: layer.weight.data.copy() for name, layer in lora_layers(model)}
    fingerprint = peft.base_fingerprint(model)
    unmerged = model(idx).data.copy()
    merge_lora(model)
    unmerge_lora(model)
    for name, layer in lora_layers(model):
        assert not layer.merged
        np.testing.assert_array_equal(layer.weight.data, weights[name])  # W + D - D would round
    assert peft.base_fingerprint(model) == fingerprint  # saved adapters still fit this base
    np.testing.assert_array_equal(model(idx).data, unmerged)


def test_merge_state_errors_are_clear():
    model, _, _ = trained_lora_model()
    with pytest.raises(RuntimeError, match="no LoRA layer is merged"):
        unmerge_lora(model)
    merge_lora(model)
    with pytest.raises(RuntimeError, match="already merged"):
        model.blocks[0].attn.qkv.merge()
    with pytest.raises(RuntimeError, match="unmerge_lora"):
        add_adapter(model, "other")
    with pytest.raises(RuntimeError, match="unmerge_lora"):
        set_active_adapter(model, None)
    with pytest.raises(RuntimeError, match="unmerge_lora"):
        base_fingerprint(model)
    unmerge_lora(model)
    set_active_adapter(model, None)
    with pytest.raises(RuntimeError, match="no LoRA layer has an active, unmerged adapter"):
        merge_lora(model)


def test_unload_lora_merged_gives_a_plain_model_with_the_adapted_logits():
    model, idx, _ = trained_lora_model()
    plain_keys = set(make_gpt().state_dict())
    adapted = model(idx).data.copy()
    unload_lora(model, merge=True)
    assert not lora_layers(model) and isinstance(model.blocks[0].attn.qkv, Linear)
    assert set(model.state_dict()) == plain_keys
    np.testing.assert_allclose(model(idx).data, adapted, atol=1e-5)


def test_unload_lora_unmerged_gives_back_the_base_model():
    model, idx, base_logits = trained_lora_model()
    unload_lora(model, merge=False)
    np.testing.assert_array_equal(model(idx).data, base_logits)


# ----------------------------------------------------------------------------------------------
# Saving and loading adapters alone


def trained_and_saved(tmp_path, **save_options):
    model = make_gpt()
    apply_lora(model, r=2, alpha=4.0)
    idx, targets = tokens(CONFIG, (2, 8)), tokens(CONFIG, (2, 8), seed=2)
    train(model, idx, targets)
    path = tmp_path / "adapter.safetensors"
    save_lora(model, path, **save_options)
    return model, idx, path


def test_save_load_round_trip_onto_a_fresh_base_model(tmp_path):
    model, idx, path = trained_and_saved(tmp_path)
    fresh = make_gpt()
    assert load_lora(fresh, path) == [name for name, _ in lora_layers(model)]
    np.testing.assert_array_equal(fresh(idx).data, model(idx).data)
    assert active_adapter(fresh) == "default"
    assert {n for n, p in fresh.named_parameters() if p.requires_grad} == \
        {n for n, p in model.named_parameters() if p.requires_grad}


def test_adapter_file_holds_only_the_adapter_and_its_metadata(tmp_path):
    big = GPTConfig(vocab_size=64, context_length=16, d_model=32, n_layer=2, n_head=2)
    model = make_gpt(big)
    full = tmp_path / "model.safetensors"
    save_safetensors(full, model.state_dict())
    fingerprint = base_fingerprint(model)
    apply_lora(model, r=2, alpha=4.0)
    path = tmp_path / "adapter.safetensors"
    save_lora(model, path)
    assert path.stat().st_size < 0.1 * full.stat().st_size
    tensors, metadata = load_safetensors(path)
    assert set(tensors) == {f"{n}.{part}" for n, _ in lora_layers(model) for part in "AB"}
    assert metadata["base"] == fingerprint and metadata["adapter"] == "default"
    assert json.loads(metadata["targets"]) == [n for n, _ in lora_layers(model)]
    layers = json.loads(metadata["layers"])
    assert layers["blocks.0.attn.qkv"] == {"r": 2, "alpha": 4.0, "dropout": 0.0,
                                           "in_features": 32, "out_features": 96}


def test_base_fingerprint_ignores_adapters_and_sees_any_base_change():
    model = make_gpt()
    fingerprint = base_fingerprint(model)
    assert fingerprint.startswith("sha256:") and fingerprint == base_fingerprint(make_gpt())
    apply_lora(model, r=2)
    randomize(lora_B(model), np.random.default_rng(0), 0.1)
    assert base_fingerprint(model) == fingerprint
    weight = model.blocks[1].mlp.down.weight.data
    weight[0, 0] = np.nextafter(weight[0, 0], np.float32(1))  # one bit of one weight
    assert base_fingerprint(model) != fingerprint


def test_load_lora_refuses_a_different_base_model(tmp_path):
    model, idx, path = trained_and_saved(tmp_path)
    other = make_gpt(seed=1)
    with pytest.raises(CheckpointError, match="trained on a different base model"):
        load_lora(other, path)
    assert not lora_layers(other)  # nothing changed
    assert load_lora(other, path, check_base=False)  # same shapes: possible when asked for


def test_load_lora_with_a_named_base_reference(tmp_path):
    _, _, path = trained_and_saved(tmp_path, base_ref="course-model-v1")
    assert load_safetensors(path)[1]["base"] == "course-model-v1"
    with pytest.raises(CheckpointError, match="file: course-model-v1, this model: sha256:"):
        load_lora(make_gpt(), path)
    assert load_lora(make_gpt(), path, base_ref="course-model-v1")


def test_load_lora_names_every_layer_that_does_not_fit(tmp_path):
    _, _, path = trained_and_saved(tmp_path, base_ref="v1")
    wider = make_gpt(GPTConfig(vocab_size=40, context_length=12, d_model=24, n_layer=1, n_head=2))
    with pytest.raises(CheckpointError) as error:
        load_lora(wider, path, base_ref="v1")
    message = str(error.value)
    assert r"blocks.0.attn.qkv.A: file (2, 16) vs (2, 24) for a Linear of shape (72, 24)" in message
    assert "blocks.1.attn.qkv: no such layer in the model" in message
    assert not lora_layers(wider)


def test_load_lora_errors_for_a_foreign_file_and_a_taken_name(tmp_path):
    model, _, path = trained_and_saved(tmp_path)
    plain = tmp_path / "plain.safetensors"
    save_safetensors(plain, {"x": np.zeros(2, np.float32)})
    with pytest.raises(CheckpointError, match="not a LoRA adapter file"):
        load_lora(model, plain)
    save_safetensors(plain, {}, {"format": peft.LORA_FORMAT, "adapter": "x", "base": "", "layers": "[1]"})
    with pytest.raises(CheckpointError, match="corrupt LoRA metadata"):
        load_lora(model, plain)
    with pytest.raises(CheckpointError, match="already has an adapter named 'default'"):
        load_lora(model, path)
    assert load_lora(model, path, adapter_name="copy")
    assert adapter_names(model) == ["default", "copy"] and active_adapter(model) == "copy"


def test_save_lora_needs_an_adapter(tmp_path):
    model = make_gpt()
    apply_lora(model, r=2)
    set_active_adapter(model, None)
    with pytest.raises(ValueError, match="no adapter is active"):
        save_lora(model, tmp_path / "adapter.safetensors")
    with pytest.raises(KeyError, match="no LoRA adapter named 'other'"):
        save_lora(model, tmp_path / "adapter.safetensors", adapter="other")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------
# Several adapters on one base model


def test_switching_adapters_gives_each_ones_logits_and_none_gives_the_base():
    model = make_gpt()
    idx = tokens(CONFIG, (2, 8))
    original = model(idx).data.copy()
    apply_lora(model, r=2, adapter_name="first")
    train(model, idx, tokens(CONFIG, (2, 8), seed=2))
    first = model(idx).data.copy()
    add_adapter(model, "second", r=4, alpha=4.0)
    assert {n.split(".lora.")[1].split(".")[0] for n, p in model.named_parameters() if p.requires_grad} \
        == {"second"}
    train(model, idx, tokens(CONFIG, (2, 8), seed=3))
    second = model(idx).data.copy()
    assert np.abs(first - second).max() > 1e-2

    set_active_adapter(model, "first")
    np.testing.assert_array_equal(model(idx).data, first)
    set_active_adapter(model, "second")
    np.testing.assert_array_equal(model(idx).data, second)
    set_active_adapter(model, None)
    np.testing.assert_array_equal(model(idx).data, original)
    assert active_adapter(model) is None and trainable_parameter_count(model) == 0
    assert adapter_names(model) == ["first", "second"]


def test_adapters_on_different_layers_switch_together():
    model = make_gpt()
    idx = tokens(CONFIG, (1, 5))
    original = model(idx).data.copy()
    apply_lora(model, target=("attn.qkv",), adapter_name="attention", r=2)
    apply_lora(model, target=("mlp.up",), adapter_name="mlp", r=2)
    assert model.blocks[0].attn.qkv.active is None and model.blocks[0].mlp.up.active == "mlp"
    set_active_adapter(model, "attention")
    assert model.blocks[0].attn.qkv.active == "attention" and model.blocks[0].mlp.up.active is None
    np.testing.assert_array_equal(model(idx).data, original)  # both still at zero update


def test_switching_errors_are_clear():
    with pytest.raises(ValueError, match="has no LoRA layers; call apply_lora first"):
        add_adapter(make_gpt(), "second")
    with pytest.raises(ValueError, match="has no LoRA layers"):
        set_active_adapter(make_gpt(), None)
    model = make_gpt()
    apply_lora(model, r=2)
    with pytest.raises(KeyError, match=r"no LoRA adapter named 'typo'; the model has \['default'\]"):
        set_active_adapter(model, "typo")


# ----------------------------------------------------------------------------------------------
# Gradient checks of whole models in float64


def randomized_gpt64(config: GPTConfig = TINY64, seed: int = 0) -> GPT:
    """Float64 GPT with O(1) weights, so that no gradient entry is tiny enough to hide below atol."""
    model = make_gpt(config, seed, dtype=np.float64)
    randomize(model.parameters(), np.random.default_rng(seed + 10), 0.3)
    return model


def test_gradcheck_lora_inside_a_gpt_float64():
    model = randomized_gpt64()
    apply_lora(model, target=("attn.qkv", "mlp.down"), r=2, rng=np.random.default_rng(1))
    randomize(lora_B(model), np.random.default_rng(2), 0.3)
    idx = tokens(TINY64, (2, 4))
    qkv, down = model.blocks[0].attn.qkv.lora["default"], model.blocks[0].mlp.down.lora["default"]
    assert gradcheck(lambda *_: model(idx), qkv.A, qkv.B, down.A, down.B)


def test_gradcheck_prompt_tuning_float64():
    wrapped = PromptTunedGPT(randomized_gpt64(), n_virtual_tokens=2, rng=np.random.default_rng(1))
    idx = tokens(TINY64, (2, 3))
    assert gradcheck(lambda _: wrapped(idx), wrapped.prompt)


def test_gradcheck_bottleneck_adapter_inside_a_gpt_float64():
    model = randomized_gpt64()
    apply_bottleneck_adapters(model, bottleneck=2, rng=np.random.default_rng(1))
    adapter = model.blocks[0].attn.adapter
    randomize([adapter.up.weight, adapter.up.bias], np.random.default_rng(2), 0.3)
    idx = tokens(TINY64, (2, 4))
    assert gradcheck(lambda *_: model(idx), adapter.down.weight, adapter.down.bias,
                     adapter.up.weight, adapter.up.bias)


def test_gradcheck_bottleneck_adapter_alone_float64():
    adapter = BottleneckAdapter(6, 3, rng=np.random.default_rng(0), dtype=np.float64)
    randomize([adapter.up.weight], np.random.default_rng(1), 0.5)
    h = Tensor(np.random.default_rng(2).normal(size=(2, 3, 6)), requires_grad=True)
    assert gradcheck(lambda h, *_: adapter(h), h, adapter.down.weight, adapter.up.weight)


# ----------------------------------------------------------------------------------------------
# Prompt tuning


def test_prompt_tuning_returns_logits_for_the_real_tokens_only():
    wrapped = PromptTunedGPT(make_gpt(), n_virtual_tokens=3)
    idx = tokens(CONFIG, (2, 5))
    assert wrapped.prompt.shape == (3, CONFIG.d_model)
    assert wrapped(idx).shape == (2, 5, CONFIG.vocab_size)
    logits, loss = wrapped(idx, tokens(CONFIG, (2, 5), seed=2))
    assert logits.shape == (2, 5, CONFIG.vocab_size) and loss.shape == ()


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_prompt_initialised_from_token_ids_equals_prefixing_those_tokens(position):
    config = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=2, n_head=2, position=position)
    gpt = make_gpt(config)
    prefix = np.array([5, 9, 2])
    idx, targets = tokens(config, (2, 6)), tokens(config, (2, 6), seed=2)
    full = gpt(np.concatenate([np.tile(prefix, (2, 1)), idx], axis=1)).data[:, 3:]  # (B, T, V)
    wrapped = PromptTunedGPT(gpt, n_virtual_tokens=3, init_ids=prefix)
    logits, loss = wrapped(idx, targets)
    np.testing.assert_allclose(logits.data, full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss.item(), F.cross_entropy(Tensor(full), targets).item(), rtol=1e-5)


def test_prompt_tuning_trains_the_prompt_only():
    gpt = make_gpt()
    wrapped = PromptTunedGPT(gpt, n_virtual_tokens=4, rng=np.random.default_rng(3))
    assert trainable_parameters(wrapped) == [wrapped.prompt]
    assert trainable_parameter_count(wrapped) == 4 * CONFIG.d_model
    idx, targets = tokens(CONFIG, (2, 8)), tokens(CONFIG, (2, 8), seed=2)
    _, loss = wrapped(idx, targets)
    loss.backward()
    assert wrapped.prompt.grad is not None and np.any(wrapped.prompt.grad != 0)
    assert all(p.grad is None for p in gpt.parameters())
    before, prompt = snapshot(gpt), wrapped.prompt.data.copy()
    _, first_loss = wrapped(idx, targets)
    train(wrapped, idx, targets, steps=5, lr=0.1)
    for name, p in gpt.named_parameters():
        np.testing.assert_array_equal(p.data, before[name], err_msg=name)
    assert not np.array_equal(wrapped.prompt.data, prompt)
    assert wrapped(idx, targets)[1].item() < first_loss.item()


def test_prompt_tuning_default_init_has_the_scale_of_the_embeddings():
    gpt = make_gpt()
    wrapped = PromptTunedGPT(gpt, n_virtual_tokens=8)
    table_std = gpt.token_embedding.weight.data.std()
    assert wrapped.prompt.dtype == np.float32
    assert 0.5 * table_std < wrapped.prompt.data.std() < 2 * table_std


def test_prompt_tuning_generates_like_the_prefixed_base_model():
    gpt = make_gpt()
    prefix = np.array([1, 2])
    wrapped = PromptTunedGPT(gpt, n_virtual_tokens=2, init_ids=prefix)
    assert wrapped.config.context_length == CONFIG.context_length - 2
    prompt = np.array([7, 3, 30])
    out = generate(wrapped, prompt, max_new_tokens=4, temperature=0, use_cache=False)
    reference = generate(gpt, np.concatenate([prefix, prompt]), max_new_tokens=4, temperature=0)
    np.testing.assert_array_equal(out, reference[2:])
    with pytest.raises(NotImplementedError, match="use_cache=False"):
        generate(wrapped, prompt, max_new_tokens=1, temperature=0)


def test_prompt_tuning_errors_are_clear():
    gpt = make_gpt()
    wrapped = PromptTunedGPT(gpt, n_virtual_tokens=4)
    wrapped(tokens(CONFIG, (1, 8)))  # 4 + 8 = 12 positions: exactly the context
    with pytest.raises(ValueError, match="4 virtual tokens \\+ 9 tokens = 13 positions, more than the "
                                         "context length 12; at most 8 real tokens fit"):
        wrapped(tokens(CONFIG, (1, 9)))
    with pytest.raises(ValueError, match="shape \\(batch, time\\)"):
        wrapped(np.array([1, 2]))
    for bad in (0, 12, 2.5):
        with pytest.raises(ValueError, match="n_virtual_tokens must be an integer from 1 to 11"):
            PromptTunedGPT(gpt, n_virtual_tokens=bad)
    with pytest.raises(ValueError, match="one token id per virtual token, shape \\(3,\\), got \\(2,\\)"):
        PromptTunedGPT(gpt, n_virtual_tokens=3, init_ids=np.array([1, 2]))
    with pytest.raises(IndexError, match="token id 40 is out of range"):
        PromptTunedGPT(gpt, n_virtual_tokens=2, init_ids=np.array([1, 40]))
    with pytest.raises(TypeError, match="wraps a GPT"):
        PromptTunedGPT(Linear(2, 2), n_virtual_tokens=1)


# ----------------------------------------------------------------------------------------------
# Bottleneck adapters


@pytest.mark.parametrize("sublayers", [("attn", "mlp"), ("attn",), ("mlp",)])
def test_bottleneck_adapters_start_exactly_at_the_base_model(sublayers):
    model = make_gpt()
    idx = tokens(CONFIG, (2, 7))
    expected = model(idx).data.copy()
    names = apply_bottleneck_adapters(model, sublayers=sublayers, bottleneck=4)
    assert names == [f"blocks.{i}.{s}" for i in range(CONFIG.n_layer) for s in sublayers]
    assert all(isinstance(model.get_submodule(n), WithAdapter) for n in names)
    np.testing.assert_array_equal(model(idx).data, expected)
    C, m = CONFIG.d_model, 4
    assert trainable_parameter_count(model) == len(names) * (C * m + m + m * C + C)


def test_bottleneck_adapters_train_only_the_adapters():
    model = make_gpt()
    apply_bottleneck_adapters(model, bottleneck=4)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapter." in name for name in trainable)
    idx, targets = tokens(CONFIG, (2, 8)), tokens(CONFIG, (2, 8), seed=2)
    _, loss = model(idx, targets)
    loss.backward()
    assert all((p.grad is None) == (name not in trainable) for name, p in model.named_parameters())
    model.zero_grad()
    before = snapshot(model)
    _, first_loss = model(idx, targets)
    train(model, idx, targets, steps=5)
    for name, p in model.named_parameters():
        if name in trainable:
            assert not np.array_equal(p.data, before[name]), f"{name} did not train"
        else:
            np.testing.assert_array_equal(p.data, before[name], err_msg=name)
    assert model(idx, targets)[1].item() < first_loss.item()
    # the attention's KV cache still passes through the wrapper
    prompt = tokens(CONFIG, (4,))
    np.testing.assert_array_equal(generate(model, prompt, 5, temperature=0, use_cache=True),
                                  generate(model, prompt, 5, temperature=0, use_cache=False))


def test_remove_bottleneck_adapters_restores_the_tree():
    model = make_gpt()
    keys = set(model.state_dict())
    apply_bottleneck_adapters(model, bottleneck=4)
    assert "blocks.0.attn.base.qkv.weight" in model.state_dict()
    removed = remove_bottleneck_adapters(model)
    assert removed == ["blocks.0.attn", "blocks.0.mlp", "blocks.1.attn", "blocks.1.mlp"]
    assert set(model.state_dict()) == keys


def test_bottleneck_adapter_errors_are_clear():
    model = make_gpt()
    with pytest.raises(ValueError, match="sublayers must be a non-empty tuple drawn from"):
        apply_bottleneck_adapters(model, sublayers=("attention",))
    with pytest.raises(ValueError, match="sublayers must be"):
        apply_bottleneck_adapters(model, sublayers="attn")
    with pytest.raises(ValueError, match="bottleneck must be a positive integer"):
        apply_bottleneck_adapters(model, bottleneck=0)
    with pytest.raises(ValueError, match="Linear has no TransformerBlock"):
        apply_bottleneck_adapters(Linear(3, 3))
    with pytest.raises(ValueError, match="no bottleneck adapters to remove"):
        remove_bottleneck_adapters(model)
    apply_bottleneck_adapters(model, sublayers=("mlp",))
    with pytest.raises(ValueError, match="blocks.0.mlp, blocks.1.mlp already have a bottleneck adapter"):
        apply_bottleneck_adapters(model)


# ----------------------------------------------------------------------------------------------
# Comparing the three methods


def test_finetune_cost_compares_the_three_methods():
    lora, prompt, adapter = make_gpt(), make_gpt(), make_gpt()
    full = finetune_cost(make_gpt())
    apply_lora(lora, r=2)
    prompted = PromptTunedGPT(prompt, n_virtual_tokens=4)
    apply_bottleneck_adapters(adapter, bottleneck=4)
    C, L = CONFIG.d_model, CONFIG.n_layer
    expected = {"lora": L * 6 * 2 * C, "prompt": 4 * C, "adapter": 2 * L * (2 * 4 * C + 4 + C)}
    for name, model in (("lora", lora), ("prompt", prompted), ("adapter", adapter)):
        cost = finetune_cost(model)
        assert cost.trainable == expected[name], name
        assert cost.optimizer_bytes == 8 * expected[name]
        assert cost.trainable_percent < 10 and cost.optimizer_bytes < full.optimizer_bytes / 10
    assert full.trainable == full.parameters and full.trainable_percent == 100.0


def test_lora_wraps_any_linear_layer_by_its_features_and_weight():
    # not a Linear subclass: a layer that scales its output, spelling the linear-layer protocol
    class ScaledLinear(Module):
        def __init__(self):
            self.in_features, self.out_features = 4, 3
            self.weight = Parameter(np.random.default_rng(0).standard_normal((3, 4)))
            self.bias = None

        def forward(self, x):
            return (x @ self.weight.transpose()) * 2.0

    from tinygrad_llm.finetune.lora import is_lora_base
    base = ScaledLinear()
    layer = LoRALinear(base, r=2, rng=np.random.default_rng(1))
    x = np.random.default_rng(2).standard_normal((5, 4))
    # B starts at zero, so the wrapped layer computes exactly what its base computes, base's own rule
    np.testing.assert_array_equal(layer(Tensor(x)).data, base(Tensor(x)).data)
    assert layer.weight is base.weight and not layer.weight.requires_grad
    no_weight = ScaledLinear()
    no_weight.weight = None
    assert is_lora_base(base) and not is_lora_base(no_weight)
    with pytest.raises(TypeError, match="LoRALinear wraps a Linear, got ScaledLinear"):
        LoRALinear(no_weight)
