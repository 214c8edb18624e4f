"""The pieces of PPO (tinygrad_llm.align.ppo), each against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import Tensor
from tinygrad_llm.align.ppo import (AdaptiveKLController, clipped_surrogate, exact_kl, gae, kl_estimates,
                                    token_rewards, value_loss, whiten)

MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)


def test_token_rewards_are_the_kl_penalty_plus_the_score_at_the_last_token():
    logp = np.array([[-1.0, -2.0, -0.5, -9.0], [-1.0, -1.0, -1.0, -1.0]])
    ref = np.array([[-1.5, -1.0, -0.5, -1.0], [-2.0, -1.0, -1.0, -3.0]])
    rewards = token_rewards(logp, ref, np.array([3.0, -1.0]), MASK, kl_coef=0.1)
    expected = np.array([[-0.05, 0.1, 3.0, 0.0], [-0.1, 0.0, 0.0, -0.2 - 1.0]])
    np.testing.assert_allclose(rewards, expected, atol=1e-12)
    np.testing.assert_allclose(token_rewards(logp, ref, np.zeros(2), MASK, 0.0), 0.0)


def hand_gae(rewards, values, gamma, lam):
    """A_t = sum_k (gamma lam)^k delta_{t+k}, written out for one row with no masking."""
    T = len(rewards)
    next_values = np.append(values[1:], 0.0)
    delta = rewards + gamma * next_values - values
    return np.array([sum((gamma * lam) ** k * delta[t + k] for k in range(T - t)) for t in range(T)])


@pytest.mark.parametrize("gamma, lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 0.0)])
def test_gae_matches_the_sum_of_discounted_td_errors(gamma, lam):
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    advantages, returns = gae(rewards, values, MASK, gamma, lam)
    np.testing.assert_allclose(advantages[0, :3], hand_gae(rewards[0, :3], values[0, :3], gamma, lam), atol=1e-12)
    np.testing.assert_allclose(advantages[1], hand_gae(rewards[1], values[1], gamma, lam), atol=1e-12)
    assert advantages[0, 3] == returns[0, 3] == 0.0
    np.testing.assert_allclose(returns[MASK], (advantages + values)[MASK])


def test_gae_with_gamma_and_lambda_one_is_the_return_to_go_minus_the_value():
    rewards, values = np.array([[1.0, 2.0, 3.0, 0.0]]), np.array([[0.5, 0.5, 0.5, 0.5]])
    advantages, _ = gae(rewards, values, MASK[:1], 1.0, 1.0)
    np.testing.assert_allclose(advantages[0, :3], [6 - 0.5, 5 - 0.5, 3 - 0.5])


def test_whitened_advantages_have_zero_mean_and_unit_spread_on_real_positions():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 4))
    w = whiten(x, MASK)
    assert abs(w[MASK].mean()) < 1e-12 and w[MASK].std() == pytest.approx(1.0, rel=1e-6) and w[0, 3] == 0.0


def test_kl_estimates_are_unbiased_for_the_exact_kl_on_a_small_vocabulary():
    rng = np.random.default_rng(2)
    logits, ref_logits = rng.normal(size=6), rng.normal(size=6)
    p = np.exp(logits - np.logaddexp.reduce(logits))
    logp, logq = np.log(p), ref_logits - np.logaddexp.reduce(ref_logits)
    tokens = rng.choice(6, size=(20_000, 1), p=p)
    estimates = kl_estimates(logp[tokens], logq[tokens], np.ones((20_000, 1), dtype=bool))
    exact = exact_kl(logits, ref_logits)
    assert exact > 0.05
    for name in ("k1", "k3"):
        assert estimates[name].mean() == pytest.approx(exact, rel=0.05), name
    assert (estimates["k3"] >= 0).all() and (estimates["k1"] < 0).any()


def test_exact_kl_is_zero_for_equal_distributions_and_positive_otherwise():
    z = np.array([[0.1, 2.0, -1.0]])
    assert exact_kl(z, z + 5.0)[0] == pytest.approx(0.0, abs=1e-12)
    assert exact_kl(z, z[:, ::-1])[0] > 0


def test_clipped_surrogate_at_ratio_one_is_minus_the_mean_advantage():
    old = np.log(np.full((2, 4), 0.3))
    adv = np.random.default_rng(3).normal(size=(2, 4))
    loss, stats = clipped_surrogate(Tensor(old.copy()), old, adv, MASK)
    assert loss.item() == pytest.approx(-adv[MASK].mean(), rel=1e-12)
    assert stats["clip_fraction"] == 0.0 and stats["approx_kl"] == pytest.approx(0.0, abs=1e-15)


def test_the_clip_removes_the_gradient_only_where_it_would_push_further():
    """With A > 0 and ratio above 1 + eps the clipped term is smaller and constant: no gradient.
    With A < 0 and ratio above 1 + eps the unclipped term is smaller: the gradient pulls back."""
    old = np.zeros((1, 2))
    new = Tensor(np.log(np.array([[1.5, 1.5]])), requires_grad=True)
    loss, stats = clipped_surrogate(new, old, np.array([[1.0, -1.0]]), np.ones((1, 2), dtype=bool), clip=0.2)
    loss.backward()
    assert new.grad[0, 0] == 0.0
    assert new.grad[0, 1] == pytest.approx(1.5 / 2)     # d/dlogp of -(1/2)(-ratio) = ratio / 2
    assert loss.item() == pytest.approx(-(1.2 * 1.0 + 1.5 * -1.0) / 2)
    assert stats["clip_fraction"] == 1.0


def test_value_loss_is_half_the_mean_squared_error_on_real_positions():
    values = Tensor(np.arange(8.0).reshape(2, 4))
    returns = np.zeros((2, 4))
    assert value_loss(values, returns, MASK).item() == pytest.approx(0.5 * np.mean(np.arange(8.0)[MASK.ravel()] ** 2))


@pytest.mark.parametrize("call, match", [
    (lambda: gae(np.zeros((1, 2)), np.zeros((1, 3)), np.ones((1, 2)), 1.0, 1.0), "values have shape"),
    (lambda: gae(np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2)), 1.5, 1.0), "gamma"),
    (lambda: token_rewards(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1), np.zeros((1, 2)), 0.1),
     "at least one real token"),
    (lambda: token_rewards(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1), np.ones((1, 2)), -1.0), "KL coefficient"),
    (lambda: clipped_surrogate(Tensor(np.zeros((1, 2))), np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2)), 1.5),
     "clip"),
])
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_adaptive_kl_coefficient_rises_above_its_target_and_falls_below():
    controller = AdaptiveKLController(0.1, target=6.0, horizon=100)
    assert controller.update(kl=12.0, n=10) == pytest.approx(0.1 * 1.02)
    assert controller.update(kl=0.0, n=10) == pytest.approx(0.1 * 1.02 * 0.98)
    with pytest.raises(ValueError):
        AdaptiveKLController(0.1, target=0.0)
