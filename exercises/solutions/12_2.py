"""Reference solution of exercise 12.2 (Lesson 12). The forward pass of a Linear with a LoRA adapter.

Check your answer with: tinygrad-llm exercise check 12.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def lora_forward(x, W, b, A, B, alpha: float, r: int) -> np.ndarray:
    """x W^T + b + (alpha / r) x A^T B^T for W (out, in), A (r, in), B (out, r)."""
    return x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T
