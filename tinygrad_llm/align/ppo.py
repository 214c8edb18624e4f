"""The pieces of PPO with a KL penalty (the alignment lessons), each a small function on arrays.

A rollout samples responses from the policy pi; the reward model scores each finished response.
The reward the policy is trained on is that score at the response's last token, minus a penalty
at every token for moving away from the frozen reference model pi_ref:

    r_t = -beta_KL (log pi(y_t) - log pi_ref(y_t))  +  [t = last] * score

Without the penalty (beta_KL = 0) the policy is free to find whatever the reward model
over-rates, which is reward hacking. The summed penalty estimates beta_KL KL(pi || pi_ref),
because E_pi[log pi - log pi_ref] is that KL (``kl_estimates``).

Advantages come from generalised advantage estimation (``gae``) with a learned value V(s_t):

    delta_t = r_t + gamma V_{t+1} - V_t,    A_t = sum_k (gamma lambda)^k delta_{t+k}

and the policy maximises the clipped surrogate (``clipped_surrogate``) over a few epochs of
each rollout batch, ratio rho_t = pi(y_t) / pi_old(y_t):

    L_clip = -mean min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)

All arrays are (B, T) over response positions with a ``mask`` of the real tokens; a row's
positions after its end are masked out and never counted.
"""

from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor, where


def _check_mask(mask: np.ndarray, shape: tuple, name: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {mask.shape}, expected {shape}")
    return mask.astype(bool)


def token_rewards(logprobs: np.ndarray, reference_logprobs: np.ndarray, scores: np.ndarray,
                  mask: np.ndarray, kl_coef: float) -> np.ndarray:
    """r_t of every response position, (B, T): the KL penalty at each real token plus the
    reward-model ``scores`` (B,) at each row's last real token; 0 at masked positions."""
    logprobs, reference_logprobs = np.asarray(logprobs, float), np.asarray(reference_logprobs, float)
    mask = _check_mask(mask, logprobs.shape)
    scores = np.asarray(scores, dtype=float)
    if reference_logprobs.shape != logprobs.shape or scores.shape != logprobs.shape[:1]:
        raise ValueError(f"log-probabilities {logprobs.shape} and {reference_logprobs.shape}, scores "
                         f"{scores.shape}: expected two (B, T) arrays and (B,) scores")
    if not mask.any(axis=1).all():
        raise ValueError("every response needs at least one real token")
    if not np.isfinite(kl_coef) or kl_coef < 0:
        raise ValueError(f"the KL coefficient must be a finite number >= 0, got {kl_coef}")
    rewards = np.where(mask, -kl_coef * (logprobs - reference_logprobs), 0.0)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)          # each row's last real position
    rewards[np.arange(len(scores)), last] += scores
    return rewards


def gae(rewards: np.ndarray, values: np.ndarray, mask: np.ndarray, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns), each (B, T), by generalised advantage estimation, backwards in time;
    the value after a row's last real token is 0 (the episode ends there). returns = A + V are
    the value head's targets."""
    rewards, values = np.asarray(rewards, float), np.asarray(values, float)
    mask = _check_mask(mask, rewards.shape)
    if values.shape != rewards.shape:
        raise ValueError(f"values have shape {values.shape}, rewards {rewards.shape}")
    for name, x in (("gamma", gamma), ("lam", lam)):
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {x}")
    B, T = rewards.shape
    advantages = np.zeros((B, T))
    running = np.zeros(B)
    next_value = np.zeros(B)
    for t in reversed(range(T)):
        real = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = np.where(real, delta + gamma * lam * running, 0.0)
        advantages[:, t] = running
        next_value = np.where(real, values[:, t], 0.0)
    return advantages, np.where(mask, advantages + values, 0.0)


