"""Reference solution of exercise 05.1 (Lesson 05). Causal self-attention, forward only, in plain NumPy.

Check your answer with: tinygrad-llm exercise check 05.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d) with future keys masked) v, for q, k, v of shape (B, H, T, d)."""
    T, d = q.shape[-2], q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)                 # (B, H, T, T)
    scores = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, scores)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v
