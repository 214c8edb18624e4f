"""Exercise 05.1 (Lesson 05). Causal self-attention, forward only, in plain NumPy.

Check your answer with: tinygrad-llm exercise check 05.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d) with future keys masked) v, for q, k, v of shape (B, H, T, d)."""
    raise NotImplementedError
