"""Exercise 03.1 (Lesson 03). Cut a token array into (inputs, targets) windows of context_length tokens, every stride tokens.

Check your answer with: tinygrad-llm exercise check 03.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def windows(tokens: np.ndarray, context_length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """inputs (N, context_length) and targets (N, context_length), targets shifted by one token."""
    raise NotImplementedError
