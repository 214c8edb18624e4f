"""Exercise 08.2 (Lesson 08). Next-token probabilities with top-p (nucleus) filtering.

Check your answer with: tinygrad-llm exercise check 08.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def top_p_probs(logits: np.ndarray, p: float) -> np.ndarray:
    """(N, V): the smallest set of most likely tokens whose mass reaches p, renormalised."""
    raise NotImplementedError
