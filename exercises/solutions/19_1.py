"""Reference solution of exercise 19.1 (Lesson 19). The contiguous rows of a global batch that one rank computes.

Check your answer with: tinygrad-llm exercise check 19.1   (or: python -m pytest -m exercises)
"""


def rank_rows(batch_size: int, rank: int, ranks: int) -> tuple[int, int]:
    """(start, stop): the rows of a global batch of batch_size that rank of ranks computes."""
    per_rank = batch_size // ranks
    return rank * per_rank, (rank + 1) * per_rank
