"""Reference solution of exercise 13.1 (Lesson 13). Quantize a matrix to int8 with one absmax scale per row, then dequantize it.

Check your answer with: tinygrad-llm exercise check 13.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def quantize_dequantize_int8(w: np.ndarray) -> np.ndarray:
    """w after a symmetric int8 round trip, one scale per row (same shape as w)."""
    scale = np.abs(w).max(axis=1, keepdims=True) / 127
    codes = np.round(w / scale).astype(np.int8)
    return codes.astype(np.float64) * scale
