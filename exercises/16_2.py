"""Exercise 16.2 (Lesson 16). Fold AWQ's input scales into the LayerNorm before a Linear, so that the model computes the same function.

Check your answer with: tinygrad-llm exercise check 16.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def fold_scale(norm_weight: np.ndarray, norm_bias: np.ndarray, W: np.ndarray,
               s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(new LayerNorm weight (C,), new LayerNorm bias (C,), new Linear weight (out, C)): input
    channel j of the Linear multiplied by s_j, the LayerNorm's output channel j divided by it."""
    raise NotImplementedError
