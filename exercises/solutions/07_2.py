"""Reference solution of exercise 07.2 (Lesson 07). The learning rate at a step: linear warmup, then cosine decay to min_lr.

Check your answer with: tinygrad-llm exercise check 07.2   (or: python -m pytest -m exercises)
"""

import math

import numpy as np


def learning_rate(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> float:
    """The rate used at step (counted from 0)."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
