"""Exercise 20.2 (Lesson 20). Predict the number of parameters of a GRU layer with input width 64 and hidden size 96.

Check your answer with: tinygrad-llm exercise check 20.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
