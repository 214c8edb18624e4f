"""Exercise 08.1 (Lesson 08). Next-token probabilities with temperature and top-k filtering.

Check your answer with: tinygrad-llm exercise check 08.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def top_k_probs(logits: np.ndarray, k: int, temperature: float = 1.0) -> np.ndarray:
    """(N, V) probabilities: softmax over the k largest logits / temperature of each row, 0 elsewhere."""
    raise NotImplementedError
