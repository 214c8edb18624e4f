"""Exercise 01.2 (Lesson 01). Predict dy/dx of y = x * x * x + x at x = 2 before running the engine, then check.

Check your answer with: tinygrad-llm exercise check 01.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
