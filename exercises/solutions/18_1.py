"""Reference solution of exercise 18.1 (Lesson 18). Fit L = A N^-alpha by least squares on log L against log N.

Check your answer with: tinygrad-llm exercise check 18.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def fit_pure_power_law(n: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    """(A, alpha) of the straight line log L = log A - alpha log N that fits best in least squares."""
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
    return float(np.exp(intercept)), float(-slope)
