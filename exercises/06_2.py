"""Exercise 06.2 (Lesson 06). Layer norm over the last axis, forward only, in plain NumPy.

Check your answer with: tinygrad-llm exercise check 06.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis."""
    raise NotImplementedError
