"""Reference solution of exercise 24.1 (Lesson 24). The loss of a batch with replay: each part weighted by its share of the rows.

Check your answer with: tinygrad-llm exercise check 24.1   (or: python -m pytest -m exercises)
"""


def replay_loss(domain_loss: float, general_loss: float, batch_size: int, fraction: float) -> float:
    """The loss of a batch whose round(fraction * batch_size) rows are general text, the rest domain text."""
    k = round(fraction * batch_size)
    share = k / batch_size
    return (1 - share) * domain_loss + share * general_loss
