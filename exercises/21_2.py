"""Exercise 21.2 (Lesson 21). Predict the expected number of [MASK] tokens in 32 windows of 64 tokens ([CLS] ... [SEP]).

Check your answer with: tinygrad-llm exercise check 21.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
