"""Finite-difference gradient checking (lesson 01).

The analytic gradient from ``backward()`` is compared with central differences

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

for every entry of every input that requires grad. The error of the central difference falls as
eps^2, so in float64 with eps = 1e-6 the two agree to about 1e-9 for smooth functions.

The tensor output f(x) is reduced to a scalar with fixed random weights, L = sum(f(x) * w), never
with a plain sum: the rows of a softmax always sum to 1, so sum(softmax(x)) has gradient zero
whatever the backward computes, and a plain-sum check could not see a softmax bug.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .checks import check_finite_array
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree; the message says where and by how much."""


def _objective(out, weights: np.ndarray) -> float:
    return float(np.sum(out.data.astype(np.float64) * weights))


def gradcheck(fn: Callable[..., Tensor], *inputs, eps: float = 1e-6, atol: float = 1e-7,
              rtol: float = 1e-5, seed: int = 0, raise_exception: bool = True) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central differences.

    ``inputs`` are Tensors (those with ``requires_grad=True`` are checked and must be float64) or
    any other arguments, passed through. ``fn`` must be deterministic (seed any randomness
    inside it). Entry i passes when |analytic - numeric| <= atol + rtol * |numeric|.

    Returns True when every entry passes; otherwise raises GradcheckError naming the input, the
    worst index and both values (or returns False with ``raise_exception=False``).

    >>> x = Tensor(np.array([0.3, -1.2]), requires_grad=True)
    >>> gradcheck(lambda t: t.tanh() * t, x)
    True
    """
    checked = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i, t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; finite differences need float64")
        check_finite_array(f"gradcheck: input {i}", t.data)   # NaN compares false with everything

    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    weights = np.random.default_rng(seed).standard_normal(out.shape)

    saved = [t.grad for _, t in checked]
    for _, t in checked:
        t.grad = None
    (out * weights).sum().backward()
    analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for _, t in checked]
    for (_, t), grad in zip(checked, saved):
        t.grad = grad

    for (position, t), grad in zip(checked, analytic):
        if not t.data.flags.writeable or not t.data.flags.owndata:
            t.data = t.data.copy()  # perturb a private copy, never an array shared with the caller
        flat = t.data.reshape(-1)
        numeric = np.empty(flat.size)
        with no_grad():
            for j in range(flat.size):
                original = flat[j]
                flat[j] = original + eps
                plus = _objective(fn(*inputs), weights)
                flat[j] = original - eps
                minus = _objective(fn(*inputs), weights)
                flat[j] = original
                numeric[j] = (plus - minus) / (2 * eps)
        numeric = numeric.reshape(t.shape)
        error = np.abs(grad - numeric)
        excess = error - (atol + rtol * np.abs(numeric))
        # careful: a NaN gradient has NaN excess, which "excess > 0" would count as passing
        failing = ~(excess <= 0)
        if not failing.any():
            continue
        # plain ints, so the message reads "index (1, 2)" and not "(np.int64(1), np.int64(2))"
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))),
                                                       t.shape))
        message = (f"gradcheck failed for input {position} (shape {t.shape}) at index {worst}: "
                   f"analytic {grad[worst]:.10g}, numeric {numeric[worst]:.10g}, "
                   f"|difference| {error[worst]:.3g} > atol {atol:g} + rtol {rtol:g} * |numeric|; "
                   f"{int(failing.sum())} of {t.size} entries fail")
        if raise_exception:
            raise GradcheckError(message)
        return False
    return True
