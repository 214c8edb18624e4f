"""Reference solution of exercise 01.1 (Lesson 01). Write central differences: the gradient of a scalar function f at x, one entry at a time.
Autograd must agree with it; that is how lesson 01 trusts every op.

Check your answer with: tinygrad-llm exercise check 01.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """d f / d x by central differences, same shape as x (f returns a float)."""
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = f(x)
        x[i] = saved - eps
        down = f(x)
        x[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad
