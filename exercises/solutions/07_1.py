"""Reference solution of exercise 07.1 (Lesson 07). One AdamW update of one parameter, by hand (step t counts from 1).

Check your answer with: tinygrad-llm exercise check 07.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def adamw_update(param, grad, m, v, t, lr, betas, eps, weight_decay):
    """Return the new (param, m, v) after AdamW step t; do not rely on in-place updates."""
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** t)               # bias correction: m and v start at zero
    v_hat = v / (1 - beta2 ** t)
    param = param * (1 - lr * weight_decay)    # decoupled decay, outside the Adam ratio
    param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
    return param, m, v
