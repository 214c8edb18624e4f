"""Reference solution of exercise 10.2 (Lesson 10). Macro-averaged F1 from a confusion matrix (rows true, columns predicted).

Check your answer with: tinygrad-llm exercise check 10.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def macro_f1(matrix: np.ndarray) -> float:
    """The mean over classes of F1 = 2 P R / (P + R); a class with P + R = 0 scores 0."""
    scores = []
    for c in range(len(matrix)):
        hits = matrix[c, c]
        precision = hits / matrix[:, c].sum() if matrix[:, c].sum() else 0.0
        recall = hits / matrix[c, :].sum() if matrix[c, :].sum() else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores))
