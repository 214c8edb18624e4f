"""Exercise 10.1 (Lesson 10). A confusion matrix from true and predicted class ids.

Check your answer with: tinygrad-llm exercise check 10.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = true class, columns = predicted class."""
    raise NotImplementedError
