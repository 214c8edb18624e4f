"""Reference solution of exercise 11.2 (Lesson 11). Predict how many targets the loss averages over for one example: a 12-token prompt followed
by a 7-token response (its end-of-text token included), with the prompt masked out.

Check your answer with: tinygrad-llm exercise check 11.2   (or: python -m pytest -m exercises)
"""

ANSWER = 7
