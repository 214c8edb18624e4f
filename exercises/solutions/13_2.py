"""Reference solution of exercise 13.2 (Lesson 13). Predict the bytes of a (256, 512) weight stored as int8 codes with one float32 scale per row.

Check your answer with: tinygrad-llm exercise check 13.2   (or: python -m pytest -m exercises)
"""

ANSWER = 132_096
