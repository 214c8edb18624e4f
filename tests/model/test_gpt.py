"""The GPT: configuration, shapes, loss at initialisation, clear errors, weight tying, GPT-2
initialisation, causality, positions and precision."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, Tensor, TransformerBlock, sinusoidal_positions

SMALL = GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layer=2, n_head=4)


def tokens(config: GPTConfig, shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, config.vocab_size, shape)


# ----------------------------------------------------------------------------------------------
# GPTConfig


@pytest.mark.parametrize("changes, message", [
    (dict(vocab_size=0), "vocab_size must be an integer >= 1, got 0"),
    (dict(context_length=-1), "context_length must be an integer >= 1"),
    (dict(d_model=0), "d_model must be an integer >= 1"),
    (dict(n_layer=0), "n_layer must be an integer >= 1"),
    (dict(n_head=0), "n_head must be an integer >= 1"),
    (dict(d_model=10, n_head=4), "d_model 10 is not divisible by n_head 4"),
    (dict(position="rotary"), "position must be one of 'learned', 'sinusoidal', got 'rotary'"),
    (dict(dropout=1.0), r"dropout must be a finite number in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), r"dropout must be a finite number in \[0, 1\)"),
])
def test_config_rejects_invalid_settings_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**changes)


def test_config_is_frozen_and_varied_with_replace():
    config = GPTConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 64
    wider = dataclasses.replace(config, d_model=256)
    assert wider.d_model == 256 and config.d_model == 128
    with pytest.raises(ValueError, match="not divisible"):
        dataclasses.replace(config, n_head=3)


def test_gpt2_configs_are_the_published_shapes():
    small = GPTConfig.gpt2()
    assert (small.vocab_size, small.context_length, small.d_model, small.n_layer, small.n_head) == \
        (50257, 1024, 768, 12, 12)
    xl = GPTConfig.gpt2("1.5B")
    assert (xl.d_model, xl.n_layer, xl.n_head) == (1600, 48, 25)
    with pytest.raises(ValueError, match="unknown GPT-2 size '7B'"):
        GPTConfig.gpt2("7B")


# ----------------------------------------------------------------------------------------------
# Forward


def test_forward_returns_logits_and_with_targets_a_scalar_loss():
    model = GPT(SMALL)
    idx = tokens(SMALL, (3, 5))
    logits = model(idx)
    assert logits.shape == (3, 5, 50) and logits.dtype == np.float32
    logits2, loss = model(idx, tokens(SMALL, (3, 5), seed=1))
    np.testing.assert_array_equal(logits2.data, logits.data)
    assert loss.shape == () and loss.requires_grad
    assert model.hidden_states(idx).shape == (3, 5, 16)
    assert model(tokens(SMALL, (1, 8))).shape == (1, 8, 50)  # exactly context_length tokens


def test_loss_at_initialisation_is_close_to_log_vocab_size():
    config = GPTConfig(vocab_size=256, context_length=32, d_model=32, n_layer=2, n_head=4)
    model = GPT(config, np.random.default_rng(0))
    B, T = 4, 32
    _, loss = model(tokens(config, (B, T)), tokens(config, (B, T), seed=1))
    # A logit is h . E_j, where h (after the final LayerNorm) has unit variance per channel and
    # the embedding rows E_j have std 0.02, so logits ~ N(0, s^2) with s^2 = 0.02^2 * d_model.
    # Then E[logsumexp] = ln V + s^2/2 (to second order) and the target's logit averages to 0
    # with a standard error s / sqrt(B T) over the B T positions: allow 4 standard errors.
    s = 0.02 * math.sqrt(config.d_model)
    tolerance = s * s / 2 + 4 * s / math.sqrt(B * T)
    assert abs(loss.item() - math.log(config.vocab_size)) < tolerance


@pytest.mark.parametrize("T", [9, 20])
def test_a_sequence_longer_than_the_context_raises(T):
    with pytest.raises(ValueError, match=f"sequence of {T} tokens is longer than the context length 8"):
        GPT(SMALL)(tokens(SMALL, (1, T)))


@pytest.mark.parametrize("bad", [50, -1, 1000])
def test_token_ids_out_of_range_raise(bad):
    idx = np.array([[1, 2, bad]])
    with pytest.raises(IndexError, match=f"token id {bad} is out of range for a vocabulary of 50"):
        GPT(SMALL)(idx)


def test_token_ids_must_be_a_batch_of_integer_sequences():
    model = GPT(SMALL)
    with pytest.raises(ValueError, match=r"shape \(batch, time\), got \(3,\)"):
        model(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="token ids must be integers"):
        model(np.array([[1.0, 2.0]]))


def test_targets_out_of_range_raise():
    with pytest.raises(IndexError, match="target 50 is out of range for 50 classes"):
        GPT(SMALL)(np.array([[1, 2]]), np.array([[3, 50]]))


# ----------------------------------------------------------------------------------------------
# Weight tying


def test_tied_head_is_the_token_embedding_itself():
    model = GPT(SMALL)
    assert model.head is None
    assert model.output_weight() is model.token_embedding.weight
    params = model.parameters()
    assert sum(p is model.token_embedding.weight for p in params) == 1
    assert len({id(p.data) for p in params}) == len(params)  # no parameter hides a copy
    untied = GPT(dataclasses.replace(SMALL, tie_weights=False))
    assert untied.num_parameters() - model.num_parameters() == SMALL.vocab_size * SMALL.d_model


def test_tied_logits_are_hidden_states_times_the_embedding_and_follow_its_edits():
    model = GPT(SMALL)
    idx = tokens(SMALL, (2, 4))
    h = model.hidden_states(idx).data
    np.testing.assert_allclose(model(idx).data, h @ model.token_embedding.weight.data.T, rtol=1e-5, atol=1e-6)
    model.token_embedding.weight.data[7] = 0.0  # token 7 is never in idx below, so h is unchanged
    idx = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(model(idx).data[..., 7], 0.0)


def test_tied_gradient_is_the_sum_of_the_embedding_and_head_gradients():
    config = dataclasses.replace(SMALL, n_layer=1)
    tied = GPT(config, np.random.default_rng(1), dtype=np.float64)
    untied = GPT(dataclasses.replace(config, tie_weights=False), np.random.default_rng(2), dtype=np.float64)
    untied.load_state_dict({**tied.state_dict(), "head.weight": tied.token_embedding.weight.data})
    idx, targets = tokens(config, (2, 6)), tokens(config, (2, 6), seed=3)
    tied_logits, tied_loss = tied(idx, targets)
    untied_logits, untied_loss = untied(idx, targets)
    np.testing.assert_allclose(tied_logits.data, untied_logits.data, rtol=1e-12, atol=1e-14)
    tied_loss.backward()
    untied_loss.backward()
    np.testing.assert_allclose(tied.token_embedding.weight.grad,
                               untied.token_embedding.weight.grad + untied.head.weight.grad,
                               rtol=1e-10, atol=1e-14)


def test_untied_head_is_a_separate_matrix():
    model = GPT(dataclasses.replace(SMALL, tie_weights=False))
    assert model.output_weight() is model.head.weight
    assert model.head.bias is None
    assert not np.shares_memory(model.head.weight.data, model.token_embedding.weight.data)
    assert "head.weight" in model.state_dict()


# ----------------------------------------------------------------------------------------------
# Initialisation


def test_gpt2_init_scales_the_residual_projections_by_one_over_sqrt_two_n_layer():
    config = GPTConfig(vocab_size=16, context_length=8, d_model=256, n_layer=8, n_head=4)
    block = TransformerBlock(config, np.random.default_rng(0))
    scaled = 0.02 / math.sqrt(2 * config.n_layer)  # 0.005
    # Sample stds of 65,536 (proj) and 262,144 (down) normals are within ~0.3% of the truth.
    expected = {"attn.qkv.weight": 0.02, "attn.proj.weight": scaled, "mlp.up.weight": 0.02,
                "mlp.down.weight": scaled}
    for name, std in expected.items():
        weight = dict(block.named_parameters())[name].data
        assert abs(weight.std() / std - 1) < 0.02, name
        assert abs(weight.mean()) < 0.02 * std, name
    for name, p in block.named_parameters():
        if name.endswith("bias"):
            np.testing.assert_array_equal(p.data, 0.0)
    np.testing.assert_array_equal(block.norm1.weight.data, 1.0)


def test_embeddings_start_with_std_0_02_and_the_same_seed_gives_the_same_model():
    config = GPTConfig(vocab_size=512, context_length=256, d_model=64, n_layer=1, n_head=4,
                       tie_weights=False)
    model = GPT(config, np.random.default_rng(0))
    # at least 16,384 entries each: the sample std is within 1/sqrt(2N) = 0.55% per standard error
    for p in (model.token_embedding.weight, model.position_embedding.weight, model.head.weight):
        assert abs(p.data.std() / 0.02 - 1) < 0.03
    again = GPT(config, np.random.default_rng(0))
    other = GPT(config, np.random.default_rng(1))
    for a, b, c in zip(model.parameters(), again.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(model.token_embedding.weight.data, other.token_embedding.weight.data)


# ----------------------------------------------------------------------------------------------
# Causality, positions, dropout, precision


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_changing_a_future_token_leaves_earlier_logits_unchanged(position):
    config = dataclasses.replace(SMALL, position=position)
    model = GPT(config, np.random.default_rng(0), dtype=np.float64)
    idx = tokens(config, (2, 8))
    before = model(idx).data
    for t in (7, 4, 1):
        changed = idx.copy()
        changed[:, t] = (changed[:, t] + 1) % config.vocab_size
        after = model(changed).data
        np.testing.assert_allclose(after[:, :t], before[:, :t], rtol=1e-13, atol=1e-15)
        assert not np.allclose(after[:, t:], before[:, t:])  # ... but the token itself and later ones move


def test_sinusoidal_positions_match_the_formula_entry_by_entry():
    for T, d in [(6, 8), (5, 7)]:  # an odd width has one more sine than cosine channel
        table = sinusoidal_positions(T, d)
        assert table.shape == (T, d)
        for p in range(T):
            for j in range(d):
                angle = p / 10000 ** ((j - j % 2) / d)
                expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
                assert table[p, j] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    np.testing.assert_array_equal(sinusoidal_positions(3, 4)[0], [0.0, 1.0, 0.0, 1.0])


def test_sinusoidal_gpt_adds_the_fixed_table_and_has_no_position_parameters():
    config = dataclasses.replace(SMALL, position="sinusoidal")
    model = GPT(config)
    assert not hasattr(model, "position_embedding")
    assert not any("position" in name for name in model.state_dict())  # recomputed, not saved
    learned = GPT(SMALL)
    assert learned.num_parameters() - model.num_parameters() == SMALL.context_length * SMALL.d_model
    np.testing.assert_allclose(model.positions(5).data, sinusoidal_positions(8, 16)[:5], rtol=1e-6)
    assert model.positions(5).dtype == np.float32 and not model.positions(5).requires_grad


def test_dropout_changes_training_outputs_but_not_evaluation_outputs():
    config = dataclasses.replace(SMALL, dropout=0.2)
    model = GPT(config, np.random.default_rng(0))
    plain = GPT(dataclasses.replace(config, dropout=0.0), np.random.default_rng(0))
    idx = tokens(config, (2, 6))
    first, second = model(idx).data, model(idx).data
    assert not np.allclose(first, second)  # a fresh mask each call
    model.eval()
    np.testing.assert_array_equal(model(idx).data, plain(idx).data)


def test_float64_and_float32_models_agree_to_float32_precision():
    model64 = GPT(SMALL, np.random.default_rng(0), dtype=np.float64)
    model32 = GPT(SMALL, np.random.default_rng(5), dtype=np.float32)
    model32.load_state_dict(model64.state_dict())  # rounds every weight to float32
    idx, targets = tokens(SMALL, (2, 8)), tokens(SMALL, (2, 8), seed=1)
    logits64, loss64 = model64(idx, targets)
    logits32, loss32 = model32(idx, targets)
    assert logits32.dtype == np.float32 and logits64.dtype == np.float64
    # float32 keeps ~7 digits; through a few layers the error stays within ~100 ulps of the logits
    np.testing.assert_allclose(logits32.data, logits64.data, rtol=1e-4, atol=1e-5)
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-5)
    loss64.backward()
    loss32.backward()
    for (name, p64), p32 in zip(model64.named_parameters(), model32.parameters()):
        scale = np.abs(p64.grad).max()
        np.testing.assert_allclose(p32.grad, p64.grad, rtol=0, atol=1e-4 * scale, err_msg=name)


def test_a_float32_model_refuses_float64_inputs_instead_of_upcasting():
    model = GPT(SMALL)
    x = Tensor(np.random.default_rng(0).normal(size=(1, 2, 16)), dtype=np.float64)
    with pytest.raises(TypeError, match="layer_norm: dtype mismatch between input float64 and weight"):
        model.blocks[0](x)  # the block's first op is its LayerNorm
