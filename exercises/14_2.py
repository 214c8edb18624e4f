"""Exercise 14.2 (Lesson 14). Predict how many weights a (48, 20) matrix keeps after magnitude pruning at 70 % sparsity.

Check your answer with: tinygrad-llm exercise check 14.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
