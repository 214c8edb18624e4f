"""Optimizers against updates computed by hand, parameter groups, gradient clipping, the
learning-rate schedule, and saving and restoring optimizer state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tinygrad_llm import (GPT, SGD, Adam, AdamW, GPTConfig, Linear, Parameter, Tensor, clip_grad_norm_,
                          cosine_schedule, weight_decay_groups)
from tinygrad_llm.model.state import load_safetensors, save_safetensors

START = [1.0, -2.0]
GRADS = [[0.5, -1.0], [0.1, 0.2], [-0.3, 0.4]]  # the gradient fed in at steps 1, 2, 3


def run(optimizer_class, steps=3, start=START, grads=GRADS, **settings) -> list[np.ndarray]:
    """The parameter after each step, with the gradients set by hand (no model, no loss)."""
    p = Parameter(np.array(start, dtype=np.float64))
    optimizer = optimizer_class([p], **settings)
    history = []
    for g in grads[:steps]:
        p.grad = np.array(g, dtype=np.float64)
        optimizer.step()
        history.append(p.data.copy())
    return history


def adam_reference(start, grads, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False):
    """Adam / AdamW one number at a time, as written in the papers (Kingma & Ba, Algorithm 1;
    Loshchilov & Hutter, Algorithm 2)."""
    out = []
    for x0, column in zip(start, zip(*grads)):
        x, m, v, xs = x0, 0.0, 0.0, []
        for t, g in enumerate(column, start=1):
            if weight_decay and not decoupled:
                g = g + weight_decay * x
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
            if decoupled:
                x = x - lr * weight_decay * x
            x = x - lr * m_hat / (math.sqrt(v_hat) + eps)
            xs.append(x)
        out.append(xs)
    return [np.array(step) for step in zip(*out)]


# ----------------------------------------------------------------------------------------------
# Updates by hand


def test_sgd_subtracts_lr_times_the_gradient():
    history = run(SGD, lr=0.1)
    np.testing.assert_allclose(history, [[0.95, -1.9], [0.94, -1.92], [0.97, -1.96]], rtol=1e-12)


def test_sgd_with_momentum_accumulates_a_velocity():
    # v1 = g1 = (0.5, -1);            p1 = (1, -2) - 0.1 v1 = (0.95, -1.9)
    # v2 = 0.9 v1 + g2 = (0.55, -0.7); p2 = (0.895, -1.83)
    # v3 = 0.9 v2 + g3 = (0.195, -0.23); p3 = (0.8755, -1.807)
    history = run(SGD, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(history, [[0.95, -1.9], [0.895, -1.83], [0.8755, -1.807]], rtol=1e-12)


def test_sgd_weight_decay_adds_decay_times_the_weight_to_the_gradient():
    # g1 + 0.5 p0 = (0.5 + 0.5, -1 - 1) = (1, -2): p1 = (1, -2) - 0.1 (1, -2) = (0.9, -1.8)
    np.testing.assert_allclose(run(SGD, steps=1, lr=0.1, weight_decay=0.5)[0], [0.9, -1.8], rtol=1e-12)


def test_adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign():
    # At t = 1 the bias-corrected m_hat = g and v_hat = g^2, so the step is lr * g / |g|.
    np.testing.assert_allclose(run(Adam, steps=1, lr=0.1)[0], [0.9, -1.9], rtol=1e-7)


def test_adam_matches_the_paper_over_three_steps():
    history = run(Adam, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    expected = adam_reference(START, GRADS, 0.1, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(history, expected, rtol=1e-12)
    # step 2 written out: m = (0.055, -0.07), v = (2.5975e-4, 1.039e-3), t = 2
    m_hat = np.array([0.055, -0.07]) / (1 - 0.9 ** 2)
    v_hat = np.array([2.5975e-4, 1.039e-3]) / (1 - 0.999 ** 2)
    np.testing.assert_allclose(history[1], history[0] - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12)


def test_adam_with_weight_decay_adds_an_l2_term_to_the_gradient():
    history = run(Adam, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3)
    expected = adam_reference(START, GRADS, 0.05, 0.8, 0.99, 1e-6, weight_decay=0.3)
    np.testing.assert_allclose(history, expected, rtol=1e-12)


def test_adamw_matches_the_paper_over_three_steps():
    history = run(AdamW, lr=0.1, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.2)
    expected = adam_reference(START, GRADS, 0.1, 0.9, 0.95, 1e-8, weight_decay=0.2, decoupled=True)
    np.testing.assert_allclose(history, expected, rtol=1e-12)


def test_adamw_without_weight_decay_is_adam():
    np.testing.assert_array_equal(run(AdamW, lr=0.1, weight_decay=0.0), run(Adam, lr=0.1))


def test_adamw_decay_is_decoupled_from_the_gradient_scale_unlike_adam_l2():
    # Zero gradients, weights 50 and 5, lr 0.01, decay 0.1. AdamW shrinks each weight by the
    # factor 1 - lr * decay = 0.999. Adam's L2 term 0.1 p becomes the gradient and is normalised
    # by sqrt(v): both weights move by lr = 0.01, however large they are.
    start, zero = [50.0, 5.0], [[0.0, 0.0]]
    adamw = run(AdamW, steps=1, start=start, grads=zero, lr=0.01, weight_decay=0.1)[0]
    adam = run(Adam, steps=1, start=start, grads=zero, lr=0.01, weight_decay=0.1)[0]
    np.testing.assert_allclose(adamw, [49.95, 4.995], rtol=1e-12)
    np.testing.assert_allclose(adam, [49.99, 4.99], rtol=1e-7)


def test_parameters_without_gradient_or_frozen_are_not_touched():
    a, b, c = (Parameter(np.ones(2)) for _ in range(3))
    optimizer = AdamW([a, b, c], lr=0.1, weight_decay=0.5)
    a.grad = np.ones(2)
    c.grad = np.ones(2)
    c.requires_grad_(False)
    optimizer.step()
    assert np.all(a.data < 1)
    np.testing.assert_array_equal(b.data, 1.0)  # no gradient: not even decayed
    np.testing.assert_array_equal(c.data, 1.0)


def test_float32_parameters_stay_float32():
    p = Parameter(np.ones(3, dtype=np.float32))
    optimizer = AdamW([p], lr=0.1)
    p.grad = np.full(3, 0.5, dtype=np.float32)
    optimizer.step()
    assert p.dtype == np.float32 and optimizer.state[0]["m"].dtype == np.float32


def test_setting_lr_sets_it_for_every_group():
    groups = [{"params": [Parameter(np.ones(1))], "lr": 0.1}, {"params": [Parameter(np.ones(1))]}]
    optimizer = SGD(groups, lr=0.5)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    optimizer.lr = 0.01
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.01] and optimizer.lr == 0.01


# ----------------------------------------------------------------------------------------------
# Construction errors


def test_an_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="AdamW got no parameters"):
        AdamW([])
    with pytest.raises(ValueError, match="no parameters"):
        SGD(iter([]))


def test_a_plain_tensor_is_not_a_parameter():
    with pytest.raises(TypeError, match="optimizers update Parameters, got Tensor"):
        Adam([Parameter(np.ones(1)), Tensor([1.0], requires_grad=True)])


def test_a_parameter_in_two_groups_is_an_error():
    shared = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        AdamW([{"params": [shared]}, {"params": [Parameter(np.ones(1)), shared]}])


def test_unknown_settings_are_an_error():
    with pytest.raises(TypeError, match=r"unknown settings \['momentum'\]"):
        Adam([Parameter(np.ones(1))], momentum=0.9)


# ----------------------------------------------------------------------------------------------
# weight_decay_groups


def test_weight_decay_groups_exclude_biases_norms_and_embeddings():
    model = GPT(GPTConfig(vocab_size=20, context_length=4, d_model=8, n_layer=2, n_head=2, tie_weights=False))
    decay, no_decay = weight_decay_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): name for name, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert decayed == sorted([f"blocks.{i}.{layer}.weight" for i in range(2)
                              for layer in ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")] + ["head.weight"])
    not_decayed = {names[id(p)] for p in no_decay["params"]}
    assert {"token_embedding.weight", "position_embedding.weight", "final_norm.weight",
            "final_norm.bias", "blocks.0.attn.qkv.bias", "blocks.1.norm2.weight"} <= not_decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())
    AdamW(weight_decay_groups(model, 0.1))  # the groups are valid: no parameter twice


def test_weight_decay_groups_can_decay_embeddings_and_skip_frozen_parameters():
    model = GPT(GPTConfig(vocab_size=20, context_length=4, d_model=8, n_layer=1, n_head=2))
    decay, _ = weight_decay_groups(model, 0.1, decay_embeddings=True)
    assert any(p is model.token_embedding.weight for p in decay["params"])
    model.blocks[0].requires_grad_(False)
    decay, no_decay = weight_decay_groups(model, 0.1)
    frozen = {id(p) for p in model.blocks[0].parameters()}
    assert not any(id(p) in frozen for p in decay["params"] + no_decay["params"])
    assert decay["params"] == []  # the tied head is the (undecayed) embedding; all else is frozen


# ----------------------------------------------------------------------------------------------
# clip_grad_norm_


def _params_with_grads(*grads):
    params = []
    for g in grads:
        p = Parameter(np.zeros(np.shape(g)))
        p.grad = np.array(g, dtype=np.float64)
        params.append(p)
    return params


def test_clip_grad_norm_scales_all_gradients_together_and_returns_the_norm_before():
    params = _params_with_grads([3.0, 4.0], [[12.0]])  # global norm sqrt(9 + 16 + 144) = 13
    assert clip_grad_norm_(params, max_norm=6.5) == pytest.approx(13.0, rel=1e-12)
    np.testing.assert_allclose(params[0].grad, [1.5, 2.0], rtol=1e-6)  # halved, direction kept
    np.testing.assert_allclose(params[1].grad, [[6.0]], rtol=1e-6)
    after = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    assert after == pytest.approx(6.5, rel=1e-6) and after <= 6.5


def test_clip_grad_norm_leaves_small_gradients_alone_and_skips_missing_ones():
    params = _params_with_grads([0.3, 0.4]) + [Parameter(np.zeros(2))]  # the last has no grad
    assert clip_grad_norm_(params, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad, [0.3, 0.4])
    assert clip_grad_norm_([Parameter(np.zeros(1))], 1.0) == 0.0


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_returns_a_non_finite_norm_and_scales_nothing(bad):
    params = _params_with_grads([bad, 1.0], [2.0])
    norm = clip_grad_norm_(params, max_norm=1.0)
    assert not math.isfinite(norm)
    np.testing.assert_array_equal(params[1].grad, [2.0])
    assert params[0].grad[1] == 1.0


# ----------------------------------------------------------------------------------------------
# cosine_schedule


def test_cosine_schedule_warms_up_linearly_peaks_and_decays_to_the_floor():
    def lr(step):
        return cosine_schedule(step, max_lr=1.0, warmup_steps=10, total_steps=110, min_lr=0.1)

    assert lr(0) == pytest.approx(0.1)   # (step + 1) / warmup: the first step is not wasted at 0
    assert lr(4) == pytest.approx(0.5)
    assert lr(9) == pytest.approx(1.0)   # the end of warmup reaches the peak
    assert lr(10) == pytest.approx(1.0)  # the cosine starts at its top
    assert lr(60) == pytest.approx(0.55)  # halfway: (max + min) / 2
    assert lr(110) == pytest.approx(0.1) and lr(500) == pytest.approx(0.1)
    decay = [lr(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert cosine_schedule(0, 1.0, 0, 100) == pytest.approx(1.0)  # no warmup: start at the peak


# ----------------------------------------------------------------------------------------------
# Saving and restoring optimizer state


def _groups(model):
    return [{"params": [model.weight], "weight_decay": 0.05}, {"params": [model.bias], "lr": 0.02}]


def _setup(optimizer_class, seed=0, **settings):
    model = Linear(4, 3, rng=np.random.default_rng(seed), dtype=np.float64)
    model.bias.data[...] = 0.1
    return model, optimizer_class(_groups(model), **settings)


def _train(model, optimizer, steps, start):
    """``steps`` steps of a least-squares fit whose batch depends only on the step number."""
    for step in range(start, start + steps):
        x = Tensor(np.random.default_rng(step).normal(size=(8, 4)), dtype=np.float64)
        target = np.sin(np.arange(24).reshape(8, 3) + step)
        loss = ((model(x) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("optimizer_class, settings", [
    (SGD, dict(lr=0.05, momentum=0.9)),
    (Adam, dict(lr=0.01, weight_decay=0.01)),
    (AdamW, dict(lr=0.01, betas=(0.9, 0.95))),
], ids=["sgd-momentum", "adam", "adamw"])
def test_optimizer_state_saved_to_a_file_and_restored_continues_exactly(tmp_path, optimizer_class, settings):
    reference = _train(*_setup(optimizer_class, **settings), steps=6, start=0)

    # 3 steps, save model and optimizer state, rebuild both from scratch, load, 3 more steps
    model, optimizer = _setup(optimizer_class, **settings)
    _train(model, optimizer, steps=3, start=0)
    state = optimizer.state_dict()
    path = tmp_path / "optimizer.safetensors"
    save_safetensors(path, {**{f"model.{k}": v for k, v in model.state_dict().items()},
                            **{f"optimizer.{k}": v for k, v in state["state"].items()}},
                     {"optimizer": json.dumps({"step_count": state["step_count"],
                                               "param_groups": state["param_groups"]})})
    tensors, metadata = load_safetensors(path)
    resumed, optimizer = _setup(optimizer_class, seed=99, lr=123.0)  # other weights and settings
    resumed.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    saved = json.loads(metadata["optimizer"])
    for group in saved["param_groups"]:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])  # JSON has no tuples
    optimizer.load_state_dict({**saved, "state": {k[len("optimizer."):]: v for k, v in tensors.items()
                                                  if k.startswith("optimizer.")}})
    assert optimizer.step_count == 3 and optimizer.param_groups[1]["lr"] == 0.02
    _train(resumed, optimizer, steps=3, start=3)

    for a, b in zip(reference.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    # the state mattered: the same 3 steps with a fresh optimizer end elsewhere
    model, optimizer = _setup(optimizer_class, **settings)
    _train(model, optimizer, steps=3, start=0)
    _train(model, optimizer_class(_groups(model), **settings), steps=3, start=3)
    assert not np.allclose(model.weight.data, reference.weight.data, rtol=1e-6, atol=0)


def test_restored_state_is_a_private_copy_of_what_was_loaded():
    model, optimizer = _setup(Adam, lr=0.01)
    _train(model, optimizer, 2, 0)
    state = optimizer.state_dict()
    other_model, other = _setup(Adam, lr=0.01)
    other.load_state_dict(state)
    assert other.state[0]["m"] is not optimizer.state[0]["m"]
    np.testing.assert_array_equal(other.state[0]["m"], optimizer.state[0]["m"])


def test_loading_state_that_does_not_fit_is_an_error():
    model, optimizer = _setup(Adam, lr=0.01)
    _train(model, optimizer, 1, 0)
    state = optimizer.state_dict()
    single = Adam([Parameter(np.ones((4, 3)))])
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer has 1"):
        single.load_state_dict(state)
    wrong = Adam([{"params": [Parameter(np.ones((4, 3)))]}, {"params": [Parameter(np.ones(3))]}])
    with pytest.raises(ValueError, match="does not fit this model's parameters"):
        wrong.load_state_dict(state)


@pytest.mark.parametrize("optimizer_class", [Adam, AdamW])
def test_adam_bias_correction_counts_each_parameters_own_updates(optimizer_class):
    # A parameter that gets its first gradient after others have stepped (unfrozen late) must
    # move by lr on its first update, exactly like a parameter updated from the start.
    early = Parameter(np.zeros(3))
    late = Parameter(np.zeros(3))
    optimizer = optimizer_class([early, late], lr=0.1, weight_decay=0.0)
    for _ in range(5):
        early.grad = np.ones(3)
        late.grad = None
        optimizer.step()
    late.grad = np.full(3, 2.0)
    early.grad = None
    optimizer.step()
    # first Adam step: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) = lr
    np.testing.assert_allclose(late.data, -0.1 * np.ones(3), rtol=1e-6)
