"""Exercise 04.1 (Lesson 04). Write the backward of an embedding lookup: out[i] = weight[ids[i]].

Check your answer with: tinygrad-llm exercise check 04.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def embedding_backward(ids: np.ndarray, grad_out: np.ndarray, vocab_size: int) -> np.ndarray:
    """d loss / d weight, shape (vocab_size, d), from grad_out of shape ids.shape + (d,)."""
    raise NotImplementedError
