"""Exercise 16.1 (Lesson 16). GPTQ's update after rounding one column: move the later columns to make up for its error.

Check your answer with: tinygrad-llm exercise check 16.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def gptq_update(W: np.ndarray, H_inverse: np.ndarray, i: int, q: np.ndarray) -> np.ndarray:
    """A copy of W (out, in) with column i replaced by its rounded values q (out,) and every later
    column j > i corrected by GPTQ's update; columns before i are left as they are."""
    raise NotImplementedError
