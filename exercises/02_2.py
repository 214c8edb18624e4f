"""Exercise 02.2 (Lesson 02). Apply one merge: replace every occurrence of `pair` by `new_id`, left to right.

Check your answer with: tinygrad-llm exercise check 02.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """ids with each non-overlapping occurrence of pair (scanning left to right) replaced by new_id."""
    raise NotImplementedError
