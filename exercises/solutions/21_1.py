"""Reference solution of exercise 21.1 (Lesson 21). Bidirectional attention: every query sees every key except the padding keys.

Check your answer with: tinygrad-llm exercise check 21.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def bidirectional_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) v for q, k (T, d) and v (T, d_v), where no query attends to the keys
    with pad[j] True (and there is no causal mask)."""
    scores = q @ k.T / np.sqrt(q.shape[-1])                  # (T, T)
    scores = np.where(pad[None, :], -np.inf, scores)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v
