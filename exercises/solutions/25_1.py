"""Reference solution of exercise 25.1 (Lesson 25). The Bradley-Terry loss: -mean log s(r_chosen - r_rejected), stable for large margins.

Check your answer with: tinygrad-llm exercise check 25.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def bradley_terry_loss(chosen: np.ndarray, rejected: np.ndarray) -> float:
    """The mean over pairs of -log sigmoid(chosen - rejected), finite for any margin."""
    margin = np.asarray(chosen, dtype=np.float64) - np.asarray(rejected, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, -margin)))   # log(1 + e^-m) without overflow
