"""What training costs in arithmetic, and what a compute budget buys (lesson 17).

Unlike ``memory``, which counts bytes, this module counts floating-point operations and what they
buy. A decoder's forward pass spends about 2 FLOPs per parameter per token (one multiply and one
add for every weight the token meets) plus the attention scores; the backward pass costs twice
the forward, so training on D tokens costs

    C ≈ 6 N D  +  6 n_layer n_ctx d_model D          (the second term: attention, Kaplan et al. 2020)

One petaflop/s-day is 10^15 FLOP/s for 86,400 s = 8.64e19 FLOPs, the unit of the GPT-3 paper.

Chinchilla (Hoffmann et al. 2022) fitted the final loss of hundreds of runs as

    L(N, D) = E + A / N^α + B / D^β      (E 1.69, A 406.4, B 410.7, α 0.34, β 0.28)

Minimising it under C = 6 N D gives the compute-optimal split, N_opt = G (C/6)^(β/(α+β)) with
G = (α A / (β B))^(1/(α+β)), and D_opt = C / (6 N_opt): both grow about as √C, which the rule of
thumb "about 20 tokens per parameter" summarises. ``fit_loss_law`` fits the same form to our own
measurements with NumPy least squares.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..core.checks import check_float, check_positive
from ..model.gpt import GPTConfig

PETAFLOP_S_DAY = 1e15 * 86_400   # FLOPs in one petaflop/s-day: 8.64e19
TOKENS_PER_PARAMETER = 20        # Chinchilla's rule of thumb for a compute-optimal run


def training_flops(n_parameters: float, n_tokens: float, config: GPTConfig | None = None) -> float:
    """6 N D, plus the attention term 6 n_layer n_ctx d_model D when ``config`` is given.

    >>> f"{training_flops(175e9, 300e9):.3g}"      # GPT-3: 175B parameters on 300B tokens
    '3.15e+23'
    """
    n, d = check_positive("n_parameters", n_parameters), check_positive("n_tokens", n_tokens)
    flops = 6.0 * n * d
    if config is not None:
        flops += 6.0 * config.n_layer * config.context_length * config.d_model * d
    return flops


def petaflop_s_days(flops: float) -> float:
    """FLOPs in petaflop/s-days (1 PF/s-day = 8.64e19 FLOPs)."""
    return check_float("flops", flops, low=0.0) / PETAFLOP_S_DAY


@dataclass(frozen=True)
class LossLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta; the defaults are Chinchilla's published fit."""

    E: float = 1.69
    A: float = 406.4
    B: float = 410.7
    alpha: float = 0.34
    beta: float = 0.28

    def loss(self, n_parameters, n_tokens):
        """The predicted loss (nats per token) for N parameters trained on D tokens (arrays broadcast)."""
        n, d = np.asarray(n_parameters, dtype=float), np.asarray(n_tokens, dtype=float)
        if (n <= 0).any() or (d <= 0).any():
            raise ValueError("n_parameters and n_tokens must be positive")
        return self.E + self.A / n ** self.alpha + self.B / d ** self.beta

    def compute_optimal(self, flops: float) -> tuple[float, float]:
        """(N_opt, D_opt) that minimise the loss at a budget of ``flops`` = 6 N D.

        >>> n, d = LossLaw().compute_optimal(5.76e23)   # Gopher's budget
        >>> f"{n:.3g} parameters, {d:.3g} tokens"
        '3.22e+10 parameters, 2.98e+12 tokens'

        (The Chinchilla paper quotes about 40B parameters for this budget from this approach; the
        rounded constants it publishes give 32B.)
        """
        c = check_positive("flops", flops)
        a, b = self.alpha, self.beta
        g = (a * self.A / (b * self.B)) ** (1.0 / (a + b))
        n = g * (c / 6.0) ** (b / (a + b))
        return n, c / (6.0 * n)


def rule_of_thumb_optimal(flops: float, tokens_per_parameter: float = TOKENS_PER_PARAMETER) -> tuple[float, float]:
    """(N, D) with D = k N and 6 N D = C: N = sqrt(C / (6 k)). GPT-3's budget gives ~52B params."""
    c = check_positive("flops", flops)
    k = check_positive("tokens_per_parameter", tokens_per_parameter)
    n = float(np.sqrt(c / (6.0 * k)))
    return n, k * n


@dataclass(frozen=True)
class LossLawFit:
    """A fitted ``LossLaw`` with the standard error of each constant and the fit's residual."""

    law: LossLaw
    stderr: dict[str, float]
    rmse: float


def _linear_part(n, d, alpha, beta, loss):
    """For fixed exponents L is linear in (E, A, B): solve that by least squares."""
    design = np.stack([np.ones_like(n), n ** -alpha, d ** -beta], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, loss, rcond=None)
    residual = design @ coefficients - loss
    return coefficients, float(residual @ residual)


def fit_loss_law(n_parameters, n_tokens, losses, alphas=None, betas=None) -> LossLawFit:
    """Fit L = E + A/N^alpha + B/D^beta to measured (N, D, loss) triples.

    The exponents are searched on a grid (then refined on a finer one around the best point); for
    each pair E, A and B follow from a linear least-squares solve. The standard errors come from
    the Gauss-Newton approximation: covariance = s^2 (J^T J)^-1 at the optimum, with J the
    Jacobian of the predictions in the five constants and s^2 the residual variance.
    """
    n = np.asarray(n_parameters, dtype=float)
    d = np.asarray(n_tokens, dtype=float)
    y = np.asarray(losses, dtype=float)
    if not (n.shape == d.shape == y.shape and n.ndim == 1):
        raise ValueError(f"n_parameters, n_tokens and losses must be 1-D of one length, got shapes "
                         f"{n.shape}, {d.shape}, {y.shape}")
    if n.size < 6:
        raise ValueError(f"a fit of 5 constants needs at least 6 measurements, got {n.size}")
    if not (np.isfinite(y).all() and (n > 0).all() and (d > 0).all()):
        raise ValueError("measurements must be finite, with positive sizes and token counts")
    alphas = np.linspace(0.05, 1.5, 59) if alphas is None else np.asarray(alphas, dtype=float)
    betas = np.linspace(0.05, 1.5, 59) if betas is None else np.asarray(betas, dtype=float)

    def best_on(grid_a, grid_b):
        return min(((_linear_part(n, d, a, b, y)[1], a, b) for a, b in itertools.product(grid_a, grid_b)))

    _, a, b = best_on(alphas, betas)
    step_a, step_b = np.diff(alphas).mean(), np.diff(betas).mean()
    _, a, b = best_on(np.linspace(a - step_a, a + step_a, 41), np.linspace(b - step_b, b + step_b, 41))
    (E, A, B), sse = _linear_part(n, d, a, b, y)
    law = LossLaw(E=float(E), A=float(A), B=float(B), alpha=float(a), beta=float(b))

    # Jacobian of E + A n^-a + B d^-b in (E, A, B, alpha, beta)
    jacobian = np.stack([np.ones_like(n), n ** -a, d ** -b, -A * np.log(n) * n ** -a,
                         -B * np.log(d) * d ** -b], axis=1)
    dof = max(n.size - 5, 1)
    covariance = (sse / dof) * np.linalg.pinv(jacobian.T @ jacobian)
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    stderr = dict(zip(("E", "A", "B", "alpha", "beta"), map(float, errors)))
    return LossLawFit(law=law, stderr=stderr, rmse=float(np.sqrt(sse / n.size)))
