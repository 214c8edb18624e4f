"""Reference solution of exercise 02.2 (Lesson 02). Apply one merge: replace every occurrence of `pair` by `new_id`, left to right.

Check your answer with: tinygrad-llm exercise check 02.2   (or: python -m pytest -m exercises)
"""

import numpy as np


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """ids with each non-overlapping occurrence of pair (scanning left to right) replaced by new_id."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
