"""Exercise 19.2 (Lesson 19). Predict the bytes one of 4 ranks sends in a ring all-reduce of 1,000,000 float32 values.

Check your answer with: tinygrad-llm exercise check 19.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
