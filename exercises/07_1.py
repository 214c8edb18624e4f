"""Exercise 07.1 (Lesson 07). One AdamW update of one parameter, by hand (step t counts from 1).

Check your answer with: tinygrad-llm exercise check 07.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def adamw_update(param, grad, m, v, t, lr, betas, eps, weight_decay):
    """Return the new (param, m, v) after AdamW step t; do not rely on in-place updates."""
    raise NotImplementedError
