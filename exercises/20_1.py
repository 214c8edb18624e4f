"""Exercise 20.1 (Lesson 20). One step of a GRU cell in NumPy, in PyTorch's gate order (r, z, n).

Check your answer with: tinygrad-llm exercise check 20.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def gru_step(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
             b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """The next state (B, H) from inputs x (B, I) and state h (B, H); w_ih (3H, I), w_hh (3H, H),
    b_ih and b_hh (3H,) hold the reset, update and candidate gates one after the other."""
    raise NotImplementedError
