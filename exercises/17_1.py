"""Exercise 17.1 (Lesson 17). The model-state bytes one rank holds under ZeRO stage 0-3, mixed precision with Adam.

Check your answer with: tinygrad-llm exercise check 17.1   (or: python -m pytest -m exercises)
"""


def bytes_per_rank(n_parameters: int, ranks: int, stage: int) -> float:
    """Weights + gradients + optimizer state, in bytes, on one of ``ranks`` ranks at ZeRO ``stage``."""
    raise NotImplementedError
