"""Reference solution of exercise 09.2 (Lesson 09). Predict how many windows `sliding_windows(200, 64, 32)` makes to score every target of
200 tokens with a 64-token context and stride 32.

Check your answer with: tinygrad-llm exercise check 09.2   (or: python -m pytest -m exercises)
"""

ANSWER = 6
