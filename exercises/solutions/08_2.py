"""Reference solution of exercise 08.2 (Lesson 08). Next-token probabilities with top-p (nucleus) filtering.

Check your answer with: tinygrad-llm exercise check 08.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def top_p_probs(logits: np.ndarray, p: float) -> np.ndarray:
    """(N, V): the smallest set of most likely tokens whose mass reaches p, renormalised."""
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    out = np.zeros_like(probs)
    for row in range(len(probs)):
        order = np.argsort(-probs[row], kind="stable")
        above = np.cumsum(probs[row][order]) - probs[row][order]   # mass ranked above each token
        kept = order[above < p]
        out[row, kept] = probs[row, kept] / probs[row, kept].sum()
    return out
