"""Exercise 26.1 (Lesson 26). The DPO loss from the summed log-probabilities of policy and reference.

Check your answer with: tinygrad-llm exercise check 26.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def dpo_loss(policy_chosen: np.ndarray, policy_rejected: np.ndarray, reference_chosen: np.ndarray,
             reference_rejected: np.ndarray, beta: float) -> float:
    """-mean log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), for arrays of shape (B,)."""
    raise NotImplementedError
