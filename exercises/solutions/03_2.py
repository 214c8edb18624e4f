"""Reference solution of exercise 03.2 (Lesson 03). Predict how many windows of 64 tokens, one every 48 tokens, fit in 1,000 tokens
(each window needs its 64 inputs and the one token after them as a target).

Check your answer with: tinygrad-llm exercise check 03.2   (or: python -m pytest -m exercises)
"""

ANSWER = 20
