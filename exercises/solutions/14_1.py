"""Reference solution of exercise 14.1 (Lesson 14). The mask of magnitude pruning: remove the smallest weights by absolute value.

Check your answer with: tinygrad-llm exercise check 14.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Boolean mask (True = kept) removing round(sparsity * w.size) entries of smallest |w|."""
    k = round(sparsity * w.size)
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    keep = np.ones(w.size, dtype=bool)
    keep[order[:k]] = False
    return keep.reshape(w.shape)
