"""Exercise 23.3 (Lesson 23). Predict the standard error of a 25 % accuracy measured on 300 questions.

Check your answer with: tinygrad-llm exercise check 23.3   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
