"""Exercise 16.3 (Lesson 16). Predict the bytes of a (256, 512) float matrix stored as GGUF's Q8_0.

Check your answer with: tinygrad-llm exercise check 16.3   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
