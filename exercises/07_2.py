"""Exercise 07.2 (Lesson 07). The learning rate at a step: linear warmup, then cosine decay to min_lr.

Check your answer with: tinygrad-llm exercise check 07.2   (or: python -m pytest -m exercises)
"""

import math

import numpy as np


def learning_rate(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> float:
    """The rate used at step (counted from 0)."""
    raise NotImplementedError
