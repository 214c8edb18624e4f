"""Reference solution of exercise 16.1 (Lesson 16). GPTQ's update after rounding one column: move the later columns to make up for its error.

Check your answer with: tinygrad-llm exercise check 16.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def gptq_update(W: np.ndarray, H_inverse: np.ndarray, i: int, q: np.ndarray) -> np.ndarray:
    """A copy of W (out, in) with column i replaced by its rounded values q (out,) and every later
    column j > i corrected by GPTQ's update; columns before i are left as they are."""
    W = np.array(W, dtype=np.float64)
    error = (W[:, i] - q) / H_inverse[i, i]              # (out,)
    W[:, i] = q
    W[:, i + 1:] -= np.outer(error, H_inverse[i, i + 1:])
    return W
