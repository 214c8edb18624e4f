"""Exercise 15.2 (Lesson 15). Predict the second probability of softmax([0, ln 9] / T) at temperature T = 2.

Check your answer with: tinygrad-llm exercise check 15.2   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