def whiten(x: np.ndarray, mask: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(x - mean) / std over the real positions (PPO normalises advantages per batch); 0 elsewhere."""
    x = np.asarray(x, float)
    mask = _check_mask(mask, x.shape)
    real = x[mask]
    return np.where(mask, (x - real.mean()) / (real.std() + eps), 0.0)


def masked_mean(x: Tensor, mask: np.ndarray) -> Tensor:
    """The mean of ``x`` over the real positions."""
    mask = _check_mask(mask, x.shape)
    count = int(mask.sum())
    if count == 0:
        raise ValueError("the mask selects no position")
    return (x * mask.astype(x.dtype)).sum() / count


def clipped_surrogate(logprobs: Tensor, old_logprobs: np.ndarray, advantages: np.ndarray, mask: np.ndarray,
                      clip: float = 0.2) -> tuple[Tensor, dict[str, float]]:
    """PPO's clipped policy loss over the real positions, and two numbers worth watching: the
    fraction of positions where the clip was active and the approximate KL to the old policy."""
    if not 0.0 < clip < 1.0:
        raise ValueError(f"clip must be in (0, 1), got {clip}")
    old = np.asarray(old_logprobs, dtype=logprobs.dtype)
    adv = np.asarray(advantages, dtype=logprobs.dtype)
    if old.shape != logprobs.shape or adv.shape != logprobs.shape:
        raise ValueError(f"old log-probabilities {old.shape} and advantages {adv.shape} must match {logprobs.shape}")
    ratio = (logprobs - old).exp()
    unclipped = ratio * adv
    clipped = ratio.clip(1.0 - clip, 1.0 + clip) * adv
    # min(a, b) with the gradient of the smaller one
    objective = where(unclipped.data <= clipped.data, unclipped, clipped)
    loss = -masked_mean(objective, mask)
    m = _check_mask(mask, logprobs.shape)
    log_ratio = logprobs.data - old
    stats = {"clip_fraction": float(np.mean(np.abs(ratio.data[m] - 1.0) > clip)),
             "approx_kl": float(np.mean((np.exp(log_ratio) - 1 - log_ratio)[m]))}
    return loss, stats


def value_loss(values: Tensor, returns: np.ndarray, mask: np.ndarray) -> Tensor:
    """1/2 mean (V - returns)^2 over the real positions."""
    returns = np.asarray(returns, dtype=values.dtype)
    if returns.shape != values.shape:
        raise ValueError(f"returns have shape {returns.shape}, values {values.shape}")
    return masked_mean((values - returns) ** 2, mask) * 0.5


def kl_estimates(logprobs: np.ndarray, reference_logprobs: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-response estimates of KL(pi || pi_ref) from the sampled tokens' log-probabilities, (B,):
    ``k1`` = sum (log pi - log pi_ref), unbiased but can go negative; ``k3`` = sum (rho - 1 - log rho)
    with rho = pi_ref / pi, unbiased too and never negative (Schulman's estimator)."""
    logprobs, reference_logprobs = np.asarray(logprobs, float), np.asarray(reference_logprobs, float)
    mask = _check_mask(mask, logprobs.shape)
    log_rho = np.where(mask, reference_logprobs - logprobs, 0.0)
    return {"k1": (-log_rho).sum(axis=1), "k3": (np.exp(log_rho) - 1 - log_rho).sum(axis=1)}


def exact_kl(logits: np.ndarray, reference_logits: np.ndarray) -> np.ndarray:
    """KL(p || q) = sum_v p_v (log p_v - log q_v) of the softmaxes of two (..., V) logit arrays,
    over the last axis: what the sampled estimates estimate, when the vocabulary is small."""
    def log_softmax(z):
        z = np.asarray(z, float)
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    logp, logq = log_softmax(logits), log_softmax(reference_logits)
    return (np.exp(logp) * (logp - logq)).sum(axis=-1)


class AdaptiveKLController:
    """beta_KL adapted to keep the measured KL near ``target`` (Ziegler et al., 2019): after each
    rollout batch, beta <- beta (1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon), with n the
    batch's number of responses. A fixed beta is this with ``horizon = inf``."""

    def __init__(self, init: float, target: float, horizon: float = 10_000):
        if init < 0 or target <= 0 or horizon <= 0:
            raise ValueError(f"need init >= 0, target > 0 and horizon > 0, got {init}, {target}, {horizon}")
        self.value, self.target, self.horizon = float(init), float(target), float(horizon)

    def update(self, kl: float, n: int) -> float:
        error = float(np.clip(kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + error * n / self.horizon
        return self.value
