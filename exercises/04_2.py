"""Exercise 04.2 (Lesson 04). The cosine similarity between every pair of rows of an embedding table.

Check your answer with: tinygrad-llm exercise check 04.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def cosine_similarity_matrix(e: np.ndarray) -> np.ndarray:
    """(V, V) matrix of cos(angle between row i and row j) for e of shape (V, d)."""
    raise NotImplementedError
