"""Reference solution of exercise 21.2 (Lesson 21). Predict the expected number of [MASK] tokens in 32 windows of 64 tokens ([CLS] ... [SEP]).

Check your answer with: tinygrad-llm exercise check 21.2   (or: python -m pytest -m exercises)
"""

ANSWER = 238.08   # 32 windows x 62 ordinary positions x 0.15 chosen x 0.8 masked
