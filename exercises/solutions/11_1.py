"""Reference solution of exercise 11.1 (Lesson 11). Keep only the response in the loss: targets that predict a prompt token are ignored.

Check your answer with: tinygrad-llm exercise check 11.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def mask_prompt(targets: np.ndarray, prompt_length: int, ignore_index: int = -100) -> np.ndarray:
    """A copy of targets (targets[i] is token i + 1) with the prompt's targets set to ignore_index."""
    masked = targets.copy()
    masked[: prompt_length - 1] = ignore_index   # targets 0..prompt_length-2 are prompt tokens 1..
    return masked
