"""Exercise 24.2 (Lesson 24). Predict how many rows of a batch of 20 are general text at 15 % replay.

Check your answer with: tinygrad-llm exercise check 24.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
