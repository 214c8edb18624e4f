"""Reference solution of exercise 09.1 (Lesson 09). Perplexity from the per-token negative log-likelihoods of a text.

Check your answer with: tinygrad-llm exercise check 09.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def perplexity_from_nll(nll: np.ndarray) -> float:
    """The perplexity of a text whose tokens have losses nll (natural log)."""
    return float(np.exp(np.mean(nll)))
