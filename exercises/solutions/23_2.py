"""Reference solution of exercise 23.2 (Lesson 23). acc and acc_norm: which choice does each pick from the log-likelihoods?

Check your answer with: tinygrad-llm exercise check 23.2   (or: python -m pytest -m exercises)
"""


def pick(logprobs: list[float], choices: list[str]) -> tuple[int, int]:
    """(the index acc picks, the index acc_norm picks) for one question's choices."""
    acc = max(range(len(logprobs)), key=lambda i: logprobs[i])
    acc_norm = max(range(len(logprobs)), key=lambda i: logprobs[i] / len(choices[i]))
    return acc, acc_norm
