"""Reference solution of exercise 22.2 (Lesson 22). Predict the target length (sentinels included) of a 128-token window at T5's settings.

Check your answer with: tinygrad-llm exercise check 22.2   (or: python -m pytest -m exercises)
"""

ANSWER = 26   # 19 hidden tokens (round(0.15 x 128)) + 6 sentinels (round(19 / 3)) + 1 to close
