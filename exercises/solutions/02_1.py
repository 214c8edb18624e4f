"""Reference solution of exercise 02.1 (Lesson 02). Count how often each adjacent pair of token ids occurs: the statistic BPE merges by.

Check your answer with: tinygrad-llm exercise check 02.1   (or: python -m pytest -m exercises)
"""

import numpy as np


def pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """{(a, b): number of positions i with ids[i] == a and ids[i + 1] == b}."""
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
