"""Exercise 22.1 (Lesson 22). Put a text back together from its span-corrupted source and target.

Check your answer with: tinygrad-llm exercise check 22.1   (or: python -m pytest -m exercises)
"""


def restore(source: list[int], target: list[int], sentinels: list[int]) -> list[int]:
    """The original tokens: every sentinel of ``source`` replaced by the tokens that follow the same
    sentinel in ``target`` (up to the next sentinel)."""
    raise NotImplementedError
