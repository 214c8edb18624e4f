"""Exercise 15.1 (Lesson 15). The distillation loss: T^2 KL(teacher || student) on distributions softened by T.

Check your answer with: tinygrad-llm exercise check 15.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def distillation_kl(student: np.ndarray, teacher: np.ndarray, temperature: float) -> float:
    """Mean over rows of T^2 sum_i p_i (log p_i - log q_i), p from teacher, q from student logits."""
    raise NotImplementedError
