"""Exercise 23.1 (Lesson 23). A k-shot prompt in lm-evaluation-harness's layout.

Check your answer with: tinygrad-llm exercise check 23.1   (or: python -m pytest -m exercises)
"""


def fewshot_prompt(demos: list[tuple[str, str]], question: str) -> str:
    """The prompt for ``question`` after the (context, answer) demonstrations, in their order."""
    raise NotImplementedError
