"""Exercise 25.2 (Lesson 25). A labeller ranks 5 answers for each of 12 prompts, with no ties: how many preference pairs is that?

Check your answer with: tinygrad-llm exercise check 25.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
