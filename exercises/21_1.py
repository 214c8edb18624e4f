"""Exercise 21.1 (Lesson 21). Bidirectional attention: every query sees every key except the padding keys.

Check your answer with: tinygrad-llm exercise check 21.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def bidirectional_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) v for q, k (T, d) and v (T, d_v), where no query attends to the keys
    with pad[j] True (and there is no causal mask)."""
    raise NotImplementedError
