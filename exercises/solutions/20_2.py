"""Reference solution of exercise 20.2 (Lesson 20). Predict the number of parameters of a GRU layer with input width 64 and hidden size 96.

Check your answer with: tinygrad-llm exercise check 20.2   (or: python -m pytest -m exercises)
"""

ANSWER = 46_656   # 3 gates x (96 x 64 + 96 x 96 + 2 x 96)
