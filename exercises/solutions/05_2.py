"""Reference solution of exercise 05.2 (Lesson 05). Predict how many bytes the float32 attention weights of one layer take for batch 8,
4 heads and 128 tokens
(one probability per query and key, in every head of every sequence).

Check your answer with: tinygrad-llm exercise check 05.2   (or: python -m pytest -m exercises)
"""

ANSWER = 2_097_152
