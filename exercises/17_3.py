"""Exercise 17.3 (Lesson 17). Predict the fewest ranks with which ZeRO stage 3 holds the model state of a 7.5B model (mixed precision, Adam) in 16 GB each.

Check your answer with: tinygrad-llm exercise check 17.3   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
