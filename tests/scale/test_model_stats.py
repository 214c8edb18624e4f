"""The parameter and memory calculator: formulas against real models and published sizes."""

from __future__ import annotations

import dataclasses

import pytest

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.scale.memory import (BYTES_PER_VALUE, activation_bytes, format_bytes, memory_table,
                                      parameter_counts)

BASE = GPTConfig(vocab_size=97, context_length=12, d_model=16, n_layer=3, n_head=2)
VARIANTS = {
    "gpt2-like": {},
    "no-bias": dict(bias=False),
    "untied": dict(tie_weights=False),
    "sinusoidal": dict(position="sinusoidal"),
    "everything-off": dict(bias=False, tie_weights=False, position="sinusoidal"),
    "one-layer-wide": dict(n_layer=1, d_model=24, n_head=3),
}


@pytest.mark.parametrize("changes", VARIANTS.values(), ids=VARIANTS.keys())
def test_parameter_counts_total_equals_the_built_models_count(changes):
    config = dataclasses.replace(BASE, **changes)
    counts = parameter_counts(config)
    model = GPT(config)
    assert counts["total"] == model.num_parameters()
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_parameter_counts_per_component_match_the_model_tree():
    config = dataclasses.replace(BASE, tie_weights=False)
    counts = parameter_counts(config)
    model = GPT(config)

    def size(prefix_match):
        return sum(p.size for name, p in model.named_parameters() if prefix_match(name))

    assert counts["token embedding"] == size(lambda n: n.startswith("token_embedding"))
    assert counts["position embedding"] == size(lambda n: n.startswith("position_embedding"))
    assert counts["attention (all layers)"] == size(lambda n: ".attn." in n)
    assert counts["feed-forward (all layers)"] == size(lambda n: ".mlp." in n)
    assert counts["layer norms"] == size(lambda n: "norm" in n)
    assert counts["output head"] == size(lambda n: n.startswith("head"))


def test_tied_and_sinusoidal_configs_count_no_head_and_no_position_table():
    counts = parameter_counts(dataclasses.replace(BASE, position="sinusoidal"))
    assert counts["output head"] == 0 and counts["position embedding"] == 0


def test_gpt2_124m_has_124_439_808_parameters():
    counts = parameter_counts(GPTConfig.gpt2("124M"))
    assert counts["total"] == 124_439_808
    assert counts["token embedding"] == 50257 * 768
    assert counts["position embedding"] == 1024 * 768


def test_gpt2_1_5b_has_1_557_611_200_parameters():
    assert parameter_counts(GPTConfig.gpt2("1.5B"))["total"] == 1_557_611_200


def test_memory_table_counts_weights_per_precision_and_16_bytes_per_parameter_to_train():
    config = GPTConfig.gpt2("124M")
    n = 124_439_808
    rows = {row["what"]: row["bytes"] for row in memory_table(config)}
    assert rows["weights, fp32"] == 4 * n
    assert rows["weights, bf16"] == rows["weights, fp16"] == 2 * n
    assert rows["weights, int8"] == n
    assert rows["training fp32: weights + grads"] == 8 * n
    # weight + gradient + AdamW's two moments, 4 bytes each: the "1B = 4 GB" rule is for inference
    assert rows["training fp32: weights + grads + AdamW m, v"] == 16 * n == 1_991_036_928
    assert len(rows) == len(BYTES_PER_VALUE) + 2


def test_memory_table_with_a_batch_adds_an_activation_estimate_on_top_of_training():
    config = GPTConfig(vocab_size=2048, context_length=128, d_model=128, n_layer=4, n_head=4)
    rows = memory_table(config, batch_size=16)
    last = rows[-1]
    assert last["what"] == "+ activations, batch 16 x 128 (estimate)"
    n = parameter_counts(config)["total"]
    assert last["bytes"] == 16 * n + activation_bytes(config, 16)
    assert activation_bytes(config, 32) == 2 * activation_bytes(config, 16)  # linear in the batch
    # at least the logits and their softmax, float32: 2 * B * T * V * 4 bytes
    assert activation_bytes(config, 16) > 2 * 16 * 128 * 2048 * 4


@pytest.mark.parametrize("count, text", [
    (0, "0 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1536, "1.5 KiB"),
    (5 * 1024 ** 2, "5.0 MiB"),
    (1_991_036_928, "1.9 GiB"),
    (3 * 1024 ** 4, "3.0 TiB"),
    (2 * 1024 ** 5, "2048.0 TiB"),  # TiB is the largest unit
    (-2048, "-2.0 KiB"),
])
def test_format_bytes_uses_binary_units(count, text):
    assert format_bytes(count) == text

