"""Exercise 17.2 (Lesson 17). Predict the petaflop/s-days of training a 1B-parameter model on 20B tokens (6 N D).

Check your answer with: tinygrad-llm exercise check 17.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
