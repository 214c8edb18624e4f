"""Scaling laws measured, not quoted: fits, their uncertainty and the compute frontier (lesson 18).

Unlike ``compute``, which holds Chinchilla's published law and the arithmetic of a budget, this
module turns our own runs into a law. A loss that falls as a power of the model size towards a
floor,

    L(N) = E + A / N^α          (E: the loss no model size removes, α: how fast size helps)

is a straight line once the floor is taken off: log(L - E) = log A - α log N. So for each
candidate E the fit is a linear least-squares line in log space, and E is the candidate whose
line predicts log L best (a grid over [0, min L), refined once). With the data budget as a second
variable, ``fit_loss_surface`` fits Chinchilla's L(N, D) = E + A/N^α + B/D^β (``compute``'s
``fit_loss_law``). How far to trust a fitted constant is read off the data themselves:
``bootstrap`` refits on resampled runs, and ``interval`` takes percentiles of the refits.
``pareto_frontier`` picks, among measured runs, those no cheaper run beats: the measured
compute-optimal frontier.

    >>> law = fit_power_law([1e3, 1e4, 1e5, 1e6], [4.0, 3.0, 2.5, 2.25])
    >>> f"E {law.E:.2f}, A {law.A:.1f}, alpha {law.alpha:.3f}"
    'E 2.00, A 16.0, alpha 0.301'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.checks import check_fraction, check_positive_int
from .compute import LossLawFit, fit_loss_law


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = E + A / x^alpha (E = 0: a pure power law); ``rmse_log``: the fit's error in log L."""

    E: float
    A: float
    alpha: float
    rmse_log: float = 0.0

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        if (x <= 0).any():
            raise ValueError("a power law is evaluated at positive sizes only")
        return self.E + self.A * x ** -self.alpha


def _columns(*columns, names: Sequence[str], minimum: int) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=float) for c in columns]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"{', '.join(names)} must be 1-D arrays of one length, got shapes "
                         f"{', '.join(str(a.shape) for a in arrays)}")
    if arrays[0].size < minimum:
        raise ValueError(f"this fit needs at least {minimum} measurements, got {arrays[0].size}")
    for name, a in zip(names, arrays):
        if not np.isfinite(a).all() or (a <= 0).any():
            raise ValueError(f"{name} must be finite and positive (a log is taken)")
    return arrays


def _line_for_floor(log_x: np.ndarray, y: np.ndarray, E: float) -> tuple[float, float, float]:
    """(A, alpha, squared error in log y) of the best line log(y - E) = log A - alpha log x."""
    design = np.stack([np.ones_like(log_x), -log_x], axis=1)
    (log_A, alpha), *_ = np.linalg.lstsq(design, np.log(y - E), rcond=None)
    predicted = E + np.exp(log_A - alpha * log_x)
    return float(np.exp(log_A)), float(alpha), float(np.sum((np.log(y) - np.log(predicted)) ** 2))


def fit_power_law(x, losses, irreducible: bool = True, grid: int = 200) -> PowerLaw:
    """Fit L = E + A / x^alpha by least squares in log space (see the module docstring).

    ``irreducible=False`` fixes E = 0 (Kaplan et al.'s pure power law, one straight line).
    Needs at least 3 points (4 with a floor) of positive x and loss."""
    x, y = _columns(x, losses, names=("x", "losses"), minimum=4 if irreducible else 3)
    if np.unique(x).size < 2:
        raise ValueError("a power law needs at least two different sizes")
    grid = check_positive_int("grid", grid)
    log_x = np.log(x)
    if not irreducible:
        A, alpha, sse = _line_for_floor(log_x, y, 0.0)
        return PowerLaw(0.0, A, alpha, float(np.sqrt(sse / y.size)))
    top = float(y.min())
    floors = np.linspace(0.0, top, grid + 1)[:-1]          # E < min L, so every log(L - E) exists
    errors = [_line_for_floor(log_x, y, E)[2] for E in floors]
    k = int(np.argmin(errors))
    step = top / grid
    fine = np.linspace(max(floors[k] - step, 0.0), min(floors[k] + step, top * (1 - 1e-9)), 2 * grid + 1)
    E = float(min(fine, key=lambda e: _line_for_floor(log_x, y, e)[2]))
    A, alpha, sse = _line_for_floor(log_x, y, E)
    return PowerLaw(E, A, alpha, float(np.sqrt(sse / y.size)))


def fit_loss_surface(n_parameters, n_tokens, losses, exponent_grid: int = 59) -> LossLawFit:
    """Chinchilla's L(N, D) = E + A/N^alpha + B/D^beta fitted to measured runs (``compute.fit_loss_law``
    with ``exponent_grid`` points per exponent in [0.05, 1.5]; a coarser grid is faster, for
    bootstraps)."""
    n, d, y = _columns(n_parameters, n_tokens, losses, names=("n_parameters", "n_tokens", "losses"), minimum=6)
    grid = np.linspace(0.05, 1.5, check_positive_int("exponent_grid", exponent_grid))
    return fit_loss_law(n, d, y, alphas=grid, betas=grid)


def bootstrap(fit: Callable[..., object], columns: Sequence, samples: int,
              rng: np.random.Generator) -> list:
    """``samples`` refits of ``fit(*columns)``, each on rows drawn with replacement (as many as there
    are). A draw whose refit raises (too few distinct rows) is drawn again."""
    arrays = [np.asarray(c) for c in columns]
    if not arrays or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError("bootstrap needs columns of one length")
    samples = check_positive_int("samples", samples)
    rows, fits, failures = arrays[0].shape[0], [], 0
    while len(fits) < samples:
        pick = rng.integers(0, rows, size=rows)
        try:
            fits.append(fit(*(a[pick] for a in arrays)))
        except (ValueError, np.linalg.LinAlgError):
            failures += 1
            if failures > 10 * samples:
                raise ValueError("almost every resample failed to fit: too few distinct measurements") from None
    return fits


def interval(values, level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values, e.g. (5th, 95th) percentiles."""
    level = check_fraction("level", level, low_open=True, high_open=True)
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.isfinite(v).all():
        raise ValueError("interval needs at least two finite values")
    low, high = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def pareto_frontier(compute, losses) -> np.ndarray:
    """Indices of the runs on the compute-optimal frontier, cheapest first: each has a lower loss
    than every run that cost no more.

    >>> pareto_frontier([1, 2, 3, 4], [5.0, 5.5, 4.0, 4.5]).tolist()
    [0, 2]
    """
    c, y = _columns(compute, losses, names=("compute", "losses"), minimum=1)
    order = np.lexsort((y, c))           # by compute, ties by loss
    keep, best = [], np.inf
    for i in order:
        if y[i] < best:
            keep.append(int(i))
            best = y[i]
    return np.array(keep, dtype=int)
