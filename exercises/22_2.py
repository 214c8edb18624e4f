"""Exercise 22.2 (Lesson 22). Predict the target length (sentinels included) of a 128-token window at T5's settings.

Check your answer with: tinygrad-llm exercise check 22.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
